#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_instance
short_description: Create, update, scale or remove a deployment instance of a TOSCA model
version_added: 0.1.0
description:
  - Creates a deployment instance of an uploaded model - one node instance per template and per scaling
    step, with its relationships - ready for workflows to run on it.
  - An existing instance is converged to the model's current version, to O(inputs) and to O(counts) (day 2,
    like C(wfctl update)) - node instances only in the new generation are installed, those only in the old
    one uninstalled, modified ones updated or reinstalled, and their intact peers run C(add_*) / C(remove_*)
    for the relationship instances that come and go, in one C(update) run (O(wait) for its end). Node
    instance ids stay (docs/day2.md). When nothing changes, the task reports C(changed=false) and runs nothing.
  - An instance that is not installed (no install yet, or uninstalled) gets the new node instances without a
    run; M(ditrit.workflows.tosca_workflow) V(install) then deploys them.
  - When the last update run of the instance failed or was canceled, the task continues it from where it
    stopped (what succeeded does not run again); new O(inputs) or O(counts) are refused until it succeeded.
    An update run in progress is waited for (with O(wait=false), reported in RV(run) with C(changed=false)); a
    run of another workflow in progress fails the task when the instance would change.
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
      - Deployment inputs, over the defaults of the model's C(topology_template.inputs) when the instance is
        created, over the inputs the instance has when it exists (an input not given keeps its value).
      - Each value is checked against the input's declared type and constraints, and scaling counts
        read from inputs (C(get_input) in C(default_instances), C(min_instances), C(max_instances))
        against their bounds; a bad value fails the task (every problem in RV(problems)) and writes
        nothing. Values given as text (C("3") from a Jinja template) are accepted for integers.
      - An input defined C(sensitive) must be a reference resolved on the worker, a C(get_secret) mapping
        whose value is C([env, NAME]), C([file, PATH]) or C([ansible_vault, FILE, KEY]); a plain value
        is refused and masked in the result.
    type: dict
  counts:
    description:
      - "Scaling - node instances per host instance of some templates, C({template: count}), over the
        model's C(default_instances); each within the template's C(min_instances) and C(max_instances)."
      - Declarative - the instance is created with these counts, or converged to them (the update runs
        install on the instances added and uninstall on the ones removed; scale-in removes the
        highest-numbered instances of each host first). The same counts again change nothing.
      - The counts are kept with the instance (as C(wfctl scale) keeps them) - a template left out keeps
        the count it has; give the model's count to go back to it.
      - Values given as text (C("3")) are accepted.
    type: dict
  remove_instances:
    description:
      - Node instances (C(<template>_<n>)) that a scale-in by O(counts) removes instead of the
        highest-numbered instances of their host. Each one named must go, else the task fails in one
        line and nothing is written (a count is per host instance - lower it enough).
      - Names of instances the deployment no longer has are ignored (already removed), so the same task
        run again changes nothing. Ignored when the instance is created.
    type: list
    elements: str
    version_added: 0.2.0
  state:
    description:
      - V(present) creates the instance, or converges it to the model's current version, O(inputs) and
        O(counts); V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ditrit.workflows.run
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description:
      - Reports whether the instance would be created, updated or removed, writing nothing. For an update,
        RV(update) says what would change and RV(plan) what the update run would do (as C(wfctl plan update)).
      - When the model is not in the Space (an earlier task in check mode would have uploaded it), reports a
        change with a warning instead of failing.
    support: full
  diff_mode:
    description:
      - On an update, the node instances added, removed and modified (one line each - id, template, type,
        host), in check mode too.
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

- name: Upload version 2 of the model
  ditrit.workflows.tosca_model:
    name: webapp
    src: files/webapp_v2.yaml
    space: /var/lib/workflows/space.db

- name: What the update to version 2 would do (nothing is written)
  ditrit.workflows.tosca_instance:
    model: webapp
    name: prod
    space: /var/lib/workflows/space.db
  check_mode: true
  diff: true
  register: would

- name: The node instances it would add and the operations it would run
  ansible.builtin.debug:
    msg: "{{ would.update.novel }}; {{ would.plan.counts.operations }} operations"

- name: Update prod to version 2, and run 4 web servers per host
  ditrit.workflows.tosca_instance:
    model: webapp
    name: prod
    counts:
      web: 4
    space: /var/lib/workflows/space.db
  register: updated

