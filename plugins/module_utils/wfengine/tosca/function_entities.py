# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the entity of a TOSCA function designates, and which names it has (upload checks).

``function_checks.py`` walks the model's values and checks each function's arguments; this file
answers its questions about the model: which node templates SELF, SOURCE, TARGET, HOST or a
template name may be where a value sits (``Scope``), whether one of them has a property,
attribute, capability, operation or artifact, and if not, the one-line reason.  Kept apart so
that the walk and the model lookups each stay readable.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

HOSTED_ON = "tosca.relationships.HostedOn"
NORMATIVE_ATTRIBUTES = ("tosca_id", "tosca_name", "state")
KEYWORDS = ("SELF", "SOURCE", "TARGET", "HOST")
_NOT_OPERATIONS = ("type", "description", "inputs", "operations", "notifications",
                   "derived_from", "metadata", "version")


class Scope:
    """What the entity keywords designate where a value sits.

    ``node``: the node template of SELF (None in topology outputs); ``rel``: for a value of a
    relationship (its properties, its operations' inputs): (source template, requirement), or
    (None, None) for a relationship template no requirement names; ``rel_names``: the
    properties/attributes the relationship has."""

    def __init__(self, node: Optional[str], rel: Optional[Tuple[Optional[str], Any]] = None,
                 rel_props: Optional[Set[str]] = None, rel_attrs: Optional[Set[str]] = None,
                 rel_ifaces: Optional[Dict[str, Any]] = None):
        self.node = node
        self.rel = rel
        self.rel_props = rel_props or set()
        self.rel_attrs = rel_attrs or set()
        self.rel_ifaces = rel_ifaces or {}

    @property
    def source(self) -> Optional[str]:
        return self.rel[0] if self.rel else None

    @property
    def target(self) -> Optional[str]:
        return self.rel[1].node if self.rel and self.rel[1] is not None else None


def ops_of(interfaces: Any) -> Dict[str, Dict[str, Any]]:
    """{short interface name: {operation: definition}} of an interfaces section."""
    out: Dict[str, Dict[str, Any]] = {}
    for iname, body in (interfaces or {}).items() if isinstance(interfaces, dict) else []:
        if not isinstance(body, dict):
            continue
        ops = out.setdefault(iname.rsplit(".", 1)[-1], {})
        items = dict(body.get("operations") or {}) \
            if isinstance(body.get("operations"), dict) else {}
        items.update({k: v for k, v in body.items() if k not in _NOT_OPERATIONS})
        for oname, op in items.items():
            ops[oname] = op
    return out


def has_impl(op: Any) -> bool:
    """An operation definition with an implementation (the only kind that reports outputs)."""
    return isinstance(op, str) or (isinstance(op, dict) and op.get("implementation") is not None)


def _kind(attributes: bool) -> str:
    return "attribute or property" if attributes else "property"


def _templates_text(ends: List[str]) -> str:
    return " / ".join("template %s" % e for e in ends)


