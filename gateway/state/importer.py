"""Read subscribers from CSV (one row per subscription) or JSON lines (one subscriber per line)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from dialogs.model import Subscriber
from gateway import validation

CSV_SUBSCRIPTION_FIELDS = ("id", "name", "service_code", "fee_fen", "renews_on", "paid_fen")  # paid_fen optional


def read(path: Path) -> Iterator[Subscriber]:
    """Yield subscribers; raise validation.Invalid naming the line that is wrong. Bytes that are not UTF-8 are read
    as lone surrogates (surrogateescape), which validation refuses naming their field."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        if path.suffix.lower() == ".csv":
            yield from _csv(handle)
        else:
            yield from _json_lines(handle)


def _json_lines(handle) -> Iterator[Subscriber]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            yield validation.subscriber(validation.msisdn(str(data.get("msisdn", ""))), data)
        except (ValueError, AttributeError) as exc:
            raise validation.Invalid(f"line {number}: {exc}") from None


def _csv(handle) -> Iterator[Subscriber]:
    grouped: dict[str, dict] = {}
    for number, row in enumerate(csv.DictReader(handle), 2):
        subscription = {k: row.get(k) for k in CSV_SUBSCRIPTION_FIELDS}
        try:
            msisdn = validation.msisdn(row.get("msisdn") or "")
            validation.subscription(0, subscription)  # here too, so that the error names its line
        except validation.Invalid as exc:
            raise validation.Invalid(f"line {number}: {exc}") from None
        entry = grouped.setdefault(
            msisdn, {"carrier": row.get("carrier"), "locale": row.get("locale"), "subscriptions": []}
        )
        entry["subscriptions"].append(subscription)
    for msisdn, data in grouped.items():
        try:
            yield validation.subscriber(msisdn, data)
        except validation.Invalid as exc:
            raise validation.Invalid(f"{msisdn}: {exc}") from None
