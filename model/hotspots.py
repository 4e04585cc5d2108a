"""Hot topics: clusters of petitions about one place, project, merchant or platform, ranked by heat.

Petitions are linked when their character-bigram cosine (model/similarity.py weights) is at least
`threshold` and one is among the other's `neighbours` nearest; clusters are the connected groups of
at least `min_size` petitions. Bigrams found in more than `common_share` of the petitions are left
out of the neighbour search: they are the filler every petition shares, and they would make the
search quadratic.

Heat (the ranking): every distinct petitioner counts once, weighted by how recent their latest
petition in the cluster is, halving every `half_life_days`:

    heat = sum over distinct petitioners p of 2 ** (-(reference - latest_p) / half_life_days)

`reference` is the newest petition of the input (or the caller's "now"); without petitioner
identities each petition is its own petitioner, without times every weight is 1 (heat = size).

The label is the named target (the longest phrase most members share that looks like a name:
an estate, a company, a platform, a road) and the main complaint (from a short list of the
complaints offices count, else the next most shared phrase), e.g. "锦绣华庭 逾期交房".
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from model.office_time import CHINA_STANDARD_TIME
from model.similarity import TERM_BITS, batch_terms, phrase_terms

# Phrases that end like the name of a place, project, merchant or platform.
TARGET_SUFFIX = re.compile(
    r"(花园|华庭|华府|小区|家园|公馆|山庄|新城|广场|大厦|公寓|苑|府|湾|城|园|庭|"
    r"公司|置业|地产|物业|集团|健身|教育|培训|学校|学院|幼儿园|平台|金服|金融|理财|银行|医院|诊所|"
    r"超市|商场|市场|酒店|餐厅|工地|地铁站|车站|路|街|村|厂|店|馆|中心|APP|app)$"
)
# The complaints petition offices count, most specific first.
COMPLAINTS: tuple[str, ...] = (
    "逾期交房",
    "延期交房",
    "烂尾",
    "办证难",
    "质量问题",
    "物业费",
    "停车费",
    "电梯",
    "维修基金",
    "停课",
    "闭店",
    "跑路",
    "退费",
    "退款",
    "兑付",
    "提现",
    "非法集资",
    "拖欠工资",
    "欠薪",
    "噪音",
    "扰民",
    "污染",
    "拆迁",
    "补偿",
    "押金",
    "违建",
)
MAX_PHRASE = 8
LABEL_SAMPLE = 30  # members read for the label of a large cluster (the newest)
ANCHOR_FLOOR = 50  # a name this widely shared can still be a target in a small input


@dataclass(frozen=True)
class HotspotInput:
    """One petition offered to clustering: `text` already prepared (normalised and masked)."""

    key: str
    text: str
    received_at: datetime | None = None
    petitioner: str | None = None
    domain: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class Hotspot:
    rank: int
    label: str
    target: str
    complaint: str
    heat: float
    size: int
    petitioners: int
    first: datetime | None
    last: datetime | None
    top_terms: tuple[str, ...]
    domains: dict[str, int]
    departments: dict[str, int]
    members: tuple[str, ...]  # keys, oldest first
    indices: tuple[int, ...] = field(repr=False, default=())  # positions in the input


@dataclass(frozen=True)
class ClusterOptions:
    """Defaults chosen on tests/data/similar_petitions.jsonl mixed into the corpus (benchmarks/hotspots.py)."""

    threshold: float = 0.25  # cosine for a text link
    neighbours: int = 10  # links kept per petition
    mutual: bool = True  # a text link needs each to be among the other's neighbours
    shared_neighbours: int = 1  # ... and this many neighbours in common (0: no such check)
    anchors: bool = True  # also link petitions naming the same target
    anchor_share: float = 0.02  # a name in more than this share of the input is too general
    min_size: int = 3
    common_share: float = 0.003  # bigrams in more of the input are left out of the neighbour search
    common_floor: int = 100
    half_life_days: float = 14.0
    chunk_rows: int = 1000


def mean_idf(idf: NDArray[np.float64], phrase: str) -> float:
    """How specific a phrase is: the mean idf of its character bigrams."""
    bigrams = phrase_terms(phrase)
    return float(np.mean(idf[bigrams])) if bigrams else 0.0


def _weights(texts: Sequence[str], options: ClusterOptions) -> tuple[sparse.csr_matrix, NDArray[np.float64]]:
    """Rows of idf / norm over the informative bigrams (so row dot products are the index's cosine)."""
    documents, terms = batch_terms(texts)
    count = len(texts)
    df = np.bincount(terms, minlength=1 << TERM_BITS)
    idf = np.log((count + 1) / (df + 1.0)) + 1.0
    norms = np.sqrt(np.bincount(documents, weights=idf[terms] ** 2, minlength=count))
    norms[norms == 0] = 1.0
    limit = max(options.common_floor, options.common_share * count)
    informative = (df <= limit) & (df >= 2)
    columns = np.flatnonzero(informative)
    remap = np.full(len(df), -1, dtype=np.int64)
    remap[columns] = np.arange(len(columns))
    keep = informative[terms]
    values = (idf[terms] / norms[documents])[keep].astype(np.float32)
    matrix = sparse.csr_matrix((values, (documents[keep], remap[terms[keep]])), shape=(count, max(len(columns), 1)))
    return matrix, idf


def _neighbour_edges(
    matrix: sparse.csr_matrix, options: ClusterOptions, progress: Callable[[int], object]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(i, j) for each j among i's `neighbours` most similar rows at or above the threshold."""
    transposed = matrix.T.tocsr()
    sources: list[NDArray[np.int64]] = []
    targets: list[NDArray[np.int64]] = []
    for start in range(0, matrix.shape[0], options.chunk_rows):
        block = (matrix[start : start + options.chunk_rows] @ transposed).tocsr()
        for row in range(block.shape[0]):
            begin, end = block.indptr[row], block.indptr[row + 1]
            columns, values = block.indices[begin:end], block.data[begin:end]
            good = (values >= options.threshold) & (columns != start + row)
            columns, values = columns[good], values[good]
            if len(columns) > options.neighbours:
                columns = columns[np.argpartition(-values, options.neighbours - 1)[: options.neighbours]]
            sources.append(np.full(len(columns), start + row, dtype=np.int64))
            targets.append(columns.astype(np.int64))
        progress(block.shape[0])
    if not sources:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(sources), np.concatenate(targets)


_WORD_RUN = re.compile(r"[0-9A-Za-z\u4e00-\u9fff]+")
_SUFFIX_AT = re.compile(TARGET_SUFFIX.pattern.rstrip("$"))
# A name does not start with a pronoun, a particle or a placeholder.
_NOT_A_NAME_START = set("我你他她它们这那该本此的了在是和与及对把被从到给向个一每各某其去来说有要就都也还又被让请")
_PLACEHOLDER = re.compile(r"某|[A-Z][0-9]*[市区县镇村]|^[0-9]+")


def _anchor_candidates(text: str) -> set[str]:
    """Phrases of 3..MAX_PHRASE characters that end in a name suffix (花园, 公司, 平台, 路, ...)."""
    found: set[str] = set()
    for run in _WORD_RUN.findall(text):
        for match in _SUFFIX_AT.finditer(run):
            end = match.end()
            for size in range(3, MAX_PHRASE + 1):
                if end - size < 0:
                    break
                phrase = run[end - size : end]
                if phrase[0] in _NOT_A_NAME_START or _PLACEHOLDER.search(phrase):
                    continue
                found.add(phrase)
    return found


def anchors(
    texts: Sequence[str], min_size: int, max_share: float, specificity: Callable[[str], float]
) -> list[str | None]:
    """Each text's named target shared by at least `min_size` texts (its most specific one), or None.

    Of the candidates ending at the same place, the longest still shared almost as widely as its
    one-character-shorter part wins ("锦绣华庭", not "绣华庭" nor "是锦绣华庭"). Names in more than
    `max_share` of the texts are too general to be a target (物业公司, 有限公司).
    """
    candidates = [_anchor_candidates(text) for text in texts]
    counts: Counter[str] = Counter(phrase for found in candidates for phrase in found)
    ceiling = max(ANCHOR_FLOOR, max_share * len(texts))
    chosen: list[str | None] = []
    for found in candidates:
        best: str | None = None
        for phrase in found:
            count = counts[phrase]
            if count < min_size or count > ceiling:
                continue
            longer = [other for other in found if len(other) == len(phrase) + 1 and other.endswith(phrase)]
            if any(counts[other] >= 0.8 * count for other in longer):
                continue  # a longer name is shared as widely
            if best is None or (specificity(phrase), count) > (specificity(best), counts[best]):
                best = phrase
        chosen.append(best)
    return chosen


@dataclass(frozen=True)
class Clustering:
    groups: list[list[int]]  # input positions, largest group first
    anchors: list[str | None]  # each input's named target, if it has one
    idf: NDArray[np.float64]  # bigram idf over the input


def cluster(
    texts: Sequence[str], options: ClusterOptions | None = None, progress: Callable[[int], object] = lambda _: None
) -> Clustering:
    """Groups of at least `min_size` inputs linked by similar text or by one shared named target."""
    options = options or ClusterOptions()
    matrix, idf = _weights(texts, options)
    sources, targets = _neighbour_edges(matrix, options, progress)
    size = len(texts)
    graph = sparse.csr_matrix((np.ones(len(sources)), (sources, targets)), shape=(size, size))
    if options.mutual:
        graph = graph.multiply(graph.T).tocsr()
    if options.shared_neighbours:
        # Keep a text link only when the two also share a neighbour: a chain of petitions that each
        # resemble the next (one sentence in common) is cut; a topic, where many resemble many, is not.
        shared = graph @ graph
        graph = graph.multiply(shared >= options.shared_neighbours).tocsr()
    named: list[str | None] = [None] * size
    if options.anchors:
        specificity = functools.cache(lambda phrase: mean_idf(idf, phrase))
        named = anchors(texts, options.min_size, options.anchor_share, specificity)
        first: dict[str, int] = {}
        pairs = [(position, first.setdefault(name, position)) for position, name in enumerate(named) if name]
        linked = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        graph = graph + sparse.csr_matrix((np.ones(len(linked)), (linked[:, 0], linked[:, 1])), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for position, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(position)
    found = [members for members in groups.values() if len(members) >= options.min_size]
    return Clustering(sorted(found, key=len, reverse=True), named, idf)


def _pieces(text: str, frequent: set[str]) -> list[str]:
    """The stretches of the text's word runs in which every character bigram is a frequent one."""
    pieces: list[str] = []
    for run in _WORD_RUN.findall(text):
        start = 0
        for end in range(1, len(run)):
            if run[end - 1 : end + 1] not in frequent:
                pieces.append(run[start:end])
                start = end
        pieces.append(run[start:])
    return [piece for piece in pieces if len(piece) >= 2]


def _phrases(text: str, frequent: set[str]) -> set[str]:
    """Every run of 2..MAX_PHRASE characters made of frequent bigrams (longer phrases are rarer still)."""
    return {
        piece[start : start + size]
        for piece in _pieces(text, frequent)
        for size in range(2, min(MAX_PHRASE, len(piece)) + 1)
        for start in range(len(piece) - size + 1)
    }


def _shared_phrases(texts: Sequence[str], idf: Callable[[str], float]) -> list[tuple[str, float]]:
    """Maximal phrases most members share, best first, scored by share x length-weighted rarity."""
    needed = max(2, math.ceil(0.4 * len(texts)))
    bigrams: Counter[str] = Counter()
    for text in texts:
        bigrams.update({run[i : i + 2] for run in _WORD_RUN.findall(text) for i in range(len(run) - 1)})
    frequent = {bigram for bigram, count in bigrams.items() if count >= needed}
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_phrases(text, frequent))
    common = {phrase: count for phrase, count in counts.items() if count >= needed}
    # A phrase is not maximal when a one-character extension is shared almost as widely.
    covered: set[str] = set()
    for phrase, count in common.items():
        if len(phrase) > 2:
            for part in (phrase[:-1], phrase[1:]):
                if count >= 0.8 * common[part]:
                    covered.add(part)
    maximal = {phrase: count for phrase, count in common.items() if phrase not in covered}
    scored = [(phrase, count / len(texts) * idf(phrase) * math.sqrt(len(phrase))) for phrase, count in maximal.items()]
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def describe(
    texts: Sequence[str], names: Sequence[str | None], specificity: Callable[[str], float]
) -> tuple[str, str, tuple[str, ...]]:
    """(target, complaint, top terms) of one cluster from its prepared texts and named targets."""
    phrases = _shared_phrases(texts, specificity)
    named = Counter(name for name in names if name).most_common(1)
    suffixed = [phrase for phrase, _ in phrases if TARGET_SUFFIX.search(phrase)]
    target = named[0][0] if named else suffixed[0] if suffixed else phrases[0][0] if phrases else ""
    counts = Counter(complaint for text in texts for complaint in COMPLAINTS if complaint in text)
    complaint = next(
        (name for name, count in counts.most_common() if count >= 0.2 * len(texts) and name not in target), ""
    )
    if not complaint:
        complaint = next((phrase for phrase, _ in phrases if phrase not in target and target not in phrase), "")
    return target, complaint, tuple(phrase for phrase, _ in phrases[:8])


def heat(
    times: Sequence[datetime | None],
    petitioners: Sequence[str | None],
    reference: datetime | None,
    options: ClusterOptions,
) -> tuple[float, int]:
    """(heat, distinct petitioners) of one cluster; see the module docstring for the formula."""
    latest: dict[str, datetime | None] = {}
    for index, (at, who) in enumerate(zip(times, petitioners, strict=True)):
        person = who or f"#{index}"
        known = latest.get(person)
        latest[person] = at if known is None or (at is not None and at > known) else known
    total = 0.0
    for at in latest.values():
        age = (reference - at).total_seconds() / 86400 if reference is not None and at is not None else 0.0
        total += 2 ** (-max(age, 0.0) / options.half_life_days)
    return round(total, 3), len(latest)


def _counts(values: Sequence[str | None]) -> dict[str, int]:
    return dict(Counter(value for value in values if value).most_common())


def find_hotspots(
    items: Sequence[HotspotInput],
    options: ClusterOptions | None = None,
    now: datetime | None = None,
    progress: Callable[[int], object] = lambda _: None,
) -> list[Hotspot]:
    """Clusters of `items`, ranked by heat (rank 1 the hottest). Times must all be aware (or all None)."""
    options = options or ClusterOptions()
    if len(items) < options.min_size:
        return []
    texts = [item.text for item in items]
    found = cluster(texts, options, progress)
    specificity = functools.cache(lambda phrase: mean_idf(found.idf, phrase))
    known_times = [item.received_at for item in items if item.received_at is not None]
    reference = now or (max(known_times) if known_times else None)
    spots: list[Hotspot] = []
    for members in found.groups:
        ordered = sorted(members, key=lambda i: (items[i].received_at or datetime.min.replace(tzinfo=UTC), i))
        sample = ordered[-LABEL_SAMPLE:]
        target, complaint, top_terms = describe(
            [texts[i] for i in sample], [found.anchors[i] for i in sample], specificity
        )
        times = [at for i in ordered if (at := items[i].received_at) is not None]
        score, people = heat(
            [items[i].received_at for i in ordered], [items[i].petitioner for i in ordered], reference, options
        )
        spots.append(
            Hotspot(
                rank=0,
                label=" ".join(part for part in (target, complaint) if part),
                target=target,
                complaint=complaint,
                heat=score,
                size=len(members),
                petitioners=people,
                first=min(times) if times else None,
                last=max(times) if times else None,
                top_terms=top_terms,
                domains=_counts([items[i].domain for i in ordered]),
                departments=_counts([items[i].department for i in ordered]),
                members=tuple(items[i].key for i in ordered),
                indices=tuple(ordered),
            )
        )
    spots.sort(key=lambda spot: (-spot.heat, -spot.size, spot.label))
    return [replace(spot, rank=rank) for rank, spot in enumerate(spots, start=1)]


CLUSTER_FIELDS = [
    "cluster",
    "rank",
    "label",
    "heat",
    "size",
    "petitioners",
    "first",
    "last",
    "domains",
    "departments",
    "top_terms",
    "members",
]


def _local(value: datetime | None) -> str:
    """China Standard Time, to the minute, as clerks read dates."""
    return value.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="minutes") if value else ""


def cluster_id(rank: int) -> str:
    return f"H{rank:04d}"


def _mix(counts: dict[str, int]) -> str:
    return " ".join(f"{name}:{count}" for name, count in counts.items())


def cluster_record(spot: Hotspot) -> dict[str, str]:
    """One row of the clusters table (CLI file, .xlsx sheet): mixes as `id:count`, lists space-separated."""
    return {
        "cluster": cluster_id(spot.rank),
        "rank": str(spot.rank),
        "label": spot.label,
        "heat": f"{spot.heat:.3f}",
        "size": str(spot.size),
        "petitioners": str(spot.petitioners),
        "first": _local(spot.first),
        "last": _local(spot.last),
        "domains": _mix(spot.domains),
        "departments": _mix(spot.departments),
        "top_terms": " ".join(spot.top_terms),
        "members": " ".join(spot.members),
    }
