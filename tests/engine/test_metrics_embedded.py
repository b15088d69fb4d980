"""``wfctl worker --metrics`` (issue 21): each worker's Prometheus endpoint, scraped with
prometheus_client's parser and compared with the trace: operations by status summed over the
workers equal the trace's, one duration per attempt that ran a script, one takeover per
interrupted attempt."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

from prometheus_client import parser  # the test extra installs it: missing fails, never skips

from wfengine import api, keys

from engine_helpers import DB_WEB_MODEL, deploy, embedded, write

WFCTL = [sys.executable, "-m", "wfengine.cli"]

MODEL = DB_WEB_MODEL


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port, deadline):
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                text = r.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    out = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_of_three_workers_one_killed_match_the_trace(tmp_path):
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"), WF_CACHE_DIR=str(tmp_path / "cache"))
    ran = tmp_path / "ran.txt"
    write(tmp_path, "op.sh", """\
        echo "$PPID" >> %s
        sleep 0.2
    """ % ran)
    deploy(embedded(tmp_path), write(tmp_path, "model.yaml", MODEL))
    ports = [_free_port() for dummy in range(3)]
    procs = [subprocess.Popen(WFCTL + ["worker", "--ttl", "1", "--threads", "4", "--id", "w%d" % i,
                                       "--metrics", "127.0.0.1:%d" % ports[i]],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / ("w%d.err" % i), "wb"))
             for i in range(3)]
    space = api.open_space(embedded(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        for p in ports:
            assert ("wf_commits_total", ()) in _scrape(p, time.monotonic() + 30)
        rec = api.start_workflow(space, "install", "m", "i")
        by_pid = {p.pid: i for i, p in enumerate(procs)}
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            for line in (ran.read_text().splitlines() if ran.exists() else []):
                if int(line) in by_pid:
                    victim = by_pid[int(line)]
                    break
            time.sleep(0.005)
        assert victim is not None
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        done = api.wait_run(space, rec["id"], timeout=120)
        assert done["status"] == "succeeded"
        trace = api.trace(space, "m", "i", run_id=rec["id"])
        logs = api.logs(space, "m", "i", run_id=rec["id"])
        alive = [i for i in range(3) if i != victim]
        scraped = {i: _scrape(ports[i], time.monotonic() + 30) for i in alive}
    finally:
        space.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
    by_status = Counter(e.get("status", "ok") for e in trace if e["kind"] == "operation")
    # the dead worker's committed part is in the trace too: only its scrape is missing, so the
    # events it committed are counted from the trace by worker
    dead = "w%d" % victim
    dead_committed = Counter(e.get("status", "ok") for e in trace
                             if e["kind"] == "operation" and e.get("status") != "interrupted"
                             and e["worker"] == dead)
    for status in ("ok", "failed", "retry", "interrupted"):
        total = sum(scraped[i][("wf_operations_total", (("status", status),))] for i in alive)
        assert total + dead_committed[status] == by_status[status], status
    assert by_status["ok"] == 24 + 16 * 6 and by_status["interrupted"] >= 1
    takeovers = sum(scraped[i][("wf_takeovers_total", ())] for i in alive)
    assert takeovers == by_status["interrupted"]
    survivors_logs = [lg for lg in logs if lg["worker"] != dead]
    assert sum(scraped[i][("wf_operation_duration_seconds_count", ())] for i in alive) == len(survivors_logs)
    assert all(lg["duration"] >= 0.2 for lg in survivors_logs)
    assert sum(scraped[i][("wf_operation_duration_seconds_bucket", (("le", "0.1"),))] for i in alive) == 0
    # (one survivor may have had no share of this small run: the sum, not each)
    assert sum(scraped[i][("wf_commits_total", ())] for i in alive) > 0
    for i in alive:
        m = scraped[i]
        assert m[("wf_sessions_renewed_total", ())] > 0 and m[("wf_sessions_lost_total", ())] == 0
        assert m[("wf_ready_queue_size", ())] == 0          # the run is over
        assert m[("wf_worker_info", (("id", "w%d" % i),))] == 1


def test_metrics_bad_address_is_one_line(tmp_path):
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"))
    r = subprocess.run(WFCTL + ["worker", "--metrics", "nohostport"], env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "HOST:PORT" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = subprocess.run(WFCTL + ["worker", "--metrics", "127.0.0.1:%d" % s.getsockname()[1]], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "cannot listen" in r.stderr
