"""Issue 17: no operation runs twice that did not have to (fencing, outages), on a real Consul.

These tests stop, pause and kill Consul servers, so they run their OWN 3-server cluster on
127.0.0.21-23 (ports 19300-19302, 19500), never the shared one of tests/conftest.py.  The model
is the seed's topology (examples/seed_example) where every node's Standard operations run a
script that appends one line to a log, with the worker's pid: the log is the execution record,
independent of the engine's own trace.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from wfengine import api, keys

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import EXAMPLE

pytestmark = pytest.mark.consul

WFCTL = [sys.executable, "-m", "wfengine.cli"]
ADDRESSES = ("127.0.0.91", "127.0.0.92", "127.0.0.93")
PORTS = {"server": 19300, "serf_lan": 19301, "serf_wan": 19302, "http": 19500}
# Once Consul is back, the rest of the install (two thirds of 57 operations of 0.3 s on 3
# workers, about 30 s on a loaded machine) must end within this.
RECOVERY = 180
OPS = ("create", "configure", "start", "stop", "delete")
SCRIPT = """\
echo "$WF_RUN $WF_NODE $WF_OPERATION $WF_ATTEMPT $PPID $(date +%s.%N)" >> "$OPLOG"
sleep "${OPSLEEP:-0.3}"
"""


@pytest.fixture(scope="module")
def cluster():
    c = ConsulCluster(os.path.join(ROOT, ".cache", "fence-consul-local"), addresses=ADDRESSES, ports=PORTS)
    c.stop()
    c.start(timeout=90)
    yield c
    for s in c.servers:
        if s.pid:
            try:
                os.kill(s.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    c.stop()


def _model(tmp_path: Path) -> str:
    """The seed example with a script on every Standard operation of every template."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "op.sh").write_text(SCRIPT)
    text = EXAMPLE.read_text()
    iface = "      interfaces:\n        Standard: {%s}\n" % ", ".join("%s: scripts/op.sh" % o for o in OPS)
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line)
        if re.match(r"^      type: tosca\.nodes\.", line):
            out.append(iface)
    path = tmp_path / "app.yaml"
    path.write_text("".join(out))
    return str(path)


class Env:
    def __init__(self, cluster, tmp_path, monkeypatch):
        self.cluster = cluster
        self.tmp_path = tmp_path
        self.prefix = "fence-%s/" % uuid.uuid4().hex[:8]
        self.oplog = tmp_path / "ops.log"
        monkeypatch.setenv("OPLOG", str(self.oplog))
        monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
        self.procs = []
        self.space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=self.prefix))
        api.upload_model(self.space, _model(tmp_path), "m")
        api.create_instance(self.space, "m", "i")

    def start(self, n: int, ttl: float = 10.0):
        for dummy in range(n):
            i = len(self.procs)
            err = open(self.tmp_path / ("worker-%d.err" % i), "w")
            p = subprocess.Popen(WFCTL + ["--backend", "consul", "--consul-url", self.cluster.urls[i % 3],
                                          "--prefix", self.prefix, "worker", "--id", "w%d" % i,
                                          "--ttl", str(ttl), "--threads", "8"],
                                 stdout=subprocess.DEVNULL, stderr=err)
            p.wid = "w%d" % i
            self.procs.append(p)

    def lines(self):
        if not self.oplog.exists():
            return []
        return [l.split() for l in self.oplog.read_text().splitlines() if l.strip()]

    def explain(self, run_id=None, space=None):
        """What a failed test leaves to look at: every worker's stack (SIGUSR2, faulthandler), its
        stderr (kept in tmp_path/worker-<n>.err), the run's queue (ready tuples and locks with
        the session holding them) and Consul's live sessions."""
        out = ["---- fence test diagnostics (%s)" % self.tmp_path]
        sizes = {}
        for i, p in enumerate(self.procs):
            path = self.tmp_path / ("worker-%d.err" % i)
            sizes[i] = path.stat().st_size if path.exists() else 0
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.send_signal(signal.SIGUSR2)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(
                p.poll() is None and (self.tmp_path / ("worker-%d.err" % i)).stat().st_size == sizes[i]
                for i, p in enumerate(self.procs)):
            time.sleep(0.1)
        time.sleep(0.3)    # the rest of the dumps
        try:
            sessions = json.loads(urllib.request.urlopen(
                self.cluster.urls[0] + "/v1/session/list", timeout=5).read().decode())
            out.append("sessions: %s" % ", ".join("%s %s" % (x["ID"][:8], x["Name"]) for x in sessions))
        except Exception as exc:  # noqa: BLE001 (diagnostics only)
            out.append("sessions: unreadable (%s)" % exc)
        if run_id is not None:
            try:
                sp = space or self.space
                for e in sp.list(keys.queue(run_id)):
                    out.append("  %s session=%s value=%s"
                               % (e.key, (e.session or "-")[:8], json.dumps(e.value)[:120]))
            except Exception as exc:  # noqa: BLE001
                out.append("queue: unreadable (%s)" % exc)
            try:
                for e in (space or self.space).list(keys.facts(run_id)):
                    f = e.value if isinstance(e.value, dict) else {}
                    if not f.get("done"):
                        out.append("  %s @%d pc=%s state=%s waiting=%s inflight=%s error=%s"
                                   % (e.key, e.index, f.get("pc"), f.get("state"), f.get("waiting"),
                                      f.get("inflight"), json.dumps(f.get("error"))[:200]))
            except Exception as exc:  # noqa: BLE001
                out.append("facts: unreadable (%s)" % exc)
        for i, p in enumerate(self.procs):
            path = self.tmp_path / ("worker-%d.err" % i)
            text = path.read_text(errors="replace") if path.exists() else ""
            lines = text.splitlines()
            out.append("---- worker %s (pid %d, %s): %s, last %d of %d lines"
                       % (p.wid, p.pid, "running" if p.poll() is None else "exit %s" % p.returncode,
                          path, min(400, len(lines)), len(lines)))
            out.extend(lines[-400:])
        print("\n".join(out))

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        try:
            self.space.delete_tree("")
        except Exception:  # noqa: BLE001 (the cluster may be the reason the test failed)
            pass
        self.space.close()


