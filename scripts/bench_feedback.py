"""What `task=feedback` learns from language feedback, over several seeds, in one invocation.

Two data sets of feedback rows (prompt, output, feedback, refinement), each read from a folder:

- **code** (`--code`, the ILF-for-code annotations: programs, human feedback, human refinements,
  unit tests): trains on its `train.jsonl` and scores on its `validation.jsonl`:
  - `refine` against the base model as it is (the same prompt, no tuning): ROUGE-L and chrF of
    the written refinements against the human ones;
  - `imitate` trained on the human refinements against `imitate` trained on the original outputs
    (`task.refinement_column=output`), scored against the human refinements;
  - with `--run-code`, pass@1 of every model's programs against the rows' unit tests, and of the
    human refinements and original outputs themselves, as a check of the runner and a ceiling.
- **critique** (`--critique`, human critiques of answers): per seed, 80% of the rows train a
  `critique` run and 20% are held out; ROUGE-L and chrF of the written critiques against the human
  ones, against the base model as it is.

Runs evaluate only at their end (`trainer.eval_strategy=no`, then `ftcli eval` on the held-out
rows), so no checkpoint is picked on them. Prints one table per set: the mean and the spread
(sample standard deviation) over seeds, and each seed's value.

    python scripts/bench_feedback.py                       # the data sets beside the checkout, seeds 1,2,3
    python scripts/bench_feedback.py --sets code --run-code --seeds 1,2,3,4,5
    python scripts/bench_feedback.py --model Qwen/Qwen2.5-0.5B -- method=lora trainer.lr=2e-4

Arguments after `--` are extra overrides for every training run. `--run-code` runs programs (the
data's and the models') in contained processes (`ftcli/tasks/code_runs.py`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ftcli.data.jsonl import write_jsonl

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METRICS = ("rougeL", "chrf", "pass@1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=SHARED / "ilf_code_feedback")
    parser.add_argument("--critique", type=Path, default=SHARED / "shepherd_critiques")
    parser.add_argument("--sets", default="code,critique", help="comma-separated: code, critique")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded MiniLM)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--code-epochs", type=float, default=10.0)
    parser.add_argument("--critique-epochs", type=float, default=2.0)
    parser.add_argument("--max-critique-rows", type=int, default=None, help="rows drawn per seed before the split")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens written per answer")
    parser.add_argument("--run-code", action="store_true", help="score programs against their unit tests (pass@1)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where runs go (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every training run")
    return parser.parse_args(argv)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def task_settings(objective: str, args: argparse.Namespace, extra: list[str]) -> list[str]:
    settings = ["task=feedback", f"task.objective={objective}", f"task.max_length={args.max_length}",
                f"task.generation.max_new_tokens={args.new_tokens}", *extra]
    return settings + (["task.run_code=true"] if args.run_code and objective != "critique" else [])


def train_and_score(name: str, folder: Path, train: Path, held: Path, settings: list[str], epochs: float,
                    args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Train one run on `train`, then score it on `held` with `ftcli eval`."""
    run = folder / name
    model = [f"model.name_or_path={args.model}"] if args.model else []
    print(f"seed {seed}: training {name}", file=sys.stderr, flush=True)
    subprocess.run([
        sys.executable, "-m", "ftcli", "train", *model, *settings, f"seed={seed}", f"trainer.epochs={epochs}",
        f"trainer.batch_size={args.batch_size}", "trainer.eval_strategy=no", "method=full",
        f"data.train_file={train}", f"data.validation_file={held}", f"hydra.run.dir={run}", "overwrite=true",
        *args.overrides,
    ], check=True, stdout=subprocess.DEVNULL)
    scored = folder / f"{name}-eval"
    subprocess.run([sys.executable, "-m", "ftcli", "eval", f"run_dir={run}", f"data.validation_file={held}",
                    f"hydra.run.dir={scored}"], check=True, stdout=subprocess.DEVNULL)
    return json.loads((scored / "metrics.json").read_text())["validation"]


def base_scores(objective: str, held: Path, args: argparse.Namespace, seed: int) -> dict[str, float]:
    """The base model as it is, writing for the same prompts the trained runs see; built under `seed`,
    as a run is, since weights the checkpoint lacks (MiniLM's language-model transform) start random."""
    import torch

    from ftcli.config.schema import EMBEDDED_MODEL, DataConfig, GenerationConfig, ModelConfig, Precision
    from ftcli.data.readers import read_rows
    from ftcli.models.loading import build_model, build_tokenizer, load_config, sync_pad_token
    from ftcli.tasks.feedback import Feedback, FeedbackConfig
    from ftcli.tasks.pipeline import split_scores

    base_cfg = ModelConfig(args.model or EMBEDDED_MODEL)
    kind = Feedback()
    cfg = FeedbackConfig(objective=objective, max_length=args.max_length, run_code=args.run_code and objective != "critique",
                         generation=GenerationConfig(max_new_tokens=args.new_tokens))
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(base_cfg)
    model = build_model(base_cfg, kind.model_class(), [], **kind.model_config(cfg, load_config(base_cfg)))
    sync_pad_token(model, tokenizer)
    task = kind.bind(cfg, DataConfig(), [], tokenizer)
    features = task.encode(read_rows(str(held), "validation", "text"), str(held))
    return split_scores(task, model.eval(), features, 16, Precision.fp32)


