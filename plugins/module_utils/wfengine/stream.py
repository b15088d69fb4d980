# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The events of one run as a stream (``wfctl events``): what ``trace`` shows after the fact,
delivered as the commits happen, with a cursor to reconnect without a gap or a duplicate.

Why the cursor is the Space's commit index: every trace record is written once, by the commit
that made its events happen, and all indexes come from one growing counter; a listing sees every
key whose index is at most the listing's, so "records with an index above the last one shown" is
exactly what is new.  One commit may hold several records (a batch), so an event's cursor is
``INDEX.ORDINAL``: its index and its position among the events of that commit (the run's start
first, then the records by key, each in its own order, the run's end last), stable since a commit
is seen whole or not at all.

Following waits with two blocking queries (``Space.wait`` on ``trace/<run>/``, ``Space.watch``
on the run record): the end of a run moves only the record, so a single query on the trace would
never learn it.  They only wake the reader, which then reads the record first and the trace keys
second: every trace record committed before the run's end is then in the listing, so the end is
the last event shown.
"""
from __future__ import annotations

import queue
import re
import threading
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from . import events as trace_events
from . import keys
from .errors import NotFound
from .records import RunRecord
from .run_records import RUNNING, instance_runs, read_run, run_record

Cursor = Tuple[int, int]
_CURSOR_RE = re.compile(r"^(\d{1,18})(?:\.(\d{1,9}))?$")
# How long one blocking query lasts before it looks whether the reader went away.
_QUERY_SECONDS = 10.0


def parse_cursor(text: str) -> Cursor:
    """``INDEX`` (everything after that commit) or ``INDEX.ORDINAL`` (after that event), as
    printed with each event; anything else is a ValueError naming what is expected."""
    m = _CURSOR_RE.match(text.strip())
    if not m:
        raise ValueError("--since %r: expected INDEX or INDEX.ORDINAL as printed by wfctl events" % text)
    return (int(m.group(1)), int(m.group(2)) if m.group(2) is not None else 1 << 40)


def format_cursor(cursor: Cursor) -> str:
    return "%d.%d" % cursor


def select_run(space: Any, model: str, instance: str, run_id: Optional[str],
               workflow: Optional[str] = None) -> RunRecord:
    """The run to show: ``run_id``, or the instance's latest run (of ``workflow`` when given; a
    playbook asks for "the install" without knowing its id).  An instance without such a run is
    an error, not an empty stream."""
    runs = instance_runs(space, model, instance)
    if run_id:
        for r in runs:
            if r["id"] == run_id:
                return r
        raise NotFound("instance %s/%s has no run %s" % (model, instance, run_id))
    if workflow:
        runs = [r for r in runs if r["workflow"] == workflow]
        if not runs:
            raise NotFound("instance %s/%s has no run of workflow %s" % (model, instance, workflow))
    if not runs:
        raise NotFound("instance %s/%s has no run yet" % (model, instance))
    return runs[-1]


class _Wakeups:
    """Two blocking queries, each in a thread, that put a token in a queue when they return with
    something new; the reader blocks on the queue.  The threads end at their next return once
    ``stop`` is set (daemon threads: a process that exits does not wait for them)."""

    def __init__(self, space: Any, run_id: str):
        self.queue: "queue.Queue[Optional[BaseException]]" = queue.Queue()
        self.stop = threading.Event()
        self.threads = []
        for query, key, name in ((space.wait, keys.traces(run_id), "wf-events-trace"),
                                 (space.watch, keys.run(run_id), "wf-events-run")):
            # The starting index is read here, before the reader's first read: a change between
            # the two then wakes the reader instead of being missed.
            index, dummy = query(key, 0, 0)
            t = threading.Thread(target=self._loop, args=(query, key, index), daemon=True, name=name)
            self.threads.append(t)
        for t in self.threads:
            t.start()

    def _loop(self, query: Any, key: str, index: int) -> None:
        try:
            while not self.stop.is_set():
                new, dummy = query(key, index, _QUERY_SECONDS)
                if new != index:
                    self.queue.put(None)
                    index = new
        except BaseException as exc:    # noqa: B902 - handed to the reader, which raises it
            if not self.stop.is_set():
                self.queue.put(exc)

    def next(self) -> None:
        """Block until a query saw a change; drain what came meanwhile (one read serves all)."""
        item = self.queue.get()
        items = [item]
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for it in items:
            if it is not None:
                raise it


def run_events(space: Any, run_id: str, since: Optional[Cursor] = None,
               follow: bool = False) -> Iterator[Dict[str, Any]]:
    """Yield the run's events after ``since``, in trace order, each with ``cursor`` and ``seq``
    (the same ``seq`` as ``wfctl trace --run``); with ``follow``, keep yielding as commits
    happen and stop after the run's end.  Events: ``kind`` ``run`` (``name`` start or end, the
    end with the run's ``status``), ``state``, ``operation`` (``status`` ok, failed, retry or
    interrupted with the dead ``worker``), ``step``."""
    since = since or (0, -1)
    rec = read_run(space, run_id)
    start = space.get(keys.instance_run(rec["model"], rec["instance"], run_id))
    start_index = start.index if start is not None else 0
    seen: Dict[str, int] = {}                   # trace key -> commit index
    by_index: Dict[int, List[Tuple[str, List[Dict[str, Any]]]]] = {}
    wake: Optional[_Wakeups] = _Wakeups(space, run_id) if follow else None
    cursor = since
    seq = 0
    try:
        while True:
            # The record first, the trace second: all the trace an end follows is then listed.
            entry = space.get(keys.run(run_id))
            if entry is None:
                raise NotFound("unknown run %s" % run_id)
            rec = run_record(entry)
            _read_new(space, keys.traces(run_id), seen, by_index)
            ended = rec["status"] != RUNNING
            items: List[Tuple[Cursor, Dict[str, Any]]] = []
            indexes: Set[int] = set(by_index)
            if start_index:
                indexes.add(start_index)
            if ended:
                indexes.add(entry.index)
            for index in sorted(indexes):
                group = _group(index, rec, by_index, start_index,
                               entry.index if ended else None)
                seq = _stamp(group, run_id, index, cursor, seq, items)
            # What is shown is forgotten (kept: the keys seen, to read only new ones).
            by_index.clear()
            start_index = 0
            for c, ev in items:
                cursor = c
                yield ev
            if ended or not follow:
                return
            if wake is not None:
                wake.next()
    finally:
        if wake is not None:
            wake.stop.set()


def _read_new(space: Any, trace_prefix: str, seen: Dict[str, int],
              by_index: Dict[int, List[Tuple[str, List[Dict[str, Any]]]]]) -> None:
    """Read the records of events not ``seen`` yet, into ``by_index`` (commit index -> (key,
    events) of the records that commit wrote)."""
    new = [k for k in space.keys(trace_prefix) if k not in seen]
    for i in range(0, len(new), 256):
        got = space.get_many(new[i:i + 256])
        for k in new[i:i + 256]:
            e = got.get(k)
            if e is None:
                continue        # removed with the run (wfctl delete): nothing to show
            seen[k] = e.index
            evs = trace_events.expand(k, e.value)
            by_index.setdefault(e.index, []).append((k, evs))


def _group(index: int, rec: RunRecord,
           by_index: Dict[int, List[Tuple[str, List[Dict[str, Any]]]]], start_index: int,
           end_index: Optional[int]) -> List[Dict[str, Any]]:
    """The events of one commit, in order: the run's start (at ``start_index``), the records'
    events by key, the run's end (at ``end_index``, once the run ended)."""
    group: List[Dict[str, Any]] = []
    if index == start_index:
        group.append({"kind": "run", "name": "start", "ts": rec.get("started"),
                      "workflow": rec["workflow"], "model": rec["model"],
                      "instance": rec["instance"]})
    for dummy, evs in sorted(by_index.get(index, [])):
        group.extend(evs)
    if index == end_index:
        group.append({"kind": "run", "name": "end", "ts": rec.get("ended"),
                      "workflow": rec["workflow"], "status": rec["status"],
                      "duration": rec.get("duration"), "counts": rec.get("counts")})
    return group


def _stamp(group: List[Dict[str, Any]], run_id: str, index: int, cursor: Cursor, seq: int,
           items: List[Tuple[Cursor, Dict[str, Any]]]) -> int:
    """Number one commit's events (``seq``, ``cursor``) and add those after ``cursor`` to
    ``items``; returns the last ``seq`` given."""
    for ordinal, ev in enumerate(group):
        if ev["kind"] != "run":
            seq += 1
            ev["seq"] = seq
        ev["run"] = run_id
        ev["cursor"] = format_cursor((index, ordinal))
        if (index, ordinal) > cursor:
            items.append(((index, ordinal), ev))
    return seq
