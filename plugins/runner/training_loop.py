"""The course's training loop as real code, written once for the `loop` and `accelerate` runners:
data loaders, forward, backward, optimizer and scheduler steps, evaluation, early stopping,
prediction and saving, with gradient accumulation, clipping and mixed precision.
"""
from __future__ import annotations

import math
import time
from typing import Any, Iterator

from tracker.components import Parts, RunResult
from tracker.curves import diagnose
from tracker.early_stopping import EarlyStopping
from xp_plugins.runner.evaluation import predict, score, write_predictions
from xp_plugins.runner.settings import TrainingSettings


def make_loader(dataset: Any, batch_size: int, collator: Any, *, shuffle: bool, seed: int,
                group_by_length: bool = False, num_workers: int = 0) -> Any:
    """A DataLoader over a tokenized split; shuffling draws from its own seeded generator so
    the data order does not depend on how much of the global random stream the model used."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if shuffle and group_by_length:
        # The Trainer's sampler: shuffled, then sorted by length within windows of 50 batches,
        # so each batch pads to a length close to its rows' own (bench/: pads 26% -> 1.5% on MRPC).
        import pyarrow.compute
        from transformers.trainer_pt_utils import LengthGroupedSampler

        # Row lengths straight from the Arrow column: no Python list of every row's token ids.
        lengths = pyarrow.compute.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collator, sampler=sampler,
                      shuffle=shuffle and sampler is None, generator=generator, num_workers=num_workers)


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
        metrics = {"train_loss": float(loss),
                   "train_samples_per_second": self.samples * backend.num_processes / seconds,
                   "train_tokens_per_second": float(tokens) / seconds}
        self.reset()
        return metrics


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
    from torch.profiler import record_function

    collator, seed = parts.collator, parts.seed
    train_loader = make_loader(parts.encoded["train"], settings.batch_size, collator, shuffle=True, seed=seed,
                               group_by_length=settings.group_by_length, num_workers=settings.num_workers)
    eval_batch_size = settings.eval_batch_size or settings.batch_size
    eval_loaders = [make_loader(parts.encoded[split], eval_batch_size, collator, shuffle=False, seed=seed,
                                num_workers=settings.num_workers)
                    for split in ("eval", "test") if split == "eval" or settings.runs_test_split(parts)]
    model, optimizer, scheduler, train_loader, *eval_loaders = backend.prepare(
        parts.model, parts.optimizer, parts.scheduler, train_loader, *eval_loaders)
    eval_loader = eval_loaders[0]
    test_loader = eval_loaders[1] if len(eval_loaders) > 1 else None

    steps_per_epoch = settings.steps_per_epoch(len(train_loader))
    total_steps = settings.max_steps or steps_per_epoch * settings.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    steps_scheduler_on_eval = _steps_on_metric(parts.scheduler)
    is_regression = parts.task.labels.is_regression
    stopper = (EarlyStopping(settings.metric_for_best, settings.early_stopping_patience,
                             settings.early_stopping_min_delta) if settings.early_stopping_patience else None)
    train_curve: list[tuple[int, float]] = []
    eval_curve: list[tuple[int, float]] = []
    best_state, best_metrics, last_eval = None, None, None
    step, grad_norm, learning_rate, window = 0, None, None, _Window()
    epochs_done = 0.0  # the fraction of the data seen, as the Trainer counts it: batches, not steps
    shows_progress = settings.progress_bar and backend.is_main_process
    progress = parts.console.progress(total_steps, "train", enabled=shows_progress)

    def evaluate(loader: Any, has_labels: bool = True) -> Any:
        with parts.console.progress(len(loader), "evaluation", leave=False, enabled=shows_progress) as bar:
            return predict(model, loader, backend, is_regression, has_labels, progress=bar)

    def evaluate_now() -> bool:
        """Evaluate, log, track the best model; True when early stopping says stop."""
        nonlocal best_state, best_metrics, last_eval
        metrics = score(evaluate(eval_loader), parts.metrics, "eval")
        metrics["epoch"] = epochs_done
        logger.log_metrics(metrics, step)
        eval_curve.append((step, metrics["eval_loss"]))
        last_eval = (step, metrics)
        if steps_scheduler_on_eval:
            scheduler.step(metrics["eval_loss"])
        if stopper is None:
            return False
        if stopper.update(metrics, step):
            # Keep the best weights in memory (on the CPU) to restore them at the end.
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in backend.unwrap(model).state_dict().items()}
            best_metrics = metrics
        return stopper.should_stop

    def logs_at(step: int) -> bool:
        return step % settings.logging_steps == 0 or step == total_steps

    # The record_function labels name the phases of a step for torch.profiler (bench/run.py profile).
    model.train()
    stop = False
    for epoch in range(num_epochs):
        for index, batch in enumerate(_labelled(train_loader, "xp.data")):
            with record_function("xp.step"):
                with backend.accumulate(model, last_batch=index == len(train_loader) - 1):
                    with record_function("xp.forward"), backend.autocast():
                        loss = model(**batch).loss
                    with record_function("xp.backward"):
                        backend.backward(loss)
                    window.add(loss, batch)
                    if not backend.sync_gradients:
                        continue
                    with record_function("xp.optimizer"):
                        # Without clipping the norm is only logged: computing it at every step
                        # costs a pass over all gradients (bench/: 2% of a MiniLM step on a CPU).
                        if settings.max_grad_norm or logs_at(step + 1):
                            grad_norm = backend.clip_grad_norm(model, optimizer, settings.max_grad_norm)
                        # Log the rate this step used, before the scheduler moves it on, as the Trainer does.
                        learning_rate = optimizer.param_groups[0]["lr"]
                        backend.optimizer_step(optimizer)
                        if not steps_scheduler_on_eval:
                            scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                step += 1
                epochs_done = epoch + (index + 1) / len(train_loader)
                progress.update(1)
                if logs_at(step):
                    with record_function("xp.logging"):
                        metrics = window.flush(backend)
                        metrics.update(learning_rate=learning_rate, grad_norm=float(grad_norm),
                                       epoch=epochs_done)
                        logger.log_metrics(metrics, step)
                        train_curve.append((step, metrics["train_loss"]))
                        progress.set_postfix(loss=f"{metrics['train_loss']:.4f}")
            if settings.eval_strategy == "steps" and step % settings.eval_steps == 0:
                stop = evaluate_now()
            if stop or step >= total_steps:
                break
        if not stop and settings.eval_strategy == "epoch":
            stop = evaluate_now()
        if stop or step >= total_steps:
            break
    progress.close()

    if best_state is not None:
        backend.unwrap(model).load_state_dict(best_state)
        final_metrics = best_metrics
    elif last_eval is not None and last_eval[0] == step:
        final_metrics = last_eval[1]
    else:
        final_metrics = score(evaluate(eval_loader), parts.metrics, "eval")
        logger.log_metrics(final_metrics, step)
        eval_curve.append((step, final_metrics["eval_loss"]))

    result = RunResult(eval_metrics={k: v for k, v in final_metrics.items() if k != "epoch"}, steps=step,
                       best_step=stopper.best_step if stopper else None,
                       diagnosis=diagnose(train_curve, eval_curve))
    if test_loader is not None:
        _predict_test(settings, parts, evaluate(test_loader, parts.task.test_has_labels), backend, logger, result)
    if settings.save_model and backend.is_main_process:
        result.model_dir = save_model(backend.unwrap(model), parts)
    backend.wait_for_everyone()
    return result


def _predict_test(settings: TrainingSettings, parts: Parts, predictions: Any, backend: Any, logger: Any,
                  result: RunResult) -> None:
    task = parts.task
    if task.test_has_labels:
        result.test_metrics = score(predictions, parts.metrics, "test")
        logger.log_metrics(result.test_metrics, result.steps)
    if settings.predict and backend.is_main_process:
        ids = task.ids.get("test") or range(len(predictions.predictions))
        result.predictions_path = write_predictions(predictions, ids, task.labels.names, task.id_column,
                                                    parts.output_dir / "predictions.csv")
        logger.log_artifact(result.predictions_path)


def _steps_on_metric(scheduler: Any) -> bool:
    """Plateau-style schedulers step once per evaluation, given the validation loss."""
    import torch
    from transformers.optimization import GreedyLR

    return isinstance(scheduler, (torch.optim.lr_scheduler.ReduceLROnPlateau, GreedyLR))


def save_model(model: Any, parts: Parts) -> Any:
    """save_pretrained the model and its tokenizer side by side, loadable with from_pretrained,
    with `xp.json` saying which text columns feed it (for `xp predict`)."""
    from tracker.model_export import ModelCard

    folder = parts.output_dir / "model"
    model.save_pretrained(folder)
    parts.encoder.tokenizer.save_pretrained(folder)
    ModelCard.of(parts.task, parts.encoder.max_length).write(folder)
    return folder
