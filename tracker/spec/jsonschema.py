"""The JSON Schema (draft 2020-12) of experiment files for the installed plugins (`xp schema`).

Each section's keys come from the same declarations the checker uses: pydantic derives every
key's schema (type, bounds, choices, default, description) from its annotation. A component
section has one branch per `use` choice, so an editor completes the keys of the plugin named.
"""

from __future__ import annotations

from typing import Any

from tracker.registry import Registry
from tracker.spec.keys import SectionSpec
from tracker.spec.sections import (
    ABSENT_MEANS_NONE,
    COMPONENT_SECTIONS,
    DEFAULTED_SECTIONS,
    FIXED_SECTIONS,
    MULTI_COMPONENT_SECTIONS,
    SECTION_ORDER,
    fixed_spec,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def experiment_schema(registry: Registry) -> dict[str, Any]:
    properties = {}
    for section in SECTION_ORDER:
        if section in FIXED_SECTIONS:
            properties[section] = {**keys_schema(fixed_spec(section)), "description": _summary(FIXED_SECTIONS[section])}
        elif section in MULTI_COMPONENT_SECTIONS:
            properties[section] = _several_components(registry, COMPONENT_SECTIONS[section])
        else:
            properties[section] = _one_component(registry, COMPONENT_SECTIONS[section])
    return {
        "$schema": DIALECT,
        "title": "xp experiment",
        "description": "A fine-tuning experiment for xp: each section names a registered plugin with `use`.",
        "type": "object",
        "properties": properties,
        "required": [
            section for section in COMPONENT_SECTIONS if section not in DEFAULTED_SECTIONS | ABSENT_MEANS_NONE
        ],
        "additionalProperties": False,
    }


def keys_schema(spec: SectionSpec) -> dict[str, Any]:
    """An object with exactly the section's keys."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: _without_titles(key.schema) for name, key in spec.keys.items()},
        "additionalProperties": False,
    }
    required = [name for name, key in spec.keys.items() if key.required]
    if required:
        schema["required"] = required
    return schema


def _one_component(registry: Registry, kind: str) -> dict[str, Any]:
    branches = []
    for name in registry.names(kind):
        component = registry.find(kind, name)
        branch = keys_schema(component.spec)
        branch["properties"] = {"use": {"const": name}, **branch["properties"]}
        branch["required"] = ["use", *branch.get("required", [])]
        branch["description"] = component.summary
        branch["title"] = name
        branches.append(branch)
    return {
        "type": "object",
        "description": f"The {kind}: `use` names it, the other keys are its options.",
        "properties": {"use": {"enum": registry.names(kind)}},
        "required": ["use"],
        "oneOf": branches,
    }


def _several_components(registry: Registry, kind: str) -> dict[str, Any]:
    names = registry.names(kind)
    components = [registry.find(kind, name) for name in names]
    tables = {
        component.name: {**keys_schema(component.spec), "description": component.summary} for component in components
    }
    use = {
        "anyOf": [{"enum": names}, {"type": "array", "items": {"enum": names}, "minItems": 1, "uniqueItems": True}],
        "description": f"one {kind} name or several; options of each go in their own table",
    }
    return {
        "type": "object",
        "description": f"The {kind}s to compute at each evaluation.",
        "properties": {"use": use, **tables},
        "required": ["use"],
        "additionalProperties": False,
    }


def _summary(factory: Any) -> str:
    return " ".join((factory.__doc__ or "").split())


def _without_titles(schema: Any) -> Any:
    # pydantic titles every property after its field name ("Lr"): noise in an editor's tooltip.
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    return schema
