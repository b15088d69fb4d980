"""TOSCA 1.3 chapter 4 functions in real operations on the embedded Space: a script reads what
get_operation_output, token, get_artifact, get_nodes_of_type and a requirement-name
get_attribute/get_property give it, across two workers."""
import pytest

from wfengine import api

from engine_helpers import embedded

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.Db:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      db_name: {type: string}
    interfaces:
      Standard:
        create: scripts/db_create.sh
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      out_dir: {type: string}
    requirements:
      - database:
          capability: tosca.capabilities.Node
          relationship: tosca.relationships.ConnectsTo
    artifacts:
      settings: {type: tosca.artifacts.File, file: files/settings.conf}
topology_template:
  inputs:
    out_dir: {type: string}
  node_templates:
    server: {type: tosca.nodes.Compute}
    spare: {type: tosca.nodes.Compute}
    db:
      type: my.Db
      properties: {db_name: shop}
      requirements: [{host: server}]
    app:
      type: my.App
      properties: {out_dir: {get_input: out_dir}}
      requirements:
        - host: server
        - database: db
      interfaces:
        Standard:
          configure:
            implementation: scripts/app_configure.sh
            inputs:
              OUT: {get_property: [SELF, out_dir]}
              DB_PORT: {get_operation_output: [db, Standard, create, port]}
              MINOR: {token: [{get_operation_output: [db, Standard, create, version]}, ".", 1]}
              SETTINGS: {get_artifact: [SELF, settings]}
              COMPUTES: {get_nodes_of_type: tosca.nodes.Compute}
              DB_NAME: {get_property: [SELF, database, db_name]}
              DB_ID: {get_attribute: [SELF, database, tosca_id]}
"""

DB_CREATE = """\
echo "port=5432" >> "$WF_OUTPUTS"
echo "version=15.4.2" >> "$WF_OUTPUTS"
"""

APP_CONFIGURE = """\
set -e
{
  echo "db_port=$DB_PORT"
  echo "minor=$MINOR"
  echo "computes=$COMPUTES"
  echo "db_name=$DB_NAME"
  echo "db_id=$DB_ID"
  echo "settings_path_is_absolute=$(case "$SETTINGS" in /*) echo yes;; *) echo no;; esac)"
  echo "settings=$(cat "$SETTINGS")"
} > "$OUT/seen.txt"
"""


@pytest.mark.parametrize("upload", ["folder", "file"])
def test_a_script_reads_the_values_of_every_function(tmp_path, monkeypatch, upload):
    """Uploaded as a folder (every file shipped) or as its YAML file alone (only the files the
    model names are shipped: the artifact read by get_artifact is one of them)."""
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    (folder / "scripts").mkdir(parents=True)
    (folder / "files").mkdir()
    (folder / "app.yaml").write_text(MODEL)
    (folder / "scripts" / "db_create.sh").write_text(DB_CREATE)
    (folder / "scripts" / "app_configure.sh").write_text(APP_CONFIGURE)
    (folder / "files" / "settings.conf").write_text("max_connections=7")
    out = tmp_path / "out"
    out.mkdir()
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(folder if upload == "folder" else folder / "app.yaml"), "m")
        api.create_instance(space, "m", "i", inputs={"out_dir": str(out)})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
    finally:
        space.close()
    seen = dict(line.split("=", 1) for line in (out / "seen.txt").read_text().splitlines())
    assert seen == {"db_port": "5432", "minor": "4", "computes": '["server_0", "spare_0"]',
                    "db_name": "shop", "db_id": "db_0", "settings_path_is_absolute": "yes",
                    "settings": "max_connections=7"}


def test_a_function_that_cannot_be_evaluated_fails_the_operation_naming_node_and_operation(tmp_path, monkeypatch):
    """get_operation_output of an output the db's create did not write: the configure script is
    not run, and the error names the node, the operation and the input, never the raw function."""
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    (folder / "scripts").mkdir(parents=True)
    (folder / "files").mkdir()
    bad = MODEL.replace("[db, Standard, create, port]", "[db, Standard, create, nope]")
    (folder / "app.yaml").write_text(bad)
    (folder / "scripts" / "db_create.sh").write_text(DB_CREATE)
    (folder / "scripts" / "app_configure.sh").write_text(APP_CONFIGURE)
    (folder / "files" / "settings.conf").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(folder), "m")
        api.create_instance(space, "m", "i", inputs={"out_dir": str(out)})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "failed", rec
        logs = [r for r in api.logs(space, "m", "i") if r["node"] == "app_0"]
    finally:
        space.close()
    assert not (out / "seen.txt").exists()
    text = logs[-1]["output"]
    assert "app_0 tosca.interfaces.node.lifecycle.Standard.configure: input DB_PORT: get_operation_output" in text
    assert "reported no output 'nope' (its outputs: port, version)" in text
