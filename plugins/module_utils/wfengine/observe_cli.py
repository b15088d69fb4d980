# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl events``, ``graph`` and ``timeline``: seeing a run (docs/observability.md).

Kept apart from the other commands so that the observation commands are one hook in
cli_parser.py (``add_parsers``, each command naming its function; ``run`` dispatches by name);
errors are the engine's (``WfError``: one line, exit 2) like every other command."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, Optional

from .errors import WfError

COMMANDS = ("events", "graph", "timeline")


class UsageError(WfError):
    """A bad option value found after parsing (a file name, a missing tool)."""


def _cursor(text: str) -> Any:
    from .stream import parse_cursor
    try:
        return parse_cursor(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def add_parsers(sub: Any) -> None:
    """Add the observation commands to wfctl's subcommands, each naming its function."""
    s = sub.add_parser("events", help="the events of a run as they commit (--follow until it ends)")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--run", help="run id (default: the instance's latest run)")
    s.add_argument("--follow", "-f", action="store_true",
                   help="keep showing events as they commit; ends with the run")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.add_argument("--since", type=_cursor, default=None, metavar="CURSOR",
                   help="only events after this cursor (INDEX or INDEX.ORDINAL, as printed): "
                        "reconnecting gives no gap and no duplicate")
    s.set_defaults(func=cmd_events)

    s = sub.add_parser("graph", help="the ordering graph of a workflow (what waits for what)")
    s.add_argument("model")
    s.add_argument("instance", nargs="?", help="node instances of this deployment (default: templates)")
    s.add_argument("--workflow", default="install")
    s.add_argument("--format", choices=["dot", "mermaid", "svg"], default="dot")
    s.add_argument("--out", metavar="FILE", help="write there instead of standard output")
    s.set_defaults(func=cmd_graph)

    s = sub.add_parser("timeline", help="a Gantt picture of a run: operation attempts per host")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--run", help="run id (default: the instance's latest run)")
    s.add_argument("--workflow", help="without --run: the latest run of this workflow")
    s.add_argument("--out", required=True, metavar="FILE.(png|svg|html|json)")
    s.set_defaults(func=cmd_timeline)


def run(args: argparse.Namespace, space: Any) -> int:
    """Run one of ``COMMANDS``."""
    if args.command == "events":
        return cmd_events(args, space)
    if args.command == "graph":
        return cmd_graph(args, space)
    return cmd_timeline(args, space)


def _event_line(ev: Dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(ev["ts"])) if ev.get("ts") else "--:--:--"
    if ev["kind"] == "run":
        what = "run %s %s" % (ev["name"], ev["workflow"])
        if ev["name"] == "end":
            what += " %s%s" % (ev["status"], " in %.3f s" % ev["duration"] if ev.get("duration") else "")
        return "%-14s %s %s" % (ev["cursor"], when, what)
    rel = ev.get("relationship")
    extra = " [%s %s->%s]" % (rel["type"].rsplit(".", 1)[-1], rel["source"], rel["target"]) if rel else ""
    status = ev.get("status")
    who = "(%s)" % ev["worker"]
    if status == "interrupted":
        # (the trace names the dead worker, not the one that found the attempt cut)
        who = "(worker %s died during attempt %s)" % (ev["worker"], ev.get("attempt"))
    if status:
        extra += " " + status
    fields = (ev["cursor"], when, ev["node"], ev["kind"], ev["name"], extra, who)
    return "%-14s %s %-10s %-9s %s%s %s" % fields


def cmd_events(args: argparse.Namespace, space: Any) -> int:
    from .stream import run_events, select_run
    rec = select_run(space, args.model, args.instance, args.run)
    for ev in run_events(space, rec["id"], since=args.since, follow=args.follow):
        if args.json:
            sys.stdout.write(json.dumps(ev, sort_keys=True) + "\n")
        else:
            sys.stdout.write(_event_line(ev) + "\n")
        sys.stdout.flush()       # a follower reads each event when it commits
    return 0


def _write(out: Optional[str], text: str) -> None:
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def cmd_graph(args: argparse.Namespace, space: Any) -> int:
    from . import graph
    g = graph.ordering_graph(space, args.model, args.instance, args.workflow)
    if args.format == "mermaid":
        _write(args.out, graph.to_mermaid(g))
    elif args.format == "dot":
        _write(args.out, graph.to_dot(g))
    else:
        svg = graph.to_svg(g)
        _write(args.out, svg)
    return 0


def cmd_timeline(args: argparse.Namespace, space: Any) -> int:
    from . import timeline
    out = args.out
    ext = out.rsplit(".", 1)[-1].lower() if "." in out else ""
    if ext not in ("png", "svg", "html", "json"):
        raise UsageError("--out %s: the picture's format comes from its extension: .png, .svg, .html "
                         "or .json" % out)
    data = timeline.timeline_data(space, args.model, args.instance, args.run, args.workflow)
    timeline.write(data, out, ext)
    sys.stdout.write("%s: %d operation attempts of run %s on %d hosts\n"
                     % (out, len(data["bars"]), data["run"], len(data["hosts"])))
    return 0
