"""Held-out reward accuracy after SFT, DPO, SimPO and ORPO, over several seeds, in one invocation.

For each seed, the pairs are shuffled and 20% are held out. On the other 80% four runs train the
same model with LoRA: SFT on the chosen answers (`task=instruction`), and `task=preference` with
`task.loss=dpo`, `simpo` and `orpo`. Every model (the base model too) is then scored on the
held-out pairs the same way:

- **reward accuracy**: how often the implicit reward β·(log π − log π_base) of the chosen answer
  is above the rejected one's, against the untouched base model (DPO's reward, for every model,
  so the methods are compared on one scale; the base model has none);
- **log-prob accuracy**: how often the chosen answer has the higher mean log-probability per
  token under the model itself (what SimPO's reward ranks).

Each run evaluates only at its end (`trainer.eval_strategy=no`): no checkpoint is picked on the
held-out pairs. Prints one table with the mean and the spread (sample standard deviation) over
seeds, and each seed's values.

    python scripts/bench_preference.py                                  # orca_dpo_pairs_sample beside the checkout
    python scripts/bench_preference.py --data ../shared/data/hh_rlhf_harmless/test.jsonl --max-pairs 300
    python scripts/bench_preference.py --seeds 1,2,3,4,5 -- trainer.lr=5e-4

Arguments after `--` are extra overrides for every training run.
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

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "orca_dpo_pairs_sample" / "validation.jsonl"
RUNS = ("sft", "dpo", "simpo", "orpo")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="jsonl of prompt/chosen/rejected pairs")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded MiniLM)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--max-pairs", type=int, default=200, help="pairs drawn per seed before the 80/20 split")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--work-dir", type=Path, default=None, help="where runs go (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every training run")
    return parser.parse_args(argv)


def usable(pair: dict[str, Any]) -> bool:
    """Whether a pair has a prompt and two different, non-empty answers as texts (some public sets
    hold empty or repeated answers, which ftcli refuses, naming the row)."""
    texts = [pair.get(k) for k in ("prompt", "chosen", "rejected")]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        return False
    return texts[1].strip() != texts[2].strip()


def split_pairs(rows: list[dict[str, Any]], seed: int, max_pairs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`max_pairs` rows drawn with `seed`, 80% to train on and 20% held out."""
    drawn = list(rows)
    random.Random(seed).shuffle(drawn)
    drawn = drawn[:max_pairs]
    held = max(1, len(drawn) // 5)
    return drawn[held:], drawn[:held]


def sft_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pair's prompt and chosen answer, as `task=instruction` reads them."""
    rows = []
    for pair in pairs:
        row = {"prompt": pair["prompt"], "response": pair["chosen"]}
        if pair.get("system"):
            row["system"] = pair["system"]
        rows.append(row)
    return rows


def train_command(run: str, folder: Path, args: argparse.Namespace, seed: int) -> list[str]:
    common = [f"seed={seed}", f"task.max_length={args.max_length}", f"trainer.epochs={args.epochs}",
              f"trainer.batch_size={args.batch_size}", "trainer.eval_strategy=no", "method=lora",
              f"data.validation_file={folder / 'validation.jsonl'}", f"hydra.run.dir={folder / run}", "overwrite=true"]
    if args.model:
        common.append(f"model.name_or_path={args.model}")
    if run == "sft":
        task = ["task=instruction", "task.generate_in_eval=false", f"data.train_file={folder / 'sft.jsonl'}",
                f"data.validation_file={folder / 'sft_validation.jsonl'}"]
    else:
        task = ["task=preference", f"task.loss={run}", "task.skip_long_prompts=true",
                f"data.train_file={folder / 'train.jsonl'}"]
    return [sys.executable, "-m", "ftcli", "train", *common, *task, *args.overrides]


def held_out_scores(run_dir: Path | None, model: str | None, validation: Path, max_length: int) -> dict[str, float]:
    """Reward accuracy against the base model, and log-prob accuracy, on the held-out pairs."""
    from ftcli.config.schema import EMBEDDED_MODEL, DataConfig, ModelConfig, Precision
    from ftcli.data.readers import read_rows
    from ftcli.engine.frozen import FrozenModels
    from ftcli.models.loading import build_model, build_tokenizer, load_config, sync_pad_token
    from ftcli.runs.trained import load_trained
    from ftcli.tasks.pipeline import split_scores
    from ftcli.tasks.preference import Preference, PreferenceConfig, PreferenceLoss
    from ftcli.tasks.responses import as_decoder

    base_cfg = ModelConfig(model or EMBEDDED_MODEL)
    kind = Preference()

    def load_base() -> Any:
        base = build_model(base_cfg, kind.model_class(), [], **as_decoder(load_config(base_cfg)))
        sync_pad_token(base, tokenizer)
        return base

    if run_dir is None:
        tokenizer = build_tokenizer(base_cfg)
        policy, switch_off = load_base().eval(), None
    else:
        trained = load_trained(run_dir)
        tokenizer, policy, switch_off = trained.tokenizer, trained.model, trained.method.switch_off
    rows = read_rows(str(validation), "validation", "text")
    scores: dict[str, float] = {}
    for loss, name in ((PreferenceLoss.dpo, "reward_accuracy"), (PreferenceLoss.simpo, "logp_accuracy")):
        if run_dir is None and loss is PreferenceLoss.dpo:
            continue  # the base model against itself has no reward
        cfg = PreferenceConfig(loss=loss, max_length=max_length, skip_long_prompts=True)
        task = kind.bind(cfg, DataConfig(), [], tokenizer, FrozenModels(switch_off, load_base))
        features = task.encode(rows, str(validation))
        scores[name] = split_scores(task, policy, features, 16, Precision.fp32)["reward_accuracy"]
    return scores


def summary(values: list[float]) -> str:
    if not values:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def table(results: dict[str, list[dict[str, float]]]) -> str:
    lines = ["| model | reward accuracy vs base | log-prob accuracy | per seed (reward / log-prob) |",
             "| --- | --- | --- | --- |"]
    for name, per_seed in results.items():
        rewards = [s["reward_accuracy"] for s in per_seed if "reward_accuracy" in s]
        logps = [s["logp_accuracy"] for s in per_seed]
        seeds = ", ".join(f"{s.get('reward_accuracy', float('nan')):.2f} / {s['logp_accuracy']:.2f}" for s in per_seed)
        lines.append(f"| {name} | {summary(rewards)} | {summary(logps)} | {seeds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = [p for p in pairs if usable(p)]
    runs = [r for r in args.runs.split(",") if r]
    results: dict[str, list[dict[str, float]]] = {"base": [], **{r: [] for r in runs}}
    with tempfile.TemporaryDirectory() as scratch:
        root = args.work_dir or Path(scratch)
        for seed in (int(s) for s in args.seeds.split(",")):
            folder = root / f"seed-{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            train, held = split_pairs(pairs, seed, args.max_pairs)
            write_jsonl(folder / "train.jsonl", train)
            validation = write_jsonl(folder / "validation.jsonl", held)
            write_jsonl(folder / "sft.jsonl", sft_rows(train))
            write_jsonl(folder / "sft_validation.jsonl", sft_rows(held))
            results["base"].append(held_out_scores(None, args.model, validation, args.max_length))
            for run in runs:
                print(f"seed {seed}: training {run}", file=sys.stderr, flush=True)
                subprocess.run(train_command(run, folder, args, seed), check=True, stdout=subprocess.DEVNULL)
                results[run].append(held_out_scores(folder / run, args.model, validation, args.max_length))
    print(f"{args.data} — {len(pairs)} pairs, {args.max_pairs} drawn per seed (20% held out), seeds {args.seeds}, "
          f"LoRA, {args.epochs} epochs, batch {args.batch_size}, max_length {args.max_length}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
