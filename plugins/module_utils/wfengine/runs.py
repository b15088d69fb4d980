# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs of a workflow on an instance: start, finalize, cancel, resume, wait (what they did, read
from the Space: ``run_reports.py``).

One run at a time per instance: starting takes ``inst/<model>/<instance>/current`` with a
check-not-exists in the same transaction that creates the run, so two managers cannot interleave
two workflows on one instance.  A run ends when its queue holds nothing but its marker (no ready
tuple, no lock, no outbox); whoever sees that first (a worker or a waiting manager) finalizes it
with a CAS, so finalization happens once even if several try.
"""
from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

from . import catalog, deployments, keys
from .errors import Conflict, NotFound
from .facts import new_fact, validate_fact
from .instances import hosting_map
from .locality import zone_map
from .records import Fact, InstanceHead, Nodes, RunRecord
from .imperative import check_preconditions, instances_from, is_imperative
from .rules import rule_set, validate_rule_set
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .run_records import (CANCELED as CANCELED, FAILED as FAILED, RUNNING as RUNNING,
                          SUCCEEDED as SUCCEEDED, instance_runs as instance_runs,
                          node_states, read_run as read_run, rules_key_of as rules_key_of,
                          run_record as run_record)
# pylint: enable=useless-import-alias,unused-import
from .space.base import (Space, op_cas, op_check_index, op_delete, op_delete_cas,
                         op_delete_tree, op_get, op_get_tree, op_set)

log = logging.getLogger("wfengine.runs")


def _runs_operations(meta: Dict[str, Any], nodes: Nodes) -> bool:
    """Whether a node of the run has an operation that runs something (the model's ``effectful``
    templates, catalog.upload; a model stored before it was recorded: no)."""
    effectful = meta.get("effectful")
    if not isinstance(effectful, list):
        return False
    named = {t for t in effectful if isinstance(t, str)}
    return any(n.get("template") in named for n in nodes.values())


def start_run(space: Space, workflow: str, model: str, instance: str,
              max_retries: int = 0, override: Optional[Dict[str, str]] = None,
              extra_ops: Optional[List[Any]] = None) -> RunRecord:
    """Create a run and put out the ready tuples of the nodes that can start; returns the record.
    ``max_retries`` is the run-wide default of retries for a failing operation.  ``override``
    (updates.py): the run's ``generation``, ``model_digest`` and ``rules_key`` instead of the
    instance head's and the model's; ``extra_ops`` commit with the run record (an update moves
    the instance head in the same transaction: the head moves iff the run starts)."""
    head, rules, meta, nodes = _read_start(space, workflow, model, instance, override)
    rs = rule_set(workflow, rules, instances_from(nodes))
    if is_imperative(rules) and rules["imperative"].get("preconditions"):
        _check_preconditions(space, workflow, rules, model, instance, instances_from(nodes))
    participants = sorted(n for n, v in nodes.items() if rs.takes_part(v))
    initial = [n for n in participants if rs.starts_ready(nodes[n])]
    now = time.time()
    run_id = "%s-%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)), uuid.uuid4().hex[:6])
    record: RunRecord = {
        "id": run_id, "model": model, "instance": instance, "workflow": workflow,
        "model_digest": head["model_digest"], "generation": head["generation"],
        "status": RUNNING, "started": now, "ended": None, "duration": None,
        "participants": len(participants), "nodes": len(nodes), "epoch": 0,
        "max_retries": int(max_retries),
        # workers share out the nodes of a run by zones of root hosts (locality.py)
        "hosting": hosting_map(nodes),
        "zones": zone_map(nodes, spread=_runs_operations(meta, nodes)),
        "serialize_hosted": bool(meta.get("settings", {}).get("serialize_hosted", True))}
    if override:
        record["rules_key"] = override["rules_key"]
    if workflow == "uninstall" and not is_imperative(rules):
        # TOSCA: uninstall failures should not prevent the other operations (docs/day2.md)
        record["past_failures"] = True
    _write_start(space, record, participants, initial, list(extra_ops or []))
    if not participants:
        finalize_run(space, run_id)
        record = read_run(space, run_id)
    return record


def _read_start(space: Space, workflow: str, model: str, instance: str,
                override: Optional[Dict[str, str]]
                ) -> Tuple[InstanceHead, Dict[str, Any], Dict[str, Any], Nodes]:
    """What a run starts from, in one read: the instance head (its generation and model version,
    or the update's ``override``), the workflow's rules, the model version's meta, the nodes."""
    head = deployments.instance_head(space, model, instance)
    if override:
        head = head.copy()
        head.update({"generation": override["generation"],
                     "model_digest": override["model_digest"]})
    nodes_prefix = keys.instance_nodes(model, instance, head["generation"])
    rules: Optional[Dict[str, Any]]
    if override:
        meta_key = keys.model_meta(model, head["model_digest"])
        got = space.txn([op_get(override["rules_key"]), op_get(meta_key),
                         op_get_tree(nodes_prefix)])
        e = got.entries.get(override["rules_key"])
        rules = None if e is None else validate_rule_set(workflow, e.value)
        meta_e = got.entries.get(meta_key)
        meta = meta_e.value if meta_e is not None and isinstance(meta_e.value, dict) else {}
        node_entries = got.trees.get(nodes_prefix, [])
    else:
        rules, meta, node_entries = catalog.read_rules_and_meta(space, model, head["model_digest"],
                                                                workflow, nodes_prefix)
    if rules is None:
        raise catalog.unknown_workflow(space, model, workflow)
    return head, rules, meta, deployments.nodes_of(nodes_prefix, node_entries)


def _write_start(space: Space, record: RunRecord, participants: List[str],
                 initial: List[str], extra: List[Any]) -> None:
    """Write a new run: its facts and ready tuples, then its record with the instance's
    current-run pointer (Conflict if the instance has a run in progress)."""
    run_id, model, instance = record["id"], record["model"], record["instance"]
    workflow, now = record["workflow"], record["started"]
    # Facts and ready tuples first: workers ignore a queue until its marker exists, so they stay
    # invisible until the transaction below, and are removed if the run cannot start.  Facts that
    # exist from the start let a worker read a node's fact with its lock in one round trip.  A
    # small run (the seed's) fits in that one transaction: one round trip less before its start,
    # and the record can name the facts written with it ("fresh": their index is the record's,
    # their value new_fact), which workers take as hints instead of reading them.
    first = list(itertools.chain(
        (op_set(keys.fact(run_id, n), new_fact(n)) for n in participants),
        (op_set(keys.ready(run_id, n), {}) for n in initial)))
    single = len(first) + 5 + len(extra) <= space.max_txn_ops
    if single:
        record["fresh"] = participants
    ops = [op_cas(keys.instance_current(model, instance), {"run": run_id, "workflow": workflow}, 0),
           op_set(keys.instance_run(model, instance, run_id),
                  {"workflow": workflow, "started": now}),
           op_set(keys.run(run_id), record),
           op_set(keys.marker(run_id), {"model": model, "instance": instance}),
           op_set(keys.live(run_id), {"started": now})] + extra
    if single:
        res = space.txn(first + ops)
    else:
        space.write_chunked(first)
        res = space.txn(ops)
    if not res.ok:
        space.txn([op_delete_tree(keys.facts(run_id)), op_delete_tree(keys.queue(run_id))])
        cur = space.get(keys.instance_current(model, instance))
        other = cur.value if cur is not None and isinstance(cur.value, dict) else {}
        raise Conflict("instance %s/%s already has a run in progress: %s (%s); wait for it or "
                       "cancel it" % (model, instance, other.get("run", "?"),
                                      other.get("workflow", "?")))


def _check_preconditions(space: Space, workflow: str, rules: Dict[str, Any], model: str, instance: str,
                         instances: Any) -> None:
    """TOSCA 1.3 §7.3 preconditions of an imperative workflow, on the instances' current states
    and stored attributes: a workflow whose preconditions do not hold is not started."""
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head)
    reached = node_states(space, instance_runs(space, model, instance), nodes)[0]
    states = {n: reached.get(n) or "initial" for n in nodes}

    def values(nid: str) -> Dict[str, Any]:
        e = space.get(keys.attributes(model, instance, nid))
        attrs = dict(e.value) if e is not None and isinstance(e.value, dict) else {}
        attrs["state"] = states.get(nid, "initial")
        return attrs

    why = check_preconditions(workflow, rules, instances, values)
    if why:
        raise Conflict(why)


