# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start an operation's process and supervise it until it ends: the one job, apart from
preparing the command (``process_executor.py``), of the runner.

A process is started from a fork server (a playbook, ``forkserver_client.py``) or as a
``subprocess.Popen`` in a session of its own (its process group), its output going to the log
file; it is then waited for up to the operation's timeout, its whole group sent SIGTERM, then
SIGKILL after a grace period, on a timeout or a cancel of its run.  Both kinds of process are
supervised through the same calls (``pid``, ``wait``, ``returncode``, ``stdin``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import IO, Any, Dict, List, Optional, Set, Tuple, cast

from .forkserver_client import ForkServerError, ForkServers
from .output import append_log

EXIT_NOT_RUN = -1          # the process was never started (bad input, missing file)


class ProcessSupervision:
    """The executor's processes: started, supervised, killed.  Mixed into
    ``process_executor.ProcessExecutor``, whose ``__init__`` sets the attributes below."""

    kill_grace: float
    forkservers: Optional[ForkServers]
    _running: Dict[int, Tuple[str, Any]]      # pid -> (run, Popen or ForkedProcess)
    _canceled: Set[int]
    _lock: threading.Lock

    def _spawn(self, argv: List[str], env: Dict[str, str], cwd: str, log_file: str, timeout: float,
               run: str, stdin_data: Optional[bytes] = None, stderr_path: Optional[str] = None,
               fork_status: Optional[str] = None,
               details: Optional[Dict[str, Any]] = None) -> Tuple[int, bool, bool]:
        """(exit code, timed out, canceled).  ``stdin_data`` is written to the process's standard
        input, which stays open until it exits (a remote operation dies when it closes);
        ``stderr_path`` keeps the standard error apart from the log.  ``fork_status``: a playbook,
        which a fork server may start (the child leaves its exit status in that file); the
        supervision below is the same for both kinds of process."""
        proc = self._start(argv, env, cwd, log_file, stdin_data, stderr_path, fork_status, details)
        if proc is None:
            return EXIT_NOT_RUN, False, False
        if stdin_data is not None:
            threading.Thread(target=_feed, args=(proc, stdin_data), daemon=True).start()
        with self._lock:
            self._running[proc.pid] = (run, proc)
        timed_out, canceled = self._supervise(proc, log_file, timeout)
        if canceled:
            append_log(log_file, "\n[wfengine] killed: run canceled\n")
        if getattr(proc, "error", None):
            append_log(log_file, "\n[wfengine] %s\n" % proc.error)
        return proc.returncode, timed_out, canceled

    def _start(self, argv: List[str], env: Dict[str, str], cwd: str, log_file: str,
               stdin_data: Optional[bytes], stderr_path: Optional[str], fork_status: Optional[str],
               details: Optional[Dict[str, Any]]) -> Any:
        """The started process (a fork server's child or a Popen), or None: it could not be
        started (the reason is in the log file)."""
        err = open(stderr_path, "wb") if stderr_path else None
        proc: Any = None
        try:
            with open(log_file, "wb") as out:
                servers = self.forkservers
                if fork_status is not None and servers is not None:
                    proc = _fork(servers, argv, env, cwd, log_file, fork_status, details)
                if proc is None:
                    proc = _popen(argv, env, cwd, out, err, stdin_data)
        finally:
            if err is not None:
                err.close()
        return proc

    def _supervise(self, proc: Any, log_file: str, timeout: float) -> Tuple[bool, bool]:
        """(timed out, canceled): waits for the process, killed when its timeout passes."""
        timed_out = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill_group(proc)
                append_log(log_file, "\n[wfengine] killed: timeout of %g s exceeded\n" % timeout)
        finally:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            with self._lock:
                self._running.pop(proc.pid, None)
                canceled = proc.pid in self._canceled
                self._canceled.discard(proc.pid)
        if canceled:
            # The cancel's thread SIGKILLs what is left of the group after the grace, but the
            # process may exit as soon as the run ends canceled (a client's local workers): the
            # kill is finished here, before the result that can end the run is reported.
            _wait_group_gone(proc.pid, time.monotonic() + self.kill_grace)
            _killpg(proc.pid, signal.SIGKILL)
        return timed_out, canceled

    def _kill_group(self, proc: Any) -> None:
        """``proc``: a ``subprocess.Popen`` or a ``forkserver_client.ForkedProcess`` (the same
        calls)."""
        _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        try:
            proc.wait(timeout=self.kill_grace)
        except subprocess.TimeoutExpired:
            pass
        else:
            # The leader left on TERM: the rest of its group (a child cleaning up, or ignoring
            # TERM) still gets what is left of the grace, as documented, before the SIGKILL.
            _wait_group_gone(proc.pid, deadline)
        # Whatever of the group ignored TERM or outlived its leader.
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _fork(servers: ForkServers, argv: List[str], env: Dict[str, str], cwd: str, log_file: str,
          fork_status: str, details: Optional[Dict[str, Any]]) -> Any:
    """The playbook started by a fork server, or None: it runs as a process."""
    try:
        proc = servers.spawn(argv, env, cwd, log_file, fork_status)
    except ForkServerError:
        return None       # logged by ForkServers; this one runs as a process
    if details is not None:
        details["forked"] = True
    return proc


def _popen(argv: List[str], env: Dict[str, str], cwd: str, out: IO[bytes], err: Optional[IO[bytes]],
           stdin_data: Optional[bytes]) -> Optional["subprocess.Popen[bytes]"]:
    """The process in a session of its own, or None (why is written to ``out``)."""
    try:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=out,
                                stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
                                stderr=err if err is not None else subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    except OSError as exc:
        out.write(("[wfengine] cannot start %s: %s\n" % (argv[0], exc)).encode("utf-8"))
        return None


def _feed(proc: "subprocess.Popen[bytes]", data: bytes) -> None:
    """Write ``data`` and leave the pipe open (closed by _spawn when the process ends)."""
    stdin = cast(IO[bytes], proc.stdin)      # started with a pipe
    try:
        stdin.write(data)
        stdin.flush()
    except (OSError, ValueError):
        pass   # the process ended or closed its input: its exit status tells


def _wait_group_gone(pgid: int, deadline: float) -> None:
    """Until no process of the group is left, or ``deadline``.  Polled (10 ms doubling to 100 ms):
    the members are not our children, so nothing can be waited on; this is the kill path of a
    timed-out or canceled operation, never the engine's hot path."""
    delay = 0.01
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if not live_in_group(pgid):
            return    # zombies only: gone, as far as a kill is concerned
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.1)


def live_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is alive and not a zombie.  A member whose parent
    died is reaped by PID 1, which may take seconds (a container's init); ``killpg(pgid, 0)``
    succeeds on a zombie, so the kill path waited out the whole grace for processes that had
    ended.  Linux's /proc; without it, any member counts as alive."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                # after the command's closing parenthesis: state, ppid, pgrp, ...
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
