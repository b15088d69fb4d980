# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a ``Model`` from a TOSCA topology file, and validate type libraries.

Everything a later stage relies on is checked here, before anything is written to the Space: each
template's type exists, each requirement resolves to one template (named, or chosen by node type
and node_filter: ``requirements.py``) and a known relationship type (taken from the type's
requirement definition when the template does not name one), the scaling counts are consistent
(``scaling.py``) and values match their types (``checks.py``).  Each template is checked on its
own and every problem collected, so that one upload lists them all (``ToscaProblems``); each names
the file, the YAML path and the template so the user can fix the input from the message alone.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple, cast

from ..errors import ToscaError, raise_problems
from . import checks
from .datatypes import DataTypes
from .loader import TYPE_SECTIONS, Document, load_document
from .model import Model, NodeTemplate, NodeType, RelationshipType, RequirementAssignment, Scaling
from .names import canonical_sources, canonical_topology, scopes_of
from .normative import normative_types
from .requirements import Candidates, node_filter_error, occurrences
from .scaling import scaling_of
from .sections import stored_sections
from .types import TypeRegistry, raw_types_of, resolve_defined


DEPENDS_ON = "tosca.relationships.DependsOn"

_TOPOLOGY_KEYS = {"description", "inputs", "outputs", "node_templates", "relationship_templates",
                  "groups", "policies", "substitution_mappings", "workflows", "metadata"}
_TEMPLATE_KEYS = {"type", "description", "metadata", "directives", "properties", "attributes",
                  "requirements", "capabilities", "interfaces", "artifacts", "node_filter", "copy"}
_REQ_KEYS = {"node", "relationship", "capability", "node_filter", "occurrences", "description"}
_REL_TEMPLATE_KEYS = {"type", "description", "metadata", "properties", "attributes", "interfaces", "copy"}


def _mapping(value: Any, file: str, path: str, what: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ToscaError("%s must be a mapping" % what, file=file, path=path)
    return value


class _Builder:
    """Builds every template independently, collecting problems (``self.problems``) rather than
    stopping at the first: one upload shows the user everything to fix."""

    def __init__(self, doc: Document, registry: TypeRegistry, topo: Dict[str, Any]):
        self.doc = doc
        self.file = doc.file
        self.registry = registry
        self.raw_templates: Dict[str, Any] = topo["node_templates"]
        self.problems: List[ToscaError] = []
        self.warnings: List[str] = []
        inputs = topo.get("inputs")
        self.inputs: Dict[str, Any] = inputs if isinstance(inputs, dict) else {}
        self.datatypes = DataTypes(lambda n: registry.raw("data_types", n))
        self.candidates = Candidates(registry, self.raw_templates, self.inputs, self.datatypes)
        self.rel_templates = self._relationship_templates(topo.get("relationship_templates"))

    def _relationship_templates(self, raw: Any) -> Dict[str, Dict[str, Any]]:
        out: Dict[str, Dict[str, Any]] = {}
        try:
            items = _mapping(raw, self.file, "topology_template.relationship_templates",
                             "relationship_templates").items()
        except ToscaError as exc:
            self.problems.append(exc)
            return out
        for name, body in items:
            try:
                out[name] = self._relationship_template(name, body)
            except ToscaError as exc:
                self.problems.append(exc)
        return out

    def _relationship_template(self, name: str, body: Any) -> Dict[str, Any]:
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
        for key in ("properties", "interfaces", "attributes"):
            _mapping(body.get(key), self.file, "%s.%s" % (path, key), key)
        self.problems.extend(checks.check_relationship(
            "relationship template %s" % name, body.get("properties") or {},
            self.registry.resolve_relationship_type(cast(str, rtype)), self.datatypes, self.file, path,
            self.warnings))
        return body

    def templates(self) -> Dict[str, NodeTemplate]:
        """Every template that builds; the problems of the others (and of these) collected."""
        self.problems.extend(checks.check_inputs(self.inputs, self.datatypes, self.file, self.warnings))
        out: Dict[str, NodeTemplate] = {}
        for name in self.raw_templates:
            try:
                out[name] = self.template(name)
            except ToscaError as exc:
                self.problems.append(exc)
        self.problems.extend(checks.check_definitions(self.registry, self.datatypes, "node_types",
                                                      sorted({t.type for t in out.values()})))
        rels = {r.relationship for t in out.values() for r in t.requirements}
        rels |= {b["type"] for b in self.rel_templates.values()}
        self.problems.extend(checks.check_definitions(self.registry, self.datatypes, "relationship_types",
                                                      sorted(rels)))
        return out

    # ------------------------------------------------------------ templates
    def template(self, name: str) -> NodeTemplate:
        raw = self.raw_templates[name]
        where = "topology_template.node_templates.%s" % name
        if not isinstance(raw, dict):
            raise ToscaError("%s: a node template is a mapping with a 'type'" % name, file=self.file, path=where)
        raw = self._copied(name, raw, where)
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
        requirements = self.requirements(name, ntype, raw.get("requirements"), where + ".requirements")
        requirements += self.occurrences(name, ntype, requirements, where + ".requirements")
        scaling = self._collect(lambda: scaling_of(name, ntype, caps, self.registry, self.inputs, self.file,
                                                   where + ".capabilities"), Scaling())
        self.problems.extend(checks.check_template(name, raw, ntype, self.registry, self.datatypes, self.file,
                                                   self.warnings))
        for key in ("directives", "node_filter"):
            if raw.get(key) is not None:
                # TOSCA 1.3 3.8.3: an orchestrator may select or substitute such a node; this engine
                # deploys the template as written, and says so rather than dropping the key silently.
                self.warnings.append("%s: %s.%s: %s: %s is stored, not applied (the template is deployed as "
                                     "written)" % (self.file, where, key, name, key))
        return NodeTemplate(
            name=name, type=tname, requirements=requirements, scaling=scaling,
            properties=_mapping(raw.get("properties"), self.file, where + ".properties", "properties"),
            attributes=_mapping(raw.get("attributes"), self.file, where + ".attributes", "attributes"),
            interfaces=_mapping(raw.get("interfaces"), self.file, where + ".interfaces", "interfaces"),
            file=self.file, capabilities=caps,
            artifacts=_mapping(raw.get("artifacts"), self.file, where + ".artifacts", "artifacts"),
            description=desc if isinstance(desc, str) else None)

    def _collect(self, build: Any, fallback: Any) -> Any:
        """``build()``, or ``fallback`` with its problem recorded (the template goes on being checked)."""
        try:
            return build()
        except ToscaError as exc:
            self.problems.append(exc)
            return fallback

    def _copied(self, name: str, raw: Dict[str, Any], where: str) -> Dict[str, Any]:
        """TOSCA 1.3 3.8.3 ``copy``: another node template's keynames and values are the basis of
        this one (its own keys win); the copied template may not itself use ``copy``."""
        src = raw.get("copy")
        if src is None:
            return raw
        base = self.raw_templates.get(src) if isinstance(src, str) else None
        if not isinstance(base, dict):
            raise ToscaError("%s: copy names %r, which is not a node template of this topology" % (name, src),
                             file=self.file, path=where + ".copy")
        if "copy" in base:
            raise ToscaError("%s: copy names %s, which itself uses copy (TOSCA 1.3 3.8.3 forbids it)" % (name, src),
                             file=self.file, path=where + ".copy")
        out = dict(base)
        out.update({k: v for k, v in raw.items() if k != "copy"})
        return out

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
            req = self._collect(lambda: self.requirement(name, ntype, rname, body, "%s[%d].%s" % (where, i, rname)),
                                None)
            if req is not None:
                out.append(req)
        return out

    def target(self, name: str, ntype: NodeType, rname: str, body: Dict[str, Any], path: str) -> str:
        """The node template a requirement targets: the one it names, or the only one that
        matches the node type it names and/or its node_filter, or, when it names none (``{}``,
        only a capability or a relationship), its definition's node type and capability
        (TOSCA 1.3 3.8.2, 3.6.4)."""
        node = body.get("node")
        nfilter = body.get("node_filter")
        if nfilter is not None:
            bad = node_filter_error(nfilter)
            if bad:
                raise ToscaError("%s: requirement '%s': %s" % (name, rname, bad), file=self.file,
                                 path=path + ".node_filter")
        if isinstance(node, str) and node in self.raw_templates:
            return node
        rdef = ntype.requirements.get(rname)
        if node is None and nfilter is None and rdef is None:
            raise ToscaError("%s: requirement '%s' names no target node" % (name, rname),
                             file=self.file, path=path)
        if node is not None and not self.registry.has_node_type(node):
            raise ToscaError("%s: requirement '%s' targets node %r, which is not a node template of this "
                             "topology (nor a node type)" % (name, rname, node), file=self.file, path=path + ".node")
        want_type = node if node is not None else (rdef.node if rdef is not None else None)
        cap = body.get("capability") or (rdef.capability if rdef is not None else None)
        found = self.candidates.select(name, want_type, cap if isinstance(cap, str) else None, nfilter)
        if len(found) == 1:
            return found[0]
        raise self._no_single_target(name, rname, path, found, (want_type, cap, nfilter))

    def _no_single_target(self, name: str, rname: str, path: str, found: List[str],
                          wanted: Tuple[Any, Any, Any]) -> ToscaError:
        """The error of a requirement that selects no node template, or several."""
        want_type, cap, nfilter = wanted
        what = ", ".join(x for x in ("node type %s" % want_type if want_type else "",
                                     "capability %s" % cap if cap else "",
                                     "its node_filter" if nfilter is not None else "") if x)
        if not found:
            typed = self.candidates.select(name, want_type, cap if isinstance(cap, str) else None,
                                           None) if nfilter is not None else []
            return ToscaError("%s: requirement '%s': no node template matches %s%s"
                              % (name, rname, what or "it",
                                 " (the node_filter rejects %s)" % ", ".join(typed) if typed else ""),
                              file=self.file, path=path)
        return ToscaError("%s: requirement '%s': %d node templates match %s (%s); name one with "
                          "'node' or narrow the node_filter"
                          % (name, rname, len(found), what, ", ".join(found)),
                          file=self.file, path=path)

    def occurrences(self, name: str, ntype: NodeType, reqs: List[RequirementAssignment],
                    where: str) -> List[RequirementAssignment]:
        """Enforce the occurrences a requirement definition states (TOSCA 1.3 3.7.3); a definition
        that needs one assignment and has none is fulfilled by the only template that matches
        it, announced as a warning.  Returns those added assignments (docs/decisions.md)."""
        added: List[RequirementAssignment] = []
        for rname, rdef in ntype.requirements.items():
            if rdef.occurrences is None:
                continue
            occ = occurrences(rdef.occurrences)
            if occ is None:
                self.problems.append(ToscaError(
                    "%s: requirement '%s' of type %s: occurrences must be [min, max] with 0 <= min <= max "
                    "(max may be UNBOUNDED), got %r" % (name, rname, ntype.name, rdef.occurrences),
                    file=self.file, path=where))
                continue
            lo, hi = occ
            n = sum(1 for r in reqs if r.name == rname)
            shown = "[%d, %s]" % (lo, "UNBOUNDED" if hi is None else hi)
            if hi is not None and n > hi:
                self.problems.append(ToscaError(
                    "%s: requirement '%s' is assigned %d times; type %s allows at most %d (occurrences %s)"
                    % (name, rname, n, ntype.name, hi, shown), file=self.file, path=where))
            if n >= lo:
                continue
            found = self.candidates.select(name, rdef.node, rdef.capability, None)
            if n == 0 and lo == 1 and len(found) == 1 and rdef.relationship:
                added.append(RequirementAssignment(name=rname, node=found[0], relationship=rdef.relationship,
                                                   capability=rdef.capability))
                self.warnings.append("%s: %s: requirement '%s' of %s is not assigned; occurrences %s: fulfilled "
                                     "with %s, the only matching node template"
                                     % (self.file, where, rname, name, shown, found[0]))
                continue
            self.problems.append(ToscaError(
                "%s: requirement '%s' is assigned %d times; type %s needs at least %d (occurrences %s)%s"
                % (name, rname, n, ntype.name, lo, shown,
                   "; candidates: %s" % ", ".join(found) if found else "; no node template matches it"),
                file=self.file, path=where))
        return added

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
        node = self.target(name, ntype, rname, body, path)
        rtype, rtemplate, props, ifaces = self.relationship(name, ntype, rname, body.get("relationship"), path)
        if rtemplate is None:
            self.problems.extend(checks.check_relationship(
                "%s: requirement '%s': relationship" % (name, rname), props,
                self.registry.resolve_relationship_type(rtype), self.datatypes, self.file, path + ".relationship",
                self.warnings))
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
        rtype: Any
        if isinstance(rel, dict) and rel.get("type") is None:
            # TOSCA 1.3 3.8.2: the extended form may refine properties / interfaces of the
            # definition's relationship without repeating its type.
            rel = dict(rel, type=self.default_relationship(name, ntype, rname, path))
        if rel is None:
            rtype = self.default_relationship(name, ntype, rname, path)
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
            if isinstance(rtype, str) and not self.registry.has_relationship_type(rtype) \
                    and rtype in self.rel_templates:
                # {type: <relationship template>, properties: ...}: the template refined here.
                rtemplate = rtype
                body = self.rel_templates[rtype]
                rtype = body["type"]
                props = dict(_mapping(body.get("properties"), self.file, rpath, "properties"), **props)
                ifaces = dict(_mapping(body.get("interfaces"), self.file, rpath, "interfaces"), **ifaces)
        else:
            raise ToscaError("%s: requirement '%s': relationship must be a type name or {type: ...}"
                             % (name, rname), file=self.file, path=rpath)
        if not self.registry.has_relationship_type(rtype):
            raise ToscaError("%s: requirement '%s': unknown relationship type %r" % (name, rname, rtype),
                             file=self.file, path=rpath)
        return rtype, rtemplate, props, ifaces

    def default_relationship(self, name: str, ntype: NodeType, rname: str, path: str) -> str:
        """The relationship type of the requirement definition, for an assignment naming none."""
        rdef = ntype.requirements.get(rname)
        if rdef is None:
            raise ToscaError("%s: requirement '%s' names no relationship and type %s defines no "
                             "requirement '%s'" % (name, rname, ntype.name, rname), file=self.file, path=path)
        if rdef.relationship is None:
            # TOSCA leaves the relationship of such a requirement open; a requirement is at least a
            # dependency (the target first), the most general one (docs/decisions.md).
            return DEPENDS_ON
        return rdef.relationship


def _sources(libraries: Iterable[Dict[str, Any]], own: Dict[str, Any], doc: Document) -> List[Dict[str, Any]]:
    """The stacked type sources with every type name in full (names.py: contract 3 of issue 16)."""
    return canonical_sources([normative_types()] + list(libraries) + [own], scopes_of(doc))


def _registry(sources: List[Dict[str, Any]]) -> TypeRegistry:
    return TypeRegistry(sources)


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
    sources = _sources(libraries, raw_types_of(doc), doc)
    topo = canonical_topology(topo, sources, scopes_of(doc).get(doc.file))
    registry = _registry(sources)
    resolve_defined(registry, doc)
    builder = _Builder(doc, registry, topo)
    templates = builder.templates()
    raise_problems(builder.problems)

    node_types: Dict[str, NodeType] = {}
    for t in templates.values():
        for anc in registry.resolve_node_type(t.type).ancestors:
            node_types.setdefault(anc, registry.resolve_node_type(anc))
    rel_types: Dict[str, RelationshipType] = {}
    for t in templates.values():
        for r in t.requirements:
            for anc in registry.resolve_relationship_type(r.relationship).ancestors:
                rel_types.setdefault(anc, registry.resolve_relationship_type(anc))
    for body in builder.rel_templates.values():      # their defaults are values (get_attribute by name)
        if isinstance(body, dict) and registry.has_relationship_type(body.get("type")):
            for anc in registry.resolve_relationship_type(body["type"]).ancestors:
                rel_types.setdefault(anc, registry.resolve_relationship_type(anc))
    desc = doc.description if doc.description is not None else topo.get("description")
    warnings: List[str] = []
    sections = stored_sections(topo, templates, doc.file, warnings)
    workflows = _mapping(topo.get("workflows"), doc.file, "topology_template.workflows", "workflows")
    model = Model(templates=templates, node_types=node_types, relationship_types=rel_types,
                  inputs=_mapping(topo.get("inputs"), doc.file, "topology_template.inputs", "inputs"),
                  outputs=_mapping(topo.get("outputs"), doc.file, "topology_template.outputs", "outputs"),
                  file=doc.file, description=desc if isinstance(desc, str) else None,
                  metadata=dict(doc.metadata or {}), warnings=warnings, sections=sections,
                  workflows=workflows, capability_types=_capability_types(registry, node_types),
                  relationship_templates=dict(builder.rel_templates), source_files=list(doc.files))
    _announce(model, builder.warnings)
    # Not part of to_json: what instantiation needs to check inputs (catalog stores it in meta).
    model.input_data_types = checks.input_data_types(model.inputs, builder.datatypes)  # type: ignore[attr-defined]
    return model


def _announce(model: Model, warnings: List[str]) -> None:
    """Upload warnings (contract: ``model.warnings``, a list of one-line texts)."""
    if warnings:
        model.warnings = list(getattr(model, "warnings", None) or []) + warnings


def _capability_types(registry: TypeRegistry, node_types: Dict[str, NodeType]) -> Dict[str, Any]:
    """The raw capability types (with their ancestors) that ``node_types`` declare capabilities of."""
    out: Dict[str, Any] = {}
    for ntype in node_types.values():
        for cdef in (ntype.capabilities or {}).values():
            ctype = cdef if isinstance(cdef, str) else (cdef.get("type") if isinstance(cdef, dict) else None)
            while isinstance(ctype, str) and ctype not in out:
                raw = registry.raw("capability_types", ctype)
                if not isinstance(raw, dict):
                    break
                out[ctype] = raw
                ctype = raw.get("derived_from")
    return out


def load_library(path: str, libraries: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """The raw types of a type library file (what ``wfctl library FILE`` stores), after checking
    that each of its types resolves over the normative library and the earlier ``libraries``."""
    doc = load_document(path)
    raw = raw_types_of(doc)
    if not any(raw[s] for s in TYPE_SECTIONS):
        raise ToscaError("a library must define at least one type (node_types, relationship_types, ...)",
                         file=doc.file)
    sources = _sources(libraries, raw, doc)
    registry = _registry(sources)
    resolve_defined(registry, doc)
    return sources[-1]
