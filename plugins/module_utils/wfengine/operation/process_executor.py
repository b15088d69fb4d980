# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run operation implementations as processes: shell scripts with bash, playbooks with
ansible-playbook (by default forked from a fork server that imported ansible-core once,
``forkserver_client.py``; the same argument list, environment, working directory, log, and the same
supervision below: only the start-up differs).

Values never reach a command line.  The command is always an argument list
(``bash <script>``, ``ansible-playbook ... <playbook> -e @<vars file>``), so a property holding
``$(rm -rf /)`` or quotes is data, not code:

* scripts get each input as an environment variable named exactly as the input (``port`` ->
  ``$port``; no upper-case copies, which could clash with another input), strings verbatim,
  numbers as decimal text, booleans ``true``/``false``, null empty, lists and maps as JSON;
* playbooks get the inputs as extra variables from a YAML file (mode 0600, deleted afterwards)
  where every string is tagged ``!unsafe``, so Ansible never templates a ``{{ ... }}`` that came
  from a property value.

Both also get ``WF_RUN``, ``WF_WORKFLOW``, ``WF_NODE``, ``WF_TEMPLATE``, ``WF_OPERATION``,
``WF_ATTEMPT``, ``WF_MODEL_DIR``, ``WF_HOST`` (hosting node instance, if any), and for a
relationship operation ``WF_RELATIONSHIP``, ``WF_SOURCE``, ``WF_TARGET``; playbooks see the same
values as ``wf_run``, ``wf_node``, ... variables.

Outputs: ``WF_OUTPUTS`` (variable ``wf_outputs`` in playbooks) is the path of an empty file; what
the implementation writes there becomes attributes of the node the operation ran on
(``output.py``: the file's format, the ``outputs`` mapping; ``playbook.py``: the playbook's
command and variables file).

The working directory is the materialized model folder (shared by every operation of that model
version on the host: scripts should write elsewhere).  The whole output (stdout and stderr,
interleaved) goes to ``<log_dir>/<run>/<node>/<operation>-<attempt>.log`` on the worker host;
the result carries its last ``tail_bytes``.  A timeout sends SIGTERM to the operation's whole
process group, then SIGKILL after a grace period.

