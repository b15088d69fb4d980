# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's public face, used by ``wfctl`` and by the Ansible modules alike.

Every function takes an open Space and returns JSON-ready dicts; every failure is a ``WfError``
whose text is one line naming what is wrong.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from . import catalog, deployments, keys, runs
from .errors import NotFound, WfError
from .executor import Executor
from .space import open_space as _open_backend
from .space.base import Space, op_delete_tree

# Re-exported operations (the rest of this module adds what needs more than one layer).
upload_library = catalog.upload_library
remove_library = catalog.remove_library
upload_model = catalog.upload_model
remove_model = catalog.remove_model
compile_model = catalog.compile_model
create_instance = deployments.create_instance
delete_instance = deployments.delete_instance
status = runs.status
trace = runs.trace
instance_runs = runs.instance_runs
wait_run = runs.wait_run
summary = runs.summary
cancel_run = runs.cancel_run
resume_run = runs.resume_run
logs = runs.logs


@dataclass
class SpaceOptions:
    """How to reach the Space: the same options for wfctl, workers and modules."""

    backend: str = "embedded"
    path: Optional[str] = None                # embedded file (env WF_SPACE)
    url: Optional[str] = None                 # Consul address (env CONSUL_HTTP_ADDR)
    token: Optional[str] = None               # env CONSUL_HTTP_TOKEN
    ca_file: Optional[str] = None             # env CONSUL_CACERT
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    verify: bool = True
    prefix: str = "wf/"
    datacenter: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


def open_space(opts: SpaceOptions) -> Space:
    if opts.backend == "embedded":
        path = opts.path or os.environ.get("WF_SPACE") or "wfspace.db"
        return _open_backend("embedded", path=path, prefix=opts.prefix)  # extra: consul only
    if opts.backend == "consul":
        return _open_backend("consul", url=opts.url, token=opts.token, ca_file=opts.ca_file,
                             client_cert=opts.client_cert, client_key=opts.client_key,
                             verify=opts.verify, prefix=opts.prefix, datacenter=opts.datacenter,
                             **opts.extra)
    raise WfError("unknown backend %r (embedded or consul)" % opts.backend)


def start_workflow(space: Space, workflow: str, model: str, instance: str,
                   resume: bool = False, max_retries: int = 0) -> Dict[str, Any]:
    """Start a run (or, with ``resume``, continue the last failed one from its failed steps);
    refused while another run of the instance is in progress."""
    if resume:
        return runs.resume_run(space, workflow, model, instance)
    return runs.start_run(space, workflow, model, instance, max_retries=max_retries)


def last_run(space: Space, model: str, instance: str,
             workflow: Optional[str] = None) -> Optional[Dict[str, Any]]:
    recs = runs.instance_runs(space, model, instance)
    if workflow:
        recs = [r for r in recs if r["workflow"] == workflow]
    return recs[-1] if recs else None


def run_with_local_workers(opts: SpaceOptions, space: Space, run_id: str, workers: int,
                           timeout: Optional[float] = None, threads: int = 8,
                           executor: Optional[Executor] = None,
                           progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                           ssh_options: Optional[Any] = None) -> Dict[str, Any]:
    """Run ``workers`` workers in this process until the run ends (embedded ``--workers N``)."""
    from .worker import run_workers
    stop = threading.Event()
    run_workers(lambda: open_space(opts), workers, stop, threads=threads, executor=executor,
                ssh_options=ssh_options)
    try:
        return runs.wait_run(space, run_id, timeout=timeout, progress=progress)
    finally:
        stop.set()


def served_hosts(space: Space) -> List[Dict[str, Any]]:
    """Claims of ``wfctl worker --serves``: name, worker, since, whether that worker is alive."""
    alive = {k[len(keys.WORKERS):] for k in space.keys(keys.WORKERS)}
    out = []
    for e in space.list(keys.SERVED):
        name, dummy, wid = e.key[len(keys.SERVED):].rpartition("/")
        since = e.value.get("since") if isinstance(e.value, dict) else None
        out.append({"name": name, "worker": wid, "alive": wid in alive, "since": since})
    return sorted(out, key=lambda r: (r["name"], r["worker"]))


def forget_served(space: Space, name: str) -> int:
    """Remove every claim on ``name``; returns how many there were."""
    found = space.keys(keys.SERVED + name + "/")
    if found:
        space.txn([op_delete_tree(keys.SERVED + name + "/")])
    return len(found)


def workflows_of(space: Space, model: str) -> List[str]:
    return list(catalog.model_head(space, model).get("workflows", []))


__all__ = ["SpaceOptions", "open_space", "start_workflow", "last_run", "run_with_local_workers",
           "upload_library", "remove_library", "upload_model", "remove_model", "compile_model",
           "create_instance", "delete_instance", "status", "trace", "instance_runs", "wait_run",
           "summary", "workflows_of", "served_hosts", "forget_served", "cancel_run", "resume_run", "logs", "NotFound", "WfError"]
