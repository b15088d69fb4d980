#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_workflow
short_description: Run a TOSCA workflow on a deployment instance
version_added: 0.1.0
description:
  - Starts a workflow (V(install), V(uninstall) or any custom workflow of the model) on an instance and,
    by default, waits for its end.
  - Imperative workflows of the topology (C(topology_template.workflows), TOSCA 1.3 section 7.3) run by
    their name like the declarative ones; one named V(install) or V(uninstall) replaces the declarative
    workflow of that name for this model. O(resume) does not apply to them (run them again).
  - The task fails when the run fails (an operation failed, or nodes stayed blocked) or does not end within
    O(timeout); the result carries the same summary either way.
  - Idempotence - when the instance's last run is a run of the same workflow that succeeded (no other
    workflow ran after it), the task reports C(changed=false) and runs nothing; RV(skipped_run) is
    then V(true) and the summary is the one of that earlier run. Set O(force=true) to run it again.
    V(install) after a succeeded update (M(ditrit.workflows.tosca_instance) on an installed instance)
    runs nothing either - the instance is installed at its current version - and the summary is the
    update run's.
  - Only one run at a time per instance. With O(wait=true), a run of the same workflow already in
    progress is waited for instead of refused (RV(attached) is then V(true)); on the embedded Space,
    when the process that ran its workers is gone (their sessions expired), the task runs a worker to
    finish it. A run of another workflow in progress fails the task.
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
      - Name of the instance (see M(ditrit.workflows.tosca_instance)).
    type: str
    required: true
  workflow:
    description:
      - Name of the workflow to run.
    type: str
    default: install
  force:
    description:
      - Run the workflow even when its last run succeeded and nothing ran after it.
    type: bool
    default: false
  resume:
    description:
      - When the instance's last run is a failed or canceled run of O(workflow), continue that run from
        its failed steps (what succeeded is not run again) instead of starting a new one; RV(resumed) is
        then V(true) and RV(run_id) is the id of that run.
      - Otherwise a new run starts, as without this option.
    type: bool
    default: false
  retries:
    description:
      - How many times the workers retry a failing operation before the node fails (a type or template
        may set its own number).
    type: int
    default: 0
extends_documentation_fragment:
  - ditrit.workflows.run
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description:
      - Reports whether the workflow would run (C(changed)), starting nothing, and when a new run would
        start, RV(plan) - what it would run, computed by the engine as C(wfctl plan) does, writing nothing.
      - When the instance is not in the Space (an earlier task in check mode would have created it),
        reports a change with a warning instead of failing.
    support: full
  diff_mode:
    description: Nothing to show as a diff.
    support: none
seealso:
  - module: ditrit.workflows.tosca_instance
  - module: ditrit.workflows.tosca_instance_info
'''

EXAMPLES = r'''
- name: Install the production instance (embedded Space, one worker in the task)
  ditrit.workflows.tosca_workflow:
    model: webapp
    instance: prod
    workflow: install
    space: /var/lib/workflows/space.db
  register: run

- name: Summary
  ansible.builtin.debug:
    msg: "{{ run.workflow }} {{ run.status }} in {{ run.duration }} s: {{ run.counts }}"

- name: Uninstall through a Consul cluster whose workers are daemons
  ditrit.workflows.tosca_workflow:
    model: webapp
    instance: prod
    workflow: uninstall
    backend: consul
    host: consul1.example.com
    timeout: 600

- name: Start a custom workflow and do not wait
  ditrit.workflows.tosca_workflow:
    model: webapp
    instance: prod
    workflow: backup
    force: true
    wait: false
    backend: consul
  register: started

- name: Its run id, to follow with ditrit.workflows.tosca_instance_info
  ansible.builtin.debug:
    var: started.run_id

- name: What uninstall would run, without running it
  ditrit.workflows.tosca_workflow:
    model: webapp
    instance: prod
    workflow: uninstall
    space: /var/lib/workflows/space.db
  check_mode: true
  register: would

