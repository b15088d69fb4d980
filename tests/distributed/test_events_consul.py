"""``wfctl events --follow`` on a real 3-server Consul (issue 21): the follower waits with blocking
queries; a worker SIGKILLed inside a script, a follower SIGKILLed and reconnected with --since.

A private cluster on 127.0.0.71-73 (ports 23300-23302, HTTP 23500), never the shared one of
tests/conftest.py, started and stopped by this module."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from wfengine import api, keys

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import EXAMPLE, with_scripts

pytestmark = pytest.mark.consul

WFCTL = [sys.executable, "-m", "wfengine.cli"]
ADDRESSES = ("127.0.0.71", "127.0.0.72", "127.0.0.73")
PORTS = {"server": 23300, "serf_lan": 23301, "serf_wan": 23302, "http": 23500}
SCRIPT = """\
echo "start $WF_NODE $PPID" >> "$OPLOG"
sleep 0.2
"""


@pytest.fixture(scope="module")
def cluster():
    c = ConsulCluster(os.path.join(ROOT, ".cache", "observe-consul"), addresses=ADDRESSES, ports=PORTS)
    c.stop()
    c.start(timeout=90)
    yield c
    c.stop()


def _lines(path):
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def test_follow_on_consul_with_a_worker_killed_and_a_follower_reconnected(cluster, tmp_path):
    prefix = "observe-%s/" % uuid.uuid4().hex[:8]
    oplog = tmp_path / "ops.log"
    env = dict(os.environ, OPLOG=str(oplog), WF_CACHE_DIR=str(tmp_path / "cache"))
    space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=prefix))
    base = WFCTL + ["--backend", "consul", "--prefix", prefix]
    procs, followers = [], []
    try:
        api.upload_model(space, with_scripts(EXAMPLE, tmp_path / "app.yaml", SCRIPT, ("create", "configure", "start"), "op.sh"), "m")
        api.create_instance(space, "m", "i")
        for i in range(3):
            procs.append(subprocess.Popen(base + ["--consul-url", cluster.urls[i], "worker", "--id", "w%d" % i,
                                                  "--ttl", "3", "--threads", "8"], env=env,
                                          stdout=subprocess.DEVNULL,
                                          stderr=open(tmp_path / ("w%d.err" % i), "wb")))
        deadline = time.monotonic() + 60
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        rec = api.start_workflow(space, "install", "m", "i")
        out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        follow = base + ["--consul-url", cluster.urls[1], "events", "m", "i", "--run", rec["id"],
                         "--follow", "--json"]
        followers.append(subprocess.Popen(follow, env=env, stdout=open(out_a, "wb"), stderr=subprocess.PIPE))
        followers.append(subprocess.Popen(follow, env=env, stdout=open(out_b, "wb"),
                                          stderr=subprocess.DEVNULL))
        by_pid = {p.pid: i for i, p in enumerate(procs)}
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            for line in (oplog.read_text().splitlines() if oplog.exists() else []):
                pid = int(line.split()[-1])
                if pid in by_pid:
                    victim = by_pid[pid]
                    break
            time.sleep(0.01)
        assert victim is not None, "no worker ran a script"
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        deadline = time.monotonic() + 60
        while len(_lines(out_b)) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        followers[1].send_signal(signal.SIGKILL)
        followers[1].wait()
        part1 = _lines(out_b)
        r2 = subprocess.run(follow + ["--since", part1[-1]["cursor"]], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
        assert r2.returncode == 0, r2.stderr
        part2 = [json.loads(line) for line in r2.stdout.splitlines()]
        dummy, err_a = followers[0].communicate(timeout=300)
        assert followers[0].returncode == 0, err_a
        stream = _lines(out_a)
        done = api.wait_run(space, rec["id"], timeout=120)
        trace = api.trace(space, "m", "i", run_id=rec["id"])
    finally:
        for p in procs + followers:
            if p.poll() is None:
                p.terminate()
        for p in procs + followers:
            p.wait(timeout=30)
        try:
            space.delete_tree("")
        finally:
            space.close()
    assert done["status"] == "succeeded"
    assert stream[0]["name"] == "start" and stream[-1]["name"] == "end" and stream[-1]["status"] == "succeeded"
    body = stream[1:-1]
    strip = ("cursor", "run")
    assert [{k: v for k, v in e.items() if k not in strip} for e in body] == \
        [{k: v for k, v in e.items() if k not in strip} for e in trace]
    assert sum(e["kind"] == "state" for e in body) == 19 * 6
    interrupted = [e for e in body if e.get("status") == "interrupted"]
    assert interrupted and all(e["worker"] == "w%d" % victim for e in interrupted)
    assert part1 + part2 == stream
