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
    the runs of the instance, and optionally the trace of what ran, in causal order, and the timeline of a run
    (one bar per operation attempt, the data C(wfctl timeline) draws).
  - The filter P(ditrit.workflows.timeline_picture#filter) turns RV(timeline) into a picture (HTML or SVG) that
    M(ansible.builtin.copy) writes wherever the playbook wants it; see the examples.
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
  timeline:
    description:
      - Also return the timeline of one run (RV(timeline)) - the run O(run_id), else the latest run of
        O(workflow), else the instance's latest run.
      - The task fails when the instance has no such run.
    type: bool
    default: false
  workflow:
    description:
      - With O(trace=true), only the events of runs of this workflow.
      - With O(timeline=true) and no O(run_id), the timeline of the latest run of this workflow.
    type: str
  run_id:
    description:
      - With O(trace=true), O(logs=true) or O(timeline=true), only the events, logs or timeline of this run.
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

- name: Timeline of the latest install
  ditrit.workflows.tosca_instance_info:
    model: webapp
    instance: prod
    timeline: true
    workflow: install
    space: /var/lib/workflows/space.db
  register: info

- name: Write it as one self-contained HTML page on the controller (format svg for the bare picture)
  ansible.builtin.copy:
    content: "{{ info.timeline | ditrit.workflows.timeline_picture('html') }}"
    dest: /tmp/prod-install-timeline.html
    mode: "0644"
  delegate_to: localhost

- name: Attempts that were retried, failed or interrupted (a worker died)
  ansible.builtin.debug:
    msg: "{{ info.timeline.bars | rejectattr('status', 'equalto', 'ok') | map(attribute='node') | list }}"
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
timeline:
  description:
    - The timeline of one run, what C(wfctl timeline) draws (docs/observability.md) - one bar per operation
      attempt, in the trace's order, rows by root host, the critical path.
    - Times are seconds since the epoch; an attempt that ran an implementation spans its log record's duration,
      an interrupted one (its worker died) spans from the node's checkpoint to the takeover, one without
      implementation is an instant.
  returned: when O(timeline=true)
  type: dict
  contains:
    model:
      description: Name of the model.
      type: str
      returned: always
      sample: webapp
    instance:
      description: Name of the instance.
      type: str
      returned: always
      sample: prod
    run:
      description: Id of the run.
      type: str
      returned: always
      sample: 20250101T120000-3fa2c1
    workflow:
      description: Workflow of the run.
      type: str
      returned: always
      sample: install
    status:
      description: Status of the run (C(running) while it runs).
      type: str
      returned: always
      sample: succeeded
    running:
      description: Whether the run is still in progress (the picture is then a snapshot).
      type: bool
      returned: always
      sample: false
    t0:
      description: Start of the picture - the run's start or the earliest attempt.
      type: float
      returned: always
      sample: 1735732800.12
    t1:
      description: End of the picture - the run's end or the latest attempt.
      type: float
      returned: always
      sample: 1735732809.98
    hosts:
      description: The rows - root hosts (the end of each node's HostedOn chain), sorted.
      type: list
      elements: str
      returned: always
      sample: [srvA_0, srvB_0]
    bars:
      description:
        - One per operation attempt, in the trace's order - C(i) (its index), C(seq) (the trace event's),
          C(node), C(template), C(host) (its row), C(operation), C(short) (the operation's last name),
          C(relationship) (C(type source->target) for relationship operations, else null), C(status)
          (C(ok), C(retry), C(failed), C(interrupted)), C(attempt), C(worker) (for an interrupted attempt,
          the dead worker), C(start), C(end), C(implemented) (it ran an implementation), C(critical) (on the
          critical path).
      type: list
      elements: dict
      returned: always
      sample: [{i: 0, seq: 1, node: srvA_0, template: srvA, host: srvA_0, operation:
                  tosca.interfaces.node.lifecycle.Standard.create, short: create, relationship: null,
                status: ok, attempt: 1, worker: host-1-ab12, start: 1735732800.2, end: 1735732800.5,
                implemented: true, critical: true}]
    critical:
      description: Indexes (C(i)) of the bars on the critical path, in order.
      type: list
      elements: int
      returned: always
      sample: [0, 7, 21]
    colours:
      description: Colour of each status in the pictures.
      type: dict
      returned: always
      sample: {ok: "#43a047", failed: "#e53935", retry: "#fb8c00", interrupted: "#8e24aa"}
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
            timeline=dict(type='bool', default=False),
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
        if p['timeline']:
            result['timeline'] = api.timeline(space, p['model'], p['instance'], run_id=p['run_id'],
                                              workflow=p['workflow'])
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
