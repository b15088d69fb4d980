# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tuple space and its backends.  Backends are imported lazily by ``open_space`` so that the
embedded Space works without the Consul client installed, and the reverse.

The files: base.py (the contract), prefixed.py (a view under a key prefix), options.py (how to
reach a Space: options, environment variables, defaults), embedded*.py (SQLite), consul*.py and
tls.py (Consul)."""
from __future__ import annotations

from typing import Any

from ..errors import SpaceError
from .base import (MAX_TXN_OPS, MAX_VALUE_BYTES, VERBS, Entry, Op, Space, TxnResult, op_cas,
                   op_check_index, op_check_not_exists, op_check_session, op_delete,
                   op_delete_cas, op_delete_cas_present, op_delete_tree, op_get, op_get_tree,
                   op_lock, op_set, op_unlock)
from .options import DEFAULT_BACKEND, DEFAULT_PATH, SpaceOptions, embedded_path
from .prefixed import PrefixedSpace

__all__ = [
    "MAX_TXN_OPS", "MAX_VALUE_BYTES", "VERBS", "Entry", "Op", "Space", "TxnResult",
    "PrefixedSpace", "SpaceOptions", "open_space", "op_cas", "op_check_index", "op_check_not_exists",
    "op_check_session", "op_delete", "op_delete_cas", "op_delete_cas_present", "op_delete_tree",
    "op_get", "op_get_tree", "op_lock", "op_set", "op_unlock", "DEFAULT_PATH",
]


def open_space(backend: str = DEFAULT_BACKEND, **options: Any) -> Space:
    """Open a Space.  ``embedded``: ``path`` (else $WF_SPACE, else ./wfspace.db);
    ``consul``: options go to ConsulSpace.  ``prefix``: every key lives under it (PrefixedSpace),
    so several engines can share one store."""
    prefix = options.pop("prefix", None)
    backend = backend or DEFAULT_BACKEND
    space: Space
    if backend == "embedded":
        from .embedded import EmbeddedSpace
        path = embedded_path(options.pop("path", None))
        if options:
            raise SpaceError("embedded space: unknown option(s) %s" % ", ".join(sorted(options)))
        space = EmbeddedSpace(path=path)
    elif backend == "consul":
        from .consul import ConsulSpace  # written separately; needs the consul client
        space = ConsulSpace(**options)
    else:
        raise SpaceError("unknown space backend %r (expected 'embedded' or 'consul')" % backend)
    return PrefixedSpace(space, prefix) if prefix else space
