"""Which of a prediction's strongest terms are worth showing a person: the one filter.

Character n-grams and fillers carry weight in the model but make poor "key words": 店办 (the end
of 商店 and the start of 办理), 以后, 希望, 晚上, or 银行 inside the 【银行卡号】 placeholder. A term
is shown only if it is a whole word of the document (or two adjacent words) outside masking
placeholders, at least two characters long, and not a stop word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from model.text import PLACEHOLDER_PATTERN, PLACEHOLDERS, prepare_text

_STOP_WORDS = """
以后 以前 之后 之前 后来 现在 目前 当时 今天 昨天 明天 今年 去年 明年 上午 下午 晚上 早上
中午 夜里 时候 时间 一直 已经 还是 但是 而且 因为 所以 如果 虽然 然后 并且 或者 就是 还有
没有 不是 可以 不能 不会 能够 应该 希望 要求 请求 恳请 麻烦 谢谢 感谢 您好 你好 我们 你们
他们 自己 本人 大家 这个 那个 这些 那些 这样 那样 什么 怎么 如何 为什么 多次 很多 非常 特别
一些 一下 一个 问题 情况 反映 相关 有关 进行 处理 解决 了解 知道 联系 电话 号码 方面 表示
认为 导致 造成 发生 出现 至今 仍然 依然 几个 每天 经常 甚至 而已 只好 却是 为了 以及 其中 部分
大部分 直接 别人 实在 感觉 必须 清楚 发现 得到 为何 请问 下面 通过 有人 不敢 那种 效果 回答 何时
能否 是否 只是 只能 一样 一般 不过 然而 于是 总是 还要 终于 居然 根本 到底 一定 可能 需要
尤其 简直 成为 一种 我家
"""
STOP_TERMS: frozenset[str] = frozenset(_STOP_WORDS.split())
# Single characters that only glue words together: a "word pair" with one of them (与A, 的领导, 司机的)
# reads as a fragment, not a key word. Single ASCII letters and digits (the A of A市) likewise.
GLUE = frozenset("的了在是和与及或也都就还又被把给对向从让跟并而但能会要吗呢吧啊呀着过个这那其该此我你他她它")

Segment = Callable[[str], list[str]]
# The first character of every masking placeholder: a text without any of them holds no placeholder.
_PLACEHOLDER_OPENINGS = frozenset(placeholder[0] for placeholder in PLACEHOLDERS.values())


def _pairable(token: str) -> bool:
    return not (len(token) == 1 and (token in GLUE or token.isascii())) and token not in STOP_TERMS


@dataclass(frozen=True)
class DocumentWords:
    """A document's whole words and its adjacent word pairs where neither is glue or a stop word.

    Why pairs are kept as tuples and checked by splitting the term: building every pair's string (a
    ~500-character petition has ~400) cost more than the rest of the key-word choice, which asks about
    fewer than twenty terms.
    """

    tokens: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, tokens: list[str]) -> DocumentWords:
        return cls(frozenset(tokens), frozenset(pairwise(tokens)))

    def __contains__(self, term: object) -> bool:
        if not isinstance(term, str):
            return False
        if term in self.tokens:
            return True
        splits = ((term[:cut], term[cut:]) for cut in range(1, len(term)))
        return any(pair in self.pairs and _pairable(pair[0]) and _pairable(pair[1]) for pair in splits)


def document_words(text: str, segment: Segment) -> DocumentWords:
    """Whole words of `text` as the model prepares it, and adjacent pairs of them, outside placeholders."""
    return DocumentWords.of(segment(PLACEHOLDER_PATTERN.sub(" ", prepare_text(text))))


def tokens_and_words(prepared: str, segment: Segment) -> tuple[list[str], DocumentWords]:
    """The model's tokens of already prepared text and its `document_words`, from one segmentation.

    Why: segmenting twice (once for the features, once for this filter) doubled a prediction's cost.
    Placeholders start and end with 【】, where jieba and rjieba both cut (they segment runs of
    Han/alphanumeric characters independently), so the pieces between placeholders and the
    placeholders segmented apart give the tokens of the whole text; the words skip the placeholders.
    """
    if not any(opening in prepared for opening in _PLACEHOLDER_OPENINGS):  # most petitions: words are tokens
        whole = segment(prepared)
        return whole, DocumentWords.of(whole)
    tokens: list[str] = []
    outside: list[str] = []
    position = 0
    for match in PLACEHOLDER_PATTERN.finditer(prepared):
        piece = segment(prepared[position : match.start()])
        tokens += piece
        outside += piece
        tokens += segment(match.group())
        position = match.end()
    piece = segment(prepared[position:])
    return tokens + piece, DocumentWords.of(outside + piece)


def explainable(term: str, words: DocumentWords | None) -> bool:
    """Worth showing: two characters or more, not a token marker or a stop word, and (when the document's
    words are known) a whole word or word pair of the document; a word bigram term needs both words."""
    if len(term) < 2 or term.startswith("<") or term in STOP_TERMS:
        return False
    if words is None:
        return True
    if " " not in term:  # one word (most terms): a whole word or word pair of the document
        return term in words
    return all(part in words and part not in STOP_TERMS for part in term.split(" ")) or term in words
