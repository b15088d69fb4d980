"""Run the conformance corpus (tests/conformance) and report what the engine does with it.

Prints one line per entry (our verdict, the expected one, tosca-parser's) and the counts, and
rewrites the generated part of docs/conformance.md between its two markers.  The same harness as
tests/conformance/test_conformance.py, so the numbers are the ones the test asserts.

    PYTHONPATH=plugins/module_utils .venv/bin/python scripts/conformance_report.py [--no-write]
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import OrderedDict
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))

import conformance_harness as harness  # noqa: E402

DOC = os.path.join(ROOT, "docs", "conformance.md")
BEGIN = "<!-- conformance-report: begin (scripts/conformance_report.py writes this part) -->"
END = "<!-- conformance-report: end -->"


def collect() -> List[Dict[str, Any]]:
    rows = []
    for entry in harness.load_manifest():
        out = harness.run_entry_in_tmp(entry)
        ok = out.verdict == entry["expect"] and (out.verdict != "install" or not (out.unexplained or out.unannounced)) and (
            out.verdict != "refuse" or entry.get("reason", "") in out.reason)
        reason = out.reason.replace(ROOT + os.sep, "")
        if out.verdict == "install" and out.unexplained:
            reason = "declared, never run, no warning: " + ", ".join(out.unexplained[:3])
        elif out.verdict == "install" and out.unannounced:
            reason = "not announced at upload: " + ", ".join(out.unannounced)
        rows.append({"id": entry["id"], "origin": entry["origin"], "expect": entry["expect"],
                     "verdict": out.verdict, "ok": ok, "reason": reason, "parser": entry["tosca_parser"],
                     "declared": out.declared, "recorded": out.recorded, "warnings": len(out.warnings)})
    return rows


def counts(rows: List[Dict[str, Any]]) -> "OrderedDict[str, Dict[str, int]]":
    table: "OrderedDict[str, Dict[str, int]]" = OrderedDict()
    for origin in ["all"] + sorted({r["origin"] for r in rows}):
        sel = [r for r in rows if origin == "all" or r["origin"] == origin]
        table[origin] = {
            "entries": len(sel),
            "accepted": sum(1 for r in sel if r["verdict"] != "refuse"),
            "installs clean": sum(1 for r in sel if r["verdict"] == "install" and r["ok"]),
            "refused with reason": sum(1 for r in sel if r["verdict"] == "refuse"),
            "as expected": sum(1 for r in sel if r["ok"]),
            "expected install": sum(1 for r in sel if r["expect"] == "install"),
            "tosca-parser accepts": sum(1 for r in sel if r["parser"] == "accept"),
        }
    return table


def render(rows: List[Dict[str, Any]]) -> str:
    table = counts(rows)
    cols = list(next(iter(table.values())).keys())
    lines = [BEGIN, "", "| origin | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for origin, c in table.items():
        lines.append("| %s | %s |" % (origin, " | ".join(str(c[k]) for k in cols)))
    lines += ["", "| entry | expected | ours | tosca-parser | declared / called | what happened |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        what = "as expected" if r["ok"] else r["reason"].replace("|", "\\|")[:200]
        if r["ok"] and r["verdict"] == "refuse":
            what = "refused: " + r["reason"].replace("|", "\\|").split(": ", 1)[-1][:160]
        lines.append("| %s | %s | %s | %s | %d / %d | %s |" % (
            r["id"], r["expect"], r["verdict"], r["parser"], r["declared"], r["recorded"], what))
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/conformance.md alone")
    args = ap.parse_args()
    rows = collect()
    for r in rows:
        print("%-34s expect=%-7s ours=%-7s parser=%-6s %s" % (r["id"], r["expect"], r["verdict"], r["parser"],
                                                              "ok" if r["ok"] else r["reason"][:160]))
    for origin, c in counts(rows).items():
        print("%s: %s" % (origin, ", ".join("%s %d" % kv for kv in c.items())))
    if not args.no_write:
        with open(DOC, "r", encoding="utf-8") as fh:
            text = fh.read()
        head, sep, rest = text.partition(BEGIN)
        dummy, sep2, tail = rest.partition(END)
        if not sep or not sep2:
            print("%s: markers not found" % DOC, file=sys.stderr)
            return 2
        with open(DOC, "w", encoding="utf-8") as fh:
            fh.write(head + render(rows) + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
