# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve raw TOSCA types into flattened ``NodeType`` / ``RelationshipType`` objects.

Types come from stacked sources: the normative library, then uploaded libraries, then the model's
own files.  A later source that defines a name replaces the earlier definition as a whole, so a
library can ship its own ``tosca.nodes.Root`` workflows.  Inheritance is applied here once so
that nothing downstream needs to know about ``derived_from``.

Workflow syntax is checked strictly: an unknown key in a weaving entry is much more likely a typo
that would silently change the order of a deployment than a feature.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, TypeVar

from ..errors import ToscaError, raise_problems
from .loader import TYPE_SECTIONS, Document
from .model import (CALL_OPERATION, SET_STATE, Activity, NodeType, RelationshipType, RelWorkflow,
                    RequirementDef, WeaveEntry)

RawTypes = Dict[str, Any]
_T = TypeVar("_T")     # NodeType or RelationshipType (TypeRegistry._resolve)
_W = TypeVar("_W")     # a node type's workflow (activities) or a relationship type's (weavings)

_NODE_TYPE_KEYS = {"derived_from", "version", "metadata", "description", "properties", "attributes",
                   "requirements", "capabilities", "interfaces", "artifacts", "workflows", "workflow"}
_REL_TYPE_KEYS = {"derived_from", "version", "metadata", "description", "properties", "attributes",
                  "interfaces", "valid_target_types", "valid_source_types", "workflows", "workflow"}
# The sections a type inherits from its parent, in the order they are checked.
_NODE_TYPE_SECTIONS = ("interfaces", "properties", "attributes", "capabilities", "artifacts")
_REL_TYPE_SECTIONS = ("interfaces", "properties", "attributes")
_REQ_DEF_KEYS = {"capability", "node", "relationship", "occurrences", "description", "node_filter",
                 "metadata"}


def _merged(parent: Dict[str, Any], own: Dict[str, Any]) -> Dict[str, Any]:
    """A subtype's definitions over its parent's (one level: a subtype redefines an entry whole)."""
    out = dict(parent)
    out.update(own)
    return out


def raw_types_of(document: Document) -> Dict[str, Any]:
    """The types of a loaded document as JSON data, each annotated with ``"_file"``: the form a
    library is stored in, and accepted back by ``TypeRegistry``."""
    out: Dict[str, Any] = {}
    for section in TYPE_SECTIONS:
        out[section] = {name: dict(copy.deepcopy(body), _file=document.file_of(section, name) or document.file)
                        for name, body in document.types.get(section, {}).items()}
    return out


def _deep_merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    """Interfaces refine their parent's: a subtype adding an implementation keeps the inherited
    interface ``type`` and operation inputs."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _single_key_items(value: Any, file: Optional[str], path: str, what: str) -> List[Tuple[str, Any]]:
    """TOSCA's ordered maps (requirements) are lists of single-key maps; a plain map is accepted."""
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, list):
        raise ToscaError("%s must be a list of single-key maps" % what, file=file, path=path)
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1:
            raise ToscaError("%s[%d] must be a single-key map (- name: ...)" % (what, i),
                             file=file, path="%s[%d]" % (path, i))
        items.append(next(iter(item.items())))
    return items


