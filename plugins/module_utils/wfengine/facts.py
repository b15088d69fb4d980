# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts: the progress of one node instance in one run, as stored at ``facts/<run>/<node>``.

A fact is all a worker needs to resume a node: the program counter into the node's program (rebuilt
from immutable rules), the states reached so far (what neighbours wait for), and bookkeeping.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .errors import SpaceDataError


def new_fact(node: str) -> Dict[str, Any]:
    return {"node": node, "pc": 0, "state": None, "reached": [], "version": 0, "done": False,
            "waiting": None, "error": None, "inflight": None, "operations": 0}


def validate_fact(key: str, value: Any) -> Dict[str, Any]:
    ok = (isinstance(value, dict) and isinstance(value.get("node"), str)
          and isinstance(value.get("pc"), int) and not isinstance(value.get("pc"), bool)
          and isinstance(value.get("version"), int) and isinstance(value.get("reached"), list)
          and all(isinstance(s, str) for s in value["reached"])
          and (value.get("state") is None or isinstance(value.get("state"), str))
          and isinstance(value.get("done"), bool)
          and isinstance(value.setdefault("operations", 0), int)
          and not isinstance(value["operations"], bool) and value["operations"] >= 0)
    if not ok:
        raise SpaceDataError("%s: not a fact" % key)
    value.setdefault("waiting", None)
    value.setdefault("error", None)
    value.setdefault("inflight", None)
    fact: Dict[str, Any] = value
    return fact


def operation_error(operation: str, result: Any, worker: str, attempt: int,
                    rel: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The fact's ``error`` after an operation's last attempt failed (both ways a worker runs
    an operation write it alike): what a report, a resume and ``on_failure`` steps read."""
    return {"operation": operation, "exit_code": result.exit_code,
            "output": result.output[-2000:], "worker": worker, "attempt": attempt,
            "relationship": None if rel is None else rel["id"]}


def reached(fact: Optional[Dict[str, Any]], state: str) -> bool:
    return fact is not None and state in fact["reached"]


def passes(fact: Optional[Dict[str, Any]], state: str, past_failures: bool) -> bool:
    """Whether a wait for ``state`` of the node whose fact this is holds.  ``past_failures`` (an
    uninstall run: TOSCA, uninstall failures should not prevent the other operations): a node
    stopped by a failed operation no longer holds up those that wait for it."""
    return reached(fact, state) or bool(past_failures and fact is not None and fact.get("error"))


def remaining_states(prog: List[Any], pc: int) -> List[str]:
    """The states a program would still set from ``pc``: those a failed node of an uninstall run
    wakes its waiters for (they pass their waits on it, ``passes``)."""
    return [ins.name for ins in prog[pc:] if ins.op == "state"]
