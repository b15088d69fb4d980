# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sections of a topology the engine keeps but does not act on: groups, policies,
substitution_mappings and the topology's metadata.

Real templates carry them (scaling policies, placement groups, substitution of an abstract node);
dropping them silently would let a user believe a policy is enforced.  They are checked lightly
(TOSCA 1.3 §3.6.11 groups, §3.6.12 policies, §2.10/§3.8 substitution_mappings), stored with the model
version, shown by ``wfctl status`` and announced at upload, one warning line per item.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Set, Tuple

from ..errors import ToscaError

_GROUP_KEYS = {"type", "description", "metadata", "properties", "attributes", "members", "interfaces"}
_POLICY_KEYS = {"type", "description", "metadata", "properties", "targets", "triggers"}
_SUBST_KEYS = {"node_type", "substitution_filter", "properties", "attributes", "capabilities",
               "requirements", "interfaces"}


def _names(value: Any, file: str, path: str, what: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToscaError("%s must be a list of names" % what, file=file, path=path)
    return list(value)


def _body(body: Any, keys: Set[str], file: str, path: str, what: str) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise ToscaError("%s must be a mapping" % what, file=file, path=path)
    unknown = set(body) - keys
    if unknown:
        raise ToscaError("%s: unknown keys %s" % (what, ", ".join(sorted(unknown))), file=file, path=path)
    if not isinstance(body.get("type"), str) and "node_type" not in keys:
        raise ToscaError("%s needs a type" % what, file=file, path=path + ".type")
    return body


def _groups(raw: Any, templates: Dict[str, Any], file: str) -> Dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ToscaError("groups must map group names to definitions", file=file, path="topology_template.groups")
    out = {}
    for name, body in raw.items():
        path = "topology_template.groups.%s" % name
        body = _body(body, _GROUP_KEYS, file, path, "group %s" % name)
        for m in _names(body.get("members"), file, path + ".members", "members of group %s" % name):
            if m not in templates:
                raise ToscaError("group %s: member %s is not a node template" % (name, m), file=file,
                                 path=path + ".members")
        out[name] = body
    return out


def _policies(raw: Any, templates: Dict[str, Any], groups: Dict[str, Any], file: str) -> List[Dict[str, Any]]:
    """Policies as a list of ``{name: definition}`` (§3.9.3.2); a plain mapping is read the same."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        items: List[Tuple[str, Any]] = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(p, dict) and len(p) == 1 for p in raw):
        items = [next(iter(p.items())) for p in raw]
    else:
        raise ToscaError("policies must be a list of single-entry mappings (name: definition)", file=file,
                         path="topology_template.policies")
    out = []
    for i, (name, body) in enumerate(items):
        path = "topology_template.policies[%d].%s" % (i, name)
        body = _body(body, _POLICY_KEYS, file, path, "policy %s" % name)
        for t in _names(body.get("targets"), file, path + ".targets", "targets of policy %s" % name):
            if t not in templates and t not in groups:
                raise ToscaError("policy %s: target %s is neither a node template nor a group" % (name, t),
                                 file=file, path=path + ".targets")
        out.append({name: body})
    return out


def _mapped(value: Any, templates: Dict[str, Any], file: str, path: str) -> None:
    """A capability/requirement mapping: ``[template, name]`` (or a mapping with ``mapping``)."""
    if isinstance(value, dict):
        value = value.get("mapping")
    if not (isinstance(value, list) and 1 <= len(value) <= 2 and all(isinstance(v, str) for v in value)):
        raise ToscaError("must be [node_template, name]", file=file, path=path)
    if value[0] not in templates:
        raise ToscaError("%s is not a node template" % value[0], file=file, path=path)


def _substitution(raw: Any, templates: Dict[str, Any], file: str) -> Dict[str, Any]:
    if raw is None:
        return {}
    path = "topology_template.substitution_mappings"
    if not isinstance(raw, dict):
        raise ToscaError("substitution_mappings must be a mapping", file=file, path=path)
    unknown = set(raw) - _SUBST_KEYS
    if unknown:
        raise ToscaError("substitution_mappings: unknown keys %s" % ", ".join(sorted(unknown)), file=file, path=path)
    if not isinstance(raw.get("node_type"), str):
        raise ToscaError("substitution_mappings needs a node_type", file=file, path=path + ".node_type")
    for section in ("capabilities", "requirements"):
        items = raw.get(section) or {}
        if not isinstance(items, dict):
            raise ToscaError("%s must be a mapping" % section, file=file, path="%s.%s" % (path, section))
        for name, value in items.items():
            _mapped(value, templates, file, "%s.%s.%s" % (path, section, name))
    return raw


def stored_sections(topo: Dict[str, Any], templates: Dict[str, Any], file: str,
                    warnings: List[str]) -> Dict[str, Any]:
    """The checked, JSON-ready sections the engine stores without running them; appends one
    upload warning per group, policy and substitution mapping to ``warnings``."""
    groups = _groups(topo.get("groups"), templates, file)
    policies = _policies(topo.get("policies"), templates, groups, file)
    subst = _substitution(topo.get("substitution_mappings"), templates, file)
    meta = topo.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ToscaError("metadata must be a mapping", file=file, path="topology_template.metadata")
    shown = os.path.basename(file)
    for i, item in enumerate(policies):
        (name, body), = item.items()
        warnings.append("%s: topology_template.policies[%d].%s: policy %s is stored, not enforced"
                        % (shown, i, name, body["type"]))
    for name, body in groups.items():
        warnings.append("%s: topology_template.groups.%s: group %s is stored, not acted on"
                        % (shown, name, body["type"]))
    if subst:
        warnings.append("%s: topology_template.substitution_mappings: substitution as %s is stored, not used "
                        "(this topology is not offered as a substitute)" % (shown, subst["node_type"]))
    out: Dict[str, Any] = {}
    if groups:
        out["groups"] = groups
    if policies:
        out["policies"] = policies
    if subst:
        out["substitution_mappings"] = subst
    if meta:
        out["metadata"] = meta
    return out
