"""Make sure a model exists before the service starts: a fresh checkout trains the default one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.registry import Registry
from training.dataset import load_corpus
from training.train import train_and_register


def ensure_model(registry_root: Path, echo: Callable[[str], None] = print) -> str:
    """Return the current version, training the default model from data/ when the registry is empty."""
    registry = Registry(registry_root)
    current = registry.current()
    if current is not None:
        return current
    echo(
        f"模型库 {registry_root} 为空，正在用 data/ 训练默认模型（约 1-2 分钟）… / "
        "no model in the registry: training the default model from data/ (about 1-2 minutes)"
    )
    result = train_and_register(load_corpus(), registry)
    echo(f"默认模型已训练 / default model trained: {result.version}")
    return result.version
