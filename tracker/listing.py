"""What `xp plugins` prints: each component's origin, keys and summary, and broken plugins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracker.registry import BrokenPlugin, Component
from tracker.spec.words import format_value


def _origin(component: Component) -> str:
    source = component.source
    return f"{source.distribution} {source.version}" if source.distribution else source.name


def as_text(components: Sequence[Component], broken: Sequence[BrokenPlugin]) -> str:
    lines: list[str] = []
    kind = None
    for component in components:
        if component.kind != kind:
            kind = component.kind
            lines.append(f"{'' if not lines else chr(10)}{kind}")
        lines.append(f"  {component.name}  [{_origin(component)}]  {component.summary}")
        for key in component.keys.values():
            default = "required" if key.required else f"default {format_value(key.default)}"
            lines.append(f"      {key.name}: {key.type_text}; {default}")
    if broken:
        lines.append("\nbroken plugins (failed to load; their components are unavailable)")
        for plugin in broken:
            origin = f"{plugin.source.distribution} {plugin.source.version}" if plugin.source.distribution else "?"
            lines.append(f"  {plugin.entry_point}  [{origin}]  {plugin.error}")
    return "\n".join(lines) + "\n"


def as_json(components: Sequence[Component], broken: Sequence[BrokenPlugin]) -> dict[str, Any]:
    return {
        "plugins": [
            {
                "kind": c.kind,
                "name": c.name,
                "distribution": c.source.distribution,
                "version": c.source.version,
                "plugin": c.source.name,
                "summary": c.summary,
                "keys": [
                    {
                        "name": k.name,
                        "type": k.type_text,
                        "required": k.required,
                        "default": None if k.required else _jsonable(k.default),
                    }
                    for k in c.keys.values()
                ],
            }
            for c in components
        ],
        "broken": [
            {
                "entry_point": b.entry_point,
                "plugin": b.source.name,
                "distribution": b.source.distribution,
                "version": b.source.version,
                "error": b.error,
            }
            for b in broken
        ],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def as_markdown(components: Sequence[Component]) -> str:
    """A reference of every component and key, as embedded in docs/plugins-reference.md."""
    lines: list[str] = []
    kind = None
    for component in components:
        if component.kind != kind:
            kind = component.kind
            lines.append(f"\n#### {kind}\n")
        provider = component.source.distribution or component.source.name
        lines.append(f"- **`{component.name}`** ({provider}): {component.summary}")
        for key in component.keys.values():
            default = "**required**" if key.required else f"default `{format_value(key.default)}`"
            lines.append(f"  - `{key.name}`: {key.type_text}; {default}")
    return "\n".join(lines).lstrip("\n") + "\n"
