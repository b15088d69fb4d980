#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_instance
short_description: Create or remove a deployment instance of a TOSCA model
version_added: 0.1.0
description:
  - Creates a deployment instance of an uploaded model - one node instance per template and per scaling
    step, with its relationships - ready for workflows to run on it.
  - An existing instance is left as it is (C(changed=false)), even if the model changed since; RV(up_to_date)
    tells whether it was created from the model's current version.
  - Removing an instance removes the records of its runs too; it is refused while a run is in progress.
author:
  - ditrit.workflows contributors (@ditrit)
options:
  model:
    description:
      - Name of the model (see M(ditrit.workflows.tosca_model)).
    type: str
    required: true
  name:
    description:
      - Name of the instance, unique within the model.
    type: str
    required: true
    aliases: [instance]
  inputs:
    description:
      - Deployment inputs, over the defaults of the model's C(topology_template.inputs).
      - Used when the instance is created; an existing instance keeps the inputs it was created with.
      - Each value is checked against the input's declared type and constraints, and scaling counts
        read from inputs (C(get_input) in C(default_instances), C(min_instances), C(max_instances))
        against their bounds; a bad value fails the task (every problem in RV(problems)) and creates
        nothing. Values given as text (C("3") from a Jinja template) are accepted for integers.
      - An input defined C(sensitive) must be a reference resolved on the worker, a C(get_secret) mapping
        whose value is C([env, NAME]), C([file, PATH]) or C([ansible_vault, FILE, KEY]); a plain value
        is refused and masked in the result.
    type: dict
  state:
    description:
      - V(present) creates the instance, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description:
      - Reports whether the instance would be created or removed, writing nothing.
      - When the model is not in the Space (an earlier task in check mode would have uploaded it), reports a
        change with a warning instead of failing.
    support: full
  diff_mode:
    description:
      - On removal, shows the node instances and their states going away.
      - A creation has no diff; RV(nodes) counts the node instances created.
    support: partial
seealso:
  - module: ditrit.workflows.tosca_workflow
  - module: ditrit.workflows.tosca_instance_info
'''

EXAMPLES = r'''
- name: Create the production instance of the webapp model
  ditrit.workflows.tosca_instance:
    model: webapp
    name: prod
    space: /var/lib/workflows/space.db
  register: inst

- name: An instance of a model that takes inputs
  ditrit.workflows.tosca_instance:
    model: webapp
    name: staging
    inputs:
      port: 18081
      base_dir: /srv/webapp-staging
    space: /var/lib/workflows/space.db

- name: How many node instances it has
  ansible.builtin.debug:
    var: inst.nodes

- name: Remove it
  ditrit.workflows.tosca_instance:
    model: webapp
    name: prod
    state: absent
    space: /var/lib/workflows/space.db
'''

RETURN = r'''
model:
  description: Name of the model.
  returned: always
  type: str
  sample: webapp
instance:
  description: Name of the instance.
  returned: always
  type: str
  sample: prod
nodes:
  description: Number of node instances of the instance.
  returned: when O(state=present)
  type: int
  sample: 19
model_digest:
  description: Version (digest) of the model the instance was created from.
  returned: when O(state=present)
  type: str
  sample: 8c1e2f7a9b3d4c50
up_to_date:
  description: Whether the instance was created from the model's current version.
  returned: when O(state=present)
  type: bool
  sample: true
problems:
  description: Every problem with the given inputs, one line each, when there are several.
  returned: failure, when several inputs are wrong
  type: list
  elements: str
  sample:
    - "instance webapp/prod: input cpus: 'x' is not an integer"
    - "instance webapp/prod: input ports[0]: 0 is not in_range [1, 65535]"
msg:
  description: Why the task failed, in one line (with several wrong inputs, a summary and RV(problems)).
  returned: failure
  type: str
  sample: 'model webapp not found'
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict), C(SpaceError), or C(ToscaProblems) with RV(problems).
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
'''

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api


def _hide_sensitive(module, space):
    """A value given for a sensitive input is refused (give a get_secret reference); before
    that, Ansible is told to mask it everywhere in the result (``invocation`` included)."""
    given = module.params['inputs'] or {}
    try:
        names = api.deployments.sensitive_inputs(space, module.params['model']) if given else []
    except api.NotFound:
        return
    for name in names:
        value = given.get(name)
        if value is None or (isinstance(value, dict) and list(value) == ['get_secret']):
            continue
        for leaf in _leaves(value):
            module.no_log_values.add(leaf)


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _node_states(space, model, instance):
    """'node: state' lines of an instance, as the removal diff shows it ('' when there is none)."""
    try:
        nodes = api.status(space, model, instance)['nodes']
    except api.NotFound:
        return ''
    return ''.join('%s: %s\n' % (n, (nodes[n] or {}).get('state')) for n in sorted(nodes))


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            model=dict(type='str', required=True),
            name=dict(type='str', required=True, aliases=['instance']),
            inputs=dict(type='dict'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        supports_check_mode=True,
    )
    p = module.params
    with module.space() as space:
        if p['state'] == 'present':
            _hide_sensitive(module, space)
            try:
                result = api.create_instance(space, p['model'], p['name'], check=module.check_mode,
                                             inputs=p['inputs'])
            except api.NotFound as exc:
                if not module.check_mode:
                    raise
                module.warn('check mode: %s; an instance would be created once it is uploaded' % exc)
                result = {'model': p['model'], 'instance': p['name'], 'changed': True}
        else:
            before = _node_states(space, p['model'], p['name']) if module._diff else ''
            result = api.delete_instance(space, p['model'], p['name'], check=module.check_mode)
            if module._diff and result.get('changed'):
                name = '%s/%s' % (p['model'], p['name'])
                result['diff'] = dict(before=before, after='', before_header='%s (node instances)' % name,
                                      after_header='%s (removed)' % name)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
