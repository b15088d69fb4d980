"""Imperative workflows (TOSCA 1.3 §7.3, topology_template.workflows) run by the rule engine on the
embedded Space: scaled templates, cross-template ordering, on_failure, a replaced ``install``, and
a worker process SIGKILLed in the middle of an imperative run."""
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from wfengine import api, keys, runs
from wfengine.errors import Conflict
from wfengine.operation.executor import Executor, OperationResult

from engine_helpers import deploy, embedded, run, write

STD = "tosca.interfaces.node.lifecycle.Standard."
WFCTL = [sys.executable, "-m", "wfengine.cli"]

# After the example of TOSCA 1.3 §7.3.4 (a workflow deploying a database then the servers that use
# it), with both templates scaled so that every step runs on several instances.
TOPOLOGY = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    db:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {{min_instances: 1, default_instances: {db}, max_instances: 50}}
    web:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {{min_instances: 1, default_instances: {web}, max_instances: 50}}
  workflows:
{workflows}
"""

DEPLOY = """\
    deploy:
      description: database first, then the web servers (§7.3.4)
      steps:
        db_create:
          target: db
          activities:
            - set_state: creating
            - call_operation: Standard.create
            - set_state: created
          on_success: [db_start]
        db_start:
          target: db
          activities:
            - call_operation: tosca.interfaces.node.lifecycle.Standard.start
            - set_state: started
          on_success: [web_install]
        web_install:
          target: web
          activities:
            - delegate: install
"""


def _model(tmp_path, workflows, db=2, web=3):
    return write(tmp_path, "model.yaml", TOPOLOGY.format(db=db, web=web, workflows=workflows))


def _ops(trace, workflow):
    """(seq, node, short operation, status) of the run's operations, in trace order."""
    return [(e["seq"], e["node"], e["name"].rsplit(".", 1)[-1], e.get("status", "ok"))
            for e in sorted(trace, key=lambda e: e["seq"])
            if e["workflow"] == workflow and e["kind"] == "operation"]


def test_steps_run_per_instance_and_wait_for_every_instance_of_other_templates(tmp_path):
    """§7.3: db_create then db_start on each db instance; web_install (delegate: install, the
    declarative sequence of the node) only after db_start succeeded on every db instance."""
    opts = embedded(tmp_path)
    deploy(opts, _model(tmp_path, DEPLOY))
    out = run(opts, "deploy", workers=2)
    assert out["record"]["status"] == "succeeded", out["record"]
    ops = _ops(out["trace"], "deploy")
    seq = {(n, o): s for s, n, o, st in ops}
    dbs, webs = ["db_0", "db_1"], ["web_0", "web_1", "web_2"]
    assert Counter((n, o) for s, n, o, st in ops) == Counter(
        [(d, "create") for d in dbs] + [(d, "start") for d in dbs]
        + [(w, o) for w in webs for o in ("create", "configure", "start")])
    for d in dbs:
        assert seq[(d, "create")] < seq[(d, "start")]
    last_db = max(seq[(d, "start")] for d in dbs)
    assert all(seq[(w, "create")] > last_db for w in webs)
    for w in webs:
        assert seq[(w, "create")] < seq[(w, "configure")] < seq[(w, "start")]
    states = {n: v["state"] for n, v in out["status"]["nodes"].items()}
    assert states == {n: "started" for n in dbs + webs}
    steps = Counter((e["node"], e["name"]) for e in out["trace"] if e["kind"] == "step")
    assert steps == Counter([(d, s) for d in dbs for s in ("db_create", "db_start")]
                            + [(w, "web_install") for w in webs])


class FailingExecutor(Executor):
    """Fails the named (node, short operation) calls, succeeds otherwise."""

    def __init__(self, fail):
        self.fail = set(fail)
        self.lock = threading.Lock()

    def effectful(self, call):
        return True

    def run(self, call):
        if (call.node["id"], call.operation.rsplit(".", 1)[-1]) in self.fail:
            return OperationResult(ok=False, exit_code=3, output="boom\n")
        return OperationResult(ok=True)