- name: Its operations
  ansible.builtin.debug:
    msg: "{{ would.plan.counts.operations }} operations: {{ would.plan.operations | map(attribute='operation') | list }}"
'''

RETURN = r'''
run_id:
  description: Id of the run (of the earlier run when RV(skipped_run=true)).
  returned: success, or when the run failed or timed out
  type: str
  sample: 20250101T120000-3fa2c1
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
workflow:
  description: Name of the workflow.
  returned: always
  type: str
  sample: install
status:
  description: Status of the run; V(running) when O(wait=false) or on timeout.
  returned: when a run was started or found
  type: str
  choices: [running, succeeded, failed]
  sample: succeeded
duration:
  description: Seconds from the start to the end of the run; null while it runs.
  returned: when a run was started or found
  type: float
  sample: 1.734
states:
  description: Final state of every node instance of the instance.
  returned: when the run ended, or was skipped
  type: dict
  sample: {srvA_1: started, A_1: started, B_1: started}
counts:
  description: Number of node instances in each state.
  returned: when the run ended, or was skipped
  type: dict
  sample: {started: 19}
failed_operations:
  description: Operations that failed, with the node, the operation and the message.
  returned: when the run ended, or was skipped
  type: list
  elements: dict
  sample: [{node: B_2, operation: Standard.create, message: "exit code 1"}]
errors:
  description: Every error of the run (failed operations, and nodes that stayed blocked).
  returned: when the run ended, or was skipped
  type: list
  elements: dict
  sample: []
skipped_run:
  description: V(true) when nothing ran because the same workflow already succeeded last.
  returned: always
  type: bool
  sample: false
attached:
  description: V(true) when the task waited for a run of O(workflow) that was already in progress.
  returned: always
  type: bool
  sample: false
resumed:
  description: V(true) when the task continued the last failed run (O(resume=true)) rather than starting one.
  returned: always
  type: bool
  sample: false
msg:
  description:
    - What happened, in one line - in check mode what would run, when nothing ran why, and on failure
      the failed nodes and operations (or the timeout).
  returned: check mode, when nothing ran (RV(skipped_run=true)), and failure
  type: str
  sample: 'workflow install on webapp/prod failed after 3.120 s (1 error): app_0: tosca.interfaces.node.lifecycle.Standard.create failed (exit code 3)'
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict) or C(SpaceError).
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
plan:
  description:
    - In check mode, what the run would do (C(wfctl plan)) - computed from the programs workers build,
      with nothing written. Every step of an imperative workflow is shown, as if each of its
      predecessors succeeded.
  returned: check mode, when a new run would start
  type: dict
  contains:
    workflow:
      description: The workflow planned.
      type: str
      sample: install
    nodes:
      description: Node instances of the instance.
      type: int
      sample: 19
    participants:
      description: Node instances that take part in the run.
      type: int
      sample: 19
    counts:
      description: Number of operations, state changes and happens-before edges of the run.
      type: dict
      sample: {operations: 315, states: 114, edges: 513}
    operations:
      description:
        - Every operation the run would call, node by node - the node it runs for, its full name, and
          for a relationship operation the relationship instance (its id, type, source and target).
      type: list
      elements: dict
      sample:
        - {node: srvA_0, operation: tosca.interfaces.node.lifecycle.Standard.create}
        - node: srvA_0
          operation: tosca.interfaces.relationship.Configure.pre_configure_target
          relationship: {id: "A_0:host#0:srvA_0", type: tosca.relationships.HostedOn, source: A_0, target: srvA_0}
started:
  description: When the run started, in seconds since the epoch.
  returned: when the run ended, or was skipped
  type: float
  sample: 1764900000.123
ended:
  description: When the run ended, in seconds since the epoch; null while it runs.
  returned: when the run ended, or was skipped
  type: float
  sample: 1764900001.857
