# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upload-time checks of the TOSCA functions a model uses.

Functions are evaluated late (``operation/function_eval.py``: attributes only exist once
operations ran), but almost every mistake in one is visible in the model: an unknown function, a
wrong number of arguments, ``get_input`` of an input the topology does not declare, an entity
that names no template, a property or attribute that the entity's type does not define, SOURCE
or TARGET outside a relationship.  Found at upload, each is one line naming the file, the YAML
path and the template; found at run time, it would fail an operation half-way through an install.

Names are looked up in the resolved types: a node type's properties and attributes (with the
normative ``tosca_id``, ``tosca_name``, ``state``), the attributes an operation's ``outputs``
mapping writes, capability type definitions, and for HOST every type along the HostedOn chain.
Those model lookups are in ``function_entities.py``; this file walks the values and checks each
function's arguments (one method per function, ``_Checker.FUNCTION_CHECKS``).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from ..errors import ToscaError
from ..operation.functions import FUNCTIONS, LOCAL_FILE
from ..secrets import check_args as check_secret_args
from .function_entities import HOSTED_ON, NORMATIVE_ATTRIBUTES, Entities, Scope, ops_of

__all__ = ["HOSTED_ON", "NORMATIVE_ATTRIBUTES", "check_functions"]

# Functions of TOSCA (1.x and 2.0) or of other orchestrators that the engine does not evaluate:
# named as unknown functions rather than passed on as a map.
_FOREIGN = ("get_env", "get_value", "get_nodes", "get_target_capability", "map_value")
_ENTITY_SHAPE = "[SELF|SOURCE|TARGET|HOST|<template>, name, nested keys or indexes...]"


# "...interfaces.<interface>.<operation>.inputs."
# or "...interfaces.<interface>.operations.<operation>.inputs."
_OPERATION_INPUT = re.compile(
    r"\.interfaces\.([^.]+(?:\.[^.]+)*?)\.(?:operations\.)?([^.]+)\.inputs\.")


def check_functions(model: Any, libraries: Iterable[Dict[str, Any]] = ()) -> List[ToscaError]:
    """Every problem in the functions of ``model``, each a ToscaError naming file, YAML path and
    template; an empty list when all of them can be evaluated.  ``libraries``: the uploaded
    libraries' raw types (capability type definitions come from them, the normative types and
    the model's own files)."""
    return _Checker(model, list(libraries)).run()


def _outputs_targets(interfaces: Any) -> Iterator[Any]:
    """The targets of the ``outputs`` mappings of every operation of an interfaces section."""
    for ops in ops_of(interfaces).values():
        for op in ops.values():
            if isinstance(op, dict):
                yield from (op.get("outputs") or {}).values()


