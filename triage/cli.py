"""`triage`: the command line for data staff and operators, and the one place that wires the layers
together (training, batch classification, the queue store and the service).

Every command prints Chinese and English so that clerks and engineers both read it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from tqdm import tqdm

from batch.classify import Summary as ClassifySummary
from batch.results import Result
from model.classifier import DEFAULT_DEPARTMENT_TARGET, DEFAULT_DOMAIN_TARGET, TriageModel
from model.heads import DEFAULT_C
from model.persistence import (
    Manifest,
    ModelLoadError,
    load_model,
    read_manifest,
    require_segmenter,
    verify_flags,
    verify_model,
)
from model.registry import Registry, RegistryError
from model.taxonomy import Taxonomy, load_taxonomy
from model.tokenize import SegmenterError, parse_segmenter
from service.settings import ConfigurationError, Settings, load_settings
from store import Channel
from training.dataset import Columns, LabelledData, corpus_path, load_corpus, load_labelled
from training.flags import flag_lines
from training.io import InputError

if TYPE_CHECKING:
    from batch.enqueue import Repeats
    from store import QueueStore
    from training.office import OfficeData
    from training.train import TrainResult

app = typer.Typer(
    help="信访分流 petition triage: train, evaluate and run the classifier. 使用 --help 查看每个命令。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INTERVALS_HEADING = (
    "95% 区间（对这些行自助重抽样 1,000 次；行少时区间宽）/ 95% intervals (1,000 bootstrap resamples of these "
    "rows; few rows give wide intervals)"
)

RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="模型库目录 / model registry folder (default: models/)")
]
DataOption = Annotated[
    list[Path] | None,
    typer.Option("--data", help="标注数据文件 / labelled CSV, JSON Lines or .xlsx; repeatable. Default: data/"),
]
TextCol = Annotated[str, typer.Option("--text-col", help="文本列名 / text column")]
TextCols = Annotated[
    list[str] | None,
    typer.Option(
        "--text-col", help="文本列名，可重复，多列以空格连接 / text column; repeat to join several (title, body)"
    ),
]
LabelMapOption = Annotated[
    Path | None,
    typer.Option(
        "--label-map",
        help="标签映射表：本单位名称 -> 分类编号（如 住建局,housing）/ CSV or .xlsx mapping the office's label names "
        "to taxonomy ids; optional third column `head` (domain/department)",
    ),
]
LabelCol = Annotated[str, typer.Option("--label-col", help="标签列名 / label (domain) column")]
DepartmentCol = Annotated[
    str, typer.Option("--department-col", help="部门列名 / department column; absent column = one head")
]
EncodingOption = Annotated[
    str | None, typer.Option("--encoding", help="输入编码 / input encoding (default: auto UTF-8/GB18030)")
]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"错误 / error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as error:
        raise fail(str(error)) from None


def registry_from(path: Path | None) -> Registry:
    return Registry(path or settings().registry)


def repeats_over(config: Settings) -> Callable[[QueueStore], Repeats]:
    """Repeat detection for `classify --enqueue`: the service's petitioner key and lookup over the queue's store."""
    from batch.enqueue import Repeats
    from model.text import prepare_text
    from service.similar import find_related, petitioner_key
    from store.similar import SimilarPetitions

    def over(store: QueueStore) -> Repeats:
        similar = SimilarPetitions(store)

        def repeat_of(text: str, key: str) -> int | None:
            found = find_related(similar, config, prepare_text(text), key).repeat_of
            return found.brief.id if found else None

        return Repeats(key=lambda contact: petitioner_key(contact, config), repeat_of=repeat_of)

    return over


def load_data(paths: list[Path] | None, columns: Columns, encoding: str | None, skip_invalid: bool) -> LabelledData:
    try:
        data = load_labelled(paths or [corpus_path()], columns, encoding)
    except InputError as error:
        raise fail(str(error)) from error
    if data.invalid:
        for row in data.invalid[:20]:
            typer.echo(f"  无效行 / invalid: {row}", err=True)
        if len(data.invalid) > 20:
            typer.echo(f"  … 另有 {len(data.invalid) - 20} 行 / and {len(data.invalid) - 20} more", err=True)
        if not skip_invalid:
            raise fail(f"{len(data.invalid)} 行无效 / invalid rows; fix them or pass --skip-invalid")
        typer.echo(f"跳过 {len(data.invalid)} 行无效数据 / skipped {len(data.invalid)} invalid rows", err=True)
    if not len(data):
        raise fail("没有可用的数据行 / no usable rows")
    return data


@app.command()
def train(
    data: DataOption = None,
    text_col: TextCols = None,
    label_col: LabelCol = "domain",
    department_col: DepartmentCol = "department",
    label_map: LabelMapOption = None,
    feedback: Annotated[
        list[Path] | None,
        typer.Option(
            "--feedback",
            help="登记员的确认与更正（triage feedback export 导出）/ clerks' decisions from `triage feedback export`; "
            "repeatable; the last decision on a text wins",
        ),
    ] = None,
    corpus: Annotated[
        bool,
        typer.Option(
            help="混入内置语料（有 --data/--feedback 时）/ mix the built-in corpus into the office's rows",
        ),
    ] = True,
    office_weight: Annotated[
        str,
        typer.Option(
            help="本单位数据相对语料的权重，auto 为交叉验证选择（较慢）/ weight of office rows vs corpus rows; "
            "`auto` chooses it by 3-fold CV on the office rows (slow: about 3x the training time)"
        ),
    ] = "1",
    encoding: EncodingOption = None,
    skip_invalid: Annotated[bool, typer.Option(help="跳过无效行 / skip invalid rows instead of stopping")] = False,
    holdout: Annotated[float, typer.Option(help="无预设划分时的留出比例 / held-out share when no split column")] = 0.2,
    domain_target: Annotated[
        float | None,
        typer.Option(
            help="领域自动分流的目标准确率（交叉验证）/ out-of-fold precision target, domain "
            f"(default {DEFAULT_DOMAIN_TARGET} on the corpus, 0.95 on an office's own rows)"
        ),
    ] = None,
    department_target: Annotated[
        float | None,
        typer.Option(
            help="部门自动分流的目标准确率（交叉验证）/ out-of-fold precision target, department "
            f"(default {DEFAULT_DEPARTMENT_TARGET} on the corpus, 0.95 on an office's own rows)"
        ),
    ] = None,
    refit: Annotated[
        bool, typer.Option(help="评估后用全部数据重新训练 / refit the shipped model on every row after the report")
    ] = True,
    segmenter: Annotated[
        str | None,
        typer.Option(help="分词器 jieba 或 rjieba / word segmenter (default: TRIAGE_SEGMENTER, else the default)"),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            help="进程数（结果与单进程相同）/ worker processes for the classifier fits, 0 = all cores "
            "(the same model as one process, sooner)",
        ),
    ] = 0,
    registry: RegistryOption = None,
) -> None:
    """训练模型 / Train a model and add it to the registry (default: the corpus in data/).

    With --data (the office's labelled history) and/or --feedback (clerks' decisions), the built-in
    corpus is mixed in, the office's rows weighted, and thresholds and the comparison with the
    current model come from the office's rows only.
    """
    from training.train import Mixing, label_summary, train_and_register

    try:
        chosen = parse_segmenter(segmenter) if segmenter else settings().training_segmenter()
    except SegmenterError as error:
        raise fail(str(error)) from error
    if not 0 < holdout < 1:
        raise fail(f"留出比例应大于 0 且小于 1 / --holdout must be between 0 and 1 (got {holdout})")
    from training.office import OFFICE_TARGET_PRECISION

    taxonomy = load_taxonomy()
    columns = Columns(text=tuple(text_col or ("text",)), label=label_col, department=department_col)
    mixing = Mixing()
    targets = (DEFAULT_DOMAIN_TARGET, DEFAULT_DEPARTMENT_TARGET)
    if data is None and feedback is None:
        labelled = load_data(None, columns, encoding, skip_invalid)
    else:
        office = office_data(
            data, feedback, columns, encoding, skip_invalid, label_map, corpus, parse_office_weight(office_weight)
        )
        labelled, mixing = office.rows, office.mixing
        targets = (OFFICE_TARGET_PRECISION, OFFICE_TARGET_PRECISION)
    typer.echo(f"数据 / data: {len(labelled)} rows", err=True)
    for head, labels in labelled.head_labels().items():
        typer.echo(f"  {label_summary(head, labels)}", err=True)
    if mixing.corpus is not None:
        typer.echo(f"混入内置语料 / mixing in the corpus: {len(mixing.corpus)} rows", err=True)
    started = time.perf_counter()
    stages = tqdm(total=4 + refit + (mixing.corpus is not None), desc="训练 / training", unit="step", file=sys.stderr)

    def step(name: str) -> None:
        stages.set_postfix_str(name)
        if name != "split":
            stages.update(1)

    try:
        params = {
            "domain_target_precision": domain_target or targets[0],
            "department_target_precision": department_target or targets[1],
            "segmenter": chosen.value,
        }
        result = train_and_register(
            labelled,
            registry_from(registry),
            params,
            holdout,
            taxonomy,
            step=step,
            refit=refit,
            mixing=mixing,
            jobs=jobs or os.cpu_count() or 1,
        )
    except ValueError as error:
        raise fail(str(error)) from error
    finally:
        stages.update(stages.total - stages.n)
        stages.close()
    print_training(result, time.perf_counter() - started, registry_from(registry), taxonomy)


def parse_office_weight(value: str) -> float | None:
    """`auto` (None: chosen by cross-validation) or a positive number."""
    if value.strip().lower() == "auto":
        return None
    try:
        weight = float(value)
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight > 0):
        raise fail(
            f"--office-weight 应为正数或 auto / --office-weight must be a positive number or auto (got {value!r})"
        )
    return weight


def office_data(
    data: list[Path] | None,
    feedback: list[Path] | None,
    columns: Columns,
    encoding: str | None,
    skip_invalid: bool,
    label_map: Path | None,
    corpus: bool,
    office_weight: float | None,
) -> OfficeData:
    """The office's rows (history + decisions, labels mapped) and how the corpus joins them; warnings printed."""
    from training.labels import load_label_map
    from training.office import prepare_office

    try:
        mapping = load_label_map(label_map, encoding) if label_map is not None else None
        history = load_data(data, columns, encoding, skip_invalid) if data else None
        decisions = load_data(feedback, Columns(), None, skip_invalid) if feedback else None
        office = prepare_office(
            history, decisions, load_corpus() if corpus else None, load_taxonomy(), mapping, office_weight
        )
    except (InputError, ValueError) as error:
        raise fail(str(error)) from error
    if office.feedback is not None:
        merged = office.feedback
        typer.echo(
            f"登记员决定 / clerks' decisions: {merged.added} rows used ({merged.added - merged.replaced_office_rows} "
            f"new, {merged.replaced_office_rows} relabelling an office row), "
            f"{merged.repeated_decisions} earlier decisions superseded",
            err=True,
        )
    for warning in office.warnings:
        typer.secho(f"警告 / warning: {warning}", fg=typer.colors.YELLOW, err=True)
    return office