def human_pass_rates(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """pass@1 of the data's own programs: the human refinements, and the outputs they fix."""
    from ftcli.tasks.code_runs import Limits, entry_point, pass_at_1, program

    rates = {}
    for column in ("refinement", "output"):
        sources = [program(r["prompt"], r[column], r["test"], entry_point(r["prompt"])) for r in rows]
        rates[f"human {column}s"] = {"pass@1": pass_at_1(sources, Limits())[0]}
    return rates


def code_results(args: argparse.Namespace, seeds: list[int], root: Path) -> dict[str, list[dict[str, float]]]:
    train, held = args.code / "train.jsonl", args.code / "validation.jsonl"
    results: dict[str, list[dict[str, float]]] = {"base, refine prompt": [], "refine": [], "base, imitate prompt": [],
                                                  "imitate human refinements": [], "imitate original outputs": []}
    for seed in seeds:
        folder = root / "code" / f"seed-{seed}"
        results["base, refine prompt"].append(base_scores("refine", held, args, seed))
        results["base, imitate prompt"].append(base_scores("imitate", held, args, seed))
        results["refine"].append(train_and_score(
            "refine", folder, train, held, task_settings("refine", args, []), args.code_epochs, args, seed))
        results["imitate human refinements"].append(train_and_score(
            "imitate", folder, train, held, task_settings("imitate", args, []), args.code_epochs, args, seed))
        results["imitate original outputs"].append(train_and_score(
            "imitate-outputs", folder, train, held, task_settings("imitate", args, ["task.refinement_column=output"]),
            args.code_epochs, args, seed))
    if args.run_code:
        results.update({name: [rate] for name, rate in human_pass_rates(read_jsonl(held)).items()})
    return results


def critique_results(args: argparse.Namespace, seeds: list[int], root: Path) -> dict[str, list[dict[str, float]]]:
    rows = [r for r in read_jsonl(args.critique / "train.jsonl") if str(r.get("feedback", "")).strip()]
    results: dict[str, list[dict[str, float]]] = {"base, critique prompt": [], "critique": []}
    for seed in seeds:
        drawn = list(rows)
        random.Random(seed).shuffle(drawn)
        drawn = drawn[: args.max_critique_rows or len(drawn)]
        cut = len(drawn) // 5
        folder = root / "critique" / f"seed-{seed}"
        train, held = write_jsonl(folder / "train.jsonl", drawn[cut:]), write_jsonl(folder / "held.jsonl", drawn[:cut])
        results["critique"].append(train_and_score(
            "critique", folder, train, held, task_settings("critique", args, []), args.critique_epochs, args, seed))
        results["base, critique prompt"].append(base_scores("critique", held, args, seed))
    return results


def summary(values: list[float]) -> str:
    if not values:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def table(results: dict[str, list[dict[str, float]]]) -> str:
    shown = [m for m in METRICS if any(m in s for runs in results.values() for s in runs)]
    lines = [f"| model | {' | '.join(shown)} | per seed ({' / '.join(shown)}) |",
             f"| --- | {' | '.join('---' for _ in shown)} | --- |"]
    for name, per_seed in results.items():
        cells = [summary([s[m] for s in per_seed if m in s]) for m in shown]
        seeds = ", ".join(" / ".join(f"{s[m]:.3f}" if m in s else "—" for m in shown) for s in per_seed)
        lines.append(f"| {name} | {' | '.join(cells)} | {seeds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sets = [s for s in args.sets.split(",") if s]
    with tempfile.TemporaryDirectory() as scratch:
        root = args.work_dir or Path(scratch)
        if "code" in sets:
            results = code_results(args, seeds, root)
            print(f"{args.code}: train on train.jsonl, score on validation.jsonl; seeds {args.seeds}; full fine-tuning, "
                  f"{args.code_epochs} epochs, batch {args.batch_size}, max_length {args.max_length}")
            print(table(results))
        if "critique" in sets:
            results = critique_results(args, seeds, root)
            print(f"{args.critique}: 80/20 split per seed; seeds {args.seeds}; full fine-tuning, "
                  f"{args.critique_epochs} epochs, batch {args.batch_size}, max_length {args.max_length}")
            print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
