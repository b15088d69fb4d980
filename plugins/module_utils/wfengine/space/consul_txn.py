# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space's transactions: the contract's verbs encoded as ``/v1/txn`` operations (and
the checks that stand for them), the answer decoded into a ``TxnResult``, and the rounds that
settle the optimistic guesses (missing ``get`` keys, values read for ``unlock``).  A transaction
whose response was lost is told committed or not by its nonce (consul_retry.py, "Retries").

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
"""
from __future__ import annotations

import base64
import json
import os
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple,
                    cast)

from ..errors import PermissionDenied, SpaceError, TxnTooLarge
from .base import MAX_TXN_OPS, READ_VERBS, Entry, Op, TxnResult, check_ops
from .consul_retry import _DENIED, T, _Transient, log

# Bounded rounds for the optimistic parts of a transaction (missing gets, unlock re-reads).
MAX_ROUNDS = 32

# Consul transaction verbs that return one result (the entry); the others return none.
_ONE_RESULT = frozenset(["set", "cas", "lock", "unlock", "get", "check-index", "check-session"])
# Verbs whose result's ModifyIndex is the transaction's commit index.
_WRITE_RESULT = frozenset(["set", "cas", "lock", "unlock"])
_VALUE_VERBS = frozenset(["set", "cas", "lock", "unlock"])
_DELETE_VERBS = frozenset(["delete", "delete_cas", "delete_cas_present", "delete_tree"])
# Verbs that make a transaction conditional: a retry of one that committed fails its own check.
_CONDITIONAL_VERBS = frozenset(["cas", "delete_cas", "delete_cas_present", "check_index",
                                "check_session", "check_not_exists", "lock", "unlock"])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(data: Optional[str]) -> Optional[bytes]:
    return None if data is None else base64.b64decode(data)


def _hopeless(ops: List[Op]) -> Optional[Op]:
    """The first operation that cannot succeed whatever the store holds (no session, or index 0
    where a key must exist), else None: the whole transaction fails without a request."""
    for op in ops:
        if ((op.verb in ("check_session", "lock", "unlock") and not op.session)
                or (op.verb in ("delete_cas", "delete_cas_present") and not op.index)
                or (op.verb == "check_index" and not op.index)):
            return op
    return None


def _expanded_size(ops: List[Op], preserve: List[int]) -> int:
    """How many Consul operations ``ops`` take; ``TxnTooLarge`` beyond Consul's limit."""
    expanded = len(ops) + len(preserve) + sum(1 for op in ops if op.verb == "delete_cas")
    if expanded > MAX_TXN_OPS:
        raise TxnTooLarge(
            "transaction of %d operations needs %d Consul operations (delete_cas and unlock "
            "without a value take two), over the limit of %d"
            % (len(ops), expanded, MAX_TXN_OPS))
    return expanded


def _index_probe(ops: List[Op], fulls: List[str], writes: bool, expanded: int) -> Optional[int]:
    """Commit index for delete-only writes: the position of the first delete, before which a
    set is placed (see the module docstring), if there is room and a key to set."""
    index_probe: Optional[int] = None
    # Never before a delete_cas_present: the probe would change the index it checks.
    if writes and not any(op.verb in _VALUE_VERBS or op.verb == "delete_cas" for op in ops):
        first = next((i for i, op in enumerate(ops) if op.verb in ("delete", "delete_tree")),
                     None)
        if first is not None and expanded < MAX_TXN_OPS and fulls[first]:
            index_probe = first
    return index_probe


