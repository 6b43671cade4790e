"""Fine-tune the embedded MiniLM on CoNLL-2003 NER, TREC-6, RTE, MRPC and XQuAD-en; compare with published figures.

Each benchmark runs as its own `python -m ftcli train` process (so peak RSS, read with
os.wait4, is that run's alone), on local jsonl files under --data-root, with the settings in
BENCHMARKS below (epochs, learning rate, max length, rows). The scores, trainable share and
throughput are read back from the run's metrics.json; the split sizes are counted with ftcli's
own loader from the run's config.yaml. A markdown table (and the published reference figure for
each benchmark, with its source and the gap to ours) is printed and, with --out, written.

Before each benchmark a `--cfg job` dry run checks that ftcli accepts its overrides; a benchmark
whose task ftcli does not have is skipped with ftcli's message,
and the others still run.

    python scripts/bench_tasks.py --out docs/results.md                  # all five, full fine-tuning
    python scripts/bench_tasks.py --benchmarks trec --lora-on trec        # one benchmark, full and LoRA
    python scripts/bench_tasks.py --max-train-samples 200 --epochs 1      # a quick check of the pipeline
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Reference:
    """A published figure to set ours against: percent, on which split, by which model, from where."""

    value: float
    split: str  # "validation" or "test": which of our splits it is compared with
    metric: str  # a key of Benchmark.metrics
    model: str
    setting: str
    source: str


@dataclass(frozen=True)
class Benchmark:
    name: str
    dataset: str
    folder: str  # under --data-root
    task: str
    files: dict[str, str]  # split -> file name in the folder
    overrides: list[str]  # ftcli overrides besides the files and the trainer settings
    epochs: float
    lr: float  # full fine-tuning's rate; other methods use their own default
    max_length: int = 128
    metrics: dict[str, str] = field(default_factory=lambda: {"accuracy": "accuracy"})  # label -> metrics.json key
    note: str = ""
    references: tuple[Reference, ...] = ()


# Reference figures: each was read in the source named (see docs/results.md for the wider set).
BENCHMARKS: dict[str, Benchmark] = {
    "conll2003": Benchmark(
        name="conll2003", dataset="CoNLL-2003 English NER", folder="conll2003", task="ner",
        files={"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"},
        overrides=["task.tokens_column=tokens", "task.tags_column=ner_tags"],
        epochs=1, lr=1e-4, metrics={"entity F1": "f1"},
        note="IOB2 string tags; entity-level micro F1 (seqeval, conlleval reading)",
        references=(
            Reference(95.1, "validation", "entity F1", "bert-base-cased (dslim/bert-base-NER), 108M",
                      "sentence-level, BERT-paper hyper-parameters, 1x V100",
                      "huggingface/transformers `model_cards/dslim/bert-base-NER/README.md`"),
            Reference(91.3, "test", "entity F1", "bert-base-cased (dslim/bert-base-NER), 108M",
                      "sentence-level, BERT-paper hyper-parameters, 1x V100",
                      "huggingface/transformers `model_cards/dslim/bert-base-NER/README.md`"),
        ),
    ),
    "trec": Benchmark(
        name="trec", dataset="TREC-6 question classification", folder="trec", task="text_classification",
        files={"train": "train.jsonl", "test": "test.jsonl"},
        overrides=["data.text_column=text", "data.label_column=label_text"],
        epochs=2, lr=5e-5, metrics={"accuracy": "accuracy"},
        note="validation: 10% of train held out by ftcli (seeded); test: the 500 TREC-10 questions",
        references=(
            Reference(97.4, "test", "accuracy", "bert-base-cased (aychang/bert-base-cased-trec-coarse), 108M",
                      "2 epochs, batch 16, warmup 500, 1x V100",
                      "HF model card `aychang/bert-base-cased-trec-coarse` (copy: saranscript/huggingface-models "
                      "`models/aychang/bert-base-cased-trec-coarse/README.md`)"),
        ),
    ),
    "rte": Benchmark(
        name="rte", dataset="GLUE RTE", folder="rte", task="pair_classification",
        files={"train": "train.jsonl", "validation": "dev.jsonl"},
        overrides=["data.text_column=sentence1", "data.text_pair_column=sentence2", "data.label_column=label_text"],
        epochs=3, lr=5e-5, metrics={"accuracy": "accuracy"},
        note="validation: the GLUE dev set (the test set has no labels)",
        references=(
            Reference(68.8, "validation", "accuracy", "MiniLM-L6-H384 (Microsoft's distilled 6-layer), 22M",
                      "Microsoft's recipe (not listed)", "microsoft/unilm `minilm/README.md`"),
        ),
    ),
    "mrpc": Benchmark(
        name="mrpc", dataset="GLUE MRPC", folder="mrpc", task="pair_classification",
        files={"train": "train.jsonl", "validation": "dev.jsonl"},
        overrides=["data.text_column=sentence1", "data.text_pair_column=sentence2", "data.label_column=label_text"],
        epochs=3, lr=5e-5, metrics={"accuracy": "accuracy", "F1": "f1_per_class.equivalent"},
        note="validation: the GLUE dev set (no test labels); F1 is that of the `equivalent` class, as GLUE reports it",
        references=(
            Reference(88.85, "validation", "F1", "bert-base-cased (`run_glue.py`), 108M",
                      "5 epochs, lr 2e-5, batch 32, seq 128, 1x Titan RTX",
                      "huggingface/transformers `examples/pytorch/text-classification/README.md`"),
            Reference(84.07, "validation", "accuracy", "bert-base-cased (`run_glue.py`), 108M",
                      "5 epochs, lr 2e-5, batch 32, seq 128, 1x Titan RTX",
                      "huggingface/transformers `examples/pytorch/text-classification/README.md`"),
        ),
    ),
    "xquad": Benchmark(
        name="xquad", dataset="XQuAD-en extractive QA", folder="xquad_en", task="qa",
        files={"train": "split/train.jsonl", "validation": "split/validation.jsonl"},
        overrides=["task.question_column=question", "task.context_column=context", "task.answers_column=answers",
                   "task.doc_stride=128", "task.allow_unanswerable=false"],
        epochs=3, lr=1e-4, max_length=384, metrics={"EM": "exact_match", "F1": "f1"},
        note="XQuAD-en is 1,190 SQuAD v1.1 dev questions (48 articles); split by article: train 894 questions "
             "(36 articles), validation 296 (12, every 4th); no test split. Every question has an answer "
             "(SQuAD v1.1), so no-answer predictions are off",
        # The published figures are SQuAD v1.1 dev scores after training on the SQuAD v1.1 train set (87,599
        # questions, about 100 times our 894). XQuAD-en's questions come from that same dev set, so the
        # questions are alike; the gap is mostly the training-set size.
        references=(
            Reference(88.52, "validation", "F1", "bert-base-uncased on SQuAD v1.1 (`run_qa.py`), 110M",
                      "trained on SQuAD v1.1 train (87,599 questions), scored on its dev set (10,570); "
                      "2 epochs, lr 3e-5, batch 12, seq 384, stride 128, 1x V100",
                      "huggingface/transformers `examples/pytorch/question-answering/README.md`"),
            Reference(81.22, "validation", "EM", "bert-base-uncased on SQuAD v1.1 (`run_qa.py`), 110M",
                      "trained on SQuAD v1.1 train (87,599 questions), scored on its dev set (10,570); "
                      "2 epochs, lr 3e-5, batch 12, seq 384, stride 128, 1x V100",
                      "huggingface/transformers `examples/pytorch/question-answering/README.md`"),
            Reference(85.8, "validation", "F1", "DistilBERT on SQuAD v1.1 (6 layers), 66M",
                      "trained on SQuAD v1.1 train (87,599 questions), scored on its dev set",
                      "Sanh et al. 2019, DistilBERT, Table 2"),
            Reference(77.7, "validation", "EM", "DistilBERT on SQuAD v1.1 (6 layers), 66M",
                      "trained on SQuAD v1.1 train (87,599 questions), scored on its dev set",
                      "Sanh et al. 2019, DistilBERT, Table 2"),
        ),
    ),
}
ORDER = ["conll2003", "trec", "rte", "mrpc", "xquad"]  # the pair tasks after the single-text ones; QA last


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder holding conll2003/, trec/, rte/, mrpc/, xquad_en/ "
                             "(default: ../shared/data beside the checkout)")
    parser.add_argument("--benchmarks", default=",".join(ORDER), help=f"comma-separated, from {', '.join(ORDER)}")
    parser.add_argument("--methods", default="full", help="comma-separated methods to run on every benchmark")
    parser.add_argument("--lora-on", default="", help="comma-separated benchmarks that also get a LoRA run")
    parser.add_argument("--epochs", type=float, default=None, help="override every benchmark's epochs")
    parser.add_argument("--lr", type=float, default=None, help="override full fine-tuning's rate everywhere")
    parser.add_argument("--max-train-samples", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--runs", type=Path, default=None, help="where run directories go (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS/MKL_NUM_THREADS for each run (default: torch's own, one per core); "
                             "1 is far faster when other processes keep a core busy")
    parser.add_argument("--resume", action="store_true",
                        help="reuse finished runs of the same command in --runs instead of training them again")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here too")
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides for every run")
    return parser.parse_args()


def command_for(bench: Benchmark, method: str, args: argparse.Namespace, data_dir: Path, run: Path) -> list[str]:
    command = [
        sys.executable, "-m", "ftcli", "train", f"task={bench.task}", f"method={method}",
        *(f"data.{split}_file={data_dir / name}" for split, name in bench.files.items()),
        *bench.overrides,
        f"task.max_length={bench.max_length}",
        f"trainer.epochs={args.epochs if args.epochs is not None else bench.epochs:g}",
        "trainer.logging_steps=50", f"hydra.run.dir={run}",
    ]
    if method == "full":
        command.append(f"trainer.lr={args.lr if args.lr is not None else bench.lr:g}")
    if args.max_train_samples:
        command.append(f"data.max_train_samples={args.max_train_samples}")
    return command + list(args.overrides)


def environment(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def preflight(command: list[str]) -> str | None:
    """None when ftcli accepts the overrides (`--cfg job`), else its message in one line."""
    result = subprocess.run([*command, "--cfg", "job"], capture_output=True, text=True)
    if result.returncode == 0:
        return None
    text = re.sub(r"[│╭╮╰╯─]+", " ", result.stdout + result.stderr)
    return " ".join(text.split()) or f"exit code {result.returncode}"


def train(command: list[str], log: Path, threads: int | None) -> tuple[int, float]:
    """Run one training process, its output to `log`; return its exit code and peak RSS in MB."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment(threads))
        _, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def sidecar(run: Path) -> Path:
    return run.parent / f"{run.name}.bench.json"


