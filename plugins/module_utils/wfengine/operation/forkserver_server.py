# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The program of a playbook fork server: what runs in the server's own process and its children.

A fresh ``ansible-playbook`` spends most of a no-op playbook's time importing ansible-core.  A
fork server is a long-lived child of the worker that imports ansible-core's CLI once, and parses
what every run would parse the same way whatever its configuration (ansible.builtin's plugin
routing, the option definitions of ansible-core's own common plugins: _preload_builtin_routing,
with what a playbook's own plugins need undone in the child, _forget_shadowed), and, per
operation, forks a child that becomes what ``ansible-playbook``
would have been: its own session and process group, the operation's working directory,
environment, standard input ``/dev/null``, standard output and error into the operation's log
file, ``sys.argv`` the same argument list; it runs ``PlaybookCLI.cli_executor`` and exits with
its status.  The runner (``process_executor.ProcessExecutor``) supervises the child exactly as it does a
process it started: timeout and cancel kill the child's process group, its exit status has
``subprocess``'s meaning (negative: killed by that signal).

Which server serves an operation (one per *key*, so that what ansible-core reads at import is
what a fresh process would have read) is the runner's side: ``forkserver_client.py``.  Per
child, the few things a fork would otherwise share with the server and its siblings are made its
own: the local temporary folder ``DEFAULT_LOCAL_TMP`` (resolved, hence created, at import;
removed at exit by the process that made it), the ``random`` module's state, and exit handlers.

The protocol is one JSON object per line on the server's standard input and output (never
pickle): ``{"id", "argv", "env", "cwd", "log", "status"}`` in, ``{"id", "pid"}`` then
``{"id", "exit"}`` out.  A child waits for the server to say "go" after its pid was sent, so
that a server dying between the fork and the reply never leaves a playbook running that the
runner does not know of (it would run it a second time on the fallback path).  The child also
writes its exit status to the ``status`` file, so that when the server dies while it runs, the
runner still learns how it ended (``pidfd`` tells when; Linux 5.3).

This file is the server's program: ``python -c BOOT forkserver_server.py BINDIR`` loads it by
path (``forkserver_client.BOOT``), so neither its folder nor the working directory is on
``sys.path``.  It imports nothing of the engine: the server side uses the standard library only.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import Any, Dict, List, Optional, Set, Tuple, cast

# Modules every playbook run loads besides the CLI's own (measured with a no-op playbook):
# importing them in the server leaves each child less to import.  Plugins are left to the plugin
# loader of each child (which also loads their configuration definitions).
PRELOAD = (
    "ansible.cli.playbook", "ansible.executor.playbook_executor", "ansible.executor.task_executor",
    "ansible.executor.process.worker", "multiprocessing.synchronize", "multiprocessing.popen_fork",
)


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
        send_line(rep_fd, {"error": "cannot import ansible-core: %s: %s" % (type(exc).__name__, exc)})
        os._exit(1)
    _preload_builtin_routing()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    for fd in (wake_r, wake_w):
        os.set_inheritable(fd, False)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.set_wakeup_fd(wake_w)
    children: Dict[int, Any] = {}
    send_line(rep_fd, {"ready": True, "pid": os.getpid()})
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
                forked = _fork(request, (req_fd, rep_fd, wake_r, wake_w))
                if forked is None:
                    send_line(rep_fd, {"id": request.get("id"), "error": "fork failed"})
                    continue
                pid, go = forked
                children[pid] = request.get("id")
                send_line(rep_fd, {"id": request.get("id"), "pid": pid})
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
    builtin = os.path.dirname(cast(str, importlib.import_module("ansible.plugins").__file__))
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
    found: Set[str] = set()
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


def send_line(fd: int, message: Dict[str, Any]) -> None:
    """One message of the protocol (a JSON object and a newline) on ``fd``; the runner's end
    (forkserver_client.py) sends its requests with it too."""
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
        send_line(rep_fd, {"id": rid, "exit": os.waitstatus_to_exitcode(status)})


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
    C: Any = importlib.import_module("ansible.constants")
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
