"""Turn the suites' JSON records (bench/results/*.json) into the markdown tables of BENCHMARKS.md.

python bench/report.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(folder: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def verdict(value: float, target: float, at_most: bool = True) -> str:
    return "met" if (value <= target if at_most else value >= target) else "**missed**"


def ratio_row(figure: str, entry: dict, target: float | None, unit: str, fmt: str = "{:.3f}") -> str:
    """A ratio with its range over repetitions and both absolute medians; no target: for reference."""
    names = [key for key in entry if key not in ("ratio", "ratios")]
    absolute = " vs ".join(f"{fmt.format(entry[name])} {unit}" for name in names)
    spread = f"{min(entry['ratios']):.3f}–{max(entry['ratios']):.3f}"
    judged = f"≤ {target} | {verdict(entry['ratio'], target)}" if target is not None else "(reference) |"
    return f"| {figure} | **{entry['ratio']:.3f}** ({spread}) | {absolute} | {judged} |"


def main_table(results: dict[str, dict]) -> list[str]:
    rows = [
        "| figure | median ratio (range over repetitions) | absolute, median | target | |",
        "| --- | --- | --- | --- | --- |",
    ]
    if "speed" in results:
        speed = results["speed"]
        step, first, rss = speed["step_time"], speed["first_step"], speed["peak_rss"]
        rows += [
            ratio_row(
                "training time per step: `xp run` runner `loop` / hand-written loop",
                step["xp_loop / hand_loop"],
                1.03,
                "s",
            ),
            ratio_row(
                "same, with the script's AdamW kernel (`optimizer.fused=false`): xp's own overhead",
                step["xp_loop, same AdamW kernel / hand_loop"],
                1.03,
                "s",
            ),
            ratio_row(
                "training time per step: runner `trainer` / plain `Trainer` script",
                step["xp_trainer / hand_trainer"],
                1.03,
                "s",
            ),
            ratio_row(
                "training time per step: runner `accelerate` / hand-written loop",
                step["xp_accelerate / hand_loop"],
                1.05,
                "s",
            ),
            ratio_row(
                "tracking overhead: MLflow logging every step / tracking off (runner `loop`)",
                step["tracking every step / tracking off"],
                1.01,
                "s",
            ),
            ratio_row(
                "time from launch to the first optimizer step: `xp run` (`loop`) / hand-written loop",
                first["xp_loop / hand_loop"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "same, runner `trainer` / plain `Trainer` script",
                first["xp_trainer / hand_trainer"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "same, runner `loop` with tracking off / hand-written loop",
                first["xp_loop, tracking off / hand_loop"],
                None,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "peak resident memory: `xp run` (`loop`, tracking on) / hand-written loop",
                rss["xp_loop / hand_loop"],
                1.10,
                "MiB",
                "{:.0f}",
            ),
            ratio_row(
                "peak resident memory: runner `trainer` / plain `Trainer` script",
                rss["xp_trainer / hand_trainer"],
                None,
                "MiB",
                "{:.0f}",
            ),
            ratio_row(
                "peak resident memory: runner `loop` with tracking off / hand-written loop",
                rss["xp_loop, tracking off / hand_loop"],
                None,
                "MiB",
                "{:.0f}",
            ),
        ]
    if "first_step" in results:
        alone = results["first_step"]
        first = alone["first_step"]
        rows += [
            ratio_row(
                f"time to the first optimizer step alone ({alone['reps']} repetitions of 2-step runs): "
                "`xp run` (`loop`) / hand-written loop",
                first["xp_loop / hand_loop"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "same, runner `trainer` / plain `Trainer` script",
                first["xp_trainer / hand_trainer"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "same, runner `loop` with tracking off / hand-written loop",
                first["xp_loop, tracking off / hand_loop"],
                None,
                "s",
                "{:.2f}",
            ),
        ]
        if "wall" in alone:
            rows += [
                ratio_row(
                    "the same 2-step runs, launch to exit (evaluation and the run's end included): "
                    "`xp run` (`loop`) / hand-written loop",
                    alone["wall"]["xp_loop / hand_loop"],
                    None,
                    "s",
                    "{:.2f}",
                ),
                ratio_row(
                    "same, runner `trainer` / plain `Trainer` script",
                    alone["wall"]["xp_trainer / hand_trainer"],
                    None,
                    "s",
                    "{:.2f}",
                ),
            ]
    if "startup" in results:
        tokenize = results["startup"]["tokenization"]["xp second run / first run"]
        rows.append(
            ratio_row("tokenization time, second run of the same experiment / first run", tokenize, 0.1, "s", "{:.3f}")
        )
    if "grouping" in results:
        entry = results["grouping"]["epoch_time"]["shuffled / grouped"]
        rows.append(
            f"| length-grouped batching, runner `loop`: time per epoch, shuffled / grouped "
            f"| **{entry['ratio']:.2f}×** ({min(entry['ratios']):.2f}–{max(entry['ratios']):.2f}) "
            f"| {entry['xp_loop']:.0f} s vs {entry['xp_loop_grouped']:.0f} s per epoch "
            f"| ≥ 1.2× | {verdict(entry['ratio'], 1.2, at_most=False)} |"
        )
    if "accuracy" in results:
        accuracy = results["accuracy"]
        points = accuracy["points_from_hand_loop"]
        for name, label in (("xp_loop", "runner `loop`"), ("xp_trainer", "runner `trainer`")):
            worst = max(abs(points[name]["accuracy"]), abs(points[name]["f1"]))
            rows.append(
                f"| MRPC validation after {accuracy['epochs']} epochs, {label} − hand-written loop "
                f"| accuracy {points[name]['accuracy']:+.2f} pts, F1 {points[name]['f1']:+.2f} pts "
                f"| {scores(accuracy['scores'][name])} vs {scores(accuracy['scores']['hand_loop'])} "
                f"| within 1.5 pts | {verdict(worst, 1.5)} |"
            )
        if "grouping" not in results:  # the epochs of the 3-epoch runs, back to back
            speedup = accuracy["grouped_speedup_per_epoch"]
            epochs = accuracy["epoch_seconds"]
            rows.append(
                f"| length-grouped batching, runner `loop`: time per epoch, shuffled / grouped "
                f"| **{speedup['median']:.2f}×** ({min(speedup['ratios']):.2f}–{max(speedup['ratios']):.2f}) "
                f"| {median(epochs['xp_loop']):.0f} s vs {median(epochs['xp_loop_grouped']):.0f} s per epoch "
                f"| ≥ 1.2× | {verdict(speedup['median'], 1.2, at_most=False)} |"
            )
        grouped, shuffled = accuracy["scores"]["xp_loop_grouped"], accuracy["scores"]["xp_loop"]
        delta = 100 * (grouped["accuracy"] - shuffled["accuracy"])
        rows.append(
            f"| length-grouped batching: validation accuracy, grouped − shuffled | {delta:+.2f} pts "
            f"| {scores(grouped)} vs {scores(shuffled)} | within 1 pt | {verdict(abs(delta), 1.0)} |"
        )
    return rows if len(rows) > 2 else []  # the header alone: none of these suites ran


def scores(entry: dict) -> str:
    return f"acc {entry['accuracy']:.4f} / F1 {entry['f1']:.4f}"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def cli_table(results: dict[str, dict]) -> list[str]:
    if "startup" not in results:
        return []
    rows = ["| command | median wall time |", "| --- | --- |"]
    rows += [f"| `{label}` | {entry['median_seconds']:.2f} s |" for label, entry in results["startup"]["cli"].items()]
    return rows


def tracking_start_table(results: dict[str, dict]) -> list[str]:
    if "startup" not in results:
        return []
    rows = [
        "| before the first step, the training process of `xp run` with tracking on spends "
        "(cProfile, cumulative) | seconds |",
        "| --- | --- |",
    ]
    rows += [
        f"| {label} | {seconds:.2f} |" if seconds is not None else f"| {label} | none (never called) |"
        for label, seconds in results["startup"]["tracking_start_profile"].items()
    ]
    return rows


def padding_table(results: dict[str, dict]) -> list[str]:
    if "padding" not in results:
        return []
    padding = results["padding"]
    rows = [
        "| MRPC train, batch 8, one epoch | pad tokens / all tokens | mean pad share per batch | tokens per epoch |",
        "| --- | --- | --- | --- |",
    ]
    for name, label in (
        ("shuffled", "shuffled (the course's `DataLoader(shuffle=True)`)"),
        ("grouped", "length-grouped (`group_by_length = true`)"),
    ):
        entry = padding[name]
        rows.append(
            f"| {label} | {100 * entry['pad_fraction']:.1f}% | {100 * entry['mean_pad_share_per_batch']:.1f}% "
            f"| {entry['tokens_per_epoch']:,} |"
        )
    return rows


def profile_table(results: dict[str, dict]) -> list[str]:
    if "profile" not in results:
        return []
    profile = results["profile"]
    phases = profile["seconds_per_step"]
    total = sum(phases.values())
    rows = ["| phase of one `loop` step | ms per step | share |", "| --- | --- | --- |"]
    rows += [f"| {name} | {1000 * seconds:.1f} | {100 * seconds / total:.1f}% |" for name, seconds in phases.items()]
    rows.append(f"| total | {1000 * total:.1f} | 100% |")
    return rows


def pruning_table(results: dict[str, dict]) -> list[str]:
    """The same study without and with the median pruner, side by side."""
    if "pruning" not in results:
        return []
    pruning = results["pruning"]
    none, median = pruning["studies"]["none"], pruning["studies"]["median"]
    ratios = pruning["ratios"]
    rows = [
        f"| MRPC study, {pruning['trials']} trials ({pruning['train_rows']} training rows) | pruner `none` "
        f"| pruner `median` | median / none |",
        "| --- | --- | --- | --- |",
    ]
    for label, key, fmt in (
        ("rows trained on, all trials (epochs × training rows)", "rows_trained", "{:,}"),
        ("optimizer steps, all trials", "steps", "{:,}"),
        ("evaluations, all trials", "evaluations", "{:,}"),
        ("wall time of `xp sweep`", "wall_seconds", "{:.0f} s"),
    ):
        rows.append(f"| {label} | {fmt.format(none[key])} | {fmt.format(median[key])} | **{ratios[key]:.3f}** |")
    rows.append(f"| trials complete / pruned / failed | {trial_counts(none)} | {trial_counts(median)} | |")
    rows.append(
        f"| best eval/f1 (trial) | {best(none)} | {best(median)} | {100 * pruning['best_difference']:+.2f} pts |"
    )
    rows.append(
        f"| **compute saved** by the median pruner: 1 − rows trained (median / none) | | "
        f"| **{100 * pruning['compute_saved']:.1f}%** |"
    )
    return rows


def scaleout_table(results: dict[str, dict]) -> list[str]:
    """Running wider on this machine: N experiments through Ray, and training on 2 processes."""
    if "scaleout" not in results:
        return []
    scaleout = results["scaleout"]
    return [
        f"| figure | median ratio (range over {scaleout['reps']} repetitions) | absolute, median | target | |",
        "| --- | --- | --- | --- | --- |",
        ratio_row(
            f"{scaleout['experiments']} experiments ({scaleout['rows_per_experiment']} training rows "
            "each), experiments per hour: `xp run --executor ray` / `xp run` one by one",
            scaleout["experiments_per_hour"]["ray / local"],
            None,
            "per hour",
            "{:.0f}",
        ),
        ratio_row(
            f"training throughput ({scaleout['training_rows']} rows, runner `accelerate`), rows per "
            "second: `xp run --processes 2` / one process",
            scaleout["training_throughput"]["2 processes / 1 process"],
            None,
            "rows/s",
            "{:.1f}",
        ),
    ]


def predict_table(results: dict[str, dict]) -> list[str]:
    """`xp predict` against the course's `pipeline(...)` script, on the same model and rows."""
    if "predict" not in results:
        return []
    predict = results["predict"]
    first, wall = predict["first_batch"], predict["wall"]
    rows = f"MRPC {predict['split']}, batches of {predict['batch_size']}"
    return [
        f"| figure | median ratio (range over {predict['reps']} repetitions) | absolute, median | target | |",
        "| --- | --- | --- | --- | --- |",
        ratio_row(
            "time from launch to the first batch predicted: `xp predict RUN` (the model found through its run "
            "in MLflow) / `pipeline(...)` script on the run's model folder",
            first["xp predict RUN / pipeline"],
            None,
            "s",
            "{:.2f}",
        ),
        ratio_row(
            "same, `xp predict FOLDER` (the run's model folder, no store) / `pipeline(...)` script",
            first["xp predict FOLDER / pipeline"],
            None,
            "s",
            "{:.2f}",
        ),
        ratio_row(
            f"launch to exit ({rows}, written out): `xp predict RUN` / `pipeline(...)` script",
            wall["xp predict RUN / pipeline"],
            None,
            "s",
            "{:.2f}",
        ),
        ratio_row(
            "same, `xp predict FOLDER` / `pipeline(...)` script",
            wall["xp predict FOLDER / pipeline"],
            None,
            "s",
            "{:.2f}",
        ),
        ratio_row(
            "peak resident memory: `xp predict RUN` / `pipeline(...)` script",
            predict["peak_rss"]["xp predict RUN / pipeline"],
            None,
            "MiB",
            "{:.0f}",
        ),
    ]


