# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space on a real 3-server cluster: the shared contract, plus what only Consul shows
(its size limits, its session TTL rules, a lost response, a leader killed mid-loop)."""
from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
import urllib.request

import pytest

from wfengine.errors import SpaceError, TxnTooLarge
from wfengine.space import (MAX_TXN_OPS, MAX_VALUE_BYTES, PrefixedSpace, open_space, op_cas,
                            op_delete, op_delete_cas, op_lock, op_set)
from wfengine.space.consul import ConsulSpace
from wfengine.space.consul_http import _parse_url

from .contract import SpaceContract

pytestmark = pytest.mark.consul


def _http(method: str, url: str, data: bytes = None):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode() or "null")


@pytest.fixture
def space(consul_space):
    return consul_space


@pytest.fixture
def space_factory(consul_cluster, consul_prefix):
    """Clients of the same keys through ANOTHER server of the cluster."""
    opened = []
    url = consul_cluster.urls[1 % len(consul_cluster.urls)]

    def factory():
        sp = ConsulSpace(url=url, prefix=consul_prefix)
        opened.append(sp)
        return sp
    yield factory
    for sp in opened:
        sp.close()


@pytest.fixture
def raw_put(consul_cluster, consul_prefix):
    def put(key: str, data: bytes) -> None:
        assert _http("PUT", "%s/v1/kv/%s%s" % (consul_cluster.urls[0], consul_prefix, key), data)
    return put


@pytest.fixture
def short_ttl():
    # Consul's minimum TTL is 10 s, and it destroys a session 2 x TTL after the last renewal.
    return 10


class TestConsulContract(SpaceContract):
    pass


# ---- limits ----------------------------------------------------------------------------------------
def test_value_over_512_kib_is_refused_naming_key_and_size(consul_space):
    big = "x" * MAX_VALUE_BYTES          # + 2 bytes of JSON quotes
    for call in (lambda: consul_space.put("big/k", big),
                 lambda: consul_space.txn([op_set("big/k", big)]),
                 lambda: consul_space.write_chunked([op_set("big/k", big)])):
        with pytest.raises(SpaceError, match=r"big/k: value of %d bytes exceeds Consul's limit "
                                             r"of 524288 bytes" % (MAX_VALUE_BYTES + 2)):
            call()
    sid = consul_space.session_create("big", 60)
    try:
        with pytest.raises(SpaceError, match="big/k: value of"):
            consul_space.acquire("big/k", sid, big)
    finally:
        consul_space.session_destroy(sid)
    assert consul_space.keys("big/") == []


def test_value_too_large_for_a_transaction_body_goes_through_kv_put(consul_space):
    # 450 KiB fits Consul's value limit but not a /v1/txn body once base64-encoded
    value = "y" * (450 * 1024)
    index = consul_space.put("large/k", value)
    entry = consul_space.get("large/k")
    assert entry.value == value and entry.index == index
    assert consul_space.put("large/small", 1) > index
    with pytest.raises(SpaceError, match="too large"):
        consul_space.txn([op_set("large/t", value)])
    assert consul_space.get("large/t") is None
    # write_chunked splits by size (and hands a lone huge set to put)
    consul_space.write_chunked([op_set("chunk/%d" % i, "z" * (100 * 1024)) for i in range(9)]
                               + [op_set("chunk/huge", value)])
    assert len(consul_space.keys("chunk/")) == 10


def test_txn_of_65_operations_raises_txn_too_large(consul_space):
    with pytest.raises(TxnTooLarge):
        consul_space.txn([op_set("lim/%d" % i, i) for i in range(MAX_TXN_OPS + 1)])
    assert consul_space.keys("lim/") == []
    # delete_cas takes two Consul operations: the limit applies to the expansion
    ops = [op_delete_cas("lim/%d" % i, 5) for i in range(MAX_TXN_OPS // 2 + 1)]
    with pytest.raises(TxnTooLarge, match="delete_cas"):
        consul_space.txn(ops)


def test_delete_only_txn_at_the_limit_still_reports_a_commit_index(consul_space):
    before = consul_space.put("del/seed", 0)
    consul_space.write_chunked(op_set("del/%02d" % i, i) for i in range(MAX_TXN_OPS))
    res = consul_space.txn([op_delete("del/%02d" % i) for i in range(MAX_TXN_OPS)])
    assert res.ok and res.index > before
    assert consul_space.keys("del/") == ["del/seed"]
    assert consul_space.put("del/after", 1) > res.index


# ---- sessions ----------------------------------------------------------------------------------------
def test_session_ttl_is_clamped_and_halved_with_no_lock_delay_and_no_node_checks(
        consul_cluster, consul_space):
    short = consul_space.session_create("short", 1)
    longer = consul_space.session_create("longer", 60)
    try:
        info = _http("GET", "%s/v1/session/info/%s" % (consul_cluster.urls[0], short))[0]
        assert info["TTL"] == "10s" and info["LockDelay"] == 0
        assert info["Behavior"] == "release" and not info.get("NodeChecks")
        assert not info.get("Checks")
        info = _http("GET", "%s/v1/session/info/%s" % (consul_cluster.urls[0], longer))[0]
        assert info["TTL"] == "30s"   # Consul expires at 2 x TTL: 60 s without renewal
    finally:
        consul_space.session_destroy(short)
        consul_space.session_destroy(longer)
    assert not consul_space.session_renew(short)
    assert not consul_space.session_renew("not-a-session-id")


def test_released_lock_is_retaken_at_once_by_another_session(consul_space):
    # LockDelay 0: Consul's default would refuse the new holder for 15 s
    one = consul_space.session_create("one", 60)
    two = consul_space.session_create("two", 60)
    try:
        assert consul_space.acquire("ld/k", one, "one")
        consul_space.session_destroy(one)
        assert consul_space.acquire("ld/k", two, "two")
        assert consul_space.txn([op_lock("ld/j", 1, two)]).ok
    finally:
        consul_space.session_destroy(two)


# ---- configuration -------------------------------------------------------------------------------
def test_url_forms_and_environment(consul_cluster, consul_prefix, monkeypatch):
    assert _parse_url("127.0.0.1:8500") == ("http", "127.0.0.1", 8500)
    assert _parse_url("http://consul.example") == ("http", "consul.example", 8500)
    assert _parse_url("https://consul.example") == ("https", "consul.example", 8501)
    assert _parse_url("https://10.0.0.1:9501/") == ("https", "10.0.0.1", 9501)
    assert _parse_url("[::1]:8500") == ("http", "[::1]", 8500)
    monkeypatch.setenv("CONSUL_HTTP_SSL", "true")
    assert _parse_url("host:1") == ("https", "host", 1)
    monkeypatch.delenv("CONSUL_HTTP_SSL")
    with pytest.raises(SpaceError, match="scheme"):
        _parse_url("unix:///var/run/consul.sock")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul_cluster.urls[-1].split("://", 1)[1])
    sp = ConsulSpace(prefix=consul_prefix)
    try:
        assert sp.url == consul_cluster.urls[-1]
        assert sp.get("env/k") is None
        sp.put("env/k", 1)
        assert sp.get("env/k").value == 1
    finally:
        sp.delete_tree("")
        sp.close()


def test_open_space_consul_with_prefix(consul_cluster, consul_prefix, consul_space):
    sp = open_space("consul", url=consul_cluster.urls[0], prefix=consul_prefix + "eng/")
    try:
        assert isinstance(sp, PrefixedSpace) and isinstance(sp.inner, ConsulSpace)
        sp.put("k", "v")
        assert sp.keys("") == ["k"]
        assert consul_space.keys("") == ["eng/k"]
    finally:
        sp.close()


def test_unreachable_consul_raises_after_the_retry_budget():
    # nothing listens on port 1: every attempt is refused, then SpaceError names the address
    sp = ConsulSpace("127.0.0.1:1", retry_total=0.5)
    start = time.monotonic()
    with pytest.raises(SpaceError, match=r"get k: Consul unavailable after \d+ attempts.*127.0.0.1:1"):
        sp.get("k")
    assert time.monotonic() - start < 5
    sp.close()
    with pytest.raises(SpaceError, match="closed"):
        sp.get("k")


# ---- a lost response --------------------------------------------------------------------------------
class _DroppingProxy:
    """A real HTTP relay to one Consul agent that, on demand, lets a /v1/txn request through to
    Consul and then closes the client connection without the response: the client cannot know
    whether its transaction was applied (what a dying leader or a reset does)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.split("://", 1)[1]
        self.drop_txn = 0
        self.dropped = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                method, path, dummy = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = reader.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    name, value = h.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0") or 0))
                up = http.client.HTTPConnection(self.upstream, timeout=30)
                up.request(method, path, body=body or None,
                           headers={k: v for k, v in headers.items()
                                    if k in ("content-type", "x-consul-token")})
                resp = up.getresponse()
                data = resp.read()
                up.close()
                with self._lock:
                    drop = path.startswith("/v1/txn") and self.drop_txn > 0
                    if drop:
                        self.drop_txn -= 1
                        self.dropped += 1
                if drop:
                    return
                head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (resp.status, resp.reason, len(data))
                for name in ("Content-Type", "X-Consul-Index"):
                    if resp.getheader(name):
                        head += "%s: %s\r\n" % (name, resp.getheader(name))
                conn.sendall(head.encode() + b"\r\n" + data)
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy(consul_cluster):
    p = _DroppingProxy(consul_cluster.urls[0])
    yield p
    p.close()


