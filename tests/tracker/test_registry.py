"""The plugin manager and the registry: fake plugins on a fresh manager, fake distributions on sys.path.

No package is installed and nothing global is patched: a test builds its own manager, or puts
a throwaway `*.dist-info` folder on sys.path for entry-point loading.
"""

from __future__ import annotations

import sys
import threading
import time
from importlib import metadata

import pytest

from tracker.hookspecs import hookimpl
from tracker.registry import (
    DEFAULT_TIMEOUT_SECONDS,
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    KINDS,
    OWN_DISTRIBUTION,
    TIMEOUT_ENV,
    TRACE_ENV,
    BrokenPlugin,
    PluginSource,
    RegistryError,
    _load_entry_point,
    build_registry,
    load_registry,
    make_plugin_manager,
)


def fake_adam(model, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999)):
    """A fake Adam.

    Only the first docstring line is the summary.
    """


def fake_accuracy(data):
    """Fraction of correct predictions."""


class FakeOptimizers:
    @hookimpl
    def xp_register_optimizers(self, register):
        register("fake_adam", fake_adam)


class FakeMetrics:
    @hookimpl
    def xp_register_metrics(self, register):
        register("fake_accuracy", fake_accuracy)


class AnotherFakeAdam:
    @hookimpl
    def xp_register_optimizers(self, register):
        register("fake_adam", lambda model, *, lr=0.1: None)


@pytest.fixture
def manager():
    return make_plugin_manager(load_entry_points=False)


# --- building the registry from registered plugins -------------------------------------------


def test_components_are_collected_per_kind_with_their_source(manager):
    optimizers = PluginSource("fake-optimizers", "xp-fake", "1.2.3")
    manager.register(FakeOptimizers(), optimizers)
    manager.register(FakeMetrics(), PluginSource("fake-metrics"))

    registry = build_registry(manager)

    adam = registry.get("optimizer", "fake_adam")
    assert (adam.kind, adam.name, adam.factory, adam.source) == ("optimizer", "fake_adam", fake_adam, optimizers)
    assert registry.get("metric", "fake_accuracy").source == PluginSource("fake-metrics")
    assert registry.names("optimizer") == ["fake_adam"]
    assert registry.names("scheduler") == []
    assert registry.get("optimizer", "fake_accuracy") is None  # names are per kind
    assert [c.name for c in registry.all()] == ["fake_adam", "fake_accuracy"]  # in KINDS order
    assert set(registry.components) == set(KINDS)


def test_a_component_knows_its_keys_and_summary(manager):
    manager.register(FakeOptimizers(), PluginSource("fake"))

    adam = build_registry(manager).get("optimizer", "fake_adam")

    assert list(adam.keys) == ["lr", "betas"]
    assert adam.summary == "A fake Adam."


def test_one_plugin_may_register_several_kinds(manager):
    class Both(FakeOptimizers, FakeMetrics):
        pass

    manager.register(Both(), PluginSource("both"))

    registry = build_registry(manager)
    assert registry.names("optimizer") == ["fake_adam"]
    assert registry.names("metric") == ["fake_accuracy"]


def test_the_registry_cannot_be_changed(manager):
    manager.register(FakeOptimizers(), PluginSource("fake"))
    registry = build_registry(manager)

    with pytest.raises(TypeError):
        registry.components["optimizer"]["sgd"] = None


def test_two_plugins_registering_the_same_name_is_an_error_naming_both(manager):
    manager.register(FakeOptimizers(), PluginSource("first", "xp-first", "1.0"))
    manager.register(AnotherFakeAdam(), PluginSource("second", "xp-second", "2.0"))

    with pytest.raises(RegistryError) as caught:
        build_registry(manager)

    message = str(caught.value)
    assert 'optimizer "fake_adam" is registered twice' in message
    assert "xp-first 1.0" in message and "xp-second 2.0" in message
    assert "Uninstall one of them." in message


def test_an_unregistered_plugin_contributes_nothing(manager):
    manager.register(FakeOptimizers(), PluginSource("fake"))
    manager.register(AnotherFakeAdam(), PluginSource("other"))
    manager.unregister("other")

    assert build_registry(manager).names("optimizer") == ["fake_adam"]


def test_a_plugin_whose_hook_fails_is_recorded_as_broken_and_contributes_nothing(manager):
    class Failing:
        @hookimpl
        def xp_register_metrics(self, register):
            register("half_registered", fake_accuracy)

        @hookimpl
        def xp_register_optimizers(self, register):
            raise RuntimeError("fancy-optim 2 is not supported")

    manager.register(FakeOptimizers(), PluginSource("fake"))
    failing = PluginSource("failing", "xp-failing", "0.1.0")
    manager.register(Failing(), failing)

    registry = build_registry(manager)

    assert registry.broken == (BrokenPlugin("failing", failing, "RuntimeError: fancy-optim 2 is not supported"),)
    assert registry.names("optimizer") == ["fake_adam"]
    assert registry.names("metric") == []  # not half of a plugin


