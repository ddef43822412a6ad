"""Checking a parsed experiment against the registry: every problem of a file in one pass.

Nothing here builds or imports a component: keys, types and names are checked against the
factories' signatures only.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable

from tracker.config import RawExperiment
from tracker.errors import Problem, choices_text, did_you_mean
from tracker.experiment import ComponentSpec, Experiment
from tracker.registry import Registry
from tracker.schema import conform, describe_value, keys_of
from tracker.sections import COMPONENT_SECTIONS, FIXED_SECTIONS, MULTI_COMPONENT_SECTIONS, SECTION_ORDER


class _FileChecker:
    """Collects the problems of one file while resolving its sections."""

    def __init__(self, raw: RawExperiment, registry: Registry):
        self.raw = raw
        self.registry = registry
        self.problems: list[Problem] = []

    def problem(self, section: str | None, key: str | None, message: str) -> None:
        self.problems.append(Problem(str(self.raw.path), section, key, message))

    def check(self) -> dict[str, Any]:
        """Resolve every section; unknown top-level names are problems too."""
        for name, value in self.raw.data.items():
            if name in SECTION_ORDER and not isinstance(value, dict):
                self.problem(name, None, f"expected a section (a table), got {describe_value(value)}")
            elif name not in SECTION_ORDER and isinstance(value, dict):
                self.problem(name, None, f"unknown section{did_you_mean(name, SECTION_ORDER)}. "
                                         f"Valid sections: {', '.join(SECTION_ORDER)}")
            elif name not in SECTION_ORDER:
                self.problem(None, name, "unknown top-level key: every key belongs in a section, "
                                         "e.g. seed goes in [experiment]")
        resolved: dict[str, Any] = {}
        for section in SECTION_ORDER:  # in the order sections are documented, so problems read top down
            kind = COMPONENT_SECTIONS.get(section)
            if section in FIXED_SECTIONS:
                resolved[section] = self.options(section, self.table(section), FIXED_SECTIONS[section])
            elif section not in self.raw.data:
                several = " or several" if section in MULTI_COMPONENT_SECTIONS else ""
                self.problem(section, None, f"missing section; add it with use = one{several} of: "
                                            f"{choices_text(self.registry.names(kind))}")
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

    def options(self, section: str, table: dict[str, Any], factory: Callable) -> dict[str, Any]:
        """Check `table` against the factory's keyword-only parameters; fill in defaults."""
        keys = keys_of(factory)
        options = {}
        for name, value in table.items():
            key = keys.get(name)
            if key is None:
                valid = ", ".join(keys) or "none"
                self.problem(section, name, f"unknown key{did_you_mean(name, keys)}. Valid keys: {valid}")
                continue
            converted, error = conform(value, key.annotation)
            if error:
                self.problem(section, name, error)
            options[name] = converted
        for name, key in keys.items():
            if name not in table:
                if key.required:
                    self.problem(section, name, f"missing required key (expected {key.type_text})")
                else:
                    options[name] = key.default
        return {name: options[name] for name in keys if name in options}

    def component(self, section: str, kind: str, table: dict[str, Any]) -> ComponentSpec | None:
        use = table.get("use")
        if use is None:
            self.problem(section, "use", f"missing required key: which {kind} to use. "
                                         f"Valid choices: {choices_text(self.registry.names(kind))}")
            return None
        if not isinstance(use, str):
            self.problem(section, "use", f"expected a {kind} name (a string), got {describe_value(use)}")
            return None
        component = self.registry.get(kind, use)
        if component is None:
            self.problem(section, "use", self.unknown_name_text(kind, use))
            return None
        options = {k: v for k, v in table.items() if k != "use"}
        resolved = self.options(section, options, component.factory)
        return ComponentSpec(section, kind, use, MappingProxyType(resolved))

    def multi_component(self, section: str, kind: str) -> list[ComponentSpec | None]:
        """`use = "a"` or `use = ["a", "b"]`; options of a metric go in [section.<name>]."""
        table = self.table(section)
        use = table.get("use")
        names = [use] if isinstance(use, str) else use
        if use is None or not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            got = "nothing" if use is None else describe_value(use)
            self.problem(section, "use", f"expected a {kind} name or an array of names, got {got}. "
                                         f"Valid choices: {choices_text(self.registry.names(kind))}")
            return []
        for key, value in table.items():
            if key == "use" or (key in names and isinstance(value, dict)):
                continue
            if isinstance(value, dict):
                hint = f"; it is not listed in use ({', '.join(names)})"
            else:  # name the metric that has this key, when one does
                used = [self.registry.get(kind, name) for name in names]
                owners = [c.name for c in used if c is not None and key in c.keys]
                hint = f"; options of a {kind} go in its own table, e.g. [{section}.{(owners or names)[0]}]"
            self.problem(section, key, f"unknown key{hint}")
        specs = []
        for name in names:
            if self.registry.get(kind, name) is None:  # reported where it was written: [metrics] use
                self.problem(section, "use", self.unknown_name_text(kind, name))
                specs.append(None)
            else:  # the table of a metric is named after it; a `use` inside would contradict that
                options = table.get(name, {})
                if "use" in options:
                    self.problem(f"{section}.{name}", "use", f"unknown key; the table's name already says "
                                                            f'which {kind} it configures ("{name}")')
                specs.append(self.component(f"{section}.{name}", kind, {**options, "use": name}))
        return specs

    def unknown_name_text(self, kind: str, name: str) -> str:
        names = self.registry.names(kind)
        text = f'unknown {kind} "{name}"{did_you_mean(name, names)}. Valid choices: {choices_text(names)}'
        for broken in self.registry.broken:  # the name may belong to a plugin that failed to load
            text += (f'. Note: plugin "{broken.source.name}" ({broken.source.distribution or "?"}) '
                     f"failed to load and may provide it: {broken.error}")
        return text


def check_experiment(raw: RawExperiment, registry: Registry) -> tuple[Experiment | None, list[Problem]]:
    """Resolve `raw` against the registry; an experiment only when there is no problem."""
    checker = _FileChecker(raw, registry)
    resolved = checker.check()
    if checker.problems:
        return None, checker.problems
    settings = {section: MappingProxyType(resolved[section]) for section in FIXED_SECTIONS}
    if settings["experiment"]["name"] is None:
        settings["experiment"] = MappingProxyType({**settings["experiment"], "name": raw.path.stem})
    components = {s: resolved[s] for s in COMPONENT_SECTIONS if s not in MULTI_COMPONENT_SECTIONS}
    experiment = Experiment(
        path=raw.path,
        text=raw.text,
        overrides=raw.overrides,
        settings=MappingProxyType(settings),
        components=MappingProxyType(components),
        metrics=tuple(spec for section in MULTI_COMPONENT_SECTIONS for spec in resolved[section]),
    )
    return experiment, []

