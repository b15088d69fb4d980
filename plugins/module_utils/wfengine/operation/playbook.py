# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ansible-playbook`` command of a playbook operation: which ``ansible-playbook``, its
argument list and environment, and the extra variables file.

Playbooks get the inputs as extra variables from a YAML file (mode 0600, in the operation's
private work folder) where every string is tagged ``!unsafe``, so Ansible never templates a
``{{ ... }}`` that came from a property value; the engine's facts (``WF_RUN``...) are both
environment variables and ``wf_run``... variables.  A remote host gets an inventory holding
exactly that host.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

from ..errors import WfError


class _Unsafe(str):
    """A string Ansible must not template (YAML tag ``!unsafe``)."""


def dump_vars(variables: Dict[str, Any], fh: Any) -> None:
    """Write extra vars as YAML with every string tagged ``!unsafe``.  PyYAML is imported here,
    not at module level, so that scripts run (and the module imports) without it."""
    import yaml

    class VarsDumper(yaml.SafeDumper):
        pass

    VarsDumper.add_representer(_Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v), style='"'))
    yaml.dump(_unsafe(variables), fh, Dumper=VarsDumper, default_flow_style=False, allow_unicode=True)


def _unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {str(k): _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


def find_ansible_playbook() -> Optional[str]:
    """ansible-playbook next to this Python (same venv), else on PATH."""
    near = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if os.path.isfile(near) and os.access(near, os.X_OK):
        return near
    return shutil.which("ansible-playbook")


def playbook_command(ansible_playbook: Optional[str], playbook: str, inputs: Dict[str, Any],
                     facts: Dict[str, str], workdir: str,
                     inventory: Optional[Dict[str, Any]] = None) -> Tuple[List[str], Dict[str, str]]:
    """(argv, environment) of ``ansible-playbook`` (``ansible_playbook``, else the one found)
    running ``playbook`` with the inputs and facts as extra variables, from a vars file written
    in ``workdir``; on this host, or on the single host of ``inventory``."""
    exe = ansible_playbook or find_ansible_playbook()
    if not exe:
        raise WfError("ansible-playbook not found (neither next to %s nor on PATH)" % sys.executable)
    variables = dict(inputs)
    variables.update({k.lower(): v for k, v in facts.items()})
    vars_file = os.path.join(workdir, "vars.yml")
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        dump_vars(variables, fh)
    env = dict(os.environ)
    env.update(facts)
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    if inventory is None:
        env.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
        argv = [exe, "-i", "localhost,", "-c", "local", playbook, "-e", "@" + vars_file]
        return argv, env
    # A remote host: an inventory holding exactly that host (xOpera's convention: a playbook
    # with ``hosts: all`` runs there unchanged); its Python is discovered there.
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    env["ANSIBLE_PYTHON_INTERPRETER"] = "auto_silent"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    inv_file = os.path.join(workdir, "inventory.json")
    fd = os.open(inv_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(inventory, fh)
    argv = [exe, "-i", inv_file, playbook, "-e", "@" + vars_file]
    return argv, env
