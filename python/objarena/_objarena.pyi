# The C extension; objarena re-exports its public names (see __init__.pyi).
from objarena import (
    DEBUG_COLLECTABLE as DEBUG_COLLECTABLE,
    DEBUG_LEAK as DEBUG_LEAK,
    DEBUG_SAVEALL as DEBUG_SAVEALL,
    DEBUG_STATS as DEBUG_STATS,
    DEBUG_UNCOLLECTABLE as DEBUG_UNCOLLECTABLE,
    Arena as Arena,
    ArenaType as ArenaType,
    Obj as Obj,
    RefInfo as RefInfo,
    SlotObj as SlotObj,
    arena_of as arena_of,
    default_arena as default_arena,
)

def arena_footprint(obj: object, /) -> int | None: ...
