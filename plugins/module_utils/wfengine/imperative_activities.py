# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The activities of an imperative workflow's step (TOSCA 1.3 §7.3: ``set_state``, ``delegate``,
``call_operation``) checked against the model and turned into the items of one template's
program (``imperative_compile.py`` orders the steps around them).

Why a file of its own: what one activity means (which operations a template or a requirement
declares, how an operation is spelled, where it runs) is a job apart from how steps are linked
into a workflow; both report errors the same way (``WorkflowError``).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set

from .errors import ToscaError
from .operations import CANONICAL, OPERATION_HOSTS, split_operation
from .programs import is_marker

STANDARD_OPS = ("create", "configure", "start", "stop", "delete")
CONFIGURE_OPS = ("pre_configure_source", "pre_configure_target", "post_configure_source",
                 "post_configure_target", "add_target", "add_source", "target_changed",
                 "remove_target", "remove_source")
# Configure operations of the TARGET end (TOSCA 1.3 §5.8.4): traced on that side.
_TARGET_SIDE = ("pre_configure_target", "post_configure_target", "add_source", "remove_source")
# Step and workflow names: no spaces, and none of the characters markers use.
NAME_RE = re.compile(r"^[^@!/\s]+$")
_NOT_OPERATIONS = ("type", "description", "inputs", "operations", "notifications", "derived_from",
                   "metadata", "version")


class WorkflowError:
    """Builds the ToscaError of one workflow, pointing at a path inside it."""

    def __init__(self, file: str, wf: str):
        self.file, self.wf = file, wf

    def __call__(self, msg: str, path: str = "") -> ToscaError:
        return ToscaError("workflow %s: %s" % (self.wf, msg), file=self.file,
                          path="topology_template.workflows.%s%s" % (self.wf, path))


def _interface_ops(interfaces: Dict[str, Any]) -> Dict[str, Set[str]]:
    """Operations declared per interface short name (``Standard`` lists its normative ones)."""
    out: Dict[str, Set[str]] = {}
    for iname, body in (interfaces or {}).items():
        short = iname.rsplit(".", 1)[-1]
        ops = out.setdefault(short, set())
        typ = str(body.get("type", "")) if isinstance(body, dict) else ""
        if short == "Standard" or typ.endswith(".Standard"):
            ops.update(STANDARD_OPS)
        if short == "Configure" or typ.endswith(".Configure"):
            ops.update(CONFIGURE_OPS)
        if isinstance(body, dict):
            ops.update(k for k in body if k not in _NOT_OPERATIONS)
            if isinstance(body.get("operations"), dict):
                ops.update(body["operations"])
    return out


def _operation_name(raw: str) -> str:
    """The name a call_operation runs under: ``Standard.create`` becomes the full name the
    declarative workflows use, so traces and the no-caller check see one spelling."""
    iface, op = split_operation(raw)
    if iface in CANONICAL:
        return "%s.%s" % (CANONICAL[iface], op)
    return raw


def check_host(sname: str, sbody: Dict[str, Any], kinds: List[str], err: WorkflowError,
               path: str) -> None:
    """A step's operation_host (§7.3): where its call_operation activities run, overriding the
    implementation's.  On a delegate step only ORCHESTRATOR makes sense (the engine runs the
    delegated sequence, whose operations run where their implementations say)."""
    host = sbody.get("operation_host")
    if host is None:
        return
    allowed = (OPERATION_HOSTS if sbody.get("target_relationship")
               else ("SELF", "HOST", "ORCHESTRATOR"))
    if host not in allowed:
        raise err("step %s: operation_host must be one of %s" % (sname, ", ".join(allowed)),
                  path + ".operation_host")
    if "delegate" in kinds and host != "ORCHESTRATOR":
        raise err("step %s: operation_host %s cannot apply to a delegate activity "
                  "(only ORCHESTRATOR)" % (sname, host), path + ".operation_host")


