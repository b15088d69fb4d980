# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space's sessions and locks.

Sessions.  Consul destroys a TTL session 2 x TTL after its last renewal and accepts TTLs from 10 s
to 24 h, so a session asked for ``ttl`` seconds is created with a Consul TTL of ``ttl/2`` clamped
to [10 s, 86400 s]: it lives ``ttl`` seconds without renewal, at least 20 s.  ``LockDelay`` is 0
(Consul's default of 15 s would keep a lock released by an expired session unavailable for 15 s,
and a dead worker's step must be retaken at once).  ``Checks`` is empty: by default Consul ties a
session to its node's ``serfHealth``, but the node is a Consul agent that stays healthy when the
worker process dies, so only the TTL must decide.  ``Behavior`` is passed through: ``release``
keeps the locked keys, ``delete`` deletes them (Consul does either natively).

``acquire`` is KV PUT ``?acquire`` (idempotent for the holder); ``release`` is a transaction
(``unlock``), which keeps the key's value as the embedded Space does.
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, cast

from ..errors import SpaceError
from .base import Op, TxnResult, op_unlock
from .consul_retry import _SESSION_GONE, T

# Consul's session TTL bounds (seconds).
MIN_CONSUL_TTL = 10
MAX_CONSUL_TTL = 86400


class ConsulSessions:
    """Mixin of ConsulSpace: sessions, ``acquire`` and ``release``.  Uses the Space's keys
    (``_key``, ``_encode``, ``_nonce``), requests (``_send``, ``_retry``, ``_fail``) and
    ``_txn``."""

    if TYPE_CHECKING:      # ConsulSpace's (annotations only: nothing here at run time)
        def _key(self, key: str, tree: bool = False) -> str:
            ...

        @staticmethod
        def _encode(key: str, value: Any) -> str:
            ...

        def _nonce(self) -> int:
            ...

        def _send(self, method: str, path: str, params: Optional[List[Tuple[str, Any]]] = None,
                  data: Any = None) -> Any:
            ...

        def _retry(self, what: str, attempt: Callable[[], T]) -> T:
            ...
        # (attributes, not stubs: pylint would infer that a stub returns None, raised)
        _fail: Callable[..., Exception]

        def _txn(self, ops: List[Op]) -> TxnResult:
            ...

    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        if behavior not in ("release", "delete"):
            raise SpaceError("session %r: behavior must be release or delete" % name)
        consul_ttl = min(MAX_CONSUL_TTL, max(MIN_CONSUL_TTL, int(math.ceil(float(ttl) / 2))))
        body = json.dumps({"Name": name, "TTL": "%ds" % consul_ttl, "LockDelay": "0s",
                           "Behavior": behavior, "Checks": []})

        def attempt() -> str:
            resp = self._send("PUT", "/v1/session/create", [], body)
            if resp.code != 200:
                raise self._fail("session %s" % name, resp, "session %s" % name)
            return cast(str, json.loads(resp.body)["ID"])
        return self._retry("session %s" % name, attempt)

    def session_renew(self, session: str) -> bool:
        def attempt() -> bool:
            resp = self._send("PUT", "/v1/session/renew/%s" % session)
            if resp.code == 404 or (resp.code == 500 and _SESSION_GONE.search(resp.body or "")):
                return False
            if resp.code != 200:
                raise self._fail("renew session %s" % session, resp, "session %s" % session)
            return True
        return self._retry("renew session %s" % session, attempt)

    def session_destroy(self, session: str) -> None:
        def attempt() -> None:
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

        def attempt() -> bool:
            resp = self._send("PUT", "/v1/kv/" + full,
                              [("acquire", session), ("flags", self._nonce())],
                              text.encode("utf-8"))
            if resp.code == 500 and _SESSION_GONE.search(resp.body or ""):
                return False
            if resp.code != 200:
                raise self._fail("acquire %s" % key, resp, full)
            return cast(bool, resp.body.strip() == "true")
        return self._retry("acquire %s" % key, attempt)

    def release(self, key: str, session: str) -> bool:
        """A transaction (not KV PUT ?release, which would overwrite the value with the empty
        body): the value is kept, as in the embedded Space."""
        return self._txn([op_unlock(key, session)]).ok
