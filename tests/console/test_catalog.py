"""Every visible string of the console is translated into Chinese: a string marked for
translation without a zh-CN entry fails here, and so does text written into a template without
marking it (it would show in English on a Chinese page)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po
from html.parser import HTMLParser

from api.console.catalog import extract, po_path
from api.console.page import TEMPLATES

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: Text a template may show as is: the product's name and each language's own name.
AS_IS = {"ticketflow", "English"}


def _zh() -> dict[str, str]:
    with po_path("zh-CN").open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy entries are not used: review them"
    return {str(m.id): str(m.string) for m in catalog if m.id}


def test_every_marked_string_has_a_chinese_translation_with_the_same_placeholders() -> None:
    zh = _zh()
    wanted = {str(m.id) for m in extract() if m.id}
    assert wanted, "the extractor found nothing: the check would pass vacuously"
    missing = sorted(w for w in wanted if not zh.get(w))
    assert not missing, f"untranslated (run python -m api.console.catalog, then translate): {missing}"
    for msgid in wanted:
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(zh[msgid])), msgid


class _VisibleText(HTMLParser):
    """Text a reader sees: element text and the attributes browsers show (placeholder, title ...)."""

    SHOWN = {"placeholder", "title", "alt", "aria-label"}

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.text += [value for name, value in attrs if name in self.SHOWN and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def unmarked_words(source: str) -> list[str]:
    """English words a template shows as written (what Jinja fills in is translated or data)."""
    source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", source, flags=re.S)
    parser = _VisibleText()
    parser.feed(source)
    return [word for chunk in parser.text for word in re.findall(r"[A-Za-z][A-Za-z']+", chunk) if word not in AS_IS]


def test_no_template_shows_text_that_is_not_marked_for_translation() -> None:
    found = {path.name: words for path in sorted(Path(TEMPLATES).glob("*.html"))
             if (words := unmarked_words(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_template_check_sees_unmarked_text() -> None:
    source = '<p title="Hover me">Plain words</p><input placeholder="{{ _(\'ok\') }}"><script>var x;</script>'
    assert unmarked_words(source) == ["Hover", "me", "Plain", "words"]


def test_the_glossary_terms_are_the_ones_the_console_uses() -> None:
    zh = _zh()
    for english, chinese in {"Pending": "等待客户", "On hold": "挂起", "Public reply": "公开回复",
                             "Internal note": "内部备注", "Problem library: similar solved problems": "问题库",
                             "Timeline": "时间线", "Queues": "队列", "Compliance reviewer": "合规专员"}.items():
        assert chinese in zh[english], english
