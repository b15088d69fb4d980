# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's public face, used by ``wfctl`` and by the Ansible modules alike.

Every function takes an open Space and returns JSON-ready dicts; every failure is a ``WfError``
whose text is one line naming what is wrong.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import catalog, deployments, keys, run_reports, runs
from .errors import Conflict, NotFound, WfError
from .imperative import is_imperative
from .operation.executor import Executor
from .records import RunRecord
from . import plan as _plan
from . import timeline as _timeline
from . import updates as _updates
from .space import open_space as _open_backend
from .space.options import SpaceOptions  # declared with the environment variables it reads
from .space.base import Space, op_delete_tree
from .worker_options import WorkerOptions

# Re-exported operations (the rest of this module adds what needs more than one layer).
upload_library = catalog.upload_library
remove_library = catalog.remove_library
upload_model = catalog.upload_model
remove_model = catalog.remove_model
compile_model = catalog.compile_model
create_instance = deployments.create_instance
delete_instance = deployments.delete_instance
status = run_reports.status
trace = run_reports.trace
instance_runs = runs.instance_runs
wait_run = runs.wait_run
summary = run_reports.summary
cancel_run = runs.cancel_run
resume_run = runs.resume_run
logs = run_reports.logs
current_run = runs.current_run
live_workers = runs.live_workers
plan = _plan.plan
plan_operations = _plan.operations
read_only = _plan.ReadOnlySpace
instance_installed = _updates.installed
update_instance = _updates.update
update_diff = _updates.compute
scale_counts = _updates.scale_counts
timeline = _timeline.timeline_data

# Workers a client runs in its own process for a run it starts and waits for on the embedded
# Space, which has no worker daemons (``wfctl workflow/update/scale`` without ``--workers``, the
# modules without ``workers``); on Consul the default is 0.  One value for both (docs/decisions.md).
DEFAULT_LOCAL_WORKERS = 1


def open_space(opts: SpaceOptions) -> Space:
    if opts.backend == "embedded":
        return _open_backend("embedded", path=opts.embedded_path(), prefix=opts.prefix)  # extra: consul only
    if opts.backend == "consul":
        return _open_backend("consul", **opts.consul_kwargs())
    raise WfError("unknown backend %r (embedded or consul)" % opts.backend)


def start_workflow(space: Space, workflow: str, model: str, instance: str,
                   resume: bool = False, max_retries: int = 0) -> RunRecord:
    """Start a run (or, with ``resume``, continue the last failed one from its failed steps);
    refused while another run of the instance is in progress."""
    if resume:
        return runs.resume_run(space, workflow, model, instance)
    return runs.start_run(space, workflow, model, instance, max_retries=max_retries)


def start_or_attach(space: Space, workflow: str, model: str, instance: str, resume: bool = False,
                    max_retries: int = 0) -> Tuple[RunRecord, bool]:
    """Start a run, or find the run of ``workflow`` already in progress on the instance; returns
    (record, attached).  A run of another workflow in progress is a conflict that names it."""
    for dummy in range(2):
        cur = runs.current_run(space, model, instance)
        if cur is not None:
            if cur["workflow"] == workflow:
                return cur, True
            raise Conflict("instance %s/%s already has a run in progress: %s (%s); %s cannot "
                           "start before it ends (wfctl wait %s %s, or wfctl cancel %s %s)"
                           % (model, instance, cur["id"], cur["workflow"], workflow, model, instance,
                              model, instance))
        try:
            return start_workflow(space, workflow, model, instance, resume=resume,
                                  max_retries=max_retries), False
        except Conflict:
            if runs.current_run(space, model, instance) is None:
                raise       # not a run in progress: the refusal says why
    raise Conflict("instance %s/%s: runs keep starting and ending; retry" % (model, instance))


CONVERGING = ("install", "uninstall")


def rerun_decision(space: Space, workflow: str, model: str, instance: str
                   ) -> Tuple[str, Optional[RunRecord]]:
    """What ``wfctl workflow`` does for a workflow that converges the deployment (install,
    uninstall), judged from the instance's last run: ``("done", run)`` when it is a succeeded
    run of that workflow on the current generation (nothing to run; ``--force`` runs it again),
    ``("resume", run)`` when it is a failed or canceled one (continue it: what succeeded does not
    run again), else ``("start", None)``.  Why only these two: running them again cannot change
    a deployment they already converged, while a custom workflow (a backup, a restart) is run
    for its effect each time."""
    if workflow not in CONVERGING:
        return "start", None
    recs = runs.instance_runs(space, model, instance)
    if not recs:
        return "start", None
    last = recs[-1]
    head = deployments.instance_head(space, model, instance)
    if workflow == "install" and last.get("workflow") == "update" and last.get("status") == runs.SUCCEEDED \
            and head.get("update_generation") == last.get("generation") \
            and any(r.get("workflow") == "install" and r.get("status") == runs.SUCCEEDED for r in recs):
        return "done", last      # installed, then updated to the current generation
    if last.get("workflow") != workflow or last.get("generation") != head["generation"]:
        return "start", None
    if last.get("status") == runs.SUCCEEDED:
        return "done", last
    if last.get("status") in (runs.FAILED, runs.CANCELED):
        stored = catalog.read_rules(space, model, last["model_digest"], workflow) or {}
        if not is_imperative(stored):
            return "resume", last
    return "start", None


def run_to_wait(space: Space, model: str, instance: str) -> RunRecord:
    """The run ``wfctl wait`` follows: the one in progress, else the instance's last run."""
    rec = runs.current_run(space, model, instance)
    if rec is not None:
        return rec
    recs = runs.instance_runs(space, model, instance)
    if not recs:
        raise NotFound("instance %s/%s has no run" % (model, instance))
    return recs[-1]


