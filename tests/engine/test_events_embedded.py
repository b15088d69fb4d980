"""``wfctl events`` on the embedded Space (issue 21): a run followed while a worker process is
SIGKILLed inside an operation, and a follower killed and reconnected with ``--since``."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from wfengine import api, keys
from wfengine.stream import parse_cursor, run_events
from wfengine.timeline import timeline_data

from engine_helpers import DB_WEB_MODEL, EXAMPLE, deploy, embedded, run, write

WFCTL = [sys.executable, "-m", "wfengine.cli"]

MODEL = DB_WEB_MODEL


def _lines(path):
    """Complete lines written so far (a follower killed mid-line leaves a partial last one)."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def test_cursor_parsing_and_since_skip_exactly_what_was_shown(tmp_path):
    assert parse_cursor("12") == (12, 1 << 40)
    assert parse_cursor("12.3") == (12, 3)
    for bad in ("", "x", "1.2.3", "-1", "1."):
        with pytest.raises(ValueError):
            parse_cursor(bad)
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    run(opts, "install", workers=1)
    space = api.open_space(opts)
    try:
        rid = api.instance_runs(space, "m", "i")[-1]["id"]
        full = list(run_events(space, rid))
        trace = api.trace(space, "m", "i", run_id=rid)
        assert full[0]["name"] == "start" and full[-1]["name"] == "end" and full[-1]["status"] == "succeeded"
        assert [(e["seq"], e["node"], e["kind"], e["name"]) for e in full[1:-1]] == \
            [(e["seq"], e["node"], e["kind"], e["name"]) for e in trace]
        # Cut anywhere (inside a commit of many events, or at its end): the rest, no more, no less.
        for cut in (1, 7, len(full) // 2, len(full) - 1):
            cursor = parse_cursor(full[cut - 1]["cursor"])
            assert [e["cursor"] for e in run_events(space, rid, since=cursor)] == \
                [e["cursor"] for e in full[cut:]]
        whole = parse_cursor(full[5]["cursor"].split(".")[0])      # INDEX: after that whole commit
        rest = list(run_events(space, rid, since=whole))
        assert rest and all(int(e["cursor"].split(".")[0]) > whole[0] for e in rest)
    finally:
        space.close()


def test_unknown_run_and_instance_without_runs_are_one_line_errors(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    env = dict(os.environ, WF_SPACE=opts.path)
    r = subprocess.run(WFCTL + ["events", "m", "i"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: instance m/i has no run yet"
    r = subprocess.run(WFCTL + ["events", "m", "i", "--run", "nope"], env=env, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: instance m/i has no run nope"


def test_follow_a_run_with_a_worker_sigkilled_and_a_follower_reconnected(tmp_path):
    """Three worker processes; the one first seen inside an operation's script is SIGKILLed.
    Follower A follows the whole run and ends by itself with it; follower B is SIGKILLed after
    a few events and restarted with --since its last cursor.  A's stream holds the run's start and
    end and exactly the trace's events (every state and operation, the interrupted attempt naming
    the dead worker); B's two parts put together are A's stream: no gap, no duplicate."""
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"), WF_CACHE_DIR=str(tmp_path / "cache"))
    ran = tmp_path / "ran.txt"
    write(tmp_path, "op.sh", """\
        echo "start $WF_NODE ${WF_OPERATION##*.} $PPID" >> %s
        sleep 0.3
    """ % ran)
    deploy(embedded(tmp_path), write(tmp_path, "model.yaml", MODEL))
    procs = [subprocess.Popen(WFCTL + ["worker", "--ttl", "1", "--threads", "4", "--id", "w%d" % i],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / ("w%d.err" % i), "wb"))
             for i in range(3)]
    followers = []
    space = api.open_space(embedded(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        rec = api.start_workflow(space, "install", "m", "i")
        out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        follower_a = subprocess.Popen(WFCTL + ["events", "m", "i", "--follow", "--json"], env=env,
                                      stdout=open(out_a, "wb"), stderr=subprocess.PIPE)
        follower_b = subprocess.Popen(WFCTL + ["events", "m", "i", "--run", rec["id"], "-f", "--json"],
                                      env=env, stdout=open(out_b, "wb"), stderr=subprocess.DEVNULL)
        followers += [follower_a, follower_b]
        by_pid = {p.pid: i for i, p in enumerate(procs)}
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            for line in (ran.read_text().splitlines() if ran.exists() else []):
                pid = int(line.split()[-1])
                if pid in by_pid:
                    victim = by_pid[pid]
                    break
            time.sleep(0.005)
        assert victim is not None, "no worker ran a script"
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        # B has shown a few events (the run is still going: the dead worker's step waits for its TTL)
        deadline = time.monotonic() + 60
        while len(_lines(out_b)) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        follower_b.send_signal(signal.SIGKILL)
        follower_b.wait()
        part1 = _lines(out_b)
        mid_run = not any(e["kind"] == "run" and e["name"] == "end" for e in part1)
        r2 = subprocess.run(WFCTL + ["events", "m", "i", "--run", rec["id"], "--follow", "--json",
                                     "--since", part1[-1]["cursor"]],
                            env=env, capture_output=True, text=True, timeout=180, check=False)
        assert r2.returncode == 0, r2.stderr
        part2 = [json.loads(line) for line in r2.stdout.splitlines()]
        # A ends by itself when the run ends
        dummy, err_a = follower_a.communicate(timeout=180)
        assert follower_a.returncode == 0, err_a
        stream = _lines(out_a)
        done = api.wait_run(space, rec["id"], timeout=60)
        trace = api.trace(space, "m", "i", run_id=rec["id"])
        picture = timeline_data(space, "m", "i", rec["id"])
    finally:
        space.close()
        for p in procs + followers:
            if p.poll() is None:
                p.terminate()
        for p in procs + followers:
            p.wait(timeout=30)
    assert done["status"] == "succeeded"
    dead = "w%d" % victim
    # the run's start and end bracket the stream
    assert stream[0]["kind"] == "run" and stream[0]["name"] == "start"
    assert stream[-1]["kind"] == "run" and stream[-1]["name"] == "end" and stream[-1]["status"] == "succeeded"
    assert sum(e["kind"] == "run" for e in stream) == 2
    # every event of the trace, in its order, nothing else
    body = stream[1:-1]
    strip = ("cursor", "run")
    assert [{k: v for k, v in e.items() if k not in strip} for e in body] == \
        [{k: v for k, v in e.items() if k not in strip} for e in trace]
    counts = Counter((e["kind"], e.get("status", "ok")) for e in body)
    assert counts[("state", "ok")] == 8 * 6            # creating..started, 6 states x 8 nodes
    node_ops = Counter((e["node"], e["name"].rsplit(".", 1)[-1]) for e in body
                       if e["kind"] == "operation" and e.get("status", "ok") == "ok" and not e["relationship"])
    assert node_ops == Counter({(n, o): 1 for n in ["db_%d" % i for i in range(4)] + ["web_%d" % i for i in range(4)]
                                for o in ("create", "configure", "start")})
    assert counts[("operation", "ok")] == 24 + 16 * 6   # and 6 per DependsOn instance (4 x 4)
    interrupted = [e for e in body if e.get("status") == "interrupted"]
    assert interrupted and all(e["worker"] == dead for e in interrupted), interrupted
    # cursors strictly increase
    cursors = [tuple(int(x) for x in e["cursor"].split(".")) for e in stream]
    assert cursors == sorted(set(cursors))
    # B's two parts: A's stream exactly
    assert part1 and mid_run == bool(part2)
    assert [e["cursor"] for e in part1 + part2] == [e["cursor"] for e in stream]
    assert part1 + part2 == stream
    # the timeline of that run: one bar per attempt, the interrupted one naming the dead worker,
    # every attempt that ran its script at least its 0.3 s long
    assert len(picture["bars"]) == sum(e["kind"] == "operation" for e in body)
    cut = [b for b in picture["bars"] if b["status"] == "interrupted"]
    assert len(cut) == len(interrupted) and all(b["worker"] == dead for b in cut)
    ran = [b for b in picture["bars"] if b["implemented"]]
    assert len(ran) == 4 * 2 + 4 * 3 and all(b["end"] - b["start"] >= 0.3 for b in ran)
