"""The kill path's view of a process group (operation/process_start.live_in_group): a group whose
members all ended is gone even while a zombie of it waits for PID 1 to reap it.  Real processes."""
import os
import signal
import subprocess

from wfengine.operation.process_start import live_in_group

from engine_helpers import until


def test_a_running_member_is_alive_and_an_ended_group_is_not():
    # The leader starts a member and waits: two live processes in a session (group) of their own.
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        assert until(lambda: live_in_group(leader.pid), 30, "the group to start")
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    # The member (not our child) may stay a zombie until PID 1 reaps it: not alive either way.
    assert not live_in_group(leader.pid)


def test_an_unknown_group_has_nobody_alive():
    leader = subprocess.Popen(["true"], start_new_session=True)
    leader.wait()
    assert not live_in_group(leader.pid)
