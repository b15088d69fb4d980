"""``wfctl worker --metrics`` (issue 21): each worker's Prometheus endpoint, scraped with
prometheus_client's parser and compared with the trace: operations by status summed over the
workers equal the trace's, one duration per attempt that ran a script, one takeover per
interrupted attempt."""
import os
import socket
import subprocess
import sys
import time

from wfengine import api, keys

from engine_helpers import (DB_WEB_MODEL, assert_metrics_match_trace, deploy, embedded, free_port,
                            kill_worker_inside_a_script, metrics_script, scrape, stop_processes, write)

WFCTL = [sys.executable, "-m", "wfengine.cli"]

MODEL = DB_WEB_MODEL


def test_metrics_of_three_workers_one_killed_match_the_trace(tmp_path):
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"), WF_CACHE_DIR=str(tmp_path / "cache"))
    ran = tmp_path / "ran.txt"
    write(tmp_path, "op.sh", metrics_script(ran))
    deploy(embedded(tmp_path), write(tmp_path, "model.yaml", MODEL))
    ports = [free_port() for dummy in range(3)]
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
            assert ("wf_commits_total", ()) in scrape(p, time.monotonic() + 30)
        rec = api.start_workflow(space, "install", "m", "i")
        victim = kill_worker_inside_a_script(ran, procs, time.monotonic() + 60)
        done = api.wait_run(space, rec["id"], timeout=120)
        assert done["status"] == "succeeded"
        trace = api.trace(space, "m", "i", run_id=rec["id"])
        logs = api.logs(space, "m", "i", run_id=rec["id"])
        scraped = {"w%d" % i: scrape(ports[i], time.monotonic() + 30) for i in range(3) if i != victim}
    finally:
        space.close()
        stop_processes(procs, timeout=30)
    by_status = assert_metrics_match_trace(scraped, "w%d" % victim, trace, logs, min_duration=0.2)
    assert by_status["ok"] == 24 + 16 * 6


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
