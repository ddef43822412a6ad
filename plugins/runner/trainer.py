"""The `trainer` runner: the Hugging Face `Trainer`, given xp's optimizer, scheduler and metrics,
logging under the same names and steps as the loop runners."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tracker.plugin import (
    Curves,
    Parts,
    PredictionStats,
    RunResult,
    better_lower,
    decoded,
    generation_options,
)
from xp_plugins.runner.evaluation import Predictions, keep_evaluation_files, per_row, score, write_predictions
from xp_plugins.runner.settings import TrainingSettings
from xp_plugins.runner.training_loop import save_model

# Trainer log entries that have no counterpart in the loop runners (run summaries, timings).
TRAINER_ONLY_LOGS = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_steps_per_second",
    "num_input_tokens_seen",
    "train_tokens_per_second",
}


@dataclass(kw_only=True)
class TrainerRunner(TrainingSettings):
    """The Hugging Face Trainer (TrainingArguments from this section), evaluation each epoch.
    Checkpoints ([checkpoint]) are the Trainer's own, resumed through `resume_from_checkpoint`."""

    def training_arguments(self, parts: Parts) -> Any:
        from transformers import Seq2SeqTrainingArguments, TrainingArguments

        hardware = parts.hardware
        early_stopping = self.early_stopping_patience is not None
        plan = parts.checkpoints
        # Early stopping needs a checkpoint at every evaluation to bring the best one back; saves
        # every N steps come from CheckpointEvery, so both can happen in one run.
        saves_at_evaluation = early_stopping or (plan is not None and plan.at_evaluation)
        # One more than [checkpoint] keep: CheckpointEvery deletes the oldest once the newest counts.
        keep = plan.keep + 1 if plan is not None and plan.saves else 1
        fields = {f.name for f in dataclasses.fields(TrainingArguments)}
        sampling = (
            (
                {"train_sampling_strategy": "group_by_length"}
                if "train_sampling_strategy" in fields
                else {"group_by_length": True}
            )
            if self.group_by_length
            else {}
        )
        # With "steps", a save at every evaluation is a save every eval_steps; "epoch" and "no" never
        # read save_steps, which the Trainer then leaves at its default.
        saving: dict[str, Any] = {"save_steps": self.eval_steps} if saves_at_evaluation and self.eval_steps else {}
        generating = _generating(parts)
        arguments = Seq2SeqTrainingArguments if generating else TrainingArguments
        return arguments(
            output_dir=str(_checkpoint_folder(parts)),
            num_train_epochs=self.num_epochs,
            max_steps=self.max_steps or -1,
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.eval_batch_size or self.batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_grad_norm=self.max_grad_norm or float("inf"),  # inf: no clipping, but the norm is logged
            eval_strategy=self.eval_strategy,
            eval_steps=self.eval_steps,
            logging_strategy="steps",
            logging_steps=self.logging_steps,
            save_strategy=self.eval_strategy if saves_at_evaluation else "no",
            save_total_limit=keep,
            load_best_model_at_end=early_stopping,
            metric_for_best_model=self.metric_for_best if early_stopping else None,
            greater_is_better=not better_lower(self.metric_for_best) if early_stopping else None,
            restore_callback_states_from_checkpoint=True,  # early stopping's count goes on where it stopped
            seed=parts.seed,
            fp16=hardware.precision == "fp16",
            bf16=hardware.precision == "bf16",
            use_cpu=hardware.device == "cpu",
            dataloader_num_workers=self.num_workers,
            disable_tqdm=not self._draws_bars(parts),
            include_num_input_tokens_seen="non_padding",
            report_to="none",  # xp logs to MLflow itself; the Trainer's callback would log twice
            **sampling,
            **saving,
            **generating,
        )

    def _draws_bars(self, parts: Parts) -> bool:
        """The experiment asks for bars and the console shows them (not under `xp run -q`)."""
        return self.progress_bar and parts.console.shows_progress

    def run(self, parts: Parts, logger: Any) -> RunResult:
        from transformers import EarlyStoppingCallback, Seq2SeqTrainer, Trainer, TrainerCallback
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        from xp_plugins.runner.trainer_logs import CheckpointEvery, LogRelay, QuietProgress, StopWhenAsked

        seen = _Evaluation(logger)
        relay = LogRelay(logger, self.batch_size * self.gradient_accumulation_steps)
        callbacks: list[TrainerCallback] = [relay]
        plan = parts.checkpoints
        if plan is not None and plan.saves:
            callbacks.append(CheckpointEvery(plan))
        if self.early_stopping_patience is not None:
            callbacks.append(EarlyStoppingCallback(self.early_stopping_patience, self.early_stopping_min_delta))
        stopper = StopWhenAsked(parts.should_stop) if parts.should_stop is not None else None
        if stopper is not None:
            callbacks.append(stopper)
        # A task that generates is evaluated by the Seq2SeqTrainer, which generates for each batch
        # (`predict_with_generate`) and hands the token ids on as the predictions.
        trainer_class = Seq2SeqTrainer if generation_options(parts.task) is not None else Trainer
        trainer = trainer_class(
            model=parts.model,
            args=self.training_arguments(parts),
            data_collator=parts.collator,
            train_dataset=parts.encoded["train"],
            eval_dataset=parts.encoded["eval"],
            processing_class=parts.encoder.tokenizer,
            optimizers=(parts.optimizer, parts.scheduler),
            compute_metrics=lambda prediction: _compute_metrics(prediction, parts, seen),
            # Each batch's outputs decoded on its device, as the loop runners do: the Trainer then
            # pads and gathers predictions and scores, never the logits. It hands on the outputs
            # after the loss, one tensor alone or a tuple; the task always gets a tuple. (Its
            # annotation says a tensor; it takes tuples of tensors, as model outputs often are.)
            preprocess_logits_for_metrics=cast(
                Any,
                lambda outputs, labels: decoded(
                    parts.task, outputs if isinstance(outputs, tuple) else (outputs,), labels
                ),
            ),
            callbacks=callbacks,
        )
        seen.trainer = trainer
        # xp prints evaluation results itself; the Trainer's printers would repeat them as dicts.
        trainer.remove_callback(PrinterCallback)
        if self._draws_bars(parts):
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(QuietProgress())
        resume = plan.resume_from if plan is not None else None
        try:
            trainer.train(resume_from_checkpoint=str(resume.folder) if resume else None)
        finally:
            # The Trainer makes its output folder (output_dir) up front, checkpoints or not.
            if trainer.is_world_process_zero():
                _remove_if_empty(_checkpoint_folder(parts), parts.output_dir)
        step = trainer.state.global_step
        best_model_loaded = self.early_stopping_patience is not None
        best_step = _step_of(trainer.state.best_model_checkpoint) if best_model_loaded else None
        # The final metrics are those of the evaluation whose weights the model ends with; the loop
        # runners evaluate again (and log it) only when the last step had no evaluation either.
        if best_step in relay.evals:
            eval_metrics = relay.evals[best_step]
        elif relay.last_eval is not None and relay.last_eval[0] == step and not best_model_loaded:
            eval_metrics = relay.last_eval[1]
        else:
            eval_metrics = trainer.evaluate()
        eval_metrics = {k: v for k, v in eval_metrics.items() if k not in TRAINER_ONLY_LOGS and k != "epoch"}
        result = RunResult(
            eval_metrics=eval_metrics,
            steps=step,
            best_step=best_step,
            curves=Curves(tuple(relay.train_curve), tuple(sorted(relay.evals.items()))),
            predictions=seen.stats,
            cut_short=stopper is not None and stopper.stopped,
        )
        if result.cut_short:  # a trial given up: its test predictions and model would go unused
            return result
        if self.runs_test_split(parts):
            self._predict_test(trainer, parts, logger, result, seen)
        if self.save_model and trainer.is_world_process_zero():
            result.model_dir = save_model(trainer.model, parts)
        return result

    def _predict_test(self, trainer: Any, parts: Parts, logger: Any, result: RunResult, seen: _Evaluation) -> None:
        data = parts.data
        seen.split = "test"
        output = trainer.predict(parts.encoded["test"], metric_key_prefix="test")
        if data.test_has_labels:
            result.test_metrics = {
                k: v
                for k, v in output.metrics.items()
                if k not in TRAINER_ONLY_LOGS and not k.startswith(("test_runtime", "test_samples", "test_steps"))
            }
            logger.log_metrics(result.test_metrics, result.steps)
        if self.predict and trainer.is_world_process_zero():
            predictions = per_row(_decoded(output.predictions, references=output.label_ids), parts, "test")
            result.predictions_path = write_predictions(predictions, data, parts.output_dir / "predictions.csv")
            if result.predictions_path is not None:
                logger.log_artifact(result.predictions_path)
            keep_evaluation_files(predictions, parts, "test", result.steps, logger, trainer.model)


