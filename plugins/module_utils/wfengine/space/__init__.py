# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tuple space and its backends.  Backends are imported lazily by ``open_space`` so that the
embedded Space works without the Consul client installed, and the reverse."""
from __future__ import annotations

import os
from typing import Any

from ..errors import SpaceError
from .base import (MAX_TXN_OPS, MAX_VALUE_BYTES, VERBS, Entry, Op, Space, TxnResult, op_cas,
                   op_check_index, op_check_not_exists, op_check_session, op_delete,
                   op_delete_cas, op_delete_cas_present, op_delete_tree, op_get, op_get_tree,
                   op_lock, op_set, op_unlock)
from .prefixed import PrefixedSpace

__all__ = [
    "MAX_TXN_OPS", "MAX_VALUE_BYTES", "VERBS", "Entry", "Op", "Space", "TxnResult",
    "PrefixedSpace", "open_space", "op_cas", "op_check_index", "op_check_not_exists",
    "op_check_session", "op_delete", "op_delete_cas", "op_delete_cas_present", "op_delete_tree",
    "op_get", "op_get_tree", "op_lock", "op_set", "op_unlock",
]

DEFAULT_PATH = "./wfspace.db"


def open_space(backend: str = "embedded", **options: Any) -> Space:
    """Open a Space.  ``embedded``: ``path`` (else $WF_SPACE, else ./wfspace.db);
    ``consul``: options go to ConsulSpace.  ``prefix``: every key lives under it (PrefixedSpace),
    so several engines can share one store."""
    prefix = options.pop("prefix", None)
    backend = backend or "embedded"
    space: Space
    if backend == "embedded":
        from .embedded import EmbeddedSpace
        path = options.pop("path", None) or os.environ.get("WF_SPACE") or DEFAULT_PATH
        if options:
            raise SpaceError("embedded space: unknown option(s) %s" % ", ".join(sorted(options)))
        space = EmbeddedSpace(path=path)
    elif backend == "consul":
        from .consul import ConsulSpace  # written separately; needs the consul client
        space = ConsulSpace(**options)
    else:
        raise SpaceError("unknown space backend %r (expected 'embedded' or 'consul')" % backend)
    return PrefixedSpace(space, prefix) if prefix else space
