"""The `hf` dataset plugin: real MRPC from its hub-layout folder, csv files, and the errors it explains."""

import csv

import pytest

from tests.declared import problems_of
from tracker.components import DataSource
from tracker.errors import BuildError
from xp_plugins.dataset import hf
from xp_plugins.tasks.sequence_classification import SequenceClassification

PAIR = ["sentence1", "sentence2"]


@pytest.fixture(scope="module")
def mrpc(mrpc_path):
    return hf(SequenceClassification(), 42, path=str(mrpc_path), text_columns=PAIR, test_split="test")


def write_csv(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_mrpc_folder_gives_every_split_under_fixed_keys(mrpc, mrpc_path):
    # The tests' MRPC slice (tests/data/mrpc): 300, 100 and 100 rows of the hub's 3668, 408 and 1725.
    assert {key: len(split) for key, split in mrpc.splits.items()} == {"train": 300, "eval": 100, "test": 100}
    assert mrpc.task.label_names == ("not_equivalent", "equivalent")
    assert mrpc.text_columns == ("sentence1", "sentence2")
    # Where the rows came from, as the arguments that load them again: the folder, absolute.
    assert mrpc.source == DataSource(
        path=str(mrpc_path.resolve()), splits={"train": "train", "eval": "validation", "test": "test"}
    )


def test_mrpc_test_split_is_unlabelled_and_ids_come_from_idx(mrpc):
    assert mrpc.test_has_labels is False
    assert set(mrpc.splits["test"]["label"]) == {-1}
    assert list(mrpc.ids["eval"][:3]) == list(mrpc.splits["eval"]["idx"][:3])
    assert len(mrpc.ids["test"]) == 100


def test_max_rows_is_a_seeded_reproducible_sample(mrpc_path):
    def sample(seed):
        task = hf(
            SequenceClassification(), seed, path=str(mrpc_path), text_columns=PAIR, max_rows={"train": 50, "eval": 10}
        )
        return {key: list(ids) for key, ids in task.ids.items()}

    first = sample(7)
    assert len(first["train"]) == 50 and len(first["eval"]) == 10
    sampled = hf(
        SequenceClassification(), 7, path=str(mrpc_path), text_columns=PAIR, max_rows={"train": 50, "eval": 1000}
    ).source
    assert (sampled.sampled, sampled.seed) == ({"train": 50}, 7)  # 1000 is more than eval has: all of it
    assert sample(7) == first
    assert sample(8)["train"] != first["train"]


def test_max_rows_takes_the_split_keys_and_positive_counts(mrpc_path):
    [(key, message)] = problems_of(hf, path=str(mrpc_path), text_columns=PAIR, max_rows={"validation": 5}).items()
    assert key == "max_rows" and "keys: train, eval, test" in message
    assert list(problems_of(hf, path=str(mrpc_path), text_columns=PAIR, max_rows={"train": 0})) == ["max_rows"]


def test_sliced_splits(mrpc_path):
    task = hf(
        SequenceClassification(),
        1,
        path=str(mrpc_path),
        text_columns=PAIR,
        train_split="train[:100]",
        eval_split="train[100:150]",
    )
    assert len(task.splits["train"]) == 100 and len(task.splits["eval"]) == 50
    assert task.source.splits == {"train": "train[:100]", "eval": "train[100:150]"}
    assert task.source.load_args("eval") == {
        "path": str(mrpc_path.resolve()),
        "name": None,
        "data_dir": None,
        "data_files": None,
        "revision": None,
        "split": "train[100:150]",
    }


def test_the_source_names_local_files_by_absolute_paths(tmp_path, monkeypatch):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]
    write_csv(tmp_path / "train.csv", rows)
    (tmp_path / "dev").mkdir()
    write_csv(tmp_path / "dev" / "dev.csv", rows)
    monkeypatch.chdir(tmp_path / "dev")
    task = hf(
        SequenceClassification(),
        1,
        path="csv",
        data_files={"train": "../train.csv", "validation": "dev.csv"},
        text_columns=["text"],
    )
    assert task.source.data_files == {
        "train": (str(tmp_path / "train.csv"),),
        "validation": (str(tmp_path / "dev" / "dev.csv"),),
    }
    assert task.source.revision is None  # local files have no commit
    # The eval split loads again from its own file only (another file may have other columns).
    assert task.source.load_args("eval")["data_files"] == {"validation": [str(tmp_path / "dev" / "dev.csv")]}
    assert str(task.source) == (
        f"csv data_files={{'train': ['{tmp_path / 'train.csv'}'], 'validation': ['{tmp_path / 'dev' / 'dev.csv'}']}}"
    )


