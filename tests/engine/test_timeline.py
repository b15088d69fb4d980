"""``wfctl timeline`` (issue 21): for the seed install, one bar per operation attempt in the HTML's
JSON, in its inline SVG and in matplotlib's SVG; the PNG is a PNG; bad input is one line."""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from engine_helpers import EXAMPLE, deploy, embedded, run

WFCTL = [sys.executable, "-m", "wfengine.cli"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    opts = embedded(tmp)
    deploy(opts, str(EXAMPLE))
    run(opts, "install", workers=1)
    env = dict(os.environ, WF_SPACE=opts.path)

    def wfctl(*args):
        return subprocess.run(WFCTL + list(args), env=env, capture_output=True, text=True, timeout=120, check=False)
    trace = json.loads(wfctl("trace", "m", "i", "--json").stdout)
    return tmp, wfctl, trace


def test_html_holds_one_bar_per_operation_attempt(seed):
    tmp, wfctl, trace = seed
    out = tmp / "t.html"
    r = wfctl("timeline", "m", "i", "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")   # nothing fetched
    data = json.loads(re.search(r'<script type="application/json" id="wf-timeline-data">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))
    ops = [e for e in trace if e["kind"] == "operation"]
    assert len(ops) == 315 and len(data["bars"]) == len(ops)
    assert [(b["seq"], b["node"], b["operation"], b["status"]) for b in data["bars"]] == \
        [(e["seq"], e["node"], e["name"], e.get("status", "ok")) for e in ops]
    assert r.stdout.strip().endswith("315 operation attempts of run %s on 6 hosts" % data["run"])
    assert data["hosts"] == ["srvA_0", "srvA_1", "srvA_2", "srvB_0", "srvC_0", "srvD_0"]
    # A_4 runs on its host's row
    assert {b["host"] for b in data["bars"] if b["node"] == "A_4"} == {"srvA_1"}
    # the inline SVG: one rect per bar, each naming its bar
    svg = ET.fromstring(re.search(r"(<svg .*?</svg>)", text, re.S).group(1))
    rects = [e for e in svg.iter(SVG + "rect") if e.get("class") == "bar"]
    assert sorted(int(e.get("data-i")) for e in rects) == list(range(len(ops)))
    # critical path: a chain back from the last attempt, each ending before the next starts
    crit = [data["bars"][i] for i in data["critical"]]
    assert crit and crit[-1]["end"] == max(b["end"] for b in data["bars"])
    assert all(a["end"] <= b["start"] + 1e-6 for a, b in zip(crit, crit[1:]))
    assert Counter(b["status"] for b in data["bars"]) == {"ok": 315}


def test_png_and_svg_by_matplotlib(seed):
    pytest.importorskip("matplotlib")
    tmp, wfctl, trace = seed
    r = wfctl("timeline", "m", "i", "--out", str(tmp / "t.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = wfctl("timeline", "m", "i", "--out", str(tmp / "t.svg"))
    assert r.returncode == 0, r.stderr
    root = ET.parse(str(tmp / "t.svg")).getroot()
    bars = {e.get("id") for e in root.iter(SVG + "g") if (e.get("id") or "").startswith("bar-")}
    assert len(bars) == sum(e["kind"] == "operation" for e in trace) == 315


def test_bad_output_and_unknown_run_are_one_line(seed):
    tmp, wfctl, dummy = seed
    r = wfctl("timeline", "m", "i", "--out", str(tmp / "t.gif"))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and ".png, .svg, .html" in r.stderr
    r = wfctl("timeline", "m", "i", "--run", "nope", "--out", str(tmp / "t.html"))
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: instance m/i has no run nope"
    r = wfctl("timeline", "m", "i")
    assert r.returncode == 2 and "--out" in r.stderr


def test_workflow_chooses_its_latest_run(seed):
    """``--workflow`` (what tosca_instance_info's ``workflow`` gives a playbook): the latest run of
    that workflow; a workflow that never ran on the instance is one line."""
    tmp, wfctl, dummy = seed
    assert wfctl("timeline", "m", "i", "--out", str(tmp / "latest.json")).returncode == 0
    r = wfctl("timeline", "m", "i", "--workflow", "install", "--out", str(tmp / "install.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp / "install.json").read_text()) == json.loads((tmp / "latest.json").read_text())
    r = wfctl("timeline", "m", "i", "--workflow", "uninstall", "--out", str(tmp / "un.json"))
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: instance m/i has no run of workflow uninstall"


FLAKY = """\
# fails on its first attempt, succeeds on the next
if [ ! -e "$TIMELINE_DIR/failed-once" ]; then : > "$TIMELINE_DIR/failed-once"; exit 3; fi
"""


def test_a_retried_operation_shows_its_failed_attempt_then_the_next(tmp_path):
    """The retried attempt gets its own bar, coloured as a retry and labelled with its attempt,
    then the attempt that succeeded (#2), with a real script and ``--retries``."""
    (tmp_path / "flaky.sh").write_text(FLAKY)
    (tmp_path / "app.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "topology_template:\n  node_templates:\n"
        "    server:\n      type: tosca.nodes.Compute\n"
        "    app:\n      type: tosca.nodes.SoftwareComponent\n"
        "      requirements:\n        - host: server\n"
        "      interfaces:\n        Standard:\n          configure: flaky.sh\n")
    opts = embedded(tmp_path)
    deploy(opts, str(tmp_path / "app.yaml"))
    env = dict(os.environ, WF_SPACE=opts.path, TIMELINE_DIR=str(tmp_path))
    r = subprocess.run(WFCTL + ["workflow", "install", "m", "i", "--wait", "--quiet", "--retries", "1"],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "t.html"
    r = subprocess.run(WFCTL + ["timeline", "m", "i", "--out", str(out)], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="wf-timeline-data">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))
    # (operations without implementation get their bar too: one attempt each, ok)
    mine = [b for b in data["bars"] if (b["node"], b["operation"].rsplit(".", 1)[1]) == ("app_0", "configure")]
    assert [(b["status"], b["attempt"]) for b in mine] == [("retry", 1), ("ok", 2)], mine
    others = [b for b in data["bars"] if b not in mine]
    assert others and {(b["status"], b["attempt"]) for b in others} == {("ok", 1)}
    retry, ok = mine
    assert retry["end"] <= ok["start"] + 1e-6 and retry["host"] == ok["host"] == "server_0"
    svg = ET.fromstring(re.search(r"(<svg .*?</svg>)", text, re.S).group(1))
    fills = {int(e.get("data-i")): e.get("fill") for e in svg.iter(SVG + "rect") if e.get("class") == "bar"}
    assert fills[retry["i"]] == "#fb8c00" and set(fills.values()) == {"#fb8c00", "#43a047"}
    assert sorted(fills) == list(range(len(data["bars"])))
    labels = [e.text for e in svg.iter(SVG + "text") if e.text and e.text.startswith("#")]
    assert labels == ["#1", "#2"]
