"""Bad input to the real ``wfctl``: one line on stderr naming the file / node, exit code 2, and
nothing written to the Space.

Each case runs ``python -m wfengine.cli`` in a fresh process against a copy of one prepared
embedded Space (a library, a model, an instance with one finished install run), then compares
every key, value, modify index and session of the whole SQLite store (all prefixes, not only
``wf/``) and its global index with what they were before.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from wfengine import api
from wfengine.space import open_space as open_raw_space

from engine_helpers import EXAMPLE

WFCTL = [sys.executable, "-m", "wfengine.cli"]
V = "tosca_definitions_version: tosca_simple_yaml_1_3\n"
TOPO = "topology_template:\n  node_templates:\n"

GOOD_LIBRARY = V + """\
node_types:
  my.Service:
    derived_from: tosca.nodes.SoftwareComponent
"""


def _model(templates: str, head: str = V) -> str:
    return head + TOPO + textwrap.indent(textwrap.dedent(templates), "    ")


def _scaling(props: str) -> Dict[str, str]:
    return {"sc.yaml": _model("""\
        srv:
          type: tosca.nodes.Compute
          capabilities:
            scalable:
              properties: %s
        """ % props)}


# ---------------------------------------------------------------- the cases
# id -> (files to write, argv after wfctl, substrings the one stderr line must contain)
Case = Tuple[Dict[str, str], List[str], List[str]]

MODEL_CASES: Dict[str, Case] = {
    # issue 16 items 6 and 9: functions are checked at upload (TOSCA 1.3 chapter 4)
    "function_unknown_attribute": (
        {"fa.yaml": _model("""\
            srv: {type: tosca.nodes.Compute}
            a:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: srv}]
              properties:
                component_version: {get_attribute: [HOST, privat_address]}
            """)},
        ["model", "fa.yaml", "x"],
        ["fa.yaml", "node_templates.a.properties.component_version.get_attribute", "node template a",
         "privat_address"]),
    "function_undeclared_input": (
        {"fi.yaml": _model("a: {type: tosca.nodes.Compute, attributes: {x: {get_input: nope}}}\n")},
        ["model", "fi.yaml", "x"], ["fi.yaml", "node_templates.a.attributes.x.get_input", "no input 'nope'"]),
    "function_unknown": (
        {"fu.yaml": _model("a: {type: tosca.nodes.Compute, attributes: {x: {get_env: [v, k]}}}\n")},
        ["model", "fu.yaml", "x"], ["fu.yaml", "node_templates.a.attributes.x.get_env", "unknown function"]),
    # issue 18 item 1: get_secret's shape is checked at upload
    "get_secret_unknown_source": (
        {"gs.yaml": _model("a: {type: tosca.nodes.Compute, attributes: {x: {get_secret: [v, k]}}}\n")},
        ["model", "gs.yaml", "x"], ["gs.yaml", "node_templates.a.attributes.x.get_secret", "unknown source 'v'"]),
    # issue 18 item 1: a sensitive input's default would be stored in clear
    "sensitive_input_default": (
        {"si.yaml": (V + "topology_template:\n  inputs:\n    pw: {type: string, sensitive: true, default: hunter2}\n"
                     "  node_templates:\n    a: {type: tosca.nodes.Compute}\n")},
        ["model", "si.yaml", "x"], ["si.yaml", "topology_template.inputs.pw.default", "is sensitive", "get_secret"]),
    # issue 18 item 5: an operation input named BASH_ENV would make bash source a file
    "input_bash_env": (
        {"be.yaml": _model("""\
            a:
              type: tosca.nodes.Compute
              interfaces:
                Standard:
                  create:
                    implementation: c.sh
                    inputs: {BASH_ENV: /tmp/x}
            """), "c.sh": "true\n"},
        ["model", "be.yaml", "x"], ["be.yaml", "operation Standard.create", "input BASH_ENV: refused"]),
    "yaml_syntax_error": (
        {"syn.yaml": V + TOPO + "    a: {type: [\n"},
        ["model", "syn.yaml", "x"], ["syn.yaml", "invalid YAML", "line"]),
    "yaml_bad_indentation": (
        {"ind.yaml": V + TOPO + "    a:\n      type: tosca.nodes.Compute\n     b: 1\n"},
        ["model", "ind.yaml", "x"], ["ind.yaml", "invalid YAML", "line 6"]),
    "not_a_mapping": (
        {"list.yaml": "- a\n- b\n"}, ["model", "list.yaml", "x"], ["list.yaml", "mapping"]),
    "empty_file": ({"empty.yaml": ""}, ["model", "empty.yaml", "x"], ["empty.yaml"]),
    "unknown_node_type": (
        {"ut.yaml": _model("a: {type: my.Nope}\n")},
        ["model", "ut.yaml", "x"], ["ut.yaml", "node_templates.a", "my.Nope"]),
    "unknown_relationship_type": (
        {"ur.yaml": _model("""\
            srv: {type: tosca.nodes.Compute}
            a:
              type: tosca.nodes.SoftwareComponent
              requirements:
                - host: {node: srv, relationship: my.Nope}
            """)},
        ["model", "ur.yaml", "x"], ["ur.yaml", "node_templates.a", "my.Nope"]),
    "missing_target_node": (
        {"mt.yaml": _model("""\
            a:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: ghost}]
            """)},
        ["model", "mt.yaml", "x"], ["mt.yaml", "node_templates.a", "ghost"]),
    "missing_target_node_long_form": (
        {"mt2.yaml": _model("""\
            srv: {type: tosca.nodes.Compute}
            a:
              type: tosca.nodes.SoftwareComponent
              requirements:
                - host: srv
                - db: {node: ghost, relationship: tosca.relationships.ConnectsTo}
            """)},
        ["model", "mt2.yaml", "x"], ["mt2.yaml", "node_templates.a", "ghost"]),
    "scaling_default_above_max": (
        _scaling("{default_instances: 5, max_instances: 2}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "default_instances=5", "max_instances=2"]),
    "scaling_min_above_default": (
        _scaling("{min_instances: 3, default_instances: 2}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "min_instances=3"]),
    "scaling_negative_default": (
        _scaling("{default_instances: -1}"), ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "-1"]),
    "scaling_negative_min": (
        _scaling("{min_instances: -2, default_instances: 0}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "-2"]),
    "scaling_negative_max": (
        _scaling("{min_instances: 0, default_instances: 0, max_instances: -1}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "max_instances=-1"]),
    "scaling_float": (
        _scaling("{default_instances: 1.5}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "default_instances", "1.5"]),
    "scaling_string": (
        _scaling("{default_instances: two}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "default_instances", "two"]),
    "scaling_boolean": (
        _scaling("{max_instances: true}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "max_instances"]),
    "scaling_unknown_property": (
        _scaling("{default_instance: 2}"),
        ["model", "sc.yaml", "x"], ["sc.yaml", "srv", "default_instance"]),
    "unknown_tosca_version": (
        {"ver.yaml": _model("a: {type: tosca.nodes.Compute}\n",
                            head="tosca_definitions_version: tosca_simple_yaml_9_9\n")},
        ["model", "ver.yaml", "x"], ["ver.yaml", "tosca_simple_yaml_9_9"]),
    "missing_tosca_version": (
        {"nov.yaml": _model("a: {type: tosca.nodes.Compute}\n", head="")},
        ["model", "nov.yaml", "x"], ["nov.yaml", "tosca_definitions_version"]),
    "missing_import_file": (
        {"mi.yaml": _model("a: {type: tosca.nodes.Compute}\n", head=V + "imports: [lib/missing.yaml]\n")},
        ["model", "mi.yaml", "x"], ["mi.yaml", "imports[0]", "missing.yaml"]),
    "missing_nested_import_file": (
        {"mn.yaml": _model("a: {type: tosca.nodes.Compute}\n", head=V + "imports: [inner.yaml]\n"),
         "inner.yaml": V + "imports: [gone.yaml]\n"},
        ["model", "mn.yaml", "x"], ["inner.yaml", "gone.yaml"]),
    "repository_import": (
        {"ri.yaml": _model("a: {type: tosca.nodes.Compute}\n",
                           head=V + "imports: [{file: t.yaml, repository: r}]\n")},
        ["model", "ri.yaml", "x"], ["ri.yaml", "imports[0]", "repository", "local files only"]),
    "model_file_not_found": ({}, ["model", "nofile.yaml", "x"], ["nofile.yaml", "not found"]),
    "deadlock_connects_to_cycle": (
        {"dl.yaml": _model("""\
            srv: {type: tosca.nodes.Compute}
            A:
              type: tosca.nodes.SoftwareComponent
              requirements:
                - host: srv
                - to_b: {node: B, relationship: tosca.relationships.ConnectsTo}
            B:
              type: tosca.nodes.SoftwareComponent
              requirements:
                - host: srv
                - to_a: {node: A, relationship: tosca.relationships.ConnectsTo}
            """)},
        ["model", "dl.yaml", "x"], ["workflow install deadlocks", "A waits for B", "B waits for A"]),
    "deadlock_depends_on_cycle": (
        {"dd.yaml": _model("""\
            srv: {type: tosca.nodes.Compute}
            P:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: srv}, {dependency: Q}]
            Q:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: srv}, {dependency: R}]
            R:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: srv}, {dependency: P}]
            """)},
        ["model", "dd.yaml", "x"], ["deadlocks", "P waits for Q", "Q waits for R", "R waits for P"]),
    "deadlock_over_the_stored_model": (
        {"dl.yaml": _model("""\
            srv: {type: tosca.nodes.Compute, requirements: [{dependency: srv}]}
            """)},
        ["model", "dl.yaml", "app"], ["deadlocks", "srv waits for srv"]),
    "hosted_on_cycle": (
        {"hc.yaml": _model("""\
            a:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: {node: b, relationship: tosca.relationships.HostedOn}}]
            b:
              type: tosca.nodes.SoftwareComponent
              requirements: [{host: {node: a, relationship: tosca.relationships.HostedOn}}]
            """)},
        ["model", "hc.yaml", "x"], ["hc.yaml", "HostedOn cycle: a -> b -> a"]),
    "bad_model_over_the_stored_model": (
        {"ut.yaml": _model("a: {type: my.Nope}\n")},
        ["model", "ut.yaml", "app"], ["ut.yaml", "my.Nope"]),
    "model_name_with_slash": (
        {}, ["model", str(EXAMPLE), "a/b"], ["model name", "'a/b'"]),
    "model_name_dot_dot": (
        {}, ["model", str(EXAMPLE), "../up"], ["model name", "'../up'"]),
    "model_name_empty": ({}, ["model", str(EXAMPLE), ""], ["model name", "''"]),
    "model_name_too_long": ({}, ["model", str(EXAMPLE), "m" * 129], ["model name"]),
}

RUN_CASES: Dict[str, Case] = {
    "instantiate_unknown_model": ({}, ["instantiate", "nomodel", "i"], ["unknown model nomodel"]),
    "instantiate_bad_instance_name": ({}, ["instantiate", "app", "x/y"], ["instance name", "'x/y'"]),
    "instantiate_bad_model_name": ({}, ["instantiate", "a/b", "i"], ["model name", "'a/b'"]),
    "workflow_unknown_model": ({}, ["workflow", "install", "nomodel", "prod"], ["unknown model nomodel"]),
    "workflow_unknown_instance": ({}, ["workflow", "install", "app", "noinst"],
                                  ["unknown instance noinst", "app"]),
    "workflow_unknown_workflow": ({}, ["workflow", "backup", "app", "prod"],
                                  ["app", "no workflow backup"]),
    "workflow_unknown_workflow_wait": ({}, ["workflow", "backup", "app", "prod", "--wait"],
                                       ["app", "no workflow backup"]),
    "workflow_bad_instance_name": ({}, ["workflow", "install", "app", "../x"], ["instance name"]),
    "status_unknown_model": ({}, ["status", "nomodel", "prod"], ["unknown model nomodel"]),
    "status_unknown_instance": ({}, ["status", "app", "noinst"], ["unknown instance noinst", "app"]),
    "status_json_unknown_instance": ({}, ["status", "app", "noinst", "--json"],
                                     ["unknown instance noinst"]),
    "trace_unknown_model": ({}, ["trace", "nomodel", "prod"], ["unknown model nomodel"]),
    "trace_unknown_instance": ({}, ["trace", "app", "noinst"], ["unknown instance noinst", "app"]),
    "runs_unknown_instance": ({}, ["runs", "app", "noinst"], ["unknown instance noinst", "app"]),
}

# `wfctl trace` refuses a workflow the model does not define and a run the instance never had.
TRACE_CASES: Dict[str, Case] = {
    "trace_unknown_workflow": ({}, ["trace", "app", "prod", "--workflow", "backup"],
                               ["app", "backup"]),
    "trace_unknown_run": ({}, ["trace", "app", "prod", "--run", "nope"], ["nope"]),
}

LIBRARY_CASES: Dict[str, Case] = {
    "library_yaml_syntax_error": ({"l1.yaml": "node_types: {\n"}, ["library", "l1.yaml"],
                                  ["l1.yaml", "invalid YAML"]),
    "library_without_types": ({"l2.yaml": V + "description: nothing\n"}, ["library", "l2.yaml"],
                              ["l2.yaml", "at least one type"]),
    "library_unknown_parent": (
        {"l3.yaml": V + "node_types:\n  my.T:\n    derived_from: my.Nope\n"},
        ["library", "l3.yaml"], ["l3.yaml", "my.T", "my.Nope"]),
    "library_derivation_cycle": (
        {"l4.yaml": V + "node_types:\n  my.A: {derived_from: my.B}\n  my.B: {derived_from: my.A}\n"},
        ["library", "l4.yaml"], ["l4.yaml", "my.A", "my.B", "cycle"]),
    "library_bad_activity": (
        {"l5.yaml": V + textwrap.dedent("""\
            node_types:
              my.T:
                derived_from: tosca.nodes.Root
                workflows:
                  install:
                    steps:
                      s:
                        activities:
                          - set_state: a
                            call_operation: b
            """)},
        ["library", "l5.yaml"], ["l5.yaml", "my.T", "install"]),
    "library_bad_weaving": (
        {"l6.yaml": V + textwrap.dedent("""\
            relationship_types:
              my.R:
                derived_from: tosca.relationships.Root
                workflows:
                  install:
                    source_weaving:
                      - before: creating
                        after: started
            """)},
        ["library", "l6.yaml"], ["l6.yaml", "my.R", "source_weaving"]),
    "library_unknown_version": (
        {"l7.yaml": GOOD_LIBRARY.replace("1_3", "2_0")}, ["library", "l7.yaml"],
        ["l7.yaml", "tosca_simple_yaml_2_0"]),
    "library_missing_import": (
        {"l8.yaml": GOOD_LIBRARY + "imports: [nowhere.yaml]\n"}, ["library", "l8.yaml"],
        ["l8.yaml", "nowhere.yaml"]),
    "library_file_not_found": ({}, ["library", "nolib.yaml"], ["nolib.yaml", "not found"]),
    "library_bad_name": ({"good.yaml": GOOD_LIBRARY}, ["library", "good.yaml", "--name", "a/b"],
                         ["library name", "'a/b'"]),
    "library_bad_name_from_file": ({"bad name.yaml": GOOD_LIBRARY}, ["library", "bad name.yaml"],
                                   ["library name", "'bad name'"]),
}

ALL_CASES = [pytest.param(*MODEL_CASES[k], id=k) for k in MODEL_CASES] \
    + [pytest.param(*RUN_CASES[k], id=k) for k in RUN_CASES] \
    + [pytest.param(*LIBRARY_CASES[k], id=k) for k in LIBRARY_CASES] \
    + [pytest.param(*TRACE_CASES[k], id=k) for k in TRACE_CASES]


# ---------------------------------------------------------------- the prepared Space
@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A Space with library ``good``, model ``app`` (the example), instance ``prod`` installed."""
    d = tmp_path_factory.mktemp("prepared")
    lib = d / "good.yaml"
    lib.write_text(GOOD_LIBRARY)
    opts = api.SpaceOptions(backend="embedded", path=str(d / "space.db"), prefix="wf/")
    space = api.open_space(opts)
    try:
        api.upload_library(space, str(lib))
        api.upload_model(space, str(EXAMPLE), "app")
        api.create_instance(space, "app", "prod")
        rec = api.start_workflow(space, "install", "app", "prod")
        assert api.run_with_local_workers(opts, space, rec["id"], 2, timeout=60)["status"] == "succeeded"
    finally:
        space.close()
    return d / "space.db"


