# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl plan``, ``status``, ``trace``, ``runs``, ``logs`` and ``serves``: the commands that
read the Space and print it (as text, or with ``--json`` as JSON), writing nothing but a
``serves --forget``.  The run observation commands (events, graph, timeline) are observe_cli.py."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, TypeVar

from . import api
from .cli_common import print_json
from .errors import WfError
from .records import RunRecord
from .space.base import Space
from .space.options import SpaceOptions

_R = TypeVar("_R")      # a record of a listing command


def _relationship_note(point: Dict[str, Any]) -> str:
    rel = point.get("relationship")
    if not rel:
        return ""
    return " [%s %s->%s]" % (rel["type"].rsplit(".", 1)[-1], rel["source"], rel["target"])


def prepare_plan(args: argparse.Namespace, opts: SpaceOptions) -> None:
    """Before the Space opens: a plan reads an embedded Space, and must not create one."""
    if opts.backend == "embedded":
        path = opts.embedded_path()
        if not os.path.isfile(path):
            raise WfError("%s: no embedded Space there (a plan reads one, and creates nothing)"
                          % path)


def cmd_plan(args: argparse.Namespace, space: Space) -> int:
    """Print what a run would do (plan.py): a summary and one line per operation by default."""
    from . import plan as planning
    p = api.plan(space, args.workflow, args.model, args.instance)
    if args.json:
        print_json(p)
        return 0
    if args.dot or args.mermaid:
        sys.stdout.write(planning.to_dot(p) if args.dot else planning.to_mermaid(p))
        return 0
    c = p["counts"]
    if "update" in p and not p["update"]["changed"]:
        print("plan update %s/%s: no change to node or relationship instances: no run (nothing "
              "written)" % (args.model, args.instance))
        return 0
    print("plan %s %s/%s: %d operations, %d state changes, %d happens-before edges on %d of %d "
          "node instances (nothing written)"
          % (args.workflow, args.model, args.instance, c["operations"], c["states"], c["edges"],
             p["participants"], p["nodes"]))
    if args.workflow != "update":
        _print_rerun_note(args, space)
    for pt in p["points"]:
        if pt["kind"] == "operation":
            print("  %-12s %s%s" % (pt["node"], pt["name"], _relationship_note(pt)))
    return 0


def _print_rerun_note(args: argparse.Namespace, space: Space) -> None:
    """What ``wfctl workflow`` would do instead of the whole plan (an install already done, or a
    failed one it would continue)."""
    decision, last = api.rerun_decision(space, args.workflow, args.model, args.instance)
    if last is None:
        return
    if decision == "done":
        print("  note: wfctl workflow %s would run nothing (it succeeded in run %s; --force runs "
              "all this)" % (args.workflow, last["id"]))
    elif decision == "resume":
        print("  note: wfctl workflow %s would continue run %s (%s) from where it stopped, not "
              "all this" % (args.workflow, last["id"], last["status"]))


def cmd_status(args: argparse.Namespace, space: Space) -> int:
    st = api.status(space, args.model, args.instance)
    if args.json:
        print_json(st)
        return 0
    last = st.get("last_run")
    if last:
        print("%s/%s: last run %s %s %s"
              % (args.model, args.instance, last["workflow"], last["status"], last["id"]))
    for nid, n in st["nodes"].items():
        rels = ", ".join("%s->%s" % (r["requirement"], r["target"]) for r in n["relationships"])
        print("  %-16s %-12s %-28s %s" % (nid, n["state"], n["type"], rels))
    for h in st.get("waiting_hosts") or []:
        print("  waiting for host %s%s since %s: served by %s, not alive (%d node instances)"
              % (h["host"], " (%s)" % h["address"] if h.get("address") else "",
                 time.strftime("%H:%M:%S", time.localtime(h["since"] or 0)),
                 ", ".join(h["served_by"]), len(h["nodes"])))
    for name, out in sorted((st.get("outputs") or {}).items()):
        shown = json.dumps(out["value"]) if "value" in out else "(%s)" % out["error"]
        print("  output %s: %s" % (name, shown))
    for line in section_lines(st.get("sections") or {}):
        print("  " + line)
    for line in st.get("warnings") or []:
        print("  warning: %s" % line)
    return 0


