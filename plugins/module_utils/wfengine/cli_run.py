# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl workflow``, ``update``, ``scale``, ``wait`` and ``cancel``: the commands that start,
follow or stop a run.  They share how a run is followed (``follow``: local workers, progress,
the summary and the exit code), so they live together."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional

from . import api
from .cli_common import inputs, notice, print_json, space_options, ssh_options, worker_ttl
from .errors import WfError
from .instances import split_instance_id
from .records import RunRecord
from .space.base import Space


def local_workers(args: argparse.Namespace) -> int:
    """Workers this process runs until the run ends: ``--workers``, else the engine's default on
    the embedded Space (which has no worker daemons, api.DEFAULT_LOCAL_WORKERS) and 0 on Consul."""
    workers: Optional[int] = args.workers
    if workers is not None:
        return workers
    return api.DEFAULT_LOCAL_WORKERS if args.backend == "embedded" else 0


def print_summary(s: Dict[str, Any]) -> None:
    dur = s.get("duration")
    print("%s %s/%s: %s in %s (run %s)" % (s["workflow"], s["model"], s["instance"], s["status"],
                                           "%.3f s" % dur if dur is not None else "-", s["run_id"]))
    print("  %d node instances: %s" % (sum(s["counts"].values()),
                                       ", ".join("%d %s" % (n, st)
                                                 for st, n in sorted(s["counts"].items()))))
    for e in s.get("errors") or []:
        print("  error on %s: %s" % (e.get("node"), e.get("message") or e.get("operation")))


def _already_done(args: argparse.Namespace, space: Space) -> bool:
    """Without ``--resume``/``--force``: True (and said) when the last run of an install or
    uninstall succeeded; sets ``args.resume`` (and says so) when the last one is to continue."""
    decision, last = api.rerun_decision(space, args.workflow, args.model, args.instance)
    if decision == "done" and last is not None:
        s = api.summary(space, last["id"])
        if args.json:
            print_json(dict(s, ran=False))
        else:
            print("%s %s/%s: already succeeded in run %s; nothing to run (--force runs it again)"
                  % (args.workflow, args.model, args.instance, last["id"]))
        return True
    if decision == "resume" and last is not None:
        notice("the last %s run %s of %s/%s %s: continuing it from where it stopped (--force "
               "starts a new one)"
               % (args.workflow, last["id"], args.model, args.instance, last["status"]))
        args.resume = True
    return False


def cmd_workflow(args: argparse.Namespace, space: Space) -> int:
    opts = space_options(args)
    workers = local_workers(args)
    if args.wait or workers:
        worker_ttl()    # the hosted workers' TTL: a bad WF_WORKER_TTL is refused before any write
    if not args.resume and not args.force and _already_done(args, space):
        return 0
    if not args.wait and workers == 0:
        rec = api.start_workflow(space, args.workflow, args.model, args.instance,
                                 resume=args.resume, max_retries=args.retries)
        if args.json:
            print_json(rec)
        else:
            print("started %s run %s on %s/%s"
                  % (args.workflow, rec["id"], args.model, args.instance))
        return 0
    # Waiting: a run of this workflow already in progress is followed, not refused (the client
    # that started it may be gone); a run of another workflow is a conflict.
    rec, attached = api.start_or_attach(space, args.workflow, args.model, args.instance,
                                        resume=args.resume, max_retries=args.retries)
    if attached:
        notice("run %s of %s on %s/%s is in progress: waiting for it"
               % (rec["id"], args.workflow, args.model, args.instance))
        return follow(args, opts, space, rec, args.workers)
    return follow(args, opts, space, rec, workers)


def cmd_wait(args: argparse.Namespace, space: Space) -> int:
    rec = api.run_to_wait(space, args.model, args.instance)
    return follow(args, space_options(args), space, rec, args.workers)


