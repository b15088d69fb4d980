# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resolved TOSCA model the rest of the engine works on.

Types here are already flattened (inheritance applied), so the rules compiler and the instance
expander never walk ``derived_from`` chains.  Every class converts to and from plain JSON because a
model is stored in the Space; ``from_json`` checks the shape, as anything read back from the Space
may have been written by someone else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, cast

from ..errors import NotFound, SpaceDataError

SET_STATE = "set_state"
CALL_OPERATION = "call_operation"
ACTIVITY_KINDS = (SET_STATE, CALL_OPERATION)
POSITIONS = ("before", "after")


# ---------------------------------------------------------------- shape checks for from_json
def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise SpaceDataError("%s: %s" % (where, what))


def _obj(data: Any, where: str, keys: List[str]) -> Dict[str, Any]:
    _need(isinstance(data, dict), where, "not an object")
    missing = [k for k in keys if k not in data]
    _need(not missing, where, "missing %s" % ", ".join(missing))
    return cast(Dict[str, Any], data)


def _s(data: Dict[str, Any], key: str, where: str) -> str:
    _need(isinstance(data.get(key), str), where, "%s is not a string" % key)
    return cast(str, data[key])


def _os(data: Dict[str, Any], key: str, where: str) -> Optional[str]:
    v = data.get(key)
    _need(v is None or isinstance(v, str), where, "%s is not a string or null" % key)
    return cast(Optional[str], v)


def _d(data: Dict[str, Any], key: str, where: str) -> Dict[str, Any]:
    v = data.get(key, {})
    _need(isinstance(v, dict), where, "%s is not an object" % key)
    return cast(Dict[str, Any], v)


def _l(data: Dict[str, Any], key: str, where: str) -> List[Any]:
    v = data.get(key, [])
    _need(isinstance(v, list), where, "%s is not a list" % key)
    return cast(List[Any], v)


def _strs(data: Dict[str, Any], key: str, where: str) -> List[str]:
    v = _l(data, key, where)
    _need(all(isinstance(x, str) for x in v), where, "%s is not a list of strings" % key)
    return list(v)


def _map(data: Dict[str, Any], key: str, where: str, conv: Callable[[Any, str], Any]) -> Dict[str, Any]:
    return {k: conv(v, "%s.%s.%s" % (where, key, k)) for k, v in _d(data, key, where).items()}


# ---------------------------------------------------------------- workflows
@dataclass(frozen=True)
class Activity:
    """One activity of a node's workflow sequence."""

    kind: str   # "set_state" | "call_operation"
    name: str   # state name, or operation name as written (full: tosca.interfaces.node.lifecycle.Standard.create)

    def to_json(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    @classmethod
    def from_json(cls, data: Any, where: str = "activity") -> "Activity":
        _obj(data, where, ["kind", "name"])
        _need(data["kind"] in ACTIVITY_KINDS, where, "kind is not set_state or call_operation")
        return cls(kind=data["kind"], name=_s(data, "name", where))


@dataclass(frozen=True)
class WeaveEntry:
    """One item of a relationship's source_weaving or target_weaving."""

    position: str                 # "before" | "after"
    state: str                    # the state of THIS end the entry is anchored to
    wait_state: Optional[str]     # wait_target / after_source: state the OTHER end must have reached
    activity: Optional[str]       # operation run on this end, once per relationship instance

    def to_json(self) -> Dict[str, Any]:
        return {"position": self.position, "state": self.state,
                "wait_state": self.wait_state, "activity": self.activity}

    @classmethod
    def from_json(cls, data: Any, where: str = "weave entry") -> "WeaveEntry":
        _obj(data, where, ["position", "state"])
        _need(data["position"] in POSITIONS, where, "position is not before or after")
        return cls(position=data["position"], state=_s(data, "state", where),
                   wait_state=_os(data, "wait_state", where), activity=_os(data, "activity", where))


@dataclass
class RelWorkflow:
    """The weavings of one workflow of a relationship type."""

    source: List[WeaveEntry] = field(default_factory=list)
    target: List[WeaveEntry] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {"source": [e.to_json() for e in self.source], "target": [e.to_json() for e in self.target]}

    @classmethod
    def from_json(cls, data: Any, where: str = "relationship workflow") -> "RelWorkflow":
        _obj(data, where, ["source", "target"])
        return cls(source=[WeaveEntry.from_json(e, "%s.source[%d]" % (where, i))
                           for i, e in enumerate(_l(data, "source", where))],
                   target=[WeaveEntry.from_json(e, "%s.target[%d]" % (where, i))
                           for i, e in enumerate(_l(data, "target", where))])


# ---------------------------------------------------------------- types
@dataclass
class RequirementDef:
    """A requirement definition of a node type."""

    name: str
    relationship: Optional[str]
    capability: Optional[str]
    node: Optional[str]
    occurrences: Optional[List[Any]] = None

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "relationship": self.relationship, "capability": self.capability,
                "node": self.node, "occurrences": self.occurrences}

    @classmethod
    def from_json(cls, data: Any, where: str = "requirement definition") -> "RequirementDef":
        _obj(data, where, ["name"])
        occ = data.get("occurrences")
        _need(occ is None or isinstance(occ, list), where, "occurrences is not a list or null")
        return cls(name=_s(data, "name", where), relationship=_os(data, "relationship", where),
                   capability=_os(data, "capability", where), node=_os(data, "node", where),
                   occurrences=occ)


