# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_workflow on a real embedded Space, with real workers (in the module, or
in threads of this test standing for daemons)."""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

FQCN = "ansible_collections.ditrit.workflows"


@pytest.fixture
def instance(run_module, space_file, seed_model):
    assert not run_module("tosca_model", name="seed", src=seed_model, space=space_file).failed
    assert not run_module("tosca_instance", model="seed", name="prod", space=space_file).failed
    return dict(model="seed", instance="prod", space=space_file)


def runs_of(engine, open_space, space_file):
    return engine.instance_runs(open_space(space_file), "seed", "prod")


def test_install_runs_and_reports_the_summary(run_module, instance):
    r = run_module("tosca_workflow", workflow="install", **instance)
    assert not r.failed, r.msg
    assert r.changed and not r["skipped_run"]
    assert r["status"] == "succeeded"
    assert r["counts"] == {"started": 19}
    assert len(r["states"]) == 19 and set(r["states"].values()) == {"started"}
    assert r["failed_operations"] == [] and r["errors"] == []
    assert r["run_id"] and r["duration"] > 0


def test_installed_instance_is_unchanged_unless_forced(run_module, instance, engine, open_space):
    first = run_module("tosca_workflow", **instance)  # workflow defaults to install
    again = run_module("tosca_workflow", workflow="install", **instance)
    assert not again.failed and not again.changed
    assert again["skipped_run"] and again["run_id"] == first["run_id"]
    assert again["counts"] == {"started": 19}
    assert "force" in again.msg
    assert len(runs_of(engine, open_space, instance["space"])) == 1
    forced = run_module("tosca_workflow", workflow="install", force=True, workers=3, **instance)
    assert forced.changed and forced["run_id"] != first["run_id"] and forced["status"] == "succeeded"
    assert len(runs_of(engine, open_space, instance["space"])) == 2


def test_another_workflow_in_between_makes_install_run_again(run_module, instance):
    run_module("tosca_workflow", workflow="install", **instance)
    un = run_module("tosca_workflow", workflow="uninstall", **instance)
    assert un.changed and un["counts"] == {"deleted": 19}
    assert not run_module("tosca_workflow", workflow="uninstall", **instance).changed
    again = run_module("tosca_workflow", workflow="install", **instance)
    assert again.changed and not again["skipped_run"] and again["counts"] == {"started": 19}


def test_check_mode_starts_nothing(run_module, instance, engine, open_space):
    r = run_module("tosca_workflow", _check=True, workflow="install", **instance)
    assert not r.failed and r.changed
    assert runs_of(engine, open_space, instance["space"]) == []
    run_module("tosca_workflow", workflow="install", **instance)
    r = run_module("tosca_workflow", _check=True, workflow="install", **instance)
    assert not r.changed and r["skipped_run"]
    r = run_module("tosca_workflow", _check=True, workflow="install", force=True, **instance)
    assert r.changed
    assert len(runs_of(engine, open_space, instance["space"])) == 1


def test_check_mode_returns_the_plan(run_module, instance, engine, open_space):
    """The plan of the run that would start: the engine's (wfctl plan), nothing written."""
    before = open_space(instance["space"], prefix=None).keys("")
    r = run_module("tosca_workflow", _check=True, workflow="install", **instance)
    assert r["plan"]["counts"] == {"operations": 315, "states": 114, "edges": 513}
    assert len(r["plan"]["operations"]) == 315 and r["plan"]["participants"] == 19
    assert {"node": "srvA_0", "operation": "tosca.interfaces.node.lifecycle.Standard.create"} in r["plan"]["operations"]
    assert r.msg == "would run install: 315 operations on 19 node instances"
    assert open_space(instance["space"], prefix=None).keys("") == before
    run_module("tosca_workflow", workflow="install", **instance)
    r = run_module("tosca_workflow", _check=True, workflow="uninstall", **instance)
    plan = engine.plan(open_space(instance["space"]), "uninstall", "seed", "prod")
    assert r["plan"]["counts"] == plan["counts"] and r["plan"]["counts"]["operations"] == 124
    assert "plan" not in run_module("tosca_workflow", _check=True, workflow="install", **instance)  # would skip


def test_check_mode_on_a_missing_instance_warns(run_module, space_file, seed_model):
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    r = run_module("tosca_workflow", _check=True, model="seed", instance="later", space=space_file)
    assert not r.failed and r.changed
    assert "later" in str(r["warnings"]), r.result
    r = run_module("tosca_workflow", model="seed", instance="later", space=space_file)
    assert r.failed and "later" in r.msg


