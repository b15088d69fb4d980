# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run record as stored under ``runs/<run>``: its statuses, reading and checking it, where its
rules are, an instance's runs and the state each node reached in them.

Why a file of its own: the run lifecycle (``runs.py``), the reports on runs (``run_reports.py``,
``stream.py``, ``timeline.py``) and the workers (``run_context.py``) all read run records; they
import them from here, below all of them, so none of them has to import another to read one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from . import deployments, keys
from .errors import NotFound, SpaceDataError
from .records import Nodes, RunRecord, validate_fact, validate_run
from .space.base import Entry, Space

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"


def read_run(space: Space, run_id: str) -> RunRecord:
    e = space.get(keys.run(run_id))
    if e is None:
        raise NotFound("unknown run %s" % run_id)
    return run_record(e)


def run_record(e: Entry) -> RunRecord:
    return validate_run(e.key, e.value)


def rules_key_of(rec: RunRecord) -> str:
    """Where a run's rules are: the model version's rules of its workflow, or, for an update run,
    the composite rules stored with its update generation (``rules_key``, checked to lie there)."""
    key = rec.get("rules_key")
    if key is None:
        return keys.model_rules(rec["model"], rec["model_digest"], rec["workflow"])
    expected = keys.instance_rules(rec["model"], rec["instance"], rec["generation"])
    if not isinstance(key, str) or key != expected:
        raise SpaceDataError("run %s: rules_key %r is not its update generation's rules"
                             % (rec.get("id"), key))
    return key


def instance_runs(space: Space, model: str, instance: str) -> List[RunRecord]:
    """Run records of an instance, oldest first."""
    deployments.instance_head(space, model, instance)
    ids = [k.rsplit("/", 1)[1] for k in space.keys(keys.instance_runs(model, instance))]
    recs = []
    for r in ids:
        try:
            recs.append(read_run(space, r))
        except NotFound:
            continue
    recs.sort(key=lambda r: r["started"])
    return recs


def node_states(space: Space, runs: List[RunRecord], nodes: Nodes
                ) -> Tuple[Dict[str, Optional[str]], Dict[str, Any]]:
    """Each node's state (and error) in the latest of ``runs`` (oldest first) that touched it:
    ``(states, errors)``, for the nodes of ``nodes`` only."""
    states: Dict[str, Optional[str]] = {}
    errors: Dict[str, Any] = {}
    for rec in reversed(runs):
        if len(states) == len(nodes):
            break
        for e in space.list(keys.facts(rec["id"])):
            f = validate_fact(e.key, e.value)
            if f["node"] not in states and f["node"] in nodes and (f["state"] or f.get("error")):
                states[f["node"]] = f["state"]
                if f.get("error"):
                    errors[f["node"]] = f["error"]
    return states, errors
