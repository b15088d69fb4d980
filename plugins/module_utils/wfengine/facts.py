# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts: the progress of one node instance in one run, as stored at ``facts/<run>/<node>``.

A fact is all a worker needs to resume a node: the program counter into the node's program (rebuilt
from immutable rules), the states reached so far (what neighbours wait for), and bookkeeping.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .records import Fact, Relationship
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .records import new_fact as new_fact, validate_fact as validate_fact  # their home before


def operation_error(operation: str, result: Any, worker: str, attempt: int,
                    rel: Optional[Relationship]) -> Dict[str, Any]:
    """The fact's ``error`` after an operation's last attempt failed (both ways a worker runs
    an operation write it alike): what a report, a resume and ``on_failure`` steps read."""
    return {"operation": operation, "exit_code": result.exit_code,
            "output": result.output[-2000:], "worker": worker, "attempt": attempt,
            "relationship": None if rel is None else rel["id"]}


def reached(fact: Optional[Fact], state: str) -> bool:
    return fact is not None and state in fact["reached"]


def evaluated(fact: Optional[Fact]) -> bool:
    """Whether a worker has evaluated the node of ``fact`` in its run (its version moved)."""
    return fact is not None and bool(fact.get("version"))


def passes(fact: Optional[Fact], state: str, past_failures: bool) -> bool:
    """Whether a wait for ``state`` of the node whose fact this is holds.  ``past_failures`` (an
    uninstall run: TOSCA, uninstall failures should not prevent the other operations): a node
    stopped by a failed operation no longer holds up those that wait for it."""
    return reached(fact, state) or bool(past_failures and fact is not None and fact.get("error"))


def remaining_states(prog: List[Any], pc: int) -> List[str]:
    """The states a program would still set from ``pc``: those a failed node of an uninstall run
    wakes its waiters for (they pass their waits on it, ``passes``)."""
    return [ins.name for ins in prog[pc:] if ins.op == "state"]
