"""Carrier policy records: one frozen record per carrier, no code paths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

PRORATIONS = ("daily", "month")
_BP_DENOMINATOR = 10_000


class Plan(NamedTuple):
    """A monthly package a subscriber can order by SMS (`BG` / `套餐`)."""

    code: str
    name_zh: str
    name_en: str
    fee_fen: int

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


@dataclass(frozen=True, kw_only=True, slots=True)
class CarrierPolicy:
    key: str
    name_zh: str
    name_en: str
    short_code: str
    settle_within: timedelta
    # True: deadline is 23:59:59 local on the day settle_within after cancel;
    # False: deadline is exactly settle_within after the cancel confirmation.
    deadline_end_of_day: bool
    proration: str
    settlement_reminders: tuple[timedelta, ...]
    renewal_reminders: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=1))
    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    # A normal backlog (sweep interval, queue wait, pacing) between a reminder falling due and reaching the phone: a
    # reminder that must beat quiet hours is due this long before they begin (docs/reminders.md).
    quiet_margin: timedelta = timedelta(minutes=30)
    timezone: str = "Asia/Shanghai"
    late_fee_bp: int = 0
    late_fee_flat_fen: int = 0
    cancel_needs_code: bool = True
    sender_id: str = "【tdbot】"
    locale: str = "en"
    ucs2_single: int = 70
    ucs2_multi: int = 67
    gsm_single: int = 160
    gsm_multi: int = 153
    plans: tuple[Plan, ...] = ()

    def __post_init__(self) -> None:
        if self.proration not in PRORATIONS:
            raise ValueError(f"unknown proration {self.proration!r}")
        if self.late_fee_bp < 0 or self.late_fee_flat_fen < 0:
            raise ValueError("late fee must not be negative")
        ZoneInfo(self.timezone)  # fail at definition time, not at the first reminder
        self._check_quiet_margin()

    def _check_quiet_margin(self) -> None:
        """What the reminder rule needs to keep its promise: room for a backlog before a deadline and each day."""
        if self.quiet_margin < timedelta(0):
            raise ValueError("quiet_margin must not be negative")
        if any(offset < self.quiet_margin for offset in self.settlement_reminders + self.renewal_reminders):
            raise ValueError(f"a reminder offset is shorter than quiet_margin ({self.quiet_margin})")
        if _allowed_each_day(self.quiet_start, self.quiet_end) < self.quiet_margin:
            raise ValueError(f"quiet hours {self.quiet_start:%H:%M}-{self.quiet_end:%H:%M} leave less than "
                             f"quiet_margin ({self.quiet_margin}) a day to remind in")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_DAY = timedelta(days=1)


def _allowed_each_day(quiet_start: time, quiet_end: time) -> timedelta:
    """How long a day is out of quiet hours [quiet_start, quiet_end), which may wrap midnight (none: all day)."""
    minutes = (quiet_start.hour * 60 + quiet_start.minute) - (quiet_end.hour * 60 + quiet_end.minute)
    return timedelta(minutes=minutes % (24 * 60) or 24 * 60)


POLICIES: dict[str, CarrierPolicy] = {
    "cmcc": CarrierPolicy(
        key="cmcc",
        name_zh="中国移动",
        name_en="China Mobile",
        short_code="10086",
        settle_within=timedelta(days=7),
        deadline_end_of_day=True,
        proration="daily",
        settlement_reminders=(3 * _DAY, _DAY),
        late_fee_bp=500,
        sender_id="【中国移动】",
        locale="zh",
        plans=(
            Plan("SPHY", "视频会员", "Video VIP", 1500),
            Plan("YYB", "音乐包", "Music pack", 1000),
            Plan("LLB", "流量包", "Data pack", 2000),
            Plan("YDYP", "移动云盘", "Cloud drive", 500),
        ),
    ),
    "cucc": CarrierPolicy(
        key="cucc",
        name_zh="中国联通",
        name_en="China Unicom",
        short_code="10010",
        settle_within=timedelta(hours=24),
        deadline_end_of_day=False,
        proration="month",
        settlement_reminders=(timedelta(hours=12), timedelta(hours=2)),
        sender_id="【中国联通】",
        locale="zh",
        # Some Unicom routes strip more for their own header: tighter budget.
        ucs2_single=65,
        ucs2_multi=62,
        plans=(
            Plan("SJB", "手机报", "Mobile news", 500),
            Plan("YXB", "游戏包", "Games pack", 1500),
            Plan("WOYP", "联通云盘", "Cloud drive", 500),
        ),
    ),
    "ctcc": CarrierPolicy(
        key="ctcc",
        name_zh="中国电信",
        name_en="China Telecom",
        short_code="10000",
        settle_within=timedelta(days=15),
        deadline_end_of_day=True,
        proration="daily",
        settlement_reminders=(3 * _DAY, _DAY),
        sender_id="【中国电信】",
        locale="zh",
        plans=(
            Plan("CLOUD", "天翼云盘", "Cloud Storage", 800),
            Plan("VIP", "视频会员", "Video VIP", 1500),
            Plan("TYYX", "天翼游戏", "Games pack", 1200),
        ),
    ),
    "default": CarrierPolicy(
        key="default",
        name_zh="其他运营商",
        name_en="Other carrier",
        short_code="10690000",
        settle_within=timedelta(days=7),
        deadline_end_of_day=True,
        proration="daily",
        settlement_reminders=(3 * _DAY, _DAY),
    ),
}

DEFAULT_POLICY = POLICIES["default"]


def policy_for(key: str | None) -> CarrierPolicy:
    if key is None:
        return DEFAULT_POLICY
    return POLICIES.get(key.strip().lower(), DEFAULT_POLICY)


def late_fee_fen(policy: CarrierPolicy, amount_fen: int) -> int:
    """One-off late fee for an overdue amount, rounded half up to the fen."""
    if amount_fen < 0:
        raise ValueError("amount_fen must not be negative")
    if amount_fen == 0:
        return 0
    proportional = (
        amount_fen * policy.late_fee_bp + _BP_DENOMINATOR // 2
    ) // _BP_DENOMINATOR
    return proportional + policy.late_fee_flat_fen
