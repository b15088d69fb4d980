"""Runs one conformance corpus entry the way a user would, and says what happened.

Shared by ``test_conformance.py`` and ``scripts/conformance_report.py`` so that the counts in
docs/conformance.md are the ones the test asserts.  Nothing here touches the engine's code: the
entry is uploaded, instantiated, installed and uninstalled through ``wfengine.api`` on an embedded
Space, with ``RecordingExecutor`` standing in for the implementations (no script of a third-party
template ever runs here: most would install packages or call clouds).
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from wfengine import api
from wfengine.errors import WfError
from wfengine.operation.executor import Executor, OperationCall, OperationResult
from wfengine.operation.function_eval import evaluate
from wfengine.operations import split_operation
from wfengine.operation.resolver import SpaceResolver
from wfengine.worker import RunContext

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
MANIFEST = HERE / "manifest.yaml"
RUN_TIMEOUT = 60.0


def load_manifest() -> List[Dict[str, Any]]:
    with open(MANIFEST, "r", encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return data["entries"]


def entry_path(entry: Dict[str, Any]) -> str:
    """What is handed to ``upload_model``: the entry file, or the entry folder (a CSAR folder with
    TOSCA-Metadata) when ``entry`` is ``.``."""
    return str(CORPUS / entry["id"] / entry["entry"])


# ------------------------------------------------------------------ the recording executor
@dataclass
class Recorded:
    """One operation the executor was asked to run."""
    workflow: str
    node: str
    template: str
    operation: str
    relationship: Optional[str]
    side: Optional[str]
    primary: Optional[str]              # the implementation it replaced, None: a no-op
    inputs: Dict[str, Any] = field(default_factory=dict)


class RecordingImplementationExecutor(Executor):
    """Replaces every implementation by a record of what would have run: the operation, the node,
    the relationship and the inputs, evaluated as the process executor evaluates them (so a TOSCA
    function that cannot be evaluated fails the operation, as it would for real).  It also checks
    that the implementation and its dependencies were shipped with the model (present in the
    materialized model folder), since a path the engine resolved wrongly would fail for real.
    Everything else succeeds at once."""

    def __init__(self, opts: api.SpaceOptions, cache_dir: str):
        self._space = api.open_space(opts)
        self._contexts: Dict[str, RunContext] = {}
        self._ctx_lock = threading.Lock()
        self.resolver = SpaceResolver(self._space, self._context, cache_dir=cache_dir)
        self.calls: List[Recorded] = []
        self.failures: List[str] = []
        self._lock = threading.Lock()

    def _context(self, run_id: str) -> RunContext:
        with self._ctx_lock:
            ctx = self._contexts.get(run_id)
            if ctx is None:
                ctx = self._contexts[run_id] = RunContext(self._space, run_id)
            return ctx

    def shutdown(self) -> None:
        """Not ``close``: a stopping worker calls its executor's ``close``, and the next
        workflow of the entry still needs this Space client."""
        self._space.close()

    def effectful(self, call: OperationCall) -> bool:
        spec = self.resolver.spec(call)
        return bool(spec and (spec.get("implementation") or {}).get("primary"))

    def run(self, call: OperationCall) -> OperationResult:
        spec = self.resolver.spec(call)
        impl = (spec or {}).get("implementation") or {}
        primary = impl.get("primary")
        rec = Recorded(call.workflow, call.node["id"], call.node.get("template", ""), call.operation,
                       (call.relationship or {}).get("id"), call.side, primary)
        problem = None
        if primary:
            try:
                model_dir = self.resolver.model_dir(call)
                for rel in [primary] + list(impl.get("dependencies") or []):
                    if not os.path.exists(os.path.join(model_dir, *rel.split("/"))):
                        raise WfError("%s not shipped with the model" % rel)
                ctx = self.resolver.context(call)
                ctx.artifact_root = model_dir     # get_artifact: where the files are, as runner.py sets it
                for name, raw in (spec.get("inputs") or {}).items():
                    try:
                        rec.inputs[name] = evaluate(raw, ctx)
                    except WfError as exc:
                        raise WfError("input %s: %s" % (name, exc)) from None
            except WfError as exc:
                problem = "%s %s: %s" % (call.node["id"], call.operation, exc)
        with self._lock:
            self.calls.append(rec)
            if problem:
                self.failures.append(problem)
        if problem:
            return OperationResult(ok=False, exit_code=-1, output=problem, details={"error": problem})
        return OperationResult(details={"recorded": True})


# ------------------------------------------------------------------ one entry
@dataclass
class Outcome:
    verdict: str                        # install | refuse | fail
    reason: str = ""                    # the one-line error (refuse) or what went wrong (fail)
    warnings: List[str] = field(default_factory=list)
    declared: int = 0                   # implementations the model declares, per instance
    recorded: int = 0                   # of those, how many the runs called
    unexplained: List[str] = field(default_factory=list)   # declared, never run, no warning
    unannounced: List[str] = field(default_factory=list)   # sections the engine does not run, no warning
    calls: List[Recorded] = field(default_factory=list)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[:1]).strip() or type(exc).__name__


def _declared(ops: Dict[str, Any], status: Dict[str, Any]) -> Counter:
    """Every (node or relationship instance, interface short name, operation) with an
    implementation: node operations once per node instance of the template, relationship
    operations once per relationship instance of the requirement."""
    out: Counter = Counter()
    for nid, node in status["nodes"].items():
        t = ops.get(node["template"]) or {}
        for op, spec in (t.get("node") or {}).items():
            if (spec.get("implementation") or {}).get("primary"):
                out[(node["template"], nid, None) + split_operation(op)] += 1
    return out


def _declared_rel(ops: Dict[str, Any], rel_ids: List[Tuple[str, str, str]]) -> Counter:
    """``rel_ids``: (relationship instance id, source template, requirement index)."""
    out: Counter = Counter()
    for rid, template, index in rel_ids:
        group = ((ops.get(template) or {}).get("relationships") or {}).get(index) or {}
        for op, spec in group.items():
            if (spec.get("implementation") or {}).get("primary"):
                out[(template, None, rid) + split_operation(op)] += 1
    return out


def _explained(key: Tuple, lines: List[str]) -> bool:
    """A warning names the template and the operation (full or short name)."""
    template, dummy, dummy2, iface, op = key
    return any(template in line and op in line for line in lines)


def _relationship_instances(space: Any, model: str, instance: str,
                            status: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    from wfengine import deployments
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head)
    out = []
    for nid, n in nodes.items():
        for r in n.get("out") or []:
            rid = r.get("id") or ""
            index = rid.split("#", 1)[1].split(":", 1)[0] if "#" in rid else ""
            out.append((rid, n["template"], index))
    return out


SECTIONS = ("policies", "groups", "substitution_mappings")


def unannounced_sections(entry: Dict[str, Any], lines: List[str]) -> List[str]:
    """Sections of the entry's topology that the engine stores but does not run (issue 16 item
    10) and that no upload warning mentions.  Read from the entry's own file (a CSAR archive is not
    opened: its entries in this corpus have none)."""
    path = entry_path(entry)
    if os.path.isdir(path):
        path = os.path.join(path, entry.get("definitions") or "")
    if not path.endswith((".yaml", ".yml")) or not os.path.isfile(path):
        return []
    with open(path, "r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    topo = doc.get("topology_template") if isinstance(doc, dict) else None
    if not isinstance(topo, dict):
        return []
    return [s for s in SECTIONS if topo.get(s) and not any(s in line for line in lines)]


def run_entry(entry: Dict[str, Any], workdir: str) -> Outcome:
    """Upload, instantiate, install, uninstall; the verdict and the silent-skip accounting."""
    opts = api.SpaceOptions(backend="embedded", path=os.path.join(workdir, "space.db"))
    path = entry_path(entry)
    space = api.open_space(opts)
    try:
        try:
            uploaded = api.upload_model(space, path, "m")
            compiled = api.compile_model(path, space)
        except WfError as exc:
            return Outcome("refuse", _one_line(exc))
        lines = list(uploaded.get("warnings") or compiled.get("warnings") or [])
        try:
            api.create_instance(space, "m", "i", inputs=entry.get("inputs") or {})
        except WfError as exc:
            return Outcome("refuse", "instantiate: " + _one_line(exc), lines)
        executor = RecordingImplementationExecutor(opts, os.path.join(workdir, "cache"))
        try:
            outcome = Outcome("install", warnings=lines)
            for workflow, final in (("install", "started"), ("uninstall", "deleted")):
                rec = api.start_workflow(space, workflow, "m", "i")
                rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=RUN_TIMEOUT,
                                                 executor=executor)
                status = api.status(space, "m", "i")
                if rec["status"] != "succeeded":
                    why = executor.failures[0] if executor.failures else rec.get("error") or rec["status"]
                    return Outcome("fail", "%s %s: %s" % (workflow, rec["status"], why), lines,
                                   calls=executor.calls)
                stuck = sorted("%s=%s" % (n, v["state"]) for n, v in status["nodes"].items()
                               if v["state"] != final)
                if stuck:
                    return Outcome("fail", "%s succeeded but not %s: %s" % (workflow, final, ", ".join(stuck[:5])),
                                   lines, calls=executor.calls)
            outcome.calls = list(executor.calls)
        finally:
            executor.shutdown()
        ops = compiled["body"]["operations"]
        declared = _declared(ops, status) + _declared_rel(ops, _relationship_instances(space, "m", "i", status))
        seen: Counter = Counter()
        for c in outcome.calls:
            if not c.primary:
                continue
            template = status["nodes"].get(c.node, {}).get("template", c.template)
            if c.relationship:
                src = c.relationship.split(":", 1)[0]
                template = status["nodes"].get(src, {}).get("template", template)
                key = (template, None, c.relationship) + split_operation(c.operation)
            else:
                key = (template, c.node, None) + split_operation(c.operation)
            seen[key] = 1
        outcome.unannounced = unannounced_sections(entry, lines)
        outcome.declared = sum(declared.values())
        outcome.recorded = sum(1 for k in declared if seen.get(k))
        outcome.unexplained = sorted("%s %s.%s%s" % (k[0], k[3], k[4], " (%s)" % k[2] if k[2] else "")
                                     for k in declared if not seen.get(k) and not _explained(k, lines))
        return outcome
    finally:
        space.close()


def run_entry_in_tmp(entry: Dict[str, Any]) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="wf-conf-") as d:
        return run_entry(entry, d)


# ------------------------------------------------------------------ tosca-parser
def parser_verdict(entry: Dict[str, Any]) -> Tuple[str, str]:
    """(accept | reject, first line of its error) of OpenStack tosca-parser on the same entry.
    A CSAR folder is given as its entry definitions file: tosca-parser reads CSARs as zip files
    only.  The network is closed here: a remote import fails fast instead of hanging."""
    from toscaparser.tosca_template import ToscaTemplate
    path = entry_path(entry)
    if os.path.isdir(path):
        path = os.path.join(path, entry["definitions"])
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(2)
    logging.disable(logging.CRITICAL)       # it logs every problem as well as raising it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ToscaTemplate(path, parsed_params=entry.get("inputs") or {})
        return "accept", ""
    except Exception as exc:  # tosca-parser raises many unrelated classes: any is a rejection
        return "reject", _parser_line(exc)
    finally:
        socket.setdefaulttimeout(old)
        logging.disable(logging.NOTSET)


def _parser_line(exc: BaseException) -> str:
    """tosca-parser's first error line, without its "failed validation" header and traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("The input"):
        lines = lines[1:]
    return (lines[0] if lines else type(exc).__name__)[:300]
