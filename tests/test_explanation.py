"""The one filter for shown key words (model/explanation.py), without a model."""

from __future__ import annotations

from itertools import pairwise

from model.explanation import GLUE, STOP_TERMS, DocumentWords, document_words, explainable
from model.tokenize import JiebaTokenizer
from training.dataset import load_corpus


def test_only_whole_words_outside_placeholders_and_no_fillers() -> None:
    words = document_words("我的银行卡号6222020200112233445被冻结，晚上以后希望商店办理退款", JiebaTokenizer())
    for term in ("商店", "退款", "冻结", "商店办理"):
        assert explainable(term, words), term
    for term in ("店办", "银行", "以后", "希望", "晚上", "退", "<数>"):
        assert not explainable(term, words), term
    assert {"以后", "希望", "晚上"} <= STOP_TERMS


def test_a_word_outside_the_placeholder_still_counts() -> None:
    words = document_words("到银行办理转账时卡号13812345678被盗用", JiebaTokenizer())
    assert explainable("银行", words)


def test_word_pairs_glued_by_a_function_character_or_a_letter_are_not_key_words() -> None:
    words = document_words("我和A市的领导反映过，物业费与A区标准不符，司机的态度也差", JiebaTokenizer())
    for term in ("的领导", "与A", "司机的", "A市"):
        assert not explainable(term, words), term
    for term in ("领导", "物业费", "态度"):
        assert explainable(term, words), term


def test_document_words_holds_exactly_the_words_and_the_unglued_adjacent_pairs() -> None:
    """`DocumentWords` checks a term by its splits instead of storing every pair's string: the same set."""
    segment = JiebaTokenizer()
    for text in load_corpus().subset("test").texts[:150]:
        tokens = segment(text)
        words = DocumentWords.of(tokens)
        expected = set(tokens) | {
            first + second
            for first, second in pairwise(tokens)
            if all(not (len(t) == 1 and (t in GLUE or t.isascii())) and t not in STOP_TERMS for t in (first, second))
        }
        candidates = expected | {text[i : i + n] for n in (2, 3, 4) for i in range(0, len(text) - n, 7)}
        assert {term for term in candidates if term in words} == expected
