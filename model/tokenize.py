"""Word segmentation: jieba (the reference) or rjieba (jieba-rs, the same algorithm in Rust).

Both load the same dictionary plus the project's user dictionary, and their output goes
through the same post-processing (drop tokens without letters or digits, digits become one
number token), so a model sees the same kind of tokens from either. They still differ on a
few per cent of documents, so the choice is part of a fitted model: a model trained with
one segmenter refuses to run with the other (`SegmenterMismatchError`).

The tokenizer objects hold no segmenter state of their own (the process-wide instance is
looked up lazily), so persisting a fitted vectorizer stores only a class name and a setting.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jieba

_NUMBER_TOKEN = "<数>"
_lock = threading.Lock()
_shared: jieba.Tokenizer | None = None


class Segmenter(StrEnum):
    """jieba is the reference; rjieba (jieba-rs) is the same algorithm and dictionary in Rust."""

    JIEBA = "jieba"
    RJIEBA = "rjieba"


# The segmenter new models are trained with. rjieba: on the real-text dev set a model trained with it
# scored as well as one trained with jieba on the same corpus (domain accuracy 0.951 vs 0.950, department
# top-1 0.840 each; README "Measured"), and it segments about 10x faster.
DEFAULT_SEGMENTER = Segmenter.RJIEBA


class SegmenterError(RuntimeError):
    """A segmenter cannot be used here (not installed) or is not the one a model was trained with."""


class SegmenterMismatchError(SegmenterError):
    def __init__(self, trained: str, requested: str) -> None:
        super().__init__(
            f"模型用 {trained} 分词训练，不能用 {requested} 运行；请用 {trained} 或重新训练模型 / "
            f"the model was trained with the {trained} segmenter and refuses to run with {requested}; "
            f"use {trained} or retrain the model"
        )
        self.trained = trained
        self.requested = requested


def parse_segmenter(value: str) -> Segmenter:
    """The setting as an enum, with a bilingual message listing the choices when it is unknown."""
    try:
        return Segmenter(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in Segmenter)
        raise SegmenterError(f"未知的分词器 / unknown segmenter {value!r}; choose one of: {choices}") from None


def check_segmenter(trained: str, requested: str | None) -> None:
    """Refuse to run a model with a segmenter other than the one it was trained with."""
    if requested is not None and parse_segmenter(requested) != parse_segmenter(trained):
        raise SegmenterMismatchError(str(trained), str(requested))


def cache_dir() -> Path:
    """jieba's prefix-dict cache lives in a directory the project owns, never a shared /tmp."""
    configured = os.environ.get("TRIAGE_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "petition-triage"
    path = base / "jieba"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_dictionary() -> Path:
    return Path(str(resources.files("model") / "data" / "petition_dict.txt"))


@dataclass(frozen=True)
class UserWord:
    word: str
    frequency: int | None
    tag: str | None


def user_words() -> list[UserWord]:
    """The user dictionary's entries, parsed the way jieba's `load_userdict` reads them."""
    words: list[UserWord] = []
    for line in user_dictionary().read_text(encoding="utf-8").splitlines():
        parts = line.strip().split()
        if not parts:
            continue
        frequency = int(parts[1]) if len(parts) > 1 else None
        words.append(UserWord(parts[0], frequency, parts[2] if len(parts) > 2 else None))
    return words


def shared_segmenter() -> jieba.Tokenizer:
    """One initialised jieba instance per process, with the petition user dictionary loaded."""
    global _shared
    with _lock:
        if _shared is None:
            jieba.setLogLevel(logging.WARNING)
            segmenter = jieba.Tokenizer()
            segmenter.tmp_dir = str(cache_dir())
            segmenter.initialize()
            segmenter.load_userdict(str(user_dictionary()))
            _shared = segmenter
    return _shared


@lru_cache(maxsize=1)
def _rjieba() -> Any:
    """One rjieba instance per process with the same user dictionary (rjieba ships jieba's dictionary)."""
    try:
        import rjieba
    except ImportError as error:
        raise SegmenterError(
            "未安装 rjieba 分词器，请安装 rjieba 或改用 jieba / the rjieba segmenter is not installed: "
            "`pip install rjieba`, or use jieba"
        ) from error
    segmenter = rjieba.Jieba()
    for entry in user_words():
        segmenter.add_word(entry.word, entry.frequency, entry.tag)
    return segmenter


def raw_segment(segmenter: Segmenter, hmm: bool = True) -> Callable[[str], list[str]]:
    """The bare segmentation function of `segmenter` (no post-processing), initialised."""
    if segmenter == Segmenter.RJIEBA:
        cut = _rjieba().cut
        return lambda text: cut(text, hmm)
    lcut = shared_segmenter().lcut
    return lambda text: lcut(text, HMM=hmm)


# One alphanumeric character: `re`'s Unicode \w is exactly `str.isalnum()` plus "_".
_HAS_ALNUM = re.compile(r"[^\W_]")


def postprocess(tokens: list[str]) -> list[str]:
    """Drop punctuation and whitespace tokens; every run of digits becomes one number token.

    A token is kept when it holds an alphanumeric character. `isalnum()` first settles almost every token
    in one C call; the rest (punctuation, "3.5", "A-3") go to one regex search, not a Python loop.
    """
    keep = _HAS_ALNUM.search
    return [_NUMBER_TOKEN if token.isdigit() else token for token in tokens if token.isalnum() or keep(token)]


class PetitionSegmenter:
    """Callable tokenizer: segmentation by the chosen segmenter, then the shared post-processing."""

    def __init__(self, segmenter: Segmenter | str = DEFAULT_SEGMENTER, hmm: bool = True) -> None:
        self.segmenter = parse_segmenter(str(segmenter))
        self.hmm = hmm
        self._cut = raw_segment(self.segmenter, hmm)

    def __call__(self, text: str) -> list[str]:
        return postprocess(self._cut(text))

    def __repr__(self) -> str:
        return f"PetitionSegmenter(segmenter={self.segmenter.value!r}, hmm={self.hmm})"


class JiebaTokenizer(PetitionSegmenter):
    """The reference tokenizer: jieba with the petition user dictionary."""

    def __init__(self, hmm: bool = True) -> None:
        super().__init__(Segmenter.JIEBA, hmm)
