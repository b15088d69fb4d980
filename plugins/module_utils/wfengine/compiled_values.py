# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The values of a model's templates, compiled at upload: what functions read on a worker.

Workers have no types: ``get_property`` and the first ``get_attribute`` of a node read the
values compiled here, each type's defaults applied (node, capability and relationship types).
Kept apart from ``operations.py``, which compiles what operations run, not the values they read.
"""
from __future__ import annotations

import copy
from typing import Any, Dict


def _defaults(defs: Dict[str, Any]) -> Dict[str, Any]:
    """Default values of property/attribute definitions ({name: {type, default}})."""
    out = {}
    for name, d in (defs or {}).items():
        if isinstance(d, dict) and "default" in d:
            out[name] = copy.deepcopy(d["default"])
    return out


def compile_values(model: Any) -> Dict[str, Dict[str, Any]]:
    """What ``get_property`` / initial ``get_attribute`` read, per template, with the types'
    defaults applied (workers have no types)::

        {template: {"properties": {...}, "attributes": {...},
                    "capabilities": {name: {"properties": {...}, "attributes": {...}}},
                    "relationships": {"<requirement index>": {
                        "properties": {...}, "attributes": {...},
                        "requirement": name, "template": name | None}},
                    "types": [the template's type, its parent, ..., root]}}

    Values may still contain functions (``{get_input: port}``): they are evaluated when read."""
    out: Dict[str, Dict[str, Any]] = {}
    for tname, tpl in model.templates.items():
        ntype = model.node_types[tpl.type]
        caps: Dict[str, Dict[str, Any]] = {}
        for cname, cdef in (ntype.capabilities or {}).items():
            caps[cname] = {"properties": {}, "attributes": {}}
            ctype = cdef if isinstance(cdef, str) else \
                (cdef.get("type") if isinstance(cdef, dict) else None)
            for section in ("properties", "attributes"):
                # the capability type's defaults (workers have no capability types), then the
                # node type's
                caps[cname][section] = _defaults(_capability_type_defs(model, ctype, section))
                if isinstance(cdef, dict) and isinstance(cdef.get(section), dict):
                    caps[cname][section].update(_defaults_or_values(cdef[section]))
        for cname, cass in (tpl.capabilities or {}).items():
            for section in ("properties", "attributes"):
                if isinstance(cass, dict) and isinstance(cass.get(section), dict):
                    caps.setdefault(cname, {"properties": {}, "attributes": {}})[section].update(
                        copy.deepcopy(cass[section]))
        rels = {}
        for i, req in enumerate(tpl.requirements):
            rtype = model.relationship_types[req.relationship]
            rels[str(i)] = {"properties": dict(_defaults(rtype.properties),
                                               **copy.deepcopy(req.properties)),
                            "attributes": _defaults(rtype.attributes), "requirement": req.name,
                            "template": req.relationship_template}
        out[tname] = {"properties": dict(_defaults(ntype.properties),
                                         **copy.deepcopy(tpl.properties)),
                      "attributes": dict(_declared(ntype.attributes),
                                         **copy.deepcopy(tpl.attributes)),
                      "capabilities": caps, "relationships": rels, "types": list(ntype.ancestors)}
    unused = _unused_relationship_templates(model)
    if unused and out:
        # Read by name only (get_attribute: [hello_rel, ...]); kept once, with the first template.
        out[sorted(out)[0]]["relationship_templates"] = unused
    return out


def _unused_relationship_templates(model: Any) -> Dict[str, Dict[str, Any]]:
    """Values of the relationship templates no requirement names, which a function may still read
    by name (xOpera's tosca_functions example reads one this way)."""
    used = {r.relationship_template for t in model.templates.values() for r in t.requirements}
    out: Dict[str, Dict[str, Any]] = {}
    for name, body in sorted((getattr(model, "relationship_templates", None) or {}).items()):
        if name in used or not isinstance(body, dict):
            continue
        rtype = model.relationship_types.get(body.get("type"))
        out[name] = {"properties": dict(_defaults(rtype.properties if rtype else {}),
                                        **copy.deepcopy(body.get("properties") or {})),
                     "attributes": dict(_declared(rtype.attributes if rtype else {}),
                                        **copy.deepcopy(body.get("attributes") or {}))}
    return out


# Attributes the engine computes for every node instance (operation/function_contexts.py):
# never a declared null.
_COMPUTED_ATTRIBUTES = ("tosca_id", "tosca_name")


def _declared(defs: Dict[str, Any]) -> Dict[str, Any]:
    """Every declared attribute: its default, else null.  A declared attribute nothing has set yet
    reads as null (a script gets an empty value), as a Compute's ``private_address`` when no
    operation reported one; an undeclared name stays an error (checked at upload)."""
    out: Dict[str, Any] = {name: None for name in (defs or {}) if name not in _COMPUTED_ATTRIBUTES}
    out.update(_defaults(defs))
    return out


def _capability_type_defs(model: Any, ctype: Any, section: str) -> Dict[str, Any]:
    """Property (or attribute) definitions of a capability type and its ancestors, nearest first
    (``Model.capability_types``: the raw capability types the model's node types use)."""
    out: Dict[str, Any] = {}
    known = getattr(model, "capability_types", None) or {}
    seen = 0
    while isinstance(ctype, str) and ctype in known and seen < 64:
        raw = known[ctype] or {}
        for name, d in (raw.get(section) or {}).items():
            out.setdefault(name, d)
        ctype = raw.get("derived_from")
        seen += 1
    return out


def _defaults_or_values(props: Dict[str, Any]) -> Dict[str, Any]:
    """A capability definition in a node type may give property values or definitions."""
    out = {}
    for name, v in props.items():
        if isinstance(v, dict) and "type" in v:
            if "default" in v:
                out[name] = copy.deepcopy(v["default"])
        else:
            out[name] = copy.deepcopy(v)
    return out
