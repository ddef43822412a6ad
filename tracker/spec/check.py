"""Checking a parsed experiment against the registry: every problem of a file in one pass.

Nothing here builds or imports a component. Each section is checked against its factory's
declared schema (types, bounds, choices, rules between its keys), then the rules between
sections: a best-model metric the metrics produce, and no key that would run code unless the
user allowed it on the command line.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tracker.errors import Problem, choices_text, did_you_mean
from tracker.experiment import ComponentSpec, Experiment
from tracker.metric_names import evaluation_name
from tracker.redact import Redactor
from tracker.registry import Registry
from tracker.spec.keys import SectionSpec, code_keys, metric_keys, run_rules, toml_value_problem
from tracker.spec.parse import RawExperiment
from tracker.spec.sections import (
    ABSENT_MEANS_NONE,
    COMPONENT_SECTIONS,
    DEFAULTED_SECTIONS,
    FIXED_SECTIONS,
    MULTI_COMPONENT_SECTIONS,
    OPTIONAL_SECTIONS,
    SECTION_ORDER,
    fixed_spec,
)
from tracker.spec.words import describe_value

ALLOW_CODE_HINT = (
    "xp never runs code named by an experiment file unless you pass --allow-code on the "
    "command line (tracker.load(..., allow_code=True) from Python)"
)


class _FileChecker:
    """Collects the problems of one file while resolving its sections."""

    def __init__(self, raw: RawExperiment, registry: Registry, allow_code: bool):
        self.raw = raw
        self.registry = registry
        self.allow_code = allow_code
        self.problems: list[Problem] = []

    def problem(self, section: str | None, key: str | None, message: str) -> None:
        self.problems.append(Problem(str(self.raw.path), section, key, message))

    def check(self) -> dict[str, Any]:
        """Resolve every section; unknown top-level names are problems too."""
        for name, value in self.raw.data.items():
            if name in SECTION_ORDER and not isinstance(value, dict):
                self.problem(name, None, f"expected a section (a table), got {describe_value(value)}")
            elif name not in SECTION_ORDER and isinstance(value, dict):
                self.problem(
                    name,
                    None,
                    f"unknown section{did_you_mean(name, SECTION_ORDER)}. Valid sections: {', '.join(SECTION_ORDER)}",
                )
            elif name not in SECTION_ORDER:
                self.problem(
                    None, name, "unknown top-level key: every key belongs in a section, e.g. seed goes in [experiment]"
                )
        resolved: dict[str, Any] = {}
        for section in SECTION_ORDER:  # in the order sections are documented, so problems read top down
            if section in (OPTIONAL_SECTIONS | ABSENT_MEANS_NONE) and section not in self.raw.data:
                continue
            if section in FIXED_SECTIONS:
                resolved[section] = self.options(section, self.table(section), fixed_spec(section))
                continue
            kind = COMPONENT_SECTIONS[section]  # every other section names a component
            default = self.registry.defaults.get(kind) if section in DEFAULTED_SECTIONS else None
            if section not in self.raw.data and default is not None:
                resolved[section] = self.component(section, kind, {"use": default})
            elif section not in self.raw.data:
                several = " or several" if section in MULTI_COMPONENT_SECTIONS else ""
                self.problem(
                    section,
                    None,
                    f"missing section; add it with use = one{several} of: {choices_text(self.registry.names(kind))}",
                )
            elif not isinstance(self.raw.data[section], dict):
                continue  # reported above; a missing `use` would only repeat it
            elif section in MULTI_COMPONENT_SECTIONS:
                resolved[section] = self.multi_component(section, kind)
            else:
                resolved[section] = self.component(section, kind, self.table(section))
        return resolved

    def table(self, section: str) -> dict[str, Any]:
        value = self.raw.data.get(section, {})
        return value if isinstance(value, dict) else {}

    def options(self, section: str, table: dict[str, Any], spec: SectionSpec) -> dict[str, Any]:
        """Check `table` against a declared schema; defaults filled in."""
        troubles = {key: toml_value_problem(value) for key, value in table.items()}
        for key, trouble in troubles.items():
            if trouble:  # a value no key can take: report it once, plainly
                self.problem(section, key, trouble)
        if any(troubles.values()):
            return {}
        options, problems = spec.check(table)
        for problem_key, message in problems:  # None: the section as a whole
            self.problem(section, problem_key, message)
        if not problems and not self.allow_code:
            for key, reason in code_keys(spec, options):
                self.problem(section, key, f"{reason}; refused: {ALLOW_CODE_HINT}")
        return options

    def component(self, section: str, kind: str, table: dict[str, Any]) -> ComponentSpec | None:
        use = table.get("use")
        if use is None:
            self.problem(
                section,
                "use",
                f"missing required key: which {kind} to use. Valid choices: {choices_text(self.registry.names(kind))}",
            )
            return None
        if not isinstance(use, str):
            self.problem(section, "use", f"expected a {kind} name (a string), got {describe_value(use)}")
            return None
        component = self.registry.get(kind, use)
        if component is None:
            self.problem(section, "use", self.unknown_name_text(kind, use))
            return None
        options = {k: v for k, v in table.items() if k != "use"}
        before = len(self.problems)
        resolved = self.options(section, options, component.spec)
        if len(self.problems) > before:
            return None
        # The section says what leaving it out says: the run's config digest leaves it out too.
        is_default = (
            section in DEFAULTED_SECTIONS
            and use == self.registry.defaults.get(kind)
            and resolved == component.spec.check({})[0]
        )
        return ComponentSpec(section, kind, use, MappingProxyType(resolved), is_default)

    def multi_component(self, section: str, kind: str) -> list[ComponentSpec | None]:
        """`use = "a"` or `use = ["a", "b"]`; options of a metric go in [section.<name>]."""
        table = self.table(section)
        use = table.get("use")
        names = [use] if isinstance(use, str) else use
        if use is None or not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            got = "nothing" if use is None else describe_value(use)
            self.problem(
                section,
                "use",
                f"expected a {kind} name or an array of names, got {got}. "
                f"Valid choices: {choices_text(self.registry.names(kind))}",
            )
            return []
        if len(set(names)) < len(names):
            self.problem(section, "use", f"names a {kind} twice: {describe_value(names)}")
        for key, value in table.items():
            if key == "use" or (key in names and isinstance(value, dict)):
                continue
            if isinstance(value, dict):
                hint = f"; it is not listed in use ({', '.join(names)})"
            else:  # name the metric that has this key, when one does
                used = [self.registry.get(kind, name) for name in names]
                owners = [c.name for c in used if c is not None and key in c.spec.keys]
                hint = f"; options of a {kind} go in its own table, e.g. [{section}.{(owners or names)[0]}]"
            self.problem(section, key, f"unknown key{hint}")
        specs: list[ComponentSpec | None] = []
        for name in dict.fromkeys(names):
            if self.registry.get(kind, name) is None:  # reported where it was written: [metrics] use
                self.problem(section, "use", self.unknown_name_text(kind, name))
                specs.append(None)
            else:  # the table of a metric is named after it; a `use` inside would contradict that
                options = table.get(name, {})
                if "use" in options:
                    self.problem(
                        f"{section}.{name}",
                        "use",
                        f'unknown key; the table\'s name already says which {kind} it configures ("{name}")',
                    )
                specs.append(self.component(f"{section}.{name}", kind, {**options, "use": name}))
        return specs

    def unknown_name_text(self, kind: str, name: str) -> str:
        names = self.registry.names(kind)
        text = f'unknown {kind} "{name}"{did_you_mean(name, names)}. Valid choices: {choices_text(names)}'
        for broken in self.registry.broken:  # the name may belong to a plugin that failed to load
            text += (
                f'. Note: plugin "{broken.source.name}" ({broken.source.distribution or "?"}) '
                f"failed to load and may provide it: {broken.error}"
            )
        return text

    def check_between_sections(
        self,
        settings: Mapping[str, Mapping[str, Any]],
        components: Mapping[str, ComponentSpec],
        metrics: list[ComponentSpec],
    ) -> None:
        """Each component's rules against the other sections."""
        sections = {**settings, **{name: {"use": spec.use, **spec.options} for name, spec in components.items()}}
        for spec in (*components.values(), *metrics):
            rules = self.registry.find(spec.kind, spec.use).spec.experiment_rules
            for key, message in run_rules(rules, spec.options, sections):
                self.problem(spec.section, key, message)
        for section, options in settings.items():
            for key, message in run_rules(fixed_spec(section).experiment_rules, options, sections):
                self.problem(section, key, message)

    def check_metric_names(
        self,
        settings: Mapping[str, Mapping[str, Any]],
        components: Mapping[str, ComponentSpec],
        metrics: list[ComponentSpec],
    ) -> None:
        """Keys that name a metric (a best-model metric) must name one the metrics produce."""
        produced = {"loss"}
        for spec in metrics:
            outputs = self.registry.find("metric", spec.use).spec.outputs
            if outputs is None:  # a metric that does not say what it produces: nothing to check against
                return
            produced.update(outputs(spec.options))
        named = [(section, fixed_spec(section), options) for section, options in settings.items()]
        named += [
            (section, self.registry.find(spec.kind, spec.use).spec, spec.options)
            for section, spec in components.items()
        ]
        for section, section_spec, options in named:
            for key in metric_keys(section_spec):
                value = options.get(key)
                if value is not None and not _produced(evaluation_name(value).removeprefix("eval_"), produced):
                    valid = ", ".join(f"eval_{name}" for name in sorted(produced))
                    self.problem(
                        section, key, f'"{value}" is not a metric this experiment computes; expected one of {valid}'
                    )


