"""The console's two languages: Babel message catalogues (locale/<lang>/LC_MESSAGES/messages.po).

Message ids are the English texts. The .po files are the source and are compiled in memory when
the console starts (Babel's read_po and write_mo), so a compiled file can never be older than the
catalogue it came from. The language is the `mw_lang` cookie when set, else the best of the
request's Accept-Language, else Chinese: the console's users work in Chinese firms.
"""

from __future__ import annotations

import gettext
import io
import os
from collections.abc import Callable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANG_COOKIE = "mw_lang"
LOCALE_DIR = os.path.join(os.path.dirname(__file__), "locale")


def catalogue_path(lang: str) -> str:
    return os.path.join(LOCALE_DIR, lang, "LC_MESSAGES", "messages.po")


def load_translations() -> dict[str, gettext.GNUTranslations]:
    result = {}
    for lang in LANGUAGES:
        with open(catalogue_path(lang), "rb") as f:
            catalog = read_po(f, locale=lang)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        result[lang] = gettext.GNUTranslations(compiled)
    return result


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    best, best_q = None, 0.0
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q - position * 1e-6
    return best or DEFAULT_LANGUAGE


def gettext_for(translations: dict[str, gettext.GNUTranslations], lang: str) -> Callable[[str], str]:
    return translations[lang].gettext
