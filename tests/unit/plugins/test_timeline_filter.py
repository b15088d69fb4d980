# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter ditrit.workflows.timeline_picture draws what tosca_instance_info returns.  It is
controller code, so it is tested here (pytest) and not under ansible-test units with the modules."""
from __future__ import annotations

import importlib
import json
import re

import pytest


def test_the_filter_draws_the_module_timeline(run_module, space_file, seed_model, collection_path):
    """The HTML page's data is the module's result, one bar per operation in HTML and SVG."""
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    run_module("tosca_instance", model="seed", name="prod", space=space_file)
    run_module("tosca_workflow", model="seed", instance="prod", space=space_file)
    r = run_module("tosca_instance_info", model="seed", instance="prod", timeline=True, trace=True,
                   space=space_file)
    assert not r.failed, r.msg
    tl = r["timeline"]
    ops = [e for e in r["trace"] if e["kind"] == "operation"]
    assert len(ops) == 315
    # imported after the module runs, as Ansible would
    from ansible.errors import AnsibleFilterError
    draw = importlib.import_module("ansible_collections.ditrit.workflows.plugins.filter.timeline_picture")
    page = draw.timeline_picture(tl)
    data = json.loads(re.search(r'<script type="application/json" id="wf-timeline-data">(.*?)</script>',
                                page, re.S).group(1).replace("<\\/", "</"))
    assert data == tl and page.count('<rect class="bar"') == len(ops)
    assert draw.timeline_picture(tl, "svg").count('<rect class="bar"') == len(ops)
    assert json.loads(draw.timeline_picture(tl, "json")) == tl
    for bad, why in (({"nodes": {}}, "expects the 'timeline' result"), (tl, "needs matplotlib")):
        with pytest.raises(AnsibleFilterError, match=why):
            draw.timeline_picture(bad, "png" if bad is tl else "html")
    with pytest.raises(AnsibleFilterError, match="expected one of html, svg, json"):
        draw.timeline_picture(tl, "pdf")
