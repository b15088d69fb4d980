# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space: the Space contract on Consul's KV store, sessions, transactions and blocking
queries (only APIs present in Consul 1.8).

``ConsulSpace`` is composed of one mixin per job, each in its own file:

* consul_http.py: the transport (py-consul's HTTP client, TLS, the connection pool, ``_send``);
* consul_retry.py: which failures are hiccups, the retry loop, the errors of final answers
  ("Retries": what is retried, and how a transaction whose response was lost is settled);
* consul_txn.py: transactions (how each verb maps to Consul's, the checks, the answer);
* consul_wait.py: blocking queries (``wait``, ``watch``);
* consul_sessions.py: sessions and locks (TTL, behavior, ``acquire``, ``release``).

This file holds the class with what every part uses: the options (their environment variables
are declared in options.py), keys and values, reads and writes.

Values are JSON text (``base.dumps``), parsed on read with ``base.loads``.  Every value-writing
operation also stores a random per-transaction nonce in the key's Consul ``Flags`` (invisible
through the Space contract): it is how a transaction whose response was lost is recognised
afterwards (see "Retries").

Sizes.  A value is limited to 512 KiB (Consul's ``kv_max_value_size``); a larger one raises
``SpaceError`` naming the key and size before any request.  A transaction's whole body is limited
by Consul's ``txn_max_req_len`` (512 KiB by default) and values travel base64-encoded in it, so a
transaction carries at most about 384 KiB of values: ``put`` of a larger value uses a plain KV PUT
instead, ``write_chunked`` splits by size as well as by count, and a ``txn`` that is too large
raises ``SpaceError`` (Consul's 413).

Threads.  One Space object may be shared by threads: its only mutable state is the requests
session, whose connection pool is thread-safe.
"""
from __future__ import annotations

import json
import os
import random
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import SpaceDataError, SpaceError
from .base import MAX_VALUE_BYTES, Entry, Op, Space, TxnResult, dumps, loads, op_set
from .consul_http import ConsulHttp, _parse_url
from .consul_retry import ConsulRetry
from .consul_sessions import ConsulSessions
from .consul_txn import _VALUE_VERBS, ConsulTxn, _unb64
from .consul_wait import ConsulWaits
from .options import (DEFAULT_CONSUL_ADDR, DEFAULT_RETRY_TOTAL, ENV_CONSUL_ADDR, ENV_CONSUL_CACERT,
                      ENV_CONSUL_CLIENT_CERT, ENV_CONSUL_CLIENT_KEY, ENV_CONSUL_TOKEN, env_or)
from .tls import check_tls_files

# Consul's default txn_max_req_len: the whole body of a /v1/txn request.
TXN_MAX_BYTES = 512 * 1024


class ConsulSpace(ConsulSessions, ConsulWaits, ConsulTxn, ConsulHttp, ConsulRetry, Space):
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
                 retry_total: float = DEFAULT_RETRY_TOTAL, max_connections: int = 4,
                 **ignored: Any) -> None:
        url = env_or(url, ENV_CONSUL_ADDR, DEFAULT_CONSUL_ADDR)
        scheme, host, port = _parse_url(url)
        token = env_or(token, ENV_CONSUL_TOKEN)
        ca_file = env_or(ca_file, ENV_CONSUL_CACERT)
        client_cert = env_or(client_cert, ENV_CONSUL_CLIENT_CERT)
        client_key = env_or(client_key, ENV_CONSUL_CLIENT_KEY)
        check_tls_files(ca_file=ca_file, client_cert=client_cert, client_key=client_key)
        tls_verify, cert = self._tls_settings(scheme, host, port, verify, ca_file, client_cert,
                                              client_key)
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
        self._open_http(scheme, host, port, tls_verify, cert, max_connections)
        # Nonces need to be unique, not secret: a PRNG seeded once from the OS (reading the OS
        # source for each transaction was slow on some virtual machines).
        self._rng = random.Random(int.from_bytes(os.urandom(16), "big"))

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
        def attempt() -> Any:
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

        def attempt() -> None:
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

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._http.session.close()
