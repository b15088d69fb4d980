# -*- coding: utf-8 -*-
"""Loading one TOSCA file and its imports."""
from __future__ import annotations

import json

import pytest

from wfengine.errors import ToscaError
from wfengine.tosca.loader import load_document

NODE = """
node_types:
  {name}:
    derived_from: tosca.nodes.Root
"""


def test_nested_relative_imports(write):
    write("lib/deep/c.yaml", NODE.format(name="my.C"))
    write("lib/b.yaml", "imports:\n  - deep/c.yaml\n" + NODE.format(name="my.B"))
    root = write("a.yaml", "imports:\n  - file: lib/b.yaml\n" + NODE.format(name="my.A")
                 + "topology_template:\n  node_templates:\n    x: {type: my.A}\n")
    doc = load_document(root)
    assert set(doc.node_types) == {"my.A", "my.B", "my.C"}
    assert doc.file_of("node_types", "my.C").endswith("lib/deep/c.yaml")
    assert doc.file_of("node_types", "my.A") == root
    assert doc.topology_template == {"node_templates": {"x": {"type": "my.A"}}}
    assert doc.files[0] == root and len(doc.files) == 3


def test_topology_of_imported_file_is_ignored(write):
    write("b.yaml", NODE.format(name="my.B") + "topology_template:\n  node_templates:\n    y: {type: my.B}\n")
    root = write("a.yaml", "imports: [b.yaml]\n")
    assert load_document(root).topology_template is None


def test_diamond_imports_load_once(write):
    write("d.yaml", NODE.format(name="my.D"))
    write("b.yaml", "imports: [d.yaml]\n")
    write("c.yaml", "imports: [d.yaml]\n")
    doc = load_document(write("a.yaml", "imports: [b.yaml, c.yaml]\n"))
    assert list(doc.node_types) == ["my.D"]


def test_mutual_imports_read_each_file_once(write):
    """Issue 16: CSARs of several type files import each other; each file is read once."""
    write("b.yaml", "imports: [a.yaml]\n" + NODE.format(name="my.B"))
    root = write("a.yaml", "imports: [b.yaml]\n" + NODE.format(name="my.A"))
    doc = load_document(root)
    assert set(doc.node_types) == {"my.A", "my.B"}
    assert [f.rsplit("/", 1)[-1] for f in doc.files] == ["a.yaml", "b.yaml"]
    assert doc.imports[root] == [doc.files[1]] and doc.imports[doc.files[1]] == [root]


def test_self_import_is_harmless(write):
    root = write("a.yaml", "imports: [./a.yaml]\n" + NODE.format(name="my.A"))
    assert list(load_document(root).node_types) == ["my.A"]


def test_missing_import_names_importer_and_path(write):
    write("b.yaml", "imports:\n  - file: nothere/x.yaml\n")
    root = write("a.yaml", "imports: [b.yaml]\n")
    with pytest.raises(ToscaError) as ei:
        load_document(root)
    msg = str(ei.value)
    assert ei.value.file.endswith("b.yaml") and "b.yaml" in msg
    assert "nothere/x.yaml" in msg and "not found" in msg


def test_missing_root_file(tmp_path):
    with pytest.raises(ToscaError, match="file not found"):
        load_document(str(tmp_path / "none.yaml"))


def test_yaml_error_names_file_and_line(write):
    root = write("bad.yaml", "node_types:\n  x: [1, 2\n")
    with pytest.raises(ToscaError) as ei:
        load_document(root)
    assert ei.value.file == root
    assert "line " in str(ei.value) and str(ei.value).startswith(root)


@pytest.mark.parametrize("version", [None, "tosca_simple_yaml_2_0", "tosca_2_0", 1.3])
def test_bad_or_missing_version(write, version):
    head = "" if version is None else "tosca_definitions_version: %s\n" % version
    root = write("v.yaml", head + "description: x\n", header=False)
    with pytest.raises(ToscaError, match="tosca_definitions_version") as ei:
        load_document(root)
    assert ei.value.file == root


@pytest.mark.parametrize("version", ["tosca_simple_yaml_1_0", "tosca_simple_yaml_1_1",
                                     "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3"])
def test_supported_versions(write, version):
    doc = load_document(write("v.yaml", "tosca_definitions_version: %s\n" % version, header=False))
    assert doc.version == version


def test_imported_file_version_checked(write):
    write("b.yaml", "tosca_definitions_version: tosca_9\n", header=False)
    with pytest.raises(ToscaError) as ei:
        load_document(write("a.yaml", "imports: [b.yaml]\n"))
    assert ei.value.file.endswith("b.yaml")


def test_empty_and_non_mapping_documents(write):
    with pytest.raises(ToscaError, match="empty document"):
        load_document(write("e.yaml", "", header=False))
    with pytest.raises(ToscaError, match="mapping"):
        load_document(write("l.yaml", "- a\n- b\n", header=False))


def test_same_type_twice_identical_is_fine(write):
    write("b.yaml", NODE.format(name="my.T"))
    doc = load_document(write("a.yaml", "imports: [b.yaml]\n" + NODE.format(name="my.T")))
    assert list(doc.node_types) == ["my.T"]


def test_same_type_twice_different_is_an_error(write):
    write("b.yaml", NODE.format(name="my.T"))
    write("c.yaml", "node_types:\n  my.T:\n    derived_from: tosca.nodes.Compute\n")
    with pytest.raises(ToscaError) as ei:
        load_document(write("a.yaml", "imports: [b.yaml, c.yaml]\n"))
    msg = str(ei.value)
    assert "my.T" in msg and "b.yaml" in msg and "c.yaml" in msg


def test_imports_shapes(write):
    write("b.yaml", NODE.format(name="my.B"))
    write("c.yaml", NODE.format(name="my.C"))
    doc = load_document(write("a.yaml", "imports:\n  - b.yaml\n  - named: {file: c.yaml}\n"))
    assert set(doc.node_types) == {"my.B", "my.C"}
    with pytest.raises(ToscaError, match="must be a list"):
        load_document(write("x.yaml", "imports: b.yaml\n"))
    with pytest.raises(ToscaError, match="remote import"):
        load_document(write("y.yaml", "imports: ['http://example.org/t.yaml']\n"))
    with pytest.raises(ToscaError, match="repository"):
        load_document(write("z.yaml", "imports: [{file: t.yaml, repository: r}]\n"))


def test_unknown_top_level_key(write):
    with pytest.raises(ToscaError, match="unknown top-level keys: node_type"):
        load_document(write("a.yaml", "node_type: {}\n"))


def test_values_become_json(write):
    root = write("a.yaml", """
        metadata:
          date: 2017-05-01
        node_types:
          my.T:
            properties:
              p: {type: integer, default: 3}
        topology_template:
          node_templates:
            x:
              type: my.T
              properties: {ports: {80: http}, when: 2020-01-02}
        """)
    doc = load_document(root)
    json.dumps(doc.types)
    json.dumps(doc.topology_template)
    assert doc.metadata["date"] == "2017-05-01"
    props = doc.topology_template["node_templates"]["x"]["properties"]
    assert props == {"ports": {"80": "http"}, "when": "2020-01-02"}


def test_non_string_key_refused(write):
    with pytest.raises(ToscaError, match="not a string") as ei:
        load_document(write("a.yaml", "metadata: {yes: 1}\n"))
    assert ei.value.path == "metadata"
