"""Finding the file of each split for the dataset plugins that read files of their own format
(CoNLL columns, SQuAD JSON): named in `data_files`, or found in a folder by the names such data
sets usually give them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tracker.plugin import BuildError

KEYS = {"train": "train", "validation": "eval", "test": "test"}  # split name -> the task's key


def split_files(
    path: str | None,
    data_files: Mapping[Any, str] | None,
    usual_names: Mapping[str, Sequence[str]],
    *,
    what: str,
    needed: Sequence[str] = ("train", "validation"),
    hints: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """The file of each split, by the task's key ("train", "eval", "test"): named in `data_files`
    (relative to `path`, or to the working directory), else found in the folder `path` by its
    `usual_names` (split name -> file names, in the order they are looked for). A BuildError on
    the key to fix: a folder or file that does not exist, a `needed` split without a file
    (`hints` says, by split name, what else would do). `what` names the files: "CoNLL files"."""
    folder = Path(path).expanduser() if path is not None else None
    if folder is not None and not folder.is_dir():
        raise BuildError("path", f'"{path}" is not a folder (resolved to {folder.resolve()})')
    if data_files:
        files = {name: (folder or Path(".")) / Path(file).expanduser() for name, file in data_files.items()}
        for name, file in files.items():
            if not file.is_file():
                raise BuildError(
                    "data_files", f'{name}: "{data_files[name]}" does not exist (looked for {file.resolve()})'
                )
    elif folder is not None:
        files = {}
        for name, candidates in usual_names.items():
            found = next((folder / c for c in candidates if (folder / c).is_file()), None)
            if found is not None:
                files[name] = found
    else:
        raise BuildError("path", f"name a folder of {what} (path), or the file of each split (data_files)")
    for name in needed:
        if name in files:
            continue
        if data_files:
            raise BuildError("data_files", f'names no {name} file: add {name} = "..."')
        expected = " or ".join(usual_names[name])
        raise BuildError(
            "path",
            f"no {name} file: expected {expected} in {folder}, or name it in data_files{(hints or {}).get(name, '')}",
        )
    return {KEYS[name]: file for name, file in files.items()}
