"""What each mixed method is worth: plain fine-tuning against each add-on, several seeds, one table each.

Every entry is a named list of `ftcli train` overrides run once per seed on the embedded MiniLM,
each run its own process, into `<work>/<study>/<dataset>/<entry>/seed-<n>`. A run directory
that already holds a finished run is read back instead of trained again, so an interrupted
benchmark continues where it stopped (and a table can be printed again with `--work` alone).

Studies (`--studies`, comma-separated):

- `addons`: SST-2 (a 4,000-row subset of train, scored on dev) and RTE (train, scored on dev),
  plain against FGM, PGD, R-Drop, EDA augmentation, layer-wise lr decay and EMA, same budget.
- `distill`: a full-fine-tuned teacher (the plain SST-2 run of the first seed) distilled into a
  3-layer student and into a LoRA student, each against the same student trained alone.
- `ensemble`: the plain SST-2 runs of three seeds averaged (`ftcli eval run_dir=[...]`) against
  each member.
- `prompt`: prompt-based fine-tuning against plain fine-tuning at 16 and 64 examples per class.
- `meta`: a Reptile starting point meta-trained on TREC and AG News, then fine-tuned with 16
  examples per class on SST-2, against fine-tuning from the base model.

Each table gives the mean and the sample standard deviation over seeds, the difference from the
study's baseline, and whether that difference is within noise: beyond noise only when it is more
than twice its standard error (the two entries' spreads over the seeds combined).

    python scripts/bench_mixed.py                                   # all studies, seeds 1,2,3
    python scripts/bench_mixed.py --studies addons --datasets sst2 --seeds 1,2
    python scripts/bench_mixed.py --work /tmp/mixed --studies addons   # print again, train what is missing
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METRIC = "accuracy"


@dataclass
class Dataset:
    """A classification dataset beside the checkout and the overrides that read it."""

    name: str
    overrides: list[str]


def datasets(data: Path) -> dict[str, Dataset]:
    sst2 = data / "sst2"
    rte = data / "rte"
    return {
        "sst2": Dataset("sst2", [
            "task=sentiment", f"data.train_file={sst2 / 'train.jsonl'}", f"data.validation_file={sst2 / 'dev.jsonl'}",
            "data.label_column=label_text", "data.label_names=[negative,positive]", "data.max_train_samples=4000",
            "task.max_length=64",
        ]),
        "rte": Dataset("rte", [
            "task=pair_classification", f"data.train_file={rte / 'train.jsonl'}",
            f"data.validation_file={rte / 'dev.jsonl'}", "data.text_column=sentence1",
            "data.text_pair_column=sentence2", "data.label_column=label_text",
            "data.label_names=[entailment,not_entailment]", "task.max_length=128",
        ]),
    }


BUDGET = ["trainer.epochs=1", "trainer.batch_size=32", "trainer.save_every=null", "trainer.eval_strategy=epoch"]
ADD_ONS = {
    "plain": [],
    "fgm": ["trainer.adversarial.method=fgm", "trainer.adversarial.epsilon=0.2"],
    "pgd": ["trainer.adversarial.method=pgd", "trainer.adversarial.epsilon=0.2", "trainer.adversarial.steps=2",
            "trainer.adversarial.alpha=0.1"],
    "rdrop": ["trainer.rdrop=1.0"],
    "eda": ["data.augment.copies=1"],
    "llrd": ["trainer.layer_decay=0.8"],
    "ema": ["trainer.ema=0.95"],
}


@dataclass
class Bench:
    """Where runs go and how each is trained."""

    work: Path
    data: Path
    seeds: list[int]
    extra: list[str]
    dry: bool = False
    entries: tuple[str, ...] = tuple(ADD_ONS)  # the add-on study's entries to run
    trained: int = 0
    failed: list[str] = field(default_factory=list)

    def run(self, folder: Path, overrides: list[str]) -> dict[str, Any] | None:
        """The metrics of the finished run in `folder`, training it first when it is not there."""
        metrics = folder / "metrics.json"
        if not metrics.exists() and not self.dry:
            words = [sys.executable, "-m", "ftcli", "train", *overrides, *self.extra, f"hydra.run.dir={folder}",
                     "overwrite=true"]
            print("+", " ".join(words[3:]), flush=True)
            done = subprocess.run(words, capture_output=True, text=True)
            self.trained += 1
            if done.returncode != 0:
                self.failed.append(f"{folder}: exit {done.returncode}: {done.stderr.strip()[-600:]}")
                return None
        return json.loads(metrics.read_text()) if metrics.exists() else None

    def seeds_of(self, folder: Path, overrides: list[str]) -> list[float]:
        """The headline metric of one entry on each seed (the seeds that finished)."""
        values = []
        for seed in self.seeds:
            metrics = self.run(folder / f"seed-{seed}", [*overrides, f"seed={seed}"])
            if metrics is not None:
                values.append(metrics["validation"][METRIC])
        return values


def evaluate(folder: Path, run_dirs: list[Path]) -> dict[str, Any] | None:
    """`ftcli eval` of several runs together (an ensemble), its validation metrics."""
    out = folder / "metrics.json"
    if not out.exists():
        listed = "[" + ",".join(str(p) for p in run_dirs) + "]"
        words = [sys.executable, "-m", "ftcli", "eval", f"run_dir={listed}", f"hydra.run.dir={folder}"]
        print("+", " ".join(words[3:]), flush=True)
        if subprocess.run(words, capture_output=True, text=True).returncode != 0:
            return None
    return json.loads(out.read_text()) if out.exists() else None


def table(title: str, entries: dict[str, list[float]], baseline: str) -> list[str]:
    """A markdown table: mean ± sd, the difference from `baseline`, and whether it is within noise."""
    lines = [f"### {title}", "", f"| entry | {METRIC} (mean ± sd) | seeds | vs {baseline} | noise |",
             "| --- | --- | --- | --- | --- |"]
    base = entries.get(baseline, [])
    for name, values in entries.items():
        if not values:
            lines.append(f"| {name} | not run | 0 | | |")
            continue
        mean, sd = statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        seeds = ", ".join(f"{v:.3f}" for v in values)
        delta, verdict = "", ""
        if name != baseline and base:
            diff = mean - statistics.fmean(base)
            delta, verdict = f"{diff:+.3f}", noise(values, base)
        lines.append(f"| {name} | {mean:.3f} ± {sd:.3f} | {seeds} | {delta} | {verdict} |")
    return [*lines, ""]


def noise(values: list[float], base: list[float]) -> str:
    """'beyond noise' when the mean difference exceeds twice its standard error, else 'within noise'."""
    if len(values) < 2 or len(base) < 2:
        return "one seed"
    error = math.sqrt(statistics.variance(values) / len(values) + statistics.variance(base) / len(base))
    diff = statistics.fmean(values) - statistics.fmean(base)
    return "beyond noise" if abs(diff) > 2 * error else "within noise"


def addons(bench: Bench, data: dict[str, Dataset], names: list[str]) -> list[str]:
    lines = []
    for name in names:
        dataset = data[name]
        entries = {entry: bench.seeds_of(bench.work / "addons" / name / entry, [*dataset.overrides, *BUDGET, *extra])
                   for entry, extra in ADD_ONS.items() if entry in bench.entries}
        lines += table(f"Add-ons on {name} (MiniLM, full fine-tuning, 1 epoch)", entries, "plain")
    return lines


def distill(bench: Bench, data: dict[str, Dataset], names: list[str]) -> list[str]:
    sst2 = data["sst2"]
    teacher = bench.work / "addons" / "sst2" / "plain" / f"seed-{bench.seeds[0]}"
    base = [*sst2.overrides, *BUDGET]
    if bench.run(teacher, [*base, f"seed={bench.seeds[0]}"]) is None:
        return ["### Distillation", "", "the teacher run failed", ""]
    kd = [f"trainer.distill.teacher={teacher}", "trainer.distill.temperature=2.0", "trainer.distill.alpha=0.5"]
    students = {"3-layer": ["model.num_layers=3"], "lora": ["method=lora"]}
    entries: dict[str, list[float]] = {"teacher (full, 6 layers)": bench.seeds_of(teacher.parent, base)}
    lines = []
    for student, settings in students.items():
        alone = bench.seeds_of(bench.work / "distill" / student / "alone", [*base, *settings])
        taught = bench.seeds_of(bench.work / "distill" / student / "distilled", [*base, *settings, *kd])
        lines += table(f"Distillation into a {student} student (SST-2)",
                       {**entries, f"{student} alone": alone, f"{student} distilled": taught}, f"{student} alone")
    return lines


def ensemble(bench: Bench, data: dict[str, Dataset], names: list[str]) -> list[str]:
    sst2 = data["sst2"]
    members = [bench.work / "addons" / "sst2" / "plain" / f"seed-{s}" for s in bench.seeds]
    values = bench.seeds_of(members[0].parent, [*sst2.overrides, *BUDGET])
    combined = evaluate(bench.work / "ensemble" / "sst2", members) if len(values) == len(members) else None
    lines = table("Members (SST-2, plain)", {"member": values}, "member")
    best = max(values) if values else float("nan")
    if combined is not None:
        accuracy = combined["validation"][METRIC]
        lines += [f"{len(members)}-run ensemble (mean of probabilities): {METRIC} {accuracy:.3f}; best member "
                  f"{best:.3f}, mean member {statistics.fmean(values):.3f}", ""]
    return lines


FEW_SHOT = ["trainer.epochs=20", "trainer.batch_size=8", "trainer.lr=2e-4", "trainer.save_every=null",
            "trainer.eval_strategy=no"]  # k rows per class, 20 epochs, scored once at the end
PROMPT_BASED = ["task=prompt_based", "task.template='{text} It was {mask}.'",
                "task.label_words={negative: ' terrible', positive: ' great'}"]


def few_shot_data(data: dict[str, Dataset], shots: int) -> list[str]:
    """SST-2 with `shots` training rows per class (drawn by `data.shots_per_class`), the whole dev set."""
    kept = [o for o in data["sst2"].overrides if not o.startswith(("task=", "data.max_train_samples"))]
    return [*kept, f"data.shots_per_class={shots}", *FEW_SHOT]


def few_shot(bench: Bench, data: dict[str, Dataset], names: list[str]) -> list[str]:
    lines = []
    for shots in (16, 64):
        folder, rows = bench.work / "prompt" / f"k{shots}", few_shot_data(data, shots)
        entries = {
            "plain": bench.seeds_of(folder / "plain", ["task=sentiment", *rows]),
            "prompt-based": bench.seeds_of(folder / "prompt", [*PROMPT_BASED, *rows]),
        }
        lines += table(f"Prompt-based fine-tuning, {shots} examples per class (SST-2 dev)", entries, "plain")
    return lines


def meta(bench: Bench, data: dict[str, Dataset], names: list[str]) -> list[str]:
    trec, news = bench.data / "trec" / "train.jsonl", bench.data / "ag_news" / "train.jsonl"
    start = bench.work / "meta" / "reptile"
    settings = [f"trainer.meta.tasks=[{trec},{news}]", "data.label_column=label_text", "trainer.meta.algorithm=reptile",
                "trainer.meta.episodes=60", "trainer.meta.eval_episodes=4", "task.max_length=64",
                f"seed={bench.seeds[0]}"]
    if bench.run(start, ["task=text_classification", *settings]) is None:
        return ["### Meta-learning", "", "the Reptile run failed", ""]
    rows = ["task=sentiment", *few_shot_data(data, 16)]
    entries = {  # from the base model: the same runs as the prompt study's plain entry at 16 per class
        "from the base model": bench.seeds_of(bench.work / "prompt" / "k16" / "plain", rows),
        "from Reptile (TREC + AG News)": bench.seeds_of(bench.work / "meta" / "from-reptile",
                                                        [*rows, f"model.name_or_path={start}"]),
    }
    return table("Reptile starting point, then 16 examples per class on SST-2", entries, "from the base model")


STUDIES: dict[str, Callable[[Bench, dict[str, Dataset], list[str]], list[str]]] = {
    "addons": addons, "distill": distill, "ensemble": ensemble, "prompt": few_shot, "meta": meta,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED, help="the folder holding sst2/, rte/, trec/, ag_news/")
    parser.add_argument("--work", type=Path, default=None, help="where runs go (default: a new temporary folder)")
    parser.add_argument("--studies", default=",".join(STUDIES), help=f"comma-separated: {', '.join(STUDIES)}")
    parser.add_argument("--datasets", default="sst2,rte", help="the add-on study's datasets: sst2, rte")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--entries", default=",".join(ADD_ONS), help=f"the add-on study's entries: {', '.join(ADD_ONS)}")
    parser.add_argument("--dry", action="store_true", help="train nothing; print the tables of what is there")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this markdown file")
    parser.add_argument("extra", nargs="*", help="overrides added to every training run (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "sst2").is_dir():
        print(f"no datasets in {args.data}: pass --data", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    bench = Bench(work, args.data, [int(s) for s in args.seeds.split(",")], args.extra, args.dry, tuple(args.entries.split(",")))
    data, names = datasets(args.data), args.datasets.split(",")
    lines = []
    for study in args.studies.split(","):
        lines += STUDIES[study](bench, data, names)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    for failure in bench.failed:
        print("failed:", failure, file=sys.stderr)
    print(f"runs in {work} ({bench.trained} trained now)", file=sys.stderr)
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