Secrets (``secrets.py``): ``get_secret`` is resolved here, when the operation runs; every value
read (and every sensitive input's value) is replaced by ``********`` in the output tail, the log
file (the process writes into the private work folder, the log file gets the masked copy), the
outputs/attributes and error messages, before the result leaves the executor.  An input whose
name steers the shell or the loader (``BASH_ENV``, ``LD_PRELOAD``...) is never passed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from ..errors import SpaceUnavailable, WfError
from .executor import Executor, OperationCall, OperationResult
from .forkserver_client import ForkServers
from .function_eval import evaluate
from .functions import FunctionContext, to_text
from ..operations import INPUT_NAME_RE
from .output import OutputsError, append_log, read_attributes, safe_segment, tail
from .playbook import playbook_command
from .process_start import EXIT_NOT_RUN, ProcessSupervision
from ..secrets import SecretResolver, forbidden_env_name
from .ssh import EXIT_UNREACHABLE, REMOTE_MODEL_DIR, RemoteError, describe_failure, parse_result

DEFAULT_TIMEOUT = 3600.0
TAIL_BYTES = 4096
PLAYBOOK_EXT = (".yml", ".yaml")
FORKSERVER_ENV = "WF_PLAYBOOK_FORKSERVER"


def forkserver_default() -> bool:
    """Playbooks from a fork server unless ``WF_PLAYBOOK_FORKSERVER`` says no (0, false, no, off)."""
    return os.environ.get(FORKSERVER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class OperationResolver:
    """What the executor needs to know about a call; the worker implements it.

    ``spec`` is called first and alone (for ``effectful``), so it must be cheap: the compiled
    spec (``operations.lookup``) or None when the operation has no implementation.  ``model_dir``
    and ``context`` are called only when the operation runs."""

    def spec(self, call: OperationCall) -> Optional[Dict[str, Any]]:
        raise NotImplementedError

    def model_dir(self, call: OperationCall) -> str:
        """The materialized model folder (``artifacts.materialize``)."""
        raise NotImplementedError

    def context(self, call: OperationCall) -> FunctionContext:
        raise NotImplementedError

    def target(self, call: OperationCall, ctx: Optional[FunctionContext] = None,
               spec: Optional[Dict[str, Any]] = None) -> Optional[Any]:
        """The remote host the call runs on (``placement.Target``), or None: on this worker.
        ``ctx``: the call's context, whose secret resolver reads a ``get_secret`` credential;
        ``spec``: the call's spec when the caller has it (else resolved again)."""
        return None

    def deployment(self, call: OperationCall) -> Tuple[str, str]:
        """(model, instance) of the call: remote connections and host keys are per deployment."""
        raise NotImplementedError

    def retry_default(self, call: OperationCall) -> Optional[Tuple[int, float]]:
        """(max_retries, retry_interval) when the operation sets none: the run-wide default;
        None: the executor's ``default_retries``."""
        return None


@dataclass
class _Prepared:
    """What ``ProcessExecutor._prepare`` found out for a call: its command and where it runs."""
    workdir: str                  # the private work folder (0700)
    model_dir: str
    target: Optional[Any]         # the remote host (``placement.Target``) or None: here
    playbook: bool
    argv: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    stdin_data: Optional[bytes] = None

    @property
    def outputs_file(self) -> str:
        return os.path.join(self.workdir, "outputs")


class ProcessExecutor(ProcessSupervision, Executor):
    """Runs implementations in processes on the worker's host (started and supervised by
    ``process_start.ProcessSupervision``)."""

    def __init__(self, resolver: OperationResolver, log_dir: str, default_timeout: float = DEFAULT_TIMEOUT,
                 default_retries: Tuple[int, float] = (0, 0.0), ansible_playbook: Optional[str] = None,
                 bash: Optional[str] = None, tail_bytes: int = TAIL_BYTES, kill_grace: float = 2.0,
                 ssh: Optional[Any] = None, playbook_forkserver: Optional[bool] = None):
        self.resolver = resolver
        self.ssh: Any = ssh            # ssh.SshClient: operations of remote hosts
        self.log_dir = os.path.abspath(log_dir)
        self.default_timeout = float(default_timeout)
        self.default_retries = default_retries
        self.ansible_playbook = ansible_playbook
        self.bash = bash or shutil.which("bash") or "/bin/bash"
        self.tail_bytes = tail_bytes
        self.kill_grace = kill_grace
        self._running: Dict[int, Tuple[str, Any]] = {}      # pid -> (run, Popen or ForkedProcess)
        self._canceled: Set[int] = set()
        self._lock = threading.Lock()
        # Playbooks forked from an Ansible imported once (forkserver_client.py); None: processes only.
        if playbook_forkserver is None:
            playbook_forkserver = forkserver_default()
        self.forkservers: Optional[ForkServers] = ForkServers() if playbook_forkserver else None

    def close(self) -> None:
        """End the fork servers (playbooks they started and still run go on)."""
        if self.forkservers is not None:
            self.forkservers.close()

    # ------------------------------------------------------------------ Executor interface
    def effectful(self, call: OperationCall) -> bool:
        return self.implemented(self.resolver.spec(call))

    @staticmethod
    def implemented(spec: Optional[Dict[str, Any]]) -> bool:
        """Whether ``spec`` (``OperationResolver.spec``) declares an implementation to run."""
        return bool(spec and (spec.get("implementation") or {}).get("primary"))

    def retry_policy(self, call: OperationCall) -> Tuple[int, float]:
        spec = self.resolver.spec(call) or {}
        getter = getattr(self.resolver, "retry_default", None)
        default = (getter(call) if getter else None) or self.default_retries
        retries = spec.get("max_retries")
        interval = spec.get("retry_interval")
        return (int(default[0] if retries is None else retries),
                float(default[1] if interval is None else interval))

    def log_path(self, call: OperationCall) -> str:
        op = call.operation
        if call.relationship is not None:
            other = call.relationship.get("target") if call.side != "target" else call.relationship.get("source")
            op = "%s@%s" % (op, other)
        return os.path.join(self.log_dir, safe_segment(call.run), safe_segment(call.node["id"]),
                            "%s-%d.log" % (safe_segment(op), call.attempt))

    def cancel(self, run: str) -> int:
        """Stop every operation of ``run`` running here (process group: TERM, then KILL);
        their results say ``canceled``.  Returns how many were running."""
        with self._lock:
            procs = [p for r, p in self._running.values() if r == run]
            self._canceled.update(p.pid for p in procs)
        for p in procs:
            self._kill_group(p)
        return len(procs)

    def run(self, call: OperationCall, spec: Optional[Dict[str, Any]] = None) -> OperationResult:
        """Run the call; every value of a secret it read (get_secret) is masked in what comes
        back (output tail, details, error messages, attributes) and in its log file.  ``spec``:
        the call's spec when the caller has it (None: resolved here)."""
        found = SecretResolver()
        try:
            result = self._run(call, found, spec)
        except Exception as exc:
            red = found.redactor()
            if red:
                cls = SpaceUnavailable if isinstance(exc, SpaceUnavailable) else WfError
                raise cls(red.text(str(exc))) from None
            raise
        red = found.redactor()
        if red:
            result.output = red.text(result.output)
            result.details = red.value(result.details)
            result.attributes = red.value(result.attributes)
            log_file = result.details.get("log_file")
            if isinstance(log_file, str):
                red.scrub_file(log_file)
        return result

    def _run(self, call: OperationCall, found: SecretResolver,
             spec: Optional[Dict[str, Any]] = None) -> OperationResult:
        t0 = time.monotonic()
        if spec is None:
            spec = self.resolver.spec(call)
        impl = (spec or {}).get("implementation") or {}
        if spec is None or not impl.get("primary"):
            return OperationResult(details={"noop": True})
        log_file = self.log_path(call)
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        details: Dict[str, Any] = {"log_file": log_file, "primary": impl["primary"]}
        workdir = tempfile.mkdtemp(prefix="wf-op-")        # 0700: outputs and vars files
        try:
            try:
                prep = self._prepare(call, found, spec, workdir, details)
            except SpaceUnavailable:
                # The Space did not answer while the operation was prepared (an outage): it was
                # not run, and did not fail; the worker hands its node back (worker.py).
                raise
            except WfError as exc:
                msg = found.redactor().text("%s %s: %s" % (call.node["id"], call.operation, exc))
                append_log(log_file, "[wfengine] not run: %s\n" % msg, truncate=True)
                details["error"] = msg
                code = EXIT_UNREACHABLE if isinstance(exc, RemoteError) else EXIT_NOT_RUN
                return OperationResult(ok=False, exit_code=code, output=msg,
                                       duration=time.monotonic() - t0, details=details)
            return self._execute(call, found, spec, prep, log_file, details, t0)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _prepare(self, call: OperationCall, found: SecretResolver, spec: Dict[str, Any],
                 workdir: str, details: Dict[str, Any]) -> "_Prepared":
        """The command of the call (its inputs evaluated, its files found, a remote host
        connected); WfError: it cannot run."""
        impl = spec.get("implementation") or {}
        primary = impl["primary"]
        model_dir = os.path.abspath(self.resolver.model_dir(call))
        script = self._in_model(model_dir, primary)
        deps = [(d, self._in_model(model_dir, d, folder=True))
                for d in impl.get("dependencies") or []]
        ctx = self.resolver.context(call)
        ctx.secrets = found
        target = self.resolver.target(call, ctx, spec=spec) if self.ssh is not None else None
        p = _Prepared(workdir, model_dir, target, primary.lower().endswith(PLAYBOOK_EXT))
        # get_artifact: the path where the operation runs.  A remote script's folder is
        # only known there: the bootstrap replaces the marker (ssh.py).  A playbook runs
        # here even for a remote host (its copy/template tasks read local files).
        ctx.artifact_root = REMOTE_MODEL_DIR if target is not None and not p.playbook else model_dir
        ctx.used_artifacts = []
        inputs = self._inputs(spec, ctx, found)
        with open(p.outputs_file, "w"):
            pass
        facts = self._facts(call, model_dir, p.outputs_file)
        deployment: Tuple[str, str] = ("", "")
        if target is not None:
            details.update(host=target.host, address=target.address)
            deployment = self.resolver.deployment(call)
            self.ssh.connect(deployment, target)
        if p.playbook:
            inventory = None if target is None else self.ssh.inventory_for(deployment, target)
            p.argv, p.env = playbook_command(self.ansible_playbook, script, inputs, facts, workdir,
                                             inventory)
        elif target is not None:
            env = {name: self._check_env_value(name, to_text(v)) for name, v in inputs.items()}
            env.update(facts)
            shipped = {primary} | {d for d, dummy in deps}
            arts = [(a, self._in_model(model_dir, a)) for a in ctx.used_artifacts
                    if a not in shipped]
            p.argv, p.stdin_data = self.ssh.script_command(deployment, target,
                                                           [(primary, script)] + deps + arts,
                                                           primary, env)
            p.env = dict(os.environ)
        else:
            p.argv, p.env = [self.bash, script], self._script_env(inputs, facts)
        details["command"] = os.path.basename(p.argv[0])
        return p

    @staticmethod
    def _inputs(spec: Dict[str, Any], ctx: FunctionContext,
                found: SecretResolver) -> Dict[str, Any]:
        """The operation's inputs evaluated; a sensitive input's value is masked like a secret."""
        inputs = {}
        for name, raw in (spec.get("inputs") or {}).items():
            if not INPUT_NAME_RE.match(name):
                raise WfError("input %r: not an identifier" % name)
            why = forbidden_env_name(name)
            if why:       # refused at upload (operations.py); a model stored before is refused here
                raise WfError("input %s: not passed to the operation: %s" % (name, why))
            try:
                inputs[name] = evaluate(raw, ctx)
            except SpaceUnavailable:
                raise
            except WfError as exc:
                raise WfError("input %s: %s" % (name, exc)) from None
            if name in (spec.get("sensitive") or ()):
                found.add(inputs[name])
        return inputs

    def _execute(self, call: OperationCall, found: SecretResolver, spec: Dict[str, Any],
                 p: "_Prepared", log_file: str, details: Dict[str, Any],
                 t0: float) -> OperationResult:
        """Runs the prepared command and reads what it left: exit code, outputs, log tail."""
        timeout = float((spec.get("implementation") or {}).get("timeout") or self.default_timeout)
        err_file = os.path.join(p.workdir, "ssh.err") if p.stdin_data is not None else None
        red = found.redactor()
        # With secrets, the output goes to the private work folder first and reaches the log
        # file masked: the log file never holds a secret, even while the operation runs.
        raw_log = os.path.join(p.workdir, "output.log") if red else log_file
        status_file = os.path.join(p.workdir, "status") if p.playbook else None
        code, timed_out, canceled = self._spawn(p.argv, p.env, p.model_dir, raw_log, timeout,
                                                call.run, stdin_data=p.stdin_data,
                                                stderr_path=err_file, fork_status=status_file,
                                                details=details)
        if red:
            red.copy_file(raw_log, log_file)
        if err_file is not None and not timed_out and not canceled:
            failure = self._remote_result(call, p.target, err_file, p.outputs_file, code, log_file)
            if isinstance(failure, str):
                details["error"] = failure
                return OperationResult(ok=False, exit_code=EXIT_UNREACHABLE, output=failure,
                                       duration=time.monotonic() - t0, details=details)
            code = failure
        details["timed_out"] = timed_out
        if canceled:
            details["canceled"] = True
        ok = code == 0 and not timed_out and not canceled
        attributes: Dict[str, Any] = {}
        if ok:
            try:
                attributes = read_attributes(call, spec, p.outputs_file)
            except OutputsError as exc:
                append_log(log_file, "[wfengine] %s\n" % exc)
                details["error"] = str(exc)
                ok = False
        return OperationResult(ok=ok, exit_code=code, output=tail(log_file, self.tail_bytes),
                               duration=time.monotonic() - t0, details=details,
                               attributes=attributes)

    @staticmethod
    def _in_model(model_dir: str, path: str, folder: bool = False) -> str:
        """A file (or, for a dependency, a folder) of the model: never outside it."""
        full = os.path.normpath(os.path.join(model_dir, *path.split("/")))
        if not full.startswith(model_dir + os.sep) or not (
                os.path.isfile(full) or (folder and os.path.isdir(full))):
            raise WfError("implementation %s not found in %s" % (path, model_dir))
        return full

    def _remote_result(self, call: OperationCall, target: Any, err_file: str, outputs_file: str,
                       code: int, log_file: str) -> Any:
        """The script's exit code from the session's trailer (its outputs file written where the
        local path expects it), or the one-line reason the session failed."""
        with open(err_file, "rb") as fh:
            err = fh.read()
        parsed = parse_result(err)
        if parsed is None:
            text = err.decode("utf-8", errors="replace")
            append_log(log_file, text)
            if code == 255:
                return "%s %s: %s" % (call.node["id"], call.operation, describe_failure(target, text))
            return "%s %s: %s: the remote operation did not finish (exit %s): %s" % (
                call.node["id"], call.operation, target.label(), code,
                (text.strip().splitlines() or ["no message"])[-1][:300])
        rc, outputs, messages = parsed
        if messages.strip():
            append_log(log_file, messages)
        with open(outputs_file, "wb") as fh:
            fh.write(outputs)
        return rc

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def _facts(call: OperationCall, model_dir: str, outputs_file: str) -> Dict[str, str]:
        node = call.node
        facts = {"WF_RUN": call.run, "WF_WORKFLOW": call.workflow, "WF_NODE": node["id"],
                 "WF_TEMPLATE": node.get("template", ""), "WF_OPERATION": call.operation,
                 "WF_ATTEMPT": str(call.attempt), "WF_MODEL_DIR": model_dir, "WF_OUTPUTS": outputs_file,
                 "WF_HOST": node.get("host") or ""}
        if call.relationship is not None:
            facts.update({"WF_RELATIONSHIP": call.relationship.get("id", ""),
                          "WF_SOURCE": call.relationship.get("source", ""),
                          "WF_TARGET": call.relationship.get("target", "")})
        return facts

    @staticmethod
    def _check_env_value(name: str, value: str) -> str:
        if "\x00" in value:
            raise WfError("input %s: a NUL character cannot be passed in an environment variable" % name)
        return value

    def _script_env(self, inputs: Dict[str, Any], facts: Dict[str, str]) -> Dict[str, str]:
        env = dict(os.environ)
        for name, value in inputs.items():
            env[name] = self._check_env_value(name, to_text(value))
        env.update(facts)      # the engine's facts win over an input of the same name
        return env
