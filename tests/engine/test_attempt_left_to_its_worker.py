"""A worker paused past its TTL with an operation in flight, resumed while another worker holds
its node: the other worker leaves the attempt to it (attempts.py) instead of running the
operation again, and the resumed worker commits its result (the CAS on the fact it checkpointed).
Before attempts.py the second worker ran it at once (attempt 2) and the first one's result was
recorded as stale: after an outage longer than the TTL, that ran finished operations twice.
Real worker processes on the embedded Space, SIGSTOP and SIGCONT."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from wfengine import api, runs

from engine_helpers import app_on_server, deploy, embedded, stop_processes, until

WFCTL = [sys.executable, "-m", "wfengine.cli"]

# The operation runs until the test says so: it is in flight for as long as the test needs.
SCRIPT = """\
echo "$WF_ATTEMPT" >> "$LEFT_DIR/started"
while [ ! -e "$LEFT_DIR/go" ]; do sleep 0.05; done
echo "$WF_ATTEMPT" >> "$LEFT_DIR/ended"
"""


def _worker(tmp_path, env, wid, ttl):
    return subprocess.Popen(WFCTL + ["-v", "worker", "--ttl", str(ttl), "--threads", "2", "--id", wid],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / ("%s.err" % wid), "wb"))


def _err(tmp_path, wid):
    path = tmp_path / ("%s.err" % wid)
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_resumed_worker_commits_its_attempt_that_another_left_to_it(tmp_path):
    model = app_on_server(tmp_path, SCRIPT, "op.sh")
    opts = embedded(tmp_path)
    deploy(opts, model)
    env = dict(os.environ, WF_SPACE=opts.path, LEFT_DIR=str(tmp_path))
    procs = [_worker(tmp_path, env, "w0", 4)]
    space = api.open_space(opts)
    paused = False
    try:
        until(lambda: runs.live_workers(space) == ["w0"], 60, "w0 to register")
        rec = api.start_workflow(space, "install", "m", "i")
        until((tmp_path / "started").exists, 60, "the operation to start on w0")
        procs[0].send_signal(signal.SIGSTOP)
        paused = True
        # Its session expired: its registration and the node's lock are gone.
        until(lambda: runs.live_workers(space) == [], 60, "w0's session to expire")
        # w1's grace for an unregistered worker is half its TTL (10 s): w0, resumed below,
        # registers again at its first renewal, at once, well before (even on a loaded machine).
        procs.append(_worker(tmp_path, env, "w1", 20))
        until(lambda: ("left to it" in _err(tmp_path, "w1")
                       or len((tmp_path / "started").read_text().split()) > 1),
              60, "w1 to find w0's attempt")
        assert (tmp_path / "started").read_text().split() == ["1"], "w1 ran it again"
        procs[0].send_signal(signal.SIGCONT)
        paused = False
        (tmp_path / "go").write_text("")
        done = api.wait_run(space, rec["id"], timeout=90)
        assert done["status"] == "succeeded", (done, _err(tmp_path, "w0")[-2000:],
                                               _err(tmp_path, "w1")[-2000:])
        assert (tmp_path / "started").read_text().split() == ["1"]
        assert (tmp_path / "ended").read_text().split() == ["1"]
        creates = [(e.get("status", "ok"), e.get("attempt"), e.get("worker"))
                   for e in api.trace(space, "m", "i", run_id=rec["id"])
                   if e["kind"] == "operation" and e["node"] == "app_0" and e["name"].endswith("create")]
        assert creates == [("ok", 1, "w0")], creates
        assert "result committed after the node's lock was lost" in _err(tmp_path, "w0")
    finally:
        if paused:
            procs[0].send_signal(signal.SIGCONT)
        space.close()
        stop_processes(procs, timeout=30)
