"""The tests read no data outside the repository: a fresh clone runs them all, nothing skipped for
want of data. The data they need is shipped in tests/data as small slices of real data sets, each
folder with a README naming its source and license and saying how the slice was made; the full
sets reach the benchmarks only, through XP_DATA (bench/variants.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.data.make_slices import SEED, SIZES

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
DATA = TESTS / "data"
# The full sets live beside the checkout on the project's machines, never in a user's clone. The
# names are assembled here so that this file does not spell the paths it forbids.
FULL_DATA_FOLDER = "shared"
LEAVING_THE_REPOSITORY = {
    "the full data sets beside the checkout": re.compile(
        rf"\.\.[/\\]+{FULL_DATA_FOLDER}\b|\b{FULL_DATA_FOLDER}[/\\]+data\b|['\"]{FULL_DATA_FOLDER}['\"]\s*/\s*['\"]data['\"]"
    ),
    "the folder above the repository": re.compile(r"\bROOT\.parent\b"),
    "a relative dataset path above the working directory": re.compile(r"""\bpath\s*=\s*['"]\.\.[/\\]"""),
    "the environment's data folder (XP_DATA is the benchmarks')": re.compile(
        r"""(environ\.get\(|environ\[|getenv\()\s*['"]XP_DATA['"]"""
    ),
}
# The one program under tests/ that reads the full sets: it makes the slices, it is not a test.
SLICE_MAKER = DATA / "make_slices.py"