def follow(args: argparse.Namespace, opts: api.SpaceOptions, space: Space, rec: RunRecord,
           workers: Optional[int]) -> int:
    """Wait for the run (hosting workers as ``attach_run`` decides), print its summary, and
    exit 0 succeeded, 1 failed or canceled, 3 still running at the timeout, 130 interrupted."""
    from .progress import reporter
    progress = reporter(sys.stderr, quiet=getattr(args, "quiet", False), json_output=args.json)
    try:
        if rec["status"] == "running":
            rec = api.attach_run(opts, space, rec["id"], workers=workers, timeout=args.timeout,
                                 progress=progress, ssh_options=ssh_options(args), ttl=worker_ttl(),
                                 notice=notice)
    except KeyboardInterrupt:
        notice("interrupted; run %s goes on (wfctl wait %s %s follows it, and on the embedded "
               "Space finishes it once this process's workers are seen dead)"
               % (rec["id"], rec["model"], rec["instance"]))
        return 130
    if progress:
        progress.close()
    s = api.summary(space, rec["id"])
    if args.json:
        print_json(s)
    else:
        print_summary(s)
    if rec["status"] == "running":
        print("wfctl: timed out after %s s; the run goes on (wfctl wait %s %s)"
              % (args.timeout, rec["model"], rec["instance"]), file=sys.stderr)
        return 3
    return 0 if rec["status"] == "succeeded" else 1


def _scale_removals(args: argparse.Namespace) -> Optional[List[str]]:
    """``scale --remove ID``: node instances of the scaled template, checked here."""
    remove: Optional[List[str]] = getattr(args, "remove", None) or None
    if remove:
        wrong = [n for n in remove if (split_instance_id(n) or ("",))[0] != args.template]
        if wrong:
            raise WfError("%s: not an instance of template %s" % (", ".join(wrong), args.template))
    return remove


def _print_update(args: argparse.Namespace, d: Dict[str, Any]) -> None:
    """The diff of an update in a few lines (or why it resumed an earlier update run)."""
    if d.get("resumed"):
        print("update %s/%s: %s" % (args.model, args.instance, d["message"]))
        return
    rels = d["relationships"]
    print("update %s/%s: %d novel, %d obsolete, %d modified, %d unchanged node instances; "
          "%d novel, %d obsolete relationship instances"
          % (args.model, args.instance, len(d["novel"]), len(d["obsolete"]), len(d["modified"]),
             len(d["unchanged"]), len(rels["novel"]), len(rels["obsolete"])))
    for what in ("novel", "obsolete", "modified"):
        if d[what]:
            print("  %s: %s" % (what, ", ".join(d[what])))
    print("  %s" % d["message"])


def cmd_update(args: argparse.Namespace, space: Space) -> int:
    """``wfctl update`` / ``wfctl scale``: the diff in a few lines, then the run as ``workflow``."""
    counts = None
    new_inputs = inputs(getattr(args, "input", []) or [])
    if args.command == "scale":
        counts = api.scale_counts(space, args.model, args.instance, args.template, count=args.count,
                                  delta=args.delta)
    remove = _scale_removals(args)
    d = api.update_instance(space, args.model, args.instance, inputs=new_inputs or None,
                            counts=counts, remove=remove)
    rec = d.get("run")
    if not args.json:
        _print_update(args, d)
    if rec is None:
        if args.json:
            print_json(d)
        return 0
    workers = local_workers(args)
    if not args.wait and workers == 0:
        if args.json:
            print_json(d)
        return 0
    if args.json:
        # the diff, then (from follow) the run summary: two JSON documents
        print_json({k: v for k, v in d.items() if k != "run"})
    return follow(args, space_options(args), space, rec, workers)


def cmd_cancel(args: argparse.Namespace, space: Space) -> int:
    r = api.cancel_run(space, args.model, args.instance)
    print("run %s (%s) of %s/%s: canceling; operations in flight are stopped"
          % (r["id"], r["workflow"], args.model, args.instance))
    return 0
