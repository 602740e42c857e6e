"""objarena: Python objects at the physical floor.

Arena-allocated records without a CPython GC header, with their own counters and
collector, and honest measurement of what every object costs.  See docs/api.md.
"""
import sys

from ._version import __version__
from ._compat import check_interpreter as _check_interpreter

_check_interpreter()  # free-threaded builds: ImportError before the C extension loads
del _check_interpreter

from . import _objarena  # noqa: E402
from ._objarena import Arena, ArenaType, SlotObj, default_arena  # noqa: E402
# Typed fields: numbers stored unboxed in a SlotObj instance (docs/api.md).
from ._objarena import (FieldType, boolean, f32, f64, i8, i16, i32, i64, u8, u16,  # noqa: E402
                        u32, u64)
# Not public, but found here by pickle: `type(self).__new__` of an arena class
# is _ArenaBase.__new__, which pickles as getattr(objarena._ArenaBase, "__new__").
from ._objarena import _ArenaBase  # noqa: F401, E402

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
]

# Names that arrive with later parts of the C extension are exported when present.
for _name in ("Obj", "RefInfo", "arena_of", "DEBUG_STATS", "DEBUG_COLLECTABLE",
              "DEBUG_UNCOLLECTABLE", "DEBUG_SAVEALL", "DEBUG_LEAK"):
    if hasattr(_objarena, _name):
        globals()[_name] = getattr(_objarena, _name)
        __all__.append(_name)

# Module-level shortcuts to default_arena, as the gc module has them for CPython's heap:
# objarena.collect() is default_arena.collect(), and so on.
_SHORTCUTS = (
    "collect", "get_count", "get_threshold", "set_threshold", "enable", "disable",
    "isenabled", "get_stats", "callbacks", "garbage", "set_debug", "get_debug",
    "get_objects", "is_tracked", "is_finalized", "get_referents", "get_referrers",
    "freeze", "unfreeze", "get_freeze_count", "generation_of", "refinfo", "stats", "trim",
)
for _name in _SHORTCUTS:
    if hasattr(default_arena, _name):
        globals()[_name] = getattr(default_arena, _name)
        __all__.append(_name)
del _name


def footprint(obj):
    """Return the bytes that `obj` really costs (shallow: not the objects it refers to).

    objarena objects: the object's block plus its share of the page's header and side
    tables, that is page size / blocks per page (``_objarena.arena_footprint``).

    Native objects, a best estimate for CPython 3.10-3.15 (64-bit, GIL build):

    - ``sys.getsizeof(obj)`` (which includes the GC header and, from 3.12, the
      pre-header), plus one item for a variable-size instance of a class statement's
      type (``PyType_GenericAlloc`` allocates a sentinel item: a namedtuple), rounded up to the block obmalloc really hands out: the next multiple of
      16 up to 512 bytes, above that the C library's malloc chunk (request + 8, rounded
      up to 16).  A container's out-of-line storage (a list's item array) is counted as
      ``sys.getsizeof`` reports it, rounded as one block.
    - For an instance with a ``__dict__``, the attribute storage that
      ``sys.getsizeof(obj)`` leaves out:

      * 3.10: the instance dict, if it exists (the dict object block plus its values or
        keys as ``sys.getsizeof(obj.__dict__)`` reports them, rounded to blocks).
      * 3.11-3.15: attributes live in a values array (3.11, 3.12: allocated with the
        instance; 3.13+: inline in the object, past what ``sys.getsizeof`` reports) until
        something asks for ``obj.__dict__``, which "materialises" a dict object.  The
        values array's size depends on the class, not on the instance, so it is
        measured per class with tracemalloc: a batch of 64 instances is made with
        ``object.__new__(cls)`` (no ``__init__`` runs), its traced blocks are summed and
        divided by 64.  A dict that already exists is added (its object block and
        whatever table it owns beyond the values: a split table's values are the ones
        measured; a combined table is counted whole, and on 3.11 and 3.12 the values
        array it replaced is no longer counted).

      Whether the dict exists is read from the object's memory (the managed-dict word of
      the pre-header, whose layout is checked once on a probe object, or the pointer at
      ``tp_dictoffset``), because reading ``obj.__dict__`` would create it and change
      the figure.  When that is not possible
      (a class with its own ``__new__`` or ``__del__``, a variable-size object, an
      unknown CPython), ``obj.__dict__`` is read and counted as it then is.

    Pool and arena headers of obmalloc (about 0.3%) are not counted.  For the cost of
    many objects, measured rather than estimated, use :func:`objarena.compare`.
    """
    n = _objarena.arena_footprint(obj)
    if n is not None:
        return n
    return _native_footprint(obj)


_Py_TPFLAGS_HEAPTYPE = 1 << 9


def _native_footprint(obj):
    from . import _measure as m

    tp = type(obj)
    size = sys.getsizeof(obj)
    if tp.__itemsize__ and tp.__flags__ & _Py_TPFLAGS_HEAPTYPE:
        # PyType_GenericAlloc, the allocator of every class statement's type, gives a
        # variable-size instance one item more than it asks for (a sentinel), which
        # sys.getsizeof does not count: a namedtuple of 5 fields takes 88 bytes, not 80.
        size += tp.__itemsize__
    size = m.block_size(size)
    has_dict = m._has_managed_dict(tp) or getattr(tp, "__dictoffset__", 0) != 0
    if not has_dict:
        return size
    values = 0.0
    if m._has_managed_dict(tp):
        v = m.values_bytes_per_instance(tp)
        values = 0.0 if v is None else v
    d = m.existing_instance_dict(obj)
    if d is NotImplemented or (d is None and m._has_managed_dict(tp) and values == 0.0):
        d = m.read_dict(obj)  # cannot know otherwise: read it (this may create it)
    if d is not None:
        dict_head = dict.__basicsize__ + 2 * m.PTR  # the dict object and its GC header
        table = m.block_size(sys.getsizeof(d) - dict_head)
        size += m.block_size(dict_head)
        split = m.dict_is_split(d)
        if split or split is None:
            # split table: the values the dict reports are those measured above
            size += max(0.0, table - values)
        else:
            # combined table: the dict owns keys and values; the values array measured
            # above was freed (3.11, 3.12) or stays unused in the object (3.13)
            size += table
            if sys.version_info < (3, 13):
                values = 0.0
    return int(round(size + values))


from .compare import compare  # noqa: E402  (the function; binds over the submodule name)