class Activities:
    """Turns the activities of a step into items of a template's program, checking them against
    the model (its templates, node types and relationship types)."""

    def __init__(self, model: Any):
        self.model = model

    def items(self, sname: str, tname: str, rel: Optional[str], a: Dict[str, Any],
              err: WorkflowError, path: str) -> List[Dict[str, Any]]:
        """The items of activity ``a`` of step ``sname`` on template ``tname`` (``rel``: the
        step's target_relationship)."""
        (kind, value), = a.items()
        if kind == "set_state":
            if not isinstance(value, str) or not value or is_marker(value):
                raise err("step %s: set_state needs a state name" % sname, path)
            return [{"op": "state", "name": value}]
        if kind == "delegate":
            return self._delegate(sname, tname, rel, value, err, path)
        return self._call_operation(sname, tname, rel, value, err, path)

    def _delegate(self, sname: str, tname: str, rel: Optional[str], value: Any,
                  err: WorkflowError, path: str) -> List[Dict[str, Any]]:
        tpl = self.model.templates[tname]
        ntype = self.model.node_types[tpl.type]
        if isinstance(value, dict):
            if set(value) - {"workflow", "inputs"} or value.get("inputs"):
                raise err("step %s: delegate takes a workflow name (inputs are not supported)"
                          % sname, path)
            value = value.get("workflow")
        acts = ntype.workflows.get(value) if isinstance(value, str) else None
        if acts is None:
            raise err("step %s: delegate %s: type %s of %s defines no such declarative workflow "
                      "(it has: %s)" % (sname, value, tpl.type, tname,
                                        ", ".join(sorted(ntype.workflows)) or "none"), path)
        if rel is not None:
            raise err("step %s: delegate applies to a node, not to target_relationship %s"
                      % (sname, rel), path)
        return [{"op": "state" if x.kind == "set_state" else "call", "name": x.name} for x in acts]

    def _declared(self, tname: str, rel: Optional[str]) -> Dict[str, Set[str]]:
        """Operations per interface that the template (``rel`` None) or its requirement declares."""
        tpl = self.model.templates[tname]
        if rel is None:
            ntype = self.model.node_types[tpl.type]
            return _interface_ops(dict(ntype.interfaces, **(tpl.interfaces or {})))
        declared: Dict[str, Set[str]] = {}
        for r in tpl.requirements:
            if r.name == rel:
                rtype = self.model.relationship_types[r.relationship]
                for k, v in _interface_ops(dict(rtype.interfaces, **(r.interfaces or {}))).items():
                    declared.setdefault(k, set()).update(v)
        return declared

    def _call_operation(self, sname: str, tname: str, rel: Optional[str], value: Any,
                        err: WorkflowError, path: str) -> List[Dict[str, Any]]:
        if isinstance(value, dict):
            if set(value) - {"operation", "inputs"} or value.get("inputs"):
                raise err("step %s: call_operation takes an operation name (inputs are not "
                          "supported)" % sname, path)
            value = value.get("operation")
        if not isinstance(value, str) or "." not in value:
            raise err("step %s: call_operation needs <interface>.<operation>, got %r"
                      % (sname, value), path)
        iface, op = split_operation(value)
        declared = self._declared(tname, rel)
        if op not in declared.get(iface, ()):
            raise err("step %s: %s declares no operation %s (interfaces: %s)"
                      % (sname, tname if rel is None else "%s's requirement %s" % (tname, rel),
                         value, ", ".join(sorted(declared)) or "none"), path)
        name = _operation_name(value)
        if rel is None:
            return [{"op": "call", "name": name}]
        return [{"op": "rcall", "name": name, "requirement": rel,
                 "side": "target" if op in _TARGET_SIDE else "source"}]


def target_templates(model: Any, groups: Dict[str, Any], target: Any) -> Optional[List[str]]:
    """The templates a step or a precondition targets: a node template, or every member of a
    group; None when ``target`` names neither."""
    if target in model.templates:
        return [target]
    if target in groups:
        return list(groups[target].get("members") or [])
    return None
