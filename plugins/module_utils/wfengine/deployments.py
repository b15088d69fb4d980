# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment instances of a model in the Space: their node instances, one key per node.

Like models, an instance's nodes are written under a generation folder that becomes visible only
when ``inst/<model>/<instance>/head`` points at it.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional

from . import catalog, keys
from .errors import Conflict, NotFound, SpaceDataError
from .operation.function_eval import input_values
from .instances import expand, validate_node
from .records import InstanceHead, NodeInstance, Nodes, validate_instance_head
from .space.base import Entry, Space, op_cas, op_check_index, op_delete, op_delete_tree, op_set
from .tosca.checks import check_input_values
from .tosca.model import NodeTemplate
from .tosca.scaling import apply_counts, apply_inputs
from .tosca.sensitive import check_given_inputs


class _TemplatesModel:
    """The part of a Model that ``expand`` needs, rebuilt from stored templates and rules."""

    def __init__(self, templates: Dict[str, Any], rel_types: Dict[str, Any]):
        self.templates = templates
        self.relationship_types = rel_types


class _RelKind:
    def __init__(self, ancestors: Iterable[str]) -> None:
        self._ancestors = set(ancestors)

    def is_a(self, name: str) -> bool:
        return name in self._ancestors


def create_instance(space: Space, model: str, instance: str, check: bool = False,
                    inputs: Optional[Dict[str, Any]] = None,
                    counts: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """Instantiate ``model`` as ``instance`` with deployment ``inputs`` (over the model's
    defaults) and ``counts`` (instances per host of templates, over the model's; kept with the
    instance, as ``wfctl scale`` keeps them); an existing instance is left as it is."""
    keys.check_name("instance", instance)
    head = catalog.model_head(space, model)
    meta_entry = catalog.version_entry(space, model, head)
    meta = meta_entry.value
    values = input_values(meta.get("inputs") or {}, inputs)
    where = "instance %s/%s" % (model, instance)
    check_given_inputs(meta.get("inputs") or {}, inputs, where)
    check_input_values(meta.get("inputs") or {}, inputs or {}, meta.get("data_types") or {}, where)
    existing = space.get(keys.instance_head(model, instance))
    if existing is not None:
        v = existing.value if isinstance(existing.value, dict) else {}
        return {"model": model, "instance": instance, "changed": False, "nodes": v.get("nodes", 0),
                "model_digest": v.get("model_digest"), "up_to_date": v.get("model_digest") == head["digest"]}
    raw = catalog.read_templates(space, model, head["digest"])
    missing = sorted(set(head.get("templates") or []) - set(raw))
    if missing:
        raise SpaceDataError("model %s: version %s is incomplete in the Space (no template %s); upload the "
                             "model again to restore it" % (model, head["digest"], ", ".join(missing)))
    templates = {n: NodeTemplate.from_json(v) for n, v in raw.items()}
    apply_inputs(templates, values, where)     # counts read from inputs (get_input in scalable)
    apply_counts(templates, counts or {}, where)
    reltypes = meta.get("reltypes") or {}
    rel_types = {name: _RelKind(anc) for name, anc in reltypes.items()}
    nodes = expand(_TemplatesModel(templates, rel_types))
    result = {"model": model, "instance": instance, "changed": True, "nodes": len(nodes),
              "model_digest": head["digest"], "up_to_date": True}
    if check:
        return result
    gen = uuid.uuid4().hex[:12]
    writes = [op_set(keys.instance_node(model, instance, gen, nid), node) for nid, node in nodes.items()]
    try:
        space.write_chunked(writes)
        value = {"model": model, "instance": instance, "model_digest": head["digest"], "generation": gen,
                 "nodes": len(nodes), "created": time.time(), "inputs": values}
        if counts:
            value["counts"] = dict(counts)
        _point(space, model, instance, head["digest"], value, meta_entry)
    except Exception:
        try:
            space.delete_tree(keys.instance_generation(model, instance, gen))
        finally:
            raise
    return result


def _point(space: Space, model: str, instance: str, digest: str, value: Dict[str, Any], meta: Entry) -> None:
    """Create the instance's head on a version that still exists (its ``meta`` unchanged), and
    rewrite the version's pin in the same transaction: a collection that read the pin before
    this fails instead of deleting the version (catalog.collect_versions)."""
    head_key = keys.instance_head(model, instance)
    meta_key = keys.model_meta(model, digest)
    for dummy in range(catalog.MAX_UPLOAD_ROUNDS):
        res = space.txn([op_cas(head_key, value, 0), op_check_index(meta_key, meta.index),
                         op_set(keys.model_pin(model, digest), {"instance": instance, "at": time.time()})])
        if res.ok:
            return
        if head_key in res.failed:
            raise Conflict("instance %s/%s was created concurrently" % (model, instance))
        again = space.get(meta_key)
        if again is None:
            raise SpaceDataError("model %s: version %s was removed while instance %s was created (the model "
                                 "changed meanwhile); retry" % (model, digest, instance))
        meta = again
    raise Conflict("instance %s/%s: version %s of the model kept changing; retry" % (model, instance, digest))


def sensitive_inputs(space: Space, model: str) -> List[str]:
    """The model's inputs defined ``sensitive: true``: a module hides what it was given for them
    (``no_log``) before refusing a plain value."""
    head = catalog.model_head(space, model)
    defs = catalog.read_meta(space, model, head["digest"]).get("inputs") or {}
    return sorted(n for n, d in defs.items() if isinstance(d, dict) and d.get("sensitive") is True)


def instance_head(space: Space, model: str, instance: str) -> InstanceHead:
    keys.check_name("model", model)
    keys.check_name("instance", instance)
    e = space.get(keys.instance_head(model, instance))
    if e is None:
        if space.get(keys.model_head(model)) is None:
            raise NotFound("unknown model %s" % model)
        raise NotFound("unknown instance %s of model %s" % (instance, model))
    return validate_instance_head(e.key, e.value)


def read_nodes(space: Space, model: str, instance: str, head: Mapping[str, Any]) -> Nodes:
    prefix = keys.instance_nodes(model, instance, head["generation"])
    return nodes_of(prefix, space.list(prefix))


def nodes_of(prefix: str, entries: List[Entry]) -> Nodes:
    """Node instances (id -> validated record) from the entries listed under ``prefix``."""
    return {e.key[len(prefix):]: validate_node(e.key, e.value) for e in entries}


def read_node(space: Space, model: str, instance: str, gen: str, node: str) -> NodeInstance:
    key = keys.instance_node(model, instance, gen, node)
    e = space.get(key)
    if e is None:
        raise SpaceDataError("%s: node instance missing" % key)
    return validate_node(key, e.value)


def delete_instance(space: Space, model: str, instance: str, check: bool = False) -> Dict[str, Any]:
    """Remove an instance and the records of its runs (refused while a run is in progress)."""
    keys.check_name("model", model)
    keys.check_name("instance", instance)
    if space.get(keys.instance_head(model, instance)) is None:
        return {"model": model, "instance": instance, "changed": False}
    cur = space.get(keys.instance_current(model, instance))
    if cur is not None:
        raise Conflict("instance %s/%s has a run in progress (%s); cancel it or wait"
                       % (model, instance, (cur.value or {}).get("run")))
    if not check:
        runs = [k.rsplit("/", 1)[1] for k in space.keys(keys.instance_runs(model, instance))]
        ops = []
        for r in runs:
            ops += [op_delete_tree(keys.facts(r)), op_delete_tree(keys.traces(r)),
                    op_delete_tree(keys.logs(r)), op_delete(keys.run(r)), op_delete_tree(keys.queue(r))]
        ops.append(op_delete_tree(keys.instance_tree(model, instance)))
        space.write_chunked(ops)
        catalog.collect_versions(space, model)     # the version only this instance used
    return {"model": model, "instance": instance, "changed": True}
