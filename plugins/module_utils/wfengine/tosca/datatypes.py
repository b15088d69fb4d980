# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values checked against TOSCA data types (TOSCA 1.3 sections 3.3, 3.6.10-3.6.12, 5.3).

A property of the wrong type fails at the far end of a deployment, in a script that got ``"two"``
for a port; checking every value at upload turns that into a line naming the template and the
property.  Primitive types follow the specification; like tosca-parser, an integer, float or
boolean written as a string (``"8080"``, ``"true"``) is accepted, because Ansible-templated inputs
arrive as strings.  Values that are TOSCA functions are not checked here: they have no value
before a deployment runs.

Problems are returned, not raised, as ``(sub path, message)`` pairs so that the caller can
report every one of them with its file and YAML path.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import constraints as cons


class Soft(str):
    """A problem announced as an upload warning, not refused: a property that is required only
    because TOSCA's ``required`` defaults to true.  tosca-parser, and the templates written for
    it, treat such a property as optional (docs/decisions.md)."""


Problem = Tuple[str, str]          # (path below the checked value, e.g. ".port" or "[2]", message)
Lookup = Callable[[str], Optional[Dict[str, Any]]]

FUNCTION_NAMES = {"get_input", "get_property", "get_attribute", "get_operation_output", "get_nodes_of_type",
                  "get_artifact", "concat", "join", "token", "get_secret"}

_SCALARS: Dict[str, Dict[str, float]] = {
    "scalar-unit.size": {"B": 1, "kB": 1e3, "KiB": 2 ** 10, "MB": 1e6, "MiB": 2 ** 20, "GB": 1e9,
                         "GiB": 2 ** 30, "TB": 1e12, "TiB": 2 ** 40},
    "scalar-unit.time": {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "scalar-unit.frequency": {"Hz": 1, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "scalar-unit.bitrate": {"bps": 1, "Kbps": 1e3, "Kibps": 2 ** 10, "Mbps": 1e6, "Mibps": 2 ** 20,
                            "Gbps": 1e9, "Gibps": 2 ** 30, "Tbps": 1e12, "Tibps": 2 ** 40,
                            "Bps": 8, "KBps": 8e3, "KiBps": 8 * 2 ** 10, "MBps": 8e6, "MiBps": 8 * 2 ** 20,
                            "GBps": 8e9, "GiBps": 8 * 2 ** 30, "TBps": 8e12, "TiBps": 8 * 2 ** 40},
}
PRIMITIVES = ("string", "integer", "float", "boolean", "timestamp", "version", "range", "list", "map",
              "null") + tuple(_SCALARS)

_SCALAR_RE = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]+)\s*$")
_VERSION_RE = re.compile(r"^(\d+)(?:\.(\d+)(?:\.(\d+)(?:\.([A-Za-z0-9_]+)(?:-(\d+))?)?)?)?$")
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:(?:[Tt]|[ \t]+)\d{1,2}:\d{2}:\d{2}(?:\.\d*)?"
                           r"(?:[ \t]*Z|[ \t]*[-+]\d{1,2}(?::?\d{2})?)?)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")

