# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark topologies: layers of scaled hosts and hosted components, linked by ConnectsTo and
DependsOn with fan-in and fan-out, plus their flattened form for xOpera.

Why this shape.  The time of a run depends on three things the generator controls separately:
the number of node instances (work), the number of relationship instances (work, and the size of
each node's program), and the depth of the dependency chain (latency).  So:

* a *stack* is one Compute template scaled to ``host_scale`` instances with one SoftwareComponent
  template hosted on it, scaled to ``comp_scale`` instances per host: ``host_scale * (1 +
  comp_scale)`` node instances;
* ``layers`` layers of ``width`` stacks; the component of stack ``w`` in layer ``l`` ConnectsTo the
  components of stacks ``w .. w+connects-1`` of layer ``l+1`` and DependsOn the *hosts* of stacks
  ``w+1 .. w+depends`` of layer ``l+1`` (modulo ``width``): every template has the same fan-out
  and the same fan-in, whatever the width.  DependsOn targets hosts, not components, on purpose:
  a component that is a ConnectsTo target waits for its sources to be *created*, and a source
  that DependsOn a component waits for it to be *started* before creating, so DependsOn between
  components of adjacent layers chains every stack of a layer to the next one (a chain as long as
  the width, or a deadlock through the modulo, which the engine rejects at upload);
* sizes grow by ``width`` only, with fixed scaling and fan-out, so relationship instances per
  node instance and the chain depth stay constant: a run's time should then grow linearly, and a
  super-linear curve points at the engine, not at the topology.

Between two component templates of ``k = host_scale * comp_scale`` instances, one requirement
gives ``k * k`` relationship instances (each source instance to each target instance, as the
engine's scaling rules say).

The flattened form (``flat_yaml``) has one template per node instance and one requirement per
relationship instance, computed from the engine's own expansion, so xOpera (which has no scaling)
deploys exactly the same graph.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEED_EXAMPLE = os.path.join(ROOT, "examples", "seed_example", "app.yaml")

CONNECTS_TO = "tosca.relationships.ConnectsTo"
DEPENDS_ON = "tosca.relationships.DependsOn"
HOSTED_ON = "tosca.relationships.HostedOn"


@dataclass(frozen=True)
class Shape:
    layers: int = 4
    width: int = 8
    host_scale: int = 2
    comp_scale: int = 2
    connects: int = 1
    depends: int = 2

    @property
    def node_instances(self) -> int:
        return self.layers * self.width * self.host_scale * (1 + self.comp_scale)


# Named sizes: "seed" is the repository's example (19 node instances); the others are generated.
SIZE_TARGETS = {"seed": 19, "200": 200, "2k": 2000, "10k": 10000}


def shape_for(target: int, base: Optional[Shape] = None) -> Shape:
    """The generated shape whose node instance count is closest to ``target`` (width varies)."""
    base = base or Shape()
    per_width = base.layers * base.host_scale * (1 + base.comp_scale)
    width = max(base.connects + base.depends + 1, int(round(target / float(per_width))))
    return Shape(base.layers, width, base.host_scale, base.comp_scale, base.connects, base.depends)


def model_yaml(shape: Shape) -> str:
    """The scaled TOSCA model of a shape, on the engine's bundled normative types."""
    lines = ["tosca_definitions_version: tosca_simple_yaml_1_3", "",
             "description: >-",
             "  Benchmark topology (bench/generator.py): %d layers x %d stacks; each stack is a Compute"
             % (shape.layers, shape.width),
             "  scaled x%d hosting a SoftwareComponent scaled x%d per host; components ConnectsTo %d and"
             % (shape.host_scale, shape.comp_scale, shape.connects),
             "  DependsOn %d host templates of the next layer. %d node instances."
             % (shape.depends, shape.node_instances),
             "", "topology_template:", "  node_templates:"]
    for layer in range(shape.layers):
        for w in range(shape.width):
            host, comp = "h%d_%d" % (layer, w), "c%d_%d" % (layer, w)
            lines += ["    %s:" % host,
                      "      type: tosca.nodes.Compute",
                      "      capabilities:",
                      "        scalable: {properties: {default_instances: %d}}" % shape.host_scale,
                      "    %s:" % comp,
                      "      type: tosca.nodes.SoftwareComponent",
                      "      capabilities:",
                      "        scalable: {properties: {default_instances: %d}}" % shape.comp_scale,
                      "      requirements:",
                      "        - host: %s" % host]
            if layer + 1 < shape.layers:
                k = 0
                for i in range(shape.connects):
                    lines.append("        - conn%d: {node: c%d_%d, relationship: %s}"
                                 % (i, layer + 1, (w + k) % shape.width, CONNECTS_TO))
                    k += 1
                for i in range(shape.depends):
                    lines.append("        - dep%d: {node: h%d_%d, relationship: %s}"
                                 % (i, layer + 1, (w + 1 + i) % shape.width, DEPENDS_ON))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the engine's view of a model
def compile_file(path: str) -> Dict[str, Any]:
    """Rules and node instances of a model file, computed by the engine itself (no Space)."""
    from wfengine import catalog
    from wfengine.instances import expand
    compiled = catalog.compile_model(path, libs=[])
    nodes = expand(compiled["model"])
    rels = sum(len(n["out"]) for n in nodes.values())
    return {"rules": compiled["body"]["rules"], "nodes": nodes, "node_instances": len(nodes),
            "relationship_instances": rels}


# ------------------------------------------------------------------ xOpera's flattened form
_FLAT_TYPES = """node_types:
  bench.Component:
    derived_from: tosca.nodes.SoftwareComponent
    requirements:
      - connects:
          capability: tosca.capabilities.Node
          relationship: tosca.relationships.ConnectsTo
          occurrences: [0, UNBOUNDED]
      - depends:
          capability: tosca.capabilities.Node
          relationship: tosca.relationships.DependsOn
          occurrences: [0, UNBOUNDED]
"""
_FLAT_REQ = {HOSTED_ON: "host", CONNECTS_TO: "connects", DEPENDS_ON: "depends"}
_FLAT_TYPE = {"tosca.nodes.Compute": "tosca.nodes.Compute",
              "tosca.nodes.SoftwareComponent": "bench.Component"}


# xOpera's benchmark template: a no-op playbook on create, configure and start of every node.
NOOP_PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: nothing
      ansible.builtin.debug:
        msg: noop
"""
_PLAYBOOK_TYPES = """  bench.Host:
    derived_from: tosca.nodes.Compute
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        operations:
          create: playbooks/noop.yml
          configure: playbooks/noop.yml
          start: playbooks/noop.yml
  bench.PlaybookComponent:
    derived_from: bench.Component
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        operations:
          create: playbooks/noop.yml
          configure: playbooks/noop.yml
          start: playbooks/noop.yml
"""
_PLAYBOOK_TYPE = {"tosca.nodes.Compute": "bench.Host", "tosca.nodes.SoftwareComponent": "bench.PlaybookComponent"}


def flat_yaml(nodes: Dict[str, Dict[str, Any]], playbook: bool = False, addresses: bool = True) -> str:
    """One template per node instance, one requirement per relationship instance; no
    implementations (xOpera then runs no playbook: its pure orchestration cost), or with
    ``playbook`` the no-op playbook on create, configure and start of every node.  Compute nodes
    get a ``public_address`` because xOpera resolves every operation's host, even a no-op
    (``localhost``: its playbooks run there); our engine would reach such a host over SSH, so its
    copy has none (``addresses``): the playbooks run on the worker, as xOpera's on localhost."""
    lines = ["tosca_definitions_version: tosca_simple_yaml_1_3", "",
             _FLAT_TYPES + (_PLAYBOOK_TYPES if playbook else ""),
             "topology_template:", "  node_templates:"]
    types = _PLAYBOOK_TYPE if playbook else _FLAT_TYPE
    for nid in sorted(nodes):
        n = nodes[nid]
        if n["type"] not in _FLAT_TYPE:
            raise ValueError("%s: type %s has no flattened equivalent" % (nid, n["type"]))
        lines += ["    %s:" % nid, "      type: %s" % types[n["type"]]]
        if n["type"] == "tosca.nodes.Compute" and addresses:
            lines.append("      attributes: {public_address: localhost}")
        reqs = []
        for rel in n["out"]:
            if rel["type"] not in _FLAT_REQ:
                raise ValueError("%s: relationship type %s has no flattened equivalent" % (nid, rel["type"]))
            reqs.append("        - %s: %s" % (_FLAT_REQ[rel["type"]], rel["target"]))
        if reqs:
            lines += ["      requirements:"] + reqs
    return "\n".join(lines) + "\n"


def write_size(size: str, out_dir: str, shape: Optional[Shape] = None) -> Dict[str, Any]:
    """Write the model (and its flattened form) of a named size; returns paths and counts."""
    os.makedirs(out_dir, exist_ok=True)
    if size == "seed":
        model_path = SEED_EXAMPLE
        desc = {"kind": "seed example"}
    else:
        shape = shape or shape_for(SIZE_TARGETS[size] if size in SIZE_TARGETS else int(size))
        model_path = os.path.join(out_dir, "model-%s.yaml" % size)
        with open(model_path, "w", encoding="utf-8") as fh:
            fh.write(model_yaml(shape))
        desc = dict(asdict(shape), kind="generated")
    info = compile_file(model_path)
    flat_path = os.path.join(out_dir, "flat-%s.yaml" % size)
    with open(flat_path, "w", encoding="utf-8") as fh:
        fh.write(flat_yaml(info["nodes"]))
    playbook = {}
    for name, addresses in (("playbook_model", False), ("playbook_flat", True)):
        folder = os.path.join(out_dir, "%s-%s" % (name.replace("_", "-"), size))
        os.makedirs(os.path.join(folder, "playbooks"), exist_ok=True)
        with open(os.path.join(folder, "playbooks", "noop.yml"), "w", encoding="utf-8") as fh:
            fh.write(NOOP_PLAYBOOK)
        with open(os.path.join(folder, "app.yaml"), "w", encoding="utf-8") as fh:
            fh.write(flat_yaml(info["nodes"], playbook=True, addresses=addresses))
        playbook[name] = folder if name == "playbook_model" else os.path.join(folder, "app.yaml")
    return {"size": size, "model": model_path, "flat": flat_path, "shape": desc, **playbook,
            "node_instances": info["node_instances"],
            "relationship_instances": info["relationship_instances"]}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Write benchmark topologies (scaled and flattened).")
    p.add_argument("sizes", nargs="*", default=list(SIZE_TARGETS),
                   help="seed, 200, 2k, 10k or a number of node instances")
    p.add_argument("--out", default=os.path.join(HERE, "results", "raw", "models"))
    args = p.parse_args(argv)
    for s in args.sizes:
        r = write_size(s, args.out)
        print("%-5s %6d node instances %7d relationship instances  %s" % (
            s, r["node_instances"], r["relationship_instances"], r["model"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
