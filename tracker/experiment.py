"""A checked experiment: every section resolved, defaults filled in, ready to build."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tracker.redact import Redactor
from tracker.spec.sections import OPTIONAL_SECTIONS, SECTION_ORDER


@dataclass(frozen=True)
class ComponentSpec:
    """One component to build: which registered factory, with which keyword arguments."""

    section: str  # where it came from: "optimizer", or "metrics.f1" for one of several metrics
    kind: str
    use: str
    options: Mapping[str, Any]  # every key of the factory's schema, defaults included
    # The section means what leaving it out means (a [task] naming the default task with its
    # defaults): the config digest leaves it out, so run names do not depend on writing it.
    is_default: bool = False


@dataclass(frozen=True)
class Experiment:
    """An experiment file after parsing and checking; building it is the runner's job."""

    path: Path
    text: str  # the file as written, logged as-is for provenance
    overrides: tuple[str, ...]
    settings: Mapping[str, Mapping[str, Any]]  # experiment, hardware, tracking: every key resolved
    components: Mapping[str, ComponentSpec]  # single-component sections by section name
    metrics: tuple[ComponentSpec, ...]
    redactor: Redactor = field(default_factory=Redactor)  # the file's secrets, kept out of everything stored or printed
    space: tuple[Any, ...] = ()  # [sweep.space] checked: tracker.sweep.space.Dimension, one per key

    @property
    def sweep(self) -> Mapping[str, Any] | None:
        """The [sweep] section, resolved; None when the file has none."""
        return self.settings.get("sweep")

    @property
    def name(self) -> str:
        return self.settings["experiment"]["name"]

    @property
    def seed(self) -> int:
        return self.settings["experiment"]["seed"]

    @cached_property
    def config_digest(self) -> str:
        """A hash of the resolved config: equal for equal settings, however the file spells them."""
        from tracker import tomlwrite

        document = {
            section: value
            for section, value in self.resolved().items()
            if not (section in self.components and self.components[section].is_default)
        }
        return hashlib.sha256(tomlwrite.dumps(document).encode()).hexdigest()

    @property
    def run_name(self) -> str:
        """The file stem plus a short hash of the resolved config: equal configs share a name."""
        return f"{self.path.stem}-{self.config_digest[:8]}"

    @property
    def output_dir(self) -> Path:
        """The folder under which every run of the experiment writes ([experiment] output_dir)."""
        return Path(self.settings["experiment"]["output_dir"])

    @property
    def run_folder(self) -> Path:
        """Where a run of this config writes its model, predictions and checkpoints."""
        return self.output_dir / self.run_name

    def resolved(self) -> dict[str, Any]:
        """The experiment as a TOML document, every default written out (what `xp show` prints)."""
        document: dict[str, Any] = {}
        for section in SECTION_ORDER:
            if section in OPTIONAL_SECTIONS:
                continue
            if section in self.settings:
                document[section] = dict(self.settings[section])
            elif section in self.components:
                spec = self.components[section]
                document[section] = {"use": spec.use, **spec.options}
            elif section == "metrics":
                document[section] = {"use": [spec.use for spec in self.metrics]}
                document[section].update({spec.use: dict(spec.options) for spec in self.metrics if spec.options})
        return document

    def shown(self) -> dict[str, Any]:
        """`resolved()` with every secret replaced by a marker: what may be stored or printed."""
        return self.redactor.document(self.resolved())

    @property
    def shown_text(self) -> str:
        """The file as written, secrets replaced: the `config/` artifact."""
        return self.redactor.text(self.text)
