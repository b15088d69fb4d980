# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the files a model's operations and artifacts name are, inside the model's folder.

``operations.py`` compiles operations at upload; the paths it stores (an implementation's
``primary`` and ``dependencies``, the artifacts ``get_artifact`` reads) are found here, relative to
the file declaring them (TOSCA 1.3 3.6.7) or to the model's root, and refused in one line when they
are missing, remote or outside the model's folder.  Kept apart: path rules are one job, the
layering of interface definitions another.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Set, cast

from .errors import ToscaError


class Where:
    """What an error names: the template (or type), the interface and the operation."""

    def __init__(self, what: str, file: Optional[str]):
        self.what = what
        self.file = file

    def err(self, msg: str, path: Optional[str] = None) -> ToscaError:
        return ToscaError("%s: %s" % (self.what, msg), file=self.file, path=path)


def artifact_files(model: Any, template: str) -> Dict[str, Optional[str]]:
    """{artifact name: file declaring it} of a template: the template's own artifacts, then each
    type's, nearest first (a type's ``artifacts`` are merged with its parent's in types.py)."""
    tpl = model.templates[template]
    out: Dict[str, Optional[str]] = {}
    parent: Dict[str, Any] = {}
    for name in reversed(model.node_types[tpl.type].ancestors):
        t = model.node_types.get(name)
        if t is None:
            continue
        for a, d in (t.artifacts or {}).items():
            if parent.get(a) != d:
                out[a] = t.file
        parent = t.artifacts or {}
    for a in tpl.artifacts or {}:
        out[a] = tpl.file
    return out


# ------------------------------------------------------------------ paths
def _inside(root: str, path: str) -> bool:
    root = os.path.realpath(root)
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def _declared_dir(file: Optional[str], root_dir: str) -> Optional[str]:
    """The folder of a declaring file when that file ships with the model (a library's or the
    normative types' files do not: their paths are the model's)."""
    if not file or file.startswith("<"):
        return None
    full = os.path.abspath(file)
    return os.path.dirname(full) if os.path.isfile(full) and _inside(root_dir, full) else None


def bases_of(declared: Optional[str], root_dir: str, base_dir: str) -> List[str]:
    """Where a relative path is looked up: the folder of the file declaring it (TOSCA 1.3 3.6.7;
    tosca-parser refuses a CSAR whose Definitions/ file names Scripts/x.sh for the root's
    Scripts/x.sh, and so do we: a fallback would hide the mistake, ``/Scripts/x.sh`` says it).
    A type of an uploaded library has no folder in the model: the model file's, then the root."""
    declared_dir = _declared_dir(declared, root_dir)
    return [declared_dir] if declared_dir else [base_dir, root_dir]


def resolve_path(path: str, root_dir: str, bases: List[str], where: Where, what: str,
                 folder: bool = False) -> str:
    """The path relative to ``root_dir`` (POSIX form) of a file named in a TOSCA file.

    A relative path is looked up relative to each of ``bases`` in turn (the declaring file's
    folder, the model file's, the root: TOSCA 1.3 names artifacts relative to the file, CSARs and
    xOpera projects relative to the root); a ``/``-rooted path is relative to the root (the CSAR
    root, TOSCA 1.3 4.2).  ``folder``: a folder is accepted too (a dependency shipped whole)."""
    if "://" in path:
        raise where.err("%s %r: remote files are not fetched; ship the file with the model"
                        % (what, path))
    if os.path.isabs(path) or path.startswith("/"):
        path = path.lstrip("/")
        bases = [root_dir]
        shown = "the model's root %s" % root_dir
    else:
        shown = " or ".join(dict.fromkeys(bases))
    for base in dict.fromkeys(bases):
        cand = os.path.normpath(os.path.join(base, path))
        if os.path.isfile(cand) or (folder and os.path.isdir(cand)):
            if not _inside(root_dir, cand):
                raise where.err("%s %r is outside the model's folder %s" % (what, path, root_dir))
            rel = os.path.relpath(os.path.realpath(cand),
                                  os.path.realpath(root_dir)).replace(os.sep, "/")
            if rel == ".":
                raise where.err("%s %r is the model's whole folder" % (what, path))
            return rel
    at_root = os.path.normpath(os.path.join(root_dir, path))
    if not path.startswith("/") \
            and (os.path.isfile(at_root) or (folder and os.path.isdir(at_root))) \
            and _inside(root_dir, at_root):
        raise where.err("%s %r not found relative to %s (the declaring file's folder); the model's "
                        "root has it: write /%s" % (what, path, shown, path))
    raise where.err("%s %r not found (relative to %s)" % (what, path, shown))