def ner_table(results: dict[str, dict]) -> list[str]:
    """Token classification against the course's chapter 7 loop, and the F1 of a whole run."""
    rows = []
    if "ner" in results:
        ner = results["ner"]
        step, first, rss = ner["step_time"], ner["first_step"], ner["peak_rss"]
        f1 = ner["entity_f1"]
        same = all(rep["xp_ner_same_kernel"] == rep["hand_ner"] for rep in f1)
        rows += [
            f"| figure (CoNLL-2003, {ner['steps']} steps of 16 sentences) | median ratio (range over "
            f"{ner['reps']} repetitions) | absolute, median | target | |",
            "| --- | --- | --- | --- | --- |",
            ratio_row(
                "token classification, time per step: `xp run` runner `loop` / hand-written loop",
                step["xp_ner / hand_ner"],
                1.0,
                "s",
            ),
            ratio_row(
                "same, with the script's AdamW kernel (`optimizer.fused=false`)",
                step["xp_ner, same AdamW kernel / hand_ner"],
                None,
                "s",
            ),
            ratio_row(
                "token classification, time to the first optimizer step: `xp run` / hand-written loop",
                first["xp_ner / hand_ner"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "token classification, peak resident memory: `xp run` / hand-written loop",
                rss["xp_ner / hand_ner"],
                None,
                "MiB",
                "{:.0f}",
            ),
            "| entity F1 on the validation file after those steps: xp, xp with the script's kernel, "
            "hand-written loop, per repetition | "
            + "; ".join(f"{rep['xp_ner']:.4f}, {rep['xp_ner_same_kernel']:.4f}, {rep['hand_ner']:.4f}" for rep in f1)
            + f" | | equal with the same kernel | {'met' if same else 'MISSED'} |",
        ]
    if "ner_accuracy" in results:
        accuracy = results["ner_accuracy"]
        f1 = accuracy["entity_f1"]
        if not rows:
            rows += ["| figure | value | | | |", "| --- | --- | --- | --- | --- |"]
        rows.append(
            f"| entity F1 of `experiments/conll2003_ner.toml`, {accuracy['epochs']} epochs ({accuracy['steps']} "
            f"steps, {accuracy['wall_seconds'] / 60:.0f} min): validation / test | {f1['validation']:.4f} / "
            f"{f1['test']:.4f} | word accuracy {accuracy['word_accuracy']['validation']:.4f} | (reference) | |"
        )
    return rows


def qa_table(results: dict[str, dict]) -> list[str]:
    """Question answering against the course's chapter 7 loop, and the scores of a whole run."""
    rows = []
    if "qa" in results:
        qa = results["qa"]
        step, first, rss = qa["step_time"], qa["first_step"], qa["peak_rss"]
        same = all(rep["xp_qa_same_kernel"] == rep["hand_qa"] for rep in qa["scores"])
        rows += [
            f"| figure (SQuAD 2.0 sample, {qa['steps']} steps of 8 windows) | median ratio (range over "
            f"{qa['reps']} repetitions) | absolute, median | target | |",
            "| --- | --- | --- | --- | --- |",
            ratio_row(
                "question answering, time per step: `xp run` runner `loop` / hand-written loop",
                step["xp_qa / hand_qa"],
                1.0,
                "s",
            ),
            ratio_row(
                "same, with the script's AdamW kernel (`optimizer.fused=false`)",
                step["xp_qa, same AdamW kernel / hand_qa"],
                None,
                "s",
            ),
            ratio_row(
                "question answering, time to the first optimizer step: `xp run` / hand-written loop",
                first["xp_qa / hand_qa"],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "question answering, peak resident memory: `xp run` / hand-written loop",
                rss["xp_qa / hand_qa"],
                None,
                "MiB",
                "{:.0f}",
            ),
            "| exact match / F1 on the validation questions after those steps: xp, xp with the script's "
            "kernel, hand-written loop, per repetition | "
            + "; ".join(
                ", ".join(
                    f"{rep[name]['exact_match']:.2f} / {rep[name]['f1']:.2f}"
                    for name in ("xp_qa", "xp_qa_same_kernel", "hand_qa")
                )
                for rep in qa["scores"]
            )
            + f" | | equal with the same kernel | {'met' if same else 'MISSED'} |",
        ]
    if "qa_accuracy" in results:
        accuracy = results["qa_accuracy"]
        if not rows:
            rows += ["| figure | value | | | |", "| --- | --- | --- | --- | --- |"]
        rows.append(
            f"| exact match / F1 of `experiments/squad_qa.toml`, {accuracy['epochs']} epochs ({accuracy['steps']} "
            f"steps, {accuracy['wall_seconds'] / 60:.0f} min), validation questions | "
            f"{accuracy['scores']['exact_match']:.2f} / {accuracy['scores']['f1']:.2f} | | (reference) | |"
        )
    return rows


def lora_table(results: dict[str, dict]) -> list[str]:
    """A LoRA adapter against full fine-tuning on the same recipe, each at its own rate."""
    if "lora" not in results:
        return []
    lora = results["lora"]
    full, adapter, ratio = lora["variants"]["xp_full"], lora["variants"]["xp_lora"], lora["lora / full"]
    rates = lora["learning_rates"]

    def row(figure: str, key: str, shown: str, target: float | None = None, ratio_key: str | None = None) -> str:
        value = ratio[ratio_key] if ratio_key else None
        verdict = "" if target is None or value is None else ("met" if value <= target else "MISSED")
        return (
            f"| {figure} | {shown.format(full[key])} | {shown.format(adapter[key])} | "
            f"{'' if value is None else f'{value:.3f}×'} | {'' if target is None else f'≤ {target}'} | {verdict} |"
        )

    return [
        f"| MRPC, MiniLM, {lora['epochs']} epochs of the course's recipe (batch 8) | full fine-tuning "
        f"(lr {rates['xp_full']:g}) | LoRA r=8 (lr {rates['xp_lora']:g}) | LoRA / full | target | |",
        "| --- | --- | --- | --- | --- | --- |",
        row("parameters trained", "trainable_parameters", "{:,}", None, "trainable_parameters"),
        row("time per optimizer step (s)", "seconds_per_step", "{:.3f}", 1.0, "seconds_per_step"),
        row("peak resident memory (MiB)", "peak_rss_mib", "{:.0f}", None, "peak_rss"),
        row("saved model (weights, bytes)", "saved_model_bytes", "{:,}", 0.05, "saved_model"),
        row("validation accuracy", "accuracy", "{:.4f}"),
        row("validation F1", "f1", "{:.4f}"),
    ]


def summarization_table(results: dict[str, dict]) -> list[str]:
    """Summarization against the course's chapter 7 loop, and the ROUGE of a whole run."""
    rows = []
    if "summarization" in results:
        summarization = results["summarization"]
        step, first, rss = summarization["step_time"], summarization["first_step"], summarization["peak_rss"]
        key = "xp_summarization / hand_summarization"
        # Equal to 1e-9: the script averages the papers' scores with numpy, xp adds them up in order.
        same = all(
            abs(rep["xp_summarization_same_kernel"][score] - rep["hand_summarization"][score]) < 1e-9
            for rep in summarization["scores"]
            for score in rep["hand_summarization"]
        )
        rows += [
            f"| figure (SciTLDR, {summarization['steps']} steps of 8 papers at lr "
            f"{summarization.get('learning_rate', '5e-5')}, ROUGE on the first "
            f"{summarization['dev_papers']} validation papers) | median ratio (range over {summarization['reps']} "
            "repetitions) | absolute, median | target | |",
            "| --- | --- | --- | --- | --- |",
            ratio_row("summarization, time per step: `xp run` runner `loop` / hand-written loop", step[key], 1.0, "s"),
            ratio_row(
                "same, with the script's AdamW kernel (`optimizer.fused=false`)",
                step["xp_summarization, same AdamW kernel / hand_summarization"],
                None,
                "s",
            ),
            ratio_row(
                "summarization, time to the first optimizer step: `xp run` / hand-written loop",
                first[key],
                1.0,
                "s",
                "{:.2f}",
            ),
            ratio_row(
                "summarization, peak resident memory: `xp run` / hand-written loop", rss[key], None, "MiB", "{:.0f}"
            ),
            "| ROUGE-1 / 2 / L / Lsum after those steps: xp, xp with the script's kernel, hand-written loop, "
            "per repetition | "
            + "; ".join(
                ", ".join(
                    " / ".join(f"{rep[name][score]:.2f}" for score in ("rouge1", "rouge2", "rougeL", "rougeLsum"))
                    for name in ("xp_summarization", "xp_summarization_same_kernel", "hand_summarization")
                )
                for rep in summarization["scores"]
            )
            + f" | | equal with the same kernel | {'met' if same else 'MISSED'} |",
        ]
    if "summarization_accuracy" in results:
        accuracy = results["summarization_accuracy"]
        if not rows:
            rows += ["| figure | value | | | |", "| --- | --- | --- | --- | --- |"]
        scores = accuracy["scores"]
        rows.append(
            f"| ROUGE-1 / 2 / L / Lsum of `experiments/scitldr_summarization.toml`, {accuracy['epochs']} epochs "
            f"({accuracy['steps']} steps, {accuracy['wall_seconds'] / 60:.0f} min), validation papers | "
            f"{scores['rouge1']:.2f} / {scores['rouge2']:.2f} / {scores['rougeL']:.2f} / {scores['rougeLsum']:.2f} "
            "| | (reference) | |"
        )
    return rows


def trial_counts(study: dict) -> str:
    return f"{study['complete']} / {study['pruned']} / {study['failed']}"


def best(study: dict) -> str:
    return "none" if study["best_value"] is None else f"{study['best_value']:.4f} ({study['best_trial']})"


def machine_line(results: dict[str, dict]) -> str:
    machine = next(iter(results.values()))["machine"]
    return (
        f"{machine['date']}; {machine['processor']}, {machine['cpus']} CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), Python {machine['python']}, GPU: {machine['gpu'] or 'none'}"
    )


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    results = load(folder)
    if not results:
        raise SystemExit(f"no results in {folder}: run python bench/run.py first")
    sections = [
        [f"Machine: {machine_line(results)}"],
        main_table(results),
        cli_table(results),
        tracking_start_table(results),
        padding_table(results),
        profile_table(results),
        pruning_table(results),
        scaleout_table(results),
        predict_table(results),
        ner_table(results),
        qa_table(results),
        lora_table(results),
        summarization_table(results),
        [f"- `{record['command']}` ({record['suite_seconds'] / 60:.1f} min)" for record in results.values()],
    ]
    print("\n\n".join("\n".join(section) for section in sections if section))


if __name__ == "__main__":
    main()
