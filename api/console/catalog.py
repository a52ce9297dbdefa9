"""Keep the console's catalogs in step with its code: ``python -m api.console.catalog`` extracts
every translatable string (Python and templates, as ``babel.cfg`` says) and updates each
language's ``console.po`` — new strings are added untranslated, gone ones are dropped. The test
``tests/console/test_catalog.py`` fails while any string lacks a translation."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.console.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

HERE = Path(__file__).parent
KEYWORDS = {"_": None, "gettext": None, "N_": None}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> Catalog:
    """Every translatable string of the console, with where it is used."""
    template = Catalog(domain=DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
        HERE, METHODS, keywords=KEYWORDS, options_map=OPTIONS, strip_comment_tags=True,
    ):
        if isinstance(message, str) and message:
            template.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def update() -> None:
    template = extract()
    for lang in LANGUAGES:
        if lang == "en":
            continue
        path = po_path(lang)
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=LANGUAGES[lang], domain=DOMAIN)
        catalog.update(template, update_header_comment=False, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, width=0, omit_header=False, sort_output=False)
        missing = [m.id for m in catalog if m.id and not m.string]
        print(f"{path}: {len(missing)} untranslated", file=sys.stderr)


if __name__ == "__main__":
    update()
