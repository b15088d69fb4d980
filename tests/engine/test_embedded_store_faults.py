"""Issue 17, embedded store: a lock held on the SQLite file by another process never makes an
operation run twice (sessions are credited with the time writes waited, and a long wait is not
an error), and a store whose WAL file was lost after an unclean stop is refused with one line
instead of silently going back to an older state."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

from wfengine.space import embedded_store
from wfengine.space.embedded import EmbeddedSpace

from test_reattach_embedded import NODES, OPS, WFCTL, _lines, _prepared, _start_client, _wfctl


def _hold_exclusive(path: str, seconds: float) -> subprocess.Popen:
    """Another process takes the database's write lock (BEGIN EXCLUSIVE) and keeps it."""
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.execute('COMMIT')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, path, str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_past_the_ttl_mid_run_runs_no_operation_twice(tmp_path):
    """The client's workers have a 2 s TTL; another process holds the write lock for 6 s while
    operations run: renewals and commits wait, nothing expires, nothing runs twice."""
    env, log = _prepared(tmp_path)
    client = _start_client(tmp_path, env, log, begun=3)
    holder = _hold_exclusive(env["WF_SPACE"], 6)
    assert holder.wait(timeout=60) == 0
    assert client.wait(timeout=120) == 0, (tmp_path / "client.err").read_text()
    assert "install m/i: succeeded" in (tmp_path / "client.out").read_text()
    begun = Counter((n, op) for n, op, what in _lines(log) if what == "begin")
    assert begun == Counter({(n + "_0", op): 1 for n in NODES for op in OPS})
    trace = json.loads(_wfctl(env, "trace", "m", "i", "--json").stdout)
    assert {e.get("attempt", 1) for e in trace if e["kind"] == "operation"} == {1}


def test_a_session_whose_renewal_waited_on_a_lock_survives_it(tmp_path):
    """A renewal queued behind a lock held for 4 TTLs: the session and its lock are kept."""
    path = str(tmp_path / "s.db")
    space = EmbeddedSpace(path)
    try:
        sid = space.session_create("w", 0.5)
        assert space.acquire("l/node", sid, {"w": 1})
        holder = _hold_exclusive(path, 2.0)
        assert space.session_renew(sid)          # waited about 2 s: credited, not expired
        assert holder.wait(timeout=30) == 0
        assert space.get("l/node").session == sid
        # without renewals the credited session still expires
        deadline = time.monotonic() + 10
        while space.get("l/node").session is not None:
            assert time.monotonic() < deadline, "the session never expired"
            time.sleep(0.05)
    finally:
        space.close()


def test_a_lock_held_longer_than_the_busy_timeout_is_waited_for(tmp_path, monkeypatch):
    """SQLite gives up after its busy timeout; the store waits on instead of failing a write."""
    monkeypatch.setattr(embedded_store, "BUSY_TIMEOUT_MS", 200)
    path = str(tmp_path / "s.db")
    space = EmbeddedSpace(path)
    try:
        holder = _hold_exclusive(path, 1.5)
        assert space.put("k", {"v": 1}) > 0        # several busy timeouts later
        assert holder.wait(timeout=30) == 0
        assert space.get("k").value == {"v": 1}
    finally:
        space.close()


def _killed_writer(path: str) -> None:
    """A process that commits and dies with SIGKILL, the store open (its WAL stays)."""
    code = ("import os, signal, sys\n"
            "from wfengine.space.embedded import EmbeddedSpace\n"
            "s = EmbeddedSpace(sys.argv[1])\n"
            "for i in range(20):\n"
            "    s.put('p/%d' % i, {'i': i})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", code, path], env=dict(os.environ), check=False)
    assert r.returncode == -signal.SIGKILL


def test_a_store_that_lost_its_wal_after_an_unclean_stop_is_refused(tmp_path):
    path = str(tmp_path / "space.db")
    _killed_writer(path)
    assert os.path.exists(path + "-wal") and os.path.exists(path + "-shm")
    os.unlink(path + "-wal")
    env = dict(os.environ, WF_SPACE=path)
    r = subprocess.run(WFCTL + ["runs", "m", "i"], env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not closed cleanly" in lines[0] and "-wal" in lines[0], r.stderr
    assert "remove %s-shm" % path in lines[0]


def test_a_store_stopped_uncleanly_with_its_wal_opens_with_everything_committed(tmp_path):
    path = str(tmp_path / "space.db")
    _killed_writer(path)
    space = EmbeddedSpace(path)
    try:
        assert [e.value["i"] for e in space.list("p/")] == sorted(range(20), key=str)
    finally:
        space.close()
    # closed cleanly (the last connection): SQLite removed the WAL and the -shm file
    assert not os.path.exists(path + "-wal") and not os.path.exists(path + "-shm")
    again = EmbeddedSpace(path)
    assert len(again.list("p/")) == 20
    again.close()


def test_a_store_closed_cleanly_by_sqlite_alone_opens(tmp_path):
    """A process whose connections SQLite closed without the Space (WAL and shared-memory file
    both removed by SQLite's clean close) leaves a store that opens."""
    path = str(tmp_path / "space.db")
    code = ("import sys\n"
            "from wfengine.space.embedded import EmbeddedSpace\n"
            "s = EmbeddedSpace(sys.argv[1])\n"
            "s.put('k', {'v': 1})\n"
            "s._finalizer.detach()\n"              # not closed through the Space
            "for c in s._conns:\n"
            "    c.close()\n")
    r = subprocess.run([sys.executable, "-c", code, path], env=dict(os.environ), check=False)
    assert r.returncode == 0
    assert not os.path.exists(path + "-wal") and not os.path.exists(path + "-shm")
    space = EmbeddedSpace(path)
    try:
        assert space.get("k").value == {"v": 1}
    finally:
        space.close()


def test_processes_opening_and_closing_a_store_at_once_never_see_a_lost_wal(tmp_path):
    """A clean close deletes the WAL, then the -shm file: an opener between the two must not take
    the store for one that lost its WAL, and openers of a new store wait for each other (SQLite
    answers "locked" to a WAL switch at once).  20 rounds of 10 threads opening and closing."""
    for n in range(20):
        path = str(tmp_path / ("s%d.db" % n))
        errors = []

        def cycle():
            try:
                s = EmbeddedSpace(path)
                s.put("k", {"n": n})
                s.close()
            except Exception as exc:      # noqa: BLE001 (collected, asserted below)
                errors.append(repr(exc))
        threads = [threading.Thread(target=cycle) for dummy in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == [] and not any(t.is_alive() for t in threads), errors
