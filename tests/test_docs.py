"""The documentation is part of the product: README.md and every page under docs/ are checked
against the code they describe, without running anything.

- Every `xp` command line in a shell block parses against the real command tree (click's own
  parser): the command exists, every option exists, choices are valid, arguments are present.
- Every TOML block is valid TOML, and one that is an experiment, or a fragment of one, passes
  xp's own checker, as `xp validate` (without --data) would run it.
- Every relative link reaches a file, and a heading of it when the link names one.
- The built-in plugin reference is what `xp plugins --markdown` prints, and docs/commands.md
  names every option of every command.

A block that shows something wrong on purpose (an error example) is preceded by a
`<!-- not-checked: why -->` comment; keep those rare.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from tracker import listing
from tracker.cli import main as xp
from tracker.registry import load_registry
from tracker.spec.check import check_experiment
from tracker.spec.parse import RawExperiment
from tracker.spec.sections import COMPONENT_SECTIONS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
COMMANDS = REPO / "docs" / "commands.md"  # the reference of every command and option
PAGES = (README, *sorted((REPO / "docs").rglob("*.md")))
SHELL_LANGUAGES = {"", "bash", "console", "sh", "shell"}
# A fragment of an experiment file is checked merged onto the shipped experiment it extends.
QUICKSTART = REPO / "experiments" / "quickstart.toml"
STUDY = REPO / "experiments" / "mrpc_sweep.toml"  # for fragments that set [sweep] keys
TASK_PAGES = REPO / "docs" / "tasks"
# A TOML block is an experiment file or a fragment of one, unless its first line names a
# pyproject.toml (a plugin's entry points).
PYPROJECT = re.compile(r"#\s*(\S*/)?pyproject\.toml\b")
NOT_CHECKED = re.compile(r"^\s*<!--\s*not-checked:.*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<language>[\w+-]*)")
# `# key = value` in a TOML block: a documented optional key, checked uncommented as well.
COMMENTED_KEY = re.compile(
    r'^(?P<indent>\s*)#\s*(?P<line>(?:[\w-]+|"[^"\n]*")(?:\.(?:[\w-]+|"[^"\n]*"))*\s*=\s*\S.*)$', re.M
)
SHELL_SEPARATORS = {"|", "||", "&&", ";", "&"}
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"(?P<anchor>[^\"]+)\"")


# --- reading pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, counted from 1
    language: str
    text: str  # dedented to the fence
    checked: bool  # false under a `<!-- not-checked: why -->` comment

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO).as_posix()}:{self.line}"


@dataclass(frozen=True)
class Page:
    path: Path
    blocks: tuple[Block, ...]
    prose: str  # the text outside code blocks, blocks blanked out so line numbers hold

    @property
    def name(self) -> str:
        return self.path.relative_to(REPO).as_posix()


def read_page(path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, prose, opened = [], [], None
    for number, line in enumerate(lines, start=1):
        if opened is None:
            fence = FENCE.match(line)
            if fence:
                previous = next((above for above in reversed(prose) if above.strip()), "")
                opened, body = (number, fence, not NOT_CHECKED.match(previous)), []
                prose.append("")
            else:
                prose.append(line)
            continue
        start, fence, checked = opened
        closing = line.strip()
        if closing.startswith(fence["fence"]) and set(closing) == {fence["fence"][0]}:
            indent = len(fence["indent"])
            text = "".join(f"{row[indent:] if not row[:indent].strip() else row.lstrip()}\n" for row in body)
            blocks.append(Block(path, start, fence["language"].lower(), text, checked))
            opened = None
        else:
            body.append(line)
        prose.append("")
    assert opened is None, f"{path.relative_to(REPO)}:{opened[0]}: a code block is never closed"
    return Page(path, tuple(blocks), "\n".join(prose))


def all_blocks(*languages: str) -> list:
    """The checked blocks of every page in these languages, as test parameters named page:line."""
    return [
        pytest.param(block, id=block.where)
        for path in PAGES
        for block in read_page(path).blocks
        if block.language in languages and block.checked
    ]


def test_a_block_under_a_not_checked_comment_is_left_out(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        'An error example:\n\n<!-- not-checked: shows an error -->\n```toml\n[optimizer]\nlr = "fast"\n```\n\n'
        "A right one:\n\n```toml\n[optimizer]\nlr = 1e-4\n```\n"
    )
    assert [(block.line, block.checked) for block in read_page(page).blocks] == [(4, False), (11, True)]


# --- shell blocks: xp command lines ----------------------------------------------------------------


def command_lines(block: Block) -> list[str]:
    """The command lines of a shell block: continued lines joined; in a console block only the
    lines after a `$ ` prompt (the others are output)."""
    joined = block.text.replace("\\\n", " ").splitlines()
    if block.language == "console":
        return [line.strip()[2:] for line in joined if line.strip().startswith("$ ")]
    return [line for line in joined if line.strip()]


def simple_commands(line: str) -> list[list[str]]:
    """The words of each command of a shell line: comments dropped, split at | && || ; &, and
    without redirections (`> scored.csv`)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, words, redirected = [], [], False
    for token in lexer:
        if redirected:
            redirected = False
        elif token in SHELL_SEPARATORS:
            commands.append(words)
            words = []
        elif set(token) <= set("<>&"):
            redirected = True  # the next word is where it goes
        else:
            words.append(token)
    return [words for words in [*commands, words] if words]