def finalize_run(space: Space, run_id: str,
                 where: Optional[Tuple[str, str]] = None) -> Optional[RunRecord]:
    """End a quiet run (only its marker left in the queue); returns the final record, or None if the
    run is not quiet or was already finalized.  ``where`` (model, instance), when the caller knows
    it, lets the instance's current-run pointer be read with the run record: the end of a run is
    on the critical path of every workflow: two round trips, one read (record, pointer, queue and
    facts in one snapshot) and one write (seven before, then four)."""
    marker_key, run_key = keys.marker(run_id), keys.run(run_id)
    qprefix, fprefix = keys.queue(run_id), keys.facts(run_id)
    wanted = [op_get(run_key)]
    if where is not None:
        wanted.append(op_get(keys.instance_current(*where)))
    # One snapshot: whether the run is quiet, and all that its end records.  Callers come here
    # when a listing showed the run quiet, so the facts read with it are rarely read for nothing.
    got = space.txn(wanted + [op_get_tree(qprefix), op_get_tree(fprefix)])
    queue = {e.key: e for e in got.trees.get(qprefix, [])}
    marker, re_ = queue.get(marker_key), got.entries.get(run_key)
    if marker is None or re_ is None:
        return None
    canceled = keys.cancel(run_id) in queue
    if not _quiet(sorted(queue), marker_key, canceled):
        return None
    rec = run_record(re_)
    cur_key = keys.instance_current(rec["model"], rec["instance"])
    facts = [validate_fact(e.key, e.value) for e in got.trees.get(fprefix, [])]
    if not canceled and _wake_stuck(space, run_id, facts):
        return None
    new = _final_record(rec, facts, canceled)
    ops = [op_delete_cas(marker_key, marker.index), op_cas(run_key, new, re_.index),
           op_delete(keys.live(run_id))]
    if canceled:
        ops.append(op_delete_tree(keys.queue(run_id)))
    cur = got.entries[cur_key] if cur_key in got.entries else space.get(cur_key)
    if cur is not None and isinstance(cur.value, dict) and cur.value.get("run") == run_id:
        ops.append(op_delete_cas(cur_key, cur.index))
    res = space.txn(ops)
    return new if res.ok else None


