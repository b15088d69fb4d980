"""Failing operations, retries, resume, cancel and per-host serialization (embedded Space).

The executor here is a real in-process Executor (effectful, so the worker records attempts); it
fails or blocks on demand and records when each operation ran.
"""
import threading
import time
from collections import Counter

import pytest

from wfengine import api
from wfengine.operation.executor import Executor, OperationResult

import ordering
from engine_helpers import EXAMPLE, deploy, embedded

CONFIGURE = "tosca.interfaces.node.lifecycle.Standard.configure"


class ScriptedExecutor(Executor):
    def __init__(self, fail=None, duration=0.0):
        self.fail = dict(fail or {})          # (node, op short name) -> failures left (-1: always)
        self.duration = duration
        self.calls = []                       # (node, op, attempt, start, end)
        self.gates = {}                       # (node, op) -> Event to wait for
        self.entered = {}                     # (node, op) -> Event set when the call starts
        self.lock = threading.Lock()

    def effectful(self, call):
        return True

    def retry_policy(self, call):
        return 0, 0.0

    def run(self, call):
        key = (call.node["id"], call.operation.rsplit(".", 1)[1])
        rel = (call.relationship or {}).get("id")
        start = time.monotonic()
        gate = self.gates.get(key)
        if key in self.entered:
            self.entered[key].set()
        if gate is not None:
            gate.wait(30)
        if self.duration:
            time.sleep(self.duration)
        with self.lock:
            left = self.fail.get(key, 0)
            if left:
                self.fail[key] = left - 1 if left > 0 else left
            self.calls.append((key[0], key[1], call.attempt, start, time.monotonic(), rel))
        if left:
            return OperationResult(ok=False, exit_code=3, output="boom on %s\n" % key[0])
        return OperationResult(ok=True, output="done %s\n" % key[1])


def _run(opts, space, workflow, executor, resume=False, retries=0, workers=3):
    rec = api.start_workflow(space, workflow, "m", "i", resume=resume, max_retries=retries)
    return api.run_with_local_workers(opts, space, rec["id"], workers, timeout=60, executor=executor)


@pytest.fixture
def deployed(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    yield opts, space
    space.close()


def test_failure_stops_dependents_finishes_other_branches_and_resume_completes(deployed):
    opts, space = deployed
    ex = ScriptedExecutor(fail={("D_0", "configure"): 1})
    rec = _run(opts, space, "install", ex)
    assert rec["status"] == "failed"
    err = [e for e in rec["errors"] if e.get("operation")]
    assert err == [dict(err[0], node="D_0", operation=CONFIGURE, exit_code=3)]
    assert "boom on D_0" in err[0]["output"]
    st = {n: v["state"] for n, v in api.status(space, "m", "i")["nodes"].items()}
    assert st["D_0"] == "error"
    # B waits for D (ConnectsTo), A waits for B: neither got to `started`
    assert st["B_0"] != "started" and all(st["A_%d" % i] != "started" for i in range(9))
    # independent branches completed: hosts and C
    assert all(st[n] == "started" for n in ("srvA_0", "srvB_0", "srvC_0", "srvD_0", "C_0", "C_1"))
    logs = api.logs(space, "m", "i", node="D_0")
    assert [(r["operation"].rsplit(".", 1)[1], r["status"], r["exit_code"]) for r in logs
            if r["relationship"] is None] == [("create", "ok", 0), ("configure", "failed", 3)]
    ran_before = Counter((n, op, rel) for n, op, *dummy, rel in ex.calls)

    # the cause is fixed (the executor no longer fails): resume
    rec = _run(opts, space, "install", ex, resume=True)
    assert rec["status"] == "succeeded"
    st = api.status(space, "m", "i")
    assert Counter(n["state"] for n in st["nodes"].values()) == {"started": 19}
    ran = Counter((n, op, rel) for n, op, *dummy, rel in ex.calls)
    # nothing that had succeeded ran again; only D_0's configure ran twice
    assert {k: v for k, v in ran.items() if v > 1} == {("D_0", "configure", None): 2}
    assert all(ran[k] == 1 for k in ran_before if k != ("D_0", "configure", None))
    trace = api.trace(space, "m", "i", workflow="install")
    d0 = [(e["name"].rsplit(".", 1)[-1], e.get("status", "ok")) for e in trace
          if e["node"] == "D_0" and e["relationship"] is None]
    assert ("configure", "failed") in d0 and ("error", "ok") in d0 and d0[-1] == ("started", "ok")


def test_retries_are_traced_with_their_attempts(deployed):
    opts, space = deployed
    ex = ScriptedExecutor(fail={("C_1", "start"): 2})
    rec = _run(opts, space, "install", ex, retries=2)
    assert rec["status"] == "succeeded"
    starts = [(e.get("status", "ok"), e["attempt"]) for e in api.trace(space, "m", "i")
              if e["node"] == "C_1" and e["name"].endswith(".start")]
    assert starts == [("retry", 1), ("retry", 2), ("ok", 3)]


def test_cancel_lets_running_operations_finish_and_schedules_nothing_new(deployed):
    opts, space = deployed
    ex = ScriptedExecutor()
    gate = threading.Event()
    ex.gates[("srvB_0", "create")] = gate
    ex.entered[("srvB_0", "create")] = entered = threading.Event()
    rec = api.start_workflow(space, "install", "m", "i")
    stop = threading.Event()
    from wfengine.worker import run_workers
    run_workers(lambda: api.open_space(opts), 2, stop, executor=ex)
    try:
        assert entered.wait(30), "srvB_0 create never started"
        api.cancel_run(space, "m", "i")
        gate.set()
        done = api.wait_run(space, rec["id"], timeout=60)
    finally:
        stop.set()
    assert done["status"] == "canceled"
    # the operation in flight finished and was recorded
    assert ("srvB_0", "create") in [c[:2] for c in ex.calls]
    # B_0 (hosted on srvB_0, which never got started) did not run anything
    assert not [c for c in ex.calls if c[0] == "B_0"]
    assert space.keys("q/%s/" % rec["id"]) == []
    # resume finishes the canceled run
    rec = _run(opts, space, "install", ex, resume=True)
    assert rec["status"] == "succeeded"
    st = api.status(space, "m", "i")
    assert Counter(n["state"] for n in st["nodes"].values()) == {"started": 19}
    ordering.check_install(api.trace(space, "m", "i"), st["nodes"])


def test_operations_of_nodes_on_one_host_never_overlap(deployed):
    opts, space = deployed
    ex = ScriptedExecutor(duration=0.01)
    rec = _run(opts, space, "install", ex, workers=4)
    assert rec["status"] == "succeeded"
    nodes = api.status(space, "m", "i")["nodes"]
    hosts = {}
    for nid, n in nodes.items():
        host = next((r["target"] for r in n["relationships"] if r["requirement"] == "host"), nid)
        hosts[nid] = host
    by_host = {}
    for node, op, attempt, start, end, rel in ex.calls:
        by_host.setdefault(hosts[node], []).append((start, end, node, op))
    for host, spans in by_host.items():
        spans.sort()
        for (s1, e1, n1, o1), (s2, e2, n2, o2) in zip(spans, spans[1:]):
            assert s2 >= e1, "%s: %s.%s and %s.%s overlap" % (host, n1, o1, n2, o2)
    # ... while different hosts did run at the same time
    spans = sorted((c[3], c[4]) for c in ex.calls)
    assert any(s2 < e1 for (s1, e1), (s2, e2) in zip(spans, spans[1:]))