def print_training(result: TrainResult, seconds: float, registry: Registry, taxonomy: Taxonomy) -> None:
    """What was trained, how it did on held-out rows, how it compares with the current model, how to promote it."""
    from training.promotion import check_promotion, readable_manifest
    from training.train import first_few, looks_like_identifiers, shown_label, timing_line

    manifest = result.manifest
    typer.echo(f"版本 / version {result.version} ({seconds:.1f}s) -> {result.folder}")
    typer.echo(f"  {timing_line(result.times)}")
    for head, values in manifest.metrics["test"].items():
        typer.echo(
            f"  {head}: held-out accuracy {values['accuracy']:.3f}, macro-F1 {values['macro_f1']:.3f}, "
            f"top-3 {values['top3_accuracy']:.3f}, coverage {values['coverage_at_threshold']:.3f}"
        )
    for line in flag_lines(manifest.flags):
        typer.echo(f"  flag {line[2:]}")
    facts = manifest.training_data
    if facts.get("office_weight") is not None:
        typer.echo(
            f"  语料 {facts['corpus_rows']} 行 + 本单位 {facts['rows']} 行 / corpus + office rows; "
            f"本单位权重 / office weight {facts['office_weight_choice']}"
        )
    set_aside = facts.get("set_aside_labels", [])
    for head in dict.fromkeys(rare["head"] for rare in set_aside):  # a few per head, masked: see `shown_labels`
        rares = [rare for rare in set_aside if rare["head"] == head]
        identifiers = looks_like_identifiers([rare["label"] for rare in rares for _ in range(rare["rows"])])
        listed = first_few([f"{shown_label(rare['label'], identifiers)} ({rare['rows']} rows)" for rare in rares])
        typer.secho(
            f"  样本过少，暂不训练 / set aside, too few rows: {head} {len(rares)}: {listed}",
            fg=typer.colors.YELLOW,
        )
    if facts.get("duplicate_rows_dropped"):
        typer.secho(
            f"  重复文本 {facts['duplicate_rows_dropped']} 行已去除（每个文本保留最后一行），其中 "
            f"{facts['conflicting_duplicate_texts']} 个文本的各行标签不一致 / {facts['duplicate_rows_dropped']} rows "
            f"repeating an earlier text dropped (the last row of each text kept); "
            f"{facts['conflicting_duplicate_texts']} texts had copies with different labels",
            fg=typer.colors.YELLOW,
        )
    typer.echo("")
    for line in result.comparison.table():
        typer.echo(line)
    typer.echo("")
    if result.promoted:
        typer.echo("首个模型已设为当前 / first model promoted to current")
        return
    current = registry.current()
    check = check_promotion(manifest, current, taxonomy, readable_manifest(registry, current))
    for note in check.notes:
        typer.echo(note)
    if check.problems:
        for problem in check.problems:
            typer.secho(f"不建议上线 / not recommended: {problem}", fg=typer.colors.YELLOW)
        typer.echo(f"仍要上线 / to promote anyway: triage promote {result.version} --force")
    else:
        typer.echo(
            f"上线 / to promote: triage promote {result.version}  (then POST /v1/model/reload or restart the service)"
        )