- name: The update run
  ansible.builtin.debug:
    msg: "{{ updated.run.status }}: {{ updated.run.counts }}"

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
  description: Number of node instances of the instance (in check mode, the number it would have).
  returned: when O(state=present)
  type: int
  sample: 19
model_digest:
  description: Version (digest) of the model the instance follows (in check mode, would follow).
  returned: when O(state=present)
  type: str
  sample: 8c1e2f7a9b3d4c50
up_to_date:
  description: Whether the instance follows the model's current version.
  returned: when O(state=present)
  type: bool
  sample: true
update:
  description: What changes when an existing instance is converged (the categories of TOSCA 2.0 section 4.4).
  returned: when O(state=present) and the instance existed, except when an update run was continued or waited for
  type: dict
  contains:
    from_version:
      description: Version (digest) of the model the instance followed.
      type: str
      sample: 8c1e2f7a9b3d4c50
    to_version:
      description: The model's current version.
      type: str
      sample: 3b0d9e61c2a47f18
    version_changed:
      description: Whether the version differs.
      type: bool
      sample: true
    inputs_changed:
      description: Whether the input values differ.
      type: bool
      sample: false
    novel:
      description: Node instances added.
      type: list
      elements: str
      sample: [srvA_3, A_9, E_0]
    obsolete:
      description: Node instances removed.
      type: list
      elements: str
      sample: []
    modified:
      description: Node instances changed - RV(update.reinstalled) and RV(update.updated) together.
      type: list
      elements: str
      sample: []
    reinstalled:
      description: Modified node instances (and what they host) reinstalled, their type declaring no C(update) workflow.
      type: list
      elements: str
      sample: []
    updated:
      description: Modified node instances that run their type's C(update) workflow.
      type: list
      elements: str
      sample: []
    unchanged:
      description: Node instances left as they are (they may run C(add_*) / C(remove_*) as a peer).
      type: list
      elements: str
      sample: [A_0, B_0]
    relationships:
      description: Relationship instances added (C(novel)) and removed (C(obsolete)), by id.
      type: dict
      sample: {novel: ["A_9:to_b#1:B_0"], obsolete: []}
plan:
  description:
    - In check mode, what the update run would do (C(wfctl plan update)), nothing written.
  returned: check mode, when an update run would start
  type: dict
  contains:
    workflow:
      description: V(update).
      type: str
      sample: update
    nodes:
      description: Node instances of the old and the new generation together.
      type: int
      sample: 28
    participants:
      description: Node instances that take part in the run.
      type: int
      sample: 12
    counts:
      description: Number of operations, state changes and happens-before edges of the run.
      type: dict
      sample: {operations: 155, states: 57, edges: 300}
    operations:
      description:
        - Every operation the run would call - the node it runs for, its full name, and for a
          relationship operation the relationship instance (its id, type, source and target).
      type: list
      elements: dict
      sample:
        - {node: A_9, operation: tosca.interfaces.node.lifecycle.Standard.create}
run:
  description:
    - The update run - as M(ditrit.workflows.tosca_workflow) reports a run; with O(wait=false), only its
      id, workflow and status (V(running)).
  returned: when an update run was started, continued, waited for or found in progress
  type: dict
  contains:
    run_id:
      description: Id of the run.
      type: str
      sample: 20250101T120000-3fa2c1
    workflow:
      description: V(update).
      type: str
      sample: update
    status:
      description: Status of the run.
      type: str
      choices: [running, succeeded, failed, canceled]
      sample: succeeded
    duration:
      description: Seconds from the start to the end of the run.
      returned: unless O(wait=false)
      type: float
      sample: 0.912
    started:
      description: When the run started, in seconds since the epoch.
      returned: unless O(wait=false)
      type: float
      sample: 1764900000.123
    ended:
      description: When the run ended, in seconds since the epoch.
      returned: unless O(wait=false)
      type: float
      sample: 1764900001.035
    states:
      description: State of every node instance of the instance after the run.
      returned: unless O(wait=false)
      type: dict
      sample: {A_9: started, srvA_3: started}
    counts:
      description: Number of node instances in each state.
      returned: unless O(wait=false)
      type: dict
      sample: {started: 28}
    failed_operations:
      description: Operations that failed, with the node, the operation and the message.
      returned: unless O(wait=false)
      type: list
      elements: dict
      sample: []
    errors:
      description: Every error of the run.
      returned: unless O(wait=false)
      type: list
      elements: dict
      sample: []
