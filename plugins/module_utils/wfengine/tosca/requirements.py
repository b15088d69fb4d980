# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choosing the target of a requirement that does not name a node template (TOSCA 1.3 3.8.2).

A requirement may name a node TYPE (``node: tosca.nodes.DBMS``) or give only a ``node_filter``
(3.6.4: properties and capabilities with constraint clauses, 3.6.3); the requirement definition's
``node`` type and ``capability`` narrow the choice.  The engine deploys one topology, so exactly
one template of the topology must match: none or several is an upload error naming the
candidates, since guessing would deploy something the author did not mean.

Occurrences (3.7.3): the bounds a type author wrote are enforced; see ``occurrence_problems``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, cast

from . import constraints as cons
from .datatypes import DataTypes, is_function

UNBOUNDED = "UNBOUNDED"


def capability_ancestors(registry: Any, name: str) -> List[str]:
    """[name, parent, ...] of a capability type; [name] when it is unknown (no type, no chain)."""
    chain = [name]
    while len(chain) < 64:
        raw = registry.raw("capability_types", chain[-1])
        parent = raw.get("derived_from") if isinstance(raw, dict) else None
        if not isinstance(parent, str) or parent in chain:
            break
        chain.append(parent)
    return chain


def capability_type_of(cdef: Any) -> Optional[str]:
    """The type of a capability definition of a node type (short form: the type name)."""
    if isinstance(cdef, str):
        return cdef
    if isinstance(cdef, dict) and isinstance(cdef.get("type"), str):
        return cast(str, cdef["type"])
    return None


def capability_property_defs(registry: Any, ctype: Optional[str], cdef: Any) -> Dict[str, Any]:
    """Property definitions of a capability: its type's (ancestors first), refined by the node
    type's capability definition when that gives definitions (``{type: ...}``)."""
    props: Dict[str, Any] = {}
    if ctype:
        for name in reversed(capability_ancestors(registry, ctype)):
            raw = registry.raw("capability_types", name)
            if isinstance(raw, dict) and isinstance(raw.get("properties"), dict):
                props.update(raw["properties"])
    if isinstance(cdef, dict) and isinstance(cdef.get("properties"), dict):
        for k, v in cdef["properties"].items():
            if isinstance(v, dict) and "type" in v:
                props[k] = v
    return props


