# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl timeline``: a Gantt picture of one run, operation attempts per host over time.

Why from the trace and the logs: the trace has one event per operation attempt (``ok``,
``failed``, ``retry``, ``interrupted`` when its worker died), the logs the duration of the
attempts that ran an implementation; nothing else is recorded for the picture, so what it shows
is what ``wfctl trace`` and ``wfctl logs`` say.  A bar:

* ran an implementation: from ``ts - duration`` to ``ts`` of its log record;
* interrupted: from the node's previous event (the checkpoint committed right before the
  attempt) to the event (when another worker retook the node: the worker died in between);
* no implementation: an instant, at its event.

Rows are root hosts (the end of a node's HostedOn chain).  The critical path goes back from the
attempt that ended last: each step to the attempt that ended last before it started, among the
attempts of its own node, of the nodes it waits for (``graph.ordering_graph``: the run's wait
edges) and of its host (implementations on one host run one at a time).

Outputs: ``.json`` (the data), ``.html`` (one file: the data as JSON and the picture as inline
SVG, a little inline script for the details of a bar; nothing fetched), ``.png``/``.svg``
(matplotlib, Agg backend, imported only here: ``pip install wfengine[observe]``).
"""
from __future__ import annotations

import html
import json
from typing import Any, Dict, List, Optional, Set, Tuple

from . import deployments
from .errors import WfError
from .run_reports import logs as run_logs, trace as run_trace
from .run_records import RUNNING
from .stream import select_run
from .records import Nodes

COLOURS = {"ok": "#43a047", "failed": "#e53935", "retry": "#fb8c00", "interrupted": "#8e24aa"}
CRITICAL = "#000000"


def _root(nodes: Nodes, node_id: str) -> str:
    seen = 0
    while seen < 64:
        node = nodes.get(node_id)
        host = node.get("host") if node is not None else None
        if not host:
            break
        node_id = host
        seen += 1
    return node_id


def timeline_data(space: Any, model: str, instance: str, run_id: Optional[str] = None,
                  workflow: Optional[str] = None) -> Dict[str, Any]:
    """The picture's data: ``bars`` (one per operation attempt), ``hosts`` (rows), ``critical``
    (indexes of the bars on the critical path), the run's times and status.  Shared by every
    output and by ``tosca_instance_info`` (its ``timeline`` result), so a playbook's picture
    is the command's."""
    rec = select_run(space, model, instance, run_id, workflow)
    rid = rec["id"]
    events = run_trace(space, model, instance, run_id=rid)
    logs = _logs_by_attempt(space, model, instance, rid)
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head) \
        if head["generation"] == rec["generation"] else {}
    last_ts: Dict[str, float] = {}
    bars: List[Dict[str, Any]] = []
    for ev in events:
        if ev["kind"] == "operation":
            bars.append(_bar(len(bars), ev, logs, nodes, last_ts))
        last_ts[ev["node"]] = float(ev["ts"])
    critical = _critical_path(bars, _waits(space, model, instance, rec["workflow"]))
    for i in critical:
        bars[i]["critical"] = True
    t0 = min([rec["started"]] + [b["start"] for b in bars])
    t1 = max([rec.get("ended") or t0] + [b["end"] for b in bars])
    hosts = sorted({b["host"] for b in bars})
    return {"model": model, "instance": instance, "run": rid, "workflow": rec["workflow"],
            "status": rec["status"], "running": rec["status"] == RUNNING, "t0": t0, "t1": t1,
            "hosts": hosts, "bars": bars, "critical": critical, "colours": COLOURS}


def _logs_by_attempt(space: Any, model: str, instance: str, rid: str
                     ) -> Dict[Tuple[str, str, int], List[Dict[str, Any]]]:
    """The run's operation logs that carry a time and a duration, by (node, operation,
    attempt)."""
    logs: Dict[Tuple[str, str, int], List[Dict[str, Any]]] = {}
    for lg in run_logs(space, model, instance, run_id=rid):
        if isinstance(lg, dict) and isinstance(lg.get("ts"), (int, float)) \
                and isinstance(lg.get("duration"), (int, float)):
            logs.setdefault((str(lg.get("node")), str(lg.get("operation")),
                             int(lg.get("attempt") or 1)), []).append(lg)
    return logs


