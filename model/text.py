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
    # The petitioner's own name and address as given at intake (`mask_petitioner`): no pattern finds them.
    "name": "【姓名】",
    "address": "【地址】",
}

# Digits as petitioners write them: ASCII (full-width folds to it), and Chinese numerals read digit by
# digit as phone numbers are (一三八…, 〇/零 for 0, 幺 for 1).
_CHINESE_DIGITS = {"〇": "0", "零": "0", "一": "1", "幺": "1", "二": "2", "三": "3", "四": "4", "五": "5"}
_CHINESE_DIGITS |= {"六": "6", "七": "7", "八": "8", "九": "9"}
_DIGIT = "0-9" + "".join(_CHINESE_DIGITS)
# A run of digit groups joined by single separators: "138 1234 5678", "138.1234.5678", "0731-88886666",
# "110101 19900307 7777". An ID card's last group may end in X.
_DIGIT_RUN = re.compile(rf"[{_DIGIT}]+[Xx]?(?:(?: *[-.·/] *| +)[{_DIGIT}]+[Xx]?)*")
_DIGIT_GROUP = re.compile(rf"[{_DIGIT}]+[Xx]?")
# What a run of whole groups may be, read as plain digits. Longest first wins (see `_digit_spans`).
_NUMBER_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("id_card", re.compile(r"[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14}")),
    ("bank_card", re.compile(r"[0-9]{16,19}")),
    ("phone", re.compile(r"(?:0086|86)?1[3-9][0-9]{9}|0[0-9]{9,11}")),
)
_MAX_NUMBER_DIGITS = 19
# The fewest digits any kind above can match (a landline: 0 and nine digits). A run of fewer characters
# holds fewer digits, so it is skipped before the per-group search: most runs are dates, amounts and
# the Chinese numerals of ordinary words (一个, 三天), and the search cost as much as the rest of masking.
_MIN_NUMBER_DIGITS = 10
# E-mail, also with spaces around "@" and "." and with Chinese mailbox names and domains (张三@例子.中国).
_EMAIL = re.compile(
    r"(?:[A-Za-z0-9._%+-]+|[\u4e00-\u9fff]{1,4})"
    r" ?@ ?"
    r"(?:[A-Za-z0-9\u4e00-\u9fff-]+ ?\. ?)+(?:[A-Za-z]{2,}|中国|中國|公司|网络|網絡)"
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


_BMP_INVISIBLE = re.compile(
    "[" + "".join(re.escape(chr(code)) for code in range(0x10000) if is_invisible(chr(code))) + "]"
)
# White space other than the plain space (every such character is in the Basic Multilingual Plane). A regex
# search, not str.translate: translate looks up every character of a text, this only the few it must change.
_OTHER_SPACE = re.compile(
    "[" + "".join(re.escape(chr(code)) for code in range(0x10000) if chr(code).isspace() and code != 0x20) + "]"
)


# A character outside the Basic Multilingual Plane. One regex scan: `max(text)` compared every character
# as a Python object and cost as much as the rest of preparing a petition.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _astral(text: str) -> bool:
    return not text.isascii() and _ASTRAL.search(text) is not None


def drop_invisible(text: str) -> str:
    text = _BMP_INVISIBLE.sub("", text)
    return "".join(char for char in text if not is_invisible(char)) if _astral(text) else text


def without_nul(text: str) -> str:
    """`text` without NUL characters: invisible (nothing a person wrote is lost), and PostgreSQL cannot
    store them in a text column. Every input boundary (API request strings, backlog rows) calls this."""
    return text.replace("\x00", "")


def is_blank(text: str) -> bool:
    """True when nothing visible is left: only whitespace, NUL, zero-width or other format characters."""
    return all(char.isspace() or is_invisible(char) for char in text)


_SPREADSHEET_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def spreadsheet_safe(value: object) -> object:
    """A cell value that a spreadsheet shows as text and never evaluates: control characters that .xlsx
    cannot hold are dropped, and text that starts like a formula gets a leading `'` (CSV and .xlsx
    outputs, the search export); other values pass unchanged."""
    if not isinstance(value, str):
        return value
    value = _SPREADSHEET_ILLEGAL.sub("", value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """What one character folds to: nothing for an invisible one, else its NFKC form with white space as
    plain spaces (cached: petitions reuse a few thousand characters)."""
    if is_invisible(char):
        return ""
    return "".join(" " if piece.isspace() else piece for piece in unicodedata.normalize("NFKC", char))


def _fold(text: str) -> tuple[str, list[int] | None]:
    """Per-character NFKC fold (full-width digits and letters become ASCII), invisible characters dropped
    and whitespace made plain spaces, with the index of the original character of each folded one (None:
    the same positions, as when every character folds to exactly one, e.g. full-width punctuation)."""
    if not _astral(text) and not _BMP_INVISIBLE.search(text):
        # Most petitions as written: full-width punctuation (one character each, as `nfkc` folds it) is
        # all that NFKC changes. Folding them by regex first spares the per-character pass.
        folded = _FULL_WIDTH.sub(_ascii_form, text)
        if unicodedata.is_normalized("NFKC", folded):
            return _OTHER_SPACE.sub(" ", folded), None
    pieces = list(map(_fold_char, text))
    folded = "".join(pieces)
    if len(folded) == len(text) and "" not in pieces:  # no piece empty and none longer: one to one
        return folded, None
    origin = [index for index, piece in enumerate(pieces) for _ in piece]
    return folded, origin


def _digit_spans(folded: str) -> list[tuple[int, int, str]]:
    """Phone, ID-card and bank-card numbers among the digit runs: at each group, the longest sequence of
    whole groups that reads as one of `_NUMBER_KINDS`; groups are never split (so "2023 5" stays)."""
    spans: list[tuple[int, int, str]] = []
    for run in _DIGIT_RUN.finditer(folded):
        if run.end() - run.start() < _MIN_NUMBER_DIGITS:
            continue
        groups = [
            (run.start() + group.start(), run.start() + group.end(), group.group().translate(_DIGIT_TABLE))
            for group in _DIGIT_GROUP.finditer(run.group())
        ]
        first = 0
        while first < len(groups):
            found: tuple[int, str] | None = None
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last][2]
                if len(digits) > _MAX_NUMBER_DIGITS:
                    break
                kind = next((name for name, pattern in _NUMBER_KINDS if pattern.fullmatch(digits)), None)
                if kind is not None:
                    found = (last, kind)
            if found is None:
                first += 1
                continue
            last, kind = found
            spans.append((groups[first][0], groups[last][1], kind))
            first = last + 1
    return spans


_DIGIT_TABLE = str.maketrans(_CHINESE_DIGITS)


def personal_data_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each phone, ID-card, bank-card number and e-mail address in `text`, sorted
    and not overlapping, as positions of `text` itself (whatever its width, spacing or invisible marks)."""
    folded, origin = _fold(text)
    found = [(match.start(), match.end(), "email") for match in _EMAIL.finditer(folded)] if "@" in folded else []
    emails = [(start, end) for start, end, _ in found]
    found += [
        span for span in _digit_spans(folded) if not any(start < span[1] and span[0] < end for start, end in emails)
    ]
    spans: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(found):
        first, after = (start, end) if origin is None else (origin[start], origin[end - 1] + 1)
        if not spans or first >= spans[-1][1]:
            spans.append((first, after, kind))
    return spans


def mask_personal_data(text: str) -> str:
    """Replace phone, ID-card, bank-card numbers and e-mail addresses with placeholders; everything else
    stays exactly as written. Idempotent: a placeholder contains nothing that could be masked again."""
    pieces: list[str] = []
    position = 0
    for start, end, kind in personal_data_spans(text):
        pieces += [text[position:start], PLACEHOLDERS[kind]]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


PLACEHOLDER_PATTERN = re.compile("|".join(re.escape(value) for value in PLACEHOLDERS.values()))


def mask_as_written(text: str) -> str:
    """The text as the petitioner wrote it (own punctuation, full-width forms, traditional characters),
    with the same personal data masked as `prepare_text` masks: this is what people are shown."""
    return mask_personal_data(_EXPORT_DEBRIS.sub(" ", text).strip())


def mask_petitioner(masked_text: str, name: str | None, address: str | None) -> str:
    """`mask_as_written` output with the petitioner's name and address, as given at intake, replaced where
    the text repeats them: departments read the masked text before a clerk hands a petition over, and no
    pattern can recognise a name. Values shorter than two characters are left alone (a lone character
    would blank every word it appears in)."""
    for kind, value in (("address", address), ("name", name)):
        given = mask_as_written(value) if value else ""
        if len(given) >= 2:
            masked_text = masked_text.replace(given, PLACEHOLDERS[kind])
    return masked_text


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


# NFKC maps the full-width ASCII forms (U+FF01-U+FF5E) and the ideographic space to ASCII. Chinese
# text is full of them (，！？：（）), so NFKC's quick check failed on nearly every petition and the full
# normalisation ran; folding them first leaves most texts already normalised. The mapping is NFKC's own
# for each character, so the result is NFKC's (a property test checks it on arbitrary text).
_FULL_WIDTH_FORMS = {chr(code): unicodedata.normalize("NFKC", chr(code)) for code in (*range(0xFF01, 0xFF5F), 0x3000)}
_FULL_WIDTH = re.compile("[" + "".join(map(re.escape, _FULL_WIDTH_FORMS)) + "]")


def _ascii_form(match: re.Match[str]) -> str:
    return _FULL_WIDTH_FORMS[match.group()]


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, three to four times faster on Chinese text."""
    folded = _FULL_WIDTH.sub(_ascii_form, text)
    return folded if unicodedata.is_normalized("NFKC", folded) else unicodedata.normalize("NFKC", folded)


def normalize_text(text: str) -> str:
    """Fold full-width forms, drop invisible characters and export debris, collapse whitespace, simplify."""
    text = _EXPORT_DEBRIS.sub(" ", text)
    text = nfkc(drop_invisible(text))
    text = _WHITESPACE.sub(" ", text).strip()
    return _t2s().convert(text)


PREPARED_CACHE_SIZE = 4096


@lru_cache(maxsize=PREPARED_CACHE_SIZE)
def prepare_text(text: str) -> str:
    """The one entry point: normalise, then mask (normalising first makes full-width digits maskable).

    Cached: one request prepares the same text for the similar-petition lookup, the routing model and
    the flags (a batch chunk likewise), and each pass costs nearly as much as segmenting it with rjieba.
    The function is pure, so a cached answer is the answer."""
    return mask_personal_data(normalize_text(text))
