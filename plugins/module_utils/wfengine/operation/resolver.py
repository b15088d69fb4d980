# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a worker knows about an operation call, read from the Space: the compiled operation, the
model's files (materialized once per host), and the values that TOSCA functions read.

The worker's default executor runs declared implementations (``process_executor.ProcessExecutor``) and
records the others as no-ops (``executor.RecordingExecutor``).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

from .. import catalog, keys
from . import artifacts
from .executor import Executor, OperationCall, OperationResult, RecordingExecutor
from .function_contexts import ModelContext
from .functions import FunctionContext
from ..operations import lookup
from ..placement import host_target, operation_root
from .process_executor import OperationResolver, ProcessExecutor
from .ssh import KnownHosts, SshClient, SshOptions
from ..space.base import Space
from ..records import NodeInstance, Relationship


def default_cache_dir() -> str:
    return os.environ.get("WF_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "wfengine")


class SpaceResolver(OperationResolver):
    """Resolves calls of the runs a worker serves; ``contexts(run_id)`` is the worker's cache of
    run contexts (model, digest, instance, node records)."""

    def __init__(self, space: Space, contexts: Callable[[str], Any], cache_dir: Optional[str] = None,
                 ssh: Optional[SshClient] = None):
        self.space = space
        self.ssh = ssh
        self.contexts = contexts
        self.cache_dir = cache_dir or os.path.join(default_cache_dir(), "models")
        self._lock = threading.Lock()
        self._ops: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
        self._values: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._inputs: Dict[Tuple[str, str], Dict[str, Any]] = {}

    @staticmethod
    def _digest(ctx: Any, node: NodeInstance) -> str:
        """The model version a node's operations come from: the run's, or for an obsolete node of
        an update run the version it was deployed with (updates.py tags it)."""
        d = node.get("model_digest")
        return d if isinstance(d, str) and d else ctx.record["model_digest"]

    def _template_ops(self, ctx: Any, template: str, digest: Optional[str] = None) -> Dict[str, Any]:
        digest = digest or ctx.record["model_digest"]
        k = (ctx.model, digest, template)
        with self._lock:
            hit = self._ops.get(k)
        if hit is None:
            hit = catalog.read_operations(self.space, ctx.model, digest, template)
            with self._lock:
                if len(self._ops) > 4096:
                    self._ops.clear()
                self._ops[k] = hit
        return hit

    def spec(self, call: OperationCall) -> Optional[Dict[str, Any]]:
        ctx = self.contexts(call.run)
        if call.relationship is None:
            ops = self._template_ops(ctx, call.node["template"], self._digest(ctx, call.node))["operations"].get("node")
            return lookup(ops, call.operation)
        # Relationship operations are declared with the source's requirement (its index is in
        # the relationship instance id "<source>:<requirement>#<index>:<target>").
        rel = call.relationship
        source = ctx.node(rel["source"])
        index = rel["id"].split("#", 1)[1].split(":", 1)[0]
        groups = self._template_ops(ctx, source["template"], self._digest(ctx, source))["operations"].get(
            "relationships") or {}
        return lookup(groups.get(index), call.operation)

    def deployment(self, call: OperationCall) -> Tuple[str, str]:
        ctx = self.contexts(call.run)
        return ctx.model, ctx.instance

    def target(self, call: OperationCall, ctx: Optional[FunctionContext] = None,
               spec: Optional[Dict[str, Any]] = None) -> Optional[Any]:
        run = self.contexts(call.run)
        root = operation_root(call, spec if spec is not None else self.spec(call),
                              lambda n: run.node(n).get("host"))
        if root is None or self.ssh is None:
            return None
        return host_target(ctx if ctx is not None else self.context(call), root, self.ssh.inventory,
                           self.ssh.opts.serves)

    def model_dir(self, call: OperationCall) -> str:
        ctx = self.contexts(call.run)
        return artifacts.materialize(self.space, ctx.model, self._digest(ctx, call.node), self.cache_dir)

    def _all_values(self, ctx: Any, digest: Optional[str] = None) -> Dict[str, Any]:
        digest = digest or ctx.record["model_digest"]
        k = (ctx.model, digest)
        with self._lock:
            hit = self._values.get(k)
        if hit is None:
            prefix = keys.model_version(ctx.model, digest) + "ops/"
            hit = {e.key[len(prefix):]: _with_artifacts(e.value) for e in self.space.list(prefix)}
            with self._lock:
                self._values[k] = hit
        return hit

    def _deployment_inputs(self, ctx: Any) -> Dict[str, Any]:
        k = (ctx.model, ctx.instance)
        with self._lock:
            hit = self._inputs.get(k)
        if hit is None:
            e = self.space.get(keys.instance_head(ctx.model, ctx.instance))
            hit = dict((e.value or {}).get("inputs") or {}) if e is not None else {}
            with self._lock:
                self._inputs[k] = hit
        return hit

    def context(self, call: OperationCall) -> FunctionContext:
        ctx = self.contexts(call.run)
        return model_context(self.space, ctx, self._all_values(ctx, self._digest(ctx, call.node)),
                             self._deployment_inputs(ctx),
                             call.node["id"], call.relationship)


def _with_artifacts(stored: Any) -> Dict[str, Any]:
    """A template's values (``operations.compile_values``) with its artifact paths (kept with its
    compiled operations), which ``get_artifact`` reads."""
    stored = stored if isinstance(stored, dict) else {}
    values = dict(stored.get("values") or {})
    arts = (stored.get("operations") or {}).get("artifacts")
    if isinstance(arts, dict):
        values["artifacts"] = arts
    return values


def deployment_values(space: Space, model: str, instance: str, digest: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(template values, deployment inputs) of a deployment, for a function context."""
    prefix = keys.model_version(model, digest) + "ops/"
    values = {e.key[len(prefix):]: _with_artifacts(e.value) for e in space.list(prefix)}
    e = space.get(keys.instance_head(model, instance))
    inputs = dict((e.value or {}).get("inputs") or {}) if e is not None else {}
    return values, inputs


def model_context(space: Space, ctx: Any, values: Dict[str, Any], inputs: Dict[str, Any],
                  self_node: Optional[str],
                  relationship: Optional[Relationship] = None) -> ModelContext:
    """A function context over a deployment: node records from ``ctx.node``, attributes read
    fresh from the Space (other nodes' operations set them while the run goes on)."""
    def attributes(node_id: str) -> Dict[str, Any]:
        e = space.get(keys.attributes(ctx.model, ctx.instance, node_id))
        return dict(e.value) if e is not None and isinstance(e.value, dict) else {}

    def instances(template: str) -> List[str]:
        return cast(List[str], ctx.template_instances(template))

    return ModelContext(values, ctx.node, attributes, inputs, self_node, instances=instances,
                        relationship=relationship)


class WorkerExecutor(Executor):
    """Runs declared implementations in processes; records operations that have none."""

    def __init__(self, process: ProcessExecutor, recording: RecordingExecutor):
        self.process = process
        self.recording = recording

    def effectful(self, call: OperationCall) -> bool:
        return self.process.effectful(call)

    def retry_policy(self, call: OperationCall) -> Tuple[int, float]:
        return self.process.retry_policy(call)

    def run(self, call: OperationCall) -> OperationResult:
        spec = self.process.resolver.spec(call)      # resolved once for the whole call
        if self.process.implemented(spec):
            self.recording.run(call)   # the execution log lists every operation, run or not
            return self.process.run(call, spec=spec)
        return self.recording.run(call)

    def cancel(self, run: str) -> int:
        return self.process.cancel(run)

    def close(self) -> None:
        """Close the worker's SSH master connections and end its playbook fork servers."""
        self.process.close()
        if self.process.ssh is not None:
            self.process.ssh.close()


def default_executor(space: Space, contexts: Callable[[str], Any], log_dir: Optional[str] = None,
                     cache_dir: Optional[str] = None, exec_log: Optional[str] = None,
                     timeout: Optional[float] = None,
                     ssh_options: Optional[SshOptions] = None,
                     playbook_forkserver: Optional[bool] = None) -> WorkerExecutor:
    def known_hosts(deployment: Tuple[str, str]) -> KnownHosts:
        return KnownHosts(space, keys.known_hosts(*deployment))

    ssh = SshClient(ssh_options or SshOptions(), known_hosts)
    resolver = SpaceResolver(space, contexts, cache_dir, ssh=ssh)
    kwargs: Dict[str, Any] = {} if timeout is None else {"default_timeout": timeout}
    process = ProcessExecutor(resolver, log_dir or os.path.join(default_cache_dir(), "logs"), ssh=ssh,
                              playbook_forkserver=playbook_forkserver, **kwargs)
    return WorkerExecutor(process, RecordingExecutor(exec_log))