@app.command()
def models(registry: RegistryOption = None) -> None:
    """列出模型版本 / List model versions (* marks the current one)."""
    store = registry_from(registry)
    current = store.current()
    versions = store.versions()
    if not versions:
        typer.echo(f"模型库为空 / registry {store.root} is empty; run `triage train`")
        return
    for version in versions:
        mark = "*" if version == current else " "
        try:
            manifest = read_manifest(store.root / version)
        except ModelLoadError as error:  # one broken version must not hide the others
            typer.secho(f"{mark} {version}  损坏 / broken: {error}", fg=typer.colors.RED)
            continue
        test = manifest.metrics.get("test", {}).get("domain", {})
        typer.echo(
            f"{mark} {manifest.version}  {manifest.created_at}  rows={manifest.training_data.get('rows')}  "
            f"domain macro-F1={test.get('macro_f1', float('nan')):.3f}"
        )


@app.command()
def promote(
    version: str,
    force: Annotated[
        bool, typer.Option(help="忽略检查强制上线 / promote even if worse, without a department head or unroutable")
    ] = False,
    registry: RegistryOption = None,
) -> None:
    """设为当前模型 / Make VERSION the current model (the previous one stays for rollback).

    Refuses a model that was worse than the current one on the office's held-out rows (or, when they
    could not be compared, far below its recorded figures), has no department head, or suggests
    departments the service cannot route to, unless --force. A model file that does not match its
    manifest, or needs another segmenter than the configured one, is refused even with --force: the
    service could not load it.
    """
    from training.promotion import check_promotion, readable_manifest

    store = registry_from(registry)
    try:
        folder = store.folder(version)
        manifest = verify_model(folder)
        verify_flags(folder, manifest)
        require_segmenter(manifest, settings().segmenter)
    except (RegistryError, ModelLoadError) as error:
        raise fail(
            f"未上线 {version}，服务无法加载该模型 / {version} not promoted, the service could not load it: {error}"
        ) from error
    current = store.current()
    check = check_promotion(manifest, current, load_taxonomy(), readable_manifest(store, current))
    if check.comparison is not None:
        for line in check.comparison.table():
            typer.echo(line)
        typer.echo("")
    for note in check.notes:
        typer.echo(note)
    for problem in check.problems:
        typer.secho(f"{'警告 / warning' if force else '拒绝 / refused'}: {problem}", fg=typer.colors.YELLOW, err=True)
    if check.problems and not force:
        raise fail(f"未上线 {version} / {version} not promoted; pass --force to promote it anyway", code=1)
    try:
        store.promote(version)
    except RegistryError as error:
        raise fail(str(error)) from error
    typer.echo(f"当前模型 / current model: {version}")