def test_registering_something_that_is_not_a_factory_breaks_the_plugin(manager):
    class Confused:
        @hookimpl
        def xp_register_optimizers(self, register):
            register("adamw", "torch.optim.AdamW")

    manager.register(Confused(), PluginSource("confused"))

    [broken] = build_registry(manager).broken
    assert broken.error == (
        "TypeError: register(name, factory) takes a string and a callable, got 'adamw' and 'torch.optim.AdamW'"
    )


def test_a_hook_that_calls_sys_exit_breaks_its_plugin_not_xp(manager):
    class Exiting:
        @hookimpl
        def xp_register_optimizers(self, register):
            sys.exit(4)

    manager.register(FakeOptimizers(), PluginSource("fake"))
    manager.register(Exiting(), PluginSource("exiting"))

    registry = build_registry(manager)

    assert [(b.entry_point, b.error) for b in registry.broken] == [
        ("exiting", "SystemExit: the plugin called sys.exit(4)")
    ]
    assert registry.names("optimizer") == ["fake_adam"]


def test_a_hook_that_hangs_is_given_up_after_the_timeout():
    manager = make_plugin_manager(load_entry_points=False, environ={TIMEOUT_ENV: "0.2"})
    release = threading.Event()

    class Hanging:
        @hookimpl
        def xp_register_optimizers(self, register):
            release.wait(10)

    manager.register(FakeOptimizers(), PluginSource("fake"))
    manager.register(Hanging(), PluginSource("hanging"))
    started = time.monotonic()
    try:
        registry = build_registry(manager)
    finally:
        release.set()  # let the abandoned helper thread finish

    assert time.monotonic() - started < 5
    assert [(b.entry_point, b.error) for b in registry.broken] == [
        ("hanging", f"PluginTimeout: registering factories did not finish within 0.2 s (limit: {TIMEOUT_ENV})")
    ]
    assert registry.names("optimizer") == ["fake_adam"]


def test_the_timeout_defaults_to_ten_seconds():
    assert make_plugin_manager(load_entry_points=False, environ={}).timeout == DEFAULT_TIMEOUT_SECONDS == 10


def unresolved(model, *, lr: NoSuchType = 1.0):  # noqa: F821 - the point of the test
    """An annotation that names nothing."""


class Opaque:
    """A type that is not TOML-shaped: pydantic has no way to check a value against it."""


def unchecked(model, *, thing: Opaque | None = None):
    """A key type pydantic cannot check."""


def test_a_factory_whose_signature_cannot_be_read_is_left_out_alone(manager):
    class PartlyBroken:
        @hookimpl
        def xp_register_optimizers(self, register):
            register("fake_adam", fake_adam)
            register("unresolved", unresolved)
            register("unchecked", unchecked)

        @hookimpl
        def xp_register_metrics(self, register):
            register("fake_accuracy", fake_accuracy)

    source = PluginSource("partly", "xp-partly", "0.1.0")
    manager.register(PartlyBroken(), source)

    registry = build_registry(manager)

    assert registry.names("optimizer") == ["fake_adam"]  # the plugin's good factories still work
    assert registry.names("metric") == ["fake_accuracy"]
    by_entry = {b.entry_point: b for b in registry.broken}
    assert set(by_entry) == {"partly (optimizer unresolved)", "partly (optimizer unchecked)"}
    assert by_entry["partly (optimizer unresolved)"].source == source
    assert by_entry["partly (optimizer unresolved)"].error.startswith(
        "SpecError: the annotation of key \"lr\" of unresolved cannot be resolved: 'NoSuchType' (NameError: "
    )
    assert by_entry["partly (optimizer unchecked)"].error.startswith(
        "SpecError: unchecked has a key type xp cannot check: "
    )


def test_load_registry_takes_extra_plugins():
    registry = load_registry(environ={DISABLE_AUTOLOAD_ENV: "1"}, extra_plugins=[(FakeMetrics(), "extra")])

    assert registry.get("metric", "fake_accuracy").source == PluginSource("extra")


# --- loading entry points: a fake distribution on sys.path ----------------------------------


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Writes `module_name.py` and a dist-info naming it in the xp.plugins group; returns its name."""
    created = []

    def make(dist_name: str, module_name: str, source: str, version: str = "0.3.0") -> str:
        (tmp_path / f"{module_name}.py").write_text(source)
        info = tmp_path / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nplugin = {module_name}\n")
        created.append(module_name)
        return f"{dist_name}:plugin"

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for module_name in created:
        sys.modules.pop(module_name, None)


GOOD_PLUGIN = """
from tracker.hookspecs import hookimpl

def fake_sgd(model, *, lr: float = 0.1):
    '''A fake SGD.'''

@hookimpl
def xp_register_optimizers(register):
    register("fake_sgd", fake_sgd)
"""

MISSPELT_PLUGIN = """
from tracker.hookspecs import hookimpl

def fake_sgd(model, *, lr: float = 0.1):
    '''A fake SGD.'''

@hookimpl
def xp_register_optimisers(register):  # British spelling: not one of xp's hooks
    register("fake_sgd", fake_sgd)
