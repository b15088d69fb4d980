# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded (SQLite) Space: the shared contract, plus what only a file shared by processes
can show (real processes racing, a process killed while holding a lock)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from wfengine.errors import SpaceError
from wfengine.space import PrefixedSpace, open_space, op_cas, op_get
from wfengine.space import embedded_sessions
from wfengine.space.embedded import EmbeddedSpace

from .contract import SpaceContract


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "space.db")


@pytest.fixture
def space(db_path):
    sp = EmbeddedSpace(db_path)
    yield sp
    sp.close()


@pytest.fixture
def space_factory(db_path):
    opened = []

    def factory():
        sp = EmbeddedSpace(db_path)
        opened.append(sp)
        return sp
    yield factory
    for sp in opened:
        sp.close()


@pytest.fixture
def raw_put(db_path):
    """Write bytes straight into the SQLite file, as a buggy or hostile writer would."""
    def put(key: str, data: bytes) -> None:
        conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            index = conn.execute("SELECT value FROM meta WHERE name = 'index'").fetchone()[0] + 1
            conn.execute("INSERT OR REPLACE INTO kv (key, value, create_index, modify_index,"
                         " session) VALUES (?, ?, ?, ?, NULL)", (key, data, index, index))
            conn.execute("UPDATE meta SET value = ? WHERE name = 'index'", (index,))
            conn.execute("COMMIT")
        finally:
            conn.close()
    return put


@pytest.fixture
def short_ttl():
    return embedded_sessions.MIN_SESSION_TTL


class TestEmbeddedContract(SpaceContract):
    pass


class TestPrefixedEmbeddedContract(SpaceContract):
    """The same contract through a PrefixedSpace, next to a neighbour writing the same keys."""

    @pytest.fixture
    def space(self, db_path):
        neighbour = EmbeddedSpace(db_path)
        for key in ["a/1", "t/a", "race/000", "job/x"]:
            neighbour.put("other/" + key, "not yours")
        sp = PrefixedSpace(EmbeddedSpace(db_path), "mine/")
        yield sp
        assert neighbour.get("other/a/1").value == "not yours"
        sp.close()
        neighbour.close()

    @pytest.fixture
    def space_factory(self, db_path):
        opened = []

        def factory():
            sp = PrefixedSpace(EmbeddedSpace(db_path), "mine/")
            opened.append(sp)
            return sp
        yield factory
        for sp in opened:
            sp.close()

    @pytest.fixture
    def raw_put(self, raw_put):
        return lambda key, data: raw_put("mine/" + key, data)


# ---- embedded only -----------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    import sys
    from wfengine.space.embedded import EmbeddedSpace
    path, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sp = EmbeddedSpace(path)
    sp.put("ready/" + name, True)
    if sp.rd("go", timeout=20) is None:
        sys.exit(3)
    conflicts = 0
    for dummy in range(rounds):
        while True:
            entry = sp.get("counter")
            value = 0 if entry is None else entry.value
            if sp.cas("counter", value + 1, 0 if entry is None else entry.index):
                break
            conflicts += 1
    sp.close()
    print(conflicts)
""")


def _wait_for_keys(space, prefix, count, timeout):
    deadline = time.monotonic() + timeout
    index = 1
    while True:
        index, keys = space.wait(prefix, index, max(0.0, min(1.0, deadline - time.monotonic())))
        if len(keys) >= count:
            return keys
        assert time.monotonic() < deadline, "timed out waiting for %d keys under %s" % (count, prefix)


def test_two_processes_increment_without_lost_updates(space, db_path):
    rounds = 200
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, db_path, name, str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("p1", "p2")]
    try:
        # both children are up before either starts, so their loops really overlap
        _wait_for_keys(space, "ready/", 2, 20)
        space.put("go", 1)
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        int(out.strip())  # conflicts seen by that child (informative; contention varies)
    assert space.get("counter").value == 2 * rounds


_HOLDER = textwrap.dedent("""
    import sys, time
    from wfengine.space.embedded import EmbeddedSpace
    sp = EmbeddedSpace(sys.argv[1])
    sid = sp.session_create("holder", 0.5)
    assert sp.acquire("locks/step", sid, {"holder": True})
    print(sid, flush=True)
    while True:
        time.sleep(0.1)
        sp.session_renew(sid)
