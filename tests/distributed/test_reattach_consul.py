"""Issue 17, re-attach on Consul: a second ``workflow --wait`` on a run of the same workflow in
progress waits for it (instead of "already has a run in progress"), ``wfctl wait`` too, a run of
another workflow stays a conflict, and ``--resume`` on the running run waits for it.  On its own
3-server cluster (127.0.0.41-43, ports 21xxx), stopped at the end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import EXAMPLE

WFCTL = [sys.executable, "-m", "wfengine.cli"]
ADDRESSES = ("127.0.0.41", "127.0.0.42", "127.0.0.43")
PORTS = {"server": 21300, "serf_lan": 21301, "serf_wan": 21302, "http": 21500}


@pytest.fixture(scope="module")
def cluster():
    c = ConsulCluster(os.path.join(ROOT, ".cache", "attach-consul"), addresses=ADDRESSES, ports=PORTS)
    c.stop()
    c.start(timeout=90)
    yield c
    c.stop()


def test_second_wait_attaches_on_consul(cluster, tmp_path):
    base = WFCTL + ["--backend", "consul", "--consul-url", cluster.urls[0], "--prefix", "attach/"]

    def wfctl(*args, timeout=180):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def popen(*args, name):
        return subprocess.Popen(base + list(args), stdout=open(tmp_path / (name + ".out"), "wb"),
                                stderr=open(tmp_path / (name + ".err"), "wb"))

    assert wfctl("model", str(EXAMPLE), "app").returncode == 0
    assert wfctl("instantiate", "app", "prod").returncode == 0
    first = popen("workflow", "install", "app", "prod", "--wait", "--timeout", "150", name="first")
    worker = None
    try:
        deadline = time.monotonic() + 60
        while True:      # the run exists (no worker yet: it stays running)
            r = wfctl("runs", "app", "prod", "--json")
            if r.returncode == 0 and json.loads(r.stdout):
                break
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        other = wfctl("workflow", "uninstall", "app", "prod", "--wait")
        assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
        assert other.stderr.startswith("wfctl: instance app/prod already has a run in progress: ")
        assert "(install); uninstall cannot start before it ends" in other.stderr
        second = popen("workflow", "install", "app", "prod", "--wait", "--timeout", "150", name="second")
        resumed = popen("workflow", "install", "app", "prod", "--resume", "--wait", "--timeout", "150",
                        name="resumed")
        waiter = popen("wait", "app", "prod", "--timeout", "150", name="waiter")
        # every waiter says it follows the run in progress, and that no worker is alive yet
        deadline = time.monotonic() + 60
        while not all("no live worker" in (tmp_path / (n + ".err")).read_text()
                      for n in ("second", "resumed", "waiter")):
            assert time.monotonic() < deadline, [(tmp_path / (n + ".err")).read_text()
                                                 for n in ("second", "resumed", "waiter")]
            time.sleep(0.1)
        worker = subprocess.Popen(base + ["worker", "--ttl", "10"], stdout=subprocess.DEVNULL,
                                  stderr=open(tmp_path / "worker.err", "wb"))
        for p, name in ((first, "first"), (second, "second"), (resumed, "resumed"), (waiter, "waiter")):
            assert p.wait(timeout=170) == 0, (tmp_path / (name + ".err")).read_text()
            out = (tmp_path / (name + ".out")).read_text()
            assert "install app/prod: succeeded" in out and "19 started" in out, out
        for name in ("second", "resumed"):
            assert "is in progress: waiting for it" in (tmp_path / (name + ".err")).read_text()
        runs = json.loads(wfctl("runs", "app", "prod", "--json").stdout)
        assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    finally:
        for p in [first] + ([worker] if worker else []):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
