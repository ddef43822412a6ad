"""Runners: the Hugging Face Trainer, the hand-written loop, and the same loop on Accelerate.

Each runner is a dataclass of its settings (the keys of `[runner]`) with a `run` method; the
dataclass itself is the registered factory, so its fields are the section's schema.
"""

from tracker.plugin import hookimpl
from xp_plugins.runner.accelerated import AccelerateRunner
from xp_plugins.runner.loop import LoopRunner
from xp_plugins.runner.trainer import TrainerRunner


@hookimpl
def xp_register_runners(register):
    register("trainer", TrainerRunner)
    register("loop", LoopRunner)
    register("accelerate", AccelerateRunner)