def load_current(registry: Path | None, version: str | None = None) -> tuple[TriageModel, Manifest]:
    store = registry_from(registry)
    try:
        folder = store.resolve(version)
        return load_model(folder, settings().segmenter)
    except (RegistryError, ModelLoadError) as error:
        raise fail(str(error)) from error


@app.command()
def evaluate(
    data: DataOption = None,
    text_col: TextCols = None,
    label_col: LabelCol = "domain",
    department_col: DepartmentCol = "department",
    label_map: LabelMapOption = None,
    encoding: EncodingOption = None,
    output: Annotated[Path | None, typer.Option(help="报告目录 / report folder")] = None,
    version: Annotated[str | None, typer.Option(help="模型版本 / model version (default: current)")] = None,
    registry: RegistryOption = None,
) -> None:
    """评估模型 / Evaluate a model on labelled data and write a report (default: the corpus test split).

    Rows the model was trained on are left out; labels the model does not know are reported.
    """
    from model.metrics import evaluate_model, figure_intervals, interval_lines, routing_outcome
    from training.labels import load_label_map
    from training.promotion import read_training_rows, unseen_rows
    from training.report import write_report

    store = registry_from(registry)
    model, manifest = load_current(registry, version)
    columns = Columns(text=tuple(text_col or ("text",)), label=label_col, department=department_col)
    labelled = load_data(data, columns, encoding, True)
    if label_map is not None:
        try:
            labelled = load_label_map(label_map, encoding).apply(labelled)
        except InputError as error:
            raise fail(str(error)) from error
    if data is None:
        labelled = labelled.subset("test")
        typer.echo(f"使用语料库固定测试集 / using the corpus test split: {len(labelled)} rows", err=True)
    unseen = unseen_rows(labelled, read_training_rows(store.resolve(version)))
    if len(unseen) < len(labelled):
        typer.secho(
            f"警告 / warning: {len(labelled) - len(unseen)} of {len(labelled)} rows were in the model's training "
            "data and are left out / 模型训练时已见过的行不计入",
            fg=typer.colors.YELLOW,
            err=True,
        )
        labelled = labelled.select(unseen)
    notes = [f"data: {', '.join(labelled.sources)}"]
    intervals: list[str] = []
    if len(labelled):
        targets = known_targets(model, labelled)
        if not targets:
            raise fail(
                "文件中的标签模型都不认识（请用 --label-map 映射为分类编号）/ none of the file's labels are known to "
                f"the model (it knows: {', '.join(model.classes('domain')[:8])}, ...); map them with --label-map",
                code=1,
            )
        probabilities = model.head_probabilities(model.transform(labelled.texts))
        metrics = evaluate_model(model, labelled.texts, targets, probabilities)
        if "domain" in targets:
            outcome = routing_outcome(model, targets, probabilities)
            intervals = interval_lines(outcome.figures(), figure_intervals(outcome))
            notes += ["", INTERVALS_HEADING, "", *(f"- {line}" for line in intervals)]
    else:
        typer.echo(
            "模型训练时已用过全部这些行；以下为训练时留出数据的结果 / the model was trained on every one of these "
            "rows; showing the held-out results recorded at training time",
            err=True,
        )
        metrics = manifest.metrics.get("test", {})
        notes.append("Every row was in the training data; these are the held-out results recorded at training time.")
    folder = output or Path("reports") / f"evaluate-{manifest.version}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_report(
        metrics,
        folder,
        f"Evaluation of {manifest.version} on {len(labelled)} rows",
        load_taxonomy(),
        notes=notes,
    )
    print_head_metrics(metrics)
    if intervals:
        typer.echo(INTERVALS_HEADING)
        for line in intervals:
            typer.echo(f"  {line}")
    typer.echo(f"报告 / report: {path}")


