"""ftcli: fine-tune pretrained transformers from Hydra YAML configs.

Kept import-free so that `ftcli --help` starts instantly; the heavy libraries are imported by the
commands that need them.
"""

__version__ = "0.1.0"
