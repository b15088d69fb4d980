# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOSCA intrinsic functions, evaluated when an operation runs.

Evaluation is late on purpose: ``get_attribute`` must see what earlier operations reported (a
ConnectsTo source reads the target's ``ip_address`` once the target started), so values are read
through a ``FunctionContext`` at the moment the operation runs, never at upload.

Supported: ``get_input``, ``get_property``, ``get_attribute``, ``concat``, ``join``.  Entities:
``SELF``, ``SOURCE``, ``TARGET``, ``HOST`` or a node template name.

* ``SELF`` is the node the operation runs on.  In a relationship operation TOSCA makes SELF the
  relationship: its properties/attributes are looked up first, then the node running it.
* ``HOST`` walks the HostedOn chain from the host of SELF's node upwards until a node has the
  name (TOSCA 1.3, 4.4.1).
* ``get_attribute`` falls back to the property of the same name (attributes reflect properties).
* A capability may be named between the entity and the name:
  ``get_property: [SELF, endpoint, port]``.

Nothing is ever evaluated as code: functions only look values up and join strings.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

from .errors import WfError

FUNCTIONS = ("get_input", "get_property", "get_attribute", "concat", "join")
ENTITIES = ("SELF", "SOURCE", "TARGET", "HOST")
_MAX_DEPTH = 32


class FunctionError(WfError):
    """A function cannot be evaluated: missing input, property or attribute, bad arguments."""


class FunctionContext:
    """What functions may read; the worker provides one per operation call.

    Subclass it (``ModelContext`` does, for the worker's data) or build one from dicts
    (``DictContext``, for tests and tools).  Every lookup returns None / {} when absent; errors
    are raised by ``evaluate``, which knows the function and path to name."""

    inputs: Dict[str, Any] = {}
    self_node: Optional[str] = None      # the node instance the operation runs on
    source: Optional[str] = None         # relationship operations: the ends
    target: Optional[str] = None
    relationship: Optional[str] = None   # relationship instance id, for relationship operations

    def properties(self, node_id: str) -> Dict[str, Any]:
        raise NotImplementedError

    def attributes(self, node_id: str) -> Dict[str, Any]:
        raise NotImplementedError

    def host(self, node_id: str) -> Optional[str]:
        """The node instance ``node_id`` is HostedOn, or None."""
        raise NotImplementedError

    def template_node(self, template: str) -> Optional[str]:
        """The node instance a template name designates (for the current call), or None."""
        raise NotImplementedError

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        return None

    def relationship_properties(self, rel_id: str) -> Dict[str, Any]:
        return {}

    def relationship_attributes(self, rel_id: str) -> Dict[str, Any]:
        return {}

    def describe(self, node_id: str) -> str:
        """How an error names a node."""
        return "node %s" % node_id


def is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def has_function(value: Any) -> bool:
    if is_function(value):
        return True
    if isinstance(value, dict):
        return any(has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(has_function(v) for v in value)
    return False


def evaluate(value: Any, ctx: FunctionContext) -> Any:
    """``value`` with every function replaced by its value (recursively in lists and maps)."""
    return _Eval(ctx).value(value, 0)


def to_text(value: Any) -> str:
    """How a value becomes a string (concat, environment variables): strings as they are,
    booleans as true/false, null as empty, lists and maps as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, sort_keys=True)


class _Missing(Exception):
    pass


def _show(fn: str, args: Any) -> str:
    return "%s: %s" % (fn, json.dumps(args, sort_keys=True) if not isinstance(args, str) else args)


class _Eval:
    def __init__(self, ctx: FunctionContext):
        self.ctx = ctx

    def value(self, value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise FunctionError("functions nested more than %d deep (a property that refers to "
                                "itself?)" % _MAX_DEPTH)
        if is_function(value):
            fn, args = next(iter(value.items()))
            return getattr(self, fn)(args, depth + 1)
        if isinstance(value, dict):
            return {k: self.value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, depth + 1) for v in value]
        return value

    # ---------------------------------------------------------------- functions
    def get_input(self, args: Any, depth: int) -> Any:
        path = args if isinstance(args, list) else [args]
        if not path or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in path) \
                or not isinstance(path[0], str):
            raise FunctionError("%s: expected an input name, or [name, nested keys...]" % _show("get_input", args))
        inputs = self.ctx.inputs or {}
        if path[0] not in inputs:
            known = ", ".join(sorted(inputs)) or "none"
            raise FunctionError("%s: no input %r (inputs: %s)" % (_show("get_input", args), path[0], known))
        found = self.value(inputs[path[0]], depth)
        return self._nested(found, path[1:], "get_input", args, "input %s" % path[0])

    def get_property(self, args: Any, depth: int) -> Any:
        return self._lookup("get_property", args, depth, attributes=False)

    def get_attribute(self, args: Any, depth: int) -> Any:
        return self._lookup("get_attribute", args, depth, attributes=True)

    def concat(self, args: Any, depth: int) -> str:
        if not isinstance(args, list):
            raise FunctionError("%s: expected a list of values" % _show("concat", args))
        return "".join(to_text(self.value(a, depth)) for a in args)

    def join(self, args: Any, depth: int) -> str:
        if not isinstance(args, list) or not 1 <= len(args) <= 2:
            raise FunctionError("%s: expected [[values...], delimiter]" % _show("join", args))
        values = self.value(args[0], depth)
        delim = to_text(self.value(args[1], depth)) if len(args) == 2 else ""
        if not isinstance(values, list):
            raise FunctionError("%s: the first argument must be a list" % _show("join", args))
        return delim.join(to_text(v) for v in values)

    # ---------------------------------------------------------------- lookups
    def _lookup(self, fn: str, args: Any, depth: int, attributes: bool) -> Any:
        if not isinstance(args, list) or len(args) < 2 or not isinstance(args[0], str) \
                or not isinstance(args[1], str) \
                or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in args[2:]):
            raise FunctionError("%s: expected [SELF|SOURCE|TARGET|HOST|<template>, name, nested keys...]"
                                % _show(fn, args))
        entity, names = args[0], list(args[1:])
        ctx = self.ctx
        if entity == "HOST":
            start = ctx.self_node
            if start is None:
                raise FunctionError("%s: HOST is only defined in an operation of a node" % _show(fn, args))
            node = ctx.host(start)
            if node is None:
                raise FunctionError("%s: %s is hosted on nothing" % (_show(fn, args), ctx.describe(start)))
            tried = []
            while node is not None:
                try:
                    return self._on_node(node, names, depth, attributes, fn, args)
                except _Missing:
                    tried.append(node)
                    node = ctx.host(node)
            raise FunctionError("%s: no host of %s has %s %r (looked at %s)"
                                % (_show(fn, args), ctx.describe(start), _kind(attributes), names[0],
                                   ", ".join(tried)))
        if entity == "SELF":
            if ctx.relationship is not None:
                rel_values = (ctx.relationship_attributes(ctx.relationship) if attributes else {})
                for values in (rel_values, ctx.relationship_properties(ctx.relationship)):
                    if names[0] in (values or {}):
                        found = self.value(values[names[0]], depth)
                        return self._nested(found, names[1:], fn, args, "relationship %s" % ctx.relationship)
            node = ctx.self_node
            if node is None:
                raise FunctionError("%s: SELF is not defined here" % _show(fn, args))
        elif entity in ("SOURCE", "TARGET"):
            node = ctx.source if entity == "SOURCE" else ctx.target
            if node is None:
                raise FunctionError("%s: %s is only defined in a relationship operation"
                                    % (_show(fn, args), entity))
        else:
            node = ctx.template_node(entity)
            if node is None:
                raise FunctionError("%s: %r is not SELF, SOURCE, TARGET, HOST or a node template with "
                                    "instances" % (_show(fn, args), entity))
        try:
            return self._on_node(node, names, depth, attributes, fn, args)
        except _Missing:
            raise FunctionError("%s: %s has no %s %r"
                                % (_show(fn, args), ctx.describe(node), _kind(attributes), names[0])) from None

    def _on_node(self, node: str, names: List[Any], depth: int, attributes: bool, fn: str, args: Any) -> Any:
        """The value of ``names`` on ``node``; raises _Missing if its first name is unknown there."""
        ctx = self.ctx
        first = names[0]
        sources = []
        if attributes:
            sources.append(ctx.attributes(node) or {})
        sources.append(ctx.properties(node) or {})
        for values in sources:
            if first in values:
                sub = _NodeScope(ctx, node)
                found = _Eval(sub).value(values[first], depth)
                return self._nested(found, names[1:], fn, args, ctx.describe(node))
        if len(names) >= 2 and isinstance(names[1], str):
            cap = ctx.capability_properties(node, first)
            if cap is not None:
                if attributes and names[1] in (ctx.attributes(node) or {}):
                    # Capability attributes (an endpoint's ip_address) are reported on the node.
                    found = ctx.attributes(node)[names[1]]
                elif names[1] in cap:
                    found = _Eval(_NodeScope(ctx, node)).value(cap[names[1]], depth)
                else:
                    raise FunctionError("%s: capability %s of %s has no %s %r"
                                        % (_show(fn, args), first, ctx.describe(node), _kind(attributes),
                                           names[1]))
                return self._nested(found, names[2:], fn, args, "%s capability %s" % (ctx.describe(node), first))
        raise _Missing()

    @staticmethod
    def _nested(value: Any, path: List[Any], fn: str, args: Any, where: str) -> Any:
        cur = value
        walked = []
        for p in path:
            walked.append(p)
            if isinstance(cur, dict) and isinstance(p, str) and p in cur:
                cur = cur[p]
            elif isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur):
                cur = cur[p]
            else:
                raise FunctionError("%s: %s: no %s in the value"
                                    % (_show(fn, args), where, ".".join(str(w) for w in walked)))
        return cur


def _kind(attributes: bool) -> str:
    return "attribute or property" if attributes else "property"


def scoped(ctx: FunctionContext, node_id: str) -> FunctionContext:
    """``ctx`` with SELF moved to ``node_id``: values read on a node (its address, its endpoint's
    credential) are evaluated where they live."""
    return _NodeScope(ctx, node_id)


class _NodeScope(FunctionContext):
    """Functions inside a property value are evaluated where the property lives: SELF is the
    node that holds it (``port: {get_input: port}`` of the target, read from the source)."""

    def __init__(self, base: FunctionContext, node: str):
        self._b = base
        self.inputs = base.inputs
        self.self_node = node
        self.source = base.source
        self.target = base.target
        self.relationship = None

    def properties(self, node_id: str) -> Dict[str, Any]:
        return self._b.properties(node_id)

    def attributes(self, node_id: str) -> Dict[str, Any]:
        return self._b.attributes(node_id)

    def host(self, node_id: str) -> Optional[str]:
        return self._b.host(node_id)

    def template_node(self, template: str) -> Optional[str]:
        return self._b.template_node(template)

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        return self._b.capability_properties(node_id, name)

    def describe(self, node_id: str) -> str:
        return self._b.describe(node_id)


# ------------------------------------------------------------------ concrete contexts
class DictContext(FunctionContext):
    """A context over plain dicts: ``nodes`` maps a node id to
    ``{"template", "host", "properties", "attributes", "capabilities": {name: {properties}}}``;
    ``relationships`` maps a relationship id to ``{"properties", "attributes"}``."""

    def __init__(self, nodes: Dict[str, Dict[str, Any]], inputs: Optional[Dict[str, Any]] = None,
                 self_node: Optional[str] = None, source: Optional[str] = None, target: Optional[str] = None,
                 relationship: Optional[str] = None,
                 relationships: Optional[Dict[str, Dict[str, Any]]] = None):
        self.nodes = nodes
        self.inputs = inputs or {}
        self.self_node = self_node
        self.source = source
        self.target = target
        self.relationship = relationship
        self.relationships = relationships or {}

    def properties(self, node_id: str) -> Dict[str, Any]:
        return self.nodes.get(node_id, {}).get("properties") or {}

    def attributes(self, node_id: str) -> Dict[str, Any]:
        return self.nodes.get(node_id, {}).get("attributes") or {}

    def host(self, node_id: str) -> Optional[str]:
        return self.nodes.get(node_id, {}).get("host")

    def template_node(self, template: str) -> Optional[str]:
        ids = sorted(n for n, v in self.nodes.items() if v.get("template") == template)
        return ids[0] if ids else None

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        cap = (self.nodes.get(node_id, {}).get("capabilities") or {}).get(name)
        return None if cap is None else (cap.get("properties") or {})

    def relationship_properties(self, rel_id: str) -> Dict[str, Any]:
        return self.relationships.get(rel_id, {}).get("properties") or {}

    def relationship_attributes(self, rel_id: str) -> Dict[str, Any]:
        return self.relationships.get(rel_id, {}).get("attributes") or {}


class ModelContext(FunctionContext):
    """A context over what a worker has, for one operation call.

    ``values``: ``operations.compile_values(model)`` (stored with the model);
    ``node(id)``: a node instance record (``instances.expand``: id, template, host, out, in);
    ``attributes(id)``: the attributes operations reported for a node (from the Space);
    ``instances(template)``: the node ids of a template in this deployment;
    ``relationship``: the relationship instance record for a relationship operation, and
    ``side``: "source" | "target" (which end runs it).

    A template name designates, in order: the other end of the call's relationship if it is of
    that template, an instance linked to SELF by a relationship, an instance on the same host,
    else the template's first instance."""

    def __init__(self, values: Dict[str, Dict[str, Any]], node: Callable[[str], Dict[str, Any]],
                 attributes: Callable[[str], Dict[str, Any]], inputs: Dict[str, Any], self_node: str,
                 instances: Optional[Callable[[str], List[str]]] = None,
                 relationship: Optional[Dict[str, Any]] = None):
        self.values = values
        self._node = node
        self._attributes = attributes
        self._instances = instances
        self.inputs = inputs or {}
        self.self_node = self_node
        self._rel = relationship
        self.relationship = relationship["id"] if relationship else None
        self.source = relationship["source"] if relationship else None
        self.target = relationship["target"] if relationship else None

    def _tvalues(self, node_id: str) -> Dict[str, Any]:
        return self.values.get(self._node(node_id)["template"], {})

    def properties(self, node_id: str) -> Dict[str, Any]:
        return self._tvalues(node_id).get("properties") or {}

    def attributes(self, node_id: str) -> Dict[str, Any]:
        rec = self._node(node_id)
        out = {"tosca_id": node_id, "tosca_name": rec["template"]}
        out.update(self._tvalues(node_id).get("attributes") or {})
        out.update(self._attributes(node_id) or {})
        return out

    def host(self, node_id: str) -> Optional[str]:
        return self._node(node_id).get("host")

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        cap = (self._tvalues(node_id).get("capabilities") or {}).get(name)
        return None if cap is None else (cap.get("properties") or {})

    def _rel_values(self, rel_id: str) -> Dict[str, Any]:
        # Relationship ids are "<source>:<requirement>#<index>:<target>" (instances.expand).
        rel = self._rel if self._rel and self._rel["id"] == rel_id else None
        if rel is None:
            return {}
        try:
            index = rel_id.split("#", 1)[1].split(":", 1)[0]
        except IndexError:
            return {}
        return (self._tvalues(rel["source"]).get("relationships") or {}).get(index, {})

    def relationship_properties(self, rel_id: str) -> Dict[str, Any]:
        return self._rel_values(rel_id).get("properties") or {}

    def relationship_attributes(self, rel_id: str) -> Dict[str, Any]:
        return self._rel_values(rel_id).get("attributes") or {}

    def template_node(self, template: str) -> Optional[str]:
        if template not in self.values:
            return None
        for end in (self.target, self.source):
            if end and self._node(end)["template"] == template:
                return end
        me = self._node(self.self_node) if self.self_node else None
        if me is not None:
            for rel in list(me.get("out", [])) + list(me.get("in", [])):
                for end in (rel["target"], rel["source"]):
                    if end != me["id"] and self._node(end)["template"] == template:
                        return end
        ids = sorted(self._instances(template), key=_natural) if self._instances else []
        if me is not None and me.get("host"):
            for nid in ids:
                if self._node(nid).get("host") == me["host"]:
                    return nid
        return ids[0] if ids else None

    def describe(self, node_id: str) -> str:
        try:
            return "node %s (template %s)" % (node_id, self._node(node_id)["template"])
        except Exception:  # describing must never hide the real error
            return "node %s" % node_id


def _natural(node_id: str) -> Any:
    base, n = node_id.rpartition("_")[::2]
    return (base, int(n)) if n.isdigit() else (node_id, -1)


# ------------------------------------------------------------------ topology inputs and outputs
def input_values(definitions: Dict[str, Any], given: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The inputs of a deployment: ``given`` over the definitions' defaults.  A required input
    without a value, or a value for an undeclared input, is an error naming it."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(definitions or {}))
    if unknown:
        declared = ", ".join(sorted(definitions or {})) or "none"
        raise FunctionError("unknown input(s) %s (declared: %s)" % (", ".join(unknown), declared))
    out: Dict[str, Any] = {}
    for name, d in (definitions or {}).items():
        if name in given:
            out[name] = given[name]
        elif isinstance(d, dict) and "default" in d:
            out[name] = d["default"]
        elif isinstance(d, dict) and ("value" in d):
            out[name] = d["value"]
        elif isinstance(d, dict) and d.get("required", True) is False:
            continue
        else:
            raise FunctionError("input %s is required and has no default" % name)
    return out


def evaluate_outputs(definitions: Dict[str, Any], ctx: FunctionContext) -> Dict[str, Dict[str, Any]]:
    """Topology outputs after a run: ``{name: {"value": v}}`` or ``{name: {"error": message}}``
    (an output that cannot be computed yet, e.g. before install, is not an error of the run)."""
    out: Dict[str, Dict[str, Any]] = {}
    for name, d in (definitions or {}).items():
        raw = d.get("value") if isinstance(d, dict) and "value" in d else d
        try:
            out[name] = {"value": evaluate(raw, ctx)}
        except FunctionError as exc:
            out[name] = {"error": str(exc)}
    return out