def test_data_files_of_a_folder_or_data_dir_are_made_absolute_where_datasets_reads_them(tmp_path, monkeypatch):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    write_csv(tmp_path / "folder" / "sub" / "train.csv", rows)
    write_csv(tmp_path / "folder" / "sub" / "dev.csv", rows)
    monkeypatch.chdir(tmp_path)
    in_folder = hf(
        SequenceClassification(),
        1,
        path="./folder",
        data_dir="sub",
        data_files={"train": "train.csv", "validation": "dev.csv"},
        text_columns=["text"],
    )
    assert in_folder.source.path == str(tmp_path / "folder")
    assert in_folder.source.data_files["train"] == (str(tmp_path / "folder" / "sub" / "train.csv"),)
    in_data_dir = hf(
        SequenceClassification(),
        1,
        path="csv",
        data_dir="folder/sub",
        data_files={"train": "train.csv", "validation": "dev.csv"},
        text_columns=["text"],
    )
    assert in_data_dir.source.data_dir == str(tmp_path / "folder" / "sub")
    assert in_data_dir.source.data_files["validation"] == (str(tmp_path / "folder" / "sub" / "dev.csv"),)


def test_one_file_or_a_list_of_files_is_the_train_split(tmp_path):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]
    train = write_csv(tmp_path / "train.csv", rows)
    task = hf(SequenceClassification(), 1, path="csv", data_files=train, text_columns=["text"], eval_split="train")
    assert task.source.data_files == {"train": (train,)}
    assert task.source.splits == {"train": "train", "eval": "train"}


def test_csv_with_string_labels_gets_sorted_names(tmp_path):
    train = write_csv(
        tmp_path / "train.csv",
        [{"text": f"t{i}", "sentiment": s} for i, s in enumerate(["pos", "neg", "neutral", "pos"])],
    )
    dev = write_csv(tmp_path / "dev.csv", [{"text": "d", "sentiment": "neg"}])
    task = hf(
        SequenceClassification(),
        1,
        path="csv",
        data_files={"train": train, "validation": dev},
        text_columns=["text"],
        label_column="sentiment",
    )
    assert task.task.label_names == ("neg", "neutral", "pos")
    assert task.splits["train"]["label"][:] == [2, 0, 1, 2]
    assert task.splits["eval"]["label"][:] == [0]
    assert list(task.ids["train"]) == [0, 1, 2, 3]  # no id column: row positions
    assert task.source.path == "csv" and task.source.data_files == {"train": (train,), "validation": (dev,)}


def test_float_labels_are_regression(tmp_path):
    rows = [{"a": "x", "b": "y", "score": s} for s in (0.5, 3.25, 4.0)]
    files = {"train": write_csv(tmp_path / "t.csv", rows), "validation": write_csv(tmp_path / "v.csv", rows)}
    task = hf(SequenceClassification(), 1, path="csv", data_files=files, text_columns=["a", "b"], label_column="score")
    assert task.task.is_regression and task.task.num_labels == 1
    assert task.splits["train"].features["label"].dtype == "float32"


def test_integer_labels_without_names_are_renumbered(tmp_path):
    rows = [{"text": "x", "label": stars} for stars in (5, 1, 3, 5)]
    files = {"train": write_csv(tmp_path / "t.csv", rows), "validation": write_csv(tmp_path / "v.csv", rows[:1])}
    task = hf(SequenceClassification(), 1, path="csv", data_files=files, text_columns=["text"])
    assert task.task.label_names == ("1", "3", "5")
    assert task.splits["train"]["label"][:] == [2, 0, 1, 2]


def id_files(tmp_path, ids):
    rows = [{"text": f"t{i}", "label": label} for i, label in enumerate(ids)]
    return {"train": write_csv(tmp_path / "t.csv", rows), "validation": write_csv(tmp_path / "v.csv", rows[:2])}


def test_label_names_name_the_class_ids_a_file_stores(tmp_path):
    task = hf(
        SequenceClassification(),
        1,
        path="csv",
        data_files=id_files(tmp_path, [1, 0, 2, 1]),
        text_columns=["text"],
        label_names=["negative", "neutral", "positive"],
    )
    assert task.task.label_names == ("negative", "neutral", "positive")
    assert task.splits["train"]["label"][:] == [1, 0, 2, 1]  # the ids are kept as they are
    # A class the data lacks keeps its place: ids 0..2 named, only 0 and 1 seen.
    two = hf(
        SequenceClassification(),
        1,
        path="csv",
        data_files=id_files(tmp_path, [0, 1, 1]),
        text_columns=["text"],
        label_names=["negative", "neutral", "positive"],
    )
    assert two.task.label_names == ("negative", "neutral", "positive")