def print_head_metrics(metrics: dict[str, Any]) -> None:
    for head, values in metrics.items():
        typer.echo(
            f"{head}: accuracy {values['accuracy']:.3f}, macro-F1 {values['macro_f1']:.3f}, "
            f"top-3 {values['top3_accuracy']:.3f}, coverage {values['coverage_at_threshold']:.3f} "
            f"at precision {values['precision_at_threshold']:.3f}"
        )


def known_targets(model: TriageModel, data: LabelledData) -> dict[str, list[str]]:
    """The file's labels per head the model has, warning about labels it does not know (they count as errors).

    The warning names a few, masked: with a wrong label column they are names or phone numbers.
    """
    from training.train import looks_like_identifiers, shown_labels

    targets = {}
    for head, labels in data.head_labels().items():
        if head not in model.head_names_:
            continue
        known = set(model.classes(head))
        unknown = sorted(set(labels) - known)
        shown = shown_labels(unknown, looks_like_identifiers(labels))
        if len(unknown) == len(set(labels)):
            typer.secho(
                f"警告 / warning: 模型不认识文件中任何{head}标签，不评估该项 / none of the file's {head} labels are "
                f"known to the model ({len(unknown)}: {shown}); this head is not evaluated",
                fg=typer.colors.YELLOW,
                err=True,
            )
            continue
        if unknown:
            typer.secho(
                f"警告 / warning: 模型不认识的{head}标签按错误计 / {head} labels unknown to the model count as errors: "
                f"{len(unknown)}: {shown}",
                fg=typer.colors.YELLOW,
                err=True,
            )
        targets[head] = labels
    return targets


