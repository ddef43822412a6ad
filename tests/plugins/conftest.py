"""Fixtures of the runner tests, shared by their modules: small CSV splits of the paraphrase data."""

from __future__ import annotations

import pytest

from tests.plugins.paraphrase_splits import read_rows, write_split, write_split_as_read


@pytest.fixture(scope="module")
def paraphrase_rows() -> list[dict[str, str]]:
    return read_rows()


@pytest.fixture(scope="module")
def data(tmp_path_factory, paraphrase_rows) -> dict[str, str]:
    """24 training rows, 16 validation rows and 11 labelled test rows (an odd count on purpose),
    labels spelled as names."""
    folder = tmp_path_factory.mktemp("paraphrase")
    return {
        "train": write_split(folder / "train.csv", paraphrase_rows[:24]),
        "validation": write_split(folder / "validation.csv", paraphrase_rows[24:40]),
        "test": write_split(folder / "test.csv", paraphrase_rows[40:51]),
    }


@pytest.fixture(scope="module")
def short_run_data(tmp_path_factory, paraphrase_rows) -> dict[str, str]:
    """24 training rows and 8 validation rows, labels as the file has them: 3 steps an epoch in
    batches of 8."""
    folder = tmp_path_factory.mktemp("paraphrase-short")
    return {
        "train": write_split_as_read(folder / "train.csv", paraphrase_rows[:24]),
        "validation": write_split_as_read(folder / "validation.csv", paraphrase_rows[24:32]),
    }