""")


def test_lock_of_a_killed_process_is_released_after_its_ttl(space):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, space.path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sid = proc.stdout.readline().strip()
        assert sid, proc.stderr.read()
        entry = space.get("locks/step")
        assert entry.session == sid
        time.sleep(0.6)                      # the child renews: still held past one ttl
        assert space.get("locks/step").session == sid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        index = space.get("locks/step").index
        deadline = time.monotonic() + 5
        while space.get("locks/step").session is not None:
            assert time.monotonic() < deadline, "lock of the killed process never released"
            index, dummy = space.wait("locks/", index, 1.0)
        mine = space.session_create("successor", 5)
        assert space.acquire("locks/step", mine, {"pid": 1})
        assert not space.session_renew(sid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_session_created_after_reads_skipped_the_expiry_check_still_expires(space):
    """Reads skip the expiry query while no session can expire (EmbeddedSpace._quiet_until): the
    bound must also hold for a session created afterwards with the shortest TTL."""
    long_lived = space.session_create("long", 60)
    assert space.get("l/none") is None          # computes the bound (first expiry in 60 s)
    short = space.session_create("short", embedded_sessions.MIN_SESSION_TTL)
    assert space.acquire("l/k", short, {"who": "short"})
    assert space.get("l/k").session == short
    deadline = time.monotonic() + 5
    while space.get("l/k").session is not None:
        assert time.monotonic() < deadline, "the short session's lock outlived its TTL"
        time.sleep(0.02)
    assert not space.session_renew(short) and space.session_renew(long_lived)


def test_threads_share_one_space_object(space):
    def bump(n):
        for dummy in range(50):
            while True:
                entry = space.get("shared")
                value = 0 if entry is None else entry.value
                if space.cas("shared", value + 1, 0 if entry is None else entry.index):
                    break
    threads = [threading.Thread(target=bump, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert space.get("shared").value == 200


def test_read_only_txn_does_not_move_the_global_index(space):
    first = space.put("a", 1)
    assert space.txn([op_get("a"), op_get("b")]).ok
    assert not space.txn([op_cas("a", 2, first + 99)]).ok     # failed writes do not count
    assert space.put("c", 2) == first + 1


def test_data_survives_reopen_and_indexes_continue(db_path):
    sp = EmbeddedSpace(db_path)
    index = sp.put("k", {"kept": True})
    sp.close()
    with pytest.raises(SpaceError, match="closed"):
        sp.get("k")
    sp = EmbeddedSpace(db_path)
    try:
        assert sp.get("k").value == {"kept": True}
        assert sp.put("k2", 1) > index
    finally:
        sp.close()


def test_session_ttl_below_minimum_is_refused(space):
    with pytest.raises(SpaceError, match="ttl"):
        space.session_create("too short", 0.1)


def test_prefix_index_moves_with_writes_and_deletions_under_it_only(space):
    space.put("keep/a", 1)
    last = 0
    for i in range(5):
        space.put("gone/%d" % i, i)
        space.delete("gone/%d" % i)
        index, keys = space.wait("gone/", 0, 1)
        assert index > last and keys == []
        last = index
    # changes in other directories (and in a sub-directory's sibling) leave gone/ where it is
    space.put("noise/x", 1)
    space.put("gonex/y", 1)
    assert space.wait("gone/", last, 0.3) == (last, [])
    # a waiter on gone/ sees the next deletion
    space.put("gone/x", 1)
    index, dummy = space.wait("gone/", 0, 1)
    thread_result = {}
    t = threading.Thread(target=lambda: thread_result.update(r=space.wait("gone/", index, 2.0)))
    t.start()
    time.sleep(0.1)
    space.delete("gone/x")
    t.join(3)
    assert thread_result["r"][0] > index and thread_result["r"][1] == []


def test_prefix_not_ending_with_a_slash_gets_its_directory_index(space):
    space.put("d/apple", 1)
    index = space.put("d/banana", 2)
    got, keys = space.wait("d/app", 0, 1)
    assert got == index and keys == ["d/apple"]   # may wake spuriously, never miss a change


def test_untouched_prefix_has_a_positive_index(space):
    # index 0 means "return at once": a waiter must never be handed 0 back
    got, keys = space.wait("never/written/", 0, 1)
    assert got >= 1 and keys == []


def test_open_space_factory(tmp_path, monkeypatch):
    path = str(tmp_path / "f.db")
    a = open_space("embedded", path=path, prefix="eng-a/")
    b = open_space(path=path, prefix="eng-b/")
    monkeypatch.setenv("WF_SPACE", path)
    whole = open_space()
    try:
        assert isinstance(whole, EmbeddedSpace) and whole.path == os.path.realpath(path)
        a.put("k", "a")
        b.put("k", "b")
        assert a.get("k").value == "a" and b.get("k").value == "b"
        assert a.keys("") == ["k"]
        assert whole.keys("") == ["eng-a/k", "eng-b/k"]
        res = a.txn([op_cas("k", "x", 12345)])
        assert res.failed == ["k"]
        assert a.txn([op_get("k")]).entries["k"].key == "k"
        assert a.wait("", 0, 1)[1] == ["k"]
        sid = a.session_create("s", 5)
        assert a.acquire("lock", sid) and whole.get("eng-a/lock").session == sid
        assert b.get("lock") is None
        assert a.inp("").key in ("k", "lock")
        with pytest.raises(SpaceError, match="unknown space backend"):
            open_space("zookeeper")
        with pytest.raises(SpaceError, match="unknown option"):
            open_space("embedded", path=path, colour="blue")
    finally:
        for sp in (a, b, whole):
            sp.close()


def test_a_forked_child_opens_its_own_connection(space):
    space.put("before", 1)
    space.get("before")                      # the parent's thread has a connection now
    pid = os.fork()
    if pid == 0:                             # child: reuse the inherited object
        code = 1
        try:
            space.put("from/child", {"pid": os.getpid()})
            code = 0 if space.get("before").value == 1 else 2
        finally:
            os._exit(code)
    dummy, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert space.get("from/child").value["pid"] == pid
    assert space.put("after", 1) > space.get("from/child").index