class ConsulTxn:
    """Mixin of ConsulSpace: ``_txn`` and its encoding and decoding.  Uses the Space's keys and
    values (``_key``, ``_encode``, ``_entry``, ``_out``, ``_nonce``, ``_raw_get``), its requests
    (``_send``, ``_retry``, ``_fail``, ``_denied``), ``prefix`` and ``max_txn_ops``."""

    prefix: str
    max_txn_ops: int

    if TYPE_CHECKING:      # ConsulSpace's (annotations only: nothing here at run time)
        def _key(self, key: str, tree: bool = False) -> str:
            ...

        def _out(self, key: str) -> str:
            ...

        def _entry(self, item: Dict[str, Any]) -> Entry:
            ...

        @staticmethod
        def _encode(key: str, value: Any) -> str:
            ...

        def _nonce(self) -> int:
            ...

        def _raw_get(self, full: str, consistent: bool = False) -> Optional[Dict[str, Any]]:
            ...

        def _send(self, method: str, path: str, params: Optional[List[Tuple[str, Any]]] = None,
                  data: Any = None) -> Any:
            ...

        def _retry(self, what: str, attempt: Callable[[], T]) -> T:
            ...
        # (attributes, not stubs: pylint would infer that a stub returns None, raised)
        _fail: Callable[..., Exception]
        _denied: Callable[..., PermissionDenied]

    def _txn(self, ops: List[Op]) -> TxnResult:
        check_ops(ops, self.max_txn_ops)
        if not ops:
            return TxnResult(ok=True)
        fulls = [self._key(op.key, tree=(op.verb in ("delete_tree", "get_tree"))) for op in ops]
        texts = self._texts(ops)
        # Operations that cannot succeed make the whole transaction fail: no request.
        hopeless = _hopeless(ops)
        if hopeless is not None:
            return TxnResult(ok=False, failed=[hopeless.key])
        preserve = [i for i, op in enumerate(ops) if op.verb == "unlock" and op.value is None]
        expanded = _expanded_size(ops, preserve)
        writes = any(op.verb not in READ_VERBS for op in ops)
        conditional = any(op.verb in _CONDITIONAL_VERBS for op in ops)
        index_probe = _index_probe(ops, fulls, writes, expanded)
        nonce = self._nonce()
        missing: Set[int] = set()       # positions of gets sent as check-not-exists
        reads: Dict[int, Tuple[Optional[str], int]] = {}  # unlock position -> (b64 value, index)
        state = {"ambiguous": False}
        what = "txn on %s" % ", ".join(sorted(set(op.key or "''" for op in ops))[:3])

        for _round in range(MAX_ROUNDS):
            self._read_preserved(ops, fulls, texts, preserve, reads)
            payload, origin = self._build(ops, fulls, texts, nonce, missing, reads, index_probe)
            attempt = self._txn_attempt(what, json.dumps(payload), fulls, writes, state)
            resp = self._retry(what, attempt)
            doc = json.loads(resp.body) if resp.body else {}
            if resp.code == 200:
                return self._success(ops, fulls, payload, origin, doc.get("Results") or [],
                                     writes)
            # 409: sort the errors into real failures and our own optimistic guesses.
            failed, again = self._sort_errors(ops, fulls, origin, doc.get("Errors") or [],
                                              missing, reads)
            if failed:
                return self._failed(ops, fulls, nonce, failed,
                                    ambiguous=state["ambiguous"] and conditional)
            if not again:
                raise SpaceError("%s: Consul refused the transaction: %s" % (what, resp.body))
        raise SpaceError("%s: still conflicting with concurrent writers after %d rounds"
                         % (what, MAX_ROUNDS))

    def _texts(self, ops: List[Op]) -> List[Optional[str]]:
        """The JSON text of each operation's value (None for the verbs that write none)."""
        texts: List[Optional[str]] = []
        for op in ops:
            needs = op.verb in ("set", "cas", "lock") or (op.verb == "unlock"
                                                          and op.value is not None)
            texts.append(self._encode(op.key, op.value) if needs else None)
        return texts

    def _read_preserved(self, ops: List[Op], fulls: List[str], texts: List[Optional[str]],
                        preserve: List[int], reads: Dict[int, Tuple[Optional[str], int]]) -> None:
        """Read what each value-less ``unlock`` must write back, unless read already."""
        for i in preserve:
            if i not in reads:
                reads[i] = self._preserved(ops, fulls, texts, i)

    def _txn_attempt(self, what: str, body: str, fulls: List[str], writes: bool,
                     state: Dict[str, bool]) -> Callable[[], Any]:
        """One sending of the transaction, for ``_retry``: an answer is 200 or 409 (a failed
        check); a write hiccup that may have been applied marks the transaction ambiguous."""
        def attempt() -> Any:
            try:
                resp = self._send("PUT", "/v1/txn", [], body)
            except _Transient as exc:
                if exc.maybe_applied and writes:
                    state["ambiguous"] = True
                raise
            if resp.code not in (200, 409):
                raise self._fail(what, resp, fulls[0] if len(set(fulls)) == 1 else None)
            return resp
        return attempt

    def _sort_errors(self, ops: List[Op], fulls: List[str], origin: List[Tuple[int, str]],
                     errors: List[Dict[str, Any]], missing: Set[int],
                     reads: Dict[int, Tuple[Optional[str], int]]) -> Tuple[List[str], bool]:
        """The keys of the checks that really failed, and whether one of our own guesses was
        wrong (``missing`` and ``reads`` corrected: send again).  An ACL refusal raises."""
        failed: List[str] = []
        again = False
        for err in errors:
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
        return failed, again

    def _failed(self, ops: List[Op], fulls: List[str], nonce: int, failed: List[str],
                ambiguous: bool) -> TxnResult:
        """A failed check; for a conditional transaction that may have committed on an earlier
        attempt (``ambiguous``), the nonce may tell that it did."""
        if ambiguous:
            committed = self._committed_earlier(ops, fulls, nonce)
            if committed is not None:
                return committed
        return TxnResult(ok=False, failed=failed)

    def _preserved(self, ops: List[Op], fulls: List[str], texts: List[Optional[str]],
                   pos: int) -> Tuple[Optional[str], int]:
        """The value an ``unlock`` without value must write back: the value written by an earlier
        operation of the same transaction, else the stored one (with its index, to check)."""
        for j in range(pos - 1, -1, -1):
            if fulls[j] == fulls[pos] and ops[j].verb in ("set", "cas", "lock"):
                return _b64(cast(str, texts[j])), 0
            if ops[j].verb in _DELETE_VERBS and (
                    fulls[j] == fulls[pos]
                    or (ops[j].verb == "delete_tree" and fulls[pos].startswith(fulls[j]))):
                return None, 0   # deleted earlier in the transaction: the unlock will fail
        item = self._raw_get(fulls[pos])
        if item is None:
            return None, 0       # missing: the unlock fails on its own
        return item.get("Value"), int(item["ModifyIndex"])

    def _build(self, ops: List[Op], fulls: List[str], texts: List[Optional[str]], nonce: int,
               missing: Set[int], reads: Dict[int, Tuple[Optional[str], int]],
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
                add(pos, "op", Verb="set", Key=full, Value=_b64(cast(str, text)), Flags=nonce)
            elif verb == "cas":
                add(pos, "op", Verb="cas", Key=full, Value=_b64(cast(str, text)),
                    Index=int(op.index), Flags=nonce)
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
                add(pos, "op", Verb="lock", Key=full, Value=_b64(cast(str, text)),
                    Session=op.session, Flags=nonce)
            elif verb == "unlock":
                value: Optional[str]
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
        it = iter(results)
        entries, trees, index = self._op_results(ops, payload, origin, it, results)
        self._tree_results(ops, fulls, it, trees, results)
        if writes and not index:
            index = self._index_after_delete(
                [full for op, full in zip(ops, fulls) if op.verb in _DELETE_VERBS])
        return TxnResult(ok=True, entries=entries, index=index, trees=trees)

    def _op_results(self, ops: List[Op], payload: List[Dict[str, Any]],
                    origin: List[Tuple[int, str]], it: Iterator[Dict[str, Any]],
                    results: List[Dict[str, Any]]
                    ) -> Tuple[Dict[str, Optional[Entry]], Dict[str, List[Entry]], int]:
        """The results of the operations that return one, in their order: the entries read, the
        commit index (the highest ModifyIndex written); the get-trees' lists, still empty."""
        entries: Dict[str, Optional[Entry]] = {}
        trees: Dict[str, List[Entry]] = {}
        index = 0
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
        return entries, trees, index

    def _tree_results(self, ops: List[Op], fulls: List[str], it: Iterator[Dict[str, Any]],
                      trees: Dict[str, List[Entry]], results: List[Dict[str, Any]]) -> None:
        """The remaining results, the keys of the get-trees: each to its prefix, sorted."""
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

    def _index_after_delete(self, fulls: List[str]) -> int:
        """An index at or after a committed delete: the (consistent) index of a keys listing of
        the deleted keys' common prefix, which counts their tombstones."""
        common = os.path.commonprefix(fulls) if fulls else self.prefix

        def attempt() -> Any:
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

    def _deletes(self, op: Op, full: str) -> bool:
        """True when ``op`` (later in a transaction) deletes the key ``full``."""
        if op.verb not in _DELETE_VERBS:
            return False
        tree = self._key(op.key, tree=True)
        return tree == full or (op.verb == "delete_tree" and full.startswith(tree))
