"""/metrics adds what jobs counted (in Redis) to what this process counted, in one family per name; /readyz says
whether a worker has been seen lately."""

from __future__ import annotations

import re

from gateway.jobs import sweeper
from tests.support.metrics import samples
from tests.support.phone import seed_demo


def test_sends_counted_by_jobs_join_inbound_steps_in_one_family(app, client, phone) -> None:
    seed_demo(app)
    phone.send("TD")
    phone.send("1")
    phone.send("Y")
    phone.deliver()
    text = client.get("/metrics").get_data(as_text=True)
    assert len(re.findall(r"^# TYPE tdbot_messages(_total)? counter$", text, re.MULTILINE)) == 1
    sent = samples(text, "tdbot_messages_total")
    assert sent['channel="console",direction="out",outcome="sent"'] == 1
    assert sent['channel="twilio",direction="in",outcome="answered"'] >= 3
    assert samples(text, "tdbot_queue_jobs")['queue="outbound",state="queued"'] == 0
    assert "tdbot_redis_up 1.0" in text


def test_ready_says_whether_a_worker_ran_the_sweep_lately(app, client, clock) -> None:
    assert client.get("/readyz").get_json()["worker"] == {"recent": False, "seen_seconds_ago": None}
    sweeper.sweep_job()
    clock.advance(seconds=20)
    assert client.get("/readyz").get_json()["worker"] == {"recent": True, "seen_seconds_ago": 20}
    clock.advance(minutes=5)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["worker"]["recent"] is False
