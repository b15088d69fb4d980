# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bounds a model must stay within, and the one grammar of the names it gives.

A model comes from whoever may upload one; the engine reads it on the uploader's machine and stores
it in a Space shared by every deployment.  Each bound below is checked *before* the work it bounds
(a file's size before reading it, the YAML tree's expanded size before copying it, the node
instances' count before creating them, a value's size before writing it), so a hostile model is
refused in one line, in milliseconds, with nothing written.  docs/validation.md lists them for users.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

from .errors import ToscaError
from .space.base import MAX_VALUE_BYTES as SPACE_MAX_VALUE_BYTES

# One YAML file of a model (the root file or an import).  Real service templates are kilobytes;
# pure-Python YAML parses about 1 MiB/s, so this also bounds the time spent reading one file.
MAX_FILE_BYTES = 4 * 1024 * 1024
# Nodes of a YAML document once its aliases are expanded (what the engine copies into JSON):
# a "billion laughs" document names a few dozen nodes but expands to 10**9.
MAX_YAML_NODES = 1000000
# Aliases (``*name``) in one YAML file.
MAX_YAML_ALIASES = 10000
# Nesting of collections in one YAML file (aliases expanded).  TOSCA needs about 12 levels
# (topology_template.node_templates.x.interfaces.Standard.create.inputs.v.get_property...);
# Python's recursion limit is 1000, and the engine's checks recurse over values.
MAX_YAML_DEPTH = 100
# Node instances of one deployment (templates times the product of default_instances along their
# HostedOn chain), and relationship instances (source instances times target instances).
DEFAULT_MAX_INSTANCES = 100000
MAX_INSTANCES_ENV = "WF_MAX_INSTANCES"
RELATIONSHIPS_PER_INSTANCE = 10
# One value stored in the Space: Consul refuses a value over 512 KiB (its ``kv_max_value_size``).
MAX_VALUE_BYTES = SPACE_MAX_VALUE_BYTES
# Names of templates, inputs, properties, workflows, models, instances, libraries.
MAX_NAME_LENGTH = 128
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
NAME_GRAMMAR = ("letters, digits, '_', '.', '-' (not first), at most %d characters, no '..'"
                % MAX_NAME_LENGTH)


def max_instances() -> int:
    """The node-instance bound: ``WF_MAX_INSTANCES`` in the uploader's (and instantiator's)
    environment, else 100,000.  The deployer sets it, not the model: the bound protects the
    machine and the Space from the model's author."""
    raw = os.environ.get(MAX_INSTANCES_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_INSTANCES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ToscaError("%s=%r: expected a positive integer" % (MAX_INSTANCES_ENV, raw))
    return value


def name_problem(name: object) -> Optional[str]:
    """Why ``name`` is not a valid name, or None.  Names become Space key segments
    (``ops/<template>``: an HTTP client normalizes ``..``), file names on workers (255 bytes) and
    parts of node instance ids (``<template>_<n>``, relationships ``<src>:<req>#<i>:<tgt>``)."""
    if not isinstance(name, str):
        return "not a string"
    if not name:
        return "empty"
    if len(name) > MAX_NAME_LENGTH:
        return "%d characters, more than %d" % (len(name), MAX_NAME_LENGTH)
    if ".." in name:
        return "contains '..'"
    if not NAME_RE.match(name):
        bad = next((c for c in name if not re.match(r"[A-Za-z0-9_.-]", c)), name[0])
        if bad in ".-" and name[0] == bad:
            return "starts with %r" % bad
        return "contains %r" % bad
    return None


def check_name(kind: str, name: object, file: Optional[str] = None, path: Optional[str] = None) -> str:
    """``name`` if it follows the grammar, else one line naming file, path, name and why."""
    why = name_problem(name)
    if why is not None:
        shown = name if not isinstance(name, str) or len(name) <= 60 else name[:60] + "..."
        raise ToscaError("%s name %r: %s (allowed: %s)" % (kind, shown, why, NAME_GRAMMAR),
                         file=file, path=path)
    return name  # type: ignore[return-value]


def check_model_names(model: object) -> None:
    """Template, input and property names of a loaded model, all problems at once."""
    from .errors import raise_problems
    problems = []
    file = getattr(model, "file", None)
    for name in sorted(getattr(model, "inputs", None) or {}, key=str):
        problems += _problem("input", name, file, "topology_template.inputs")
    for tname, tpl in sorted((getattr(model, "templates", None) or {}).items(), key=lambda kv: str(kv[0])):
        where = "topology_template.node_templates"
        tfile = getattr(tpl, "file", None) or file
        problems += _problem("node template", tname, tfile, where)
        if name_problem(tname) is None:
            for pname in sorted(getattr(tpl, "properties", None) or {}, key=str):
                problems += _problem("property", pname, tfile, "%s.%s.properties" % (where, tname))
    raise_problems(problems)


def check_workflow_names(names: object, file: Optional[str]) -> None:
    from .errors import raise_problems
    problems = []
    for name in sorted(names or (), key=str):  # type: ignore[call-overload]
        problems += _problem("workflow", name, file, "topology_template.workflows")
    raise_problems(problems)


def _problem(kind: str, name: object, file: Optional[str], path: str) -> List[ToscaError]:
    try:
        check_name(kind, name, file, path)
    except ToscaError as exc:
        return [exc]
    return []


def check_value_sizes(body: Dict[str, Any], templates: Dict[str, Any], file: Optional[str]) -> None:
    """Every value an upload writes fits in one Space value (Consul: 512 KiB), checked before the
    first write.  A property over the bound is named (file, path); else the stored value is."""
    from .space.base import dumps
    limit = MAX_VALUE_BYTES
    for tname in sorted(templates):
        tpl = templates[tname]
        tfile = getattr(tpl, "file", None) or file
        for section in ("properties", "attributes"):
            for pname, value in sorted((getattr(tpl, section, None) or {}).items()):
                size = len(dumps(value).encode("utf-8"))
                if size > limit:
                    raise ToscaError("value of %d KiB, more than the %d KiB the Space stores in one value"
                                     % (size >> 10, MAX_VALUE_BYTES >> 10), file=tfile,
                                     path="topology_template.node_templates.%s.%s.%s" % (tname, section, pname))
    stored = [("node template %s" % t, v) for t, v in sorted(body.get("templates", {}).items())]
    stored += [("workflow %s (its compiled rules)" % w, v) for w, v in sorted(body.get("rules", {}).items())]
    stored += [("node template %s (its operations and values)" % t,
                {"operations": (body.get("operations") or {}).get(t) or {}, "values": (body.get("values") or {}).get(t) or {}})
               for t in sorted(body.get("templates", {}))]
    stored.append(("inputs, outputs and sections", {k: body.get(k) for k in ("inputs", "outputs", "data_types", "sections", "reltypes")}))
    for what, value in stored:
        size = len(dumps(value).encode("utf-8"))
        if size > limit:
            raise ToscaError("%s: %d KiB once compiled, more than the %d KiB the Space stores in one value"
                             % (what, size >> 10, MAX_VALUE_BYTES >> 10), file=file)
