"""A small run's facts are written with its record (runs.start_run, "fresh"): a worker takes
them as hints instead of reading them, and a hint gone stale is caught by the commit's checks.
Real embedded Space, real worker; Space calls counted by the benchmark's CountingSpace."""
import threading

from wfengine import api, keys, runs
from wfengine.operation.executor import RecordingExecutor
from wfengine.facts import new_fact
from wfengine.space.base import op_cas
from wfengine.worker import Worker

import ordering
from engine_helpers import EXAMPLE, deploy, embedded
from harness import CountingSpace  # bench/harness.py


def _one_worker(opts, rec):
    space = CountingSpace(api.open_space(opts))
    w = Worker(space, executor=RecordingExecutor(), poll=1.0)
    t = threading.Thread(target=w.serve, daemon=True)
    t.start()
    try:
        return runs.wait_run(space, rec["id"], timeout=60), w, space.stats.snapshot()["counts"]
    finally:
        w.stop()
        t.join(10)


def test_a_small_run_is_evaluated_without_reading_its_facts(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    rec = api.start_workflow(space, "install", "m", "i")
    assert len(rec["fresh"]) == rec["participants"] == 19
    final, w, counts = _one_worker(opts, rec)
    assert final["status"] == "succeeded", final
    ordering.check_install(api.trace(space, "m", "i"), api.status(space, "m", "i")["nodes"])
    # no read transaction but the finalizer's (marker, record, current run); 6 before
    assert counts.get("txn_read", 0) <= 1, counts


def test_a_stale_fresh_hint_fails_a_check_and_is_read_again(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    rec = api.start_workflow(space, "install", "m", "i")
    # Another writer moves facts after the start (same value, new index): the hints are stale.
    for n in ("A_0", "B_0", "C_0", "D_0"):
        e = space.get(keys.fact(rec["id"], n))
        assert e.value == new_fact(n)
        assert space.txn([op_cas(e.key, e.value, e.index)]).ok
    final, w, counts = _one_worker(opts, rec)
    assert final["status"] == "succeeded", final
    ordering.check_install(api.trace(space, "m", "i"), api.status(space, "m", "i")["nodes"])
    # the stale hints failed checks (then dropped: the run went on)
    assert w.stats.get("commit_retries", 0) + w.stats.get("retry_hand", 0) >= 1, w.stats


def test_resume_drops_the_fresh_list(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    rec = api.start_workflow(space, "install", "m", "i")
    runs.cancel_run(space, "m", "i")
    assert runs.finalize_run(space, rec["id"])["status"] == runs.CANCELED
    again = runs.resume_run(space, "install", "m", "i")
    assert again["id"] == rec["id"] and "fresh" not in again
    final, w, counts = _one_worker(opts, again)
    assert final["status"] == "succeeded", final