problems:
  description: Every problem with the given inputs, one line each, when there are several.
  returned: failure, when several inputs are wrong
  type: list
  elements: str
  sample:
    - "instance webapp/prod: input cpus: 'x' is not an integer"
    - "instance webapp/prod: input ports[0]: 0 is not in_range [1, 65535]"
msg:
  description:
    - What an update did or would do, in one line; why the task failed (with several wrong inputs, a
      summary and RV(problems)).
  returned: when O(state=present) and the instance existed, and failure
  type: str
  sample: 'update run 20250101T120000-3fa2c1 started'
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict), C(SpaceError), or C(ToscaProblems) with RV(problems).
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
'''

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api
from ansible_collections.ditrit.workflows.plugins.module_utils.running import (
    check_run_params, follow_run, plan_of, run_argspec, run_problem)

UPDATE_KEYS = ('from_version', 'to_version', 'version_changed', 'inputs_changed', 'novel', 'obsolete', 'modified',
               'reinstalled', 'updated', 'unchanged', 'relationships')
RUN_KEYS = ('run_id', 'workflow', 'status', 'duration', 'started', 'ended', 'states', 'counts',
            'failed_operations', 'errors')


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


def _counts(module):
    """O(counts) as ``{template: int}``; a value that is not a count fails the task in one line
    (text is accepted: values templated by Jinja arrive as text)."""
    given = module.params['counts']
    if not given:
        return None
    out = {}
    for tname, value in sorted(given.items()):
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not (whole or (isinstance(value, str) and value.strip().isdigit())):
            module.fail_json(msg='counts: template %s: %r is not a count (an integer, 0 or more)' % (tname, value))
        out[tname] = int(value)
    return out


def _natural(nid):
    base, dummy, num = nid.rpartition('_')
    return (base, int(num)) if num.isdigit() else (nid, 0)


def _node_lines(nodes, marks=None):
    """One line per node instance, as the update diff shows it; ``marks`` (id -> word) makes the
    line of a modified node differ from its line before the update."""
    lines = []
    for nid in sorted(nodes, key=_natural):
        n = nodes[nid]
        line = '%s: %s (%s)' % (nid, n['template'], n['type'])
        if n.get('host'):
            line += ' on %s' % n['host']
        if marks and nid in marks:
            line += ' - %s' % marks[nid]
        lines.append(line + '\n')
    return ''.join(lines)


def _update_diff(model, name, old, new, summary):
    marks = dict((n, 'modified, reinstalled') for n in summary.get('reinstalled') or [])
    marks.update((n, 'modified, updated') for n in summary.get('updated') or [])
    return dict(before=_node_lines(old), after=_node_lines(new, marks),
                before_header='%s/%s (version %s)' % (model, name, summary['from_version']),
                after_header='%s/%s (version %s)' % (model, name, summary['to_version']))


def _follows(space, model, name):
    """nodes, model_digest and up_to_date of the instance as it is now."""
    head = api.deployments.instance_head(space, model, name)
    current = api.catalog.model_head(space, model)['digest']
    return dict(nodes=head.get('nodes', 0), model_digest=head['model_digest'],
                up_to_date=head['model_digest'] == current)


def _converge(module, space, counts, workers):
    """Move an existing instance to the model's current version, O(inputs) and O(counts) (exits).

    The diff is computed by the engine (updates.compute, read only); the update itself is
    ``api.update_instance``, as ``wfctl update`` runs it, and its run is waited for as
    tosca_workflow waits for a run."""
    p = module.params
    model, name, inputs = p['model'], p['name'], p['inputs']
    result = dict(model=model, instance=name)
    cur = api.current_run(space, model, name)
    if cur is not None and cur['workflow'] == 'update':
        # the head already names the generation that run moves to: follow it, do not diff
        if not p['wait']:
            module.exit_json(changed=False, msg='update run %s is in progress (not waited for)' % cur['id'],
                             run=dict(run_id=cur['id'], workflow=cur['workflow'], status=cur['status']), **result)
        if module.check_mode:
            module.exit_json(changed=True, msg='would wait for update run %s in progress' % cur['id'], **result)
        result['msg'] = 'waited for update run %s in progress' % cur['id']
        _finish(module, space, cur, True, workers, result)
    last = api.last_run(space, model, name)
    resume = last is not None and last['workflow'] == 'update' and last['status'] in ('failed', 'canceled')
    if resume and module.check_mode:
        module.exit_json(changed=True, msg='would continue update run %s (%s) from where it stopped'
                         % (last['id'], last['status']), **result)
    current = api.deployments.read_nodes(space, model, name, api.deployments.instance_head(space, model, name))
    old = current if module._diff else None
    # already gone: nothing to remove (a declarative task run again changes nothing)
    remove = [n for n in p['remove_instances'] or [] if n in current] or None
    if not resume:
        diff = api.update_diff(space, model, name, inputs=inputs, counts=counts, remove=remove)
        write = diff.pop('_write', None)
        head = write['head'] if write else api.deployments.instance_head(space, model, name)
        kept = head.get('counts') or {}
        moved = diff['version_changed'] or diff['inputs_changed'] or dict(kept, **(counts or {})) != kept
        result['update'] = dict((k, diff[k]) for k in UPDATE_KEYS)
        if not diff['changed'] and not moved:
            result.update(_follows(space, model, name))
            module.exit_json(changed=False, msg='instance %s/%s is up to date: no change, no run' % (model, name),
                             **result)
        if cur is not None:
            module.fail_json(msg='instance %s/%s has a run in progress: %s (%s); it cannot be updated before it '
                             'ends' % (model, name, cur['id'], cur['workflow']), **result)
        if module.check_mode:
            new = write['new_nodes'] if write else old
            result.update(nodes=len(write['new_nodes']) if write else head.get('nodes', 0),
                          model_digest=diff['to_version'], up_to_date=True)
            if diff['changed'] and api.instance_installed(space, model, name):
                result['plan'] = plan_of(space, 'update', model, name, inputs=inputs, counts=counts,
                                         remove=remove)
                result['msg'] = 'would start an update run: %d operations on %d node instances' % (
                    result['plan']['counts']['operations'], result['plan']['participants'])
            elif diff['changed']:
                result['msg'] = 'would give the instance (not installed) its new node instances, no run'
            else:
                result['msg'] = 'no change to node or relationship instances: would only record the new version, ' \
                                'inputs or counts, no run'
            if module._diff and write:
                result['diff'] = _update_diff(model, name, old, new, diff)
            module.exit_json(changed=True, **result)
    done = api.update_instance(space, model, name, inputs=inputs, counts=counts,
                               remove=None if resume else remove)
    result['msg'] = done['message']
    result.update(_follows(space, model, name))
    if module._diff and 'novel' in done:
        new = api.deployments.read_nodes(space, model, name, api.deployments.instance_head(space, model, name))
        if new != old:
            result['diff'] = _update_diff(model, name, old, new, done)
    if done.get('run') is None:
        module.exit_json(changed=True, **result)
    _finish(module, space, done['run'], False, workers, result)


def _finish(module, space, rec, attached, workers, result):
    """Wait for the update run (unless O(wait=false)) and exit with it in RV(run)."""
    if not module.params['wait'] and rec['status'] == 'running':
        result['run'] = dict(run_id=rec['id'], workflow=rec['workflow'], status=rec['status'])
        module.exit_json(changed=True, **result)
    summary = follow_run(module, space, rec, attached, workers)
    result['run'] = dict((k, summary[k]) for k in RUN_KEYS)
    result.update(_follows(space, module.params['model'], module.params['name']))
    problem = run_problem(module, summary, workers)
    if problem:
        module.fail_json(changed=True, **dict(result, msg=problem))
    module.exit_json(changed=True, **result)


def _exists(space, model, name):
    try:
        api.deployments.instance_head(space, model, name)
    except api.NotFound:
        return False
    return True


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            model=dict(type='str', required=True),
            name=dict(type='str', required=True, aliases=['instance']),
            inputs=dict(type='dict'),
            counts=dict(type='dict'),
            remove_instances=dict(type='list', elements='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            **run_argspec()
        ),
        supports_check_mode=True,
    )
    p = module.params
    workers = check_run_params(module)
    counts = _counts(module)
    with module.space() as space:
        if p['state'] == 'present':
            if module.check_mode:
                space = api.read_only(space)     # a bug that tried to write fails instead
            _hide_sensitive(module, space)
            if _exists(space, p['model'], p['name']):
                _converge(module, space, counts, workers)
            try:
                result = api.create_instance(space, p['model'], p['name'], check=module.check_mode,
                                             inputs=p['inputs'], counts=counts)
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
