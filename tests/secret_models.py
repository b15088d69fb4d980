"""The model of the secrets tests (issue 18 item 1), shared by the embedded and the Consul test:
an operation that receives unique secrets from every ``get_secret`` source and a sensitive input,
writes their sha256 where the test reads them, and echoes them to stdout, stderr and outputs."""
import hashlib
import uuid

import yaml

from engine_helpers import ansible_vault

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


def vault_files(tmp_path, password_file, whole: str, inline: str):
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


def prepare(tmp_path):
    """(unique secrets by source, model folder, output folder, the worker's environment)."""
    secrets = {n: "s3cr3t-%s-%s" % (n.lower(), uuid.uuid4().hex) for n in ("env", "file", "vault", "inline", "input")}
    pw = tmp_path / "vault-pass"
    pw.write_text("correct horse battery\n")
    env = {"WF_CACHE_DIR": str(tmp_path / "cache"), "WF_TEST_SECRET": secrets["env"],
           "WF_TEST_INPUT_SECRET": secrets["input"], "WF_VAULT_PASSWORD_FILE": str(pw)}
    sf = tmp_path / "secret.txt"
    sf.write_text(secrets["file"] + "\n")
    vf, inf = vault_files(tmp_path, pw, secrets["vault"], secrets["inline"])
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "app.yaml").write_text(MODEL.replace("@FILE@", str(sf)).replace("@VAULT@", str(vf))
                                     .replace("@INLINE@", str(inf)))
    (folder / "create.sh").write_text(CREATE)
    out = tmp_path / "out"
    out.mkdir()
    return secrets, folder, out, env


# The operation's sha256 of each value, and the secret it must match.
EXPECTED = {"FROM_ENV": "env", "FROM_FILE": "file", "FROM_VAULT": "vault", "FROM_INLINE": "inline",
            "FROM_INPUT": "input", "FROM_PROP": "input"}


def assert_received(out, secrets) -> None:
    for var, name in EXPECTED.items():
        assert (out / ("%s.sha" % var)).read_text().strip() == hashlib.sha256(secrets[name].encode()).hexdigest()


def assert_clean(blob: bytes, secrets, where: str) -> None:
    for name, value in secrets.items():
        assert value.encode() not in blob, "secret %s found in %s" % (name, where)