def _acts_from_json(v: Any, where: str) -> List[Activity]:
    _need(isinstance(v, list), where, "not a list")
    return [Activity.from_json(a, "%s[%d]" % (where, i)) for i, a in enumerate(v)]


@dataclass
class NodeType:
    """A node type with its ancestors' definitions merged in."""

    name: str
    derived_from: Optional[str]
    ancestors: List[str]                      # [self, parent, ..., root]
    workflows: Dict[str, List[Activity]]      # a subtype's workflow replaces the parent's of that name
    requirements: Dict[str, RequirementDef]   # inherited; a subtype's definition replaces by name
    interfaces: Dict[str, Any]
    properties: Dict[str, Any]
    attributes: Dict[str, Any]
    file: Optional[str] = None
    capabilities: Dict[str, Any] = field(default_factory=dict)
    artifacts: Dict[str, Any] = field(default_factory=dict)

    def is_a(self, name: str) -> bool:
        return name in self.ancestors

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "derived_from": self.derived_from, "ancestors": list(self.ancestors),
                "workflows": {w: [a.to_json() for a in acts] for w, acts in self.workflows.items()},
                "requirements": {n: r.to_json() for n, r in self.requirements.items()},
                "interfaces": self.interfaces, "properties": self.properties,
                "attributes": self.attributes, "file": self.file,
                "capabilities": self.capabilities, "artifacts": self.artifacts}

    @classmethod
    def from_json(cls, data: Any, where: str = "node type") -> "NodeType":
        _obj(data, where, ["name", "ancestors", "workflows", "requirements"])
        return cls(name=_s(data, "name", where), derived_from=_os(data, "derived_from", where),
                   ancestors=_strs(data, "ancestors", where),
                   workflows=_map(data, "workflows", where, _acts_from_json),
                   requirements=_map(data, "requirements", where, RequirementDef.from_json),
                   interfaces=_d(data, "interfaces", where), properties=_d(data, "properties", where),
                   attributes=_d(data, "attributes", where), file=_os(data, "file", where),
                   capabilities=_d(data, "capabilities", where), artifacts=_d(data, "artifacts", where))