@app.command()
def cv(
    data: Annotated[list[Path], typer.Option("--data", help="标注数据文件 / labelled file(s)")],
    folds: Annotated[int, typer.Option(help="折数 / number of folds")] = 5,
    text_col: TextCols = None,
    label_col: LabelCol = "domain",
    department_col: DepartmentCol = "department",
    encoding: EncodingOption = None,
    skip_invalid: Annotated[bool, typer.Option(help="跳过无效行 / skip invalid rows")] = False,
    c: Annotated[float, typer.Option("--C", help="LinearSVC regularisation C")] = DEFAULT_C,
) -> None:
    """交叉验证 / Stratified k-fold cross-validated metrics of the pipeline on a labelled file."""
    from training.crossval import cross_validate_pipeline

    labelled = load_data(
        data,
        Columns(text=tuple(text_col or ("text",)), label=label_col, department=department_col),
        encoding,
        skip_invalid,
    )
    with tqdm(total=folds, desc="交叉验证 / cv", unit="fold", file=sys.stderr) as bar:
        result = cross_validate_pipeline(labelled, folds, {"C": c}, on_fold=lambda: bar.update(1))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


def print_summary(summary: ClassifySummary, compare: bool) -> None:
    """Closing summary on stderr: what a clerk checks before trusting a batch run."""

    def echo(text: str) -> None:
        typer.echo(text, err=True)

    rate = summary.rows_read / summary.elapsed if summary.elapsed else 0.0
    echo(
        f"完成 / done: 读取 read {summary.rows_read}, 分类 classified {summary.classified}, "
        f"失败 failed {summary.failed}, 用时 elapsed {summary.elapsed:.1f}s ({rate:.0f} rows/s)"
    )
    if summary.resumed_after:
        echo(f"续跑 / resumed after {summary.resumed_after} rows already in the output")
    if summary.classified:
        echo(f"需人工复核 / needs review: {summary.needs_review / summary.classified:.1%}")
        taxonomy = load_taxonomy()
        echo("领域 / domains: " + ", ".join(f"{taxonomy.name(k)}({k}) {v}" for k, v in summary.domains.most_common()))
        echo(
            "部门 / departments: "
            + ", ".join(f"{taxonomy.name(k, 'department')}({k}) {v}" for k, v in summary.departments.most_common())
        )
    if compare:
        moved = sum(summary.flows.values())
        echo(f"改派 / re-routed: {moved} of {summary.compared} rows with an old department")
        for (old, new), count in summary.flows.most_common(10):
            echo(f"  {old:>20} -> {new:<20} {count}")


@app.command()
def classify(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV, JSON Lines or .xlsx with id and text")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="输出文件 / .csv (default), .jsonl or .xlsx; stdout if absent")
    ] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="编号列 / id column")] = "id",
    text_col: TextCol = "text",
    encoding: EncodingOption = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="进程数 / worker processes (0 = all cores)")] = 0,
    chunk_size: Annotated[int, typer.Option(help="每批行数 / rows per chunk")] = 256,
    resume: Annotated[bool, typer.Option(help="断点续跑 / continue an interrupted run")] = False,
    errors: Annotated[Path | None, typer.Option("--errors", help="错误行另存 / also write bad rows here")] = None,
    compare_col: Annotated[
        str | None, typer.Option("--compare-col", help="原部门列 / old department column to compare")
    ] = None,
    enqueue: Annotated[bool, typer.Option(help="推送到分流队列 / push results into the routing queue")] = False,
    contact_col: Annotated[
        str | None,
        typer.Option(
            "--contact-col",
            help="信访人联系方式列（入队时识别重复信访）/ petitioner contact column: with --enqueue, rows get the "
            "keyed petitioner identity and repeat_of, as single submissions do",
        ),
    ] = None,
    channel: Annotated[
        Channel, typer.Option(help="入队时的来源渠道 / channel recorded with --enqueue")
    ] = Channel.LETTER,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不显示进度 / no progress bar")] = False,
    version: Annotated[str | None, typer.Option(help="模型版本 / model version (default: current)")] = None,
    registry: RegistryOption = None,
) -> None:
    """批量分类 / Classify a backlog file row by row (streaming, parallel, resumable)."""
    from batch.classify import ClassifyOptions, classify_file
    from training.io import estimate_rows

    store = registry_from(registry)
    try:
        folder = store.resolve(version)
        manifest = verify_model(folder)  # fail fast on a missing or tampered model, before any output
        require_segmenter(manifest, settings().segmenter)
    except (RegistryError, ModelLoadError) as error:
        raise fail(str(error)) from error
    options = ClassifyOptions(
        id_col=id_col,
        text_col=text_col,
        compare_col=compare_col,
        contact_col=contact_col,
        encoding=encoding,
        chunk_size=chunk_size,
        jobs=jobs or os.cpu_count() or 1,
        segmenter=settings().segmenter,
    )
    try:
        total = estimate_rows(input_path) if input_path.is_file() else None
    except Exception:  # a broken file is reported properly by the reader below
        total = None
    bar = tqdm(
        total=total,
        desc="分类 / classify",
        unit="row",
        file=sys.stderr,
        disable=True if quiet else None,
        dynamic_ncols=True,
    )
    sinks: list[Callable[[list[Result]], object]] = [lambda results: bar.update(len(results))]
    if enqueue:
        from batch.enqueue import backlog_enqueuer

        enqueuer = backlog_enqueuer(
            manifest.version, settings().database_url, channel, repeats_over(settings()) if contact_col else None
        )
        sinks.append(enqueuer)

    def feed(results: list[Result]) -> None:
        for sink in sinks:
            sink(results)

    try:
        summary = classify_file(
            input_path,
            output,
            folder,
            options,
            resume=resume,
            on_results=feed,
            errors=errors,
            explain=enqueue,
        )
    except InputError as error:
        raise fail(str(error)) from error
    finally:
        bar.close()
    print_summary(summary, compare_col is not None)
    if enqueue:
        typer.echo(
            f"入队 / enqueued: new {enqueuer.created}, already queued {enqueuer.existing}, "
            f"conflicts {enqueuer.conflicts}"
            + (f", repeats of earlier petitions {enqueuer.repeated}" if contact_col else ""),
            err=True,
        )