@pytest.mark.parametrize(
    ("labels", "names", "expected"),
    [
        ([0, 1, 3], ["a", "b", "c"], "3 names for the class ids 0..2, but the data has the id(s) 3"),
        (
            ["pos", "neg"],
            ["a", "b"],
            "names integer class ids, but the label column holds text values "
            "(class names or scores already); remove label_names",
        ),
        (
            [0.5, 1.5],
            ["a", "b"],
            "names integer class ids, but the label column holds float64 values "
            "(class names or scores already); remove label_names",
        ),
    ],
)
def test_label_names_must_fit_the_ids(tmp_path, labels, names, expected):
    with pytest.raises(BuildError) as error:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files=id_files(tmp_path, labels),
            text_columns=["text"],
            label_names=names,
        )
    assert (error.value.key, str(error.value.message)) == ("label_names", expected)


def test_label_names_of_a_dataset_that_names_its_classes_are_refused(mrpc_path):
    with pytest.raises(BuildError) as error:
        hf(SequenceClassification(), 1, path=str(mrpc_path), text_columns=PAIR, label_names=["no", "yes"])
    assert error.value.key == "label_names" and "names its classes already (not_equivalent, equivalent)" in str(
        error.value
    )


def test_label_names_are_distinct_and_at_least_two():
    assert problems_of(hf, path="csv", text_columns=["a"], label_names=["x", "x"]) == {
        "label_names": "names a class twice: ['x', 'x']"
    }
    assert list(problems_of(hf, path="csv", text_columns=["a"], label_names=["only"])) == ["label_names"]


def test_unlabelled_test_file_without_a_label_column(tmp_path):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]
    files = {
        "train": write_csv(tmp_path / "t.csv", rows),
        "validation": write_csv(tmp_path / "v.csv", rows),
        "test": write_csv(tmp_path / "x.csv", [{"text": "z"}]),
    }
    task = hf(SequenceClassification(), 1, path="csv", data_files=files, text_columns=["text"], test_split="test")
    assert task.test_has_labels is False and task.splits["test"]["label"][:] == [-1]


def test_missing_split_lists_the_available_ones(mrpc_path):
    with pytest.raises(BuildError, match="available: train, validation, test") as caught:
        hf(SequenceClassification(), 1, path=str(mrpc_path), text_columns=PAIR, eval_split="dev")
    assert caught.value.key == "eval_split"


def test_missing_text_column_lists_the_available_ones(mrpc_path):
    with pytest.raises(BuildError, match="available: sentence1, sentence2, label, idx") as caught:
        hf(SequenceClassification(), 1, path=str(mrpc_path), text_columns=["sentence1", "question"])
    assert caught.value.key == "text_columns"


def test_missing_label_column_lists_the_available_ones(mrpc_path):
    with pytest.raises(BuildError, match="available: sentence1") as caught:
        hf(SequenceClassification(), 1, path=str(mrpc_path), text_columns=PAIR, label_column="gold")
    assert caught.value.key == "label_column"


def test_hub_id_offline_explains_how_to_use_local_files():
    with pytest.raises(BuildError, match=r"the hub \(\S+\) cannot be reached from here") as caught:
        hf(SequenceClassification(), 1, path="nyu-mll/glue", name="mrpc", text_columns=PAIR)
    assert caught.value.key == "path"
    assert 'path = "csv" with data_files' in caught.value.message


@pytest.mark.parametrize("path", ["./no-such-data", "/no/such/data"])
def test_missing_local_folder(path):
    [(key, message)] = problems_of(hf, path=path, text_columns=PAIR).items()
    assert key == "path" and "does not exist" in message


def test_a_loading_script_is_refused(tmp_path):
    script = tmp_path / "loader.py"
    script.write_text("raise SystemExit('never run')\n")
    [(key, message)] = problems_of(hf, path=str(script), text_columns=PAIR).items()
    assert key == "path" and "Python loading script" in message


