# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a YAML file from a model's author within the bounds of limits.py.

``yaml.safe_load`` constructs nothing dangerous, but it trusts sizes: it reads a device or a FIFO
forever, recurses once per nesting level (RecursionError past ~900), and an alias is a shared
reference that the engine's copy into JSON expands (a "billion laughs" file of a few hundred bytes
becomes 10**9 nodes).  Here the file is stat'ed before it is opened, nesting and aliases are
counted while the document is composed, and the expanded size is computed from the composed
graph (each shared node counted once per reference) before anything is constructed.
"""
from __future__ import annotations

import os
import stat
from typing import Any, Dict, Tuple

from ..errors import ToscaError
from .. import limits


class _Bound(Exception):
    """A limit crossed while composing (a YAMLError would be reported as a syntax error)."""


def regular_file(file: str) -> os.stat_result:
    """``os.stat`` of ``file`` if it is a regular file; a folder, a FIFO or a device is one
    ToscaError (reading them would hang or never end)."""
    try:
        st = os.stat(file)
    except FileNotFoundError:
        raise ToscaError("file not found", file=file) from None
    except OSError as exc:
        raise ToscaError("cannot read: %s" % exc.strerror, file=file) from None
    if stat.S_ISDIR(st.st_mode):
        raise ToscaError("is a directory, not a TOSCA file", file=file)
    if not stat.S_ISREG(st.st_mode):
        raise ToscaError("not a regular file (%s): a model is read from a file" % _kind(st.st_mode), file=file)
    return st


def read_text(file: str, max_bytes: int = limits.MAX_FILE_BYTES) -> str:
    """The text of a regular file of at most ``max_bytes``; anything else is one ToscaError."""
    st = regular_file(file)
    if st.st_size > max_bytes:
        raise ToscaError("%d bytes, more than the %d MiB a model file may have" % (st.st_size, max_bytes >> 20),
                         file=file)
    try:
        # O_NONBLOCK: had the path been swapped for a FIFO since the stat, open would wait for a writer.
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ToscaError("cannot read: %s" % exc.strerror, file=file) from None
    if len(data) > max_bytes:
        raise ToscaError("more than the %d MiB a model file may have" % (max_bytes >> 20), file=file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToscaError("not UTF-8 text (byte %d)" % exc.start, file=file) from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def _loader_class() -> Any:
    import yaml  # here, not at the top: importing the engine must not need PyYAML

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that counts aliases and nesting while composing."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.wf_depth = 0
            self.wf_aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.wf_aliases += 1
                if self.wf_aliases > limits.MAX_YAML_ALIASES:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise _Bound("more than %d aliases (line %d)" % (limits.MAX_YAML_ALIASES, mark.line + 1))
                return super().compose_node(parent, index)
            self.wf_depth += 1
            try:
                if self.wf_depth > limits.MAX_YAML_DEPTH:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise _Bound("nested more than %d levels deep (line %d)" % (limits.MAX_YAML_DEPTH, mark.line + 1))
                return super().compose_node(parent, index)
            finally:
                self.wf_depth -= 1

    return BoundedLoader


def _expanded_size(root: Any) -> int:
    """Nodes of the document with every alias expanded, without expanding it: a shared node's
    size is computed once.  Nesting through aliases (or a recursive alias) is bounded too."""
    import yaml
    known: Dict[int, Tuple[int, int]] = {}     # id(node) -> (expanded nodes, expanded height)

    def deeper(node: Any) -> _Bound:
        return _Bound("nested more than %d levels deep once aliases are expanded (line %d)"
                      % (limits.MAX_YAML_DEPTH, node.start_mark.line + 1))

    def visit(node: Any, level: int) -> Tuple[int, int]:
        if level > limits.MAX_YAML_DEPTH:
            raise deeper(node)
        seen = known.get(id(node))
        if seen is not None:
            if level + seen[1] - 1 > limits.MAX_YAML_DEPTH:
                raise deeper(node)
            return seen
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        total, height = 1, 1
        for child in children:
            size, h = visit(child, level + 1)
            total += size
            height = max(height, h + 1)
            if total > limits.MAX_YAML_NODES:
                raise _Bound("more than %d nodes once aliases are expanded (line %d)"
                             % (limits.MAX_YAML_NODES, node.start_mark.line + 1))
        known[id(node)] = (total, height)
        return total, height

    return visit(root, 1)[0]


def load(text: str, file: str) -> Any:
    """The one YAML document of ``text`` (SafeLoader types), or one ToscaError."""
    import yaml
    loader = _loader_class()(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _Bound as exc:
        raise ToscaError("YAML %s" % exc, file=file) from None
    except RecursionError:
        raise ToscaError("YAML nested too deeply", file=file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is not None:
            raise ToscaError("invalid YAML at line %d, column %d: %s"
                             % (mark.line + 1, mark.column + 1, problem), file=file) from None
        raise ToscaError("invalid YAML: %s" % problem, file=file) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # SafeConstructor on a value that matches a tag's pattern but not its range
        # (a timestamp with month 13, a base-60 number too large): one line, not a traceback.
        raise ToscaError("invalid YAML value: %s" % str(exc).splitlines()[0], file=file) from None