class TypeRegistry:
    """Raw types from stacked sources, resolved (and validated) on demand and cached."""

    def __init__(self, sources: Iterable[RawTypes]):
        self._raw: Dict[str, Dict[str, Dict[str, Any]]] = {s: {} for s in TYPE_SECTIONS}
        self._files: Dict[str, Dict[str, Optional[str]]] = {s: {} for s in TYPE_SECTIONS}
        for i, src in enumerate(sources):
            if not isinstance(src, dict):
                raise ToscaError("type source #%d is not a mapping of type sections" % i)
            for section, defs in src.items():
                if section not in TYPE_SECTIONS:
                    raise ToscaError("type source #%d: unknown section %r" % (i, section))
                if defs is None:
                    continue
                if not isinstance(defs, dict):
                    raise ToscaError("type source #%d: %s is not a mapping" % (i, section))
                for name, body in defs.items():
                    body = {} if body is None else body
                    if not isinstance(body, dict):
                        raise ToscaError("%s %s: a type definition is a mapping" % (section, name))
                    file = body.get("_file")
                    self._raw[section][name] = {k: v for k, v in body.items() if k != "_file"}
                    self._files[section][name] = file if isinstance(file, str) else None
        self._nodes: Dict[str, NodeType] = {}
        self._rels: Dict[str, RelationshipType] = {}

    # ------------------------------------------------------------ lookups
    def has_node_type(self, name: str) -> bool:
        return isinstance(name, str) and name in self._raw["node_types"]

    def has_relationship_type(self, name: Any) -> bool:
        return isinstance(name, str) and name in self._raw["relationship_types"]

    def node_type_names(self) -> List[str]:
        return list(self._raw["node_types"])

    def relationship_type_names(self) -> List[str]:
        return list(self._raw["relationship_types"])

    def raw(self, section: str, name: str) -> Optional[Dict[str, Any]]:
        return self._raw.get(section, {}).get(name)

    def file_of(self, section: str, name: str) -> Optional[str]:
        return self._files.get(section, {}).get(name)

    # ------------------------------------------------------------ resolution
    def _chain(self, section: str, name: str) -> List[str]:
        """[name, parent, ..., root]; unknown parents and cycles are errors naming the chain."""
        if name not in self._raw[section]:
            raise ToscaError("unknown %s %r" % (section[:-1].replace("_", " "), name))
        chain = [name]
        while True:
            cur = chain[-1]
            parent = self._raw[section][cur].get("derived_from")
            if parent is None:
                return chain
            file, path = self._files[section][cur], "%s.%s.derived_from" % (section, cur)
            if not isinstance(parent, str):
                raise ToscaError("derived_from must be a type name", file=file, path=path)
            if parent in chain:
                raise ToscaError("derived_from cycle: %s" % " -> ".join(chain[chain.index(parent):] + [parent]),
                                 file=file, path=path)
            if parent not in self._raw[section]:
                raise ToscaError("%s derives from unknown %s %r" % (cur, section[:-1].replace("_", " "), parent),
                                 file=file, path=path)
            chain.append(parent)

    def resolve_node_type(self, name: str) -> NodeType:
        return self._resolve("node_types", name, self._nodes, self._build_node)

    def resolve_relationship_type(self, name: str) -> RelationshipType:
        return self._resolve("relationship_types", name, self._rels, self._build_rel)

    def _resolve(self, section: str, name: str, built: Dict[str, _T],
                 build: Callable[[str, Optional[_T]], _T]) -> _T:
        """Node and relationship types resolve alike: root first down the chain, each type built
        once on its resolved parent and kept in ``built``."""
        if name in built:
            return built[name]
        chain = self._chain(section, name)
        for tname in reversed(chain):
            if tname not in built:
                parent = built.get(self._raw[section][tname].get("derived_from") or "")
                built[tname] = build(tname, parent)
        return built[name]

    def resolve_all(self) -> None:
        """Resolve every node and relationship type (validating them all)."""
        for n in self.node_type_names():
            self.resolve_node_type(n)
        for n in self.relationship_type_names():
            self.resolve_relationship_type(n)

    # ------------------------------------------------------------ building
    @staticmethod
    def _section_dict(raw: Dict[str, Any], key: str, file: Optional[str], path: str) -> Dict[str, Any]:
        v = raw.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ToscaError("%s must be a mapping" % key, file=file, path="%s.%s" % (path, key))
        return v

    @staticmethod
    def _check_keys(raw: Dict[str, Any], allowed: Set[str], file: Optional[str], path: str, what: str) -> None:
        unknown = set(raw) - allowed
        if unknown:
            raise ToscaError("unknown keys in %s: %s (allowed: %s)"
                             % (what, ", ".join(sorted(unknown)), ", ".join(sorted(allowed))),
                             file=file, path=path)

    @staticmethod
    def _workflow_defs(raw: Dict[str, Any], file: Optional[str], path: str) -> Tuple[str, Dict[str, Any]]:
        """Both ``workflows:`` (TOSCA 1.3 grammar) and ``workflow:`` (the seed's) are accepted."""
        if "workflows" in raw and "workflow" in raw:
            raise ToscaError("both 'workflows' and 'workflow' given; use 'workflows'", file=file, path=path)
        key = "workflow" if "workflow" in raw else "workflows"
        wfs = raw.get(key)
        if wfs is None:
            return key, {}
        if not isinstance(wfs, dict):
            raise ToscaError("%s must map workflow names to definitions" % key, file=file,
                             path="%s.%s" % (path, key))
        return key, wfs

    def _build_node(self, name: str, parent: Optional[NodeType]) -> NodeType:
        raw, file, path = self._own("node_types", name, _NODE_TYPE_KEYS, "node type %s" % name)
        workflows = self._workflows(name, raw, file, path, parent.workflows if parent else {},
                                    self._node_workflow)
        requirements: Dict[str, RequirementDef] = dict(parent.requirements) if parent else {}
        for rname, rdef in _single_key_items(raw.get("requirements"), file, path + ".requirements",
                                             "requirements of node type %s" % name):
            rpath = "%s.requirements.%s" % (path, rname)
            requirements[rname] = self._requirement_def(name, rname, rdef, file, rpath)
        own = self._inherited(raw, parent, file, path, _NODE_TYPE_SECTIONS)
        return NodeType(
            name=name, derived_from=raw.get("derived_from"),
            ancestors=[name] + (parent.ancestors if parent else []),
            workflows=workflows, requirements=requirements, interfaces=own["interfaces"],
            properties=own["properties"], attributes=own["attributes"], file=file,
            capabilities=own["capabilities"], artifacts=own["artifacts"])

    def _build_rel(self, name: str, parent: Optional[RelationshipType]) -> RelationshipType:
        raw, file, path = self._own("relationship_types", name, _REL_TYPE_KEYS,
                                    "relationship type %s" % name)
        workflows = self._workflows(name, raw, file, path, parent.workflows if parent else {},
                                    self._rel_workflow)
        vtt = raw.get("valid_target_types")
        if vtt is None:
            vtt = list(parent.valid_target_types) if parent else []
        elif not isinstance(vtt, list) or not all(isinstance(x, str) for x in vtt):
            raise ToscaError("valid_target_types must be a list of type names", file=file,
                             path=path + ".valid_target_types")
        own = self._inherited(raw, parent, file, path, _REL_TYPE_SECTIONS)
        return RelationshipType(
            name=name, derived_from=raw.get("derived_from"),
            ancestors=[name] + (parent.ancestors if parent else []), workflows=workflows,
            interfaces=own["interfaces"], file=file, properties=own["properties"],
            attributes=own["attributes"], valid_target_types=list(vtt))

    def _own(self, section: str, name: str, allowed: Set[str],
             what: str) -> Tuple[Dict[str, Any], Optional[str], str]:
        """A type's raw definition, its file and its path, once its keys are known good: where
        building a node type and a relationship type starts alike."""
        raw = self._raw[section][name]
        file = self._files[section][name]
        path = "%s.%s" % (section, name)
        self._check_keys(raw, allowed, file, path, what)
        return raw, file, path

    def _workflows(self, name: str, raw: Dict[str, Any], file: Optional[str], path: str,
                   inherited: Dict[str, _W],
                   build: Callable[[str, str, Any, Optional[str], str], _W]) -> Dict[str, _W]:
        """The parent's workflows, each replaced by the type's own of that name: the same rule
        for node types (activity lists) and relationship types (weavings)."""
        key, wfs = self._workflow_defs(raw, file, path)
        workflows = dict(inherited)
        for wname, wdef in wfs.items():
            workflows[wname] = build(name, wname, wdef, file, "%s.%s.%s" % (path, key, wname))
        return workflows

    def _inherited(self, raw: Dict[str, Any], parent: Optional[Any], file: Optional[str],
                   path: str, sections: Tuple[str, ...]) -> Dict[str, Dict[str, Any]]:
        """The sections a type inherits, its own over its parent's (interfaces merged deep, the
        others by name), checked in the order given so the first bad one is the one reported."""
        out: Dict[str, Dict[str, Any]] = {}
        for key in sections:
            base: Dict[str, Any] = getattr(parent, key) if parent else {}
            mine = self._section_dict(raw, key, file, path)
            out[key] = _deep_merge(base, mine) if key == "interfaces" else _merged(base, mine)
        return out

    @staticmethod
    def _requirement_def(tname: str, rname: str, rdef: Any, file: Optional[str], path: str) -> RequirementDef:
        if isinstance(rdef, str):                 # short notation: the capability type
            return RequirementDef(name=rname, relationship=None, capability=rdef, node=None)
        if not isinstance(rdef, dict):
            raise ToscaError("node type %s: requirement %s must be a capability name or a mapping"
                             % (tname, rname), file=file, path=path)
        TypeRegistry._check_keys(rdef, _REQ_DEF_KEYS, file, path, "requirement %s of node type %s" % (rname, tname))
        rel = rdef.get("relationship")
        if isinstance(rel, dict):
            rel = rel.get("type")
        for k, v in (("relationship", rel), ("capability", rdef.get("capability")), ("node", rdef.get("node"))):
            if v is not None and not isinstance(v, str):
                raise ToscaError("node type %s: requirement %s: %s must be a type name" % (tname, rname, k),
                                 file=file, path="%s.%s" % (path, k))
        occ = rdef.get("occurrences")
        if occ is not None and not isinstance(occ, list):
            raise ToscaError("node type %s: requirement %s: occurrences must be [min, max]" % (tname, rname),
                             file=file, path=path + ".occurrences")
        return RequirementDef(name=rname, relationship=rel, capability=rdef.get("capability"),
                              node=rdef.get("node"), occurrences=occ)

    @staticmethod
    def _node_workflow(tname: str, wname: str, wdef: Any, file: Optional[str], path: str) -> List[Activity]:
        what = "node type %s, workflow %s" % (tname, wname)
        if not isinstance(wdef, dict):
            raise ToscaError("%s: a workflow is a mapping with 'steps'" % what, file=file, path=path)
        TypeRegistry._check_keys(wdef, {"steps", "description", "metadata"}, file, path, what)
        steps = wdef.get("steps") or {}
        if not isinstance(steps, dict):
            raise ToscaError("%s: steps must map step names to {activities: [...]}" % what, file=file,
                             path=path + ".steps")
        acts: List[Activity] = []
        for sname, sdef in steps.items():
            spath = "%s.steps.%s" % (path, sname)
            if not isinstance(sdef, dict):
                raise ToscaError("%s: step %s must be a mapping with 'activities'" % (what, sname),
                                 file=file, path=spath)
            TypeRegistry._check_keys(sdef, {"activities", "description"}, file, spath,
                                     "%s, step %s" % (what, sname))
            alist = sdef.get("activities") or []
            if not isinstance(alist, list):
                raise ToscaError("%s: step %s: activities must be a list" % (what, sname), file=file,
                                 path=spath + ".activities")
            for i, a in enumerate(alist):
                apath = "%s.activities[%d]" % (spath, i)
                if not isinstance(a, dict) or len(a) != 1:
                    raise ToscaError("%s: step %s: activity %d must be one of {set_state: S} or "
                                     "{call_operation: OP}" % (what, sname, i), file=file, path=apath)
                kind, value = next(iter(a.items()))
                if kind not in (SET_STATE, CALL_OPERATION):
                    raise ToscaError("%s: step %s: activity %d: %r is not supported (use set_state or "
                                     "call_operation)" % (what, sname, i, kind), file=file, path=apath)
                if not isinstance(value, str) or not value:
                    raise ToscaError("%s: step %s: activity %d: %s needs a non-empty name"
                                     % (what, sname, i, kind), file=file, path=apath)
                acts.append(Activity(kind=kind, name=value))
        return acts

    @staticmethod
    def _rel_workflow(tname: str, wname: str, wdef: Any, file: Optional[str], path: str) -> RelWorkflow:
        what = "relationship type %s, workflow %s" % (tname, wname)
        if not isinstance(wdef, dict):
            raise ToscaError("%s: a relationship workflow is a mapping with source_weaving / target_weaving"
                             % what, file=file, path=path)
        TypeRegistry._check_keys(wdef, {"source_weaving", "target_weaving", "description"}, file, path, what)
        sides: Dict[str, List[WeaveEntry]] = {}
        for side, wait_key, other_wait in (("source", "wait_target", "after_source"),
                                           ("target", "after_source", "wait_target")):
            key = "%s_weaving" % side
            entries = wdef.get(key) or []
            if not isinstance(entries, list):
                raise ToscaError("%s: %s must be a list" % (what, key), file=file, path="%s.%s" % (path, key))
            out: List[WeaveEntry] = []
            for i, e in enumerate(entries):
                epath = "%s.%s[%d]" % (path, key, i)
                ewhat = "%s: %s[%d]" % (what, key, i)
                if not isinstance(e, dict):
                    raise ToscaError("%s must be a mapping" % ewhat, file=file, path=epath)
                if other_wait in e:
                    raise ToscaError("%s: %s is only allowed in %s_weaving (use %s here)"
                                     % (ewhat, other_wait, "target" if side == "source" else "source",
                                        wait_key), file=file, path=epath)
                unknown = set(e) - {"before", "after", wait_key, "activity", "description"}
                if unknown:
                    raise ToscaError("%s: unknown keys %s (allowed: before | after, %s, activity)"
                                     % (ewhat, ", ".join(sorted(unknown)), wait_key), file=file, path=epath)
                anchors = [p for p in ("before", "after") if p in e]
                if len(anchors) != 1:
                    raise ToscaError("%s needs exactly one of before / after" % ewhat, file=file, path=epath)
                pos = anchors[0]
                for k in (pos, wait_key, "activity"):
                    if k in e and (not isinstance(e[k], str) or not e[k]):
                        raise ToscaError("%s: %s must be a non-empty name" % (ewhat, k), file=file, path=epath)
                out.append(WeaveEntry(position=pos, state=e[pos], wait_state=e.get(wait_key),
                                      activity=e.get("activity")))
            sides[side] = out
        return RelWorkflow(source=sides["source"], target=sides["target"])


def resolve_defined(registry: TypeRegistry, doc: Document) -> None:
    """Resolve the types the file (and its imports) defines, so an error in an unused type is
    still reported at upload rather than when someone first uses it.  Every bad type is
    reported, before the templates (whose errors would only repeat them)."""
    problems: List[ToscaError] = []
    for section, resolve, names in (("node_types", registry.resolve_node_type, doc.node_types),
                                    ("relationship_types", registry.resolve_relationship_type,
                                     doc.relationship_types)):
        bad: Set[str] = set()
        for n in names:
            chain = _raw_chain(registry, section, n)
            if bad & chain:       # a bad ancestor (or cycle) is reported once, not by each child
                continue
            try:
                resolve(n)
            except ToscaError as exc:
                problems.append(exc)
                bad |= chain
    raise_problems(problems)


def _raw_chain(registry: TypeRegistry, section: str, name: str) -> Set[str]:
    """``name`` and the names its raw ``derived_from`` leads to (stopping at a repeat)."""
    chain: Set[str] = set()
    cur: Any = name
    while isinstance(cur, str) and cur not in chain:
        chain.add(cur)
        raw = registry.raw(section, cur)
        cur = raw.get("derived_from") if isinstance(raw, dict) else None
    return chain
