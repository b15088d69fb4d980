# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imperative workflows (TOSCA 1.3 §7.3, ``topology_template.workflows``) compiled into the rules
the workers already run.

A workflow is a graph of *steps*; each step targets a node template (or every member of a group)
and runs its activities on every instance of it.  Compiling gives each template an ordered list
of items (stored as JSON with the model); ``ImperativeRuleSet.program`` expands them for one node
instance into the usual instructions, plus a GUARD per step that has predecessors:

* each step ends with a *marker* state ``@<step>`` appended to the fact's ``reached`` (it does not
  change the node's displayed state); ``@<step>!failed`` / ``@<step>!skipped`` precede it when the
  step failed or was skipped;
* a step waits (WAIT, the ordinary wait on another node instance's state) for the end marker of
  each predecessor step on every instance of the predecessor's templates; a predecessor on the
  SAME template is the same instance's, already earlier in its own program;
* the GUARD then decides from those markers whether the step runs: all ``on_success``
  predecessors succeeded on every instance, or one ``on_failure`` predecessor failed on some
  instance; a step with no predecessor runs.  Otherwise it is skipped (and so are the steps that
  only it would have enabled);
* an operation that fails inside a step ends that step (``@<step>!failed``) and the instance goes
  on with its program: the ``on_failure`` steps run, and the run ends ``failed`` after them.

Programs are a pure function of the rules, the node instance and the deployment's instance ids,
so any worker resumes any fact after a crash, exactly as for declarative workflows.

This file holds the run-time half (programs, guards, step ends); compiling at upload is
``imperative_compile.py`` (with ``imperative_activities.py``), preconditions ``preconditions.py``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import SpaceDataError
from .instances import natural_key
from .records import Fact, NodeInstance, Nodes
# Compiling (upload) and preconditions live in their own files; callers find them here too.
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .imperative_compile import announce as announce, compile_imperative as compile_imperative
from .preconditions import check_preconditions as check_preconditions
from .programs import (CALL, GUARD as GUARD, MARK as MARK, RCALL, STATE, WAIT, Instr,
                       is_marker as is_marker, marker as marker)
# pylint: enable=useless-import-alias,unused-import


def is_imperative(rules: Dict[str, Any]) -> bool:
    return isinstance(rules, dict) and "imperative" in rules


# ---------------------------------------------------------------- shape check (read back from the Space)
_ITEM_OPS = ("wait", "guard", "state", "call", "rcall", "end")


def validate(wf: str, imp: Any) -> None:
    ok = isinstance(imp, dict) and isinstance(imp.get("templates"), dict) and isinstance(imp.get("steps"), dict)
    if ok:
        for items in imp["templates"].values():
            if not isinstance(items, list) or not all(
                    isinstance(it, dict) and it.get("op") in _ITEM_OPS and isinstance(it.get("step"), str)
                    for it in items):
                ok = False
                break
    if not ok:
        raise SpaceDataError("rules of workflow %s: bad imperative steps" % wf)


# ---------------------------------------------------------------- programs
class ImperativeRuleSet:
    """The RuleSet of an imperative workflow: programs per template, waits across templates.

    ``instances(template)`` gives the node instance ids of a template in the run's deployment,
    in a fixed order: programs hold one WAIT per awaited instance, and every worker must build
    the same program to resume a fact at its program counter."""

    def __init__(self, workflow: str, rules: Dict[str, Any],
                 instances: Optional[Callable[[str], List[str]]] = None):
        self.workflow = workflow
        self.nodes: Dict[str, Any] = {}
        self.relationships: Dict[str, Any] = {}
        imp = rules["imperative"]
        self.templates: Dict[str, List[Dict[str, Any]]] = imp["templates"]
        self.steps: Dict[str, Any] = imp["steps"]
        self.instances = instances
        # (awaited template, step) -> templates whose instances wait for it
        self.waiters: Dict[Tuple[str, str], List[str]] = {}
        for t, items in self.templates.items():
            for it in items:
                if it["op"] == "wait":
                    w = self.waiters.setdefault((it["template"], it["step"]), [])
                    if t not in w:
                        w.append(t)

    def _ids(self, template: str) -> List[str]:
        if self.instances is None:
            raise SpaceDataError("workflow %s: imperative rules used without the deployment's instances"
                                 % self.workflow)
        return list(self.instances(template))

    def takes_part(self, node: NodeInstance) -> bool:
        return node["template"] in self.templates

    def participates(self, node_type: str) -> bool:
        return False     # per template, never per type: see takes_part

    def states(self, node_type: str) -> List[str]:
        return []

    def program(self, node: NodeInstance) -> List[Instr]:
        prog: List[Instr] = []
        me, tpl = node["id"], node["template"]
        for it in self.templates.get(tpl, []):
            op, step = it["op"], it["step"]
            if op == "wait":
                prog.extend(Instr(WAIT, marker(step), other=i, step=it["step"]) for i in self._ids(it["template"]))
            elif op == "guard":
                args = []
                for kind, key in (("s", "success"), ("f", "failure")):
                    for p in it[key]:
                        ids: List[str] = []
                        for u in self.steps[p]["templates"]:
                            ids.extend([me] if u == tpl else self._ids(u))
                        args.append((kind, p, tuple(ids)))
                prog.append(Instr(GUARD, step, step=step, args=tuple(args)))
            elif op == "state":
                prog.append(Instr(STATE, it["name"], step=step))
            elif op == "call":
                prog.append(Instr(CALL, it["name"], step=step, host=it.get("host")))
            elif op == "rcall":
                for rel in node.get("out", []):
                    if rel.get("requirement") == it["requirement"]:
                        prog.append(Instr(RCALL, it["name"], rel["id"], rel["type"], rel["target"],
                                          it.get("side") or "source", step=step, host=it.get("host")))
            elif op == "end":
                prog.append(Instr(STATE, marker(step), step=step))
        return prog

    def wakes(self, node: NodeInstance, reached: Sequence[str]) -> List[str]:
        out: List[str] = []
        for r in reached:
            if not is_marker(r) or "!" in r:
                continue
            for w in self.waiters.get((node["template"], r[len(MARK):]), []):
                for i in self._ids(w):
                    if i != node["id"] and i not in out:
                        out.append(i)
        return out

    def starts_ready(self, node: NodeInstance) -> bool:
        """``program(node)[0].op != WAIT`` without building the program (run start asks it of
        every node instance, and a program holds one wait per awaited instance)."""
        for it in self.templates.get(node["template"], []):
            if it["op"] == "wait" and not self._ids(it["template"]):
                continue      # a template without instances: no wait
            if it["op"] == "rcall" and not any(r.get("requirement") == it["requirement"] for r in node.get("out", [])):
                continue      # no relationship instance of that requirement: no call
            return bool(it["op"] != "wait")
        return False


def instances_from(nodes: Nodes) -> Callable[[str], List[str]]:
    """``instances`` for a RuleSet over a dict of node records (run start)."""
    by: Dict[str, List[str]] = {}
    for nid, n in nodes.items():
        by.setdefault(n["template"], []).append(nid)
    for ids in by.values():
        ids.sort(key=lambda i: (natural_key(i), i))
    return lambda t: by.get(t, [])


# ---------------------------------------------------------------- run time (batch.py, worker.py)
def guard_runs(ins: Any, fact_of: Callable[[str], Optional[Fact]]) -> Optional[bool]:
    """Whether the step of GUARD ``ins`` runs, from its predecessors' markers; None when a fact
    it needs is not at hand (the caller reads it and evaluates again)."""
    succ: List[bool] = []
    fail = False
    for kind, p, ids in ins.args or ():
        done, bad, skip = marker(p), marker(p) + "!failed", marker(p) + "!skipped"
        facts = []
        for i in ids:
            f = fact_of(i)
            if f is None:
                return None
            facts.append(f["reached"])
        if kind == "s":
            succ.append(all(done in r and bad not in r and skip not in r for r in facts))
        elif any(bad in r for r in facts):
            fail = True
    return fail or (bool(succ) and all(succ)) or not (ins.args or ())


def skip_step(fact: Fact, prog: List[Any]) -> None:
    """The GUARD said no: mark the step skipped and go to its end marker."""
    step = prog[fact["pc"]].step
    fact["reached"].append(marker(step) + "!skipped")
    fact["pc"] = _end(prog, fact["pc"], step)


def end_status(fact: Fact, step: str) -> str:
    """Status of the step event traced at a step's end: ok, failed or skipped."""
    r = fact["reached"]
    return "failed" if marker(step) + "!failed" in r else "skipped" if marker(step) + "!skipped" in r else "ok"


def fail_step(fact: Fact, prog: List[Any]) -> None:
    """An operation of an imperative step failed (``fact["error"]`` says which): keep the error
    for the end of the run, mark the step failed and go to its end marker, so that the
    ``on_failure`` steps and the other instances' waits can proceed."""
    step = prog[fact["pc"]].step
    err = dict(fact.get("error") or {}, step=step)
    fact.setdefault("failed", []).append(err)
    fact["error"] = None
    fact["state"] = "error"
    fact["reached"].append(marker(step) + "!failed")
    fact["pc"] = _end(prog, fact["pc"], step)


def finish(fact: Fact, prog: List[Any]) -> None:
    """At the end of an imperative program with failed steps: the node ends in error, so the run
    ends ``failed`` (after the on_failure steps, which have run by now)."""
    if fact["pc"] >= len(prog) and fact.get("failed") and not fact.get("error"):
        first = fact["failed"][0]
        fact["error"] = dict(first, message="step(s) %s failed" % ", ".join(f["step"] for f in fact["failed"]))


def _end(prog: List[Any], pc: int, step: str) -> int:
    end = marker(step)
    for k in range(pc, len(prog)):
        if prog[k].op == STATE and prog[k].name == end:
            return k
    raise SpaceDataError("imperative step %s has no end marker" % step)
