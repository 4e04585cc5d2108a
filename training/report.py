"""Human-readable evaluation reports: Markdown with confusion matrices and reliability diagrams as PNG."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager

from model.taxonomy import Taxonomy

# Chinese label names need a CJK font; .ci/run installs WenQuanYi Zen Hei, other machines may have Noto.
CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback")


def use_cjk_font() -> None:
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # weight fallbacks are harmless
    available = {font.name for font in font_manager.fontManager.ttflist}
    plt.rcParams["font.sans-serif"] = [name for name in CJK_FONTS if name in available] + ["DejaVu Sans"]


def plot_confusion(confusion: dict[str, Any], title: str, path: Path) -> None:
    labels, matrix = confusion["labels"], confusion["matrix"]
    size = max(5.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    peak = max((max(row) for row in matrix), default=1) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                axes.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > peak / 2 else "black",
                )
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_reliability(calibration: dict[str, Any], title: str, path: Path) -> None:
    bins = calibration["bins"]
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="model")
    for b in bins:
        axes.annotate(
            str(b["count"]), (b["confidence"], b["accuracy"]), fontsize=7, textcoords="offset points", xytext=(4, -10)
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(f"{title} (ECE {calibration['ece']:.3f})")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _head_section(name: str, metrics: dict[str, Any], taxonomy: Taxonomy) -> list[str]:
    lines = [
        f"## Head `{name}`",
        "",
        f"- examples: {metrics['n']}",
        f"- accuracy: {metrics['accuracy']:.3f}",
        f"- macro-F1: {metrics['macro_f1']:.3f}",
        f"- top-3 accuracy: {metrics['top3_accuracy']:.3f}",
        f"- threshold: {metrics['threshold']:.3f}; coverage {metrics['coverage_at_threshold']:.3f}, "
        f"precision {metrics['precision_at_threshold']:.3f} (auto-routed share and its precision)",
        f"- expected calibration error: {metrics['calibration']['ece']:.3f}",
        "",
        "| label | 名称 | precision | recall | F1 | support |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, row in metrics["per_class"].items():
        lines.append(
            f"| {label} | {taxonomy.name(label, name)} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['f1']:.3f} | {row['support']} |"
        )
    lines += ["", f"![confusion {name}](confusion_{name}.png)", f"![reliability {name}](reliability_{name}.png)", ""]
    return lines


def write_report(
    metrics: dict[str, Any],
    folder: Path,
    title: str,
    taxonomy: Taxonomy,
    notes: list[str] | None = None,
    appendix: list[str] | None = None,
) -> Path:
    """Write `report.md` and its PNGs into `folder`; `metrics` maps head name to head metrics.

    `appendix` lines (Markdown) close the report, e.g. the comparison with the current model.
    """
    folder.mkdir(parents=True, exist_ok=True)
    use_cjk_font()
    lines = [f"# {title}", ""]
    lines += [f"> {note}" for note in notes or []]
    lines.append("")
    for name, head in metrics.items():
        plot_confusion(head["confusion"], f"{name}: confusion", folder / f"confusion_{name}.png")
        plot_reliability(head["calibration"], f"{name}: reliability", folder / f"reliability_{name}.png")
        lines += _head_section(name, head, taxonomy)
    lines += appendix or []
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
