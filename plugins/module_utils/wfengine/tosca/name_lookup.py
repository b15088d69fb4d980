# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one type name written in a TOSCA file means: the full name it stands for.

The tables of the spec (section prefixes, roots, shorthands, TOSCA 1.0 names) and ``Names``,
which applies the lookup order that ``names.py`` documents to one name seen from one file
(``Scope``).  ``names.py`` walks documents and rewrites every name with it; kept apart so the
rules of a single name can be read (and tested) without the rewriting of whole documents.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

from .loader import TYPE_SECTIONS

PREFIX = {
    "node_types": "tosca.nodes.",
    "relationship_types": "tosca.relationships.",
    "capability_types": "tosca.capabilities.",
    "interface_types": "tosca.interfaces.",
    "data_types": "tosca.datatypes.",
    "artifact_types": "tosca.artifacts.",
    "group_types": "tosca.groups.",
    "policy_types": "tosca.policies.",
}
ROOTS = {section: prefix + "Root" for section, prefix in PREFIX.items()}
TOSCA_NS = "tosca"

# Shorthand names of section 5 (and 8, networking) that are not the full name minus its prefix.
SHORTHANDS = {
    "node_types": {
        "AbstractCompute": "tosca.nodes.Abstract.Compute",
        "AbstractStorage": "tosca.nodes.Abstract.Storage",
        "ObjectStorage": "tosca.nodes.Storage.ObjectStorage",
        "BlockStorage": "tosca.nodes.Storage.BlockStorage",
        "Network": "tosca.nodes.network.Network",
        "Port": "tosca.nodes.network.Port",
    },
    "relationship_types": {
        "LinksTo": "tosca.relationships.network.LinksTo",
        "BindsTo": "tosca.relationships.network.BindsTo",
    },
    "capability_types": {
        "Linkable": "tosca.capabilities.network.Linkable",
        "Bindable": "tosca.capabilities.network.Bindable",
    },
    "interface_types": {
        "Standard": "tosca.interfaces.node.lifecycle.Standard",
        "Configure": "tosca.interfaces.relationship.Configure",
    },
    "data_types": {
        "NetworkInfo": "tosca.datatypes.network.NetworkInfo",
        "PortInfo": "tosca.datatypes.network.PortInfo",
        "PortDef": "tosca.datatypes.network.PortDef",
        "PortSpec": "tosca.datatypes.network.PortSpec",
    },
    "artifact_types": {
        "Bash": "tosca.artifacts.Implementation.Bash",
        "Python": "tosca.artifacts.Implementation.Python",
        "Deployment.VM": "tosca.artifacts.Deployment.Image.VM",
        "Template": "tosca.artifacts.template",
    },
}

# Full names of TOSCA 1.0-1.2 that later versions renamed.
LEGACY = {
    "node_types": {
        "tosca.nodes.BlockStorage": "tosca.nodes.Storage.BlockStorage",
        "tosca.nodes.ObjectStorage": "tosca.nodes.Storage.ObjectStorage",
    },
    "interface_types": {
        "tosca.interfaces.relationships.Configure": "tosca.interfaces.relationship.Configure",
    },
}

Sections = Dict[str, Set[str]]


def empty_sections() -> Sections:
    return {s: set() for s in TYPE_SECTIONS}


def aliases_of(normative: Dict[str, Any]) -> Dict[str, Dict[str, str]]:
    """{section: {alias: full name}} of the normative library: the section-less form of every
    name (``Storage.BlockStorage``, ``network.Port``) and the spec's own shorthands.  An alias that
    two types would share is dropped rather than guessed."""
    out: Dict[str, Dict[str, str]] = {}
    for section in TYPE_SECTIONS:
        names = set((normative.get(section) or {}))
        seen: Dict[str, Set[str]] = {}
        for full in names:
            if full.startswith(PREFIX[section]):
                seen.setdefault(full[len(PREFIX[section]):], set()).add(full)
        for alias, full in SHORTHANDS.get(section, {}).items():
            if full in names:
                seen.setdefault(alias, set()).add(full)
        out[section] = {a: next(iter(f)) for a, f in seen.items() if len(f) == 1}
    return out


class Scope:
    """What a name written in one file may mean: the user types it sees, its import prefixes."""

    def __init__(self, visible: Optional[Sections] = None,
                 prefixes: Optional[Dict[str, Sections]] = None):
        self.visible = visible or empty_sections()
        self.prefixes = prefixes or {}


class Names:
    """Canonical names of one document over stacked type sources (normative first)."""

    def __init__(self, sources: List[Dict[str, Any]]):
        self.normative: Sections = {s: set((sources[0].get(s) or {}) if sources else ())
                                    for s in TYPE_SECTIONS}
        self.aliases = aliases_of(sources[0] if sources else {})
        self.user: Sections = empty_sections()
        for src in sources[1:]:
            for s in TYPE_SECTIONS:
                self.user[s].update(src.get(s) or {})

    def canonical(self, section: str, name: Any, scope: Optional[Scope] = None) -> Any:
        """The full name ``name`` stands for in ``section``, seen from ``scope``."""
        if not isinstance(name, str) or section not in PREFIX:
            return name
        scope = scope or Scope()
        if ":" in name:
            ns, rest = name.split(":", 1)
            if ns == TOSCA_NS:
                if rest in self.normative[section]:
                    return rest
                return LEGACY.get(section, {}).get(rest) or self.aliases[section].get(rest, name)
            if ns in scope.prefixes:
                return rest if rest in scope.prefixes[ns].get(section, ()) else name
            return name
        if name in scope.visible.get(section, ()) or name in self.normative[section]:
            return name
        legacy = LEGACY.get(section, {}).get(name)
        if legacy and name not in self.user[section]:
            return legacy
        if name in self.aliases[section]:
            return self.aliases[section][name]
        return name

    def is_type(self, section: str, name: Any, scope: Optional[Scope] = None) -> bool:
        full = self.canonical(section, name, scope)
        return isinstance(full, str) and (full in self.normative[section]
                                          or full in self.user[section])