# TOSCA 1.3 section 5.3: the normative data types, used when no library redefines them.
NORMATIVE_DATA_TYPES: Dict[str, Dict[str, Any]] = {
    "tosca.datatypes.Root": {},
    "tosca.datatypes.json": {"derived_from": "string"},
    "tosca.datatypes.xml": {"derived_from": "string"},
    "tosca.datatypes.Json": {"derived_from": "string"},
    "tosca.datatypes.Xml": {"derived_from": "string"},
    "tosca.datatypes.Credential": {"derived_from": "tosca.datatypes.Root", "properties": {
        "protocol": {"type": "string", "required": False},
        "token_type": {"type": "string", "default": "password"},
        "token": {"type": "string"},
        "keys": {"type": "map", "required": False, "entry_schema": {"type": "string"}},
        "user": {"type": "string", "required": False}}},
    "tosca.datatypes.TimeInterval": {"derived_from": "tosca.datatypes.Root", "properties": {
        "start_time": {"type": "timestamp"}, "end_time": {"type": "timestamp"}}},
    "tosca.datatypes.network.NetworkInfo": {"derived_from": "tosca.datatypes.Root", "properties": {
        "network_name": {"type": "string", "required": False},
        "network_id": {"type": "string", "required": False},
        "addresses": {"type": "list", "required": False, "entry_schema": {"type": "string"}}}},
    "tosca.datatypes.network.PortInfo": {"derived_from": "tosca.datatypes.Root", "properties": {
        "port_name": {"type": "string", "required": False},
        "port_id": {"type": "string", "required": False},
        "network_id": {"type": "string", "required": False},
        "mac_address": {"type": "string", "required": False},
        "addresses": {"type": "list", "required": False, "entry_schema": {"type": "string"}}}},
    "tosca.datatypes.network.PortDef": {"derived_from": "integer",
                                        "constraints": [{"in_range": [1, 65535]}]},
    "tosca.datatypes.network.PortSpec": {"derived_from": "tosca.datatypes.Root", "properties": {
        "protocol": {"type": "string", "default": "tcp", "constraints": [{"valid_values": ["udp", "tcp", "igmp"]}]},
        "source": {"type": "tosca.datatypes.network.PortDef", "required": False},
        "source_range": {"type": "range", "required": False,
                         "constraints": [{"in_range": [1, 65535]}]},
        "target": {"type": "tosca.datatypes.network.PortDef", "required": False},
        "target_range": {"type": "range", "required": False,
                         "constraints": [{"in_range": [1, 65535]}]}}},
}


def is_function(value: Any) -> bool:
    """A TOSCA function call (``{get_input: x}``): its value is only known at deployment."""
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    name = next(iter(value))
    known: Tuple[str, ...]
    try:
        from ..operation.functions import FUNCTIONS
        known = FUNCTIONS
    except ImportError:       # pragma: no cover - the engine ships operation/functions.py
        known = ()
    return name in FUNCTION_NAMES or name in known


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scalar(value: Any, type_name: str) -> float:
    """The value of ``"<number> <unit>"`` in the unit of 1 (bytes, seconds, Hz, bits per second).
    Units are matched exactly, or case-insensitively when that is unambiguous (TOSCA 1.3 3.3.6)."""
    units = _SCALARS[type_name]
    m = _SCALAR_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError("%s is not a %s (a number and a unit: %s)" % (_show(value), type_name, ", ".join(units)))
    number, unit = float(m.group(1)), m.group(2)
    if unit not in units:
        folded = [u for u in units if u.lower() == unit.lower()]
        if len(folded) != 1:
            raise ValueError("%s: unknown unit %r for %s (one of %s)" % (_show(value), unit, type_name,
                                                                         ", ".join(units)))
        unit = folded[0]
    return number * units[unit]


