# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # How a module that starts a run waits for it (tosca_workflow, tosca_instance's update);
    # plugins/module_utils/running.py holds the matching argument spec.
    DOCUMENTATION = r'''
options:
  wait:
    description:
      - Wait for the end of the run.
      - With V(false), the task returns once the run is started (its status V(running)); something must
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
      - Defaults to V(1) with O(backend=embedded) (there are no worker daemons for a file) and to V(0)
        with O(backend=consul), where long-lived C(wfctl worker) daemons do the work.
      - Ignored when O(wait=false).
    type: int
'''
