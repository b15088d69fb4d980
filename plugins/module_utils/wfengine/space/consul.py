# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space: the Space contract on Consul's KV store, sessions, transactions and blocking
queries (only APIs present in Consul 1.8).

Transport.  py-consul (``import consul``) parses nothing here but gives the HTTP client: one
``requests`` session per Space (a small pool, see ``max_connections``), TLS settings, and timeouts
that grow with a blocking query's wait.  Every request goes through ``client.http.get/put`` with a
callback that returns the raw response, because the library's higher-level calls do not fit:
``Txn.put`` exists in py-consul 1.8 but sends neither the ACL token nor ``dc`` and turns the 409 of
a failed check into an exception string; and the library's callbacks turn every HTTP status into
exception text, which would hide what the retry policy needs (status code and body).

Values are JSON text (``base.dumps``), parsed on read with ``base.loads``.  Every value-writing
operation also stores a random per-transaction nonce in the key's Consul ``Flags`` (invisible
through the Space contract): it is how a transaction whose response was lost is recognised
afterwards (see "Retries").

Mapping of the transaction verbs (Consul's own semantics differ in a few places; the contract,
which the embedded Space also follows, wins):

* ``set``/``cas``/``delete``/``delete_tree``/``check_index``/``check_session``/
  ``check_not_exists``/``lock`` map one to one;
* ``delete_cas`` becomes ``cas`` (to an empty value, with the index) followed by ``delete``:
  Consul's own ``delete-cas`` *succeeds* on a missing key, so two Linda takers could both "take"
  the same tuple; ``cas`` with a non-zero index fails on a missing key.  ``delete_cas`` with index
  0 can never succeed (nothing exists at index 0) and fails without a request;
* ``delete_cas_present`` (a key the caller knows exists: a ready tuple under its lock) is
  Consul's own ``delete-cas``: one operation instead of two;
* ``unlock`` without a value keeps the key's value (as the embedded Space does), but Consul's
  ``unlock`` writes the value it is given: the key is read first and the transaction carries
  ``check-index`` (read index) + ``unlock`` (value read); if the key changed in between, it is
  read again and the transaction resent;
* ``get`` FAILS a Consul transaction when the key is missing.  The transaction is sent with ``get``;
  when the only errors are missing keys of ``get`` operations (Consul reports every failing
  operation, and a failed transaction applied nothing), those operations are resent as
  ``check-not-exists`` (their result is None) and the whole transaction retried, flipping back if
  a key appeared meanwhile.  Reads stay atomic with the rest of the transaction; ``get-tree`` on
  the key was rejected because it would return whole subtrees.
* a write transaction that only deletes gets no commit index from Consul (its response carries no
  result for deletes): a ``set`` of the first key deleted by ``delete`` or ``delete_tree`` is
  placed right before its delete, which changes nothing visible but returns the commit index
  (never before a ``delete_cas_present``, whose index check it would break).  When the 64 operations leave no room,
  a consistent ``?keys`` read of the deleted keys' common prefix gives an index that is at least
  the commit index.

The expansions above count against Consul's 64 operations: a transaction that the embedded Space
accepts can raise ``TxnTooLarge`` here if it uses ``delete_cas`` or value-less ``unlock`` close to
the limit (the message says so).

