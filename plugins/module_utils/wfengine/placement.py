# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an operation runs: on the root host of the node whose sequence holds it.

TOSCA 1.3 (3.6.15.1 ``operation_host``, default SELF; 5.8.4 Configure) and the orchestrators
users compare us with (Yorc, xOpera, Alien4Cloud) run a node's operations on the machine that
hosts it, the end of its HostedOn chain.  A relationship operation belongs to one end, by its
name: the ``*_source`` operations and ``add_target``/``remove_target``/``target_changed`` (which
notify the source) run on the source's root host; ``*_target``, ``add_source`` and
``remove_source`` on the target's, whichever end's sequence the weaving put them in
(``operation_side``: the worker makes the call for that end).  ``operation_host: SOURCE|TARGET`` moves a
relationship operation to the other end, ``ORCHESTRATOR`` runs it on the worker.

A root host is *remote* when it has an address: its ``public_address`` attribute, else
``private_address`` (set in the template, from an input, or by an earlier operation's outputs),
or ``ansible_host`` in the worker's inventory.  Without one, the operation runs on the worker, as
before this module existed.  Credentials come from the host's ``endpoint`` capability
(``credential``: ``tosca.datatypes.Credential``; ``port``), overridden by the worker's inventory.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from .errors import WfError
from .operation.function_eval import evaluate, scoped
from .operation.functions import FunctionContext, FunctionError
from .records import NodeInstance, Relationship

DEFAULT_SSH_PORT = 22
# Inventory variables that say how to reach a host (the others go to the playbook as they are).
_CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
                    "ansible_private_key_file", "ansible_password", "ansible_ssh_pass")


class PlacementError(WfError):
    """A host's address or credential cannot be used (names the node and what is wrong)."""


@dataclass
class Target:
    """A remote root host, as an operation reaches it."""

    host: str                         # node instance id of the root host
    address: str
    port: int = DEFAULT_SSH_PORT
    user: Optional[str] = None        # None: the worker's user (ssh's default)
    key_file: Optional[str] = None    # private key on the worker
    password: Optional[str] = None
    hostvars: Dict[str, Any] = field(default_factory=dict)   # other inventory variables

    def label(self) -> str:
        who = "%s@" % self.user if self.user else ""
        return "host %s (%s%s:%d)" % (self.host, who, self.address, self.port)


def root_host(node_id: str, host_of: Callable[[str], Optional[str]]) -> str:
    """The end of ``node_id``'s HostedOn chain (itself when hosted on nothing)."""
    seen = {node_id}
    while True:
        up = host_of(node_id)
        if not up or up in seen:
            return node_id
        seen.add(up)
        node_id = up


# The end of a relationship each Configure operation belongs to (TOSCA 1.3 5.8.5: the *_source
# operations configure the source, add_target/remove_target/target_changed notify the source; the
# *_target ones configure the target, add_source/remove_source notify the target).
_TARGET_END_OPERATIONS = frozenset(("pre_configure_target", "post_configure_target", "add_source",
                                    "remove_source"))
_SOURCE_END_OPERATIONS = frozenset(("pre_configure_source", "post_configure_source", "add_target",
                                    "remove_target", "target_changed"))


def operation_side(operation: str, woven_side: Optional[str]) -> Optional[str]:
    """The end ("source" | "target") whose node a relationship operation runs for.

    A weaving may place an operation in the sequence of the other end: with HostedOn or DependsOn
    the target is started before the source is created, so ``pre_configure_target`` can only
    keep its place in the source's lifecycle (between the source's create and configure) if it
    sits in the source's program.  It still belongs to the target: its host, its ``SELF``
    node, its outputs.  A ``Configure`` operation is placed by its name; any other relationship
    operation belongs to the end whose sequence holds it."""
    iface, dummy, name = operation.rpartition(".")
    if iface.rsplit(".", 1)[-1] == "Configure":
        if name in _TARGET_END_OPERATIONS:
            return "target"
        if name in _SOURCE_END_OPERATIONS:
            return "source"
    return woven_side


