"""ftcli against TRL's SFTTrainer on instruction tuning, in one invocation: LoRA and full fine-tuning.

The same causal LM, the same rows, the same token ids and loss mask, the same optimiser, learning
rate, batch size, number of optimiser steps and seed on both sides; each run in a fresh child
process, one after the other, with the same threads (`OMP_NUM_THREADS`, default 1).

The model. A Llama (RMSNorm, rotary positions, gated MLP) of about 41M parameters (8 layers,
hidden 512, 8 heads, MLP 1376, input and output embeddings tied) on the embedded MiniLM's
tokenizer and vocabulary, its weights drawn under a fixed seed and saved to the work folder, which
both sides load. Random weights cost the same time and memory as trained ones. The tokenizer's
EOS is `[SEP]`, what ftcli ends an answer with when a tokenizer has no EOS.

The rows: Alpaca-style jsonl (`instruction`, `input`, `output`; default: the alpaca_libre set in
`shared/` beside the checkout, else ftcli's bundled instruction sample), the first
`--steps x --batch-size` (one epoch: every row trained once; a file with fewer rows is trained
for several epochs, in whole batches). ftcli encodes them with its plain
template (`### Instruction:` / `### Input:` / `### Response:`; the loss on the response tokens and
the EOS only, cut at `--max-length`), and TRL is handed exactly those token ids and labels (a
tokenised dataset: `input_ids` and `labels`, -100 on the prompt), so the loss mask is the same
completion-only one on both sides.

Batching, both padding-free: ftcli's `task.packing=true` flattens each batch of rows into one
sequence whose position ids restart at every row. TRL is run two ways:

- `padding-free` (`padding_free=True`, no packing): TRL's collator flattens each batch of rows the
  same way. TRL is given the rows in the order ftcli's sampler draws them and takes them in that
  order (`train_sampling_strategy="sequential"`), so both sides train on the very same batches;
  the table checks that (the `same batches` column) and the losses are comparable step by step.
- `packed` (`packing=True`, `packing_strategy="bfd"`, TRL's recommended setting): rows are packed
  best-fit into sequences of `--max-length` tokens, padding-free, and a batch holds as many of
  those as carry about as many tokens as ftcli's batches do. Its batches are not ftcli's, so its
  loss is not step-by-step comparable; its speed is.

The same optimiser on both sides: AdamW (fused), weight decay 0.01 (none on biases and norms),
linear schedule with 6% warm-up, gradient clipping at 1.0, fp32, no evaluation or checkpoints
while training, no gradient checkpointing (TRL's default is on; `--gradient-checkpointing` turns
it on for both). LoRA: rank 16, alpha 32, no dropout, on every attention and MLP projection.

What is measured, alike for both: the training tokens (real ones: no padding is trained on either
side), the wall time from the start of the first optimiser step to the end of the last, the CPU
time of the child in that span, the peak RSS of the child, and each step's loss (the mean over the
step's supervised tokens); the table gives the mean loss of the first and of the last 10 steps.
ftcli's own `tokens_per_second` from its metrics.json is shown beside the measured one.
`--profile` runs each child's third step under `torch.profiler` and keeps its top operators.

    python scripts/bench_llm.py                                 # LoRA and full, TRL both ways
    python scripts/bench_llm.py --methods lora --steps 20 --trl-modes padding-free
    python scripts/bench_llm.py --dry-run                       # the plan only: no model, no TRL

Needs TRL (`pip install -e ".[bench]"`, best in a venv of its own) except for `--dry-run`.
Arguments after `--` are extra overrides for the ftcli side only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_children, beside this script
from bench_children import measure, meter_optimiser_steps, peak_rss_mb, read_jsonl, result_file, summarise  # noqa: E402
from bench_children import versions as library_versions  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "trl")  # whose versions head the table
# the benchmark data beside the checkout, or beside a folder above it
SHARED_DATA = next((p / "shared" / "data" / "alpaca_libre" / "train.jsonl" for p in CHECKOUT.parents
                    if (p / "shared" / "data").is_dir()), CHECKOUT.parent / "shared" / "data" / "alpaca_libre" / "train.jsonl")
SAMPLE_DATA = CHECKOUT / "ftcli" / "samples" / "instruction" / "train.jsonl"
METHODS = ("lora", "full")
TRL_MODES = ("padding-free", "packed")
# a Llama of about 41M parameters on MiniLM's vocabulary (30,522 tokens, 15.6M of the parameters)
MODEL_SHAPE = {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 8, "num_attention_heads": 8,
               "num_key_value_heads": 8, "max_position_embeddings": 512, "tie_word_embeddings": True}
MODEL_SEED = 1234
END_TOKEN = "[SEP]"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "targets": TARGETS}
OPTIMISER = {"weight_decay": 0.01, "warmup_ratio": 0.06, "max_grad_norm": 1.0}  # ftcli's trainer defaults
DEFAULT_LR = {"lora": 1e-3, "full": 2e-4}
DEV_ROWS = 4  # ftcli scores the validation split once after training (outside the timed steps)
LAST_STEPS = 10  # the final loss is the mean of this many last steps


def default_data() -> Path:
    return SHARED_DATA if SHARED_DATA.is_file() else SAMPLE_DATA


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help=f"Alpaca-style jsonl (default: {default_data()})")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: lora, full")
    parser.add_argument("--trl-modes", default=",".join(TRL_MODES), help="comma-separated: padding-free, packed")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per run")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per step")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per row (prompt + response)")
    parser.add_argument("--lr-lora", type=float, default=DEFAULT_LR["lora"])
    parser.add_argument("--lr-full", type=float, default=DEFAULT_LR["full"])
    parser.add_argument("--repeats", type=int, default=1, help="runs per side; the table gives their median")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both sides")
    parser.add_argument("--profile", action="store_true", help="profile each run's third step (<run>.profile.txt)")
    parser.add_argument("--dry-run", action="store_true", help="print what would run; build and train nothing")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="where the model and runs go (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides (after --)")
    args = parser.parse_args(argv)
    if args.child:
        return args
    args.data = args.data or default_data()
    args.methods = _choices(parser, "--methods", args.methods, METHODS)
    args.trl_modes = _choices(parser, "--trl-modes", args.trl_modes, TRL_MODES)
    for name in ("steps", "batch_size", "max_length", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is not representative on its own)")
    return args


def _choices(parser: argparse.ArgumentParser, flag: str, given: str, valid: Sequence[str]) -> list[str]:
    chosen = [c.strip() for c in given.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in valid]
    if unknown or not chosen:
        parser.error(f"{flag}: {', '.join(unknown) or 'none given'}; choose from {', '.join(valid)}")
    return chosen


# ---------------------------------------------------------------- what each side runs (pure, tested)


def lr_of(method: str, args: argparse.Namespace) -> float:
    return args.lr_lora if method == "lora" else args.lr_full


def ftcli_overrides(method: str, spec: Mapping[str, Any]) -> list[str]:
    """The `ftcli train` overrides of a run: instruction tuning, packed, with the shared settings."""
    common = [
        "task=instruction", "task.template=plain", "task.packing=true", "task.generate_in_eval=false",
        f"task.max_length={spec['max_length']}",
        f"model.name_or_path={spec['model']}", f"data.train_file={spec['train']}", f"data.validation_file={spec['dev']}",
        f"trainer.max_steps={spec['steps']}", f"trainer.batch_size={spec['batch_size']}", f"trainer.lr={spec['lr']}",
        f"trainer.weight_decay={OPTIMISER['weight_decay']}", f"trainer.warmup_ratio={OPTIMISER['warmup_ratio']}",
        f"trainer.max_grad_norm={OPTIMISER['max_grad_norm']}", "trainer.scheduler=linear", "trainer.fused_optimizer=true",
        "trainer.eval_strategy=no", "trainer.save_every=null", "trainer.logging_steps=10", "trainer.precision=fp32",
        f"trainer.gradient_checkpointing={str(spec['gradient_checkpointing']).lower()}", f"seed={spec['seed']}",
        f"hydra.run.dir={spec['run']}",
    ]
    if method == "lora":
        specific = ["method=lora", f"method.rank={LORA['r']}", f"method.alpha={LORA['alpha']}",
                    f"method.dropout={LORA['dropout']}", f"method.target_modules=[{','.join(LORA['targets'])}]"]
    else:
        specific = ["method=full"]
    return [*specific, *common, *spec["overrides"]]


def trl_config(mode: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """TRL's SFTConfig settings of a run in `mode` (`padding-free` or `packed`)."""
    settings: dict[str, Any] = dict(
        output_dir=spec["run"], learning_rate=spec["lr"], max_steps=spec["steps"],
        weight_decay=OPTIMISER["weight_decay"], warmup_steps=round(OPTIMISER["warmup_ratio"] * spec["steps"]),
        lr_scheduler_type="linear", max_grad_norm=OPTIMISER["max_grad_norm"], optim="adamw_torch_fused",
        logging_steps=10, save_strategy="no", eval_strategy="no", report_to=[], seed=spec["seed"], use_cpu=True,
        bf16=False, fp16=False, gradient_checkpointing=spec["gradient_checkpointing"], disable_tqdm=True,
        dataloader_num_workers=0, completion_only_loss=True,
    )
    if mode == "padding-free":
        # the rows come already cut to max_length, in ftcli's batch order
        return {**settings, "padding_free": True, "max_length": None, "train_sampling_strategy": "sequential",
                "per_device_train_batch_size": spec["batch_size"]}
    return {**settings, "packing": True, "packing_strategy": "bfd", "max_length": spec["max_length"],
            "per_device_train_batch_size": spec["packed_batch_size"]}


