"""Measuring helpers shared by footprint(), compare and the benchmarks.

Import-light on purpose: only the standard library, and tracemalloc and ctypes are
imported inside the functions that need them.

Allocator model (CPython 3.10-3.15, 64-bit, GIL build): a request of at most 512 bytes
goes to obmalloc and takes a block of the next multiple of 16; a larger one goes to the C
library's malloc, whose glibc chunk is the request plus an 8-byte header rounded up to 16
(at least 32). tracemalloc records requested sizes, so `block_size` turns a traced size
into the bytes it really occupies.  Pool and arena headers of obmalloc (about 0.3%) are
not counted.
"""
import sys

OBMALLOC_MAX = 512
OBMALLOC_ALIGN = 16
PTR = 8 if sys.maxsize > 2**32 else 4


def block_size(size):
    """Bytes that an allocation request of `size` bytes really occupies."""
    if size <= 0:
        return 0
    if size <= OBMALLOC_MAX:
        return (size + OBMALLOC_ALIGN - 1) & -OBMALLOC_ALIGN
    return max(32, (size + PTR + 15) & -16)


def rss_bytes():
    """Resident set size of this process in bytes (Linux /proc/self/statm), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _block_total(snapshot, domain=0):
    """Sum of the snapshot's traces, each rounded up to its allocator block.

    Only `domain` (0: CPython's own allocators) is rounded to obmalloc/malloc blocks;
    other domains (PyTraceMalloc_Track from extensions) are taken as reported.
    """
    raw = getattr(snapshot.traces, "_traces", None)
    total = 0
    if raw is not None and (not raw or isinstance(raw[0], tuple)):
        for t in raw:
            total += block_size(t[1]) if t[0] == domain else t[1]
    else:
        for t in snapshot.traces:
            total += block_size(t.size) if t.domain == domain else t.size
    return total


def traced(fn):
    """Run fn() under tracemalloc; return (result, raw_delta, block_delta).

    raw_delta: change of tracemalloc's traced memory (bytes requested);
    block_delta: the same traces rounded up to the allocator blocks they occupy.
    Memory that fn() frees before returning is in neither.  If tracemalloc is already
    tracing, it is left running and the deltas are computed over the whole snapshot.
    """
    import tracemalloc

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        # Each snapshot is summed and dropped at once so that it is not alive (and
        # traced) while the next one is taken.
        blocks0 = _block_total(tracemalloc.take_snapshot())
        raw0 = tracemalloc.get_traced_memory()[0]
        result = fn()
        raw1 = tracemalloc.get_traced_memory()[0]
        blocks1 = _block_total(tracemalloc.take_snapshot())
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, raw1 - raw0, blocks1 - blocks0


# --- native instance dicts -------------------------------------------------------------

_Py_TPFLAGS_MANAGED_DICT = 1 << 4  # 3.11+: dict/values pointers in the pre-header


def _has_managed_dict(tp):
    return sys.version_info >= (3, 11) and bool(tp.__flags__ & _Py_TPFLAGS_MANAGED_DICT)


def _word(address):
    import ctypes

    return ctypes.c_size_t.from_address(address).value


_MANAGED_DICT_WORD = -3 * PTR  # 3.11-3.15: MANAGED_DICT_OFFSET (internal/pycore_object.h)


class _Probe:
    """An ordinary class whose instances the layout checks below look into."""


_layouts: "dict[str, object]" = {}  # what the checks found, each made once


def _once(name, check):
    if name not in _layouts:
        _layouts[name] = check()
    return _layouts[name]


def managed_dict_layout():
    """How the running CPython keeps a managed instance dict, checked on a probe object
    rather than assumed from the version: "plain" when the word at MANAGED_DICT_OFFSET
    is NULL until the dict is materialised and then points to it (3.11, 3.13, 3.14,
    3.15), "tagged" when it holds the values array with its low bit set until then
    (3.12), None otherwise (a layout this module does not know)."""
    return _once("managed dict", _check_managed_dict)


def _check_managed_dict():
    probe = _Probe()
    probe.a = 1
    if not _has_managed_dict(_Probe):
        return None
    before = _word(id(probe) + _MANAGED_DICT_WORD)
    d = probe.__dict__
    if _word(id(probe) + _MANAGED_DICT_WORD) != id(d):
        return None
    return "plain" if before == 0 else "tagged" if before & 1 else None


def existing_instance_dict(obj):
    """The instance dict of obj if it already exists, else None; never creates one.

    Returns NotImplemented when this cannot be known without creating it (a CPython
    layout this function does not know).  Reading obj.__dict__ creates the dict object
    when it does not exist yet (3.10: an empty dict on first access; 3.11+: the dict is
    "materialised" from the inline values), which would change what is being measured,
    so the pointer is read from the object's memory instead:
      3.10 and types with an explicit tp_dictoffset: the PyObject* at tp_dictoffset;
      3.11, 3.13-3.15: the managed dict pointer at -3 words (NULL until materialised);
      3.12: the dict-or-values word at -3 words (tagged: low bit set means values).
    Which of these the running CPython does is checked once on a probe object
    (managed_dict_layout), not taken from the version number.
    """
    tp = type(obj)
    if _has_managed_dict(tp):
        layout = managed_dict_layout()
        if layout is None:
            return NotImplemented
        word = _word(id(obj) + _MANAGED_DICT_WORD)
        if word == 0 or (layout == "tagged" and word & 1):
            return None
        return read_dict(obj)  # exists: reading it changes nothing
    off = getattr(tp, "__dictoffset__", 0)
    if off == 0:
        return None
    if off < 0:
        return NotImplemented  # variable-size object: offset counted from the end
    return read_dict(obj) if _word(id(obj) + off) else None


def read_dict(obj):
    """obj.__dict__ through object.__getattribute__ (no user __getattr__), a dict or None."""
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return None
    return d if isinstance(d, dict) else None


_MA_VALUES = 5 * PTR  # PyDictObject.ma_values, 3.10-3.15 (cpython/dictobject.h)


def _dict_layout_known():
    """Is ma_values where 3.10-3.15 keep it?  Checked once: NULL in a dict made by a
    literal (combined table), not NULL in the materialised dict of a fresh instance
    (split table)."""
    return _once("ma_values", _check_ma_values)


def _check_ma_values():
    probe = _Probe()
    probe.a = 1
    combined, split = {"a": 1}, probe.__dict__
    return _word(id(combined) + _MA_VALUES) == 0 and _word(id(split) + _MA_VALUES) != 0


def dict_is_split(d):
    """True if dict d has a split table (values apart from the keys shared by a class).

    Read from the dict object: PyDictObject.ma_values (offset 5 words in 3.10-3.15) is
    not NULL.  None where that layout is not the running CPython's.
    """
    if type(d) is not dict or not _dict_layout_known():
        return None
    return _word(id(d) + _MA_VALUES) != 0


def _dict_object_bytes():
    # The dict object itself (PyDictObject) with its GC header: one obmalloc block.
    return block_size(dict.__basicsize__ + 2 * PTR)


def values_bytes_per_instance(tp):
    """3.11+: bytes of a fresh instance of tp beyond block_size(sys.getsizeof(instance)).

    That is the values array (3.11, 3.12: a separate allocation) or the inline values
    (3.13: part of the object, not in sys.getsizeof).  Measured with tracemalloc over a
    small batch of instances made by object.__new__ (no __init__ runs) and divided.
    Returns None when instances cannot be made that way (a base with its own __new__,
    or a __del__ that would run on the uninitialised instances).
    """
    if getattr(tp, "__del__", None) is not None:
        return None
    if tp.__new__ is not object.__new__:
        return None
    k = 64
    batch = [None] * k  # allocated before tracing: not in the delta

    def fill():
        for i in range(k):
            batch[i] = object.__new__(tp)

    # Twice, keeping the second: the first run also pays one-time costs (caches and
    # buffers that the interpreter and tracemalloc allocate on first use).
    for _ in range(2):
        for i in range(k):
            batch[i] = None
        try:
            _, _, blocks = traced(fill)
        except Exception:
            return None
    own = sum(block_size(sys.getsizeof(o)) for o in batch)
    extra = (blocks - own) / k
    return max(0.0, extra)
