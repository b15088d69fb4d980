# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations on remote hosts over OpenSSH, agentless.

Why the system ``ssh`` and not a Python SSH library: it is what Ansible uses (playbooks share
its connections), it reads the users' keys, agents and ``~/.ssh/config``, and it keeps the
runtime dependencies of the engine at none.

* **One connection per (worker, deployment, host).**  A master connection
  (ControlMaster/ControlPersist) is opened the first time, with host-key checking and
  authentication; every operation after it, scripts and playbooks alike, is a new session on it:
  no handshake.  Its socket sits in a private directory of the worker.
* **Host keys are checked.**  Against the deployment's known hosts, kept in the Space (every
  worker sees the keys any worker learned) and the worker's own known_hosts files.  Trust on
  first use (``accept_new``) is an explicit option for labs: a new key is then recorded in the
  Space, and a changed key is refused like any mismatch.
* **No value is spliced into a remote command line.**  The remote command is a constant (the
  bootstrap below and the payload size); the script, its dependencies and its environment
  (NUL-separated ``NAME=VALUE`` pairs) travel as a tar stream on the session's standard input.
* **Killing the local ssh kills the remote operation.**  The bootstrap watches its standard
  input, which the worker keeps open while the operation runs: when the session closes (timeout,
  cancel, dead worker), the script's process group gets SIGTERM, then SIGKILL.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import SpaceDataError, WfError
from ..placement import Inventory, Target

log = logging.getLogger("wfengine.ssh")

# Stands for the operation's model folder on the remote host (a private temporary folder only
# known there) in its environment values: get_artifact paths; the bootstrap replaces it.
REMOTE_MODEL_DIR = "\x1eWF_MODEL_DIR\x1e"

# Exit code of an operation that did not run because its host could not be reached.
EXIT_UNREACHABLE = -2

# The remote half: unpack the payload in a private temporary folder, load the environment,
# run the script in its own process group (stdin /dev/null, output to a file that a daemon it
# starts cannot keep the session open with), kill that group if the session's stdin closes,
# then send the output, the outputs file and the exit code back.  Records start with \036 on
# the session's stderr, where nothing else but ssh's own messages goes.
_BOOT = r"""set -u
exec 3>&2 2>/dev/null
n=$1
d=$(mktemp -d "${TMPDIR:-/tmp}/wf-op.XXXXXXXX") || { echo "wfengine: mktemp failed" >&3; exit 254; }
if ! head -c "$n" | tar -x -f - -C "$d"; then
    echo "wfengine: cannot unpack the operation's files in $d" >&3; rm -rf "$d"; exit 254
fi
m="$d/model"
while IFS= read -r -d '' kv; do export "${kv//$'\036'WF_MODEL_DIR$'\036'/"$m"}"; done < "$d/.wf/env"
export WF_MODEL_DIR="$d/model" WF_OUTPUTS="$d/.wf/outputs"
: > "$WF_OUTPUTS"
primary=$(cat "$d/.wf/primary")
cd "$d/model" || exit 254
set -m
bash "$d/model/$primary" </dev/null >"$d/.wf/log" 2>&1 &
pid=$!
( trap - EXIT; cat >/dev/null; kill -TERM -- "-$pid"; sleep 2; kill -KILL -- "-$pid" ) >/dev/null 2>&1 &
w=$!
wait "$pid"
rc=$?
kill -KILL -- "-$w"
cat "$d/.wf/log"
printf '\036WF-OUTPUTS %s\n' "$(wc -c < "$WF_OUTPUTS" | tr -d ' ')" >&3
cat "$WF_OUTPUTS" >&3
printf '\036WF-EXIT %s\n' "$rc" >&3
cd / && rm -rf "$d"
"""
_REMOTE = "exec bash -c " + shlex.quote(_BOOT) + " wf-op "
_TRAILER = re.compile(rb"\x1eWF-OUTPUTS (\d+)\n")
_EXIT = re.compile(rb"\x1eWF-EXIT (-?\d+)\n?$")


@dataclass
class SshOptions:
    """How a worker reaches remote hosts (``wfctl worker --inventory ... --known-hosts ...``)."""

    inventory: Optional[str] = None        # the worker's Ansible inventory (overrides the model)
    known_hosts: Optional[str] = None      # the worker's known_hosts file (default ~/.ssh/known_hosts)
    accept_new: bool = False               # trust on first use: record new host keys (labs)
    connect_timeout: float = 10.0
    persist: float = 300.0                 # seconds an idle master connection stays open
    serves: Tuple[str, ...] = ()           # hosts this worker serves: their operations run here


class RemoteError(WfError):
    """A host could not be reached: one line naming the host, its address and ssh's reason."""