@pytest.fixture
def env(cluster, tmp_path, monkeypatch):
    e = Env(cluster, tmp_path, monkeypatch)
    yield e
    e.close()


def _until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out (%.0f s) waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _executions(env, run_id):
    return Counter((l[1], l[2]) for l in env.lines() if l[0] == run_id)


def _stale(space, run_id):
    return Counter((e["node"], e["name"]) for e in api.trace(space, "m", "i", run_id=run_id)
                   if e["kind"] == "operation" and e.get("status") == "stale")


def test_sigstop_past_the_ttl_then_sigcont_five_times(env, monkeypatch):
    """SIGSTOP a worker with an operation in flight until its session expired, SIGCONT, five
    times (on a different worker each time where possible), through install, uninstall and
    install runs: each operation of each run is in the log once, except those the paused worker
    had in flight when its session expired, which are in the trace as ``stale`` (its worker id)
    once per extra execution."""
    monkeypatch.setenv("OPSLEEP", "1")     # operations long enough to be paused in flight
    runs = []
    try:
        env.start(3, ttl=10.0)
        pids = {p.pid: p for p in env.procs}
        rounds, victims, resumed = 0, [], []
        workflows = ["install", "uninstall"] * 5
        while rounds < 5:
            assert workflows, "ran out of workflows before 5 pauses"
            rec = api.start_workflow(env.space, workflows.pop(0), "m", "i")
            runs.append(rec["id"])
            while rounds < 5:
                # an operation in flight on some worker (its script just started: the line names it)
                def busy():
                    if api.wait_run(env.space, rec["id"], timeout=0)["status"] != "running":
                        return "ended"
                    ls = [l for l in env.lines() if l[0] == rec["id"]]
                    for l in reversed(ls[-3:]):
                        p = pids.get(int(l[4]))
                        if p is not None and p.poll() is None and p.wid not in victims[-1:]:
                            return p
                    return None
                victim = _until(busy, 120, "an operation in flight")
                if victim == "ended":
                    break
                victim.send_signal(signal.SIGSTOP)
                wkey = keys.worker(victim.wid)
                # its session expired: Consul deleted its registration (behavior delete)
                _until(lambda: env.space.get(wkey) is None, 60, "the paused worker's session to expire")
                victim.send_signal(signal.SIGCONT)
                resumed.append((victim.pid, time.time()))
                victims.append(victim.wid)
                rounds += 1
            done = api.wait_run(env.space, rec["id"], timeout=180)
            assert done["status"] == "succeeded", done
        for run_id in runs:
            done = api.wait_run(env.space, run_id, timeout=180)
            assert done["status"] == "succeeded", done
        stale_total = 0
        for run_id in runs:
            execs = _executions(env, run_id)
            stale = _stale(env.space, run_id)
            assert execs and all(n >= 1 for n in execs.values())
            for op, n in execs.items():
                assert n == 1 + stale.get(op, 0), (run_id, op, n, stale.get(op, 0))
            assert set(stale) <= set(execs)
            stale_total += sum(stale.values())
            for e in api.trace(env.space, "m", "i", run_id=run_id):
                if e.get("status") == "stale":
                    assert e["worker"] in victims
        # Starts by a paused worker within 2 s after its SIGCONT (the stale starts of the issue):
        # only possible for a step paused between its fencing check and its start.
        late = sum(1 for l in env.lines() for pid, t in resumed
                   if int(l[4]) == pid and t <= float(l[5]) <= t + 2.0)
        print("fence: 5 pauses, %d runs, %d operations, %d stale executions (all recorded), %d started "
              "by a paused worker after its SIGCONT" % (len(runs), sum(sum(_executions(env, r).values()) for r in runs),
                                                        stale_total, late))
        assert len(victims) == 5
    except BaseException:
        env.explain(runs[-1] if runs else None)
        raise