def packed_batch_size(lengths: Sequence[int], batch_size: int, max_length: int) -> int:
    """Packed sequences of `max_length` per batch that hold about the tokens of `batch_size` rows."""
    return max(1, round(batch_size * statistics.mean(lengths) / max_length))


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epochs: int = 1) -> list[int]:
    """The rows in the order ftcli's sampler draws them in its first `epochs` epochs (length-grouped,
    seeded per epoch); a whole number of batches per epoch keeps every batch the same on both sides."""
    from ftcli.engine.batching import TrainBatches

    sampler = TrainBatches(lengths, batch_size, seed)
    order = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order += [i for batch in sampler for i in batch]
    return order


def checksum(ids: Any) -> int:
    """A fingerprint of a batch's token ids, to check both sides trained on the same batches."""
    import torch

    return zlib.crc32(ids.to(torch.int64).contiguous().cpu().numpy().tobytes())



def table(method: str, results: Mapping[str, Sequence[Mapping[str, Any]]], threads: int) -> list[str]:
    """One method's table: per side the medians of its repeats, then ftcli / TRL against each TRL mode."""
    label = {"ftcli": "ftcli (packing)", "padding-free": "TRL SFTTrainer (padding-free)",
             "packed": "TRL SFTTrainer (packed, bfd)"}
    rows = {}
    for side, runs in results.items():
        if not runs:
            continue
        rows[side] = {
            "tps": summarise([r["tokens"] / r["seconds"] for r in runs]),
            "seconds": statistics.median(r["seconds"] for r in runs),
            "tpc": statistics.median(r["tokens"] / r["cpu_seconds"] for r in runs),
            "peak": statistics.median(r["peak_rss_mb"] for r in runs),
            "before": statistics.median(r.get("rss_before_mb", 0.0) for r in runs),
            "first": statistics.median(statistics.mean(r["losses"][:1]) for r in runs),
            "last": statistics.median(statistics.mean(r["losses"][-LAST_STEPS:]) for r in runs),
            "tokens": runs[0]["tokens"], "steps": runs[0]["steps"],
            "own": statistics.median(r.get("own_tokens_per_second", 0.0) for r in runs),
            "checksums": runs[0]["checksums"],
        }
    lines = [f"| {method}, {threads} thread{'s' if threads > 1 else ''} | tokens/s | min–max | train s "
             "| tokens per CPU s | RSS before training MB | peak RSS MB | loss step 1 | loss last 10 | tokens "
             "| same batches |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ours = rows.get("ftcli")
    for side, r in rows.items():
        same = "–" if ours is None or side == "ftcli" else ("yes" if r["checksums"] == ours["checksums"] else "no")
        lines.append(f"| {label[side]} | {r['tps']['median']:,.0f} | {r['tps']['min']:,.0f}–{r['tps']['max']:,.0f} "
                     f"| {r['seconds']:.1f} | {r['tpc']:,.0f} | {r['before']:,.0f} | {r['peak']:,.0f} | {r['first']:.4f} "
                     f"| {r['last']:.4f} "
                     f"| {r['tokens']:,} | {same} |")
    for side in ("padding-free", "packed"):
        if ours is None or side not in rows:
            continue
        theirs = rows[side]
        lines.append(f"| ratio ftcli / {label[side]} | **{ours['tps']['median'] / theirs['tps']['median']:.2f}x** | "
                     f"| {ours['seconds'] / theirs['seconds']:.2f}x | **{ours['tpc'] / theirs['tpc']:.2f}x** "
                     f"| {ours['before'] / theirs['before']:.2f}x | **{ours['peak'] / theirs['peak']:.2f}x** | "
                     f"| {ours['last'] - theirs['last']:+.4f} | | |")
    if ours is not None:
        lines.append(f"\nftcli's own metrics.json: tokens_per_second {ours['own']:,.0f} (its training time starts "
                     "before the first batch is drawn; the table's, at the first step)")
    return lines


# ---------------------------------------------------------------- children: one measurement each


class Meter:
    """Times the optimiser steps (first start to last end), counts their real tokens and keeps each
    step's loss and batch fingerprint; with `profile` (a path), profiles the third step."""

    def __init__(self, profile: str | None = None) -> None:
        self.started: float | None = None
        self.ended = self.cpu_started = self.cpu_ended = 0.0
        self.tokens = self.steps = 0
        self.rss_before_mb = 0.0
        self.losses: list[float] = []
        self.checksums: list[int] = []
        self.profile, self.profiler = profile, None

    def begin(self, batches: Sequence[Mapping[str, Any]]) -> None:
        from ftcli.engine.throughput import batch_tokens

        if self.started is None:
            self.rss_before_mb = peak_rss_mb()
            self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.tokens += sum(int(batch_tokens(batch)[0]) for batch in batches)
        self.checksums.append(zlib.crc32(b"".join(checksum(b["input_ids"]).to_bytes(4, "little") for b in batches)))
        if self.profile and self.steps == 2 and self.profiler is None:
            import torch

            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
            self.profiler.start()

    def end(self, loss: float) -> None:
        self.ended, self.cpu_ended = time.perf_counter(), time.process_time()
        self.steps += 1
        self.losses.append(loss)
        if self.profiler is not None and self.steps == 3:
            self.profiler.stop()
            averages = self.profiler.key_averages()
            Path(self.profile).write_text(
                averages.table(sort_by="self_cpu_time_total", row_limit=30) + "\n\n"
                + averages.table(sort_by="cpu_time_total", row_limit=30))

    def result(self, **extra: Any) -> dict[str, Any]:
        if self.started is None:
            raise SystemExit("no training step was metered")
        return {"tokens": self.tokens, "steps": self.steps, "seconds": self.ended - self.started,
                "cpu_seconds": self.cpu_ended - self.cpu_started, "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": self.rss_before_mb,
                "losses": self.losses, "checksums": self.checksums, **extra}


def child_ftcli(spec: dict[str, Any]) -> dict[str, Any]:
    from ftcli.cli.main import main
    meter = Meter(spec.get("profile"))
    meter_optimiser_steps(meter.begin, meter.end)
    overrides = ftcli_overrides(spec["method"], spec)
    if main(["train", *overrides]) != 0:
        raise SystemExit(f"ftcli train failed: {' '.join(overrides)}")
    train = json.loads((Path(spec["run"]) / "metrics.json").read_text())["train"]
    return meter.result(own_tokens_per_second=train.get("tokens_per_second", 0.0))


def child_trl(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    meter = Meter(spec.get("profile"))
    losses: list[float] = []

    class Metered(SFTTrainer):
        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            meter.begin([inputs])
            loss = super().training_step(*args, **kwargs)
            losses.append(float(loss))
            return loss

    class StepEnd(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            meter.end(losses[-1])

    rows = json.loads(Path(spec["ordered"]).read_text())
    dataset = Dataset.from_list([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    peft_config = None
    if spec["method"] == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                 target_modules=LORA["targets"], task_type="CAUSAL_LM")
    trainer = Metered(model=model, args=SFTConfig(**trl_config(spec["mode"], spec)), train_dataset=dataset,
                      processing_class=tokenizer, peft_config=peft_config, callbacks=[StepEnd()])
    trainer.train()
    return meter.result()


CHILDREN = {"ftcli": child_ftcli, "trl": child_trl}


# ---------------------------------------------------------------- the parent: data, model, children, tables



def build_model(folder: Path) -> int:
    """The Llama both sides load, with MiniLM's tokenizer (EOS: `[SEP]`); its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ftcli.models.sources import embedded_tokenizer_path

    if not (folder / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(embedded_tokenizer_path())
        tokenizer.eos_token = END_TOKEN
        config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                             eos_token_id=tokenizer.eos_token_id, **MODEL_SHAPE)
        torch.manual_seed(MODEL_SEED)
        LlamaForCausalLM(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(folder).parameters())


def ftcli_features(model: Path, rows: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """ftcli's own encoding of `rows` for instruction tuning with the plain template."""
    from transformers import AutoTokenizer

    from ftcli.config.schema import DataConfig
    from ftcli.tasks import TASKS

    entry = TASKS.get("instruction")
    cfg, data = entry.config_cls(max_length=max_length, template="plain", packing=True), DataConfig()
    task = entry.impl.bind(cfg, data, [], AutoTokenizer.from_pretrained(model))
    return task.encode(rows, "bench rows")


def training_rows(rows: list[dict[str, Any]], steps: int, batch_size: int) -> tuple[list[Any], list[Any]]:
    """The rows to train on and the few ftcli scores once at the end: the first `steps x batch_size`
    (one epoch), or all but the scored ones cut to whole batches, trained for several epochs."""
    count = min(steps * batch_size, (len(rows) - DEV_ROWS) // batch_size * batch_size)
    if count < batch_size:
        return [], []
    return rows[:count], rows[count:count + DEV_ROWS]




def plan(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The settings every run shares (paths inside `workdir`)."""
    return {"model": str(workdir / "model"), "train": str(workdir / "train.jsonl"), "dev": str(workdir / "dev.jsonl"),
            "ordered": str(workdir / "ordered.json"), "steps": args.steps, "batch_size": args.batch_size,
            "max_length": args.max_length, "seed": args.seed, "gradient_checkpointing": args.gradient_checkpointing,
            "overrides": args.overrides, "threads": int(os.environ.get("OMP_NUM_THREADS", "1"))}


def dry_run(args: argparse.Namespace) -> int:
    """Print what each run would be given, building and training nothing."""
    shared = plan(args, args.out or Path("<workdir>"))
    print(f"rows: the first {args.steps * args.batch_size} of {args.data}; {shared['threads']} thread(s)")
    for method in args.methods:
        spec = {**shared, "method": method, "lr": lr_of(method, args), "run": f"<workdir>/{method}-ftcli",
                "packed_batch_size": "<from the rows' lengths>"}
        print(f"\n## {method}\nftcli train " + " ".join(ftcli_overrides(method, spec)))
        for mode in args.trl_modes:
            print(f"TRL SFTConfig ({mode}): {json.dumps(trl_config(mode, {**spec, 'run': f'<workdir>/{method}-{mode}'}))}")
    return 0


def run_method(method: str, args: argparse.Namespace, shared: dict[str, Any], workdir: Path) -> list[str]:
    spec = {**shared, "method": method, "lr": lr_of(method, args)}
    results: dict[str, list[dict[str, Any]]] = {"ftcli": [], **{mode: [] for mode in args.trl_modes}}
    for repeat in range(args.repeats):
        sides = list(results) if repeat % 2 == 0 else list(results)[::-1]  # alternate who goes first
        for side in sides:
            label = f"{method}-{side}-{repeat + 1}"
            profile = str(workdir / f"{label}.profile.txt") if args.profile else None
            run_spec = {**spec, "run": str(workdir / label), "mode": side, "profile": profile}
            result = measure(__file__, "ftcli" if side == "ftcli" else "trl", run_spec, workdir, label,
                             {"OMP_NUM_THREADS": str(run_spec["threads"])})
            results[side].append(result)
            print(f"  {label}: {result['tokens'] / result['seconds']:,.0f} tokens/s, {result['steps']} steps in "
                  f"{result['seconds']:.1f} s, last loss {statistics.mean(result['losses'][-LAST_STEPS:]):.4f}, "
                  f"peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
    return table(method, results, shared["threads"])


def main_bench(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        result_file(Path(args.spec)).write_text(json.dumps(CHILDREN[args.child](spec)))
        return 0
    if not args.data.is_file():
        print(f"{args.data} not found; pass --data (an Alpaca-style jsonl)", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(args)
    try:
        import trl  # noqa: F401
    except ImportError:
        print("TRL is not installed: pip install -e '.[bench]' (best in a venv of its own)", file=sys.stderr)
        return 2
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    workdir = args.out or Path(tempfile.mkdtemp(prefix="ftcli-bench-llm-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shared = plan(args, workdir)
    parameters = build_model(Path(shared["model"]))
    rows = read_jsonl(args.data)
    train, dev = training_rows(rows, args.steps, args.batch_size)
    if not train:
        print(f"{args.data} has {len(rows)} rows; at least {args.batch_size + DEV_ROWS} are needed", file=sys.stderr)
        return 2
    epochs = math.ceil(args.steps * args.batch_size / len(train))
    for name, chosen in (("train", train), ("dev", dev)):
        Path(shared[name]).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")
    features = ftcli_features(Path(shared["model"]), train, args.max_length)
    lengths = [len(f["input_ids"]) for f in features]
    order = batch_order(lengths, args.batch_size, args.seed, epochs)
    Path(shared["ordered"]).write_text(json.dumps([{"input_ids": features[i]["input_ids"], "labels": features[i]["labels"]}
                                                   for i in order]))
    shared["packed_batch_size"] = packed_batch_size(lengths, args.batch_size, args.max_length)
    trained = sum(label != -100 for f in features for label in f["labels"])
    print(f"{library_versions(CHECKOUT, LIBRARIES)}\nCPU, {shared['threads']} thread(s) per run (OMP_NUM_THREADS), "
          f"{torch.backends.cpu.get_cpu_capability()}, fp32; runs in {workdir}\n"
          f"model: Llama, {parameters / 1e6:.1f}M parameters; rows: {len(train)} of {args.data} ({epochs} epoch(s)), "
          f"{min(lengths)}–{max(lengths)} tokens (median {statistics.median(lengths):.0f}), "
          f"{trained / sum(lengths):.0%} of them trained (the responses); {args.steps} steps of {args.batch_size} rows; "
          f"TRL packed: {shared['packed_batch_size']} sequences of {args.max_length} per step", flush=True)
    for method in args.methods:
        print(f"\n## {'LoRA' if method == 'lora' else 'Full fine-tuning'}\n", flush=True)
        print("\n" + "\n".join(run_method(method, args, shared, workdir)), flush=True)
    return 0



if __name__ == "__main__":
    sys.exit(main_bench())