class KnownHosts:
    """The host keys of one deployment, kept in the Space under the instance (deleted with it)."""

    def __init__(self, space: Any, key: str):
        self.space = space
        self.key = key

    def _parse(self, e: Any) -> List[str]:
        if e is None:
            return []
        v = e.value
        if not isinstance(v, dict) or not isinstance(v.get("lines"), list) \
                or not all(isinstance(x, str) and "\n" not in x for x in v["lines"]):
            raise SpaceDataError("%s: not a known hosts record" % self.key)
        return list(v["lines"])

    def lines(self) -> List[str]:
        return self._parse(self.space.get(self.key))

    def add(self, new: List[str]) -> None:
        from ..space.base import op_cas
        for dummy in range(20):
            e = self.space.get(self.key)
            cur = self._parse(e)
            merged = cur + [x for x in new if x not in cur]
            if merged == cur:
                return
            if self.space.txn([op_cas(self.key, {"lines": merged}, e.index if e else 0)]).ok:
                return
        raise WfError("%s: could not record the new host keys (too many concurrent writers)" % self.key)


def describe_failure(target: Target, stderr: str) -> str:
    """ssh's reason in one line (the last lines that say something)."""
    text = stderr.replace("\r", "")
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
            why = "host key mismatch: the key offered is not the one recorded in known_hosts"
        else:
            why = "host key verification failed: the host's key is not in known_hosts " \
                  "(add it, or let the worker trust on first use in a lab)"
        return "%s: %s" % (target.label(), why)
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith("@") and not ln.startswith("Warning: Permanently")]
    reason = lines[-1] if lines else "ssh failed with no message"
    return "%s: %s" % (target.label(), reason[:300])


