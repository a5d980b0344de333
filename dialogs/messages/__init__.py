"""Reply templates in zh-CN and en, rendered with the carrier's signature; USSD screens in their own wording."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from carriers import CarrierPolicy
from dialogs.budgets import fit_name, fits_screen
from dialogs.messages import en, zh

CATALOGUES: dict[str, dict[str, str]] = {"zh": zh.TEMPLATES, "en": en.TEMPLATES}
SCREENS: dict[str, dict[str, str]] = {"zh": zh.SCREENS, "en": en.SCREENS}
LANGS = tuple(CATALOGUES)


def render(lang: str, key: str, **values: object) -> str:
    return CATALOGUES.get(lang, zh.TEMPLATES)[key].format(**values)


def screen_template(lang: str, key: str) -> str:
    """`key` as a USSD screen words it: its screen wording where it has one, else the SMS wording."""
    return SCREENS.get(lang, zh.SCREENS).get(key) or CATALOGUES.get(lang, zh.TEMPLATES)[key]


def render_screen(lang: str, key: str, **values: object) -> str:
    return screen_template(lang, key).format(**values)


def signed(policy: CarrierPolicy, lang: str, key: str, name: str = "", **values: object) -> str:
    """Template `key` as an SMS on `policy`'s route, with its signature: `name` whole unless the template's budget
    needs it cut, as a package name the API takes (40 characters) may."""

    def text_for(shown: str) -> str:
        return policy.sender_id + render(lang, key, name=shown, **values)

    return text_for(fit_name(name, text_for, lambda text: fits_screen(policy, key, text)))


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