def _generating(parts: Parts) -> dict[str, Any]:
    """For a task that generates: the Seq2SeqTrainingArguments that make the Seq2SeqTrainer
    evaluate by generating, with the task's settings (on top of the model's own generation config:
    its start, end and padding tokens)."""
    options = generation_options(parts.task)
    if options is None:
        return {}
    import copy

    config = copy.deepcopy(parts.model.generation_config)
    config.update(**options)
    return {"predict_with_generate": True, "generation_config": config}


def _decoded(outputs: Any, references: Any) -> Predictions:
    """The Trainer's gathered (predictions, scores), as the loop runners hold them. The references
    are the batches' `labels`, or the task's other targets side by side (question answering's
    start and end positions), or None when the split has none."""
    import numpy as np

    predictions, scores = (np.asarray(values) for values in outputs)
    if isinstance(references, tuple):
        references = np.stack(references, axis=-1)
    return Predictions(predictions, scores, references, None)


class _Evaluation:
    """What `compute_metrics` needs besides the Trainer's predictions: the split they are of, the
    step (the Trainer's, once made), where to log the files the task keeps; and what it leaves for
    the diagnosis, the statistics of the last validation predictions."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.split = "eval"
        self.trainer: Any = None
        self.stats: PredictionStats | None = None


def _compute_metrics(prediction: Any, parts: Parts, seen: _Evaluation) -> dict[str, float]:
    predictions = per_row(_decoded(prediction.predictions, prediction.label_ids), parts, seen.split)
    if seen.split == "eval":
        seen.stats = parts.task.prediction_stats(predictions.predictions, predictions.references)
        if seen.trainer.is_world_process_zero():
            step = seen.trainer.state.global_step
            keep_evaluation_files(predictions, parts, "eval", step, seen.logger, seen.trainer.model)
    # The Trainer adds the "eval_"/"test_" prefix itself.
    return {name[len("x_") :]: value for name, value in score(predictions, parts.metrics, "x").items()}


def _checkpoint_folder(parts: Parts) -> Path:
    return parts.checkpoints.folder if parts.checkpoints is not None else parts.output_dir / "checkpoints"


def _remove_if_empty(folder: Path, up_to: Path) -> None:
    """`folder` and its parents below `up_to`, those left empty."""
    with contextlib.suppress(OSError, ValueError):  # rmdir refuses a folder that holds anything: checkpoints stay
        while folder.resolve() != up_to.resolve() and folder.resolve().is_relative_to(up_to.resolve()):
            folder.rmdir()
            folder = folder.parent


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
