"""Ids made from what a thing is about (dedupe ids, message and job ids) come from one function, and come out as
they did before it: a retry, a job or a reminder stored by the previous release must be found again by its id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialogs.reminders import SETTLE, Reminder
from gateway.channels import kannel, ussd
from gateway.jobs import charges, reminders
from gateway.service import content_id
from gateway.state.ids import digest


def test_ids_come_out_as_the_previous_release_made_them() -> None:
    assert content_id("+8613800138000", "TD") == "h36c64b66a147d730a407d36e96d66476"
    assert charges.job_id("jf-8613800138000-vid-20261107-1") == "pay-66553ed5cac98e21923e40c669b16369"
    reminder = Reminder(SETTLE, "+8613800138000", "8613800138000-vid-20261107", index=0)
    assert reminders.message_id(reminder) == "rem7be156d08a5ee42ee424d40a"
    assert ussd.session_ref("ATUid_会话") == "h843c803e1e436fd338f98fbe5157848d"
    assert ussd.inbound_id("ATUid_1", "2*1*会") == "ussd:h35c7c798e2e7486c01cd29eef46b0642"
    mo = kannel.MO("+8613800138000", "10086", "TD", "id with space", "fake")
    assert kannel.link_id(mo) == "kannel:8e58e3b82b298a78f33d00b45cff6ecd"


@given(st.text(st.characters(blacklist_categories=())), st.integers(min_value=1, max_value=40))  # lone surrogates too
def test_any_text_has_one_id_of_the_length_asked_in_plain_hex(text: str, length: int) -> None:
    made = digest(text, length)
    assert made == digest(text, length) and len(made) == length and set(made) <= set("0123456789abcdef")
