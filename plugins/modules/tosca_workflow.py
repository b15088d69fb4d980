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
  wait:
    description:
      - Wait for the end of the run.
      - With V(false), the task returns once the run is started (RV(status=running)); something must
        then run the workers - C(wfctl worker) daemons on Consul, or C(wfctl --backend embedded --space FILE
        worker) for an embedded Space.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait at most when O(wait=true). On timeout the task fails; on Consul the run goes on
        in the workers.
    type: float
    default: 3600
  workers:
    description:
      - Number of workers to run inside the module while it waits.
      - Defaults to V(2) with O(backend=embedded) (there are no worker daemons for a file) and to V(0)
        with O(backend=consul), where long-lived C(wfctl worker) daemons do the work.
      - Ignored when O(wait=false).
    type: int
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
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description:
      - Reports whether the workflow would run (C(changed)), starting nothing.
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
- name: Install the production instance (embedded Space, two workers in the task)
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

MAX_ERRORS_IN_MESSAGE = 5


def _error_line(err):
    """One error of a run as ``node: operation failed (exit code N): last output line``."""
    node = err.get('node', '?')
    if not err.get('operation'):
        return '%s: %s' % (node, err.get('message') or 'failed')
    line = '%s: %s failed' % (node, err['operation'])
    if err.get('exit_code') not in (None, 0):
        line += ' (exit code %s)' % err['exit_code']
    detail = err.get('message')
    if not detail:
        lines = [x.strip() for x in (err.get('output') or '').splitlines() if x.strip()]
        detail = lines[-1] if lines else ''
    return '%s: %s' % (line, detail) if detail else line


def failure_message(summary):
    errors = summary.get('errors') or []
    head = 'workflow %s on %s/%s failed' % (summary['workflow'], summary['model'], summary['instance'])
    if summary.get('duration') is not None:
        head += ' after %.3f s' % summary['duration']
    if not errors:
        return head
    lines = [_error_line(e) for e in errors[:MAX_ERRORS_IN_MESSAGE]]
    more = len(errors) - len(lines)
    return '%s (%d error%s): %s%s' % (head, len(errors), '' if len(errors) == 1 else 's', '; '.join(lines),
                                      '; and %d more' % more if more else '')


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
    what = 'resume run %s of' % last['id'] if base['resumed'] else 'run'
    module.exit_json(changed=True, msg='would %s %s' % (what, p['workflow']), **base)


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
    if base['attached']:
        # Its workers may be elsewhere (alive) or gone: attach_run decides (see wfctl wait).
        rec = api.attach_run(module.space_options(), space, rec['id'], workers=p['workers'],
                             timeout=p['timeout'], notice=module.warn)
    elif rec['status'] == 'running':
        if workers > 0:
            rec = api.run_with_local_workers(module.space_options(), space, rec['id'], workers,
                                             timeout=p['timeout'])
        else:
            rec = api.wait_run(space, rec['id'], timeout=p['timeout'])
    summary = api.summary(space, rec['id'])
    base.update(summary)
    if summary['status'] == 'running':
        if workers == 0:
            after = '; it goes on in the workers'
        elif module.embedded:
            after = ('; it stays in progress with no worker: "wfctl --space %s worker" finishes it, '
                     '"wfctl --space %s cancel %s %s" stops it' % (p['space'], p['space'], p['model'], p['instance']))
        else:
            after = '; the worker daemons, if any, go on with it'
        module.fail_json(changed=True, msg='workflow %s on %s/%s did not end within %s s (run %s)%s'
                         % (p['workflow'], p['model'], p['instance'], p['timeout'], rec['id'], after), **base)
    if summary['status'] != 'succeeded':
        module.fail_json(changed=True, msg=failure_message(summary), **base)
    module.exit_json(changed=True, **base)


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            model=dict(type='str', required=True),
            instance=dict(type='str', required=True),
            workflow=dict(type='str', default='install'),
            wait=dict(type='bool', default=True),
            timeout=dict(type='float', default=3600),
            workers=dict(type='int'),
            force=dict(type='bool', default=False),
            resume=dict(type='bool', default=False),
            retries=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ('workers', 'retries'):
        if p[name] is not None and p[name] < 0:
            module.fail_json(msg='%s must be 0 or more, got %d' % (name, p[name]))
    if p['timeout'] is not None and p['timeout'] <= 0:
        module.fail_json(msg='timeout must be more than 0, got %s' % p['timeout'])
    workers = p['workers'] if p['workers'] is not None else (2 if module.embedded else 0)
    base = dict(model=p['model'], instance=p['instance'], workflow=p['workflow'], skipped_run=False,
                resumed=False, attached=False)

    with module.space() as space:
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
        base['resumed'] = bool(p['resume'] and same and last['status'] in ('failed', 'canceled'))
        if module.check_mode:
            _check_mode(module, space, last, base)
        _run(module, space, workers, base)


if __name__ == '__main__':
    main()
