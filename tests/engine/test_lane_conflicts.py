"""Lanes of one worker (worker.py ``--lanes``) take neighbouring nodes at once.  Their commits
must not collide in the Space: a lane waits for another lane's commit that writes what it
checks (or checks what it writes), and settles in memory a check it knows would fail (a failed
Consul transaction costs a Raft round).  Real embedded Space, one real worker with 16 lanes."""
import threading

from wfengine import api, runs
from wfengine.operation.executor import RecordingExecutor
from wfengine.worker import Worker

import generator  # bench/generator.py: the benchmark's layered topologies
import ordering
from engine_helpers import deploy, embedded


def test_the_lanes_of_one_worker_never_send_a_commit_bound_to_fail(tmp_path):
    opts = embedded(tmp_path)
    path = tmp_path / "layers.yaml"
    path.write_text(generator.model_yaml(generator.shape_for(200)))
    deploy(opts, str(path))
    space = api.open_space(opts)
    worker = Worker(api.open_space(opts), threads=4, lanes=16, executor=RecordingExecutor(),
                    poll=1.0)
    contexts = []
    real_take = worker._take_batch
    # The first two lanes that take a batch wait for each other, then ask for the run's context
    # at once: the first listing shows the 64 hosts ready (no requirements), cut into batches
    # of 16 for 16 free lanes: there are four, whatever the machine's load.
    together = threading.Barrier(2, timeout=60)
    first = threading.Lock()
    entered, met = [], []

    def take(run_id, node_ids):
        with first:
            entered.append(run_id)
            wait = len(entered) <= 2
        if wait:
            try:
                together.wait()
                met.append(run_id)
            except threading.BrokenBarrierError:
                pass
        contexts.append(worker.context(run_id))
        return real_take(run_id, node_ids)
    worker._take_batch = take
    thread = threading.Thread(target=worker.serve, daemon=True)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        thread.start()
        final = runs.wait_run(space, rec["id"], timeout=120)
        assert final["status"] == "succeeded", final
        ordering.check_install(api.trace(space, "m", "i", run_id=rec["id"]),
                               api.status(space, "m", "i")["nodes"])
    finally:
        worker.stop()
        thread.join(30)
        space.close()
    stats = worker.stats
    # Lanes raced (16 at once on a 192-node frontier) and settled it in memory ...
    assert stats.get("retry_local", 0) + stats.get("commit_waits", 0) > 0, stats
    # ... so that no commit transaction was refused by the Space: every retry was local.
    assert stats.get("commit_retries", 0) == stats.get("retry_local", 0), stats
    # Two lanes started on the run at once, and every lane that took a batch of it shared its
    # one context (its fact hints).  (How many batches there were depends on the machine's load:
    # a slow lane takes bigger batches; it is not asserted.)
    assert len(met) == 2, met
    assert len({id(c) for c in contexts}) == 1, len({id(c) for c in contexts})
