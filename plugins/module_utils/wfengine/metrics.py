# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl worker --metrics HOST:PORT``: a Prometheus endpoint per worker.

Why counted at the Space and not in the worker's code: an operation is what a commit records.
An operation without side effects may be evaluated twice (a batch whose commit is refused and
redone), and an operation whose commit is lost is redone by another worker; counting the events
in the trace records of the transactions this worker *committed* makes the sum over workers equal
to the trace, exactly.  So the worker is not touched: its Space is wrapped (``instrument``), and
every number below comes from what goes through that wrapper:

* ``wf_operations_total{status}``: operation events committed (ok, failed, retry, interrupted);
* ``wf_operation_duration_seconds``: durations of the attempts that ran an implementation (their
  log records, committed with them);
* ``wf_commits_total`` / ``wf_commits_refused_total``: write transactions accepted / refused
  (a refused one is a conflict with another worker or a lost lock: architecture.md);
* ``wf_takeovers_total``: attempts of a dead worker this worker found and recorded as
  interrupted before retaking the node;
* ``wf_sessions_renewed_total`` / ``wf_sessions_lost_total``: session renewals, and renewals that
  found the session expired (its locks gone);
* ``wf_ready_queue_size``: ready tuples of the runs in progress, listed when scraped.

prometheus_client is optional (``pip install 'wfengine[observe]'``), imported here only.
"""
from __future__ import annotations

from typing import Any, Sequence

from . import keys
from .errors import WfError
from .space.base import READ_VERBS

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class WorkerMetrics:
    """The metrics of one worker, in their own registry (a process may hold several workers)."""

    def __init__(self, space: Any, worker_id: str):
        try:
            import prometheus_client as pc
        except ImportError:
            raise WfError("--metrics needs prometheus_client: pip install 'wfengine[observe]'")
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.operations = pc.Counter("wf_operations", "Operation events committed by this worker",
                                     ["status"], registry=r)
        self.durations = pc.Histogram("wf_operation_duration_seconds",
                                      "Duration of the operation attempts that ran an implementation",
                                      buckets=BUCKETS, registry=r)
        self.commits = pc.Counter("wf_commits", "Write transactions accepted", registry=r)
        self.refused = pc.Counter("wf_commits_refused", "Write transactions refused (a check failed)",
                                  registry=r)
        self.takeovers = pc.Counter("wf_takeovers", "Interrupted attempts of dead workers found and recorded",
                                    registry=r)
        self.renewed = pc.Counter("wf_sessions_renewed", "Session renewals", registry=r)
        self.lost = pc.Counter("wf_sessions_lost", "Renewals that found the session expired", registry=r)
        ready = pc.Gauge("wf_ready_queue_size", "Ready tuples of the runs in progress", registry=r)
        ready.set_function(lambda: _ready_count(space))
        pc.Info("wf_worker", "This worker", registry=r).info({"id": worker_id})
        for status in ("ok", "failed", "retry", "interrupted"):
            self.operations.labels(status=status)       # shown at 0 before the first

    def transaction(self, ops: Sequence[Any], ok: bool) -> None:
        """Count one write transaction and, when it committed, what it recorded."""
        if not ok:
            self.refused.inc()
            return
        self.commits.inc()
        for op in ops:
            if op.verb != "set":
                continue
            v = op.value
            if op.key.startswith("trace/") and isinstance(v, dict) and isinstance(v.get("events"), list):
                for row in v["events"]:
                    if isinstance(row, list) and len(row) > 5 and row[3] == "operation":
                        self.operations.labels(status=str(row[5])).inc()
                        if row[5] == "interrupted":
                            self.takeovers.inc()
            elif op.key.startswith("logs/") and isinstance(v, list):
                for rec in v:
                    if isinstance(rec, dict) and isinstance(rec.get("duration"), (int, float)):
                        self.durations.observe(float(rec["duration"]))

    def serve(self, address: str) -> Any:
        """Listen on ``HOST:PORT`` (``/metrics``), in a daemon thread."""
        import prometheus_client as pc
        host, dummy, port = address.rpartition(":")
        try:
            return pc.start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry)
        except OSError as exc:
            raise WfError("--metrics %s: cannot listen there (%s)" % (address, exc.strerror or exc))


def _ready_count(space: Any) -> int:
    n = 0
    for k in space.keys(keys.QUEUE):
        parsed = keys.parse_queue_key(k)
        if parsed is not None and parsed[1] == "r":
            n += 1
    return n


class _MeteredSpace:
    """The worker's Space, counting what goes through it (everything else is the Space's own)."""

    def __init__(self, inner: Any, metrics: WorkerMetrics):
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def txn(self, ops: Sequence[Any]) -> Any:
        res = self._inner.txn(ops)
        if any(op.verb not in READ_VERBS for op in ops):
            self._metrics.transaction(ops, res.ok)
        return res

    def session_renew(self, session: str) -> bool:
        ok = bool(self._inner.session_renew(session))
        (self._metrics.renewed if ok else self._metrics.lost).inc()
        return ok


def instrument(worker: Any, address: str) -> WorkerMetrics:
    """Wrap ``worker``'s Space (before ``serve``) and open the endpoint on ``address``."""
    m = WorkerMetrics(worker.space, worker.id)
    worker.space = _MeteredSpace(worker.space, m)
    m.serve(address)
    return m
