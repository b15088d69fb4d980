# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upload-time checks of the TOSCA functions a model uses.

Functions are evaluated late (``operation/function_eval.py``: attributes only exist once
operations ran), but almost every mistake in one is visible in the model: an unknown function, a wrong number of
arguments, ``get_input`` of an input the topology does not declare, an entity that names no
template, a property or attribute that the entity's type does not define, SOURCE or TARGET
outside a relationship.  Found at upload, each is one line naming the file, the YAML path and
the template; found at run time, it would fail an operation half-way through an install.

Names are looked up in the resolved types: a node type's properties and attributes (with the
normative ``tosca_id``, ``tosca_name``, ``state``), the attributes an operation's ``outputs``
mapping writes, capability type definitions, and for HOST every type along the HostedOn chain.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from ..errors import ToscaError
from ..operation.functions import FUNCTIONS, LOCAL_FILE
from ..secrets import check_args as check_secret_args

HOSTED_ON = "tosca.relationships.HostedOn"
NORMATIVE_ATTRIBUTES = ("tosca_id", "tosca_name", "state")
# Functions of TOSCA (1.x and 2.0) or of other orchestrators that the engine does not evaluate:
# named as unknown functions rather than passed on as a map.
_FOREIGN = ("get_env", "get_value", "get_nodes", "get_target_capability", "map_value")
_ENTITY_SHAPE = "[SELF|SOURCE|TARGET|HOST|<template>, name, nested keys or indexes...]"


# "...interfaces.<interface>.<operation>.inputs." or "...interfaces.<interface>.operations.<operation>.inputs."
_OPERATION_INPUT = re.compile(r"\.interfaces\.([^.]+(?:\.[^.]+)*?)\.(?:operations\.)?([^.]+)\.inputs\.")


class _Scope:
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


def check_functions(model: Any, libraries: Iterable[Dict[str, Any]] = ()) -> List[ToscaError]:
    """Every problem in the functions of ``model``, each a ToscaError naming file, YAML path and
    template; an empty list when all of them can be evaluated.  ``libraries``: the uploaded
    libraries' raw types (capability type definitions come from them, the normative types and
    the model's own files)."""
    return _Checker(model, list(libraries)).run()


def _ops_of(interfaces: Any) -> Dict[str, Dict[str, Any]]:
    """{short interface name: {operation: definition}} of an interfaces section."""
    out: Dict[str, Dict[str, Any]] = {}
    for iname, body in (interfaces or {}).items() if isinstance(interfaces, dict) else []:
        if not isinstance(body, dict):
            continue
        ops = out.setdefault(iname.rsplit(".", 1)[-1], {})
        items = dict(body.get("operations") or {}) if isinstance(body.get("operations"), dict) else {}
        items.update({k: v for k, v in body.items()
                      if k not in ("type", "description", "inputs", "operations", "notifications",
                                   "derived_from", "metadata", "version")})
        for oname, op in items.items():
            ops[oname] = op
    return out


def _has_impl(op: Any) -> bool:
    return isinstance(op, str) or (isinstance(op, dict) and op.get("implementation") is not None)


