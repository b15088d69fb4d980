"""The bounds of limits.py and the name grammar, in process (docs/validation.md, "Limits").

YAML cases follow YAML 1.2 section 3.2.2.2 (anchors and aliases: an alias is the anchored node
again, so a small document can denote a huge or recursive graph) and 6.9.2 (node anchors); names
follow TOSCA 1.3 3.1 / 3.8.3 (a node template name is a YAML key, i.e. any string) narrowed to what
Space keys, file names and node instance ids can carry.
"""
from __future__ import annotations

import pytest

from wfengine import limits
from wfengine.catalog import compile_model
from wfengine.errors import ModelError, ToscaError
from wfengine.tosca import bounded_yaml
from wfengine.tosca.loader import load_document


@pytest.mark.parametrize("name", ["web", "web_server", "db-1", "a.b", "_private", "9lives", "x" * 128,
                                  "tosca.nodes.Compute"])
def test_names_the_grammar_accepts(name):
    assert limits.name_problem(name) is None
    assert limits.check_name("node template", name) == name


@pytest.mark.parametrize("name,why", [
    ("..", "contains '..'"), ("a..b", "contains '..'"), ("a/../b", "contains '..'"), ("a/b", "contains '/'"),
    ("a\nb", "contains '\\n'"), ("a b", "contains ' '"), ("x" * 129, "129 characters, more than 128"),
    ("", "empty"), (".hidden", "starts with '.'"), ("-rf", "starts with '-'"), ("a:b", "contains ':'"),
    ("caf\u00e9", "contains '\u00e9'"), ("a\x00b", "contains '\\x00'"), (7, "not a string"),
])
def test_names_the_grammar_refuses_with_the_reason(name, why):
    assert limits.name_problem(name) == why
    with pytest.raises(ToscaError) as info:
        limits.check_name("input", name, file="m.yaml", path="topology_template.inputs")
    text = str(info.value)
    assert "\n" not in text and text.startswith("m.yaml: topology_template.inputs: input name ") and why in text


def test_model_and_instance_names_use_the_same_grammar():
    from wfengine import keys
    assert keys.check_name("model", "_app-1.2") == "_app-1.2"
    for bad in ("a..b", "a\nb", "m" * 129):
        with pytest.raises(ToscaError):
            keys.check_name("instance", bad)


def test_alias_count_is_bounded(write, monkeypatch):
    """YAML 1.2 7.1: each ``*a`` is the anchored node again; a file may not use more than the bound."""
    monkeypatch.setattr(limits, "MAX_YAML_ALIASES", 5)
    path = write("a.yaml", "metadata: &m {k: v}\ndescription: x\nx: [%s]\n" % ", ".join(["*m"] * 6))
    with pytest.raises(ToscaError, match="more than 5 aliases"):
        load_document(path)


def test_expanded_size_is_computed_without_expanding(write, monkeypatch):
    monkeypatch.setattr(limits, "MAX_YAML_NODES", 1000)
    body = 'a0: &a0 ["x", "x", "x", "x"]\n' + "".join(
        "a%d: &a%d [*a%d, *a%d, *a%d, *a%d]\n" % (i, i, i - 1, i - 1, i - 1, i - 1) for i in range(1, 8))
    with pytest.raises(ToscaError, match="more than 1000 nodes once aliases are expanded"):
        bounded_yaml.load(body, "b.yaml")


def test_nesting_through_aliases_is_bounded():
    """Each level is shallow, but every alias nests the previous chain once more."""
    levels = ["l0: &l0 [[[[[[[[[[1]]]]]]]]]]"] + ["l%d: &l%d [[[[[[[[[[*l%d]]]]]]]]]]" % (i, i, i - 1) for i in range(1, 12)]
    with pytest.raises(ToscaError, match="nested more than 100 levels deep once aliases are expanded"):
        bounded_yaml.load("\n".join(levels), "n.yaml")


@pytest.mark.parametrize("depth", [101, 5000, 50000])
def test_deep_nesting_never_raises_recursion_error(depth):
    for text in ("[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth, "- " * depth + "x"):
        with pytest.raises(ToscaError) as info:
            bounded_yaml.load("x: " + text if not text.startswith("-") else text, "d.yaml")
        assert "d.yaml" in str(info.value)


def test_a_document_within_the_bounds_loads_as_safe_load_would():
    import yaml
    text = "a: &x {k: [1, 2.5, true, null, 2001-12-14]}\nb: *x\nc: !!str 3\n"
    assert bounded_yaml.load(text, "ok.yaml") == yaml.safe_load(text)


def test_invalid_values_of_a_tag_are_one_line():
    """YAML 1.1 timestamp pattern with an impossible date: SafeConstructor raises ValueError."""
    with pytest.raises(ToscaError, match="invalid YAML value"):
        bounded_yaml.load("d: 2001-13-45\n", "t.yaml")


def test_nan_and_inf_name_file_and_path(write):
    path = write("f.yaml", "metadata:\n  ok: 1.5\n  bad: [.NaN]\n")
    with pytest.raises(ToscaError) as info:
        load_document(path)
    assert str(info.value) == "%s: metadata.bad[0]: .nan has no JSON form (quote it if it is text)" % path


def test_quoted_nan_is_text(write):
    path = write("q.yaml", "metadata: {x: '.nan'}\n")
    assert load_document(path).metadata == {"x": ".nan"}


def test_instances_are_counted_along_hosted_on_chains(write):
    """TOSCA 1.3 5.8.2 (tosca.capabilities.Scalable): N per host instance, so counts multiply."""
    path = write("m.yaml", """\
        topology_template:
          node_templates:
            vm:
              type: tosca.nodes.Compute
              capabilities: {scalable: {properties: {default_instances: 3, max_instances: 3}}}
            sw:
              type: tosca.nodes.SoftwareComponent
              capabilities: {scalable: {properties: {default_instances: 4, max_instances: 4}}}
              requirements: [{host: vm}]
        """)
    assert compile_model(path)["instances"] == 3 + 12
    from wfengine.tosca.templates import load_model
    from wfengine.instances import check_counts
    model = load_model(path, [])
    assert check_counts(model, 15) == 15
    with pytest.raises(ModelError, match="sw: 12 node instances .* 15 in all so far: more than the 14 allowed"):
        check_counts(model, 14)


def test_max_instances_setting(monkeypatch):
    monkeypatch.delenv(limits.MAX_INSTANCES_ENV, raising=False)
    assert limits.max_instances() == 100000
    monkeypatch.setenv(limits.MAX_INSTANCES_ENV, "250")
    assert limits.max_instances() == 250
    for bad in ("0", "-3", "lots"):
        monkeypatch.setenv(limits.MAX_INSTANCES_ENV, bad)
        with pytest.raises(ToscaError, match="WF_MAX_INSTANCES"):
            limits.max_instances()


def test_compiled_value_over_the_space_bound_is_named(write, monkeypatch):
    """A template whose properties are each small but whose stored value is too large."""
    monkeypatch.setattr(limits, "MAX_VALUE_BYTES", 4000)
    props = "\n".join("      p%d: {type: string, default: '%s'}" % (i, "v" * 300) for i in range(20))
    path = write("v.yaml", "node_types:\n  my.T:\n    derived_from: tosca.nodes.Root\n    properties:\n%s\n"
                 "topology_template:\n  node_templates:\n    t: {type: my.T}\n" % props)
    with pytest.raises(ToscaError, match=r"node template t \(its operations and values\): \d+ KiB once compiled, more than the 3 KiB"):
        compile_model(path)
