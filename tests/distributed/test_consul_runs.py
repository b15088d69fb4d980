"""Issue 3's bar: real `wfctl worker` processes, a real 3-server Consul on loopback, SIGKILL."""
from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from wfengine import api

import ordering

pytestmark = pytest.mark.consul


def _states(space, instance="i"):
    return Counter(n["state"] for n in api.status(space, "m", instance)["nodes"].values())


def _exec_lines(workers):
    if not workers.exec_log.exists():
        return []
    return [json.loads(l) for l in workers.exec_log.read_text().splitlines() if l.strip()]


def test_sigkill_a_worker_mid_run_then_uninstall(manager, workers):
    opts, space = manager
    # The victim starts alone: when it has run its first operation, most of the run is still
    # ahead (nobody else works on it), so the kill lands mid-run whatever the engine's speed.
    victim = workers.start(1)[0]
    rec = api.start_workflow(space, "install", "m", "i")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(l["worker"] == victim.wid for l in _exec_lines(workers)):
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert api.wait_run(space, rec["id"], timeout=0)["status"] == "running", "run ended before the kill"
    workers.start(2)
    done = api.wait_run(space, rec["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert _states(space) == {"started": 19}
    nodes = api.status(space, "m", "i")["nodes"]
    ordering.check_install(api.trace(space, "m", "i"), nodes)
    # An operation ran twice only if the killed worker had it in flight: every duplicate's first
    # execution is the victim's.
    seen = {}
    for line in _exec_lines(workers):
        key = (line["run"], line["node"], line["operation"], line["relationship"])
        if key in seen:
            assert seen[key]["worker"] == victim.wid, "duplicate not due to the kill: %s" % (key,)
        else:
            seen[key] = line
    # uninstall with the two survivors
    rec = api.start_workflow(space, "uninstall", "m", "i")
    done = api.wait_run(space, rec["id"], timeout=120)
    assert done["status"] == "succeeded"
    assert _states(space) == {"deleted": 19}
    ordering.check_uninstall(api.trace(space, "m", "i"), api.status(space, "m", "i")["nodes"])


def test_kill_the_consul_leader_mid_run(consul_cluster, consul_prefix, workers, manager):
    if getattr(consul_cluster, "external_url", None):
        pytest.skip("kills servers: needs the cluster started by the fixture")
    opts, space = manager
    leader = consul_cluster.wait_leader()
    followers = [s.http_url for s in consul_cluster.followers()]
    workers.start(3, urls=followers)
    fspace = api.open_space(api.SpaceOptions(backend="consul", url=followers[0], prefix=consul_prefix))
    try:
        rec = api.start_workflow(fspace, "install", "m", "i")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _exec_lines(workers):
            time.sleep(0.002)
        consul_cluster.kill(leader)
        done = api.wait_run(fspace, rec["id"], timeout=180)
        assert done["status"] == "succeeded", done
        assert _states(fspace) == {"started": 19}
        ordering.check_install(api.trace(fspace, "m", "i"), api.status(fspace, "m", "i")["nodes"])
    finally:
        fspace.close()
        consul_cluster.restart(leader)
        consul_cluster.wait_leader()


def test_workflow_started_before_any_worker_finishes_when_workers_come(manager, workers):
    opts, space = manager
    rec = api.start_workflow(space, "install", "m", "i")
    assert api.wait_run(space, rec["id"], timeout=1)["status"] == "running"
    workers.start(2)
    done = api.wait_run(space, rec["id"], timeout=120)
    assert done["status"] == "succeeded" and _states(space) == {"started": 19}


def test_two_instances_installed_at_once_by_the_same_workers(manager, workers):
    opts, space = manager
    api.create_instance(space, "m", "j")
    workers.start(3)
    r1 = api.start_workflow(space, "install", "m", "i")
    r2 = api.start_workflow(space, "install", "m", "j")
    assert api.wait_run(space, r1["id"], timeout=120)["status"] == "succeeded"
    assert api.wait_run(space, r2["id"], timeout=120)["status"] == "succeeded"
    for inst in ("i", "j"):
        assert _states(space, inst) == {"started": 19}
        ordering.check_install(api.trace(space, "m", inst), api.status(space, "m", inst)["nodes"])
    # each run's operations ran in that run only, once each
    lines = _exec_lines(workers)
    assert Counter(l["run"] for l in lines) == {r1["id"]: len(lines) // 2, r2["id"]: len(lines) // 2}


def test_wfctl_commands_on_consul(consul_cluster, consul_prefix, workers, tmp_path):
    import subprocess
    from distributed.conftest import WFCTL
    from engine_helpers import EXAMPLE
    workers.start(2)
    base = WFCTL + ["--backend", "consul", "--consul-url", consul_cluster.urls[1], "--prefix", consul_prefix]

    def wfctl(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=120, check=False)
    assert wfctl("model", str(EXAMPLE), "app").returncode == 0
    assert wfctl("instantiate", "app", "prod").returncode == 0
    r = wfctl("workflow", "install", "app", "prod", "--wait", "--timeout", "120")
    assert r.returncode == 0 and "succeeded" in r.stdout and "19 started" in r.stdout, r.stderr
    st = json.loads(wfctl("status", "app", "prod", "--json").stdout)
    assert {n["state"] for n in st["nodes"].values()} == {"started"} and len(st["nodes"]) == 19
    runs = json.loads(wfctl("runs", "app", "prod", "--json").stdout)
    assert runs[-1]["status"] == "succeeded" and runs[-1]["duration"] > 0
    tr = json.loads(wfctl("trace", "app", "prod", "--json").stdout)
    assert len({e["worker"] for e in tr}) >= 1 and tr[-1]["seq"] == len(tr)
    # one run at a time per instance: with no worker running, the uninstall stays in progress
    workers.stop_all()
    r1 = wfctl("workflow", "uninstall", "app", "prod")
    r2 = wfctl("workflow", "install", "app", "prod")
    assert r1.returncode == 0 and r2.returncode == 2, (r1.stderr, r2.stderr)
    assert r2.stderr.startswith("wfctl: instance app/prod already has a run in progress")
    assert len(r2.stderr.strip().splitlines()) == 1
    workers.start(1)
    r = wfctl("workflow", "uninstall", "app", "prod", "--resume", "--wait", "--timeout", "120")
    # issue 17: nothing to resume while it runs: it is waited for (attach) instead of refused
    assert r.returncode == 0 and "uninstall app/prod: succeeded" in r.stdout, r.stderr
    assert "is in progress: waiting for it" in r.stderr
    space = api.open_space(api.SpaceOptions(backend="consul", url=consul_cluster.urls[2], prefix=consul_prefix))
    try:
        run_id = json.loads(wfctl("runs", "app", "prod", "--json").stdout)[-1]["id"]
        assert api.wait_run(space, run_id, timeout=120)["status"] == "succeeded"
    finally:
        space.close()
