"""What an upload puts into the Space (issue 18, item 2), read back from the raw bytes of the
embedded Space's SQLite files.

A model folder that is a checkout holds decoys nobody meant to deploy: ``credentials.env``, an SSH
key, a private key under an innocent name, a ``.pem`` holding a key, ``.git/``, an editor backup,
and ``sub/notes.txt`` that the model never names.  Uploading the model's YAML file (relative path,
``./`` path, absolute path) stores what the model names: itself and its imports (TOSCA 1.3 3.6.8),
its implementations and dependencies (3.6.15, a folder dependency whole), its artifacts (3.6.7);
uploading the folder or a CSAR of it (TOSCA 1.3 chapter 6: the archive's content is the model's)
stores it whole minus the ignore list.  File data is stored base64-encoded, so a decoy is looked
for both in clear and as base64 at the three byte alignments; the referenced files are found by
the same search, so a search that finds nothing is not a broken search.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from wfengine import api, catalog

from engine_helpers import embedded

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - types/app-types.yaml
topology_template:
  inputs:
    out_dir: {type: string}
  node_templates:
    srv: {type: tosca.nodes.Compute}
    app:
      type: my.App
      properties: {out_dir: {get_input: out_dir}}
      requirements: [{host: srv}]
      artifacts:
        conf: {type: tosca.artifacts.File, file: files/app.conf}
      interfaces:
        Standard:
          create:
            inputs:
              OUT: {get_property: [SELF, out_dir]}
              CONF: {get_artifact: [SELF, conf]}
"""

TYPES = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      out_dir: {type: string}
    interfaces:
      Standard:
        create:
          implementation:
            primary: ../scripts/create.sh
            dependencies: [../scripts/lib]
"""

CREATE = """\
set -e
. scripts/lib/helper.sh
{
  echo "helper=$(helper)"
  echo "conf=$(cat "$CONF")"
  echo "files=$(cd "$WF_MODEL_DIR" && find . -type f | sed 's|^\\./||' | sort | tr '\\n' ' ')"
} > "$OUT/seen.txt"
"""

# Unique strings: none of them may reach the Space (or the output) unless the row says it ships.
SECRETS = {
    "credentials.env": "DB_PASSWORD=decoy-env-7f3a9c1e5b2d4f6a8c0e",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\ndecoy-ssh-key-2b4d6f8a0c1e3a5c7e9b\n"
              "-----END OPENSSH PRIVATE KEY-----\n",
    "deploy_key": "-----BEGIN RSA PRIVATE KEY-----\ndecoy-rsa-key-9e8d7c6b5a4f3e2d1c0b\n"
                  "-----END RSA PRIVATE KEY-----\n",
    "server.pem": "-----BEGIN CERTIFICATE-----\ncert-part-0a1b2c3d\n-----END CERTIFICATE-----\n"
                  "-----BEGIN PRIVATE KEY-----\ndecoy-pem-key-5c6d7e8f9a0b1c2d3e4f\n-----END PRIVATE KEY-----\n",
    ".git/config": "[remote]\n  token = decoy-git-token-1a2b3c4d5e6f7a8b9c0d\n",
    "app.yaml~": "# decoy-backup-3c5e7a9b1d2f4a6c8e0b\n",
    "scripts/lib/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\ndecoy-dep-key-4d6f8a0c2e4b6d8f0a2c\n"
                              "-----END OPENSSH PRIVATE KEY-----\n",
}
NOTES = "decoy-notes-6e8a0c2e4a6c8e0a2c4e\n"          # sub/notes.txt: named by nothing, not ignore-listed
CERT = "-----BEGIN CERTIFICATE-----\npublic-cert-8b0d2f4a6c8e0b2d4f6a\n-----END CERTIFICATE-----\n"
REFERENCED = {
    "app.yaml": MODEL,
    "types/app-types.yaml": TYPES,
    "scripts/create.sh": CREATE,
    "scripts/lib/helper.sh": "helper() { echo from-helper-0f1e2d3c4b5a; }\n",
    "files/app.conf": "listen=8080 conf-3b5d7f9a1c3e5a7c\n",
}
LEFT_OUT = [".git/", "app.yaml~", "credentials.env", "deploy_key", "id_rsa", "scripts/lib/id_ed25519",
            "server.pem"]


def _model_folder(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    files = dict(REFERENCED, **SECRETS)
    files["sub/notes.txt"] = NOTES
    files["ca.pem"] = CERT
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _forms(text: str) -> List[bytes]:
    """``text`` in clear and as it reads inside base64 at each of the three byte alignments (the
    groups it fills alone; the first and last, shared with neighbouring bytes, are dropped)."""
    raw = text.encode("utf-8")
    assert len(raw) >= 16, "too short to be told apart inside base64: %r" % text
    return [raw] + [base64.b64encode(b"\0" * pad + raw)[4:-4] for pad in range(3)]


def _found(blob: bytes, text: str) -> bool:
    return any(form in blob for form in _forms(text))


def _space_bytes(db: Path) -> bytes:
    """Every byte of the embedded Space: the database, its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def _secret_parts() -> Dict[str, str]:
    """The unique line of each decoy (the part no other file shares)."""
    return {rel: next(line for line in text.splitlines() if "decoy-" in line) for rel, text in SECRETS.items()}