def test_unknown_workflow_fails(run_module, instance):
    r = run_module("tosca_workflow", workflow="backup", **instance)
    assert r.failed and "backup" in r.msg and "install" in r.msg
    r = run_module("tosca_workflow", _check=True, workflow="backup", **instance)
    assert r.failed and "backup" in r.msg


def test_no_wait_returns_the_running_run(run_module, instance, engine, open_space):
    r = run_module("tosca_workflow", wait=False, **instance)
    assert not r.failed and r.changed and r["status"] == "running" and r["run_id"]
    # another workflow while it runs is refused, with the run named
    r2 = run_module("tosca_workflow", workflow="uninstall", **instance)
    assert r2.failed and r["run_id"] in r2.msg and "(install)" in r2.msg
    r2 = run_module("tosca_workflow", _check=True, workflow="uninstall", **instance)
    assert r2.failed and r["run_id"] in r2.msg
    # issue 17: the same workflow with wait attaches to it; no worker is alive on this embedded
    # Space (none was ever started), so the task runs one that finishes it
    r3 = run_module("tosca_workflow", _check=True, **instance)
    assert not r3.failed and "would wait for run %s" % r["run_id"] in r3.msg
    r3 = run_module("tosca_workflow", **instance)
    assert not r3.failed and r3["attached"] and r3["run_id"] == r["run_id"], r3.result
    assert r3["status"] == "succeeded" and "no live worker" in str(r3["warnings"])
    space = open_space(instance["space"])
    assert engine.runs.read_run(space, r["run_id"])["status"] == "succeeded"


def test_timeout_fails_and_says_so(run_module, instance):
    r = run_module("tosca_workflow", workers=0, timeout=0.3, **instance)
    assert r.failed and r.changed
    assert "did not end within 0.3 s" in r.msg and r["status"] == "running"
    assert r["run_id"] in r.msg


@pytest.fixture
def daemons(engine):
    """daemons(executor) -> context manager: two workers in threads of this test, standing for
    worker daemons, with a given executor (subclasses of the engine's own RecordingExecutor)."""
    worker_mod = importlib.import_module(FQCN + ".plugins.module_utils.wfengine.worker")

    @contextlib.contextmanager
    def _daemons(space_path, executor):
        opts = engine.SpaceOptions(path=space_path)
        stop = threading.Event()
        worker_mod.run_workers(lambda: engine.open_space(opts), 2, stop, executor=executor)
        try:
            yield
        finally:
            stop.set()
    return _daemons


@pytest.fixture
def executors(collection_path):
    ex = importlib.import_module(FQCN + ".plugins.module_utils.wfengine.operation.executor")

    class Failing(ex.RecordingExecutor):
        """B nodes' create fails."""

        def run(self, call):
            if call.node["template"] == "B" and call.operation.endswith("Standard.create"):
                return ex.OperationResult(ok=False, exit_code=3, output="writing /opt/b\ndisk full\n")
            return super().run(call)

    class Flaky(ex.RecordingExecutor):
        """B_0's create fails once, then succeeds; effectful, so the worker may retry it."""

        def __init__(self):
            super().__init__()
            self.failures = 0

        def effectful(self, call):
            return True

        def run(self, call):
            if call.node["id"] == "B_0" and call.operation.endswith("Standard.create"):
                with self._lock:
                    if self.failures == 0:
                        self.failures += 1
                        return ex.OperationResult(ok=False, exit_code=1, output="transient")
            return super().run(call)

    return {"failing": Failing, "flaky": Flaky}


def test_failed_run_fails_the_task_with_the_failed_operations(run_module, instance, daemons, executors):
    """The module waits (workers=0) while the workers run the operations with an executor that
    fails B's create."""
    with daemons(instance["space"], executors["failing"]()):
        r = run_module("tosca_workflow", workers=0, timeout=60, **instance)
    assert r.failed and r.changed
    assert r["status"] == "failed"
    assert r.msg.startswith("workflow install on seed/prod failed after ")
    assert "B_0: tosca.interfaces.node.lifecycle.Standard.create failed (exit code 3): disk full" in r.msg
    assert [e["node"] for e in r["failed_operations"]] == ["B_0"]
    assert any(e["node"] == "B_0" for e in r["errors"])
    assert r["counts"].get("started", 0) < 19
    # a failed install is not "installed": the next run starts again
    again = run_module("tosca_workflow", timeout=60, **instance)
    assert again.changed and not again["skipped_run"]