def _quiet(qkeys: List[str], marker_key: str, canceled: bool) -> bool:
    """Whether a run's queue (its sorted keys) lets it end: nothing but its marker, or, once
    canceled, no step in flight (steps in flight hold locks; ready tuples and outboxes are left
    out on purpose)."""
    if canceled:
        return not any(keys.is_lock(k) or keys.is_host_lock(k) for k in qkeys)
    return qkeys == [marker_key]


def _final_record(rec: RunRecord, facts: List[Fact], canceled: bool) -> RunRecord:
    """The record of a run that ends now, from its facts: status, end, duration, counts, errors."""
    done = sum(1 for f in facts if f["done"])
    errors = [{"node": f["node"], **f["error"]} for f in facts if f.get("error")]
    counts: Dict[str, int] = {}
    for f in facts:
        counts[f["state"] or "initial"] = counts.get(f["state"] or "initial", 0) + 1
    now = time.time()
    new = rec.copy()
    new.update({"status": CANCELED if canceled else
                SUCCEEDED if done == rec["participants"] and not errors else FAILED,
                "ended": now, "duration": round(now - rec["started"], 6), "done": done,
                "counts": counts, "errors": errors})
    if new["status"] == FAILED and not errors:
        new["errors"] = [{"node": f["node"],
                          "message": "blocked waiting for %s" % (f.get("waiting"),)}
                         for f in facts if not f["done"]][:20]
    return new