feedback_app = typer.Typer(
    help="登记员对建议的决定（采纳、更正、改派）/ clerks' decisions on suggestions", no_args_is_help=True
)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="输出 CSV / output CSV file")],
    since: Annotated[
        datetime | None, typer.Option(help="只导出此后的决定 / only decisions from this date (YYYY-MM-DD)")
    ] = None,
    all_decisions: Annotated[
        bool, typer.Option("--all-decisions", help="每个决定一行（默认每件取最后决定）/ every decision, not the last")
    ] = False,
) -> None:
    """导出决定 / Write the decisions as labelled rows (masked text) for `triage train --feedback`."""
    from store import QueueStore
    from triage.feedback import final_decisions, write_decisions

    store = QueueStore(Settings().database_url)
    try:
        decisions = store.feedback(since.replace(tzinfo=UTC) if since else None)
    finally:
        store.dispose()
    chosen = decisions if all_decisions else final_decisions(decisions)
    try:
        count = write_decisions(output, chosen)
    except OSError as error:
        raise fail(f"无法写入 / cannot write {output}: {error}") from error
    kinds = Counter(item.decision.value for item in chosen)
    typer.echo(
        f"导出 / exported {count} rows ({', '.join(f'{kind} {n}' for kind, n in sorted(kinds.items())) or 'none'}) "
        f"-> {output}; 训练 / train with: triage train --feedback {output}",
        err=True,
    )


