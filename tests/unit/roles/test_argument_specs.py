# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each role's meta/argument_specs.yml against its defaults/main.yml (issue 23): the same
variables, the same defaults (what ``ansible-doc -t role`` shows), a user-facing description for
each, the defaults accepted by Ansible's own argument validation, internal roles marked as such;
and the files are exactly what scripts/role_specs.py generates."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(r for r in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.isfile(os.path.join(ROOT, "roles", r, "meta", "argument_specs.yml")))
INTERNAL = {"wf_engine", "wf_service"}
PY_TYPES = {"str": str, "bool": bool, "int": int, "float": (int, float), "list": list, "dict": dict}


def load(role: str, *parts: str):
    with open(os.path.join(ROOT, "roles", role, *parts), encoding="utf-8") as f:
        return yaml.safe_load(f)


def entry(role: str):
    return load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]


def is_template(value) -> bool:
    return isinstance(value, str) and "{{" in value


def test_every_role_has_a_spec():
    assert set(ROLES) == {"consul_cluster", "wf_engine", "wf_manager", "wf_service", "wf_worker"}


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_are_the_role_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = entry(role)["options"]
    assert sorted(options) == sorted(defaults)
    for name, value in defaults.items():
        assert "default" in options[name], name
        assert options[name]["default"] == value, name


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_have_the_declared_type(role):
    for name, spec in entry(role)["options"].items():
        value = spec["default"]
        if is_template(value) or spec["type"] == "raw":
            continue
        assert isinstance(value, PY_TYPES[spec["type"]]), (name, spec["type"], value)
        if spec["type"] in ("int", "float"):
            assert not isinstance(value, bool), name
        if "choices" in spec:
            assert value in spec["choices"], name


@pytest.mark.parametrize("role", ROLES)
def test_ansible_validation_accepts_the_literal_defaults(role):
    specs = entry(role)["options"]
    # the spec's defaults left out, so that a template default is not checked as a value
    options = {name: {k: v for k, v in spec.items() if k not in ("description", "default")}
               for name, spec in specs.items()}
    params = {name: spec["default"] for name, spec in specs.items() if not is_template(spec["default"])}
    assert params
    result = ArgumentSpecValidator(options).validate(params)
    assert not result.error_messages, result.error_messages


@pytest.mark.parametrize("role", ROLES)
def test_descriptions_are_for_users(role):
    main = entry(role)
    assert main["short_description"] and main["description"]
    for name, spec in main["options"].items():
        text = spec["description"] if isinstance(spec["description"], str) else " ".join(spec["description"])
        assert len(text) > 10, name
        # test-harness wording belongs to the tests, not to what users read
        for word in ("molecule", "seed"):
            assert word not in text.lower(), (name, word)


@pytest.mark.parametrize("role", ROLES)
def test_internal_roles_say_so(role):
    main = entry(role)
    internal = main["short_description"].startswith("Internal:")
    assert internal == (role in INTERNAL)
    if internal:
        assert "not meant to be used on its own" in " ".join(main["description"])
        assert "Internal role" in load(role, "meta", "main.yml")["galaxy_info"]["description"]


def test_specs_are_generated_from_the_defaults():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "role_specs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
