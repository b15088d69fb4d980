"""Whole runs on the embedded Space: the example, the seed's own flow, conflicts, many workers."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from wfengine import api, keys, runs
from wfengine.errors import Conflict, NotFound

import ordering
from engine_helpers import EXAMPLE, SEED, deploy, embedded, run

WFCTL = [sys.executable, "-m", "wfengine.cli"]


@pytest.mark.parametrize("workers", [1, 3])
def test_example_install_then_uninstall(tmp_path, workers):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    inst = run(opts, "install", workers=workers)
    assert inst["record"]["status"] == "succeeded"
    states = Counter(n["state"] for n in inst["status"]["nodes"].values())
    assert states == {"started": 19}
    ordering.check_install(inst["trace"], inst["status"]["nodes"])
    # each node operation once per node instance: 19 x create/configure/start
    ops = Counter(e["name"].rsplit(".", 1)[1] for e in inst["trace"]
                  if e["kind"] == "operation" and e["relationship"] is None)
    assert ops == {"create": 19, "configure": 19, "start": 19}
    # ConnectsTo instances: A->B 9, A->C 18, B->D 1, D->C 2 = 30, plus 13 HostedOn (the 19 nodes
    # less the 6 hosts); every relationship instance runs each Configure operation once (TOSCA 1.3 5.8.5)
    rel_ops = Counter(e["name"].rsplit(".", 1)[1] for e in inst["trace"] if e["relationship"])
    assert rel_ops == {op: 43 for op in ("pre_configure_source", "pre_configure_target",
                                         "post_configure_source", "post_configure_target",
                                         "add_target", "add_source")}
    un = run(opts, "uninstall", workers=workers)
    assert un["record"]["status"] == "succeeded"
    assert Counter(n["state"] for n in un["status"]["nodes"].values()) == {"deleted": 19}
    ordering.check_uninstall(un["trace"], un["status"]["nodes"])
    seqs = [e["seq"] for e in un["trace"]]
    assert seqs == list(range(1, len(seqs) + 1))


def test_run_record_has_status_and_duration(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    rec = run(opts, "install")["record"]
    assert rec["status"] == "succeeded" and rec["duration"] > 0 and rec["ended"] >= rec["started"]
    assert rec["done"] == rec["participants"] == 19


def test_local_workers_have_left_the_space_when_the_wait_returns(tmp_path):
    """A module's process exits right after the wait: its workers' deregistration and last trace
    writes must be done by then (CI saw keys land after a module had returned)."""
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 3, timeout=120)
        assert rec["status"] == "succeeded" and space.keys(keys.WORKERS) == []
        rec = api.start_workflow(space, "uninstall", "m", "i")
        rec = api.attach_run(opts, space, rec["id"], workers=2, timeout=120)    # wfctl's --wait
        assert rec["status"] == "succeeded" and space.keys(keys.WORKERS) == []
    finally:
        space.close()


def test_second_run_on_the_same_instance_is_refused_while_one_is_in_progress(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    rec = api.start_workflow(space, "install", "m", "i")
    with pytest.raises(Conflict) as exc:
        api.start_workflow(space, "uninstall", "m", "i")
    assert rec["id"] in str(exc.value) and "install" in str(exc.value)
    # nothing started by the refused call
    assert len(api.instance_runs(space, "m", "i")) == 1
    done = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=60)
    assert done["status"] == "succeeded"
    api.start_workflow(space, "uninstall", "m", "i")  # allowed now
    space.close()


def test_unknown_workflow_model_instance_are_clear_errors(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    with pytest.raises(NotFound, match="model m defines no workflow backup"):
        api.start_workflow(space, "backup", "m", "i")
    with pytest.raises(NotFound, match="unknown instance nope of model m"):
        api.start_workflow(space, "install", "m", "nope")
    with pytest.raises(NotFound, match="unknown model zz"):
        api.status(space, "zz", "i")
    space.close()


def test_two_instances_at_once_do_not_interfere(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE), instance="one")
    space = api.open_space(opts)
    api.create_instance(space, "m", "two")
    r1 = api.start_workflow(space, "install", "m", "one")
    r2 = api.start_workflow(space, "install", "m", "two")
    from wfengine.worker import run_workers
    import threading
    stop = threading.Event()
    run_workers(lambda: api.open_space(opts), 3, stop)   # the same workers serve both runs
    try:
        assert api.wait_run(space, r1["id"], timeout=60)["status"] == "succeeded"
        assert api.wait_run(space, r2["id"], timeout=60)["status"] == "succeeded"
    finally:
        stop.set()
    for inst in ("one", "two"):
        st = api.status(space, "m", inst)
        assert Counter(n["state"] for n in st["nodes"].values()) == {"started": 19}
        ordering.check_install(api.trace(space, "m", inst), st["nodes"])
    space.close()


@pytest.mark.skipif(not SEED.is_dir(), reason="needs ../shared/seed beside the repository")
def test_seed_flow_unchanged_with_wfctl(tmp_path):
    env = dict(os.environ, WF_SPACE=str(tmp_path / "seed.db"))

    def wfctl(*args):
        return subprocess.run(WFCTL + list(args), env=env, capture_output=True, text=True, timeout=120,
                              check=False)
    for args in (["library", str(SEED / "normative.yaml")],
                 ["model", str(SEED / "test_model.yaml"), "un_model"],
                 ["instantiate", "un_model", "une_instance"],
                 ["workflow", "install", "un_model", "une_instance", "--wait"]):
        r = wfctl(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert "succeeded" in r.stdout and "19 started" in r.stdout
    st = json.loads(wfctl("status", "un_model", "une_instance", "--json").stdout)
    assert len(st["nodes"]) == 19 and {n["state"] for n in st["nodes"].values()} == {"started"}
    tr = json.loads(wfctl("trace", "un_model", "une_instance", "--json").stdout)
    keys = {"seq", "ts", "workflow", "node", "template", "kind", "name", "relationship", "worker"}
    assert tr and all(keys <= set(e) for e in tr)


def _wfctl_env(tmp_path):
    return dict(os.environ, WF_SPACE=str(tmp_path / "space.db"))


def test_worker_processes_finish_a_run_and_a_sigkilled_one_loses_nothing(tmp_path):
    """Three real `wfctl worker` processes on one SQLite file; one is killed with SIGKILL while
    the run is in progress. The others retake its steps once its session expires."""
    env = _wfctl_env(tmp_path)
    deploy(embedded(tmp_path), str(EXAMPLE))
    log = tmp_path / "execs.jsonl"
    # --lanes 2: two batch steps at once per process (the embedded default is one), so batches of
    # one worker also race each other on the same file
    procs = [subprocess.Popen(WFCTL + ["worker", "--ttl", "1", "--threads", "4", "--lanes", "2",
                                       "--id", "w%d" % i, "--exec-log", str(log)], env=env,
                              stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / ("w%d.err" % i), "wb"))   # a file: a pipe may fill
             for i in range(3)]
    try:
        space = api.open_space(embedded(tmp_path))
        # all three serving before the run starts: the two survivors are there to take over
        deadline = time.monotonic() + 60
        while sorted(runs.live_workers(space)) != ["w0", "w1", "w2"]:
            assert time.monotonic() < deadline, runs.live_workers(space)
            time.sleep(0.05)
        rec = api.start_workflow(space, "install", "m", "i")
        # kill w0 as soon as it has executed something (the run is then in progress)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log.exists() and '"worker": "w0"' in log.read_text():
                break
            time.sleep(0.005)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        done = api.wait_run(space, rec["id"], timeout=90)
        assert done["status"] == "succeeded", done
        st = api.status(space, "m", "i")
        assert Counter(n["state"] for n in st["nodes"].values()) == {"started": 19}
        ordering.check_install(api.trace(space, "m", "i"), st["nodes"])
        space.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
    # The surviving workers exit cleanly on SIGTERM.
    errs = [(tmp_path / ("w%d.err" % i)).read_text(errors="replace")[-2000:] for i in (1, 2)]
    assert [p.returncode for p in procs[1:]] == [0, 0], errs