def call_end(operation: str, rel: Optional[Relationship], side: Optional[str], node: NodeInstance,
             node_of: Callable[[str], NodeInstance]) -> Tuple[NodeInstance, Optional[str]]:
    """(node instance record, side) an operation call is made for: ``node`` (whose program holds
    the call) unless ``operation_side`` says the operation belongs to the other end."""
    end = operation_side(operation, side) if rel is not None else side
    if rel is None or end is None or end == side:
        return node, side
    return node_of(rel["source"] if end == "source" else rel["target"]), end


def operation_root(call: Any, spec: Optional[Dict[str, Any]],
                   host_of: Callable[[str], Optional[str]]) -> Optional[str]:
    """The root host an operation call runs on, or None for ``operation_host: ORCHESTRATOR``."""
    where = getattr(call, "operation_host", None) \
        or ((spec or {}).get("implementation") or {}).get("operation_host") or "SELF"
    if where == "ORCHESTRATOR":
        return None
    start = call.node["id"]
    rel = call.relationship
    if rel is not None and where in ("SOURCE", "TARGET"):
        start = rel["source"] if where == "SOURCE" else rel["target"]
    return root_host(start, host_of)


def host_address(fctx: FunctionContext, root: str) -> Optional[str]:
    """The address the engine reaches ``root`` at: ``public_address``, else ``private_address``
    (functions in them evaluated on the host), or None."""
    attrs = fctx.attributes(root) or {}
    for name in ("public_address", "private_address"):
        raw = attrs.get(name)
        if raw in (None, ""):
            continue
        try:
            value = evaluate(raw, scoped(fctx, root))
        except FunctionError as exc:
            raise PlacementError("%s: attribute %s: %s" % (fctx.describe(root), name, exc)) from None
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise PlacementError("%s: attribute %s must be an address (a string), got %r"
                                 % (fctx.describe(root), name, value))
        return value.strip()
    return None


