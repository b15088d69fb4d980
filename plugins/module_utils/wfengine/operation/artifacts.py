# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A model's files (scripts, playbooks, templates) in the Space, so any worker on any host runs them.

An upload of a folder or a CSAR ships every file under it (not only the referenced ones: scripts
source helpers, playbooks include tasks and templates that TOSCA never names) but what the ignore
list leaves out (ignore.py: hidden entries, version control, ``.env`` files, private keys, backups,
caches); an upload of a single YAML file ships only what the model names (catalog.py).  Both are
capped at ``MAX_TOTAL_BYTES``.  Files are cut into chunks of at most
``CHUNK_BYTES`` raw bytes because Consul refuses values above 512 KiB (base64 adds a third)::

    models/<m>/v/<digest>/filelist                   {"files": {relpath: {sha256, size, mode, chunks}}}
    models/<m>/v/<digest>/files/<key path>/<chunk>   {"sha256", "mode", "data": base64, "chunk", "chunks"}

They are written with the model's version folder, before its head points at it, so a worker never
sees half the files.  A worker materializes a version once per host into
``<cache_dir>/<model>/<digest>/``: written to a temporary folder, each file checked against its
sha256, then renamed into place, so concurrent threads or processes either find the complete folder
or build their own copy and lose the rename race harmlessly.  The digest names the content, so a
materialized folder never changes.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import tempfile
from typing import Any, Dict, List, NamedTuple, Optional

from .. import keys
from ..errors import SpaceDataError, WfError
from ..ignore import ignored_dir, ignored_reason
from ..space.base import Op, Space, op_set

CHUNK_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 50 * 1024 * 1024
MAX_FILES = 10000


class ArtifactError(WfError):
    """A model's files cannot be collected, stored or materialized."""


class ModelFile(NamedTuple):
    path: str     # relative to the model's root, POSIX separators
    data: bytes
    mode: int     # 0o755 when executable by its owner, else 0o644


def filelist_key(model: str, digest: str) -> str:
    return keys.model_version(model, digest) + "filelist"


def files_prefix(model: str, digest: str) -> str:
    return keys.model_version(model, digest) + "files/"


# Keys go into Consul URLs unquoted: keep each path segment to a safe alphabet, escape the rest.
_SAFE = re.compile(r"[A-Za-z0-9._-]")


def key_path(relpath: str) -> str:
    """A relative path as key segments: ``scripts/my file.sh`` -> ``scripts/my~20file.sh``."""
    return "/".join("".join(c if _SAFE.match(c) else "".join("~%02x" % b for b in c.encode("utf-8"))
                            for c in seg) for seg in relpath.split("/"))


def check_relpath(relpath: Any, where: str = "file") -> str:
    """Refuse any stored path that could write outside the materialized folder."""
    if not isinstance(relpath, str) or not relpath or relpath.startswith("/") or "\\" in relpath \
            or "\x00" in relpath:
        raise SpaceDataError("%s: bad file path %r" % (where, relpath))
    parts = relpath.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SpaceDataError("%s: bad file path %r" % (where, relpath))
    return relpath


