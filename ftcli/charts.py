"""Figures drawn with matplotlib off-screen and written as PNG: whole or absent, like every run file.

matplotlib is imported on first use with its non-interactive Agg backend, so drawing needs no
display and `ftcli --help` never pays for the import.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftcli.files import write_bytes_atomic

DPI = 100


@contextmanager
def figure(width: float = 6.4, height: float = 4.0) -> Iterator[Any]:
    """A fresh matplotlib `Figure` of `width` × `height` inches, closed when the block ends.

    Built from `matplotlib.figure.Figure` rather than `pyplot`, so no global figure state is kept
    between drawings and nothing leaks across the runs of one process.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    try:
        yield fig
    finally:
        fig.clear()


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes (for a file, or embedded in a page)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_png(fig: Any, path: Path) -> Path:
    """Write the figure to `path` atomically; returns `path`."""
    write_bytes_atomic(path, png_bytes(fig))
    return path
