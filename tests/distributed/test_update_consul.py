"""Issue 19 on a real Consul with 3 worker daemons: the seed example updated to version 2 (a worker
SIGKILLed during the update run), back to version 1, then no change.

Its OWN 3-server cluster on 127.0.0.51-53 (ports 22300-22302, HTTP 22500): it kills workers, and
must not disturb the shared cluster of tests/conftest.py.  Every Standard operation runs a script
that appends a line (run, node, operation, worker pid) to a log: the record of what really ran.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from wfengine import api

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import EXAMPLE, LONG_SCRIPT, group_gone, stop_processes, until, with_scripts

pytestmark = pytest.mark.consul

WFCTL = [sys.executable, "-m", "wfengine.cli"]
ADDRESSES = ("127.0.0.51", "127.0.0.52", "127.0.0.53")
PORTS = {"server": 22300, "serf_lan": 22301, "serf_wan": 22302, "http": 22500}
SCRIPT = """\
echo "$WF_RUN $WF_NODE $WF_OPERATION $PPID" >> "$OPLOG"
sleep "${OPSLEEP:-0.2}"
"""
OLD = {"A_%d" % k for k in range(9)} | {"B_0", "C_0", "C_1", "D_0", "srvA_0", "srvA_1", "srvA_2", "srvB_0",
                                        "srvC_0", "srvD_0"}
NOVEL = {"srvA_3", "E_0"} | {"A_%d" % k for k in range(9, 16)}


@pytest.fixture(scope="module")
def cluster():
    c = ConsulCluster(os.path.join(ROOT, ".cache", "day2-consul"), addresses=ADDRESSES, ports=PORTS)
    c.stop()
    c.start(timeout=90)
    yield c
    c.stop()


def _daemons(cluster, prefix, tmp_path, env):
    """Three worker daemons, one per Consul server, and a ``wfctl`` bound to the cluster and
    ``prefix``: the function and the worker processes."""
    base = WFCTL + ["--backend", "consul", "--consul-url", cluster.urls[0], "--prefix", prefix]

    def wfctl(*argv, timeout=300):
        return subprocess.run(base + list(argv), capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)

    procs = []
    for i in range(3):
        with open(tmp_path / ("worker-%d.err" % i), "w") as err:
            procs.append(subprocess.Popen(
                WFCTL + ["--backend", "consul", "--consul-url", cluster.urls[i], "--prefix", prefix, "worker",
                         "--id", "w%d" % i, "--ttl", "10"], stdout=subprocess.DEVNULL, stderr=err, env=env))
    return wfctl, procs


def test_update_on_consul_with_a_worker_killed(cluster, tmp_path, monkeypatch):
    prefix = "day2-%s/" % uuid.uuid4().hex[:8]
    oplog = tmp_path / "ops.log"
    env = dict(os.environ, OPLOG=str(oplog), WF_CACHE_DIR=str(tmp_path / "cache"))
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    v1 = with_scripts(EXAMPLE, tmp_path / "v1" / "app.yaml", SCRIPT)
    v2 = with_scripts(EXAMPLE.parent / "app_v2.yaml", tmp_path / "v2" / "app.yaml", SCRIPT)

    wfctl, procs = _daemons(cluster, prefix, tmp_path, env)
    space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=prefix))
    try:
        assert wfctl("model", v1, "app").returncode == 0
        assert wfctl("instantiate", "app", "prod").returncode == 0
        r = wfctl("workflow", "install", "app", "prod", "--wait", "--timeout", "240")
        assert r.returncode == 0, r.stderr
        v1_status = api.status(space, "app", "prod")["nodes"]
        assert Counter(v["state"] for v in v1_status.values()) == {"started": 19}

        # version 2, a worker SIGKILLed while the update runs
        assert wfctl("model", v2, "app").returncode == 0
        r = wfctl("update", "app", "prod")
        assert r.returncode == 0 and "9 novel, 0 obsolete" in r.stdout, r.stdout + r.stderr
        run_id = api.instance_runs(space, "app", "prod")[-1]["id"]

        def begun():
            lines = [ln.split() for ln in oplog.read_text().splitlines()] if oplog.exists() else []
            return [ln for ln in lines if ln[0] == run_id]
        lines = until(lambda: len(begun()) >= 3 and begun(), 120, "three operations of the update run")
        pid = int(lines[-1][3])
        victim = next(p for p in procs if p.pid == pid)      # the worker running the latest operation
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        r = wfctl("wait", "app", "prod", "--timeout", "240")
        assert r.returncode == 0, r.stdout + r.stderr
        assert api.instance_runs(space, "app", "prod")[-1]["id"] == run_id
        st = api.status(space, "app", "prod")["nodes"]
        assert Counter(v["state"] for v in st.values()) == {"started": 28}
        assert {n: st[n]["relationships"] for n in OLD} == {n: v1_status[n]["relationships"] for n in OLD}
        ran = {(ln[1], ln[2].rsplit(".", 1)[-1]) for ln in begun()}
        assert ran == {(n, op) for n in NOVEL for op in ("create", "configure", "start")}   # novel only
        trace = api.trace(space, "app", "prod", run_id=run_id)
        ok = Counter((e["node"], e["name"].rsplit(".", 1)[-1], (e["relationship"] or {}).get("source"))
                     for e in trace if e["kind"] == "operation" and e.get("status", "ok") == "ok")
        assert {s for (n, op, s) in ok if n == "B_0" and op == "add_source"} == NOVEL - {"srvA_3"}
        assert all(ok[("B_0", "add_source", s)] == 1 for s in NOVEL - {"srvA_3"})
        assert not any(op == "pre_configure_target" and n in OLD for (n, op, s) in ok)

        # back to version 1, then no change
        assert wfctl("model", v1, "app").returncode == 0
        r = wfctl("update", "app", "prod", "--wait", "--timeout", "240")
        assert r.returncode == 0 and "0 novel, 9 obsolete" in r.stdout, r.stdout + r.stderr
        back = api.instance_runs(space, "app", "prod")[-1]["id"]
        st = api.status(space, "app", "prod")["nodes"]
        assert set(st) == OLD and Counter(v["state"] for v in st.values()) == {"started": 19}
        lines = [ln.split() for ln in oplog.read_text().splitlines()]
        assert {(ln[1], ln[2].rsplit(".", 1)[-1]) for ln in lines if ln[0] == back} == \
            {(n, op) for n in NOVEL for op in ("stop", "delete")}
        n_runs = len(api.instance_runs(space, "app", "prod"))
        r = wfctl("update", "app", "prod", "--wait")
        assert r.returncode == 0 and "no run" in r.stdout
        assert len(api.instance_runs(space, "app", "prod")) == n_runs
    finally:
        stop_processes(procs)
        try:
            space.delete_tree("")
        finally:
            space.close()


FAILING = """\
if [ "$WF_NODE" = B_0 ] && [ "${WF_OPERATION##*.}" = stop ] && [ ! -e "$FLAG" ]; then
  echo "cannot stop B_0" >&2; exit 4
