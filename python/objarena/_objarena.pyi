# The C extension; objarena re-exports its public names (see __init__.pyi).
from typing import Any, final

from objarena import (
    DEBUG_COLLECTABLE as DEBUG_COLLECTABLE,
    DEBUG_LEAK as DEBUG_LEAK,
    DEBUG_SAVEALL as DEBUG_SAVEALL,
    DEBUG_STATS as DEBUG_STATS,
    DEBUG_UNCOLLECTABLE as DEBUG_UNCOLLECTABLE,
    Arena as Arena,
    ArenaType as ArenaType,
    FieldType as FieldType,
    Obj as Obj,
    RefInfo as RefInfo,
    SlotObj as SlotObj,
    arena_of as arena_of,
    boolean as boolean,
    f32 as f32,
    f64 as f64,
    i8 as i8,
    i16 as i16,
    i32 as i32,
    i64 as i64,
    u8 as u8,
    u16 as u16,
    u32 as u32,
    u64 as u64,
    default_arena as default_arena,
)

def arena_footprint(obj: object, /) -> int | None: ...

# The descriptor of a typed field (Reading.t); made by the metaclass only.
@final
class TypedMember:
    @property
    def __name__(self) -> str: ...
    @property
    def __objclass__(self) -> type: ...
    @property
    def field_type(self) -> FieldType: ...
    @property
    def offset(self) -> int: ...
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __set__(self, instance: object, value: Any, /) -> None: ...
