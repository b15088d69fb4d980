# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl graph``: the ordering graph of a workflow, as DOT, Mermaid or SVG.

Why these edges: they are the wait edges of ``rules.ordering_deps``, the graph in which the
upload's deadlock check looks for a cycle, so the picture shows what the engine itself will
enforce, not a second reading of the relationships.  An edge ``B -> A`` says that A, before
reaching its state ``before``, waits for B to have reached ``state`` (through a relationship of
type ``relationship``).  Without an instance the nodes are the templates (every instance of a
template has the same program shape); with one, the node instances with their own relationship
instances (scaling included)."""
from __future__ import annotations

import shutil
import subprocess
from typing import Any, Dict, List, Optional

from . import catalog, deployments
from .errors import ModelError, WfError
from .rules import STATE, WAIT, RuleSet, _template_nodes, ordering_deps
from .tosca.model import NodeTemplate


class _Templates:
    def __init__(self, templates: Dict[str, Any]):
        self.templates = templates


def _rules(space: Any, model: str, digest: str, workflow: str) -> RuleSet:
    rules = catalog.read_rules(space, model, digest, workflow)
    if rules is None:
        raise catalog.unknown_workflow(space, model, workflow)
    if "imperative" in rules:
        raise ModelError("workflow %s of model %s is imperative (topology_template.workflows): its "
                         "order is the steps' on_success, not waits; wfctl graph draws declarative "
                         "workflows" % (workflow, model))
    return RuleSet(workflow, rules)


def ordering_graph(space: Any, model: str, instance: Optional[str], workflow: str) -> Dict[str, Any]:
    """Nodes (templates, or node instances with ``instance``) and the wait edges of ``workflow``."""
    if instance:
        head = deployments.instance_head(space, model, instance)
        digest = head["model_digest"]
        nodes = deployments.read_nodes(space, model, instance, head)
    else:
        digest = catalog.model_head(space, model)["digest"]
        raw = catalog.read_templates(space, model, digest)
        nodes = _template_nodes(_Templates({n: NodeTemplate.from_json(v) for n, v in raw.items()}))
    rs = _rules(space, model, digest, workflow)
    programs = {n: rs.program(v) for n, v in nodes.items()}
    programs = {n: p for n, p in programs.items() if p}
    deps = ordering_deps(programs)
    edges: List[Dict[str, Any]] = []
    seen = set()
    for (t, k), before in sorted(deps.items()):
        ins = programs[t][k]
        if ins.op != WAIT:
            continue
        for other, pos in before:
            if other == t:
                continue
            # the state the waiting point comes before (the end of the program: none)
            nxt = next((i.name for i in programs[t][k:] if i.op == STATE), None)
            edge = (other, t, programs[other][pos].name, nxt, ins.rtype)
            if edge not in seen:
                seen.add(edge)
                edges.append({"from": other, "to": t, "state": edge[2], "before": nxt,
                              "relationship": ins.rtype})
    out_nodes = [{"id": n, "type": nodes[n]["type"], "template": nodes[n].get("template", n),
                  "states": [i.name for i in programs[n] if i.op == STATE]} for n in sorted(programs)]
    return {"model": model, "instance": instance, "workflow": workflow,
            "level": "instance" if instance else "template", "nodes": out_nodes, "edges": edges}


def _short(name: Optional[str]) -> str:
    return (name or "").rsplit(".", 1)[-1]


def _edge_label(e: Dict[str, Any]) -> str:
    label = "%s" % e["state"]
    if e["before"]:
        label += ", before %s" % e["before"]
    return "%s (%s)" % (label, _short(e["relationship"]))


def _dot_id(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(g: Dict[str, Any]) -> str:
    """Graphviz DOT text: one box per node, one edge per wait (awaited -> waiting)."""
    lines = ["digraph %s {" % _dot_id("%s %s" % (g["model"], g["workflow"])),
             "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];",
             "  edge [fontname=\"Helvetica\", fontsize=10];"]
    for n in g["nodes"]:
        lines.append("  %s [label=%s];" % (_dot_id(n["id"]), _dot_id("%s\n%s" % (n["id"], _short(n["type"])))))
    for e in g["edges"]:
        lines.append("  %s -> %s [label=%s];" % (_dot_id(e["from"]), _dot_id(e["to"]), _dot_id(_edge_label(e))))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(g: Dict[str, Any]) -> str:
    """Mermaid flowchart text (node names become ids n0, n1...: Mermaid ids allow no dots or
    dashes everywhere, labels carry the names)."""
    ids = {n["id"]: "n%d" % i for i, n in enumerate(g["nodes"])}
    lines = ["flowchart LR"]
    for n in g["nodes"]:
        lines.append('  %s["%s<br/>%s"]' % (ids[n["id"]], _mermaid_text(n["id"]), _mermaid_text(_short(n["type"]))))
    for e in g["edges"]:
        lines.append('  %s -->|"%s"| %s' % (ids[e["from"]], _mermaid_text(_edge_label(e)), ids[e["to"]]))
    return "\n".join(lines) + "\n"


def to_svg(g: Dict[str, Any]) -> str:
    """SVG drawn by Graphviz's ``dot`` command, which must be on PATH."""
    exe = shutil.which("dot")
    if exe is None:
        raise WfError("--format svg needs Graphviz's dot command on PATH (e.g. apt-get install graphviz); "
                      "--format dot or mermaid need nothing")
    proc = subprocess.run([exe, "-Tsvg"], input=to_dot(g), capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0:
        raise WfError("dot -Tsvg failed: %s" % (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1])
    return proc.stdout