def finished(run: Path, command: list[str]) -> dict | None:
    """--resume: a finished earlier run of this same command, with its wall time (s) and peak RSS (MB).

    Runs this script trained have a sidecar with the command and its own measurements; for
    other runs the overrides Hydra recorded must match, and ftcli's own wall time and peak RSS
    (metrics.json) stand in.
    """
    import yaml

    if not (run / "metrics.json").is_file():
        return None
    if sidecar(run).is_file():
        saved = json.loads(sidecar(run).read_text())
        return saved if saved["command"][1:] == command[1:] else None
    overrides = run / ".hydra" / "overrides.yaml"
    wanted = [o for o in command[4:] if not o.startswith("hydra.")]  # Hydra does not record its own settings there
    if overrides.is_file() and yaml.safe_load(overrides.read_text()) == wanted:
        train_metrics = json.loads((run / "metrics.json").read_text())["train"]
        return {"wall": train_metrics["wall_seconds"], "rss": train_metrics["peak_rss_mb"]}
    return None


def split_sizes(run: Path) -> dict[str, int]:
    """Rows per split, counted with ftcli's loader from the run's own data settings."""
    import yaml

    from ftcli.config.schema import DataConfig
    from ftcli.data.splits import load_splits

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    known = {f.name for f in dataclasses.fields(DataConfig)}
    data = DataConfig(**{k: v for k, v in cfg["data"].items() if k in known})
    splits = load_splits(data, cfg["task"]["name"], cfg["seed"], training=True)
    return {split: len(rows) for split, rows in splits.rows.items()}


