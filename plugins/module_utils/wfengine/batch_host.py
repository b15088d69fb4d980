# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a batch (batch.py) needs of the worker that runs it, and nothing more.

Why a file of its own: the batch is the worker's protocol core, and it used to import the Worker
and reach into its private members, so each module needed the other (an import circle), and
nothing said which part of the worker a batch relies on.  ``BatchHost`` lists exactly that: the
Space client and session, counters, the worker's ownership of nodes, the coordination of its
lanes' commits, lock releases and handoff reservations.  The worker hands a batch an object
that satisfies it (worker_lanes.py); batch.py imports this module only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Protocol, Set, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .operation.executor import Executor
    from .run_context import RunContext
    from .space.base import Space

# What ``enter_commit`` marks and ``leave_commit`` clears: (run, node) pairs written, checked.
Marked = Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]


class BatchHost(Protocol):
    """The worker, as one of its batches sees it."""

    @property
    def id(self) -> str:
        """The worker's id (locks' values, trace records, errors)."""

    @property
    def batch(self) -> int:
        """Most nodes a batch takes (handoffs included)."""

    @property
    def stats(self) -> Dict[str, int]:
        """The worker's counters (``count`` adds to them)."""

    @property
    def executor(self) -> "Executor":
        """Runs the operations without side effects of a batch."""

    @property
    def space(self) -> Space:
        """The worker's Space client."""

    @property
    def session(self) -> Optional[str]:
        """The worker's current session: a batch locks and checks with it."""

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""

    def held(self, run: str, node_ids: Iterable[str]) -> Set[str]:
        """Which of ``node_ids`` a task of this worker holds now (another lane may move them)."""

    def hand_ok(self, run: str, node_id: str, ctx: Optional[RunContext]) -> bool:
        """Whether this worker owns ``node_id`` (it trusts its fact hints for it)."""

    def merged_attributes(self, ctx: RunContext, node_id: str,
                          new: Dict[str, Any]) -> Dict[str, Any]:
        """The node's attributes with ``new`` merged in, as they are written."""

    def enter_commit(self, run: str, checked: Iterable[str], writes: Iterable[str]) -> Marked:
        """Wait until no other lane's commit clashes with this one, then mark it in flight."""

    def leave_commit(self, marked: Marked) -> None:
        """Clear what ``enter_commit`` marked."""

    def release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
        """Delete a lock ``session`` holds, sent again until the Space answers."""

    def reserve(self, run: str, node_ids: List[str], limit: int) -> List[str]:
        """Reserve up to ``limit`` of ``node_ids`` for a handoff."""

    def unreserve(self, run: str, node_ids: Iterable[str]) -> None:
        """Give back reserved nodes."""
