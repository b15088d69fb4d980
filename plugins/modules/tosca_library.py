#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tosca_library
short_description: Upload or remove a TOSCA component library in the workflow Space
version_added: 0.1.0
description:
  - Validates a component library (TOSCA node and relationship types with their workflows) and stores it in
    the Space, where models uploaded afterwards can use its types.
  - Uploading the same content again changes nothing.
  - Nothing is written when the library does not validate; the task fails with the parser's message.
author:
  - ditrit.workflows contributors (@ditrit)
options:
  src:
    description:
      - Path of the library's YAML file, on the host that runs the module.
      - Required when O(state=present).
    type: path
  name:
    description:
      - Name of the library in the Space.
      - Defaults to the file name of O(src) without its extension.
      - Required when O(state=absent).
    type: str
  state:
    description:
      - V(present) uploads the library, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ditrit.workflows.connection
  - ditrit.workflows.connection.actiongroup
attributes:
  check_mode:
    description: Validates the library and reports whether it would change, writing nothing.
    support: full
  diff_mode:
    description:
      - On removal, shows the stored library (its file, digest and types) going away.
      - An upload has no diff; the returned RV(digest) tells versions apart.
    support: partial
seealso:
  - module: ditrit.workflows.tosca_model
'''

EXAMPLES = r'''
- name: Upload the component library
  ditrit.workflows.tosca_library:
    src: files/components.yaml
    space: /var/lib/workflows/space.db
  register: lib

- name: Show the types it holds
  ansible.builtin.debug:
    var: lib.types

- name: Remove it from a Consul Space
  ditrit.workflows.tosca_library:
    name: components
    state: absent
    backend: consul
    host: consul1.example.com
'''

RETURN = r'''
name:
  description: Name of the library in the Space.
  returned: always
  type: str
  sample: components
digest:
  description: Digest of the validated content; the same content gives the same digest.
  returned: when O(state=present)
  type: str
  sample: 3f9a0c1d2e4b5a69
types:
  description: Node and relationship types the library defines.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [org.ditrit.nodes.Server, org.ditrit.relationships.DependsOn]
msg:
  description:
    - Why the task failed, in one line (for a library that does not load, the file, the YAML path and
      what is wrong).
  returned: failure
  type: str
  sample: 'components.yaml: node_types.my.App.derived_from: unknown type my.Base'
error_type:
  description:
    - The class of the engine's error when the task failed on one - C(ToscaError), C(ModelError),
      C(NotFound), C(Conflict), C(SpaceError), or C(ToscaProblems) for a library with several problems.
  returned: failure, when the engine refused the request or the Space could not be reached
  type: str
  sample: NotFound
'''

import json

from ansible_collections.ditrit.workflows.plugins.module_utils.connection import WorkflowsModule, api
from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine import keys


def _stored(space, name):
    """The stored library as the removal diff shows it ('' when there is none)."""
    entry = space.get(keys.library(name))
    value = entry.value if entry is not None and isinstance(entry.value, dict) else None
    if value is None:
        return ''
    shown = dict((k, value[k]) for k in ('name', 'file', 'digest', 'types') if k in value)
    return json.dumps(shown, indent=2, sort_keys=True) + '\n'


def main():
    module = WorkflowsModule(
        argument_spec=dict(
            src=dict(type='path'),
            name=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        required_if=[('state', 'present', ('src',)), ('state', 'absent', ('name',))],
        supports_check_mode=True,
    )
    p = module.params
    with module.space() as space:
        if p['state'] == 'present':
            result = api.upload_library(space, p['src'], name=p['name'], check=module.check_mode)
        else:
            before = _stored(space, p['name']) if module._diff else ''
            result = api.remove_library(space, p['name'], check=module.check_mode)
            if module._diff and result.get('changed'):
                result['diff'] = dict(before=before, after='', before_header='%s (stored)' % p['name'],
                                      after_header='%s (removed)' % p['name'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
