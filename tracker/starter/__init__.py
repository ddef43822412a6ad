"""`xp init`: read a data folder (or a hub dataset) with the dataset plugin that can, ask the task
which columns, metrics and head fit it, and write a commented starter experiment that `xp
validate --data` accepts as written."""

from tracker.starter.document import check_writable, default_checkpoint, default_output, starter_text, write_starter
from tracker.starter.propose import InitError, experiment_name, propose, task_of

__all__ = [
    "InitError",
    "check_writable",
    "default_checkpoint",
    "default_output",
    "experiment_name",
    "propose",
    "starter_text",
    "task_of",
    "write_starter",
]