def _bar(i: int, ev: Dict[str, Any], logs: Dict[Tuple[str, str, int], List[Dict[str, Any]]],
         nodes: Nodes, last_ts: Dict[str, float]) -> Dict[str, Any]:
    """The bar of one operation event: its times and host from the attempt's log when there is
    one (taken from ``logs``), else from the event (an interrupted attempt: since the node's
    previous event, in ``last_ts``)."""
    status = ev.get("status", "ok")
    attempt = int(ev.get("attempt") or 1)
    end = float(ev["ts"])
    start = end
    worker = ev["worker"]
    host = _root(nodes, ev["node"])
    queue = logs.get((ev["node"], ev["name"], attempt)) if status != "interrupted" else None
    implemented = bool(queue)
    if queue:
        lg = queue.pop(0)
        end = float(lg["ts"])
        start = end - float(lg["duration"])
        worker = lg.get("worker") or worker
        if lg.get("host"):
            host = str(lg["host"])
    elif status == "interrupted":
        start = last_ts.get(ev["node"], end)
    rel = ev.get("relationship")
    rel_text = None if not rel else "%s %s->%s" % (rel["type"].rsplit(".", 1)[-1], rel["source"],
                                                   rel["target"])
    return {"i": i, "node": ev["node"], "template": ev["template"], "host": host,
            "operation": ev["name"], "short": ev["name"].rsplit(".", 1)[-1],
            "relationship": rel_text,
            "status": status, "attempt": attempt, "worker": worker,
            "start": start, "end": max(start, end), "implemented": implemented,
            "seq": ev["seq"], "critical": False}


def _waits(space: Any, model: str, instance: str, workflow: str) -> Dict[str, Set[str]]:
    """Node -> the nodes it waits for in the workflow's ordering graph (none for an imperative
    workflow: a node's own attempts only)."""
    waits: Dict[str, Set[str]] = {}
    try:
        from .graph import ordering_graph
        for e in ordering_graph(space, model, instance, workflow)["edges"]:
            waits.setdefault(e["to"], set()).add(e["from"])
    except WfError:
        waits = {}        # imperative workflows: the node's own attempts only
    return waits


def _critical_path(bars: List[Dict[str, Any]], waits: Dict[str, Set[str]]) -> List[int]:
    if not bars:
        return []
    eps = 1e-6
    cur = max(bars, key=lambda b: (b["end"], b["seq"]))
    path = [cur["i"]]
    while True:
        allowed = {cur["node"]} | waits.get(cur["node"], set())
        preds = [b for b in bars if (b["node"] in allowed or b["host"] == cur["host"]) and b["i"] != cur["i"]
                 and b["end"] <= cur["start"] + eps and b["seq"] < cur["seq"]]
        if not preds:
            break
        cur = max(preds, key=lambda b: (b["end"], b["seq"]))
        path.append(cur["i"])
    return sorted(path)


def _lanes(data: Dict[str, Any]) -> Tuple[Dict[int, Tuple[int, int]], List[Tuple[str, int]]]:
    """Bars of one host that overlap go on separate lanes: bar -> (row, lane); rows (host,
    lanes)."""
    placed: Dict[int, Tuple[int, int]] = {}
    rows = []
    for r, host in enumerate(data["hosts"]):
        ends: List[float] = []
        for b in sorted((b for b in data["bars"] if b["host"] == host), key=lambda b: (b["start"], b["seq"])):
            for lane, end in enumerate(ends):
                if b["start"] >= end:
                    ends[lane] = b["end"]
                    break
            else:
                lane = len(ends)
                ends.append(b["end"])
            placed[b["i"]] = (r, lane)
        rows.append((host, max(1, len(ends))))
    return placed, rows


