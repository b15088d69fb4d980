"""The kill path's view of a process group (operation/process_start.live_in_group): a group whose
members all ended is gone even while a zombie of it waits for PID 1 to reap it.  Real processes."""
import os
import signal
import subprocess

from wfengine.operation.process_start import live_in_group

from engine_helpers import until


def _stat(pid: str):
    try:
        with open("/proc/%s/stat" % pid, "rb") as fh:
            # after the command's closing parenthesis: state, ppid, pgrp, ...
            return fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _state(pid: str):
    fields = _stat(pid)
    return fields[0] if fields else None


def assert_members(pgid: int):
    """The pids of group ``pgid`` other than its leader (the shell's ``sleep``)."""
    members = until(lambda: [p for p in os.listdir("/proc") if p.isdigit() and p != str(pgid)
                             and (_stat(p) or [b"", b"", b""])[2] == str(pgid).encode()],
                    30, "the member to start")
    return members


def test_a_running_member_is_alive_and_an_ended_group_is_not():
    # The leader starts a member and waits: two live processes in a session (group) of their own.
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        assert until(lambda: live_in_group(leader.pid), 30, "the group to start")
        members = assert_members(leader.pid)
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    # SIGKILL ends the member asynchronously: under load it may still run for a moment after
    # the leader was reaped (seen once beside a full test run), so its death is waited for.
    assert until(lambda: all(_state(p) in (None, b"Z", b"X") for p in members), 30,
                 "the killed member to die")
    # The member (not our child) may stay a zombie until PID 1 reaps it: not alive either way.
    assert not live_in_group(leader.pid)


def test_an_unknown_group_has_nobody_alive():
    leader = subprocess.Popen(["true"], start_new_session=True)
    leader.wait()
    assert not live_in_group(leader.pid)
