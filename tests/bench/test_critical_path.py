# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's yardstick (bench/critical_path.py): the rounds of the ideal schedule, and the
same with each operation's own time (``op_cost``) added after its checkpoint."""
import critical_path
import generator
import pytest

from engine_helpers import EXAMPLE

ONE = ("tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n"
       "  node_templates:\n    app:\n      type: tosca.nodes.SoftwareComponent\n")


@pytest.fixture(scope="module")
def seed():
    return generator.compile_file(str(EXAMPLE))


def test_one_node_pays_a_checkpoint_and_the_time_of_each_operation(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(ONE)
    info = generator.compile_file(str(path))
    plain = critical_path.analyse(info["rules"], "install", info["nodes"])
    checked = critical_path.analyse(info["rules"], "install", info["nodes"], checkpoint_ops=True)
    timed = critical_path.analyse(info["rules"], "install", info["nodes"], checkpoint_ops=True,
                                  op_cost=1.5)
    assert checked["operations"] == 3
    # without operations that run, the node's program commits once; with them, a checkpoint
    # before each operation, then the last commit; each operation's time comes on top
    assert plain["rounds"] == plain["commits"] == 1
    assert checked["rounds"] == checked["commits"] == 1 + 3
    assert timed["rounds"] == 1 + 3 + 3 * 1.5
    assert timed["commits"] == checked["commits"]


@pytest.mark.parametrize("workflow", ["install", "uninstall"])
def test_operation_time_lengthens_the_seed_path_by_at_most_every_operation(seed, workflow):
    checked = critical_path.analyse(seed["rules"], workflow, seed["nodes"], checkpoint_ops=True)
    timed = critical_path.analyse(seed["rules"], workflow, seed["nodes"], checkpoint_ops=True,
                                  op_cost=2.0)
    added = timed["rounds"] - checked["rounds"]
    # the operations on the longest chain, not all 315 of them (nodes run side by side)
    assert 0 < added < 2.0 * checked["operations"]
    assert added % 2.0 == 0
    assert timed["commits"] == checked["commits"]
