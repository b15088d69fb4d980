"""Shared helpers of the engine tests: write small models, run workflows on an embedded Space."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict

from wfengine import api

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "seed_example" / "app.yaml"
SEED = REPO.parent / "shared" / "seed"


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def model_yaml(templates: str, extra: str = "") -> str:
    return ("tosca_definitions_version: tosca_simple_yaml_1_3\n" + extra +
            "topology_template:\n  node_templates:\n" + textwrap.indent(textwrap.dedent(templates), "    "))


def embedded(tmp_path: Path, name: str = "space.db") -> api.SpaceOptions:
    return api.SpaceOptions(backend="embedded", path=str(tmp_path / name))


def deploy(opts: api.SpaceOptions, model_path: str, model: str = "m", instance: str = "i") -> None:
    space = api.open_space(opts)
    try:
        api.upload_model(space, model_path, model)
        api.create_instance(space, model, instance)
    finally:
        space.close()


def run(opts: api.SpaceOptions, workflow: str, model: str = "m", instance: str = "i",
        workers: int = 2, timeout: float = 120) -> Dict[str, Any]:
    """Run a workflow with local workers; returns {record, status, trace}."""
    space = api.open_space(opts)
    try:
        rec = api.start_workflow(space, workflow, model, instance)
        rec = api.run_with_local_workers(opts, space, rec["id"], workers, timeout=timeout)
        return {"record": rec, "status": api.status(space, model, instance),
                "trace": api.trace(space, model, instance)}
    finally:
        space.close()


def ansible_vault(*argv: str, stdin: str = "") -> str:
    """The ``ansible-vault`` command of the test venv (next to this Python): what an operator
    runs to make vault files; ansible is never imported by the tests' own process."""
    import os
    import subprocess
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    proc = subprocess.run([exe] + list(argv), input=stdin, capture_output=True, text=True, check=True)
    return proc.stdout


# Two tiers scaled to 4 each, every operation a script op.sh: the event and metrics tests
# follow it with a worker SIGKILLed inside a script.
DB_WEB_MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    db:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 4, max_instances: 50}
      interfaces:
        Standard: {create: op.sh, start: op.sh}
    web:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 4, max_instances: 50}
      requirements:
        - dependency: db
      interfaces:
        Standard: {create: op.sh, configure: op.sh, start: op.sh}
"""
