"""RuleSet.starts_ready is the cheap form of "the program does not open with a wait"."""
import os

import pytest

from wfengine.catalog import compile_model
from wfengine.instances import expand
from wfengine.rules import WAIT, RuleSet

from generator import Shape, model_yaml  # bench/generator.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _models(tmp_path):
    yield os.path.join(ROOT, "examples", "seed_example", "app.yaml")
    path = tmp_path / "layers.yaml"
    path.write_text(model_yaml(Shape(layers=3, width=3)))
    yield str(path)


@pytest.mark.parametrize("workflow", ["install", "uninstall"])
def test_starts_ready_agrees_with_the_program(tmp_path, workflow):
    checked = 0
    for model in _models(tmp_path):
        compiled = compile_model(model, libs=[])
        rs = RuleSet(workflow, compiled["body"]["rules"][workflow])
        for node in expand(compiled["model"]).values():
            prog = rs.program(node)
            assert rs.starts_ready(node) == (bool(prog) and prog[0].op != WAIT), node["id"]
            checked += 1
    assert checked > 19
