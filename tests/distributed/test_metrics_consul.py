"""``wfctl worker --metrics`` on a real 3-server Consul (issue 21): three workers with their
Prometheus endpoints, one SIGKILLed inside a script; what the survivors' scrapes count plus what
the dead worker committed equals the trace, as on the embedded Space
(tests/engine/test_metrics_embedded.py: the same model, the same check, engine_helpers.py).

A private cluster on 127.0.0.81-83 (ports 24300-24302, HTTP 24500), never the shared one of
tests/conftest.py, started and stopped by this module."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from wfengine import api, keys

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import (DB_WEB_MODEL, assert_metrics_match_trace, free_port, kill_worker_inside_a_script,
                            metrics_script, scrape, write)

pytestmark = pytest.mark.consul

WFCTL = [sys.executable, "-m", "wfengine.cli"]
ADDRESSES = ("127.0.0.81", "127.0.0.82", "127.0.0.83")
PORTS = {"server": 24300, "serf_lan": 24301, "serf_wan": 24302, "http": 24500}


@pytest.fixture(scope="module")
def cluster():
    c = ConsulCluster(os.path.join(ROOT, ".cache", "metrics-consul"), addresses=ADDRESSES, ports=PORTS)
    c.stop()
    c.start(timeout=90)
    yield c
    c.stop()


def test_metrics_of_three_workers_one_killed_match_the_trace_on_consul(cluster, tmp_path):
    prefix = "metrics-%s/" % uuid.uuid4().hex[:8]
    ran = tmp_path / "ran.txt"
    write(tmp_path, "op.sh", metrics_script(ran))
    env = dict(os.environ, WF_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("CONSUL_HTTP_ADDR", None)
    space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=prefix))
    ports = [free_port() for dummy in range(3)]
    procs = []
    try:
        api.upload_model(space, write(tmp_path, "model.yaml", DB_WEB_MODEL), "m")
        api.create_instance(space, "m", "i")
        for i in range(3):
            # each worker talks to its own server, as to its local agent
            procs.append(subprocess.Popen(
                WFCTL + ["--backend", "consul", "--consul-url", cluster.urls[i], "--prefix", prefix, "worker",
                         "--id", "w%d" % i, "--ttl", "3", "--threads", "4",
                         "--metrics", "127.0.0.1:%d" % ports[i]],
                env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / ("w%d.err" % i), "wb")))
        deadline = time.monotonic() + 60
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in ports:
            assert ("wf_commits_total", ()) in scrape(p, time.monotonic() + 60)
        rec = api.start_workflow(space, "install", "m", "i")
        victim = kill_worker_inside_a_script(ran, procs, time.monotonic() + 60)
        # the dead worker's session expires (Consul: up to twice its TTL) before its node is retaken
        done = api.wait_run(space, rec["id"], timeout=300)
        assert done["status"] == "succeeded"
        trace = api.trace(space, "m", "i", run_id=rec["id"])
        logs = api.logs(space, "m", "i", run_id=rec["id"])
        scraped = {"w%d" % i: scrape(ports[i], time.monotonic() + 60) for i in range(3) if i != victim}
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
        try:
            space.delete_tree("")
        finally:
            space.close()
    by_status = assert_metrics_match_trace(scraped, "w%d" % victim, trace, logs, min_duration=0.2)
    assert by_status["ok"] == 24 + 16 * 6
