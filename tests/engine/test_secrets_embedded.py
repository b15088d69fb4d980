"""Secrets (issue 18 item 1) on the embedded Space: an install whose operation receives unique
secrets from every source (the worker's environment, a file, an ansible-vault file encrypted
whole and one made of ``encrypt_string`` values, a sensitive deployment input given as a
reference, a sensitive property), proves it received them (their sha256, written where the test
reads), and echoes them to stdout, stderr and its outputs.  Then neither the raw Space (the
SQLite file, WAL and shm bytes), nor the worker's log files, nor any ``wfctl`` output holds any
of them, while ``********`` shows where they were echoed.

``sensitive`` is the keyword proposed for TOSCA 2.0 (tosca-community-contributions); TOSCA 1.3
has no secret function, ``get_secret`` follows Yorc's name."""
import hashlib
import json
import uuid

import pytest
import yaml

from wfengine import api, cli, keys

from engine_helpers import ansible_vault, embedded

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      password: {type: string, sensitive: true}
      out_dir: {type: string}
    attributes:
      leak: {type: string}
topology_template:
  inputs:
    db_password: {type: string, sensitive: true}
    out_dir: {type: string}
  node_templates:
    server: {type: tosca.nodes.Compute}
    app:
      type: my.App
      requirements: [{host: server}]
      properties:
        password: {get_input: db_password}
        out_dir: {get_input: out_dir}
      interfaces:
        Standard:
          create:
            implementation: create.sh
            inputs:
              OUT: {get_property: [SELF, out_dir]}
              FROM_ENV: {get_secret: [env, WF_TEST_SECRET]}
              FROM_FILE: {get_secret: [file, @FILE@]}
              FROM_VAULT: {get_secret: [ansible_vault, @VAULT@, db_key]}
              FROM_INLINE: {get_secret: [ansible_vault, @INLINE@, api_key]}
              FROM_INPUT: {get_input: db_password}
              FROM_PROP: {get_property: [SELF, password]}
  outputs:
    pw: {value: {get_input: db_password}}
    leaked: {value: {get_attribute: [app, leak]}}
"""

NAMES = ("FROM_ENV", "FROM_FILE", "FROM_VAULT", "FROM_INLINE", "FROM_INPUT", "FROM_PROP")

CREATE = """\
set -e
for v in %s; do
  printf '%%s' "${!v}" | sha256sum | cut -d' ' -f1 > "$OUT/$v.sha"
  echo "stdout $v=${!v}"
  echo "stderr $v=${!v}" >&2
done
echo "leak=$FROM_ENV" >> "$WF_OUTPUTS"
echo "combo=[${FROM_FILE}]" >> "$WF_OUTPUTS"
""" % " ".join(NAMES)


def _vault_files(tmp_path, password_file, whole: str, inline: str):
    """An ansible-vault file encrypted whole (``ansible-vault encrypt``), and one holding an
    ``ansible-vault encrypt_string`` value (the value given on its standard input)."""
    vf = tmp_path / "vault.yml"
    vf.write_text(yaml.safe_dump({"db_key": whole, "other": "x"}))
    ansible_vault("encrypt", "--vault-password-file", str(password_file), str(vf))
    assert vf.read_text().startswith("$ANSIBLE_VAULT;")
    snippet = ansible_vault("encrypt_string", "--vault-password-file", str(password_file),
                            "--stdin-name", "api_key", stdin=inline)
    assert "!vault" in snippet and inline not in snippet
    inf = tmp_path / "inline.yml"
    inf.write_text("plain: hello\n" + snippet)
    return vf, inf


def _setup(tmp_path, monkeypatch):
    secrets = {n: "s3cr3t-%s-%s" % (n.lower(), uuid.uuid4().hex) for n in ("env", "file", "vault", "inline", "input")}
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WF_TEST_SECRET", secrets["env"])
    monkeypatch.setenv("WF_TEST_INPUT_SECRET", secrets["input"])
    pw = tmp_path / "vault-pass"
    pw.write_text("correct horse battery\n")
    monkeypatch.setenv("WF_VAULT_PASSWORD_FILE", str(pw))
    sf = tmp_path / "secret.txt"
    sf.write_text(secrets["file"] + "\n")
    vf, inf = _vault_files(tmp_path, pw, secrets["vault"], secrets["inline"])
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "app.yaml").write_text(MODEL.replace("@FILE@", str(sf)).replace("@VAULT@", str(vf))
                                     .replace("@INLINE@", str(inf)))
    (folder / "create.sh").write_text(CREATE)
    out = tmp_path / "out"
    out.mkdir()
    return secrets, folder, out


def _cli(capsys, db, *argv):
    capsys.readouterr()
    code = cli.main(["--space", db] + list(argv))
    got = capsys.readouterr()
    return code, got.out + got.err


def _assert_clean(blob: bytes, secrets, where: str):
    for name, value in secrets.items():
        assert value.encode() not in blob, "secret %s found in %s" % (name, where)


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
    expected = {"FROM_ENV": "env", "FROM_FILE": "file", "FROM_VAULT": "vault", "FROM_INLINE": "inline",
                "FROM_INPUT": "input", "FROM_PROP": "input"}
    for var, name in expected.items():
        assert (out / ("%s.sha" % var)).read_text().strip() == hashlib.sha256(secrets[name].encode()).hexdigest()

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