class SshClient:
    """The SSH side of one worker: master connections, known hosts, the argument lists."""

    def __init__(self, opts: SshOptions, known_hosts: Callable[[Any], KnownHosts],
                 ssh: Optional[str] = None):
        self.opts = opts
        self.known_hosts_of = known_hosts
        self.ssh = ssh or shutil.which("ssh") or "/usr/bin/ssh"
        self.inventory = Inventory(opts.inventory) if opts.inventory else None
        self._dir: Optional[str] = None
        self._dir_lock = threading.Lock()
        self._lock = threading.Lock()
        self._locks: Dict[str, threading.Lock] = {}
        self._fresh: Dict[str, float] = {}      # control path -> master known alive until

    # ------------------------------------------------------------------ paths and arguments
    @property
    def dir(self) -> str:
        """A private folder for the control sockets, made on first use.  Unix socket paths are
        short (108 bytes): under the system's temporary folder, not the worker's cache."""
        with self._dir_lock:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="wf-ssh-")
            return self._dir

    def _ident(self, deployment: Any, target: Target) -> str:
        raw = "%s\0%s\0%s\0%s\0%d" % (deployment[0], deployment[1], target.user or "",
                                      target.address, target.port)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]

    def control_path(self, deployment: Any, target: Target) -> str:
        return os.path.join(self.dir, self._ident(deployment, target))

    def _known_hosts_file(self, deployment: Any, target: Target) -> str:
        return os.path.join(self.dir, "kh-" + self._ident(deployment, target))

    def _user_known_hosts(self) -> List[str]:
        return [self.opts.known_hosts] if self.opts.known_hosts else \
            [os.path.expanduser("~/.ssh/known_hosts")]

    def options(self, deployment: Any, target: Target) -> List[str]:
        """The ``-o`` options every connection to ``target`` uses (also given to Ansible)."""
        files = [self._known_hosts_file(deployment, target)] + self._user_known_hosts()
        opts = ["-o", "ControlPath=%s" % self.control_path(deployment, target),
                "-o", "UserKnownHostsFile=%s" % " ".join(files),
                "-o", "StrictHostKeyChecking=%s" % ("accept-new" if self.opts.accept_new else "yes"),
                "-o", "ConnectTimeout=%d" % max(1, int(self.opts.connect_timeout)),
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
                "-o", "LogLevel=ERROR"]
        if target.password is None:
            opts += ["-o", "BatchMode=yes"]
        if target.key_file:
            opts += ["-o", "IdentitiesOnly=yes"]
        return opts

    def argv(self, deployment: Any, target: Target, master: bool = False) -> List[str]:
        args = [self.ssh] + self.options(deployment, target) + ["-p", str(target.port)]
        if target.user:
            args += ["-l", target.user]
        if target.key_file:
            args += ["-i", target.key_file]
        args += ["-o", "ControlMaster=%s" % ("yes" if master else "no")]
        return args

    # ------------------------------------------------------------------ master connections
    def connect(self, deployment: Any, target: Target) -> str:
        """Open (or reuse) the master connection to ``target``; returns its control path.
        Raises RemoteError with ssh's reason when the host cannot be reached or refuses us."""
        path = self.control_path(deployment, target)
        with self._lock:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            now = time.monotonic()
            if self._fresh.get(path, 0) > now and os.path.exists(path):
                return path
            if os.path.exists(path) and self._check(deployment, target):
                self._fresh[path] = now + self.opts.persist / 2
                return path
            self._open(deployment, target)
            self._fresh[path] = time.monotonic() + self.opts.persist / 2
        return path

    def _check(self, deployment: Any, target: Target) -> bool:
        proc = subprocess.run(self.argv(deployment, target) + ["-O", "check", target.address],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10, check=False)
        return proc.returncode == 0

    def _open(self, deployment: Any, target: Target) -> None:
        store = self.known_hosts_of(deployment)
        kh_file = self._known_hosts_file(deployment, target)
        known = store.lines()
        with open(kh_file, "w", encoding="utf-8") as fh:
            fh.write("".join(x + "\n" for x in known))
        env = dict(os.environ)
        if target.password is not None:
            # OpenSSH >= 8.4 asks this program for the password, with no terminal.
            askpass = os.path.join(self.dir, "askpass")
            if not os.path.exists(askpass):
                with open(askpass, "w", encoding="utf-8") as fh:
                    fh.write('#!/bin/sh\nprintf "%s\\n" "$WF_SSH_PASSWORD"\n')
                os.chmod(askpass, 0o700)
            env.update(SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force", WF_SSH_PASSWORD=target.password,
                       DISPLAY=env.get("DISPLAY", "none"))
        argv = self.argv(deployment, target, master=True) + [
            "-o", "ControlPersist=%d" % max(1, int(self.opts.persist)), "-N", "-f", target.address]
        # stderr to a file: the master goes to the background holding it, a pipe would never end.
        with tempfile.TemporaryFile(dir=self.dir) as err:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=err, env=env, start_new_session=True,
                                      timeout=self.opts.connect_timeout * 3 + 10, check=False)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
            err.seek(0)
            text = err.read().decode("utf-8", errors="replace")
        if code != 0:
            if code is None:
                text += "\nconnection timed out"
            raise RemoteError(describe_failure(target, text))
        if self.opts.accept_new:
            with open(kh_file, "r", encoding="utf-8") as fh:
                learned = [ln.rstrip("\n") for ln in fh if ln.strip()]
            new = [x for x in learned if x not in known]
            if new:
                store.add(new)

    def close(self) -> None:
        """Close the master connections this worker opened and remove its folder."""
        if self._dir is None:
            return
        for name in os.listdir(self._dir) if os.path.isdir(self._dir) else []:
            path = os.path.join(self._dir, name)
            if name.startswith("kh-") or name == "askpass" or not _is_socket(path):
                continue
            subprocess.run([self.ssh, "-o", "ControlPath=%s" % path, "-O", "exit", "wf-master"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10, check=False)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    # ------------------------------------------------------------------ scripts
    def script_command(self, deployment: Any, target: Target, files: List[Tuple[str, str]],
                       primary: str, env: Dict[str, str]) -> Tuple[List[str], bytes]:
        """(argv, payload) of a script run on ``target``: ``files`` are (path in the model,
        local path); the payload goes to the command's standard input, which must then stay
        open until it exits."""
        payload = _payload(files, primary, env)
        argv = self.argv(deployment, target) + [target.address, _REMOTE + str(len(payload))]
        return argv, payload

    # ------------------------------------------------------------------ playbooks
    def inventory_for(self, deployment: Any, target: Target) -> Dict[str, Any]:
        """An inventory holding exactly ``target`` (named after its node instance), reached
        through this worker's master connection: ``hosts: all`` playbooks target it unchanged."""
        extra = self.options(deployment, target)
        if target.key_file:
            extra += ["-o", "IdentitiesOnly=yes"]
        hv: Dict[str, Any] = dict(target.hostvars)
        hv.update({"ansible_connection": "ssh", "ansible_host": target.address,
                   "ansible_port": target.port,
                   "ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=%ds"
                                       % max(1, int(self.opts.persist)),
                   "ansible_ssh_common_args": " ".join(shlex.quote(x) for x in extra),
                   "ansible_host_key_checking": True})
        if target.user:
            hv["ansible_user"] = target.user
        if target.key_file:
            hv["ansible_ssh_private_key_file"] = target.key_file
        return {"all": {"hosts": {target.host: hv}}}


def parse_result(stderr: bytes) -> Optional[Tuple[int, bytes, str]]:
    """(exit code, outputs file, ssh's other messages) from the session's stderr, or None when
    the bootstrap did not finish (connection lost, or it could not start)."""
    m = None
    for m in _TRAILER.finditer(stderr):
        pass
    if m is None:
        return None
    size = int(m.group(1))
    start = m.end()
    outputs = stderr[start:start + size]
    tail = _EXIT.search(stderr[start + size:])
    if tail is None:
        return None
    return int(tail.group(1)), outputs, stderr[:m.start()].decode("utf-8", errors="replace")


def _payload(files: List[Tuple[str, str]], primary: str, env: Dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, local in files:
            tar.add(local, arcname="model/" + arcname, recursive=True)
        blob = b"".join(("%s=%s" % (k, v)).encode("utf-8") + b"\0" for k, v in env.items())
        _add_bytes(tar, ".wf/env", blob)
        _add_bytes(tar, ".wf/primary", primary.encode("utf-8"))
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _is_socket(path: str) -> bool:
    import stat
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