fi
echo "$WF_RUN $WF_NODE $WF_OPERATION $PPID" >> "$OPLOG"
"""


def test_uninstall_past_a_failure_and_cancel_on_consul(cluster, tmp_path):
    """The other acceptance items of issue 19 with 3 worker daemons on Consul: an uninstall whose
    B_0 stop fails deletes every other node and ends failed naming it, a later one runs only B_0's
    stop and delete; a cancel kills the process group of a 60 s operation that ignores SIGTERM
    after the grace, the run ends canceled, and the next install continues it."""
    prefix = "day2b-%s/" % uuid.uuid4().hex[:8]
    oplog, flag, pidfile, fast = (tmp_path / n for n in ("ops.log", "flag", "pid", "fast"))
    env = dict(os.environ, OPLOG=str(oplog), FLAG=str(flag), PIDFILE=str(pidfile), FAST=str(fast),
               WF_CACHE_DIR=str(tmp_path / "cache"), WF_LOG_DIR=str(tmp_path / "logs"))
    (tmp_path / "app").mkdir()
    app = Path(with_scripts(EXAMPLE, tmp_path / "app" / "app.yaml", SCRIPT))
    (tmp_path / "app" / "scripts" / "op.sh").write_text(FAILING)
    (tmp_path / "slow" / "scripts").mkdir(parents=True)
    (tmp_path / "slow" / "scripts" / "long.sh").write_text(LONG_SCRIPT)
    (tmp_path / "slow" / "m.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
        "    box: {type: tosca.nodes.Compute}\n    app:\n      type: tosca.nodes.SoftwareComponent\n"
        "      requirements: [{host: box}]\n      interfaces: {Standard: {create: scripts/long.sh}}\n")

    wfctl, procs = _daemons(cluster, prefix, tmp_path, env)
    space = api.open_space(api.SpaceOptions(backend="consul", url=cluster.urls[0], prefix=prefix))
    try:
        assert wfctl("model", str(app), "app").returncode == 0
        assert wfctl("instantiate", "app", "prod").returncode == 0
        r = wfctl("workflow", "install", "app", "prod", "--wait", "--timeout", "240")
        assert r.returncode == 0, r.stdout + r.stderr
        r = wfctl("workflow", "uninstall", "app", "prod", "--wait", "--timeout", "240")
        assert r.returncode == 1 and "uninstall app/prod: failed" in r.stdout and "error on B_0" in r.stdout, \
            r.stdout + r.stderr
        rec = api.instance_runs(space, "app", "prod")[-1]
        assert [(e["node"], e["operation"].rsplit(".", 1)[-1], e["exit_code"]) for e in rec["errors"]] == \
            [("B_0", "stop", 4)]
        st = {n: v["state"] for n, v in api.status(space, "app", "prod")["nodes"].items()}
        assert st.pop("B_0") == "error" and Counter(st.values()) == {"deleted": 18}
        ran = [ln.split() for ln in oplog.read_text().splitlines() if ln.split()[0] == rec["id"]]
        assert {ln[1] for ln in ran} == set(st) and {ln[2].rsplit(".", 1)[-1] for ln in ran} == {"stop", "delete"}
        flag.write_text("ok")
        r = wfctl("workflow", "uninstall", "app", "prod", "--wait", "--timeout", "240")
        assert r.returncode == 0, r.stdout + r.stderr
        again = [ln.split() for ln in oplog.read_text().splitlines() if ln.split()[0] == rec["id"]][len(ran):]
        assert [(ln[1], ln[2].rsplit(".", 1)[-1]) for ln in again] == [("B_0", "stop"), ("B_0", "delete")]
        assert Counter(v["state"] for v in api.status(space, "app", "prod")["nodes"].values()) == {"deleted": 19}

        # cancel: the 60 s operation's group is killed after the grace, on whichever worker runs it
        assert wfctl("model", str(tmp_path / "slow" / "m.yaml"), "slow").returncode == 0
        assert wfctl("instantiate", "slow", "i").returncode == 0
        assert wfctl("workflow", "install", "slow", "i").returncode == 0
        pgid = until(lambda: pidfile.exists() and int(pidfile.read_text()), 120, "the long operation")
        # timed from before the request: a worker may see the cancel and start the grace before
        # the wfctl process has even exited (under load, 0.75 s measured from its exit)
        canceled_at = time.monotonic()
        r = wfctl("cancel", "slow", "i")
        assert r.returncode == 0 and "operations in flight are stopped" in r.stdout, r.stdout + r.stderr
        until(lambda: group_gone(pgid), 60, "the process group to be killed")
        took = time.monotonic() - canceled_at
        assert 2.0 <= took < 45, took   # after the 2 s grace, long before the 60 s sleep
        r = wfctl("wait", "slow", "i", "--timeout", "120")
        assert "canceled" in r.stdout, r.stdout + r.stderr
        assert api.instance_runs(space, "slow", "i")[-1]["status"] == "canceled"
        fast.write_text("")
        r = wfctl("workflow", "install", "slow", "i", "--wait", "--timeout", "120")
        assert r.returncode == 0 and "succeeded" in r.stdout, r.stdout + r.stderr
        runs = api.instance_runs(space, "slow", "i")
        assert len(runs) == 1 and runs[0]["status"] == "succeeded"
        assert [(x["node"], x["status"]) for x in api.logs(space, "slow", "i")] == [
            ("app_0", "canceled"), ("app_0", "ok")]
    finally:
        stop_processes(procs)
        try:
            space.delete_tree("")
        finally:
            space.close()
