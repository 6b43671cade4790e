"""Task registry: how examples become model inputs, which head, which metrics, what predict says.

Importing this package registers every task kind (`TaskKind`, bound into a `Task` once a run's
tokenizer and labels exist); the modules keep torch and transformers imports inside functions so
that composing a config stays fast.
"""

from ftcli.tasks.base import TASKS, Task, TaskKind
from ftcli.tasks import classification  # noqa: F401  (registers its tasks)
from ftcli.tasks import ner  # noqa: F401  (registers `ner`)
from ftcli.tasks import seq2seq  # noqa: F401  (registers `summarization` and `translation`)
from ftcli.tasks import qa  # noqa: F401  (registers `qa`)
from ftcli.tasks import instruction  # noqa: F401  (registers `instruction`)
from ftcli.tasks import prompting  # noqa: F401  (registers the scorer `prompting` in `scorers.SCORERS`)

__all__ = ["TASKS", "Task", "TaskKind"]
