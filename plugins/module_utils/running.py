# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules that start runs share (tosca_workflow, and tosca_instance for an update):
the O(wait), O(timeout) and O(workers) options (documented once in the ``ditrit.workflows.run``
doc fragment), waiting for a run the way ``wfctl wait`` does, the one-line message of a failed or
unfinished run, and a plan as check mode returns it.  One copy, so that a run started by either
module is waited for, reported and failed the same way.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import api

MAX_ERRORS_IN_MESSAGE = 5


def run_argspec():
    """The options of a module that waits for a run, a fresh dict each call."""
    return dict(
        wait=dict(type='bool', default=True),
        timeout=dict(type='float', default=3600),
        workers=dict(type='int'),
    )


def check_run_params(module):
    """Fail the task, in one line, on a negative worker count or a timeout that is not positive;
    returns the number of workers to run in the module (api.DEFAULT_LOCAL_WORKERS on an embedded
    Space, which has no worker daemons, as wfctl; 0 on Consul)."""
    p = module.params
    if p['workers'] is not None and p['workers'] < 0:
        module.fail_json(msg='workers must be 0 or more, got %d' % p['workers'])
    if p['timeout'] is not None and p['timeout'] <= 0:
        module.fail_json(msg='timeout must be more than 0, got %s' % p['timeout'])
    if p['workers'] is not None:
        return p['workers']
    return api.DEFAULT_LOCAL_WORKERS if module.embedded else 0


def follow_run(module, space, rec, attached, workers):
    """Wait for a run just started (``rec``), or found in progress (``attached``: its workers
    may be elsewhere, or gone - attach_run decides, as ``wfctl wait`` does), and return its
    summary."""
    p = module.params
    if rec['status'] == 'running':
        if attached:
            rec = api.attach_run(module.space_options(), space, rec['id'], workers=p['workers'],
                                 timeout=p['timeout'], notice=module.warn)
        elif workers > 0:
            rec = api.run_with_local_workers(module.space_options(), space, rec['id'], workers,
                                             timeout=p['timeout'])
        else:
            rec = api.wait_run(space, rec['id'], timeout=p['timeout'])
    return api.summary(space, rec['id'])


def run_problem(module, summary, workers):
    """Why the task fails after waiting for the run (one line), or None when it succeeded."""
    p = module.params
    if summary['status'] == 'running':
        if workers == 0:
            after = '; it goes on in the workers'
        elif module.embedded:
            after = ('; it stays in progress with no worker: "wfctl --space %s worker" finishes it, '
                     '"wfctl --space %s cancel %s %s" stops it'
                     % (p['space'], p['space'], summary['model'], summary['instance']))
        else:
            after = '; the worker daemons, if any, go on with it'
        return ('workflow %s on %s/%s did not end within %s s (run %s)%s'
                % (summary['workflow'], summary['model'], summary['instance'], p['timeout'],
                   summary['run_id'], after))
    if summary['status'] != 'succeeded':
        return failure_message(summary)
    return None


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
    """A failed run in one line: the workflow, the instance, the duration and its first errors."""
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


def plan_of(space, workflow, model, instance, inputs=None, counts=None, remove=None):
    """What a run would do, as check mode returns it (RV(plan)): computed by the engine from the
    programs workers build, read through a view that cannot write (wfctl plan)."""
    return api.plan_operations(api.plan(space, workflow, model, instance, inputs=inputs, counts=counts,
                                        remove=remove))
