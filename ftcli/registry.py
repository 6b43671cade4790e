"""Name → implementation lookup for tasks and methods.

Configs name things (`method: lora`); they never carry import paths, so a config read back from a
run directory can only reach code that ftcli registered.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config_cls: type
    impl: T


def did_you_mean(name: str, choices: list[str]) -> str:
    """A ' (did you mean X?)' suffix when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """A named collection of implementations, each with its config dataclass."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config_cls: type) -> Callable[[T], T]:
        def decorator(impl: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, config_cls, impl)
            return impl

        return decorator

    def get(self, name: str) -> Entry[T]:
        from ftcli.errors import ConfigError

        if name not in self._entries:
            choices = f"choose one of: {', '.join(self.names())}" if self.names() else f"no {self.kind} is registered"
            raise ConfigError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; {choices}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
