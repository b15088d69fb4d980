# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interpreter of a node's program (interpreter.py), with a scripted ProgramSteps: what
each instruction does to the fact, and where each answer of a path stops or abandons the node.
The batch and single-node paths are covered end to end by tests/engine and tests/conformance."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from wfengine.errors import SpaceDataError
from wfengine.facts import new_fact
from wfengine.interpreter import run_program
from wfengine.programs import CALL, GUARD, STATE, WAIT, Instr, marker


class Scripted:
    """A path whose answers are given in advance; it records what the interpreter asked."""

    def __init__(self, room: Optional[List[Optional[bool]]] = None,
                 calls: Optional[List[Optional[bool]]] = None,
                 waits: Optional[List[Optional[bool]]] = None,
                 guards: Optional[List[Optional[bool]]] = None) -> None:
        self.rooms, self.calls, self.waits, self.guards = room, calls or [], waits or [], guards or []
        self.asked: List[Any] = []

    def room(self) -> Optional[bool]:
        return self.rooms.pop(0) if self.rooms else True

    def on_state(self, ins: Instr) -> None:
        self.asked.append(("state", ins.name))

    def guard(self, ins: Instr) -> Optional[bool]:
        self.asked.append(("guard", ins.step))
        return self.guards.pop(0)

    def call(self, ins: Instr) -> Optional[bool]:
        self.asked.append(("call", ins.name))
        went_on = self.calls.pop(0)
        return went_on

    def wait(self, ins: Instr, prog: List[Instr], pc: int) -> Optional[bool]:
        self.asked.append(("wait", ins.other, pc))
        return self.waits.pop(0)


class Advancing(Scripted):
    """A path whose successful calls move pc, as both real paths do."""

    def __init__(self, fact: Dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.fact = fact

    def call(self, ins: Instr) -> Optional[bool]:
        went_on = super().call(ins)
        if went_on:
            self.fact["pc"] += 1
        return went_on


PROG = [Instr(STATE, "creating"), Instr(CALL, "create"), Instr(STATE, "created"),
        Instr(WAIT, "started", rel="r1", other="db_0"), Instr(STATE, "started")]


def test_a_program_runs_to_its_end():
    fact = new_fact("a_0")
    steps = Advancing(fact, calls=[True], waits=[True])
    assert run_program(fact, PROG, steps) is True
    assert fact["pc"] == len(PROG) and fact["done"] is True
    assert fact["state"] == "started"
    assert fact["reached"] == ["creating", "created", "started"]
    assert steps.asked == [("state", "creating"), ("call", "create"), ("state", "created"),
                           ("wait", "db_0", 3), ("state", "started")]


def test_an_unsatisfied_wait_says_what_the_node_waits_for():
    fact = new_fact("a_0")
    assert run_program(fact, PROG, Advancing(fact, calls=[True], waits=[False])) is True
    assert fact["pc"] == 3 and fact["done"] is False
    assert fact["waiting"] == {"node": "db_0", "state": "started", "relationship": "r1"}


def test_a_wait_on_a_fact_not_at_hand_stops_without_waiting():
    fact = new_fact("a_0")
    assert run_program(fact, PROG, Advancing(fact, calls=[True], waits=[None])) is True
    assert fact["pc"] == 3 and fact["waiting"] is None and fact["done"] is False


def test_a_call_that_stops_the_node_keeps_its_pc():
    fact = new_fact("a_0")
    steps = Advancing(fact, calls=[False])
    assert run_program(fact, PROG, steps) is True
    assert fact["pc"] == 1 and fact["done"] is False
    assert steps.asked == [("state", "creating"), ("call", "create")]


def test_a_lost_node_is_abandoned_before_done_is_settled():
    fact = new_fact("a_0")
    fact["done"] = "untouched"
    assert run_program(fact, PROG, Advancing(fact, calls=[None])) is False
    assert fact["done"] == "untouched" and fact["pc"] == 1


def test_no_room_stops_before_the_next_instruction():
    fact = new_fact("a_0")
    steps = Advancing(fact, room=[True, False])
    assert run_program(fact, PROG, steps) is True
    assert fact["pc"] == 1 and fact["reached"] == ["creating"]
    assert steps.asked == [("state", "creating")]


def test_no_room_and_the_node_lost_abandons_it():
    fact = new_fact("a_0")
    assert run_program(fact, PROG, Advancing(fact, room=[None])) is False
    assert fact["pc"] == 0 and fact["reached"] == []


def test_a_stale_waiting_is_cleared_when_the_node_goes_on():
    fact = new_fact("a_0")
    fact.update(pc=3, waiting={"node": "db_0", "state": "started", "relationship": "r1"})
    assert run_program(fact, PROG, Advancing(fact, waits=[True])) is True
    assert fact["waiting"] is None and fact["done"] is True


IMPERATIVE = [Instr(GUARD, "guard", step="s1", args=(("success", "s0", ("a_0",)),)),
              Instr(CALL, "create", step="s1"), Instr(STATE, marker("s1"), step="s1"),
              Instr(STATE, "end")]


def test_a_guard_that_says_no_skips_its_step():
    fact = new_fact("a_0")
    steps = Advancing(fact, guards=[False])
    assert run_program(fact, IMPERATIVE, steps) is True
    assert fact["reached"] == [marker("s1") + "!skipped", marker("s1"), "end"]
    # a step's end marker is reached, but it is not a state of the node
    assert fact["state"] == "end" and fact["done"] is True
    assert ("call", "create") not in steps.asked


def test_a_guard_that_says_yes_runs_its_step():
    fact = new_fact("a_0")
    steps = Advancing(fact, guards=[True], calls=[True])
    assert run_program(fact, IMPERATIVE, steps) is True
    assert fact["reached"] == [marker("s1"), "end"]
    assert steps.asked[:2] == [("guard", "s1"), ("call", "create")]


def test_a_guard_waiting_for_facts_stops_at_the_guard():
    fact = new_fact("a_0")
    assert run_program(fact, IMPERATIVE, Advancing(fact, guards=[None])) is True
    assert fact["pc"] == 0 and fact["reached"] == [] and fact["done"] is False


def test_a_failed_step_ends_the_node_in_error_at_the_end():
    fact = new_fact("a_0")
    fact["failed"] = [{"step": "s1", "operation": "create"}]
    fact["pc"] = 2
    assert run_program(fact, IMPERATIVE, Advancing(fact)) is True
    assert fact["error"]["message"] == "step(s) s1 failed"
    assert fact["done"] is False


def test_an_unknown_instruction_is_bad_data():
    fact = new_fact("a_0")
    with pytest.raises(SpaceDataError, match="unknown instruction 'jump'"):
        run_program(fact, [Instr("jump", "x")], Advancing(fact))
