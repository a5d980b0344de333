"""A step's outbox entry as releases either side of a deploy read it (gateway/jobs/outbox.py)."""

from __future__ import annotations

from gateway.jobs.outbox import Pending


def test_a_fresh_entry_is_written_as_a_release_without_try_counts_reads_it() -> None:
    fresh = Pending(at=1.5, messages=["m1"])
    assert "tries" not in fresh.to_json()
    assert Pending.from_json(fresh.to_json()) == fresh
    assert Pending.from_json(Pending(at=1.5, tries=3).to_json()).tries == 3
