"""Reply templates in zh-CN and en, rendered with the carrier's signature."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dialogs.messages import en, zh

CATALOGUES: dict[str, dict[str, str]] = {"zh": zh.TEMPLATES, "en": en.TEMPLATES}
LANGS = tuple(CATALOGUES)


def render(lang: str, key: str, **values: object) -> str:
    return CATALOGUES.get(lang, zh.TEMPLATES)[key].format(**values)


def money(lang: str, fen: int) -> str:
    yuan = f"{fen // 100}.{fen % 100:02d}"
    return f"{yuan}元" if lang == "zh" else f"CNY {yuan}"


def when(lang: str, moment: datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    if lang == "zh":
        return f"{local.month}月{local.day}日{local:%H:%M}"
    return f"{local:%d %b %H:%M}"


def day(lang: str, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{moment.month}月{moment.day}日" if lang == "zh" else f"{moment:%d %b}"
