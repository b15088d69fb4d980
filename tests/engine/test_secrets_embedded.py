"""Secrets (issue 18 item 1) on the embedded Space: an install whose operation receives unique
secrets from every source (the worker's environment, a file, an ansible-vault file encrypted
whole and one made of ``encrypt_string`` values, a sensitive deployment input given as a
reference, a sensitive property), proves it received them (their sha256, written where the test
reads), and echoes them to stdout, stderr and its outputs.  Then neither the raw Space (the
SQLite file, WAL and shm bytes), nor the worker's log files, nor any ``wfctl`` output holds any
of them, while ``********`` shows where they were echoed.

``sensitive`` is the keyword proposed for TOSCA 2.0 (tosca-community-contributions); TOSCA 1.3
has no secret function, ``get_secret`` follows Yorc's name."""
import json

import pytest

from wfengine import api, cli, keys

from engine_helpers import embedded
from secret_models import assert_clean as _assert_clean, assert_received, prepare


def _setup(tmp_path, monkeypatch):
    secrets, folder, out, env = prepare(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return secrets, folder, out


def _cli(capsys, db, *argv):
    capsys.readouterr()
    code = cli.main(["--space", db] + list(argv))
    got = capsys.readouterr()
    return code, got.out + got.err


def test_secrets_reach_the_operation_and_nothing_else(tmp_path, monkeypatch, capsys):
    secrets, folder, out = _setup(tmp_path, monkeypatch)
    opts = embedded(tmp_path)
    db = opts.path
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(folder), "m")
        api.create_instance(space, "m", "i", inputs={
            "out_dir": str(out), "db_password": {"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
    finally:
        space.close()

    # Provably received: the sha256 of each value, written by the operation.
    assert_received(out, secrets)

    outputs = {}
    for argv in (["status", "m", "i"], ["status", "m", "i", "--json"], ["logs", "m", "i"],
                 ["logs", "m", "i", "--json"], ["trace", "m", "i"], ["trace", "m", "i", "--json"],
                 ["runs", "m", "i", "--json"]):
        code, text = _cli(capsys, db, *argv)
        assert code == 0, text
        _assert_clean(text.encode(), secrets, "wfctl " + " ".join(argv))
        outputs[" ".join(argv)] = text
    logs = json.loads(outputs["logs m i --json"])
    create = [r for r in logs if r["node"] == "app_0" and r["operation"].endswith("create")]
    assert create and "stdout FROM_ENV=********" in create[-1]["output"]
    assert "stderr FROM_VAULT=********" in create[-1]["output"]
    status = json.loads(outputs["status m i --json"])
    assert status["outputs"]["pw"] == {"value": "********"}
    assert status["outputs"]["leaked"] == {"value": "********"}

    # The full log file on the worker, the models' cache, and the raw Space bytes.
    log_file = create[-1]["log_file"]
    with open(log_file, "rb") as fh:
        full = fh.read()
    assert b"stderr FROM_INLINE=********" in full
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] + list(tmp_path.glob("space.db*"))
    assert any(p.name.endswith(".db") for p in files)
    for p in files:
        _assert_clean(p.read_bytes(), secrets, str(p))
    space = api.open_space(opts)
    try:
        attrs = space.get(keys.attributes("m", "i", "app_0")).value
    finally:
        space.close()
    assert attrs["leak"] == "********" and attrs["combo"] == "[********]"


def test_a_secret_in_an_error_message_is_masked(tmp_path, monkeypatch, capsys):
    """An input that fails to evaluate on a secret's value (token of a string without the
    separator): the error names the input, the value is masked."""
    secrets, folder, out = _setup(tmp_path, monkeypatch)
    text = (folder / "app.yaml").read_text().replace(
        "OUT: {get_property: [SELF, out_dir]}",
        "OUT: {get_property: [SELF, out_dir]}\n              BAD: {token: [{get_secret: [env, WF_TEST_SECRET]}, ':', 3]}")
    (folder / "app.yaml").write_text(text)
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(folder), "m")
        api.create_instance(space, "m", "i", inputs={
            "out_dir": str(out), "db_password": {"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=120)
        assert rec["status"] == "failed", rec
    finally:
        space.close()
    code, logs = _cli(capsys, opts.path, "logs", "m", "i")
    assert "input BAD: token" in logs and "'********' has 1 tokens, no token 3" in logs
    for argv in (["status", "m", "i", "--json"], ["trace", "m", "i", "--json"], ["runs", "m", "i", "--json"]):
        _assert_clean(_cli(capsys, opts.path, *argv)[1].encode(), secrets, " ".join(argv))
    _assert_clean(logs.encode(), secrets, "wfctl logs")
    for p in list(tmp_path.glob("space.db*")) + [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]:
        _assert_clean(p.read_bytes(), secrets, str(p))


@pytest.mark.parametrize("given", ["hunter2-literal", {"get_secret": ["vault", "x"]}])
def test_a_sensitive_input_given_in_clear_is_refused(tmp_path, monkeypatch, capsys, given):
    """The instance head keeps the inputs: a sensitive one must be a get_secret reference;
    refused in one line, exit 2, nothing written."""
    secrets, folder, out = _setup(tmp_path, monkeypatch)
    opts = embedded(tmp_path)
    code, text = _cli(capsys, opts.path, "model", str(folder), "m")
    assert code == 0, text
    value = given if isinstance(given, str) else json.dumps(given)
    code, text = _cli(capsys, opts.path, "instantiate", "m", "i", "--input", "out_dir=/tmp",
                      "--input", "db_password=%s" % value)
    assert code == 2 and len(text.strip().splitlines()) == 1, text
    assert "input db_password" in text
    assert ("is sensitive" in text and "get_secret" in text) if isinstance(given, str) else "unknown source" in text
    space = api.open_space(opts)
    try:
        assert space.get("inst/m/i/head") is None
    finally:
        space.close()
    for p in tmp_path.glob("space.db*"):
        assert b"hunter2-literal" not in p.read_bytes()


def test_a_vault_secret_without_password_file_fails_naming_the_option(tmp_path, monkeypatch, capsys):
    secrets, folder, out = _setup(tmp_path, monkeypatch)
    monkeypatch.delenv("WF_VAULT_PASSWORD_FILE")
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(folder), "m")
        api.create_instance(space, "m", "i", inputs={
            "out_dir": str(out), "db_password": {"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=120)
        assert rec["status"] == "failed", rec
        text = json.dumps(api.logs(space, "m", "i"))
    finally:
        space.close()
    assert "the worker has no vault password file (wfctl worker --vault-password-file" in text
    assert not (out / "FROM_ENV.sha").exists()


def test_wfctl_vault_password_file_option(tmp_path):
    """``wfctl workflow --vault-password-file`` (the same option as ``wfctl worker``'s): the
    in-process workers decrypt with it; the deployer's other commands never see the secrets."""
    import os
    import subprocess
    import sys
    secrets, folder, out, env = prepare(tmp_path)
    db = str(tmp_path / "cli.db")
    base = [sys.executable, "-m", "wfengine.cli", "--space", db]
    plain_env = {k: v for k, v in os.environ.items() if k not in env}
    worker_env = dict(plain_env, **{k: v for k, v in env.items() if k != "WF_VAULT_PASSWORD_FILE"})

    def wfctl(argv, run_env):
        p = subprocess.run(base + argv, capture_output=True, text=True, env=run_env, check=False, timeout=300)
        return p.returncode, p.stdout + p.stderr

    assert wfctl(["model", str(folder), "m"], plain_env)[0] == 0
    code, text = wfctl(["instantiate", "m", "i", "--input", "out_dir=%s" % out,
                        "--input", 'db_password={"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}'], plain_env)
    assert code == 0, text
    code, text = wfctl(["workflow", "install", "m", "i", "--vault-password-file", str(tmp_path / "nope")], worker_env)
    assert code == 2 and "--vault-password-file: %s: not a readable file" % (tmp_path / "nope") in text
    code, text = wfctl(["workflow", "install", "m", "i", "--vault-password-file", env["WF_VAULT_PASSWORD_FILE"]],
                       worker_env)
    assert code == 0, text
    assert_received(out, secrets)
    _assert_clean(text.encode(), secrets, "wfctl workflow")
    for p in list(tmp_path.glob("cli.db*")) + [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]:
        _assert_clean(p.read_bytes(), secrets, str(p))
