"""Languages of the console: English and Simplified Chinese, through gettext catalogs (Babel).

The catalogs are ``locale/<lang>/LC_MESSAGES/console.po`` in this folder, compiled in memory when
the app starts (nothing to build by hand). The language comes from the ``tf_lang`` cookie (the
switch in the top bar), else the browser's ``Accept-Language``. Times are shown in the desk's
time zone (``TICKETFLOW_TIME_ZONE``) in the language's own date format; they are stored in UTC.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.dates import format_datetime, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"
#: Languages offered, as (cookie/URL value, Babel locale).
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}
DEFAULT = "en"
COOKIE = "tf_lang"
#: Date patterns per language (the glossary: ``2026年12月2日 14:05``).
_DATETIME = {"en": "d MMM yyyy HH:mm", "zh-CN": "yyyy年M月d日 HH:mm"}


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog for ``lang`` (English is the source language: no catalog)."""
    if lang == DEFAULT:
        return NullTranslations()
    path = LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LANGUAGES[lang], domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def choose(request: Request) -> str:
    """The request's language: the cookie, else the best match of ``Accept-Language``."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    preferred = []
    for part in header.split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            preferred.append(tag)
    found = negotiate_locale(preferred, [*LANGUAGES.values(), "zh"], sep="_") if preferred else None
    if found in ("zh_CN", "zh"):
        return "zh-CN"
    return DEFAULT


@dataclass(frozen=True)
class Formats:
    """Dates and numbers for one language in the desk's time zone."""

    lang: str
    zone: ZoneInfo

    @property
    def locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.lang])

    def when(self, value: str | datetime | None) -> str:
        if value in (None, ""):
            return ""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return format_datetime(moment, _DATETIME[self.lang], tzinfo=self.zone, locale=self.locale)

    def iso_local(self, value: str | datetime | None) -> str:
        """For ``<input type=datetime-local>``: the instant in the desk's zone, to the minute."""
        if value in (None, ""):
            return ""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float) -> str:
        return format_percent(value, locale=self.locale)

    @property
    def zone_name(self) -> str:
        if self.lang == "zh-CN" and self.zone.key in ("Asia/Shanghai", "Asia/Chongqing", "PRC"):
            return f"北京时间（{self.zone.key}）"  # what Chinese desks call it (GLOSSARY-zh.md), full-width brackets
        name = get_timezone_name(self.zone, width="long", locale=self.locale)
        return f"{name}（{self.zone.key}）" if self.lang == "zh-CN" else f"{name} ({self.zone.key})"
