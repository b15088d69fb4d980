# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key layout of the Space, in one place (docs/architecture.md explains it).

Everything a worker must find quickly sits under ``q/<run>/``, so one blocking query on ``q/``
tells every worker what is ready, what is locked and which runs have gone quiet:

    q/<run>/run             marker: the run is in progress (removed when the run is finalized)
    q/<run>/r/<node>        ready tuple: the node's fact must be (re)evaluated
    q/<run>/l/<node>        lock: held by a worker's session (deleted with the session)
    q/<run>/o/<id>          outbox: a batch of ready tuples still to put out (large fan-outs)
    q/<run>/h/<host>        host lock: operations of nodes on one host run one at a time
    q/<run>/cancel          the run was canceled: schedule nothing new
"""
from __future__ import annotations

from typing import Optional, Tuple

from . import limits

NAME_RE = limits.NAME_RE


def check_name(kind: str, name: str) -> str:
    """Names become key segments: refuse anything that could escape its folder (the one grammar
    of limits.py, docs/validation.md)."""
    return limits.check_name(kind, name)


def library(name: str) -> str:
    return "lib/%s" % name


LIBRARIES = "lib/"


def model_head(model: str) -> str:
    return model_tree(model) + "head"


def model_version(model: str, digest: str) -> str:
    return model_versions(model) + digest + "/"


def model_versions(model: str) -> str:
    return model_tree(model) + "v/"


def model_meta(model: str, digest: str) -> str:
    """Written last, exactly once per version: a version without it is incomplete (catalog.py)."""
    return model_version(model, digest) + "meta"


def model_pin(model: str, digest: str) -> str:
    """Rewritten by every instance made on the version: what tells a collection in progress that
    the version just got a user (catalog.collect_versions)."""
    return model_version(model, digest) + "pin"


def model_claim(model: str, digest: str, ident: str) -> str:
    """An upload writing the version's folder: gone if a collection removed the folder meanwhile."""
    return model_version(model, digest) + "claim/" + ident


def model_template(model: str, digest: str, template: str) -> str:
    return model_version(model, digest) + "tpl/" + template


def model_rules(model: str, digest: str, workflow: str) -> str:
    return model_version(model, digest) + "rules/" + workflow


def model_operations(model: str, digest: str, template: str) -> str:
    return model_version(model, digest) + "ops/" + template


def model_tree(model: str) -> str:
    return "models/%s/" % model


def model_instances(model: str) -> str:
    """Every instance of a model (``inst/<model>/<instance>/...``)."""
    return "inst/%s/" % model


def instance_head(model: str, instance: str) -> str:
    return instance_tree(model, instance) + "head"


def instance_tree(model: str, instance: str) -> str:
    return model_instances(model) + instance + "/"


def instance_generation(model: str, instance: str, gen: str) -> str:
    """One generation of an instance: its nodes (``n/``) and, for an update, its rules."""
    return instance_tree(model, instance) + "g/" + gen + "/"


def instance_rules(model: str, instance: str, gen: str) -> str:
    """The composite rules of an update generation (updates.py, runs.rules_key_of)."""
    return instance_generation(model, instance, gen) + "rules"


def instance_nodes(model: str, instance: str, gen: str) -> str:
    return instance_generation(model, instance, gen) + "n/"


def instance_node(model: str, instance: str, gen: str, node: str) -> str:
    return instance_nodes(model, instance, gen) + node


def instance_current(model: str, instance: str) -> str:
    return instance_tree(model, instance) + "current"


def instance_runs(model: str, instance: str) -> str:
    return instance_tree(model, instance) + "runs/"


def instance_run(model: str, instance: str, run: str) -> str:
    return instance_runs(model, instance) + run


def run(run_id: str) -> str:
    return "runs/%s" % run_id


