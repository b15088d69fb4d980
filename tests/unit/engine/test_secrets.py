"""Secrets and the environment of operations (issue 18 items 1 and 5), with real processes.

* ``get_secret`` sources read on the worker (env, file, ansible-vault files made with
  ansible-core's vault library, the one ``ansible-vault`` uses);
* the Redactor masks every occurrence, also across the chunks of a streamed log file;
* an operation input named BASH_ENV (bash sources that file before the script) is refused at
  upload; a spec stored before that rule is refused by the executor: the marker file that the
  BASH_ENV file would create never appears.
"""
import os
import textwrap

import pytest
import yaml

from wfengine import secrets
from wfengine.operation.function_contexts import DictContext
from wfengine.operation.function_eval import evaluate
from wfengine.operation.playbook import find_ansible_playbook
from wfengine.operation.process_executor import EXIT_NOT_RUN, ProcessExecutor

from engine_helpers import ansible_vault
from test_runner import CREATE, Resolver, call, script, spec


@pytest.fixture
def model(tmp_path):
    d = tmp_path / "model"
    (d / "scripts").mkdir(parents=True)
    return d


def test_env_and_file_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SECRET", "from-env")
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    r = secrets.SecretResolver()
    assert r.resolve(["env", "MY_SECRET"]) == "from-env"
    assert r.resolve(["file", str(f)]) == "from-file"      # one trailing newline removed
    assert r.redactor().text("a from-env b from-file") == "a ******** b ********"
    with pytest.raises(secrets.SecretError, match=r"the worker's environment has no NOPE_X"):
        r.resolve(["env", "NOPE_X"])
    with pytest.raises(secrets.SecretError, match=r"is not a regular file on the worker"):
        r.resolve(["file", str(tmp_path / "missing")])


def test_shapes_are_checked_without_reading():
    assert secrets.check_args(["env", "X"]) is None
    assert "unknown source 'vault'" in secrets.check_args(["vault", "x"])
    assert "PATH absolute" in secrets.check_args(["file", "rel"])
    assert "[ansible_vault, FILE, KEY]" in secrets.check_args(["ansible_vault", "/f"])
    assert "expected" in secrets.check_args("env")


def test_ansible_vault_whole_file_and_encrypt_string(tmp_path, monkeypatch):
    """Files made by ``ansible-vault encrypt`` and ``encrypt_string``, read back; a wrong
    password fails without the value in the message."""
    pw = tmp_path / "pass"
    pw.write_text("pw1\n")
    whole = tmp_path / "whole.yml"
    whole.write_text(yaml.safe_dump({"k": "whole-value"}))
    ansible_vault("encrypt", "--vault-password-file", str(pw), str(whole))
    inline = tmp_path / "inline.yml"
    inline.write_text(ansible_vault("encrypt_string", "--vault-password-file", str(pw), "--stdin-name", "k",
                                    stdin="inline-value"))
    monkeypatch.setattr(secrets, "_settings", {"vault_password_file": str(pw)})
    r = secrets.SecretResolver()
    assert r.resolve(["ansible_vault", str(whole), "k"]) == "whole-value"
    assert r.resolve(["ansible_vault", str(inline), "k"]) == "inline-value"
    with pytest.raises(secrets.SecretError, match="no key nope"):
        r.resolve(["ansible_vault", str(whole), "nope"])
    pw.write_text("wrong\n")
    for f in (whole, inline):
        with pytest.raises(secrets.SecretError, match="cannot decrypt") as exc:
            r.resolve(["ansible_vault", str(f), "k"])
        assert "value" not in str(exc.value).split("]", 1)[1]
    import sys
    assert "ansible.parsing.vault" not in sys.modules     # decrypted in a child process


def test_without_a_resolver_a_secret_is_masked_never_read(monkeypatch):
    """Topology outputs are computed where ``wfctl status`` runs: no secret is read there."""
    monkeypatch.setenv("MY_SECRET", "never-read")
    ctx = DictContext({}, inputs={"pw": {"get_secret": ["env", "MY_SECRET"]}})
    assert evaluate({"concat": ["x", {"get_input": "pw"}]}, ctx) == "x********"


def test_redactor_streams_a_file_with_secrets_across_chunks(tmp_path):
    secret = "S" * 10 + "-tail"
    red = secrets.Redactor([secret, "short"])
    src = tmp_path / "src"
    # The secret straddles the 1 MiB chunk boundary.
    data = b"a" * ((1 << 20) - 4) + secret.encode() + b" short end"
    src.write_bytes(data)
    red.scrub_file(str(src))
    assert src.read_bytes() == b"a" * ((1 << 20) - 4) + b"******** ******** end"


