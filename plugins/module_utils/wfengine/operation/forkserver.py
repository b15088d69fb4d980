# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Playbooks started from an Ansible already imported: a fork server.

A fresh ``ansible-playbook`` spends most of a no-op playbook's time importing ansible-core.  A
fork server is a long-lived child of the worker that imports ansible-core's CLI once, and parses
what every run would parse the same way whatever its configuration (ansible.builtin's plugin
routing, the option definitions of ansible-core's own common plugins: _preload_builtin_routing,
with what a playbook's own plugins need undone in the child, _forget_shadowed), and, per
operation, forks a child that becomes what ``ansible-playbook``
would have been: its own session and process group, the operation's working directory,
environment, standard input ``/dev/null``, standard output and error into the operation's log
file, ``sys.argv`` the same argument list; it runs ``PlaybookCLI.cli_executor`` and exits with
its status.  The runner (``runner.ProcessExecutor``) supervises the child exactly as it does a
process it started: timeout and cancel kill the child's process group, its exit status has
``subprocess``'s meaning (negative: killed by that signal).

What ansible-core reads when it is imported must be what the operation would have given a fresh
process, or the server is not used for it.  ``ansible.constants`` resolves the configuration at
import: from the environment (``ANSIBLE_*``, ``NO_COLOR``, ``PAGER``...), the ``ansible.cfg``
found from the working directory, ``ANSIBLE_CONFIG`` and the home folder, relative paths from
the working directory.  So a server is started per *key*: the interpreter, the operation's
working directory, its environment without the engine's ``WF_*`` facts (ansible-core reads none
of them; they differ per operation and are set in the child), and the identity (inode, size,
mtime) of every configuration file ansible-core would look for.  An operation whose key has no
server gets one started; a changed ``~/.ansible.cfg`` starts a new one.  Per child, the few things
a fork would otherwise share with the server and its siblings are made its own: the local
temporary folder ``DEFAULT_LOCAL_TMP`` (resolved, hence created, at import; removed at exit by
the process that made it), the ``random`` module's state, and exit handlers.

The protocol is one JSON object per line on the server's standard input and output (never
pickle): ``{"id", "argv", "env", "cwd", "log", "status"}`` in, ``{"id", "pid"}`` then
``{"id", "exit"}`` out.  A child waits for the server to say "go" after its pid was sent, so
that a server dying between the fork and the reply never leaves a playbook running that the
runner does not know of (it would run it a second time on the fallback path).  The child also
writes its exit status to the ``status`` file, so that when the server dies while it runs, the
runner still learns how it ended (``pidfd`` tells when; Linux 5.3).

This file is also the server's program: ``python -c BOOT forkserver.py BINDIR`` loads it by path
(``BOOT``), so neither its folder nor the working directory is on ``sys.path``.  The server side
uses the standard library only.
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger("wfengine.forkserver")

START_TIMEOUT = 60.0       # importing ansible-core on a loaded machine
REPLY_TIMEOUT = 30.0       # a fork and one line back
MAX_SERVERS = 3            # keys served at once; each server holds an imported ansible-core
MAX_FAILURES = 3           # deaths or failed starts of one key before it stays on subprocesses
EXIT_UNKNOWN = -1          # the server died and the child left no status

# Modules every playbook run loads besides the CLI's own (measured with a no-op playbook):
# importing them in the server leaves each child less to import.  Plugins are left to the plugin
# loader of each child (which also loads their configuration definitions).
PRELOAD = (
    "ansible.cli.playbook", "ansible.executor.playbook_executor", "ansible.executor.task_executor",
    "ansible.executor.process.worker", "multiprocessing.synchronize", "multiprocessing.popen_fork",
)

# Run by ``python -c``: load this file by path and serve.  ``sys.path[0]`` (the working
# directory, for ``-c``) becomes the launcher's folder, as for the ``ansible-playbook`` script.
BOOT = ("import sys, importlib.util as u; sys.path[0] = sys.argv[2]; "
        "s = u.spec_from_file_location('wf_forkserver', sys.argv[1]); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); m.serve()")

CONFIG_FILES = ("~/.ansible.cfg", "/etc/ansible/ansible.cfg")


class ForkServerError(Exception):
    """The server cannot take the request: the caller runs the playbook as a process."""