class _Checker:
    def __init__(self, model: Any, libraries: List[Dict[str, Any]]):
        self.model = model
        self.problems: List[ToscaError] = []
        self._seen: Set[str] = set()
        self.registry, self.raw_rel_templates = self._registry(libraries)
        self.written = self._written_attributes()

    # ---------------------------------------------------------------- setup
    def _registry(self, libraries: List[Dict[str, Any]]) -> Tuple[Any, Dict[str, Any]]:
        """Capability type definitions (the model keeps only node and relationship types) and
        the raw relationship templates, read again from the model's files."""
        from .loader import load_document
        from .normative import normative_types
        from .types import TypeRegistry, raw_types_of
        try:
            doc = load_document(self.model.file)
            registry = TypeRegistry([normative_types()] + libraries + [raw_types_of(doc)])
            topo = doc.topology_template if isinstance(doc.topology_template, dict) else {}
            rels = topo.get("relationship_templates")
            return registry, (rels if isinstance(rels, dict) else {})
        except Exception:   # the model loaded already: a failure here only makes checks lenient
            return None, {}

    def _written_attributes(self) -> Dict[str, Set[str]]:
        """Per template, the attributes an operation's ``outputs`` mapping writes (TOSCA 1.3
        3.6.17): declared by the model as surely as an attribute definition."""
        out: Dict[str, Set[str]] = {}
        m = self.model
        for tname, tpl in m.templates.items():
            for ifaces in (m.node_types[tpl.type].interfaces, tpl.interfaces):
                for ops in _ops_of(ifaces).values():
                    for op in ops.values():
                        for target in ((op.get("outputs") or {}).values() if isinstance(op, dict) else []):
                            if isinstance(target, list) and len(target) == 2 and target[0] == "SELF":
                                out.setdefault(tname, set()).add(target[1])
            for req in tpl.requirements:
                rtype = m.relationship_types.get(req.relationship)
                for ifaces in ((rtype.interfaces if rtype else {}), req.interfaces):
                    for ops in _ops_of(ifaces).values():
                        for op in ops.values():
                            for target in ((op.get("outputs") or {}).values() if isinstance(op, dict) else []):
                                if isinstance(target, list) and len(target) == 2:
                                    end = {"SOURCE": tname, "TARGET": req.node}.get(target[0])
                                    if end:
                                        out.setdefault(end, set()).add(target[1])
        return out

    def err(self, msg: str, file: Optional[str], path: str, where: str) -> None:
        e = ToscaError("%s: %s" % (where, msg) if where else msg, file=file, path=path)
        if str(e) not in self._seen:
            self._seen.add(str(e))
            self.problems.append(e)

    # ---------------------------------------------------------------- where values are
    def run(self) -> List[ToscaError]:
        m = self.model
        for tname, tpl in m.templates.items():
            base = "topology_template.node_templates.%s" % tname
            where = "node template %s" % tname
            scope = _Scope(tname)
            for section in ("properties", "attributes", "capabilities", "artifacts", "interfaces"):
                self.walk(getattr(tpl, section) or {}, scope, tpl.file, "%s.%s" % (base, section), where)
            ntype = m.node_types[tpl.type]
            twhere = "%s (type %s)" % (where, tpl.type)
            for anc in reversed(ntype.ancestors):
                t = m.node_types.get(anc)
                if t is None:
                    continue
                tbase = "node_types.%s" % anc
                for section in ("properties", "attributes"):
                    for pname, pdef in (getattr(t, section) or {}).items():
                        if isinstance(pdef, dict) and "default" in pdef:
                            self.walk(pdef["default"], scope, t.file,
                                      "%s.%s.%s.default" % (tbase, section, pname), twhere)
                self.walk(t.interfaces or {}, scope, t.file, "%s.interfaces" % tbase, twhere)
            for i, req in enumerate(tpl.requirements):
                self._requirement(tname, tpl, i, req)
        for oname, odef in (m.outputs or {}).items():
            value = odef.get("value") if isinstance(odef, dict) else odef
            self.walk(value, _Scope(None), m.file, "topology_template.outputs.%s.value" % oname,
                      "output %s" % oname)
        used = {r.relationship_template for t in m.templates.values() for r in t.requirements}
        for rname, body in self.raw_rel_templates.items():
            if rname in used or not isinstance(body, dict):
                continue
            scope = self._rel_scope(None, None, body.get("type"), body)
            for section in ("properties", "attributes", "interfaces"):
                self.walk(body.get(section) or {}, scope, m.file,
                          "topology_template.relationship_templates.%s.%s" % (rname, section),
                          "relationship template %s" % rname)
        return self.problems

    def _rel_scope(self, tname: Optional[str], req: Any, rtype_name: Optional[str], body: Dict[str, Any]) -> _Scope:
        rtype = self.model.relationship_types.get(rtype_name) if rtype_name else None
        props = set((rtype.properties if rtype else {}) or {}) | set(body.get("properties") or {})
        attrs = set((rtype.attributes if rtype else {}) or {}) | set(body.get("attributes") or {}) \
            | set(NORMATIVE_ATTRIBUTES)
        ifaces = _ops_of(rtype.interfaces if rtype else {})
        for iname, ops in _ops_of(body.get("interfaces")).items():
            ifaces.setdefault(iname, {}).update(ops)
        return _Scope(tname, rel=(tname, req), rel_props=props, rel_attrs=attrs, rel_ifaces=ifaces)

    def _requirement(self, tname: str, tpl: Any, i: int, req: Any) -> None:
        m = self.model
        body = {"properties": req.properties, "interfaces": req.interfaces}
        if req.relationship_template and isinstance(self.raw_rel_templates.get(req.relationship_template), dict):
            body["attributes"] = self.raw_rel_templates[req.relationship_template].get("attributes") or {}
        scope = self._rel_scope(tname, req, req.relationship, body)
        where = "node template %s, requirement %s" % (tname, req.name)
        if req.relationship_template:
            path = "topology_template.relationship_templates.%s" % req.relationship_template
        else:
            path = "topology_template.node_templates.%s.requirements[%d].%s.relationship" % (tname, i, req.name)
        for section in ("properties", "interfaces"):
            self.walk(getattr(req, section) or {}, scope, tpl.file, "%s.%s" % (path, section), where)
        rtype = m.relationship_types.get(req.relationship)
        for anc in reversed(rtype.ancestors if rtype else []):
            t = m.relationship_types.get(anc)
            if t is not None:
                self.walk(t.interfaces or {}, scope, t.file, "relationship_types.%s.interfaces" % anc,
                          "%s (relationship type %s)" % (where, req.relationship))

    # ---------------------------------------------------------------- values
    def walk(self, value: Any, scope: _Scope, file: Optional[str], path: str, where: str) -> None:
        if isinstance(value, dict):
            if len(value) == 1:
                key = next(iter(value))
                if key in FUNCTIONS:
                    self.function(key, value[key], scope, file, "%s.%s" % (path, key), where)
                    return
                if isinstance(key, str) and (key in _FOREIGN or key.startswith("get_") or key.startswith("$")):
                    self.err("unknown function %s (supported: %s)" % (key, ", ".join(FUNCTIONS)),
                             file, "%s.%s" % (path, key), where)
                    return
            for k, v in value.items():
                self.walk(v, scope, file, "%s.%s" % (path, k), where)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.walk(v, scope, file, "%s[%d]" % (path, i), where)

    def function(self, fn: str, args: Any, scope: _Scope, file: Optional[str], path: str, where: str) -> None:
        def bad(msg: str) -> None:
            self.err("%s: %s" % (fn, msg), file, path, where)

        if fn == "get_input":
            keys = args if isinstance(args, list) else [args]
            if not keys or not isinstance(keys[0], str) or \
                    not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in keys):
                return bad("expected an input name, or [name, nested keys...], got %r" % (args,))
            if keys[0] not in (self.model.inputs or {}):
                bad("no input %r in topology_template.inputs (declared: %s)"
                    % (keys[0], ", ".join(sorted(self.model.inputs or {})) or "none"))
        elif fn in ("get_property", "get_attribute"):
            if not isinstance(args, list) or len(args) < 2 or not all(isinstance(a, str) for a in args[:2]) \
                    or not all(isinstance(a, (str, int)) and not isinstance(a, bool) for a in args[2:]):
                return bad("expected %s, got %r" % (_ENTITY_SHAPE, args))
            problem = self.lookup(args[0], list(args[1:]), fn == "get_attribute", scope)
            if problem:
                bad(problem)
        elif fn == "concat":
            if not isinstance(args, list):
                return bad("expected a list of values, got %r" % (args,))
            self.walk(args, scope, file, path, where)
        elif fn == "join":
            if not isinstance(args, list) or not 1 <= len(args) <= 2 or \
                    not (isinstance(args[0], list) or self._is_fn(args[0])):
                return bad("expected [[values...], delimiter], got %r" % (args,))
            self.walk(args, scope, file, path, where)
        elif fn == "token":
            if not isinstance(args, list) or len(args) != 3 \
                    or not (isinstance(args[1], str) and args[1] or self._is_fn(args[1])) \
                    or not (isinstance(args[2], int) and not isinstance(args[2], bool) and args[2] >= 0
                            or self._is_fn(args[2])) \
                    or not (isinstance(args[0], str) or self._is_fn(args[0])):
                return bad("expected [string, separator characters, index >= 0], got %r" % (args,))
            self.walk(args, scope, file, path, where)
        elif fn == "get_operation_output":
            if not isinstance(args, list) or len(args) != 4 or not all(isinstance(a, str) and a for a in args):
                return bad("expected [SELF|SOURCE|TARGET|<template>, interface, operation, output name], got %r"
                           % (args,))
            problem = self.operation(args[0], args[1], args[2], scope) or self._own_output(args, scope, path)
            if problem:
                bad(problem)
        elif fn == "get_artifact":
            if not isinstance(args, list) or not 2 <= len(args) <= 4 or not all(isinstance(a, str) for a in args[:2]):
                return bad("expected [SELF|SOURCE|TARGET|HOST|<template>, artifact name, location, remove], got %r"
                           % (args,))
            if len(args) >= 3 and args[2] != LOCAL_FILE:
                return bad("location %r: only %s is supported (the artifact is read where the model's files are "
                           "on the machine running the operation)" % (args[2], LOCAL_FILE))
            if len(args) == 4 and not isinstance(args[3], bool):
                return bad("remove must be true or false, got %r" % (args[3],))
            problem = self.artifact(args[0], args[1], scope)
            if problem:
                bad(problem)
        elif fn == "get_secret":
            if not any(self._is_fn(a) for a in (args if isinstance(args, list) else [])):
                problem = check_secret_args(args)
                if problem:
                    return bad(problem)
            self.walk(args, scope, file, path, where)
        elif fn == "get_nodes_of_type":
            name = args[0] if isinstance(args, list) and len(args) == 1 else args
            if not isinstance(name, str) or not name:
                return bad("expected a node type name, got %r" % (args,))
            if not any(name in self.model.node_types[t.type].ancestors for t in self.model.templates.values()):
                bad("no node template is of type %s or a type derived from it: the list would always be "
                    "empty (write the type's full name, e.g. tosca.nodes.Compute)" % name)

    @staticmethod
    def _own_output(args: List[str], scope: _Scope, path: str) -> Optional[str]:
        """An operation's input that reads that same operation's output can never be evaluated:
        inputs are evaluated before the operation runs."""
        if scope.rel is not None or args[0] not in ("SELF", scope.node):
            return None
        m = _OPERATION_INPUT.search(path)
        if m and m.group(1).rsplit(".", 1)[-1].split(":")[-1] == args[1].rsplit(".", 1)[-1].split(":")[-1] \
                and m.group(2) == args[2]:
            return ("an input of %s.%s reads that operation's own output: inputs are evaluated before it runs"
                    % (m.group(1), m.group(2)))
        return None

    @staticmethod
    def _is_fn(value: Any) -> bool:
        return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS

    # ---------------------------------------------------------------- entities
    def _hosts(self, tname: str) -> List[str]:
        chain: List[str] = []
        cur = tname
        while cur is not None and len(chain) < 64:
            tpl = self.model.templates[cur]
            nxt = None
            for r in tpl.requirements:
                rtype = self.model.relationship_types.get(r.relationship)
                if rtype is not None and rtype.is_a(HOSTED_ON):
                    nxt = r.node
                    break
            if nxt is None or nxt in chain:
                break
            chain.append(nxt)
            cur = nxt
        return chain

    def _ends(self, scope: _Scope) -> List[str]:
        """The node templates an operation of ``scope`` may run on (SELF's node)."""
        if scope.rel is not None:
            return [n for n in (scope.source, scope.target) if n]
        return [scope.node] if scope.node else []

    def _entity(self, entity: str, scope: _Scope, host_ok: bool) -> Tuple[Optional[List[str]], Optional[str]]:
        """(node templates the entity may be, problem).  ([], None): not checkable statically."""
        m = self.model
        if entity == "SELF":
            ends = self._ends(scope)
            if not ends and scope.rel is None:
                return None, "SELF is not defined here (topology outputs name a template)"
            return ends, None
        if entity in ("SOURCE", "TARGET"):
            if scope.rel is None:
                return None, "%s is only defined in a relationship (its properties and operations)" % entity
            end = scope.source if entity == "SOURCE" else scope.target
            return ([end] if end else []), None
        if entity == "HOST":
            if not host_ok:
                return None, "HOST is not allowed here"
            ends = self._ends(scope)
            if not ends and scope.rel is None:
                return None, "HOST is not defined here (topology outputs name a template)"
            return ends, None
        if entity in m.templates:
            return [entity], None
        return None, ("unknown template %r (node templates: %s)" % (entity, ", ".join(sorted(m.templates))))

    def _rel_template_names(self, name: str) -> Optional[Tuple[Set[str], Set[str]]]:
        body = self.raw_rel_templates.get(name)
        if not isinstance(body, dict):
            return None
        rtype = self.model.relationship_types.get(body.get("type"))
        props = set(body.get("properties") or {}) | set((rtype.properties if rtype else {}) or {})
        attrs = set(body.get("attributes") or {}) | set((rtype.attributes if rtype else {}) or {}) \
            | set(NORMATIVE_ATTRIBUTES)
        return props, attrs

    def lookup(self, entity: str, names: List[Any], attributes: bool, scope: _Scope) -> Optional[str]:
        kind = "attribute or property" if attributes else "property"
        if entity == "HOST":
            ends, problem = self._entity(entity, scope, True)
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
                return "HOST: %s is hosted on nothing" % " / ".join("template %s" % e for e in ends) if ends else None
            return "no host of %s has %s %r (hosts: %s)" % (
                " / ".join(ends), kind, names[0], ", ".join(h for e in ends for h in self._hosts(e)))
        if entity == "SELF" and scope.rel is not None:
            if names[0] in scope.rel_props or (attributes and names[0] in scope.rel_attrs):
                return None
        if entity not in ("SELF", "SOURCE", "TARGET", "HOST") and entity not in self.model.templates:
            rel = self._rel_template_names(entity)
            if rel is not None:
                props, attrs = rel
                if names[0] in props or (attributes and names[0] in attrs):
                    return None
                return "relationship template %s has no %s %r (%s)" % (
                    entity, kind, names[0], ", ".join(sorted(props | (attrs if attributes else set()))) or "none")
        ends, problem = self._entity(entity, scope, True)
        if problem:
            return problem
        if not ends:
            return None
        results = [self.node_has(e, names, attributes) for e in ends]
        if any(r is None for r in results):
            return None
        return results[0] if len(results) == 1 or entity != "SELF" else \
            "neither the relationship nor %s has %s %r" % (" nor ".join(ends), kind, names[0])

    def node_has(self, tname: str, names: List[Any], attributes: bool) -> Optional[str]:
        """None when ``names`` can be read on template ``tname``; else why not."""
        m = self.model
        tpl = m.templates[tname]
        ntype = m.node_types[tpl.type]
        first = names[0]
        props = set(ntype.properties or {}) | set(tpl.properties or {})
        attrs = set(ntype.attributes or {}) | set(tpl.attributes or {}) | self.written.get(tname, set()) \
            | set(NORMATIVE_ATTRIBUTES)
        caps = dict(ntype.capabilities or {})
        caps.update({k: v for k, v in (tpl.capabilities or {}).items() if k not in caps})
        if first in props or (attributes and first in attrs):
            return None
        if attributes and any(
                first in (self._capability_names(cdef, (tpl.capabilities or {}).get(c), True, only_attributes=True) or ())
                for c, cdef in caps.items()):
            return None   # a capability's attribute (an endpoint's ip_address) is reported on the node
        kind = "attribute or property" if attributes else "property"
        if len(names) >= 2 and isinstance(names[1], str):
            reqs = [r for r in tpl.requirements if r.name == first]
            if first in caps:
                known = self._capability_names(ntype.capabilities.get(first), (tpl.capabilities or {}).get(first),
                                               attributes)
                if known is None or names[1] in known or (attributes and names[1] in attrs | props):
                    return None
                if not reqs:   # else: a requirement of the same name (a WebServer's host), below
                    return "capability %s of template %s has no %s %r (%s)" % (
                        first, tname, kind, names[1], ", ".join(sorted(known)) or "none")
            if reqs:
                problem = self.node_has(reqs[0].node, names[1:], attributes)
                if problem is not None:
                    # ... or the target's capability named like the requirement (see operation/function_eval.py)
                    target = m.templates[reqs[0].node]
                    tcaps = m.node_types[target.type].capabilities or {}
                    if first in tcaps:
                        known = self._capability_names(tcaps[first], (target.capabilities or {}).get(first),
                                                       attributes)
                        if known is None or names[1] in known:
                            problem = None
                return None if problem is None else "requirement %s of template %s targets %s: %s" % (
                    first, tname, reqs[0].node, problem)
            if first in (ntype.requirements or {}):
                return "requirement %s of template %s is not assigned: it targets no node" % (first, tname)
        known = sorted(props | (attrs if attributes else set()))
        return "template %s (type %s) has no %s %r (%s: %s)" % (
            tname, tpl.type, kind, first, "attributes and properties" if attributes else "properties",
            ", ".join(known) or "none")

    def _capability_names(self, cdef: Any, cass: Any, attributes: bool,
                          only_attributes: bool = False) -> Optional[Set[str]]:
        """Property (and attribute) names of a capability; None when its type is unknown here."""
        ctype = cdef if isinstance(cdef, str) else (cdef.get("type") if isinstance(cdef, dict) else None)
        names: Set[str] = set()
        sections = ("attributes",) if only_attributes else ("properties",) + (("attributes",) if attributes else ())
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
    def operation(self, entity: str, iface: str, op: str, scope: _Scope) -> Optional[str]:
        if entity == "HOST":
            return "HOST is not an entity of get_operation_output (SELF, SOURCE, TARGET or a template)"
        short = iface.rsplit(".", 1)[-1]
        if entity == "SELF" and scope.rel is not None:
            if _has_impl(scope.rel_ifaces.get(short, {}).get(op)):
                return None
        ends, problem = self._entity(entity, scope, False)
        if problem:
            return problem
        if not ends:
            return None
        for e in ends:
            ops = self._node_ops(e, scope)
            if _has_impl(ops.get(short, {}).get(op)):
                return None
        declared = sorted("%s.%s" % (i, o) for e in ends for i, os_ in self._node_ops(e, scope).items()
                          for o, d in os_.items() if _has_impl(d))
        return "%s has no operation %s.%s with an implementation: it never reports outputs (operations: %s)" % (
            " / ".join("template %s" % e for e in ends), short, op, ", ".join(declared) or "none")

    def _node_ops(self, tname: str, scope: _Scope) -> Dict[str, Dict[str, Any]]:
        """Operations of a template that may have run: its own, and its relationships' (a
        relationship operation's outputs are kept on the node that ran it)."""
        m = self.model
        tpl = m.templates[tname]
        merged: Dict[str, Dict[str, Any]] = {}
        layers = [_ops_of(m.node_types[tpl.type].interfaces), _ops_of(tpl.interfaces)]
        for t in m.templates.values():
            for r in t.requirements:
                if tname in (t.name, r.node):
                    rtype = m.relationship_types.get(r.relationship)
                    layers += [_ops_of(rtype.interfaces if rtype else {}), _ops_of(r.interfaces)]
        for layer in layers:
            for iname, ops in layer.items():
                for oname, d in ops.items():
                    if _has_impl(d) or oname not in merged.get(iname, {}):
                        merged.setdefault(iname, {})[oname] = d
        return merged

    def artifact(self, entity: str, name: str, scope: _Scope) -> Optional[str]:
        ends, problem = self._entity(entity, scope, True)
        if problem:
            return problem
        if entity == "HOST":
            hosts = [self._hosts(e) for e in ends]
            if ends and not any(hosts):
                return "HOST: %s is hosted on nothing" % " / ".join("template %s" % e for e in ends)
            ends = [h[0] for h in hosts if h]
        if not ends:
            return None
        m = self.model
        for e in ends:
            tpl = m.templates[e]
            if name in (tpl.artifacts or {}) or name in (m.node_types[tpl.type].artifacts or {}):
                return None
        arts = sorted(set(a for e in ends for a in list(m.templates[e].artifacts or {})
                          + list(m.node_types[m.templates[e].type].artifacts or {})))
        return "%s has no artifact %r (artifacts: %s)" % (
            " / ".join("template %s" % e for e in ends), name, ", ".join(arts) or "none")
