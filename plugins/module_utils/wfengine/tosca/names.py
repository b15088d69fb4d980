# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every way a TOSCA file may name a type, rewritten to the one full name the engine keys on.

TOSCA 1.3 (3.1, and the "Shorthand Name" / "Type Qualified Name" of each type in section 5) lets a
file write ``Compute``, ``tosca:Compute`` or ``tosca.nodes.Compute``; TOSCA 1.0 named some types
differently (``tosca.nodes.BlockStorage``); an import with ``namespace_prefix: p`` makes its types
referable as ``p:Name`` (3.6.8).  Rules, instance expansion and ``is_a`` checks compare
names as strings, so the raw types and the topology are rewritten once, before anything is
resolved, and nothing downstream ever sees an alias.

A name is looked up per section (``Root`` is ``tosca.nodes.Root`` in a template's ``type`` and
``tosca.relationships.Root`` in a relationship) and per file, in this order:

1. ``tosca:X``: the normative type whose full name, section-less name or shorthand is ``X``;
   ``p:X``: type ``X`` of the import declared with ``namespace_prefix: p`` in this file;
2. a user type of exactly that name defined in this file or one it imports (directly or not),
   or in an uploaded library: a user type named like a normative shorthand wins where it is seen;
3. a normative full name, then a TOSCA 1.0 name, then a normative shorthand or section-less name;
4. a user type of that name defined anywhere else in the document; otherwise the name unchanged
   (and whoever needs the type reports it unknown).

A type with no ``derived_from`` derives from the root of its kind (``tosca.nodes.Root``, ...), the
roots themselves excepted: a node type written without it would otherwise have no workflow.

``name_lookup.py`` resolves one name (the tables and the order above); this file rewrites the
raw types and the topology with it.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, List, Optional, Set

from .loader import TYPE_SECTIONS
from .name_lookup import (LEGACY, PREFIX, ROOTS, SHORTHANDS, TOSCA_NS, Names, Scope, Sections,
                          aliases_of, empty_sections)

__all__ = ["LEGACY", "PREFIX", "ROOTS", "SHORTHANDS", "TOSCA_NS", "Names", "Scope", "Sections",
           "aliases_of", "canonical_sources", "canonical_topology", "scopes_of"]


