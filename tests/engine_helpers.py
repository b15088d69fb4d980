"""Shared helpers of the engine tests: write small models, run workflows on an embedded Space."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import textwrap
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from wfengine import api

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "seed_example" / "app.yaml"
SEED = REPO.parent / "shared" / "seed"


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def model_yaml(templates: str, extra: str = "") -> str:
    return ("tosca_definitions_version: tosca_simple_yaml_1_3\n" + extra +
            "topology_template:\n  node_templates:\n" + textwrap.indent(textwrap.dedent(templates), "    "))


STANDARD = ("create", "configure", "start", "stop", "delete")
# An operation that records its process group (PIDFILE), then lasts 60 s ignoring SIGTERM unless
# FAST exists: the cancel and SIGTERM tests kill it and look at what is left.
LONG_SCRIPT = """\
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
if [ -e "$FAST" ]; then exit 0; fi
(trap "" TERM; sleep 60) &
wait
"""


def with_scripts(src: Path, dest: Path, script: str, operations: Sequence[str] = STANDARD,
                 script_path: str = "scripts/op.sh") -> str:
    """``src`` (a model whose templates are indented as the seed example's) written to ``dest``
    with ``script`` on the given Standard operations of every template."""
    target = dest.parent / script_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script)
    iface = "      interfaces:\n        Standard: {%s}\n" % ", ".join(
        "%s: %s" % (o, script_path) for o in operations)
    out = []
    for line in src.read_text().splitlines(keepends=True):
        out.append(line)
        if re.match(r"^      type: tosca\.nodes\.", line):
            out.append(iface)
    dest.write_text("".join(out))
    return str(dest)


def until(cond: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """``cond()``'s first true value, polled with a backoff (10 ms to 200 ms); an
    AssertionError naming ``what`` after ``timeout`` seconds."""
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


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_processes(procs: Sequence[subprocess.Popen], timeout: float = 60.0) -> None:
    """SIGTERM to those still running, then wait for each; killed if it outlasts ``timeout``."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def embedded(tmp_path: Path, name: str = "space.db") -> api.SpaceOptions:
    return api.SpaceOptions(backend="embedded", path=str(tmp_path / name))


def app_on_server(tmp_path: Path, script: str, name: str = "op.sh") -> str:
    """A model of one app hosted on one server whose create runs ``script`` (written to
    ``tmp_path/name``): the smallest topology with one operation in flight on one node."""
    (tmp_path / name).write_text(script)
    return write(tmp_path, "app.yaml", model_yaml("""\
        server:
          type: tosca.nodes.Compute
        app:
          type: tosca.nodes.SoftwareComponent
          requirements:
            - host: server
          interfaces:
            Standard:
              create: %s
        """ % name))


def deploy(opts: api.SpaceOptions, model_path: str, model: str = "m", instance: str = "i") -> None:
    space = api.open_space(opts)
    try:
        api.upload_model(space, model_path, model)
        api.create_instance(space, model, instance)
    finally:
        space.close()


def run(opts: api.SpaceOptions, workflow: str, model: str = "m", instance: str = "i",
        workers: int = 2, timeout: float = 120) -> Dict[str, Any]:
    """Run a workflow with local workers; returns {record, status, trace}."""
    space = api.open_space(opts)
    try:
        rec = api.start_workflow(space, workflow, model, instance)
        rec = api.run_with_local_workers(opts, space, rec["id"], workers, timeout=timeout)
        return {"record": rec, "status": api.status(space, model, instance),
                "trace": api.trace(space, model, instance)}
    finally:
        space.close()


def ansible_vault(*argv: str, stdin: str = "") -> str:
    """The ``ansible-vault`` command of the test venv (next to this Python): what an operator
    runs to make vault files; ansible is never imported by the tests' own process."""
    import os
    import subprocess
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    proc = subprocess.run([exe] + list(argv), input=stdin, capture_output=True, text=True, check=True)
    return proc.stdout


# Two tiers scaled to 4 each, every operation a script op.sh: the event and metrics tests
# follow it with a worker SIGKILLed inside a script.
DB_WEB_MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    db:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 4, max_instances: 50}
      interfaces:
        Standard: {create: op.sh, start: op.sh}
    web:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 4, max_instances: 50}
      requirements:
        - dependency: db
      interfaces:
        Standard: {create: op.sh, configure: op.sh, start: op.sh}
