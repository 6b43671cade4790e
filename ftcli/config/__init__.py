"""Typed configs: the dataclass schemas, their registration with Hydra, and post-compose checks."""