ON_FAILURE = """\
    deploy:
      steps:
        db_create:
          target: db
          activities:
            - call_operation: Standard.create
          on_success: [web_create]
          on_failure: [web_cleanup]
        web_create:
          target: web
          activities:
            - call_operation: Standard.create
        web_cleanup:
          target: web
          activities:
            - call_operation: Standard.delete
            - set_state: deleted
"""


def test_on_failure_steps_run_and_the_run_ends_failed(tmp_path):
    """§7.3 on_failure: db_create fails on one instance, so web_create (on_success) is skipped and
    web_cleanup (on_failure) runs on every web instance; the run then ends failed, naming the step."""
    opts = embedded(tmp_path)
    deploy(opts, _model(tmp_path, ON_FAILURE))
    space = api.open_space(opts)
    try:
        rec = api.start_workflow(space, "deploy", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=60,
                                         executor=FailingExecutor({("db_1", "create")}))
        trace = api.trace(space, "m", "i")
        status = api.status(space, "m", "i")
        # its failed step already went on to the on_failure steps: nothing to resume from
        with pytest.raises(Conflict, match="deploy is an imperative workflow; run it again"):
            api.start_workflow(space, "deploy", "m", "i", resume=True)
    finally:
        space.close()
    assert rec["status"] == "failed"
    assert [(e["node"], e["step"]) for e in rec["errors"]] == [("db_1", "db_create")]
    ops = _ops(trace, "deploy")
    assert sorted((n, o, st) for s, n, o, st in ops) == [
        ("db_0", "create", "ok"), ("db_1", "create", "failed"),
        ("web_0", "delete", "ok"), ("web_1", "delete", "ok"), ("web_2", "delete", "ok")]
    failed = max(s for s, n, o, st in ops if st == "failed")
    assert all(s > failed for s, n, o, st in ops if o == "delete")
    steps = {(e["node"], e["name"]): e.get("status", "ok") for e in trace if e["kind"] == "step"}
    assert steps[("db_1", "db_create")] == "failed" and steps[("db_0", "db_create")] == "ok"
    assert all(steps[("web_%d" % i, "web_create")] == "skipped" for i in range(3))
    assert all(steps[("web_%d" % i, "web_cleanup")] == "ok" for i in range(3))
    assert status["nodes"]["web_0"]["state"] == "deleted"
    assert status["nodes"]["db_1"]["state"] == "error"


INSTALL = """\
    install:
      steps:
        only_web:
          target: web
          activities:
            - set_state: configuring
            - call_operation: Standard.configure
            - set_state: started
"""


def test_an_imperative_install_replaces_the_declarative_one(tmp_path):
    """As in Alien4Cloud: a topology workflow named install is the install of that topology; the
    node types' declarative install does not run (db is not part of it), and upload says so."""
    from wfengine import catalog
    path = _model(tmp_path, INSTALL, db=1, web=2)
    warnings = catalog.compile_model(path)["model"].warnings
    assert any("imperative workflow install replaces the declarative install" in w for w in warnings)
    opts = embedded(tmp_path)
    deploy(opts, path)
    out = run(opts, "install")
    assert out["record"]["status"] == "succeeded"
    assert sorted((n, o) for s, n, o, st in _ops(out["trace"], "install")) == [
        ("web_0", "configure"), ("web_1", "configure")]
    states = {n: v["state"] for n, v in out["status"]["nodes"].items()}
    assert states == {"db_0": "initial", "web_0": "started", "web_1": "started"}
    # uninstall stays the declarative one of the types
    out = run(opts, "uninstall")
    assert out["record"]["status"] == "succeeded"
    assert Counter(o for s, n, o, st in _ops(out["trace"], "uninstall")) == {"stop": 3, "delete": 3}


