# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures.

Consul: ``consul_cluster`` is a real 3-server cluster on 127.0.0.11-13 (ports 18300-18302,
HTTP 18500), started once per test session and stopped by PID at its end; concurrent test sessions
on the machine share it (see tests/consul_cluster.py).  Set WF_CONSUL_URL to use an existing
cluster instead (tests that kill servers then skip).  ``consul_space`` is a ConsulSpace on it under
a random key prefix, deleted afterwards.
"""
from __future__ import annotations

import os
import sys
import uuid

import pytest

# The helpers next to this file (consul_cluster, engine_helpers, secret_models, ...) are imported
# by their plain names: pyproject.toml's pythonpath gives pytest this directory; ansible-test units
# (scripts/units.sh) runs pytest with its own configuration, so the directory is put here too.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from consul_cluster import ROOT, ConsulCluster  # noqa: E402  (after the path above)


def pytest_configure(config):
    """The markers pyproject.toml declares, declared again for ansible-test units, which runs
    pytest with --strict-markers and a configuration of its own."""
    for marker in ("consul: needs the 3-server Consul cluster on loopback (started by the fixture)",
                   "slow: takes more than a few seconds",
                   "loopback: uses fixed loopback addresses or ports (Consul clusters, sshd "
                   "machines, a fixed port): CI runs these apart from the others, at the same time"):
        config.addinivalue_line("markers", marker)


# Where the tests that take fixed machine resources live: Consul clusters on 127.0.0.11-83, the
# sshd machines on 127.0.0.61-63, fixed ports.  scripts/test.sh runs `-m loopback` and
# `-m "not loopback"` in two pytest processes at once (docs/decisions.md): two tests of the
# same part never run at the same time, so a new test that takes such a resource goes here (or
# says `pytestmark = pytest.mark.loopback`), or is marked consul.
_LOOPBACK_DIRS = ("distributed", "remote")


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = os.path.relpath(str(item.fspath), _HERE).split(os.sep)
        if rel[0] in _LOOPBACK_DIRS or item.get_closest_marker("consul") is not None:
            item.add_marker(pytest.mark.loopback)


@pytest.fixture(scope="session")
def consul_cluster():
    url = os.environ.get("WF_CONSUL_URL")
    if url:
        yield ConsulCluster.external(url)
        return
    cluster = ConsulCluster(os.path.join(ROOT, ".cache", "pytest-consul"))
    cluster.acquire_shared()
    try:
        yield cluster
    finally:
        cluster.release_shared()


@pytest.fixture
def consul_prefix():
    """A key prefix no other test (or test session) uses."""
    return "wftest-%s/" % uuid.uuid4().hex


@pytest.fixture
def consul_space(consul_cluster, consul_prefix):
    from wfengine.space.consul import ConsulSpace
    space = ConsulSpace(url=consul_cluster.urls[0], prefix=consul_prefix)
    yield space
    try:
        space.delete_tree("")
    finally:
        space.close()