def test_committed_cas_whose_response_was_lost_is_reported_ok(proxy, consul_prefix,
                                                              consul_space):
    sp = ConsulSpace(proxy.url, prefix=consul_prefix)
    try:
        index = sp.put("lost/counter", 0)
        proxy.drop_txn = 1
        res = sp.txn([op_cas("lost/counter", 1, index)])
        assert proxy.dropped == 1
        # the first attempt committed; the retry failed its CAS; the nonce in Flags tells
        assert res.ok and res.index > index
        entry = consul_space.get("lost/counter")
        assert entry.value == 1 and entry.index == res.index
        # a CAS that really failed, whose response was lost too, stays a failure
        proxy.drop_txn = 1
        res = sp.txn([op_cas("lost/counter", 99, index)])
        assert proxy.dropped == 2
        assert not res.ok and res.failed == ["lost/counter"]
        assert consul_space.get("lost/counter").value == 1
        # an unconditional write is simply applied again
        proxy.drop_txn = 1
        assert sp.put("lost/plain", "v") > entry.index
        assert proxy.dropped == 3 and consul_space.get("lost/plain").value == "v"
    finally:
        sp.close()


# ---- a leader killed mid-loop ---------------------------------------------------------------------
def test_leader_killed_during_cas_loop_on_a_follower(consul_cluster, consul_prefix, caplog):
    if consul_cluster.external_url:
        pytest.skip("WF_CONSUL_URL: not our cluster to kill")
    others = consul_cluster.other_users()
    if others:
        pytest.skip("the cluster is shared with test session(s) %s right now: killing its leader "
                    "would disturb them; run again alone" % others)
    leader = consul_cluster.wait_leader()
    follower = next(s for s in consul_cluster.servers if s is not leader)
    sp = ConsulSpace(follower.http_url, prefix=consul_prefix, retry_total=60)
    rounds, kill_at = 200, 50
    halfway = threading.Event()
    killed = {}

    def killer():
        if halfway.wait(60):
            try:
                killed["server"] = consul_cluster.kill_leader()
            except Exception as exc:  # reported by the test thread
                killed["error"] = exc
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    caplog.set_level(logging.DEBUG, logger="wfengine.space.consul")
    conflicts = 0
    try:
        sp.put("counter", 0)
        for i in range(rounds):
            while True:
                entry = sp.get("counter")
                if sp.cas("counter", entry.value + 1, entry.index):
                    break
                conflicts += 1
            if i + 1 == kill_at:
                halfway.set()
        thread.join(30)
        assert "error" not in killed, "killing the leader failed: %s" % killed.get("error")
        assert killed.get("server") is leader, "the leader was not killed during the loop"
        # Exact: a committed CAS reported failed would count twice (rounds + k), a failed one
        # reported ok not at all (rounds - k).
        assert sp.get("counter").value == rounds
        # A CAS can still fail honestly once: a default-consistency read served by the new leader
        # before it has applied the old leader's last commit returns the previous value (Consul
        # documents this window).  The failed CAS goes through the new leader's log after those
        # entries, so the next read is fresh: one conflict per election, not a loop.
        assert conflicts <= 3, "%d CAS failures although no one else writes" % conflicts
        new_leader = consul_cluster.wait_leader(30)
        assert new_leader is not leader
        retries = [r for r in caplog.records if "transient" in r.getMessage()]
        print("leader %s killed; new leader %s; %d transient errors retried"
              % (leader.name, new_leader.name, len(retries)))
    finally:
        sp.delete_tree("")
        sp.close()
        if "server" in killed:
            consul_cluster.restart(killed["server"])
        consul_cluster.wait_leader()
