# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract every Space backend must pass (Consul semantics, see space/base.py).

A backend's test module subclasses ``SpaceContract`` and provides these fixtures:

* ``space``: a fresh, empty Space (no keys; a new store or a fresh PrefixedSpace);
* ``space_factory``: a callable returning another client of the SAME store as ``space`` (another
  connection / HTTP client), closed by the fixture;
* ``raw_put``: ``raw_put(key, data: bytes)`` stores raw bytes at ``key`` of that store, bypassing
  the JSON encoding (to check that bad data is refused on read);
* ``short_ttl``: the shortest session TTL the backend accepts (seconds).

Only behaviour is asserted, never timings, except "a blocking call returned before its timeout"
and "a quiet wait did block a while".  Expiry waits allow twice the TTL (Consul's grace).
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from wfengine.errors import SpaceDataError, SpaceError, TxnTooLarge
from wfengine.space import (MAX_TXN_OPS, MAX_VALUE_BYTES, Op, op_cas, op_check_index,
                            op_check_not_exists, op_check_session, op_delete, op_delete_cas,
                            op_delete_cas_present, op_delete_tree, op_get, op_get_tree, op_lock,
                            op_set, op_unlock)


def _in_thread(fn, *args):
    """Run ``fn`` in a thread; returns (thread, box) where box holds the result or the error."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # reported to the test thread
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _joined(thread, box, timeout=5.0):
    thread.join(timeout)
    assert not thread.is_alive(), "background call did not return"
    if "error" in box:
        raise box["error"]
    return box.get("result")


class SpaceContract:
    """Subclass me in a backend's test module and provide the fixtures listed above."""

    # ---- key/value -------------------------------------------------------------------------------
    def test_get_missing_is_none(self, space):
        assert space.get("nope") is None
        assert space.list("nope/") == []
        assert space.keys("nope/") == []

    def test_put_get(self, space):
        index = space.put("a/b", {"x": 1})
        assert isinstance(index, int) and index > 0
        entry = space.get("a/b")
        assert entry.key == "a/b"
        assert entry.value == {"x": 1}
        assert entry.index == index
        assert entry.session is None

    @pytest.mark.parametrize("value", [
        None, True, False, 0, -7, 2 ** 53, 3.25, "", "plain",
        "héllo ✓ 日本語 🚀 \"quotes\" \\ \n\t",
        [], {}, [1, [2, [3, {"deep": ["x", None]}]]],
        {"name": "Zoë", "nested": {"list": [1, 2.5, "ü"], "empty": {}, "flag": False},
         "ключ": "значение"},
    ])
    def test_json_round_trip(self, space, value):
        space.put("v/k", value)
        assert space.get("v/k").value == value
        assert [e.value for e in space.list("v/")] == [value]
        res = space.txn([op_get("v/k")])
        assert res.ok and res.entries["v/k"].value == value

    def test_list_and_keys_sorted_with_prefix_isolation(self, space):
        for key in ["a/2", "a/1", "a/10", "a/sub/x", "ab/1", "b/1"]:
            space.put(key, key)
        assert space.keys("a/") == ["a/1", "a/10", "a/2", "a/sub/x"]
        assert [e.key for e in space.list("a/")] == ["a/1", "a/10", "a/2", "a/sub/x"]
        assert [e.value for e in space.list("a/")] == ["a/1", "a/10", "a/2", "a/sub/x"]
        assert space.keys("a") == ["a/1", "a/10", "a/2", "a/sub/x", "ab/1"]
        assert space.keys("a/sub/") == ["a/sub/x"]
        assert space.keys("c/") == []
        assert space.keys("") == ["a/1", "a/10", "a/2", "a/sub/x", "ab/1", "b/1"]

    def test_overwrite_changes_value_and_index(self, space):
        first = space.put("k", 1)
        second = space.put("k", 2)
        assert second > first
        assert space.get("k").value == 2 and space.get("k").index == second

    def test_non_json_value_is_refused_naming_the_key(self, space, raw_put):
        raw_put("bad/notjson", b"{not json")
        with pytest.raises(SpaceDataError, match="bad/notjson"):
            space.get("bad/notjson")
        with pytest.raises(SpaceDataError, match="bad/notjson"):
            space.list("bad/")
        raw_put("bad2/binary", b"\xff\xfe\x00garbage")
        with pytest.raises(SpaceDataError, match="bad2/binary"):
            space.get("bad2/binary")
        # keys alone do not parse values
        assert space.keys("bad/") == ["bad/notjson"]

    def test_value_over_the_size_limit_is_refused(self, space):
        with pytest.raises(SpaceError):
            space.put("big", "x" * (MAX_VALUE_BYTES + 1))
        assert space.get("big") is None

    def test_second_client_sees_the_same_store(self, space, space_factory):
        other = space_factory()
        index = space.put("shared/k", {"from": "first"})
        entry = other.get("shared/k")
        assert entry.value == {"from": "first"} and entry.index == index
        index2 = other.put("shared/k", {"from": "second"})
        assert index2 > index
        assert space.get("shared/k").value == {"from": "second"}
        assert not space.cas("shared/k", "stale", index)
        assert other.cas("shared/k", "fresh", index2)

    # ---- indexes ---------------------------------------------------------------------------------
    def test_indexes_grow_with_every_write(self, space):
        seen = []
        seen.append(space.put("i/a", 1))
        seen.append(space.txn([op_set("i/b", 2), op_set("i/c", 3)]).index)
        seen.append(space.txn([op_cas("i/a", 10, seen[0])]).index)
        seen.append(space.txn([op_delete("i/b")]).index)
        seen.append(space.put("i/d", 4))
        assert all(isinstance(i, int) and i > 0 for i in seen)
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        # the index read back is the modify index of the write that made the value
        assert space.get("i/a").index == seen[2]
        assert space.get("i/c").index == seen[1]
        assert space.get("i/d").index == seen[4]
        assert {e.key: e.index for e in space.list("i/")} == {
            "i/a": seen[2], "i/c": seen[1], "i/d": seen[4]}

    def test_one_txn_stamps_one_index_on_all_its_keys(self, space):
        res = space.txn([op_set("t/a", 1), op_set("t/b", 2), op_set("t/c", 3)])
        assert res.ok and res.index > 0
        assert {e.index for e in space.list("t/")} == {res.index}

    def test_read_only_txn_reports_no_commit_index(self, space):
        index = space.put("r/a", 1)
        res = space.txn([op_get("r/a"), op_check_index("r/a", index), op_check_not_exists("r/z")])
        assert res.ok and res.index == 0
        assert res.entries["r/a"].index == index
        assert space.get("r/a").index == index

    def test_indexes_are_ordered_across_clients(self, space, space_factory):
        other = space_factory()
        a = space.put("x/1", 1)
        b = other.put("x/2", 2)
        c = space.put("x/3", 3)
        assert a < b < c

    # ---- txn: every verb -------------------------------------------------------------------------
    def test_txn_set_then_get_sees_it(self, space):
        res = space.txn([op_set("s/a", {"v": 1}), op_get("s/a"), op_get("s/missing")])
        assert res.ok
        assert res.entries["s/a"].value == {"v": 1}
        assert res.entries["s/a"].index == res.index
        assert res.entries["s/missing"] is None

    def test_txn_get_of_missing_key_does_not_fail(self, space):
        res = space.txn([op_get("g/none")])
        assert res.ok and res.entries == {"g/none": None} and res.failed == []

    def test_get_many_across_several_transactions(self, space):
        present = ["gm/%03d" % i for i in range(0, MAX_TXN_OPS + 10, 2)]
        space.write_chunked(op_set(k, {"i": int(k[3:])}) for k in present)
        wanted = ["gm/%03d" % i for i in range(MAX_TXN_OPS + 10)]   # more than one transaction
        got = space.get_many(wanted)
        assert sorted(got) == wanted
        assert all(got[k] is not None and got[k].value == {"i": int(k[3:])} for k in present)
        assert [k for k in wanted if got[k] is None] == [k for k in wanted if k not in present]
        assert space.get_many([]) == {}

    def test_get_tree_reads_keys_and_prefixes_in_one_snapshot(self, space):
        space.write_chunked([op_set("gt/run", {"r": 1}), op_set("gt/q/b", 2), op_set("gt/q/a", 1),
                             op_set("gt/qq", "not under gt/q/"), op_set("gt/f/x", {"x": 1})])
        res = space.txn([op_get("gt/run"), op_get("gt/none"), op_get_tree("gt/q/"),
                         op_get_tree("gt/f/"), op_get_tree("gt/empty/")])
        assert res.ok
        assert res.entries["gt/run"].value == {"r": 1} and res.entries["gt/none"] is None
        assert [(e.key, e.value) for e in res.trees["gt/q/"]] == [("gt/q/a", 1), ("gt/q/b", 2)]
        assert [(e.key, e.value) for e in res.trees["gt/f/"]] == [("gt/f/x", {"x": 1})]
        assert res.trees["gt/empty/"] == []
        assert res.trees["gt/q/"][0].index == space.get("gt/q/a").index

    def test_get_tree_alone_and_on_many_keys(self, space):
        space.write_chunked(op_set("gm2/%03d" % i, i) for i in range(MAX_TXN_OPS + 5))
        res = space.txn([op_get_tree("gm2/")])
        assert [e.value for e in res.trees["gm2/"]] == list(range(MAX_TXN_OPS + 5))

    @pytest.mark.parametrize("ops", [
        [op_get_tree("gt/"), op_get("gt/a")],                    # a get after a tree
        [op_get_tree("gt/"), op_get_tree("gt/q/")],              # one prefix inside another
        [op_get_tree("gt/q/"), op_get_tree("gt/q/")],            # twice the same
        [op_set("gt/a", 1), op_get_tree("gt/")],                 # in a write transaction
    ])
    def test_get_tree_misuse_is_refused_before_anything_is_applied(self, space, ops):
        with pytest.raises(ValueError):
            space.txn(ops)
        assert space.get("gt/a") is None

    def test_cas(self, space):
        assert space.txn([op_cas("c/k", "first", 0)]).ok           # 0: only if absent
        assert not space.txn([op_cas("c/k", "again", 0)]).ok       # present now
        index = space.get("c/k").index
        res = space.txn([op_cas("c/k", "second", index + 1000)])   # wrong index
        assert not res.ok and res.failed == ["c/k"]
        assert space.get("c/k").value == "first"
        res = space.txn([op_cas("c/k", "second", index)])
        assert res.ok and space.get("c/k").value == "second"
        assert not space.txn([op_cas("c/k", "third", index)]).ok   # stale now
        assert not space.txn([op_cas("c/absent", "x", 12345)]).ok  # absent, index given
        assert space.get("c/absent") is None
        assert space.cas("c/k", "via-helper", space.get("c/k").index)

    def test_delete(self, space):
        space.put("d/k", 1)
        assert space.txn([op_delete("d/k")]).ok
        assert space.get("d/k") is None
        assert space.txn([op_delete("d/never")]).ok               # absent: no failure
        space.put("d/j", 2)
        space.delete("d/j")
        assert space.keys("d/") == []

    def test_delete_cas(self, space):
        index = space.put("dc/k", 1)
        res = space.txn([op_delete_cas("dc/k", index + 1000)])
        assert not res.ok and res.failed == ["dc/k"]
        assert space.get("dc/k").value == 1
        assert space.txn([op_delete_cas("dc/k", index)]).ok
        assert space.get("dc/k") is None
        # a key that is gone cannot be deleted-by-index again: two takers never both win
        res = space.txn([op_delete_cas("dc/k", index)])
        assert not res.ok and res.failed == ["dc/k"]

    def test_delete_cas_present(self, space):
        index = space.put("dp/k", 1)
        other = space.put("dp/o", 2)
        res = space.txn([op_delete_cas_present("dp/k", index + 1000), op_set("dp/x", 1)])
        assert not res.ok and res.failed == ["dp/k"]
        assert space.get("dp/k").value == 1 and space.get("dp/x") is None
        res = space.txn([op_delete_cas_present("dp/k", index), op_set("dp/x", 1)])
        assert res.ok and res.index > other
        assert space.get("dp/k") is None and space.get("dp/x").value == 1
        # without any set: a batch of done nodes commits only deletes (its tuples, its locks)
        first = space.put("dp/r", 1)
        lock = space.put("dp/l", 2)
        res = space.txn([op_delete_cas_present("dp/r", first), op_delete("dp/l")])
        assert res.ok and res.index > lock, res
        assert space.get("dp/r") is None and space.get("dp/l") is None
        again = space.put("dp/r", 3)
        res = space.txn([op_delete_cas_present("dp/r", again)])
        assert res.ok and space.get("dp/r") is None

    def test_delete_tree(self, space):
        for key in ["t/a", "t/b/c", "t/b/d", "tx", "u/t/a"]:
            space.put(key, 1)
        assert space.txn([op_delete_tree("t/")]).ok
        assert space.keys("") == ["tx", "u/t/a"]
        space.delete_tree("u/")
        assert space.keys("") == ["tx"]

    def test_check_index(self, space):
        index = space.put("ci/k", 1)
        assert space.txn([op_check_index("ci/k", index)]).ok
        res = space.txn([op_check_index("ci/k", index + 1000)])
        assert not res.ok and res.failed == ["ci/k"]
        assert not space.txn([op_check_index("ci/absent", 5)]).ok

    def test_check_not_exists(self, space):
        assert space.txn([op_check_not_exists("ne/k")]).ok
        space.put("ne/k", 1)
        res = space.txn([op_check_not_exists("ne/k")])
        assert not res.ok and res.failed == ["ne/k"]

    def test_lock_unlock_and_check_session_in_txn(self, space, short_ttl):
        s1 = space.session_create("one", short_ttl * 20)
        s2 = space.session_create("two", short_ttl * 20)
        try:
            res = space.txn([op_lock("lk/k", {"by": 1}, s1)])
            assert res.ok
            entry = space.get("lk/k")
            assert entry.session == s1 and entry.value == {"by": 1} and entry.index == res.index
            assert space.txn([op_check_session("lk/k", s1)]).ok
            res = space.txn([op_check_session("lk/k", s2)])
            assert not res.ok and res.failed == ["lk/k"]
            res = space.txn([op_lock("lk/k", {"by": 2}, s2)])     # held by another session
            assert not res.ok and res.failed == ["lk/k"]
            assert space.get("lk/k").value == {"by": 1}
            assert space.txn([op_lock("lk/k", {"by": 1, "again": True}, s1)]).ok  # re-entrant
            assert space.get("lk/k").value == {"by": 1, "again": True}
            assert not space.txn([op_unlock("lk/k", s2)]).ok      # not the holder
            assert space.txn([op_unlock("lk/k", s1)]).ok
            assert space.get("lk/k").session is None
            assert not space.txn([op_check_session("lk/k", s1)]).ok
            assert not space.txn([op_unlock("lk/k", s1)]).ok      # not held any more
            assert not space.txn([op_check_session("lk/absent", s1)]).ok
            # an unlock that carries a value writes it
            assert space.txn([op_lock("lk/v", "held", s2)]).ok
            assert space.txn([Op("unlock", "lk/v", {"done": True}, session=s2)]).ok
            assert space.get("lk/v").value == {"done": True}
            assert space.get("lk/v").session is None
        finally:
            space.session_destroy(s1)
            space.session_destroy(s2)

    def test_plain_set_keeps_the_lock(self, space, short_ttl):
        sid = space.session_create("holder", short_ttl * 20)
        try:
            assert space.acquire("pk/k", sid, 1)
            space.put("pk/k", 2)
            entry = space.get("pk/k")
            assert entry.value == 2 and entry.session == sid
        finally:
            space.session_destroy(sid)

    def test_failed_check_rolls_back_the_whole_txn(self, space, short_ttl):
        keep = space.put("at/keep", "original")
        space.put("at/gone", "still here")
        sid = space.session_create("atomic", short_ttl * 20)
        try:
            res = space.txn([
                op_set("at/new", 1),
                op_cas("at/keep", "changed", keep),
                op_delete("at/gone"),
                op_lock("at/lock", "x", sid),
                op_delete_tree("at/gone"),
                op_cas("at/keep", "changed twice", keep),          # stale: fails
                op_set("at/after", 2),
            ])
            assert not res.ok
            assert res.failed == ["at/keep"]
            assert res.index == 0
            assert space.keys("at/") == ["at/gone", "at/keep"]
            assert space.get("at/keep").value == "original"
            assert space.get("at/keep").index == keep
            assert space.get("at/gone").value == "still here"
            assert space.get("at/lock") is None
            for check in (op_check_index("at/keep", keep + 1000),
                          op_check_not_exists("at/keep"),
                          op_check_session("at/keep", sid),
                          op_delete_cas("at/nothing", 1)):
                res = space.txn([op_set("at/x", 1), check])
                assert not res.ok and res.failed == [check.key]
                assert space.get("at/x") is None
        finally:
            space.session_destroy(sid)

    def test_txn_limit(self, space):
        with pytest.raises(TxnTooLarge):
            space.txn([op_set("lim/%03d" % i, i) for i in range(MAX_TXN_OPS + 1)])
        assert space.keys("lim/") == []
        res = space.txn([op_set("lim/%03d" % i, i) for i in range(MAX_TXN_OPS)])
        assert res.ok and len(space.keys("lim/")) == MAX_TXN_OPS
        space.write_chunked(op_set("many/%04d" % i, i) for i in range(3 * MAX_TXN_OPS + 5))
        assert len(space.keys("many/")) == 3 * MAX_TXN_OPS + 5

    def test_unknown_verb_is_refused(self, space):
        with pytest.raises(ValueError):
            space.txn([Op("frobnicate", "k")])

    # ---- blocking queries ------------------------------------------------------------------------
    def test_wait_index_zero_returns_at_once(self, space):
        index = space.put("w0/a", 1)
        start = time.monotonic()
        got, keys = space.wait("w0/", 0, 5.0)
        assert time.monotonic() - start < 4.0
        assert got >= index and keys == ["w0/a"]

    def test_wait_returns_on_a_change_under_the_prefix(self, space, space_factory):
        other = space_factory()
        index = space.put("wc/a", 1)
        thread, box = _in_thread(space.wait, "wc/", index, 2.0)
        time.sleep(0.2)
        changed = other.put("wc/b", 2)
        start = time.monotonic()
        got, keys = _joined(thread, box)
        assert time.monotonic() - start < 1.9, "wait did not return before its timeout"
        assert got >= changed > index
        assert keys == ["wc/a", "wc/b"]

    def test_wait_returns_on_a_delete_under_the_prefix(self, space):
        space.put("wd/a", 1)
        index = space.put("wd/b", 2)
        thread, box = _in_thread(space.wait, "wd/", index, 2.0)
        time.sleep(0.2)
        space.delete("wd/a")
        start = time.monotonic()
        got, keys = _joined(thread, box)
        assert time.monotonic() - start < 1.9, "wait did not return before its timeout"
        assert got > index and keys == ["wd/b"]

    def test_wait_on_a_sub_prefix_with_its_parents_index(self, space, space_factory):
        """What an idle worker does (worker.py): list q/, then follow only q/~/ from that
        listing's index.  A change elsewhere under the parent must not wake it, and a change
        under the sub-prefix made after the listing must."""
        other = space_factory()
        space.put("wp/~/w/1", 1)
        index, dummy = space.wait("wp/", 0, 0)
        thread, box = _in_thread(space.wait, "wp/~/", index, 1.5)
        time.sleep(0.2)
        other.put("wp/run1/r/a", 1)           # under the parent only
        time.sleep(0.3)
        assert thread.is_alive(), "a change outside the sub-prefix woke its wait"
        changed = other.put("wp/~/runs/run2", 1)
        start = time.monotonic()
        got, keys = _joined(thread, box)
        assert time.monotonic() - start < 1.4, "wait did not return before its timeout"
        assert got >= changed and keys == ["wp/~/runs/run2", "wp/~/w/1"]

    def test_wait_times_out_when_nothing_changes(self, space):
        index = space.put("wt/a", 1)
        start = time.monotonic()
        got, keys = space.wait("wt/", index, 1.0)
        elapsed = time.monotonic() - start
        assert 0.5 <= elapsed < 5.0
        assert got == index and keys == ["wt/a"]

    def test_watch_returns_the_new_entry_with_the_change(self, space, space_factory):
        other = space_factory()
        index = space.put("ww/run", {"status": "running"})
        thread, box = _in_thread(space.watch, "ww/run", index, 2.0)
        time.sleep(0.2)
        changed = other.put("ww/run", {"status": "succeeded"})
        start = time.monotonic()
        got, entry = _joined(thread, box)
        assert time.monotonic() - start < 1.9, "watch did not return before its timeout"
        assert got >= changed > index
        assert entry.key == "ww/run" and entry.value == {"status": "succeeded"}
        assert entry.index == changed

    def test_watch_of_a_deleted_key_returns_none(self, space):
        index = space.put("wx/run", 1)
        thread, box = _in_thread(space.watch, "wx/run", index, 2.0)
        time.sleep(0.2)
        space.delete("wx/run")
        got, entry = _joined(thread, box)
        assert got > index and entry is None

    def test_watch_times_out_with_the_same_entry(self, space):
        index = space.put("wy/run", 7)
        start = time.monotonic()
        got, entry = space.watch("wy/run", index, 1.0)
        assert 0.5 <= time.monotonic() - start < 5.0
        assert got >= index and entry.value == 7 and entry.index == index

    # ---- sessions and locks ----------------------------------------------------------------------
    def test_acquire_release(self, space, short_ttl):
        s1 = space.session_create("one", short_ttl * 20)
        s2 = space.session_create("two", short_ttl * 20)
        try:
            assert s1 != s2
            assert space.acquire("lock/a", s1, {"owner": "one"})
            entry = space.get("lock/a")
            assert entry.session == s1 and entry.value == {"owner": "one"}
            assert not space.acquire("lock/a", s2, {"owner": "two"})
            assert space.get("lock/a").value == {"owner": "one"}
            assert space.acquire("lock/a", s1, {"owner": "one", "n": 2})   # same session again
            assert not space.release("lock/a", s2)
            assert space.get("lock/a").session == s1
            assert space.release("lock/a", s1)
            assert space.get("lock/a").session is None
            assert not space.release("lock/a", s1)
            assert space.acquire("lock/a", s2, {"owner": "two"})
            assert space.get("lock/a").session == s2
        finally:
            space.session_destroy(s1)
            space.session_destroy(s2)

    def test_acquire_with_unknown_session_fails(self, space):
        assert not space.acquire("lock/u", str(uuid.uuid4()), 1)
        assert space.get("lock/u") is None
        res = space.txn([op_lock("lock/u", 1, str(uuid.uuid4()))])
        assert not res.ok and res.failed == ["lock/u"]

    def test_session_destroy_releases_its_locks(self, space, short_ttl):
        s1 = space.session_create("one", short_ttl * 20)
        s2 = space.session_create("two", short_ttl * 20)
        try:
            assert space.acquire("sd/a", s1, "v")
            assert space.acquire("sd/b", s1, "w")
            space.session_destroy(s1)
            assert [e.session for e in space.list("sd/")] == [None, None]
            assert space.get("sd/a").value == "v"                  # behavior=release keeps keys
            assert not space.session_renew(s1)
            assert not space.acquire("sd/a", s1)
            assert space.acquire("sd/a", s2)
        finally:
            space.session_destroy(s2)

    def test_session_with_delete_behavior_deletes_its_keys(self, space, short_ttl):
        """Workers' sessions: when one is invalidated, the lock keys it held disappear (and a
        blocking query on their prefix returns)."""
        sid = space.session_create("worker", short_ttl * 20, behavior="delete")
        space.put("sdel/other", 1)
        assert space.acquire("sdel/lock", sid, {"worker": "w"})
        index = space.get("sdel/lock").index
        space.session_destroy(sid)
        assert space.keys("sdel/") == ["sdel/other"]
        new_index, keys = space.wait("sdel/", index, 2.0)
        assert new_index > index and keys == ["sdel/other"]

    def test_renewed_session_stays_alive(self, space, short_ttl):
        sid = space.session_create("alive", short_ttl)
        try:
            assert space.acquire("ren/k", sid, 1)
            for dummy in range(3):
                time.sleep(short_ttl * 0.4)
                assert space.session_renew(sid)
            assert space.get("ren/k").session == sid
        finally:
            space.session_destroy(sid)

    def test_session_not_renewed_expires_and_releases_its_lock(self, space, space_factory, short_ttl):
        other = space_factory()
        dead = space.session_create("dies", short_ttl)
        assert space.acquire("exp/lock", dead, {"worker": "dies"})
        index = space.get("exp/lock").index
        # no renewal: wait (blocking query, no busy loop) until the lock is released
        deadline = time.monotonic() + 3 * short_ttl + 5
        while True:
            entry = other.get("exp/lock")
            if entry.session is None:
                break
            remaining = deadline - time.monotonic()
            assert remaining > 0, "session did not expire within 3x its ttl"
            index, dummy = other.wait("exp/", index, min(remaining, 1.0))
        assert entry.value == {"worker": "dies"}                    # released, not deleted
        assert not space.session_renew(dead)
        assert not space.acquire("exp/lock", dead)
        alive = other.session_create("takes over", short_ttl * 20)
        try:
            assert other.acquire("exp/lock", alive, {"worker": "takes over"})
            assert space.get("exp/lock").session == alive
        finally:
            other.session_destroy(alive)

    # ---- Linda -----------------------------------------------------------------------------------
    def test_out_rdp_rd(self, space):
        assert space.rdp("tu/") is None
        space.out("tu/1", {"n": 1})
        space.out("tu/2", {"n": 2})
        assert space.rdp("tu/").key == "tu/1"
        assert space.rd("tu/", timeout=1.0).value == {"n": 1}
        assert space.keys("tu/") == ["tu/1", "tu/2"]           # reading does not take
        assert space.rd("none/", timeout=0.3) is None

    def test_rd_blocks_until_out(self, space, space_factory):
        other = space_factory()
        thread, box = _in_thread(space.rd, "rb/", 5.0)
        time.sleep(0.2)
        assert thread.is_alive()
        other.out("rb/x", "hello")
        entry = _joined(thread, box)
        assert entry is not None and entry.key == "rb/x" and entry.value == "hello"
        assert space.keys("rb/") == ["rb/x"]

    def test_inp_takes_once(self, space):
        space.out("in/1", "a")
        taken = space.inp("in/")
        assert taken.key == "in/1" and taken.value == "a"
        assert space.get("in/1") is None
        assert space.inp("in/") is None

    def test_in_blocks_until_another_thread_outs(self, space, space_factory):
        other = space_factory()
        thread, box = _in_thread(space.in_, "job/", 5.0)
        time.sleep(0.2)
        assert thread.is_alive(), "in_ returned without a tuple"
        other.out("job/1", {"task": 1})
        entry = _joined(thread, box)
        assert entry is not None and entry.key == "job/1" and entry.value == {"task": 1}
        assert space.keys("job/") == []

    def test_in_times_out(self, space):
        start = time.monotonic()
        assert space.in_("never/", timeout=0.3) is None
        assert time.monotonic() - start < 5.0

    def test_concurrent_inp_takes_each_tuple_exactly_once(self, space, space_factory):
        count, workers = 50, 8
        space.write_chunked(op_set("race/%03d" % i, i) for i in range(count))
        clients = [space if n % 2 == 0 else space_factory() for n in range(workers)]
        taken = [[] for dummy in range(workers)]
        errors = []
        start = threading.Barrier(workers)

        def take(n):
            try:
                start.wait(5)
                while True:
                    entry = clients[n].inp("race/")
                    if entry is None:
                        return
                    taken[n].append(entry.value)
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=take, args=(n,), daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert not any(t.is_alive() for t in threads), "a taker hung"
        assert errors == []
        every = [value for values in taken for value in values]
        assert sorted(every) == list(range(count)), "a tuple was lost or taken twice"
        assert space.keys("race/") == []
