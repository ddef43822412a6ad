"""Trainer callbacks that relay the Trainer's logs to xp under the loop runners' names.

Imported only when the `trainer` runner runs: it needs transformers at import time.
"""
from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from xp_plugins.runner.trainer import TRAINER_ONLY_LOGS


class QuietProgress(ProgressCallback):
    """The Trainer's progress bar without its printing of every log dict (xp prints results)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        pass


class LogRelay(TrainerCallback):
    """Forwards the Trainer's logs to xp's logger under the loop runners' names, with throughput."""

    def __init__(self, logger: Any, samples_per_step: int):
        self.logger, self.samples_per_step = logger, samples_per_step
        self.train_curve: list[tuple[int, float]] = []
        self.eval_curve: list[tuple[int, float]] = []
        self.last_eval: tuple[int, dict[str, float]] | None = None
        self.evals: dict[int, dict[str, float]] = {}  # step -> evaluation metrics
        self.window_start = (time.perf_counter(), 0, 0)  # time, step, tokens seen

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The last step logs, as in the loop runners: a run shorter than logging_steps (or not a
        # multiple of it) would otherwise end without its final training loss. Every process
        # sets it: the Trainer averages the loss across processes when it logs.
        if state.global_step >= state.max_steps:
            control.should_log = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        step = state.global_step
        # The end-of-training summary has no per-step counterpart. Its loss is "train_loss"; step
        # logs say "loss" (and, counting tokens, carry a running "train_runtime" as well).
        if "train_loss" in logs:
            return
        metrics = {k: float(v) for k, v in logs.items() if k not in TRAINER_ONLY_LOGS and isinstance(v, (int, float))}
        if "loss" in metrics:
            metrics["train_loss"] = metrics.pop("loss")
            metrics.update(self._throughput(state, args.world_size))
            self.train_curve.append((step, metrics["train_loss"]))
        if "eval_loss" in metrics:
            self.eval_curve.append((step, metrics["eval_loss"]))
            self.last_eval = (step, metrics)
            self.evals[step] = metrics
        self.logger.log_metrics(metrics, step)

    def _throughput(self, state: Any, world_size: int) -> dict[str, float]:
        started, first_step, first_tokens = self.window_start
        now, tokens = time.perf_counter(), int(getattr(state, "num_input_tokens_seen", 0) or 0)
        seconds = max(now - started, 1e-9)
        self.window_start = (now, state.global_step, tokens)
        return {"train_samples_per_second": (state.global_step - first_step) * self.samples_per_step * world_size / seconds,
                "train_tokens_per_second": (tokens - first_tokens) / seconds}
