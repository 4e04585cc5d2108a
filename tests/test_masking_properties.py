"""Properties of text preparation and masking (hypothesis): no input makes them raise, masking is
idempotent, and every number the README promises to mask is masked however it is written: plain,
split by spaces, dots or hyphens, full width, in Chinese numerals, with invisible characters inside."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from model.text import (
    _MIN_NUMBER_DIGITS,
    _NUMBER_KINDS,
    _OTHER_SPACE,
    PLACEHOLDERS,
    _fold,
    _fold_char,
    is_blank,
    mask_as_written,
    mask_personal_data,
    nfkc,
    normalize_text,
    prepare_text,
    spreadsheet_safe,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHINESE_NUMERALS = "〇零一幺二三四五六七八九"
# Context around a number: Chinese without numerals, punctuation that ends a number, letters.
CONTEXT = st.text(alphabet="我的电话是请联系张先生住址小区物业，。：；！（）", max_size=12)
SEPARATORS = st.sampled_from([" ", ".", "-", " - ", "·", "  ", "\u3000", "．", "－"])
# Text built from what masking looks at, to reach its corners more often than st.text() would.
TRICKY = st.text(alphabet="0123456789１３８ .-·@Xx+一三八〇幺ab中国例子.com\u200b\u00a0【】电话", max_size=60)


def numbers(prefix: st.SearchStrategy[str], length: int) -> st.SearchStrategy[str]:
    return st.tuples(prefix, st.text(alphabet="0123456789", min_size=length, max_size=length)).map("".join)


MOBILE = numbers(st.sampled_from([f"1{second}" for second in "3456789"]), 9)
LANDLINE = numbers(st.sampled_from(["010", "021", "0731", "0755", "0571"]), 8)
ID_CARD = st.tuples(numbers(st.sampled_from("123456789"), 16), st.sampled_from("0123456789Xx")).map("".join)
BANK_CARD = numbers(st.sampled_from(["62", "45", "52"]), 15)  # 17 digits, or 16-19 below
BANK_CARDS = st.one_of(BANK_CARD, numbers(st.sampled_from(["62"]), 14), numbers(st.sampled_from(["62"]), 17))


@st.composite
def written(draw: st.DrawFn, number: str, chinese: bool = False) -> str:
    """`number` as a person might write it: groups split anywhere (an ID's X stays on its last group),
    one separator, maybe full width, Chinese numerals or zero-width characters inside."""
    cut_limit = len(number) - (1 if number[-1] in "Xx" else 0)
    cuts = sorted(draw(st.sets(st.integers(1, cut_limit - 1), max_size=4)))
    groups = [number[start:end] for start, end in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    text = draw(SEPARATORS).join(groups)
    style = draw(st.sampled_from(["plain", "full_width", "zero_width"] + (["chinese"] if chinese else [])))
    if style == "full_width":
        text = text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    elif style == "chinese":
        text = text.translate(str.maketrans("0123456789", "零一二三四五六七八九"))
    elif style == "zero_width":
        text = "\u200b".join(text)
    return text


def digits_left(text: str) -> list[str]:
    return re.findall(rf"[0-9０-９{CHINESE_NUMERALS}]", text)


def assert_masked(text: str) -> None:
    for masked in (prepare_text(text), mask_as_written(text), mask_personal_data(text)):
        assert not digits_left(masked), (text, masked)
        assert any(placeholder in masked for placeholder in PLACEHOLDERS.values()), (text, masked)


@FAST
@given(st.text())
@example("\x00\u200b\ufeff")
@example("_x000D_" * 3)
@example("1" * 5000)
@example("1 " * 3000)
def test_preparation_never_raises_and_masking_is_idempotent(text: str) -> None:
    prepared = prepare_text(text)
    assert mask_personal_data(prepared) == prepared
    assert mask_personal_data(mask_personal_data(text)) == mask_personal_data(text)
    assert mask_as_written(mask_as_written(text)) == mask_as_written(text)
    if is_blank(text):
        assert not prepared and not normalize_text(text)


@FAST
@given(TRICKY)
@example("138 1234 5678 139 1234 5678")
@example("a@b.cn 1381234 5678@x.com")
def test_masking_is_idempotent_on_digit_and_mail_soup(text: str) -> None:
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once
    assert mask_as_written(mask_as_written(text)) == mask_as_written(text)


@FAST
@given(CONTEXT, st.one_of(MOBILE, LANDLINE), CONTEXT, st.data())
def test_every_phone_variant_is_masked(before: str, number: str, after: str, data: st.DataObject) -> None:
    text = before + data.draw(written(number, chinese=True)) + after
    assert_masked(text)


@FAST
@given(CONTEXT, st.one_of(ID_CARD, BANK_CARDS), CONTEXT, st.data())
def test_every_id_and_bank_card_variant_is_masked(before: str, number: str, after: str, data: st.DataObject) -> None:
    text = before + data.draw(written(number)) + after
    assert_masked(text)


@FAST
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12).filter(
        lambda local: local[0].isalnum()
    ),
    st.sampled_from(["example.com", "qq.com", "mail.gov.cn", "例子.中国", "公司.公司"]),
    st.sampled_from(["@", " @ ", "＠", "@ "]),
    CONTEXT,
)
def test_every_mail_variant_is_masked(local: str, domain: str, at: str, before: str) -> None:
    address = f"{local}{at}{domain}"
    masked = prepare_text(f"{before}，邮箱 {address} 谢谢")
    assert "【邮箱】" in masked and domain.split(".")[0] not in masked.replace("【邮箱】", ""), masked


def test_the_reported_misses_are_masked() -> None:
    for text, placeholder in [
        ("138.1234.5678", "【电话】"),
        ("110101 19900307 7777", "【身份证号】"),
        ("zhangsan @ example.com", "【邮箱】"),
        ("张三@例子.中国", "【邮箱】"),
        ("电话一三八一二三四五六七八", "【电话】"),
        ("电话幺三八 幺二三四 五六七八", "【电话】"),
    ]:
        assert placeholder in prepare_text(text) and placeholder in mask_as_written(text), text


def test_amounts_dates_and_short_numbers_stay() -> None:
    for text in ("2023年5月12日交了12000元", "第3期 2023.05.06", "一九九八年", "共计 1,234,567 元", "楼号 12-3-401"):
        assert mask_personal_data(text) == text


@FAST
@given(st.text())
def test_spreadsheet_cells_never_start_a_formula(value: str) -> None:
    safe = spreadsheet_safe(value)
    assert isinstance(safe, str)
    # .xlsx cannot hold C0 control characters other than tab, newline and carriage return: they go.
    kept = "".join(char for char in value if char in "\t\n\r" or not 0 <= ord(char) < 0x20)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r")) and safe.endswith(kept)
    assert not any(ord(char) < 0x20 and char not in "\t\n\r" for char in safe)


@FAST
@given(st.text(alphabet="0123456789Xx", min_size=1, max_size=_MIN_NUMBER_DIGITS - 1))
def test_runs_shorter_than_the_shortest_number_kind_can_be_skipped(digits: str) -> None:
    """`_digit_spans` skips digit runs shorter than `_MIN_NUMBER_DIGITS` characters: no kind may match one."""
    assert not any(pattern.fullmatch(digits) for _, pattern in _NUMBER_KINDS)


def test_the_shortest_numbers_of_each_kind_are_still_masked() -> None:
    shortest = {"phone": "0731888866", "id_card": "110101900307777", "bank_card": "6222020200112233"}
    for kind, number in shortest.items():
        assert len(number) >= _MIN_NUMBER_DIGITS
        assert prepare_text(f"号码{number}。") == f"号码{PLACEHOLDERS[kind]}。", kind


# Full-width forms and the characters NFKC composes or decomposes around them.
NFKC_SOUP = st.text(
    alphabet="，。！？：；（）＂＇＠１２ＡＢａｂ\u3000\uff5e\uff5f\uff61 Aa1"
    "\u0301\u0308\u1100\u1161\u11a8가①㎏ﬁ中文\u00a0\u200b",
    max_size=40,
)


@FAST
@given(st.one_of(st.text(), NFKC_SOUP))
@example("Ａ\u0301，１２\u3000")  # a full-width letter before a combining accent composes after folding
def test_the_fast_nfkc_is_nfkc(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


@FAST
@given(st.one_of(st.text(), NFKC_SOUP))
@example("Ａ\u0301，１２\u3000")
@example("电话１３９\u200b１２３４，😡")
def test_masking_folds_each_character_on_its_own_whatever_path_it_takes(text: str) -> None:
    # The positions masking reports are those of the text as written: every character folds on its own.
    pieces = [_fold_char(char) for char in text]
    folded, origin = _fold(text)
    assert folded == "".join(pieces)
    expected = [index for index, piece in enumerate(pieces) for _ in piece]
    assert (origin if origin is not None else list(range(len(text)))) == expected


def test_other_white_space_is_exactly_the_non_space_isspace_characters() -> None:
    for code in range(0x110000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        assert (_OTHER_SPACE.fullmatch(char) is not None) == (char.isspace() and char != " "), hex(code)
