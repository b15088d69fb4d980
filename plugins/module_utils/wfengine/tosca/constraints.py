# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOSCA constraint clauses (TOSCA 1.3 section 3.6.3), shared by value checks and node filters.

A clause is checked against a value already known to be of the right type; comparisons go
through a ``key`` function given by the caller so that ``2 GB`` compares greater than ``512 MB``
and version ``1.10`` greater than ``1.9``.  ``schema`` is accepted and ignored: it names an
external schema language the engine has no validator for.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

OPERATORS = ("equal", "greater_than", "greater_or_equal", "less_than", "less_or_equal", "in_range",
             "valid_values", "length", "min_length", "max_length", "pattern", "schema")

Key = Callable[[Any], Any]


def _plain(value: Any) -> Any:
    return value


def clause_error(clause: Any) -> Optional[str]:
    """Why ``clause`` is not a constraint clause, or None: a malformed clause is the author's
    mistake, reported even when no value is checked against it."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return "a constraint is a single-key map such as {greater_than: 0}, got %r" % (clause,)
    op, arg = next(iter(clause.items()))
    if op not in OPERATORS:
        return "unknown constraint operator %r (one of %s)" % (op, ", ".join(OPERATORS))
    if op in ("in_range",) and not (isinstance(arg, list) and len(arg) == 2):
        return "in_range takes [lower, upper], got %r" % (arg,)
    if op == "valid_values" and not isinstance(arg, list):
        return "valid_values takes a list, got %r" % (arg,)
    natural = isinstance(arg, int) and not isinstance(arg, bool) and arg >= 0
    if op in ("length", "min_length", "max_length") and not natural:
        return "%s takes a non-negative integer, got %r" % (op, arg)
    if op == "pattern":
        if not isinstance(arg, str):
            return "pattern takes a regular expression string, got %r" % (arg,)
        try:
            re.compile(arg)
        except re.error as exc:
            return "pattern %r is not a regular expression: %s" % (arg, exc)
    return None


def _cmp(a: Any, b: Any, key: Key) -> Optional[int]:
    """-1/0/1, or None when the two cannot be compared (a bad constraint argument)."""
    try:
        ka, kb = key(a), key(b)
        return int((ka > kb) - (ka < kb))
    except (TypeError, ValueError):
        return None


def check(clause: Any, value: Any, key: Key = _plain) -> Optional[str]:
    """None when ``value`` satisfies ``clause``, else a short reason (``5 is not less_than 4``)."""
    bad = clause_error(clause)
    if bad:
        return bad
    op, arg = next(iter(clause.items()))
    if op == "schema":
        return None
    return _CHECKS.get(op, _compare)(op, arg, value, key, "%r" % (value,))


def _length(op: str, arg: Any, value: Any, key: Key, show: str) -> Optional[str]:
    if not isinstance(value, (str, list, dict)):
        return "%s applies to a string, list or map, not %s" % (op, show)
    n = len(value)
    ok = n == arg if op == "length" else (n >= arg if op == "min_length" else n <= arg)
    return None if ok else "%s has length %d, not %s %d" % (show, n, op, arg)


def _pattern(op: str, arg: Any, value: Any, key: Key, show: str) -> Optional[str]:
    if not isinstance(value, str):
        return "pattern applies to a string, not %s" % show
    # TOSCA 1.3 3.6.3: the pattern matches the whole value.
    return None if re.fullmatch(arg, value) else "%s does not match pattern %r" % (show, arg)


def _valid_values(op: str, arg: Any, value: Any, key: Key, show: str) -> Optional[str]:
    for v in arg:
        if _cmp(value, v, key) == 0:
            return None
    return "%s is not one of the valid_values %r" % (show, arg)


def _in_range(op: str, arg: Any, value: Any, key: Key, show: str) -> Optional[str]:
    lo, hi = arg
    c_lo = _cmp(value, lo, key)
    c_hi = 0 if hi == "UNBOUNDED" else _cmp(value, hi, key)
    if c_lo is None or c_hi is None:
        return "%s cannot be compared with in_range %r" % (show, arg)
    return None if c_lo >= 0 and c_hi <= 0 else "%s is not in_range %r" % (show, arg)


def _compare(op: str, arg: Any, value: Any, key: Key, show: str) -> Optional[str]:
    """equal, greater_than, greater_or_equal, less_than, less_or_equal."""
    c = _cmp(value, arg, key)
    if c is None:
        return "%s cannot be compared with %s %r" % (show, op, arg)
    ok = {"equal": c == 0, "greater_than": c > 0, "greater_or_equal": c >= 0,
          "less_than": c < 0, "less_or_equal": c <= 0}[op]
    return None if ok else "%s is not %s %r" % (show, op, arg)


_CHECKS: Dict[str, Callable[[str, Any, Any, Key, str], Optional[str]]] = {
    "length": _length, "min_length": _length, "max_length": _length,
    "pattern": _pattern, "valid_values": _valid_values, "in_range": _in_range,
}


def clauses(raw: Any) -> List[Any]:
    """The clauses of a ``constraints`` list, or of a node filter's property entry, which may be
    one clause, a list of clauses, or a plain value meaning ``equal`` (the short form some
    templates use)."""
    if isinstance(raw, list) and all(isinstance(c, dict) and len(c) == 1 and next(iter(c)) in OPERATORS
                                     for c in raw):
        return list(raw)
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in OPERATORS:
        return [raw]
    return [{"equal": raw}]
