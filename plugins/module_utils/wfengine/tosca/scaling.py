# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instance counts of a template: its Scalable capability (TOSCA 1.3 5.5.13).

The capability is found by type, not only by the name ``scalable``: a node type may call it
otherwise or use a subtype of ``tosca.capabilities.Scalable``.  A count may be ``{get_input: n}``:
it is checked at upload against the input's default (when it has one) and evaluated again at
instantiation with the deployment's inputs, where a count outside min/max is refused before any
node instance is written.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..errors import ToscaError, WfError
from .model import Scaling
from .requirements import capability_ancestors, capability_property_defs, capability_type_of

UNBOUNDED = "UNBOUNDED"
SCALABLE = "tosca.capabilities.Scalable"
KEYS = ("min_instances", "default_instances", "max_instances")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def scalable_capabilities(registry: Any, ntype: Any, caps: Dict[str, Any]) -> List[str]:
    """Names of the template's capability assignments that scale it."""
    out = []
    for cname in caps:
        ctype = capability_type_of(ntype.capabilities.get(cname))
        if cname == "scalable" or (ctype and SCALABLE in capability_ancestors(registry, ctype)):
            out.append(cname)
    return out


def _input_count(name: Any, inputs: Dict[str, Any], key: str) -> Tuple[bool, Any, Optional[str]]:
    """(known, value, problem) of ``{get_input: name}`` at upload: the input's default."""
    if not isinstance(name, str):
        return False, None, "%s: get_input takes an input name, got %r" % (key, name)
    d = inputs.get(name)
    if name not in inputs:
        return False, None, "%s: get_input of undeclared input %r (inputs: %s)" % (
            key, name, ", ".join(sorted(inputs)) or "none")
    if isinstance(d, dict) and d.get("type") not in (None, "integer"):
        return False, None, "%s: input %s is of type %s, a count needs an integer" % (key, name, d.get("type"))
    if isinstance(d, dict) and "default" in d:
        return True, d["default"], None
    return False, None, None


def scaling_of(name: str, ntype: Any, caps: Dict[str, Any], registry: Any, inputs: Dict[str, Any],
               file: str, where: str) -> Scaling:
    """The Scaling of a template; raises ToscaError naming the template and the property."""
    found = scalable_capabilities(registry, ntype, caps)
    if not found:
        return Scaling()
    if len(found) > 1:
        raise ToscaError("%s: several scaling capabilities (%s); a template scales one way"
                         % (name, ", ".join(found)), file=file, path=where)
    cname = found[0]
    cpath = "%s.%s" % (where, cname)
    sc = caps[cname]
    if not isinstance(sc, dict):
        raise ToscaError("%s: capability %s must be a mapping with 'properties'" % (name, cname), file=file, path=cpath)
    props = sc.get("properties") or {}
    if not isinstance(props, dict):
        raise ToscaError("%s: %s properties must be a mapping" % (name, cname), file=file, path=cpath + ".properties")
    ppath = cpath + ".properties"
    cdef = ntype.capabilities.get(cname)
    allowed = set(KEYS) | set(capability_property_defs(registry, capability_type_of(cdef), cdef))
    unknown = set(props) - allowed
    if unknown:
        raise ToscaError("%s: unknown %s properties %s (allowed: %s)"
                         % (name, cname, ", ".join(sorted(unknown)), ", ".join(sorted(allowed))),
                         file=file, path=ppath)
    from_inputs: Dict[str, str] = {}
    values: Dict[str, Any] = {}
    for key in KEYS:
        if key not in props:
            continue
        v = props[key]
        if isinstance(v, dict) and len(v) == 1 and "get_input" in v:
            known, value, problem = _input_count(v["get_input"], inputs if isinstance(inputs, dict) else {}, key)
            if problem:
                raise ToscaError("%s: %s" % (name, problem), file=file, path="%s.%s" % (ppath, key))
            from_inputs[key] = v["get_input"]
            if known:
                values[key] = value
        else:
            values[key] = v
    try:
        mn, df, mx = counts(values, "%s: " % name, from_inputs)
    except ValueError as exc:
        raise ToscaError(str(exc), file=file, path=ppath) from None
    return Scaling(min_instances=mn, default_instances=df, max_instances=mx, inputs=from_inputs)