def test_data_files_that_do_not_exist_are_found_before_loading(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,0\n")
    problems = problems_of(
        hf,
        path="csv",
        text_columns=["text"],
        data_files={"train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "dev.csv")},
    )
    assert list(problems) == ["data_files"] and "dev.csv" in problems["data_files"]
    # Globs, URLs and files inside a hub repository are left to datasets.
    assert problems_of(hf, path="csv", text_columns=["text"], data_files=str(tmp_path / "*.csv")) == {}
    assert (
        problems_of(
            hf,
            path="csv",
            text_columns=["text"],
            data_files=[str(tmp_path / "train.csv"), "https://example.org/dev.csv"],
        )
        == {}
    )
    assert problems_of(hf, path="org/name", text_columns=["text"], data_files="dev.csv") == {}


def test_data_files_are_found_where_datasets_looks_for_them(tmp_path):
    """Relative to a local dataset folder, or to data_dir, as datasets reads them."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.csv").write_text("text,label\na,0\n")
    in_folder = problems_of(
        hf,
        path=str(tmp_path),
        text_columns=["text"],
        data_files={"train": "sub/train.csv", "validation": "sub/dev.csv"},
    )
    assert in_folder == {"data_files": f'"sub/dev.csv" does not exist (looked for {tmp_path / "sub" / "dev.csv"})'}
    in_data_dir = problems_of(
        hf,
        path="csv",
        data_dir=str(tmp_path / "sub"),
        text_columns=["text"],
        data_files={"train": "train.csv", "validation": ["train.csv", "dev.csv"]},
    )
    assert in_data_dir == {"data_files": f'"dev.csv" does not exist (looked for {tmp_path / "sub" / "dev.csv"})'}


def test_the_label_column_is_not_a_text_column():
    assert problems_of(hf, path="csv", text_columns=["a", "b"], label_column="b") == {
        "label_column": '"b" is also a text column'
    }


def test_a_text_column_is_named_once():
    assert list(problems_of(hf, path="csv", text_columns=["a", "a"])) == ["text_columns"]


def test_missing_data_files(tmp_path):
    with pytest.raises(BuildError, match=r"nope\.csv") as caught:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files={"train": str(tmp_path / "nope.csv")},
            text_columns=["text"],
        )
    assert caught.value.key == "data_files"


def test_unknown_config_name(mrpc_path):
    with pytest.raises(BuildError, match="foo") as caught:
        hf(SequenceClassification(), 1, path=str(mrpc_path), name="foo", text_columns=PAIR)
    assert caught.value.key == "name"


def test_one_or_two_text_columns():
    expected = "expected an array of non-empty strings (1 to 2 items), got an array "
    assert problems_of(hf, path="csv", text_columns=[]) == {"text_columns": expected + "[]"}
    assert problems_of(hf, path="csv", text_columns=["a", "b", "c"]) == {"text_columns": expected + '["a", "b", "c"]'}


def test_rows_without_a_label_are_named(tmp_path):
    train = write_csv(
        tmp_path / "train.csv", [{"text": f"t{i}", "label": label} for i, label in enumerate(["a", "", "b", "a", ""])]
    )
    with pytest.raises(BuildError, match=r"2 row\(s\) of the train split have no \"label\" \(rows 1, 4\)") as caught:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files={"train": train, "validation": train},
            text_columns=["text"],
        )
    assert caught.value.key == "label_column"


def test_validation_rows_without_a_label_are_named(tmp_path):
    train = write_csv(tmp_path / "train.csv", [{"text": f"t{i}", "label": label} for i, label in enumerate("abab")])
    dev = write_csv(tmp_path / "dev.csv", [{"text": f"d{i}", "label": label} for i, label in enumerate(["a", "", "b"])])
    with pytest.raises(BuildError, match=r"1 row\(s\) of the validation split have no \"label\" \(rows 1\)") as caught:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files={"train": train, "validation": dev},
            text_columns=["text"],
        )
    assert caught.value.key == "label_column"


def test_regression_rows_without_a_score_are_named(tmp_path):
    train = write_csv(
        tmp_path / "train.csv", [{"text": f"t{i}", "score": score} for i, score in enumerate([0.5, "", 1.0, 2.5])]
    )
    with pytest.raises(BuildError, match=r"1 row\(s\) of the train split have no \"score\" \(rows 1\)") as caught:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files={"train": train, "validation": train},
            text_columns=["text"],
            label_column="score",
        )
    assert caught.value.key == "label_column"


def test_a_single_class_cannot_be_learned(tmp_path):
    train = write_csv(tmp_path / "train.csv", [{"text": f"t{i}", "label": "a"} for i in range(4)])
    with pytest.raises(BuildError, match="single class") as caught:
        hf(
            SequenceClassification(),
            1,
            path="csv",
            data_files={"train": train, "validation": train},
            text_columns=["text"],
        )
    assert caught.value.key == "label_column"
