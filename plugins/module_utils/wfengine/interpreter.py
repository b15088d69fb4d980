# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interpreter of a node's program, shared by the worker's two ways of advancing a node.

Why a file of its own: a batch (batch.py) advances many nodes in memory and a single step
(worker_single.py) advances one node that runs operations with side effects, but what an
instruction does to the fact is the same on both paths: a state is reached, a guard runs or
skips its step, a wait passes or stops the node, the program's end settles ``done``.  Only how
each path emits events, reads other facts, runs operations and bounds its commits differs; those
are the ``ProgramSteps`` a path gives.  One loop, so both paths cannot drift apart.
"""
from __future__ import annotations

from typing import List, Optional, Protocol

from . import imperative
from .errors import SpaceDataError
from .records import Fact
from .rules import CALL, RCALL, STATE, WAIT, Instr


class ProgramSteps(Protocol):
    """What one path does at each kind of instruction (the fact is changed by the loop)."""

    def room(self) -> Optional[bool]:
        """Before each instruction: True to go on, False to stop here (the node commits what
        it did), None to abandon the node (it is no longer this worker's)."""

    def on_state(self, ins: Instr) -> None:
        """A state (or an imperative step's end marker) was just reached: trace it, wake."""

    def guard(self, ins: Instr) -> Optional[bool]:
        """Whether an imperative step runs; None to stop until the facts it needs are read."""

    def call(self, ins: Instr) -> Optional[bool]:
        """Run an operation (the path moves pc): True to go on, False to stop, None to abandon."""

    def wait(self, ins: Instr, prog: List[Instr], pc: int) -> Optional[bool]:
        """Whether a wait passes; None to stop until the awaited facts are read."""


def run_program(fact: Fact, prog: List[Instr], steps: ProgramSteps) -> bool:
    """Advance ``fact`` through ``prog`` from its pc as far as ``steps`` allow.  False when the
    node was abandoned (the fact then says nothing worth committing); True otherwise, with
    ``done`` settled."""
    fact["waiting"] = None
    while fact["pc"] < len(prog):
        room = steps.room()
        if room is None:
            return False
        if not room:
            break
        ins = prog[fact["pc"]]
        if ins.op == STATE:
            if not imperative.is_marker(ins.name):
                fact["state"] = ins.name
            fact["reached"].append(ins.name)
            fact["pc"] += 1
            steps.on_state(ins)
        elif ins.op == imperative.GUARD:
            runs = steps.guard(ins)
            if runs is None:
                break
            if runs:
                fact["pc"] += 1
            else:
                imperative.skip_step(fact, prog)
        elif ins.op in (CALL, RCALL):
            went_on = steps.call(ins)
            if went_on is None:
                return False
            if not went_on:
                break
        elif ins.op == WAIT:
            ok = steps.wait(ins, prog, fact["pc"])
            if ok is None:
                break
            if not ok:
                fact["waiting"] = {"node": ins.other, "state": ins.name, "relationship": ins.rel}
                break
            fact["pc"] += 1
        else:
            raise SpaceDataError("unknown instruction %r" % (ins.op,))
    imperative.finish(fact, prog)
    fact["done"] = fact["pc"] >= len(prog) and not fact.get("error")
    return True
