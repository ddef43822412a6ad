"""xp as a user gets it from an index: the sdist holds the whole source, the wheel built from it
holds every module and the LICENSE, and that wheel, installed into a fresh virtual environment
outside the source tree, lists every built-in plugin and trains the quickstart.

The venv sees the test environment's packages (`--system-site-packages`), so torch and the rest
are not installed again (GBs, minutes), and the wheel goes in with `--no-deps`. That environment
also holds xp itself, installed editable from the checkout, so every test of the installed xp
first proves that what runs is the venv's copy: modules, metadata and entry points.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tests.mlflow_helpers import MAX_STEPS, QUICKSTART, as_set_options, quickstart_overrides, sqlite_store

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"tracker": "tracker", "plugins": "xp_plugins"}  # source folder -> import name
# What the sdist carries besides the packages: the test suite and everything it reads.
SDIST_FOLDERS = ("tracker", "plugins", "tests", "experiments", "docs", "bench", "examples")
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "BENCHMARKS.md", "pyproject.toml", "MANIFEST.in")
# Made by building, installing or running; never source, never shipped (mirrors .gitignore).
NOT_SOURCE = (
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".pytest_cache",
    ".venv",
    "mlruns",
    "outputs",
)
BUILTIN_RUNNERS = {"trainer", "loop", "accelerate"}


@dataclass
class Built:
    source: Path  # the copy of the checkout that was built
    sdist: Path
    wheel: Path  # built from the unpacked sdist, as `pip install xp-tracker-*.tar.gz` does
    wheel_from_source: Path  # built straight from the tree, as `pip install .` does


@dataclass
class Venv:
    root: Path
    site_packages: Path
    workdir: Path  # outside the source tree: nothing is importable from the working directory

    def run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.root / "bin" / program), *args],
            cwd=self.workdir,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def clean_environment() -> dict[str, str]:
    """The caller's environment without what would put the checkout or xp settings in play."""
    return {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONPATH" and not name.startswith(("XP_", "MLFLOW_"))
    }


def source_files(root: Path, folders: tuple[str, ...]) -> set[str]:
    return {
        path.relative_to(root).as_posix() for folder in folders for path in (root / folder).rglob("*") if path.is_file()
    }


def module_names(root: Path) -> set[str]:
    """Every importable module of the source, by the name it is installed under."""
    names = set()
    for folder, package in IMPORT_NAMES.items():
        for path in (root / folder).rglob("*.py"):
            parts = [package, *path.relative_to(root / folder).with_suffix("").parts]
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def package_names(root: Path) -> set[str]:
    """Every package (folder with an __init__.py) of the source, by its installed name."""
    return {
        ".".join([package, *init.parent.relative_to(root / folder).parts])
        for folder, package in IMPORT_NAMES.items()
        for init in (root / folder).rglob("__init__.py")
    }


def build(*args: str, cwd: Path) -> None:
    # No build isolation: an isolated build installs setuptools from an index into a fresh
    # environment for the sdist and again for the wheel (9 s instead of under 3 here, and an index
    # it cannot do without), and tests only that pip can download. The files that go into the sdist
    # and the wheel, what this test is about, are the same; the test extra holds the build floor.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    folder = tmp_path_factory.mktemp("packaging")
    # A copy, as a clean clone would be: in the checkout setuptools would also read the stale
    # xp_tracker.egg-info/SOURCES.txt that `pip install -e` left there (with no VCS plugin it adds
    # those files to the sdist), which would hide a gap in MANIFEST.in; and the build writes there.
    source = folder / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    # Without --sdist/--wheel, build makes the sdist, then the wheel from the unpacked sdist:
    # the wheel is proof that the sdist is complete enough to build from.
    build("--outdir", str(folder / "dist"), str(source), cwd=folder)
    build("--wheel", "--outdir", str(folder / "dist-from-source"), str(source), cwd=folder)
    (sdist,), (wheel,) = (folder / "dist").glob("*.tar.gz"), (folder / "dist").glob("*.whl")
    (wheel_from_source,) = (folder / "dist-from-source").glob("*.whl")
    return Built(source, sdist, wheel, wheel_from_source)


