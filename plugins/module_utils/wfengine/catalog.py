# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Component libraries and application models in the Space (what an upload of a model compiles and
checks before it stores anything: ``model_compiler.py``).

Uploads validate everything first (parse, types, rules, deadlocks) and write nothing on error.  A
model is stored per template and per workflow (Consul caps a value at 512 KiB) under a version
folder named by its digest; the version becomes visible only when the final transaction points
``models/<name>/head`` at it, so a reader never sees half a model.

Versions are content-addressed, so concurrent uploads may write the same folder; none of them
ever deletes it.  A version is complete once its ``meta`` exists: written exactly once, last, in
a transaction that also checks the uploader's claim (a key in the folder), and the head moves in
a transaction that checks ``meta`` at that index.  ``collect_versions`` alone deletes folders,
those no head and no instance points at, each in a transaction checking the head and the
version's ``meta`` and ``pin`` as it read them; an upload whose folder it removed sees its claim
or ``meta`` fail and writes the folder again, and an instance made on a version rewrites its pin
in the transaction that creates it.  So a head or an instance never points at a missing version.
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from . import keys, operations
from .errors import Conflict, NotFound, SpaceDataError, ToscaError
from .model_compiler import compile_source, digest_of
from .records import ModelHead, validate_model_head
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .rules import validate_rule_set as validate_rule_set  # runs.py reads it from here
# pylint: enable=useless-import-alias,unused-import
from .space.base import (Entry, Op, Space, op_cas, op_check_index, op_check_not_exists, op_delete,
                         op_delete_tree, op_get, op_get_tree, op_set)
from .operation import artifacts
from .tosca.csar import model_source, source_kind
from .tosca.templates import load_library


# Rounds of an upload whose folder a concurrent collection removed while it was written.
MAX_UPLOAD_ROUNDS = 8


# ------------------------------------------------------------------ libraries
def libraries(space: Space) -> List[Dict[str, Any]]:
    """Raw types of every uploaded library, oldest first (later ones may derive from earlier)."""
    libs = []
    for e in space.list(keys.LIBRARIES):
        v = e.value
        if not isinstance(v, dict) or not isinstance(v.get("types"), dict):
            raise SpaceDataError("%s: not a library" % e.key)
        libs.append(v)
    libs.sort(key=lambda v: (v.get("uploaded", 0), v.get("name", "")))
    return libs


def upload_library(space: Space, path: str, name: Optional[str] = None,
                   check: bool = False) -> Dict[str, Any]:
    """Validate and store a component library; same content again changes nothing."""
    name = keys.check_name("library", name or os.path.splitext(os.path.basename(path))[0])
    others = [lib["types"] for lib in libraries(space) if lib.get("name") != name]
    types = load_library(path, others)
    digest = digest_of(types)
    entry = space.get(keys.library(name))
    type_names = sorted(n for section in ("node_types", "relationship_types")
                        for n in (types.get(section) or {}))
    result = {"name": name, "digest": digest, "types": type_names, "changed": False}
    if entry is not None and isinstance(entry.value, dict) and entry.value.get("digest") == digest:
        return result
    result["changed"] = True
    if not check:
        value = {"name": name, "file": os.path.abspath(path), "digest": digest, "types": types,
                 "uploaded": time.time()}
        if not space.cas(keys.library(name), value, entry.index if entry else 0):
            raise ToscaError("library %s changed while uploading; retry" % name)
    return result


def remove_library(space: Space, name: str, check: bool = False) -> Dict[str, Any]:
    name = keys.check_name("library", name)
    entry = space.get(keys.library(name))
    if entry is None:
        return {"name": name, "changed": False}
    if not check:
        space.delete(keys.library(name))
    return {"name": name, "changed": True}


