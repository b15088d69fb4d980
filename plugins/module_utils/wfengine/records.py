# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of the JSON records the Space holds at run time, checked when they are read back.

Why a file of its own: a fact (``facts/<run>/<node>``), a run record (``runs/<run>``), a node
instance (``inst/<model>/<instance>/<gen>/nodes/<node>``) and the heads of models and instances
are written by one module and read by many; their keys and value types are written down once
here, as ``TypedDict`` s (plain dicts at run time: the stored JSON is what it always was), next to
the checks that turn a value read from the Space into one of them or refuse it with one line
(``SpaceDataError``).  Only the keys a check looks at are guaranteed; the others are as the
engine writes them and are not checked when read (as before these types existed).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict, cast

from .errors import SpaceDataError

RELATIONSHIP_KEYS = ("id", "type", "requirement", "source", "target", "source_type", "target_type")


class _RelationshipKeys(TypedDict):
    id: str
    type: str
    requirement: str
    source: str
    target: str
    source_type: str
    target_type: str


class Relationship(_RelationshipKeys, total=False):
    """A relationship instance, in the ``out`` list of its source and the ``in`` list of its
    target; its id is ``<source>:<requirement>#<index>:<target>`` (instances.expand).  In an
    update's generation (update_rules.py), the virtual types its operations are compiled under."""
    vtype: str
    source_vtype: str
    target_vtype: str


# "in" is a keyword: the functional form.
_NodeKeys = TypedDict("_NodeKeys", {"id": str, "template": str, "type": str,
                                    "out": List[Relationship], "in": List[Relationship]})


class NodeInstance(_NodeKeys, total=False):  # pylint: disable=inherit-non-class
    """A node instance (instances.expand); ``host``: the id of the instance it is hosted on.  In
    an update's generation (update_rules.py): ``vtype``, the virtual type it runs under, and
    ``model_digest``, the model version of a node the update removes."""
    host: Optional[str]
    vtype: str
    model_digest: str


Nodes = Dict[str, NodeInstance]     # node instances by id: a deployment's generation


class _FactKeys(TypedDict):
    node: str
    pc: int
    state: Optional[str]
    reached: List[str]
    version: int
    done: bool
    operations: int
    waiting: Any        # {"node", "state", ...} the node waits for, or None (not checked)
    error: Any          # {"message", ...} of the failure that stopped the node, or None
    inflight: Any       # the operation attempt in flight (attempts.py), or None


class Fact(_FactKeys, total=False):
    """The progress of one node instance in one run (facts.py)."""
    epoch: int          # the run's epoch the fact was last evaluated in (a resume raises it)
    updated: float      # when it was last written
    failed: List[Dict[str, Any]]     # the steps that failed, for an imperative workflow


class _RunKeys(TypedDict):
    id: str
    model: str
    instance: str
    workflow: str
    status: str
    model_digest: str
    generation: str


class RunRecord(_RunKeys, total=False):
    """A run (runs.py): what it runs, its status and, once ended, its outcome."""
    started: float
    ended: Optional[float]
    duration: Optional[float]
    participants: int
    nodes: int
    epoch: int
    max_retries: int
    hosting: Dict[str, Any]
    zones: Dict[str, Any]
    serialize_hosted: bool
    rules_key: str
    past_failures: bool
    fresh: List[str]
    resumed: List[float]
    done: int
    counts: Dict[str, int]
    errors: List[Dict[str, Any]]


class _ModelHeadKeys(TypedDict):
    digest: str


class ModelHead(_ModelHeadKeys, total=False):
    """``models/<name>/head``: the model version in use (catalog.py)."""
    name: str
    file: str
    templates: List[str]
    workflows: List[str]
    instances: int
    source: str
    warnings: List[str]
    uploaded: float


class _InstanceHeadKeys(TypedDict):
    model_digest: str
    generation: str


class InstanceHead(_InstanceHeadKeys, total=False):
    """``inst/<model>/<instance>/head``: the generation of node instances in use and the model
    version it was made from (deployments.py; an update adds the version it came from)."""
    model: str
    instance: str
    nodes: int
    created: float
    updated: float
    inputs: Dict[str, Any]
    counts: Dict[str, int]
    previous_digest: str
    update_generation: str


def new_fact(node: str) -> Fact:
    """The fact of a node a run has not evaluated yet."""
    return {"node": node, "pc": 0, "state": None, "reached": [], "version": 0, "done": False,
            "waiting": None, "error": None, "inflight": None, "operations": 0}


def salvage_fact(node: str, damaged: Any) -> Fact:
    """The fact of ``node`` a worker writes to stop it on bad data: a new fact, with the keys of
    the ``damaged`` value read (as they are) that a fact has."""
    fact: Dict[str, Any] = dict(new_fact(node))
    if isinstance(damaged, dict):
        fact.update({k: v for k, v in damaged.items() if k in fact})
    return cast(Fact, fact)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_fact(key: str, value: Any) -> Fact:
    """``value`` (read at ``key``) as a fact, its missing optional keys filled in."""
    ok = (isinstance(value, dict) and isinstance(value.get("node"), str)
          and _is_count(value.get("pc"))
          and isinstance(value.get("version"), int) and isinstance(value.get("reached"), list)
          and all(isinstance(s, str) for s in value["reached"])
          and (value.get("state") is None or isinstance(value.get("state"), str))
          and isinstance(value.get("done"), bool)
          and _is_count(value.setdefault("operations", 0)) and value["operations"] >= 0)
    if not ok:
        raise SpaceDataError("%s: not a fact" % key)
    value.setdefault("waiting", None)
    value.setdefault("error", None)
    value.setdefault("inflight", None)
    return cast(Fact, value)


def validate_node(key: str, node: Any) -> NodeInstance:
    """``node`` (read at ``key``) as a node instance."""
    ok = isinstance(node, dict) \
        and all(isinstance(node.get(k), str) for k in ("id", "template", "type")) \
        and isinstance(node.get("out"), list) and isinstance(node.get("in"), list)
    if ok:
        for rel in node["out"] + node["in"]:
            if not isinstance(rel, dict) or not all(isinstance(rel.get(k), str)
                                                    for k in RELATIONSHIP_KEYS):
                ok = False
                break
    if not ok:
        raise SpaceDataError("%s: not a node instance" % key)
    return cast(NodeInstance, node)


def validate_run(key: str, value: Any) -> RunRecord:
    """``value`` (read at ``key``) as a run record."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in
                                              ("id", "model", "instance", "workflow", "status",
                                               "model_digest", "generation")):
        raise SpaceDataError("%s: not a run record" % key)
    return cast(RunRecord, value)


def validate_model_head(key: str, value: Any) -> ModelHead:
    """``value`` (read at ``key``) as a model's head."""
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        raise SpaceDataError("%s: not a model head" % key)
    return cast(ModelHead, value)


def validate_instance_head(key: str, value: Any) -> InstanceHead:
    """``value`` (read at ``key``) as an instance's head."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str)
                                              for k in ("model_digest", "generation")):
        raise SpaceDataError("%s: not an instance head" % key)
    return cast(InstanceHead, value)
