"""Redis key names are built in one place (gateway/state/keys.py), and stay what they were: a renamed key orphans
what a running deployment keeps under the old name."""

from __future__ import annotations

import ast
from pathlib import Path

from redis.crc import key_slot

from gateway.state import escalations, keys
from gateway.state.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
KEYS_MODULE = ROOT / "gateway" / "state" / "keys.py"


def test_a_numbers_sms_quota_is_hash_tagged_under_the_limits_prefix() -> None:
    assert Keys().sms_quota("+8613800138000", 20, 60) == "tdbot:limits:{+8613800138000}:sms-ids:20/60s"
    assert Keys("other").limits() == "other:limits"


def test_the_console_senders_record_of_a_send_sits_beside_its_outbox() -> None:
    assert keys.sent(Keys().shared(keys.OUTBOX), "m1") == "tdbot:outbox:sent:m1"


def _named(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _built_keys(path: Path) -> list[str]:
    """String literals that name a tdbot key (`tdbot:...`, no spaces: not prose), and f-strings that open a hash tag
    (`...:{{{msisdn}}}`) or add to a key or prefix (`f"{outbox_key}:sent:..."`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("tdbot:") \
                and " " not in node.value:
            found.append(f"{path.name}:{node.lineno} {node.value!r}")
        if isinstance(node, ast.JoinedStr):
            for part, following in zip(node.values, node.values[1:], strict=False):
                if (isinstance(part, ast.Constant) and str(part.value).endswith("{")
                        and isinstance(following, ast.FormattedValue)):
                    found.append(f"{path.name}:{node.lineno} a hash tag")
                if (isinstance(part, ast.FormattedValue) and _named(part.value).lower().endswith(("key", "prefix"))
                        and isinstance(following, ast.Constant) and str(following.value).startswith(":")):
                    found.append(f"{path.name}:{node.lineno} a key built on {_named(part.value)}")
    return found


def test_no_module_but_keys_builds_a_key_name() -> None:
    others = [p for p in sorted((ROOT / "gateway").rglob("*.py")) if p != KEYS_MODULE]
    assert [found for path in others for found in _built_keys(path)] == []


def test_open_escalations_are_counted_in_their_index_s_cluster_slot() -> None:
    index, counts = escalations.index_key(Keys()), escalations.counts_key(Keys())
    assert (index, counts) == ("tdbot:escalations", "tdbot:escalations:reasons{tdbot:escalations}")
    assert key_slot(counts.encode()) == key_slot(index.encode())
