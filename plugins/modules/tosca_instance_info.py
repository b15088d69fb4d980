#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_instance_info
short_description: Read the state of a deployment instance, its runs and their trace
version_added: 0.1.0
description:
  - Returns the state of every node instance of an instance (its state in the latest run that touched it),
    the runs of the instance, and optionally the trace of what ran, in causal order.
  - Reads only; never changes anything.
author:
  - ditrit.workflows contributors (@ditrit)
options:
  model:
    description:
      - Name of the model.
    type: str
    required: true
  instance:
    description:
      - Name of the instance.
    type: str
    required: true
    aliases: [name]
  trace:
    description:
      - Also return the trace (RV(trace)).
    type: bool
    default: false
  logs:
    description:
      - Also return the per-operation logs (RV(logs)).
    type: bool
    default: false
  workflow:
    description:
      - With O(trace=true), only the events of runs of this workflow.
    type: str
  run_id:
    description:
      - With O(trace=true) or O(logs=true), only the events or logs of this run.
    type: str
extends_documentation_fragment:
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description: Reads only, in check mode too.
    support: full
  diff_mode:
    description: Nothing to show as a diff.
    support: none
seealso:
  - module: ditrit.workflows.tosca_workflow
'''

EXAMPLES = r'''
- name: State of the production instance, with the trace of its install runs
  ditrit.workflows.tosca_instance_info:
    model: webapp
    instance: prod
    trace: true
    workflow: install
    space: /var/lib/workflows/space.db
  register: info

- name: Nodes that are not started
  ansible.builtin.debug:
    msg: "{{ info.nodes | dict2items | rejectattr('value.state', 'equalto', 'started') | map(attribute='key') | list }}"

- name: Last run
  ansible.builtin.debug:
    msg: "{{ info.last_run.workflow }} {{ info.last_run.status }}"
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
  description: Node instances by id, with their template, type, state and outgoing relationships.
  returned: always
  type: dict
  sample:
    B_1:
      template: B
      type: org.ditrit.nodes.Software
      state: started
      relationships: [{type: tosca.relationships.HostedOn, target: srvB_1, requirement: host}]
counts:
  description: Number of node instances in each state.
  returned: always
  type: dict
  sample: {started: 19}
last_run:
  description: The latest run (id, workflow, status, started, ended, duration); absent when nothing ran yet.
  returned: when a workflow ran on the instance
  type: dict
  sample: {id: 20250101T120000-3fa2c1, workflow: install, status: succeeded, duration: 1.734}
runs:
  description: Every run of the instance, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{id: 20250101T120000-3fa2c1, workflow: install, status: succeeded, duration: 1.734}]
outputs:
  description: The model's C(topology_template.outputs), computed from the instance's current attributes.
  returned: when the model defines outputs
  type: dict
  sample: {site_url: {value: "http://127.0.0.1:18080/"}}
warnings:
  description:
    - The upload warnings of the model version the instance runs (see M(ditrit.workflows.tosca_model)), in
      Ansible's standard C(warnings) list.
  returned: when the model version has warnings
  type: list
  elements: str
  sample: ["app.yaml: topology_template.node_templates.web: implementation of Admin.rotate is never run: no
    workflow of node type my.Web calls it"]
sections:
  description:
    - What the model declares that the engine stores without running it - C(groups) (name -> definition),
      C(policies) (list of single-entry mappings, as written), C(substitution_mappings), and the topology's
      C(metadata). They were announced as warnings at upload; nothing enforces them.
  returned: when the model has any of them
  type: dict
  sample: {policies: [{scale_web: {type: tosca.policies.Scaling, targets: [web]}}], groups: {servers: {type: tosca.groups.Root, members: [web, db]}}}
logs:
  description:
    - Per-operation logs of the runs, in order - C(run), C(workflow), C(node), C(operation), C(attempt),
      C(status), C(exit_code), C(duration), C(worker), C(output) (its tail), C(log_file) (on the worker's host).
  returned: when O(logs=true)
  type: list
  elements: dict
  sample: [{node: site_0, operation: tosca.interfaces.node.lifecycle.Standard.create, status: ok, exit_code: 0}]
trace:
  description:
    - Events of the runs in causal order - C(seq), C(ts), C(run), C(workflow), C(node), C(kind), C(name),
      C(worker), and C(relationship) for relationship operations. C(kind) is state, operation, or step (the end of
      an imperative workflow step on a node instance; C(status) failed or skipped when it did not succeed).
  returned: when O(trace=true)
  type: list
  elements: dict
  sample: [{seq: 1, workflow: install, node: srvA_1, kind: operation, name: Standard.create, worker: host-1-ab12}]
msg:
  description: Why the task failed, in one line.
  returned: failure
  type: str
  sample: 'unknown instance prod of model webapp'
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict) or C(SpaceError).
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
'''

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            model=dict(type='str', required=True),
            instance=dict(type='str', required=True, aliases=['name']),
            trace=dict(type='bool', default=False),
            logs=dict(type='bool', default=False),
            workflow=dict(type='str'),
            run_id=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    with module.space() as space:
        st = api.status(space, p['model'], p['instance'])
        counts = {}
        for node in st['nodes'].values():
            counts[node['state']] = counts.get(node['state'], 0) + 1
        result = dict(model=p['model'], instance=p['instance'], nodes=st['nodes'], counts=counts,
                      runs=api.instance_runs(space, p['model'], p['instance']))
        for key in ('last_run', 'outputs', 'sections'):
            if st.get(key) is not None:
                result[key] = st[key]
        for line in st.get('warnings') or []:
            module.warn(line)   # Ansible's own `warnings` result key
        if p['logs']:
            result['logs'] = api.logs(space, p['model'], p['instance'], run_id=p['run_id'])
        if p['trace']:
            result['trace'] = api.trace(space, p['model'], p['instance'], workflow=p['workflow'],
                                        run_id=p['run_id'])
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
