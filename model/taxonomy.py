"""The label taxonomy: stable ids, Chinese names and scopes, shipped as package data (`model/data/taxonomy.toml`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

TAXONOMY_PATH = Path(str(resources.files("model") / "data" / "taxonomy.toml"))


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    scope: str


@dataclass(frozen=True)
class Taxonomy:
    domains: dict[str, Label]
    departments: dict[str, Label]
    domain_departments: dict[str, tuple[str, ...]]

    def name(self, label_id: str, head: str = "domain") -> str:
        """Chinese name of a label of `head`; unknown ids (custom label sets) pass through unchanged."""
        labels = self.departments if head == "department" else self.domains
        label = labels.get(label_id)
        return label.name if label else label_id


def load_taxonomy(path: Path = TAXONOMY_PATH) -> Taxonomy:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    domains = {key: Label(key, value["name"], value["scope"].strip()) for key, value in raw["domains"].items()}
    departments = {key: Label(key, value["name"], value["scope"].strip()) for key, value in raw["departments"].items()}
    owners = {key: tuple(value["departments"]) for key, value in raw["domains"].items()}
    return Taxonomy(domains, departments, owners)
