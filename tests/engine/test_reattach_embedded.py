"""Issue 17, re-attach on the embedded Space: the ``workflow --wait`` client hosts the run's workers;
when it is killed (SIGKILL) or interrupted (SIGINT) mid-run, the run stays ``running``;
``wfctl wait`` sees its workers dead (their sessions expired) and finishes it with a local worker.
Every operation appends to a log when it starts and when it ends: afterwards every operation ran,
and only those in flight at the kill ran twice (the new run of each is in the trace, by the new
worker).  A second ``--wait`` on the same workflow attaches; another workflow is a conflict."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List, Tuple

import pytest

from engine_helpers import write

WFCTL = [sys.executable, "-m", "wfengine.cli"]
NODES = ["n%d" % i for i in range(5)]
OPS = ("create", "configure", "start")


def _model(tmp_path: Path, log: Path) -> str:
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/op.sh", """\
        echo "$WF_NODE $WF_OPERATION begin" >> %s
        sleep 0.3
        echo "$WF_NODE $WF_OPERATION end" >> %s
    """ % (log, log))
    chain = []
    for i, n in enumerate(NODES):
        req = "[{host: box}%s]" % (", {dependency: n%d}" % (i - 1) if i else "")
        chain.append("""\
    %s:
      type: tosca.nodes.SoftwareComponent
      requirements: %s
      interfaces:
        Standard: {create: scripts/op.sh, configure: scripts/op.sh, start: scripts/op.sh}
""" % (n, req))
    return write(tmp_path, "m.yaml", "tosca_definitions_version: tosca_simple_yaml_1_3\n"
                 "topology_template:\n  node_templates:\n    box: {type: tosca.nodes.Compute}\n"
                 + "".join(chain))


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"), WF_WORKER_TTL="2",
               WF_MODEL_CACHE=str(tmp_path / "cache"), WF_LOG_DIR=str(tmp_path / "logs"))
    env.pop("WF_BACKEND", None)
    return env


def _wfctl(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(WFCTL + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _lines(log: Path) -> List[Tuple[str, str, str]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        if line.strip():
            node, op, what = line.split()
            out.append((node, op.rsplit(".", 1)[-1], what))
    return out


def _prepared(tmp_path: Path):
    log = tmp_path / "ops.log"
    env = _env(tmp_path)
    assert _wfctl(env, "model", _model(tmp_path, log), "m").returncode == 0
    assert _wfctl(env, "instantiate", "m", "i").returncode == 0
    return env, log


def _start_client(tmp_path: Path, env: dict, log: Path, begun: int) -> subprocess.Popen:
    """A ``workflow --wait`` client, once ``begun`` operations have started in it."""
    # SIGINT at its default, as in a terminal: a shell without job control (CI running the tests
    # in the background) starts its children with SIGINT ignored, and the Ctrl-C would be lost.
    client = subprocess.Popen(WFCTL + ["workflow", "install", "m", "i", "--wait"], env=env,
                              stdout=open(tmp_path / "client.out", "wb"),
                              stderr=open(tmp_path / "client.err", "wb"),
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while sum(1 for line in _lines(log) if line[2] == "begin") < begun:
        assert client.poll() is None, (tmp_path / "client.err").read_text()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.02)
    return client


def _check_finished(env: dict, log: Path, at_kill: List[Tuple[str, str, str]], killed_pid: int) -> None:
    """Every operation ran; only those in flight at the kill ran twice, and the trace shows both
    attempts: the killed process's, then the one of a worker of the process that waited."""
    st = json.loads(_wfctl(env, "status", "m", "i", "--json").stdout)
    assert {n: v["state"] for n, v in st["nodes"].items()} == dict(
        {n + "_0": "started" for n in NODES}, box_0="started")
    begun = Counter((n, op) for n, op, what in _lines(log) if what == "begin")
    assert set(begun) == {(n + "_0", op) for n in NODES for op in OPS}
    ended_before = {(n, op) for n, op, what in at_kill if what == "end"}
    in_flight = {(n, op) for n, op, what in at_kill if what == "begin"} - ended_before
    twice = {k for k, c in begun.items() if c > 1}
    assert all(c <= 2 for c in begun.values()), begun
    assert twice <= in_flight, (twice, in_flight)
    assert len(in_flight) <= 1          # one worker of one thread on a chain
    trace = json.loads(_wfctl(env, "trace", "m", "i", "--json").stdout)
    for node, op in twice:
        ops = [e for e in trace if e["node"] == node and e["kind"] == "operation"
               and e["name"].endswith(op)]
        # the start of the killed worker's attempt is in the trace, then the new worker's
        assert [e["attempt"] for e in ops] == [1, 2], ops
        assert "-%d-" % killed_pid in ops[0]["worker"], ops
        assert "-%d-" % killed_pid not in ops[1]["worker"], ops


def _kill_then_wait(tmp_path: Path, sig: int, command: Tuple[str, ...] = ("wait", "m", "i")) -> int:
    env, log = _prepared(tmp_path)
    client = _start_client(tmp_path, env, log, begun=4)
    client.send_signal(sig)
    rc = client.wait(timeout=60)
    at_kill = _lines(log)
    space_runs = json.loads(_wfctl(env, "runs", "m", "i", "--json").stdout)
    assert space_runs[-1]["status"] == "running", (rc, (tmp_path / "client.err").read_text())
    r = _wfctl(env, *command, "--timeout", "120")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "install m/i: succeeded" in r.stdout
    assert "no live worker" in r.stderr
    _check_finished(env, log, at_kill, client.pid)
    return rc


@pytest.mark.parametrize("command", [("wait", "m", "i"),
                                     ("workflow", "install", "m", "i", "--wait"),
                                     ("workflow", "install", "m", "i", "--resume")],
                         ids=["wait", "again", "resume"])
def test_sigkill_of_the_wait_client_then_wfctl_wait_finishes_the_run(tmp_path, command):
    assert _kill_then_wait(tmp_path, signal.SIGKILL, command) == -signal.SIGKILL


def test_ctrl_c_of_the_wait_client_then_wfctl_wait_finishes_the_run(tmp_path):
    assert _kill_then_wait(tmp_path, signal.SIGINT) == 130
    err = (tmp_path / "client.err").read_text()
    assert "interrupted; run" in err and "wfctl wait m i" in err


def test_second_wait_attaches_and_another_workflow_is_a_conflict(tmp_path):
    env, log = _prepared(tmp_path)
    client = _start_client(tmp_path, env, log, begun=1)
    try:
        other = _wfctl(env, "workflow", "uninstall", "m", "i", "--wait")
        assert other.returncode == 2
        assert other.stderr.startswith("wfctl: instance m/i already has a run in progress: ")
        assert "(install); uninstall cannot start before it ends" in other.stderr
        assert len(other.stderr.strip().splitlines()) == 1
        second = _wfctl(env, "workflow", "install", "m", "i", "--wait", "--timeout", "120")
        assert second.returncode == 0, second.stderr
        assert "is in progress: waiting for it" in second.stderr
        assert "install m/i: succeeded" in second.stdout
    finally:
        assert client.wait(timeout=120) == 0
    begun = Counter((n, op) for n, op, what in _lines(log) if what == "begin")
    assert set(begun.values()) == {1} and len(begun) == len(NODES) * len(OPS)
    # after the end, wait reports the last run and its status
    r = _wfctl(env, "wait", "m", "i", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "succeeded"