def counts(values: Dict[str, Any], prefix: str = "", from_inputs: Optional[Dict[str, str]] = None
           ) -> Tuple[int, int, Optional[int]]:
    """(min, default, max or None) from the given counts; an absent min is 1 (or 0 when only
    an input, still unknown, sets it), an absent default is min, an absent max UNBOUNDED."""
    from_inputs = from_inputs or {}
    shown = {k: ("%r (input %s)" % (values[k], from_inputs[k]) if k in from_inputs else repr(values[k]))
             for k in values}
    bad: List[str] = [k for k in ("min_instances", "default_instances")
                      if k in values and not _is_int(values[k])]
    if "max_instances" in values and not (_is_int(values["max_instances"]) or values["max_instances"] == UNBOUNDED):
        bad.append("max_instances")
    if bad:
        raise ValueError("%s%s must be integers (max_instances may be UNBOUNDED), got %s"
                         % (prefix, ", ".join(bad), ", ".join("%s=%s" % (k, shown[k]) for k in bad)))
    mn = values.get("min_instances", 0 if "min_instances" in from_inputs else 1)
    df = values.get("default_instances", mn)
    mx = values.get("max_instances", UNBOUNDED)
    mx_n = None if mx == UNBOUNDED else mx
    if not (0 <= mn <= df and (mx_n is None or df <= mx_n)):
        now = {"min_instances": mn, "default_instances": df, "max_instances": mx}
        raise ValueError("%sscaling needs 0 <= min_instances <= default_instances <= max_instances, got %s"
                         % (prefix, ", ".join("%s=%s" % (k, shown.get(k, now[k])) for k in KEYS)))
    return mn, df, mx_n


def _int_input(v: Any) -> Any:
    """An input given on the command line or by Ansible templating may be the text of a count."""
    if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        return int(v)
    return v


def apply_inputs(templates: Dict[str, Any], values: Dict[str, Any], where: str) -> None:
    """Re-evaluate the counts that come from inputs with the deployment's input ``values``
    (instantiation); raises ToscaError naming the template and the inputs."""
    problems = []
    for tname, tpl in sorted(templates.items()):
        sc = tpl.scaling
        if not sc.inputs:
            continue
        given = {"min_instances": sc.min_instances, "default_instances": sc.default_instances}
        if sc.max_instances is not None:
            given["max_instances"] = sc.max_instances
        known = {k: v for k, v in given.items() if k not in sc.inputs or sc.inputs[k] in values}
        # Constants stored at upload stay; counts from inputs take the deployment's values.
        for key, iname in sc.inputs.items():
            if iname in values:
                known[key] = _int_input(values[iname])
            elif key == "max_instances":
                known.pop(key, None)
        if "max_instances" in sc.inputs and sc.inputs["max_instances"] not in values:
            known.pop("max_instances", None)
        try:
            mn, df, mx = counts(known, "template %s: " % tname, sc.inputs)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        tpl.scaling = Scaling(min_instances=mn, default_instances=df, max_instances=mx, inputs=dict(sc.inputs))
    if problems:
        raise ToscaError("; ".join(problems), path=where)


def apply_counts(templates: Dict[str, Any], counts: Dict[str, int], where: str) -> None:
    """Set instances per host of templates (``wfctl scale``, the modules' ``counts``) over the
    model's, within each template's min/max: a count given by the user wins over the model's,
    and is kept with the instance for later updates."""
    for tname, n in sorted(counts.items()):
        tpl = templates.get(tname)
        if tpl is None:
            raise WfError("%s: the model has no template %s (templates: %s)"
                          % (where, tname, ", ".join(sorted(templates))))
        sc = tpl.scaling
        if n < sc.min_instances or (sc.max_instances is not None and n > sc.max_instances):
            raise WfError("%s: template %s: %d instances per host is outside min_instances %d .. "
                          "max_instances %s" % (where, tname, n, sc.min_instances,
                                                UNBOUNDED if sc.max_instances is None else sc.max_instances))
        tpl.scaling = Scaling(min_instances=sc.min_instances, default_instances=n,
                              max_instances=sc.max_instances, inputs=dict(sc.inputs))
