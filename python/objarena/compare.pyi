# Type stubs for objarena.compare (the measuring tool; see its docstring).
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from objarena import Arena

__all__ = ["compare", "KINDS", "Kind", "ROW_KEYS", "SCHEMA_VERSION", "format_table", "notes",
           "plot", "report", "slots_saving", "to_json"]

ROW_KEYS: tuple[str, ...]
SCHEMA_VERSION: int

class Spec:
    cls: type | None
    ctor: str
    read: str
    write: str | None
    arena: Arena | None
    def __init__(
        self,
        cls: type | None,
        ctor: str,
        read: str,
        write: str | None = None,
        arena: Arena | None = None,
    ) -> None: ...

class Kind:
    name: str
    label: str
    make: Callable[[list[str], Arena | None], Spec]
    arena: bool
    available: Callable[[], bool]
    runs: Literal["default", "typed", "both"]
    def __init__(
        self,
        name: str,
        label: str,
        make: Callable[[list[str], Arena | None], Spec],
        arena: bool = False,
        available: Callable[[], bool] | None = None,
        runs: Literal["default", "typed", "both"] = "default",
    ) -> None: ...

KINDS: dict[str, Kind]

def register(kind: Kind) -> Kind: ...
def available_kinds(typed: bool = False) -> list[str]: ...
def resolve_kinds(kinds: str | Iterable[str] | None, typed: bool = False) -> list[str]: ...
def compare(
    fields: int | Iterable[int] = 2,
    n: int = 100_000,
    kinds: str | Iterable[str] | None = None,
    *,
    repeat: int = 5,
    rss: bool = True,
    progress: Callable[[str], object] | None = None,
    typed: bool = False,
) -> list[dict[str, Any]]: ...
def format_table(rows: Sequence[Mapping[str, Any]]) -> str: ...
def notes(rows: Sequence[Mapping[str, Any]]) -> list[str]: ...
def slots_saving(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]: ...
def slots_saving_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]: ...
def report(rows: Sequence[Mapping[str, Any]]) -> str: ...
def to_json(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...
def plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None: ...
