"""Ownership by zones (locality.py) with real workers on the embedded Space: a run smaller than a
zone is run by one worker, a larger one is shared by all, and both end in the right order."""
import threading
import time

from wfengine import api, runs
from wfengine.operation.executor import RecordingExecutor
from wfengine.worker import run_workers

import generator  # bench/generator.py: the benchmark's layered topologies
import ordering
from engine_helpers import EXAMPLE, deploy, embedded, with_scripts


def _three_workers_then(opts, workflows):
    space = api.open_space(opts)
    stop = threading.Event()
    try:
        workers = run_workers(lambda: api.open_space(opts), 3, stop, executor=RecordingExecutor())
        deadline = time.monotonic() + 30
        # ownership needs every worker to see the others (their registrations)
        while any(len(w._peers) < 3 for w in workers):
            assert time.monotonic() < deadline, [w._peers for w in workers]
            time.sleep(0.01)
        out = []
        for wf in workflows:
            before = [w.stats["taken"] for w in workers]
            rec = api.start_workflow(space, wf, "m", "i")
            final = runs.wait_run(space, rec["id"], timeout=120)
            assert final["status"] == "succeeded", final
            out.append(([w.stats["taken"] - b for w, b in zip(workers, before)],
                        api.trace(space, "m", "i", run_id=rec["id"]), api.status(space, "m", "i")))
        return out
    finally:
        stop.set()
        space.close()


def test_a_small_run_is_run_by_one_worker(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    (inst, trace, status), (uninst, utrace, ustatus) = _three_workers_then(opts, ["install", "uninstall"])
    assert sum(1 for t in inst if t) == 1, inst
    assert sum(1 for t in uninst if t) == 1, uninst
    ordering.check_install(trace, status["nodes"])
    ordering.check_uninstall(utrace, ustatus["nodes"])


def test_a_small_run_of_real_operations_is_shared_by_every_worker(tmp_path):
    """The same run with a script on every operation (issue 20): its root hosts are zones of
    their own, so all three workers take nodes, and the order is the same."""
    opts = embedded(tmp_path)
    deploy(opts, with_scripts(EXAMPLE, tmp_path / "app.yaml", "true\n"))
    (inst, trace, status), (uninst, utrace, ustatus) = _three_workers_then(opts, ["install", "uninstall"])
    assert all(inst) and all(uninst), (inst, uninst)      # nodes taken by each worker
    ordering.check_install(trace, status["nodes"])
    ordering.check_uninstall(utrace, ustatus["nodes"])


class _Listings:
    """A worker's Space that counts the worker's blocking queries, by prefix."""

    def __init__(self, inner):
        self._inner = inner
        self.waits = {}

    def wait(self, prefix, index, timeout):
        self.waits[prefix] = self.waits.get(prefix, 0) + 1
        return self._inner.wait(prefix, index, timeout)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_workers_without_a_zone_do_not_follow_the_run(tmp_path):
    """The two workers that own no zone of the example's run (one zone) wait on q/~/ only: they
    list the queue when the run starts and ends, not at each of the owner's commits."""
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    stop = threading.Event()
    spaces = []

    def factory():
        spaces.append(_Listings(api.open_space(opts)))
        return spaces[-1]
    try:
        workers = run_workers(factory, 3, stop, executor=RecordingExecutor())
        deadline = time.monotonic() + 30
        while any(len(w._peers) < 3 or not w._idle for w in workers):
            assert time.monotonic() < deadline, [(w._peers, w._idle) for w in workers]
            time.sleep(0.01)
        before = [dict(s.waits) for s in spaces]
        rec = api.start_workflow(space, "install", "m", "i")
        assert runs.wait_run(space, rec["id"], timeout=60)["status"] == "succeeded"
        deadline = time.monotonic() + 30
        while not all(w._idle for w in workers):     # the end of the run seen by all
            assert time.monotonic() < deadline
            time.sleep(0.01)
        listings = [s.waits.get("q/", 0) - b.get("q/", 0) for s, b in zip(spaces, before)]
        owner = max(range(3), key=lambda i: workers[i].stats["commits"])
        commits = workers[owner].stats["commits"]
        others = [i for i in range(3) if i != owner]
        assert commits >= 5 and all(workers[i].stats["commits"] == 0 for i in others)
        # start and end, and a periodic look at most (idle waits last up to steal_after)
        assert all(listings[i] < commits for i in others), (listings, commits)
        assert all(s.waits.get("q/~/", 0) > b.get("q/~/", 0) for s, b in zip(
            [spaces[i] for i in others], [before[i] for i in others]))
    finally:
        stop.set()
        space.close()


def test_a_larger_run_is_shared_by_every_worker(tmp_path):
    opts = embedded(tmp_path)
    path = tmp_path / "layers.yaml"
    path.write_text(generator.model_yaml(generator.shape_for(200)))
    deploy(opts, str(path))
    [(taken, trace, status)] = _three_workers_then(opts, ["install"])
    assert all(t > 0 for t in taken), taken
    assert len(status["nodes"]) == 192
    ordering.check_install(trace, status["nodes"])