def _upload(tmp_path: Path, source: str, label: str) -> Dict:
    db = tmp_path / ("space-%s.db" % label)
    space = api.open_space(api.SpaceOptions(backend="embedded", path=str(db)))
    try:
        result = api.upload_model(space, source, "m")
    finally:
        space.close()
    result["blob"] = _space_bytes(db)
    return result


def _csar(root: Path, tmp_path: Path) -> Path:
    archive = tmp_path / "app.csar"
    with zipfile.ZipFile(archive, "w") as zf:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, root))
    return archive


@pytest.mark.parametrize("form", ["relative", "dot-relative", "absolute"])
def test_a_yaml_file_stores_only_what_the_model_names_whatever_the_path_form(tmp_path, monkeypatch, form):
    """The bug of issue 18: ``wfctl model app.yaml m`` (relative) stored the whole folder."""
    root = _model_folder(tmp_path)
    if form == "relative":
        monkeypatch.chdir(root)
        source = "app.yaml"
    elif form == "dot-relative":
        monkeypatch.chdir(tmp_path)
        source = "./app/../app/app.yaml"
    else:
        monkeypatch.chdir(tmp_path / "app" / "sub")
        source = str(root / "app.yaml")
    r = _upload(tmp_path, source, form)
    assert r["files"] == sorted(REFERENCED), r["files"]
    assert r["left_out"] == ["scripts/lib/id_ed25519"]     # inside the folder dependency
    blob = r["blob"]
    for rel, text in REFERENCED.items():
        assert _found(blob, text.splitlines()[-1]), rel
    for rel, part in _secret_parts().items():
        assert not _found(blob, part), "%s leaked into the Space" % rel
    for name in ("credentials.env", "id_rsa", "deploy_key", "server.pem", "id_ed25519", "app.yaml~"):
        assert name.encode() not in blob, name     # not even listed (paths are stored in clear)
    assert not _found(blob, NOTES.strip()) and b"notes.txt" not in blob
    assert not _found(blob, "public-cert-8b0d2f4a6c8e0b2d4f6a")


def test_every_path_form_of_one_file_is_the_same_model_version(tmp_path, monkeypatch):
    root = _model_folder(tmp_path)
    absolute = catalog.compile_model(str(root / "app.yaml"), libs=[])["digest"]
    monkeypatch.chdir(root)
    assert catalog.compile_model("app.yaml", libs=[])["digest"] == absolute
    monkeypatch.chdir(root / "sub")
    assert catalog.compile_model("../app.yaml", libs=[])["digest"] == absolute


@pytest.mark.parametrize("form", ["folder", "csar"])
def test_a_folder_or_csar_stores_its_content_minus_the_ignore_list(tmp_path, form):
    """A folder or a CSAR is the model's declared content: sub/notes.txt and a certificate ship
    (a script may read files no TOSCA keyname names); hidden entries, ``.env`` files, private keys
    (by name or content), backups do not."""
    root = _model_folder(tmp_path)
    source = str(root) if form == "folder" else str(_csar(root, tmp_path))
    r = _upload(tmp_path, source, form)
    assert r["files"] == sorted(list(REFERENCED) + ["ca.pem", "sub/notes.txt"])
    assert r["left_out"] == LEFT_OUT
    blob = r["blob"]
    for rel, text in REFERENCED.items():
        assert _found(blob, text.splitlines()[-1]), rel
    assert _found(blob, NOTES.strip()) and _found(blob, "public-cert-8b0d2f4a6c8e0b2d4f6a")
    for rel, part in _secret_parts().items():
        assert not _found(blob, part), "%s leaked into the Space" % rel