Sizes.  A value is limited to 512 KiB (Consul's ``kv_max_value_size``); a larger one raises
``SpaceError`` naming the key and size before any request.  A transaction's whole body is limited
by Consul's ``txn_max_req_len`` (512 KiB by default) and values travel base64-encoded in it, so a
transaction carries at most about 384 KiB of values: ``put`` of a larger value uses a plain KV PUT
instead, ``write_chunked`` splits by size as well as by count, and a ``txn`` that is too large
raises ``SpaceError`` (Consul's 413).

Sessions.  Consul destroys a TTL session 2 x TTL after its last renewal and accepts TTLs from 10 s
to 24 h, so a session asked for ``ttl`` seconds is created with a Consul TTL of ``ttl/2`` clamped
to [10 s, 86400 s]: it lives ``ttl`` seconds without renewal, at least 20 s.  ``LockDelay`` is 0
(Consul's default of 15 s would keep a lock released by an expired session unavailable for 15 s,
and a dead worker's step must be retaken at once).  ``Checks`` is empty: by default Consul ties a
session to its node's ``serfHealth``, but the node is a Consul agent that stays healthy when the
worker process dies, so only the TTL must decide.  ``Behavior`` is passed through: ``release``
keeps the locked keys, ``delete`` deletes them (Consul does either natively).

Retries.  Consul hiccups are retried, not surfaced, with exponential backoff (50 ms doubling to
1 s, jittered) for up to ``retry_total`` seconds (60 by default), after which ``SpaceError`` is
raised with the last error.  Transient: connection refused/reset, timeouts, HTTP 429, 502-504, and
500 unless its body is a known permanent error (invalid session, bad TTL, unknown datacenter,
ACL).  An ACL refusal (HTTP 403, a 500 "Permission denied", or a transaction error whose
``What`` says so) raises ``PermissionDenied`` naming the key and the engine folder it is in,
never a failed check: retrying or re-reading cannot change it.  Each transient failure is classified as *not applied* (the request never reached Consul:
connection refused, connect timeout; or Consul said so: "No cluster leader", 429, "rpc error
getting client" when the agent could not reach the leader to forward the request) or *maybe
applied* (a reset or read timeout after the request was sent, "leadership lost while committing
log", an RPC EOF between the agent and the leader...).  Reads, ``put``, ``acquire`` (re-acquiring
by the same session succeeds), ``session_renew`` and ``session_destroy`` are idempotent and always
retried.  A transaction is retried too: an unconditional one applies the same writes again
(harmless); a conditional one that already committed fails its own check on the retry, and then
the nonce tells: if the transaction's last surviving written key carries this transaction's
nonce in its Flags, the first attempt committed and ``ok=True`` is returned (so a CAS counter
driven through a leader election stays exact); otherwise ``ok=False`` (the caller re-reads, as
after any lost CAS race).  Two cases cannot be told apart and are reported as failed: a
conditional transaction that only deletes (its keys are gone, so is the nonce) and a committed
transaction whose ``get`` results were lost with the response (that raises ``SpaceError``, since
the values cannot be recovered).  ``session_create`` retried after a lost response may leave an
unused session behind; it expires after its TTL.

Threads.  One Space object may be shared by threads: its only mutable state is the requests
session, whose connection pool is thread-safe.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import re
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import consul
import requests
import requests.adapters
import urllib3.exceptions

from ..errors import PermissionDenied, SpaceDataError, SpaceError, SpaceUnavailable, TxnTooLarge
from .tls import check_tls_files, is_tls_eof, no_verify_warning, probe_client_auth, tls_failure
from .base import (MAX_TXN_OPS, MAX_VALUE_BYTES, READ_VERBS, Entry, Op, Space, TxnResult,
                   check_ops, dumps, loads, op_set, op_unlock)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Consul's session TTL bounds (seconds).
MIN_CONSUL_TTL = 10
MAX_CONSUL_TTL = 86400
# Consul's default txn_max_req_len: the whole body of a /v1/txn request.
TXN_MAX_BYTES = 512 * 1024
# Bounded rounds for the optimistic parts of a transaction (missing gets, unlock re-reads).
MAX_ROUNDS = 32
BACKOFF_START = 0.05
BACKOFF_CAP = 1.0

# 500 bodies that are answers, not hiccups: retrying them only delays the error.
_PERMANENT_500 = re.compile(
    r"invalid session|UUID must be|Invalid Session TTL|must be between|No path to datacenter|"
    r"Permission denied|ACL not found|ACL support disabled|Bad request|invalid (key|value)",
    re.IGNORECASE)
# Errors that say the request was refused before anything was applied.
# ("rpc error getting client": the agent could not even connect to the leader to forward it.)
_NOT_APPLIED = re.compile(r"No cluster leader|node is not the leader|rate limit|"
                          r"rpc error getting client", re.IGNORECASE)
_DENIED = re.compile(r"Permission denied|ACL not found", re.IGNORECASE)
_SESSION_GONE = re.compile(r"invalid session|UUID must be", re.IGNORECASE)

# Consul transaction verbs that return one result (the entry); the others return none.
_ONE_RESULT = frozenset(["set", "cas", "lock", "unlock", "get", "check-index", "check-session"])
# Verbs whose result's ModifyIndex is the transaction's commit index.
_WRITE_RESULT = frozenset(["set", "cas", "lock", "unlock"])
_VALUE_VERBS = frozenset(["set", "cas", "lock", "unlock"])
_DELETE_VERBS = frozenset(["delete", "delete_cas", "delete_cas_present", "delete_tree"])


class _Transient(Exception):
    """A failure worth retrying; ``maybe_applied`` if the request may have taken effect."""

    def __init__(self, message: str, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


def _parse_url(url: str) -> Tuple[str, str, int]:
    """``host:port``, ``http://host[:port]`` or ``https://host[:port]`` -> (scheme, host, port)."""
    text = url.strip()
    if "://" not in text:
        ssl = os.environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true", "yes")
        text = ("https://" if ssl else "http://") + text
    try:
        parsed = urllib.parse.urlsplit(text)
    except ValueError as exc:       # 'http://[::1'
        raise SpaceError("consul url %r: %s" % (url, exc)) from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise SpaceError("consul url %r: scheme must be http or https" % url)
    try:
        port = parsed.port
    except ValueError:
        raise SpaceError("consul url %r: bad port" % url)
    host = parsed.hostname
    if not host:
        raise SpaceError("consul url %r: no host" % url)
    if ":" in host:
        host = "[%s]" % host  # IPv6 literal, as it must appear in a URL
    # Consul's conventional ports when none is given.
    return scheme, host, port or (8501 if scheme == "https" else 8500)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(data: Optional[str]) -> Optional[bytes]:
    return None if data is None else base64.b64decode(data)


class ConsulSpace(Space):
    """A Space in a Consul datacenter, through one agent's HTTP API."""

    name = "consul"
    # A batch mostly waits for Raft commits, and Consul's leader commits concurrent writes
    # together: the 2k install with one worker took 17.4 s with 2 lanes, 11.1 s with 8, 9.9 s
    # with 16 (docs/benchmarks.md).
    batch_lanes = 16

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 ca_file: Optional[str] = None, client_cert: Optional[str] = None,
                 client_key: Optional[str] = None, verify: bool = True,
                 datacenter: Optional[str] = None, prefix: str = "", timeout: float = 10.0,
                 retry_total: float = 60.0, max_connections: int = 4,
                 **ignored: Any) -> None:
        url = url or os.environ.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500"
        scheme, host, port = _parse_url(url)
        token = token or os.environ.get("CONSUL_HTTP_TOKEN") or None
        ca_file = ca_file or os.environ.get("CONSUL_CACERT") or None
        client_cert = client_cert or os.environ.get("CONSUL_CLIENT_CERT") or None
        client_key = client_key or os.environ.get("CONSUL_CLIENT_KEY") or None
        check_tls_files(ca_file=ca_file, client_cert=client_cert, client_key=client_key)
        self._tls_files = {"ca_file": ca_file if verify else None, "client_cert": client_cert,
                           "client_key": client_key}
        self._tls_address = (host, port) if scheme == "https" else None
        if scheme == "https" and not verify:
            no_verify_warning("%s://%s:%d" % (scheme, host, port))
        tls_verify: Any = bool(verify)
        if tls_verify and ca_file:
            tls_verify = ca_file
        cert: Any = None
        if client_cert:
            cert = (client_cert, client_key) if client_key else client_cert
        self.url = "%s://%s:%d" % (scheme, host, port)
        self.prefix = prefix or ""
        # The engine's own prefix when a PrefixedSpace wraps this one (it sets it): where the
        # folders that a refusal names (``<prefix>facts/``) start.
        self.engine_prefix = ""
        self.datacenter = datacenter or None
        self.timeout = float(timeout)
        self.retry_total = float(retry_total)
        self._token = token
        self._closed = False
        # py-consul reads CONSUL_HTTP_TOKEN itself (over an explicit token): headers are built
        # here instead, from ``token`` as resolved above.
        self._client = consul.Consul(host=host, port=port, scheme=scheme, verify=tls_verify,
                                     cert=cert, dc=self.datacenter,
                                     connections_timeout=self.timeout)
        self._http = self._client.http
        adapter = requests.adapters.HTTPAdapter(pool_connections=1,
                                                pool_maxsize=max(1, int(max_connections)),
                                                max_retries=0)
        self._http.session.mount("http://", adapter)
        self._http.session.mount("https://", adapter)
        # What requests would look up in the environment on *every* request (proxies, netrc, CA
        # bundle: file system checks that took a tenth of a worker's CPU) is resolved once here;
        # a CA bundle path is only given for https (requests stats it at each request).
        session = self._http.session
        session.proxies = requests.utils.get_environ_proxies(self.url)
        if tls_verify is True and scheme == "https":
            self._http.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                                 or os.environ.get("CURL_CA_BUNDLE") or True)
        session.trust_env = False
        # Loopback and LAN: compressing every answer costs Consul and the worker CPU for nothing.
        session.headers["Accept-Encoding"] = "identity"
        # Nonces need to be unique, not secret: a PRNG seeded once from the OS (reading the OS
        # source for each transaction was slow on some virtual machines).
        self._rng = random.Random(int.from_bytes(os.urandom(16), "big"))

    # ---- HTTP ------------------------------------------------------------------------------------
    def _headers(self) -> Dict[str, str]:
        return {"X-Consul-Token": self._token} if self._token else {}

    def _params(self, params: Optional[List[Tuple[str, Any]]]) -> List[Tuple[str, Any]]:
        params = list(params or [])
        if self.datacenter:
            params.append(("dc", self.datacenter))
        return params

    def _send(self, method: str, path: str, params: Optional[List[Tuple[str, Any]]] = None,
              data: Any = None) -> Any:
        """One HTTP request; returns py-consul's Response(code, headers, body) for any answer
        that is not transient, raises ``_Transient`` for the ones worth retrying."""
        if self._closed:
            raise SpaceError("consul space %s: closed" % self.url)
        raw: Callable[[Any], Any] = lambda response: response  # noqa: E731
        params = self._params(params)
        try:
            if method == "GET":
                resp = self._http.get(raw, path, params=params, headers=self._headers())
            else:
                resp = self._http.put(raw, path, params=params, headers=self._headers(),
                                      data=data if data is not None else "")
        except requests.exceptions.ConnectTimeout as exc:
            raise _Transient("%s: connect timeout (%s)" % (self.url, exc), False)
        except requests.exceptions.ConnectionError as exc:
            tls = tls_failure(exc, self._tls_files)
            if tls is None and self._tls_address and is_tls_eof(exc):
                tls = probe_client_auth(self._tls_address[0], self._tls_address[1], self._tls_files, self.timeout)
            if tls is not None:     # a certificate or a handshake does not heal by retrying
                raise SpaceError("%s: %s" % (self.url, tls)) from None
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            sent = not isinstance(reason, urllib3.exceptions.NewConnectionError)
            raise _Transient("%s: %s" % (self.url, reason or exc), sent)
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise _Transient("%s: %s" % (self.url, exc), True)
        code = resp.code
        if code == 429 or (code == 500 and _NOT_APPLIED.search(resp.body or "")):
            raise _Transient("%s: HTTP %d %s" % (self.url, code, (resp.body or "").strip()), False)
        if code in (502, 503, 504) or (code == 500 and not _PERMANENT_500.search(resp.body or "")):
            raise _Transient("%s: HTTP %d %s" % (self.url, code, (resp.body or "").strip()), True)
        return resp

    def _retry(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it does not raise ``_Transient`` or ``retry_total`` is spent."""
        deadline = time.monotonic() + self.retry_total
        delay = BACKOFF_START
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Transient as exc:
                pause = delay * self._rng.uniform(0.5, 1.0)
                if time.monotonic() + pause > deadline:
                    raise SpaceUnavailable("%s: Consul unavailable after %d attempts over %.0f s: %s"
                                           % (what, tries, self.retry_total, exc))
                log.debug("%s: transient Consul error (%s), retry in %.2fs", what, exc, pause)
                time.sleep(pause)
                delay = min(delay * 2, BACKOFF_CAP)

    def _fail(self, what: str, resp: Any, full: Optional[str] = None,
              access: str = "write") -> Exception:
        """The error of a final answer; an ACL refusal is ``PermissionDenied`` naming the key
        (``full``, as Consul sees it) or, without one, ``what``."""
        body = (resp.body or "").strip()
        if resp.code == 413:
            return SpaceError("%s: too large for Consul (%s)" % (what, body))
        if resp.code in (401, 403) or (resp.code == 500 and _DENIED.search(body)):
            return self._denied(full, access, body, what)
        return SpaceError("%s: Consul answered HTTP %d %s" % (what, resp.code, body))

    def _denied(self, full: Optional[str], access: str, body: str, what: str = "") -> PermissionDenied:
        """``permission denied on KEY (token lacks ACCESS on PREFIX)``: PREFIX is the engine's
        folder the key is in (``<prefix>facts/``...), what a policy's ``key_prefix`` names."""
        if re.search(r"ACL not found", body or "", re.IGNORECASE):
            return PermissionDenied(full or what, access, detail="the token is unknown to Consul: ACL not found")
        if full is None:
            return PermissionDenied(what, access, detail="token lacks %s; Consul: %s" % (access, body))
        if full.startswith("session "):
            return PermissionDenied(full, access, detail="token lacks write on session_prefix "
                                    "(sessions of this agent's node)")
        root = self.prefix + self.engine_prefix
        rest = full[len(root):] if full.startswith(root) else full
        folder = (root if full.startswith(root) else "") + (rest.split("/", 1)[0] + "/" if "/" in rest else rest)
        return PermissionDenied(full, access, prefix=folder)

    # ---- keys and values -----------------------------------------------------------------------
    def _key(self, key: str, tree: bool = False) -> str:
        if not isinstance(key, str) or (not key and not tree):
            raise SpaceError("invalid key %r: keys are non-empty strings" % (key,))
        full = self.prefix + key
        if full.startswith("/"):
            raise SpaceError("invalid key %r: Consul keys cannot start with '/'" % (full,))
        return full

    def _out(self, key: str) -> str:
        return key[len(self.prefix):] if self.prefix and key.startswith(self.prefix) else key

    @staticmethod
    def _encode(key: str, value: Any) -> str:
        try:
            text = dumps(value)
        except (TypeError, ValueError) as exc:
            raise SpaceDataError("%s: value cannot be stored as JSON (%s)" % (key, exc))
        size = len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise SpaceError("%s: value of %d bytes exceeds Consul's limit of %d bytes "
                             "(kv_max_value_size)" % (key, size, MAX_VALUE_BYTES))
        return text

    def _entry(self, item: Dict[str, Any]) -> Entry:
        key = self._out(item["Key"])
        return Entry(key, loads(key, _unb64(item.get("Value"))), int(item["ModifyIndex"]),
                     item.get("Session") or None)

    def _nonce(self) -> int:
        return self._rng.getrandbits(63) | 1

    # ---- reads ------------------------------------------------------------------------------------
    def _kv_get(self, what: str, full: str, params: List[Tuple[str, Any]]) -> Any:
        def attempt():
            resp = self._send("GET", "/v1/kv/" + full, params)
            if resp.code not in (200, 404):
                raise self._fail(what, resp, full, "read")
            return resp
        return self._retry(what, attempt)

    def get(self, key: str) -> Optional[Entry]:
        full = self._key(key)
        resp = self._kv_get("get %s" % key, full, [])
        if resp.code == 404:
            return None
        items = json.loads(resp.body)
        return self._entry(items[0]) if items else None

    def _deletes(self, op: Op, full: str) -> bool:
        """True when ``op`` (later in a transaction) deletes the key ``full``."""
        if op.verb not in _DELETE_VERBS:
            return False
        tree = self._key(op.key, tree=True)
        return tree == full or (op.verb == "delete_tree" and full.startswith(tree))

    def _raw_get(self, full: str, consistent: bool = False) -> Optional[Dict[str, Any]]:
        resp = self._kv_get("get %s" % self._out(full), full,
                            [("consistent", "1")] if consistent else [])
        if resp.code == 404:
            return None
        items = json.loads(resp.body)
        return items[0] if items else None

    def list(self, prefix: str) -> List[Entry]:
        full = self._key(prefix, tree=True)
        resp = self._kv_get("list %s" % prefix, full, [("recurse", "1")])
        if resp.code == 404:
            return []
        entries = [self._entry(item) for item in json.loads(resp.body) or []]
        return sorted(entries, key=lambda e: e.key)

    def keys(self, prefix: str) -> List[str]:
        full = self._key(prefix, tree=True)
        resp = self._kv_get("keys %s" % prefix, full, [("keys", "1")])
        if resp.code == 404:
            return []
        return sorted(self._out(k) for k in json.loads(resp.body) or [])

    def wait(self, prefix: str, index: int, timeout: float) -> Tuple[int, List[str]]:
        """Blocking query ``GET /v1/kv/<prefix>?keys&index=&wait=``.  Consul's wait=0 means its
        5-minute default, so a zero timeout or index makes a plain (non-blocking) read.

        Not ``stale``: a follower learns that an entry is committed only with the leader's next
        append or heartbeat (up to about 100 ms when writes pause), which measured as 90 ms
        gaps in the seed's run; every blocking query goes through the leader.
        """
        new_index, resp = self._blocking_get("wait %s" % prefix, self._key(prefix, tree=True),
                                             [("keys", "1")], index, timeout)
        keys = [] if resp.code == 404 else sorted(self._out(k) for k in json.loads(resp.body) or [])
        return new_index, keys

    def watch(self, key: str, index: int, timeout: float) -> Tuple[int, Optional[Entry]]:
        """Blocking ``GET /v1/kv/<key>?index=&wait=``: the entry comes with the wake-up."""
        new_index, resp = self._blocking_get("watch %s" % key, self._key(key), [], index, timeout)
        if resp.code == 404:
            return new_index, None
        items = json.loads(resp.body)
        return new_index, (self._entry(items[0]) if items else None)

    def _blocking_get(self, what: str, full: str, params: List[Tuple[str, Any]], index: int,
                      timeout: float) -> Tuple[int, Any]:
        """``GET /v1/kv/<full>`` as a blocking query (``index`` 0 or no time left: a plain
        read), retried within the timeout; returns (X-Consul-Index, at least 1; response)."""
        deadline = time.monotonic() + max(0.0, float(timeout))

        def attempt():
            query = list(params)
            remaining = deadline - time.monotonic()
            if index and index > 0 and remaining > 0.001:
                query += [("index", int(index)), ("wait", "%dms" % max(1, int(remaining * 1000)))]
            resp = self._send("GET", "/v1/kv/" + full, query)
            if resp.code not in (200, 404):
                raise self._fail(what, resp, full, "read")
            return resp
        resp = self._retry(what, attempt)
        return max(int(resp.headers.get("X-Consul-Index") or 0), 1), resp

    # ---- writes -----------------------------------------------------------------------------------
    def put(self, key: str, value: Any) -> int:
        full = self._key(key)
        text = self._encode(key, value)
        if len(text.encode("utf-8")) * 4 // 3 + len(json.dumps(full)) + 200 <= TXN_MAX_BYTES:
            return self._txn([op_set(key, value)]).index
        # Too large for a transaction body (base64): plain KV PUT, tagged with a nonce so that the
        # read-back recognises our write.  If another writer got in between, its (later) index
        # is returned: still an index at or after this write.
        nonce = self._nonce()

        def attempt():
            resp = self._send("PUT", "/v1/kv/" + full, [("flags", nonce)], text.encode("utf-8"))
            if resp.code != 200:
                raise self._fail("put %s" % key, resp, full)
        self._retry("put %s" % key, attempt)
        item = self._raw_get(full, consistent=True)
        if item is not None:
            return int(item["ModifyIndex"])
        return self._index_after_delete([full])

    def txn(self, ops: Sequence[Op]) -> TxnResult:
        return self._txn(list(ops))

    def write_chunked(self, ops: Iterable[Op]) -> None:
        """As the base, but batches are also kept under Consul's transaction body limit, and a
        single value too large for any transaction is written with ``put``."""
        batch: List[Op] = []
        size = 0
        for op in ops:
            cost = len(json.dumps(self.prefix + op.key)) + 200
            if op.verb in _VALUE_VERBS:
                cost += len(self._encode(op.key, op.value).encode("utf-8")) * 4 // 3
            if op.verb == "set" and cost > TXN_MAX_BYTES - 1024:
                self.put(op.key, op.value)
                continue
            if batch and (len(batch) == self.max_txn_ops or size + cost > TXN_MAX_BYTES - 1024):
                self._must(batch)
                batch, size = [], 0
            batch.append(op)
            size += cost
        if batch:
            self._must(batch)

    # ---- transactions -----------------------------------------------------------------------------
    def _txn(self, ops: List[Op]) -> TxnResult:
        check_ops(ops, self.max_txn_ops)
        if not ops:
            return TxnResult(ok=True)
        fulls = [self._key(op.key, tree=(op.verb in ("delete_tree", "get_tree"))) for op in ops]
        texts: List[Optional[str]] = []
        for op in ops:
            needs = op.verb in ("set", "cas", "lock") or (op.verb == "unlock"
                                                          and op.value is not None)
            texts.append(self._encode(op.key, op.value) if needs else None)
        # Operations that cannot succeed make the whole transaction fail: no request.
        for op in ops:
            if ((op.verb in ("check_session", "lock", "unlock") and not op.session)
                    or (op.verb in ("delete_cas", "delete_cas_present") and not op.index)
                    or (op.verb == "check_index" and not op.index)):
                return TxnResult(ok=False, failed=[op.key])
        preserve = [i for i, op in enumerate(ops) if op.verb == "unlock" and op.value is None]
        expanded = len(ops) + len(preserve) + sum(1 for op in ops if op.verb == "delete_cas")
        if expanded > MAX_TXN_OPS:
            raise TxnTooLarge(
                "transaction of %d operations needs %d Consul operations (delete_cas and unlock "
                "without a value take two), over the limit of %d"
                % (len(ops), expanded, MAX_TXN_OPS))
        writes = any(op.verb not in READ_VERBS for op in ops)
        conditional = any(op.verb in ("cas", "delete_cas", "delete_cas_present", "check_index",
                                      "check_session", "check_not_exists", "lock", "unlock")
                          for op in ops)
        # Commit index for delete-only writes: a set just before the first delete (see module
        # docstring), if there is room and a key to set.
        index_probe: Optional[int] = None
        # Never before a delete_cas_present: the probe would change the index it checks.
        if writes and not any(op.verb in _VALUE_VERBS or op.verb == "delete_cas" for op in ops):
            first = next((i for i, op in enumerate(ops) if op.verb in ("delete", "delete_tree")),
                         None)
            if first is not None and expanded < MAX_TXN_OPS and fulls[first]:
                index_probe = first
        nonce = self._nonce()
        missing: set = set()            # positions of gets sent as check-not-exists
        reads: Dict[int, Tuple[Optional[str], int]] = {}  # unlock position -> (b64 value, index)
        state = {"ambiguous": False}
        what = "txn on %s" % ", ".join(sorted(set(op.key or "''" for op in ops))[:3])

        for _round in range(MAX_ROUNDS):
            for i in preserve:
                if i not in reads:
                    reads[i] = self._preserved(ops, fulls, texts, i)
            payload, origin = self._build(ops, fulls, texts, nonce, missing, reads, index_probe)
            body = json.dumps(payload)

            def attempt():
                try:
                    resp = self._send("PUT", "/v1/txn", [], body)
                except _Transient as exc:
                    if exc.maybe_applied and writes:
                        state["ambiguous"] = True
                    raise
                if resp.code not in (200, 409):
                    raise self._fail(what, resp, fulls[0] if len(set(fulls)) == 1 else None)
                return resp
            resp = self._retry(what, attempt)
            doc = json.loads(resp.body) if resp.body else {}
            if resp.code == 200:
                return self._success(ops, fulls, payload, origin, doc.get("Results") or [],
                                     writes)
            # 409: sort the errors into real failures and our own optimistic guesses.
            failed: List[str] = []
            again = False
            for err in doc.get("Errors") or []:
                pos, role = origin[int(err.get("OpIndex", -1))]
                op = ops[pos]
                if _DENIED.search(str(err.get("What") or "")):
                    # An ACL refusal, not a failed check: no re-read would change it.
                    raise self._denied(fulls[pos], "read" if op.verb in READ_VERBS else "write",
                                       str(err.get("What")))
                if op.verb == "get":
                    if pos in missing:
                        missing.discard(pos)   # it exists now: read it
                    else:
                        missing.add(pos)       # it does not exist: assert that instead
                    again = True
                elif role == "preserve-check":
                    reads.pop(pos, None)       # changed since we read it: read again
                    again = True
                elif op.key not in failed:
                    failed.append(op.key)
            if failed:
                if state["ambiguous"] and conditional:
                    committed = self._committed_earlier(ops, fulls, nonce)
                    if committed is not None:
                        return committed
                return TxnResult(ok=False, failed=failed)
            if not again:
                raise SpaceError("%s: Consul refused the transaction: %s" % (what, resp.body))
        raise SpaceError("%s: still conflicting with concurrent writers after %d rounds"
                         % (what, MAX_ROUNDS))

    def _preserved(self, ops: List[Op], fulls: List[str], texts: List[Optional[str]],
                   pos: int) -> Tuple[Optional[str], int]:
        """The value an ``unlock`` without value must write back: the value written by an earlier
        operation of the same transaction, else the stored one (with its index, to check)."""
        for j in range(pos - 1, -1, -1):
            if fulls[j] == fulls[pos] and ops[j].verb in ("set", "cas", "lock"):
                return _b64(texts[j]), 0
            if ops[j].verb in _DELETE_VERBS and (
                    fulls[j] == fulls[pos]
                    or (ops[j].verb == "delete_tree" and fulls[pos].startswith(fulls[j]))):
                return None, 0   # deleted earlier in the transaction: the unlock will fail
        item = self._raw_get(fulls[pos])
        if item is None:
            return None, 0       # missing: the unlock fails on its own
        return item.get("Value"), int(item["ModifyIndex"])

    def _build(self, ops: List[Op], fulls: List[str], texts: List[Optional[str]], nonce: int,
               missing: set, reads: Dict[int, Tuple[Optional[str], int]],
               index_probe: Optional[int]) -> Tuple[List[Dict[str, Any]], List[Tuple[int, str]]]:
        """Consul operations for ``ops``; ``origin[i]`` = (position in ops, role)."""
        payload: List[Dict[str, Any]] = []
        origin: List[Tuple[int, str]] = []

        def add(pos: int, role: str, **kv: Any) -> None:
            payload.append({"KV": kv})
            origin.append((pos, role))
        for pos, (op, full, text) in enumerate(zip(ops, fulls, texts)):
            verb = op.verb
            if pos == index_probe:
                add(pos, "probe", Verb="set", Key=full, Value=None, Flags=nonce)
            if verb == "set":
                add(pos, "op", Verb="set", Key=full, Value=_b64(text), Flags=nonce)
            elif verb == "cas":
                add(pos, "op", Verb="cas", Key=full, Value=_b64(text), Index=int(op.index),
                    Flags=nonce)
            elif verb == "delete":
                add(pos, "op", Verb="delete", Key=full)
            elif verb == "delete_cas":
                add(pos, "op", Verb="cas", Key=full, Value=None, Index=int(op.index), Flags=nonce)
                add(pos, "op", Verb="delete", Key=full)
            elif verb == "delete_cas_present":
                add(pos, "op", Verb="delete-cas", Key=full, Index=int(op.index))
            elif verb == "delete_tree":
                add(pos, "op", Verb="delete-tree", Key=full)
            elif verb == "check_index":
                add(pos, "op", Verb="check-index", Key=full, Index=int(op.index))
            elif verb == "check_session":
                add(pos, "op", Verb="check-session", Key=full, Session=op.session)
            elif verb == "check_not_exists":
                add(pos, "op", Verb="check-not-exists", Key=full)
            elif verb == "lock":
                add(pos, "op", Verb="lock", Key=full, Value=_b64(text), Session=op.session,
                    Flags=nonce)
            elif verb == "unlock":
                if text is not None:
                    value = _b64(text)
                else:
                    value, read_index = reads.get(pos, (None, 0))
                    if read_index:
                        add(pos, "preserve-check", Verb="check-index", Key=full,
                            Index=read_index)
                add(pos, "op", Verb="unlock", Key=full, Value=value, Session=op.session,
                    Flags=nonce)
            elif verb == "get":
                add(pos, "op", Verb="check-not-exists" if pos in missing else "get", Key=full)
            elif verb == "get_tree":
                add(pos, "op", Verb="get-tree", Key=full)
        return payload, origin

    def _success(self, ops: List[Op], fulls: List[str], payload: List[Dict[str, Any]],
                 origin: List[Tuple[int, str]], results: List[Dict[str, Any]],
                 writes: bool) -> TxnResult:
        entries: Dict[str, Optional[Entry]] = {}
        trees: Dict[str, List[Entry]] = {}
        index = 0
        it = iter(results)
        for item, (pos, role) in zip(payload, origin):
            verb = item["KV"]["Verb"]
            if verb == "get-tree":
                # The get-trees come last, with prefixes that cannot share a key (check_ops):
                # each of the remaining results belongs to the one prefix it starts with.
                trees[ops[pos].key] = []
                continue
            if ops[pos].verb == "get" and verb == "check-not-exists":
                entries[ops[pos].key] = None
            if verb not in _ONE_RESULT:
                continue
            result = next(it, None)
            kv = (result or {}).get("KV")
            if not kv or kv.get("Key") != item["KV"]["Key"]:
                raise SpaceError("txn: unexpected Consul response (results do not match the "
                                 "operations): %r" % (results,))
            if verb in _WRITE_RESULT:
                index = max(index, int(kv["ModifyIndex"]))
            elif verb == "get":
                entries[ops[pos].key] = self._entry(kv)
        tree_prefixes = [(full, op.key) for op, full in zip(ops, fulls) if op.verb == "get_tree"]
        for result in it:
            kv = (result or {}).get("KV") or {}
            key = str(kv.get("Key", ""))
            owner = next((k for full, k in tree_prefixes if key.startswith(full)), None)
            if owner is None:
                raise SpaceError("txn: unexpected Consul response (results do not match the "
                                 "operations): %r" % (results,))
            trees[owner].append(self._entry(kv))
        for entries_ in trees.values():
            entries_.sort(key=lambda e: e.key)
        if writes and not index:
            index = self._index_after_delete(
                [full for op, full in zip(ops, fulls) if op.verb in _DELETE_VERBS])
        return TxnResult(ok=True, entries=entries, index=index, trees=trees)

    def _index_after_delete(self, fulls: List[str]) -> int:
        """An index at or after a committed delete: the (consistent) index of a keys listing of
        the deleted keys' common prefix, which counts their tombstones."""
        common = os.path.commonprefix(fulls) if fulls else self.prefix

        def attempt():
            resp = self._send("GET", "/v1/kv/" + common,
                              [("keys", "1"), ("separator", "/"), ("consistent", "1")])
            if resp.code not in (200, 404):
                raise self._fail("index after delete", resp, common, "read")
            return resp
        resp = self._retry("index after delete", attempt)
        return int(resp.headers.get("X-Consul-Index") or 0)

    def _committed_earlier(self, ops: List[Op], fulls: List[str], nonce: int
                           ) -> Optional[TxnResult]:
        """After a lost response and a failed retry: did the first attempt commit?  The last key
        the transaction writes with a value (and does not delete afterwards) carries the nonce in
        its Flags iff it did."""
        witness = None
        for pos in range(len(ops) - 1, -1, -1):
            if ops[pos].verb in _VALUE_VERBS:
                later = ops[pos + 1:]
                if not any(self._deletes(o, fulls[pos]) for o in later):
                    witness = fulls[pos]
                    break
        if witness is None:
            return None
        item = self._raw_get(witness, consistent=True)
        if item is None or int(item.get("Flags") or 0) != nonce:
            return None
        if any(op.verb == "get" for op in ops):
            raise SpaceError("txn on %s: committed, but its response (with the values it read) "
                             "was lost in a Consul failure" % self._out(witness))
        log.info("txn on %s: the attempt whose response was lost had committed",
                 self._out(witness))
        return TxnResult(ok=True, index=int(item["ModifyIndex"]))

    # ---- sessions and locks ------------------------------------------------------------------------
    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        if behavior not in ("release", "delete"):
            raise SpaceError("session %r: behavior must be release or delete" % name)
        consul_ttl = min(MAX_CONSUL_TTL, max(MIN_CONSUL_TTL, int(math.ceil(float(ttl) / 2))))
        body = json.dumps({"Name": name, "TTL": "%ds" % consul_ttl, "LockDelay": "0s",
                           "Behavior": behavior, "Checks": []})

        def attempt():
            resp = self._send("PUT", "/v1/session/create", [], body)
            if resp.code != 200:
                raise self._fail("session %s" % name, resp, "session %s" % name)
            return json.loads(resp.body)["ID"]
        return self._retry("session %s" % name, attempt)

    def session_renew(self, session: str) -> bool:
        def attempt():
            resp = self._send("PUT", "/v1/session/renew/%s" % session)
            if resp.code == 404 or (resp.code == 500 and _SESSION_GONE.search(resp.body or "")):
                return False
            if resp.code != 200:
                raise self._fail("renew session %s" % session, resp, "session %s" % session)
            return True
        return self._retry("renew session %s" % session, attempt)

    def session_destroy(self, session: str) -> None:
        def attempt():
            resp = self._send("PUT", "/v1/session/destroy/%s" % session)
            if resp.code == 500 and _SESSION_GONE.search(resp.body or ""):
                return
            if resp.code != 200:
                raise self._fail("destroy session %s" % session, resp, "session %s" % session)
        self._retry("destroy session %s" % session, attempt)

    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        """KV PUT ?acquire: idempotent for the holder, so retried freely."""
        full = self._key(key)
        text = self._encode(key, value)
        if not session:
            return False

        def attempt():
            resp = self._send("PUT", "/v1/kv/" + full,
                              [("acquire", session), ("flags", self._nonce())],
                              text.encode("utf-8"))
            if resp.code == 500 and _SESSION_GONE.search(resp.body or ""):
                return False
            if resp.code != 200:
                raise self._fail("acquire %s" % key, resp, full)
            return resp.body.strip() == "true"
        return self._retry("acquire %s" % key, attempt)

    def release(self, key: str, session: str) -> bool:
        """A transaction (not KV PUT ?release, which would overwrite the value with the empty
        body): the value is kept, as in the embedded Space."""
        return self._txn([op_unlock(key, session)]).ok

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._http.session.close()
