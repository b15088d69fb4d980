# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Static checks of a topology's values, each problem reported on its own line.

Property, attribute and capability values of node templates, relationship properties and
topology input defaults are checked against their definitions (``datatypes``): unknown property
names, required properties without a value, wrong types, failed constraints.  Everything is
collected, nothing raised, so that an upload lists every problem of a model at once.  Values that
are TOSCA functions are left to the function checks.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..errors import ToscaError, ToscaProblems
from .datatypes import PRIMITIVES, DataTypes, Soft
from .requirements import capability_property_defs, capability_type_of
from .scaling import KEYS as SCALING_KEYS, scalable_capabilities

_INPUT_KEYS = {"type", "description", "required", "default", "value", "status", "constraints", "entry_schema",
               "key_schema", "metadata", "external-schema"}


def _problems(found: List[Any], what: str, file: Optional[str], path: str,
              warnings: Optional[List[str]] = None) -> List[ToscaError]:
    """ToscaErrors from ``(sub path, message)`` pairs; the message names the value as
    ``<what>: <last part of the path><sub path>`` (``app: properties.port: 'x' is not an integer``).
    ``Soft`` problems go to ``warnings`` (``"<file>: <path>: <what>"``) instead, when given."""
    label = path.rsplit(".", 1)[-1]
    out = []
    for sub, msg in found:
        err = ToscaError("%s: %s%s: %s" % (what, label, sub, msg), file=file, path=path + sub)
        if isinstance(msg, Soft) and warnings is not None:
            warnings.append(str(err))
        elif not isinstance(msg, Soft):
            out.append(err)
    return out


def check_inputs(inputs: Dict[str, Any], dt: DataTypes, file: str,
                 warnings: Optional[List[str]] = None) -> List[ToscaError]:
    """Input definitions: a known type, and a default (or value) of that type (TOSCA 1.3 3.6.14)."""
    out: List[ToscaError] = []
    for name, d in (inputs or {}).items():
        path = "topology_template.inputs.%s" % name
        if not isinstance(d, dict):
            out.append(ToscaError("input %s: a definition is a mapping with a type" % name, file=file, path=path))
            continue
        tname = d.get("type")
        if tname is not None and not dt.known(tname):
            out.append(ToscaError("input %s: unknown data type %r" % (name, tname), file=file, path=path + ".type"))
            continue
        for key in ("default", "value"):
            if key in d and d[key] is not None and tname is not None:
                found = dt.check(d[key], d)
                out += _problems(found, "input %s" % name, file, "%s.%s" % (path, key), warnings)
    return out


def check_template(name: str, raw: Dict[str, Any], ntype: Any, registry: Any, dt: DataTypes,
                   file: str, warnings: Optional[List[str]] = None) -> List[ToscaError]:
    """The values a node template assigns, against its type's definitions."""
    where = "topology_template.node_templates.%s" % name
    out: List[ToscaError] = []
    props = raw.get("properties") or {}
    if isinstance(props, dict):
        out += _problems(dt.check_assignments(props, ntype.properties, "property"), name, file,
                         where + ".properties", warnings)
    attrs = raw.get("attributes") or {}
    if isinstance(attrs, dict):
        out += _problems(dt.check_assignments(attrs, ntype.attributes, "attribute", unknown=False, required=False),
                         name, file, where + ".attributes", warnings)
    caps = raw.get("capabilities") or {}
    if isinstance(caps, dict):
        scaling = set(scalable_capabilities(registry, ntype, caps))
        for cname, body in caps.items():
            cpath = "%s.capabilities.%s" % (where, cname)
            if cname not in ntype.capabilities:
                if cname not in scaling:
                    out.append(ToscaError("%s: unknown capability %r (type %s defines: %s)"
                                          % (name, cname, ntype.name, ", ".join(sorted(ntype.capabilities)) or "none"),
                                          file=file, path=cpath))
                continue
            if not isinstance(body, dict):
                continue
            cvalues = body.get("properties") or {}
            if not isinstance(cvalues, dict):
                continue
            cdef = ntype.capabilities[cname]
            defs = capability_property_defs(registry, capability_type_of(cdef), cdef)
            if cname in scaling:       # counts and unknown names are checked (with inputs) by scaling.py
                cvalues = {k: v for k, v in cvalues.items() if k not in SCALING_KEYS}
                defs = {k: v for k, v in defs.items() if k not in SCALING_KEYS}
            out += _problems(dt.check_assignments(cvalues, defs, "property", required=False,
                                                  unknown=cname not in scaling),
                             "%s: capability %s" % (name, cname), file, cpath + ".properties", warnings)
    return out


