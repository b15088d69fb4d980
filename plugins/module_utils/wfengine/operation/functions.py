# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TOSCA functions the engine knows: their names, how a value holding one is recognized, how a
value becomes text, and the ``FunctionContext`` through which a function reads what it needs.

Both sides use this catalogue: the upload checks (``tosca/function_checks.py``: every call's
arguments, with its file and path) and the evaluation when an operation runs
(``function_eval.py``, which says what each function does).  Adding a function: its name in
``FUNCTIONS`` here, a method of that name on ``function_eval._Eval``, its upload check.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ..errors import WfError

FUNCTIONS = ("get_input", "get_property", "get_attribute", "concat", "join", "token",
             "get_operation_output", "get_artifact", "get_nodes_of_type", "get_secret")
# Where an operation's outputs are kept among the attributes of the node that ran it:
# ``~outputs/<Interface>.<operation>`` (node operations) and
# ``~outputs/<relationship id>/<Interface>.<operation>`` (relationship operations).
OUTPUTS_PREFIX = "~outputs/"
LOCAL_FILE = "LOCAL_FILE"


def outputs_key(interface: str, operation: str, relationship: Optional[str] = None) -> str:
    """The attribute that keeps the outputs of one operation (interface by its short name, so
    ``Standard`` and ``tosca.interfaces.node.lifecycle.Standard`` are the same)."""
    short = interface.rsplit(".", 1)[-1]
    if relationship:
        return "%s%s/%s.%s" % (OUTPUTS_PREFIX, relationship, short, operation)
    return "%s%s.%s" % (OUTPUTS_PREFIX, short, operation)


class FunctionError(WfError):
    """A function cannot be evaluated: missing input, property or attribute, bad arguments."""


class FunctionContext:
    """What functions may read; the worker provides one per operation call.

    Subclass it (``ModelContext`` does, for the worker's data) or build one from dicts
    (``DictContext``, for tests and tools).  Every lookup returns None / {} when absent; errors
    are raised by ``evaluate``, which knows the function and path to name."""

    inputs: Dict[str, Any] = {}
    # get_secret: a ``secrets.SecretResolver`` where the operation runs (the executor sets it);
    # None elsewhere, where a secret evaluates to ``********`` and is never read.
    secrets: Optional[Any] = None
    self_node: Optional[str] = None      # the node instance the operation runs on
    source: Optional[str] = None         # relationship operations: the ends
    target: Optional[str] = None
    relationship: Optional[str] = None   # relationship instance id, for relationship operations

    def properties(self, node_id: str) -> Dict[str, Any]:
        raise NotImplementedError

    def attributes(self, node_id: str) -> Dict[str, Any]:
        raise NotImplementedError

    def host(self, node_id: str) -> Optional[str]:
        """The node instance ``node_id`` is HostedOn, or None."""
        raise NotImplementedError

    def template_node(self, template: str) -> Optional[str]:
        """The node instance a template name designates (for the current call), or None."""
        raise NotImplementedError

    def capability_properties(self, node_id: str, name: str) -> Optional[Dict[str, Any]]:
        return None

    def capability_attributes(self, node_id: str, name: str) -> Dict[str, Any]:
        """Attributes of a node's capability assigned in the template (or defaults of its type)."""
        return {}

    def requirement_targets(self, node_id: str, name: str) -> Optional[List[str]]:
        """The node instances the requirement ``name`` of ``node_id`` targets; None when the node
        has no such requirement."""
        return None

    def relationship_properties(self, rel_id: str) -> Dict[str, Any]:
        return {}

    def relationship_attributes(self, rel_id: str) -> Dict[str, Any]:
        return {}

    def relationship_template(self, name: str) -> Optional[Dict[str, Any]]:
        """``{"properties", "attributes"}`` of the relationship template ``name``, or None."""
        return None

    def nodes_of_type(self, type_name: str) -> List[str]:
        """Every node instance of the deployment whose type is ``type_name`` or derives from it."""
        return []

    def artifacts(self, node_id: str) -> Dict[str, str]:
        """``{artifact name: path relative to the model folder}`` of a node."""
        return {}

    # Set by the executor for the operation being run: where the model folder is on the machine
    # the operation runs on (get_artifact paths start there), and the artifacts it used (they
    # travel with a remote operation).
    artifact_root: Optional[str] = None
    used_artifacts: Optional[List[str]] = None

    def artifact_path(self, rel_path: str) -> Optional[str]:
        if self.artifact_root is None:
            return None
        if self.used_artifacts is not None and rel_path not in self.used_artifacts:
            self.used_artifacts.append(rel_path)
        return self.artifact_root.rstrip("/") + "/" + rel_path

    def describe(self, node_id: str) -> str:
        """How an error names a node."""
        return "node %s" % node_id


def is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def has_function(value: Any) -> bool:
    if is_function(value):
        return True
    if isinstance(value, dict):
        return any(has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(has_function(v) for v in value)
    return False


def to_text(value: Any) -> str:
    """How a value becomes a string (concat, environment variables): strings as they are,
    booleans as true/false, null as empty, lists and maps as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, sort_keys=True)
