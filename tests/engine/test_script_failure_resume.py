"""A real script fails: the run fails with its exit code and output, dependents stay untouched,
independent branches finish; after the cause is fixed, resume completes the run without running
again what had succeeded (checked from the per-operation logs)."""
from collections import Counter

from wfengine import api

from engine_helpers import embedded, write

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    flag: {type: string}
  node_templates:
    box: {type: tosca.nodes.Compute}
    db:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: box}]
      interfaces:
        Standard:
          create: scripts/ok.sh
          configure:
            implementation: scripts/needs_flag.sh
            inputs: {FLAG: {get_input: flag}}
          start: scripts/ok.sh
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: box}, {dependency: db}]
      interfaces:
        Standard: {create: scripts/ok.sh, start: scripts/ok.sh}
    other:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: box}]
      interfaces:
        Standard: {create: scripts/ok.sh, configure: scripts/ok.sh, start: scripts/ok.sh}
"""


def _run(opts, space, resume=False):
    rec = api.start_workflow(space, "install", "m", "i", resume=resume)
    return api.run_with_local_workers(opts, space, rec["id"], 1, timeout=120)


def test_failing_script_then_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/ok.sh", "echo ok $WF_NODE $WF_OPERATION\n")
    write(tmp_path, "scripts/needs_flag.sh", """\
        if [ ! -e "$FLAG" ]; then echo "no flag at $FLAG" >&2; exit 7; fi
        echo configured
    """)
    path = write(tmp_path, "m.yaml", MODEL)
    flag = tmp_path / "flag"
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, path, "m")
        api.create_instance(space, "m", "i", inputs={"flag": str(flag)})
        rec = _run(opts, space)
        assert rec["status"] == "failed"
        (err,) = [e for e in rec["errors"] if e.get("operation")]
        assert err["node"] == "db_0" and err["exit_code"] == 7 and "no flag at" in err["output"]
        st = {n: v["state"] for n, v in api.status(space, "m", "i")["nodes"].items()}
        assert st["db_0"] == "error"
        assert st["app_0"] == "initial"          # DependsOn db: never created
        assert st["other_0"] == "started"        # independent branch finished
        flag.write_text("fixed")
        rec = _run(opts, space, resume=True)
        assert rec["status"] == "succeeded"
        st = api.status(space, "m", "i")["nodes"]
        assert Counter(n["state"] for n in st.values()) == {"started": 4}
        ran = Counter((r["node"], r["operation"].rsplit(".", 1)[1], r["status"])
                      for r in api.logs(space, "m", "i"))
        # from the logs: db's configure failed once then succeeded; nothing else ran twice
        assert ran[("db_0", "configure", "failed")] == 1 and ran[("db_0", "configure", "ok")] == 1
        assert all(v == 1 for v in ran.values())
        assert ran[("db_0", "create", "ok")] == 1 and ran[("other_0", "start", "ok")] == 1
    finally:
        space.close()