def xp_arguments(words: list[str]) -> list[str] | None:
    """What xp gets from one command: the words after `xp`, or after `-m tracker` (`python -m
    tracker`, `torchrun ... -m tracker`); None for any other program."""
    while words and re.fullmatch(r"[A-Za-z_]\w*=\S*", words[0]):  # VAR=value before the program
        words = words[1:]
    if words[:1] == ["xp"]:
        return words[1:]
    return next((words[i + 2 :] for i in range(len(words) - 1) if words[i : i + 2] == ["-m", "tracker"]), None)


def xp_invocations(block: Block) -> list[list[str]]:
    """The arguments of every xp invocation in a shell block."""
    return [
        arguments
        for line in command_lines(block)
        for words in simple_commands(line)
        if (arguments := xp_arguments(words)) is not None
    ]


def parse_xp(arguments: list[str]) -> None:
    """Parse `xp ARGUMENTS` exactly as the command line would, and run nothing: a usage error
    (no such command or option, a bad choice, a missing argument) raises click.UsageError; a
    `--help` raises click.exceptions.Exit."""
    context = click.Context(xp, info_name="xp")
    # xp's own options, as the group parses them; what is left is the command and its arguments.
    rest = click.Command.parse_args(xp, context, list(arguments))
    if not rest:
        raise click.UsageError("Missing command.", context)
    name, command, rest = xp.resolve_command(context, rest)
    command.make_context(name, rest, parent=context)


def test_the_command_line_check_fails_on_what_xp_would_refuse():
    refused = [
        ["trian", "experiments/quickstart.toml"],  # no such command
        ["run", "--lr", "3e-5", "experiments/quickstart.toml"],  # no such option
        ["run"],  # FILES... missing
        ["run", "--set", "lr", "experiments/quickstart.toml"],  # --set needs section.key=value
        ["predict", "quickstart", "--input", "new.csv", "--device", "tpu"],  # not a choice
        ["predict", "quickstart"],  # --input is required
        [],
    ]
    for arguments in refused:
        with pytest.raises(click.UsageError):
            parse_xp(arguments)
    parse_xp(["run", "experiments/quickstart.toml", "--set", "optimizer.lr=3e-5", "-q"])


def test_xp_invocations_are_found_in_pipelines_continuations_and_prompts():
    block = Block(
        README,
        1,
        "bash",
        "pip install x && xp run a.toml  # then\n"
        "XP_DATA=data python -m tracker validate \\\n    a.toml b.toml\n"
        "xp predict m --input new.csv --output - > scored.csv | head\n"
        "torchrun --nproc_per_node 2 -m tracker run a.toml\n"
        "mlflow server --port 5000\n",
        True,
    )
    assert xp_invocations(block) == [
        ["run", "a.toml"],
        ["validate", "a.toml", "b.toml"],
        ["predict", "m", "--input", "new.csv", "--output", "-"],
        ["run", "a.toml"],
    ]
    console = Block(README, 1, "console", "$ xp runs --limit 5\nNAME  ID\nxp-1  3f2a\n", True)
    assert xp_invocations(console) == [["runs", "--limit", "5"]]