def section_lines(sections: Dict[str, Any]) -> List[str]:
    """What the model declares that the engine keeps without acting on it, one line each."""
    lines = []
    for name, g in sorted((sections.get("groups") or {}).items()):
        lines.append("group %s: %s, members %s (stored, not acted on)"
                     % (name, g.get("type"), ", ".join(g.get("members") or []) or "none"))
    for item in sections.get("policies") or []:
        for name, p in item.items():
            lines.append("policy %s: %s, targets %s (stored, not enforced)"
                         % (name, p.get("type"), ", ".join(p.get("targets") or []) or "none"))
    sub = sections.get("substitution_mappings")
    if sub:
        lines.append("substitution_mappings: as %s (stored, not used)" % sub.get("node_type"))
    for key, value in sorted((sections.get("metadata") or {}).items()):
        lines.append("metadata %s: %s" % (key, json.dumps(value)))
    return lines


def _records(args: argparse.Namespace, records: Sequence[_R],
             lines: Callable[[_R], Iterable[str]]) -> int:
    """The listing commands (trace, runs, logs, serves) print alike: ``--json`` the records as the
    api returns them, else each record's lines."""
    if args.json:
        print_json(records)
        return 0
    for record in records:
        for line in lines(record):
            print(line)
    return 0


def cmd_trace(args: argparse.Namespace, space: Space) -> int:
    events = api.trace(space, args.model, args.instance, workflow=args.workflow, run_id=args.run)
    return _records(args, events, _trace_lines)


def _trace_lines(ev: Dict[str, Any]) -> Iterator[str]:
    """One trace event: sequence, time, workflow, node, kind, name, worker."""
    when = time.strftime("%H:%M:%S", time.localtime(ev["ts"]))
    fields = (ev["seq"], when, ev["workflow"], ev["node"], ev["kind"], ev["name"],
              _relationship_note(ev), ev["worker"])
    yield "%5d %s %-10s %-10s %-9s %s%s (%s)" % fields


def cmd_runs(args: argparse.Namespace, space: Space) -> int:
    return _records(args, api.instance_runs(space, args.model, args.instance), _run_lines)


def _run_lines(r: RunRecord) -> Iterator[str]:
    """One run record: id, workflow, status, duration."""
    dur = r.get("duration")
    yield ("%s %-10s %-10s %s"
           % (r["id"], r["workflow"], r["status"], "%.3f s" % dur if dur else "-"))


def cmd_logs(args: argparse.Namespace, space: Space) -> int:
    records = api.logs(space, args.model, args.instance, node=args.node, run_id=args.run)
    return _records(args, records, _log_lines)


def _log_lines(r: Dict[str, Any]) -> Iterator[str]:
    """One operation attempt, then its output and where its full log is."""
    yield "%s %-10s %-10s %s attempt %s: %s exit %s in %.3f s on %s" % (
        time.strftime("%H:%M:%S", time.localtime(r["ts"])), r["workflow"], r["node"],
        r["operation"], r["attempt"], r["status"], r["exit_code"], r["duration"], r["worker"])
    for line in (r.get("output") or "").rstrip("\n").splitlines():
        yield "    | " + line
    if r.get("log_file"):
        yield "    full log: %s" % r["log_file"]


def cmd_serves(args: argparse.Namespace, space: Space) -> int:
    if args.forget:
        n = api.forget_served(space, args.forget)
        print("%s: %d claim(s) removed" % (args.forget, n))
        return 0
    return _records(args, api.served_hosts(space), _served_lines)


def _served_lines(r: Dict[str, Any]) -> Iterator[str]:
    """One served host: its name, its worker, whether that worker is alive."""
    yield "%-24s %-24s %s" % (r["name"], r["worker"], "alive" if r["alive"] else "not alive")