QUEUE = "q/"
# What changes when the work to share out changes: a worker joins or leaves, a run starts or
# ends.  A worker that owns nothing in the running runs follows only this prefix (worker.py),
# instead of waking at every step of the others.  Under q/, so the others' blocking query on q/
# sees it too.
CONTROL = "q/~/"
# Live workers' registrations, held by their sessions (gone with them).
WORKERS = CONTROL + "workers/"
# The runs in progress (written with the run's marker, deleted when it ends).
LIVE = CONTROL + "runs/"
# Hosts served by a worker on them (``wfctl worker --serves``): <name>/<worker id>, kept when
# the worker dies (its hosts' operations wait for it), removed by ``wfctl serves --forget``.
SERVED = CONTROL + "served/"


def worker(worker_id: str) -> str:
    return WORKERS + worker_id


def served(name: str, worker_id: str) -> str:
    return "%s%s/%s" % (SERVED, name, worker_id)


def live(run_id: str) -> str:
    return LIVE + run_id


def queue(run_id: str) -> str:
    return "q/%s/" % run_id


def marker(run_id: str) -> str:
    return "q/%s/run" % run_id


def ready(run_id: str, node: str) -> str:
    return "q/%s/r/%s" % (run_id, node)


def lock(run_id: str, node: str) -> str:
    return "q/%s/l/%s" % (run_id, node)


# Node ids per outbox record (``outbox``): a larger fan-out is put in several records, each a
# value of its own in the Space (worker.py, batch.py, runs.py resume).
OUTBOX_CHUNK = 5000


def outbox(run_id: str, ident: str) -> str:
    return "q/%s/o/%s" % (run_id, ident)


def facts(run_id: str) -> str:
    return "facts/%s/" % run_id


def fact(run_id: str, node: str) -> str:
    return facts(run_id) + node


def traces(run_id: str) -> str:
    return "trace/%s/" % run_id


def trace(run_id: str, node: str, version: int) -> str:
    return "%s%s/%08d" % (traces(run_id), node, version)


def trace_batch(run_id: str, tag: str, seq: int) -> str:
    """Trace record of one batch commit (events of several nodes, in causal order)."""
    return "%s~%s/%08d" % (traces(run_id), tag, seq)


def trace_stale(run_id: str, node: str, worker: str, stamp: int) -> str:
    """Trace record of an operation a worker ran after it had lost the node (a stale execution,
    worker.py): written without a lock, so named by worker and time, never by fact version."""
    return "%s%s/~stale-%s-%d" % (traces(run_id), node, worker.replace("/", "_"), stamp)


def log_stale(run_id: str, node: str, worker: str, stamp: int) -> str:
    return "%s%s/~stale-%s-%d" % (logs(run_id), node, worker.replace("/", "_"), stamp)


def host_lock(run_id: str, host: str) -> str:
    return "q/%s/h/%s" % (run_id, host)


def cancel(run_id: str) -> str:
    return "q/%s/cancel" % run_id


def is_ready(key: str) -> bool:
    """Whether a key of ``q/<run>/`` is a ready tuple."""
    return "/r/" in key


def is_lock(key: str) -> bool:
    """Whether a key of ``q/<run>/`` is a node's lock (a step in flight)."""
    return "/l/" in key


def is_host_lock(key: str) -> bool:
    """Whether a key of ``q/<run>/`` is a host lock (an operation in flight on that host)."""
    return "/h/" in key


def logs(run_id: str) -> str:
    return "logs/%s/" % run_id


def log(run_id: str, node: str, version: int) -> str:
    return "%s%s/%08d" % (logs(run_id), node, version)


def attributes(model: str, instance: str, node: str) -> str:
    return instance_tree(model, instance) + "attrs/" + node


def known_hosts(model: str, instance: str) -> str:
    """Host keys of a deployment's remote hosts (ssh.py): deleted with the instance."""
    return instance_tree(model, instance) + "known_hosts"


def parse_queue_key(key: str) -> Optional[Tuple[str, str, str]]:
    """``q/<run>/<kind>/<name>`` -> (run, kind, name); the marker gives (run, "run", "")."""
    parts = key.split("/", 3)
    if len(parts) == 3 and parts[0] == "q" and parts[2] in ("run", "cancel"):
        return parts[1], parts[2], ""
    if len(parts) == 4 and parts[0] == "q":
        return parts[1], parts[2], parts[3]
    return None
