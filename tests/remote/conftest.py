# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Three real OpenSSH "machines" on loopback (tests/sshd_hosts.py): 127.0.0.61-63 port 22 by
default (WF_TEST_SSH_ADDRESSES, comma-separated, to move them), one host key each, one client key
for the session.  Each machine's SSH sessions see WF_MACHINE_ROOT, the folder that stands for
its file system, so three machines on one file system keep apart."""
from __future__ import annotations

import os

import pytest

from sshd_hosts import SshHosts

ADDRESSES = os.environ.get("WF_TEST_SSH_ADDRESSES", "127.0.0.61,127.0.0.62,127.0.0.63").split(",")


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    hosts = SshHosts(str(tmp_path_factory.mktemp("machines")), ADDRESSES)
    hosts.start()
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture
def inventory(tmp_path, machines):
    """The worker-side inventory the tests use: the loopback machines' Python (root's shell
    profile on this machine may put a broken interpreter first on PATH)."""
    path = tmp_path / "inventory.yml"
    path.write_text("all:\n  vars:\n    ansible_python_interpreter: /usr/bin/python3\n"
                    "  hosts:\n    web_host_0: {}\n    app_host_0: {}\n    db_host_0: {}\n")
    return str(path)
