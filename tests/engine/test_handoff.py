"""Handoff (batch.py, step 5): a commit locks the nodes it wakes and the same lane goes on with
them, without a listing or a claim.  Real embedded Space, real workers."""
import threading

from wfengine import api, keys, runs
from wfengine.space.base import op_cas, op_set
from wfengine.operation.executor import RecordingExecutor
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
        states = {n: v["state"] for n, v in nodes.items()}
        assert states == {"a_0": "started", "b_0": "started", "c_0": "started"}
    finally:
        stop.set()
        space.close()


def test_a_node_whose_fact_moves_before_the_commit_is_woken_instead(tmp_path, monkeypatch):
    """Fault injection: another writer moves b's fact between the read that chose the handoff
    and the commit; the commit's check on that fact fails and the plain wake-up goes instead."""
    from wfengine import batch as batch_mod
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "chain.yaml", CHAIN))
    space = api.open_space(opts)
    try:
        run_id = api.start_workflow(space, "install", "m", "i")["id"]
        choose = batch_mod.Batch.choose_handoff
        moved = []

        def choose_then_move(self):
            choose(self)
            if any(m.hand for m in self.members.values()) and not moved:
                e = space.get(keys.fact(run_id, "b_0"))
                assert space.txn([op_cas(e.key, dict(e.value, updated=1.0), e.index)]).ok
                moved.append(e.key)
        monkeypatch.setattr(batch_mod.Batch, "choose_handoff", choose_then_move)
        w = Worker(api.open_space(opts), worker_id="w", executor=RecordingExecutor())
        w._new_session()
        w._pool = None
        w._take_batch(run_id, ["a_0"])
        assert moved, "no handoff was chosen"
        assert w.stats.get("retry_hand") == 1 and not w.stats.get("handoffs")
        assert space.get(keys.fact(run_id, "a_0")).value["done"] is True
        assert space.get(keys.ready(run_id, "b_0")) is not None
        assert space.get(keys.lock(run_id, "b_0")) is None
        assert not w._inflight
        w.space.session_destroy(w.session)
    finally:
        space.close()


def test_a_node_woken_while_evaluated_stays_with_its_lane(tmp_path, monkeypatch):
    """Fault injection: a neighbour's wake-up rewrites a's ready tuple between a's evaluation and
    its commit.  The commit's removal of that tuple fails; the retried commit keeps the tuple and
    the lock, and the same lane evaluates a again at once (no listing, no second claim)."""
    from wfengine import batch as batch_mod
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "chain.yaml", CHAIN))
    space = api.open_space(opts)
    try:
        run_id = api.start_workflow(space, "install", "m", "i")["id"]
        choose = batch_mod.Batch.choose_handoff
        woken = []

        def choose_then_wake(self):
            choose(self)
            if "a_0" in self.members and not woken:
                assert space.txn([op_set(keys.ready(run_id, "a_0"), {})]).ok
                woken.append(True)
        monkeypatch.setattr(batch_mod.Batch, "choose_handoff", choose_then_wake)
        w = Worker(api.open_space(opts), worker_id="w", executor=RecordingExecutor())
        w._new_session()
        w._pool = None
        w._take_batch(run_id, ["a_0"])
        assert woken
        assert w.stats.get("retry_ready") == 1 and w.stats["claims"] == 1, w.stats
        # a was evaluated again by the same lane: its ready tuple is consumed, nothing locked
        assert space.get(keys.fact(run_id, "a_0")).value["done"] is True
        assert space.get(keys.ready(run_id, "a_0")) is None
        assert not [e.key for e in space.list(keys.queue(run_id)) if "/l/" in e.key]
        assert not w._inflight
        w.space.session_destroy(w.session)
    finally:
        space.close()


def test_no_handoff_once_the_run_is_canceled(tmp_path):
    """A lane does not go on with the nodes it wakes once its listing showed the run canceled:
    cancel schedules nothing new, handed-off chains included."""
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "chain.yaml", CHAIN))
    space = api.open_space(opts)
    try:
        run_id = api.start_workflow(space, "install", "m", "i")["id"]
        w = Worker(api.open_space(opts), worker_id="w", executor=RecordingExecutor())
        w._new_session()
        w._pool = None
        # a's step was taken (locked) before the cancel; the listing then shows the cancel.
        assert space.acquire(keys.lock(run_id, "a_0"), w.session, {"worker": "w"})
        api.cancel_run(space, "m", "i")
        w._dispatch(space.keys(keys.QUEUE), None)
        assert run_id in w._canceled
        w._take_batch(run_id, ["a_0"])
        assert space.get(keys.fact(run_id, "a_0")).value["done"] is True
        assert not w.stats.get("handoffs")
        assert space.get(keys.ready(run_id, "b_0")) is not None
        assert space.get(keys.lock(run_id, "b_0")) is None
        assert space.get(keys.fact(run_id, "b_0")).value["version"] == 0
        w.space.session_destroy(w.session)
    finally:
        space.close()


def test_one_worker_runs_the_seed_install_within_its_critical_path_of_commits(tmp_path):
    """With handoffs, fresh-run hints and kept members (a node woken by a member of another
    group of its batch stays with the lane), one worker commits the seed's install in no more
    transactions than its critical path (bench/critical_path.py: the rounds of the ideal
    schedule, computed from the same rules and instances), after a single claim.  Fewer is
    possible: nodes of one batch that pass a wait on each other's new state commit together."""
    import critical_path
    import generator
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    info = generator.compile_file(str(EXAMPLE))
    ideal = critical_path.analyse(info["rules"], "install", info["nodes"])
    final, (w,), trace, status = _run_with(opts, "install")
    assert final["status"] == "succeeded"
    ordering.check_install(trace, status["nodes"])
    assert w.stats["claims"] == 1, w.stats
    assert w.stats["commits"] <= ideal["rounds"], (w.stats, ideal)