def test_a_sigkilled_worker_process_loses_nothing_and_runs_nothing_twice(tmp_path):
    """Three `wfctl worker` processes on one SQLite file run an imperative workflow over 30 + 30
    instances; one is SIGKILLed while the run is in progress.  The others retake its facts at
    their program counters (programs are rebuilt from rules and deployment alone)."""
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"))
    deploy(embedded(tmp_path), _model(tmp_path, DEPLOY, db=30, web=30))
    log = tmp_path / "execs.jsonl"
    procs = [subprocess.Popen(WFCTL + ["worker", "--ttl", "1", "--threads", "4", "--lanes", "2",
                                       "--id", "w%d" % i, "--exec-log", str(log)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(3)]
    try:
        space = api.open_space(embedded(tmp_path))
        deadline = time.monotonic() + 30
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        rec = api.start_workflow(space, "deploy", "m", "i")
        # kill the first worker that executed something (the run is then in progress)
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            victim = next((p for i, p in enumerate(procs) if '"worker": "w%d"' % i in text), None)
            time.sleep(0.005)
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        done = api.wait_run(space, rec["id"], timeout=120)
        assert done["status"] == "succeeded", done
        trace = api.trace(space, "m", "i")
        st = api.status(space, "m", "i")
        space.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
    ops = _ops(trace, "deploy")
    counts = Counter((n, o) for s, n, o, st_ in ops if st_ == "ok")
    dbs = ["db_%d" % i for i in range(30)]
    webs = ["web_%d" % i for i in range(30)]
    expected = Counter([(d, o) for d in dbs for o in ("create", "start")]
                       + [(w, o) for w in webs for o in ("create", "configure", "start")])
    assert counts == expected          # nothing lost, nothing run twice
    seq = {(n, o): s for s, n, o, st_ in ops}
    assert min(seq[(w, "create")] for w in webs) > max(seq[(d, "start")] for d in dbs)
    assert all(seq[(d, "create")] < seq[(d, "start")] for d in dbs)
    assert Counter(n["state"] for n in st["nodes"].values()) == {"started": 60}
    steps = Counter((e["node"], e["name"]) for e in trace if e["kind"] == "step")
    assert set(steps.values()) == {1}


SECTIONS = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  metadata:
    owner: ops
  node_templates:
    web:
      type: tosca.nodes.Compute
  groups:
    servers:
      type: tosca.groups.Root
      members: [web]
  policies:
    - scale_web:
        type: tosca.policies.Scaling
        targets: [servers]
  workflows:
    restart:
      steps:
        stop:
          target: servers
          activities: [{call_operation: Standard.stop}]
          on_success: [start]
        start:
          target: web
          activities: [{call_operation: Standard.start}]
"""


def test_wfctl_status_shows_stored_sections_and_workflow_runs_an_imperative_one(tmp_path):
    """§3.6.11/§3.6.12: groups and policies are shown by `wfctl status` (never silently dropped),
    and `wfctl workflow NAME` runs a topology workflow (§7.3) with embedded workers."""
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"))
    path = write(tmp_path, "m.yaml", SECTIONS)

    def wfctl(*args):
        return subprocess.run(WFCTL + list(args), env=env, capture_output=True, text=True, check=False, timeout=120)

    assert wfctl("model", path, "m").returncode == 0
    assert wfctl("instantiate", "m", "i").returncode == 0
    r = wfctl("workflow", "restart", "m", "i", "--workers", "1")
    assert r.returncode == 0, r.stderr
    st = wfctl("status", "m", "i")
    assert "group servers: tosca.groups.Root, members web (stored, not acted on)" in st.stdout
    assert "policy scale_web: tosca.policies.Scaling, targets servers (stored, not enforced)" in st.stdout
    assert 'metadata owner: "ops"' in st.stdout
    space = api.open_space(embedded(tmp_path))
    try:
        ops = _ops(api.trace(space, "m", "i"), "restart")
        assert [(n, o) for s, n, o, st_ in ops] == [("web_0", "stop"), ("web_0", "start")]
        assert api.status(space, "m", "i")["sections"]["policies"][0]["scale_web"]["targets"] == ["servers"]
    finally:
        space.close()


SCRIPTED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    db:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 6, max_instances: 50}
      interfaces:
        Standard: {create: op.sh, start: op.sh}
    web:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 6, max_instances: 50}
      interfaces:
        Standard: {create: op.sh, configure: op.sh, start: op.sh}
  workflows:
""" + DEPLOY


def test_a_worker_sigkilled_inside_a_script_of_an_imperative_step(tmp_path):
    """The kill lands while a worker process runs a script of an imperative step (operations with side effects:
    the attempt is committed before the script runs).  The run finishes; every operation ran, and
    an operation ran a second time only when the trace records the first attempt as interrupted
    (the engine's documented at-least-once rule, docs/operations.md), never silently."""
    env = dict(os.environ, WF_SPACE=str(tmp_path / "space.db"), WF_CACHE_DIR=str(tmp_path / "cache"))
    runs_log = tmp_path / "ran.txt"
    write(tmp_path, "op.sh", """\
        echo "start $WF_NODE ${WF_OPERATION##*.} $WF_ATTEMPT $PPID" >> %s
        sleep 0.2
        echo "end $WF_NODE ${WF_OPERATION##*.} $WF_ATTEMPT" >> %s
    """ % (runs_log, runs_log))
    deploy(embedded(tmp_path), write(tmp_path, "model.yaml", SCRIPTED))
    procs = [subprocess.Popen(WFCTL + ["worker", "--ttl", "1", "--threads", "4", "--id", "w%d" % i],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(3)]
    try:
        space = api.open_space(embedded(tmp_path))
        deadline = time.monotonic() + 30
        while len(space.keys(keys.WORKERS)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)      # all three share the zones from the start
        rec = api.start_workflow(space, "deploy", "m", "i")
        # Kill the first worker seen inside a script (the zones decide which worker runs what).
        by_pid = {p.pid: p for p in procs}
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            for line in (runs_log.read_text().splitlines() if runs_log.exists() else []):
                pid = int(line.split()[-1]) if line.startswith("start") else None
                if pid in by_pid:
                    victim = by_pid[pid]
                    break
            time.sleep(0.005)
        assert victim is not None, "no worker ran a script"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        mine = " %d" % victim.pid
        assert runs.read_run(space, rec["id"])["status"] == "running"
        done = api.wait_run(space, rec["id"], timeout=120)
        assert done["status"] == "succeeded", done
        trace = api.trace(space, "m", "i")
        space.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
    lines = runs_log.read_text().splitlines()
    assert any(line.endswith(mine) for line in lines)
    started = Counter(tuple(line.split()[1:3]) for line in lines if line.startswith("start"))
    ok = Counter((n, o) for s, n, o, st in _ops(trace, "deploy") if st == "ok")
    interrupted = Counter((e["node"], e["name"].rsplit(".", 1)[-1]) for e in trace
                          if e["kind"] == "operation" and e.get("status") == "interrupted")
    expected = Counter([("db_%d" % i, o) for i in range(6) for o in ("create", "start")]
                       + [("web_%d" % i, o) for i in range(6) for o in ("create", "configure", "start")])
    assert ok == expected                                   # each operation succeeded once
    assert sum(interrupted.values()) >= 1                   # the kill landed inside a script
    # Every operation's script ran; a second start only where the trace records an interrupted
    # attempt (an interrupted attempt may also have died before its script started).
    assert set(started) == set(expected)
    assert all(started[k] <= 1 + interrupted[k] for k in started), (started, interrupted)
    seq = {(n, o): s for s, n, o, st in _ops(trace, "deploy") if st == "ok"}
    assert min(seq[("web_%d" % i, "create")] for i in range(6)) > max(seq[("db_%d" % i, "start")] for i in range(6))


STOP_IF_STARTED = """\
    stop_db:
      preconditions:
        - target: db
          condition:
            - assert:
              - state: [{equal: started}]
      steps:
        stop:
          target: db
          activities:
            - call_operation: Standard.stop
            - set_state: stopped
"""


def test_preconditions_are_checked_when_the_run_starts(tmp_path):
    """§7.3 preconditions: a workflow whose preconditions do not hold on the instances' current
    states is not started (one line saying which); once they hold, it runs."""
    opts = embedded(tmp_path)
    deploy(opts, _model(tmp_path, STOP_IF_STARTED, db=2, web=1))
    space = api.open_space(opts)
    try:
        with pytest.raises(Conflict, match="workflow stop_db: precondition 0 on db not met by db_0 "
                                           r"\(state initial\)"):
            api.start_workflow(space, "stop_db", "m", "i")
    finally:
        space.close()
    assert run(opts, "install")["record"]["status"] == "succeeded"
    out = run(opts, "stop_db")
    assert out["record"]["status"] == "succeeded"
    assert sorted(n for s, n, o, st in _ops(out["trace"], "stop_db")) == ["db_0", "db_1"]
    assert out["status"]["nodes"]["db_1"]["state"] == "stopped"