# ---------------------------------------------------------------------------------- server side
def serve() -> None:
    """The server's main loop (in its own process): import, say ready, fork per request."""
    req_fd = os.dup(0)
    rep_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    for fd in (req_fd, rep_fd):
        os.set_inheritable(fd, False)
    try:
        import importlib
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                if name == PRELOAD[0]:
                    raise
    except BaseException as exc:      # pylint: disable=broad-except
        _send(rep_fd, {"error": "cannot import ansible-core: %s: %s" % (type(exc).__name__, exc)})
        os._exit(1)
    _preload_builtin_routing()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    for fd in (wake_r, wake_w):
        os.set_inheritable(fd, False)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.set_wakeup_fd(wake_w)
    children: Dict[int, Any] = {}
    _send(rep_fd, {"ready": True, "pid": os.getpid()})
    buf = b""
    while True:
        ready, dummy, dummy = select.select([req_fd, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(children, rep_fd)
        if req_fd in ready:
            data = os.read(req_fd, 65536)
            if not data:
                break       # the runner is gone or closed us: running children go on alone
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    request = json.loads(line)
                except ValueError:
                    continue
                pid = _fork(request, (req_fd, rep_fd, wake_r, wake_w))
                if pid is None:
                    _send(rep_fd, {"id": request.get("id"), "error": "fork failed"})
                    continue
                pid, go = pid
                children[pid] = request.get("id")
                _send(rep_fd, {"id": request.get("id"), "pid": pid})
                try:
                    os.write(go, b"1")
                except OSError:
                    pass
                os.close(go)
        _reap(children, rep_fd)


def _preload_builtin_routing() -> None:
    """Parse ansible.builtin's plugin routing (ansible-core's ``ansible_builtin_runtime.yml``,
    about 40 % of a no-op playbook's CPU) once, here, rather than in every child.  The routing is
    part of the ansible-core installation, the same whatever the configuration; the child installs
    its own collection finder (``init_plugin_loader``, from its configuration) and finds the parsed
    ``ansible_collections.ansible.builtin`` package in ``sys.modules``.  Best effort: a failure
    leaves each child to parse it, as ``ansible-playbook`` does."""
    import importlib
    try:
        loader = importlib.import_module("ansible.plugins.loader")
        config = importlib.import_module("ansible.utils.collection_loader").AnsibleCollectionConfig
        finder = importlib.import_module("ansible.utils.collection_loader._collection_finder")
    except ImportError:
        return
    try:
        loader.init_plugin_loader()
        importlib.import_module("ansible_collections.ansible.builtin")
        _warm_plugin_definitions(loader)
    except Exception:       # pylint: disable=broad-except
        pass
    finally:
        # Uninstalled again: the child's CLI configures its own (with its collections path), and
        # would otherwise find one configured and keep it.
        try:
            finder._AnsibleCollectionFinder._remove()     # pylint: disable=protected-access
            config.on_collection_load -= loader._on_collection_load_handler  # pylint: disable=protected-access
        except Exception:   # pylint: disable=broad-except
            pass


# Plugins every playbook run loads (a name, or None: all of the type, as the callback, inventory
# and vars loaders list them), by type: their configuration definitions, parsed from their
# documentation, are the larger part of what is left of a child's own CPU.
WARM_PLUGINS = (("callback", None), ("inventory", None), ("vars", None), ("connection", "local"),
                ("connection", "ssh"), ("shell", "sh"), ("become", "sudo"), ("cache", "memory"))
# What the server warmed, by type: the names of the definitions it added and the Python modules
# it imported (the child forgets those of a type a playbook may shadow, see _forget_shadowed).
WARMED: Dict[str, List[str]] = {}
WARMED_MODULES: Dict[str, List[str]] = {}


def _warm_plugin_definitions(loader: Any) -> None:
    """Parse the configuration definitions of ansible-core's own plugins of ``WARM_PLUGINS`` once.
    ansible-core keeps them by plugin type and short name only, so a plugin of the same name met
    later would get these: a type is left out when a configured plugin folder of that type holds
    anything, and the child forgets a type's definitions when the operation's folders have a
    ``<type>_plugins`` folder (a playbook's or a role's own plugins)."""
    import importlib
    config = importlib.import_module("ansible.constants").config
    builtin = os.path.dirname(importlib.import_module("ansible.plugins").__file__)
    for kind in sorted({k for k, dummy in WARM_PLUGINS}):
        plugin_loader = getattr(loader, "%s_loader" % kind)
        paths = plugin_loader._get_paths()           # pylint: disable=protected-access
        if any(_holds_files(path) for path in paths if not path.startswith(builtin + os.sep)):
            continue
        before = set(config._plugins.get(kind, {}))   # pylint: disable=protected-access
        modules = set(sys.modules)
        try:
            for name in [n for k, n in WARM_PLUGINS if k == kind]:
                if name is None:
                    list(plugin_loader.all(class_only=True))
                else:
                    plugin_loader.get(name, class_only=True)
        finally:
            WARMED[kind] = sorted(set(config._plugins.get(kind, {})) - before)  # pylint: disable=protected-access
            prefix = "ansible.plugins.%s." % kind     # the plugins' own modules, not what they import
            WARMED_MODULES[kind] = sorted(m for m in set(sys.modules) - modules
                                          if m.startswith(prefix) and "." not in m[len(prefix):])


def _holds_files(path: str) -> bool:
    try:
        return any(entry.is_file() for entry in os.scandir(path))
    except OSError:
        return False


def _forget_shadowed(folders: List[str], depth: int = 4) -> None:
    """In the child: drop the warmed definitions and modules of each plugin type for which the operation's
    folders (its working directory, its playbook's) hold a ``<type>_plugins`` folder, within
    ``depth`` levels (a playbook's own, a role's)."""
    if not WARMED:
        return
    wanted = {"%s_plugins" % kind: kind for kind in WARMED}
    found = set()
    for top in folders:
        base = top.rstrip(os.sep).count(os.sep)
        for root, dirs, dummy in os.walk(top):
            found.update(wanted[d] for d in dirs if d in wanted)
            if root.count(os.sep) - base >= depth - 1:
                dirs[:] = []
    if not found:
        return
    import importlib
    plugins = importlib.import_module("ansible.constants").config._plugins   # pylint: disable=protected-access
    for kind in found:
        for name in WARMED.get(kind, ()):
            plugins.get(kind, {}).pop(name, None)
        # A plugin's module is imported under a name shared by ansible-core's plugin and a
        # playbook's own of the same name (ansible.plugins.callback.default): whichever is in
        # sys.modules wins, so the warmed ones go too.
        for name in WARMED_MODULES.get(kind, ()):
            sys.modules.pop(name, None)


def _send(fd: int, message: Dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode("utf-8")
    while data:
        data = data[os.write(fd, data):]


def _reap(children: Dict[int, Any], rep_fd: int) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rid = children.pop(pid, None)
        _send(rep_fd, {"id": rid, "exit": os.waitstatus_to_exitcode(status)})


def _fork(request: Dict[str, Any], server_fds: Tuple[int, ...]) -> Optional[Tuple[int, int]]:
    go_r, go_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(go_r)
        os.close(go_w)
        return None
    if pid:
        os.close(go_r)
        return pid, go_w
    # The child: it never returns into the server's loop.
    code = 70
    try:
        os.close(go_w)
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        go = os.read(go_r, 1)
        os.close(go_r)
        if go != b"1":
            os._exit(code)       # the server died before the runner learnt this pid
        code = _child(request)
    except BaseException:        # pylint: disable=broad-except
        try:
            import traceback
            traceback.print_exc()
        except BaseException:    # pylint: disable=broad-except
            pass
    finally:
        os._exit(code)
    return None   # not reached


def _child(request: Dict[str, Any]) -> int:
    """Become the ``ansible-playbook`` process of the request and run it; its exit status."""
    import atexit
    import random
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    random.seed()
    playbooks = [a for a in sys.argv[1:] if a.endswith((".yml", ".yaml")) and os.path.isfile(a)]
    _forget_shadowed([request["cwd"]] + [os.path.dirname(os.path.abspath(a)) for a in playbooks])
    # ansible-core's controller code (not module code): this process is ansible-playbook.
    import importlib
    C = importlib.import_module("ansible.constants")
    cleanup_tmp_file = importlib.import_module("ansible.utils.path").cleanup_tmp_file
    # The server's temporary folder is the server's: this process makes (and removes) its own.
    atexit.unregister(cleanup_tmp_file)
    C.DEFAULT_LOCAL_TMP = C.config.get_config_value("DEFAULT_LOCAL_TMP")
    cli = importlib.import_module("ansible.cli.playbook").PlaybookCLI
    try:
        cli.cli_executor(sys.argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    try:
        atexit._run_exitfuncs()      # pylint: disable=protected-access
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:    # pylint: disable=broad-except
                pass
        try:
            with open(request["status"], "w", encoding="utf-8") as fh:
                fh.write(str(code))
        except (OSError, KeyError, TypeError):
            pass
    return code & 0xFF


# ---------------------------------------------------------------------------------- runner side
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
            raise subprocess.TimeoutExpired("ansible-playbook", timeout)
        if self.returncode is None:
            self._wait_orphan(timeout)
        return self.returncode      # type: ignore[return-value]

    def _wait_orphan(self, timeout: Optional[float]) -> None:
        """The server died while this child ran: wait for the child itself (its pidfd), then
        read the status it left; none: it was killed, or the server died before it ran."""
        if self._pidfd is not None:
            ready, dummy, dummy = select.select([self._pidfd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired("ansible-playbook", timeout)
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
        self.proc: Optional[subprocess.Popen] = None
        self.pid = 0
        self.alive = False
        self._lock = threading.Lock()
        self._pending: Dict[int, ForkedProcess] = {}
        self._next = 0

    def start(self) -> None:
        """Start the server and wait until ansible-core is imported; ForkServerError if not."""
        here = os.path.abspath(__file__)
        if here.endswith((".pyc", ".pyo")):
            here = here[:-1]
        try:
            self.proc = subprocess.Popen(self.python + ["-c", BOOT, here, self.bin_dir], cwd=self.cwd,
                                         env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         start_new_session=True, close_fds=True)
        except OSError as exc:
            raise ForkServerError("cannot start %s: %s" % (self.python[0], exc)) from None
        first: List[bytes] = []
        reader = threading.Thread(target=lambda: first.append(self.proc.stdout.readline()), daemon=True)
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
                _send(self.proc.stdin.fileno(), {"id": child.rid, "argv": argv, "env": env, "cwd": cwd,
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
        stream = self.proc.stdout
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
        for stream in (proc.stdin, proc.stdout):
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
    files = []
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
        self._said: set = set()

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
