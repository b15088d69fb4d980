# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOSCA intrinsic functions, evaluated when an operation runs (their names and the
``FunctionContext`` they read through: ``functions.py``).

Evaluation is late on purpose: ``get_attribute`` must see what earlier operations reported (a
ConnectsTo source reads the target's ``ip_address`` once the target started), so values are read
through a ``FunctionContext`` at the moment the operation runs, never at upload (upload only checks
them: ``tosca/function_checks.py``).

Supported (TOSCA 1.3 chapter 4): ``get_input``, ``get_property``, ``get_attribute``, ``concat``,
``join``, ``token``, ``get_operation_output``, ``get_artifact``, ``get_nodes_of_type``.  Entities:
``SELF``, ``SOURCE``, ``TARGET``, ``HOST``, a node template name or a relationship template name.

* ``SELF`` is the node the operation runs on.  In a relationship operation TOSCA makes SELF the
  relationship: its properties/attributes are looked up first, then the node running it.
* ``HOST`` walks the HostedOn chain from the host of SELF's node upwards until a node has the
  name (TOSCA 1.3, 4.4.2 and 4.5.1).
* ``get_attribute`` falls back to the property of the same name (attributes reflect properties).
* A capability or a requirement may be named between the entity and the name (4.4.2, 4.5.1):
  ``get_property: [SELF, endpoint, port]`` reads the capability's property,
  ``get_attribute: [SELF, server, private_address]`` the node the requirement ``server`` targets.
  A property or attribute of that name wins over a capability, a capability over a requirement.

Nothing is ever evaluated as code: functions only look values up and join strings.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from .functions import FunctionContext, FunctionError, LOCAL_FILE, is_function, outputs_key, to_text

_MAX_DEPTH = 32


def evaluate(value: Any, ctx: FunctionContext) -> Any:
    """``value`` with every function replaced by its value (recursively in lists and maps)."""
    return _Eval(ctx).value(value, 0)


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

    def token(self, args: Any, depth: int) -> str:
        """TOSCA 1.3 4.3.3: [string, separator characters, index] -> the index-th substring."""
        if not isinstance(args, list) or len(args) != 3:
            raise FunctionError("%s: expected [string, separator characters, index]" % _show("token", args))
        text = self.value(args[0], depth)
        seps = self.value(args[1], depth)
        index = self.value(args[2], depth)
        if not isinstance(text, str) or not isinstance(seps, str) or not seps \
                or not isinstance(index, int) or isinstance(index, bool):
            raise FunctionError("%s: expected [string, separator characters, index], got %s"
                                % (_show("token", args), json.dumps([text, seps, index], sort_keys=True)))
        parts = re.split("[%s]" % re.escape(seps), text)
        if not 0 <= index < len(parts):
            raise FunctionError("%s: %r has %d tokens, no token %d" % (_show("token", args), text, len(parts), index))
        return parts[index]

    def get_secret(self, args: Any, depth: int) -> Any:
        """[source, ...] (secrets.py): read on the worker, remembered there for scrubbing."""
        from .. import secrets
        args = self.value(args, depth)
        problem = secrets.check_args(args)
        if problem:
            raise FunctionError("get_secret: %s" % problem)
        if self.ctx.secrets is None:
            return secrets.MASK
        return self.ctx.secrets.resolve(args)

    def get_nodes_of_type(self, args: Any, depth: int) -> List[str]:
        """TOSCA 1.3 4.7.1: the names (ids) of every node instance of that type or a subtype."""
        name = args[0] if isinstance(args, list) and len(args) == 1 else args
        if not isinstance(name, str) or not name:
            raise FunctionError("%s: expected a node type name" % _show("get_nodes_of_type", args))
        return list(self.ctx.nodes_of_type(name))

    def get_operation_output(self, args: Any, depth: int) -> Any:
        """TOSCA 1.3 4.6.1: [entity, interface, operation, output name]: what an operation that
        already ran wrote to its outputs file."""
        fn = "get_operation_output"
        if not isinstance(args, list) or len(args) != 4 or not all(isinstance(a, str) and a for a in args):
            raise FunctionError("%s: expected [SELF|SOURCE|TARGET|<template>, interface, operation, output name]"
                                % _show(fn, args))
        entity, iface, op, name = args
        node = self._entity_node(fn, args, entity, host_ok=False)
        ctx = self.ctx
        attrs = ctx.attributes(node) or {}
        keys_ = ([outputs_key(iface, op, ctx.relationship)] if ctx.relationship else []) + [outputs_key(iface, op)]
        for k in keys_:
            if isinstance(attrs.get(k), dict):
                values = attrs[k]
                if name not in values:
                    raise FunctionError("%s: operation %s.%s of %s reported no output %r (its outputs: %s)"
                                        % (_show(fn, args), iface, op, ctx.describe(node), name,
                                           ", ".join(sorted(values)) or "none"))
                return values[name]
        raise FunctionError("%s: operation %s.%s of %s has not run yet or reported no outputs"
                            % (_show(fn, args), iface, op, ctx.describe(node)))

    def get_artifact(self, args: Any, depth: int) -> str:
        """TOSCA 1.3 4.8.1: [entity, artifact name, location, remove] -> the artifact's path on
        the machine where the operation runs.  Only LOCAL_FILE (the orchestrator chooses) is a
        location the engine accepts: the file is the model's copy, shared by operations."""
        fn = "get_artifact"
        if not isinstance(args, list) or not 2 <= len(args) <= 4 or not all(isinstance(a, str) for a in args[:2]) \
                or (len(args) >= 3 and args[2] != LOCAL_FILE) or (len(args) == 4 and not isinstance(args[3], bool)):
            raise FunctionError("%s: expected [SELF|SOURCE|TARGET|HOST|<template>, artifact name, LOCAL_FILE, "
                                "true|false]" % _show(fn, args))
        ctx = self.ctx
        node = self._entity_node(fn, args, args[0], host_ok=True)
        arts = ctx.artifacts(node) or {}
        if args[1] not in arts:
            raise FunctionError("%s: %s has no artifact %r (artifacts: %s)"
                                % (_show(fn, args), ctx.describe(node), args[1], ", ".join(sorted(arts)) or "none"))
        path = ctx.artifact_path(arts[args[1]])
        if path is None:
            raise FunctionError("%s: an artifact's path is only known in an operation" % _show(fn, args))
        return path

    # ---------------------------------------------------------------- lookups
    def _entity_node(self, fn: str, args: Any, entity: str, host_ok: bool) -> str:
        """The node instance an entity keyword or template name designates."""
        ctx = self.ctx
        if entity == "SELF":
            node = ctx.self_node
        elif entity in ("SOURCE", "TARGET"):
            node = ctx.source if entity == "SOURCE" else ctx.target
            if node is None:
                raise FunctionError("%s: %s is only defined in a relationship operation" % (_show(fn, args), entity))
        elif entity == "HOST" and host_ok:
            if ctx.self_node is None:
                raise FunctionError("%s: HOST is only defined in an operation of a node" % _show(fn, args))
            node = ctx.host(ctx.self_node)
            if node is None:
                raise FunctionError("%s: %s is hosted on nothing" % (_show(fn, args), ctx.describe(ctx.self_node)))
        else:
            node = ctx.template_node(entity)
            if node is None:
                raise FunctionError("%s: %r is not SELF, SOURCE, TARGET%s or a node template with instances"
                                    % (_show(fn, args), entity, ", HOST" if host_ok else ""))
        if node is None:
            raise FunctionError("%s: SELF is not defined here" % _show(fn, args))
        return node

    def _lookup(self, fn: str, args: Any, depth: int, attributes: bool) -> Any:
        _check_lookup_args(fn, args)
        entity, names = args[0], list(args[1:])
        ctx = self.ctx
        if entity == "HOST":
            return self._on_hosts(names, depth, attributes, fn, args)
        if entity == "SELF":
            if ctx.relationship is not None:
                hit = self._on_self_relationship(ctx.relationship, names, depth, attributes, fn,
                                                 args)
                if hit is not None:
                    return hit[0]
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
                rel = ctx.relationship_template(entity)
                if rel is not None:
                    return self._on_relationship(entity, rel, names, depth, attributes, fn, args)
                raise FunctionError("%s: %r is not SELF, SOURCE, TARGET, HOST, a node template with "
                                    "instances or a relationship template" % (_show(fn, args), entity))
        try:
            return self._on_node(node, names, depth, attributes, fn, args)
        except _Missing:
            raise FunctionError("%s: %s has no %s %r"
                                % (_show(fn, args), ctx.describe(node), _kind(attributes), names[0])) from None

    def _on_hosts(self, names: List[Any], depth: int, attributes: bool, fn: str, args: Any) -> Any:
        """HOST: the value on the first host (down the hosting chain) that has it."""
        ctx = self.ctx
        start = ctx.self_node
        if start is None:
            raise FunctionError("%s: HOST is only defined in an operation of a node"
                                % _show(fn, args))
        node = ctx.host(start)
        if node is None:
            raise FunctionError("%s: %s is hosted on nothing"
                                % (_show(fn, args), ctx.describe(start)))
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

    def _on_self_relationship(self, relationship: str, names: List[Any], depth: int,
                              attributes: bool, fn: str, args: Any) -> Optional[Tuple[Any]]:
        """SELF in a relationship operation: (the relationship's value,), or None when the
        relationship has no such name (SELF is then its source or target node)."""
        ctx = self.ctx
        rel_values = (ctx.relationship_attributes(relationship) if attributes else {})
        for values in (rel_values, ctx.relationship_properties(relationship)):
            if names[0] in (values or {}):
                found = self.value(values[names[0]], depth)
                return (self._nested(found, names[1:], fn, args, "relationship %s" % relationship),)
        return None

    def _on_relationship(self, name: str, rel: Dict[str, Any], names: List[Any], depth: int, attributes: bool,
                         fn: str, args: Any) -> Any:
        sources = ([rel.get("attributes") or {}] if attributes else []) + [rel.get("properties") or {}]
        for values in sources:
            if names[0] in values:
                found = self.value(values[names[0]], depth)
                return self._nested(found, names[1:], fn, args, "relationship template %s" % name)
        raise FunctionError("%s: relationship template %s has no %s %r"
                            % (_show(fn, args), name, _kind(attributes), names[0]))

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
            targets = ctx.requirement_targets(node, first)
            if ctx.capability_properties(node, first) is not None:
                # A capability and a requirement may share a name (a WebServer's `host`): the
                # capability when it has the name, else the requirement's target.
                if targets is None or self._capability_has(node, first, names[1], attributes):
                    return self._on_capability(node, first, names[1:], depth, attributes, fn, args)
            if targets is not None:
                if not targets:
                    raise FunctionError("%s: requirement %s of %s targets no node"
                                        % (_show(fn, args), first, ctx.describe(node)))
                try:
                    return self._on_node(targets[0], names[1:], depth, attributes, fn, args)
                except _Missing:
                    # The capability that fulfils the requirement, named like it on the target (what
                    # tosca-parser reads: [SELF, database_endpoint, port] with a database_endpoint
                    # capability on the target).
                    cap = ctx.capability_properties(targets[0], first)
                    if cap is not None and (names[1] in cap or names[1] in (
                            (ctx.capability_attributes(targets[0], first) or {}) if attributes else {})):
                        return self._on_capability(targets[0], first, names[1:], depth, attributes, fn, args)
                    raise FunctionError("%s: %s, the target of requirement %s of %s, has no %s %r"
                                        % (_show(fn, args), ctx.describe(targets[0]), first, ctx.describe(node),
                                           _kind(attributes), names[1])) from None
        raise _Missing()

    def _capability_has(self, node: str, cap_name: str, name: Any, attributes: bool) -> bool:
        ctx = self.ctx
        return name in (ctx.capability_properties(node, cap_name) or {}) or (
            attributes and name in (ctx.capability_attributes(node, cap_name) or {}))

    def _on_capability(self, node: str, cap_name: str, names: List[Any], depth: int, attributes: bool,
                       fn: str, args: Any) -> Any:
        """``names`` read on capability ``cap_name`` of ``node`` (its attributes, then properties)."""
        ctx = self.ctx
        cap = ctx.capability_properties(node, cap_name) or {}
        cap_attrs = (ctx.capability_attributes(node, cap_name) or {}) if attributes else {}
        if names[0] in cap_attrs:
            found = _Eval(_NodeScope(ctx, node)).value(cap_attrs[names[0]], depth)
        elif attributes and names[0] in (ctx.attributes(node) or {}):
            # Capability attributes (an endpoint's ip_address) are reported on the node.
            found = ctx.attributes(node)[names[0]]
        elif names[0] in cap:
            found = _Eval(_NodeScope(ctx, node)).value(cap[names[0]], depth)
        else:
            raise FunctionError("%s: capability %s of %s has no %s %r"
                                % (_show(fn, args), cap_name, ctx.describe(node), _kind(attributes), names[0]))
        return self._nested(found, names[1:], fn, args, "%s capability %s" % (ctx.describe(node), cap_name))

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


def _check_lookup_args(fn: str, args: Any) -> None:
    """get_property/get_attribute arguments: [entity, name, nested keys or indexes...]."""
    if not isinstance(args, list) or len(args) < 2 or not isinstance(args[0], str) \
            or not isinstance(args[1], str) \
            or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in args[2:]):
        raise FunctionError("%s: expected [SELF|SOURCE|TARGET|HOST|<template>, name, nested "
                            "keys...]" % _show(fn, args))


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

    @property
    def secrets(self) -> Optional[Any]:     # type: ignore[override]
        return self._b.secrets

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

    def capability_attributes(self, node_id: str, name: str) -> Dict[str, Any]:
        return self._b.capability_attributes(node_id, name)

    def requirement_targets(self, node_id: str, name: str) -> Optional[List[str]]:
        return self._b.requirement_targets(node_id, name)

    def relationship_template(self, name: str) -> Optional[Dict[str, Any]]:
        return self._b.relationship_template(name)

    def nodes_of_type(self, type_name: str) -> List[str]:
        return self._b.nodes_of_type(type_name)

    def artifacts(self, node_id: str) -> Dict[str, str]:
        return self._b.artifacts(node_id)

    def artifact_path(self, rel_path: str) -> Optional[str]:
        return self._b.artifact_path(rel_path)

    def describe(self, node_id: str) -> str:
        return self._b.describe(node_id)


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