def lookup(metrics: dict, dotted: str) -> float | None:
    value = metrics
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def main() -> int:
    args = parse_args()
    if not args.data_root.is_dir():
        print(f"benchmark data not found: {args.data_root} does not exist.\n"
              f"Pass --data-root DIR, a folder holding {', '.join(f + '/' for f in ORDER)} with the jsonl files.",
              file=sys.stderr)
        return 2
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    unknown = [n for n in names + [n for n in args.lora_on.split(",") if n] if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    runs = args.runs or Path(tempfile.mkdtemp(prefix="ftcli-bench-tasks-"))
    runs.mkdir(parents=True, exist_ok=True)
    started_all = time.perf_counter()
    rows, skipped = [], []
    for name in sorted(names, key=ORDER.index):
        bench = BENCHMARKS[name]
        data_dir = args.data_root / bench.folder
        missing = [f for f in bench.files.values() if not (data_dir / f).is_file()]
        if missing:
            skipped.append((name, f"missing in {data_dir}: {', '.join(missing)}"))
            print(f"{name}: skipped, {skipped[-1][1]}", file=sys.stderr)
            continue
        methods = args.methods.split(",") + (["lora"] if name in args.lora_on.split(",") else [])
        for method in dict.fromkeys(methods):
            run = runs / f"{name}-{method}"
            command = command_for(bench, method, args, data_dir, run)
            problem = preflight(command)
            if problem:
                skipped.append((f"{name} ({method})", problem))
                print(f"{name} ({method}): skipped, ftcli rejects the config: {problem}", file=sys.stderr)
                continue
            earlier = finished(run, command) if args.resume else None
            if not earlier and (run / "metrics.json").is_file():
                why = "a different command" if args.resume else "a finished run; pass --resume to reuse it"
                skipped.append((f"{name} ({method})", f"{run} already holds {why}, or choose another --runs"))
                print(f"{name} ({method}): skipped, {skipped[-1][1]}", file=sys.stderr)
                continue
            if earlier:
                # a run this script did not train has no record of its thread setting
                code, rss, wall, threads = 0, earlier["rss"], earlier["wall"], earlier.get("threads", "not recorded")
                print(f"{name} ({method}): reusing the finished run in {run}", file=sys.stderr)
            else:
                print(f"{name} ({method}): training, log in {run}.log", file=sys.stderr)
                started = time.perf_counter()
                code, rss = train(command, runs / f"{name}-{method}.log", args.threads)
                wall, threads = time.perf_counter() - started, args.threads
                if code == 0:
                    sidecar(run).write_text(json.dumps({"command": command, "wall": wall, "rss": rss, "threads": threads}))
            if code != 0 or not (run / "metrics.json").is_file():
                tail = (runs / f"{name}-{method}.log").read_text().strip().splitlines()[-12:]
                skipped.append((f"{name} ({method})", f"ftcli train exited {code}: " + " ".join(" ".join(tail).split())))
                print(f"{name} ({method}): ftcli train exited {code}; see {runs / f'{name}-{method}.log'}", file=sys.stderr)
                continue
            metrics = json.loads((run / "metrics.json").read_text())
            train_metrics = metrics["train"]
            scores = {
                split: {label: lookup(metrics[split], key) for label, key in bench.metrics.items()}
                for split in ("validation", "test") if split in metrics
            }
            rows.append({
                "bench": bench, "method": method, "scores": scores, "sizes": split_sizes(run),
                "epochs": train_metrics["epochs"], "lr": train_metrics["lr"],
                "batch": _config(run)["trainer"]["batch_size"],
                "trainable": train_metrics["parameters"]["trainable_percent"],
                "sps": train_metrics["samples_per_second"], "wall": wall, "rss": rss, "threads": threads,
                "command": " ".join(command[2:]).replace(str(runs), "$RUNS").replace(str(args.data_root), "$DATA"),
            })
            print(f"{name} ({method}): {_scores_text(scores.get('validation', {}))} validation, "
                  f"{_scores_text(scores.get('test', {})) or '-'} test, {wall / 60:.1f} min", file=sys.stderr)
    report = markdown(rows, skipped, args, time.perf_counter() - started_all)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    print(f"run directories: {runs}", file=sys.stderr)
    return 0 if rows else 1


def _config(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


def _scores_text(scores: dict[str, float | None]) -> str:
    return " / ".join(f"{label} {value * 100:.2f}" for label, value in scores.items() if value is not None)


def markdown(rows: list[dict], skipped: list[tuple[str, str]], args: argparse.Namespace, total: float) -> str:
    lines = [
        "| benchmark | task | train / validation / test rows | epochs | batch | method | lr | validation | test | "
        "published (model, split) | trainable % | threads | samples/s | wall min | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bench, sizes = r["bench"], r["sizes"]
        size_text = " / ".join(f"{sizes[s]:,}" if s in sizes else "-" for s in ("train", "validation", "test"))
        refs = "; ".join(
            f"{ref.metric} {ref.value:g} ({ref.model.split(' (')[0]}, {ref.split})" for ref in bench.references
        )
        lines.append(
            f"| {bench.dataset} | `{bench.task}` | {size_text} | {r['epochs']:g} | {r['batch']} | {r['method']} | "
            f"{r['lr']:g} | {_scores_text(r['scores'].get('validation', {})) or '-'} | "
            f"{_scores_text(r['scores'].get('test', {})) or '-'} | {refs or '-'} | {r['trainable']:.2f} | "
            f"{r['threads'] or 'default'} | "
            f"{r['sps']:.1f} | {r['wall'] / 60:.1f} | {r['rss']:.0f} |"
        )
    lines += [
        "",
        "Against the published figures (gap = ours minus published, in points). The published runs used bigger "
        "models, more epochs and GPUs"
        + (" (and, for QA, SQuAD v1.1's 87,599 training questions against our 894)"
           if any(r["bench"].task == "qa" for r in rows) else "")
        + ", so the gap measures the budget as much as ftcli:",
        "",
        "| benchmark | method | metric (split) | ours | published | gap | published model and setting | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for ref in r["bench"].references:
            ours = r["scores"].get(ref.split, {}).get(ref.metric)
            ours_text = f"{ours * 100:.2f}" if ours is not None else "-"
            gap = f"{ours * 100 - ref.value:+.2f}" if ours is not None else "-"
            lines.append(
                f"| {r['bench'].dataset} | {r['method']} | {ref.metric} ({ref.split}) | {ours_text} | {ref.value:g} | "
                f"{gap} | {ref.model}; {ref.setting} | {ref.source} |"
            )
    notes = {r["bench"].dataset: r["bench"].note for r in rows if r["bench"].note}
    if notes:
        lines += ["", "Notes:", ""] + [f"- {dataset}: {note}." for dataset, note in notes.items()]
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {name}: {why}" for name, why in skipped]
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, {platform.python_version()}, fp32 "
        f"(no GPU). Total time of this invocation: {total / 60:.1f} min.",
        "",
        "Command: `python scripts/bench_tasks.py " + " ".join(
            str(a).replace(str(args.data_root), "$DATA") for a in sys.argv[1:]) + "`",
        "",
        "Each run's `ftcli train` command (`$DATA` is --data-root, `$RUNS` the run folder):",
        "",
    ]
    lines += [f"    {r['command']}" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
