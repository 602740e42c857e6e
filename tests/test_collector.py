"""The arena's cycle collector (csrc/gc.c) and its gc-like API on Arena.

Sections:
  1. shapes that are collected, and objects that must survive;
  2. ports of CPython's Lib/test/test_gc.py to the Arena API;
  3. weak reference and finalizer ordering, side by side with native objects under gc;
  4. __del__ once, resurrection, DEBUG_SAVEALL;
  5. refinfo();
  6. deep structures (a 1,000,000 ring in process, a 10,000,000 chain in a subprocess);
  7. automatic collection: counts, thresholds, CPython's generation choice;
  8. fault injection: the collector's work space cannot be had.

Every test uses a fresh Arena whose automatic collection is off (fixture ``A``) unless
it tests automatic collection itself, so that nothing else collects behind its back.
"""
import gc
import os
import re
import subprocess
import sys
import textwrap
import weakref

import pytest

import objarena
import objarena._objarena as _oa
import objarena._testing as testing
from objarena import Arena, SlotObj

# Debug interpreters and sanitizer builds are many times slower: the biggest
# structures shrink there (the shapes stay the same).
SLOW = hasattr(sys, "gettotalrefcount") or "asan" in os.environ.get("LD_PRELOAD", "")
BIG = 100_000 if SLOW else 1_000_000
HUGE = 1_000_000 if SLOW else 10_000_000


def node_class(arena, name="N", fields=("a", "b", "c"), weakref=True, **namespace):
    """``class name(SlotObj, arena=arena): __slots__ = fields (+ __weakref__)``."""
    slots = tuple(fields) + (("__weakref__",) if weakref else ())
    return type(SlotObj)(name, (SlotObj,), {"__slots__": slots, **namespace}, arena=arena)


def native_class(name="X", fields=("a", "b", "c"), **namespace):
    """The native counterpart of node_class: a __slots__ class with __weakref__."""
    def __init__(self, *args):
        for f, v in zip(fields, args):
            setattr(self, f, v)
    ns = {"__slots__": tuple(fields) + ("__weakref__",), "__init__": __init__}
    ns.update(namespace)
    return type(name, (), ns)


class Nat:
    """A native class with a __dict__."""


def live(arena):
    return arena.stats()["objects"]


def native_gc_info_keys():
    """The keys of the info that the running CPython's gc gives its callbacks (3.15
    adds "candidates" and "duration" to "generation", "collected", "uncollectable")."""
    infos = []

    def cb(phase, info):
        infos.append(set(info))

    gc.callbacks.append(cb)
    try:
        gc.collect(0)
    finally:
        gc.callbacks.remove(cb)
    assert infos[0] == infos[1]
    return infos[0]


def native_gc_stats_keys():
    return set(gc.get_stats()[0])


def getrefcount_overhead():
    """What sys.getrefcount(x) adds to the references of a local variable x on the
    running version: the argument's own reference up to 3.13 (1); nothing from 3.14,
    where the interpreter passes a local variable borrowed (0)."""
    probe = object()
    return sys.getrefcount(probe) - 1


@pytest.fixture
def A(request):
    """A fresh arena, automatic collection off; validated after the test."""
    a = Arena(name="gc-" + request.node.name[:40])
    a.disable()
    yield a
    testing.validate(a)
    a.collect()         # what a test left in cycles goes with its arena


@pytest.fixture
def B():
    b = Arena(name="gc-second")
    b.disable()
    yield b
    testing.validate(b)
    b.collect()


@pytest.fixture
def N(A):
    return node_class(A)


@pytest.fixture
def injector():
    testing.fail_os_alloc(0)
    yield testing.fail_os_alloc
    testing.fail_os_alloc(0)


def run_script(body, timeout=120):
    """Run `body` in a fresh interpreter; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=timeout)


# ===========================================================================
# 1. Shapes that are collected

def test_self_cycle(A, N):
    x = N()
    x.a = x
    wr = weakref.ref(x)
    del x
    assert live(A) == 1
    assert A.collect() == 1
    assert wr() is None and live(A) == 0


def test_two_cycle(A, N):
    x, y = N(), N()
    x.a, y.a = y, x
    wrs = [weakref.ref(x), weakref.ref(y)]
    del x, y
    assert A.collect() == 2
    assert [w() for w in wrs] == [None, None] and live(A) == 0


def test_ring_of_1000(A, N):
    first = cur = N()
    for _ in range(999):
        cur.a = N()
        cur = cur.a
    cur.a = first
    wr = weakref.ref(first)
    del first, cur
    assert live(A) == 1000
    assert A.collect() == 1000
    assert wr() is None and live(A) == 0


def test_parent_children_through_a_list(A, N):
    parent = N()
    parent.a = [N(parent) for _ in range(10)]
    wl = weakref.ref(parent)
    del parent
    assert A.collect() == 11
    assert wl() is None and live(A) == 0


def test_through_a_tracked_dict(A, N):
    parent = N()
    parent.a = {f"k{i}": N(parent) for i in range(5)}
    parent.a["native"] = Nat()                # a GC value: CPython tracks the dict
    assert gc.is_tracked(parent.a)
    wn = weakref.ref(parent.a["native"])
    wp = weakref.ref(parent)
    del parent
    assert A.collect() == 6
    assert wp() is None and wn() is None and live(A) == 0


def test_through_a_dict_of_arena_objects_only(A, N):
    """Arena objects have no GC header: to CPython a dict of them is a dict of atoms, which
    it tracks as it tracks a dict of ints (up to 3.13 not until a container joins; from
    3.14 from creation).  The collector traverses it either way."""
    parent = N()
    parent.a = {i: N(parent) for i in range(5)}
    assert gc.is_tracked(parent.a) == gc.is_tracked({i: i for i in range(5)})
    wp = weakref.ref(parent)
    del parent
    assert A.collect() == 6
    assert wp() is None and live(A) == 0


def test_through_a_tuple(A, N):
    parent = N()
    parent.a = tuple(N(parent) for _ in range(4))
    gc.collect()                               # CPython may untrack the tuple: still found
    wp = weakref.ref(parent)
    del parent
    assert A.collect() == 5
    assert wp() is None and live(A) == 0


def test_through_a_set_and_a_frozenset(A, N):
    parent = N()
    parent.a = {N(parent) for _ in range(3)}
    parent.b = frozenset(N(parent) for _ in range(3))
    wp = weakref.ref(parent)
    del parent
    assert A.collect() == 7
    assert wp() is None and live(A) == 0


@pytest.mark.parametrize("materialised", [False, True])
def test_through_a_native_instance_and_its_dict(A, N, materialised):
    x = N()
    n = Nat()
    n.back = x
    if materialised:
        n.__dict__["other"] = N(x)             # the instance dict exists as a dict object
    x.a = n
    wn, wx = weakref.ref(n), weakref.ref(x)
    del x, n
    assert A.collect() == (2 if materialised else 1)
    assert wx() is None and wn() is None and live(A) == 0


@pytest.mark.parametrize("collector", ["first", "second"])
def test_across_two_arenas(A, B, collector):
    NA, NB = node_class(A), node_class(B, "M")
    x = NA()
    y = NB(x)
    x.a = [y]
    wx, wy = weakref.ref(x), weakref.ref(y)
    del x, y
    found = (A if collector == "first" else B).collect()
    assert found == 1                           # its own object; the other dies with it
    assert wx() is None and wy() is None
    assert live(A) == live(B) == 0


def test_native_containers_in_the_cycle_are_freed(A, N):
    class Leaf:
        pass

    x = N()
    leaf1, leaf2, nat = Leaf(), Leaf(), Nat()
    x.a = [leaf1, {"leaf": leaf2, "nat": nat}]
    nat.x = x
    ws = [weakref.ref(o) for o in (leaf1, leaf2, nat, x)]
    del x, leaf1, leaf2, nat
    assert A.collect() == 1
    assert [w() for w in ws] == [None] * 4


def test_a_native_cycle_hanging_off_arena_garbage(A, N):
    x = N()
    x.a = x
    n1, n2 = Nat(), Nat()
    n1.o, n2.o = n2, n1
    x.b = n1
    wn = weakref.ref(n1)
    ident = id(n1)
    del x, n1, n2
    assert A.collect() == 1 and live(A) == 0
    # Weak references to every garbage object are cleared first, native ones too
    # (CPython's order) ...
    assert wn() is None
    # ... but only arena objects are cleared: a cycle of native objects is CPython's
    # to free, and it is still whole.
    n1 = next(o for o in gc.get_objects() if id(o) == ident)
    assert type(n1) is Nat and n1.o.o is n1
    del n1
    assert gc.collect() >= 2
    assert not any(id(o) == ident and type(o) is Nat for o in gc.get_objects())


@pytest.mark.parametrize("form", ["inline", "dict-asked", "dict-outgrown"])
def test_obj_cycles_through_dynamic_attributes(A, N, form):
    """Obj keeps attributes inline (a shape) or in a real dict: both are traversed."""
    class P(objarena.Obj, arena=A):
        __slots__ = ("__weakref__",)

    p = P(x=1)
    q = P()
    if form == "inline":
        p.q = q
        q.p = p
    elif form == "dict-asked":
        p.__dict__["q"] = q                    # the object switches to a real dict
        vars(q)["p"] = p
    else:
        for i in range(40):                    # past the shape limit: a dict
            setattr(p, f"a{i}", q)
        q.p = [p, N(p)]
    wp = weakref.ref(p)
    del p, q
    assert A.collect() == (3 if form == "dict-outgrown" else 2)
    assert wp() is None and live(A) == 0


def test_cpython_gc_does_not_see_arena_cycles(A, N):
    x = N()
    x.a = [x, {"x": x}]
    wx = weakref.ref(x)
    del x
    gc.collect()
    assert wx() is not None                     # CPython's gc cannot free it ...
    assert A.collect() == 1 and wx() is None    # ... the arena's can


def test_interpreter_exit_with_type_instance_cycles():
    """Instances stored in class attributes make type <-> instance cycles that only the
    arena sees; garbage cycles left at exit get their last collection."""
    r = run_script("""
        import os, objarena
        from objarena import SlotObj
        class C(SlotObj):
            __slots__ = ("me", "name")
            def __del__(self):
                os.write(1, b"del " + self.name.encode() + b"\\n")
        C.inst = C(name="classattr")
        C.inst.me = [C.inst, C]
        c = C(name="cycle")
        c.me = c
        del c
        a = objarena.Arena("other")
        class D(SlotObj, arena=a):
            __slots__ = ("x",)
        D.keep = D([D, C.inst, a])
        print("exit", flush=True)
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == ""
    assert r.stdout.splitlines()[0] == "exit"
    assert "del cycle" in r.stdout.splitlines()