def artifact_file(name: str, artifacts: Dict[str, Any]) -> Optional[str]:
    """TOSCA lets ``primary`` name an artifact of the node
    (``artifacts: {deploy: {file: x.sh}}``)."""
    art = artifacts.get(name)
    if isinstance(art, str):
        return art
    if isinstance(art, dict) and isinstance(art.get("file"), str):
        return cast(str, art["file"])
    return None


def _template_artifacts(model: Any, tname: str, root_dir: str, base_dir: str) -> Dict[str, str]:
    """{artifact: path relative to the root} of one template's artifacts whose ``file`` ships with
    the model, by the same rules as implementations.  An artifact whose file is not there (an image
    name, a URL) is left out: it is not a file of the model."""
    tpl = model.templates[tname]
    ntype = model.node_types[tpl.type]
    artifacts = dict(ntype.artifacts or {}, **(tpl.artifacts or {}))
    files = artifact_files(model, tname)
    found: Dict[str, str] = {}
    for name in artifacts:
        path = artifact_file(name, artifacts)
        if not path:
            continue
        bases = bases_of(files.get(name), root_dir, base_dir)
        try:
            found[name] = resolve_path(path, root_dir, bases, Where(tname, tpl.file), "artifact",
                                       folder=True)
        except ToscaError:
            continue
    return found


def artifact_paths(model: Any, root_dir: str, base_dir: Optional[str] = None
                   ) -> Dict[str, Dict[str, str]]:
    """{template: {artifact: path relative to the root}} of every template
    (``_template_artifacts``)."""
    root_dir = os.path.abspath(root_dir)
    base_dir = os.path.abspath(base_dir or os.path.dirname(os.path.abspath(model.file)))
    out: Dict[str, Dict[str, str]] = {}
    for tname in model.templates:
        found = _template_artifacts(model, tname, root_dir, base_dir)
        if found:
            out[tname] = found
    return out


def artifact_uses(ops: Dict[str, Dict[str, Any]], tname: str) -> Set[str]:
    """Names of the artifacts of ``tname`` that a ``get_artifact`` of its operations reads (SELF
    or the template by name; other entities are only known when the operation runs)."""
    used: Set[str] = set()

    def walk(value: Any, owner: str) -> None:
        if isinstance(value, dict):
            args = value.get("get_artifact") if len(value) == 1 else None
            if isinstance(args, list) and len(args) >= 2 and isinstance(args[1], str) \
                    and (args[0] == tname or (args[0] == "SELF" and owner == tname)):
                used.add(args[1])
            for v in value.values():
                walk(v, owner)
        elif isinstance(value, list):
            for v in value:
                walk(v, owner)

    for owner, t in ops.items():
        for group in [t.get("node") or {}] + list((t.get("relationships") or {}).values()):
            for spec in group.values():
                walk(spec.get("inputs") or {}, owner)
    return used


def used_artifact_paths(model: Any, tname: str, root_dir: str, base_dir: str, used: Set[str]
                        ) -> Dict[str, str]:
    """``{artifact name: path in the model folder}`` of a template's artifacts that are files of
    the model (TOSCA 1.3 3.6.7): what ``get_artifact`` returns, relative to where the model's files
    are on the machine running the operation.  An artifact that is not a file of the model (an
    image name, a URL) is left out, unless an operation reads it with ``get_artifact``."""
    tpl = model.templates[tname]
    found = _template_artifacts(model, tname, root_dir, base_dir)
    arts = dict(model.node_types[tpl.type].artifacts or {}, **(tpl.artifacts or {}))
    for name in sorted(used):
        if name in arts and name not in found:
            where = Where("node template %s, artifact %s" % (tname, name), tpl.file)
            raise where.err("get_artifact reads it, but its file %r is not a file of the model "
                            "(relative to %s)" % (artifact_file(name, arts), base_dir),
                            path="topology_template.node_templates.%s.artifacts.%s" % (tname, name))
    return found