def _tooltip(b: Dict[str, Any], t0: float) -> str:
    what = "%s %s%s attempt %d: %s on %s by %s, %.3f s to %.3f s" % (
        b["node"], b["short"], " [%s]" % b["relationship"] if b["relationship"] else "", b["attempt"],
        b["status"], b["host"], b["worker"], b["start"] - t0, b["end"] - t0)
    if b["status"] == "interrupted":
        what += " (worker died; the end is when another worker retook the node)"
    if b.get("critical"):
        what += " - critical path"
    return what


def to_svg(data: Dict[str, Any]) -> str:
    """The picture as SVG text (no library): one ``rect class="bar"`` per attempt."""
    placed, rows = _lanes(data)
    left, width, lane_h, top = 160, 1000, 14, 40
    span = max(data["t1"] - data["t0"], 1e-3)
    y_of: Dict[int, int] = {}
    y = top
    for r, (host, lanes) in enumerate(rows):
        y_of[r] = y
        y += lanes * lane_h + 10
    height = y + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (left + width + 20, height),
           '<text x="10" y="20" font-size="14">%s</text>' % html.escape(
               "%s of %s/%s, run %s: %s in %.3f s"
               % (data["workflow"], data["model"], data["instance"], data["run"], data["status"], span))]
    for r, (host, lanes) in enumerate(rows):
        out.append('<text x="10" y="%d">%s</text>' % (y_of[r] + 11, html.escape(host)))
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/>' % (
            left, left + width, y_of[r] - 5, y_of[r] - 5))
    for k in range(6):
        x = left + width * k / 5
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%.2f s</text>' % (x, height - 15, span * k / 5))
    for b in data["bars"]:
        r, lane = placed[b["i"]]
        x = left + width * (b["start"] - data["t0"]) / span
        w = max(2.0, width * (b["end"] - b["start"]) / span)
        stroke = ' stroke="%s" stroke-width="2"' % CRITICAL if b.get("critical") else ""
        dash = ' stroke-dasharray="3,2" fill-opacity="0.6"' if b["status"] == "interrupted" else ""
        out.append('<rect class="bar" data-i="%d" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s%s>'
                   '<title>%s</title></rect>' % (b["i"], x, y_of[r] + lane * lane_h, w, lane_h - 2,
                                                 COLOURS.get(b["status"], "#757575"), stroke, dash,
                                                 html.escape(_tooltip(b, data["t0"]))))
        if b["attempt"] > 1 or b["status"] in ("retry", "interrupted"):
            out.append('<text x="%.1f" y="%d" font-size="9">%s</text>' % (
                x + w + 2, y_of[r] + lane * lane_h + 10,
                html.escape("x" if b["status"] == "interrupted" else "#%d" % b["attempt"])))
    legend_x = left
    for status, colour in COLOURS.items():
        out.append('<rect x="%d" y="26" width="10" height="10" fill="%s"/><text x="%d" y="35">%s</text>'
                   % (legend_x, colour, legend_x + 14, status))
        legend_x += 90
    out.append('<rect x="%d" y="26" width="10" height="10" fill="none" stroke="%s" stroke-width="2"/>'
               '<text x="%d" y="35">critical path</text>' % (legend_x, CRITICAL, legend_x + 14))
    out.append("</svg>")
    return "\n".join(out)