'''

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api
from ansible_collections.ditrit.workflows.plugins.module_utils.running import (
    check_run_params, follow_run, plan_of, run_argspec, run_problem)


def _check_mode(module, space, last, base):
    """What would happen, without starting anything (exits)."""
    p = module.params
    known = api.workflows_of(space, p['model'])
    if p['workflow'] not in known:
        module.fail_json(msg='model %s defines no workflow %s (known: %s)'
                         % (p['model'], p['workflow'], ', '.join(known)), **base)
    if last is not None and last['status'] == 'running':
        if p['wait'] and last['workflow'] == p['workflow']:
            module.exit_json(changed=True, msg='would wait for run %s of %s in progress' % (last['id'], p['workflow']),
                             **base)
        module.fail_json(msg='instance %s/%s already has a run in progress: %s (%s)'
                         % (p['model'], p['instance'], last['id'], last['workflow']), **base)
    if base['resumed']:
        module.exit_json(changed=True, msg='would resume run %s of %s' % (last['id'], p['workflow']), **base)
    plan = plan_of(space, p['workflow'], p['model'], p['instance'])
    module.exit_json(changed=True, msg='would run %s: %d operations on %d node instances'
                     % (p['workflow'], plan['counts']['operations'], plan['participants']), plan=plan, **base)


def _run(module, space, workers, base):
    """Start (or resume) the run, wait for it, and exit with its summary."""
    p = module.params
    if p['wait']:
        rec, base['attached'] = api.start_or_attach(space, p['workflow'], p['model'], p['instance'],
                                                    resume=base['resumed'], max_retries=p['retries'])
    else:
        rec = api.start_workflow(space, p['workflow'], p['model'], p['instance'], resume=base['resumed'],
                                 max_retries=p['retries'])
    base.update(run_id=rec['id'], status=rec['status'], duration=rec.get('duration'))
    if not p['wait'] and rec['status'] == 'running':
        module.exit_json(changed=True, **base)
    base.update(follow_run(module, space, rec, base['attached'], workers))
    problem = run_problem(module, base, workers)
    if problem:
        module.fail_json(changed=True, msg=problem, **base)
    module.exit_json(changed=True, **base)


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            model=dict(type='str', required=True),
            instance=dict(type='str', required=True),
            workflow=dict(type='str', default='install'),
            force=dict(type='bool', default=False),
            resume=dict(type='bool', default=False),
            retries=dict(type='int', default=0),
            **run_argspec()
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p['retries'] < 0:
        module.fail_json(msg='retries must be 0 or more, got %d' % p['retries'])
    workers = check_run_params(module)
    base = dict(model=p['model'], instance=p['instance'], workflow=p['workflow'], skipped_run=False,
                resumed=False, attached=False)

    with module.space() as space:
        if module.check_mode:
            space = api.read_only(space)     # a bug that tried to write fails instead
        try:
            runs = api.instance_runs(space, p['model'], p['instance'])
        except api.NotFound as exc:
            if not module.check_mode:
                raise
            module.warn('check mode: %s; the workflow would run once it exists' % exc)
            module.exit_json(changed=True, **base)
        last = runs[-1] if runs else None
        same = last is not None and last['workflow'] == p['workflow']

        if same and last['status'] == 'succeeded' and not p['force']:
            base.update(api.summary(space, last['id']), skipped_run=True)
            module.exit_json(changed=False, msg='%s already succeeded on %s/%s in run %s; nothing to do '
                             '(force=true runs it again)' % (p['workflow'], p['model'], p['instance'], last['id']),
                             **base)
        if last is not None and last['workflow'] == 'update' and not p['force'] \
                and api.rerun_decision(space, p['workflow'], p['model'], p['instance'])[0] == 'done':
            # installed, then updated (tosca_instance) to the current generation: installed
            base.update(api.summary(space, last['id']), workflow=p['workflow'], skipped_run=True)
            module.exit_json(changed=False, msg='%s/%s is installed and was updated in run %s; nothing to do '
                             '(force=true runs %s again)' % (p['model'], p['instance'], last['id'], p['workflow']),
                             **base)
        base['resumed'] = bool(p['resume'] and same and last['status'] in ('failed', 'canceled'))
        if module.check_mode:
            _check_mode(module, space, last, base)
        _run(module, space, workers, base)


if __name__ == '__main__':
    main()