# ------------------------------------------------------------------ upload side
def collect(root_dir: str, entry_file: Optional[str] = None, max_total: int = MAX_TOTAL_BYTES,
            left_out: Optional[List[str]] = None) -> List[ModelFile]:
    """Every file under ``root_dir`` but what the ignore list (ignore.py) leaves out, sorted by
    path.  Symbolic links are followed only when they stay inside the root.  ``entry_file`` (the
    model file) must be one of them.  What is left out is appended to ``left_out`` (folders once,
    with a trailing ``/``), so the upload can say it: a user who finds a file missing on the
    worker must be able to tell why."""
    root = os.path.realpath(root_dir)
    if not os.path.isdir(root):
        raise ArtifactError("%s: not a folder" % root_dir)
    out: List[ModelFile] = []
    skipped: List[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = _walked_dirs(root, root_dir, dirpath, dirnames, skipped)
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            real = os.path.realpath(full)
            # A link is judged by its own name and by its target's: ``app.conf -> .env`` stays out.
            if ignored_reason(f) or ignored_reason(os.path.basename(real)):
                skipped.append(rel)
                continue
            if not real.startswith(root + os.sep):
                raise ArtifactError("%s: link to %s, outside the model's folder %s" % (full, real, root_dir))
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                continue
            with open(real, "rb") as fh:
                data = fh.read(max_total - total + 1)
            if ignored_reason(f, data):      # a private key under an innocent name
                skipped.append(rel)
                continue
            total += len(data)
            if total > max_total:
                raise ArtifactError("%s: the model's folder holds more than %d MiB of files; put the model "
                                    "and its scripts in a folder of their own" % (root_dir, max_total // (1 << 20)))
            if len(out) >= MAX_FILES:
                raise ArtifactError("%s: more than %d files in the model's folder; put the model and its "
                                    "scripts in a folder of their own" % (root_dir, MAX_FILES))
            out.append(ModelFile(rel, data, 0o755 if st.st_mode & stat.S_IXUSR else 0o644))
    if entry_file is not None:
        rel = os.path.relpath(os.path.realpath(entry_file), root).replace(os.sep, "/")
        if rel.startswith("../") or not any(f.path == rel for f in out):
            raise ArtifactError("%s: the model file is not inside %s (or is left out by the ignore list: hidden, "
                                "backup, secret-like)" % (entry_file, root_dir))
    out.sort(key=lambda f: f.path)
    if left_out is not None:
        left_out.extend(sorted(skipped))
    return out


def _walked_dirs(root: str, root_dir: str, dirpath: str, dirnames: List[str],
                 skipped: List[str]) -> List[str]:
    """The sub-folders of ``dirpath`` that ``collect`` walks into, sorted; those the ignore list
    leaves out go to ``skipped``."""
    keep = []
    for d in sorted(dirnames):
        full = os.path.join(dirpath, d)
        if ignored_dir(d):
            skipped.append(os.path.relpath(full, root).replace(os.sep, "/") + "/")
            continue
        if os.path.islink(full):
            real = os.path.realpath(full)
            if not (real + os.sep).startswith(root + os.sep):
                raise ArtifactError("%s: link to %s, outside the model's folder %s"
                                    % (full, real, root_dir))
            # A link inside the root points at files that are shipped anyway.
            continue
        keep.append(d)
    return keep


def manifest(files: List[ModelFile]) -> Dict[str, Dict[str, Any]]:
    """{relpath: {sha256, size, mode, chunks}}: put it in what the model digest covers, so a
    changed script makes a new model version (and a new materialized folder)."""
    return {f.path: {"sha256": hashlib.sha256(f.data).hexdigest(), "size": len(f.data), "mode": f.mode,
                     "chunks": max(1, -(-len(f.data) // CHUNK_BYTES))} for f in files}


def store_ops(model: str, digest: str, files: List[ModelFile]) -> List[Op]:
    """The writes that store ``files`` with version ``digest`` of ``model`` (for write_chunked)."""
    man = manifest(files)
    ops = [op_set(filelist_key(model, digest), {"files": man})]
    prefix = files_prefix(model, digest)
    for f in files:
        check_relpath(f.path)
        m = man[f.path]
        for i in range(m["chunks"]):
            raw = f.data[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]
            ops.append(op_set("%s%s/%06d" % (prefix, key_path(f.path), i),
                              {"sha256": m["sha256"], "mode": f.mode, "chunk": i, "chunks": m["chunks"],
                               "path": f.path, "data": base64.b64encode(raw).decode("ascii")}))
    return ops


# ------------------------------------------------------------------ worker side
def _read_filelist(space: Space, model: str, digest: str) -> Dict[str, Dict[str, Any]]:
    key = filelist_key(model, digest)
    e = space.get(key)
    if e is None:
        raise ArtifactError("model %s version %s has no files in the Space (uploaded by an older engine? "
                            "upload the model again)" % (model, digest))
    files = e.value.get("files") if isinstance(e.value, dict) else None
    if not isinstance(files, dict):
        raise SpaceDataError("%s: not a file list" % key)
    for rel, m in files.items():
        check_relpath(rel, key)
        if not (isinstance(m, dict) and isinstance(m.get("sha256"), str) and isinstance(m.get("chunks"), int)
                and m["chunks"] >= 1 and m.get("mode") in (0o755, 0o644)):
            raise SpaceDataError("%s: bad entry for %s" % (key, rel))
    return files


def materialize(space: Space, model: str, digest: str, cache_dir: str) -> str:
    """``<cache_dir>/<model>/<digest>``, holding the model's files (fetched once per host)."""
    final = os.path.join(cache_dir, model, digest)
    if os.path.isdir(final):
        return final
    files = _read_filelist(space, model, digest)
    prefix = files_prefix(model, digest)
    chunks: Dict[str, Dict[Any, Any]] = {}
    for e in space.list(prefix):
        v = e.value
        if not isinstance(v, dict) or not isinstance(v.get("path"), str):
            raise SpaceDataError("%s: not a file chunk" % e.key)
        chunks.setdefault(v["path"], {})[v.get("chunk")] = v
    parent = os.path.join(cache_dir, model)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-%s-" % digest, dir=parent)
    try:
        for rel, m in sorted(files.items()):
            got = chunks.get(rel, {})
            h = hashlib.sha256()
            target = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                for i in range(m["chunks"]):
                    c = got.get(i)
                    if c is None or c.get("sha256") != m["sha256"] or not isinstance(c.get("data"), str):
                        raise ArtifactError("model %s version %s: chunk %d of %s is missing or belongs to "
                                            "another file" % (model, digest, i, rel))
                    try:
                        raw = base64.b64decode(c["data"], validate=True)
                    except ValueError:
                        raise SpaceDataError("%s%s/%06d: data is not base64" % (prefix, key_path(rel), i))
                    h.update(raw)
                    fh.write(raw)
            if h.hexdigest() != m["sha256"]:
                raise ArtifactError("model %s version %s: %s does not match its sha256" % (model, digest, rel))
            os.chmod(target, m["mode"])
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):   # not a lost race: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_stale(cache_dir: str, model: str, keep: List[str]) -> None:
    """Delete materialized versions of ``model`` other than ``keep`` (a worker's housekeeping; only
    when no operation of those versions runs on this host)."""
    parent = os.path.join(cache_dir, model)
    if not os.path.isdir(parent):
        return
    for name in os.listdir(parent):
        if name not in keep and not name.startswith(".tmp-"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


__all__ = ["ArtifactError", "ModelFile", "CHUNK_BYTES", "MAX_TOTAL_BYTES", "collect", "manifest", "store_ops",
           "materialize", "filelist_key", "files_prefix", "key_path", "check_relpath",
           "remove_stale"]