_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById("wf-timeline-data").textContent);
  var info = document.getElementById("wf-info");
  document.querySelectorAll("rect.bar").forEach(function (r) {
    r.addEventListener("click", function () {
      var b = data.bars[+r.getAttribute("data-i")];
      info.textContent = JSON.stringify(b, null, 2);
    });
  });
})();
"""


def to_html(data: Dict[str, Any]) -> str:
    """One self-contained HTML file: the data (JSON in a script element), the SVG inline, and
    a few lines of inline script (a click on a bar shows its record); nothing is fetched."""
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n"
            "%s\n<p>Hover a bar for its attempt; click it for the whole record.</p>\n"
            "<pre id=\"wf-info\"></pre>\n"
            "<script type=\"application/json\" id=\"wf-timeline-data\">%s</script>\n"
            "<script>%s</script>\n</body></html>\n"
            % (html.escape("timeline %s %s/%s" % (data["run"], data["model"], data["instance"])),
               to_svg(data), payload, _SCRIPT))


def to_matplotlib(data: Dict[str, Any], path: str, fmt: str) -> None:
    """PNG or SVG drawn by matplotlib (Agg backend: no display needed).  In the SVG each bar is
    a group with the id ``bar-<i>``."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise WfError("--out %s needs matplotlib: pip install 'wfengine[observe]' (or write .html)" % path)
    placed, rows = _lanes(data)
    offsets, y = {}, 0.0
    for r, (host, lanes) in enumerate(rows):
        offsets[r] = y
        y += lanes + 0.5
    span = max(data["t1"] - data["t0"], 1e-3)
    fig, ax = plt.subplots(figsize=(12, max(2.5, 0.35 * y + 1.5)))
    for b in data["bars"]:
        r, lane = placed[b["i"]]
        width = max(b["end"] - b["start"], span / 400)
        drawn = ax.barh(offsets[r] + lane, width, left=b["start"] - data["t0"], height=0.8,
                        color=COLOURS.get(b["status"], "#757575"),
                        edgecolor=CRITICAL if b.get("critical") else "none",
                        linewidth=1.8 if b.get("critical") else 0,
                        hatch="//" if b["status"] == "interrupted" else None,
                        alpha=0.7 if b["status"] == "interrupted" else 1.0)
        drawn.patches[0].set_gid("bar-%d" % b["i"])
        if b["status"] == "interrupted" or b["attempt"] > 1:
            ax.text(b["end"] - data["t0"] + span / 200, offsets[r] + lane,
                    "x %s" % b["worker"] if b["status"] == "interrupted" else "#%d" % b["attempt"],
                    va="center", fontsize=7)
    ax.set_yticks([offsets[r] + (lanes - 1) / 2 for r, (host, lanes) in enumerate(rows)])
    ax.set_yticklabels([host for host, lanes in rows])
    ax.set_xlim(0, (data["t1"] - data["t0"]) * 1.03 + 1e-3)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the run started")
    ax.set_title("%s of %s/%s (run %s): %s"
                 % (data["workflow"], data["model"], data["instance"], data["run"], data["status"]))
    handles = [Patch(color=c, label=s) for s, c in COLOURS.items()]
    handles.append(Patch(facecolor="white", edgecolor=CRITICAL, linewidth=1.8, label="critical path"))
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.grid(axis="x", color="#eeeeee")
    fig.tight_layout()
    fig.savefig(path, format=fmt, dpi=110)
    plt.close(fig)


TEXT_FORMATS = ("html", "svg", "json")


def render_text(data: Dict[str, Any], fmt: str) -> str:
    """The picture as text, without matplotlib: ``html`` (the self-contained page), ``svg`` (the
    page's inline picture) or ``json`` (the data).  What a controller without the observe extra
    can draw from ``tosca_instance_info``'s ``timeline`` (the ``timeline_picture`` filter)."""
    if fmt == "html":
        return to_html(data)
    if fmt == "svg":
        return to_svg(data) + "\n"
    if fmt == "json":
        return json.dumps(data, indent=1, sort_keys=True) + "\n"
    raise WfError("timeline format %r: expected one of %s" % (fmt, ", ".join(TEXT_FORMATS)))


def write(data: Dict[str, Any], path: str, fmt: str) -> None:
    """Write the picture (``fmt``: png, svg, html or json) to ``path``; png and svg are
    matplotlib's."""
    if fmt in ("png", "svg"):
        to_matplotlib(data, path, fmt)
        return
    text = render_text(data, fmt)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