def version_key(value: Any) -> Tuple[Any, ...]:
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    m = _VERSION_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError("%s is not a version (major.minor[.fix[.qualifier[-build]]])" % _show(value))
    major, minor, fix, qual, build = m.groups()
    return (int(major), int(minor or 0), int(fix or 0), qual or "", int(build or 0))


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("%s is a boolean, not an integer" % _show(value))
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value)
    raise ValueError("%s is not an integer" % _show(value))


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("%s is a boolean, not a float" % _show(value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("%s is not a float" % _show(value))


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("%s is not a boolean" % _show(value))


def _as_range(value: Any) -> Tuple[int, Any]:
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError("%s is not a range ([lower, upper])" % _show(value))
    lo = _as_int(value[0])
    if value[1] == "UNBOUNDED":
        return lo, float("inf")
    hi = _as_int(value[1])
    if lo > hi:
        raise ValueError("range %s has its lower bound above its upper bound" % _show(value))
    return lo, hi


def _as_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("%s is not a string (quote it)" % _show(value))
    return value


def _as_timestamp(value: Any) -> str:
    if not (isinstance(value, str) and _TIMESTAMP_RE.match(value)):
        raise ValueError("%s is not a timestamp (YAML/ISO 8601, e.g. 2026-12-04T17:00:00Z)" % _show(value))
    return value


_PRIMITIVE_KEYS: Dict[str, Callable[[Any], Any]] = {
    "string": _as_string, "integer": _as_int, "float": _as_float, "boolean": _as_bool,
    "timestamp": _as_timestamp, "version": version_key, "range": _as_range,
}


class DataTypes:
    """Checks values against primitive, normative and user data types.

    ``lookup(name)`` gives the raw definition of a data type the model or its libraries define
    (None when unknown); the normative ones of section 5.3 are the fallback."""

    def __init__(self, lookup: Lookup):
        self._lookup = lookup

    # ------------------------------------------------------------ types
    def definition(self, name: str) -> Optional[Dict[str, Any]]:
        raw = self._lookup(name)
        if raw is None:
            raw = NORMATIVE_DATA_TYPES.get(name)
        return raw if isinstance(raw, dict) else None

    def known(self, name: Any) -> bool:
        return isinstance(name, str) and (name in PRIMITIVES or self.definition(name) is not None)

    def _chain(self, name: str) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        """([definition, parent, ...], primitive base or None); raises ValueError when unknown."""
        chain: List[Dict[str, Any]] = []
        seen = set()
        cur: Optional[str] = name
        while cur is not None:
            if cur in PRIMITIVES:
                return chain, cur
            if cur in seen:
                raise ValueError("data type %s: derived_from cycle" % name)
            seen.add(cur)
            d = self.definition(cur)
            if d is None:
                raise ValueError("unknown data type %r" % cur)
            chain.append(d)
            parent = d.get("derived_from")
            cur = parent if isinstance(parent, str) else None
        return chain, None

    def key(self, type_name: str) -> Callable[[Any], Any]:
        """The comparison key of values of ``type_name`` (for constraints and node filters)."""
        try:
            dummy, base = self._chain(type_name)
        except ValueError:
            base = None
        if base in _SCALARS:
            return lambda v: scalar(v, base)
        if base in _PRIMITIVE_KEYS and base not in ("string", "timestamp"):
            return _PRIMITIVE_KEYS[base]
        return lambda v: v

    # ------------------------------------------------------------ values
    def check(self, value: Any, definition: Any) -> List[Problem]:
        """Problems of ``value`` against a property / attribute / input / parameter definition
        (``{type, entry_schema, key_schema, constraints}``)."""
        if not isinstance(definition, dict):
            return []
        tname = definition.get("type")
        if tname is None or is_function(value):
            return []
        return self.check_type(value, tname, definition.get("entry_schema"), definition.get("key_schema"),
                               definition.get("constraints"))

    def check_type(self, value: Any, tname: Any, entry_schema: Any = None, key_schema: Any = None,
                   constraint_list: Any = None, depth: int = 0) -> List[Problem]:
        if is_function(value):
            return []
        if depth > 32:
            return [("", "values nested deeper than 32 levels")]
        if not isinstance(tname, str):
            return [("", "type must be a type name, got %s" % _show(tname))]
        try:
            chain, base = self._chain(tname)
        except ValueError as exc:
            return [("", str(exc))]
        out: List[Problem] = []
        if base is not None:
            out += self._check_primitive(value, base, entry_schema, key_schema, depth)
        else:
            out += self._check_complex(value, tname, chain, depth)
        if out:
            return out
        key = self.key(tname)
        for d in [{"constraints": constraint_list}] + chain:
            for clause in _constraint_list(d.get("constraints")):
                reason = cons.check(clause, value, key)
                if reason:
                    out.append(("", reason))
        return out

    def _check_primitive(self, value: Any, base: str, entry_schema: Any, key_schema: Any,
                         depth: int) -> List[Problem]:
        if value is None and base != "null":
            return [("", "no value (null) for a %s" % base)]
        try:
            if base in _SCALARS:
                scalar(value, base)
            elif base in _PRIMITIVE_KEYS:
                _PRIMITIVE_KEYS[base](value)
        except ValueError as exc:
            return [("", str(exc))]
        out: List[Problem] = []
        if base == "list":
            if not isinstance(value, list):
                return [("", "%s is not a list" % _show(value))]
            if entry_schema is not None:
                for i, item in enumerate(value):
                    out += [("[%d]%s" % (i, p), m) for p, m in self._schema(item, entry_schema, depth)]
        elif base == "map":
            if not isinstance(value, dict):
                return [("", "%s is not a map" % _show(value))]
            for k, item in value.items():
                if key_schema is not None:
                    out += [(".%s" % k, "key: %s" % m) for dummy, m in self._schema(k, key_schema, depth)]
                if entry_schema is not None:
                    out += [(".%s%s" % (k, p), m) for p, m in self._schema(item, entry_schema, depth)]
        return out

    def _schema(self, value: Any, schema: Any, depth: int) -> List[Problem]:
        if isinstance(schema, str):
            return self.check_type(value, schema, depth=depth + 1)
        if not isinstance(schema, dict) or "type" not in schema:
            return [("", "entry_schema must be a type name or {type: ...}, got %s" % _show(schema))]
        return self.check_type(value, schema["type"], schema.get("entry_schema"), schema.get("key_schema"),
                               schema.get("constraints"), depth=depth + 1)

    def properties_of(self, tname: str) -> Dict[str, Any]:
        """The property definitions of a complex data type, its ancestors' included."""
        try:
            chain, dummy = self._chain(tname)
        except ValueError:
            return {}
        props: Dict[str, Any] = {}
        for d in reversed(chain):
            p = d.get("properties")
            if isinstance(p, dict):
                props.update(p)
        return props

    def _check_complex(self, value: Any, tname: str, chain: List[Dict[str, Any]], depth: int) -> List[Problem]:
        if value is None:
            return [("", "no value (null) for a %s" % tname)]
        if not isinstance(value, dict):
            return [("", "%s is not a %s (a map of its properties)" % (_show(value), tname))]
        props = self.properties_of(tname)
        return self.check_assignments(value, props, "%s property" % tname, depth + 1, unknown=True)

    def check_assignments(self, values: Dict[str, Any], definitions: Dict[str, Any], what: str = "property",
                          depth: int = 0, unknown: bool = True, required: bool = True) -> List[Problem]:
        """Problems of named values against their definitions: unknown names, required ones
        missing (an explicit ``required: true`` without a default; one required only by default
        gives a ``Soft`` problem), each value's type."""
        out: List[Problem] = []
        if unknown:
            for name in values:
                if name not in definitions:
                    known = ", ".join(sorted(definitions)) or "none"
                    out.append((".%s" % name, "unknown %s %r (defined: %s)" % (what, name, known)))
        for name, d in definitions.items():
            if not isinstance(d, dict):
                continue
            if name in values and values[name] is not None:
                if "type" in d:
                    out += [(".%s%s" % (name, p), m) for p, m in self.check_type(
                        values[name], d["type"], d.get("entry_schema"), d.get("key_schema"),
                        d.get("constraints"), depth)]
            elif required and d.get("required", True) is not False and "default" not in d and "value" not in d:
                if d.get("required") is True:
                    out.append((".%s" % name, "required %s %r has no value" % (what, name)))
                else:
                    out.append((".%s" % name, Soft("%s %r has no value; TOSCA makes it required by default (the "
                                                   "definition says neither required nor a default)" % (what, name))))
        return out


def _constraint_list(raw: Any) -> List[Any]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]
