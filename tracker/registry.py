"""The plugin manager and the registry of named factories it yields.

Built-in and third-party plugins arrive the same way: modules named in the `xp.plugins`
entry-point group, registered on a pluggy manager, asked through the `xp_register_*` hooks.
A plugin that fails to import is recorded as broken instead of breaking xp.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType
from typing import Any

import pluggy

from tracker import hookspecs
from tracker.spec.keys import Key, SectionSpec, SpecError, spec_of

ENTRY_POINT_GROUP = "xp.plugins"
OWN_DISTRIBUTION = "xp-tracker"
# Like pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD: only xp's own built-ins are loaded.
DISABLE_AUTOLOAD_ENV = "XP_DISABLE_PLUGIN_AUTOLOAD"
# Prints every hook call and its result to stderr (pluggy's tracing).
TRACE_ENV = "XP_TRACE_PLUGINS"
# Seconds a plugin may take to import or to register its factories before it counts as broken.
TIMEOUT_ENV = "XP_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 10.0

# kind -> the hook that registers it
KIND_HOOKS = {
    "task": "xp_register_tasks",
    "dataset": "xp_register_datasets",
    "tokenizer": "xp_register_tokenizers",
    "collator": "xp_register_collators",
    "model": "xp_register_models",
    "adapter": "xp_register_adapters",
    "optimizer": "xp_register_optimizers",
    "scheduler": "xp_register_schedulers",
    "metric": "xp_register_metrics",
    "runner": "xp_register_runners",
}
KINDS = tuple(KIND_HOOKS)


@dataclass(frozen=True)
class PluginSource:
    """Where a registered plugin object came from."""

    name: str  # the name it is registered under in the plugin manager
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Component:
    """A named factory of one kind, and who provides it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    source: PluginSource
    spec: SectionSpec  # its keys and what it declares about them, read once at registration

    @property
    def keys(self) -> Mapping[str, Key]:
        return self.spec.keys

    @property
    def summary(self) -> str:
        doc = (self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point whose module could not be imported or registered."""

    entry_point: str
    source: PluginSource
    error: str


class RegistryError(Exception):
    """The installed plugins contradict each other (two register the same kind and name)."""


@dataclass(frozen=True)
class Registry:
    components: Mapping[str, Mapping[str, Component]]  # kind -> name -> component
    broken: tuple[BrokenPlugin, ...] = ()
    # kind -> the name a file that leaves its section out means (only "task": xp_default_task)
    defaults: Mapping[str, str] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components.get(kind, {}))

    def get(self, kind: str, name: str) -> Component | None:
        return self.components.get(kind, {}).get(name)

    def find(self, kind: str, name: str) -> Component:
        """A component a checked experiment names: the check found it, so its absence is a bug."""
        component = self.get(kind, name)
        if component is None:
            raise LookupError(f'no {kind} "{name}" is registered')
        return component

    def all(self) -> list[Component]:
        return [self.components[kind][name] for kind in KINDS for name in self.names(kind)]


@dataclass
class PluginManager:
    """A pluggy manager plus what we know of each plugin's origin and of broken ones."""

    hooks: pluggy.PluginManager
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # seconds a plugin may take to import or register
    sources: dict[str, PluginSource] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def register(self, plugin: object, source: PluginSource) -> None:
        self.hooks.register(plugin, name=source.name)
        self.sources[source.name] = source

    def unregister(self, name: str) -> None:
        self.hooks.unregister(name=name)
        self.sources.pop(name, None)


def make_plugin_manager(load_entry_points: bool = True, environ: Mapping[str, str] = os.environ) -> PluginManager:
    """A fresh manager with xp's hook specs; with `load_entry_points`, every installed plugin."""
    hooks = pluggy.PluginManager(hookspecs.PROJECT)
    hooks.add_hookspecs(hookspecs)
    if environ.get(TRACE_ENV):
        hooks.trace.root.setwriter(sys.stderr.write)
        hooks.enable_tracing()
    manager = PluginManager(hooks, timeout=float(environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS))
    if load_entry_points:
        only_builtins = bool(environ.get(DISABLE_AUTOLOAD_ENV))
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            distribution = entry_point.dist.name if entry_point.dist else None
            if only_builtins and distribution != OWN_DISTRIBUTION:
                continue
            _load_entry_point(manager, entry_point)
    return manager


class PluginTimeout(Exception):
    """A plugin took longer than the limit to import or register."""


def _within(seconds: float, call: Callable[[], Any], doing: str) -> Any:
    """`call()`, in a helper thread so that a plugin that hangs cannot hang xp; what it raised,
    SystemExit included, comes back as an exception here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="xp-plugin", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():  # left behind as a daemon thread: it cannot keep xp from exiting
        raise PluginTimeout(f"{doing} did not finish within {seconds:g} s (limit: {TIMEOUT_ENV})")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _failure_text(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit: the plugin called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def _load_entry_point(manager: PluginManager, entry_point: metadata.EntryPoint) -> None:
    dist = entry_point.dist
    name = f"{dist.name}:{entry_point.name}" if dist else entry_point.name
    source = PluginSource(name, dist.name if dist else None, dist.version if dist else None)
    if manager.hooks.has_plugin(name):  # the same distribution seen twice on sys.path
        return
    try:
        manager.register(_within(manager.timeout, entry_point.load, "importing the plugin"), source)
        manager.hooks.check_pending()  # a misspelt hook name fails here, loudly
    except (Exception, SystemExit) as error:  # a third-party bug must not take xp down with it
        if manager.hooks.has_plugin(name):
            manager.unregister(name)
        manager.broken.append(BrokenPlugin(entry_point.value, source, _failure_text(error)))


def build_registry(manager: PluginManager) -> Registry:
    """Ask every plugin to register its factories; two registrations of one name are an error.

    A plugin whose hook fails is broken as a whole; a factory whose signature cannot serve as a
    section schema is left out alone, and listed as broken with the reason.
    """
    components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
    conflicts, broken = [], list(manager.broken)
    for plugin_name, _ in manager.hooks.list_name_plugin():
        source = manager.sources.get(plugin_name, PluginSource(plugin_name))
        # partial, not a lambda: a thread left behind by a timeout must not see the next plugin's name.
        registrations = functools.partial(_registrations, manager, plugin_name)
        try:
            found = _within(manager.timeout, registrations, "registering factories")
        except (Exception, SystemExit) as error:  # broken, like a plugin that fails to import
            broken.append(BrokenPlugin(plugin_name, source, _failure_text(error)))
            continue
        for kind, name, factory in found:
            try:
                component = Component(kind, name, factory, source, spec_of(factory))
            except SpecError as error:
                broken.append(BrokenPlugin(f"{plugin_name} ({kind} {name})", source, f"SpecError: {error}"))
                continue
            existing = components[component.kind].get(component.name)
            if existing is not None:
                conflicts.append(_conflict_text(component.kind, component.name, existing.source, source))
            else:
                components[component.kind][component.name] = component
    if conflicts:
        raise RegistryError("\n".join(conflicts))
    frozen = {kind: MappingProxyType(named) for kind, named in components.items()}
    return Registry(MappingProxyType(frozen), tuple(broken), _defaults(manager, frozen))


def _defaults(manager: PluginManager, components: Mapping[str, Mapping[str, Component]]) -> Mapping[str, str]:
    """The task a file without [task] means, when a plugin names one that is registered."""
    try:
        task = _within(manager.timeout, manager.hooks.hook.xp_default_task, "naming the default task")
    except (Exception, SystemExit):  # the plugins' registrations stand; files then name their task
        task = None
    return MappingProxyType({"task": task} if isinstance(task, str) and task in components["task"] else {})


def _registrations(manager: PluginManager, plugin_name: str) -> list[tuple[str, str, Callable[..., Any]]]:
    """(kind, name, factory) for everything one plugin registers."""
    # Ask this one plugin only, so we know whom each factory came from.
    others = [p for n, p in manager.hooks.list_name_plugin() if n != plugin_name]
    found = []
    for kind, hook_name in KIND_HOOKS.items():

        def register(name: str, factory: Callable[..., Any], kind: str = kind) -> None:
            if not isinstance(name, str) or not callable(factory):
                raise TypeError(f"register(name, factory) takes a string and a callable, got {name!r} and {factory!r}")
            found.append((kind, name, factory))

        manager.hooks.subset_hook_caller(hook_name, remove_plugins=others)(register=register)
    return found


def _conflict_text(kind: str, name: str, first: PluginSource, second: PluginSource) -> str:
    return (
        f'{kind} "{name}" is registered twice: by {_describe_source(first)} '
        f"and by {_describe_source(second)}. Uninstall one of them."
    )


def _describe_source(source: PluginSource) -> str:
    if source.distribution:
        return f"{source.distribution} {source.version} (plugin {source.name})"
    return f"plugin {source.name}"


def load_registry(
    environ: Mapping[str, str] = os.environ, extra_plugins: Iterable[tuple[object, str]] = ()
) -> Registry:
    """The registry of everything installed: what the CLI and the Python API use."""
    manager = make_plugin_manager(environ=environ)
    for plugin, name in extra_plugins:
        manager.register(plugin, PluginSource(name))
    return build_registry(manager)