GLOBALS_CYCLE_MODULE = """
import os
from objarena import SlotObj, Obj

class Native:
    def __del__(self, write=os.write):     # the module's globals may be gone
        write(1, b"del " + self.tag.encode() + b"\\n")

class Slot(SlotObj):
    __slots__ = ("me", "tag")
    def __del__(self, write=os.write):     # the module's globals may be gone
        write(1, b"del " + self.tag.encode() + b"\\n")

class Dyn(Obj):
    def __del__(self, write=os.write):     # the module's globals may be gone
        write(1, b"del " + self.tag.encode() + b"\\n")

def make(prefix):
    out = []
    for cls in (Native, Slot, Dyn):
        o = cls()
        o.tag, o.me = prefix + cls.__name__, o
        out.append(o)
    return out
"""


def test_interpreter_exit_reclaims_cycles_through_module_globals(tmp_path):
    """Module-level instances in self-cycles, of classes defined in that module (instance
    -> class -> __del__ -> module globals -> instance): CPython frees the native one at
    exit, after it clears the module's globals; the arena objects are freed too."""
    (tmp_path / "mod_with_cycles.py").write_text(GLOBALS_CYCLE_MODULE)
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import mod_with_cycles
            mod_with_cycles.keep = mod_with_cycles.make("module-")
            with open(mod_with_cycles.__file__) as f:    # the same classes in __main__
                exec(f.read())
            keep = make("main-")
            print("exit", flush=True)
        """)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "exit"
    expected = {f"del {where}-{cls}" for where in ("main", "module")
                for cls in ("Native", "Slot", "Dyn")}
    assert set(lines[1:]) == expected and len(lines) == 7


def test_a_stray_shutdown_call_leaves_no_watch_behind():
    """_shutdown() (the atexit hook) arms a collection for the interpreter's
    finalization; called while the interpreter is not finalizing, that watch does not
    re-arm itself for ever: it is gone after two CPython collections."""
    def watches():
        return sum(type(o).__name__ == "_ExitWatch" for o in gc.get_objects())

    assert watches() == 0
    _oa._shutdown()
    assert watches() == 1
    gc.collect()
    gc.collect()
    assert watches() == 0


# --- survivors --------------------------------------------------------------

GLOBAL_LIST = []


def test_survives_from_a_global_list(A, N):
    x = N()
    x.a = x
    GLOBAL_LIST.append(x)
    wx = weakref.ref(x)
    del x
    try:
        assert A.collect() == 0
        assert wx() is not None and wx().a is wx()
        assert A.generation_of(wx()) == 2
    finally:
        GLOBAL_LIST.clear()
    assert A.collect() == 1 and wx() is None


def test_survives_from_a_frozen_object(A, N):
    x = N()
    x.a = x
    holder = N(x)
    A.freeze()
    wx = weakref.ref(x)
    fresh = N()
    fresh.a = fresh
    del x, fresh
    assert A.collect() == 1                     # `fresh`, not the frozen cycle
    assert wx() is not None and A.generation_of(wx()) == 3
    A.unfreeze()
    del holder
    assert A.collect() == 1 and wx() is None


def test_survives_from_a_native_object_outside_the_cycle(A, N):
    x = N()
    x.a = [x]
    keeper = Nat()
    keeper.ref = x
    wx = weakref.ref(x)
    del x
    assert A.collect() == 0 and wx() is not None
    del keeper
    assert A.collect() == 1 and wx() is None


def test_survives_from_a_suspended_generator(A, N):
    def gen(obj):
        yield 1
        yield obj

    x = N()
    x.a = x
    wx = weakref.ref(x)
    g = gen(x)
    next(g)
    del x
    assert A.collect() == 0 and wx() is not None
    assert next(g) is wx()
    del g
    assert A.collect() == 1 and wx() is None


def test_survives_from_a_running_frame(A, N):
    def inner():
        x = N()
        x.a = [x, {"x": x}]
        w = weakref.ref(x)
        n = A.collect()
        return n, w() is x and x.a[0] is x

    assert inner() == (0, True)
    assert A.collect() == 1


def test_survives_from_a_closure_cell(A, N):
    def closure(obj):
        return lambda: obj

    x = N()
    x.a = x
    fn = closure(x)
    wx = weakref.ref(x)
    del x
    assert A.collect() == 0 and fn() is wx()
    del fn
    assert A.collect() == 1 and wx() is None


def test_survivor_fields_untouched(A, N):
    keep = N()
    keep.a = [keep, {"k": keep, "n": Nat()}, (keep,)]
    keep.b = keep
    before = (type(keep.a), len(keep.a), keep.a[1].keys(), keep.b)
    for g in (0, 1, 2, 2):
        assert A.collect(g) == 0
    assert (type(keep.a), len(keep.a), keep.a[1].keys(), keep.b) == before
    assert keep.a[0] is keep and keep.a[2][0] is keep


def test_only_arena_objects_are_cleared(A, N):
    """A native object found unreachable keeps its contents until refcounting frees it;
    one that is resurrected by a finalizer keeps them for good."""
    saved = []

    class Keeper:
        def __del__(self):
            saved.append(self)

    x = N()
    k = Keeper()
    k.data = [1, 2, 3]
    k.x = x
    x.a = k
    del x, k
    A.collect()
    assert len(saved) == 1
    k = saved.pop()
    assert k.data == [1, 2, 3] and k.x.a is k      # resurrected whole: nothing cleared


# ===========================================================================
# 2. Ports of Lib/test/test_gc.py

def test_saveall(A, N):
    A.set_debug(_oa.DEBUG_SAVEALL)
    assert A.get_debug() == _oa.DEBUG_SAVEALL
    x = N()
    x.a = x
    id_x = id(x)
    del x
    assert A.collect() == 1
    assert [id(o) for o in A.garbage] == [id_x]
    assert A.garbage[0].a is A.garbage[0]          # not cleared
    assert live(A) == 1
    A.set_debug(0)
    A.garbage.clear()
    assert A.collect() == 1 and live(A) == 0


def test_get_count(A, N):
    A.collect()
    a, b, c = A.get_count()
    x = N()
    d, e, f = A.get_count()
    assert (a, b, c) == (0, 0, 0)
    assert (e, f) == (0, 0)
    assert d == a + 1
    del x
    assert A.get_count() == (0, 0, 0)


def test_collect_generations(A, N):
    A.collect()
    x = N()
    A.collect(0)
    assert A.generation_of(x) == 1
    a, b, c = A.get_count()
    A.collect(1)
    assert A.generation_of(x) == 2
    d, e, f = A.get_count()
    A.collect(2)
    assert A.generation_of(x) == 2
    g, h, i = A.get_count()
    assert (a, b, c) == (0, 1, 0)
    assert (d, e, f) == (0, 0, 1)
    assert (g, h, i) == (0, 0, 0)


def test_trashcan_like_deep_structures(A, N):
    """test_trashcan: deep chains through lists, dicts and arena objects, freed by
    refcounting (no C recursion) and as cyclic garbage, with finalizers on the way.
    (The finalizers do not call collect(): see the next test.)"""
    depth = 20_000 if SLOW else 100_000

    class Ouch(SlotObj, arena=A):
        __slots__ = ("a",)
        n = 0

        def __del__(self):
            Ouch.n += 1

    for _ in range(2):
        t = None
        for _ in range(depth):
            t = N(t, Ouch())
        u = []
        for _ in range(depth):
            u = [u, N(Ouch())]
        v = {}
        for _ in range(depth):
            v = {1: v, 2: Ouch(), 3: N()}
        del t, u, v                                  # plain refcounting
        assert live(A) == 0
        t = None
        for _ in range(depth):
            t = N(t, (Ouch(), [t]))
        head = N(t)
        t.c = head                                   # closes a cycle around all of it
        del t, head
        assert A.collect() == 2 * depth + 1
        assert live(A) == 0
        testing.validate(A)
    assert Ouch.n == 2 * 4 * depth


def test_trashcan_collect_from_finalizers_during_deallocs():
    """test_trashcan proper: every 17th finalizer calls collect() while deep
    structures are being freed (CPython's test calls gc.collect() there).  Regression:
    such a collect() used to find the dying object (refcount 0, or queued for a
    deferred free with its refcount word reused) as garbage and free it twice.  In a
    subprocess: that was a crash."""
    r = run_script("""
        import objarena, objarena._testing as T
        from objarena import Arena, SlotObj
        A = Arena("trash")
        class N(SlotObj, arena=A):
            __slots__ = ("a", "b")
        class Ouch(SlotObj, arena=A):
            __slots__ = ("a",)
            n = 0
            def __del__(self):
                Ouch.n += 1
                if Ouch.n % 17 == 0:
                    A.collect()
        for count in range(2):
            t = None
            for i in range(2000):
                t = N(t, Ouch())
            u = []
            for i in range(2000):
                u = [u, Ouch(), N()]
            del t, u
            T.validate(A)
            A.collect()
            T.validate(A)
            assert A.stats()["objects"] == 0, A.stats()["objects"]
        print("ok", Ouch.n)
    """)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.split() == ["ok", "8000"]


def test_is_finalized(A):
    storage = []

    class Lazarus(SlotObj, arena=A):
        __slots__ = ()

        def __del__(self):
            storage.append(self)

    assert not A.is_finalized(3)
    lazarus = Lazarus()
    assert not A.is_finalized(lazarus)
    del lazarus                                       # refcount path
    lazarus = storage.pop()
    assert A.is_finalized(lazarus)

    class CyclicLazarus(SlotObj, arena=A):
        __slots__ = ("me",)

        def __del__(self):
            storage.append(self)

    c = CyclicLazarus()
    c.me = c
    del c
    A.collect()                                       # collector path
    c = storage.pop()
    assert A.is_finalized(c) and c.me is c
    other = Arena("other")
    assert not other.is_finalized(c)                  # not one of its objects


def test_bug1055820b(A, N):
    """A weakref callback must not see an instance the collector is clearing."""
    ouch = []

    def callback(ignored):
        ouch[:] = [wr() for wr in WRs]

    Cs = [N(i) for i in range(2)]
    for c in Cs:
        c.b = c                                       # self-loops
    WRs = [weakref.ref(c, callback) for c in Cs]
    c = None
    A.collect()
    assert len(ouch) == 0
    Cs = None
    assert A.collect() == 2
    assert len(ouch) == 2                             # the callbacks ran
    assert ouch == [None, None]


def test_get_stats(A, N):
    stats = A.get_stats()
    assert len(stats) == 3
    for st in stats:
        assert isinstance(st, dict)
        assert set(st) == native_gc_stats_keys()
        assert all(v == 0 for v in st.values())
    old = A.get_stats()
    A.collect(0)
    new = A.get_stats()
    assert new[0]["collections"] == old[0]["collections"] + 1
    assert new[1]["collections"] == old[1]["collections"]
    assert new[2]["collections"] == old[2]["collections"]
    A.collect(2)
    new = A.get_stats()
    assert new[0]["collections"] == old[0]["collections"] + 1
    assert new[1]["collections"] == old[1]["collections"]
    assert new[2]["collections"] == old[2]["collections"] + 1
    x = N()
    x.a = x
    del x
    A.collect(1)
    new = A.get_stats()
    assert {k: new[1][k] for k in ("collections", "collected", "uncollectable")} == {
        "collections": 1, "collected": 1, "uncollectable": 0}
    assert new[2]["collected"] == 0


@pytest.mark.skipif("candidates" not in native_gc_stats_keys(),
                    reason="gc.get_stats() has no candidates/duration before 3.15")
def test_get_stats_candidates_and_duration(A, N):
    """3.15: candidates (the objects of the generations collected) and duration (seconds)
    add up over the collections of each generation, as in gc.get_stats()."""
    assert all(isinstance(st["duration"], float) for st in gc.get_stats())
    # Objects that hold a container: records of atoms are untracked, and no more
    # candidates than CPython's untracked tuples are.
    keep = [N([]) for _ in range(3)]
    A.collect(0)                                  # 3 candidates, all promoted
    x = N()
    x.a = x
    del x
    A.collect(0)                                  # the cycle alone
    st = A.get_stats()
    assert st[0]["collections"] == 2 and st[0]["candidates"] == 4
    assert isinstance(st[0]["duration"], float) and st[0]["duration"] >= 0
    A.collect(2)                                  # the 3 promoted
    st = A.get_stats()
    assert st[2]["candidates"] == 3 and st[2]["duration"] >= 0
    assert st[1] == {"collections": 0, "collected": 0, "uncollectable": 0,
                     "candidates": 0, "duration": 0.0}
    del keep


def test_resurrection_only_happens_once_per_object(A):
    class Lazarus(SlotObj, arena=A):
        __slots__ = ("me",)
        resurrected = 0
        resurrected_instances = []

        def __init__(self):
            self.me = self

        def __del__(self):
            Lazarus.resurrected += 1
            Lazarus.resurrected_instances.append(self)

    laz = Lazarus()
    assert Lazarus.resurrected == 0
    del laz
    A.collect()
    assert Lazarus.resurrected == 1
    assert len(Lazarus.resurrected_instances) == 1
    Lazarus.resurrected_instances.clear()
    assert A.collect() == 1                           # collected this time, no __del__
    assert Lazarus.resurrected == 1
    assert live(A) == 0


def test_resurrection_is_transitive(A):
    class Cargo(SlotObj, arena=A):
        __slots__ = ("me", "laz")

        def __init__(self):
            self.me = self

    class Lazarus(SlotObj, arena=A):
        __slots__ = ("cargo",)
        resurrected_instances = []

        def __del__(self):
            Lazarus.resurrected_instances.append(self)

    laz = Lazarus()
    cargo = Cargo()
    cargo_id = id(cargo)
    laz.cargo = cargo
    cargo.laz = laz
    del laz, cargo
    assert A.collect() == 0
    assert len(Lazarus.resurrected_instances) == 1
    instance = Lazarus.resurrected_instances.pop()
    assert hasattr(instance, "cargo")
    assert id(instance.cargo) == cargo_id
    assert instance.cargo.me is instance.cargo and instance.cargo.laz is instance
    del instance
    assert A.collect() == 2
    assert live(A) == 0


def test_resurrection_does_not_block_cleanup_of_other_objects(A):
    n = 100
    zs = []

    class Loop(SlotObj, arena=A):
        __slots__ = ("me",)

        def __init__(self):
            self.me = self

    class Z(Loop):
        __slots__ = ()

        def __del__(self):
            zs.append(self)

    def getstats():
        d = A.get_stats()[-1]
        return d["collected"], d["uncollectable"]

    oldc, oldnc = getstats()
    for _ in range(n):
        Loop()
    t = A.collect()
    c, nc = getstats()
    assert t == n and c - oldc == n and nc - oldnc == 0

    oldc, oldnc = c, nc
    Z()
    t = A.collect()
    c, nc = getstats()
    assert t == 0 and c - oldc == 0 and nc - oldnc == 0   # merely resurrected

    oldc, oldnc = c, nc
    for _ in range(n):
        Loop()
    Z()
    t = A.collect()
    c, nc = getstats()
    assert t == n and c - oldc == n and nc - oldnc == 0
    assert live(A) == 2

    zs.clear()
    t = A.collect()
    c, nc = getstats()
    assert t == 2 and c - oldc == n + 2
    assert live(A) == 0


# --- callbacks (GCCallbackTests) ---------------------------------------------

def test_callbacks_collect(A, N):
    visit = []
    A.callbacks.append(lambda phase, info: visit.append((1, phase, dict(info))))
    A.callbacks.append(lambda phase, info: visit.append((2, phase, dict(info))))
    x = N()
    x.a = x
    del x
    A.collect()
    assert [v[:2] for v in visit] == [(1, "start"), (2, "start"), (1, "stop"), (2, "stop")]
    keys = native_gc_info_keys()                  # 3.15 adds candidates, duration
    for v in visit:
        assert set(v[2]) == keys
        assert v[2]["generation"] == 2 and v[2]["uncollectable"] == 0
    start, stop = visit[0][2], visit[2][2]
    assert start["collected"] == 0 and stop["collected"] == 1
    if "candidates" in keys:
        assert (start["candidates"], start["duration"]) == (0, 0.0)
        assert stop["candidates"] == 1 and stop["duration"] >= 0
    A.callbacks.clear()


@pytest.mark.parametrize("generation", [0, 1, 2])
def test_callbacks_collect_generation(A, N, generation):
    visit = []
    A.callbacks.append(lambda phase, info: visit.append((phase, info["generation"])))
    A.collect(generation)
    A.collect(generation=generation)
    assert visit == [("start", generation), ("stop", generation)] * 2


def test_callbacks_collect_garbage(A, N):
    """The stop callback sees the counts, and may clean up garbage under SAVEALL."""
    infos = []

    def cb(phase, info):
        if phase == "stop":
            infos.append(dict(info))
            A.garbage.clear()

    A.callbacks.append(cb)
    A.set_debug(_oa.DEBUG_SAVEALL)
    for _ in range(3):
        x = N()
        x.a = x
    del x
    assert A.collect() == 3
    assert infos[-1]["collected"] == 3
    assert infos[-1].get("candidates", 3) == 3
    assert A.garbage == []
    A.set_debug(0)
    assert A.collect() == 3 and live(A) == 0


def test_callbacks_may_change_the_list_and_errors_are_unraisable(A):
    seen = []

    def remover(phase, info):
        seen.append(("remover", phase))
        A.callbacks.remove(remover)

    def failing(phase, info):
        raise ZeroDivisionError(phase)

    A.callbacks.append(remover)
    A.callbacks.append(failing)
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        A.collect()
    finally:
        sys.unraisablehook = old_hook
    assert seen == [("remover", "start")]            # the start phase ran on a copy
    assert [type(u.exc_value) for u in unraisable] == [ZeroDivisionError] * 2
    del unraisable
    A.callbacks.clear()


# --- the 1055820 nightmares (GCTogglingTests) ---------------------------------

def _trigger_automatic_collection(A, N, must_not_change):
    """Allocate until the arena's automatic collection runs (as in CPython's test)."""
    happened = []
    detector = lambda phase, info: happened.append(phase)       # noqa: E731
    A.callbacks.append(detector)
    A.set_threshold(10)
    A.enable()
    junk = []
    try:
        for _ in range(10_000):
            if happened:
                break
            assert len(must_not_change) == 0
            junk.append(N())
        else:
            pytest.fail("no automatic collection after 10000 allocations")
    finally:
        A.disable()
        A.callbacks.remove(detector)
    return junk


def test_bug1055820c(A, N):
    """A weakref callback on an older-generation object resurrects young trash
    through a callback-free weakref: that trash must already be cleared."""
    c0 = N(0)
    c0.b = c0
    A.collect()                                       # c0 into generation 2
    assert A.generation_of(c0) == 2
    c1 = N(1)
    c1.b = c1
    c1.c = c0                                         # keep_c0_alive
    del c0.b                                          # now only c1 keeps c0 alive
    c2 = N(2)
    c2.b = c2
    c2wr = weakref.ref(c2)                            # no callback!
    ouch = []

    def callback(ignored):
        ouch[:] = [c2wr()]

    c0wr = weakref.ref(c0, callback)
    c0 = c1 = c2 = None
    _trigger_automatic_collection(A, N, ouch)
    assert len(ouch) == 1                             # the callback ran
    assert ouch == [None]                             # and saw no damaged c2
    assert c0wr() is None


def test_bug1055820d(A, N):
    """The same nightmare with __del__ instead of a weakref callback."""
    ouch = []

    class D(SlotObj, arena=A):
        __slots__ = ("i", "loop")

        def __del__(self):
            ouch[:] = [c2wr()]

    d0 = D(0)
    d0.loop = d0
    A.collect()                                       # d0 into generation 2
    c1 = N(1)
    c1.b = c1
    c1.c = d0                                         # keep_d0_alive
    del d0.loop
    c2 = N(2)
    c2.b = c2
    c2wr = weakref.ref(c2)                            # no callback!
    d0 = c1 = c2 = None
    _trigger_automatic_collection(A, N, ouch)
    assert len(ouch) == 1
    assert ouch == [None]


# --- freeze, get_objects ------------------------------------------------------

def test_freeze(A, N):
    objs = [N() for _ in range(5)]
    A.freeze()
    assert A.get_freeze_count() == 5
    assert A.get_count()[0] == 0
    assert A.get_objects() == []
    assert all(A.generation_of(o) == 3 for o in objs)
    for o in objs:
        o.a = o                                       # frozen garbage ...
    del o
    objs.clear()
    assert A.collect() == 0 and live(A) == 5          # ... is never collected
    A.unfreeze()
    assert A.get_freeze_count() == 0
    assert A.collect() == 5 and live(A) == 0


def test_get_objects(A, N):
    assert A.get_objects() == []
    x = N()
    assert any(o is x for o in A.get_objects())
    other = Arena("other")
    y = node_class(other)()
    assert not any(o is y for o in A.get_objects())
    assert not any(o is x for o in other.get_objects())
    assert not any(o is x for o in gc.get_objects())   # CPython's gc never sees them
    assert not gc.is_tracked(x)


def test_get_objects_generations(A, N):
    x = N()

    def where():
        return [any(o is x for o in A.get_objects(generation=g)) for g in range(3)]

    assert where() == [True, False, False]
    A.collect(0)
    assert where() == [False, True, False]
    A.collect(1)
    assert where() == [False, False, True]
    A.collect(2)
    assert where() == [False, False, True]
    assert any(o is x for o in A.get_objects(None))
    A.freeze()
    assert where() == [False, False, False] and A.get_objects() == []
    A.unfreeze()
    assert where() == [False, False, True]


def test_get_objects_arguments(A):
    A.get_objects()
    A.get_objects(generation=None)
    for g in range(3):
        A.get_objects(g)
    with pytest.raises(ValueError):
        A.get_objects(1000)
    with pytest.raises(ValueError):
        A.get_objects(-1000)
    with pytest.raises(TypeError):
        A.get_objects("1")
    with pytest.raises(TypeError):
        A.get_objects(1.234)


def test_traverse_frozen_objects(A, N):
    """An unfrozen object pointing at a frozen one must not disturb its counts."""
    x = N(1, 2, 3)
    A.freeze()
    rc = sys.getrefcount(x)
    y = N(x)
    y.b = [y, x]
    del y
    assert A.collect() == 1
    A.unfreeze()
    assert sys.getrefcount(x) == rc and (x.a, x.b, x.c) == (1, 2, 3)
    assert A.collect() == 0 and A.generation_of(x) == 2


def test_get_objects_during_gc(A):
    """Arena methods called from a finalizer during a collection work, and a nested
    collect() returns 0."""
    seen = {}

    class X(SlotObj, arena=A):
        __slots__ = ("me", "__weakref__")

        def __del__(self):
            seen["objects"] = len(A.get_objects())
            seen["referrers"] = len(A.get_referrers(self))
            seen["referents"] = [type(o) for o in A.get_referents(self)]   # not self
            seen["nested"] = A.collect()
            seen["nested0"] = A.collect(0)
            seen["count"] = A.get_count()
            seen["stats"] = A.get_stats()
            seen["tracked"] = A.is_tracked(self)
            seen["finalized"] = A.is_finalized(self)
            seen["gen"] = A.generation_of(self)
            seen["gc"] = gc.collect(0) >= 0

    x = X()
    x.me = x
    others = [X() for _ in range(3)]
    del x
    stats_before = A.get_stats()
    assert A.collect() == 1
    assert seen["objects"] == 4
    assert seen["referrers"] == 1                    # itself
    assert seen["referents"] == [type(X), X]      # its type, and itself through .me
    assert seen["nested"] == 0 and seen["nested0"] == 0
    assert seen["tracked"] and seen["finalized"]
    assert seen["stats"] == stats_before              # nothing counted by the nested calls
    assert seen["gc"] and live(A) == 3
    del others


# --- smaller API ports --------------------------------------------------------

def test_collect_bad_arguments(A):
    for bad in (-1, 3, 1000):
        with pytest.raises(ValueError, match="invalid generation"):
            A.collect(bad)
    for bad in ("1", 1.5, None, []):
        with pytest.raises(TypeError):
            A.collect(bad)
    assert A.collect(generation=0) == 0


def test_get_referents(A, N):
    n = Nat()
    x = N(1, n)
    refs = A.get_referents(x)
    assert refs[0] is N and refs[1:] == [1, n]
    y = N(x)
    refs = A.get_referents(x, y)
    assert refs == [N, 1, n, N, x]
    assert A.get_referents() == []
    assert A.get_referents(1, [x], n) == []            # not arena objects
    other = node_class(Arena("o"))
    assert A.get_referents(other(1)) == []             # another arena's


def test_get_referrers(A, B, N):
    target = Nat()
    x = N(target)
    lst = [target]
    y = N(lst)
    d = {"t": target}
    z = N(d)
    w = node_class(B, "M")(target)
    unrelated = N(1)
    got = A.get_referrers(target)
    ids = {id(o) for o in got}
    assert ids == {id(x), id(lst), id(d)}              # arena objects and containers under them
    assert id(w) not in ids and id(unrelated) not in ids
    assert {id(o) for o in A.get_referrers(x, lst)} == {id(y)}
    assert A.get_referrers() == []
    assert {id(o) for o in B.get_referrers(target)} == {id(w)}
    del y, z


def test_is_tracked_and_generation_of(A, B, N):
    x = N()
    y = node_class(B, "M")()
    assert A.is_tracked(x) and not A.is_tracked(y)
    assert not A.is_tracked(1) and not A.is_tracked([]) and not A.is_tracked(Nat())
    assert A.generation_of(x) == 0
    for bad in (1, [], Nat(), None):
        with pytest.raises(TypeError):
            A.generation_of(bad)
    with pytest.raises(ValueError):
        A.generation_of(y)
    assert B.generation_of(y) == 0


def test_enable_disable_threshold(A):
    assert not A.isenabled()
    A.enable()
    assert A.isenabled()
    A.disable()
    assert not A.isenabled()
    assert Arena("fresh").isenabled()
    assert Arena("fresh").get_threshold() == gc.get_threshold()
    A.set_threshold(5)
    assert A.get_threshold()[0] == 5
    A.set_threshold(100, 7)
    assert A.get_threshold()[:2] == (100, 7)
    A.set_threshold(1, 2, 3)
    assert A.get_threshold() == (1, 2, 3)
    with pytest.raises(TypeError):
        A.set_threshold()
    with pytest.raises(TypeError):
        A.set_threshold("1")
    assert A.get_threshold() == (1, 2, 3)


def test_debug_flags_and_stats_output(A, N, capfd):
    assert gc.DEBUG_LEAK == _oa.DEBUG_LEAK
    for name in ("DEBUG_STATS", "DEBUG_COLLECTABLE", "DEBUG_UNCOLLECTABLE", "DEBUG_SAVEALL"):
        assert getattr(_oa, name) == getattr(gc, name)
    A.set_debug(_oa.DEBUG_STATS | _oa.DEBUG_COLLECTABLE)
    assert A.get_debug() == _oa.DEBUG_STATS | _oa.DEBUG_COLLECTABLE
    x = N()
    x.a = x
    del x
    A.collect()
    A.set_debug(0)
    err = capfd.readouterr().err
    assert "collecting generation 2" in err
    assert "collectable <N" in err
    with pytest.raises(TypeError):
        A.set_debug("x")


def test_debug_stats_closing_line(A, N, capfd):
    """Regression: the line was formatted with %.4f, which PyUnicode_FromFormat lacks
    (printed literally on 3.10/3.11, the whole line lost on 3.12+)."""
    A.set_debug(_oa.DEBUG_STATS)
    x = N()
    x.a = x
    del x
    A.collect()
    A.set_debug(0)
    err = capfd.readouterr().err
    assert re.search(r"done, 1 unreachable, 0 uncollectable.* \d+\.\d{4}s elapsed", err), err


def test_default_arena_has_the_api():
    d = objarena.default_arena
    for name in ("collect", "get_count", "get_threshold", "set_threshold", "enable",
                 "disable", "isenabled", "get_stats", "callbacks", "garbage",
                 "set_debug", "get_debug", "get_objects", "is_tracked", "is_finalized",
                 "generation_of", "get_referents", "get_referrers", "freeze",
                 "unfreeze", "get_freeze_count", "refinfo"):
        assert hasattr(d, name), name
    assert isinstance(d.collect(0), int)
    assert d.isenabled()


# ===========================================================================
# 3. Weak reference and finalizer ordering, native (gc) and arena side by side

@pytest.fixture(params=["native", "arena"])
def side(request, A):
    """(class factory, collect) for native __slots__ objects under gc, or arena objects."""
    if request.param == "native":
        return request.param, (lambda name, **ns: native_class(name, **ns)), gc.collect
    return request.param, (lambda name, **ns: node_class(A, name, **ns)), A.collect


def test_external_weakref_callback_runs_before_del(side):
    kind, make, collect = side
    log = []
    X = make("X", __del__=lambda self: log.append("del"))
    x = X()
    x.a = x
    wr = weakref.ref(x, lambda w: log.append(("callback", w() is None)))
    del x
    collect()
    assert log == [("callback", True), "del"]
    assert wr() is None


def test_callback_sees_the_referent_cleared(side):
    kind, make, collect = side
    seen = []
    X = make("X")
    objs = [X() for _ in range(3)]
    for i, o in enumerate(objs):
        o.a = objs[(i + 1) % 3]
    wrs = [weakref.ref(o, lambda w: seen.append([r() for r in wrs])) for o in objs]
    del objs, o
    collect()
    assert seen == [[None, None, None]] * 3


@pytest.fixture
def both_sides(A):
    """Run a scenario with native __slots__ objects under gc, then with arena objects,
    and return both results: where CPython's order changed between versions (3.15
    clears weak references without a callback after finalizers, not before), the arena
    must do what the running version does."""
    def run(scenario):
        native = scenario(lambda name, **ns: native_class(name, **ns), gc.collect)
        arena = scenario(lambda name, **ns: node_class(A, name, **ns), A.collect)
        return native, arena
    return run


def test_weakrefs_to_self_inside_del_match_native(both_sides):
    """Up to 3.14 they return None in __del__; 3.15 clears weak references without a
    callback only after finalizers, so __del__ still reaches the object through them."""
    def scenario(make, collect):
        seen = []

        def __del__(self):
            seen.append(tuple("self" if r is self else r for r in (self.b(), ext())))

        X = make("X", __del__=__del__)
        x = X()
        x.a = x
        x.b = weakref.ref(x)                 # a weakref that is garbage itself
        ext = weakref.ref(x)                 # an external one
        del x
        collect()
        assert ext() is None                 # cleared in the end on every version
        return seen

    native, arena = both_sides(scenario)
    assert arena == native
    assert native in ([(None, None)], [("self", "self")])


def test_callback_of_a_garbage_weakref(side):
    """CPython never calls the callback of a weakref that is garbage itself."""
    kind, make, collect = side
    calls = []
    X = make("X")
    x = X()
    x.a = x
    x.b = weakref.ref(x, lambda w: calls.append(w() is None))
    del x
    collect()
    assert calls == []


@pytest.mark.parametrize("holder", ["list", "dict", "native instance", "proxy"])
def test_garbage_weakref_held_through_foreign_objects(side, holder):
    """The weakref (or proxy) is garbage with its referent, reached through a foreign
    container: its callback is not called, and an external one still is."""
    kind, make, collect = side
    calls = []
    X = make("X")
    x = X()
    x.a = x
    if holder == "proxy":
        x.b = weakref.proxy(x, lambda w: calls.append("garbage"))
    else:
        w = weakref.ref(x, lambda w: calls.append("garbage"))
        x.b = {"list": lambda: [w], "dict": lambda: {"w": w}}.get(holder, lambda: Nat())()
        if holder == "native instance":
            x.b.w = w
        del w
    ext = weakref.ref(x, lambda w: calls.append(("external", w() is None)))
    del x
    collect()
    assert calls == [("external", True)]
    assert ext() is None


def test_weakref_subclass_garbage_callback_not_called(side):
    """weakref.KeyedRef (a subclass of ref, as WeakValueDictionary uses) that is garbage
    with its referent: no callback, as native."""
    kind, make, collect = side
    calls = []
    X = make("X")
    x = X()
    x.a = x
    x.b = weakref.KeyedRef(x, lambda w: calls.append(w.key), "k")
    del x
    collect()
    assert calls == []


def test_weakref_to_a_foreign_member_cleared_before_finalizers(side):
    """A native object in the garbage cycle: the callback of a weakref to it runs, sees
    None, and runs before any finalizer, as CPython clears every weakref to garbage
    first (not when reference counting later frees the native object)."""
    kind, make, collect = side
    log = []
    X = make("X", __del__=lambda self: log.append("del X"))

    class Fin:
        def __del__(self):
            log.append("del Fin")

    x, n = X(), Fin()
    x.a, n.x = n, x
    wr = weakref.ref(n, lambda w: log.append(("callback", w() is None)))
    del x, n
    collect()
    assert log[0] == ("callback", True)
    assert sorted(log[1:]) == ["del Fin", "del X"]
    assert wr() is None


def test_callback_reaching_garbage_through_a_weakref_matches_native(both_sides):
    """A callback reads another weakref (without a callback) to the garbage: None up to
    3.14; on 3.15 that weakref is still set, the callback gets the object and holds it,
    and the object survives the collection whole (the resurrection check)."""
    def scenario(make, collect):
        got = []
        X = make("X")
        a, b = X(), X()
        a.a, b.a = b, a
        wb = weakref.ref(b)                  # no callback
        wa = weakref.ref(a, lambda w: got.append(wb()))
        del a, b
        collect()
        assert wa() is None                  # a weakref with a callback: cleared
        held = got[0]
        result = [type(held).__name__ if held is not None else None,
                  wb() is held, held is not None and held.a.a is held]
        got.clear()
        del held
        collect()
        result.append(wb())                  # nothing holds it now: cleared
        return result

    native, arena = both_sides(scenario)
    assert arena == native
    assert native in ([None, True, False, None], ["X", True, True, None])


def test_weakrefs_seen_from_del_match_native(both_sides):
    """Every __del__ of a garbage ring reads the weakrefs to all its members: all None
    up to 3.14 (cleared before finalizers), all set on 3.15 (cleared after)."""
    def scenario(make, collect):
        seen = []
        X = make("X", __del__=lambda self: seen.append([w() is not None for w in wrs]))
        objs = [X() for _ in range(4)]
        for i, o in enumerate(objs):
            o.a = objs[i - 1]
        wrs = [weakref.ref(o) for o in objs]
        del objs, o
        collect()
        assert [w() for w in wrs] == [None] * 4
        return seen

    native, arena = both_sides(scenario)
    assert arena == native
    assert native in ([[False] * 4] * 4, [[True] * 4] * 4)


# ===========================================================================
# 4. __del__ once, resurrection, DEBUG_SAVEALL

def test_del_runs_once_across_collections_and_refcounting(A):
    calls = []
    keep = []

    class X(SlotObj, arena=A):
        __slots__ = ("me", "tag")

        def __del__(self):
            calls.append(self.tag)
            keep.append(self)

    x = X(tag="cyc")
    x.me = x
    y = X(tag="plain")
    del x, y
    assert calls == ["plain"]
    A.collect()
    assert calls == ["plain", "cyc"]
    assert len(keep) == 2
    keep.clear()                              # "plain" freed by refcount: no second __del__
    assert calls == ["plain", "cyc"]
    for _ in range(3):
        A.collect()
    assert calls == ["plain", "cyc"] and live(A) == 0


def test_resurrected_objects_survive_whole(A, N):
    saved = []

    class R(SlotObj, arena=A):
        __slots__ = ("a", "b", "__weakref__")

        def __del__(self):
            saved.append(self)

    r = R()
    chain = N()
    chain.a = [N(chain), {"n": Nat(), "m": N()}]
    r.a = chain
    r.b = r
    chain.b = r
    side_garbage = N()
    side_garbage.a = side_garbage
    wg = weakref.ref(side_garbage)
    del r, chain, side_garbage
    assert A.collect() == 1                    # only side_garbage
    assert wg() is None
    r = saved.pop()
    assert r.b is r and r.a.b is r
    assert r.a.a[0].a is r.a and isinstance(r.a.a[1]["n"], Nat)
    assert live(A) == 4
    testing.validate(A)
    del r
    assert A.collect() == 4 and live(A) == 0


def test_saveall_runs_finalizers(A):
    calls = []

    class X(SlotObj, arena=A):
        __slots__ = ("me", "__weakref__")

        def __del__(self):
            calls.append(1)

    A.set_debug(_oa.DEBUG_SAVEALL)
    x = X()
    x.me = x
    wr = weakref.ref(x)
    del x
    assert A.collect() == 1
    assert calls == [1]
    assert len(A.garbage) == 1 and A.is_finalized(A.garbage[0])
    assert A.garbage[0].me is A.garbage[0]
    assert wr() is None                       # weak references are cleared, as in CPython
    A.set_debug(0)
    A.garbage.clear()
    assert A.collect() == 1 and calls == [1] and live(A) == 0


# ===========================================================================
# 5. refinfo

def test_refinfo_counts(A, B, N):
    """An object referenced by 3 arena objects and a list: internal 3, external the rest.
    (Regression: RefInfo was built with 3 arguments, a TypeError on every call.)"""
    target = Nat()
    holders = [N(target) for _ in range(3)]
    lst = [target]
    info = A.refinfo(target)
    assert isinstance(info, _oa.RefInfo)
    assert info.refcount == sys.getrefcount(target) - getrefcount_overhead() == 5
    assert (info.internal, info.external) == (3, info.refcount - 3)
    assert tuple(info) == (info.refcount, info.internal, info.external)
    other = node_class(B, "M")(target, target)     # other arenas count as internal
    info2 = A.refinfo(target)
    assert info2.refcount == info.refcount + 2
    assert info2.refcount == sys.getrefcount(target) - getrefcount_overhead()
    assert info2.internal == 5 and info2.external == info.external
    del holders, lst, other


def test_refinfo_of_arena_objects_and_cycles(A, N):
    x = N()
    assert A.refinfo(x) == (1, 0, 1)
    x.a = x
    assert A.refinfo(x) == (2, 1, 1)
    assert A.refinfo(x).refcount == sys.getrefcount(x) - getrefcount_overhead()
    y = N(x, x)
    assert A.refinfo(x) == (4, 3, 1)
    del y
    assert A.refinfo(x) == (2, 1, 1)
    s = "".join(["not", "interned"])
    assert A.refinfo(s) == (1, 0, 1) and sys.getrefcount(s) - getrefcount_overhead() == 1


REFINFO_HOLDER = object()


@pytest.mark.parametrize("held", [1, 2, 3])
def test_refinfo_refcount_is_the_references_besides_the_call(A, held):
    """refcount counts every reference but those the call itself holds, on every
    version: a local variable passed directly counts once (3.14+ passes it borrowed,
    3.13- with a reference of the call's own), as it does in sys.getrefcount less what
    that adds on the running version.  (Each figure is taken outside the assert: pytest
    keeps the operands of an asserted expression in hidden local variables, which are
    references too.)"""
    x = object()
    extra = [x] * (held - 1)
    direct = A.refinfo(x).refcount
    native = sys.getrefcount(x) - getrefcount_overhead()
    shortcut = objarena.refinfo(x).refcount                   # the module shortcut
    expression = A.refinfo(extra[0] if extra else x).refcount  # pushed with a reference
    specialised = {A.refinfo(x).refcount for _ in range(100)}
    box = Nat()
    box.x = x
    attribute = A.refinfo(box.x).refcount                     # + box's reference
    assert (direct, native, shortcut, expression) == (held, held, held, held)
    assert specialised == {held}
    assert attribute == held + 1
    del extra


def test_refinfo_of_a_closure_variable(A):
    y = object()

    def closure():
        return A.refinfo(y).refcount        # the cell's reference, nothing else

    inner = closure()
    outer = A.refinfo(y).refcount
    assert inner == outer == 1


def test_refinfo_of_a_global_and_of_a_temporary(A):
    """A global counts its module dict's reference; a temporary that nothing else holds
    has refcount 0 (only the call holds it)."""
    g = globals()
    name = "REFINFO_HOLDER"
    figures = [A.refinfo(REFINFO_HOLDER).refcount, sys.getrefcount(REFINFO_HOLDER) - 1,
               A.refinfo(g[name]).refcount]
    temporaries = [A.refinfo(object()).refcount, A.refinfo([1, 2]).refcount,
                   A.refinfo("".join(["not", "interned"])).refcount]
    assert figures == [1, 1, 1]
    assert temporaries == [0, 0, 0]


# ===========================================================================
# 6. Deep structures

def test_garbage_ring_of_a_million(A, N):
    first = cur = N()
    for _ in range(BIG - 1):
        nxt = N()
        cur.a = nxt
        cur = nxt
    cur.a = first
    wr = weakref.ref(first)
    del first, cur, nxt
    assert live(A) == BIG
    assert A.collect() == BIG
    assert wr() is None and live(A) == 0


def test_garbage_chain_of_ten_million_in_a_subprocess():
    r = run_script(f"""
        import weakref, objarena, objarena._testing as T
        from objarena import Arena, SlotObj
        A = Arena("chain")
        A.disable()
        class N(SlotObj, arena=A):
            __slots__ = ("next", "__weakref__")
        head = cur = N()
        for _ in range({HUGE} - 1):
            nxt = N()
            cur.next = nxt
            cur = nxt
        cur.next = head                  # the cycle closes at the end
        wr = weakref.ref(head)
        del head, cur, nxt
        n = A.collect()
        T.validate(A)
        print(n, wr() is None, A.stats()["objects"])
    """, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.split() == [str(HUGE), "True", "0"]


def test_deep_chain_through_native_containers(A, N):
    depth = 20_000 if SLOW else 100_000
    head = N()
    cur = head
    for i in range(depth):
        nxt = N()
        cur.a = [nxt] if i % 2 else {"n": nxt}
        cur = nxt
    cur.a = head
    wr = weakref.ref(head)
    del head, cur, nxt
    assert A.collect() == depth + 1
    assert wr() is None and live(A) == 0


# ===========================================================================
# 7. Automatic collection

def test_automatic_collection_keeps_self_cycles_bounded():
    a = Arena("auto")
    assert a.isenabled()
    X = node_class(a, "X")
    peak = 0
    for i in range(100_000):
        x = X()
        x.a = x
        if i % 100 == 0:
            peak = max(peak, live(a))
    del x
    assert peak < 10_000
    assert sum(s["collections"] for s in a.get_stats()) >= 100_000 // a.get_threshold()[0] - 1
    assert a.collect() >= 0 and live(a) == 0
    testing.validate(a)


def test_disabled_automatic_collection_grows(A, N):
    for _ in range(20_000):
        x = N()
        x.a = x
    del x
    assert live(A) == 20_000
    assert all(s["collections"] == 0 for s in A.get_stats())
    assert A.get_count()[0] == 20_000
    assert A.collect() == 20_000


def test_count_follows_allocations_and_frees(A, N):
    A.collect()
    assert A.get_count() == (0, 0, 0)
    objs = [N() for _ in range(10)]
    assert A.get_count() == (10, 0, 0)
    del objs[:4]
    assert A.get_count() == (6, 0, 0)
    A.collect(0)
    assert A.get_count() == (0, 1, 0)
    objs.clear()                                      # count0 does not go below 0
    assert A.get_count() == (0, 1, 0)
    more = [N() for _ in range(3)]
    assert A.get_count()[0] == 3
    del more


def test_automatic_collection_at_threshold(A, N):
    A.set_threshold(50, 1000, 1000)
    A.enable()
    objs = []
    for _ in range(50):
        objs.append(N())
    assert A.get_count() == (50, 0, 0)
    assert A.get_stats()[0]["collections"] == 0
    objs.append(N())                                  # count0 reached threshold0
    assert A.get_stats()[0]["collections"] == 1
    assert A.get_count() == (1, 1, 0)
    assert [A.generation_of(o) for o in objs] == [1] * 50 + [0]


def test_generation_choice_matches_native(A, N):
    """The generations that automatic collections choose, with the same thresholds, in
    the order the running CPython's gc chooses them for native objects (a generation is
    collected once its count exceeds its threshold: threshold1 = 2 gives three young
    collections, then one of generation 1)."""
    def automatic_generations(callbacks, allocate):
        seen = []

        def cb(phase, info):
            if phase == "start":
                seen.append(info["generation"])

        callbacks.append(cb)
        try:
            keep = []
            while len(seen) < 9:
                keep.append(allocate())
        finally:
            callbacks.remove(cb)
        return seen[:8]

    old = gc.get_threshold()
    gc.collect()
    gc.set_threshold(200, 2, 1000)
    try:
        native = automatic_generations(gc.callbacks, list)
    finally:
        gc.set_threshold(*old)
    A.set_threshold(200, 2, 1000)
    A.enable()
    arena = automatic_generations(A.callbacks, N)
    A.disable()
    assert arena == native and 1 in native


def test_threshold_zero_disables_automatic_collection(A, N):
    A.set_threshold(0)
    A.enable()
    objs = [N() for _ in range(2000)]
    assert all(s["collections"] == 0 for s in A.get_stats())
    del objs


def test_generation_choice_and_the_long_lived_rule(A, N):
    """CPython's choice: the oldest generation over its threshold, but generation 2
    only while the objects promoted since the last full collection reach 25% of
    those that survived it."""
    A.set_threshold(10, 2, 2)
    A.enable()
    # No long-lived objects: full collections follow the thresholds.
    for _ in range(2000):
        x = N()
        x.a = x
    del x
    s = A.get_stats()
    assert s[0]["collections"] > s[1]["collections"] > s[2]["collections"] > 0
    A.disable()
    keep = [N() for _ in range(8000)]
    A.collect()                                       # long_lived_total = 8000
    A.enable()
    before = A.get_stats()
    for _ in range(3000):                             # garbage only: little is promoted
        x = N()
        x.a = x
    del x
    after = A.get_stats()
    assert after[2]["collections"] == before[2]["collections"]
    assert after[1]["collections"] > before[1]["collections"] + 20
    more = [N() for _ in range(2500)]                 # 25% of 8000 promoted: a full one
    final = A.get_stats()
    assert final[2]["collections"] > after[2]["collections"]
    A.disable()
    del keep, more


def test_no_automatic_collection_inside_a_collection(A, N):
    """Finalizers that allocate during a collection do not start another one."""
    made = []

    class Alloc(SlotObj, arena=A):
        __slots__ = ("me",)

        def __del__(self):
            made.extend(N() for _ in range(20))

    for _ in range(5):
        x = Alloc()
        x.me = x
    del x
    A.set_threshold(3)
    A.enable()
    before = A.get_stats()
    A.collect(2)
    A.disable()
    after = A.get_stats()
    assert after[2]["collections"] == before[2]["collections"] + 1
    assert after[0]["collections"] == before[0]["collections"]
    assert after[1]["collections"] == before[1]["collections"]
    assert len(made) == 100


def test_no_automatic_collection_inside_a_dealloc(A, N):
    made = []

    class Alloc(SlotObj, arena=A):
        __slots__ = ()

        def __del__(self):
            made.extend(N() for _ in range(20))

    objs = [Alloc() for _ in range(5)]
    A.set_threshold(3)
    A.enable()
    before = A.get_stats()
    del objs                                          # deallocs allocate 100 objects
    A.disable()
    assert A.get_stats() == before
    assert len(made) == 100


# --- untracked records, counters, the mark stack --------------------------------

def test_a_young_record_of_atoms_written_into_a_cycle_is_found(A, N):
    """A record whose fields held atoms only is skipped, but examined again at each
    collection of its generation while young."""
    x = N(1, "s", None)
    wx = weakref.ref(x)
    A.collect(0)                                      # atoms only: untracked
    x.a = [x]                                         # no hook on the write
    del x
    assert A.collect(1) == 1 and wx() is None


def test_an_old_record_of_atoms_written_into_a_cycle(A, N):
    """Old untracked records: found by the next explicit full collection, and by
    automatic full collections within a bounded number of them."""
    x = N(1.5, b"b")
    wx = weakref.ref(x)
    A.collect(2)
    assert A.generation_of(x) == 2
    x.a = x
    del x
    assert A.collect(2) == 1 and wx() is None
    # Automatic full collections only: found within a few of them.
    objs = [N(i) for i in range(2000)]
    A.collect(2)
    for o in objs:
        o.a = {"me": o}                               # old, untracked, now cycles
    wrs = [weakref.ref(o) for o in objs]
    del objs, o
    A.set_threshold(10, 1, 1)
    A.enable()
    fulls = A.get_stats()[2]["collections"]
    while any(w() is not None for w in wrs):
        junk = N()
        junk.a = junk
        assert A.get_stats()[2]["collections"] <= fulls + 8
    A.disable()


def test_records_of_atoms_keep_what_they_reference_alive(A, N):
    """Skipping a record never frees what it references: its references count as
    external to every collection."""
    keep = [N("v%d" % i) for i in range(100)]
    A.collect(2)
    for k in keep:
        y = N()
        y.a = y
        k.b = y                                       # untracked k now holds y
    del y
    A.set_threshold(5, 1, 1)
    A.enable()
    for _ in range(2000):
        t = N()
        t.a = t
    A.disable()
    assert all(type(k.b) is N and k.b.a is k.b for k in keep)
    del keep, k, t
    assert A.collect() >= 101 and live(A) == 0


def test_counters_past_a_byte(A, N):
    """gc_refs past 250 (an object referenced by many members): exact."""
    hub = N()
    spokes = [N(hub) for _ in range(1000)]            # each refers to the hub
    hub.a = tuple(spokes)
    ws = weakref.ref(hub)
    del spokes
    assert A.collect(2) == 0 and ws() is hub
    del hub
    assert A.collect(2) == 1001 and ws() is None


def test_counters_past_a_byte_with_external_references(A, N):
    hub = N()
    spokes = [N(hub) for _ in range(600)]
    hub.a = spokes
    held = [hub] * 3                                  # 3 references from outside
    del spokes
    A.collect(2)
    del hub
    assert A.collect(2) == 0 and live(A) == 601
    held.pop()
    held.pop()
    assert A.collect(2) == 0
    held.pop()
    assert A.collect(2) == 601


def test_mark_stack_overflow(A, N):
    """A node referencing more objects than the mark stack holds: the rest wait and
    are taken by page scans; nothing reachable is freed."""
    many = 200_000 if not SLOW else 70_000
    root = N()
    root.a = [N(i) for i in range(many)]
    for o in root.a:
        o.b = o                                       # each its own cycle too
    A.collect(2)
    assert live(A) == many + 1
    assert all(o.b is o for o in root.a[::997])
    root.a = None
    del o
    assert A.collect(2) == many


class Box:
    """A Python class without __del__ (its instances may be owned containers)."""

    def __init__(self, item):
        self.item = item


class BoxDel(Box):
    def __del__(self):
        pass


@pytest.mark.parametrize("holder", ["list", "tuple", "dict", "instance", "instance-del",
                                    "instance-weakref"])
@pytest.mark.parametrize("with_del", [False, True])
def test_cycles_through_containers_held_once(A, holder, with_del):
    """A container that one arena object holds alone is part of it: cycles through it
    are found, nothing reachable through it is freed, finalizers run once."""
    dels = []
    X = (node_class(A, "X", __del__=lambda self: dels.append(1)) if with_del
         else node_class(A, "X"))
    weak = []

    def hold(item):
        if holder == "list":
            return [item]
        if holder == "tuple":
            return (item,)
        if holder == "dict":
            return {"k": item}
        box = (BoxDel if holder == "instance-del" else Box)(item)
        if holder == "instance-weakref":
            weak.append(weakref.ref(box))
        return box

    keep = X()
    kept = X()
    keep.a = hold(kept)
    kept.b = keep                                     # keep <-> kept, through the holder
    for _ in range(50):                               # garbage: a <-> b through it
        a = X()
        b = X()
        a.a = hold(b)
        b.b = a
    del a, b
    assert A.collect() == 100
    assert len(dels) == (100 if with_del else 0)
    assert live(A) == 2 and kept.b is keep
    assert (keep.a[0] if holder in ("list", "tuple") else
            keep.a["k"] if holder == "dict" else keep.a.item) is kept
    del keep, kept
    assert A.collect() == 2 and live(A) == 0


# --- CPython's collections and the arenas ---------------------------------------

@pytest.fixture
def quiet_arena():
    """An arena with automatic collection on, but thresholds it never reaches alone."""
    a = Arena("gc-quiet")
    a.set_threshold(10**9, 10**9, 10**9)
    yield a
    a.disable()
    testing.validate(a)
    a.collect()


@pytest.mark.parametrize("kind", ["native", "arena"])
def test_gc_collect_frees_a_cycle_through_a_list_every_time(kind, quiet_arena):
    """A cycle through a native list, dropped after a gc.collect() made since the
    arena's last allocation, is freed by the next gc.collect(), as a native one is."""
    make = (lambda: native_class("X")()) if kind == "native" else node_class(quiet_arena, "X")
    for _ in range(3):
        a = make()
        b = make()
        a.a = [b]
        b.b = a
        wa, wb = weakref.ref(a), weakref.ref(b)
        gc.collect()
        assert wa() is a
        del a, b
        gc.collect()
        assert wa() is None and wb() is None
        assert live(quiet_arena) == 0


