"""Fencing of operation starts (issue 17), on the embedded Space with real workers and real scripts.

A worker's session is ended from outside (``session_destroy``: what a TTL expiry does to it,
its locks deleted) while one of its steps is between its checkpoint and its start, or while the
operation runs.  TOSCA 1.3 §5.8.4.4 (Standard lifecycle interface, ``create``) is the operation;
the guarantees checked are the engine's (docs/architecture.md, "Fencing"):

* a step whose session was lost never starts its operation;
* an operation that a worker finished after losing its node is committed if nobody moved the
  node (no second execution), else recorded in the trace as ``status: stale`` with its worker.
"""
from __future__ import annotations

import json
import threading

from wfengine import api, keys
from wfengine.errors import SpaceUnavailable
from wfengine.worker import Worker

from engine_helpers import embedded, until, write

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    box: {type: tosca.nodes.Compute}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: box}]
      interfaces:
        Standard: {create: scripts/op.sh}
"""

# Appends one line per execution; attempt 1 waits for the file "go" (up to 60 s).
SCRIPT = """\
echo "$WF_NODE $WF_OPERATION $WF_ATTEMPT" >> "$OPLOG"
if [ "$WF_ATTEMPT" = 1 ]; then
  i=0
  while [ ! -e "$GO" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
fi
"""


class _Workers:
    def __init__(self, opts, tmp_path):
        self.opts, self.tmp_path, self.started = opts, tmp_path, []

    def start(self, wid, ttl=30.0, **kw):
        w = Worker(api.open_space(self.opts), worker_id=wid, ttl=ttl, poll=1.0, steal_after=0.1,
                   log_dir=str(self.tmp_path / "logs"), cache_dir=str(self.tmp_path / "cache"),
                   state_dir=str(self.tmp_path / ("state-" + wid)), **kw)
        t = threading.Thread(target=w.serve, daemon=True)
        t.start()
        self.started.append((w, t))
        return w

    def stop(self):
        for w, dummy in self.started:
            w.stop()
        for w, t in self.started:
            t.join(30)
            w.space.close()


def _setup(tmp_path, monkeypatch):
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/op.sh", SCRIPT)
    monkeypatch.setenv("OPLOG", str(tmp_path / "ops.log"))
    monkeypatch.setenv("GO", str(tmp_path / "go"))
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    api.upload_model(space, write(tmp_path, "m.yaml", MODEL), "m")
    api.create_instance(space, "m", "i")
    return opts, space


def _ops(tmp_path):
    p = tmp_path / "ops.log"
    return p.read_text().splitlines() if p.exists() else []


def _creates(space):
    """Trace events of app_0's create (the only operation with an implementation)."""
    return [e for e in api.trace(space, "m", "i") if e["kind"] == "operation" and e["node"] == "app_0"
            and e["name"].endswith(".create")]


def _fact(space, run_id, node):
    e = space.get(keys.fact(run_id, node))
    return e.value if e is not None else None


def test_a_step_whose_session_was_lost_before_its_start_never_starts(tmp_path, monkeypatch):
    opts, space = _setup(tmp_path, monkeypatch)
    (tmp_path / "go").write_text("")
    ws = _Workers(opts, tmp_path)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        # The host's lock is held elsewhere: A checkpoints its attempt, then waits for the host.
        other = space.session_create("other", 30.0, behavior="delete")
        assert space.acquire(keys.host_lock(run_id, "box_0"), other, {"worker": "other"})
        a = ws.start("A")
        until(lambda: ((_fact(space, run_id, "app_0") or {}).get("inflight") or {}).get("worker") == "A",
              what="A's checkpoint")
        # A's session ends (its TTL expired while it waited): its node lock is gone.
        lost = a.session
        space.session_destroy(lost)
        space.session_destroy(other)        # the host is free again
        done = api.wait_run(space, run_id, timeout=60)
        assert done["status"] == "succeeded", done
        # One execution, attempt 2 (by A with a new session, or by another worker): the attempt
        # A had recorded with the lost session never started.
        assert _ops(tmp_path) == ["app_0 tosca.interfaces.node.lifecycle.Standard.create 2"]
        assert lost in a._lost and a.session != lost
        ev = _creates(space)
        assert [(e.get("status", "ok"), e.get("attempt")) for e in ev] == [("interrupted", 1), ("ok", 2)]
        assert not any(e.get("status") == "stale" for e in ev)
    finally:
        ws.stop()
        space.close()


def test_result_of_an_operation_finished_after_the_lock_was_lost_is_kept_if_nobody_moved_the_node(
        tmp_path, monkeypatch):
    opts, space = _setup(tmp_path, monkeypatch)
    ws = _Workers(opts, tmp_path)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        a = ws.start("A")
        until(lambda: _ops(tmp_path), what="the operation to start")
        lost = a.session
        space.session_destroy(lost)          # expires while the operation runs; nobody takes over
        (tmp_path / "go").write_text("")
        done = api.wait_run(space, run_id, timeout=60)
        assert done["status"] == "succeeded", done
        assert _ops(tmp_path) == ["app_0 tosca.interfaces.node.lifecycle.Standard.create 1"]
        assert a.stats.get("salvaged") == 1
        ev = _creates(space)
        assert [(e.get("status", "ok"), e.get("attempt")) for e in ev] == [("ok", 1)]
    finally:
        ws.stop()
        space.close()


def test_an_operation_a_stale_worker_finished_is_recorded_as_stale(tmp_path, monkeypatch):
    opts, space = _setup(tmp_path, monkeypatch)
    ws = _Workers(opts, tmp_path)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        # A's renewal comes only after 100 s (its TTL's third): within this test A does not know
        # that its session is gone, and does not register again (it would if it were only cut
        # off for a while: then B would leave the node to it, attempts.py).
        a = ws.start("A", ttl=300.0)
        until(lambda: _ops(tmp_path), what="A's operation to start")
        space.session_destroy(a.session)     # A is presumed dead: B takes over and runs it again
        ws.start("B", ttl=2.0)               # after half its TTL without A's registration
        done = api.wait_run(space, run_id, timeout=60)
        assert done["status"] == "succeeded", done
        assert len(_ops(tmp_path)) == 2
        (tmp_path / "go").write_text("")     # A's execution ends, after B's
        # (the stale record is counted before the journal entry is dropped: wait for both)
        until(lambda: a.stats.get("stale") and not a.journal.entries(),
              what="A's stale record, its journal entry dropped")
        ev = _creates(space)
        stale = [e for e in ev if e.get("status") == "stale"]
        assert [(e["node"], e["name"].rsplit(".", 1)[1], e["worker"], e["attempt"]) for e in stale] == [
            ("app_0", "create", "A", 1)]
        ok = [e for e in ev if e.get("status", "ok") == "ok"]
        assert [(e["worker"], e["attempt"]) for e in ok] == [("B", 2)]
        logs = [r for r in api.logs(space, "m", "i") if r.get("status") == "stale"]
        assert [(r["worker"], r["attempt"]) for r in logs] == [("A", 1)]
        # Its result did not overwrite B's: the node's fact is B's commit.
        assert _fact(space, run_id, "app_0")["done"] is True
        assert a.journal.entries() == []
        assert not (tmp_path / "state-A" / "journal.json").exists() or \
            json.loads((tmp_path / "state-A" / "journal.json").read_text())["entries"] == {}
    finally:
        ws.stop()
        space.close()


def test_a_result_the_space_did_not_take_is_journaled_and_committed_at_the_next_start(tmp_path, monkeypatch):
    """The worker's Space client fails (closed: every request raises, as in an outage) when the
    operation ends; the worker stops; its journal keeps the result; a worker started on the same
    state directory commits it (CAS on the fact) instead of running the operation again."""
    opts, space = _setup(tmp_path, monkeypatch)
    ws = _Workers(opts, tmp_path)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        a = ws.start("A")
        until(lambda: _ops(tmp_path), what="the operation to start")
        a.space.close()                      # from now on every request of A fails
        (tmp_path / "go").write_text("")
        journal = tmp_path / "state-A" / "journal.json"
        until(lambda: journal.exists() and json.loads(journal.read_text())["entries"],
              what="the journaled result")
        a.stop()
        ws.started[0][1].join(30)
        space.session_destroy(a.session)     # what its TTL would do
        assert json.loads(journal.read_text())["entries"], "the journal must outlive the worker"
        b = Worker(api.open_space(opts), worker_id="A-restarted", ttl=30.0, poll=1.0, steal_after=0.1,
                   log_dir=str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"),
                   state_dir=str(tmp_path / "state-A"))
        t = threading.Thread(target=b.serve, daemon=True)
        t.start()
        ws.started.append((b, t))
        done = api.wait_run(space, run_id, timeout=60)
        assert done["status"] == "succeeded", done
        assert _ops(tmp_path) == ["app_0 tosca.interfaces.node.lifecycle.Standard.create 1"]
        assert [(e.get("status", "ok"), e.get("attempt"), e["worker"]) for e in _creates(space)] == [("ok", 1, "A")]
        assert json.loads(journal.read_text())["entries"] == {}
    finally:
        ws.stop()
        space.close()


class _QuorumLoss:
    """A worker's Space client that fails every request (SpaceUnavailable, what the Consul client
    raises once its retries are spent) while ``down`` is set.  The worker's session survives,
    as in a Consul quorum loss (the new leader resets session timers): a renewal is applied in
    the Space, its answer lost."""

    def __init__(self, space):
        self._space = space
        self.down = threading.Event()
        self.refused = []       # (verb, key) of the transactions refused

    def __getattr__(self, name):
        attr = getattr(self._space, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args, **kwargs):
            if self.down.is_set():
                if name == "session_renew":
                    attr(*args, **kwargs)
                if name == "txn":
                    self.refused += [(op.verb, op.key) for op in args[0]]
                raise SpaceUnavailable("%s: Consul unavailable (simulated quorum loss)" % name)
            return attr(*args, **kwargs)
        return call


def test_after_an_outage_that_sessions_survive_the_locks_given_up_are_released(tmp_path, monkeypatch):
    """A step that gives up its node during an outage (its session not renewed for most of its
    TTL, so it starts nothing) cannot release the node's lock then; its session survives the
    outage (a quorum loss): the lock must still be released once the Space answers, else no
    worker ever takes the node again and the run stays ``running`` (issue 17, the quorum-loss
    test)."""
    opts, space = _setup(tmp_path, monkeypatch)
    (tmp_path / "go").write_text("")
    client = _QuorumLoss(api.open_space(opts))
    a = Worker(client, worker_id="A", ttl=2.0, poll=1.0, steal_after=0.1,
               log_dir=str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"),
               state_dir=str(tmp_path / "state-A"))
    t = threading.Thread(target=a.serve, daemon=True)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        run_id = rec["id"]
        # The host's lock is held elsewhere: A checkpoints its attempt, then waits for the host.
        other = space.session_create("other", 30.0, behavior="delete")
        assert space.acquire(keys.host_lock(run_id, "box_0"), other, {"worker": "other"})
        t.start()
        until(lambda: ((_fact(space, run_id, "app_0") or {}).get("inflight") or {}).get("worker") == "A",
              what="A's checkpoint")
        session = a.session
        client.down.set()
        # Past 80 % of the TTL without a renewal, A gives the node up (it starts nothing), and
        # the release of the node's lock is refused.
        until(lambda: ("delete", keys.lock(run_id, "app_0")) in client.refused,
              what="A's release of the node during the outage")
        space.session_destroy(other)        # the host is free again
        client.down.clear()
        done = api.wait_run(space, run_id, timeout=30)
        assert done["status"] == "succeeded", (done, [(e.key, e.session) for e in space.list(keys.queue(run_id))])
        assert a.session == session, "the session must have survived the outage (a quorum loss)"
        # Started once, after the outage (attempt 2: the attempt A recorded never started).
        assert _ops(tmp_path) == ["app_0 tosca.interfaces.node.lifecycle.Standard.create 2"]
        assert a.stats.get("release_retries", 0) >= 1
    finally:
        a.stop()
        if t.is_alive():
            t.join(30)
        client.close()
        space.close()
