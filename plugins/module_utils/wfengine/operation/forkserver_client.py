# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner's end of the playbook fork servers: which server serves an operation, starting
and ending servers, and a forked child seen as a ``subprocess.Popen`` (``forkserver_server.py`` is
the servers' own program and describes what a server and its children do).

What ansible-core reads when it is imported must be what the operation would have given a fresh
process, or the server is not used for it.  ``ansible.constants`` resolves the configuration at
import: from the environment (``ANSIBLE_*``, ``NO_COLOR``, ``PAGER``...), the ``ansible.cfg``
found from the working directory, ``ANSIBLE_CONFIG`` and the home folder, relative paths from
the working directory.  So a server is started per *key*: the interpreter, the operation's
working directory, its environment without the engine's ``WF_*`` facts (ansible-core reads none
of them; they differ per operation and are set in the child), and the identity (inode, size,
mtime) of every configuration file ansible-core would look for.  An operation whose key has no
server gets one started; a changed ``~/.ansible.cfg`` starts a new one.  When no server can
serve it, the runner starts ``ansible-playbook`` as a process (``ForkServerError``).
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import threading
from typing import IO, Any, Dict, List, Optional, Set, Tuple, cast

from . import forkserver_server
from .forkserver_server import send_line

log = logging.getLogger("wfengine.forkserver")

START_TIMEOUT = 60.0       # importing ansible-core on a loaded machine
REPLY_TIMEOUT = 30.0       # a fork and one line back
MAX_SERVERS = 3            # keys served at once; each server holds an imported ansible-core
MAX_FAILURES = 3           # deaths or failed starts of one key before it stays on subprocesses
EXIT_UNKNOWN = -1          # the server died and the child left no status

# Run by ``python -c``: load the server's program (forkserver_server.py) by path and serve.
# ``sys.path[0]`` (the working directory, for ``-c``) becomes the launcher's folder, as for the
# ``ansible-playbook`` script.
BOOT = ("import sys, importlib.util as u; sys.path[0] = sys.argv[2]; "
        "s = u.spec_from_file_location('wf_forkserver', sys.argv[1]); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); m.serve()")

CONFIG_FILES = ("~/.ansible.cfg", "/etc/ansible/ansible.cfg")


class ForkServerError(Exception):
    """The server cannot take the request: the caller runs the playbook as a process."""