@pytest.fixture
def space_file(prepared, tmp_path) -> Path:
    """A private copy of the prepared Space (SQLite's online backup: consistent even if a worker
    thread of the preparation still had the file open)."""
    dst = tmp_path / "space.db"
    src_conn, dst_conn = sqlite3.connect(str(prepared)), sqlite3.connect(str(dst))
    try:
        src_conn.backup(dst_conn)
    finally:
        dst_conn.close()
        src_conn.close()
    return dst


def snapshot(path: Path):
    """Everything in the store, under every prefix, and its global index."""
    raw = open_raw_space("embedded", path=str(path))
    try:
        entries = [(e.key, e.value, e.index, e.session) for e in raw.list("")]
        index, dummy = raw.wait("", 0, 0)
        return index, entries
    finally:
        raw.close()


def wfctl(args: List[str], space: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WF_SPACE=str(space))
    for k in ("WF_PREFIX", "WF_BACKEND"):
        env.pop(k, None)
    return subprocess.run(WFCTL + args, env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=120, check=False)


def assert_one_line(r: subprocess.CompletedProcess, names: List[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, "not one line: %r" % r.stderr
    line = r.stderr.rstrip("\n")
    assert line.startswith("wfctl: "), line
    assert "Traceback" not in line
    for name in names:
        assert name in line, "%r not named in: %s" % (name, line)
    assert r.stdout == "", r.stdout
    return line


# ---------------------------------------------------------------- tests
def test_prepared_space_is_what_the_cases_assume(space_file, tmp_path):
    """The names the cases call unknown are unknown, the known ones are known (so each case
    fails for the reason it claims)."""
    dummy, entries = snapshot(space_file)
    keys = [e[0] for e in entries]
    assert all(k.startswith("wf/") for k in keys)
    assert "wf/lib/good" in keys and "wf/models/app/head" in keys and "wf/inst/app/prod/head" in keys
    assert not any(k.startswith(("wf/models/x/", "wf/models/nomodel/", "wf/inst/app/noinst/"))
                   for k in keys)
    r = wfctl(["status", "app", "prod"], space_file, tmp_path)
    assert r.returncode == 0 and "started" in r.stdout, r


@pytest.mark.parametrize("files,argv,names", ALL_CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(space_file, tmp_path, files, argv, names):
    work = tmp_path / "work"
    work.mkdir()
    for name, text in files.items():
        (work / name).write_text(text)
    before = snapshot(space_file)
    r = wfctl(argv, space_file, work)
    after = snapshot(space_file)
    assert_one_line(r, names)
    assert after == before, "the failed command wrote to the Space"


@pytest.mark.parametrize("ttl,says", [("abc", "'abc' is not a number of seconds"),
                                      ("0", "'0': expected a number of seconds > 0")])
def test_a_bad_worker_ttl_is_refused_before_the_run_starts(space_file, tmp_path, monkeypatch,
                                                           ttl, says):
    """The TTL of the workers ``--wait`` hosts is checked as ``wfctl worker`` checks it
    (WorkerOptions), and before the run is written (the install would otherwise run again)."""
    monkeypatch.setenv("WF_WORKER_TTL", ttl)
    before = snapshot(space_file)
    r = wfctl(["workflow", "install", "app", "prod", "--wait", "--force"], space_file, tmp_path)
    assert_one_line(r, ["WF_WORKER_TTL", says])
    assert snapshot(space_file) == before, "the refused command wrote to the Space"


@pytest.mark.parametrize("files,argv,names", [pytest.param(*MODEL_CASES[k], id=k) for k in (
    "yaml_syntax_error", "unknown_node_type", "deadlock_connects_to_cycle", "model_file_not_found")]
    + [pytest.param(*LIBRARY_CASES["library_unknown_parent"], id="library_unknown_parent")])
def test_bad_upload_to_a_new_space_leaves_it_empty(tmp_path, files, argv, names):
    work = tmp_path / "work"
    work.mkdir()
    for name, text in files.items():
        (work / name).write_text(text)
    space = tmp_path / "new.db"
    assert_one_line(wfctl(argv, space, work), names)
    if space.exists():
        assert snapshot(space)[1] == []


def test_a_stored_model_survives_a_bad_upload_under_its_name(space_file, tmp_path):
    """After refused uploads over ``app``, the model still instantiates and runs."""
    (tmp_path / "dl.yaml").write_text(MODEL_CASES["deadlock_connects_to_cycle"][0]["dl.yaml"])
    assert wfctl(["model", "dl.yaml", "app"], space_file, tmp_path).returncode == 2
    r = wfctl(["instantiate", "app", "second"], space_file, tmp_path)
    assert r.returncode == 0 and "19 node instances" in r.stdout, r
    r = wfctl(["workflow", "install", "app", "second", "--wait", "--timeout", "60"], space_file, tmp_path)
    assert r.returncode == 0 and "succeeded" in r.stdout and "19 started" in r.stdout, r


def test_prefix_option_keeps_errors_and_writes_nothing_under_any_prefix(space_file, tmp_path):
    (tmp_path / "ut.yaml").write_text(MODEL_CASES["unknown_node_type"][0]["ut.yaml"])
    before = snapshot(space_file)
    r = wfctl(["--prefix", "other/", "model", "ut.yaml", "x"], space_file, tmp_path)
    assert_one_line(r, ["ut.yaml", "my.Nope"])
    r = wfctl(["--prefix", "other/", "status", "app", "prod"], space_file, tmp_path)
    assert_one_line(r, ["unknown model app"])        # app lives under wf/, not other/
    assert snapshot(space_file) == before


@pytest.mark.parametrize("argv", [["--help"]] + [[c, "--help"] for c in (
    "library", "model", "instantiate", "workflow", "status", "trace", "runs", "worker")],
    ids=" ".join)
def test_help_exits_0(tmp_path, argv):
    r = wfctl(argv, tmp_path / "unused.db", tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.startswith("usage: wfctl") and r.stderr == ""
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.parametrize("argv", [[], ["bogus"], ["model"], ["model", "only-file.yaml"],
                                  ["workflow", "install", "app"], ["--backend", "nope", "status", "a", "b"]],
                         ids=lambda a: " ".join(a) or "no-command")
def test_usage_errors_exit_2_without_touching_the_space(tmp_path, argv):
    r = wfctl(argv, tmp_path / "unused.db", tmp_path)
    assert r.returncode == 2, r
    last = r.stderr.splitlines()[-1]               # argparse: "wfctl[ SUBCOMMAND]: error: ..."
    assert last.startswith("wfctl") and ": error: " in last, r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "unused.db").exists()


# ---------------------------------------------------------------- several problems at once
MANY_PROBLEMS = V + """\
node_types:
  my.Server:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      port: {type: tosca.datatypes.network.PortDef}
topology_template:
  inputs:
    cpus: {type: integer, default: 3, constraints: [{valid_values: [1, 2, 4]}]}
  node_templates:
    srv:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: {get_input: cpus}, mem_size: lots}}
    web:
      type: my.Server
      properties: {port: 70000}
      requirements: [{host: srv}]
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: ghost}]
    ghosted: {type: my.Nope}
    db:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node_filter:
              capabilities: [{host: {properties: [{num_cpus: {greater_than: 16}}]}}]
"""


def test_a_model_with_independent_problems_lists_them_all(space_file, tmp_path):
    """TOSCA 1.3 3.6.3 / 3.6.10 / 3.8.2: six independent mistakes in five places; one upload
    prints each on its own line (file, YAML path, node), exits 2 and writes nothing."""
    (tmp_path / "many.yaml").write_text(MANY_PROBLEMS)
    before = snapshot(space_file)
    r = wfctl(["model", "many.yaml", "x"], space_file, tmp_path)
    assert snapshot(space_file) == before, "the failed upload wrote to the Space"
    assert r.returncode == 2 and r.stdout == "", r
    lines = r.stderr.splitlines()
    assert all(x.startswith("wfctl: ") and "many.yaml: " in x for x in lines), lines
    assert "Traceback" not in r.stderr
    expected = [
        ("topology_template.inputs.cpus.default", "3 is not one of the valid_values [1, 2, 4]"),
        ("node_templates.srv.capabilities.host.properties.mem_size", "srv: capability host: properties.mem_size: "
                                                                     "'lots' is not a scalar-unit.size"),
        ("node_templates.web.properties.port", "web: properties.port: 70000 is not in_range [1, 65535]"),
        ("node_templates.app.requirements[0].host", "app: requirement 'host' targets node 'ghost'"),
        ("node_templates.ghosted.type", "ghosted: unknown node type 'my.Nope'"),
        ("node_templates.db.requirements[0].host", "db: requirement 'host': no node template matches"),
    ]
    assert len(lines) == len(expected), lines
    for path, text in expected:
        assert any(path in x and text in x for x in lines), (path, text, lines)


def test_a_model_with_problems_over_a_new_space_leaves_it_empty(tmp_path):
    (tmp_path / "many.yaml").write_text(MANY_PROBLEMS)
    space = tmp_path / "new.db"
    r = wfctl(["model", "many.yaml", "x"], space, tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 6, r
    if space.exists():
        assert snapshot(space)[1] == []


SCALED = V + """\
topology_template:
  inputs:
    workers: {type: integer, default: 2, constraints: [{less_or_equal: 10}]}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {default_instances: {get_input: workers}, max_instances: 4}}
"""


@pytest.mark.parametrize("value, names", [
    ("many", ["instance s/i", "input workers", "'many' is not an integer"]),
    ("11", ["instance s/i", "input workers", "11 is not less_or_equal 10"]),
    ("7", ["instance s/i", "template vm", "default_instances=7 (input workers)", "max_instances=4"]),
])
def test_instantiate_checks_inputs_and_the_counts_they_give(space_file, tmp_path, value, names):
    """Inputs given with --input are checked against their declared type and constraints, and the
    scaling counts read from them against min/max: one line, exit 2, no instance written."""
    (tmp_path / "s.yaml").write_text(SCALED)
    r = wfctl(["model", "s.yaml", "s"], space_file, tmp_path)
    assert r.returncode == 0 and "2 node instances" in r.stdout, r
    before = snapshot(space_file)
    assert_one_line(wfctl(["instantiate", "s", "i", "--input", "workers=%s" % value], space_file, tmp_path), names)
    assert snapshot(space_file) == before
    r = wfctl(["instantiate", "s", "i", "--input", "workers=3"], space_file, tmp_path)
    assert r.returncode == 0 and "3 node instances" in r.stdout, r
