"""The course's training loop as real code, written once for the `loop` and `accelerate` runners:
data loaders, forward, backward, optimizer and scheduler steps, evaluation, early stopping,
prediction and saving, with gradient accumulation, clipping and mixed precision.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from tracker.plugin import Curves, EarlyStopping, Parts, PredictionStats, RunResult
from xp_plugins.runner.evaluation import keep_evaluation_files, per_row, predict, score, write_predictions
from xp_plugins.runner.loop_state import (
    LoopProgress,
    ResumableSampler,
    load_checkpoint,
    load_trained_state,
    restore_random_states,
    save_checkpoint,
    trained_state,
)
from xp_plugins.runner.settings import TrainingSettings


def make_loader(
    dataset: Any,
    batch_size: int,
    collator: Any,
    *,
    shuffle: bool,
    seed: int,
    group_by_length: bool = False,
    num_workers: int = 0,
) -> Any:
    """A DataLoader over a tokenized split; shuffling draws from its own seeded generator so
    the data order does not depend on how much of the global random stream the model used, and
    a resumed run can draw the same order again (loop_state.ResumableSampler)."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if shuffle and group_by_length:
        # The Trainer's sampler: shuffled, then sorted by length within windows of 50 batches,
        # so each batch pads to a length close to its rows' own (bench/: pads 26% -> 1.5% on MRPC).
        import pyarrow.compute
        from transformers.trainer_pt_utils import LengthGroupedSampler

        # Row lengths straight from the Arrow column: no Python list of every row's token ids.
        lengths = pyarrow.compute.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()
        sampler = ResumableSampler(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    elif shuffle:
        sampler = ResumableSampler(RandomSampler(dataset, generator=generator))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        collate_fn=collator,
        sampler=sampler,
        generator=generator,
        num_workers=num_workers,
    )


class _Window:
    """Training loss and throughput since the last log line, kept on the device until logged."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.tokens, self.batches, self.samples = 0.0, 0, 0, 0
        self.started = time.perf_counter()

    def add(self, loss: Any, batch: dict[str, Any]) -> None:
        self.loss_sum = self.loss_sum + loss.detach().float()
        mask = batch.get("attention_mask")
        self.tokens = self.tokens + (mask.sum() if mask is not None else batch["input_ids"].numel())
        self.batches += 1
        self.samples += batch["input_ids"].shape[0]

    def flush(self, backend: Any) -> dict[str, float]:
        import torch

        seconds = max(time.perf_counter() - self.started, 1e-9)
        loss = backend.reduce(torch.as_tensor(self.loss_sum / self.batches, device=backend.device), "mean")
        tokens = backend.reduce(torch.as_tensor(self.tokens, device=backend.device), "sum")
        metrics = {
            "train_loss": float(loss),
            "train_samples_per_second": self.samples * backend.num_processes / seconds,
            "train_tokens_per_second": float(tokens) / seconds,
        }
        self.reset()
        return metrics

    def state(self) -> dict[str, Any]:
        import torch

        return {
            "loss_sum": torch.as_tensor(self.loss_sum).cpu(),
            "tokens": torch.as_tensor(self.tokens).cpu(),
            "batches": self.batches,
            "samples": self.samples,
        }

    def restore(self, state: dict[str, Any], device: Any) -> None:
        if state:
            self.loss_sum, self.tokens = state["loss_sum"].to(device), state["tokens"].to(device)
            self.batches, self.samples = state["batches"], state["samples"]


def _labelled(loader: Any, label: str) -> Iterator[Any]:
    """The loader's batches, each fetched inside a profiler label."""
    from torch.profiler import record_function

    batches = iter(loader)
    while True:
        with record_function(label):
            batch = next(batches, _END)
        if batch is _END:
            return
        yield batch


_END = object()


def train_and_evaluate(settings: TrainingSettings, parts: Parts, backend: Any, logger: Any) -> RunResult:
    return _Training(settings, parts, backend, logger).run()


