# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compile pipeline of a model upload: load the TOSCA files, check them (names, functions,
sensitive values, HostedOn cycles, deadlocks, sizes), compile the rules, the imperative workflows,
the operations and the property values, and choose the files stored with the model.  Nothing
here reads or writes the Space: ``catalog.py`` stores what ``compile_source`` returns.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from . import limits
from .errors import ModelError, ToscaError, raise_problems
from .ignore import secret_reason
from .imperative_compile import announce as announce_imperative, compile_imperative
from .instances import expand
from .operation import artifacts
from .operations import artifact_paths, compile_operations, compile_values
from .rules import check_workflows, compile_rules
from .space.base import dumps
from .tosca.function_checks import check_functions
from .tosca.sensitive import check_sensitive
from .tosca.templates import load_model
from .unused import called_operations, unused_implementations


def digest_of(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()[:16]


def _implementation_paths(ops: Dict[str, Any]) -> Set[str]:
    """Implementations, their dependencies and the artifacts ``get_artifact`` reads, as named by
    the compiled operations."""
    paths: Set[str] = set()
    for t in ops.values():
        for group in [t.get("node") or {}] + list((t.get("relationships") or {}).values()):
            for spec in group.values():
                impl = spec.get("implementation") or {}
                for rel in [impl.get("primary")] + list(impl.get("dependencies") or []):
                    if rel:
                        paths.add(rel)
        paths.update(p for p in (t.get("artifacts") or {}).values() if p)   # get_artifact reads them
    return paths


def _tosca_paths(root: str, tosca_files: Sequence[str]) -> Set[str]:
    """The model's TOSCA files inside ``root`` (an import from outside: types only)."""
    paths: Set[str] = set()
    real_root = os.path.realpath(root)
    for f in tosca_files:
        rel = os.path.relpath(os.path.realpath(f), real_root)
        if not rel.startswith(".." + os.sep) and rel != "..":
            paths.add(rel.replace(os.sep, "/"))
    return paths


def _folder_files(root: str, rel: str, left_out: Optional[List[str]]) -> List[artifacts.ModelFile]:
    """A named folder: shipped whole, minus the ignore list (what it leaves out: ``left_out``)."""
    inner: List[str] = []
    out = []
    for mf in artifacts.collect(os.path.join(root, *rel.split("/")), left_out=inner):
        sub = "%s/%s" % (rel, mf.path)
        out.append(artifacts.ModelFile(sub, mf.data, mf.mode))
    if left_out is not None:
        left_out.extend("%s/%s" % (rel, p) for p in inner)
    return out


def _named_file(root: str, rel: str, warnings: Optional[List[str]]) -> artifacts.ModelFile:
    """A named file: shipped even when the ignore list would leave it out (the model needs it),
    with a warning when it looks like a secret."""
    full = os.path.join(root, *rel.split("/"))
    with open(full, "rb") as fh:
        data = fh.read()
    why = secret_reason(os.path.basename(rel), data[:4096])
    if why and warnings is not None:
        warnings.append("%s: looks like %s; stored in the Space because the model names it, readable by "
                        "anyone who can read the Space (keep secrets out of model files: docs/security.md)"
                        % (rel, why))
    return artifacts.ModelFile(rel, data, 0o755 if os.stat(full).st_mode & 0o100 else 0o644)


def _referenced_files(root: str, ops: Dict[str, Any], extra: Optional[Dict[str, Dict[str, str]]] = None,
                      tosca_files: Sequence[str] = (), left_out: Optional[List[str]] = None,
                      warnings: Optional[List[str]] = None) -> List[artifacts.ModelFile]:
    """The files the model names: implementations, dependencies (a folder ships whole, minus the
    ignore list), the artifacts found next to it (``extra``) and its TOSCA files (the model's file
    and its imports, those inside ``root``).  A named file ships even when the ignore list would
    leave it out (the model needs it), with a warning when it looks like a secret."""
    paths = _implementation_paths(ops)
    for arts in (extra or {}).values():
        paths.update(arts.values())
    paths |= _tosca_paths(root, tosca_files)
    shipped: Dict[str, artifacts.ModelFile] = {}
    for rel in sorted(paths):
        if os.path.isdir(os.path.join(root, *rel.split("/"))):
            shipped.update((mf.path, mf) for mf in _folder_files(root, rel, left_out))
        else:
            shipped[rel] = _named_file(root, rel, warnings)
    return [shipped[k] for k in sorted(shipped)]


def _stored_files(root: str, entry: str, single_file: bool, model: Any, ops: Dict[str, Any],
                  warnings: List[str]) -> Tuple[List[artifacts.ModelFile], List[str]]:
    """``(files stored, paths the ignore list left out)``.  A single YAML file ships what the model
    names and nothing else of its folder, which may be a home directory or a checkout; a folder or
    a CSAR is the model's declared content and ships whole, minus the ignore list, plus what the
    model names (docs/decisions.md, docs/security.md "Uploads")."""
    left_out: List[str] = []
    named = _referenced_files(root, ops, artifact_paths(model, root), model.source_files or [entry],
                              left_out, warnings)
    if single_file:
        return named, sorted(set(left_out))
    files = {f.path: f for f in artifacts.collect(root, entry, left_out=left_out)}
    files.update((f.path, f) for f in named)
    return [files[k] for k in sorted(files)], sorted(set(left_out) - set(files))


def compile_source(path: str, entry: str, root: str, single_file: bool, libs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What an upload of the model at ``entry`` (its folder ``root``; ``single_file``: a YAML file
    given alone) would store: its body and digest, its files, its warnings.  Raises on any problem."""
    model = load_model(entry, libs)
    limits.check_model_names(model)
    # The model's own problems are raised by load_model, all at once; then every function's.
    raise_problems(check_functions(model, libs) + check_sensitive(model))
    rules = compile_rules(model)
    # Imperative workflows (topology_template.workflows): one of the same name replaces the
    # declarative workflow for this topology (imperative.py), which is then not checked.
    imperative = compile_imperative(model)
    try:
        nodes = expand(model)           # HostedOn cycles first: they are named as such
        check_workflows(model, {wf: rs for wf, rs in rules.items() if wf not in imperative})
    except ModelError as exc:
        raise ModelError("%s: %s" % (path, exc))
    announce_imperative(model, rules, imperative)
    rules.update(imperative)
    limits.check_workflow_names(rules, model.file)
    templates = {name: t.to_json() for name, t in model.templates.items()}
    for t in templates.values():
        # Paths relative to the model's root: the same content uploaded from a folder, a CSAR or
        # another checkout is the same model version.
        if isinstance(t.get("file"), str):
            t["file"] = os.path.relpath(t["file"], root)
    reltypes = {r.relationship: list(model.relationship_types[r.relationship].ancestors)
                for t in model.templates.values() for r in t.requirements}
    settings = {"serialize_hosted": _flag(model, "serialize_hosted_operations", True)}
    ops = compile_operations(model, root)
    warnings = list(model.warnings) + unused_implementations(
        model, ops, called_operations(model, rules), file_of=lambda t: _shown_file(t.file or model.file, root))
    files, left_out = _stored_files(root, entry, single_file, model, ops, warnings)
    body = {"templates": templates, "rules": rules, "reltypes": reltypes, "settings": settings,
            "inputs": model.inputs, "outputs": model.outputs, "operations": ops,
            "values": compile_values(model), "files": artifacts.manifest(files)}
    data_types = getattr(model, "input_data_types", None)
    if data_types:      # only when inputs use data types: other models keep their digest
        body["data_types"] = data_types
    if model.sections:  # groups, policies, substitution_mappings, metadata: stored, shown, not run
        body["sections"] = model.sections
    limits.check_value_sizes(body, model.templates, model.file)
    try:
        with open(entry, "r", encoding="utf-8") as fh:
            source = fh.read()
    except OSError:
        source = ""
    return {"model": model, "body": body, "digest": digest_of(body), "instances": len(nodes),
            "source": source if len(source) < 256 * 1024 else "", "files": files, "left_out": left_out,
            "warnings": warnings}


def _shown_file(path: str, root: str) -> str:
    """A model file as warnings name it: relative to the model's root folder (the same model
    uploaded from another checkout or a CSAR gives the same lines)."""
    rel = os.path.relpath(os.path.abspath(path), root)
    return path if rel.startswith("..") else rel


def _flag(model: Any, name: str, default: bool) -> bool:
    """A model setting from the file's ``metadata`` (``ditrit.workflows.<name>: true|false``)."""
    value = (model.metadata or {}).get("ditrit.workflows." + name, default)
    if isinstance(value, str):
        value = value.strip().lower() not in ("false", "no", "off", "0")
    if not isinstance(value, bool):
        raise ToscaError("metadata ditrit.workflows.%s must be true or false" % name, file=model.file)
    return value
