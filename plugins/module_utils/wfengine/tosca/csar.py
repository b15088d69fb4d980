# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a model comes from: a YAML file, a folder, or a CSAR (zip) archive.

Every form gives the same thing: the entry YAML file (what ``load_model`` reads) and the root
folder whose files ship with the model (``artifacts.collect``).  The entry of a folder or archive
is the ``Entry-Definitions`` of ``TOSCA-Metadata/TOSCA.meta`` (TOSCA 1.3, 4.2.1), else its single
top-level ``.yaml`` / ``.yml`` file.

Archives come from users and are extracted by hand, member by member, because ``extractall``
trusts names: absolute names, ``..`` segments, links, devices and duplicated names are refused, as
are archives whose content exceeds the size a model may have (a zip bomb stops at the cap, whatever
the sizes its header claims).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from typing import Callable, Dict, Iterator, List, Tuple

from ..errors import ToscaError
from .bounded_yaml import regular_file

META = "TOSCA-Metadata/TOSCA.meta"
YAML_EXT = (".yaml", ".yml")
ARCHIVE_EXT = (".zip", ".csar")
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024      # same cap as the files a model may ship
MAX_MEMBERS = 10000

Source = Tuple[str, str, Callable[[], None]]


def _noop() -> None:
    return None


def open_model_source(path: str) -> Source:
    """``(entry_yaml_path, root_dir, cleanup)`` of a YAML file, a folder or a .zip/.csar archive.
    Call ``cleanup()`` when done (it removes an extracted archive; a no-op otherwise)."""
    if not os.path.exists(path):
        raise ToscaError("not found", file=path)
    if os.path.isdir(path):
        root = os.path.abspath(path)
        return _entry_of(root, path), root, _noop
    # A FIFO or a device (/dev/zero) would be read forever, by the zip probe or the YAML reader.
    regular_file(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in ARCHIVE_EXT or (ext not in YAML_EXT and zipfile.is_zipfile(path)):
        tmp = tempfile.mkdtemp(prefix="wf-csar-")

        def cleanup() -> None:
            shutil.rmtree(tmp, ignore_errors=True)

        try:
            extract(path, tmp)
            return _entry_of(tmp, path), tmp, cleanup
        except BaseException:
            cleanup()
            raise
    entry = os.path.abspath(path)
    return entry, os.path.dirname(entry), _noop


def source_kind(path: str) -> str:
    """``"folder"``, ``"archive"`` (a CSAR or zip) or ``"file"`` (a YAML file): an upload ships a
    folder or an archive whole (minus the ignore list) and of a file only what the model names, so
    the decision must not depend on how the path is written (relative, absolute, through a link).
    Call it on a path ``open_model_source`` accepted (same tests, in the same order)."""
    if os.path.isdir(path):
        return "folder"
    ext = os.path.splitext(path)[1].lower()
    if ext in ARCHIVE_EXT or (ext not in YAML_EXT and zipfile.is_zipfile(path)):
        return "archive"
    return "file"


@contextlib.contextmanager
def model_source(path: str) -> Iterator[Tuple[str, str]]:
    """``with model_source(path) as (entry, root):`` — ``open_model_source`` with its cleanup."""
    entry, root, cleanup = open_model_source(path)
    try:
        yield entry, root
    finally:
        cleanup()


def parse_meta(text: str, file: str) -> Dict[str, str]:
    """The ``Name: value`` lines of a TOSCA.meta file (all blocks)."""
    out: Dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if ":" not in line:
            raise ToscaError("line %d is not 'Name: value'" % n, file=file)
        k, v = line.split(":", 1)
        out.setdefault(k.strip(), v.strip())
    return out


def _entry_of(root: str, shown: str) -> str:
    meta = os.path.join(root, *META.split("/"))
    if os.path.isfile(meta):
        where = os.path.join(shown, META)
        try:
            with open(meta, "r", encoding="utf-8") as fh:
                fields = parse_meta(fh.read(), where)
        except UnicodeDecodeError:
            raise ToscaError("not UTF-8 text", file=where) from None
        entry = fields.get("Entry-Definitions")
        if not entry:
            raise ToscaError("no Entry-Definitions", file=where)
        if os.path.isabs(entry) or ".." in entry.replace("\\", "/").split("/"):
            raise ToscaError("Entry-Definitions %r must be a path inside the archive" % entry, file=where)
        full = os.path.join(root, *entry.split("/"))
        if not os.path.isfile(full):
            raise ToscaError("Entry-Definitions %r: no such file in %s" % (entry, shown), file=where)
        return full
    yamls = sorted(f for f in os.listdir(root)
                   if f.lower().endswith(YAML_EXT) and not f.startswith(".")
                   and os.path.isfile(os.path.join(root, f)))
    if len(yamls) == 1:
        return os.path.join(root, yamls[0])
    if not yamls:
        raise ToscaError("no %s and no top-level .yaml/.yml file: cannot tell which file is the model" % META,
                         file=shown)
    raise ToscaError("several top-level YAML files (%s) and no %s naming the entry (Entry-Definitions)"
                     % (", ".join(yamls), META), file=shown)


def _member_path(name: str, archive: str) -> List[str]:
    bad = (not name or name.startswith("/") or "\\" in name or "\x00" in name
           or (len(name) > 1 and name[1] == ":"))
    parts = name.rstrip("/").split("/")
    if bad or any(p in ("", ".", "..") for p in parts):
        raise ToscaError("unsafe member name %r (absolute, '..' or empty segment): refused" % name, file=archive)
    return parts


def extract(archive: str, dest: str, max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
    """Extract a zip archive into the (empty) folder ``dest``, refusing anything unsafe."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ToscaError("not a zip archive (%s)" % exc, file=archive) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ToscaError("more than %d members" % MAX_MEMBERS, file=archive)
        seen = set()
        total = 0
        for info in infos:
            parts = _member_path(info.filename, archive)
            key = "/".join(parts)
            if key in seen:
                raise ToscaError("member %r appears twice" % info.filename, file=archive)
            seen.add(key)
            mode = info.external_attr >> 16
            ftype = stat.S_IFMT(mode)
            if ftype == stat.S_IFLNK:
                raise ToscaError("member %r is a symbolic link: links are refused" % info.filename, file=archive)
            if info.is_dir():
                os.makedirs(os.path.join(dest, *parts), exist_ok=True)
                continue
            if ftype not in (0, stat.S_IFREG):
                raise ToscaError("member %r is not a regular file" % info.filename, file=archive)
            if info.flag_bits & 0x1:
                raise ToscaError("member %r is encrypted" % info.filename, file=archive)
            target = os.path.join(dest, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.lexists(target):
                raise ToscaError("member %r clashes with a folder of the same name" % info.filename, file=archive)
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    while True:
                        block = src.read(1 << 16)
                        if not block:
                            break
                        total += len(block)
                        if total > max_bytes:
                            raise ToscaError("more than %d MiB once extracted" % (max_bytes // (1 << 20)),
                                             file=archive)
                        out.write(block)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
                    zlib.error, EOFError, ValueError) as exc:   # corrupt deflate data, truncated member
                raise ToscaError("member %r cannot be extracted (%s)" % (info.filename, exc), file=archive) from None
            os.chmod(target, 0o755 if mode & stat.S_IXUSR else 0o644)
