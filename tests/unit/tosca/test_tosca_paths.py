# -*- coding: utf-8 -*-
"""Paths as CSARs and xOpera projects write them (issue 16, item 3).

TOSCA 1.3 3.6.7 (artifact definition: ``file`` relative to the file that declares it), 6 (the CSAR,
its root and ``TOSCA-Metadata/TOSCA.meta``), 3.6.8 (import definition, ``namespace_prefix``),
3.6.15 (operation implementation: ``primary`` and ``dependencies``).  Every case goes through
``catalog.compile_model``, as an upload does, and checks what would be stored."""
from __future__ import annotations

import os
import textwrap
import zipfile
from pathlib import Path

import pytest

from wfengine import catalog
from wfengine.errors import ToscaError

V = "tosca_definitions_version: tosca_simple_yaml_1_3\n"
STD = "tosca.interfaces.node.lifecycle.Standard."


def _put(root: Path, rel: str, text: str = "#!/bin/sh\n", mode: int = 0o644) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if text.startswith(V):
        text = V + textwrap.dedent(text[len(V):])
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    p.chmod(mode)
    return p


@pytest.fixture
def csar(tmp_path: Path) -> Path:
    """A CSAR-like folder: the service template imports a type file of a subfolder that names its
    scripts relative to itself, a /-rooted shared library, a folder of helpers, an artifact; the
    type files import each other; one import has a namespace_prefix."""
    root = tmp_path / "csar"
    _put(root, "TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.1\nCSAR-Version: 1.1\n"
                                            "Created-By: test\nEntry-Definitions: service.yaml\n")
    _put(root, "service.yaml", V + """\
        imports:
          - file: types/app.yaml
            namespace_prefix: app
        topology_template:
          node_templates:
            server: {type: Compute}
            web:
              type: app:WebApp
              requirements: [{host: server}]
            job:
              type: app:Job
              requirements:
                - host: server
                - dependency: {node: web, relationship: app:Uses}
            tuned:
              type: app:Tuned
              requirements: [{host: server}]
        """)
    _put(root, "types/app.yaml", V + """\
        imports: [base/base.yaml]
        relationship_types:
          Uses:
            derived_from: ConnectsTo
            interfaces:
              Configure:
                pre_configure_source: scripts/pre.sh
        node_types:
          WebApp:
            derived_from: Base
            interfaces:
              Standard:
                create:
                  implementation:
                    primary: scripts/create.sh
                    dependencies: [/common/lib.sh, helpers]
                start: run_me
            artifacts:
              run_me: {type: Bash, file: scripts/start.sh}
              conf: {type: File, file: conf/app.conf}
          Job:
            derived_from: SoftwareComponent
            interfaces:
              Standard:
                create: /common/job.sh
          Tuned:
            derived_from: Base
            interfaces:
              Standard:
                configure:
                  inputs: {LEVEL: 3}
        """)
    _put(root, "types/base/base.yaml", V + """\
        imports: [../app.yaml]
        node_types:
          Base:
            derived_from: SoftwareComponent
            interfaces:
              Standard:
                configure:
                  implementation: configure.sh
        """)
    _put(root, "types/scripts/create.sh")
    _put(root, "types/scripts/pre.sh")
    _put(root, "types/scripts/start.sh", mode=0o755)
    _put(root, "types/conf/app.conf", "listen 80\n")
    _put(root, "types/helpers/a.sh")
    _put(root, "types/helpers/sub/b.sh")
    _put(root, "types/base/configure.sh")
    _put(root, "common/lib.sh")
    _put(root, "common/job.sh")
    return root


def _ops(compiled, template):
    return compiled["body"]["operations"][template]["node"]


def test_csar_paths_relative_to_the_declaring_file(csar):
    """3.6.7 / 3.6.15: a type file in a subfolder names its scripts relative to itself; an
    inherited operation keeps the folder of the type that declared it (types/base/base.yaml)."""
    compiled = catalog.compile_model(str(csar))
    web = _ops(compiled, "web")
    assert web[STD + "create"]["implementation"]["primary"] == "types/scripts/create.sh"
    assert web[STD + "configure"]["implementation"]["primary"] == "types/base/configure.sh"
    # ``primary`` naming an artifact of the type: the artifact's file, relative to its file.
    assert web[STD + "start"]["implementation"]["primary"] == "types/scripts/start.sh"
    # A relationship type's operations: relative to the file declaring the relationship type.
    rel = compiled["body"]["operations"]["job"]["relationships"]["1"]
    assert rel["tosca.interfaces.relationships.Configure.pre_configure_source"]["implementation"]["primary"] == \
        "types/scripts/pre.sh"
    # A subtype (in app.yaml) adding only inputs leaves the implementation base.yaml's.
    tuned = _ops(compiled, "tuned")[STD + "configure"]
    assert tuned["implementation"]["primary"] == "types/base/configure.sh"
    assert tuned["inputs"] == {"LEVEL": 3}