def test_automatic_cpython_collections_add_no_full_arena_collection(quiet_arena):
    """CPython's automatic full collections leave full arena collections to the arena's
    own policy; only gc.collect() asks for one."""
    X = node_class(quiet_arena, "X")
    keep = [X() for _ in range(100)]
    saved = gc.get_threshold()
    cpython_full = gc.get_stats()[2]["collections"]
    arena_full = quiet_arena.get_stats()[2]["collections"]
    gc.set_threshold(100, 1, 1)
    try:
        junk = []
        for i in range(200_000):                      # CPython collects by itself
            junk.append([i])
            if i % 1000 == 0:
                junk = []
    finally:
        gc.set_threshold(*saved)
    assert gc.get_stats()[2]["collections"] > cpython_full
    assert quiet_arena.get_stats()[2]["collections"] == arena_full
    # The arena allocated since its last collection: it collected its young ones.
    assert quiet_arena.get_stats()[0]["collections"] >= 1
    gc.collect()
    assert quiet_arena.get_stats()[2]["collections"] == arena_full + 1
    del keep


# ===========================================================================
# 8. Fault injection: the collector's work space

def _garbage_with_containers(N, parts=3, kids=200):
    """Cyclic garbage through lists, dicts and native instances, with a finalizer and
    a weakref callback on the way; returns (weakrefs to the heads, number of arena
    objects, log of finalizers and callbacks)."""
    log = []

    class Fin(Nat):
        def __del__(self):
            log.append("del")

    roots = []
    for _ in range(parts):
        head = N()
        head.a = [N(head, {i: N(head) for i in range(4)}) for _ in range(kids)]
        nat = Fin()
        nat.head = head
        head.b = nat
        head.c = {"d": {"e": [head]}}
        roots.append(weakref.ref(head, lambda w: log.append("callback")))
    return roots, parts * (1 + kids * 5), log


