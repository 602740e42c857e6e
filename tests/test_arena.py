"""objarena.Arena: construction, stats(), max_bytes, trim(), arena=, footprint,
and the allocator's behaviour under OS allocation failures (docs/api.md)."""
import copy
import gc
import os
import random
import sys
import tracemalloc
import weakref

import pytest

import objarena
import objarena._testing as testing
from objarena import Arena, SlotObj

PAGE = 16 * 1024
CHUNK = 1 << 20
STATS_KEYS = {"objects", "bytes_in_use", "bytes_reserved", "chunks", "pages",
              "high_water", "size_classes"}


def klass(nfields, arena=None, name="C", base=None, **namespace):
    """``class name(base or SlotObj, arena=arena): __slots__ = (f0, f1, ...)``."""
    ns = {"__slots__": tuple(f"f{i}" for i in range(nfields)), **namespace}
    kw = {} if arena is None else {"arena": arena}
    return type(base or SlotObj)(name, (base or SlotObj,), ns, **kw)


def classes_by_size(st):
    return {c["size"]: c for c in st["size_classes"]}


def checked(a, small_only=True):
    """validate() the arena and check that its counters agree; return stats()."""
    testing.validate(a)
    st = a.stats()
    assert STATS_KEYS <= set(st)
    assert all(type(st[k]) is int and st[k] >= 0 for k in STATS_KEYS - {"size_classes"})
    sizes = [c["size"] for c in st["size_classes"]]
    assert len(sizes) == len(set(sizes))
    for c in st["size_classes"]:
        assert set(c) == {"size", "objects", "pages"}
        assert c["size"] % 8 == 0 and 16 <= c["size"]
        assert c["objects"] <= c["pages"] * (PAGE // c["size"])
    assert st["high_water"] >= st["bytes_in_use"]
    assert st["bytes_reserved"] >= st["chunks"] * CHUNK
    assert st["pages"] * PAGE <= st["chunks"] * CHUNK
    if small_only:
        classes = st["size_classes"]
        assert sum(c["objects"] for c in classes) == st["objects"]
        assert sum(c["size"] * c["objects"] for c in classes) == st["bytes_in_use"]
        assert sum(c["pages"] for c in classes) == st["pages"]
    return st


# ---------------------------------------------------------------------------
# Construction

def test_defaults_and_attributes():
    a = Arena()
    assert a.name is None and a.max_bytes is None
    b = Arena(name="cache", max_bytes=64 << 20)
    assert b.name == "cache" and b.max_bytes == 64 << 20
    c = Arena("positional", 4096)
    assert (c.name, c.max_bytes) == ("positional", 4096)
    st = checked(a)
    assert (st["objects"], st["bytes_in_use"], st["high_water"]) == (0, 0, 0)
    assert st["size_classes"] == []
    assert isinstance(objarena.default_arena, Arena)


@pytest.mark.parametrize("value", [0, -1, -(1 << 70), -4096])
def test_max_bytes_not_positive_is_value_error(value):
    with pytest.raises(ValueError):
        Arena(max_bytes=value)


@pytest.mark.parametrize("value", [1.5, 4096.0, "4096", b"1", [1], object(), 1j])
def test_max_bytes_not_int_is_type_error(value):
    with pytest.raises(TypeError):
        Arena(max_bytes=value)


@pytest.mark.parametrize("value", [True, False])
def test_max_bytes_bool(value):
    # bool is an int subclass: either refused as not an int, or taken as 1 / 0
    try:
        a = Arena(max_bytes=value)
    except (TypeError, ValueError):
        return
    assert value and a.max_bytes == 1
    with pytest.raises(MemoryError):
        klass(0, a)()


def test_max_bytes_beyond_address_space_means_no_limit():
    a = Arena(max_bytes=1 << 70)
    C = klass(2, a)
    objs = [C() for _ in range(1000)]
    assert checked(a)["objects"] == 1000 and len(objs) == 1000


class IntLike:
    def __index__(self):
        return 4096


@pytest.mark.parametrize("value", [5, b"x", ["a"], IntLike()])
def test_name_must_be_str_or_none(value):
    with pytest.raises(TypeError):
        Arena(name=value)


def test_unknown_or_extra_arguments():
    with pytest.raises(TypeError):
        Arena(size=1)
    with pytest.raises(TypeError):
        Arena("a", 1, 2)
    with pytest.raises(TypeError):
        Arena("a", name="b")


def test_name_and_max_bytes_are_read_only():
    a = Arena(name="x", max_bytes=1 << 20)
    for attr, value in [("name", "y"), ("max_bytes", 5), ("max_bytes", None)]:
        with pytest.raises(AttributeError):
            setattr(a, attr, value)
        with pytest.raises(AttributeError):
            delattr(a, attr)
    assert (a.name, a.max_bytes) == ("x", 1 << 20)


def test_repr_shows_name_and_object_count():
    a = Arena(name="cache")
    C = klass(2, a)
    assert "cache" in repr(a)
    objs = [C() for _ in range(12345)]
    assert "cache" in repr(a) and "12345" in repr(a)
    del objs
    assert "12345" not in repr(a)


# ---------------------------------------------------------------------------
# stats()

@pytest.mark.parametrize("nfields", [0, 1, 2, 3, 5, 8, 20, 126])
def test_one_object_moves_counters_by_its_block(arena, nfields):
    C = klass(nfields, arena)
    size = 16 + 8 * nfields       # 8-byte granularity: no rounding up
    before = checked(arena)
    obj = C()
    assert sys.getsizeof(obj) == size
    st = checked(arena)
    assert st["objects"] == before["objects"] + 1
    assert st["bytes_in_use"] == before["bytes_in_use"] + size
    assert st["high_water"] == size
    assert classes_by_size(st)[size]["objects"] == 1
    assert classes_by_size(st)[size]["pages"] == 1
    assert st["pages"] == 1 and st["chunks"] == 1
    del obj
    st = checked(arena)
    assert (st["objects"], st["bytes_in_use"], st["high_water"]) == (0, 0, size)


def test_block_sizes_of_common_shapes(arena):
    for nfields, size in [(2, 32), (3, 40), (5, 56)]:
        C = klass(nfields, arena)
        objs = [C() for _ in range(10)]
        entry = classes_by_size(checked(arena))[size]
        assert entry["objects"] == 10 and sys.getsizeof(objs[0]) == size


def test_counters_follow_every_creation_and_free(arena):
    C, D = klass(2, arena, "C"), klass(5, arena, "D")
    objs = []
    for i in range(300):
        before = arena.stats()
        objs.append(C() if i % 3 else D())
        after = arena.stats()
        assert after["objects"] == before["objects"] + 1
        assert after["bytes_in_use"] - before["bytes_in_use"] == sys.getsizeof(objs[-1])
    checked(arena)
    random.Random(1).shuffle(objs)
    while objs:
        before = arena.stats()
        size = sys.getsizeof(objs[-1])
        objs.pop()
        after = arena.stats()
        assert after["objects"] == before["objects"] - 1
        assert before["bytes_in_use"] - after["bytes_in_use"] == size
    st = checked(arena)
    assert (st["objects"], st["bytes_in_use"]) == (0, 0)


def test_many_objects_fill_pages_and_chunks(arena):
    C = klass(2, arena)
    objs = [C() for _ in range(100_000)]
    st = checked(arena)
    assert st["objects"] == 100_000 and st["bytes_in_use"] == 3_200_000
    assert st["pages"] >= 3_200_000 // PAGE and st["chunks"] >= 3
    assert classes_by_size(st)[32]["objects"] == 100_000
    assert st["high_water"] == 3_200_000
    del objs[::2]
    st = checked(arena)
    assert st["objects"] == 50_000 and st["high_water"] == 3_200_000


def test_high_water_is_the_peak(arena):
    C = klass(1, arena)
    objs = [C() for _ in range(100)]
    del objs[50:]
    assert checked(arena)["high_water"] == 2400
    objs += [C() for _ in range(30)]
    assert checked(arena)["high_water"] == 2400
    objs += [C() for _ in range(40)]
    assert checked(arena)["high_water"] == 120 * 24


def test_large_objects(arena):
    # bigger than the largest size class: an object of its own mapping
    C = klass(200, arena)
    size = 16 + 8 * 200
    before = checked(arena)
    objs = [C(*range(200)) for _ in range(5)]
    assert sys.getsizeof(objs[0]) == size
    st = checked(arena, small_only=False)
    assert st["objects"] == before["objects"] + 5
    assert st["bytes_in_use"] >= before["bytes_in_use"] + 5 * size
    assert st["bytes_reserved"] >= 5 * size
    assert [o.f199 for o in objs] == [199] * 5 and objs[2].f0 == 0
    assert objarena.footprint(objs[0]) >= size
    del objs
    st = checked(arena, small_only=False)
    assert (st["objects"], st["bytes_in_use"]) == (0, 0)


def test_failed_init_frees_the_instance(arena):
    C = klass(2, arena)

    def __init__(self, a):
        raise ValueError(a)

    D = klass(2, arena, "D", __init__=__init__)
    v = object()
    base = sys.getrefcount(v)
    with pytest.raises(TypeError):
        C(v, v, v)
    with pytest.raises(TypeError):
        C(v, zz=v)
    with pytest.raises(ValueError):
        D(v)
    st = checked(arena)
    assert st["objects"] == 0 and sys.getrefcount(v) == base


def test_object_new_on_an_arena_class(arena):
    C = klass(2, arena)
    try:
        obj = object.__new__(C)
    except TypeError:
        obj = None
    if obj is not None:  # then it must be a proper arena object
        assert type(obj) is C and not hasattr(obj, "f0")
        assert checked(arena)["objects"] == 1
        del obj
    assert checked(arena)["objects"] == 0


# ---------------------------------------------------------------------------
# arena= and default_arena

@pytest.mark.parametrize("value", [5, "arena", Arena, object(), objarena, [Arena()]])
def test_arena_keyword_must_be_an_arena(value):
    with pytest.raises(TypeError):
        class C(SlotObj, arena=value):
            __slots__ = ("x",)


def _objects_of_size(a, size):
    entry = classes_by_size(a.stats()).get(size)
    return 0 if entry is None else entry["objects"]


# The default arena may hold other tests' garbage cycles, which its collector
# can free at any allocation: counts there are taken for a block size that no
# other test uses (37 fields: 312 bytes).
UNUSUAL_FIELDS, UNUSUAL_SIZE = 37, 16 + 8 * 37


def test_instances_counted_in_their_arena_only(arena):
    other = Arena(name="other")
    C = klass(UNUSUAL_FIELDS, arena)
    default_before = _objects_of_size(objarena.default_arena, UNUSUAL_SIZE)
    objs = [C() for _ in range(50)]
    assert checked(arena)["objects"] == 50
    assert checked(other)["objects"] == 0
    assert _objects_of_size(objarena.default_arena, UNUSUAL_SIZE) == default_before
    del objs
    assert checked(arena)["objects"] == 0


def test_default_arena_used_by_default():
    C = klass(UNUSUAL_FIELDS)
    before = _objects_of_size(objarena.default_arena, UNUSUAL_SIZE)
    objs = [C() for _ in range(20)]
    checked(objarena.default_arena, small_only=False)
    assert _objects_of_size(objarena.default_arena, UNUSUAL_SIZE) == before + 20
    del objs
    assert _objects_of_size(objarena.default_arena, UNUSUAL_SIZE) == before


def test_subclass_inherits_the_base_arena(arena):
    A = klass(1, arena, "A")
    B = klass(0, None, "B", base=A)
    B2 = type("B2", (B,), {"__slots__": ("extra",)})
    objs = [A(), B(), B2()]
    assert checked(arena)["objects"] == 3
    assert classes_by_size(checked(arena))[32]["objects"] == 1
    del objs


def test_subclass_may_name_another_arena(arena):
    other = Arena(name="other")
    A = klass(1, arena, "A")
    B = klass(0, other, "B", base=A)
    b = B(5)
    assert checked(other)["objects"] == 1 and checked(arena)["objects"] == 0
    assert isinstance(b, A) and A.f0.__get__(b) == 5


def test_arena_keyword_not_passed_to_init_subclass(arena):
    seen = []

    class Base(SlotObj):
        __slots__ = ("a",)

        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__()
            seen.append(kwargs)

    class Sub(Base, arena=arena, flag=1):
        __slots__ = ("b",)

    assert seen == [{"flag": 1}]
    s = Sub(1, 2)
    assert checked(arena)["objects"] == 1 and (s.a, s.b) == (1, 2)


def test_copies_live_in_the_class_arena(arena):
    C = klass(2, arena)
    c = C([1], 2)
    copies = [copy.copy(c), copy.deepcopy(c)]
    assert checked(arena)["objects"] == 3
    assert copies[1].f0 == [1] and copies[0].f0 is c.f0
    del copies
    assert checked(arena)["objects"] == 1


def test_objects_keep_their_arena_alive():
    a = Arena(name="short-lived")
    C = klass(2, a)
    objs = [C(i, [i]) for i in range(5000)]
    del a, C
    gc.collect()
    assert [o.f0 for o in objs[::1000]] == [0, 1000, 2000, 3000, 4000]
    more = [type(objs[0])(i) for i in range(5000)]  # the class and arena still work
    assert type(objs[0]).__name__ == "C" and more[-1].f0 == 4999
    del objs, more
    gc.collect()


def test_dead_classes_release_their_arena(arena):
    refs = sys.getrefcount(arena)
    for i in range(10):
        C = klass(i, arena)
        objs = [C() for _ in range(3)]
    del C, objs
    gc.collect()
    assert sys.getrefcount(arena) == refs
    assert checked(arena)["objects"] == 0


def test_arena_outlives_a_class_freed_first(arena):
    C = klass(2, arena)
    objs = [C() for _ in range(100)]
    wc = weakref.ref(C)
    del C
    gc.collect()
    assert wc() is not None
    del objs
    gc.collect()
    assert wc() is None
    assert checked(arena)["objects"] == 0


# ---------------------------------------------------------------------------
# max_bytes

def test_max_bytes_bounds_bytes_in_use():
    a = Arena(name="bounded", max_bytes=3200)
    C = klass(2, a)
    objs = [C(i) for i in range(100)]
    value = object()
    base = sys.getrefcount(value)
    with pytest.raises(MemoryError):
        C(value, value)
    with pytest.raises(MemoryError):
        C(f0=value)
    assert sys.getrefcount(value) == base
    st = checked(a)
    assert (st["objects"], st["bytes_in_use"]) == (100, 3200)
    assert [o.f0 for o in objs] == list(range(100))
    del objs[:10]
    objs += [C(i) for i in range(10)]
    with pytest.raises(MemoryError):
        C()
    assert checked(a)["objects"] == 100


def test_max_bytes_counts_block_sizes():
    a = Arena(max_bytes=1000)
    small, big = klass(2, a, "S"), klass(5, a, "B")
    objs = [small() for _ in range(31)]          # 992 bytes
    with pytest.raises(MemoryError):
        klass(0, a, "T")()                        # 16 more would pass 1000
    with pytest.raises(MemoryError):
        big()
    objs.pop()                                    # 960: now 40 bytes are free
    with pytest.raises(MemoryError):
        big()                                     # 56 do not fit
    objs.append(klass(1, a, "U")())               # 24 do
    st = checked(a)
    assert (st["objects"], st["bytes_in_use"]) == (31, 984)


def test_max_bytes_and_large_objects():
    a = Arena(max_bytes=4000)
    C = klass(300, a)                             # 2416 bytes
    x = C()
    with pytest.raises(MemoryError):
        C()
    st = checked(a, small_only=False)
    assert st["objects"] == 1 and st["bytes_in_use"] <= 4000
    del x
    y = C()
    assert checked(a, small_only=False)["objects"] == 1 and sys.getsizeof(y) == 2416


def test_objects_of_other_arenas_unaffected_by_a_full_one():
    full = Arena(max_bytes=64)
    C, D = klass(2, full, "C"), klass(2, None, "D")
    objs = [C(), C()]
    with pytest.raises(MemoryError):
        C()
    objs.append(D())
    assert checked(full)["objects"] == 2


# ---------------------------------------------------------------------------
# trim()

def test_trim_fresh_arena_returns_zero(arena):
    released = arena.trim()
    assert type(released) is int and released == 0
    checked(arena)


def test_trim_after_freeing_returns_memory(arena):
    C = klass(2, arena)
    objs = [C() for _ in range(200_000)]
    peak = checked(arena)
    assert peak["bytes_reserved"] >= 6_400_000
    del objs
    before = checked(arena)
    released = arena.trim()
    after = checked(arena)
    assert type(released) is int and released > 0
    assert before["bytes_reserved"] - after["bytes_reserved"] == released
    assert after["bytes_reserved"] < peak["bytes_reserved"]
    assert arena.trim() == 0
    objs = [C(i) for i in range(1000)]                # still usable
    assert checked(arena)["objects"] == 1000 and objs[999].f0 == 999


def test_trim_keeps_live_objects(arena):
    C, D = klass(2, arena, "C"), klass(6, arena, "D")
    objs = [C(i) if i % 2 else D(i) for i in range(100_000)]
    keep = objs[::997]
    del objs
    before = checked(arena)
    released = arena.trim()
    after = checked(arena)
    assert released >= 0
    assert before["bytes_reserved"] - after["bytes_reserved"] == released
    assert after["objects"] == len(keep)
    assert [o.f0 for o in keep] == list(range(0, 100_000, 997))
    keep += [C(-1) for _ in range(10_000)]
    checked(arena)


# ---------------------------------------------------------------------------
# Random workload

@pytest.mark.stress
def test_random_create_free_with_validation():
    long = os.environ.get("OBJARENA_STRESS") == "1"
    rng = random.Random(20261125)
    free, bounded = Arena(name="free"), Arena(name="bounded", max_bytes=2 << 20)
    shapes = [(klass(n, a, f"K{n}"), a) for a in (free, bounded)
              for n in (0, 1, 2, 3, 5, 8, 13, 40, 130)]
    live, keys = {}, []
    for op in range(300_000 if long else 30_000):
        if keys and (rng.random() < 0.45 or len(keys) > 20_000):
            i = rng.randrange(len(keys))
            keys[i], keys[-1] = keys[-1], keys[i]
            key = keys.pop()
            obj = live.pop(key)
            if type(obj).__slots__:
                assert obj.f0 == key
            del obj
        else:
            cls, a = rng.choice(shapes)
            size = 16 + 8 * len(cls.__slots__)
            try:
                obj = cls(op) if cls.__slots__ else cls()
            except MemoryError:
                assert a is bounded and a.stats()["bytes_in_use"] + size > a.max_bytes
                continue
            live[op] = obj
            keys.append(op)
            del obj
        if op % 1000 == 0:
            for a in (free, bounded):
                checked(a, small_only=False)
    assert free.stats()["objects"] + bounded.stats()["objects"] == len(live)
    live.clear()
    for a in (free, bounded):
        st = checked(a, small_only=False)
        assert (st["objects"], st["bytes_in_use"]) == (0, 0)


# ---------------------------------------------------------------------------
# footprint

@pytest.mark.parametrize("nfields", [0, 2, 3, 5])
def test_footprint_of_small_objects(arena, nfields):
    obj = klass(nfields, arena)()
    fp = objarena.footprint(obj)
    assert type(fp) is int
    assert sys.getsizeof(obj) <= fp < sys.getsizeof(obj) + 8


def test_footprint_api_example():
    class User(SlotObj):
        __slots__ = ("id", "name")
    u = User(1, "a")
    assert 32 <= objarena.footprint(u) < 40


def test_footprint_of_native_objects():
    class Native:
        __slots__ = ("a", "b")
    for obj in (Native(), [1, 2, 3], "text", 12345, object()):
        fp = objarena.footprint(obj)
        assert type(fp) is int and fp >= sys.getsizeof(obj) > 0


def test_footprint_bad_arguments():
    with pytest.raises(TypeError):
        objarena.footprint()
    with pytest.raises(TypeError):
        objarena.footprint(1, 2)


# ---------------------------------------------------------------------------
# tracemalloc sees the blocks

def test_tracemalloc_counts_block_sizes(arena):
    C = klass(5, arena)
    n = 10_000
    holder = [None] * n
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            holder[i] = C()
        grown = tracemalloc.get_traced_memory()[0] - before
        tb = tracemalloc.get_object_traceback(holder[0])
    finally:
        if started:
            tracemalloc.stop()
    assert abs(grown / n - 56) < 1.5
    assert tb is not None


# ---------------------------------------------------------------------------
# Fault injection: the OS refuses memory

@pytest.fixture
def injector():
    testing.fail_os_alloc(0)
    yield testing.fail_os_alloc
    testing.fail_os_alloc(0)


def test_os_failure_on_first_object(injector):
    a = Arena(name="fi")
    C = klass(2, a)
    value = object()
    base = sys.getrefcount(value)
    injector(1)
    with pytest.raises(MemoryError):
        C(value, value)
    st = checked(a)
    assert st["objects"] == 0 and sys.getrefcount(value) == base
    c = C(1, 2)       # the failure has fired: the next request succeeds
    assert (c.f0, c.f1) == (1, 2) and checked(a)["objects"] == 1


def test_os_failure_switched_off_before_it_fires(injector):
    a = Arena(name="fi-off")
    C = klass(2, a)
    injector(3)
    injector(0)
    objs = [C(i) for i in range(100_000)]
    assert checked(a)["objects"] == 100_000 and objs[-1].f0 == 99_999


def test_os_failure_on_large_object(injector):
    a = Arena(name="fi-large")
    C = klass(200, a)
    injector(1)
    with pytest.raises(MemoryError):
        C()
    assert checked(a, small_only=False)["objects"] == 0
    assert sys.getsizeof(C()) == 1616


@pytest.mark.parametrize("nth", [1, 2, 3, 4, 5, 6, 7])
def test_os_failure_at_every_point_of_growth(injector, nth):
    a = Arena(name=f"fi-{nth}")
    shapes = [klass(2, a, "C"), klass(9, a, "D"), klass(200, a, "L")]
    objs = []
    injector(nth)
    failed = False
    for i in range(60_000):
        try:
            objs.append(shapes[i % 3 if i % 50 == 0 else i % 2](i))
        except MemoryError:
            failed = True
            break
    injector(0)
    assert failed
    st = checked(a, small_only=False)
    assert st["objects"] == len(objs)
    assert [o.f0 for o in objs] == list(range(len(objs)))
    objs += [shapes[i % 3](i) for i in range(20_000)]   # growth works again
    assert checked(a, small_only=False)["objects"] == len(objs)
    del objs
    st = checked(a, small_only=False)
    assert (st["objects"], st["bytes_in_use"]) == (0, 0)


def test_testing_hooks_reject_bad_arguments(injector):
    with pytest.raises(TypeError):
        testing.validate(objarena.default_arena.stats())
    with pytest.raises(TypeError):
        testing.validate(None)
    with pytest.raises((OverflowError, ValueError)):
        injector(-1)
    with pytest.raises(TypeError):
        injector("1")
