# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two ``FunctionContext`` implementations: ``ModelContext``, over what a worker reads from
the Space for one operation call, and ``DictContext``, over plain dicts (tests and tools).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, cast

from ..instances import natural_key
from .functions import FunctionContext
from ..records import NodeInstance, Relationship


class DictContext(FunctionContext):
    """A context over plain dicts: ``nodes`` maps a node id to
    ``{"template", "type", "types": [type and ancestors], "host", "properties", "attributes",
    "capabilities": {name: {"properties", "attributes"}}, "requirements": {name: [target ids]},
    "artifacts": {name: path}}``; ``relationships`` maps a relationship id (or a relationship
    template name) to ``{"properties", "attributes"}``."""

    def __init__(self, nodes: Dict[str, Dict[str, Any]], inputs: Optional[Dict[str, Any]] = None,
                 self_node: Optional[str] = None, source: Optional[str] = None, target: Optional[str] = None,
                 relationship: Optional[str] = None,
                 relationships: Optional[Dict[str, Dict[str, Any]]] = None,
                 relationship_templates: Optional[Dict[str, Dict[str, Any]]] = None,
                 artifact_root: Optional[str] = None):
        self.nodes = nodes
        self.inputs = inputs or {}
        self.self_node = self_node
        self.source = source
        self.target = target
        self.relationship = relationship
        self.relationships = relationships or {}
        self.rel_templates = relationship_templates or {}
        self.artifact_root = artifact_root
        self.used_artifacts = []

    def properties(self, node_id: str) -> Dict[str, Any]:
        return self.nodes.get(node_id, {}).get("properties") or {}

    def attributes(self, node_id: str) -> Dict[str, Any]:
        return self.nodes.get(node_id, {}).get("attributes") or {}

    def host(self, node_id: str) -> Optional[str]:
        return self.nodes.get(node_id, {}).get("host")

    def template_node(self, template: str) -> Optional[str]:
        ids = sorted(n for n, v in self.nodes.items() if v.get("template") == template)
        return ids[0] if ids else None

    def _cap(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        return (self.nodes.get(node_id, {}).get("capabilities") or {}).get(name)

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        cap = self._cap(node_id, name)
        return None if cap is None else (cap.get("properties") or {})

    def capability_attributes(self, node_id: str, name: str) -> Dict[str, Any]:
        return (self._cap(node_id, name) or {}).get("attributes") or {}

    def requirement_targets(self, node_id: str, name: str) -> Optional[List[str]]:
        reqs = self.nodes.get(node_id, {}).get("requirements") or {}
        return list(reqs[name]) if name in reqs else None

    def relationship_properties(self, rel_id: str) -> Dict[str, Any]:
        return self.relationships.get(rel_id, {}).get("properties") or {}

    def relationship_attributes(self, rel_id: str) -> Dict[str, Any]:
        return self.relationships.get(rel_id, {}).get("attributes") or {}

    def relationship_template(self, name: str) -> Optional[Dict[str, Any]]:
        return self.rel_templates.get(name)

    def nodes_of_type(self, type_name: str) -> List[str]:
        return sorted((n for n, v in self.nodes.items() if type_name in (v.get("types") or [v.get("type")])),
                      key=natural_key)

    def artifacts(self, node_id: str) -> Dict[str, str]:
        return self.nodes.get(node_id, {}).get("artifacts") or {}


class ModelContext(FunctionContext):
    """A context over what a worker has, for one operation call.

    ``values``: ``operations.compile_values(model)`` (stored with the model);
    ``node(id)``: a node instance record (``instances.expand``: id, template, host, out, in);
    ``attributes(id)``: the attributes operations reported for a node (from the Space);
    ``instances(template)``: the node ids of a template in this deployment;
    ``relationship``: the relationship instance record for a relationship operation, and
    ``side``: "source" | "target" (which end runs it).

    A requirement named in a function (``[SELF, server, ip]``) designates the first instance
    (natural order) that requirement of SELF's instance targets.

    A template name designates, in order: the other end of the call's relationship if it is of
    that template, an instance linked to SELF by a relationship, an instance on the same host,
    else the template's first instance."""

    def __init__(self, values: Dict[str, Dict[str, Any]], node: Callable[[str], NodeInstance],
                 attributes: Callable[[str], Dict[str, Any]], inputs: Dict[str, Any],
                 self_node: Optional[str],
                 instances: Optional[Callable[[str], List[str]]] = None,
                 relationship: Optional[Relationship] = None):
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

    def capability_attributes(self, node_id: str, name: str) -> Dict[str, Any]:
        cap = (self._tvalues(node_id).get("capabilities") or {}).get(name) or {}
        return cap.get("attributes") or {}

    def requirement_targets(self, node_id: str, name: str) -> Optional[List[str]]:
        rec = self._node(node_id)
        targets = [rel["target"] for rel in rec.get("out", []) if rel.get("requirement") == name]
        if targets:
            return targets
        declared = any(r.get("requirement") == name
                       for r in (self._tvalues(node_id).get("relationships") or {}).values())
        return [] if declared else None

    def relationship_template(self, name: str) -> Optional[Dict[str, Any]]:
        # A relationship template's values are the same in every requirement that names it.
        for tv in self.values.values():
            for rel in (tv.get("relationships") or {}).values():
                if rel.get("template") == name:
                    return cast(Dict[str, Any], rel)
            unused = (tv.get("relationship_templates") or {}).get(name)   # one no requirement names
            if isinstance(unused, dict):
                return unused
        return None

    def nodes_of_type(self, type_name: str) -> List[str]:
        out: List[str] = []
        for tname, tv in sorted(self.values.items()):
            if type_name in (tv.get("types") or []) and self._instances:
                out.extend(self._instances(tname))
        return sorted(out, key=natural_key)

    def artifacts(self, node_id: str) -> Dict[str, str]:
        return self._tvalues(node_id).get("artifacts") or {}

    def _rel_values(self, rel_id: str) -> Dict[str, Any]:
        # Relationship ids are "<source>:<requirement>#<index>:<target>" (instances.expand).
        rel = self._rel if self._rel and self._rel["id"] == rel_id else None
        if rel is None:
            return {}
        try:
            index = rel_id.split("#", 1)[1].split(":", 1)[0]
        except IndexError:
            return {}
        return cast(Dict[str, Any],
                    (self._tvalues(rel["source"]).get("relationships") or {}).get(index, {}))

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
        ids = sorted(self._instances(template), key=natural_key) if self._instances else []
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