def _wake_stuck(space: Space, run_id: str, facts: List[Fact]) -> bool:
    """Backstop against a lost wake-up: before a quiet run is declared failed, nodes blocked on a
    state that is already reached, or never evaluated, are put out again (True).  A node never
    evaluated is woken at most once: afterwards its fact says what it waits for.  The run ends
    only when nothing can move."""
    by_node = {f["node"]: f for f in facts}
    stuck, blocked = [], []
    for f in facts:
        if f["done"] or f.get("error"):
            continue
        w: Any = f.get("waiting") or {}      # as the worker wrote it (not checked)
        other = by_node.get(w.get("node"))
        if not f["version"]:
            stuck.append(f["node"])
        elif other is not None and w.get("state") in other["reached"]:
            stuck.append(f["node"])
            blocked.append(f["node"])
    if not stuck:
        return False
    if blocked:
        log.warning("run %s: %d node(s) blocked on a state already reached (lost wake-up: %s); "
                    "woken again", run_id, len(blocked), ", ".join(blocked[:5]))
    space.write_chunked(op_set(keys.ready(run_id, n), {}) for n in stuck)
    return True


def cancel_run(space: Space, model: str, instance: str) -> RunRecord:
    """Stop scheduling new steps of the instance's run in progress; the workers kill the
    operations in flight (process group: SIGTERM, then SIGKILL after the grace period).  The
    run's entry under ``q/~/runs/`` is rewritten too: idle workers follow only that folder, and
    must list the queue to see the cancel."""
    cur = space.get(keys.instance_current(model, instance))
    deployments.instance_head(space, model, instance)
    if cur is None or not isinstance(cur.value, dict):
        raise Conflict("instance %s/%s has no run in progress" % (model, instance))
    run_id = cast(str, cur.value.get("run"))
    marker = space.get(keys.marker(run_id))
    if marker is None or not space.txn([op_check_index(marker.key, marker.index),
                                        op_set(keys.cancel(run_id), {"ts": time.time()}),
                                        op_set(keys.live(run_id), {"canceled": time.time()})]).ok:
        raise Conflict("run %s is ending; nothing to cancel" % run_id)
    return read_run(space, run_id)


def run_rules(space: Space, rec: RunRecord) -> Optional[Dict[str, Any]]:
    """The validated rules a run follows (``rules_key_of``), None if missing."""
    e = space.get(rules_key_of(rec))
    return None if e is None else validate_rule_set(rec["workflow"], e.value)


def resume_run(space: Space, workflow: str, model: str, instance: str) -> RunRecord:
    """Continue the instance's last run, if it is a failed or canceled run of ``workflow``, from
    its failed steps: what succeeded is not run again (facts keep their progress)."""
    recs = instance_runs(space, model, instance)
    if not recs or recs[-1]["workflow"] != workflow:
        raise Conflict("nothing to resume: the last run of %s/%s is not a %s run" % (model, instance, workflow))
    rec = recs[-1]
    if rec["status"] not in (FAILED, CANCELED):
        raise Conflict("nothing to resume: run %s of %s is %s" % (rec["id"], workflow, rec["status"]))
    run_id = rec["id"]
    head = deployments.instance_head(space, model, instance)
    stored = run_rules(space, rec) or {}
    if is_imperative(stored):
        # Its failed steps went on to their on_failure steps: there is no point to resume from.
        raise Conflict("nothing to resume: %s is an imperative workflow; run it again" % workflow)
    rs = rule_set(workflow, stored)
    nodes = deployments.read_nodes(space, model, instance, dict(head, generation=rec["generation"]))
    done = {f["node"] for f in (validate_fact(e.key, e.value) for e in space.list(keys.facts(run_id)))
            if f["done"]}
    todo = sorted(n for n, v in nodes.items() if rs.takes_part(v) and n not in done)
    re_ = space.get(keys.run(run_id))
    if re_ is None:
        raise NotFound("unknown run %s" % run_id)
    epoch = int(rec.get("epoch") or 0) + 1
    new = rec.copy()
    new.pop("fresh", None)      # the facts moved since the start
    new.update({"status": RUNNING, "ended": None, "duration": None, "epoch": epoch,
                "resumed": list(rec.get("resumed") or []) + [time.time()]})
    ops = [op_cas(keys.instance_current(model, instance), {"run": run_id, "workflow": workflow}, 0),
           op_cas(keys.run(run_id), new, re_.index),
           op_delete_tree(keys.queue(run_id)),
           op_set(keys.marker(run_id), {"model": model, "instance": instance}),
           op_set(keys.live(run_id), {"started": time.time()})]
    for i in range(0, len(todo), keys.OUTBOX_CHUNK):
        ops.append(op_set(keys.outbox(run_id, "resume%d-%d" % (epoch, i)),
                          {"wake": todo[i:i + keys.OUTBOX_CHUNK], "epoch": epoch}))
    if not space.txn(ops).ok:
        raise Conflict("instance %s/%s has a run in progress; cannot resume now" % (model, instance))
    if not todo:
        finalize_run(space, run_id)
    return read_run(space, run_id)


