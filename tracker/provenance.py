"""Where a run came from: git state, library versions, the plugins used, the Python environment."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from tracker import __version__
from tracker.experiment import Experiment
from tracker.registry import Registry

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "evaluate", "mlflow")


def git_state(folder: Path) -> tuple[dict[str, str], str | None]:
    """Tags for the git commit, branch and dirty flag, and the diff when the tree is dirty."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}, None
    diff = git("diff", "HEAD")
    tags = {
        "mlflow.source.git.commit": commit,
        "xp.git.commit": commit,
        "xp.git.branch": git("rev-parse", "--abbrev-ref", "HEAD") or "",
        "xp.git.dirty": "true" if diff else "false",
    }
    return tags, diff or None


def version_tags(experiment: Experiment, registry: Registry) -> dict[str, str]:
    """xp's version, the libraries', and each plugin used with the distribution providing it."""
    tags = {"xp.version": __version__}
    for library in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            tags[f"xp.version.{library}"] = metadata.version(library)
    specs = [*experiment.components.values(), *experiment.metrics]
    for spec in specs:
        source = registry.find(spec.kind, spec.use).source
        origin = f"{source.distribution} {source.version}" if source.distribution else source.name
        tags[f"xp.plugin.{spec.section}"] = f"{spec.use} ({origin})"
    return tags


def installed_packages() -> str:
    """`name==version` per installed distribution, like `pip freeze`, without a subprocess."""
    lines: Iterable[str] = {
        f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]
    }
    return "\n".join(sorted(lines, key=str.lower)) + "\n"
