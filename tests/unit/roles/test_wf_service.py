# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fallback service manager (roles/wf_service/files/wf-service) with real processes.

Issue 17: a worker killed under the fallback manager stayed dead until site.yml ran again.  The
manager now keeps one supervisor per service that restarts the program when it dies (like
systemd's Restart=always) with a backoff.  These tests run the script as the role runs it, on a
small program, and kill that program with SIGKILL: it must come back by itself, ``stop`` must
stop both, a program that keeps dying must be restarted with growing delays (the reason in the
log), and a program deaf to SIGTERM must be SIGKILLed at the stop bound.  Waits are on conditions
with generous deadlines; no timing is asserted.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HELPER = os.path.join(ROOT, "roles", "wf_service", "files", "wf-service")

# The program under supervision: prints its pid, then behaves as PROG_MODE says.
PROG = """#!%s
import os, signal, sys, time
mode = os.environ.get("PROG_MODE", "serve")
print("prog %%d up (%%s)" %% (os.getpid(), mode), flush=True)
if mode == "deny":   # what a worker lacking a Consul permission does: one line, exit
    print("permission denied on wf/facts/x (token lacks write on wf/facts/)", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
"""


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("not within %s s: %s" % (timeout, what))
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for init counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


class Service:
    def __init__(self, tmp_path, **spec: Any) -> None:
        prog = tmp_path / "prog.py"
        prog.write_text(PROG % sys.executable)
        prog.chmod(0o755)
        self.log = tmp_path / "log" / "prog.log"
        self.spec = {"name": "prog", "argv": [str(prog)], "pidfile": str(tmp_path / "run" / "prog.pid"),
                     "log": str(self.log), "stop_timeout": 5, "start_check": 0.3,
                     "restart_delay": 0.2, "restart_delay_max": 2, "env": {}}
        self.spec.update(spec)
        self.path = tmp_path / "prog.json"
        self.path.write_text(json.dumps(self.spec))

    def run(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        # the bound on every command: a stop that hangs fails the test instead of blocking it
        r = subprocess.run([sys.executable, HELPER, cmd, str(self.path)], capture_output=True, text=True,
                           timeout=60, check=False)
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def do(self, cmd: str) -> Dict[str, Any]:
        return json.loads(self.run(cmd).stdout)

    def replaced(self, old: int) -> Optional[Dict[str, Any]]:
        """The status once a program other than ``old`` runs, else None."""
        st = self.do("status")
        return st if st["pid"] not in (None, old) else None

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def service(tmp_path):
    made = []

    def make(**spec: Any) -> Service:
        s = Service(tmp_path, **spec)
        made.append(s)
        return s
    yield make
    for s in made:  # never leave a supervisor behind, whatever the test did
        s.run("stop", check=False)


def test_sigkilled_program_comes_back_and_stop_stops_both(service):
    s = service()
    first = s.do("start")
    assert first["changed"] and first["state"] == "started"
    pid, sup = first["pid"], first["supervisor"]
    assert pid != sup
    # idempotence: a second start (the second playbook run) changes nothing
    again = s.do("start")
    assert not again["changed"] and (again["pid"], again["supervisor"]) == (pid, sup)

    os.kill(pid, signal.SIGKILL)
    back = wait_for(lambda: s.replaced(pid), what="the program started again after SIGKILL")
    assert back["state"] == "started" and back["supervisor"] == sup
    assert "pid %d killed by SIGKILL" % pid in s.text()
    assert "started again, pid %d" % back["pid"] in s.text()

    stopped = s.do("stop")
    assert stopped["changed"] and stopped["pid"] == back["pid"] and not stopped["killed_by_stop"]
    assert gone(back["pid"]) and gone(sup)
    assert s.do("status") == {"changed": False, "pid": None, "supervisor": None, "state": "stopped"}
    assert not os.path.exists(s.spec["pidfile"])
    assert not s.do("stop")["changed"]


def test_program_that_keeps_dying_is_restarted_with_backoff_and_its_reason_logged(service):
    """A worker lacking a permission exits with one line: restarted, but ever more slowly."""
    s = service(env={"PROG_MODE": "deny"}, start_check=0, restart_delay=0.1, restart_delay_max=0.8)
    s.do("start")
    wait_for(lambda: s.text().count("exited with status 3") >= 5, what="five quick deaths")
    s.do("stop")
    text = s.text()
    assert "permission denied on wf/facts/x (token lacks write on wf/facts/)" in text
    delays = [float(d) for d in re.findall(r"exited with status 3 after [0-9.]+ s; restart in ([0-9.]+) s", text)]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 0.8]


def test_program_that_dies_at_once_fails_the_start_with_its_log(service):
    s = service(env={"PROG_MODE": "deny"}, start_check=5)
    r = s.run("start", check=False)
    assert r.returncode == 1
    assert "prog did not start" in r.stderr and "permission denied on wf/facts/x" in r.stderr
    # the supervisor was stopped with it: nothing restarts the program behind the failed task
    assert s.do("status")["state"] == "stopped"


def test_program_that_cannot_be_executed_fails_the_start(service, tmp_path):
    s = service(argv=[str(tmp_path / "missing")])
    r = s.run("start", check=False)
    assert r.returncode == 1 and "cannot start prog" in r.stderr and "missing" in r.stderr
    assert s.do("status")["state"] == "stopped"


def test_program_deaf_to_sigterm_is_sigkilled_at_the_stop_bound(service):
    s = service(env={"PROG_MODE": "deaf"}, stop_timeout=0.5)
    st = s.do("start")
    stopped = s.do("stop")
    assert stopped["changed"] and gone(st["pid"]) and gone(st["supervisor"])
    assert "still running 0.5 s after SIGTERM: SIGKILL" in s.text()
    assert "killed by SIGKILL" in s.text()


@pytest.mark.parametrize("policy,restarted", [("always", True), ("on-failure", True), ("no", False)])
def test_restart_policy(service, policy, restarted):
    s = service(restart=policy)
    st = s.do("start")
    os.kill(st["pid"], signal.SIGKILL)
    if restarted:
        wait_for(lambda: s.do("status")["pid"] not in (None, st["pid"]), what="restart")
    else:
        wait_for(lambda: s.do("status")["state"] == "stopped", what="the supervisor gives up")
        assert "not restarted (restart policy no)" in s.text()
        assert gone(st["supervisor"])


def test_on_failure_does_not_restart_a_clean_exit(service):
    s = service(restart="on-failure")
    st = s.do("start")
    os.kill(st["pid"], signal.SIGTERM)  # the program exits 0 on SIGTERM
    wait_for(lambda: s.do("status")["state"] == "stopped", what="the supervisor ends")
    assert "exited with status 0" in s.text() and "not restarted (restart policy on-failure)" in s.text()


def test_program_running_without_supervisor_is_adopted_not_doubled(service):
    """An older wf-service left the program running alone: start supervises it, never starts a second."""
    s = service()
    os.makedirs(os.path.dirname(s.spec["pidfile"]), exist_ok=True)
    alone = subprocess.Popen(s.spec["argv"], start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        with open(s.spec["pidfile"], "w") as f:
            f.write("%d\n" % alone.pid)
        wait_for(lambda: s.do("status")["pid"] == alone.pid, what="the lone program seen")
        st = s.do("start")
        assert st["changed"] and st.get("adopted") and st["pid"] == alone.pid
        alone.kill()
        alone.wait()
        back = wait_for(lambda: s.replaced(alone.pid), what="a new program after the adopted one died")
        assert back["supervisor"] == st["supervisor"]
    finally:
        if alone.poll() is None:
            alone.kill()
            alone.wait()


def test_stop_during_backoff(service):
    s = service(env={"PROG_MODE": "deny"}, start_check=0, restart_delay=30, restart_delay_max=30)
    st = s.do("start")
    wait_for(lambda: "restart in 30 s" in s.text(), what="the first backoff")
    stopped = s.do("stop")
    assert stopped["changed"] and gone(st["supervisor"])
    assert s.do("status")["state"] == "stopped"


def test_reload_signals_the_program(service):
    s = service(reload_signal="USR1")
    st = s.do("start")
    s.do("reload")  # SIGUSR1 kills the test program (default action): the supervisor restarts it
    back = wait_for(lambda: s.replaced(st["pid"]), what="restart after the reload signal")
    assert "pid %d killed by SIGUSR1" % st["pid"] in s.text() and back["supervisor"] == st["supervisor"]
