"""Task registry: how examples become model inputs, which head, which metrics, what predict says.

Importing this package registers every task kind (`TaskKind`, bound into a `Task` once a run's
tokenizer and labels exist); the modules keep torch and transformers imports inside functions so
that composing a config stays fast.
"""

from ftcli.tasks import (
    classification,  # noqa: F401  (registers its tasks)
    feedback,  # noqa: F401  (registers `feedback`)
    grpo,  # noqa: F401  (registers `grpo`)
    instruction,  # noqa: F401  (registers `instruction`)
    kto,  # noqa: F401  (registers `kto`)
    ner,  # noqa: F401  (registers `ner`)
    preference,  # noqa: F401  (registers `preference`)
    prompt_based,  # noqa: F401  (registers `prompt_based`)
    prompting,  # noqa: F401  (registers the scorer `prompting` in `scorers.SCORERS`)
    qa,  # noqa: F401  (registers `qa`)
    reward_model,  # noqa: F401  (registers `reward_model`)
    seq2seq,  # noqa: F401  (registers `summarization` and `translation`)
)
from ftcli.tasks.base import TASKS, Task, TaskKind

__all__ = ["TASKS", "Task", "TaskKind"]