class Entities:
    """The model lookups of the function checks (a base of ``function_checks._Checker``)."""

    model: Any
    registry: Any
    raw_rel_templates: Dict[str, Any]
    written: Dict[str, Set[str]]

    # ---------------------------------------------------------------- entities
    def _hosts(self, tname: str) -> List[str]:
        chain: List[str] = []
        cur = tname
        while cur is not None and len(chain) < 64:
            nxt = self._host_of(cur)
            if nxt is None or nxt in chain:
                break
            chain.append(nxt)
            cur = nxt
        return chain

    def _host_of(self, tname: str) -> Optional[str]:
        for r in self.model.templates[tname].requirements:
            rtype = self.model.relationship_types.get(r.relationship)
            if rtype is not None and rtype.is_a(HOSTED_ON):
                return r.node    # type: ignore[no-any-return]
        return None

    def _ends(self, scope: Scope) -> List[str]:
        """The node templates an operation of ``scope`` may run on (SELF's node)."""
        if scope.rel is not None:
            return [n for n in (scope.source, scope.target) if n]
        return [scope.node] if scope.node else []

    def _entity(self, entity: str, scope: Scope, host_ok: bool
                ) -> Tuple[List[str], Optional[str]]:
        """(node templates the entity may be, problem).  ([], None): not checkable statically."""
        if entity in ("SELF", "HOST"):
            if entity == "HOST" and not host_ok:
                return [], "HOST is not allowed here"
            ends = self._ends(scope)
            if not ends and scope.rel is None:
                return [], "%s is not defined here (topology outputs name a template)" % entity
            return ends, None
        if entity in ("SOURCE", "TARGET"):
            if scope.rel is None:
                return [], ("%s is only defined in a relationship (its properties and operations)"
                            % entity)
            end = scope.source if entity == "SOURCE" else scope.target
            return ([end] if end else []), None
        if entity in self.model.templates:
            return [entity], None
        return [], ("unknown template %r (node templates: %s)"
                    % (entity, ", ".join(sorted(self.model.templates))))

    def _rel_template_names(self, name: str) -> Optional[Tuple[Set[str], Set[str]]]:
        body = self.raw_rel_templates.get(name)
        if not isinstance(body, dict):
            return None
        rtype = self.model.relationship_types.get(body.get("type"))
        props = set(body.get("properties") or {}) | set((rtype.properties if rtype else {}) or {})
        attrs = set(body.get("attributes") or {}) | set((rtype.attributes if rtype else {}) or {}) \
            | set(NORMATIVE_ATTRIBUTES)
        return props, attrs

    # ---------------------------------------------------------------- properties, attributes
    def lookup(self, entity: str, names: List[Any], attributes: bool, scope: Scope
               ) -> Optional[str]:
        """None when ``names`` can be read on ``entity`` from ``scope``; else why not."""
        if entity == "HOST":
            return self._lookup_host(names, attributes, scope)
        if entity == "SELF" and scope.rel is not None:
            if names[0] in scope.rel_props or (attributes and names[0] in scope.rel_attrs):
                return None
        if entity not in KEYWORDS and entity not in self.model.templates:
            rel = self._rel_template_names(entity)
            if rel is not None:
                return self._rel_template_has(entity, rel, names[0], attributes)
        ends, problem = self._entity(entity, scope, True)
        if problem:
            return problem
        if not ends:
            return None
        results = [self.node_has(e, names, attributes) for e in ends]
        if any(r is None for r in results):
            return None
        return results[0] if len(results) == 1 or entity != "SELF" else \
            "neither the relationship nor %s has %s %r" % (" nor ".join(ends), _kind(attributes),
                                                           names[0])

    @staticmethod
    def _rel_template_has(entity: str, rel: Tuple[Set[str], Set[str]], first: Any,
                          attributes: bool) -> Optional[str]:
        props, attrs = rel
        if first in props or (attributes and first in attrs):
            return None
        return "relationship template %s has no %s %r (%s)" % (
            entity, _kind(attributes), first,
            ", ".join(sorted(props | (attrs if attributes else set()))) or "none")

    def _lookup_host(self, names: List[Any], attributes: bool, scope: Scope) -> Optional[str]:
        ends, problem = self._entity("HOST", scope, True)
        if problem:
            return problem
        checked = False
        for end in ends:
            chain = self._hosts(end)
            if not chain:
                continue
            checked = True
            if any(self.node_has(h, names, attributes) is None for h in chain):
                return None
        if not checked:
            return "HOST: %s is hosted on nothing" % _templates_text(ends) if ends else None
        return "no host of %s has %s %r (hosts: %s)" % (
            " / ".join(ends), _kind(attributes), names[0],
            ", ".join(h for e in ends for h in self._hosts(e)))

    def _node_names(self, tname: str) -> Tuple[Set[str], Set[str], Dict[str, Any]]:
        """(properties, attributes, capabilities) of template ``tname``."""
        tpl = self.model.templates[tname]
        ntype = self.model.node_types[tpl.type]
        props = set(ntype.properties or {}) | set(tpl.properties or {})
        attrs = set(ntype.attributes or {}) | set(tpl.attributes or {}) \
            | self.written.get(tname, set()) | set(NORMATIVE_ATTRIBUTES)
        caps = dict(ntype.capabilities or {})
        caps.update({k: v for k, v in (tpl.capabilities or {}).items() if k not in caps})
        return props, attrs, caps

    def node_has(self, tname: str, names: List[Any], attributes: bool) -> Optional[str]:
        """None when ``names`` can be read on template ``tname``; else why not."""
        tpl = self.model.templates[tname]
        first = names[0]
        props, attrs, caps = self._node_names(tname)
        if first in props or (attributes and first in attrs):
            return None
        if attributes and any(
                first in (self._capability_names(cdef, (tpl.capabilities or {}).get(c), True,
                                                 only_attributes=True) or ())
                for c, cdef in caps.items()):
            # a capability's attribute (an endpoint's ip_address) is reported on the node
            return None
        if len(names) >= 2 and isinstance(names[1], str):
            decided, problem = self._nested(tname, names, attributes, (props, attrs, caps))
            if decided:
                return problem
        known = sorted(props | (attrs if attributes else set()))
        return "template %s (type %s) has no %s %r (%s: %s)" % (
            tname, tpl.type, _kind(attributes), first,
            "attributes and properties" if attributes else "properties", ", ".join(known) or "none")

    def _nested(self, tname: str, names: List[Any], attributes: bool,
                own: Tuple[Set[str], Set[str], Dict[str, Any]]) -> Tuple[bool, Optional[str]]:
        """``[name, key, ...]`` where ``name`` is a capability or a requirement of ``tname``:
        (True, problem or None) when that decides, (False, None) to report ``name`` unknown."""
        props, attrs, caps = own
        tpl = self.model.templates[tname]
        ntype = self.model.node_types[tpl.type]
        first = names[0]
        reqs = [r for r in tpl.requirements if r.name == first]
        if first in caps:
            known = self._capability_names(ntype.capabilities.get(first),
                                           (tpl.capabilities or {}).get(first), attributes)
            if known is None or names[1] in known or (attributes and names[1] in attrs | props):
                return True, None
            if not reqs:   # else: a requirement of the same name (a WebServer's host), below
                return True, "capability %s of template %s has no %s %r (%s)" % (
                    first, tname, _kind(attributes), names[1], ", ".join(sorted(known)) or "none")
        if reqs:
            return True, self._through_requirement(tname, reqs[0], names, attributes)
        if first in (ntype.requirements or {}):
            return True, ("requirement %s of template %s is not assigned: it targets no node"
                          % (first, tname))
        return False, None

    def _through_requirement(self, tname: str, req: Any, names: List[Any], attributes: bool
                             ) -> Optional[str]:
        problem = self.node_has(req.node, names[1:], attributes)
        if problem is not None:
            # ... or the target's capability named like the requirement (see
            # operation/function_eval.py)
            target = self.model.templates[req.node]
            tcaps = self.model.node_types[target.type].capabilities or {}
            if names[0] in tcaps:
                known = self._capability_names(tcaps[names[0]],
                                               (target.capabilities or {}).get(names[0]),
                                               attributes)
                if known is None or names[1] in known:
                    problem = None
        return None if problem is None else "requirement %s of template %s targets %s: %s" % (
            names[0], tname, req.node, problem)

    def _capability_names(self, cdef: Any, cass: Any, attributes: bool,
                          only_attributes: bool = False) -> Optional[Set[str]]:
        """Property (and attribute) names of a capability; None when its type is unknown here."""
        ctype = cdef if isinstance(cdef, str) else \
            (cdef.get("type") if isinstance(cdef, dict) else None)
        names: Set[str] = set()
        sections = ("attributes",) if only_attributes else \
            ("properties",) + (("attributes",) if attributes else ())
        for section in sections:
            for src in (cdef, cass):
                if isinstance(src, dict) and isinstance(src.get(section), dict):
                    names.update(src[section])
        if not isinstance(ctype, str) or self.registry is None:
            return None
        seen = 0
        cur: Optional[str] = ctype
        while cur is not None and seen < 64:
            raw = self.registry.raw("capability_types", cur)
            if raw is None:
                return None
            for section in sections:
                if isinstance(raw.get(section), dict):
                    names.update(raw[section])
            cur = raw.get("derived_from") if isinstance(raw.get("derived_from"), str) else None
            seen += 1
        return names

    # ---------------------------------------------------------------- operations, artifacts
    def operation(self, entity: str, iface: str, op: str, scope: Scope) -> Optional[str]:
        """None when ``entity`` may have run operation ``iface.op`` (so has its outputs)."""
        if entity == "HOST":
            return ("HOST is not an entity of get_operation_output "
                    "(SELF, SOURCE, TARGET or a template)")
        short = iface.rsplit(".", 1)[-1]
        if entity == "SELF" and scope.rel is not None:
            if has_impl(scope.rel_ifaces.get(short, {}).get(op)):
                return None
        ends, problem = self._entity(entity, scope, False)
        if problem:
            return problem
        if not ends:
            return None
        for e in ends:
            ops = self._node_ops(e)
            if has_impl(ops.get(short, {}).get(op)):
                return None
        declared = sorted("%s.%s" % (i, o) for e in ends for i, os_ in self._node_ops(e).items()
                          for o, d in os_.items() if has_impl(d))
        return ("%s has no operation %s.%s with an implementation: it never reports outputs "
                "(operations: %s)" % (_templates_text(ends), short, op,
                                      ", ".join(declared) or "none"))

    def _node_ops(self, tname: str) -> Dict[str, Dict[str, Any]]:
        """Operations of a template that may have run: its own, and its relationships' (a
        relationship operation's outputs are kept on the node that ran it)."""
        m = self.model
        tpl = m.templates[tname]
        merged: Dict[str, Dict[str, Any]] = {}
        layers = [ops_of(m.node_types[tpl.type].interfaces), ops_of(tpl.interfaces)]
        for t in m.templates.values():
            for r in t.requirements:
                if tname in (t.name, r.node):
                    rtype = m.relationship_types.get(r.relationship)
                    layers += [ops_of(rtype.interfaces if rtype else {}), ops_of(r.interfaces)]
        for layer in layers:
            for iname, ops in layer.items():
                for oname, d in ops.items():
                    if has_impl(d) or oname not in merged.get(iname, {}):
                        merged.setdefault(iname, {})[oname] = d
        return merged

    def artifact(self, entity: str, name: str, scope: Scope) -> Optional[str]:
        """None when ``entity`` may have artifact ``name``; else why not."""
        ends, problem = self._entity(entity, scope, True)
        if problem:
            return problem
        if entity == "HOST":
            hosts = [self._hosts(e) for e in ends]
            if ends and not any(hosts):
                return "HOST: %s is hosted on nothing" % _templates_text(ends)
            ends = [h[0] for h in hosts if h]
        if not ends:
            return None
        if any(name in self._artifacts_of(e) for e in ends):
            return None
        arts = sorted(set(a for e in ends for a in self._artifacts_of(e)))
        return "%s has no artifact %r (artifacts: %s)" % (
            _templates_text(ends), name, ", ".join(arts) or "none")

    def _artifacts_of(self, tname: str) -> List[str]:
        tpl = self.model.templates[tname]
        return list(tpl.artifacts or {}) + list(self.model.node_types[tpl.type].artifacts or {})
