# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One node of a batch (``Member``) and the limits a batch keeps to.

Why a file of its own: the batch's steps (batch.py: claim, read, advance, wake-ups; and
batch_commit.py: the commit) all work on members, and their limits are one set of figures
sized together against the Space's transaction limits.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple

from . import keys
from .records import Fact, NodeInstance, new_fact
from .space.base import Entry

# Members of one group (nodes whose progress depends on each other's uncommitted states): a
# group is committed in one transaction, which holds about 4 operations per member.
GROUP_MAX = 12
# Above this many candidates, a member wakes all of them instead of reading their facts.
CANDS_MAX = 16
# Trace events kept in one transaction (an event row, events.py, is about 100 bytes of JSON, 250
# with long names; Consul accepts about 384 KiB of values per transaction): a group stops
# advancing at GROUP_EVENTS (its nodes keep their ready tuples and go on in a later step), and
# records hold at most RECORD_EVENTS each.
GROUP_EVENTS = 400
RECORD_EVENTS = 200
TXN_EVENTS = 600


class Member:
    """One node of a batch, between its claim and its commit."""

    __slots__ = ("id", "ready", "lock", "fact", "index", "node", "prog", "before", "new", "group",
                 "reached_now", "events", "wakes", "pause", "keep_ready", "queued", "need_read",
                 "attributes", "skip", "outbox", "cands", "checks", "hand", "keep")

    def __init__(self, node_id: str, ready: Entry, lock: str):
        self.id = node_id
        self.ready = ready
        self.lock = lock
        self.fact: Fact = new_fact(node_id)     # as read by the batch
        self.index = 0
        self.node: NodeInstance = {}      # type: ignore[typeddict-item]  # read with the fact
        self.prog: List[Any] = []
        self.before: Tuple[Any, ...] = ()
        self.new = False
        self.group: "Member" = self
        self.reached_now: Set[str] = set()
        self.events: List[Tuple[int, List[Any]]] = []   # (order, row of events.py)
        self.wakes: Dict[str, None] = {}      # ordered set of nodes to wake at commit
        self.pause = False                    # stopped before an operation with side effects
        self.keep_ready = False               # woken meanwhile: the ready tuple stays
        self.queued = False
        self.need_read = False
        self.attributes: Dict[str, Any] = {}
        self.skip = False                     # done or failed: nothing to run
        self.outbox = False                   # wake-ups go through an outbox tuple
        # Nodes outside the batch that may wait for a state this member reached: woken only if
        # their fact says they wait for it; the others' facts are checked unchanged at commit.
        self.cands: Dict[str, None] = {}
        self.checks: Dict[str, int] = {}      # node -> index its fact must still have (0: absent)
        self.hand: Dict[str, None] = {}       # woken nodes this commit also locks (handoff)
        self.keep = False                     # woken meanwhile: lock kept, evaluated next


def fact_entry(run_id: str, m: Member) -> Entry:
    """The committed fact of a paused member, as the single-node path reads it."""
    return Entry(keys.fact(run_id, m.id), m.fact, m.index)