class Inventory:
    """The worker's own Ansible inventory (``wfctl worker --inventory``), read through
    ``ansible-inventory --list`` so that every format Ansible reads (INI, YAML, scripts, plugins)
    works; re-read when the file changes."""

    def __init__(self, path: str, ansible_inventory: Optional[str] = None):
        self.path = os.path.abspath(path)
        self.exe = ansible_inventory
        self._lock = threading.Lock()
        self._mtime: Optional[float] = None
        self._hosts: Dict[str, Dict[str, Any]] = {}

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            raise PlacementError("inventory %s: %s" % (self.path, exc.strerror)) from None
        if mtime == self._mtime:
            return
        exe = self.exe or _near("ansible-inventory")
        if not exe:
            raise PlacementError("inventory %s: ansible-inventory not found (it reads the file)"
                                 % self.path)
        proc = subprocess.run([exe, "-i", self.path, "--list"], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
        try:
            data = json.loads(proc.stdout) if proc.returncode == 0 else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            err = (proc.stderr or proc.stdout or "").strip().splitlines()
            raise PlacementError("inventory %s: cannot be read (%s)"
                                 % (self.path, err[-1] if err else "exit %d" % proc.returncode))
        hostvars = ((data.get("_meta") or {}).get("hostvars") or {})
        hosts: Dict[str, Dict[str, Any]] = {}
        for group in data.values():
            for h in (group.get("hosts") or []) if isinstance(group, dict) else []:
                hosts.setdefault(str(h), {})
        for h, v in hostvars.items():
            hosts[str(h)] = dict(v) if isinstance(v, dict) else {}
        self._hosts, self._mtime = hosts, mtime

    def match(self, names: Iterable[Optional[str]]) -> Dict[str, Any]:
        """Variables of the first inventory host named like one of ``names`` (a node instance
        id, an address), or whose ``ansible_host`` is one of them; {} when none matches."""
        with self._lock:
            self._load()
            hosts = self._hosts
        wanted = [n for n in names if n]
        for n in wanted:
            if n in hosts:
                return dict(hosts[n])
        for n in wanted:
            for v in hosts.values():
                if v.get("ansible_host") == n:
                    return dict(v)
        return {}


def _near(name: str) -> Optional[str]:
    import sys
    near = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(near) and os.access(near, os.X_OK):
        return near
    return shutil.which(name)


def _port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise PlacementError("%s: port must be an integer, got %r" % (what, value)) from None
    if isinstance(value, bool) or not 0 < port < 65536:
        raise PlacementError("%s: port must be 1-65535, got %r" % (what, value))
    return port


def _credential(fctx: FunctionContext, root: str) -> Tuple[Dict[str, Any], Optional[int]]:
    """(credential, port) from the root host's ``endpoint`` capability, evaluated."""
    cap = fctx.capability_properties(root, "endpoint") or {}
    sc = scoped(fctx, root)
    try:
        cred = evaluate(cap.get("credential"), sc) if cap.get("credential") is not None else {}
        port = evaluate(cap.get("port"), sc) if cap.get("port") is not None else None
    except FunctionError as exc:
        raise PlacementError("%s: capability endpoint: %s" % (fctx.describe(root), exc)) from None
    if not isinstance(cred, dict):
        raise PlacementError("%s: capability endpoint: credential must be a "
                             "tosca.datatypes.Credential map" % fctx.describe(root))
    what = "%s: capability endpoint" % fctx.describe(root)
    return cred, (None if port is None else _port(port, what))


def host_target(fctx: FunctionContext, root: str, inventory: Optional[Inventory] = None,
                serves: Iterable[str] = ()) -> Optional[Target]:
    """How to reach ``root``, or None when its operations run on this worker: no address, or a
    host this worker serves (``--serves``: a node instance id or an address)."""
    address = host_address(fctx, root)
    inv = inventory.match([root, address]) if inventory is not None else {}
    address = str(inv.get("ansible_host") or address or "") or None
    served = set(serves)
    if not address or root in served or address in served:
        return None
    cred, port = _credential(fctx, root)
    what = "%s" % fctx.describe(root)
    user = cred.get("user")
    key_file, password = _token(cred, what)
    if "ansible_port" in inv:
        port = _port(inv["ansible_port"], "inventory host %s" % root)
    user = inv.get("ansible_user", user)
    key_file = inv.get("ansible_ssh_private_key_file", inv.get("ansible_private_key_file", key_file))
    password = inv.get("ansible_password", inv.get("ansible_ssh_pass", password))
    key_file = _checked(what, user, address, key_file)
    hostvars = {k: v for k, v in inv.items() if k not in _CONNECTION_VARS}
    return Target(host=root, address=address, port=port or DEFAULT_SSH_PORT, user=user,
                  key_file=key_file, password=password, hostvars=hostvars)


def _token(cred: Dict[str, Any], what: str) -> Tuple[Optional[str], Optional[str]]:
    """(private key file, password) the credential's ``token`` gives, by its ``token_type``."""
    token, token_type = cred.get("token"), (cred.get("token_type") or "password")
    if token in (None, ""):
        return None, None
    if not isinstance(token, str):
        raise PlacementError("%s: credential token must be a string" % what)
    if token_type == "private_key":
        return token, None
    if token_type == "password":
        return None, token
    raise PlacementError("%s: credential token_type %r is not supported for SSH "
                         "(private_key or password)" % (what, token_type))


def _checked(what: str, user: Any, address: str, key_file: Any) -> Optional[str]:
    """Refuse a user, address or key file that ssh would misread (an option, spaces); returns the
    key file with ``~`` expanded."""
    if user is not None and (not isinstance(user, str) or not user or user.startswith("-")
                             or any(c.isspace() for c in user)):
        raise PlacementError("%s: credential user %r is not a user name" % (what, user))
    if address.startswith("-") or any(c.isspace() for c in address):
        raise PlacementError("%s: address %r is not a host name or address" % (what, address))
    if key_file is None:
        return None
    if not isinstance(key_file, str) or not key_file:
        raise PlacementError("%s: credential token (private key file) must be a path" % what)
    return os.path.expanduser(key_file)