class _Training:
    """One run of the loop: trains, evaluates, checkpoints, and resumes from a checkpoint when
    the run's plan says so."""

    def __init__(self, settings: TrainingSettings, parts: Parts, backend: Any, logger: Any):
        self.settings, self.parts, self.backend, self.logger = settings, parts, backend, logger
        collator, seed = parts.collator, parts.seed
        train_loader = make_loader(
            parts.encoded["train"],
            settings.batch_size,
            collator,
            shuffle=True,
            seed=seed,
            group_by_length=settings.group_by_length,
            num_workers=settings.num_workers,
        )
        self.data_order = train_loader.sampler
        eval_batch_size = settings.eval_batch_size or settings.batch_size
        eval_loaders = [
            make_loader(
                parts.encoded[split],
                eval_batch_size,
                collator,
                shuffle=False,
                seed=seed,
                num_workers=settings.num_workers,
            )
            for split in ("eval", "test")
            if split == "eval" or settings.runs_test_split(parts)
        ]
        self.model, self.optimizer, self.scheduler, self.train_loader, *eval_loaders = backend.prepare(
            parts.model, parts.optimizer, parts.scheduler, train_loader, *eval_loaders
        )
        self.eval_loader = eval_loaders[0]
        self.test_loader = eval_loaders[1] if len(eval_loaders) > 1 else None

        self.steps_per_epoch = settings.steps_per_epoch(len(self.train_loader))
        self.total_steps = settings.max_steps or self.steps_per_epoch * settings.num_epochs
        self.num_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.steps_scheduler_on_eval = _steps_on_metric(parts.scheduler)
        self.stopper = (
            EarlyStopping(settings.metric_for_best, settings.early_stopping_patience, settings.early_stopping_min_delta)
            if settings.early_stopping_patience
            else None
        )
        self.progress, self.window = LoopProgress(), _Window()
        self.best_state: dict[str, Any] | None = None  # the best weights, with early stopping
        self.plan = parts.checkpoints if parts.checkpoints is not None and parts.checkpoints.saves else None
        self.shows_progress = settings.progress_bar and backend.is_main_process
        self.cut_short = False  # Parts.should_stop stopped training
        resume = parts.checkpoints.resume_from if parts.checkpoints is not None else None
        if resume is not None:
            self._restore(resume.folder)

    def evaluate(self, split: str, has_labels: bool = True) -> Any:
        """The split's predictions, one per row of its data."""
        loader = self.eval_loader if split == "eval" else self.test_loader
        assert loader is not None  # a test loader is made when the test split is evaluated
        with self.parts.console.progress(len(loader), "evaluation", leave=False, enabled=self.shows_progress) as bar:
            predictions = predict(self.model, loader, self.backend, self.parts.task, has_labels, progress=bar)
        return per_row(predictions, self.parts, split)

    def score_eval(self) -> dict[str, float]:
        """The validation metrics now; the predictions' statistics kept for the diagnosis, and the
        files the task keeps of them logged."""
        predictions = self.evaluate("eval")
        stats = self.parts.task.prediction_stats(predictions.predictions, predictions.references)
        self.progress.prediction_stats = asdict(stats) if stats is not None else None
        if self.backend.is_main_process:
            model = self.backend.unwrap(self.model)
            keep_evaluation_files(predictions, self.parts, "eval", self.progress.step, self.logger, model)
        return score(predictions, self.parts.metrics, "eval")

    def evaluate_now(self) -> None:
        """Evaluate, log, track the best model; early stopping may say stop."""
        progress = self.progress
        metrics = self.score_eval()
        metrics["epoch"] = progress.epochs_done
        self.logger.log_metrics(metrics, progress.step)
        progress.evaluations.append((progress.step, dict(metrics)))
        progress.last_eval = (progress.step, metrics)
        if self.steps_scheduler_on_eval:
            self.scheduler.step(metrics["eval_loss"])
        if self.stopper is not None:
            if self.stopper.update(metrics, progress.step):
                # Keep the best weights in memory (on the CPU) to restore them at the end.
                trained = trained_state(self.backend.unwrap(self.model))
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in trained.items()}
                progress.best_metrics = metrics
            progress.stopped = self.stopper.should_stop
        should_stop = self.parts.should_stop
        if should_stop is not None and should_stop(progress.step, metrics):
            progress.stopped = self.cut_short = True

    def logs_at(self, step: int) -> bool:
        return step % self.settings.logging_steps == 0 or step == self.total_steps

    def evaluates_at(self, step: int) -> bool:
        """As the Trainer does: every eval_steps, and at the last step."""
        if self.settings.eval_strategy != "steps":
            return False
        assert self.settings.eval_steps is not None  # a rule of TrainingSettings: "steps" needs eval_steps
        return step % self.settings.eval_steps == 0 or step >= self.total_steps

    def run(self) -> RunResult:
        settings, progress = self.settings, self.progress
        bar = self.parts.console.progress(self.total_steps, "train", enabled=self.shows_progress)
        bar.update(progress.step)
        self.model.train()
        if progress.epoch_complete:  # resumed at the end of an epoch: the next one starts afresh
            progress.epoch, progress.batches_done, progress.epoch_complete = progress.epoch + 1, 0, False
        resumed_in_epoch = progress.epoch_order is not None and progress.batches_done > 0
        for epoch in range(progress.epoch, self.num_epochs):
            if resumed_in_epoch:  # the same shuffle as before the stop, from where it stopped
                rows = progress.batches_done * settings.batch_size * self.backend.num_processes
                self.data_order.replay(progress.epoch_order, rows)
                resumed_in_epoch = False
            elif progress.stopped or progress.step >= self.total_steps:
                break
            else:
                progress.epoch, progress.batches_done, progress.epoch_complete = epoch, 0, False
                progress.epoch_order = self.data_order.order()
            self.train_epoch(bar)
            evaluated = not progress.stopped and settings.eval_strategy == "epoch"
            if evaluated:
                self.evaluate_now()
            progress.epoch_complete = True
            self.checkpoint_if_due(evaluated, at_epoch_end=True)
            if progress.stopped or progress.step >= self.total_steps:
                break
        bar.close()
        return self.finish()

    def train_epoch(self, bar: Any) -> None:
        from torch.profiler import record_function

        settings, backend, progress = self.settings, self.backend, self.progress
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        batches = len(self.train_loader)
        grad_norm = learning_rate = None
        if progress.stopped or progress.step >= self.total_steps:  # resumed from the run's last step
            return
        # The record_function labels name the phases of a step for torch.profiler (bench/run.py profile).
        for index, batch in enumerate(_labelled(self.train_loader, "xp.data"), start=progress.batches_done):
            progress.batches_done = index + 1
            with record_function("xp.step"):
                with backend.accumulate(model, last_batch=index == batches - 1):
                    with record_function("xp.forward"), backend.autocast():
                        loss = model(**batch).loss
                    with record_function("xp.backward"):
                        backend.backward(loss)
                    self.window.add(loss, batch)
                    if not backend.sync_gradients:
                        continue
                    with record_function("xp.optimizer"):
                        # Without clipping the norm is only logged: computing it at every step
                        # costs a pass over all gradients (bench/: 2% of a MiniLM step on a CPU).
                        if settings.max_grad_norm or self.logs_at(progress.step + 1):
                            grad_norm = backend.clip_grad_norm(model, optimizer, settings.max_grad_norm)
                        # Log the rate this step used, before the scheduler moves it on, as the Trainer does.
                        learning_rate = optimizer.param_groups[0]["lr"]
                        backend.optimizer_step(optimizer)
                        if not self.steps_scheduler_on_eval:
                            scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                progress.step += 1
                progress.epochs_done = progress.epoch + (index + 1) / batches
                bar.update(1)
                if self.logs_at(progress.step):
                    with record_function("xp.logging"):
                        metrics = self.window.flush(backend)
                        assert grad_norm is not None  # computed at this step's update: logs_at(step + 1) held
                        metrics.update(
                            learning_rate=learning_rate, grad_norm=float(grad_norm), epoch=progress.epochs_done
                        )
                        self.logger.log_metrics(metrics, progress.step)
                        progress.train_curve.append((progress.step, metrics["train_loss"]))
                        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}")
            evaluated = self.evaluates_at(progress.step)
            if evaluated:
                self.evaluate_now()
            self.checkpoint_if_due(evaluated)
            if progress.stopped or progress.step >= self.total_steps:
                return

    def checkpoint_if_due(self, evaluated: bool, at_epoch_end: bool = False) -> None:
        """Save after an optimizer step (at an epoch's end: only after its evaluation)."""
        plan, progress = self.plan, self.progress
        if plan is None or not (
            plan.due(progress.step, evaluated) if not at_epoch_end else evaluated and plan.at_evaluation
        ):
            return
        progress.window = self.window.state()
        progress.early_stopping = asdict(self.stopper) if self.stopper else None
        progress.order_now = self.data_order.order()
        self.backend.wait_for_everyone()
        with plan.writing(progress.step) as folder:
            save_checkpoint(folder, self.backend, self.model, self.optimizer, self.scheduler, progress, self.best_state)
            self.backend.wait_for_everyone()

    def _restore(self, folder: Any) -> None:
        self.progress, self.best_state = load_checkpoint(
            folder, self.backend, self.model, self.optimizer, self.scheduler
        )
        progress = self.progress
        self.window.restore(progress.window, self.backend.device)
        if self.stopper is not None and progress.early_stopping is not None:
            self.stopper = EarlyStopping(**progress.early_stopping)
        if progress.epoch_complete:
            self.data_order.replay(progress.order_now, 0)
        restore_random_states(folder, self.backend)

    def finish(self) -> RunResult:
        settings, parts, backend, progress = self.settings, self.parts, self.backend, self.progress
        step = progress.step
        if self.best_state is not None:
            load_trained_state(backend.unwrap(self.model), self.best_state)
            assert progress.best_metrics is not None  # kept with the best weights (evaluate_now)
            final_metrics = progress.best_metrics
        elif progress.last_eval is not None and progress.last_eval[0] == step:
            final_metrics = progress.last_eval[1]
        else:
            final_metrics = self.score_eval()
            self.logger.log_metrics(final_metrics, step)
            progress.evaluations.append((step, dict(final_metrics)))

        result = RunResult(
            eval_metrics={k: v for k, v in final_metrics.items() if k != "epoch"},
            steps=step,
            best_step=self.stopper.best_step if self.stopper else None,
            curves=Curves(tuple(progress.train_curve), tuple(progress.evaluations)),
            predictions=_stats(progress.prediction_stats),
            cut_short=self.cut_short,
        )
        if self.cut_short:  # a trial given up: its test predictions and model would go unused
            backend.wait_for_everyone()
            return result
        if self.test_loader is not None:
            _predict_test(
                settings,
                parts,
                self.evaluate("test", parts.data.test_has_labels),
                backend,
                self.logger,
                result,
                backend.unwrap(self.model),
            )
        if settings.save_model and backend.is_main_process:
            result.model_dir = save_model(backend.unwrap(self.model), parts)
        backend.wait_for_everyone()
        return result