"""


# ---- worker metrics: the same check on the embedded Space and on Consul ---------------------
# (tests/engine/test_metrics_embedded.py, tests/distributed/test_metrics_consul.py)

Metrics = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def metrics_script(ran: Path) -> str:
    """op.sh for DB_WEB_MODEL: writes its worker's pid to ``ran`` first (so the test knows a
    worker is inside a script when it kills it), then lasts long enough to be interrupted."""
    return 'echo "$PPID" >> %s\nsleep 0.2\n' % ran


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, deadline: float) -> Metrics:
    """One scrape of a worker's /metrics, parsed by prometheus_client's own parser: (sample name,
    sorted labels) -> value.  Retried until ``deadline`` while nothing listens yet (a worker
    that is still starting)."""
    from prometheus_client import parser   # the test extra installs it: missing fails, never skips
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                text = r.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    out: Metrics = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def kill_worker_inside_a_script(ran: Path, procs: Sequence[subprocess.Popen], deadline: float) -> int:
    """SIGKILL the first worker seen running a script (its pid in ``ran``, written by
    ``metrics_script``): killed inside an operation, its attempt must be retaken and recorded
    interrupted.  Returns its index in ``procs``."""
    by_pid = {p.pid: i for i, p in enumerate(procs)}
    while time.monotonic() < deadline:
        for line in (ran.read_text().splitlines() if ran.exists() else []):
            if line.strip() and int(line.split()[-1]) in by_pid:
                victim = by_pid[int(line.split()[-1])]
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                return victim
        time.sleep(0.005)
    raise AssertionError("no worker ran a script before the deadline")


def assert_metrics_match_trace(scraped: Dict[str, Metrics], dead: str, trace: List[Dict[str, Any]],
                               logs: List[Dict[str, Any]], min_duration: float) -> Counter:
    """The survivors' scrapes (worker id -> metrics) plus what the dead worker committed (in the
    trace by worker: only its scrape is missing) equal the trace per status; one takeover per
    interrupted attempt; one duration per survivor's log record.  Returns the trace's operation
    events per status."""
    by_status = Counter(e.get("status", "ok") for e in trace if e["kind"] == "operation")
    # an interrupted event names the dead worker but was committed by the one that retook the node
    dead_committed = Counter(e.get("status", "ok") for e in trace
                             if e["kind"] == "operation" and e.get("status") != "interrupted"
                             and e["worker"] == dead)
    for status in ("ok", "failed", "retry", "interrupted"):
        total = sum(m[("wf_operations_total", (("status", status),))] for m in scraped.values())
        assert total + dead_committed[status] == by_status[status], status
    assert by_status["interrupted"] >= 1
    assert sum(m[("wf_takeovers_total", ())] for m in scraped.values()) == by_status["interrupted"]
    survivors_logs = [lg for lg in logs if lg["worker"] != dead]
    assert sum(m[("wf_operation_duration_seconds_count", ())] for m in scraped.values()) == len(survivors_logs)
    assert all(lg["duration"] >= min_duration for lg in survivors_logs)
    assert sum(m[("wf_operation_duration_seconds_bucket", (("le", "0.1"),))] for m in scraped.values()) == 0
    # (one survivor may have had no share of a small run: the sum, not each)
    assert sum(m[("wf_commits_total", ())] for m in scraped.values()) > 0
    for wid, m in scraped.items():
        assert m[("wf_sessions_renewed_total", ())] > 0 and m[("wf_sessions_lost_total", ())] == 0, wid
        assert m[("wf_ready_queue_size", ())] == 0, wid          # the run is over
        assert m[("wf_worker_info", (("id", wid),))] == 1
    return by_status
