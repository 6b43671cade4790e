"""Method registry: how the backbone is adapted, what is trainable, what is saved.

Importing this package registers every method; torch and peft are imported inside functions so
that composing a config stays fast.
"""

from ftcli.methods import adapter, bitfit, freeze, full, ia3, ln_tuning, lora, mixed, prompt  # noqa: F401  (register them)
from ftcli.methods.base import METHODS, Method, ParameterCount, count_parameters, head_modules

__all__ = ["METHODS", "Method", "ParameterCount", "count_parameters", "head_modules"]
