# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the runs of an instance did: node states (``status``), the operations' logs, the trace of
events in causal order, a run's summary, the root hosts a run waits for, the topology's outputs.

Read only: starting, ending, canceling, resuming and waiting for runs are ``runs.py``; the run
records these reports read are ``run_records.py``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Set

from . import catalog, deployments, keys
from . import events as trace_events
from .errors import NotFound, SpaceDataError
from .instances import natural_key, root_of
from .records import InstanceHead, NodeInstance, Nodes, RunRecord
from .run_records import RUNNING, instance_runs, node_states, read_run
from .space.base import Space


def status(space: Space, model: str, instance: str) -> Dict[str, Any]:
    """Node states of an instance: each node's state in the latest run that touched it."""
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head)
    runs = instance_runs(space, model, instance)
    states, errors = node_states(space, runs, nodes)
    out: Dict[str, Any] = {"model": model, "instance": instance, "nodes": {}}
    for nid in sorted(nodes, key=natural_key):
        n = nodes[nid]
        out["nodes"][nid] = {"template": n["template"], "type": n["type"],
                             "state": states.get(nid) or "initial",
                             "relationships": [{"type": r["type"], "target": r["target"],
                                                "requirement": r["requirement"]} for r in n["out"]]}
        if nid in errors:
            out["nodes"][nid]["error"] = errors[nid]
    if runs:
        last = runs[-1]
        out["last_run"] = {k: last.get(k) for k in ("id", "workflow", "status", "started", "ended", "duration")}
        if last.get("status") == RUNNING:
            waiting = waiting_hosts(space, last)
            if waiting:
                out["waiting_hosts"] = waiting
    meta = catalog.read_meta(space, model, head["model_digest"])
    if meta.get("warnings"):
        out["warnings"] = list(meta["warnings"])   # of the model version the instance runs
    if meta.get("sections"):
        # groups, policies, substitution_mappings, topology metadata: kept, shown, not run
        out["sections"] = meta["sections"]
    if meta.get("outputs"):
        out["outputs"] = topology_outputs(space, model, instance, head, nodes, meta)
    return out


def waiting_hosts(space: Space, rec: RunRecord) -> List[Dict[str, Any]]:
    """Root hosts of a running run whose ready nodes wait for the worker that serves them
    (``wfctl worker --serves``) to come back: host, address, serving workers, nodes, since."""
    served: Dict[str, Set[str]] = {}
    for k in space.keys(keys.SERVED):
        name, dummy, wid = k[len(keys.SERVED):].rpartition("/")
        served.setdefault(name, set()).add(wid)
    if not served:
        return []
    alive = {k[len(keys.WORKERS):] for k in space.keys(keys.WORKERS)}
    run_id = rec["id"]
    ready = []
    for k in space.keys(keys.queue(run_id)):
        parsed = keys.parse_queue_key(k)
        if parsed is not None and parsed[1] == "r":
            ready.append(parsed[2])
    from .run_context import RunContext     # lazy, as before: status reports load it only here
    ctx = RunContext(space, run_id)
    hosts: Dict[str, Dict[str, Any]] = {}
    for n in ready:
        root = root_of(n, ctx.hosting)
        address = ctx.address(root)
        servers = served.get(root, set()) | (served.get(address, set()) if address else set())
        if not servers or servers & alive:
            continue
        h = hosts.setdefault(root, {"host": root, "address": address, "served_by": sorted(servers),
                                    "nodes": [], "since": rec.get("started")})
        h["nodes"].append(n)
    for h in hosts.values():
        # Since the last progress of its nodes (their facts' last commit).
        ts = []
        for n in h["nodes"]:
            e = space.get(keys.fact(run_id, n))
            if e is not None and isinstance(e.value, dict) and isinstance(e.value.get("updated"), (int, float)):
                ts.append(e.value["updated"])
        if ts:
            h["since"] = max(ts)
        h["nodes"].sort(key=natural_key)
    return [hosts[k] for k in sorted(hosts)]