def test_failure_message_lists_a_few_errors(collection_path):
    mod = importlib.import_module(FQCN + ".plugins.module_utils.running")
    summary = {"workflow": "install", "model": "m", "instance": "i", "duration": 1.5,
               "errors": [{"node": "n%d" % i, "operation": "Standard.create", "message": "boom"} for i in range(8)]}
    msg = mod.failure_message(summary)
    assert msg.startswith("workflow install on m/i failed after 1.500 s (8 errors): n0: Standard.create failed: boom; ")
    assert msg.endswith("; and 3 more")
    assert mod.failure_message(dict(summary, errors=[], duration=None)) == "workflow install on m/i failed"
    blocked = dict(summary, errors=[{"node": "x_0", "message": "blocked waiting for y_0"}])
    assert mod.failure_message(blocked).endswith("(1 error): x_0: blocked waiting for y_0")


@pytest.mark.parametrize("args, word", [({"workers": -1}, "workers"), ({"timeout": 0}, "timeout"),
                                        ({"retries": -2}, "retries")])
def test_bad_numbers(run_module, instance, args, word):
    r = run_module("tosca_workflow", **dict(instance, **args))
    assert r.failed and word in r.msg


def test_resume_continues_the_failed_run(run_module, instance, engine, open_space, daemons, executors):
    with daemons(instance["space"], executors["failing"]()):
        failed = run_module("tosca_workflow", workers=0, timeout=60, **instance)
    assert failed.failed and failed["status"] == "failed"
    check = run_module("tosca_workflow", _check=True, resume=True, **instance)
    assert check.changed and check["resumed"] and failed["run_id"] in check.msg
    r = run_module("tosca_workflow", resume=True, timeout=60, **instance)
    assert not r.failed, r.msg
    assert r.changed and r["resumed"] and r["run_id"] == failed["run_id"]
    assert r["status"] == "succeeded" and r["counts"] == {"started": 19}
    assert len(runs_of(engine, open_space, instance["space"])) == 1
    # nothing left to resume: resume=true then behaves as without it (here: already installed)
    again = run_module("tosca_workflow", resume=True, **instance)
    assert not again.changed and again["skipped_run"] and not again["resumed"]


def test_retries_let_a_flaky_operation_pass(run_module, instance, daemons, executors):
    flaky = executors["flaky"]()
    with daemons(instance["space"], flaky):
        r = run_module("tosca_workflow", workers=0, retries=2, timeout=60, **instance)
    assert not r.failed, r.msg
    assert r["counts"] == {"started": 19} and flaky.failures == 1


def test_without_retries_the_flaky_operation_fails(run_module, instance, daemons, executors):
    with daemons(instance["space"], executors["flaky"]()):
        r = run_module("tosca_workflow", workers=0, timeout=60, **instance)
    assert r.failed and "B_0" in r.msg and "transient" in r.msg


@pytest.fixture
def slow_instance(run_module, space_file, tmp_path):
    """A deployment whose install lasts longer than a short timeout, whatever the machine's
    speed (the seed's no-op install can end within 10 ms on an idle machine)."""
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "pause.sh").write_text("sleep 0.5\n")
    (tmp_path / "slow" / "app.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "topology_template:\n  node_templates:\n    box:\n      type: tosca.nodes.Compute\n"
        "      interfaces: {Standard: {create: pause.sh}}\n")
    assert not run_module("tosca_model", name="slow", src=str(tmp_path / "slow" / "app.yaml"),
                          space=space_file).failed
    assert not run_module("tosca_instance", model="slow", name="prod", space=space_file).failed
    return dict(model="slow", instance="prod", space=space_file)


def test_timeout_with_workers_in_the_module_says_how_to_finish(run_module, slow_instance, engine, open_space):
    """The module's workers stop with the task; the message names the wfctl commands, and a real
    ``wfctl worker`` process started as it says finishes the run."""
    instance = slow_instance
    r = run_module("tosca_workflow", workers=1, timeout=0.01, **instance)
    assert r.failed and r["status"] == "running"
    cmd = '"wfctl --space %s worker"' % instance["space"]
    assert cmd in r.msg and "cancel slow prod" in r.msg
    # the engine as the plain package wfctl imports (ansible-test units puts only the collection tree
    # on the path)
    engine_dir = str(Path(__file__).resolve().parents[4] / "plugins" / "module_utils")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [engine_dir, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "wfengine.cli", "--space", instance["space"], "worker"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        rec = engine.wait_run(open_space(instance["space"]), r["run_id"], timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert rec["status"] == "succeeded"