# ------------------------------------------------------------------ models
def compile_model(path: str, space: Optional[Space] = None,
                  libs: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Parse and check a model (a YAML file, a folder or a CSAR archive); returns what would be
    stored.  Raises on any problem."""
    if libs is None:
        libs = [lib["types"] for lib in libraries(space)] if space is not None else []
    with model_source(path) as (entry, root):
        # By the kind of source, never by comparing path spellings: ``app.yaml`` given relative
        # once shipped its whole folder (credentials included) because it differed from ``entry``.
        return compile_source(path, entry, root, source_kind(path) == "file", libs)


def _upload_result(name: str, path: str, compiled: Dict[str, Any],
                   before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """What ``upload_model`` returns (``changed`` as far as the head tells)."""
    digest = compiled["digest"]
    return {"name": name, "digest": digest, "changed": before is None or before.get("digest") != digest,
            "templates": sorted(compiled["body"]["templates"]),
            "workflows": sorted(compiled["body"]["rules"]),
            "instances": compiled["instances"],
            "warnings": list(compiled["warnings"]),
            # What goes into the Space besides the compiled model: the user checks no secret is in it.
            "files": [f.path for f in compiled["files"]], "left_out": list(compiled["left_out"]),
            "diff": {"before": (before or {}).get("source", ""), "after": compiled["source"],
                     "before_header": "%s (stored)" % name, "after_header": path}}


def _version_writes(name: str, digest: str, compiled: Dict[str, Any]) -> List[Op]:
    """The version folder's values but ``meta``: templates, rules, operations, files."""
    body = compiled["body"]
    writes = [op_set(keys.model_template(name, digest, t), v) for t, v in body["templates"].items()]
    writes += [op_set(keys.model_rules(name, digest, wf), rs) for wf, rs in body["rules"].items()]
    writes += [op_set(keys.model_operations(name, digest, t),
                      {"operations": body["operations"].get(t) or {}, "values": body["values"].get(t) or {}})
               for t in body["templates"]]
    writes += artifacts.store_ops(name, digest, compiled["files"])
    return writes


def _meta_value(body: Dict[str, Any], result: Dict[str, Any]) -> Dict[str, Any]:
    return {"inputs": body["inputs"], "outputs": body["outputs"], "data_types": body.get("data_types") or {},
            "reltypes": body["reltypes"], "settings": body["settings"],
            "warnings": result["warnings"], "sections": body.get("sections") or {},
            # templates whose nodes run operations: their runs are spread over the workers
            "effectful": operations.implemented_templates(body["operations"])}


def _head_value(name: str, path: str, compiled: Dict[str, Any], result: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "digest": compiled["digest"], "file": os.path.abspath(path),
            "templates": result["templates"], "workflows": result["workflows"],
            "instances": compiled["instances"], "source": compiled["source"],
            "warnings": result["warnings"], "uploaded": time.time()}


def _complete_version(space: Space, name: str, digest: str, writes: List[Op],
                      meta: Dict[str, Any]) -> Optional[Entry]:
    """The version's ``meta`` entry: already there, or written now after the folder under a
    claim; None when a collection removed the folder meanwhile (go round)."""
    meta_key = keys.model_meta(name, digest)
    stored = space.get(meta_key)
    if stored is not None:
        return stored
    claim = keys.model_claim(name, digest, uuid.uuid4().hex[:12])
    claim_index = space.put(claim, {"since": time.time()})
    space.write_chunked(writes)
    # Complete only if no collection removed the folder while it was written (the claim
    # went with it); meta in a transaction of its own: with the head's source, one
    # transaction could exceed Consul's body limit.
    done = space.txn([op_check_index(claim, claim_index), op_delete(claim), op_cas(meta_key, meta, 0)])
    if done.ok:
        return Entry(meta_key, meta, done.index)
    space.delete(claim)
    return space.get(meta_key)


def _lost_head(space: Space, name: str, digest: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """The head moved while uploading: done if a concurrent upload of the same content moved
    it, a Conflict otherwise."""
    head_key = keys.model_head(name)
    now = space.get(head_key)
    if (now is not None and isinstance(now.value, dict) and now.value.get("digest") == digest
            and space.get(keys.model_meta(name, digest)) is not None):
        result["changed"] = False     # a concurrent upload of the same content did it
        return result
    collect_versions(space, name)     # our folder, unless someone points at it
    raise Conflict("model %s changed while uploading (now version %s); retry"
                   % (name, (now.value or {}).get("digest") if now is not None and isinstance(now.value, dict)
                      else "none"))


def upload_model(space: Space, path: str, name: str, check: bool = False) -> Dict[str, Any]:
    """Validate and store a model under ``name``.  Returns ``changed`` and a text diff.

    Safe against concurrent uploads (see the module docstring): the version folder is written
    under a claim, its ``meta`` written once and last, and the head moved in the same transaction
    that checks both; nothing here ever deletes a folder, ``collect_versions`` does."""
    keys.check_name("model", name)
    compiled = compile_model(path, space)
    head_key = keys.model_head(name)
    head = space.get(head_key)
    before = head.value if head is not None and isinstance(head.value, dict) else None
    digest = compiled["digest"]
    result = _upload_result(name, path, compiled, before)
    meta_key = keys.model_meta(name, digest)
    if not result["changed"]:
        if check or space.get(meta_key) is not None:
            return result
        # The head names this version but it is gone (a store damaged before collections were
        # safe): the same content again repairs it.
        result["changed"] = True
        result["repaired"] = True
    if check:
        return result
    writes = _version_writes(name, digest, compiled)
    meta = _meta_value(compiled["body"], result)
    head_op = op_cas(head_key, _head_value(name, path, compiled, result), head.index if head else 0)
    for dummy in range(MAX_UPLOAD_ROUNDS):
        stored = _complete_version(space, name, digest, writes, meta)
        if stored is None:
            continue
        # Point at the complete version, provided no collection removed it meanwhile.
        res = space.txn([head_op, op_check_index(meta_key, stored.index)])
        if res.ok:
            collect_versions(space, name)
            return result
        if head_key in res.failed:
            return _lost_head(space, name, digest, result)
        # The claim or the meta failed: a collection removed the folder while it was written, or
        # a concurrent upload of the same content completed it first.  Go round.
    raise Conflict("model %s: version %s was collected %d times while uploading; retry"
                   % (name, digest, MAX_UPLOAD_ROUNDS))


def collect_versions(space: Space, name: str) -> List[str]:
    """Delete the versions of model ``name`` that neither its head nor any instance points at,
    complete or not (an upload in progress whose folder goes notices, its claim gone, and writes
    it again).  Runs after every upload that moved the head or lost its race, after
    ``delete_instance`` and in ``remove_model``.  Returns the digests deleted.

    Each deletion is one transaction that checks the head, the version's ``meta`` and ``pin`` at
    the indexes read before listing the instances: a head moved to the version meanwhile, or an
    instance made on it (which rewrites the pin), makes it fail and the version stays."""
    prefix = keys.model_versions(name)
    digests = sorted({k[len(prefix):].split("/", 1)[0] for k in space.keys(prefix)})
    if not digests:
        return []
    head_key = keys.model_head(name)
    guards = space.get_many([head_key] + [keys.model_meta(name, d) for d in digests]
                            + [keys.model_pin(name, d) for d in digests])
    head = guards[head_key]
    used = set()
    if head is not None and isinstance(head.value, dict):
        used.add(head.value.get("digest"))
    # Instances listed after the pins were read (see above).
    inst_prefix = keys.model_instances(name)
    heads = [k for k in space.keys(inst_prefix) if k.count("/") == 3 and k.endswith("/head")]
    for e in space.get_many(heads).values():
        if e is not None and isinstance(e.value, dict):
            used.add(e.value.get("model_digest"))
            # the version an update came from: its obsolete nodes' operations, while it runs
            # and for a resume after it failed (updates.py)
            used.add(e.value.get("previous_digest"))
    deleted = []
    for d in digests:
        if d in used:
            continue
        ops = []
        for key in (head_key, keys.model_meta(name, d), keys.model_pin(name, d)):
            e = guards[key]
            ops.append(op_check_not_exists(key) if e is None else op_check_index(key, e.index))
        ops.append(op_delete_tree(keys.model_version(name, d)))
        if space.txn(ops).ok:
            deleted.append(d)
    return deleted


def version_entry(space: Space, name: str, head: ModelHead) -> Entry:
    """The ``meta`` entry of the version ``head`` points at, checked complete; an error naming
    the model and the digest otherwise (never an empty model)."""
    digest = head["digest"]
    e = space.get(keys.model_meta(name, digest))
    if e is None or not isinstance(e.value, dict):
        raise SpaceDataError("model %s: version %s is missing from the Space (its head points at it); "
                             "upload the model again to restore it" % (name, digest))
    return e


def model_head(space: Space, name: str) -> ModelHead:
    keys.check_name("model", name)
    head = space.get(keys.model_head(name))
    if head is None:
        raise NotFound("unknown model %s" % name)
    return validate_model_head(head.key, head.value)


def unknown_workflow(space: Space, model: str, workflow: str) -> NotFound:
    """The error for a workflow the model does not define, naming those it does."""
    known = model_head(space, model).get("workflows", [])
    return NotFound("model %s defines no workflow %s (known: %s)"
                    % (model, workflow, ", ".join(known)))


def read_templates(space: Space, name: str, digest: str) -> Dict[str, Dict[str, Any]]:
    prefix = keys.model_template(name, digest, "")
    out = {}
    for e in space.list(prefix):
        if not isinstance(e.value, dict) or not isinstance(e.value.get("type"), str):
            raise SpaceDataError("%s: not a node template" % e.key)
        out[e.key[len(prefix):]] = e.value
    return out


def read_rules(space: Space, name: str, digest: str, workflow: str) -> Optional[Dict[str, Any]]:
    e = space.get(keys.model_rules(name, digest, workflow))
    return None if e is None else validate_rule_set(workflow, e.value)


def read_operations(space: Space, name: str, digest: str, template: str) -> Dict[str, Any]:
    """``{"operations": compiled operations, "values": properties/attributes}`` of a template."""
    key = keys.model_operations(name, digest, template)
    e = space.get(key)
    if e is None:
        return {"operations": {}, "values": {}}
    if not isinstance(e.value, dict) or not isinstance(e.value.get("operations"), dict):
        raise SpaceDataError("%s: not compiled operations" % key)
    return e.value


def read_meta(space: Space, name: str, digest: str) -> Dict[str, Any]:
    return _meta(space.get(keys.model_meta(name, digest)))


def _meta(e: Optional[Entry]) -> Dict[str, Any]:
    return e.value if e is not None and isinstance(e.value, dict) else {}


def read_rules_and_meta(space: Space, name: str, digest: str, workflow: str,
                        tree: str) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any], List[Entry]]:
    """``read_rules``, ``read_meta`` and every entry under ``tree`` (start_run: the instance's
    nodes) in one read: starting a run is on the path of every workflow."""
    rules_key = keys.model_rules(name, digest, workflow)
    meta_key = keys.model_meta(name, digest)
    got = space.txn([op_get(rules_key), op_get(meta_key), op_get_tree(tree)])
    e = got.entries.get(rules_key)
    return ((None if e is None else validate_rule_set(workflow, e.value)),
            _meta(got.entries.get(meta_key)), got.trees.get(tree, []))


def remove_model(space: Space, name: str, check: bool = False) -> Dict[str, Any]:
    keys.check_name("model", name)
    head = space.get(keys.model_head(name))
    if head is None:
        return {"name": name, "changed": False}
    if space.keys(keys.model_instances(name)):
        raise Conflict("model %s still has instances; remove them first" % name)
    if not check:
        # The head goes first (checked: an upload moving it meanwhile keeps the model), then every
        # version that no instance points at: one made concurrently keeps its version.
        if not space.txn([op_check_index(keys.model_head(name), head.index), op_delete(keys.model_head(name))]).ok:
            raise Conflict("model %s changed while removing it; retry" % name)
        collect_versions(space, name)
    return {"name": name, "changed": True}
