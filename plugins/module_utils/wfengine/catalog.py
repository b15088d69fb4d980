# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Component libraries and application models in the Space.

Uploads validate everything first (parse, types, rules, deadlocks) and write nothing on error.  A
model is stored per template and per workflow (Consul caps a value at 512 KiB) under a version
folder named by its digest; the version becomes visible only when the final transaction points
``models/<name>/head`` at it, so a reader never sees half a model.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from . import keys
from .errors import ModelError, NotFound, SpaceDataError, ToscaError, raise_problems
from .imperative import announce as announce_imperative, compile_imperative
from .instances import expand
from .rules import check_workflows, compile_rules, validate_rule_set
from .space.base import (Entry, Space, dumps, op_delete, op_delete_tree, op_get, op_get_tree,
                         op_set)
from . import artifacts
from .operations import artifact_paths, compile_operations, compile_values
from .tosca.csar import model_source
from .tosca.function_checks import check_functions
from .tosca.sensitive import check_sensitive
from .tosca.templates import load_library, load_model
from .unused import called_operations, unused_implementations


def digest_of(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()[:16]


# ------------------------------------------------------------------ libraries
def libraries(space: Space) -> List[Dict[str, Any]]:
    """Raw types of every uploaded library, oldest first (later ones may derive from earlier)."""
    libs = []
    for e in space.list(keys.LIBRARIES):
        v = e.value
        if not isinstance(v, dict) or not isinstance(v.get("types"), dict):
            raise SpaceDataError("%s: not a library" % e.key)
        libs.append(v)
    libs.sort(key=lambda v: (v.get("uploaded", 0), v.get("name", "")))
    return libs


def upload_library(space: Space, path: str, name: Optional[str] = None,
                   check: bool = False) -> Dict[str, Any]:
    """Validate and store a component library; same content again changes nothing."""
    name = keys.check_name("library", name or os.path.splitext(os.path.basename(path))[0])
    others = [lib["types"] for lib in libraries(space) if lib.get("name") != name]
    types = load_library(path, others)
    digest = digest_of(types)
    entry = space.get(keys.library(name))
    type_names = sorted(n for section in ("node_types", "relationship_types")
                        for n in (types.get(section) or {}))
    result = {"name": name, "digest": digest, "types": type_names, "changed": False}
    if entry is not None and isinstance(entry.value, dict) and entry.value.get("digest") == digest:
        return result
    result["changed"] = True
    if not check:
        value = {"name": name, "file": os.path.abspath(path), "digest": digest, "types": types,
                 "uploaded": time.time()}
        if not space.cas(keys.library(name), value, entry.index if entry else 0):
            raise ToscaError("library %s changed while uploading; retry" % name)
    return result


def remove_library(space: Space, name: str, check: bool = False) -> Dict[str, Any]:
    name = keys.check_name("library", name)
    entry = space.get(keys.library(name))
    if entry is None:
        return {"name": name, "changed": False}
    if not check:
        space.delete(keys.library(name))
    return {"name": name, "changed": True}


# ------------------------------------------------------------------ models
def compile_model(path: str, space: Optional[Space] = None,
                  libs: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Parse and check a model (a YAML file, a folder or a CSAR archive); returns what would be
    stored.  Raises on any problem."""
    if libs is None:
        libs = [lib["types"] for lib in libraries(space)] if space is not None else []
    with model_source(path) as (entry, root):
        return _compile(path, entry, root, os.path.isfile(path) and entry == path, libs)


def _referenced_files(root: str, ops: Dict[str, Any],
                      extra: Optional[Dict[str, Dict[str, str]]] = None) -> List[artifacts.ModelFile]:
    """The files a single-file model uses (its folder may hold anything else): implementations,
    dependencies (a folder ships whole) and the artifacts found next to it (``extra``)."""
    paths = set()
    for t in ops.values():
        for group in [t.get("node") or {}] + list((t.get("relationships") or {}).values()):
            for spec in group.values():
                impl = spec.get("implementation") or {}
                for rel in [impl.get("primary")] + list(impl.get("dependencies") or []):
                    if rel:
                        paths.add(rel)
        paths.update(p for p in (t.get("artifacts") or {}).values() if p)   # get_artifact reads them
    for arts in (extra or {}).values():
        paths.update(arts.values())
    shipped: Dict[str, artifacts.ModelFile] = {}
    for rel in sorted(paths):
        full = os.path.join(root, *rel.split("/"))
        if os.path.isdir(full):
            for f in artifacts.collect(full):
                sub = "%s/%s" % (rel, f.path)
                shipped[sub] = artifacts.ModelFile(sub, f.data, f.mode)
            continue
        with open(full, "rb") as fh:
            data = fh.read()
        shipped[rel] = artifacts.ModelFile(rel, data, 0o755 if os.stat(full).st_mode & 0o100 else 0o644)
    return [shipped[k] for k in sorted(shipped)]


def _compile(path: str, entry: str, root: str, single_file: bool, libs: List[Dict[str, Any]]) -> Dict[str, Any]:
    model = load_model(entry, libs)
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
    files = (_referenced_files(root, ops, artifact_paths(model, root)) if single_file
             else artifacts.collect(root, entry))
    body = {"templates": templates, "rules": rules, "reltypes": reltypes, "settings": settings,
            "inputs": model.inputs, "outputs": model.outputs, "operations": ops,
            "values": compile_values(model), "files": artifacts.manifest(files)}
    data_types = getattr(model, "input_data_types", None)
    if data_types:      # only when inputs use data types: other models keep their digest
        body["data_types"] = data_types
    if model.sections:  # groups, policies, substitution_mappings, metadata: stored, shown, not run
        body["sections"] = model.sections
    try:
        with open(entry, "r", encoding="utf-8") as fh:
            source = fh.read()
    except OSError:
        source = ""
    return {"model": model, "body": body, "digest": digest_of(body), "instances": len(nodes),
            "source": source if len(source) < 256 * 1024 else "", "files": files,
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


def upload_model(space: Space, path: str, name: str, check: bool = False) -> Dict[str, Any]:
    """Validate and store a model under ``name``.  Returns ``changed`` and a text diff."""
    keys.check_name("model", name)
    compiled = compile_model(path, space)
    head = space.get(keys.model_head(name))
    before = head.value if head is not None and isinstance(head.value, dict) else None
    digest = compiled["digest"]
    result = {"name": name, "digest": digest, "changed": before is None or before.get("digest") != digest,
              "templates": sorted(compiled["body"]["templates"]),
              "workflows": sorted(compiled["body"]["rules"]),
              "instances": compiled["instances"],
              "warnings": list(compiled["warnings"]),
              "diff": {"before": (before or {}).get("source", ""), "after": compiled["source"],
                       "before_header": "%s (stored)" % name, "after_header": path}}
    if not result["changed"] or check:
        return result
    body = compiled["body"]
    writes = [op_set(keys.model_template(name, digest, t), v) for t, v in body["templates"].items()]
    writes += [op_set(keys.model_rules(name, digest, wf), rs) for wf, rs in body["rules"].items()]
    writes += [op_set(keys.model_operations(name, digest, t),
                      {"operations": body["operations"].get(t) or {}, "values": body["values"].get(t) or {}})
               for t in body["templates"]]
    writes.append(op_set(keys.model_version(name, digest) + "meta",
                         {"inputs": body["inputs"], "outputs": body["outputs"], "data_types": body.get("data_types") or {},
                          "reltypes": body["reltypes"], "settings": body["settings"],
                          "warnings": result["warnings"], "sections": body.get("sections") or {}}))
    writes += artifacts.store_ops(name, digest, compiled["files"])
    try:
        space.write_chunked(writes)
        new_head = {"name": name, "digest": digest, "file": os.path.abspath(path),
                    "templates": result["templates"], "workflows": result["workflows"],
                    "instances": compiled["instances"], "source": compiled["source"],
                    "warnings": result["warnings"], "uploaded": time.time()}
        if not space.cas(keys.model_head(name), new_head, head.index if head else 0):
            raise ToscaError("model %s changed while uploading; retry" % name)
    except Exception:
        # Nothing half-written: the version folder was never pointed at, remove it.
        try:
            space.delete_tree(keys.model_version(name, digest))
        finally:
            raise
    return result


def model_head(space: Space, name: str) -> Dict[str, Any]:
    keys.check_name("model", name)
    head = space.get(keys.model_head(name))
    if head is None:
        raise NotFound("unknown model %s" % name)
    if not isinstance(head.value, dict) or not isinstance(head.value.get("digest"), str):
        raise SpaceDataError("%s: not a model head" % head.key)
    return head.value


def read_templates(space: Space, name: str, digest: str) -> Dict[str, Dict[str, Any]]:
    prefix = keys.model_version(name, digest) + "tpl/"
    out = {}
    for e in space.list(prefix):
        if not isinstance(e.value, dict) or not isinstance(e.value.get("type"), str):
            raise SpaceDataError("%s: not a node template" % e.key)
        out[e.key[len(prefix):]] = e.value
    return out


def read_rules(space: Space, name: str, digest: str, workflow: str) -> Optional[Dict[str, Any]]:
    e = space.get(keys.model_rules(name, digest, workflow))
    return None if e is None else validate_rule_set(workflow, e.value)


def read_operations(space: Space, name: str, digest: str, template: str) -> Dict[str, Any]:
    """``{"operations": compiled operations, "values": properties/attributes}`` of a template."""
    key = keys.model_operations(name, digest, template)
    e = space.get(key)
    if e is None:
        return {"operations": {}, "values": {}}
    if not isinstance(e.value, dict) or not isinstance(e.value.get("operations"), dict):
        raise SpaceDataError("%s: not compiled operations" % key)
    return e.value


def read_meta(space: Space, name: str, digest: str) -> Dict[str, Any]:
    return _meta(space.get(keys.model_version(name, digest) + "meta"))


def _meta(e: Optional[Entry]) -> Dict[str, Any]:
    return e.value if e is not None and isinstance(e.value, dict) else {}


def read_rules_and_meta(space: Space, name: str, digest: str, workflow: str,
                        tree: str) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any], List[Entry]]:
    """``read_rules``, ``read_meta`` and every entry under ``tree`` (start_run: the instance's
    nodes) in one read: starting a run is on the path of every workflow."""
    rules_key = keys.model_rules(name, digest, workflow)
    meta_key = keys.model_version(name, digest) + "meta"
    got = space.txn([op_get(rules_key), op_get(meta_key), op_get_tree(tree)])
    e = got.entries.get(rules_key)
    return ((None if e is None else validate_rule_set(workflow, e.value)),
            _meta(got.entries.get(meta_key)), got.trees.get(tree, []))


def remove_model(space: Space, name: str, check: bool = False) -> Dict[str, Any]:
    keys.check_name("model", name)
    if space.get(keys.model_head(name)) is None:
        return {"name": name, "changed": False}
    if space.keys("inst/%s/" % name):
        from .errors import Conflict
        raise Conflict("model %s still has instances; remove them first" % name)
    if not check:
        space.txn([op_delete(keys.model_head(name)), op_delete_tree(keys.model_tree(name))])
    return {"name": name, "changed": True}