class Candidates:
    """The node templates of a topology as a requirement sees them (type, values)."""

    def __init__(self, registry: Any, raw_templates: Dict[str, Any], inputs: Dict[str, Any],
                 datatypes: DataTypes):
        self.registry = registry
        self.raw = raw_templates
        self.inputs = inputs if isinstance(inputs, dict) else {}
        self.datatypes = datatypes

    def node_type(self, name: str) -> Any:
        raw = self.raw.get(name)
        tname = raw.get("type") if isinstance(raw, dict) else None
        if not self.registry.has_node_type(tname):
            return None
        try:
            return self.registry.resolve_node_type(tname)
        except Exception:           # a bad type is reported on its own template
            return None

    def _static(self, value: Any) -> Tuple[bool, Any]:
        """(known, value): a ``get_input`` is read from the input's default; other functions
        have no value at upload."""
        if isinstance(value, dict) and len(value) == 1 and "get_input" in value:
            d = self.inputs.get(value["get_input"]) if isinstance(value["get_input"], str) else None
            if isinstance(d, dict) and "default" in d:
                return True, d["default"]
            return False, None
        if is_function(value):
            return False, None
        return True, value

    def _has_capability(self, ntype: Any, cap: str) -> Optional[str]:
        """The name of ``ntype``'s capability called ``cap`` or of type (derived from) ``cap``."""
        if cap in ntype.capabilities:
            return cap
        for cname, cdef in ntype.capabilities.items():
            ctype = capability_type_of(cdef)
            if ctype and cap in capability_ancestors(self.registry, ctype):
                return cast(str, cname)
        return None

    def _matches_props(self, values: Dict[str, Any], defs: Dict[str, Any], filters: Any) -> bool:
        for prop, raw_clauses in _filter_items(filters):
            if prop not in values:
                return False
            known, value = self._static(values[prop])
            if not known:
                return False
            d = defs.get(prop)
            key = self.datatypes.key(d["type"]) if isinstance(d, dict) and isinstance(d.get("type"), str) \
                else (lambda v: v)
            for clause in cons.clauses(raw_clauses):
                if cons.check(clause, value, key) is not None:
                    return False
        return True

    def matches(self, name: str, node_type: Optional[str], capability: Optional[str], node_filter: Any) -> bool:
        ntype = self.node_type(name)
        if ntype is None:
            return False
        if node_type and not ntype.is_a(node_type):
            return False
        if capability and self._has_capability(ntype, capability) is None:
            return False
        if not isinstance(node_filter, dict):
            return True
        raw = self.raw[name]
        values = {k: d["default"] for k, d in ntype.properties.items() if isinstance(d, dict) and "default" in d}
        values.update(raw.get("properties") or {})
        if not self._matches_props(values, ntype.properties, node_filter.get("properties")):
            return False
        return all(self._capability_matches(raw, ntype, cap, body)
                   for cap, body in _filter_items(node_filter.get("capabilities")))

    def _capability_matches(self, raw: Dict[str, Any], ntype: Any, cap: str, body: Any) -> bool:
        """One ``capabilities`` entry of a node filter, against a template (``raw``) of
        ``ntype``: the capability exists and its property values match the entry's."""
        cname = self._has_capability(ntype, cap)
        if cname is None:
            return False
        cdef = ntype.capabilities[cname]
        cdefs = capability_property_defs(self.registry, capability_type_of(cdef), cdef)
        cvalues = {k: d["default"] for k, d in cdefs.items()
                   if isinstance(d, dict) and "default" in d}
        if isinstance(cdef, dict) and isinstance(cdef.get("properties"), dict):
            cvalues.update({k: v for k, v in cdef["properties"].items()
                            if not (isinstance(v, dict) and "type" in v)})
        cass = (raw.get("capabilities") or {}).get(cname)
        if isinstance(cass, dict) and isinstance(cass.get("properties"), dict):
            cvalues.update(cass["properties"])
        return self._matches_props(cvalues, cdefs, (body or {}).get("properties")
                                   if isinstance(body, dict) else None)

    def select(self, source: str, node_type: Optional[str], capability: Optional[str],
               node_filter: Any) -> List[str]:
        return [n for n in sorted(self.raw) if n != source
                and self.matches(n, node_type, capability, node_filter)]


def _filter_items(raw: Any) -> List[Tuple[str, Any]]:
    """Entries of a node filter's ``properties`` / ``capabilities``: a list of single-key maps
    (the grammar) or one map (a frequent variant)."""
    if isinstance(raw, dict):
        return list(raw.items())
    out: List[Tuple[Any, Any]] = []
    for item in raw or []:
        if isinstance(item, dict):
            out.extend(item.items())
    return out


def node_filter_error(node_filter: Any) -> Optional[str]:
    """Why a node filter is malformed, or None."""
    if not isinstance(node_filter, dict):
        return "node_filter must be a mapping with properties and/or capabilities"
    unknown = set(node_filter) - {"properties", "capabilities"}
    if unknown:
        return "node_filter: unknown keys %s (allowed: capabilities, properties)" % ", ".join(sorted(unknown))
    for section in ("properties", "capabilities"):
        raw = node_filter.get(section)
        if raw is not None and not isinstance(raw, (list, dict)):
            return "node_filter.%s must be a list of single-key maps" % section
    for prop, clauses in _filter_items(node_filter.get("properties")):
        for c in cons.clauses(clauses):
            bad = cons.clause_error(c)
            if bad:
                return "node_filter property %s: %s" % (prop, bad)
    return None


def occurrences(raw: Any) -> Optional[Tuple[int, Optional[int]]]:
    """(min, max or None for UNBOUNDED) of an ``occurrences`` list, None when malformed."""
    if not (isinstance(raw, list) and len(raw) == 2):
        return None
    lo, hi = raw
    if not (isinstance(lo, int) and not isinstance(lo, bool) and lo >= 0):
        return None
    if hi == UNBOUNDED:
        return lo, None
    if not (isinstance(hi, int) and not isinstance(hi, bool) and hi >= lo):
        return None
    return lo, hi