def test_collect_without_work_space_collects_nothing(A, N, injector):
    wrs, n, log = _garbage_with_containers(N)
    stats = A.get_stats()
    injector(1)
    with pytest.raises(MemoryError):
        A.collect()
    injector(0)
    assert all(w() is not None for w in wrs)          # still alive, weakrefs not cleared
    assert log == []                                  # no finalizer, no callback ran
    assert live(A) == n
    assert A.get_stats() == stats
    testing.validate(A)
    assert A.collect() == n                           # works once memory is back
    assert all(w() is None for w in wrs) and live(A) == 0
    assert sorted(log) == ["callback"] * 3 + ["del"] * 3


def test_failed_collection_leaves_no_marks(A, N, injector):
    keep = N()
    keep.a = [keep, {"k": keep}]
    injector(1)
    with pytest.raises(MemoryError):
        A.collect(0)
    injector(0)
    assert A.generation_of(keep) == 0
    assert A.collect(0) == 0 and A.generation_of(keep) == 1
    assert keep.a[0] is keep and keep.a[1]["k"] is keep


# A collection of that garbage makes some 45 requests for work space: every one fails
# once, and a few past the last one let the collection succeed.
@pytest.mark.parametrize("nth", range(1, 51))
def test_work_space_failure_at_every_point(A, N, injector, nth):
    wrs, n, log = _garbage_with_containers(N)
    keep = N()
    keep.a = [keep, {"k": keep}]
    injector(nth)
    try:
        found = A.collect()
    except MemoryError:
        found = None
    injector(0)
    testing.validate(A)
    assert keep.a[0] is keep and keep.a[1]["k"] is keep
    if found is None:
        # Nothing collected: no weakref cleared, no finalizer or callback run.
        assert all(w() is not None for w in wrs)
        assert log == []
        assert live(A) == n + 1
        assert A.collect() == n
    else:
        assert found == n
        assert live(A) == 1
    assert all(w() is None for w in wrs)
    assert sorted(log) == ["callback"] * 3 + ["del"] * 3
    assert A.collect() == 0 and live(A) == 1
    testing.validate(A)


def test_automatic_collection_without_work_space_is_skipped(A, N, injector):
    A.set_threshold(10)
    A.enable()
    objs = [N() for _ in range(10)]
    injector(1)
    objs.append(N())                                  # would collect; cannot; allocates
    injector(0)
    A.disable()
    assert len(objs) == 11 and all(s["collections"] == 0 for s in A.get_stats())
    testing.validate(A)
