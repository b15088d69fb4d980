"""The finalizer's backstop: a quiet run whose nodes wait for states already reached is not
declared failed; those nodes are woken again and the run finishes (runs._wake_stuck).

The lost wake-up is made by hand (the Space is edited the way a lost ready tuple would leave it),
since the race that produced it in benchmarks is not reproducible on demand."""
from collections import Counter

from wfengine import api, keys, runs
from wfengine.facts import new_fact
from wfengine.space.base import op_delete, op_set

from engine_helpers import EXAMPLE, deploy, embedded


def _started_run(tmp_path):
    """The example deployed and an install started, no worker: (options, space, run id)."""
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    return opts, space, api.start_workflow(space, "install", "m", "i")["id"]


def _blocked_on_srv_a0():
    fact = new_fact("A_0")
    fact.update({"version": 1, "waiting": {"node": "srvA_0", "state": "started",
                                           "relationship": "A_0:host"}})
    return fact


def test_quiet_run_with_a_lost_wakeup_is_woken_and_finishes(tmp_path):
    opts, space, run_id = _started_run(tmp_path)
    try:
        # The state a lost wake-up leaves: srvA_0 is started and done, A_0 (hosted on it) says it
        # waits for srvA_0 `started`, and no ready tuple is left: the queue holds only the marker.
        done = new_fact("srvA_0")
        done.update({"pc": 10 ** 6, "state": "started", "done": True, "version": 3,
                     "reached": ["creating", "created", "configuring", "configured", "starting",
                                 "started"]})
        ready = [k for k in space.keys(keys.queue(run_id)) if "/r/" in k]
        space.txn([op_set(keys.fact(run_id, "srvA_0"), done),
                   op_set(keys.fact(run_id, "A_0"), _blocked_on_srv_a0())]
                  + [op_delete(k) for k in ready])
        assert space.keys(keys.queue(run_id)) == [keys.marker(run_id)]

        assert runs.finalize_run(space, run_id) is None        # not declared failed
        woken = {k.rsplit("/", 1)[1] for k in space.keys(keys.queue(run_id)) if "/r/" in k}
        assert "A_0" in woken and "srvA_0" not in woken
        assert api.wait_run(space, run_id, timeout=0)["status"] == "running"

        final = api.run_with_local_workers(opts, space, run_id, 1, timeout=60)
        assert final["status"] == "succeeded", final
        states = Counter(n["state"] for n in api.status(space, "m", "i")["nodes"].values())
        assert states == {"started": 19}
    finally:
        space.close()


def test_a_run_blocked_for_real_still_ends_failed(tmp_path):
    """Nodes that wait for a state nobody reached are not woken forever: the run ends failed."""
    dummy, space, run_id = _started_run(tmp_path)
    try:
        others = [k for k in space.keys(keys.facts(run_id)) if not k.endswith("/A_0")]
        ready = [k for k in space.keys(keys.queue(run_id)) if "/r/" in k]
        # Every other fact says it waits for a state nobody reached (srvA_0 never started).
        ops = [op_set(keys.fact(run_id, "A_0"), _blocked_on_srv_a0())] + [op_delete(k) for k in ready]
        for k in others:
            node = k.rsplit("/", 1)[1]
            f = new_fact(node)
            f.update({"version": 1, "waiting": {"node": "A_0", "state": "started", "relationship": "x"}})
            ops.append(op_set(k, f))
        for i in range(0, len(ops), 60):
            space.txn(ops[i:i + 60])
        final = runs.finalize_run(space, run_id)
        assert final is not None and final["status"] == "failed"
        assert space.keys(keys.queue(run_id)) == []
    finally:
        space.close()
