"""Everything a person sees: the config tree, progress, tables and error panels.

The only module that imports rich. Status output goes to stdout, or to stderr when a command
writes its data to stdout (`predict output=-`), so piped output stays clean.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.tree import Tree

console = Console(highlight=False)


def use_stderr() -> None:
    """Send all status output to stderr from now on."""
    global console
    console = Console(stderr=True, highlight=False)


def print_config(config: dict[str, Any], title: str = "config") -> None:
    tree = Tree(f"[bold]{title}[/]")
    _add_branches(tree, config)
    console.print(tree)


def _add_branches(tree: Tree, node: dict[str, Any]) -> None:
    for key, value in node.items():
        if isinstance(value, dict):
            _add_branches(tree.add(f"[bold cyan]{key}[/]"), value)
        else:
            tree.add(f"{key}: [green]{value!r}[/]" if isinstance(value, str) else f"{key}: {value}")


def info(message: str, markup: bool = True) -> None:
    console.print(message, markup=markup)


def print_parameters(counts: dict[str, Any], method: str) -> None:
    console.print(
        f"[bold]{method}[/]: {counts['trainable']:,} trainable parameters "
        f"({counts['trainable_percent']:.2f}% of {counts['total']:,}); "
        f"{counts['trainable_without_head']:,} without the task head"
    )


def print_costs(train: dict[str, Any]) -> None:
    """Wall time, peak memory and artefact size of a finished run, on one line."""
    gpu = f", peak GPU {train['peak_gpu_mb']:,.0f} MB" if "peak_gpu_mb" in train else ""
    artifact = f", artefact {train['artifact_mb']:,.2f} MB" if "artifact_mb" in train else ""
    console.print(
        f"wall {train['wall_seconds']:,.1f} s ({train['samples_per_second']:,.1f} samples/s), "
        f"peak RSS {train['peak_rss_mb']:,.0f} MB{gpu}{artifact}"
    )


def print_metrics(metrics: dict[str, dict[str, Any]], title: str = "metrics") -> None:
    """One column per split; scalar metrics only (nested ones are in metrics.json)."""
    splits = list(metrics)
    names = [k for k in dict.fromkeys(k for s in splits for k in metrics[s]) if _scalar_in_any(metrics, k)]
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(name, *[_fmt(metrics[s].get(name)) for s in splits])
    console.print(table)


def _scalar_in_any(metrics: dict[str, dict[str, Any]], key: str) -> bool:
    return any(isinstance(m.get(key), (int, float)) for m in metrics.values())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def print_error(title: str, message: str, hint: str | None) -> None:
    body = message + (f"\n\n[bold]fix:[/] {hint}" if hint else "")
    Console(stderr=True, highlight=False).print(Panel(body, title=f"[bold red]{title}[/]", title_align="left", expand=False))


def print_usage(commands: dict[str, str]) -> None:
    console.print("[bold]usage:[/] ftcli COMMAND " + escape("[key=value ...] [hydra flags]") + "\n")
    table = Table(show_header=False, box=None, padding=(0, 2))
    for name, summary in commands.items():
        table.add_row(f"[bold cyan]{name}[/]", summary)
    console.print(table)
    console.print(
        "\n`ftcli COMMAND --help` lists its config groups and settings; "
        "`ftcli COMMAND --cfg job` prints the composed config without running."
    )


def debug_enabled() -> bool:
    return os.environ.get("FTCLI_DEBUG", "") not in ("", "0") or os.environ.get("HYDRA_FULL_ERROR", "") == "1"


class TrainProgress:
    """A progress bar with loss, lr and samples/s; evaluation results print above it."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None
        self.last_print = 0.0

    def on_train_begin(self, total_steps: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, status="")

    def on_step(self, step: int, record: dict[str, Any] | None) -> None:
        status = None
        if record is not None:
            status = f"loss {record['loss']:.4f}  lr {record['lr']:.2e}  {record['samples_per_second']:.1f} samples/s"
        self.progress.update(self.task, completed=step, **({"status": status} if status else {}))
        if record is not None and not console.is_terminal and time.monotonic() - self.last_print > 5:
            self.progress.console.print(f"step {step}: {status}")
            self.last_print = time.monotonic()

    def on_evaluate(self, step: int, record: dict[str, Any]) -> None:
        scalars = {k: v for k, v in record["eval"].items() if isinstance(v, (int, float))}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k in ("loss", "accuracy", "f1_macro", "f1"))
        self.progress.console.print(f"[bold]eval[/] step {step} (epoch {record['epoch']:.2f}): {shown}")

    def on_train_end(self) -> None:
        self.progress.stop()
