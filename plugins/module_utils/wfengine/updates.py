# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move a deployment to the model's current version, new inputs or new counts (``wfctl update``,
``wfctl scale``): one *update* run, distributed and resumable like any run (docs/day2.md).

Why a run over crafted records, not a new engine path.  Workers run programs built by a RuleSet
from rules and node records (rules.py).  An update compares the instance's generation with the
one the new model gives (``update_diff.py``: identities are stable, instances.expand with
``previous``) and sorts node and relationship instances into novel, obsolete, modified and
unchanged.  It then writes, besides the new generation, an *update generation*: every node of
both, each record tagged with a virtual type (``install|T`` for a novel node, ``uninstall|T`` for
an obsolete one, ``reinstall|T|T'`` for a modified one and what it hosts, ``update|T`` for a
modified node whose type declares an ``update`` workflow, ``peer|T`` for an unchanged node with
relationship instances added or removed) and each changed relationship instance with a virtual
relationship type whose weavings say what each end does.  The rules of those virtual types are
composed from the stored install and uninstall rules of the two versions (``update_rules.py``)
and stored with the update generation; ``UpdateRuleSet`` reads the tags, so every worker builds
the same programs, and facts, locks, wake-ups, resume and the trace work as for any workflow.

This file applies a diff: it writes the generations and starts (or continues) the run.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Optional

from . import catalog, deployments, keys, runs
from .errors import Conflict, WfError
from .operation.function_eval import input_values
from .records import RunRecord
from .space.base import Entry, Space, op_cas, op_check_index, op_set
# What callers have always found here: the diff (update_diff.py) and the rules (update_rules.py).
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .update_diff import compute as compute
from .update_rules import (INSTALL as INSTALL, PEER_STATE as PEER_STATE, UNINSTALL as UNINSTALL,
                           UPDATE as UPDATE, UpdateRuleSet as UpdateRuleSet)
# pylint: enable=useless-import-alias,unused-import


# ---------------------------------------------------------------- start
def update(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]] = None,
           counts: Optional[Dict[str, int]] = None, max_retries: int = 0,
           remove: Optional[List[str]] = None) -> Dict[str, Any]:
    """Start the update run (or continue a failed or canceled one); returns the diff summary with
    ``run`` (the run record) or ``run: None`` and ``message`` when nothing changes."""
    recs = runs.instance_runs(space, model, instance)
    last = recs[-1] if recs else None
    if last is not None and last.get("workflow") == UPDATE and last.get("status") in (runs.FAILED, runs.CANCELED):
        return _continue(space, model, instance, last, inputs, counts, remove)
    diff = compute(space, model, instance, inputs, counts, remove)
    w = diff.pop("_write", None)
    if w is None:
        return _follow(space, model, instance, diff, inputs, counts)
    new_gen = uuid.uuid4().hex[:12]
    if not _installed(recs):
        # Nothing is deployed: the instance moves to the new generation, no run (install and
        # add_source on nodes that were never installed would be wrong).
        return _move_only(space, model, instance, diff, w, new_gen)
    rec = _start_run(space, model, instance, w, new_gen, max_retries)
    diff.update(run=rec, message="update run %s started" % rec["id"])
    return diff


def _continue(space: Space, model: str, instance: str, last: RunRecord,
              inputs: Optional[Dict[str, Any]], counts: Optional[Dict[str, int]],
              remove: Optional[List[str]]) -> Dict[str, Any]:
    """Continue the failed or canceled update run ``last``."""
    if _moves(space, model, instance, inputs, counts) or remove:
        # The head already names the generation that run moves to: a diff from it would take
        # the nodes that run did not install yet for installed ones.  Inputs and counts it
        # already has are no change (a declarative caller gives them every time).
        raise Conflict("instance %s/%s: the last update run %s %s; continue it first (wfctl update %s %s, "
                       "without inputs or counts)" % (model, instance, last["id"], last["status"], model,
                                                      instance))
    rec = runs.resume_run(space, UPDATE, model, instance)
    return {"model": model, "instance": instance, "changed": True, "resumed": True, "run": rec,
            "message": "continuing update run %s from where it stopped" % rec["id"]}


def _follow(space: Space, model: str, instance: str, diff: Dict[str, Any],
            inputs: Optional[Dict[str, Any]], counts: Optional[Dict[str, int]]) -> Dict[str, Any]:
    """No node or relationship instance changes: no run, but the instance now follows the
    version, inputs and counts given."""
    head_entry = space.get(keys.instance_head(model, instance))
    head = dict(head_entry.value) if head_entry is not None else {}
    moved = diff["version_changed"] or diff["inputs_changed"] or (counts and head.get("counts") != dict(
        head.get("counts") or {}, **counts))
    if moved:
        if head_entry is None:
            raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
        mhead = catalog.model_head(space, model)
        new_head = dict(head, model_digest=mhead["digest"], updated=time.time(),
                        counts=dict(head.get("counts") or {}, **(counts or {})))
        new_head["inputs"] = _values_of(space, model, instance, inputs)
        if not space.txn([op_cas(keys.instance_head(model, instance), new_head, head_entry.index),
                          op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})]).ok:
            raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    diff.update(run=None, message="no change to node or relationship instances: no run%s"
                % (" (instance now on version %s)" % diff["to_version"] if moved else ""))
    return diff


