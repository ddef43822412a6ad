"""Trainer callbacks that relay the Trainer's logs to xp under the loop runners' names.

Imported only when the `trainer` runner runs: it needs transformers at import time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

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

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Resumed from a checkpoint: the curves so far come from the Trainer's own log history
        # (they are in the store already).
        for logs in state.log_history:
            self._record(logs, logs.get("step", 0))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        metrics = self._record(logs, state.global_step)
        if metrics:
            if "train_loss" in metrics:
                metrics.update(self._throughput(state, args.world_size))
            self.logger.log_metrics(metrics, state.global_step)

    def _record(self, logs: dict[str, Any], step: int) -> dict[str, float]:
        """The loop runners' names for one Trainer log entry, added to the curves."""
        # The end-of-training summary has no per-step counterpart. Its loss is "train_loss"; step
        # logs say "loss" (and, counting tokens, carry a running "train_runtime" as well).
        if "train_loss" in logs:
            return {}
        metrics = {
            k: float(v)
            for k, v in logs.items()
            if k not in TRAINER_ONLY_LOGS and k != "step" and isinstance(v, (int, float))
        }
        if "loss" in metrics:
            metrics["train_loss"] = metrics.pop("loss")
            self.train_curve.append((step, metrics["train_loss"]))
        if "eval_loss" in metrics:
            self.eval_curve.append((step, metrics["eval_loss"]))
            self.last_eval = (step, metrics)
            self.evals[step] = metrics
        return metrics

    def _throughput(self, state: Any, world_size: int) -> dict[str, float]:
        started, first_step, first_tokens = self.window_start
        now, tokens = time.perf_counter(), int(getattr(state, "num_input_tokens_seen", 0) or 0)
        seconds = max(now - started, 1e-9)
        self.window_start = (now, state.global_step, tokens)
        return {
            "train_samples_per_second": (state.global_step - first_step) * self.samples_per_step * world_size / seconds,
            "train_tokens_per_second": (tokens - first_tokens) / seconds,
        }


class CheckpointEvery(TrainerCallback):
    """Checkpoints every `[checkpoint] every_steps` on top of the Trainer's own save strategy
    (which saves at evaluations), and marks each saved folder as a checkpoint of this run."""

    def __init__(self, plan: Any):
        self.plan = plan

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        due = bool(self.plan.every_steps) and state.global_step % self.plan.every_steps == 0
        if due:
            control.should_save = True
        elif state.global_step >= state.max_steps and not control.should_evaluate:
            control.should_save = False  # the Trainer's own save at the last step: the other runners make none

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer keeps one more than `keep` (training_arguments): the older goes only now that
        # the newer counts, and never the best one, which the Trainer loads at the end.
        if state.is_world_process_zero:
            self.plan.mark(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}", state.global_step)
            best = state.best_model_checkpoint
            self.plan.prune(protect=Path(best) if best else None)


class StopWhenAsked(TrainerCallback):
    """Parts.should_stop, asked after each evaluation: True ends training there."""

    def __init__(self, should_stop: Any):
        self.should_stop, self.stopped = should_stop, False

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        if metrics and self.should_stop(state.global_step, metrics):
            self.stopped = control.should_training_stop = True
