"""Handoff (batch.py, step 5): a commit locks the nodes it wakes and the same lane goes on with
them, without a listing or a claim.  Real embedded Space, real workers."""
import threading

from wfengine import api, keys, runs
from wfengine.executor import RecordingExecutor
from wfengine.worker import Worker, run_workers

import ordering
from engine_helpers import EXAMPLE, deploy, embedded, model_yaml, write

CHAIN = model_yaml("""
    a:
      type: tosca.nodes.Root
    b:
      type: tosca.nodes.Root
      requirements:
        - dependency: a
    c:
      type: tosca.nodes.Root
      requirements:
        - dependency: b
""")


def _run_with(opts, workflow, count=1):
    space = api.open_space(opts)
    stop = threading.Event()
    try:
        rec = api.start_workflow(space, workflow, "m", "i")
        workers = run_workers(lambda: api.open_space(opts), count, stop,
                              executor=RecordingExecutor())
        final = runs.wait_run(space, rec["id"], timeout=60)
        return final, workers, api.trace(space, "m", "i"), api.status(space, "m", "i")
    finally:
        stop.set()
        space.close()


def test_one_worker_goes_down_the_chains_without_claiming_each_link(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    final, (w,), trace, status = _run_with(opts, "install")
    assert final["status"] == "succeeded"
    ordering.check_install(trace, status["nodes"])
    assert w.stats["handoffs"] > 0
    # Every batch taken from a listing costs a claim; a handed-off batch does not.
    assert w.stats["claims"] < w.stats["commits"]
    final, (w,), trace, status = _run_with(opts, "uninstall")
    assert final["status"] == "succeeded"
    ordering.check_uninstall(trace, status["nodes"])
    assert w.stats["handoffs"] > 0


def test_a_node_locked_elsewhere_is_woken_instead_of_handed_off(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "chain.yaml", CHAIN))
    space = api.open_space(opts)
    other = api.open_space(opts)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        # Another worker's session holds b, which a's commit wakes.
        sid = other.session_create("other", 15.0, behavior="delete")
        assert other.acquire(keys.lock(run_id, "b_0"), sid, {"worker": "other"})
        w = Worker(api.open_space(opts), worker_id="w", executor=RecordingExecutor())
        w._new_session()
        w._pool = None      # no operation with side effects here: nothing goes to the pool
        w._take_batch(run_id, ["a_0"])
        facts = {n: space.get(keys.fact(run_id, n)).value for n in ("a_0", "b_0")}
        assert facts["a_0"]["done"] is True
        assert w.stats.get("retry_hand") == 1 and not w.stats.get("handoffs")
        # The plain wake-up was committed instead: b is ready, still locked by the other
        # session, and has not moved.
        assert space.get(keys.ready(run_id, "b_0")) is not None
        assert space.get(keys.lock(run_id, "b_0")).session == sid
        assert facts["b_0"]["version"] == 0
        # Nothing of this worker is left reserved or locked.
        assert not w._inflight
        assert all(e.session != w.session for e in space.list(keys.queue(run_id)))
        other.session_destroy(sid)
        w.space.session_destroy(w.session)
    finally:
        other.close()
        space.close()
    # Once the other session is gone, a worker finishes the run from what is in the Space.
    space = api.open_space(opts)
    stop = threading.Event()
    try:
        run_workers(lambda: api.open_space(opts), 1, stop, executor=RecordingExecutor())
        final = runs.wait_run(space, run_id, timeout=60)
        assert final["status"] == "succeeded"
        nodes = api.status(space, "m", "i")["nodes"]
        assert {n: v["state"] for n, v in nodes.items()} == {"a_0": "started", "b_0": "started",
                                                              "c_0": "started"}
    finally:
        stop.set()
        space.close()