@pytest.mark.parametrize("block", all_blocks(*SHELL_LANGUAGES))
def test_every_xp_command_line_in_the_docs_parses(block):
    refused = []
    for arguments in xp_invocations(block):
        try:
            parse_xp(arguments)
        except click.exceptions.Exit:  # --help or --version
            pass
        except click.UsageError as error:
            refused.append(f"xp {shlex.join(arguments)}: {error.format_message()}")
    assert refused == [], f"{block.where}: command lines xp refuses"


def test_the_command_reference_names_every_option_of_every_command():
    rows = {
        row["name"]: row["synopsis"]
        for row in re.finditer(r"^\| `xp (?P<name>[\w-]+)(?P<synopsis>[^`]*)` \|", COMMANDS.read_text(), re.M)
    }
    missing = {
        name: [
            option.opts[-1]
            for option in command.params
            if isinstance(option, click.Option)
            and not option.hidden
            and "--help" not in option.opts
            and not any(
                re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", rows.get(name, "")) for spelling in option.opts
            )
        ]
        for name, command in xp.commands.items()
    }
    assert set(rows) == set(xp.commands), f"{COMMANDS.name}: a row per command"
    assert {name: options for name, options in missing.items() if options} == {}, f"{COMMANDS.name}: options not named"


# --- TOML blocks: experiment files and fragments of them -------------------------------------------


@pytest.fixture(scope="module")
def builtin_registry():
    """xp's built-in plugins only: the docs describe those, whatever else is installed."""
    return load_registry(environ={**os.environ, "XP_DISABLE_PLUGIN_AUTOLOAD": "1"})


def as_experiment(data: dict, base: dict | None = None) -> dict:
    """A whole experiment file as it is; a fragment merged onto the experiment it extends (`base`,
    else mrpc_sweep.toml when it sets [sweep] keys, else quickstart.toml): a section that names its
    plugin (`use`) replaces the extended one, the keys of any other are set in it."""
    if set(COMPONENT_SECTIONS) <= set(data):
        return data
    if base is None:
        base = tomllib.loads((STUDY if "sweep" in data else QUICKSTART).read_text(encoding="utf-8"))
    merged = dict(base)
    for section, table in data.items():
        shipped = merged.get(section)
        replaces = not isinstance(table, dict) or "use" in table or not isinstance(shipped, dict)
        merged[section] = table if replaces else {**shipped, **table}
    return merged


def extended_experiment(block: Block) -> dict | None:
    """A task's page (docs/tasks/) opens with the sections its task needs; the page's later
    fragments extend that experiment, as its reader does. Other pages extend the shipped ones."""
    if block.page.parent != TASK_PAGES:
        return None
    opening = next(other for other in read_page(block.page).blocks if other.language == "toml")
    return None if opening.line == block.line else as_experiment(tomllib.loads(opening.text))


def experiment_problems(block: Block, text: str, registry) -> list[str]:
    """What `xp validate` says about a TOML block, unless its first line names a pyproject.toml."""
    if PYPROJECT.match(text):
        return []
    data = tomllib.loads(text)
    raw = RawExperiment(Path(block.where), text, as_experiment(data, extended_experiment(block)))
    return [str(problem) for problem in check_experiment(raw, registry)[1]]


def test_a_fragment_is_checked_on_the_quickstart_and_a_sweep_fragment_on_the_shipped_study():
    quickstart = tomllib.loads(QUICKSTART.read_text(encoding="utf-8"))
    merged = as_experiment({"optimizer": {"lr": 3e-5}, "runner": {"use": "trainer", "num_epochs": 1}})
    assert merged["optimizer"] == {**quickstart["optimizer"], "lr": 3e-5}
    assert merged["runner"] == {"use": "trainer", "num_epochs": 1}
    assert merged["dataset"] == quickstart["dataset"]
    study = as_experiment({"sweep": {"storage": "postgresql://host/optuna"}})
    assert study["sweep"]["space"] and study["sweep"]["storage"] == "postgresql://host/optuna"


