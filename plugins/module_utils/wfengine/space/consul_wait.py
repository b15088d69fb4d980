# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space's blocking queries: ``wait`` on a prefix and ``watch`` on a key, each one
``GET /v1/kv/...?index=&wait=`` retried within its timeout."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .base import Entry
from .consul_retry import T


class ConsulWaits:
    """Mixin of ConsulSpace: its blocking queries.  Uses the Space's keys (``_key``, ``_out``,
    ``_entry``) and requests (``_send``, ``_retry``, ``_fail``)."""

    if TYPE_CHECKING:      # ConsulSpace's (annotations only: nothing here at run time)
        def _key(self, key: str, tree: bool = False) -> str:
            ...

        def _out(self, key: str) -> str:
            ...

        def _entry(self, item: Dict[str, Any]) -> Entry:
            ...

        def _send(self, method: str, path: str, params: Optional[List[Tuple[str, Any]]] = None,
                  data: Any = None) -> Any:
            ...

        def _retry(self, what: str, attempt: Callable[[], T]) -> T:
            ...
        # (attributes, not stubs: pylint would infer that a stub returns None, raised)
        _fail: Callable[..., Exception]

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

        def attempt() -> Any:
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