def _local_worker_options(threads: Optional[int], ttl: Optional[float]) -> WorkerOptions:
    """The options of the workers this process runs: WorkerOptions' defaults, but for what the
    caller gave (not the WF_WORKER_* variables: those are ``wfctl worker``'s)."""
    given: Dict[str, Any] = {"threads": threads, "ttl": ttl}
    return WorkerOptions(**{k: v for k, v in given.items() if v is not None})


def attach_run(opts: SpaceOptions, space: Space, run_id: str, workers: Optional[int] = None,
               timeout: Optional[float] = None,
               progress: Optional[Callable[[Dict[str, Any]], None]] = None,
               ssh_options: Optional[Any] = None, ttl: Optional[float] = None,
               threads: Optional[int] = None, executor: Optional[Executor] = None,
               notice: Optional[Callable[[str], None]] = None) -> RunRecord:
    """Wait for a run that may have been started elsewhere (``wfctl wait``, a second ``--wait``).

    ``workers`` N > 0 runs N workers here at once; 0 never; None (the default) runs one here only
    on the embedded Space and only when the run has no live worker: the workers of an embedded
    run live in the process that waited on it, and when that process was killed or interrupted
    their sessions expire (after their TTL), their registrations and node locks go with them,
    and nothing else would ever finish the run.  On Consul the worker daemons do the work; a
    run with none alive is reported once (``notice``) and waited for.  ``threads`` and ``ttl``
    of these workers: WorkerOptions' defaults unless given."""
    from .worker import run_workers, stop_workers
    wopts = _local_worker_options(threads, ttl)
    stop = threading.Event()
    state = {"started": False, "told": False}
    started: List[Any] = []
    say = notice or (lambda text: None)

    def start(n: int) -> None:
        started.extend(run_workers(lambda: open_space(opts), n, stop, wopts, executor=executor,
                                   ssh_options=ssh_options))
        state["started"] = True

    def tick(rec: RunRecord) -> None:
        if state["started"] or workers == 0 or runs.live_workers(space):
            return
        if opts.backend == "embedded":
            say("run %s: no live worker (the process that ran its workers is gone); starting "
                "a local worker to finish it" % run_id)
            start(1)
        elif not state["told"]:
            state["told"] = True
            say("run %s: no live worker; it goes on when one starts (wfctl worker)" % run_id)

    try:
        # Inside the try: a Ctrl-C that lands while the workers start must stop them too, or
        # they would go on serving while the interpreter exits (their pool threads are joined).
        if workers:
            start(workers)
        rec = runs.read_run(space, run_id)
        if rec["status"] == runs.RUNNING:
            tick(rec)
        return runs.wait_run(space, run_id, timeout=timeout, progress=progress, tick=tick)
    finally:
        stop.set()
        stop_workers(started)


def last_run(space: Space, model: str, instance: str,
             workflow: Optional[str] = None) -> Optional[RunRecord]:
    recs = runs.instance_runs(space, model, instance)
    if workflow:
        recs = [r for r in recs if r["workflow"] == workflow]
    return recs[-1] if recs else None


def run_with_local_workers(opts: SpaceOptions, space: Space, run_id: str, workers: int,
                           timeout: Optional[float] = None, threads: Optional[int] = None,
                           executor: Optional[Executor] = None,
                           progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                           ssh_options: Optional[Any] = None,
                           ttl: Optional[float] = None) -> RunRecord:
    """Run ``workers`` workers in this process until the run ends (embedded ``--workers N``);
    ``threads`` and ``ttl`` as for attach_run."""
    from .worker import run_workers, stop_workers
    wopts = _local_worker_options(threads, ttl)
    stop = threading.Event()
    started: List[Any] = []
    try:
        started.extend(run_workers(lambda: open_space(opts), workers, stop, wopts,
                                   executor=executor, ssh_options=ssh_options))
        return runs.wait_run(space, run_id, timeout=timeout, progress=progress)
    finally:
        stop.set()
        stop_workers(started)


def served_hosts(space: Space) -> List[Dict[str, Any]]:
    """Claims of ``wfctl worker --serves``: name, worker, since, whether that worker is alive."""
    alive = {k[len(keys.WORKERS):] for k in space.keys(keys.WORKERS)}
    out = []
    for e in space.list(keys.SERVED):
        name, dummy, wid = e.key[len(keys.SERVED):].rpartition("/")
        since = e.value.get("since") if isinstance(e.value, dict) else None
        out.append({"name": name, "worker": wid, "alive": wid in alive, "since": since})
    return sorted(out, key=lambda r: (r["name"], r["worker"]))


def forget_served(space: Space, name: str) -> int:
    """Remove every claim on ``name``; returns how many there were."""
    found = space.keys(keys.SERVED + name + "/")
    if found:
        space.txn([op_delete_tree(keys.SERVED + name + "/")])
    return len(found)


def workflows_of(space: Space, model: str) -> List[str]:
    return list(catalog.model_head(space, model).get("workflows", []))


__all__ = ["DEFAULT_LOCAL_WORKERS",
           "SpaceOptions", "open_space", "start_workflow", "last_run", "run_with_local_workers",
           "start_or_attach", "run_to_wait", "attach_run", "current_run", "live_workers",
           "upload_library", "remove_library", "upload_model", "remove_model", "compile_model",
           "create_instance", "delete_instance", "status", "trace", "instance_runs", "wait_run",
           "summary", "workflows_of", "served_hosts", "forget_served", "cancel_run", "resume_run", "logs", "timeline", "NotFound", "WfError"]
