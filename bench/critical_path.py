# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The critical path of a run, in commits: the physical limit the benchmark compares against.

Definition.  The engine's unit of progress is a *commit*: a worker takes a node, runs its program
as far as it can (states, operations, waits that already hold) and writes the result in one
transaction.  A node's next commit can only start after its previous one, and a wait can only pass
after the commit that made the other end reach the awaited state.  So the fastest possible run is
the synchronous schedule with unlimited workers and zero computing time:

    round 1: every node whose program does not start with a wait advances as far as it can and
             commits;
    round r: every node woken by a state committed in round r-1 (or earlier) advances as far as it
             can, reading only what was committed before this round, and commits.

The number of rounds is the longest chain of dependent commits (a node's commit that passed a wait
happened after the awaited commit, a node's commits happen one after the other; the greedy schedule
starts each commit as early as these two rules allow, so no schedule needs fewer rounds).  Each
round costs at least one Space write, hence the bound ``rounds x median write latency``.

With effectful operations (scripts), the worker also commits a checkpoint before each operation
(``Executor.effectful``: the attempt is recorded before it runs), so a step of k operations is k+1
sequential commits; ``checkpoint_ops=True`` counts them.  ``op_cost`` (in writes: an operation's
time over one write's) adds each operation's own time between its checkpoint and the next commit,
which the rounds leave out: the bound *with operation time*.  Not modelled (the bound stays a
lower bound): the node lock taken before each step, reads, hosted-operation serialization.

The simulation costs O(instructions + waits): a node blocked on (other, state) is re-evaluated only
when that state is committed, the way the engine's ready tuples work.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple

from wfengine.rules import CALL, RCALL, STATE, WAIT, RuleSet


def analyse(rules: Dict[str, Any], workflow: str, nodes: Dict[str, Dict[str, Any]],
            checkpoint_ops: bool = False, op_cost: float = 0.0) -> Dict[str, Any]:
    """Rounds of the ideal schedule and what the run does: ``rounds`` (critical path in commits;
    with ``op_cost``, in writes, operations' time included: a float), ``commits`` (commits of the
    ideal schedule), ``transitions`` (states reached), ``operations`` (node and relationship
    operations), ``waits`` (wait instructions), ``participants``."""
    rs = RuleSet(workflow, rules[workflow])
    progs = {nid: rs.program(n) for nid, n in nodes.items() if rs.participates(n["type"])}
    pc = {nid: 0 for nid in progs}
    committed: Dict[Tuple[str, str], Any] = {}      # (node, state) -> round of its commit
    waiters: Dict[Tuple[str, str], List[str]] = {}
    counts = {"transitions": 0, "operations": 0, "waits": 0}
    for p in progs.values():
        for ins in p:
            if ins.op == STATE:
                counts["transitions"] += 1
            elif ins.op in (CALL, RCALL):
                counts["operations"] += 1
            elif ins.op == WAIT:
                counts["waits"] += 1
    rounds = 0
    commits = 0
    # agenda: round -> nodes to evaluate in that round (a node woken by a commit of round a is
    # evaluated in round a+1; a node busy with checkpoint commits until round b resumes at b+1)
    # (round 1 also registers the nodes whose program starts with a wait as waiters; they do not
    # advance, so they cost no commit, as in the engine where they are not initially ready)
    agenda: Dict[Any, Set[str]] = {1: set(progs)}
    busy: Dict[str, Any] = {}
    while agenda:
        r = min(agenda)
        batch = agenda.pop(r)
        new: List[Tuple[str, str, int]] = []
        for nid in batch:
            prog, k = progs[nid], pc[nid]
            if k >= len(prog):
                continue
            if busy.get(nid, 0) >= r:       # still writing checkpoints of its previous step
                agenda.setdefault(busy[nid] + 1, set()).add(nid)
                continue
            local_round = r
            advanced = False
            while k < len(prog):
                ins = prog[k]
                if ins.op == WAIT:
                    at = committed.get((ins.other, ins.name))
                    if at is not None and at < local_round:
                        k += 1
                        continue
                    if at is not None:   # committed in a later round by a checkpointing node
                        agenda.setdefault(max(at, local_round) + 1, set()).add(nid)
                    else:
                        waiters.setdefault((ins.other, ins.name), []).append(nid)
                    break
                if ins.op in (CALL, RCALL) and checkpoint_ops:
                    # checkpoint commit (with the states reached so far), then the operation
                    commits += 1
                    local_round += 1 + op_cost if op_cost else 1
                if ins.op == STATE:
                    new.append((nid, ins.name, local_round))
                advanced = True
                k += 1
            pc[nid] = k
            if advanced:
                commits += 1
                rounds = max(rounds, local_round)
                busy[nid] = local_round
        for nid, state, at in new:
            committed[(nid, state)] = at
            for w in waiters.pop((nid, state), []):
                agenda.setdefault(at + 1, set()).add(w)
    unfinished = [n for n, p in progs.items() if pc[n] < len(p)]
    if unfinished:
        raise ValueError("workflow %s does not finish: %d nodes blocked (e.g. %s)"
                         % (workflow, len(unfinished), unfinished[0]))
    return dict(counts, rounds=rounds, commits=commits, participants=len(progs))
