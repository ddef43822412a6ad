"""xp: declarative experiment tracking for fine-tuning Hugging Face transformers.

Importing this package is cheap: pydantic, torch, transformers, datasets and mlflow are imported
only when an experiment is checked or built.
"""

from tracker.errors import BuildError, ExperimentError, Problem
from tracker.hookspecs import hookimpl

__version__ = "0.2.0"
__all__ = ["BuildError", "ExperimentError", "Problem", "__version__", "hookimpl", "load", "run"]


def __getattr__(name: str):
    # `tracker.load` and `tracker.run` import the checker (and with it pydantic) on first use,
    # so that `import tracker.cli` for `xp --help` stays instant.
    if name in ("load", "run"):
        from tracker import api

        return getattr(api, name)
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
