"""Whether an attempt another worker recorded is left to it (attempts.py): the pure decision and
what a worker remembers to make it.  The end-to-end check is tests/distributed/
test_fencing_outages.py (a 90 s outage of a real Consul runs nothing twice)."""
import pytest

from wfengine.attempts import DEFER_FIRST, DEFER_MAX, AttemptWatch, attempt_may_be_delivered, new_boot

ATTEMPT = {"pc": 3, "operation": "create", "attempt": 1, "worker": "w2", "boot": "b2"}


def decide(attempt="default", me="w1", registration=None, absent_for=0.0, grace=5.0):
    attempt = dict(ATTEMPT) if attempt == "default" else attempt
    return attempt_may_be_delivered(attempt, me, registration, absent_for, grace)


def test_registered_worker_of_the_same_process_keeps_its_attempt():
    assert decide(registration={"boot": "b2", "pid": 1}) is True


def test_restarted_worker_of_the_same_id_does_not():
    # A new process (another boot): the old one's running operation died with it.
    assert decide(registration={"boot": "b9"}) is False
    assert decide(registration="not a dict") is False


def test_unregistered_worker_counts_as_alive_for_the_grace_only():
    assert decide(absent_for=0.0) is True
    assert decide(absent_for=4.9) is True
    assert decide(absent_for=5.0) is False


@pytest.mark.parametrize("attempt", [
    None, {}, dict(ATTEMPT, worker="w1"), dict(ATTEMPT, boot=None),
    {k: v for k, v in ATTEMPT.items() if k != "boot"}, dict(ATTEMPT, handed_back=True)])
def test_attempts_run_again_at_once(attempt):
    # Own attempt (its step is gone), an older engine's (no boot), a stopped worker's hand-back.
    assert decide(attempt=attempt, registration={"boot": "b2"}) is False


def test_boots_differ():
    assert len({new_boot() for dummy in range(100)}) == 100


def test_absence_counts_from_first_noticed_and_ends_with_a_listing():
    w = AttemptWatch()
    assert w.absent_for("w2", now=100.0) == 0.0
    assert w.absent_for("w2", now=103.5) == 3.5
    w.saw_peers({"w1", "w2"})
    assert w.absent_for("w2", now=200.0) == 0.0


def test_deferral_doubles_up_to_its_bound_and_ends_when_settled():
    w = AttemptWatch()
    assert w.deferred_for("r", "n", now=0.0) == 0.0
    w.defer("r", "n", now=10.0)
    assert w.deferred_for("r", "n", now=10.0) == pytest.approx(DEFER_FIRST)
    w.defer("r", "n", now=20.0)
    assert w.deferred_for("r", "n", now=20.0) == pytest.approx(2 * DEFER_FIRST)
    for dummy in range(10):
        w.defer("r", "n", now=30.0)
    assert w.deferred_for("r", "n", now=30.0) == pytest.approx(DEFER_MAX)
    assert w.deferred_for("r", "n", now=30.0 + DEFER_MAX) == 0.0
    w.settled("r", "n")
    w.defer("r", "n", now=40.0)
    assert w.deferred_for("r", "n", now=40.0) == pytest.approx(DEFER_FIRST)


def test_abandoned_nodes_until_settled_or_the_run_ends():
    w = AttemptWatch()
    w.abandon("r1", "a")
    w.abandon("r2", "b")
    w.defer("r2", "c", now=0.0)
    assert w.abandoned("r1", "a") and w.abandoned("r2", "b")
    w.settled("r1", "a")
    assert not w.abandoned("r1", "a")
    w.keep_runs({"r1"})
    assert not w.abandoned("r2", "b")
    assert w.deferred_for("r2", "c", now=0.0) == 0.0