def _checked_head(space: Space, model: str, instance: str, head: Dict[str, Any]) -> Entry:
    """The instance head entry, provided it is still ``head`` (the one the diff read)."""
    head_entry = space.get(keys.instance_head(model, instance))
    if head_entry is None or head_entry.value != head:
        raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    return head_entry


def _start_run(space: Space, model: str, instance: str, w: Dict[str, Any], new_gen: str,
               max_retries: int) -> RunRecord:
    """Write the new and the update generations, then start the update run in the transaction
    that moves the head (both generations removed again if that fails)."""
    head, mhead = w["head"], w["mhead"]
    ugen = "u" + uuid.uuid4().hex[:11]
    rules_key = keys.instance_rules(model, instance, ugen)
    writes = [op_set(keys.instance_node(model, instance, new_gen, nid), n) for nid, n in w["new_nodes"].items()]
    writes += [op_set(keys.instance_node(model, instance, ugen, nid), n) for nid, n in w["union"].items()]
    writes.append(op_set(rules_key, w["rules"]))
    head_key = keys.instance_head(model, instance)
    head_entry = _checked_head(space, model, instance, head)
    new_head = dict(head, model_digest=mhead["digest"], generation=new_gen, nodes=len(w["new_nodes"]),
                    inputs=w["values"], counts=w["counts"], updated=time.time(),
                    previous_digest=head["model_digest"], update_generation=ugen)
    extra = [op_cas(head_key, new_head, head_entry.index),
             op_check_index(keys.model_meta(model, mhead["digest"]), w["meta_entry"].index),
             op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})]
    try:
        space.write_chunked(writes)
        rec = runs.start_run(space, UPDATE, model, instance, max_retries=max_retries,
                             override={"generation": ugen, "rules_key": rules_key,
                                       "model_digest": mhead["digest"]}, extra_ops=extra)
    except Exception:
        try:
            space.delete_tree(keys.instance_generation(model, instance, new_gen))
            space.delete_tree(keys.instance_generation(model, instance, ugen))
        finally:
            raise
    return rec


def _moves(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]],
           counts: Optional[Dict[str, int]]) -> bool:
    """Whether ``inputs`` or ``counts`` differ from what the instance head already has."""
    if not inputs and not counts:
        return False
    head = deployments.instance_head(space, model, instance)
    if counts and dict(head.get("counts") or {}, **counts) != (head.get("counts") or {}):
        return True
    return bool(inputs) and _values_of(space, model, instance, inputs) != (head.get("inputs") or {})


def installed(space: Space, model: str, instance: str) -> bool:
    """Whether an update of the instance would start a run (else it only moves the instance)."""
    return _installed(runs.instance_runs(space, model, instance))


def _installed(recs: List[RunRecord]) -> bool:
    """Whether the instance is deployed: its last succeeded install, uninstall or update run is
    not an uninstall (a failed run leaves it as it was before, for this purpose)."""
    for rec in reversed(recs):
        if rec.get("workflow") in (INSTALL, UNINSTALL, UPDATE) and rec.get("status") == "succeeded":
            return bool(rec["workflow"] != UNINSTALL)
    return False


def _move_only(space: Space, model: str, instance: str, diff: Dict[str, Any], w: Dict[str, Any],
               new_gen: str) -> Dict[str, Any]:
    head, mhead = w["head"], w["mhead"]
    head_key = keys.instance_head(model, instance)
    head_entry = _checked_head(space, model, instance, head)
    space.write_chunked([op_set(keys.instance_node(model, instance, new_gen, nid), n)
                         for nid, n in w["new_nodes"].items()])
    new_head = dict(head, model_digest=mhead["digest"], generation=new_gen, nodes=len(w["new_nodes"]),
                    inputs=w["values"], counts=w["counts"], updated=time.time())
    new_head.pop("update_generation", None)
    res = space.txn([op_cas(head_key, new_head, head_entry.index),
                     op_check_index(keys.model_meta(model, mhead["digest"]), w["meta_entry"].index),
                     op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})])
    if not res.ok:
        space.delete_tree(keys.instance_generation(model, instance, new_gen))
        raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    diff.update(run=None, message="the instance is not installed: it now has the new node instances, no run "
                                  "(wfctl workflow install deploys them)")
    return diff


def _values_of(space: Space, model: str, instance: str, given: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    head = deployments.instance_head(space, model, instance)
    mhead = catalog.model_head(space, model)
    defs = catalog.read_meta(space, model, mhead["digest"]).get("inputs") or {}
    kept = {k: v for k, v in (head.get("inputs") or {}).items() if k in defs}
    return input_values(defs, dict(kept, **(given or {})))


def scale_counts(space: Space, model: str, instance: str, template: str, count: Optional[int] = None,
                 delta: Optional[int] = None) -> Dict[str, int]:
    """``{template: instances per host}`` for ``wfctl scale``: ``count``, or the current count
    plus ``delta`` (the current count: the template's instances over its host's)."""
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head)
    mine = [n for n in nodes.values() if n["template"] == template]
    if count is None:
        hosts = {n.get("host") for n in mine}
        if not mine:
            tpl = catalog.read_templates(space, model, head["model_digest"]).get(template)
            if tpl is None:
                raise WfError("instance %s/%s has no template %s" % (model, instance, template))
            current = 0
        else:
            current = len(mine) // max(1, len(hosts))
        count = current + int(delta or 0)
    if count < 0:
        raise WfError("template %s: %d instances per host is not a count" % (template, count))
    return {template: count}