@app.command()
def hotspots(
    input_path: Annotated[Path, typer.Argument(metavar="FILE", help="CSV, JSON Lines or .xlsx of petitions")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="成员文件 / members file: .csv (+ .clusters.csv) or .xlsx")
    ] = Path("members.csv"),
    text_col: Annotated[
        list[str] | None, typer.Option("--text-col", help="文本列，可重复 / text column; repeat to join several")
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="编号列 / id column (default: row number)")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="时间列 / received time column")] = None,
    since: Annotated[
        float | None, typer.Option("--since", help="只看最近 N 天（相对文件中最新一件）/ last N days of the file")
    ] = None,
    petitioner_col: Annotated[
        str | None, typer.Option("--petitioner-col", help="来信人标识列 / petitioner id column (distinct count)")
    ] = None,
    domain_col: Annotated[str | None, typer.Option("--domain-col", help="领域列 / domain column")] = None,
    department_col: Annotated[str | None, typer.Option("--department-col", help="部门列 / department column")] = None,
    min_size: Annotated[int, typer.Option(help="最小热点件数 / smallest cluster")] = 3,
    encoding: EncodingOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不显示进度 / no progress bar")] = False,
) -> None:
    """热点聚类 / Find hot topics: clusters about one place, project, merchant or platform, ranked by heat."""
    from batch.hotspots import HotspotsOptions, run_hotspots
    from model.hotspots import ClusterOptions, cluster_id

    if time_col is None and since is not None:
        raise fail("--since 需要 --time-col / --since needs --time-col")
    options = HotspotsOptions(
        text_cols=tuple(text_col or ["text"]),
        id_col=id_col,
        time_col=time_col,
        petitioner_col=petitioner_col,
        domain_col=domain_col,
        department_col=department_col,
        since_days=since,
        encoding=encoding,
        cluster=ClusterOptions(min_size=max(2, min_size)),
    )
    bar = tqdm(desc="聚类 / clustering", unit="row", file=sys.stderr, disable=True if quiet else None)
    try:
        summary = run_hotspots(input_path, output, options, progress=bar.update)
    except InputError as error:
        raise fail(str(error)) from error
    finally:
        bar.close()
    typer.echo(
        f"完成 / done: {summary.rows} 行 rows, 参与聚类 considered {summary.considered_rows}, "
        f"热点 clusters {len(summary.clusters)} ({summary.clustered_rows} rows), {summary.seconds:.1f}s",
        err=True,
    )
    for spot in summary.clusters[:10]:
        typer.echo(f"  {cluster_id(spot.rank)}  热度 heat {spot.heat:7.2f}  {spot.size:5d} 件  {spot.label}", err=True)
    where = summary.clusters_path or f"{summary.members_path} (sheet clusters)"
    typer.echo(f"成员 / members: {summary.members_path}; 热点 / clusters: {where}", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址 / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口 / port")] = 8000,
    workers: Annotated[int, typer.Option(help="工作进程数 / worker processes (about one per core)")] = 1,
    root_path: Annotated[
        str, typer.Option(help="反向代理下的子路径 / sub-path behind a reverse proxy, e.g. /triage")
    ] = "",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="可信代理地址 / proxies whose X-Forwarded-For is believed (comma-separated; never '*' unless "
            "only the proxy can reach this port)"
        ),
    ] = "127.0.0.1",
) -> None:
    """启动服务 / Run the triage API (trains the default model first if the registry is empty)."""
    import uvicorn

    from service.protocol import JsonErrorH11Protocol
    from triage.bootstrap import ensure_model

    configured = settings()
    ensure_model(configured.registry, echo=lambda message: typer.echo(message, err=True))
    try:  # a clear message instead of a failed start-up when the model needs the other segmenter
        require_segmenter(read_manifest(Registry(configured.registry).current_folder()), configured.segmenter)
    except (RegistryError, ModelLoadError) as error:
        raise fail(str(error)) from error
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        root_path=root_path,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_config=None,
        http=JsonErrorH11Protocol,
    )


db_app = typer.Typer(
    help="队列数据库：备份、恢复、迁移 / the queue database: backup, restore, migrate", no_args_is_help=True
)
app.add_typer(db_app, name="db")
DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="数据库 / database URL (default: TRIAGE_DATABASE_URL)")
]


@db_app.command("backup")
def db_backup(target: Path, database_url: DatabaseOption = None) -> None:
    """备份数据库 / Write a consistent backup while the service runs (SQLite backup API, or pg_dump)."""
    from store.backup import BackupError, backup

    try:
        written = backup(database_url or settings().database_url, target)
    except BackupError as error:
        raise fail(str(error)) from error
    typer.echo(f"已备份 / backup written: {written} ({written.stat().st_size:,} bytes)")


@db_app.command("restore")
def db_restore(
    source: Path,
    database_url: DatabaseOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="确认覆盖 / confirm replacing the database")] = False,
) -> None:
    """从备份恢复（先停止服务）/ Replace the database with a backup (stop the service first)."""
    from store.backup import BackupError, restore

    url = database_url or settings().database_url
    if not yes:
        typer.confirm(f"用 {source} 覆盖数据库？/ Replace the database with {source}?", abort=True)
    try:
        restore(url, source)
    except BackupError as error:
        raise fail(str(error)) from error
    typer.echo(f"已恢复 / restored from {source}")


@db_app.command("migrate")
def db_migrate(database_url: DatabaseOption = None) -> None:
    """升级数据库结构 / Apply pending schema migrations (the service also does this when it starts)."""
    from store.engine import make_engine
    from store.migrations import migrate

    engine = make_engine(database_url or settings().database_url)
    try:
        applied = migrate(engine)
    finally:
        engine.dispose()
    typer.echo(f"已应用 / applied: {applied or 'nothing, up to date'}")


if __name__ == "__main__":
    app()
