"""Suite-wide settings: everything runs offline, on CPU, with tiny models.

Under pytest-xdist each worker gets an equal share of the cores for torch's threads (and for the
processes a test starts), so the workers do not oversubscribe the machine.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# wide enough that an error panel keeps each temporary path in it on one line, as tests match them
os.environ.setdefault("COLUMNS", "400")

if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_share)

    import torch

    torch.set_num_threads(_share)
