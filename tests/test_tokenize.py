import os
import subprocess
import sys
from pathlib import Path

import pytest

from model.tokenize import JiebaTokenizer, postprocess

PETITION_TERMS = ["预付卡", "烂尾楼", "交房", "非法集资", "校外培训", "维修基金", "物业费", "培训费", "不动产证"]


@pytest.mark.parametrize("term", PETITION_TERMS)
def test_user_dictionary_keeps_petition_terms_whole(term: str) -> None:
    tokens = JiebaTokenizer()(f"我们反映的是{term}的问题，拖了很久")
    assert term in tokens


def test_digits_become_one_number_token_and_punctuation_is_dropped() -> None:
    tokens = JiebaTokenizer()("交了12000元！！")
    assert "12000" not in tokens and "<数>" in tokens
    assert "！" not in tokens


def test_jieba_cache_goes_to_the_configured_directory(tmp_path: Path) -> None:
    code = "from model.tokenize import JiebaTokenizer; JiebaTokenizer()('测试分词')"
    env = {**os.environ, "TRIAGE_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert (tmp_path / "jieba" / "jieba.cache").is_file()


def test_postprocess_keeps_exactly_the_tokens_with_an_alphanumeric_character() -> None:
    """The regex shortcut must agree with `str.isalnum()` on every character (planes 0-2 cover the text)."""
    characters = [chr(code) for code in range(0x30000) if not 0xD800 <= code <= 0xDFFF]
    tokens = [f"{char}。" for char in characters]  # never isalnum() as a whole: the regex decides
    kept = set(postprocess(tokens))
    assert kept == {token for token, char in zip(tokens, characters, strict=True) if char.isalnum()}
    assert postprocess(["3.5", "，", "A-3", "2023", "___", "  "]) == ["3.5", "A-3", "<数>"]
