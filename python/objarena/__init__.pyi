# Type stubs for objarena (docs/api.md is the reference; docs/typing.md says how to use them).
import inspect
import sys
from abc import ABCMeta
from collections.abc import Callable
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypedDict, TypeVar, final

from _typeshed import structseq

if sys.version_info >= (3, 11):
    from typing import Self, dataclass_transform
else:
    from typing_extensions import Self, dataclass_transform


from .compare import compare as compare

__version__: str

__all__ = [
    "Arena",
    "ArenaType",
    "SlotObj",
    "compare",
    "default_arena",
    "footprint",
    "__version__",
    "FieldType",
    "f64",
    "f32",
    "i64",
    "i32",
    "i16",
    "i8",
    "u64",
    "u32",
    "u16",
    "u8",
    "boolean",
    "Obj",
    "RefInfo",
    "arena_of",
    "DEBUG_STATS",
    "DEBUG_COLLECTABLE",
    "DEBUG_UNCOLLECTABLE",
    "DEBUG_SAVEALL",
    "DEBUG_LEAK",
    "collect",
    "get_count",
    "get_threshold",
    "set_threshold",
    "enable",
    "disable",
    "isenabled",
    "get_stats",
    "callbacks",
    "garbage",
    "set_debug",
    "get_debug",
    "get_objects",
    "is_tracked",
    "is_finalized",
    "get_referents",
    "get_referrers",
    "freeze",
    "unfreeze",
    "get_freeze_count",
    "generation_of",
    "refinfo",
    "stats",
    "trim",
]

DEBUG_STATS: Final = 1
DEBUG_COLLECTABLE: Final = 2
DEBUG_UNCOLLECTABLE: Final = 4
DEBUG_SAVEALL: Final = 32
DEBUG_LEAK: Final = 38

# The dicts that Arena.stats() returns (stub-only names: at run time they are plain dicts).
class _SizeClassStats(TypedDict):
    size: int
    objects: int
    pages: int

class _ArenaStats(TypedDict):
    objects: int
    bytes_in_use: int
    bytes_reserved: int
    chunks: int
    pages: int
    high_water: int
    large_objects: int
    size_classes: list[_SizeClassStats]

# An entry of Arena.callbacks: (phase, info), as for gc.callbacks.
_Callback = Callable[[Literal["start", "stop"], dict[str, Any]], object]

# refcount: the references to the object other than those the call of refinfo holds
# (a variable passed directly counts once on every version; a temporary nothing else
# holds has 0); internal: those held by arena objects' fields; external: the rest.
@final
class RefInfo(structseq[int], tuple[int, int, int]):
    __match_args__: Final = ("refcount", "internal", "external")
    @property
    def refcount(self) -> int: ...
    @property
    def internal(self) -> int: ...
    @property
    def external(self) -> int: ...

@final
class Arena:
    def __new__(cls, name: str | None = None, max_bytes: int | None = None) -> Self: ...
    @property
    def name(self) -> str | None: ...
    @property
    def max_bytes(self) -> int | None: ...
    def stats(self) -> _ArenaStats: ...
    def trim(self) -> int: ...
    # The collector: the gc module's API, for this arena's objects.
    @property
    def callbacks(self) -> list[_Callback]: ...
    @property
    def garbage(self) -> list[Any]: ...
    def collect(self, generation: int = 2) -> int: ...
    def get_count(self) -> tuple[int, int, int]: ...
    def get_threshold(self) -> tuple[int, int, int]: ...
    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ..., /) -> None: ...
    def enable(self) -> None: ...
    def disable(self) -> None: ...
    def isenabled(self) -> bool: ...
    # Keys as the running gc.get_stats(): 3.15 adds "candidates" and "duration" (float).
    def get_stats(self) -> list[dict[str, Any]]: ...
    def set_debug(self, flags: int, /) -> None: ...
    def get_debug(self) -> int: ...
    def get_objects(self, generation: int | None = None) -> list[Any]: ...
    def is_tracked(self, obj: object, /) -> bool: ...
    def is_finalized(self, obj: object, /) -> bool: ...
    def generation_of(self, obj: object, /) -> int: ...
    def get_referents(self, *objs: object) -> list[Any]: ...
    def get_referrers(self, *objs: object) -> list[Any]: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...
    def get_freeze_count(self) -> int: ...
    def refinfo(self, obj: object, /) -> RefInfo: ...

_MT = TypeVar("_MT", bound=ArenaType)

class ArenaType(ABCMeta):
    """The metaclass of SlotObj and Obj; the class keyword arena= names the Arena.

    It derives from abc.ABCMeta, so that arena classes mix with ABCs and collections.abc
    bases; isinstance()/issubclass() of an arena class that is no ABC answer as type's.
    """

    def __new__(
        mcls: type[_MT],
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        *,
        arena: Arena = ...,
        **kwds: Any,
    ) -> _MT: ...
    # inspect.signature(cls): the generated __init__'s, while the class uses it.
    @property
    def __signature__(self) -> inspect.Signature: ...
    def __instancecheck__(cls, instance: Any, /) -> bool: ...
    def __subclasscheck__(cls, subclass: type, /) -> bool: ...

# Typed fields: at run time f64 ... boolean are FieldType markers that the metaclass
# reads from a SlotObj class's annotations; to a type checker each is the Python type a
# read returns, so `t: f64` is a float field and `count: i64 = 0` an int one.
@final
class FieldType:
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def python_type(self) -> type: ...

f64: TypeAlias = float
f32: TypeAlias = float
i64: TypeAlias = int
i32: TypeAlias = int
i16: TypeAlias = int
i8: TypeAlias = int
u64: TypeAlias = int
u32: TypeAlias = int
u16: TypeAlias = int
u8: TypeAlias = int
boolean: TypeAlias = bool

# Fields are declared with annotations (`id: int`), as for a dataclass; the type checker
# then sees the generated __init__ as (id: int, ...).  A value in the class body is the
# field's default (`value: f64 = 0.0`, `name: str = ""`); the fields after one with a
# default need one too.
@dataclass_transform(eq_default=False)
class SlotObj(metaclass=ArenaType):
    __match_args__: ClassVar[tuple[str, ...]]
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...

class Obj(metaclass=ArenaType):
    def __init__(self, **kwargs: Any) -> None: ...

default_arena: Arena

def footprint(obj: object) -> int: ...
def arena_of(obj: object, /) -> Arena | None: ...

# Module-level shortcuts to the members of default_arena.
callbacks: list[_Callback]
garbage: list[Any]

def stats() -> _ArenaStats: ...
def trim() -> int: ...
def collect(generation: int = 2) -> int: ...
def get_count() -> tuple[int, int, int]: ...
def get_threshold() -> tuple[int, int, int]: ...
def set_threshold(threshold0: int, threshold1: int = ..., threshold2: int = ..., /) -> None: ...
def enable() -> None: ...
def disable() -> None: ...
def isenabled() -> bool: ...
def get_stats() -> list[dict[str, Any]]: ...
def set_debug(flags: int, /) -> None: ...
def get_debug() -> int: ...
def get_objects(generation: int | None = None) -> list[Any]: ...
def is_tracked(obj: object, /) -> bool: ...
def is_finalized(obj: object, /) -> bool: ...
def generation_of(obj: object, /) -> int: ...
def get_referents(*objs: object) -> list[Any]: ...
def get_referrers(*objs: object) -> list[Any]: ...
def freeze() -> None: ...
def unfreeze() -> None: ...
def get_freeze_count() -> int: ...
def refinfo(obj: object, /) -> RefInfo: ...
