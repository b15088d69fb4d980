# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a ``Model`` from a TOSCA topology file, and validate type libraries.

Everything a later stage relies on is checked here, before anything is written to the Space: each
template's type exists, each requirement resolves to an existing template and a known relationship
type (taken from the type's requirement definition when the template does not name one), and the
scaling counts are consistent.  Errors name the file and the template so the user can fix the
input from the message alone.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import ToscaError
from .loader import TYPE_SECTIONS, Document, load_document
from .model import Model, NodeTemplate, NodeType, RelationshipType, RequirementAssignment, Scaling
from .normative import normative_types
from .sections import stored_sections
from .types import TypeRegistry, raw_types_of

UNBOUNDED = "UNBOUNDED"

_TOPOLOGY_KEYS = {"description", "inputs", "outputs", "node_templates", "relationship_templates",
                  "groups", "policies", "substitution_mappings", "workflows", "metadata"}
_TEMPLATE_KEYS = {"type", "description", "metadata", "directives", "properties", "attributes",
                  "requirements", "capabilities", "interfaces", "artifacts", "node_filter", "copy"}
_REQ_KEYS = {"node", "relationship", "capability", "node_filter", "occurrences", "description"}
_REL_TEMPLATE_KEYS = {"type", "description", "metadata", "properties", "attributes", "interfaces", "copy"}
_SCALING_KEYS = ("min_instances", "default_instances", "max_instances")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _mapping(value: Any, file: str, path: str, what: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ToscaError("%s must be a mapping" % what, file=file, path=path)
    return value


class _Builder:
    def __init__(self, doc: Document, registry: TypeRegistry, topo: Dict[str, Any]):
        self.doc = doc
        self.file = doc.file
        self.registry = registry
        self.raw_templates: Dict[str, Any] = topo["node_templates"]
        self.rel_templates = self._relationship_templates(topo.get("relationship_templates"))

    def _relationship_templates(self, raw: Any) -> Dict[str, Dict[str, Any]]:
        out: Dict[str, Dict[str, Any]] = {}
        for name, body in _mapping(raw, self.file, "topology_template.relationship_templates",
                                   "relationship_templates").items():
            path = "topology_template.relationship_templates.%s" % name
            if not isinstance(body, dict):
                raise ToscaError("relationship template %s must be a mapping" % name, file=self.file, path=path)
            unknown = set(body) - _REL_TEMPLATE_KEYS
            if unknown:
                raise ToscaError("relationship template %s: unknown keys %s" % (name, ", ".join(sorted(unknown))),
                                 file=self.file, path=path)
            rtype = body.get("type")
            if not self.registry.has_relationship_type(rtype):
                raise ToscaError("relationship template %s: unknown relationship type %r" % (name, rtype),
                                 file=self.file, path=path + ".type")
            out[name] = body
        return out

    # ------------------------------------------------------------ templates
    def template(self, name: str) -> NodeTemplate:
        raw = self.raw_templates[name]
        where = "topology_template.node_templates.%s" % name
        if not isinstance(raw, dict):
            raise ToscaError("%s: a node template is a mapping with a 'type'" % name, file=self.file, path=where)
        unknown = set(raw) - _TEMPLATE_KEYS
        if unknown:
            raise ToscaError("%s: unknown keys %s (allowed: %s)" % (name, ", ".join(sorted(unknown)),
                                                                    ", ".join(sorted(_TEMPLATE_KEYS))),
                             file=self.file, path=where)
        tname = raw.get("type")
        if tname is None:
            raise ToscaError("%s: node template has no type" % name, file=self.file, path=where)
        if not self.registry.has_node_type(tname):
            raise ToscaError("%s: unknown node type %r" % (name, tname), file=self.file, path=where + ".type")
        ntype = self.registry.resolve_node_type(tname)
        caps = _mapping(raw.get("capabilities"), self.file, where + ".capabilities", "capabilities")
        desc = raw.get("description")
        return NodeTemplate(
            name=name, type=tname,
            requirements=self.requirements(name, ntype, raw.get("requirements"), where + ".requirements"),
            scaling=self.scaling(name, caps, where + ".capabilities.scalable"),
            properties=_mapping(raw.get("properties"), self.file, where + ".properties", "properties"),
            attributes=_mapping(raw.get("attributes"), self.file, where + ".attributes", "attributes"),
            interfaces=_mapping(raw.get("interfaces"), self.file, where + ".interfaces", "interfaces"),
            file=self.file, capabilities=caps,
            artifacts=_mapping(raw.get("artifacts"), self.file, where + ".artifacts", "artifacts"),
            description=desc if isinstance(desc, str) else None)

    def requirements(self, name: str, ntype: NodeType, raw: Any, where: str) -> List[RequirementAssignment]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ToscaError("%s: requirements must be a list of single-key maps (- host: srv)" % name,
                             file=self.file, path=where)
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or len(item) != 1:
                raise ToscaError("%s: requirement #%d must be a single-key map (- host: srv)" % (name, i),
                                 file=self.file, path="%s[%d]" % (where, i))
            rname, body = next(iter(item.items()))
            out.append(self.requirement(name, ntype, rname, body, "%s[%d].%s" % (where, i, rname)))
        return out

    def requirement(self, name: str, ntype: NodeType, rname: str, body: Any, path: str) -> RequirementAssignment:
        if isinstance(body, str):                    # short form: - host: srvA
            body = {"node": body}
        elif not isinstance(body, dict):
            raise ToscaError("%s: requirement '%s' must name a node template or be a mapping with 'node'"
                             % (name, rname), file=self.file, path=path)
        unknown = set(body) - _REQ_KEYS
        if unknown:
            raise ToscaError("%s: requirement '%s': unknown keys %s (allowed: %s)"
                             % (name, rname, ", ".join(sorted(unknown)), ", ".join(sorted(_REQ_KEYS))),
                             file=self.file, path=path)
        node = body.get("node")
        if node is None:
            raise ToscaError("%s: requirement '%s' names no target node" % (name, rname),
                             file=self.file, path=path)
        if not isinstance(node, str) or node not in self.raw_templates:
            raise ToscaError("%s: requirement '%s' targets node %r, which is not a node template of this "
                             "topology" % (name, rname, node), file=self.file, path=path + ".node")
        rtype, rtemplate, props, ifaces = self.relationship(name, ntype, rname, body.get("relationship"), path)
        cap = body.get("capability")
        if cap is None and rname in ntype.requirements:
            cap = ntype.requirements[rname].capability
        if cap is not None and not isinstance(cap, str):
            raise ToscaError("%s: requirement '%s': capability must be a name" % (name, rname),
                             file=self.file, path=path + ".capability")
        return RequirementAssignment(name=rname, node=node, relationship=rtype, capability=cap,
                                     relationship_template=rtemplate, properties=props, interfaces=ifaces)

    def relationship(self, name: str, ntype: NodeType, rname: str, rel: Any,
                     path: str) -> Tuple[str, Optional[str], Dict[str, Any], Dict[str, Any]]:
        """(type, relationship template, properties, interfaces) of one requirement assignment."""
        rpath = path + ".relationship"
        props: Dict[str, Any] = {}
        ifaces: Dict[str, Any] = {}
        rtemplate: Optional[str] = None
        if rel is None:
            rdef = ntype.requirements.get(rname)
            if rdef is None:
                raise ToscaError("%s: requirement '%s' names no relationship and type %s defines no "
                                 "requirement '%s'" % (name, rname, ntype.name, rname), file=self.file, path=path)
            if rdef.relationship is None:
                raise ToscaError("%s: requirement '%s' names no relationship and the definition of '%s' "
                                 "in type %s names none either" % (name, rname, rname, ntype.name),
                                 file=self.file, path=path)
            rtype = rdef.relationship
        elif isinstance(rel, str):
            if self.registry.has_relationship_type(rel):
                rtype = rel
            elif rel in self.rel_templates:
                rtemplate = rel
                body = self.rel_templates[rel]
                rtype = body["type"]
                props = _mapping(body.get("properties"), self.file, rpath, "properties")
                ifaces = _mapping(body.get("interfaces"), self.file, rpath, "interfaces")
            else:
                raise ToscaError("%s: requirement '%s': unknown relationship type %r" % (name, rname, rel),
                                 file=self.file, path=rpath)
        elif isinstance(rel, dict):
            unknown = set(rel) - {"type", "properties", "interfaces", "description"}
            if unknown:
                raise ToscaError("%s: requirement '%s': unknown relationship keys %s"
                                 % (name, rname, ", ".join(sorted(unknown))), file=self.file, path=rpath)
            rtype = rel.get("type")
            props = _mapping(rel.get("properties"), self.file, rpath + ".properties", "properties")
            ifaces = _mapping(rel.get("interfaces"), self.file, rpath + ".interfaces", "interfaces")
        else:
            raise ToscaError("%s: requirement '%s': relationship must be a type name or {type: ...}"
                             % (name, rname), file=self.file, path=rpath)
        if not self.registry.has_relationship_type(rtype):
            raise ToscaError("%s: requirement '%s': unknown relationship type %r" % (name, rname, rtype),
                             file=self.file, path=rpath)
        return rtype, rtemplate, props, ifaces

    def scaling(self, name: str, caps: Dict[str, Any], where: str) -> Scaling:
        sc = caps.get("scalable")
        if sc is None:
            return Scaling()
        if not isinstance(sc, dict):
            raise ToscaError("%s: capability scalable must be a mapping with 'properties'" % name,
                             file=self.file, path=where)
        props = _mapping(sc.get("properties"), self.file, where + ".properties", "scalable properties")
        where += ".properties"
        unknown = set(props) - set(_SCALING_KEYS)
        if unknown:
            raise ToscaError("%s: unknown scalable properties %s (allowed: %s)"
                             % (name, ", ".join(sorted(unknown)), ", ".join(_SCALING_KEYS)),
                             file=self.file, path=where)
        mn = props.get("min_instances", 1)
        df = props.get("default_instances", mn)
        mx = props.get("max_instances", UNBOUNDED)
        bad = [k for k, v in (("min_instances", mn), ("default_instances", df)) if not _is_int(v)]
        if not (_is_int(mx) or mx == UNBOUNDED):
            bad.append("max_instances")
        if bad:
            raise ToscaError("%s: %s must be integers (max_instances may be UNBOUNDED), got %s"
                             % (name, ", ".join(bad), ", ".join("%s=%r" % (k, props.get(k)) for k in bad)),
                             file=self.file, path=where)
        mx_n = None if mx == UNBOUNDED else mx
        if not (0 <= mn <= df and (mx_n is None or df <= mx_n)):
            raise ToscaError("%s: scaling needs 0 <= min_instances <= default_instances <= max_instances, "
                             "got min_instances=%d, default_instances=%d, max_instances=%s"
                             % (name, mn, df, mx), file=self.file, path=where)
        return Scaling(min_instances=mn, default_instances=df, max_instances=mx_n)


def _registry(libraries: Iterable[Dict[str, Any]], own: Dict[str, Any]) -> TypeRegistry:
    return TypeRegistry([normative_types()] + list(libraries) + [own])


def _resolve_own(registry: TypeRegistry, doc: Document) -> None:
    """Resolve the types the file (and its imports) defines, so an error in an unused type is
    still reported at upload rather than when someone first uses it."""
    for n in doc.node_types:
        registry.resolve_node_type(n)
    for n in doc.relationship_types:
        registry.resolve_relationship_type(n)


def load_model(path: str, libraries: Iterable[Dict[str, Any]] = ()) -> Model:
    """The model of a TOSCA topology file, resolved over the normative library and ``libraries``
    (raw types as produced by ``raw_types_of`` / ``load_library``, earliest first)."""
    doc = load_document(path)
    topo = doc.topology_template
    if not isinstance(topo, dict) or not topo.get("node_templates"):
        raise ToscaError("no node_templates: a model needs a topology_template with at least one node template",
                         file=doc.file, path="topology_template.node_templates")
    unknown = set(topo) - _TOPOLOGY_KEYS
    if unknown:
        raise ToscaError("unknown keys in topology_template: %s" % ", ".join(sorted(unknown)),
                         file=doc.file, path="topology_template")
    if not isinstance(topo["node_templates"], dict):
        raise ToscaError("node_templates must map template names to definitions",
                         file=doc.file, path="topology_template.node_templates")
    registry = _registry(libraries, raw_types_of(doc))
    _resolve_own(registry, doc)
    builder = _Builder(doc, registry, topo)
    templates = {name: builder.template(name) for name in topo["node_templates"]}

    node_types: Dict[str, NodeType] = {}
    for t in templates.values():
        for anc in registry.resolve_node_type(t.type).ancestors:
            node_types.setdefault(anc, registry.resolve_node_type(anc))
    rel_types: Dict[str, RelationshipType] = {}
    for t in templates.values():
        for r in t.requirements:
            for anc in registry.resolve_relationship_type(r.relationship).ancestors:
                rel_types.setdefault(anc, registry.resolve_relationship_type(anc))
    desc = doc.description if doc.description is not None else topo.get("description")
    warnings: List[str] = []
    sections = stored_sections(topo, templates, doc.file, warnings)
    workflows = _mapping(topo.get("workflows"), doc.file, "topology_template.workflows", "workflows")
    return Model(templates=templates, node_types=node_types, relationship_types=rel_types,
                 inputs=_mapping(topo.get("inputs"), doc.file, "topology_template.inputs", "inputs"),
                 outputs=_mapping(topo.get("outputs"), doc.file, "topology_template.outputs", "outputs"),
                 file=doc.file, description=desc if isinstance(desc, str) else None,
                 metadata=dict(doc.metadata or {}), warnings=warnings, sections=sections,
                 workflows=workflows)


def load_library(path: str, libraries: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """The raw types of a type library file (what ``wfctl library FILE`` stores), after checking
    that each of its types resolves over the normative library and the earlier ``libraries``."""
    doc = load_document(path)
    raw = raw_types_of(doc)
    if not any(raw[s] for s in TYPE_SECTIONS):
        raise ToscaError("a library must define at least one type (node_types, relationship_types, ...)",
                         file=doc.file)
    registry = _registry(libraries, raw)
    _resolve_own(registry, doc)
    return raw