class ForkedProcess:
    """A playbook child of a fork server, seen as a ``subprocess.Popen``: ``pid`` (its process
    group too), ``wait``, ``returncode``; ``stdin`` is None (playbooks get ``/dev/null``)."""

    stdin = None

    def __init__(self, server: "ForkServer", rid: int, status_path: str):
        self.server = server
        self.rid = rid
        self.status_path = status_path
        self.pid = 0
        self.returncode: Optional[int] = None
        self.error: Optional[str] = None
        self._pidfd: Optional[int] = None
        self.abandoned = False        # the runner gave up waiting for the pid: killed when it comes
        self._started = threading.Event()
        self._done = threading.Event()

    # called by the server's reader thread
    def _set_pid(self, pid: int) -> None:
        if self.abandoned:
            # Its playbook runs on the fallback path: this late child must not run it too.
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            return
        self.pid = pid
        try:
            # Opened while the server cannot have reaped it yet (it reports the exit after the
            # pid): the pidfd names this process even if the server dies later.
            self._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self._pidfd = None
        self._started.set()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._close_pidfd()
        self._done.set()

    def _server_died(self) -> None:
        self._started.set()
        self._done.set()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            try:
                os.close(self._pidfd)
            except OSError:
                pass
            self._pidfd = None

    def wait(self, timeout: Optional[float] = None) -> int:
        """The exit status, as ``Popen.wait`` (``subprocess.TimeoutExpired`` after ``timeout``)."""
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("ansible-playbook", cast(float, timeout))
        if self.returncode is None:
            self._wait_orphan(timeout)
        return self.returncode      # type: ignore[return-value]

    def _wait_orphan(self, timeout: Optional[float]) -> None:
        """The server died while this child ran: wait for the child itself (its pidfd), then
        read the status it left; none: it was killed, or the server died before it ran."""
        if self._pidfd is not None:
            ready, dummy, dummy = select.select([self._pidfd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired("ansible-playbook", cast(float, timeout))
        self._close_pidfd()
        code = EXIT_UNKNOWN
        try:
            with open(self.status_path, "r", encoding="utf-8") as fh:
                code = int(fh.read().strip())
        except (OSError, ValueError):
            self.error = "the playbook's fork server died while it ran; its exit status is unknown"
        self.returncode = code


class ForkServer:
    """The runner's end of one fork server (one key: interpreter, working directory,
    environment, configuration files)."""

    def __init__(self, python: List[str], bin_dir: str, cwd: str, env: Dict[str, str]):
        self.python = python
        self.bin_dir = bin_dir
        self.cwd = cwd
        self.env = env
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.pid = 0
        self.alive = False
        self._lock = threading.Lock()
        self._pending: Dict[int, ForkedProcess] = {}
        self._next = 0

    def start(self) -> None:
        """Start the server and wait until ansible-core is imported; ForkServerError if not."""
        here = os.path.abspath(forkserver_server.__file__)
        if here.endswith((".pyc", ".pyo")):
            here = here[:-1]
        try:
            self.proc = subprocess.Popen(self.python + ["-c", BOOT, here, self.bin_dir], cwd=self.cwd,
                                         env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         start_new_session=True, close_fds=True)
        except OSError as exc:
            raise ForkServerError("cannot start %s: %s" % (self.python[0], exc)) from None
        first: List[bytes] = []
        stdout = cast(IO[bytes], self.proc.stdout)
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        line = first[0] if first else b""
        try:
            hello = json.loads(line) if line else {}
        except ValueError:
            hello = {}
        if not hello.get("ready"):
            self._stop()
            raise ForkServerError(hello.get("error") or ("no answer in %g s" % START_TIMEOUT if not first
                                                         else "exited at start"))
        self.pid = int(hello["pid"])
        self.alive = True
        threading.Thread(target=self._read, name="forkserver-%d" % self.pid, daemon=True).start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def spawn(self, argv: List[str], env: Dict[str, str], cwd: str, log_file: str,
              status_path: str) -> ForkedProcess:
        """Fork a child running ``argv``; it is running when this returns."""
        with self._lock:
            if not self.alive:
                raise ForkServerError("the fork server is not running")
            self._next += 1
            child = ForkedProcess(self, self._next, status_path)
            self._pending[child.rid] = child
            try:
                stdin = cast(IO[bytes], cast("subprocess.Popen[bytes]", self.proc).stdin)
                send_line(stdin.fileno(), {"id": child.rid, "argv": argv, "env": env, "cwd": cwd,
                                           "log": log_file, "status": status_path})
            except OSError:
                self._pending.pop(child.rid, None)
                raise ForkServerError("the fork server is gone") from None
        if not child._started.wait(REPLY_TIMEOUT):
            # No pid in time: a server this slow is not trusted again; a child it forks later
            # is killed as soon as its pid arrives (the playbook runs on the fallback path).
            with self._lock:
                child.abandoned = True
            self.close()     # it exits once it has read the request: the reader still sees the pid
            raise ForkServerError("no answer from the fork server in %g s" % REPLY_TIMEOUT)
        if not child.pid:
            with self._lock:
                self._pending.pop(child.rid, None)
            raise ForkServerError(child.error or "the fork server died before starting the playbook")
        return child

    def _read(self) -> None:
        stream = cast(IO[bytes], cast("subprocess.Popen[bytes]", self.proc).stdout)
        while True:
            try:
                line = stream.readline()
            except (OSError, ValueError):
                line = b""
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                child = self._pending.get(msg.get("id"))
                if child is None:
                    continue
                if "exit" in msg:
                    self._pending.pop(child.rid, None)
            if "pid" in msg:
                child._set_pid(int(msg["pid"]))
            elif "exit" in msg:
                child._set_exit(int(msg["exit"]))
            elif "error" in msg:
                with self._lock:
                    self._pending.pop(child.rid, None)
                child.error = str(msg["error"])
                child._server_died()
        with self._lock:
            self.alive = False
            orphans = list(self._pending.values())
            self._pending.clear()
        if orphans:
            log.warning("fork server %d died with %d playbook(s) running", self.pid, len(orphans))
        for child in orphans:
            child._server_died()
        self._stop()

    def _stop(self) -> None:
        self.alive = False
        proc = self.proc
        if proc is None:
            return
        streams: Tuple[Any, ...] = (proc.stdin, proc.stdout)     # None: AttributeError below
        for stream in streams:
            try:
                stream.close()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """End the server (its end of the pipe closes: it exits; children go on alone)."""
        with self._lock:
            self.alive = False
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass


def interpreter(exe: str) -> Optional[List[str]]:
    """The Python (and its options) of an ``ansible-playbook`` script, from its ``#!`` line; None
    when it is not a plain path to a Python (``env``, a wrapper, a binary): no fork server then."""
    try:
        with open(exe, "rb") as fh:
            first = fh.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words or not os.path.isabs(words[0]) or "python" not in os.path.basename(words[0]):
        return None
    if not os.access(words[0], os.X_OK):
        return None
    return words


def server_key(python: List[str], cwd: str, env: Dict[str, str]) -> Tuple[Any, ...]:
    """What ansible-core reads at import for this operation (see the module's docstring)."""
    files: List[Tuple[Any, ...]] = []
    candidates = [os.path.join(cwd, "ansible.cfg")] + [os.path.expanduser(p) for p in CONFIG_FILES]
    if env.get("ANSIBLE_CONFIG"):
        candidates.append(os.path.join(cwd, os.path.expanduser(env["ANSIBLE_CONFIG"])))
    for path in candidates:
        try:
            st = os.stat(path)
            files.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            files.append((path, None))
    return (tuple(python), cwd, tuple(sorted(server_env(env).items())), tuple(files))


def server_env(env: Dict[str, str]) -> Dict[str, str]:
    """The operation's environment without the engine's per-operation facts (``WF_*``)."""
    return {k: v for k, v in env.items() if not k.startswith("WF_")}


class ForkServers:
    """The fork servers of one executor, by key; at most ``MAX_SERVERS``, the least recently used
    idle one ended to make room.  ``spawn`` raises ForkServerError when none can serve: the
    caller then starts ``ansible-playbook`` as a process."""

    def __init__(self, max_servers: int = MAX_SERVERS):
        self.max_servers = max_servers
        self._servers: Dict[Tuple[Any, ...], ForkServer] = {}
        self._failures: Dict[Tuple[Any, ...], int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._said: Set[str] = set()

    def _once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning("%s", message)

    def spawn(self, argv: List[str], env: Dict[str, str], cwd: str, log_file: str,
              status_path: str) -> ForkedProcess:
        python = interpreter(argv[0])
        if python is None:
            self._once("playbook fork server not used: %s does not name its Python by an absolute "
                       "path in its #! line; ansible-playbook processes" % argv[0])
            raise ForkServerError("%s: no known interpreter" % argv[0])
        key = server_key(python, cwd, env)
        server = self._server(key, python, os.path.dirname(argv[0]), cwd, env)
        try:
            return server.spawn(argv, env, cwd, log_file, status_path)
        except ForkServerError:
            self._failed(key, server, "died")
            raise

    def _server(self, key: Tuple[Any, ...], python: List[str], bin_dir: str, cwd: str,
                env: Dict[str, str]) -> ForkServer:
        with self._lock:
            if self._closed:
                raise ForkServerError("closed")
            if self._failures.get(key, 0) >= MAX_FAILURES:
                raise ForkServerError("fork server disabled for this configuration")
            server = self._servers.pop(key, None)
            if server is not None and server.alive:
                self._servers[key] = server        # most recently used last
                return server
            if len(self._servers) >= self.max_servers:
                idle = [k for k, s in self._servers.items() if not s.busy]
                if not idle:
                    self._once("every playbook fork server busy with another configuration: "
                               "ansible-playbook processes meanwhile")
                    raise ForkServerError("every fork server is busy with another configuration")
                self._servers.pop(idle[0]).close()
            server = ForkServer(python, bin_dir, cwd, server_env(env))
            try:
                server.start()
            except ForkServerError as exc:
                n = self._failures[key] = self._failures.get(key, 0) + 1
                log.warning("playbook fork server not started (%s)%s", exc,
                            "; ansible-playbook processes from now on" if n >= MAX_FAILURES else "")
                raise
            self._servers[key] = server
            return server

    def _failed(self, key: Tuple[Any, ...], server: ForkServer, why: str) -> None:
        with self._lock:
            if self._servers.get(key) is server and not server.alive:
                del self._servers[key]
                n = self._failures[key] = self._failures.get(key, 0) + 1
                log.warning("playbook fork server %d %s%s", server.pid, why,
                            "; ansible-playbook processes from now on" if n >= MAX_FAILURES
                            else "; a new one starts with the next playbook")

    def pids(self) -> List[int]:
        """The servers' pids (tests kill one)."""
        with self._lock:
            return [s.pid for s in self._servers.values() if s.alive]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.close()