def _outage(env, cluster, stop, resume, seconds):
    """Install; when a third of the operations ran, take Consul away for ``seconds``, bring it
    back: the run succeeds and no operation ran twice.  Every wait is bounded (the run gets
    RECOVERY seconds once Consul is back); a failure prints the workers' stacks and stderr."""
    env.start(3, ttl=10.0)
    rec = api.start_workflow(env.space, "install", "m", "i")
    total = 19 * 3
    space = None
    try:
        _until(lambda: len(env.lines()) >= total // 3, 120, "a third of the operations")
        t0 = time.monotonic()
        stop()
        time.sleep(seconds)          # the outage itself (what the test is about), not a wait for a state
        resume()
        out_for = time.monotonic() - t0
        space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=env.prefix))
        done = api.wait_run(space, rec["id"], timeout=RECOVERY)
        assert done["status"] == "succeeded", (
            "run %s %s once Consul came back (%d of %d operations ran; the workers' stacks and "
            "stderr, the run's queue and unfinished facts are printed above)"
            % (rec["id"], "still running after %.0f s" % RECOVERY if done["status"] == "running"
               else "ended %s" % done["status"], len(_executions(env, rec["id"])), total))
        execs = _executions(env, rec["id"])
        again = {op: n for op, n in execs.items() if n > 1}
        assert len(execs) == total and not again, again
        assert not _stale(space, rec["id"])
        salvaged = []
        for p in env.procs:
            salvaged.append(Path(env.tmp_path / ("worker-%s.err" % p.wid[1:])).read_text().count(
                "result committed after the node's lock was lost"))
        print("fence: outage %.0f s, %d operations, 0 run twice, %d results committed after "
              "their lock was lost, run ended %.0f s after Consul came back"
              % (out_for, len(execs), sum(salvaged), time.monotonic() - t0 - out_for))
    except BaseException:
        env.explain(rec["id"], space)
        raise
    finally:
        if space is not None:
            space.close()


def test_full_outage_of_90_s_runs_nothing_twice(env, cluster):
    """All three servers SIGSTOPped for 90 s mid-install (longer than the workers' TTL: on
    SIGCONT, Consul expires their sessions at once), then resumed."""
    def stop():
        for s in cluster.servers:
            os.kill(s.pid, signal.SIGSTOP)

    def resume():
        for s in cluster.servers:
            os.kill(s.pid, signal.SIGCONT)
        cluster.wait_leader(90)
    _outage(env, cluster, stop, resume, 90)


def test_quorum_loss_of_90_s_runs_nothing_twice(env, cluster):
    """Two of the three servers killed for 90 s mid-install (no quorum: no write, no session
    renewal), then restarted."""
    down = []

    def stop():
        leader = cluster.wait_leader(30)
        others = [s for s in cluster.servers if s is not leader]
        for s in [leader, others[0]]:
            cluster.kill(s, signal.SIGKILL)
            down.append(s)

    def resume():
        for s in down:
            cluster.restart(s, timeout=90)
        cluster.wait_leader(90)
    _outage(env, cluster, stop, resume, 90)