@dataclass
class RelationshipType:
    """A relationship type with its ancestors' definitions merged in."""

    name: str
    derived_from: Optional[str]
    ancestors: List[str]
    workflows: Dict[str, RelWorkflow]         # a subtype's workflow replaces the parent's of that name
    interfaces: Dict[str, Any]
    file: Optional[str] = None
    properties: Dict[str, Any] = field(default_factory=dict)
    attributes: Dict[str, Any] = field(default_factory=dict)
    valid_target_types: List[str] = field(default_factory=list)

    def is_a(self, name: str) -> bool:
        return name in self.ancestors

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "derived_from": self.derived_from, "ancestors": list(self.ancestors),
                "workflows": {w: rw.to_json() for w, rw in self.workflows.items()},
                "interfaces": self.interfaces, "file": self.file, "properties": self.properties,
                "attributes": self.attributes, "valid_target_types": list(self.valid_target_types)}

    @classmethod
    def from_json(cls, data: Any, where: str = "relationship type") -> "RelationshipType":
        _obj(data, where, ["name", "ancestors", "workflows"])
        return cls(name=_s(data, "name", where), derived_from=_os(data, "derived_from", where),
                   ancestors=_strs(data, "ancestors", where),
                   workflows=_map(data, "workflows", where, RelWorkflow.from_json),
                   interfaces=_d(data, "interfaces", where), file=_os(data, "file", where),
                   properties=_d(data, "properties", where), attributes=_d(data, "attributes", where),
                   valid_target_types=_strs(data, "valid_target_types", where))


# ---------------------------------------------------------------- templates
@dataclass
class RequirementAssignment:
    """One requirement of a node template, resolved to a target template and a relationship type."""

    name: str
    node: str                      # target node template
    relationship: str              # relationship TYPE name
    capability: Optional[str]
    relationship_template: Optional[str] = None   # when named through topology relationship_templates
    properties: Dict[str, Any] = field(default_factory=dict)   # of the relationship
    interfaces: Dict[str, Any] = field(default_factory=dict)   # of the relationship

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "node": self.node, "relationship": self.relationship,
                "capability": self.capability, "relationship_template": self.relationship_template,
                "properties": self.properties, "interfaces": self.interfaces}

    @classmethod
    def from_json(cls, data: Any, where: str = "requirement") -> "RequirementAssignment":
        _obj(data, where, ["name", "node", "relationship"])
        return cls(name=_s(data, "name", where), node=_s(data, "node", where),
                   relationship=_s(data, "relationship", where), capability=_os(data, "capability", where),
                   relationship_template=_os(data, "relationship_template", where),
                   properties=_d(data, "properties", where), interfaces=_d(data, "interfaces", where))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class Scaling:
    """Instance counts of a template (TOSCA Scalable capability); max None means UNBOUNDED."""

    min_instances: int = 1
    default_instances: int = 1
    max_instances: Optional[int] = None
    inputs: Dict[str, str] = field(default_factory=dict)   # count -> input it is read from (get_input)

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"min_instances": self.min_instances, "default_instances": self.default_instances,
                               "max_instances": self.max_instances}
        if self.inputs:
            out["inputs"] = dict(self.inputs)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "scaling") -> "Scaling":
        _obj(data, where, ["min_instances", "default_instances"])
        mn, df, mx = data["min_instances"], data["default_instances"], data.get("max_instances")
        _need(_is_int(mn) and _is_int(df) and (mx is None or _is_int(mx)), where, "counts are not integers")
        _need(0 <= mn <= df and (mx is None or df <= mx), where,
              "not 0 <= min <= default <= max (%r, %r, %r)" % (mn, df, mx))
        ins = data.get("inputs") or {}
        _need(isinstance(ins, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in ins.items()),
              where, "inputs is not a map of input names")
        return cls(min_instances=mn, default_instances=df, max_instances=mx, inputs=dict(ins))


@dataclass
class NodeTemplate:
    """A node template of the topology."""

    name: str
    type: str
    requirements: List[RequirementAssignment]
    scaling: Scaling
    properties: Dict[str, Any]
    attributes: Dict[str, Any]
    interfaces: Dict[str, Any]
    file: Optional[str] = None
    capabilities: Dict[str, Any] = field(default_factory=dict)
    artifacts: Dict[str, Any] = field(default_factory=dict)
    description: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "type": self.type,
                "requirements": [r.to_json() for r in self.requirements],
                "scaling": self.scaling.to_json(), "properties": self.properties,
                "attributes": self.attributes, "interfaces": self.interfaces, "file": self.file,
                "capabilities": self.capabilities, "artifacts": self.artifacts,
                "description": self.description}

    @classmethod
    def from_json(cls, data: Any, where: str = "node template") -> "NodeTemplate":
        _obj(data, where, ["name", "type", "requirements", "scaling"])
        return cls(name=_s(data, "name", where), type=_s(data, "type", where),
                   requirements=[RequirementAssignment.from_json(r, "%s.requirements[%d]" % (where, i))
                                 for i, r in enumerate(_l(data, "requirements", where))],
                   scaling=Scaling.from_json(data["scaling"], where + ".scaling"),
                   properties=_d(data, "properties", where), attributes=_d(data, "attributes", where),
                   interfaces=_d(data, "interfaces", where), file=_os(data, "file", where),
                   capabilities=_d(data, "capabilities", where), artifacts=_d(data, "artifacts", where),
                   description=_os(data, "description", where))