def test_rooted_paths_and_folder_dependencies(csar):
    """6 (CSAR): a path starting with / is relative to the CSAR root; a dependency may be a folder."""
    compiled = catalog.compile_model(str(csar))
    deps = _ops(compiled, "web")[STD + "create"]["implementation"]["dependencies"]
    assert deps == ["common/lib.sh", "types/helpers"]
    assert _ops(compiled, "job")[STD + "create"]["implementation"]["primary"] == "common/job.sh"
    files = compiled["body"]["files"]
    for rel in ("types/helpers/a.sh", "types/helpers/sub/b.sh", "common/lib.sh", "types/conf/app.conf"):
        assert rel in files
    assert files["types/scripts/start.sh"]["mode"] == 0o755


def test_mutual_imports_and_namespace_prefix(csar):
    """3.6.8: types/app.yaml and types/base/base.yaml import each other (each read once); ``app:WebApp`` is the
    WebApp type of the import declared with ``namespace_prefix: app``."""
    compiled = catalog.compile_model(str(csar))
    model = compiled["model"]
    assert model.templates["web"].type == "WebApp"
    assert model.node_types["WebApp"].ancestors == ["WebApp", "Base", "tosca.nodes.SoftwareComponent",
                                                    "tosca.nodes.Root"]


def test_the_same_csar_as_a_zip_archive(csar, tmp_path):
    """6 (CSAR): the archive form gives the same model version as the folder."""
    archive = tmp_path / "app.csar"
    with zipfile.ZipFile(archive, "w") as zf:
        for dirpath, _dirs, files in os.walk(csar):
            for f in files:
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, csar))
    assert catalog.compile_model(str(archive))["digest"] == catalog.compile_model(str(csar))["digest"]


def test_single_file_model_ships_folder_dependencies_and_artifacts(tmp_path):
    """A single YAML file ships only what it names: itself, a folder dependency whole, artifact files."""
    root = tmp_path / "one"
    model = _put(root, "app.yaml", V + """\
        topology_template:
          node_templates:
            a:
              type: SoftwareComponent
              requirements: [{host: s}]
              artifacts:
                conf: {type: File, file: /etc/app.conf}
              interfaces:
                Standard:
                  create:
                    implementation: {primary: bin/create.sh, dependencies: [lib]}
            s: {type: Compute}
        """)
    _put(root, "bin/create.sh")
    _put(root, "lib/one.sh")
    _put(root, "lib/deep/two.sh")
    _put(root, "etc/app.conf", "x\n")
    _put(root, "unrelated.txt", "not shipped\n")
    compiled = catalog.compile_model(str(model))
    assert sorted(compiled["body"]["files"]) == ["app.yaml", "bin/create.sh", "etc/app.conf", "lib/deep/two.sh",
                                                 "lib/one.sh"]
    assert [f.path for f in compiled["files"]] == sorted(compiled["body"]["files"])


def test_missing_and_escaping_paths_are_upload_errors(tmp_path):
    """Errors name the template, the operation, the path and where it was looked for."""
    root = tmp_path / "bad"
    _put(root, "types/t.yaml", V + """\
        node_types:
          T:
            derived_from: SoftwareComponent
            interfaces:
              Standard:
                create: nothere.sh
        """)
    model = _put(root, "m.yaml", V + """\
        imports: [types/t.yaml]
        topology_template:
          node_templates:
            s: {type: Compute}
            t: {type: T, requirements: [{host: s}]}
        """)
    with pytest.raises(ToscaError) as ei:
        catalog.compile_model(str(root))
    text = str(ei.value)
    assert "node template t" in text and "Standard.create" in text and "'nothere.sh' not found" in text
    assert os.path.join(str(root), "types") in text
    _put(root, "types/t.yaml", V + """\
        node_types:
          T:
            derived_from: SoftwareComponent
            interfaces:
              Standard:
                create: /../outside.sh
        """)
    _put(tmp_path, "outside.sh")
    with pytest.raises(ToscaError, match="outside the model's folder"):
        catalog.compile_model(str(root))
    assert model.exists()


def test_interfaces_keyed_by_their_type_name(tmp_path):
    """TOSCA 1.0 files key interfaces by their type (``tosca.interfaces.node.lifecycle.Standard``,
    or ``tosca:Standard``): their operations are the Standard ones, not silently dropped."""
    root = tmp_path / "keyed"
    model = _put(root, "m.yaml", V + """\
        topology_template:
          node_templates:
            s:
              type: Compute
              interfaces:
                tosca:Standard: {create: c.sh}
                tosca.interfaces.node.lifecycle.Standard: {start: s.sh}
        """)
    _put(root, "c.sh")
    _put(root, "s.sh")
    ops = _ops(catalog.compile_model(str(model)), "s")
    assert ops[STD + "create"]["implementation"]["primary"] == "c.sh"
    assert ops[STD + "start"]["implementation"]["primary"] == "s.sh"


def test_operation_host_is_kept_in_the_compiled_spec(tmp_path):
    """3.6.15 (operation implementation): ``operation_host`` says where the operation runs; the
    compiled spec keeps it for placement.py (it used to be dropped at compile time)."""
    root = tmp_path / "oh"
    model = _put(root, "m.yaml", V + """\
        topology_template:
          node_templates:
            s:
              type: Compute
              interfaces:
                Standard:
                  create: {implementation: {primary: c.sh, operation_host: ORCHESTRATOR}}
        """)
    _put(root, "c.sh")
    impl = _ops(catalog.compile_model(str(model)), "s")[STD + "create"]["implementation"]
    assert impl["operation_host"] == "ORCHESTRATOR"
