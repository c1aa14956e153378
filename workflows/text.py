"""People's text, normalised before it becomes part of an incident.

A title of only spaces or zero-width characters names nothing; control characters break logs
and terminals; a right-to-left override makes ``gnp.exe`` read as ``exe.png``. Titles become
one line of visible text; longer texts keep their line breaks and lose the rest.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

# Format characters (Cf) hide text or reorder it: zero-width spaces and joiners, bidi
# embeddings, overrides and isolates, the BOM. Emoji sequences need ZWJ (U+200D) only between
# pictographs, where it is kept. Lone surrogates (Cs) cannot even be encoded as UTF-8.
_ZWJ = "\u200d"
_SPACES = re.compile(r"[^\S\n]+")
_LINES = re.compile(r"\n{3,}")


def _visible(char: str, keep_newlines: bool) -> str:
    category = unicodedata.category(char)
    if char == "\n" and keep_newlines:
        return char
    if char == "\t" or category in ("Zs", "Zl", "Zp") or (char == "\n" and not keep_newlines):
        return " "
    if category in ("Cc", "Cs") or (category == "Cf" and char != _ZWJ):
        return ""
    return char


def _clean(value: str, keep_newlines: bool) -> str:
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = "".join(_visible(c, keep_newlines) for c in value)
    value = value.replace(" " + _ZWJ, " ").replace(_ZWJ + " ", " ").strip(_ZWJ)
    return value


def clean_line(value: str) -> str:
    """One line of visible text; refused when nothing visible is left."""
    cleaned = _SPACES.sub(" ", _clean(value, keep_newlines=False)).strip()
    if not cleaned:
        raise ValueError("must contain visible text")
    return cleaned


def clean_text(value: str) -> str:
    """Free text (summaries, updates, reasons): line breaks kept, runs of blank lines cut."""
    lines = [_SPACES.sub(" ", line).strip() for line in _clean(value, True).split("\n")]
    return _LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_required_text(value: str) -> str:
    cleaned = clean_text(value)
    if not cleaned:
        raise ValueError("must contain visible text")
    return cleaned


Line = Annotated[str, AfterValidator(clean_line)]
Text = Annotated[str, AfterValidator(clean_text)]
RequiredText = Annotated[str, AfterValidator(clean_required_text)]
