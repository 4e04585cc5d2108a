"""Text preparation: every petition passes through here before anything else sees it.

Masking comes first so that personal data never reaches features, logs or stored
derived data; normalisation makes full-width, traditional and export-debris
variants of the same words look alike to the tokeniser.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

PLACEHOLDERS: dict[str, str] = {
    "email": "【邮箱】",
    "id_card": "【身份证号】",
    "bank_card": "【银行卡号】",
    "phone": "【电话】",
}

# Order matters: longer digit runs (ID, bank card) are masked before phone numbers.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("id_card", re.compile(r"(?<![0-9])(?:[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14})(?![0-9A-Za-z])")),
    ("bank_card", re.compile(r"(?<![0-9])(?:[0-9]{4}[ -]){3,4}[0-9]{1,4}(?![0-9])|(?<![0-9])[0-9]{16,19}(?![0-9])")),
    (
        "phone",
        re.compile(
            r"(?<![0-9])(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])"
            r"|(?<![0-9])0[0-9]{2,3}[ -]?[0-9]{7,8}(?![0-9])"
        ),
    ),
)

_EXPORT_DEBRIS = re.compile(r"_x000[0-9A-Fa-f]_")
_WHITESPACE = re.compile(r"\s+")
# Control and format characters (NUL, zero-width spaces and joiners, BOM, word joiner): invisible, so
# they carry no words, and they split digit runs that masking must see whole. Whitespace is kept.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})
# A spreadsheet runs a cell that starts with one of these as a formula (CSV/formula injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES and not char.isspace()


def drop_invisible(text: str) -> str:
    return "".join(char for char in text if not is_invisible(char))


def is_blank(text: str) -> bool:
    """True when nothing visible is left: only whitespace, NUL, zero-width or other format characters."""
    return all(char.isspace() or is_invisible(char) for char in text)


def spreadsheet_safe(value: object) -> object:
    """A cell value that a spreadsheet shows as text and never evaluates: text that starts like a formula
    gets a leading `'` (CSV and .xlsx outputs, the search export); other values pass unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def mask_personal_data(text: str) -> str:
    """Replace phone, ID-card, bank-card numbers and e-mail addresses with placeholders."""
    for kind, pattern in _PATTERNS:
        text = pattern.sub(PLACEHOLDERS[kind], text)
    return text


PLACEHOLDER_PATTERN = re.compile("|".join(re.escape(value) for value in PLACEHOLDERS.values()))


def mask_as_written(text: str) -> str:
    """The text as the petitioner wrote it (own punctuation, full-width forms, traditional characters),
    with the same personal data masked as `prepare_text` masks: this is what people are shown.

    The patterns run over a per-character NFKC fold (so full-width digits are found) whose positions
    map back to the original characters; spans masked by an earlier pattern are blanked for later ones,
    as the sequential substitutions of `mask_personal_data` would.
    """
    text = _EXPORT_DEBRIS.sub(" ", text).strip()
    folded: list[str] = []
    origin: list[int] = []  # folded position -> index of the original character
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char):
            folded.append(" " if piece.isspace() else piece)
            origin.append(index)
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer("".join(folded)):
            start, end = origin[match.start()], origin[match.end() - 1] + 1
            spans.append((start, end, PLACEHOLDERS[kind]))
            folded[match.start() : match.end()] = ["\x00"] * (match.end() - match.start())
    pieces: list[str] = []
    position = 0
    for start, end, placeholder in sorted(spans):
        pieces.append(text[position:start])
        pieces.append(placeholder)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def mask_name(name: str) -> str:
    """A person's name with all but its first character hidden (张三丰 -> 张**)."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def mask_contact(contact: str) -> str:
    """A contact with its numbers masked; anything the patterns do not recognise is hidden but its first character."""
    masked = mask_personal_data(normalize_text(contact))
    return masked if masked != normalize_text(contact) else mask_name(contact)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize_text(text: str) -> str:
    """Fold full-width forms, drop invisible characters and export debris, collapse whitespace, simplify."""
    text = _EXPORT_DEBRIS.sub(" ", text)
    text = unicodedata.normalize("NFKC", drop_invisible(text))
    text = _WHITESPACE.sub(" ", text).strip()
    return _t2s().convert(text)


def prepare_text(text: str) -> str:
    """The one entry point: normalise, then mask (normalising first makes full-width digits maskable)."""
    return mask_personal_data(normalize_text(text))
