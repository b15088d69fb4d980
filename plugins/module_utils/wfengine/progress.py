# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``wfctl workflow --wait`` and ``wfctl wait`` show while the run goes on.

Why three forms: a person at a terminal wants a live bar (nodes done of all, ready, running,
failed, operations done and running, the states, elapsed time and an estimate of the rest); a
log file or CI wants a line only when something changed, at most every few seconds, never
carriage returns; a script wants
nothing (``--quiet``).  The reports come from ``runs.wait_run`` (about once a second, from the
facts and the queue); nothing here reads the Space.  The bar is drawn by ``rich`` when it is
installed (Ansible brings it), else as one rewritten line.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, TextIO, Tuple

# A plain line at most this often, unless failures appear.
PLAIN_EVERY = 5.0


def _states(p: Dict[str, Any]) -> str:
    states = p.get("states") or {}
    return ", ".join("%d %s" % (n, s) for s, n in sorted(states.items(), key=lambda t: (-t[1], t[0])))


def _operations(p: Dict[str, Any]) -> str:
    return "operations: %d done, %d running" % (p.get("operations_done", 0), p.get("operations_running", 0))


class Reporter:
    """Called with each progress report; ``close`` ends the display (before the summary)."""

    def __init__(self, stream: TextIO, tty: bool, quiet: bool):
        self.stream = stream
        self.tty = tty
        self.quiet = quiet
        self.started = time.monotonic()
        self._last: Optional[Tuple[Any, ...]] = None
        self._last_at = 0.0
        self._rich: Any = None
        self._task: Any = None
        self._shown = False

    def __call__(self, p: Dict[str, Any]) -> None:
        if self.quiet:
            return
        if self.tty:
            self._live(p)
            return
        key = (p["done"], p["total"], p["ready"], p["running"], p.get("failed", 0),
               p.get("operations_done", 0), p.get("operations_running", 0))
        now = time.monotonic()
        if key == self._last or (now - self._last_at < PLAIN_EVERY
                                 and self._last is not None and key[4] == self._last[4]):
            return
        self._last, self._last_at = key, now
        self.stream.write("%s: %d/%d nodes done, %d ready, %d running, %d failed; %s; %.0f s (%s)\n"
                          % (p["workflow"], p["done"], p["total"], p["ready"], p["running"],
                             p.get("failed", 0), _operations(p), now - self.started, _states(p)))
        self.stream.flush()

    def _live(self, p: Dict[str, Any]) -> None:
        extra = "%d ready, %d running, %d failed; %s" % (p["ready"], p["running"], p.get("failed", 0),
                                                         _operations(p))
        if self._rich is None:
            try:
                from rich.console import Console
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)
            except ImportError:
                self._rich = False
            else:
                self._rich = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                      TextColumn("nodes, {task.fields[extra]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[states]}"),
                                      console=Console(file=self.stream), transient=False)
                self._rich.start()
                self._task = self._rich.add_task(p["workflow"], total=p["total"], extra=extra, states="")
        if self._rich:
            self._rich.update(self._task, completed=p["done"], total=p["total"], extra=extra,
                              states=_states(p))
            return
        self._shown = True
        self.stream.write("\r%s: %d/%d nodes done, %s   " % (p["workflow"], p["done"], p["total"], extra))
        self.stream.flush()

    def close(self) -> None:
        if self._rich:
            self._rich.stop()
        elif self._shown:
            self.stream.write("\n")


def reporter(stream: TextIO, quiet: bool = False, json_output: bool = False) -> Optional[Reporter]:
    """The reporter for ``stream`` (a live bar on a terminal, plain lines otherwise), or None
    when nothing is to be shown (``--quiet``, ``--json``: the output is for a program)."""
    if quiet or json_output:
        return None
    isatty = getattr(stream, "isatty", None)
    return Reporter(stream, tty=bool(isatty and isatty()), quiet=False)
