"""jieba word segmentation, wrapped so a fitted vectorizer can be persisted and reloaded safely."""

from __future__ import annotations

import logging
import os
import threading
from importlib import resources
from pathlib import Path

import jieba

_NUMBER_TOKEN = "<数>"
_lock = threading.Lock()
_shared: jieba.Tokenizer | None = None


def cache_dir() -> Path:
    """jieba's prefix-dict cache lives in a directory the project owns, never a shared /tmp."""
    configured = os.environ.get("TRIAGE_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "petition-triage"
    path = base / "jieba"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_dictionary() -> Path:
    return Path(str(resources.files("model") / "data" / "petition_dict.txt"))


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


def _keep(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


class JiebaTokenizer:
    """Callable tokenizer for scikit-learn vectorizers.

    Holds no jieba state of its own (the process-wide segmenter is looked up lazily), so
    persisting a fitted vectorizer stores only this class name, not jieba's dictionary.
    """

    def __init__(self, hmm: bool = True) -> None:
        self.hmm = hmm

    def __call__(self, text: str) -> list[str]:
        tokens = shared_segmenter().lcut(text, HMM=self.hmm)
        return [_NUMBER_TOKEN if token.isdigit() else token for token in tokens if _keep(token)]

    def __repr__(self) -> str:
        return f"JiebaTokenizer(hmm={self.hmm})"
