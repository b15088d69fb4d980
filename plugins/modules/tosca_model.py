#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_model
short_description: Upload or remove a TOSCA application model in the workflow Space
version_added: 0.1.0
description:
  - Parses and checks an application topology (node templates, requirements, scaling, workflows) and
    stores it in the Space under O(name).
  - Everything is checked before anything is written; when the model does not validate, the task
    fails and the Space holds nothing from it. Every problem of the model is reported at once - types
    and constraints of property, attribute and input values, required properties, requirements
    (targets, node filters, occurrences), scaling - in RV(problems), one line each naming the file,
    the YAML path and the node; C(msg) is the problem when there is only one, else a summary.
  - An operation implementation the model declares that no workflow will ever run is not an error; it is
    returned in RV(warnings) and shown as a warning.
  - Uploading the same content again changes nothing. A changed model becomes a new version;
    instances created before keep the version they were created from. Versions that neither the
    model nor an instance uses any more are deleted after the upload.
  - Uploads of the same model at once are safe - with the same content they all succeed; with
    different contents one wins and the others fail with "changed while uploading; retry".
author:
  - ditrit.workflows contributors (@ditrit)
options:
  name:
    description:
      - Name of the model in the Space.
    type: str
    required: true
    aliases: [model]
  src:
    description:
      - Path of the model on the host that runs the module - a YAML file (a TOSCA service template), a
        folder, or a CSAR archive.
      - Imports and operation implementations (scripts, playbooks) are resolved relative to it; the files
        the model uses are stored in the Space with it, so workers on other hosts find them. A YAML file
        stores only the files the model names; a folder or a CSAR stores its content minus an ignore list
        (RV(files), RV(left_out)).
      - Required when O(state=present).
    type: path
  state:
    description:
      - V(present) uploads the model, V(absent) removes it (refused while it still has instances).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description: Validates the model and reports whether it would change, writing nothing.
    support: full
  diff_mode:
    description:
      - Shows the stored model's source (its entry YAML file) against the new one.
      - On removal, shows the stored source going away.
    support: full
seealso:
  - module: ditrit.workflows.tosca_library
  - module: ditrit.workflows.tosca_instance
'''

EXAMPLES = r'''
- name: Upload the application model
  ditrit.workflows.tosca_model:
    name: webapp
    src: files/app.yaml
    space: /var/lib/workflows/space.db
  register: model

- name: What it defines
  ansible.builtin.debug:
    msg: "{{ model.templates | length }} templates, {{ model.instances }} node instances, workflows {{ model.workflows }}"

- name: Remove the model (its instances first)
  ditrit.workflows.tosca_model:
    name: webapp
    state: absent
    space: /var/lib/workflows/space.db
'''

RETURN = r'''
name:
  description: Name of the model.
  returned: always
  type: str
  sample: webapp
digest:
  description: Digest of the compiled model; the same content gives the same digest.
  returned: when O(state=present)
  type: str
  sample: 8c1e2f7a9b3d4c50
templates:
  description: Node templates of the model.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [A, B, C, D, srvA, srvB, srvC, srvD]
workflows:
  description: Workflows the model can run (declarative ones from its types, and its own).
  returned: when O(state=present)
  type: list
  elements: str
  sample: [install, uninstall]
instances:
  description: Number of node instances an instance of this model has once scaling is applied.
  returned: when O(state=present)
  type: int
  sample: 19
files:
  description:
    - The files stored in the Space with the model (paths relative to the model's folder), which every
      worker and every holder of a token that can read the Space can read.
    - For a YAML file, only what the model names - the file itself and its imports, operation
      implementations and dependencies (a folder dependency whole, minus the ignore list), artifacts.
      For a folder or a CSAR, its whole content minus the ignore list (hidden entries, C(.env) and
      C(*.env) files, SSH and private keys, key stores, Terraform states, editor backups, caches; see
      docs/security.md), plus anything the model names.
    - Returned in check mode as well.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [app.yaml, files/app.conf, scripts/create.sh, types/app-types.yaml]
left_out:
  description:
    - What the ignore list kept out of the Space, folders once with a trailing C(/).
  returned: when O(state=present)
  type: list
  elements: str
  sample: [.git/, credentials.env, id_rsa]
repaired:
  description: The model's current version was missing from the Space (a store damaged by an older
    engine) and this upload of the same content restored it.
  returned: when it did
  type: bool
  sample: true
warnings:
  description:
    - What the upload announces without refusing the model, one line each (file, YAML path, what),
      for example an operation implementation that no workflow will ever run.
    - This is Ansible's standard C(warnings) list - each line is shown as a warning by the controller.
      Returned in check mode as well.
  returned: when O(state=present)
  type: list
  elements: str
  sample:
    - "app.yaml: topology_template.node_templates.db.requirements[0] (host -> srv): implementation of
      Configure.target_changed is never run: relationship type tosca.relationships.HostedOn weaves no
      activity for it into a workflow its ends take part in"
problems:
  description:
    - Every problem found in the model, one line each (file, YAML path, node, what is wrong), when
      the upload fails with more than one.
  returned: failure, when the model has several problems
  type: list
  elements: str
  sample:
    - "app.yaml: topology_template.node_templates.web.properties.port: web: properties.port: 70000 is not in_range [1, 65535]"
    - "app.yaml: topology_template.node_templates.db.requirements[0].host: db: requirement 'host': no node template matches its node_filter"
msg:
  description:
    - Why the task failed, in one line - for a model that does not validate, the file, the YAML path
      of the bad node and what is wrong (with several problems, a summary and RV(problems)).
  returned: failure
  type: str
  sample: "app.yaml: topology_template.node_templates.app.requirements[0] (host): unknown node template 'nowhere'"
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict), C(SpaceError), or C(ToscaProblems) with RV(problems).
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
'''

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api
from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine import keys


def _stored_source(space, name):
    """The stored model's source, as the removal diff shows it ('' when there is none)."""
    head = space.get(keys.model_head(name))
    value = head.value if head is not None and isinstance(head.value, dict) else {}
    return value.get('source') or ''


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            name=dict(type='str', required=True, aliases=['model']),
            src=dict(type='path'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        required_if=[('state', 'present', ('src',))],
        supports_check_mode=True,
    )
    p = module.params
    with module.space() as space:
        if p['state'] == 'present':
            result = api.upload_model(space, p['src'], p['name'], check=module.check_mode)
        else:
            before = _stored_source(space, p['name']) if module._diff else ''
            result = api.remove_model(space, p['name'], check=module.check_mode)
            result['diff'] = dict(before=before, after='', before_header='%s (stored)' % p['name'],
                                  after_header='%s (removed)' % p['name'])
    # Ansible's own result key: module.warn() fills it (passing it to exit_json is deprecated)
    # and the controller shows each line as a warning.
    for line in result.pop('warnings', None) or []:
        module.warn(line)
    diff = result.pop('diff', None)
    if module._diff and diff is not None and result.get('changed'):
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
