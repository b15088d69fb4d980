# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upload checks of ``sensitive: true`` definitions (the keyword proposed for TOSCA 2.0 in
tosca-community-contributions, accepted on input, property and attribute definitions).

A model is stored in the Space, which many people and every worker read: a sensitive input or
property whose value is written in the model (a default, an assignment) would be stored in clear.
Such a value is refused at upload in one line naming the file and YAML path; it must be a
function, normally ``{get_secret: [...]}`` (``secrets.py``), resolved on the worker when the
operation runs.  Inputs given at instantiation are checked by ``check_given_inputs``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

from ..errors import ToscaError, ToscaProblems
from ..operation.functions import has_function
from ..secrets import FUNCTION, check_args

_HOW = "give a reference instead, e.g. {get_secret: [env, NAME]} (resolved on the worker, never stored)"


def _sensitive(d: Any) -> bool:
    return isinstance(d, dict) and d.get("sensitive") is True


def _literal(value: Any) -> bool:
    return value is not None and not has_function(value)


def check_sensitive(model: Any) -> List[ToscaError]:
    """Every sensitive input or property of ``model`` whose value is written in clear."""
    out = _inputs(model)
    seen: Set[Tuple[str, str]] = set()
    for tname, tpl in model.templates.items():
        ntype = model.node_types.get(tpl.type)
        if ntype is None:
            continue
        for pname, pdef in (ntype.properties or {}).items():
            if _sensitive(pdef):
                out.extend(_property(model, tname, tpl, ntype, pname, pdef, seen))
        out.extend(_requirements(model, tname, tpl))
    return out


def _inputs(model: Any) -> List[ToscaError]:
    """The model's inputs: a malformed ``sensitive``, a sensitive default or value."""
    out: List[ToscaError] = []
    for name, d in (model.inputs or {}).items():
        if isinstance(d, dict) and "sensitive" in d and not isinstance(d["sensitive"], bool):
            out.append(ToscaError("input %s: sensitive must be true or false" % name, file=model.file,
                                  path="topology_template.inputs.%s.sensitive" % name))
        if _sensitive(d):
            for key in ("default", "value"):
                if key in d and _literal(d[key]):
                    out.append(ToscaError("input %s is sensitive: a %s would be stored in clear in the Space; %s"
                                          % (name, key, _HOW), file=model.file,
                                          path="topology_template.inputs.%s.%s" % (name, key)))
    return out


def _property(model: Any, tname: str, tpl: Any, ntype: Any, pname: str, pdef: Dict[str, Any],
              seen: Set[Tuple[str, str]]) -> List[ToscaError]:
    """One sensitive property of template ``tname``: its type's default (reported once per
    type), its value, the input it reads."""
    out: List[ToscaError] = []
    if "default" in pdef and _literal(pdef["default"]) and (ntype.name, pname) not in seen:
        seen.add((ntype.name, pname))
        out.append(ToscaError("node type %s: property %s is sensitive: a default would be stored in clear "
                              "in the Space; %s" % (ntype.name, pname, _HOW), file=ntype.file,
                              path="node_types.%s.properties.%s.default" % (ntype.name, pname)))
    value = (tpl.properties or {}).get(pname)
    path = "topology_template.node_templates.%s.properties.%s" % (tname, pname)
    if _literal(value) and value != pdef.get("default"):
        out.append(ToscaError("%s: property %s is sensitive: its value would be stored in clear in the "
                              "Space; %s" % (tname, pname, _HOW), file=tpl.file or model.file, path=path))
    plain = _plain_input(value, model.inputs or {})
    if plain:
        out.append(ToscaError("%s: property %s is sensitive but reads input %s, which is not: its value "
                              "would be stored and shown in clear; mark the input sensitive: true"
                              % (tname, pname, plain), file=tpl.file or model.file, path=path + ".get_input"))
    return out


def _requirements(model: Any, tname: str, tpl: Any) -> List[ToscaError]:
    """Sensitive relationship properties given in clear in the template's requirements."""
    out: List[ToscaError] = []
    for req in tpl.requirements:
        rtype = model.relationship_types.get(req.relationship)
        for pname, pdef in ((rtype.properties if rtype else None) or {}).items():
            value = (req.properties or {}).get(pname)
            if _sensitive(pdef) and _literal(value):
                out.append(ToscaError("%s: requirement %s: property %s is sensitive: its value would be stored "
                                      "in clear in the Space; %s" % (tname, req.name, pname, _HOW),
                                      file=tpl.file or model.file,
                                      path="topology_template.node_templates.%s.requirements" % tname))
    return out


def _plain_input(value: Any, inputs: Dict[str, Any]) -> Optional[str]:
    """The input a ``{get_input: name}`` value reads when that input is not sensitive."""
    if not (isinstance(value, dict) and len(value) == 1 and "get_input" in value):
        return None
    args = value["get_input"]
    name = args[0] if isinstance(args, list) and args else args
    if isinstance(name, str) and name in inputs and not _sensitive(inputs[name]):
        return name
    return None


def check_given_inputs(definitions: Dict[str, Any], given: Optional[Dict[str, Any]], where: str) -> None:
    """Inputs given at instantiation: a sensitive one must be a ``get_secret`` reference (the
    instance head keeps the inputs); any ``get_secret`` given must be well formed."""
    problems: List[ToscaError] = []
    for name, value in sorted((given or {}).items()):
        d = (definitions or {}).get(name)
        if isinstance(value, dict) and len(value) == 1 and FUNCTION in value:
            problem = check_args(value[FUNCTION])
            if problem:
                problems.append(ToscaError("input %s: get_secret: %s" % (name, problem), path=where))
        elif _sensitive(d):
            problems.append(ToscaError(
                "input %s is sensitive: its value is not stored; give a reference, e.g. --input "
                "'%s={\"get_secret\": [\"env\", \"NAME\"]}' (or [\"file\", \"/path\"], [\"ansible_vault\", "
                "\"/file.yml\", \"key\"]), resolved on the worker" % (name, name), path=where))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ToscaProblems(problems)