def test_the_operation_finds_every_file_it_uses_and_no_other(tmp_path, monkeypatch):
    """Uploaded by a relative path, the model still runs: the script sources its dependency and
    reads its artifact; the worker's copy of the model holds exactly the stored files."""
    root = _model_folder(tmp_path)
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    out = tmp_path / "out"
    out.mkdir()
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, "app.yaml", "m")
        api.create_instance(space, "m", "i", inputs={"out_dir": str(out)})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=120)
        assert rec["status"] == "succeeded", rec
    finally:
        space.close()
    seen = dict(line.split("=", 1) for line in (out / "seen.txt").read_text().splitlines())
    assert seen["helper"] == "from-helper-0f1e2d3c4b5a"
    assert seen["conf"] == REFERENCED["files/app.conf"].strip()
    assert seen["files"].split() == sorted(REFERENCED)


def test_a_secret_like_file_the_model_names_ships_with_a_warning(tmp_path):
    """An artifact the model names is shipped even when it looks like a key (the operation needs
    it), and the upload says it is now readable in the Space."""
    root = tmp_path / "m"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "id_rsa").write_text(SECRETS["id_rsa"])
    (root / "app.yaml").write_text("""\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    a:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: s}]
      artifacts:
        key: {type: tosca.artifacts.File, file: keys/id_rsa}
    s: {type: tosca.nodes.Compute}
""")
    for source in (str(root / "app.yaml"), str(root)):
        compiled = catalog.compile_model(source, libs=[])
        assert [f.path for f in compiled["files"]] == ["app.yaml", "keys/id_rsa"]
        assert [w for w in compiled["warnings"] if w.startswith(
            "keys/id_rsa: looks like an SSH key; stored in the Space because the model names it")], \
            compiled["warnings"]


def _wfctl(args: List[str], space: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WF_SPACE=str(space))
    for k in ("WF_PREFIX", "WF_BACKEND"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "wfengine.cli"] + args, env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120, check=False)


def test_wfctl_model_prints_what_it_stored_and_what_it_left_out(tmp_path):
    """One line per list by default (the first ten names), one line per file with -v; no decoy's
    content is ever printed."""
    root = _model_folder(tmp_path)
    r = _wfctl(["model", "app.yaml", "m"], tmp_path / "space.db", root)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("model m: uploaded (2 templates")
    assert lines[1] == "files stored (5): " + ", ".join(sorted(REFERENCED))
    assert lines[2] == "left out by the ignore list (1): scripts/lib/id_ed25519"
    assert len(lines) == 3
    r = _wfctl(["-v", "model", str(root), "m2"], tmp_path / "space.db", tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    stored = sorted(list(REFERENCED) + ["ca.pem", "sub/notes.txt"])
    assert lines[1:2 + len(stored)] == ["files stored (%d):" % len(stored)] + ["  " + p for p in stored]
    assert lines[2 + len(stored):] == ["left out by the ignore list (%d):" % len(LEFT_OUT)] + ["  " + p for p in LEFT_OUT]
    for part in _secret_parts().values():
        assert part not in r.stdout + r.stderr


def test_a_long_list_is_cut_after_ten_names(tmp_path):
    root = tmp_path / "many"
    (root / "data").mkdir(parents=True)
    (root / "app.yaml").write_text("tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n"
                                   "  node_templates:\n    s: {type: tosca.nodes.Compute}\n")
    for i in range(12):
        (root / "data" / ("f%02d.txt" % i)).write_text(str(i))
    r = _wfctl(["model", str(root), "m"], tmp_path / "space.db", tmp_path)
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[1]
    assert line == "files stored (13): app.yaml, %s and 3 more (-v lists them)" % ", ".join(
        "data/f%02d.txt" % i for i in range(9))
