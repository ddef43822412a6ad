"""`xp init`: read a data folder (or a hub dataset), choose the text and label columns, metrics and
a model, and write a commented starter experiment that `xp validate --data` accepts as written."""

from tracker.starter.document import check_writable, default_checkpoint, default_output, starter_text, write_starter
from tracker.starter.task import InitError, Task, experiment_name, inspect_data

__all__ = [
    "InitError",
    "Task",
    "check_writable",
    "default_checkpoint",
    "default_output",
    "experiment_name",
    "inspect_data",
    "starter_text",
    "write_starter",
]
