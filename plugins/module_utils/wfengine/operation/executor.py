# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a worker runs an operation.

The worker only knows the ``Executor`` interface.  ``RecordingExecutor`` records each call (the
trace already holds it; optionally a line in an execution log, as the seed's ``/opt/execs``)
and succeeds at once: it is what runs when a model declares no implementation.  An executor that
really runs scripts replaces it without touching the worker.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional
from ..records import NodeInstance, Relationship


@dataclass
class OperationCall:
    run: str
    workflow: str
    node: NodeInstance                      # the node instance record
    operation: str                            # full operation name
    relationship: Optional[Relationship]    # None, or the relationship instance record
    side: Optional[str]                       # "source" | "target" for relationship operations
    worker: str
    attempt: int = 1
    # An imperative step's operation_host (TOSCA 1.3 §7.3): overrides the implementation's.
    operation_host: Optional[str] = None


@dataclass
class OperationResult:
    ok: bool = True
    exit_code: int = 0
    output: str = ""
    duration: float = 0.0
    details: Dict[str, Any] = field(default_factory=dict)
    # Attributes the operation reported for the node it ran on (output.py: the WF_OUTPUTS file).
    attributes: Dict[str, Any] = field(default_factory=dict)


class Executor:
    """Runs operations for a worker."""

    def effectful(self, call: OperationCall) -> bool:
        """True when running the call twice would be visible outside the Space.  The worker then
        records the attempt before running it, so a retry after a crash is in the trace."""
        return False

    def run(self, call: OperationCall) -> OperationResult:
        raise NotImplementedError

    def retry_policy(self, call: OperationCall) -> "tuple[int, float]":
        """(max_retries, retry_interval in seconds) of an effectful operation."""
        return 0, 0.0


class RecordingExecutor(Executor):
    """Records the call and succeeds; with ``log_path`` appends one JSON line per call."""

    def __init__(self, log_path: Optional[str] = None):
        self.log_path = log_path
        self._lock = threading.Lock()

    def run(self, call: OperationCall) -> OperationResult:
        if self.log_path:
            rel_id = call.relationship["id"] if call.relationship else None
            line = json.dumps({"ts": time.time(), "run": call.run, "workflow": call.workflow,
                               "node": call.node["id"], "operation": call.operation,
                               "relationship": rel_id,
                               "worker": call.worker, "pid": os.getpid()})
            with self._lock:
                with open(self.log_path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
        return OperationResult()