# ------------------------------------------------------------------ rewriting raw definitions
class _Rewriter:
    """Rewrites every place of a raw definition where TOSCA 1.3 puts a type name."""

    def __init__(self, names: Names, scope: Scope):
        self.n = names
        self.scope = scope

    def c(self, section: str, name: Any) -> Any:
        return self.n.canonical(section, name, self.scope)

    def first(self, sections: Iterable[str], name: Any) -> Any:
        """A name that may be of several kinds (valid_target_types: capability or node types)."""
        for s in sections:
            if self.n.is_type(s, name, self.scope):
                return self.c(s, name)
        return name

    def names_list(self, sections: Iterable[str], value: Any) -> Any:
        if isinstance(value, list):
            return [self.first(sections, v) for v in value]
        return value

    def schema(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.c("data_types", value)
        if isinstance(value, dict):
            return self.prop_def(value)
        return value

    def prop_def(self, d: Any) -> Any:
        """A property / attribute / input / parameter definition (or a schema definition)."""
        if not isinstance(d, dict):
            return d
        d = dict(d)
        if isinstance(d.get("type"), str):
            d["type"] = self.c("data_types", d["type"])
        for k in ("entry_schema", "key_schema"):
            if k in d:
                d[k] = self.schema(d[k])
        return d

    def prop_defs(self, defs: Any) -> Any:
        if not isinstance(defs, dict):
            return defs
        return {k: self.prop_def(v) if isinstance(v, dict) and "type" in v else v for k, v in defs.items()}

    def operation(self, op: Any) -> Any:
        if isinstance(op, dict) and isinstance(op.get("inputs"), dict):
            op = dict(op, inputs=self.prop_defs(op["inputs"]))
        return op

    def interface(self, body: Any) -> Any:
        """An interface definition or assignment (TOSCA 1.3 ``operations`` or 1.0-1.2 inline)."""
        if not isinstance(body, dict):
            return body
        out = {}
        for k, v in body.items():
            if k in ("type", "derived_from"):
                out[k] = self.c("interface_types", v)
            elif k == "inputs":
                out[k] = self.prop_defs(v)
            elif k in ("operations", "notifications") and isinstance(v, dict):
                out[k] = {o: self.operation(ov) for o, ov in v.items()}
            elif k in ("description", "metadata", "version"):
                out[k] = v
            else:
                out[k] = self.operation(v)
        return out

    def interfaces(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: self.interface(v) for k, v in value.items()}

    def artifacts(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: dict(v, type=self.c("artifact_types", v["type"])) if isinstance(v, dict) and "type" in v else v
                for k, v in value.items()}

    def capability_defs(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for k, v in value.items():
            if isinstance(v, str):
                out[k] = self.c("capability_types", v)
            elif isinstance(v, dict):
                v = dict(v)
                if "type" in v:
                    v["type"] = self.c("capability_types", v["type"])
                if "valid_source_types" in v:
                    v["valid_source_types"] = self.names_list(["node_types"], v["valid_source_types"])
                for p in ("properties", "attributes"):
                    if p in v:
                        v[p] = self.prop_defs(v[p])
                out[k] = v
            else:
                out[k] = v
        return out

    def requirement_def(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.c("capability_types", v)
        if not isinstance(v, dict):
            return v
        v = dict(v)
        if "capability" in v:
            v["capability"] = self.c("capability_types", v["capability"])
        if "node" in v:
            v["node"] = self.c("node_types", v["node"])
        rel = v.get("relationship")
        if isinstance(rel, str):
            v["relationship"] = self.c("relationship_types", rel)
        elif isinstance(rel, dict):
            v["relationship"] = self.relationship(rel)
        return v

    def relationship(self, rel: Dict[str, Any]) -> Dict[str, Any]:
        """A requirement's ``relationship`` written as a map (type and interfaces), copied: the
        same in a requirement definition and in a template's requirement assignment."""
        rel = dict(rel)
        if "type" in rel:
            rel["type"] = self.c("relationship_types", rel["type"])
        if "interfaces" in rel:
            rel["interfaces"] = self.interfaces(rel["interfaces"])
        return rel

    def requirement_defs(self, value: Any) -> Any:
        if isinstance(value, list):
            return [{k: self.requirement_def(v) for k, v in item.items()} if isinstance(item, dict) else item
                    for item in value]
        if isinstance(value, dict):
            return {k: self.requirement_def(v) for k, v in value.items()}
        return value

    # The parts of a type definition that hold type names, and the method rewriting each.
    _DEF_PARTS = (("properties", "prop_defs"), ("attributes", "prop_defs"),
                  ("entry_schema", "schema"), ("key_schema", "schema"),
                  ("interfaces", "interfaces"), ("artifacts", "artifacts"),
                  ("capabilities", "capability_defs"), ("requirements", "requirement_defs"))
    # Lists of type names: (key, sections a name may be of, the only section having it or None).
    _NAME_LISTS = (("valid_target_types", ("capability_types", "node_types"), None),
                   ("valid_source_types", ("node_types",), None),
                   ("members", ("node_types", "group_types"), "group_types"),
                   ("targets", ("node_types", "group_types"), "policy_types"))

    def type_def(self, section: str, name: str, body: Dict[str, Any]) -> Dict[str, Any]:
        body = dict(body)
        if "derived_from" in body and body["derived_from"] is not None:
            body["derived_from"] = self.c(section, body["derived_from"])
        elif name != ROOTS[section] and \
                ROOTS[section] in self.n.normative[section] | self.n.user[section]:
            body["derived_from"] = ROOTS[section]
        for key, method in self._DEF_PARTS:
            if key in body:
                body[key] = getattr(self, method)(body[key])
        if section == "interface_types":
            body = dict(self.interface({k: v for k, v in body.items() if k != "derived_from"}),
                        **({"derived_from": body["derived_from"]} if "derived_from" in body else {}))
        for key, sections, only in self._NAME_LISTS:
            if key in body and (only is None or section == only):
                body[key] = self.names_list(sections, body[key])
        return body


def _functions(rw: "_Rewriter", value: Any) -> Any:
    """``{get_nodes_of_type: Compute}`` anywhere in a value: its argument is a node type name."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("get_nodes_of_type"), str):
            return {"get_nodes_of_type": rw.c("node_types", value["get_nodes_of_type"])}
        return {k: _functions(rw, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_functions(rw, v) for v in value]
    return value


def _node_filter(rw: "_Rewriter", nf: Any, cap_names: Set[str]) -> Any:
    """A node_filter's ``capabilities`` entries are keyed by a capability name or type (node filter definition):
    a key no node type uses as a capability name is a type name."""
    if not isinstance(nf, dict) or not isinstance(nf.get("capabilities"), list):
        return nf
    caps = []
    for entry in nf["capabilities"]:
        if isinstance(entry, dict) and len(entry) == 1:
            k, v = next(iter(entry.items()))
            if isinstance(k, str) and (":" in k or k not in cap_names):
                k = rw.c("capability_types", k)
            entry = {k: v}
        caps.append(entry)
    return dict(nf, capabilities=caps)


def _capability_names(sources: List[Dict[str, Any]]) -> Set[str]:
    out: Set[str] = set()
    for src in sources:
        for body in (src.get("node_types") or {}).values():
            if isinstance(body, dict) and isinstance(body.get("capabilities"), dict):
                out.update(body["capabilities"])
    return out


def canonical_sources(sources: List[Dict[str, Any]], scopes: Optional[Dict[str, Scope]] = None,
                      own: Optional[int] = None) -> List[Dict[str, Any]]:
    """``sources`` (raw types, each annotated with ``_file``; normative first) with every type name
    written out in full.  ``scopes`` gives, per file of the document (source ``own``, default the
    last), the user types it sees and its import prefixes; a library sees its own types and those
    of the libraries before it."""
    names = Names(sources)
    cap_names = _capability_names(sources)
    own = len(sources) - 1 if own is None else own
    out: List[Dict[str, Any]] = []
    earlier: Sections = empty_sections()
    for i, src in enumerate(sources):
        mine: Sections = {s: set(earlier[s]) | set(src.get(s) or {}) for s in TYPE_SECTIONS}
        lib_scope = Scope(mine if i > 0 else empty_sections())
        new: Dict[str, Any] = {}
        for section in TYPE_SECTIONS:
            defs = src.get(section)
            if not isinstance(defs, dict):
                if defs is not None:
                    new[section] = defs
                continue
            new[section] = {}
            for name, body in defs.items():
                if not isinstance(body, dict):
                    new[section][name] = body
                    continue
                scope = lib_scope
                if i == own and scopes is not None and body.get("_file") in scopes:
                    scope = scopes[body["_file"]]
                    for s in TYPE_SECTIONS:       # libraries are visible from every file
                        scope.visible[s] |= earlier[s]
                rw = _Rewriter(names, scope)
                new[section][name] = _functions(rw, rw.type_def(section, name, body))
                if section == "node_types":
                    _requirement_def_filters(rw, new[section][name], cap_names)
        if i > 0:
            for s in TYPE_SECTIONS:
                earlier[s] |= set(src.get(s) or {})
        out.append(new)
    return out


def canonical_topology(topo: Dict[str, Any], sources: List[Dict[str, Any]],
                       scope: Optional[Scope] = None) -> Dict[str, Any]:
    """A topology_template with its type names written out in full (``sources`` as given to
    ``canonical_sources``, the document's own last; ``scope`` the root file's).

    A requirement assignment's ``capability`` may name a capability of the target rather than a
    type (3.8.2): it is rewritten only when no node type defines a capability of that name.  A
    relationship given as a string may name a relationship template: such names are kept."""
    names = Names(sources)
    scope = scope or Scope()
    for s in TYPE_SECTIONS:
        for src in sources[1:-1]:             # libraries are visible from every file
            scope.visible[s] |= set(src.get(s) or {})
    rw = _Rewriter(names, scope)
    cap_names = _capability_names(sources)
    topo = _functions(rw, copy.deepcopy(topo))
    rel_templates = topo.get("relationship_templates")
    rel_names = set(rel_templates) if isinstance(rel_templates, dict) else set()
    for k in ("inputs", "outputs"):
        if isinstance(topo.get(k), dict):
            topo[k] = rw.prop_defs(topo[k])
    templates = topo.get("node_templates")
    if isinstance(templates, dict):
        for t in templates.values():
            if isinstance(t, dict):
                _node_template(rw, t, cap_names, rel_names, set(templates))
    if isinstance(rel_templates, dict):
        for body in rel_templates.values():
            if isinstance(body, dict):
                _relationship_template(rw, body)
    _groups_policies(rw, topo)
    return topo


def _groups_policies(rw: _Rewriter, topo: Dict[str, Any]) -> None:
    """The types of groups, policies and substitution mappings (in place)."""
    for key, section in (("groups", "group_types"), ("policies", "policy_types")):
        for body in _entries(topo.get(key)):
            if isinstance(body, dict) and "type" in body:
                body["type"] = rw.c(section, body["type"])
    subst = topo.get("substitution_mappings")
    if isinstance(subst, dict) and "node_type" in subst:
        subst["node_type"] = rw.c("node_types", subst["node_type"])


def _node_template(rw: _Rewriter, t: Dict[str, Any], cap_names: Set[str], rel_names: Set[str],
                   tpl_names: Set[str]) -> None:
    """The type names of one node template (in place)."""
    if "type" in t:
        t["type"] = rw.c("node_types", t["type"])
    if "node_filter" in t:
        t["node_filter"] = _node_filter(rw, t["node_filter"], cap_names)
    if "interfaces" in t:
        t["interfaces"] = rw.interfaces(t["interfaces"])
    if "artifacts" in t:
        t["artifacts"] = rw.artifacts(t["artifacts"])
    reqs = t.get("requirements")
    if isinstance(reqs, list):
        for item in reqs:
            if not isinstance(item, dict):
                continue
            for rname, body in item.items():
                if isinstance(body, dict):
                    item[rname] = _requirement_assignment(rw, body, cap_names, rel_names,
                                                          tpl_names)


def _relationship_template(rw: _Rewriter, body: Dict[str, Any]) -> None:
    """The type names of one relationship template (in place)."""
    if "type" in body:
        body["type"] = rw.c("relationship_types", body["type"])
    if "interfaces" in body:
        body["interfaces"] = rw.interfaces(body["interfaces"])


def _entries(entries: Any) -> List[Any]:
    """The bodies of a ``groups`` / ``policies`` section: a map, or a list of single-key maps."""
    if isinstance(entries, dict):
        return list(entries.values())
    if isinstance(entries, list):
        return [v for e in entries if isinstance(e, dict) for v in e.values()]
    return []


def _requirement_assignment(rw: _Rewriter, body: Dict[str, Any], cap_names: Set[str],
                            rel_names: Set[str], tpl_names: Set[str]) -> Dict[str, Any]:
    body = dict(body)
    if "node_filter" in body:
        body["node_filter"] = _node_filter(rw, body["node_filter"], cap_names)
    node = body.get("node")
    if isinstance(node, str) and node not in tpl_names:     # 3.8.2: a node *type* to select by
        body["node"] = rw.c("node_types", node)
    cap = body.get("capability")
    if isinstance(cap, str) and (":" in cap or cap not in cap_names):
        body["capability"] = rw.c("capability_types", cap)
    rel = body.get("relationship")
    if isinstance(rel, str) and rel not in rel_names:
        body["relationship"] = rw.c("relationship_types", rel)
    elif isinstance(rel, dict):
        body["relationship"] = rw.relationship(rel)
    return body


def scopes_of(document: Any) -> Dict[str, Scope]:
    """{file: Scope} of a loaded document: the user types each file sees (its own and those of
    the files it imports, transitively; mutual imports see each other) and its import prefixes."""
    defined: Dict[str, Sections] = {}
    for section, files in document.type_files.items():
        for name, file in files.items():
            defined.setdefault(file, empty_sections())[section].add(name)
    imports: Dict[str, List[str]] = getattr(document, "imports", {}) or {}

    def closure(file: str) -> Sections:
        out = empty_sections()
        seen = set()
        todo = [file]
        while todo:
            f = todo.pop()
            if f in seen:
                continue
            seen.add(f)
            for s, names in defined.get(f, {}).items():
                out[s] |= names
            todo.extend(imports.get(f, []))
        return out

    scopes: Dict[str, Scope] = {}
    for file in document.files:
        prefixes = {p: closure(target) for p, target in (getattr(document, "prefixes", {}) or {}).get(file, {}).items()}
        scopes[file] = Scope(closure(file), prefixes)
    return scopes


def _requirement_def_filters(rw: _Rewriter, body: Dict[str, Any], cap_names: Set[str]) -> None:
    """The node_filter of a node type's requirement definitions (in place)."""
    reqs = body.get("requirements")
    items = reqs if isinstance(reqs, list) else [reqs] if isinstance(reqs, dict) else []
    for item in items:
        if not isinstance(item, dict):
            continue
        for k, v in item.items():
            if isinstance(v, dict) and "node_filter" in v:
                item[k] = dict(v, node_filter=_node_filter(rw, v["node_filter"], cap_names))