def sdist_files(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        return {member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()}


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


# --- the sdist and the wheel -----------------------------------------------------------------


def test_sdist_holds_the_source_the_tests_need_and_nothing_made(built):
    shipped = sdist_files(built.sdist)

    assert set(SDIST_FILES) <= shipped
    missing = source_files(built.source, SDIST_FOLDERS) - shipped
    assert not missing, f"in the source but not in the sdist: {sorted(missing)}"
    assert "experiments/data/paraphrase/train.csv" in shipped  # the quickstart's data
    assert {"tests/data/mrpc/train.parquet", "tests/data/README.md"} <= shipped  # the tests' data slices
    made = {
        name
        for name in shipped
        if name.startswith(("build/", "dist/", "mlruns/", "outputs/")) or "/build/" in name or name.endswith(".pyc")
    }
    assert not made, f"built or run output in the sdist: {sorted(made)}"


def test_wheel_from_the_sdist_holds_every_module_and_the_license(built):
    files = wheel_files(built.wheel)
    modules = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in files if name.endswith(".py")
    }

    assert modules == module_names(built.source)
    assert {
        "xp_plugins.runner",
        "xp_plugins.runner.trainer",
        "xp_plugins.runner.loop",
        "xp_plugins.runner.accelerated",
        "tracker.spec",
        "tracker.__main__",
    } <= modules
    dist_info = next(name.split("/")[0] for name in files if name.endswith(".dist-info/METADATA"))
    license_text = zipfile.ZipFile(built.wheel).read(f"{dist_info}/licenses/LICENSE").decode()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert license_text == (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    metadata = zipfile.ZipFile(built.wheel).read(f"{dist_info}/METADATA").decode().splitlines()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata


def test_every_package_folder_is_in_the_packages_list():
    # A folder missing from the list still reaches the wheel as "data" of its parent package, with
    # a warning from setuptools that says this will stop; so the list itself is checked.
    configured = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(configured["tool"]["setuptools"]["packages"]) == package_names(REPO_ROOT), (
        "pyproject.toml: [tool.setuptools] packages must name every folder with an __init__.py"
    )


def test_pip_install_dot_builds_the_same_wheel_as_the_sdist(built):
    assert wheel_files(built.wheel_from_source) == wheel_files(built.wheel)


# --- the wheel installed in a fresh virtual environment -----------------------------------------


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> Venv:
    root = tmp_path_factory.mktemp("venv")
    # --without-pip: pip comes from the system site, and installs into the venv it runs in.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)], check=True)
    (site_packages,) = (root / "lib").glob("python3*/site-packages")
    if sys.prefix != sys.base_prefix:  # the tests run in a venv: share its packages, not only the system's
        (site_packages / "test-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --ignore-installed: the editable xp of the test environment has the same version, and pip
    # would otherwise call the wheel "already satisfied" and install nothing.
    done = subprocess.run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--ignore-installed",
            "--no-compile",
            "--quiet",
            str(built.wheel),
        ],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    workdir = tmp_path_factory.mktemp("elsewhere")
    return Venv(root, site_packages, workdir)


# Run by the venv's Python: import every shipped module, load the plugins through their entry
# points as `xp` does, and say where each piece came from.
PROBE = textwrap.dedent("""\
    import importlib, importlib.metadata, json, sys
    from tracker.registry import make_plugin_manager
    for name in sys.argv[1:]:
        importlib.import_module(name)
    make_plugin_manager()
    distribution = importlib.metadata.distribution("xp-tracker")
    print(json.dumps({
        "modules": {name: module.__file__ for name, module in sys.modules.items()
                    if name.split(".")[0] in ("tracker", "xp_plugins")},
        "distribution": str(distribution.locate_file("")),
        "recorded": sorted(str(path) for path in distribution.files),
        "entry_points": {ep.name: str(ep.dist.locate_file(""))
                         for ep in importlib.metadata.entry_points(group="xp.plugins")},
        "sys_path": sys.path,
    }))
""")


def test_installed_xp_runs_from_the_venv_not_from_the_checkout(built, venv):
    modules = sorted(module_names(built.source))

    done = venv.run("python", "-c", PROBE, *modules)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert set(modules) <= set(seen["modules"])
    elsewhere = {
        name: path for name, path in seen["modules"].items() if not Path(path).is_relative_to(venv.site_packages)
    }
    assert not elsewhere, f"not imported from {venv.site_packages}: {elsewhere}"
    for package in ("tracker", "xp_plugins", "xp_plugins.runner"):
        assert Path(seen["modules"][package]) == venv.site_packages / package.replace(".", "/") / "__init__.py"
    assert Path(seen["distribution"]) == venv.site_packages
    assert "xp_plugins/runner/trainer.py" in seen["recorded"]  # the venv's RECORD, not the editable one
    assert set(seen["entry_points"]) >= {
        "dataset",
        "tokenizer",
        "collator",
        "model",
        "optimizer",
        "scheduler",
        "metric",
        "runner",
    }
    assert {Path(location) for location in seen["entry_points"].values()} == {venv.site_packages}
    assert not [entry for entry in seen["sys_path"] if (venv.workdir / entry).resolve().is_relative_to(REPO_ROOT)]


def listed(done: subprocess.CompletedProcess) -> tuple[set[tuple[str, str]], list]:
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    return {(p["kind"], p["name"]) for p in document["plugins"] if p["distribution"] == "xp-tracker"}, document[
        "broken"
    ]


def test_installed_xp_lists_every_builtin_plugin(venv):
    installed, broken = listed(venv.run("xp", "plugins", "--json"))
    checkout, _ = listed(
        subprocess.run(
            [sys.executable, "-m", "tracker", "plugins", "--json"],
            cwd=REPO_ROOT,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    )

    assert broken == []
    assert {name for kind, name in installed if kind == "runner"} == BUILTIN_RUNNERS
    assert installed == checkout


def test_python_m_tracker_is_the_xp_command(venv):
    by_module = venv.run("python", "-m", "tracker", "--help")
    by_script = venv.run("xp", "--help")

    assert by_module.returncode == 0, by_module.stderr
    assert "Usage:" in by_module.stdout and "run" in by_module.stdout
    assert by_module.stdout.replace("python -m tracker", "xp") == by_script.stdout


def test_installed_xp_trains_the_quickstart(venv, tiny_checkpoint):
    from mlflow import MlflowClient

    # The quickstart as a user has it: the file with its data folder next to it, paths relative
    # to the working directory; only the model is the tiny one, for a few steps.
    experiments = venv.workdir / "experiments"
    experiments.mkdir()
    shutil.copy(QUICKSTART, experiments)
    shutil.copytree(QUICKSTART.parent / "data", experiments / "data")
    store = sqlite_store(venv.workdir)
    overrides = [
        o for o in quickstart_overrides(tiny_checkpoint, venv.workdir, store) if not o.startswith("dataset.data_files")
    ]

    done = venv.run("xp", "run", "experiments/quickstart.toml", *as_set_options(overrides), timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["runner.max_steps"] == str(MAX_STEPS)
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == MAX_STEPS
