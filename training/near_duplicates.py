"""Near-duplicate detection for the hand-written corpus.

The corpus must be written petition by petition, never expanded from templates.
Two cheap signals catch template expansion: a long shared run of characters and
a high character-3-gram Jaccard similarity.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

SHARED_RUN = 40
MAX_JACCARD = 0.6


@dataclass(frozen=True)
class NearDuplicate:
    first: int
    second: int
    reason: str


def _shingles(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(max(len(text) - size + 1, 1))}


def shared_runs(texts: Sequence[str], run: int = SHARED_RUN) -> list[NearDuplicate]:
    """Pairs of texts sharing `run` identical consecutive characters."""
    owner: dict[str, int] = {}
    found: set[tuple[int, int]] = set()
    for index, text in enumerate(texts):
        for window in {text[i : i + run] for i in range(len(text) - run + 1)}:
            other = owner.setdefault(window, index)
            if other != index:
                found.add((other, index))
    return [NearDuplicate(a, b, f"shared run of {run} characters") for a, b in sorted(found)]


def similar_pairs(texts: Sequence[str], threshold: float = MAX_JACCARD) -> list[NearDuplicate]:
    """Pairs whose character-3-gram Jaccard similarity exceeds `threshold`."""
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for index, text in enumerate(texts):
        for gram in _shingles(text, 3):
            rows.append(index)
            cols.append(vocabulary.setdefault(gram, len(vocabulary)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(texts), len(vocabulary)),
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    jaccard = overlap.data / union
    hits = jaccard > threshold
    return [
        NearDuplicate(int(a), int(b), f"3-gram Jaccard {j:.2f}")
        for a, b, j in zip(overlap.row[hits], overlap.col[hits], jaccard[hits], strict=True)
    ]


def near_duplicates(texts: Sequence[str]) -> list[NearDuplicate]:
    return shared_runs(texts) + similar_pairs(texts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.near_duplicates",
        description="Pairs of petitions in JSON Lines files that look template-expanded "
        f"(a shared run of {SHARED_RUN} characters or character-3-gram Jaccard above {MAX_JACCARD}).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="JSON Lines with a `text` field per row")
    paths = parser.parse_args(argv).files
    texts: list[str] = []
    origin: list[str] = []
    for path in paths:
        if not path.is_file():
            parser.error(f"no such file: {path}")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                texts.append(str(json.loads(line)["text"]))
            except (ValueError, KeyError, TypeError):
                parser.error(f"{path}:{number}: not a JSON object with a `text` field")
            origin.append(f"{path}:{number}")
    problems = near_duplicates(texts)
    for problem in problems:
        print(f"{origin[problem.first]} ~ {origin[problem.second]}: {problem.reason}")
    print(f"{len(texts)} texts, {len(problems)} near-duplicate pairs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
