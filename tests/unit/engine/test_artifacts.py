"""A model's files through a real embedded Space (chunks, modes, concurrency), and model sources:
YAML file, folder, CSAR zip with TOSCA.meta, unsafe archives refused."""
import hashlib
import os
import stat
import threading
import zipfile

import pytest

from wfengine.operation import artifacts
from wfengine.operation.artifacts import ArtifactError, collect, manifest, materialize, store_ops
from wfengine.errors import SpaceDataError, ToscaError
from wfengine.space import open_space, op_set
from wfengine.space.base import dumps
from wfengine.tosca.csar import model_source, open_model_source
from wfengine.tosca.templates import load_model

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    a:
      type: tosca.nodes.SoftwareComponent
      interfaces:
        Standard: {create: scripts/create.sh}
"""


def _tree(root):
    (root / "scripts").mkdir(parents=True)
    (root / "app.yaml").write_text(MODEL)
    script = root / "scripts" / "create.sh"
    script.write_text("#!/bin/bash\necho created\n")
    script.chmod(0o755)
    # > 256 KiB and not a multiple of the chunk size: three chunks
    big = bytes((i * 7 + i // 1000) % 256 for i in range(2 * artifacts.CHUNK_BYTES + 12345))
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(big)
    (root / "data" / "my file (1).txt").write_text("spaces and parens\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("secret")
    (root / ".hidden").write_text("x")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return big


@pytest.fixture
def space(tmp_path):
    s = open_space("embedded", path=str(tmp_path / "space.db"))
    yield s
    s.close()


def test_collect_skips_hidden_and_caches(tmp_path):
    root = tmp_path / "model"
    _tree(root)
    files = collect(str(root), str(root / "app.yaml"))
    assert [f.path for f in files] == ["app.yaml", "data/big.bin", "data/my file (1).txt", "scripts/create.sh"]
    modes = {f.path: f.mode for f in files}
    assert modes["scripts/create.sh"] == 0o755 and modes["app.yaml"] == 0o644


def test_collect_refuses_too_much_and_outside_links(tmp_path):
    root = tmp_path / "model"
    _tree(root)
    with pytest.raises(ArtifactError, match="more than 0 MiB"):
        collect(str(root), max_total=1000)
    (tmp_path / "elsewhere.txt").write_text("x")
    os.symlink(str(tmp_path / "elsewhere.txt"), str(root / "link.txt"))
    with pytest.raises(ArtifactError, match="outside the model's folder"):
        collect(str(root))
    os.unlink(str(root / "link.txt"))
    with pytest.raises(ArtifactError, match="not inside"):
        collect(str(root), str(tmp_path / "elsewhere.txt"))


def test_round_trip_through_the_space(tmp_path, space):
    root = tmp_path / "model"
    big = _tree(root)
    files = collect(str(root), str(root / "app.yaml"))
    ops = store_ops("m", "abc123", files)
    # every value fits Consul's limit, the big file is in 3 chunks
    assert all(len(dumps(o.value)) < 512 * 1024 for o in ops)
    assert len([o for o in ops if "/files/data/big.bin/" in o.key]) == 3
    assert any(o.key.endswith("/files/data/my~20file~20~281~29.txt/000000") for o in ops)
    space.write_chunked(ops)

    cache = tmp_path / "cache"
    path = materialize(space, "m", "abc123", str(cache))
    assert path == str(cache / "m" / "abc123")
    assert (cache / "m" / "abc123" / "data" / "big.bin").read_bytes() == big
    assert (cache / "m" / "abc123" / "data" / "my file (1).txt").read_text() == "spaces and parens\n"
    script = cache / "m" / "abc123" / "scripts" / "create.sh"
    assert os.stat(str(script)).st_mode & stat.S_IXUSR
    assert not os.stat(str(cache / "m" / "abc123" / "app.yaml")).st_mode & stat.S_IXUSR
    assert not (cache / "m" / "abc123" / ".git").exists()
    # the materialized model loads as the original
    assert load_model(str(cache / "m" / "abc123" / "app.yaml"), []).templates["a"].interfaces
    # a second call finds the folder and reads nothing
    space.delete_tree("models/")
    assert materialize(space, "m", "abc123", str(cache)) == path


def test_concurrent_materialize(tmp_path, space):
    root = tmp_path / "model"
    big = _tree(root)
    space.write_chunked(store_ops("m", "d1", collect(str(root))))
    cache = str(tmp_path / "cache")
    results, errors = [], []

    def go():
        try:
            results.append(materialize(space, "m", "d1", cache))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=go) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert os.listdir(os.path.join(cache, "m")) == ["d1"]      # no temporary folder left
    with open(os.path.join(results[0], "data", "big.bin"), "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(big).hexdigest()


def test_materialize_refuses_corrupt_or_missing_data(tmp_path, space):
    root = tmp_path / "model"
    _tree(root)
    files = collect(str(root))
    ops = store_ops("m", "d2", files)
    space.write_chunked(ops)
    # replace one chunk of big.bin by other bytes with the same declared sha256
    victim = [o for o in ops if "/files/data/big.bin/000001" in o.key][0]
    forged = dict(victim.value, data=artifacts.base64.b64encode(b"x" * 10).decode())
    space.txn([op_set(victim.key, forged)])
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        materialize(space, "m", "d2", str(tmp_path / "cache"))
    assert os.listdir(str(tmp_path / "cache" / "m")) == []      # temporary folder removed
    space.delete(victim.key)
    with pytest.raises(ArtifactError, match="chunk 1 of data/big.bin is missing"):
        materialize(space, "m", "d2", str(tmp_path / "cache"))
    with pytest.raises(ArtifactError, match="upload the model again"):
        materialize(space, "m", "nothing", str(tmp_path / "cache"))


def test_materialize_refuses_traversal_in_stored_paths(tmp_path, space):
    space.put(artifacts.filelist_key("m", "evil"),
              {"files": {"../../escape.sh": {"sha256": "0" * 64, "chunks": 1, "mode": 0o755, "size": 1}}})
    with pytest.raises(SpaceDataError, match="bad file path"):
        materialize(space, "m", "evil", str(tmp_path / "cache"))
    assert not (tmp_path / "escape.sh").exists()


def test_manifest_changes_with_content(tmp_path):
    root = tmp_path / "model"
    _tree(root)
    before = manifest(collect(str(root)))
    (root / "scripts" / "create.sh").write_text("#!/bin/bash\necho changed\n")
    after = manifest(collect(str(root)))
    assert before["scripts/create.sh"]["sha256"] != after["scripts/create.sh"]["sha256"]
    assert before["data/big.bin"]["chunks"] == 3


# ------------------------------------------------------------------ model sources
def test_yaml_file_source(tmp_path):
    (tmp_path / "app.yaml").write_text(MODEL)
    entry, root, cleanup = open_model_source(str(tmp_path / "app.yaml"))
    assert entry == str(tmp_path / "app.yaml") and root == str(tmp_path)
    cleanup()
    assert (tmp_path / "app.yaml").exists()


def test_folder_sources(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "app.yml").write_text(MODEL)
    (one / "README.md").write_text("x")
    assert open_model_source(str(one))[:2] == (str(one / "app.yml"), str(one))

    two = tmp_path / "two"
    two.mkdir()
    (two / "a.yaml").write_text(MODEL)
    (two / "b.yaml").write_text(MODEL)
    with pytest.raises(ToscaError, match="several top-level YAML files"):
        open_model_source(str(two))
    (two / "TOSCA-Metadata").mkdir()
    (two / "TOSCA-Metadata" / "TOSCA.meta").write_text(
        "TOSCA-Meta-File-Version: 1.1\nCSAR-Version: 1.1\nCreated-By: me\nEntry-Definitions: b.yaml\n")
    assert open_model_source(str(two))[0] == str(two / "b.yaml")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ToscaError, match="no TOSCA-Metadata/TOSCA.meta and no top-level"):
        open_model_source(str(empty))
    with pytest.raises(ToscaError, match="not found"):
        open_model_source(str(tmp_path / "nope"))


def _zip(path, members, links=()):
    with zipfile.ZipFile(str(path), "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)


def test_csar_with_meta(tmp_path):
    archive = tmp_path / "app.csar"
    _zip(archive, [
        ("TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.1\nCSAR-Version: 1.1\nCreated-By: t\n"
                                      "Entry-Definitions: Definitions/app.yaml\n", 0o644),
        ("Definitions/app.yaml", MODEL.replace("scripts/create.sh", "../scripts/create.sh"), 0o644),
        ("scripts/create.sh", "#!/bin/bash\necho hi\n", 0o755),
    ])
    with model_source(str(archive)) as (entry, root):
        assert entry == os.path.join(root, "Definitions", "app.yaml")
        assert os.stat(os.path.join(root, "scripts", "create.sh")).st_mode & stat.S_IXUSR
        assert not os.stat(entry).st_mode & stat.S_IXUSR
        assert [f.path for f in collect(root, entry)] == ["Definitions/app.yaml", "TOSCA-Metadata/TOSCA.meta",
                                                          "scripts/create.sh"]
        kept = root
    assert not os.path.exists(kept)      # cleanup removed the extraction


def test_zip_with_single_top_level_yaml(tmp_path):
    archive = tmp_path / "app.zip"
    _zip(archive, [("app.yaml", MODEL, 0o644), ("scripts/create.sh", "echo\n", 0o755)])
    entry, root, cleanup = open_model_source(str(archive))
    try:
        assert entry == os.path.join(root, "app.yaml")
    finally:
        cleanup()


@pytest.mark.parametrize("name", ["../evil.sh", "/abs/evil.sh", "a/../../evil.sh", "a\\..\\evil.sh", "C:/x"])
def test_traversal_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    _zip(archive, [("app.yaml", MODEL, 0o644), (name, "touch /tmp/pwned\n", 0o755)])
    with pytest.raises(ToscaError, match="unsafe member name"):
        open_model_source(str(archive))
    assert not (tmp_path / "evil.sh").exists()


def test_links_and_bad_archives_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    _zip(archive, [("app.yaml", MODEL, 0o644)], links=[("scripts/create.sh", "/etc/passwd")])
    with pytest.raises(ToscaError, match="symbolic link"):
        open_model_source(str(archive))
    dup = tmp_path / "dup.zip"
    with zipfile.ZipFile(str(dup), "w") as zf:
        zf.writestr("app.yaml", MODEL)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("app.yaml", "other")
    with pytest.raises(ToscaError, match="appears twice"):
        open_model_source(str(dup))
    fake = tmp_path / "fake.csar"
    fake.write_text("not a zip")
    with pytest.raises(ToscaError, match="not a zip archive"):
        open_model_source(str(fake))
    bad_meta = tmp_path / "meta.zip"
    _zip(bad_meta, [("TOSCA-Metadata/TOSCA.meta", "Entry-Definitions: ../x.yaml\n", 0o644)])
    with pytest.raises(ToscaError, match="inside the archive"):
        open_model_source(str(bad_meta))


def test_zip_bomb_stops_at_the_cap(tmp_path):
    from wfengine.tosca import csar
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(str(archive), "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.yaml", MODEL)
        zf.writestr("zeros.bin", b"\0" * (2 * 1024 * 1024))
    with pytest.raises(ToscaError, match="more than 1 MiB once extracted"):
        csar.extract(str(archive), str(tmp_path / "out"), max_bytes=1024 * 1024)
