# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmark measures with, shared by the run process and the worker processes.

* ``CountingSpace`` wraps the Space a worker or manager uses and counts every call of the Space
  contract (with its latency).  On the embedded Space that is the number of SQLite transactions
  and reads; on Consul one Space call can be several HTTP requests (retries, the expansions
  described in space/consul_txn.py), so Consul setups also count at the HTTP layer.
* ``HttpCounter`` counts the HTTP requests a process sends (every ``requests.Session.send``,
  which is what py-consul and the Consul Space go through), by method and endpoint, with their
  latencies: these are the "Consul requests" of the report, counted at the client, retries and
  blocking queries included.
* ``TrueExecutor`` runs ``true`` for every operation: the engine has no script executor of its
  own yet, so this stands for "an implementation that does nothing"; it declares itself
  effectful, so the worker takes the path of real scripts (checkpoint commit before the
  operation, hosted-operation serialization).
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from wfengine.operation.executor import Executor, OperationCall, OperationResult, RecordingExecutor
from wfengine.space.base import Entry, Op, Space, TxnResult, op_set

_WRITE_VERBS = frozenset(["set", "cas", "delete", "delete_cas", "delete_tree", "lock", "unlock"])


class _Stats:
    """Counts and latency samples under one lock (worker threads share them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Dict[str, int] = {}
        self.samples: Dict[str, List[float]] = {}

    def add(self, name: str, seconds: float, keep: bool = True, items: int = -1) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            if items >= 0:   # how many keys/entries a call returned: a prefix scan's cost
                self.counts[name + ":items"] = self.counts.get(name + ":items", 0) + items
            if keep:
                s = self.samples.setdefault(name, [])
                if len(s) < 200000:
                    s.append(seconds)

    def snapshot(self) -> Dict[str, Any]:
        with self.lock:
            return {"counts": dict(self.counts),
                    "median_ms": {k: round(statistics.median(v) * 1000, 3)
                                  for k, v in self.samples.items() if v}}


class CountingSpace(Space):
    """A Space that counts the calls it forwards (``txn`` split into write and read-only ones)."""

    def __init__(self, inner: Space, stats: Optional[_Stats] = None) -> None:
        self.inner = inner
        self.stats = stats or _Stats()
        self.max_txn_ops = inner.max_txn_ops
        self.batch_lanes = inner.batch_lanes
        self.name = inner.name

    def _call(self, name: str, fn, *args):
        t = time.perf_counter()
        items = -1
        try:
            res = fn(*args)
            if name in ("list", "keys"):
                items = len(res)
            elif name == "wait":
                items = len(res[1])
            return res
        finally:
            self.stats.add(name, time.perf_counter() - t, keep=name not in ("wait", "watch"), items=items)

    def get(self, key: str) -> Optional[Entry]:
        return self._call("get", self.inner.get, key)

    def list(self, prefix: str) -> List[Entry]:
        return self._call("list", self.inner.list, prefix)

    def keys(self, prefix: str) -> List[str]:
        return self._call("keys", self.inner.keys, prefix)

    def put(self, key: str, value: Any) -> int:
        return self._call("put", self.inner.put, key, value)

    def txn(self, ops: Sequence[Op]) -> TxnResult:
        kind = "txn_write" if any(op.verb in _WRITE_VERBS for op in ops) else "txn_read"
        return self._call(kind, self.inner.txn, ops)

    def write_chunked(self, ops) -> None:
        return self._call("write_chunked", self.inner.write_chunked, ops)

    def wait(self, prefix: str, index: int, timeout: float) -> Tuple[int, List[str]]:
        return self._call("wait", self.inner.wait, prefix, index, timeout)

    def watch(self, key: str, index: int, timeout: float) -> Tuple[int, Optional[Entry]]:
        return self._call("watch", self.inner.watch, key, index, timeout)

    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        return self._call("session_create", self.inner.session_create, name, ttl, behavior)

    def session_renew(self, session: str) -> bool:
        return self._call("session_renew", self.inner.session_renew, session)

    def session_destroy(self, session: str) -> None:
        return self._call("session_destroy", self.inner.session_destroy, session)

    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        return self._call("acquire", self.inner.acquire, key, session, value)

    def release(self, key: str, session: str) -> bool:
        return self._call("release", self.inner.release, key, session)

    def close(self) -> None:
        self.inner.close()


def _endpoint(method: str, url: str) -> str:
    path, dummy, query = url.partition("?")
    m = re.search(r"/v1/([a-z]+)(?:/([a-z]+))?", path)
    name = m.group(1) if m else "other"
    if name == "session" and m.group(2):
        name += "/" + m.group(2)
    if name == "kv":
        if method == "GET":
            name += ":blocking" if re.search(r"(^|&)index=[1-9]", query) else ":read"
        else:
            name += ":acquire" if "acquire=" in query else ":release" if "release=" in query \
                else ":write"
    return "%s %s" % (method, name)


class HttpCounter:
    """Counts every HTTP request of this process (``requests.Session.send``), by endpoint."""

    _installed: Optional["HttpCounter"] = None

    def __init__(self) -> None:
        self.stats = _Stats()

    @classmethod
    def install(cls) -> "HttpCounter":
        if cls._installed is not None:
            return cls._installed
        import requests
        counter = cls()
        original = requests.Session.send

        def send(session, request, **kwargs):
            t = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                name = _endpoint(request.method, request.url)
                counter.stats.add(name, time.perf_counter() - t, keep=not name.endswith(":blocking"))

        requests.Session.send = send
        cls._installed = counter
        return counter


class TrueExecutor(Executor):
    """Runs ``true`` for every operation (fork + exec + wait), as a do-nothing script would."""

    def effectful(self, call: OperationCall) -> bool:
        return True

    def run(self, call: OperationCall) -> OperationResult:
        t = time.perf_counter()
        proc = subprocess.run(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        return OperationResult(ok=proc.returncode == 0, exit_code=proc.returncode,
                               duration=time.perf_counter() - t)


PLAYBOOK_IMPLS = ("playbook", "playbook-process")


def executor_for(impl: str) -> Optional[Executor]:
    """None: the worker's own executor (``playbook``: the model's playbooks really run;
    ``playbook-process``: the same, each an ``ansible-playbook`` process, no fork server)."""
    if impl == "noop":
        return RecordingExecutor()
    if impl == "true":
        return TrueExecutor()
    if impl in PLAYBOOK_IMPLS:
        return None
    raise ValueError("unknown implementation %r (noop, true, %s)" % (impl, ", ".join(PLAYBOOK_IMPLS)))


def write_latency(space: Space, prefix: str, n: int = 30) -> Dict[str, float]:
    """Median (and spread) of one Space write: ``txn([set])`` of a small value, sequentially,
    on ``prefix`` (deleted afterwards by the caller's cleanup)."""
    samples = []
    for i in range(n):
        t = time.perf_counter()
        res = space.txn([op_set("%sprobe/%d" % (prefix, i % 4), {"i": i, "ts": time.time()})])
        samples.append(time.perf_counter() - t)
        if not res.ok:
            raise RuntimeError("write probe refused")
    samples.sort()
    return {"median_ms": round(statistics.median(samples) * 1000, 3),
            "p10_ms": round(samples[len(samples) // 10] * 1000, 3),
            "p90_ms": round(samples[(9 * len(samples)) // 10] * 1000, 3), "n": n}


def vm_hwm_kib(pid: Optional[int] = None) -> Optional[int]:
    try:
        with open("/proc/%s/status" % (pid or "self"), "r") as fh:
            m = re.search(r"VmHWM:\s+(\d+)\s+kB", fh.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


def reset_hwm(pid: Optional[int] = None) -> bool:
    """Reset the peak RSS of a process (Linux: ``5`` into clear_refs)."""
    try:
        with open("/proc/%s/clear_refs" % (pid or "self"), "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: Optional[int] = None) -> Optional[float]:
    """User + system CPU time of a process.

    Our own process is read with nanosecond resolution (``time.process_time``): /proc's clock
    ticks are 10 ms, so a run of a few milliseconds would read as 0.
    """
    if pid is None or pid == os.getpid():
        return time.process_time()
    try:
        with open("/proc/%s/stat" % (pid or "self"), "r") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        return None
