# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/sshd_hosts.py starts real sshd machines on loopback: check that a client reaches the
machine it names (and sees that machine's root), that a changed host key and a stopped machine
fail the way they would in production, and that stopping leaves no process behind."""
import os
import subprocess

import pytest

from sshd_hosts import SshHosts, regenerate_host_key, ssh_argv

pytestmark = [pytest.mark.slow, pytest.mark.loopback]   # the sshd machines on .61-62

ADDRESSES = ("127.0.0.61", "127.0.0.62")
PROBE = 'printf %s "$SSH_CONNECTION|$WF_MACHINE_ROOT"'


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    hosts = SshHosts(str(tmp_path_factory.mktemp("sshd")), ADDRESSES)
    try:
        yield hosts.start()
    finally:
        hosts.stop()


def run(argv):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30, check=False)


def probe(machine):
    done = run(ssh_argv(machine, PROBE))
    assert done.returncode == 0, done.stderr
    connection, root = done.stdout.split("|")
    # SSH_CONNECTION is "client_ip client_port server_ip server_port"
    return connection.split()[2], root


@pytest.mark.parametrize("address", ADDRESSES)
def test_each_machine_is_reached_at_its_address_with_its_root(hosts, address):
    machine = hosts.machine(address)
    assert probe(machine) == (address, machine.root)
    assert os.path.isdir(machine.root)


def test_known_hosts_lists_every_host_key(hosts):
    with open(hosts.known_hosts) as fh:
        lines = fh.read().splitlines()
    assert lines == ["%s %s" % (m.address, m.host_public_key) for m in hosts.machines]
    assert oct(os.stat(hosts.client_key).st_mode & 0o777) == "0o600"


def test_a_changed_host_key_is_refused_until_trusted(hosts):
    machine = hosts.machine(ADDRESSES[1])
    regenerate_host_key(machine)
    done = run(ssh_argv(machine, "true"))
    assert done.returncode == 255
    assert ("REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr
            or "Host key verification failed" in done.stderr), done.stderr
    hosts.write_known_hosts()
    assert probe(machine) == (machine.address, machine.root)


def test_a_stopped_machine_refuses_connections_then_comes_back(hosts):
    machine = hosts.machine(ADDRESSES[0])
    session = subprocess.Popen(ssh_argv(machine, "sleep 60"), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert probe(machine)[0] == machine.address  # the session above is up by now
        pid = machine.pid
        machine.stop()
        assert not machine.running()
        assert not os.path.exists("/proc/%d" % pid)  # gone, not even a zombie
        assert session.wait(10) == 255  # its open session was cut too
        leftovers = run(["pgrep", "-f", machine.config]).stdout.split()
        assert leftovers == []
        done = run(ssh_argv(machine, "true"))
        assert done.returncode == 255
        assert "Connection refused" in done.stderr, done.stderr
    finally:
        session.kill()
        session.wait()
        machine.start()
    assert probe(machine) == (machine.address, machine.root)
    assert hosts.machine(ADDRESSES[1]).running()  # the other machine was not touched


def test_a_taken_address_is_named(hosts, tmp_path):
    with pytest.raises(RuntimeError, match="127.0.0.61:22 is already in use"):
        SshHosts(str(tmp_path), ADDRESSES[:1]).start()
