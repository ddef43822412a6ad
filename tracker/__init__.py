"""xp: declarative experiment tracking for fine-tuning Hugging Face transformers.

Importing this package is cheap: torch, transformers, datasets and mlflow are imported only
when an experiment is built.
"""
from tracker.api import load, run
from tracker.errors import BuildError, ExperimentError, Problem
from tracker.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["BuildError", "ExperimentError", "Problem", "__version__", "hookimpl", "load", "run"]