def test_a_fragment_on_a_tasks_page_extends_the_experiment_the_page_opens_with(builtin_registry, monkeypatch):
    monkeypatch.chdir(REPO)
    page = TASK_PAGES / "token-classification.md"
    opening, *_ = (block for block in read_page(page).blocks if block.language == "toml")
    later = Block(page, opening.line + 1000, "toml", '[runner]\nmetric_for_best = "f1_PER"\n', True)
    assert extended_experiment(opening) is None
    assert extended_experiment(later)["metrics"] == {"use": ["seqeval"]}
    assert experiment_problems(later, later.text, builtin_registry) == []
    elsewhere = Block(README, 1, "toml", later.text, True)  # on the quickstart, no metric is called f1_PER
    [problem] = experiment_problems(elsewhere, elsewhere.text, builtin_registry)
    assert 'metric_for_best: "f1_PER" is not a metric this experiment computes' in problem


def test_the_toml_check_fails_on_what_xp_validate_would_refuse(builtin_registry, monkeypatch):
    monkeypatch.chdir(REPO)
    block = Block(README, 1, "toml", "", True)
    [problem] = experiment_problems(block, '[optimizer]\nlr = "fast"\n', builtin_registry)
    assert problem.startswith("README.md:1: [optimizer] lr: ")
    assert experiment_problems(block, "[optimiser]\nlr = 1e-4\n", builtin_registry)
    assert experiment_problems(block, '# pyproject.toml\n[project]\nname = "xp-lion"\n', builtin_registry) == []


@pytest.mark.parametrize("block", all_blocks("toml"))
def test_every_toml_block_is_valid_and_every_experiment_in_the_docs_passes_the_checker(
    block, builtin_registry, monkeypatch
):
    monkeypatch.chdir(REPO)  # paths in experiment files are relative to where xp runs
    try:
        tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as error:
        pytest.fail(f"{block.where}: invalid TOML: {error}")
    assert experiment_problems(block, block.text, builtin_registry) == []
    uncommented = COMMENTED_KEY.sub(r"\g<indent>\g<line>", block.text)
    if uncommented != block.text:  # the optional keys a comment documents are right too
        assert experiment_problems(block, uncommented, builtin_registry) == [], (
            "with its `# key = value` comments uncommented"
        )


# --- links -----------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")  # as rendered: no tags, no code marks
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Page) -> set[str]:
    """Every anchor of a page: its headings' (a repeated one gets -1, -2, ...) and HTML ids."""
    found: set[str] = set()
    for line in page.prose.splitlines():
        heading = HEADING.match(line)
        if heading:
            base, count = slug(heading["title"]), 0
            while (anchor := base if count == 0 else f"{base}-{count}") in found:
                count += 1
            found.add(anchor)
        found |= {match["anchor"] for match in HTML_ANCHOR.finditer(line)}
    return found


def relative_links(page: Page) -> list[str]:
    """The targets of the page's links that are not URLs: paths, maybe with #anchor, or #anchor."""
    prose = re.sub(r"(`+)(?:(?!\1).)+?\1", "", page.prose, flags=re.S)  # code spans hold no links
    return [match["target"] for match in LINK.finditer(prose) if not re.match(r"[a-z][a-z0-9+.-]*:", match["target"])]


def test_slugs_follow_github():
    assert slug("Checkpoints and resuming") == "checkpoints-and-resuming"
    assert slug("`xp compare`: runs side by side") == "xp-compare-runs-side-by-side"
    assert slug("What an experiment file can do (trust model)") == "what-an-experiment-file-can-do-trust-model"
    assert slug("Built-in plugins, [dataset] to [runner]") == "built-in-plugins-dataset-to-runner"
    assert slug("metric_for_best") == "metric_for_best"


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(path):
    page = read_page(path)
    broken = []
    for target in relative_links(page):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if linked != REPO and REPO not in linked.parents:
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(read_page(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(REPO)}")
    assert broken == [], f"{page.name}: broken links"


# --- the built-in plugin reference -----------------------------------------------------------------


def test_the_builtin_plugin_reference_lists_every_component_and_key(builtin_registry):
    references = {
        page.relative_to(REPO).as_posix(): embedded
        for page in PAGES
        if (embedded := re.search(r"<!-- plugins:start -->\n(.*)<!-- plugins:end -->", page.read_text(), re.S))
    }
    assert len(references) == 1, f"one page holds the plugin reference, between its markers: {sorted(references)}"
    [(page, embedded)] = references.items()
    assert embedded.group(1) == listing.as_markdown(builtin_registry.all()), (
        f"{page}'s plugin reference is stale: regenerate it with `xp plugins --markdown`"
    )
