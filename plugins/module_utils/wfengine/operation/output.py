# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an operation leaves behind: its log file and its outputs file.

The whole output of an operation (stdout and stderr, interleaved) goes to a log file on the
worker host, ``<log_dir>/<run>/<node>/<operation>-<attempt>.log`` (each part made safe by
``safe_segment``); the result carries its tail, and the engine appends its own notes
(``[wfengine] killed: ...``) to it.

Outputs: ``WF_OUTPUTS`` (variable ``wf_outputs`` in playbooks) is the path of an empty file; what
the implementation writes there becomes attributes of the node the operation ran on, visible to
later operations through ``get_attribute``.  Either ``name=value`` lines (``#`` comments and
blank lines ignored; the value is the rest of the line, verbatim) or one JSON object.  An
operation's TOSCA 1.3 ``outputs`` mapping (``{port: [SELF, http_port]}``) renames an output;
unmapped outputs keep their name.  The outputs are also kept as they were written, per operation,
for ``get_operation_output``.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Dict

from ..errors import WfError
from ..operations import INPUT_NAME_RE, split_operation
from .executor import OperationCall
from .functions import outputs_key

log = logging.getLogger("wfengine.runner")

MAX_OUTPUTS_BYTES = 256 * 1024


class OutputsError(WfError):
    """The outputs file written by an implementation cannot be read."""


def parse_outputs(text: str) -> Dict[str, Any]:
    """The attributes in an outputs file: one JSON object, or ``name=value`` lines."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise OutputsError("outputs file: not a JSON object (%s)" % exc) from None
        if not isinstance(data, dict):
            raise OutputsError("outputs file: not a JSON object")
        return data
    out: Dict[str, Any] = {}
    for n, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not INPUT_NAME_RE.match(name):
            raise OutputsError("outputs file line %d: expected name=value with an identifier name, got %r"
                               % (n, line[:80]))
        out[name] = value
    return out


def read_attributes(call: OperationCall, spec: Dict[str, Any], outputs_file: str) -> Dict[str, Any]:
    """The attributes an operation that succeeded reports: its outputs file, renamed by its
    ``outputs`` mapping, and kept whole for ``get_operation_output``."""
    try:
        size = os.path.getsize(outputs_file)
        if size > MAX_OUTPUTS_BYTES:
            raise OutputsError("outputs file: %d bytes, more than the %d allowed" % (size, MAX_OUTPUTS_BYTES))
        with open(outputs_file, "r", encoding="utf-8") as fh:
            values = parse_outputs(fh.read())
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise OutputsError("outputs file: not UTF-8 text") from None
    mine = {"SELF"}
    if call.relationship is not None:
        mine.add("TARGET" if call.side == "target" else "SOURCE")
    attributes = dict(values)
    if values:
        # Kept per operation for get_operation_output (TOSCA 1.3 4.6.1), under the node's
        # attributes so that every worker reads them from the Space.
        iface, op = split_operation(call.operation)
        rel_id = call.relationship.get("id") if call.relationship is not None else None
        attributes[outputs_key(iface, op, rel_id)] = dict(values)
    for name, (entity, attr) in (spec.get("outputs") or {}).items():
        if name not in values:
            continue
        if entity not in mine:
            raise OutputsError("output %s maps to %s, but the operation runs on %s: only %s allowed"
                               % (name, entity, call.node["id"], " or ".join(sorted(mine))))
        attributes.pop(name, None)
        attributes[attr] = values[name]
    return attributes


def safe_segment(text: str) -> str:
    """A run, node or operation name as one segment of a log path."""
    text = re.sub(r"[^A-Za-z0-9_.@#:=+-]", "_", text or "_")
    return "_" + text if text.startswith(".") else text


def tail(log_file: str, tail_bytes: int) -> str:
    """The last ``tail_bytes`` of a log file, as text (what a result carries)."""
    try:
        with open(log_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return text.lstrip("\ufffd") if size > tail_bytes else text


def append_log(path: str, text: str, truncate: bool = False) -> None:
    """Add the engine's own note to a log file (or start it with one)."""
    try:
        with open(path, "w" if truncate else "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        log.warning("cannot write %s", path)