def wait_run(space: Space, run_id: str, timeout: Optional[float] = None,
             progress: Optional[Callable[[Dict[str, Any]], None]] = None,
             tick: Optional[Callable[[RunRecord], None]] = None) -> RunRecord:
    """Block until the run ends (or ``timeout``); returns the run record (status may be running
    on timeout).

    The wait is a blocking query on the run record, which changes once, when the run ends, and
    comes with the wake-up (``Space.watch``): the manager costs nothing per step and reads
    nothing more at the end.  Each time the query times out (1 s with progress, 5 s without),
    it looks whether the run went quiet without anyone finalizing it (every worker died right
    after the last commit) and finalizes it then; not before the first wait, when the workers
    are busiest with the run's start (a progress report lists the queue every time).  ``tick``
    is called with the record at each of those looks (every second): a re-attached waiter
    checks there whether the run still has live workers."""
    deadline = None if timeout is None else time.monotonic() + timeout
    key = keys.run(run_id)
    e = space.get(key)
    first = True
    while True:
        if e is None:
            raise NotFound("unknown run %s" % run_id)
        rec = run_record(e)
        if rec["status"] != RUNNING:
            return rec
        remaining = 30.0 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return rec
        if not first or progress is not None:
            qkeys = space.keys(keys.queue(run_id))
            if qkeys == [keys.marker(run_id)] or (keys.cancel(run_id) in qkeys and not any(
                    keys.is_lock(k) or keys.is_host_lock(k) for k in qkeys)):
                finalize_run(space, run_id)
                e = space.get(key)
                continue
            if progress is not None:
                progress(run_progress(space, run_id, rec, qkeys))
            if tick is not None:
                tick(rec)
        first = False
        dummy, e = space.watch(key, e.index, min(remaining, 1.0 if progress or tick else 5.0))


def current_run(space: Space, model: str, instance: str) -> Optional[RunRecord]:
    """The instance's run in progress (None when there is none)."""
    cur = space.get(keys.instance_current(model, instance))
    if cur is None or not isinstance(cur.value, dict) or not isinstance(cur.value.get("run"), str):
        return None
    try:
        rec = read_run(space, cur.value["run"])
    except NotFound:
        return None
    return rec if rec["status"] == RUNNING else None


def live_workers(space: Space) -> List[str]:
    """Ids of the workers whose session is alive (their registration goes with the session)."""
    return [k[len(keys.WORKERS):] for k in space.keys(keys.WORKERS)]


def run_progress(space: Space, run_id: str, rec: RunRecord, qkeys: List[str]) -> Dict[str, Any]:
    facts = space.list(keys.facts(run_id))
    done = sum(1 for e in facts if isinstance(e.value, dict) and e.value.get("done"))
    states: Dict[str, int] = {}
    failed = ops_done = ops_running = 0
    for e in facts:
        if isinstance(e.value, dict):
            st = e.value.get("state")
            if isinstance(st, str):
                states[st] = states.get(st, 0) + 1
            failed += 1 if e.value.get("error") else 0
            # An attempt checkpointed and not yet committed is running (or its worker died:
            # the next one says it was interrupted); ended attempts are counted in the fact.
            ops_running += 1 if e.value.get("inflight") else 0
            n = e.value.get("operations")
            ops_done += n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0
    return {"run": run_id, "workflow": rec["workflow"], "done": done, "total": rec["participants"],
            "ready": sum(1 for k in qkeys if keys.is_ready(k)),
            "running": sum(1 for k in qkeys if keys.is_lock(k)),
            "failed": failed, "states": states,
            "operations_done": ops_done, "operations_running": ops_running}