def test_redactor_masks_values_keys_and_json_escaped_forms():
    red = secrets.Redactor(list(secrets._variants('p"w\n')))
    assert red.value({"a": ['x p"w\n y', {'k p\\"w\\n': 1}]}) == {"a": ["x ******** y", {"k ********": 1}]}


def test_an_operation_echoing_its_secret_returns_and_logs_only_the_mask(tmp_path, model, monkeypatch):
    monkeypatch.setenv("MY_SECRET", "zz-unique-secret-zz")
    p = script(model, "create.sh", 'echo "out $PW"; echo "err $PW" >&2; echo "tok=$PW" >> "$WF_OUTPUTS"\n')
    ex = ProcessExecutor(Resolver(model, {CREATE: spec(p, {"PW": {"get_secret": ["env", "MY_SECRET"]}})}),
                         log_dir=str(tmp_path / "logs"))
    res = ex.run(call())
    assert res.ok, res.output
    assert "out ********" in res.output and "err ********" in res.output
    assert res.attributes["tok"] == "********"
    with open(res.details["log_file"], "rb") as fh:
        assert b"zz-unique-secret-zz" not in fh.read()
    assert "zz-unique-secret-zz" not in repr(res)


def test_a_sensitive_operation_input_is_masked_like_a_secret(tmp_path, model):
    """``sensitive: true`` on an operation input definition: its value, whatever gives it."""
    p = script(model, "create.sh", 'echo "got $PW"\n')
    s = spec(p, {"PW": "plain-but-sensitive-value"}, sensitive=["PW"])
    res = ProcessExecutor(Resolver(model, {CREATE: s}), log_dir=str(tmp_path / "logs")).run(call())
    assert res.ok and "got ********" in res.output


def test_a_playbook_printing_its_secret_is_masked(tmp_path, model, monkeypatch):
    monkeypatch.setenv("MY_SECRET", "pb-unique-secret")
    (model / "play.yml").write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - debug: {msg: "value {{ pw }}"}
        """))
    ex = ProcessExecutor(Resolver(model, {CREATE: spec("play.yml", {"pw": {"get_secret": ["env", "MY_SECRET"]}})}),
                         log_dir=str(tmp_path / "logs"))
    assert find_ansible_playbook()
    res = ex.run(call())
    assert res.ok, res.output
    assert "value ********" in res.output and "pb-unique-secret" not in res.output


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "PATH", "LD_PRELOAD", "PYTHONPATH", "IFS", "SHELLOPTS",
                                  "BASHOPTS", "PS4", "ansible_ssh_common_args", "ANSIBLE_CONFIG"])
def test_inputs_that_steer_the_shell_or_loader_are_named(name):
    assert secrets.forbidden_env_name(name)


@pytest.mark.parametrize("name", ["port", "DB_PATH", "MY_ENV", "path", "home_dir"])
def test_ordinary_inputs_are_allowed(name):
    assert secrets.forbidden_env_name(name) is None


def test_a_stored_spec_with_bash_env_is_not_run_and_the_marker_never_appears(tmp_path, model):
    """A spec compiled before the upload rule: the executor refuses it."""
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.sh"
    evil.write_text("touch %s\n" % marker)
    p = script(model, "create.sh", "true\n")
    res = ProcessExecutor(Resolver(model, {CREATE: spec(p, {"BASH_ENV": str(evil)})}),
                          log_dir=str(tmp_path / "logs")).run(call())
    assert not res.ok and res.exit_code == EXIT_NOT_RUN
    assert "input BASH_ENV: not passed to the operation: BASH_ENV steers the shell" in res.output
    assert not os.path.exists(str(marker))


def test_bash_env_input_is_refused_at_upload_and_the_marker_never_appears(tmp_path, monkeypatch):
    """The same model through the upload: one line naming the operation and the input."""
    from wfengine import api, keys
    from wfengine.errors import ToscaError
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.sh"
    evil.write_text("touch %s\n" % marker)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "c.sh").write_text("true\n")
    (folder / "m.yaml").write_text(textwrap.dedent("""\
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            a:
              type: tosca.nodes.Compute
              interfaces:
                Standard:
                  create:
                    implementation: c.sh
                    inputs: {BASH_ENV: %s}
        """ % evil))
    space = api.open_space(api.SpaceOptions(backend="embedded", path=str(tmp_path / "s.db")))
    try:
        with pytest.raises(ToscaError) as exc:
            api.upload_model(space, str(folder), "m")
        assert space.get(keys.model_head("m")) is None
    finally:
        space.close()
    line = exc.value.line()
    assert "\n" not in line and "operation Standard.create" in line and "input BASH_ENV: refused" in line
    assert not marker.exists()