@dataclass
class Model:
    """A topology with the (flattened) types it uses: what an upload stores in the Space."""

    templates: Dict[str, NodeTemplate]
    node_types: Dict[str, NodeType]                  # types used by the templates, and their ancestors
    relationship_types: Dict[str, RelationshipType]  # types used by the requirements, and their ancestors
    inputs: Dict[str, Any]
    outputs: Dict[str, Any]
    file: str
    description: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)  # the file's top-level metadata
    # raw capability types (and ancestors) the node types use: their property defaults are values
    capability_types: Dict[str, Any] = field(default_factory=dict, compare=False)
    # What the upload announces without refusing ("<file>: <yaml path>: <what>", one line each);
    # shown by wfctl and the modules, stored in the model head, not part of to_json.
    warnings: List[str] = field(default_factory=list, compare=False)
    # Groups, policies, substitution_mappings, topology metadata: stored and shown, not run (sections.py).
    sections: Dict[str, Any] = field(default_factory=dict, compare=False)
    # topology_template.relationship_templates as written (functions may name one no requirement uses)
    relationship_templates: Dict[str, Any] = field(default_factory=dict, compare=False)
    # topology_template.workflows as written: imperative workflows, compiled by imperative.py.
    workflows: Dict[str, Any] = field(default_factory=dict, compare=False)
    # Every TOSCA file read (the model's file first, then its imports): an upload stores them with
    # the model's other files; not part of to_json (the compiled model does not depend on them).
    source_files: List[str] = field(default_factory=list, compare=False)

    def node_type(self, template_name: str) -> NodeType:
        tpl = self.templates.get(template_name)
        if tpl is None:
            raise NotFound("%s: no node template %r" % (self.file, template_name))
        return self.node_types[tpl.type]

    def to_json(self) -> Dict[str, Any]:
        return {"templates": {n: t.to_json() for n, t in self.templates.items()},
                "node_types": {n: t.to_json() for n, t in self.node_types.items()},
                "relationship_types": {n: t.to_json() for n, t in self.relationship_types.items()},
                "inputs": self.inputs, "outputs": self.outputs, "file": self.file,
                "description": self.description}

    @classmethod
    def from_json(cls, data: Any, where: str = "model") -> "Model":
        _obj(data, where, ["templates", "node_types", "relationship_types", "file"])
        model = cls(templates=_map(data, "templates", where, NodeTemplate.from_json),
                    node_types=_map(data, "node_types", where, NodeType.from_json),
                    relationship_types=_map(data, "relationship_types", where, RelationshipType.from_json),
                    inputs=_d(data, "inputs", where), outputs=_d(data, "outputs", where),
                    file=_s(data, "file", where), description=_os(data, "description", where))
        # Cross references: whatever the engine later looks up by name must be there.
        for name, t in model.templates.items():
            _need(t.name == name, "%s.templates.%s" % (where, name), "name is %r" % t.name)
            _need(t.type in model.node_types, "%s.templates.%s" % (where, name),
                  "node type %s is missing" % t.type)
            for r in t.requirements:
                _need(r.node in model.templates, "%s.templates.%s" % (where, name),
                      "requirement %s targets missing template %s" % (r.name, r.node))
                _need(r.relationship in model.relationship_types, "%s.templates.%s" % (where, name),
                      "relationship type %s is missing" % r.relationship)
        return model