def _is_key(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Checker(Entities):
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
                for target in _outputs_targets(ifaces):
                    if isinstance(target, list) and len(target) == 2 and target[0] == "SELF":
                        out.setdefault(tname, set()).add(target[1])
            for req in tpl.requirements:
                rtype = m.relationship_types.get(req.relationship)
                ends = {"SOURCE": tname, "TARGET": req.node}
                for ifaces in ((rtype.interfaces if rtype else {}), req.interfaces):
                    for target in _outputs_targets(ifaces):
                        end = ends.get(target[0]) \
                            if isinstance(target, list) and len(target) == 2 else None
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
            self._template(tname, tpl)
        for oname, odef in (m.outputs or {}).items():
            value = odef.get("value") if isinstance(odef, dict) else odef
            self.walk(value, Scope(None), m.file, "topology_template.outputs.%s.value" % oname,
                      "output %s" % oname)
        used = {r.relationship_template for t in m.templates.values() for r in t.requirements}
        for rname, body in self.raw_rel_templates.items():
            if rname not in used and isinstance(body, dict):
                self._unused_rel_template(rname, body)
        return self.problems

    def _template(self, tname: str, tpl: Any) -> None:
        """A node template's values, its type's defaults and interfaces, its requirements."""
        base = "topology_template.node_templates.%s" % tname
        where = "node template %s" % tname
        scope = Scope(tname)
        for section in ("properties", "attributes", "capabilities", "artifacts", "interfaces"):
            self.walk(getattr(tpl, section) or {}, scope, tpl.file, "%s.%s" % (base, section),
                      where)
        ntype = self.model.node_types[tpl.type]
        twhere = "%s (type %s)" % (where, tpl.type)
        for anc in reversed(ntype.ancestors):
            t = self.model.node_types.get(anc)
            if t is not None:
                self._type_values(t, anc, scope, twhere)
        for i, req in enumerate(tpl.requirements):
            self._requirement(tname, tpl, i, req)

    def _type_values(self, t: Any, tname: str, scope: Scope, where: str) -> None:
        """The defaults and the interfaces of node type ``tname``, seen from a template."""
        tbase = "node_types.%s" % tname
        for section in ("properties", "attributes"):
            for pname, pdef in (getattr(t, section) or {}).items():
                if isinstance(pdef, dict) and "default" in pdef:
                    self.walk(pdef["default"], scope, t.file,
                              "%s.%s.%s.default" % (tbase, section, pname), where)
        self.walk(t.interfaces or {}, scope, t.file, "%s.interfaces" % tbase, where)

    def _unused_rel_template(self, rname: str, body: Dict[str, Any]) -> None:
        """A relationship template no requirement names: its own values only."""
        scope = self._rel_scope(None, None, body.get("type"), body)
        for section in ("properties", "attributes", "interfaces"):
            self.walk(body.get(section) or {}, scope, self.model.file,
                      "topology_template.relationship_templates.%s.%s" % (rname, section),
                      "relationship template %s" % rname)

    def _rel_scope(self, tname: Optional[str], req: Any, rtype_name: Optional[str],
                   body: Dict[str, Any]) -> Scope:
        rtype = self.model.relationship_types.get(rtype_name) if rtype_name else None
        props = set((rtype.properties if rtype else {}) or {}) | set(body.get("properties") or {})
        attrs = set((rtype.attributes if rtype else {}) or {}) | set(body.get("attributes") or {}) \
            | set(NORMATIVE_ATTRIBUTES)
        ifaces = ops_of(rtype.interfaces if rtype else {})
        for iname, ops in ops_of(body.get("interfaces")).items():
            ifaces.setdefault(iname, {}).update(ops)
        return Scope(tname, rel=(tname, req), rel_props=props, rel_attrs=attrs, rel_ifaces=ifaces)

    def _requirement(self, tname: str, tpl: Any, i: int, req: Any) -> None:
        m = self.model
        body = {"properties": req.properties, "interfaces": req.interfaces}
        raw_rel = self.raw_rel_templates.get(req.relationship_template) \
            if req.relationship_template else None
        if isinstance(raw_rel, dict):
            body["attributes"] = raw_rel.get("attributes") or {}
        scope = self._rel_scope(tname, req, req.relationship, body)
        where = "node template %s, requirement %s" % (tname, req.name)
        if req.relationship_template:
            path = "topology_template.relationship_templates.%s" % req.relationship_template
        else:
            path = "topology_template.node_templates.%s.requirements[%d].%s.relationship" % (
                tname, i, req.name)
        for section in ("properties", "interfaces"):
            self.walk(getattr(req, section) or {}, scope, tpl.file, "%s.%s" % (path, section),
                      where)
        rtype = m.relationship_types.get(req.relationship)
        for anc in reversed(rtype.ancestors if rtype else []):
            t = m.relationship_types.get(anc)
            if t is not None:
                self.walk(t.interfaces or {}, scope, t.file,
                          "relationship_types.%s.interfaces" % anc,
                          "%s (relationship type %s)" % (where, req.relationship))

    # ---------------------------------------------------------------- values
    def walk(self, value: Any, scope: Scope, file: Optional[str], path: str, where: str) -> None:
        if isinstance(value, dict):
            if len(value) == 1:
                key = next(iter(value))
                if key in FUNCTIONS:
                    self.function(key, value[key], scope, file, "%s.%s" % (path, key), where)
                    return
                if isinstance(key, str) and (key in _FOREIGN or key.startswith("get_")
                                             or key.startswith("$")):
                    self.err("unknown function %s (supported: %s)" % (key, ", ".join(FUNCTIONS)),
                             file, "%s.%s" % (path, key), where)
                    return
            for k, v in value.items():
                self.walk(v, scope, file, "%s.%s" % (path, k), where)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.walk(v, scope, file, "%s[%d]" % (path, i), where)

    def function(self, fn: str, args: Any, scope: Scope, file: Optional[str], path: str,
                 where: str) -> None:
        """Checks one function's arguments (and the values inside them): each problem is one
        error ``<fn>: <problem>``."""
        check = self.FUNCTION_CHECKS.get(fn)
        if check is None:
            return
        problem = check(self, fn, args, _Value(scope, file, path, where))
        if problem:
            self.err("%s: %s" % (fn, problem), file, path, where)

    def _walk_value(self, args: Any, at: "_Value") -> None:
        self.walk(args, at.scope, at.file, at.path, at.where)

    # One method per function: (function name, arguments, where) -> problem or None.
    def _get_input(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        keys = args if isinstance(args, list) else [args]
        if not keys or not isinstance(keys[0], str) or not all(_is_key(k) for k in keys):
            return "expected an input name, or [name, nested keys...], got %r" % (args,)
        if keys[0] not in (self.model.inputs or {}):
            return "no input %r in topology_template.inputs (declared: %s)" % (
                keys[0], ", ".join(sorted(self.model.inputs or {})) or "none")
        return None

    def _get_property(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list) or len(args) < 2 \
                or not all(isinstance(a, str) for a in args[:2]) \
                or not all(_is_key(a) for a in args[2:]):
            return "expected %s, got %r" % (_ENTITY_SHAPE, args)
        return self.lookup(args[0], list(args[1:]), fn == "get_attribute", at.scope)

    def _concat(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list):
            return "expected a list of values, got %r" % (args,)
        self._walk_value(args, at)
        return None

    def _join(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list) or not 1 <= len(args) <= 2 or \
                not (isinstance(args[0], list) or self._is_fn(args[0])):
            return "expected [[values...], delimiter], got %r" % (args,)
        self._walk_value(args, at)
        return None

    def _token(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list) or len(args) != 3 \
                or not (isinstance(args[1], str) and args[1] or self._is_fn(args[1])) \
                or not (_is_index(args[2]) or self._is_fn(args[2])) \
                or not (isinstance(args[0], str) or self._is_fn(args[0])):
            return "expected [string, separator characters, index >= 0], got %r" % (args,)
        self._walk_value(args, at)
        return None

    def _get_operation_output(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list) or len(args) != 4 \
                or not all(isinstance(a, str) and a for a in args):
            return ("expected [SELF|SOURCE|TARGET|<template>, interface, operation, output name]"
                    ", got %r" % (args,))
        return self.operation(args[0], args[1], args[2], at.scope) \
            or self._own_output(args, at.scope, at.path)

    def _get_artifact(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not isinstance(args, list) or not 2 <= len(args) <= 4 \
                or not all(isinstance(a, str) for a in args[:2]):
            return ("expected [SELF|SOURCE|TARGET|HOST|<template>, artifact name, location, "
                    "remove], got %r" % (args,))
        if len(args) >= 3 and args[2] != LOCAL_FILE:
            return ("location %r: only %s is supported (the artifact is read where the model's "
                    "files are on the machine running the operation)" % (args[2], LOCAL_FILE))
        if len(args) == 4 and not isinstance(args[3], bool):
            return "remove must be true or false, got %r" % (args[3],)
        return self.artifact(args[0], args[1], at.scope)

    def _get_secret(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        if not any(self._is_fn(a) for a in (args if isinstance(args, list) else [])):
            problem = check_secret_args(args)
            if problem:
                return problem
        self._walk_value(args, at)
        return None

    def _get_nodes_of_type(self, fn: str, args: Any, at: "_Value") -> Optional[str]:
        name = args[0] if isinstance(args, list) and len(args) == 1 else args
        if not isinstance(name, str) or not name:
            return "expected a node type name, got %r" % (args,)
        m = self.model
        if not any(name in m.node_types[t.type].ancestors for t in m.templates.values()):
            return ("no node template is of type %s or a type derived from it: the list would "
                    "always be empty (write the type's full name, e.g. tosca.nodes.Compute)"
                    % name)
        return None

    FUNCTION_CHECKS: Dict[str, Callable[["_Checker", str, Any, "_Value"], Optional[str]]] = {
        "get_input": _get_input,
        "get_property": _get_property,
        "get_attribute": _get_property,
        "concat": _concat,
        "join": _join,
        "token": _token,
        "get_operation_output": _get_operation_output,
        "get_artifact": _get_artifact,
        "get_secret": _get_secret,
        "get_nodes_of_type": _get_nodes_of_type,
    }

    @staticmethod
    def _own_output(args: List[str], scope: Scope, path: str) -> Optional[str]:
        """An operation's input that reads that same operation's output can never be evaluated:
        inputs are evaluated before the operation runs."""
        if scope.rel is not None or args[0] not in ("SELF", scope.node):
            return None
        m = _OPERATION_INPUT.search(path)
        if m and _short(m.group(1)) == _short(args[1]) and m.group(2) == args[2]:
            return ("an input of %s.%s reads that operation's own output: inputs are evaluated "
                    "before it runs" % (m.group(1), m.group(2)))
        return None

    @staticmethod
    def _is_fn(value: Any) -> bool:
        return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def _short(interface: str) -> str:
    """An interface name without its type's namespace or prefix."""
    return interface.rsplit(".", 1)[-1].split(":")[-1]


class _Value:
    """Where a function sits: its scope, file, YAML path and the template it belongs to."""

    def __init__(self, scope: Scope, file: Optional[str], path: str, where: str):
        self.scope = scope
        self.file = file
        self.path = path
        self.where = where
