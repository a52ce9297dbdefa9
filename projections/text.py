"""Search terms that work without spaces between words (Chinese, Japanese, Korean) and with them.

Indexing turns each run of CJK characters into its overlapping bigrams plus the
run's last character (so every character starts some term), and every other
word into its lower-cased self. A query turns each CJK run into a phrase of its
bigrams (a one-character query into a prefix term) and each word into a term.
Both SQLite FTS5 (``unicode61``) and PostgreSQL (``to_tsvector('simple')``)
index the same terms, so a two-character Chinese query finds its tickets on both.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uac00-\ud7af"  # Hangul syllables
)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")


def _runs(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]]


def index_terms(text: str) -> str:
    """The space-separated terms to index for ``text``."""
    terms: list[str] = []
    for run in _runs(text):
        terms.extend(_bigrams(run) if _IS_CJK.match(run) else [run])
    return " ".join(terms)


@dataclass(frozen=True)
class Query:
    phrases: tuple[tuple[str, ...], ...]  # all must match; each phrase's terms adjacent
    prefixes: tuple[str, ...]  # single CJK characters: terms starting with them

    @property
    def empty(self) -> bool:
        return not self.phrases and not self.prefixes

    def fts5(self) -> str:
        parts = ['"' + " ".join(p) + '"' for p in self.phrases]
        parts += [f'"{c}"*' for c in self.prefixes]
        return " AND ".join(parts)

    def tsquery(self) -> str:
        parts = ["(" + " <-> ".join(f"'{t}'" for t in p) + ")" for p in self.phrases]
        parts += [f"'{c}':*" for c in self.prefixes]
        return " & ".join(parts)


def parse_query(text: str) -> Query:
    phrases: list[tuple[str, ...]] = []
    prefixes: list[str] = []
    for run in _runs(text):
        if _IS_CJK.match(run):
            if len(run) == 1:
                prefixes.append(run)
            else:
                phrases.append(tuple(run[i : i + 2] for i in range(len(run) - 1)))
        else:
            phrases.append((run,))
    return Query(tuple(phrases), tuple(prefixes))
