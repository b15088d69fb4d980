"""Ownership by zones (locality.py) with real workers on the embedded Space: a run smaller than a
zone is run by one worker, a larger one is shared by all, and both end in the right order."""
import os
import sys
import threading
import time

from wfengine import api, runs
from wfengine.executor import RecordingExecutor
from wfengine.worker import run_workers

import ordering
from engine_helpers import EXAMPLE, deploy, embedded

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench"))
import generator  # noqa: E402  (bench/generator.py: the benchmark's layered topologies)


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


def test_a_larger_run_is_shared_by_every_worker(tmp_path):
    opts = embedded(tmp_path)
    path = tmp_path / "layers.yaml"
    path.write_text(generator.model_yaml(generator.shape_for(200)))
    deploy(opts, str(path))
    [(taken, trace, status)] = _three_workers_then(opts, ["install"])
    assert all(t > 0 for t in taken), taken
    assert len(status["nodes"]) == 192
    ordering.check_install(trace, status["nodes"])
