# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space's retry policy: which answers are hiccups worth retrying, which are final
(and then which error they raise), and the retry loop itself.  No HTTP here (consul_http.py sends
the requests and raises ``_Transient``), so this file imports without py-consul.

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
"""
from __future__ import annotations

import logging
import random
import re
import time
from typing import Any, Callable, Optional, TypeVar

from ..errors import PermissionDenied, SpaceError, SpaceUnavailable

# The Consul Space's logger, whichever of its files logs.
log = logging.getLogger(__package__ + ".consul")

T = TypeVar("T")

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


class _Transient(Exception):
    """A failure worth retrying; ``maybe_applied`` if the request may have taken effect."""

    def __init__(self, message: str, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class ConsulRetry:
    """Mixin of ConsulSpace: the retry loop and the errors of final answers.  Uses the Space's
    ``retry_total``, ``_rng``, ``prefix`` and ``engine_prefix``."""

    retry_total: float
    _rng: random.Random
    prefix: str
    engine_prefix: str

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