def topology_outputs(space: Space, model: str, instance: str, head: InstanceHead,
                     nodes: Nodes, meta: Dict[str, Any]) -> Dict[str, Any]:
    """The model's ``outputs``, computed from the current attributes of the deployment."""
    from .operation.function_eval import evaluate_outputs
    from .operation.resolver import model_context

    dep = _Deployment(model, instance, nodes)
    prefix = keys.model_operations(model, head["model_digest"], "")
    values = {e.key[len(prefix):]: (e.value or {}).get("values") or {} for e in space.list(prefix)}
    ctx = model_context(space, dep, values, head.get("inputs") or {}, None)
    return evaluate_outputs(meta["outputs"], ctx)


class _Deployment:
    """What a function context reads of a deployment outside a run (``topology_outputs``): its
    nodes, and their ids by template."""

    def __init__(self, model: str, instance: str, nodes: Nodes):
        self.model, self.instance = model, instance
        self.node: Callable[[str], NodeInstance] = nodes.__getitem__
        self._nodes = nodes

    def template_instances(self, template: str) -> List[str]:
        return sorted((n for n, v in self._nodes.items() if v["template"] == template),
                      key=natural_key)


def _select_runs(space: Space, model: str, instance: str, workflow: Optional[str],
                 run_id: Optional[str]) -> List[RunRecord]:
    """Runs of an instance filtered by workflow / run id; an unknown one is an error, not an
    empty answer."""
    runs = instance_runs(space, model, instance)
    if run_id:
        runs = [r for r in runs if r["id"] == run_id]
        if not runs:
            raise NotFound("instance %s/%s has no run %s" % (model, instance, run_id))
    if workflow:
        known = catalog.model_head(space, model).get("workflows", [])
        if workflow not in known and workflow != "update":     # update: wfctl update's runs
            raise NotFound("model %s defines no workflow %s (known: %s)" % (model, workflow, ", ".join(known)))
        runs = [r for r in runs if r["workflow"] == workflow]
    return runs


def logs(space: Space, model: str, instance: str, node: Optional[str] = None,
         run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """Per-operation logs (exit code, duration, worker, output tail) of the instance's runs."""
    runs_ = _select_runs(space, model, instance, None, run_id)
    out = []
    for r in runs_:
        # Filtered by the record's node, not by key: a relationship operation woven into one
        # end's program for the other end is logged under the first, named after the second.
        for e in space.list(keys.logs(r["id"])):
            if not isinstance(e.value, list):
                raise SpaceDataError("%s: not a list of log records" % e.key)
            for i, rec in enumerate(e.value):
                if node and not (isinstance(rec, dict) and rec.get("node") == node):
                    continue
                out.append((r["started"], e.index, i, dict(rec, run=r["id"], workflow=r["workflow"])))
    out.sort(key=lambda t: t[:3])
    return [t[3] for t in out]


def trace(space: Space, model: str, instance: str, workflow: Optional[str] = None,
          run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """Events of the instance's runs in causal order.  ``seq`` comes from the Space's commit
    index of each record of events, then the record's key (a commit may hold several records of
    one batch, named in order), then the position in the record: a node that waited for another
    read that node's committed state, so its own commit has a larger index."""
    runs = _select_runs(space, model, instance, workflow, run_id)
    events = []
    for r in runs:
        for e in space.list(keys.traces(r["id"])):
            for i, ev in enumerate(trace_events.expand(e.key, e.value)):
                ev["run"] = r["id"]
                events.append((r["started"], e.index, e.key, i, ev))
    events.sort(key=lambda t: t[:4])
    out = []
    for seq, entry in enumerate(events, 1):
        ev = entry[4]
        ev["seq"] = seq
        out.append(ev)
    return out


def summary(space: Space, run_id: str) -> Dict[str, Any]:
    """What a user wants after a run: status, duration, final states, counts, failures."""
    rec = read_run(space, run_id)
    st = status(space, rec["model"], rec["instance"])
    states = {n: v["state"] for n, v in st["nodes"].items()}
    counts: Dict[str, int] = {}
    for s in states.values():
        counts[s] = counts.get(s, 0) + 1
    return {"run_id": run_id, "model": rec["model"], "instance": rec["instance"],
            "workflow": rec["workflow"], "status": rec["status"], "duration": rec.get("duration"),
            "started": rec["started"], "ended": rec.get("ended"), "states": states, "counts": counts,
            "failed_operations": [e for e in rec.get("errors") or [] if e.get("operation")],
            "errors": rec.get("errors") or []}
