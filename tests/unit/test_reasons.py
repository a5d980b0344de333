"""Escalation reasons are named once (dialogs/reasons.py) and each is one the ops guide explains."""

from __future__ import annotations

from pathlib import Path

from dialogs import reasons

OPS_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "ops.md"
NAMED = {name: value for name, value in vars(reasons).items() if name.isupper()}


def test_every_reason_is_its_own_record() -> None:
    assert len(set(NAMED.values())) == len(NAMED)


def test_the_ops_guide_names_every_reason() -> None:
    guide = OPS_GUIDE.read_text()
    assert [value for value in NAMED.values() if f"`{value}`" not in guide] == []