def _stats(saved: dict[str, Any] | None) -> PredictionStats | None:
    if saved is None:
        return None
    fields: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in saved.items()}
    return PredictionStats(**fields)


def _predict_test(
    settings: TrainingSettings, parts: Parts, predictions: Any, backend: Any, logger: Any, result: RunResult, model: Any
) -> None:
    data = parts.data
    if data.test_has_labels:
        result.test_metrics = score(predictions, parts.metrics, "test")
        logger.log_metrics(result.test_metrics, result.steps)
    if settings.predict and backend.is_main_process:
        result.predictions_path = write_predictions(predictions, data, parts.output_dir / "predictions.csv")
        if result.predictions_path is not None:
            logger.log_artifact(result.predictions_path)
        keep_evaluation_files(predictions, parts, "test", result.steps, logger, model)


def _steps_on_metric(scheduler: Any) -> bool:
    """Plateau-style schedulers step once per evaluation, given the validation loss."""
    import torch
    from transformers.optimization import GreedyLR

    return isinstance(scheduler, (torch.optim.lr_scheduler.ReduceLROnPlateau, GreedyLR))


def save_model(model: Any, parts: Parts) -> Any:
    """save_pretrained the model and its tokenizer side by side, loadable with from_pretrained
    (xp writes its model card beside them)."""
    folder = parts.output_dir / "model"
    model.save_pretrained(folder)
    parts.encoder.tokenizer.save_pretrained(folder)
    return folder
