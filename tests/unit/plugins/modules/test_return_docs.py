# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each module's RETURN documentation against what it really returns (issue 23).

Every module runs through the cases users meet (present and absent, unchanged, check mode, diff
mode, a failure, the options that add keys); every key of every result must be documented in
RETURN (Ansible's own keys aside), and every key RETURN documents must come back in at least
one of these cases - so the documentation neither misses nor invents a key.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Dict, List, Set

import pytest
import yaml

FQCN = "ansible_collections.ditrit.workflows"
MODULES = ["tosca_library", "tosca_model", "tosca_instance", "tosca_workflow", "tosca_instance_info"]
# Keys Ansible adds or documents itself (common return values), never in a module's RETURN.
ANSIBLE_KEYS = {"changed", "failed", "invocation", "warnings", "deprecations", "diff", "exception"}

LIBRARY = """tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.nodes.App:
    derived_from: tosca.nodes.SoftwareComponent
"""
EXTRAS = """tosca_definitions_version: tosca_simple_yaml_1_3
metadata:
  template_name: extras
topology_template:
  node_templates:
    web: {type: tosca.nodes.Compute}
  groups:
    servers: {type: tosca.groups.Root, members: [web]}
  outputs:
    where: {value: here}
"""
TWO_PROBLEMS = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: nowhere
    other:
      type: no.such.Type
"""
WITH_INPUTS = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    cpus: {type: integer, default: 1}
    port: {type: integer, default: 80}
  node_templates:
    web: {type: tosca.nodes.Compute}
"""
BROKEN = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: nowhere
"""


def return_doc(module: str) -> Dict[str, Any]:
    mod = importlib.import_module("%s.plugins.modules.%s" % (FQCN, module))
    return yaml.safe_load(mod.RETURN) or {}


def documented(collection_path, module: str) -> Set[str]:
    return set(return_doc(module))


@pytest.fixture
def results(run_module, space_file, seed_model, tmp_path, open_space, collection_path) -> Dict[str, List[Dict[str, Any]]]:
    """module -> the results of its cases."""
    out: Dict[str, List[Dict[str, Any]]] = {m: [] for m in MODULES}

    def run(module: str, **args: Any):
        r = run_module(module, **dict({"space": space_file}, **args))
        out[module].append(r.result)
        return r

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    lib = tmp_path / "components.yaml"
    lib.write_text(LIBRARY, encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")

    run("tosca_library", _check=True, src=str(lib))
    run("tosca_library", src=str(lib))
    run("tosca_library", src=str(lib))
    run("tosca_library", src=str(broken))
    run("tosca_library", _check=True, _diff=True, name="components", state="absent")
    run("tosca_library", _diff=True, name="components", state="absent")
    run("tosca_library", name="components", state="absent")

    run("tosca_model", _check=True, _diff=True, name="seed", src=seed_model)
    run("tosca_model", _diff=True, name="seed", src=seed_model)
    run("tosca_model", name="seed", src=seed_model)
    run("tosca_model", name="broken", src=str(broken))
    run("tosca_model", name="two", src=write("two.yaml", TWO_PROBLEMS))
    # a head whose version is gone (a store damaged by an older engine): the same upload repairs it
    keys = importlib.import_module(FQCN + ".plugins.module_utils.wfengine.keys")
    digest = run("tosca_model", name="damaged", src=seed_model).result["digest"]
    open_space(space_file).delete_tree(keys.model_version("damaged", digest))
    assert run("tosca_model", name="damaged", src=seed_model).result.get("repaired")

    run("tosca_instance", _check=True, model="seed", name="prod")
    run("tosca_instance", _diff=True, model="seed", name="prod")
    run("tosca_instance", model="seed", name="prod")
    run("tosca_instance", model="nothing", name="prod")
    run("tosca_model", name="inputs", src=write("inputs.yaml", WITH_INPUTS))
    run("tosca_instance", model="inputs", name="bad", inputs={"cpus": "x", "port": "y"})

    run("tosca_workflow", _check=True, model="seed", instance="prod")
    run("tosca_workflow", model="seed", instance="prod")
    run("tosca_workflow", model="seed", instance="prod")
    # day 2: version 2 of the model, the instance updated (plan in check mode, run, diff), scaled
    run("tosca_model", name="seed", src=os.path.join(os.path.dirname(seed_model), "app_v2.yaml"))
    run("tosca_instance", _check=True, _diff=True, model="seed", name="prod")
    run("tosca_instance", _diff=True, model="seed", name="prod")
    run("tosca_instance", model="seed", name="prod")
    started = run("tosca_instance", model="seed", name="prod", counts={"A": 3}, wait=False)
    assert started["run"]["status"] == "running", started
    again = run("tosca_instance", model="seed", name="prod", counts={"A": 3}, wait=False)
    assert not again.changed and again["run"]["run_id"] == started["run"]["run_id"], again
    waited = run("tosca_instance", model="seed", name="prod", counts={"A": 3})   # waits for that run
    assert waited["run"]["status"] == "succeeded" and waited["run"]["run_id"] == started["run"]["run_id"], waited
    assert run("tosca_workflow", model="seed", instance="prod")["skipped_run"]   # installed, then updated
    run("tosca_workflow", _check=True, model="seed", instance="prod", workflow="uninstall")
    run("tosca_workflow", model="seed", instance="prod", workflow="nothing")
    run("tosca_workflow", model="seed", instance="nothing")

    run("tosca_instance_info", model="seed", instance="prod")
    run("tosca_instance_info", _check=True, model="seed", instance="prod", timeline=True, workflow="install")
    run("tosca_model", name="extras", src=write("extras.yaml", EXTRAS))
    run("tosca_instance", model="extras", name="x")
    run("tosca_workflow", model="extras", instance="x")
    run("tosca_instance_info", model="extras", name="x", trace=True, logs=True)
    run("tosca_instance_info", model="seed", instance="nothing")

    run("tosca_workflow", model="seed", instance="prod", workflow="uninstall", wait=False)
    run("tosca_workflow", model="seed", instance="prod", workflow="uninstall", force=True)

    run("tosca_instance", _check=True, _diff=True, model="seed", name="prod", state="absent")
    run("tosca_instance", _diff=True, model="seed", name="prod", state="absent")
    run("tosca_instance", model="seed", name="prod", state="absent")
    run("tosca_model", _check=True, _diff=True, name="seed", state="absent")
    run("tosca_model", _diff=True, name="seed", state="absent")
    run("tosca_model", name="seed", state="absent")
    return out


@pytest.mark.parametrize("module", MODULES)
def test_every_returned_key_is_documented(collection_path, results, module):
    keys = set().union(*(r.keys() for r in results[module])) - ANSIBLE_KEYS
    keys = {k for k in keys if not k.startswith("_ansible")}
    missing = sorted(keys - documented(collection_path, module))
    assert not missing, "%s returns keys its RETURN does not document: %s" % (module, missing)


@pytest.mark.parametrize("module", MODULES)
def test_every_documented_key_is_returned(collection_path, results, module):
    keys = set().union(*(r.keys() for r in results[module]))
    # Ansible's own keys (a module may document what it puts in them, e.g. warnings)
    extra = sorted(documented(collection_path, module) - keys - ANSIBLE_KEYS)
    assert not extra, "%s documents keys none of its cases returned: %s" % (module, extra)


@pytest.mark.parametrize("module", MODULES)
def test_documented_dicts_have_their_keys(collection_path, results, module):
    """A dict RETURN describes with ``contains`` (tosca_instance_info's ``timeline``) holds only the
    keys documented there, in each case that returned it, and every one of them that has no
    ``returned`` of its own (one that has says when it is missing, e.g. a run not waited for)."""
    for key, doc in return_doc(module).items():
        if doc.get("type") != "dict" or not doc.get("contains"):
            continue
        seen = [r[key] for r in results[module] if key in r]
        assert seen, "%s: no case returned %s" % (module, key)
        always = {k for k, sub in doc["contains"].items() if "returned" not in sub}
        for value in seen:
            assert always <= set(value) <= set(doc["contains"]), \
                (module, key, sorted(always - set(value)), sorted(set(value) - set(doc["contains"])))


@pytest.mark.parametrize("module, args, header", [
    ("tosca_library", {"name": "components"}, "components (stored)"),
    ("tosca_model", {"name": "seed"}, "seed (stored)"),
    ("tosca_instance", {"model": "seed", "name": "prod"}, "seed/prod (node instances)"),
])
def test_removal_shows_what_goes_away(run_module, space_file, seed_model, tmp_path, module, args, header):
    lib = tmp_path / "components.yaml"
    lib.write_text(LIBRARY, encoding="utf-8")
    assert not run_module("tosca_library", src=str(lib), space=space_file).failed
    assert not run_module("tosca_model", name="seed", src=seed_model, space=space_file).failed
    if module != "tosca_model":
        assert not run_module("tosca_instance", model="seed", name="prod", space=space_file).failed
    for check in (True, False):
        r = run_module(module, _check=check, _diff=True, state="absent", space=space_file, **args)
        assert not r.failed and r.changed, r.msg
        diff = r["diff"]
        assert diff["after"] == "" and diff["before_header"] == header
        if module == "tosca_library":
            assert '"my.nodes.App"' in diff["before"] and '"digest"' in diff["before"]
        elif module == "tosca_model":
            assert diff["before"] == open(seed_model, encoding="utf-8").read()
        else:
            assert len(diff["before"].splitlines()) == 19 and "A_0: initial" in diff["before"]
    gone = run_module(module, _diff=True, state="absent", space=space_file, **args)
    assert not gone.changed and "diff" not in gone
    assert "diff" not in run_module("tosca_library", state="absent", name="components", space=space_file)


def test_instance_names_have_aliases(run_module, space_file, seed_model):
    """The instance is O(name) (alias O(instance)) in tosca_instance, O(instance) (alias O(name)) in
    tosca_instance_info; the model O(name) (alias O(model)) in tosca_model."""
    assert not run_module("tosca_model", model="seed", src=seed_model, space=space_file).failed
    assert not run_module("tosca_instance", model="seed", instance="prod", space=space_file).failed
    r = run_module("tosca_instance_info", model="seed", name="prod", space=space_file)
    assert not r.failed and r["instance"] == "prod" and len(r["nodes"]) == 19