def _produced(name: str, produced: set[str]) -> bool:
    """Whether a metric declares `name`: by itself, or by a pattern (`f1_*`: one per entity type
    of the data, known once it is loaded)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in produced)


def check_experiment(
    raw: RawExperiment, registry: Registry, allow_code: bool = False
) -> tuple[Experiment | None, list[Problem]]:
    """Resolve `raw` against the registry; an experiment only when there is no problem."""
    checker = _FileChecker(raw, registry, allow_code)
    resolved = checker.check()
    components = {s: resolved[s] for s in COMPONENT_SECTIONS if s not in MULTI_COMPONENT_SECTIONS and s in resolved}
    metrics = [spec for section in MULTI_COMPONENT_SECTIONS for spec in resolved.get(section, [])]
    if not checker.problems and None not in components.values() and None not in metrics:
        fixed = {s: resolved[s] for s in FIXED_SECTIONS if s in resolved}
        checker.check_metric_names(fixed, components, metrics)
        checker.check_between_sections(fixed, components, metrics)
    space = ()
    sweep = raw.data.get("sweep")
    # The space is checked against the experiment without [sweep]: a problem in [sweep] itself
    # does not hide those of its space.
    if (
        isinstance(sweep, dict)
        and isinstance(sweep.get("space"), dict)
        and all(problem.section == "sweep" for problem in checker.problems)
    ):
        space = _checked_space(raw, sweep, registry, allow_code, checker)
    if checker.problems:
        return None, checker.problems
    settings = {section: MappingProxyType(resolved[section]) for section in FIXED_SECTIONS if section in resolved}
    if settings["experiment"]["name"] is None:
        settings["experiment"] = MappingProxyType({**settings["experiment"], "name": raw.path.stem})
    experiment = Experiment(
        path=raw.path,
        text=raw.text,
        overrides=raw.overrides,
        settings=MappingProxyType(settings),
        components=MappingProxyType(components),
        metrics=tuple(metrics),
        redactor=Redactor.of(raw.data),
        space=space,
    )
    return experiment, []


def _checked_space(
    raw: RawExperiment, sweep: Mapping[str, Any], registry: Registry, allow_code: bool, checker: _FileChecker
) -> tuple:
    """[sweep.space] read (`sweep` as written), each of its values checked as `--set` would check
    it on the experiment."""
    from tracker.spec.parse import Override, apply_overrides
    from tracker.sweep.space_check import SpaceChecker

    base = {name: value for name, value in raw.data.items() if name != "sweep"}

    def check_overrides(overrides):
        data = apply_overrides(base, [Override(path, value, "") for path, value in overrides])
        return check_experiment(RawExperiment(raw.path, raw.text, data, raw.overrides), registry, allow_code)[1]

    space = SpaceChecker(str(raw.path), sweep["space"], sweep.get("method", "tpe"), registry, base, check_overrides)
    dimensions = space.check()
    checker.problems += space.problems
    return dimensions