def files_to_scan() -> list[Path]:
    return sorted(
        path
        for pattern in ("*.py", "*.toml")
        for path in TESTS.rglob(pattern)
        if path != SLICE_MAKER and "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("path", files_to_scan(), ids=lambda path: path.relative_to(TESTS).as_posix())
def test_no_test_reads_data_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    found = [
        f"{path.relative_to(REPO_ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {what}: {match.group(0)!r}"
        for what, pattern in LEAVING_THE_REPOSITORY.items()
        for match in pattern.finditer(text)
    ]
    # Path(__file__).parents[k] (or .parent.parent...) stays inside the repository.
    for match in re.finditer(r"Path\(__file__\)(?:\.resolve\(\))?(?:\.parents\[(\d+)\]|((?:\.parent\b)+))", text):
        up = int(match.group(1)) if match.group(1) else match.group(2).count(".parent") - 1
        if not path.resolve().parents[up].is_relative_to(REPO_ROOT):
            found.append(f"{path.relative_to(REPO_ROOT)}: {match.group(0)} is above the repository")
    assert found == []


def test_the_forbidden_paths_are_recognised():
    """The scan above would see the ways the full data sets used to be named."""
    parent, dots = ".parent", ".."  # spelled apart, so that this file passes its own scan
    spelled = {
        "/".join((dots, FULL_DATA_FOLDER, "data", "glue", "mrpc")): "the full data sets beside the checkout",
        f'REPO_ROOT{parent} / "{FULL_DATA_FOLDER}" / "data"': "the full data sets beside the checkout",
        f'ROOT{parent} / "data"': "the folder above the repository",
        f'path = "{dots}/data/mrpc"': "a relative dataset path above the working directory",
        "os.environ.get(" + '"XP_DATA")': "the environment's data folder (XP_DATA is the benchmarks')",
    }
    for text, what in spelled.items():
        assert LEAVING_THE_REPOSITORY[what].search(text), text
    assert not any(pattern.search('path = "tests/data/mrpc"') for pattern in LEAVING_THE_REPOSITORY.values())


def test_the_mrpc_fixture_is_the_shipped_slice(mrpc_path):
    assert mrpc_path.resolve() == DATA / "mrpc"
    assert sorted(p.name for p in mrpc_path.glob("*.parquet")) == sorted(f"{split}.parquet" for split in SIZES["mrpc"])


# --- tests/data: what is shipped, and what its READMEs say ------------------------------------------


def data_folders() -> list[Path]:
    return sorted(path for path in DATA.iterdir() if path.is_dir() and path.name != "__pycache__")


def section(readme: str, heading: str) -> str:
    """The text under `## heading` up to the next heading, stripped."""
    match = re.search(rf"^## {heading}\n(.*?)(?=^#|\Z)", readme, flags=re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else ""


def test_every_slice_is_made_by_the_script():
    assert [folder.name for folder in data_folders()] == sorted(SIZES)


@pytest.mark.parametrize("folder", data_folders(), ids=lambda folder: folder.name)
def test_every_data_folder_has_a_readme_naming_source_license_and_how_it_was_made(folder):
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert re.match(r"---\n(.*\n)*license: \S+\n(.*\n)*---\n", readme), "a dataset card: its license in the YAML block"
    assert len(section(readme, "Source")) > 40, f"{folder.name}/README.md: ## Source names where the data comes from"
    assert len(section(readme, "License")) > 10, f"{folder.name}/README.md: ## License says under what terms"
    made = section(readme, "How the slice was made")
    assert "make_slices.py" in made and f"seed {SEED}" in made, f"{folder.name}/README.md: how to make it again"
    assert section(readme, "Columns") or section(readme, "Format") or section(readme, "Fields")
    assert FULL_DATA_FOLDER + "/" not in readme  # an upstream source, not a folder of our machines


def test_the_data_folder_has_a_readme_and_stays_small():
    assert "make_slices.py" in (DATA / "README.md").read_text(encoding="utf-8")
    total = sum(path.stat().st_size for path in DATA.rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    assert total < 1_000_000, f"tests/data holds {total} bytes; the slices are meant to stay under 1 MB"


def test_the_mrpc_slice_has_the_hub_layout_features_and_balance():
    import pyarrow.parquet as pq

    for split, rows in SIZES["mrpc"].items():
        table = pq.read_table(DATA / "mrpc" / f"{split}.parquet")
        assert table.num_rows == rows
        assert table.column_names == ["sentence1", "sentence2", "label", "idx"]
        features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        assert features["label"] == {"names": ["not_equivalent", "equivalent"], "_type": "ClassLabel"}
        assert features["idx"] == {"dtype": "int32", "_type": "Value"}
        labels = table.column("label").to_pylist()
        if split == "test":
            assert set(labels) == {-1}  # hidden, as on the hub
        else:
            assert 0.25 <= labels.count(0) / rows <= 0.4  # MRPC is about 1/3 not_equivalent


def test_the_conll_slice_is_tab_separated_crlf_sentences():
    for split, sentences in SIZES["conll2003"].items():
        data = (DATA / "conll2003" / f"{split}.txt").read_bytes()
        assert data.count(b"\r\n\r\n") == sentences and data.endswith(b"\r\n\r\n")
        assert data.count(b"\n") == data.count(b"\r\n")  # CRLF only
        lines = [line for line in data.split(b"\r\n") if line]
        assert all(line.count(b"\t") == 1 for line in lines)
        tags = {line.split(b"\t")[1].decode() for line in lines}
        assert tags == {"O"} | {f"{b}-{kind}" for b in "BI" for kind in ("PER", "ORG", "LOC", "MISC")}


def test_the_squad_slice_has_answerable_and_impossible_questions():
    document = json.loads((DATA / "squad" / "small.json").read_text(encoding="utf-8"))
    assert document["version"] == "v2.0"
    paragraphs = [p for article in document["data"] for p in article["paragraphs"]]
    assert len(paragraphs) == SIZES["squad"]["paragraphs_per_article"] * len(document["data"])
    questions = [(p["context"], qa) for p in paragraphs for qa in p["qas"]]
    impossible = [qa for _, qa in questions if qa["is_impossible"]]
    assert 30 <= len(questions) <= 300 and 0 < len(impossible) < len(questions)
    assert all(qa["answers"] == [] for qa in impossible)
    for context, qa in questions:  # every answer is the span it points at
        for answer in qa["answers"]:
            assert context[answer["answer_start"] :].startswith(answer["text"]), qa["id"]


def test_the_scitldr_slice_is_json_lines():
    for split, papers in SIZES["scitldr"].items():
        lines = (DATA / "scitldr" / f"{split}.jsonl").read_text(encoding="utf-8").split("\n")
        assert len(lines) == papers
        for line in lines:
            paper = json.loads(line)
            assert {"source", "target", "paper_id"} <= set(paper) and paper["source"] and paper["target"]
