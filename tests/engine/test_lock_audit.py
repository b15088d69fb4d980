"""Issue 17: a node lock that Consul applies after the worker gave up on the request (a claim
queued in a paused server, applied when it resumes) is held by a live session and used by no
task; after such an outage the worker releases the locks of its sessions that no task of it
holds (Worker._audit_locks).  Here the late claim is made directly with the worker's session,
on the embedded Space (the audit reads the queue the same way on both)."""
import threading

from wfengine import api, keys
from wfengine.worker import Worker

from engine_helpers import EXAMPLE, deploy, embedded


def test_audit_releases_only_the_locks_no_task_holds(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    try:
        run = api.start_workflow(space, "install", "m", "i")["id"]
        ready = sorted(k.rsplit("/", 1)[1] for k in space.keys(keys.queue(run)) if keys.is_ready(k))
        assert len(ready) >= 3, ready
        orphan, busy, other = ready[:3]
        w = Worker(api.open_space(opts), worker_id="w0", threads=1)
        w._new_session()
        w.context(run)
        stranger = space.session_create("someone-else", 30)
        assert space.acquire(keys.lock(run, orphan), w.session, {"worker": "w0"})     # the late claim
        assert space.acquire(keys.lock(run, busy), w.session, {"worker": "w0"})       # a task's
        assert space.acquire(keys.lock(run, other), stranger, {"worker": "w9"})       # another worker's
        assert space.acquire(keys.lock(run, "~o-x-1-0"), w.session, {"worker": "w0"})  # an outbox's
        w._inflight.add((run, busy))
        assert w._audit_locks() == 1
        held = {k.rsplit("/", 1)[1] for k in space.keys(keys.queue(run)) if keys.is_lock(k)}
        assert held == {busy, other, "~o-x-1-0"}
        assert keys.ready(run, orphan) in space.keys(keys.queue(run))    # its ready tuple stays
        assert w._audit_locks() == 0
        w.space.session_destroy(w.session)
        w.space.close()
    finally:
        space.close()


def test_audit_releases_a_host_lock_taken_late_and_keeps_those_in_use(tmp_path):
    """A host lock's transaction applied after the worker gave up on it (the releaser thread's
    delete came first): held by the live session, no task on it, every other worker's
    operations on that host would wait forever."""
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    space = api.open_space(opts)
    try:
        run = api.start_workflow(space, "install", "m", "i")["id"]
        late, held, taking, foreign = (keys.host_lock(run, h) for h in ("h1", "h2", "h3", "h4"))
        w = Worker(api.open_space(opts), worker_id="w0", threads=1)
        w._new_session()
        w.context(run)
        stranger = space.session_create("someone-else", 30)
        for hk in (late, held, taking):
            assert space.acquire(hk, w.session, {"worker": "w0"})
        assert space.acquire(foreign, stranger, {"worker": "w9"})
        w._host_sessions[held] = w.session                      # a task holds it
        w._host_locks[taking] = threading.Lock()
        w._host_locks[taking].acquire()                         # a task is taking it
        w._host_locks[late] = threading.Lock()                  # its local lock released
        assert w._audit_locks() == 1
        left = {k for k in space.keys(keys.queue(run)) if keys.is_host_lock(k)}
        assert left == {held, taking, foreign}
        assert w._audit_locks() == 0
        # The host is free again: another worker takes it.
        assert space.acquire(late, stranger, {"worker": "w9"})
        w.space.session_destroy(w.session)
        w.space.close()
    finally:
        space.close()