def check_relationship(what: str, props: Dict[str, Any], rtype: Any, dt: DataTypes, file: str,
                       path: str, warnings: Optional[List[str]] = None) -> List[ToscaError]:
    """Properties of a relationship (a requirement's, or a relationship template's)."""
    return _problems(dt.check_assignments(props or {}, rtype.properties, "property"), what, file,
                     path + ".properties", warnings)


def input_data_types(inputs: Dict[str, Any], dt: DataTypes) -> Dict[str, Any]:
    """The raw definitions of the data types the inputs use (transitively): what instantiation
    needs to check given inputs, stored with the model because a deployment has no types."""
    out: Dict[str, Any] = {}
    todo = []
    for d in (inputs or {}).values():
        if isinstance(d, dict):
            todo += [d.get("type"), _schema_type(d.get("entry_schema")), _schema_type(d.get("key_schema"))]
    while todo:
        t = todo.pop()
        if not isinstance(t, str) or t in PRIMITIVES or t in out:
            continue
        d = dt.definition(t)
        if d is None:
            continue
        out[t] = d
        todo.append(d.get("derived_from"))
        for p in (d.get("properties") or {}).values():
            if isinstance(p, dict):
                todo += [p.get("type"), _schema_type(p.get("entry_schema")), _schema_type(p.get("key_schema"))]
    return out


def _schema_type(schema: Any) -> Any:
    return schema.get("type") if isinstance(schema, dict) else schema


def check_input_values(definitions: Dict[str, Any], given: Dict[str, Any], data_types: Dict[str, Any],
                       where: str) -> None:
    """Inputs given at instantiation, against the declared types; raises one ToscaError per
    input in a ToscaProblems (or the one alone)."""
    dt = DataTypes(data_types.get)
    problems: List[ToscaError] = []
    for name, value in sorted((given or {}).items()):
        d = (definitions or {}).get(name)
        if not isinstance(d, dict) or d.get("type") is None:
            continue
        for sub, msg in dt.check(value, d):
            if isinstance(msg, Soft):
                continue
            problems.append(ToscaError("input %s%s: %s" % (name, sub, msg), path=where))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ToscaProblems(problems)


def check_definitions(registry: Any, dt: DataTypes, section: str, names: List[str]) -> List[ToscaError]:
    """The property definitions of the types a model uses (each of ``names`` and its ancestors,
    once): a mapping with a known ``type`` (TOSCA 1.3 3.6.10), a default of that type."""
    out: List[ToscaError] = []
    seen = set()
    todo = list(names)
    while todo:
        tname = todo.pop(0)
        raw = registry.raw(section, tname)
        if tname in seen or not isinstance(raw, dict):
            continue
        seen.add(tname)
        if isinstance(raw.get("derived_from"), str):
            todo.append(raw["derived_from"])
        props = raw.get("properties")
        if not isinstance(props, dict):
            continue
        file = registry.file_of(section, tname)
        for pname, d in props.items():
            path = "%s.%s.properties.%s" % (section, tname, pname)
            what = "%s %s: property %s" % (section[:-1].replace("_", " "), tname, pname)
            if not isinstance(d, dict) or "type" not in d:
                out.append(ToscaError("%s: a property definition is a mapping with a type, got %r" % (what, d),
                                      file=file, path=path))
                continue
            if not dt.known(d["type"]):
                out.append(ToscaError("%s: unknown data type %r" % (what, d["type"]), file=file, path=path + ".type"))
                continue
            if d.get("default") is not None:
                out += _problems(dt.check(d["default"], d), what, file, path + ".default")
    return out