"""

FAILING_PLUGIN = """
raise ImportError("xp-fancy needs the fancy-optim package: pip install fancy-optim")
"""


def test_an_installed_distribution_is_loaded_with_its_name_and_version(fake_distribution):
    plugin_name = fake_distribution("xp-good", "xp_test_good_plugin", GOOD_PLUGIN)

    registry = build_registry(make_plugin_manager(environ={}))

    assert registry.get("optimizer", "fake_sgd").source == PluginSource(plugin_name, "xp-good", "0.3.0")
    assert registry.get("optimizer", "adamw").source.distribution == OWN_DISTRIBUTION  # built-ins too


def test_a_misspelt_hook_implementation_is_caught_and_the_plugin_recorded_as_broken(fake_distribution):
    plugin_name = fake_distribution("xp-typo", "xp_test_typo_plugin", MISSPELT_PLUGIN)

    manager = make_plugin_manager(environ={})

    [broken] = [b for b in manager.broken if b.source.distribution == "xp-typo"]
    assert broken.entry_point == "xp_test_typo_plugin"
    assert broken.source == PluginSource(plugin_name, "xp-typo", "0.3.0")
    assert "unknown hook 'xp_register_optimisers'" in broken.error
    assert not manager.hooks.has_plugin(plugin_name)  # unregistered again: nothing half-loaded


def test_load_entry_point_catches_a_misspelt_hook_directly(tmp_path, monkeypatch, manager):
    (tmp_path / "xp_test_typo_direct.py").write_text(MISSPELT_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = metadata.EntryPoint(name="typo", value="xp_test_typo_direct", group=ENTRY_POINT_GROUP)
    try:
        _load_entry_point(manager, entry_point)
    finally:
        sys.modules.pop("xp_test_typo_direct", None)

    assert [b.source for b in manager.broken] == [PluginSource("typo")]  # no distribution known
    assert "PluginValidationError" in manager.broken[0].error
    assert manager.hooks.get_plugins() == set()


def test_an_entry_point_that_fails_to_import_is_recorded_and_xp_keeps_working(fake_distribution):
    plugin_name = fake_distribution("xp-fancy", "xp_test_failing_plugin", FAILING_PLUGIN)

    registry = build_registry(make_plugin_manager(environ={}))

    assert (
        BrokenPlugin(
            "xp_test_failing_plugin",
            PluginSource(plugin_name, "xp-fancy", "0.3.0"),
            "ImportError: xp-fancy needs the fancy-optim package: pip install fancy-optim",
        )
        in registry.broken
    )
    assert "adamw" in registry.names("optimizer")


def test_an_entry_point_that_calls_sys_exit_while_importing_is_recorded_and_xp_keeps_working(fake_distribution):
    plugin_name = fake_distribution("xp-exits", "xp_test_exiting_plugin", "import sys\nsys.exit(3)\n")

    registry = build_registry(make_plugin_manager(environ={}))

    assert (
        BrokenPlugin(
            "xp_test_exiting_plugin",
            PluginSource(plugin_name, "xp-exits", "0.3.0"),
            "SystemExit: the plugin called sys.exit(3)",
        )
        in registry.broken
    )
    assert "adamw" in registry.names("optimizer")


def test_an_entry_point_that_hangs_while_importing_is_given_up_after_the_timeout(fake_distribution):
    # Sleeps briefly, not forever: the abandoned import thread lives on inside this test process.
    plugin_name = fake_distribution("xp-slow", "xp_test_hanging_plugin", "import time\ntime.sleep(3)\n")

    started = time.monotonic()
    registry = build_registry(make_plugin_manager(environ={TIMEOUT_ENV: "0.2"}))

    assert time.monotonic() - started < 2.5
    assert (
        BrokenPlugin(
            "xp_test_hanging_plugin",
            PluginSource(plugin_name, "xp-slow", "0.3.0"),
            f"PluginTimeout: importing the plugin did not finish within 0.2 s (limit: {TIMEOUT_ENV})",
        )
        in registry.broken
    )
    assert "adamw" in registry.names("optimizer")


def test_disabling_autoload_keeps_only_the_built_ins(fake_distribution):
    fake_distribution("xp-good", "xp_test_good_plugin", GOOD_PLUGIN)
    fake_distribution("xp-fancy", "xp_test_failing_plugin", FAILING_PLUGIN)

    registry = build_registry(make_plugin_manager(environ={DISABLE_AUTOLOAD_ENV: "1"}))

    assert registry.get("optimizer", "fake_sgd") is None
    assert not [b for b in registry.broken if b.source.distribution == "xp-fancy"]  # never even imported
    assert "adamw" in registry.names("optimizer")
    assert {c.source.distribution for c in registry.all()} == {OWN_DISTRIBUTION}


def test_tracing_writes_every_hook_call_to_stderr(capsys):
    manager = make_plugin_manager(load_entry_points=False, environ={TRACE_ENV: "1"})
    manager.register(FakeOptimizers(), PluginSource("fake"))

    build_registry(manager)

    err = capsys.readouterr().err
    assert "xp_register_optimizers" in err
    assert "xp_register_metrics" in err


def test_no_tracing_by_default(capsys, manager):
    manager.register(FakeOptimizers(), PluginSource("fake"))

    build_registry(manager)

    assert capsys.readouterr().err == ""
