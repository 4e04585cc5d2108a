"""Synthetic petitions for the similarity and hot-topic benchmarks (never for quality claims).

Background rows join 1-4 sentences drawn at random (seeded) from different corpus petitions
(data/petitions.jsonl); topic rows add one sentence naming a made-up target (an estate, a gym, a
platform...) with one of its complaints, so that hot topics exist at a known size. Nothing from
outside the project is used.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from training.dataset import CORPUS_PATH

SENTENCE_END = re.compile(r"(?<=[。！？!?；])")
NAME_CHARS = "金银华锦绣翠湖湾星辰力动惠民东风新城阳光海棠紫荆蓝天碧桂滨江明珠恒远鼎盛龙腾凤鸣春秋雅居天悦云峰"
TARGETS = (
    ("花园", "开发商逾期交房，至今没有交付，请督促尽快交房。"),
    ("华庭", "小区物业乱收停车费，电梯经常停运。"),
    ("健身", "门店突然闭店，会员卡里的钱退不了，老板失联。"),
    ("教育", "培训机构停课不退费，家长们的学费要不回来。"),
    ("金服", "理财平台逾期兑付，本金无法提现，涉及很多投资人。"),
    ("地铁站工地", "夜间施工噪音扰民，凌晨还在打桩。"),
)


@dataclass(frozen=True)
class SyntheticPetition:
    id: str
    text: str
    topic: str  # empty for background rows


def corpus_sentences() -> list[str]:
    texts = [json.loads(line)["text"] for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines()]
    return [s.strip() for text in texts for s in SENTENCE_END.split(text) if len(s.strip()) >= 6]


def _reworded(rng: random.Random, sentence: str) -> str:
    """The sentence with about one character in six replaced, so rows do not repeat corpus sentences verbatim."""
    return "".join(rng.choice(NAME_CHARS) if rng.random() < 1 / 6 else char for char in sentence)


def synthetic_petitions(rows: int, topics: int = 0, topic_size: int = 20, seed: int = 0) -> Iterator[SyntheticPetition]:
    """`rows` petitions; the first `topics * topic_size` of them (shuffled in) belong to made-up topics."""
    rng = random.Random(seed)
    # Eight reworded variants of every corpus sentence, made once: rows draw from these.
    sentences = [_reworded(rng, sentence) for sentence in corpus_sentences() for _ in range(8)]
    names = []
    for index in range(topics):
        suffix, complaint = TARGETS[index % len(TARGETS)]
        names.append((f"{''.join(rng.sample(NAME_CHARS, 3))}{suffix}", complaint))
    labels = [f"T{index:05d}" for index in range(topics) for _ in range(topic_size)][:rows]
    labels += [""] * (rows - len(labels))
    rng.shuffle(labels)
    for index, topic in enumerate(labels):
        body = "".join(rng.sample(sentences, rng.randint(1, 4)))
        if topic:
            name, complaint = names[int(topic[1:])]
            body = f"{name}{complaint}{body}" if rng.random() < 0.5 else f"{body}我要反映{name}的问题，{complaint}"
        yield SyntheticPetition(f"R{index:07d}", body, topic)
