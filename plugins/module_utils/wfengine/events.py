# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trace records: how the events of a run are stored under ``trace/<run>/``.

Why a compact form: a 2,000-node install records about 42,000 events.  As JSON objects repeating
their field names, the workflow and the worker, they were 10 MB written through the Space (Raft
on Consul) and a tenth of a worker's CPU went to encoding them.  A record now holds what its events
share once (workflow, worker) and each event as a row; readers get the same event dictionaries as
before (``expand``).

A row is ``[ts, node, template, kind, name, status, relationship, extra?]`` where
``relationship`` is ``null`` or ``[type, source, target]`` and the optional ``extra`` object
holds rare fields (``attempt``, or the ``worker`` of an interrupted attempt).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from .errors import SpaceDataError
from .records import NodeInstance, Relationship

FORMAT = 2
_KINDS = ("state", "operation", "step")   # step: end of an imperative workflow step


def event(node: NodeInstance, kind: str, name: str, rel: Optional[Relationship],
          status: str = "ok", **extra: Any) -> List[Any]:
    """One event row (``node`` and ``rel`` as stored by ``instances``)."""
    row: List[Any] = [round(time.time(), 4), node["id"], node["template"], kind, name, status,
                      None if rel is None else [rel["type"], rel["source"], rel["target"]]]
    if extra:
        row.append(extra)
    return row


def record(workflow: str, worker: str, rows: List[List[Any]]) -> Dict[str, Any]:
    """The value of one trace key: ``rows`` in causal order."""
    return {"format": FORMAT, "workflow": workflow, "worker": worker, "events": rows}


def _bad(key: str, what: str) -> SpaceDataError:
    return SpaceDataError("%s: not a trace record (%s)" % (key, what))


def expand(key: str, value: Any) -> List[Dict[str, Any]]:
    """The events of a stored record, validated, as dictionaries (``ts``, ``workflow``, ``node``,
    ``template``, ``kind``, ``name``, ``worker``, ``relationship``, ``status`` unless ok, extras).
    A list of such dictionaries (the format before records) is accepted as it is."""
    if isinstance(value, list):
        if not all(isinstance(ev, dict) and isinstance(ev.get("name"), str) for ev in value):
            raise _bad(key, "bad event")
        return [dict(ev) for ev in value]
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise _bad(key, "unknown format")
    workflow, worker, rows = value.get("workflow"), value.get("worker"), value.get("events")
    if not isinstance(workflow, str) or not isinstance(worker, str) or not isinstance(rows, list):
        raise _bad(key, "workflow, worker or events missing")
    return [_row_event(key, row, workflow, worker) for row in rows]


def _row_event(key: str, row: Any, workflow: str, worker: str) -> Dict[str, Any]:
    """One stored event row, validated, as a dictionary (``expand``)."""
    if (not isinstance(row, list) or len(row) not in (7, 8)
            or not isinstance(row[0], (int, float)) or isinstance(row[0], bool)
            or not all(isinstance(x, str) for x in row[1:6]) or row[3] not in _KINDS):
        raise _bad(key, "bad event row")
    rel = row[6]
    if rel is not None and not (isinstance(rel, list) and len(rel) == 3
                                and all(isinstance(x, str) for x in rel)):
        raise _bad(key, "bad relationship in an event")
    ev: Dict[str, Any] = {
        "ts": row[0], "workflow": workflow, "node": row[1], "template": row[2],
        "kind": row[3], "name": row[4], "worker": worker,
        "relationship": None if rel is None else {"type": rel[0], "source": rel[1],
                                                  "target": rel[2]}}
    if row[5] != "ok":
        ev["status"] = row[5]
    if len(row) == 8:
        if not isinstance(row[7], dict):
            raise _bad(key, "bad extra fields in an event")
        ev.update(row[7])
    return ev
