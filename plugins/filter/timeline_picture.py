# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``timeline_picture``: draws ``tosca_instance_info``'s ``timeline`` on the controller.

Why a filter rather than a file written by the info module: an info module must not change
anything, and writing the file is what ``ansible.builtin.copy`` does well (check mode, diff, mode
and owner, any host through ``delegate_to``).  The drawing itself is the engine's (timeline.py's
``render_text``), so the playbook's picture is the one ``wfctl timeline`` writes; only the text
formats, since the controller may lack matplotlib (PNG: ``wfctl timeline --out FILE.png``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine.errors import WfError
from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine.timeline import render_text


def timeline_picture(data, format='html'):
    """The picture of ``data`` (``tosca_instance_info``'s ``timeline``) as text: html, svg or json."""
    if not isinstance(data, Mapping) or not isinstance(data.get('bars'), list):
        raise AnsibleFilterError("timeline_picture expects the 'timeline' result of "
                                 "ditrit.workflows.tosca_instance_info (timeline: true), got %s"
                                 % type(data).__name__)
    if format == 'png':
        raise AnsibleFilterError("timeline_picture draws html, svg or json; a PNG needs matplotlib: "
                                 "wfctl timeline MODEL INSTANCE --out FILE.png on the manager host")
    try:
        return render_text(dict(data), format)
    except WfError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """The collection's filters."""

    def filters(self):
        return {'timeline_picture': timeline_picture}
