"""Fuzzing of the model upload (issue 18 item 7): random model files built around the TOSCA 1.3
grammar (chapter 3: service template keynames, node types, node templates, requirements,
capabilities, interfaces, inputs, functions) written as YAML text with anchors, aliases, merge
keys, flow and block styles and YAML 1.1 scalars that look like something else.

Whatever the file, an upload ends in one of two ways: stored, or refused with the engine's own
error (a ``WfError``: one line per problem, naming the file) and the Space unchanged.  Never a
traceback, never a hang: each case runs under a 5 s alarm that turns a hang into a failure.

5,000 cases run in process through ``upload_model`` on an embedded Space; a sample goes through the
real ``wfctl`` in a subprocess, where stderr and the bytes of the Space file are checked.
Generation is derandomized: a failure reproduces, and CI time stays flat.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfengine import api
from wfengine.errors import WfError
from wfengine.space.base import dumps

VERSIONS = ["tosca_simple_yaml_1_3", "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_0", "tosca_2_0", "1.3", ""]
NODE_TYPES = ["tosca.nodes.Compute", "tosca.nodes.SoftwareComponent", "tosca.nodes.WebServer",
              "tosca.nodes.DBMS", "tosca.nodes.Database", "tosca.nodes.Root", "Compute", "tosca:WebApplication",
              "my.T", "my.U", "nope.Type"]
KEYS = ["type", "derived_from", "properties", "attributes", "requirements", "capabilities", "interfaces",
        "inputs", "outputs", "node_templates", "default", "value", "description", "metadata", "implementation",
        "primary", "dependencies", "scalable", "default_instances", "max_instances", "min_instances", "host",
        "dependency", "node", "relationship", "Standard", "create", "configure", "start", "get_input",
        "get_property", "get_attribute", "concat", "SELF", "HOST", "constraints", "required", "entry_schema",
        "workflows", "steps", "target", "activities", "set_state", "call_operation", "imports", "file",
        "artifacts", "node_filter", "occurrences", "copy", "directives", "<<", "..", "a/b", "x\ny", ""]
# Plain scalars YAML 1.1 (PyYAML) reads as something else than text, and text that stresses keys,
# file names, JSON and the Space: kept unquoted in the output.
RAW_SCALARS = [".nan", ".NaN", ".inf", "-.inf", "~", "null", "yes", "No", "on", "0x1F", "0o17", "017", "1_000",
               "1:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-13-45", "1e400", "-0", "0.",
               "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [{a: 1}]", "!!python/object:os.system x",
               "!!str 12", "!!int 3", "!!float x", "&dangling", "*undefined", "|\n  block", "'quoted'",
               '"\\ud800"', '"\\x00"', '"\\u202e"', "99999999999999999999999999", "-1", "0", "1", "10000000",
               "'%s'" % ("z" * 300), "true", "false", "[]", "{}", "@reserved", "`tick`", "%percent", "? complex"]
GOOD_NAMES = st.sampled_from(["web", "db", "srv", "app", "a", "b_1", "x-y", "x.y"])
NAMES = st.sampled_from(["web", "db", "srv", "app", "a", "b_1", "x-y", "x.y", "web", "db", "srv", "app"]
                        + ["..", "a/b", "a b", "\u00e9", "x" * 200])


def _q(text: str) -> str:
    return json.dumps(text)   # a JSON string is a YAML double-quoted scalar


class Doc:
    """YAML text of a random structure, with anchors placed on collections and aliases to them."""

    def __init__(self, draw, clean: bool):
        self.draw = draw
        self.anchors = []
        self.clean = clean       # half of the documents: good names, plain values (they get further)
        self.names = GOOD_NAMES if clean else NAMES

    def scalar(self) -> str:
        kind = self.draw(st.integers(1 if self.clean else 0, 15))
        if kind == 0:
            return self.draw(st.sampled_from(RAW_SCALARS))
        if kind <= 3:
            return _q(self.draw(st.text(max_size=30)))
        if kind <= 7:
            return str(self.draw(st.one_of(st.integers(0, 5), st.integers(-(10 ** 12), 10 ** 12))))
        if kind == 8:
            return repr(self.draw(st.floats(allow_nan=kind == 0, allow_infinity=False)))
        if kind <= 11:
            return self.draw(st.sampled_from(NODE_TYPES))
        return _q(self.draw(self.names))

    def key(self) -> str:
        kind = self.draw(st.integers(1 if self.clean else 0, 9))
        k = self.draw(st.sampled_from(RAW_SCALARS[:12]) if kind == 0 else self.names if kind <= 3 else st.sampled_from(KEYS))
        if k == "<<" or k in RAW_SCALARS:
            return k
        return _q(k)

    def value(self, depth: int) -> str:
        choice = self.draw(st.integers(0, 9 if depth < 6 else 2))
        if choice <= 1 and self.anchors:
            return "*" + self.draw(st.sampled_from(self.anchors))
        if choice <= 4 or depth >= 6:
            return self.scalar()
        anchor = ""
        if self.draw(st.integers(0, 4)) == 0:
            self.count = getattr(self, "count", 0) + 1
            anchor = "&a%d " % self.count
        if choice <= 6:
            items = [self.value(depth + 1) for dummy in range(self.draw(st.integers(0, 4)))]
            text = anchor + "[" + ", ".join(items) + "]"
        else:
            pairs = [self.key() + ": " + self.value(depth + 1) for dummy in range(self.draw(st.integers(0, 4)))]
            text = anchor + "{" + ", ".join(pairs) + "}"
        if anchor:
            self.anchors.append(anchor[1:-1])
        return text


@st.composite
def model_text(draw) -> str:
    """A service template: mostly well-formed sections, each with random holes and random values."""
    d = Doc(draw, draw(st.booleans()))
    NAMES = d.names  # noqa: N806
    lines = []
    version = draw(st.sampled_from(VERSIONS[:3] if d.clean else VERSIONS[:3] * 4 + VERSIONS[3:]))
    if version:
        lines.append("tosca_definitions_version: %s" % version)
    if draw(st.booleans()):
        lines.append("node_types:")
        for tname in draw(st.lists(st.sampled_from(["my.T", "my.U", "my.V"]), max_size=3, unique=True)):
            lines.append("  %s:" % tname)
            lines.append("    derived_from: %s" % draw(st.sampled_from(NODE_TYPES)))
            if draw(st.booleans()):
                lines.append("    properties:")
                for pname in draw(st.lists(NAMES, max_size=3, unique=True)):
                    lines.append("      %s: {type: %s, required: %s%s}" % (
                        _q(pname), draw(st.sampled_from(["string", "integer", "float", "boolean", "map", "list",
                                                         "tosca.datatypes.network.PortDef", "nope"])),
                        draw(st.sampled_from(["false", "true", "maybe"])),
                        ", default: " + d.value(3) if draw(st.booleans()) else ""))
            if not d.clean and draw(st.booleans()):
                lines.append("    interfaces: {Standard: {create: %s}}" % d.value(3))
    lines.append("topology_template:")
    if draw(st.booleans()):
        lines.append("  inputs:")
        for iname in draw(st.lists(NAMES, max_size=3, unique=True)):
            lines.append("    %s: {type: %s, default: %s}" % (_q(iname), draw(st.sampled_from(
                ["string", "integer", "float", "list", "nope"])), d.value(3)))
    lines.append("  node_templates:")
    templates = draw(st.lists(NAMES, min_size=1 if d.clean else 0, max_size=4, unique=True))
    for tname in templates:
        lines.append("    %s:" % _q(tname))
        lines.append("      type: %s" % draw(st.sampled_from(NODE_TYPES)))
        if draw(st.booleans()):
            lines.append("      properties: %s" % ("{%s}" % ", ".join("%s: %s" % (_q(n), d.value(3)) for n in draw(
                st.lists(NAMES, max_size=3, unique=True))) if d.clean else d.value(2)))
        if draw(st.booleans()):
            lines.append("      requirements:")
            for dummy in range(draw(st.integers(1, 3))):
                target = draw(st.one_of(st.sampled_from(templates), NAMES))
                req = draw(st.sampled_from(
                    ["host", "dependency"] if d.clean else ["host", "dependency"] * 4 + ["rel", "<<"]))
                lines.append("        - %s: %s" % (req, _q(target) if draw(st.booleans()) else d.value(4)))
        if draw(st.booleans()):
            lines.append("      capabilities: {scalable: {properties: {default_instances: %s, max_instances: %s}}}"
                         % (d.scalar(), d.scalar()))
        if not d.clean and draw(st.booleans()):
            lines.append("      interfaces: {Standard: {create: %s, configure: {implementation: %s, inputs: %s}}}"
                         % (d.value(4), _q(draw(st.sampled_from(["x.sh", "../x.sh", "/etc/passwd", "a b.sh"]))),
                            d.value(4)))
        if not d.clean and draw(st.integers(0, 3)) == 0:
            lines.append("      %s: %s" % (d.key(), d.value(2)))
    if draw(st.integers(0, 3)) == 0:
        lines.append("  workflows: {%s: {steps: %s}}" % (_q(draw(NAMES)), d.value(3)))
    if not d.clean and draw(st.integers(0, 3)) == 0:
        lines.append("%s: %s" % (d.key(), d.value(1)))
    return "\n".join(lines) + "\n"


@contextmanager
def at_most(seconds: int):
    """Turn a hang into a failure (SIGALRM: the test runs in the main thread)."""
    def hang(signum, frame):
        raise TimeoutError("no answer within %d s" % seconds)
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def fuzz_space(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    space = api.open_space(api.SpaceOptions(backend="embedded", path=str(d / "space.db"), prefix="wf/"))
    yield d, space
    space.close()


def _index(space) -> int:
    return space.wait("", 0, 0)[0]


@settings(max_examples=int(os.environ.get("WF_FUZZ_EXAMPLES", "5000")), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(text=model_text())
def test_upload_stores_or_refuses_in_lines(fuzz_space, text):
    folder, space = fuzz_space
    path = folder / "model.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = _index(space)
    with at_most(5):
        try:
            result = api.upload_model(space, str(path), "fuzz")
        except WfError as exc:
            lines = [p.line() for p in (getattr(exc, "problems", None) or [exc])]
            assert lines and all(line and "\n" not in line for line in lines), lines
            assert _index(space) == before, "a refused upload wrote to the Space"
            return
    dumps(result)          # what the upload returns is JSON too
    assert result["name"] == "fuzz"


@pytest.fixture(scope="module")
def cli_space(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzcli")
    api.open_space(api.SpaceOptions(backend="embedded", path=str(d / "space.db"), prefix="wf/")).close()
    return d


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(text=model_text())
def test_wfctl_model_exits_0_or_2_with_lines(cli_space, text):
    path = cli_space / "model.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    db = cli_space / "space.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    env = dict(os.environ, WF_SPACE=str(db))
    for k in ("WF_PREFIX", "WF_BACKEND", "WF_MAX_INSTANCES"):
        env.pop(k, None)
    r = subprocess.run([sys.executable, "-m", "wfengine.cli", "model", str(path), "fuzz"], env=env,
                       cwd=str(cli_space), capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode in (0, 2), (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr
    if r.returncode == 2:
        assert r.stdout == ""
        assert r.stderr and all(line.startswith("wfctl: ") for line in r.stderr.splitlines()), r.stderr
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "a refused upload changed the Space file"
    else:
        assert r.stdout.startswith("model fuzz: ")
