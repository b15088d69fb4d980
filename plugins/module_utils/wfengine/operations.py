# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operation implementations of a model, compiled at upload into plain JSON.

Workers never see the TOSCA types: they only get what ``compile_operations`` produced, stored with
the model.  So every question a worker could ask about an operation ("what do I run, with which
inputs, how long, how many retries?") is answered here, and every mistake a user can make in an
interface definition (a missing script, a bad timeout) is reported at upload, naming the template
and the operation, rather than in the middle of a run.

Interfaces are matched by their short name (the last dotted segment) because TOSCA itself is
inconsistent: the workflows call ``tosca.interfaces.relationships.Configure.*`` while the
interface type is ``tosca.interfaces.relationship.Configure``, and templates may write either
``Standard`` or ``tosca.interfaces.node.lifecycle.Standard``.

Layers, earliest first, each refining the previous operation by operation: the node (or
relationship) type and its ancestors, root first, then the template (for a relationship: the
requirement's inline relationship or the named relationship template).  A later layer that gives
an ``implementation`` replaces the whole implementation; ``inputs`` merge by name; other keys
replace.

Spec of one operation (all JSON)::

    {"implementation": {"primary": "scripts/create.sh",   # relative to the model's root dir
                        "dependencies": ["scripts/lib.sh"],
                        "timeout": 600 | None,
                        "operation_host": "SOURCE" (only when the model sets it)},
     "inputs": {"name": raw value or function ({get_property: [SELF, port]})},
     "outputs": {"output name": ["SELF", "attribute"]},   # TOSCA 1.3 outputs mapping
     "max_retries": int | None, "retry_interval": float | None}

Operations without an implementation are left out: a missing operation is a recorded no-op.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, List, Optional, Tuple, cast

from .compiled_values import compile_values
from .operation.functions import has_function
from .operation_files import Where as _Where
from .operation_files import (artifact_file, artifact_files, artifact_paths, artifact_uses, bases_of,
                              resolve_path, used_artifact_paths)
from .secrets import forbidden_env_name

# compile_values, artifact_files and artifact_paths live in compiled_values.py and
# operation_files.py; imported here, where callers have always found them.
__all__ = ["CANONICAL", "CONFIGURE", "INPUT_NAME_RE", "OPERATION_HOSTS", "STANDARD",
           "artifact_files", "artifact_paths", "compile_operations", "compile_values",
           "implemented_templates", "lookup", "short_interface", "split_operation"]

STANDARD = "tosca.interfaces.node.lifecycle.Standard"
CONFIGURE = "tosca.interfaces.relationships.Configure"
# The full names the bundled workflows call; other interfaces keep the name they were declared with.
CANONICAL = {"Standard": STANDARD, "Configure": CONFIGURE}

# Keys of an interface definition/assignment that are not operations.
_IFACE_KEYS = {"type", "description", "inputs", "operations", "notifications", "derived_from",
               "metadata", "version"}
_OP_KEYS = {"implementation", "inputs", "outputs", "description", "max_retries", "retry_interval",
            "metadata"}
_IMPL_KEYS = {"primary", "dependencies", "timeout", "operation_host", "description"}
_OUTPUT_ENTITIES = ("SELF", "SOURCE", "TARGET")
OPERATION_HOSTS = ("SELF", "HOST", "SOURCE", "TARGET", "ORCHESTRATOR")
INPUT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Spec = Dict[str, Any]
Ops = Dict[str, Spec]


def short_interface(name: str) -> str:
    """``Standard`` for ``Standard``, ``tosca.interfaces.node.lifecycle.Standard`` and
    ``tosca:Standard`` (interface names written as their type, TOSCA 1.0 style)."""
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def split_operation(full: str) -> Tuple[str, str]:
    """``tosca.interfaces.node.lifecycle.Standard.create`` -> (``Standard``, ``create``)."""
    if "." not in full:
        return "", full
    iface, op = full.rsplit(".", 1)
    return short_interface(iface), op


def lookup(ops: Optional[Ops], operation: str) -> Optional[Spec]:
    """The spec of ``operation`` (a workflow activity name) in compiled ``ops``, or None (no-op).

    Exact name first, then (short interface name, operation name), so ``Standard.create``,
    ``tosca.interfaces.node.lifecycle.Standard.create`` and the ``relationship`` / ``relationships``
    spellings of ``Configure`` all find the same operation."""
    if not ops:
        return None
    if operation in ops:
        return ops[operation]
    want = split_operation(operation)
    for name, spec in ops.items():
        if split_operation(name) == want:
            return spec
    return None


# ------------------------------------------------------------------ normalisation
def _mapping(value: Any, where: _Where, what: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.err("%s must be a mapping" % what)
    return value


def _number(value: Any, where: _Where, what: str, integer: bool = False) -> Optional[float]:
    if value is None:
        return None
    return _count(value, where, what, integer)


def _count(value: Any, where: _Where, what: str, integer: bool = False) -> float:
    """``value`` itself when it is a non-negative number (an integer if ``integer``)."""
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value < 0:
        raise where.err("%s must be a non-negative %s, got %r" % (what, "integer" if integer else "number", value))
    return cast(float, value)


def _implementation(raw: Any, where: _Where) -> Dict[str, Any]:
    if isinstance(raw, str):
        return {"primary": raw, "dependencies": [], "timeout": None}
    if not isinstance(raw, dict):
        raise where.err("implementation must be a path or a mapping with 'primary'")
    unknown = set(raw) - _IMPL_KEYS
    if unknown:
        raise where.err("implementation: unknown keys %s (allowed: %s)"
                        % (", ".join(sorted(unknown)), ", ".join(sorted(_IMPL_KEYS))))
    primary = raw.get("primary")
    if primary is not None and (not isinstance(primary, str) or not primary):
        raise where.err("implementation.primary must be a path")
    deps = raw.get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
        raise where.err("implementation.dependencies must be a list of paths")
    timeout = _number(raw.get("timeout"), where, "implementation.timeout")
    if timeout is not None and timeout <= 0:
        raise where.err("implementation.timeout must be > 0, got %r" % timeout)
    out = {"primary": primary, "dependencies": list(deps), "timeout": timeout}
    where_to = raw.get("operation_host")
    if where_to is not None:
        # TOSCA 1.3 3.6.15.1: where the operation runs (remote.py reads it).
        if where_to not in OPERATION_HOSTS:
            raise where.err("implementation.operation_host must be one of %s, got %r"
                            % (", ".join(OPERATION_HOSTS), where_to))
        out["operation_host"] = where_to
    return out


def _inputs(raw: Any, where: _Where) -> Dict[str, Any]:
    inputs = _mapping(raw, where, "inputs")
    out = {}
    for name, value in inputs.items():
        if not INPUT_NAME_RE.match(name):
            raise where.err("input %r: names must be identifiers ([A-Za-z_][A-Za-z0-9_]*): they "
                            "become environment variables and Ansible variables" % name)
        why = forbidden_env_name(name)
        if why:
            raise where.err("input %s: refused: %s (rename the input, e.g. app_%s)" % (name, why, name.lower()))
        # An input *definition* ({type: string, default: x}, in a type) gives its default; an
        # input *assignment* is the value itself (possibly a function).
        if isinstance(value, dict) and "type" in value and set(value) <= {
                "type", "description", "default", "value", "required", "constraints", "entry_schema",
                "key_schema", "status", "metadata", "sensitive"}:
            if value.get("sensitive") is True:
                for key in ("value", "default"):
                    if key in value and not has_function(value[key]):
                        raise where.err("input %s: sensitive: its %s would be stored in clear in the Space; give "
                                        "a reference instead, e.g. {get_secret: [env, NAME]}" % (name, key))
            if "value" in value:
                out[name] = copy.deepcopy(value["value"])
            elif "default" in value:
                out[name] = copy.deepcopy(value["default"])
            continue
        out[name] = copy.deepcopy(value)
    return out


def _sensitive_names(raw: Any) -> List[str]:
    """Inputs defined ``sensitive: true``: the executor masks their values like secrets."""
    return sorted(n for n, v in (raw or {}).items() if isinstance(v, dict) and v.get("sensitive") is True) \
        if isinstance(raw, dict) else []


def _outputs(raw: Any, where: _Where) -> Dict[str, List[str]]:
    outputs = _mapping(raw, where, "outputs")
    out = {}
    for name, target in outputs.items():
        if not (isinstance(target, list) and len(target) == 2 and target[0] in _OUTPUT_ENTITIES
                and isinstance(target[1], str) and target[1]):
            raise where.err("output %r must map to [SELF|SOURCE|TARGET, attribute_name], got %r"
                            % (name, target))
        out[name] = list(target)
    return out


def _operation(raw: Any, where: _Where) -> Dict[str, Any]:
    """One operation as given by one layer: only the keys that layer sets."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        return {"implementation": _implementation(raw, where)}
    if not isinstance(raw, dict):
        raise where.err("an operation is a path (short form) or a mapping with 'implementation'")
    unknown = set(raw) - _OP_KEYS
    if unknown:
        raise where.err("unknown keys %s (allowed: %s)" % (", ".join(sorted(unknown)),
                                                           ", ".join(sorted(_OP_KEYS))))
    out: Dict[str, Any] = {}
    if raw.get("implementation") is not None:
        out["implementation"] = _implementation(raw["implementation"], where)
    if "inputs" in raw:
        out["inputs"] = _inputs(raw["inputs"], where)
        sensitive = _sensitive_names(raw["inputs"])
        if sensitive:
            out["sensitive"] = sensitive
    if "outputs" in raw:
        out["outputs"] = _outputs(raw["outputs"], where)
    if raw.get("max_retries") is not None:
        out["max_retries"] = int(_count(raw["max_retries"], where, "max_retries", integer=True))
    if raw.get("retry_interval") is not None:
        out["retry_interval"] = float(_count(raw["retry_interval"], where, "retry_interval"))
    return out


def _interfaces(raw: Any, what: str, file: Optional[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{short interface name: {operation: partial op}} of one layer.  Each implementation keeps
    the file that declares it (``"file"``), as its paths are relative to that file."""
    where = _Where(what, file)
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for key, body in _mapping(raw, where, "interfaces").items():
        if body is None:
            continue
        iw = _Where("%s, interface %s" % (what, key), file)
        if not isinstance(body, dict):
            raise iw.err("an interface is a mapping of operations")
        iface_inputs = _inputs(body.get("inputs"), iw) if "inputs" in body else {}
        raw_ops: Dict[str, Any] = {}
        if body.get("operations") is not None:           # TOSCA 1.3 form
            raw_ops.update(_mapping(body["operations"], iw, "operations"))
        raw_ops.update({k: v for k, v in body.items() if k not in _IFACE_KEYS})   # TOSCA 1.0-1.2
        ops = out.setdefault(short_interface(key), {})
        for oname, oraw in raw_ops.items():
            op = _operation(oraw, _Where("%s, operation %s.%s" % (what, key, oname), file))
            if "implementation" in op:
                op["implementation"]["file"] = file
            if iface_inputs:
                op["inputs"] = dict(iface_inputs, **op.get("inputs", {}))
                sensitive = _sensitive_names(body.get("inputs"))
                if sensitive:
                    op["sensitive"] = sorted(set(op.get("sensitive", [])) | set(sensitive))
            ops[oname] = _merge_op(ops.get(oname, {}), op)
        if iface_inputs:
            # Interface-level inputs also reach operations this layer does not mention.
            out.setdefault("~inputs", {}).setdefault(short_interface(key), {}).update(iface_inputs)
    return out


def _merge_op(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k in ("inputs", "outputs"):
            out[k] = dict(out.get(k, {}), **copy.deepcopy(v))
        elif k == "sensitive":      # a definition once sensitive stays so when a layer assigns it
            out[k] = sorted(set(out.get(k, [])) | set(v))
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge_layers(layers: List[Dict[str, Dict[str, Dict[str, Any]]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    merged: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for layer in layers:
        iface_inputs = layer.get("~inputs", {})
        for iface, ops in layer.items():
            if iface == "~inputs":
                continue
            m = merged.setdefault(iface, {})
            for oname, op in ops.items():
                m[oname] = _merge_op(m.get(oname, {}), op)
        for iface, inputs in iface_inputs.items():
            for oname, op in merged.get(iface, {}).items():
                op["inputs"] = dict(inputs, **op.get("inputs", {}))
    return merged


def _type_layers(types: Dict[str, Any], ancestors: List[str], kind: str) -> List[Dict[str, Any]]:
    """One layer per type of the chain, root first.  A type's ``interfaces`` are already merged
    with its parent's (types.py); its own contribution is what differs from the parent's."""
    layers = []
    parent_ifaces: Dict[str, Any] = {}
    for name in reversed(ancestors):
        t = types.get(name)
        if t is None:
            continue
        own = {k: _own_part(v, parent_ifaces.get(k)) for k, v in (t.interfaces or {}).items()
               if parent_ifaces.get(k) != v}
        layers.append(_interfaces(own, "%s %s" % (kind, name), t.file))
        parent_ifaces = t.interfaces or {}
    return layers


def _own_op(op: Any, parent: Any) -> Any:
    """An operation as a subtype refines it: an implementation equal to the parent's is the
    parent's (a subtype adding only inputs must not move the parent's paths to its own folder)."""
    if (isinstance(op, dict) and isinstance(parent, dict) and "implementation" in op
            and op["implementation"] == parent.get("implementation")):
        return {k: v for k, v in op.items() if k != "implementation"}
    return op


def _own_part(iface: Any, parent: Any) -> Any:
    """What a type's (merged) interface adds to its parent's: an operation the parent declared
    identically stays the parent's, so its implementation keeps the parent's file."""
    if not isinstance(iface, dict) or not isinstance(parent, dict):
        return iface
    out = {k: _own_op(v, parent.get(k)) for k, v in iface.items()
           if k in ("type", "inputs") or parent.get(k) != v}
    ops, pops = iface.get("operations"), parent.get("operations")
    if isinstance(ops, dict) and isinstance(pops, dict):
        out["operations"] = {k: _own_op(v, pops.get(k)) for k, v in ops.items() if pops.get(k) != v}
    return out


def _finish(merged: Dict[str, Dict[str, Dict[str, Any]]], what: str, file: Optional[str],
            root_dir: str, base_dir: str, artifacts: Dict[str, Any],
            art_files: Optional[Dict[str, Optional[str]]] = None) -> Ops:
    out: Ops = {}
    art_files = art_files or {}

    def resolve(name: str, impl_file: Optional[str], where: _Where, kind: str) -> str:
        art = artifact_file(name, artifacts)
        declared = art_files.get(name) if art is not None else impl_file
        bases = bases_of(declared, root_dir, base_dir)
        return resolve_path(art if art is not None else name, root_dir, bases, where, kind,
                            folder=kind == "dependency")

    for iface, ops in merged.items():
        full_iface = CANONICAL.get(iface, iface)
        for oname, op in ops.items():
            impl = op.get("implementation")
            if not impl or not impl.get("primary"):
                continue
            where = _Where("%s, operation %s.%s" % (what, iface, oname), file)
            spec = {
                "implementation": {
                    "primary": resolve(impl["primary"], impl.get("file"), where, "implementation"),
                    "dependencies": [resolve(d, impl.get("file"), where, "dependency")
                                     for d in impl.get("dependencies", [])],
                    "timeout": impl.get("timeout")},
                "inputs": op.get("inputs", {}),
                "outputs": op.get("outputs", {}),
                "max_retries": op.get("max_retries"),
                "retry_interval": op.get("retry_interval"),
            }
            if impl.get("operation_host"):
                spec["implementation"]["operation_host"] = impl["operation_host"]
            out["%s.%s" % (full_iface, oname)] = spec
    return out


# ------------------------------------------------------------------ entry points
def implemented_templates(ops: Dict[str, Dict[str, Any]]) -> List[str]:
    """Templates with an operation that runs something, their own or one of their relationships'
    (compile_operations leaves out those without an implementation).  A run of such nodes is
    spread over the workers (locality.zone_map): there an operation costs far more than the
    bookkeeping that spreading adds."""
    out = []
    for tname, t in ops.items():
        groups = [t.get("node") or {}] + list((t.get("relationships") or {}).values())
        if any((spec.get("implementation") or {}).get("primary") for g in groups for spec in g.values()):
            out.append(tname)
    return sorted(out)


def compile_operations(model: Any, root_dir: str, base_dir: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """``{template: {"node": {FULL_OP: spec}, "relationships": {"<requirement index>": {FULL_OP: spec}},
    "artifacts": {name: path in the model folder}}}`` ("artifacts" only when the template has some).

    ``root_dir``: the folder whose files are shipped with the model (artifacts.collect); every
    implementation must be inside it.  ``base_dir`` (default: the model file's folder) is where
    relative paths are looked up first, as TOSCA names artifacts relative to the service template.
    Raises ToscaError naming the template, the operation and the path."""
    root_dir = os.path.abspath(root_dir)
    base_dir = os.path.abspath(base_dir or os.path.dirname(os.path.abspath(model.file)))
    out: Dict[str, Dict[str, Any]] = {}
    for tname, tpl in model.templates.items():
        ntype = model.node_types[tpl.type]
        artifacts = dict(ntype.artifacts or {}, **(tpl.artifacts or {}))
        layers = _type_layers(model.node_types, ntype.ancestors, "node type")
        layers.append(_interfaces(tpl.interfaces, "node template %s" % tname, tpl.file))
        art_files = artifact_files(model, tname)
        node_ops = _finish(_merge_layers(layers), "node template %s" % tname, tpl.file, root_dir,
                           base_dir, artifacts, art_files)
        rels: Dict[str, Ops] = {}
        for i, req in enumerate(tpl.requirements):
            rtype = model.relationship_types[req.relationship]
            what = "node template %s, requirement %s" % (tname, req.name)
            layers = _type_layers(model.relationship_types, rtype.ancestors, "relationship type")
            layers.append(_interfaces(req.interfaces, what, tpl.file))
            ops = _finish(_merge_layers(layers), what, tpl.file, root_dir, base_dir, artifacts, art_files)
            if ops:
                rels[str(i)] = ops
        out[tname] = {"node": node_ops, "relationships": rels}
    for tname, tpl in model.templates.items():
        arts = used_artifact_paths(model, tname, root_dir, base_dir, artifact_uses(out, tname))
        if arts:
            out[tname]["artifacts"] = arts
    return out
