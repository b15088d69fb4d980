# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker's outage journal: results of operations with side effects not committed yet.

Why.  An operation that ran must not run again because the Space was unreachable when its result
was to be committed (a Consul outage longer than the session TTL, or a quorum loss): the worker
keeps the commit it could not send, in memory and in this small JSON file, and sends it when the
Space answers again, guarded by a CAS on the node's fact (worker_commits.py, ``_send_salvage``).  A worker
restarted on the same state directory replays what the file holds before it takes any work.

The file is rewritten whole (temporary file, fsync, rename) at each change: it holds at most one
entry per operation in flight on this worker, a few kilobytes.  Values are JSON only.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from typing import IO, Any, Dict, List, Optional

from .space.base import Op

log = logging.getLogger("wfengine.worker")

FILE_NAME = "journal.json"
FORMAT = 1


def op_to_json(op: Op) -> Dict[str, Any]:
    return {"verb": op.verb, "key": op.key, "value": op.value, "index": op.index,
            "session": op.session}


def op_from_json(doc: Any) -> Op:
    if not isinstance(doc, dict) or not isinstance(doc.get("verb"), str) or not isinstance(doc.get("key"), str):
        raise ValueError("not a transaction operation")
    return Op(doc["verb"], doc["key"], doc.get("value"), int(doc.get("index") or 0), doc.get("session"))


class Journal:
    """Entries keyed by ``<run>/<node>``; ``path`` None keeps them in memory only."""

    def __init__(self, state_dir: Optional[str]):
        self.path = os.path.join(state_dir, FILE_NAME) if state_dir else None
        self._lock = threading.Lock()
        self._entries: Dict[str, Dict[str, Any]] = {}
        self._held: Optional[IO[str]] = None
        if self.path and not self._own(state_dir):   # type: ignore[arg-type]
            log.warning("journal %s is used by another live worker; this one keeps its results "
                        "in memory only (give each worker its own --state-dir)", self.path)
            self.path = None
        if self.path and os.path.exists(self.path):
            self._entries = self._read()

    def _own(self, state_dir: str) -> bool:
        """One worker per state directory (an exclusive lock held while the process lives)."""
        try:
            os.makedirs(state_dir, exist_ok=True)
            fh = open(os.path.join(state_dir, "journal.lock"), "a")
        except OSError as exc:
            log.warning("journal in %s: %s", state_dir, exc)
            return False
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._held = fh
        return True

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def _read(self) -> Dict[str, Dict[str, Any]]:
        try:
            with open(self.path, "r", encoding="utf-8") as fh:   # type: ignore[arg-type]
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            # A journal that cannot be read is kept aside, not silently dropped: it may hold
            # results that ran; the worker starts with an empty one.
            aside = "%s.unreadable" % self.path
            log.error("journal %s unreadable (%s); moved to %s", self.path, exc, aside)
            try:
                os.replace(self.path, aside)   # type: ignore[arg-type]
            except OSError:
                pass
            return {}
        entries = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
        return dict(entries) if isinstance(entries, dict) else {}

    def _write(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"format": FORMAT, "entries": self._entries}, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def put(self, key: str, entry: Dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = entry
            try:
                self._write()
            except OSError as exc:
                log.warning("journal %s: cannot write (%s); the result is kept in memory only",
                            self.path, exc)

    def drop(self, key: str) -> None:
        with self._lock:
            if self._entries.pop(key, None) is not None:
                try:
                    self._write()
                except OSError as exc:
                    log.warning("journal %s: cannot write (%s)", self.path, exc)

    def entries(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(e, key=k) for k, e in sorted(self._entries.items())]

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries
