"""Fault injection: every public path that makes the arena core ask the OS (or
malloc, for its own tables) for memory, with the n-th request refused.

``objarena._testing.fail_os_alloc(n)`` makes the n-th next request of the core
fail: chunk mappings and their descriptors, large-object mappings, the
collector's work space and the core's other tables.  Each test sweeps n over
1, 2, ... and stops at the first n whose run made fewer than n requests (the
injector never fired: that run is the normal, successful one).  For every n:

  - the operation either succeeds or raises MemoryError (nothing else, no crash);
  - ``_testing.validate(arena)`` passes;
  - ``stats()["objects"]`` is exactly the number of live objects the test holds;
  - once ``fail_os_alloc(0)`` switched the injector off, the arena works normally
    (growth, large objects, copies, pickling, a collection).

Every test uses fresh Arenas (one per n) and switches the injector off
whatever happens (the autouse fixture below).
"""
import copy
import gc
import pickle
import sys
import weakref

import pytest

import objarena
import objarena._testing as testing
from objarena import Arena, ArenaType, Obj, SlotObj

MAX_SWEEP = 300          # a safety net: every sweep below ends far earlier
SMALL_PER_CHUNK = 31_600  # a chunk (1 MiB) holds 31,552 objects of 32 bytes
MID_PER_CHUNK = 11_700    # ... and 11,648 of 88 bytes (9 fields)
NODE_PER_CHUNK = 25_500   # ... and 25,408 of 40 bytes (3 slots)
POINT_PER_CHUNK = 21_500  # ... and 20,917 Obj of 48 bytes (3 inline values)
BIG_FIELDS = 200          # 16 + 8 * 200 bytes: past the small-object limit
OOM_OS = "the operating system refused memory"
OOM_GC = "no memory for the collector's work space; nothing was collected"


@pytest.fixture(autouse=True)
def _injector_off():
    testing.fail_os_alloc(0)
    try:
        yield
    finally:
        testing.fail_os_alloc(0)
        for name in [n for n in globals() if n.startswith("Fault")]:
            del globals()[name]


# ---------------------------------------------------------------------------
# Helpers

class Classes:
    """The classes of one fresh arena, registered in this module's globals
    under their qualname so that pickle finds them."""

    def __init__(self, arena):
        self.arena = arena
        self.Small = self._make("FaultSmall", ("a", "b"))
        self.Mid = self._make("FaultMid", tuple(f"m{i}" for i in range(9)))
        self.Big = self._make("FaultBig", tuple(f"f{i}" for i in range(BIG_FIELDS)))
        self.Node = self._make("FaultNode", ("left", "right", "__weakref__"))

        def __init__(self, a, b=None):
            super(user, self).__init__(a, b=b)   # reaches the generated __init__

        user = self._make("FaultUser", ("a", "b"), __init__=__init__)
        self.User = user
        self.Point = self._make("FaultPoint", (), base=Obj)   # dynamic attributes

    def _make(self, name, slots, base=SlotObj, **ns):
        cls = ArenaType(name, (base,),
                        {"__slots__": slots, "__module__": __name__,
                         "__qualname__": name, **ns},
                        arena=self.arena)
        globals()[name] = cls
        return cls


def fresh(name, gc_enabled=False):
    """A fresh Arena with its classes.  Automatic collection is off unless
    asked for, so that the requests swept are those of the path under test."""
    a = Arena(name=name)
    if not gc_enabled:
        a.disable()
    return Classes(a)


def live_objects(*roots):
    """The arena objects reachable from roots (through fields, lists, tuples
    and dicts), each counted once."""
    seen = {}
    stack = list(roots)
    while stack:
        o = stack.pop()
        if isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif objarena.arena_of(o) is not None and id(o) not in seen:
            seen[id(o)] = o
            for f in type(o).__match_args__:
                v = getattr(o, f, None)
                if v is not None:
                    stack.append(v)
    return len(seen)


def assert_consistent(a, expected):
    """The validator passes and the counters agree with `expected` objects."""
    testing.validate(a)
    st = a.stats()
    assert st["objects"] == expected
    assert sum(c["objects"] for c in st["size_classes"]) + st["large_objects"] == expected
    assert len(a.get_objects()) + a.get_freeze_count() == expected
    return st


def exercise(k):
    """After the injector is off: the arena grows, copies, pickles and
    collects normally, and gives everything back."""
    a = k.arena
    before = a.stats()["objects"]
    mids = [k.Mid(i, -i) for i in range(MID_PER_CHUNK)]   # a chunk's worth
    bigs = [k.Big(f0=i) for i in range(3)]
    clones = pickle.loads(pickle.dumps(mids[:50])) + [copy.deepcopy(bigs[0])]
    assert [c.m0 for c in clones[:50]] == list(range(50)) and clones[-1].f0 == 0
    x = k.Node()
    x.left = k.Node(x)          # a cycle: only the arena's collector frees it
    wr = weakref.ref(x)
    del x
    assert_consistent(a, before + len(mids) + len(bigs) + len(clones) + 2)
    assert a.collect() == 2 and wr() is None
    st = a.stats()
    assert st["objects"] == before + len(mids) + len(bigs) + len(clones)
    assert st["large_objects"] >= 4
    del mids, bigs, clones
    assert_consistent(a, before)


def sweep(setup, action, check, *, must_fail_when_fired=True, some_must_fail=True):
    """Run action with the n-th OS request refused, for n = 1, 2, ...

    setup() -> state (a fresh arena each time; made before the injector is
    armed); action(state) runs with the injector armed; check(state, n,
    outcome) runs after it is off, outcome being action's result or the
    MemoryError.  Returns [(n, failed)]."""
    outcomes = []
    for n in range(1, MAX_SWEEP + 1):
        state = setup()
        made = testing.os_alloc_count()
        testing.fail_os_alloc(n)
        try:
            outcome = action(state)
        except MemoryError as e:
            # Without its traceback, the exception keeps no frame (and no
            # partial result in a frame's locals) alive.
            outcome = e.with_traceback(None)
        finally:
            made = testing.os_alloc_count() - made
            testing.fail_os_alloc(0)
        fired = made >= n
        failed = isinstance(outcome, MemoryError)
        assert fired or not failed, f"n={n}: MemoryError without an injected failure"
        if must_fail_when_fired:
            assert failed or not fired, f"n={n}: a refused request went unreported"
        check(state, n, outcome)
        outcomes.append((n, failed))
        if not fired:
            break
    else:
        pytest.fail(f"the injector still fired after {MAX_SWEEP} requests")
    if some_must_fail:
        assert any(f for _, f in outcomes), "no run failed: the sweep tested nothing"
    assert not outcomes[-1][1]
    return outcomes


# ---------------------------------------------------------------------------
# Arena() itself

def test_arena_creation():
    def action(_):
        return Arena(name="fault-new")

    def check(_, n, outcome):
        if isinstance(outcome, MemoryError):
            return
        assert_consistent(outcome, 0)
        exercise(Classes(outcome))

    sweep(lambda: None, action, check)


# ---------------------------------------------------------------------------
# Object creation, small and large, by every way of calling the class

def creation_sweep(make_one, count):
    """Create `count` objects one at a time with make_one(k, i, value)."""
    value = object()

    def setup():
        k = fresh("fault-create")
        k.held = []
        return k

    def action(k):
        for i in range(count):
            k.held.append(make_one(k, i, value))
        return k.held

    def check(k, n, outcome):
        if isinstance(outcome, MemoryError):
            assert OOM_OS in str(outcome) and "fault-create" in str(outcome)
        else:
            assert len(k.held) == count
        assert_consistent(k.arena, len(k.held))
        # every live object holds `value` once; a failed creation none
        assert sys.getrefcount(value) == base + len(k.held)
        exercise(k)
        k.held.clear()
        assert_consistent(k.arena, 0)

    base = sys.getrefcount(value)
    return sweep(setup, action, check)


def test_small_objects_positional_vectorcall():
    out = creation_sweep(lambda k, i, v: k.Small(i, v), 2 * SMALL_PER_CHUNK)
    assert len(out) == 7     # three chunks: a descriptor and a mapping each


def test_small_objects_keywords_vectorcall():
    creation_sweep(lambda k, i, v: k.Small(b=v, a=i), SMALL_PER_CHUNK)


def test_small_objects_tp_call():
    # type.__call__ goes through tp_call (type_call -> __new__ -> __init__),
    # not through the class's vectorcall.
    creation_sweep(lambda k, i, v: type.__call__(k.Small, i, v), SMALL_PER_CHUNK)


def test_user_init_calling_generated_init():
    # A user __init__: the class call goes through tp_call, and
    # super().__init__ reaches the generated one.
    def make(k, i, v):
        o = k.User(i, v)
        assert (o.a, o.b) == (i, v)
        return o
    creation_sweep(make, SMALL_PER_CHUNK)


def test_new_then_generated_init():
    def make(k, i, v):
        o = k.Small.__new__(k.Small)
        o.__init__(i, b=v)
        return o
    creation_sweep(make, SMALL_PER_CHUNK)


def test_obj_with_dynamic_attributes():
    def make(k, i, v):
        o = k.Point(x=i, y=v)
        o.z = i
        assert (o.x, o.y, o.z) == (i, v, i)
        return o
    creation_sweep(make, POINT_PER_CHUNK)


def test_large_objects():
    out = creation_sweep(lambda k, i, v: k.Big(i, f199=v), 6)
    assert len(out) == 13    # a descriptor and a mapping per large object


def test_mixed_sizes_growth_with_frees():
    """Growth of the core's tables: several size classes and large objects
    interleaved, with objects freed on the way (pages released and reused,
    empty chunks given back and asked for again)."""
    def setup():
        k = fresh("fault-growth")
        k.held = []
        return k

    def action(k):
        shapes = (k.Small, k.Mid, k.Node)
        for i in range(60_000):
            if i % 5000 == 4999:
                k.held.append(k.Big(i))
            else:
                k.held.append(shapes[i % 3]())
            if i % 15_000 == 14_999:
                del k.held[::2]          # free half: pages empty out
        return k.held

    def check(k, n, outcome):
        assert_consistent(k.arena, len(k.held))
        exercise(k)
        k.held.clear()
        st = assert_consistent(k.arena, 0)
        assert st["bytes_in_use"] == 0 and st["large_objects"] == 0

    sweep(setup, action, check)


# ---------------------------------------------------------------------------
# Unpickling, copy.copy, copy.deepcopy

def graph(k, n_small, n_big=3):
    """n_small Node objects in pairs that refer to each other (cycles), each
    also referring to node i // 2 (a shallow tree: pickle and deepcopy
    recurse), with a few large objects hung on node 1."""
    nodes = [k.Node() for _ in range(n_small)]
    for i, node in enumerate(nodes):
        node.left = nodes[i ^ 1]
        if i > 1:
            node.right = nodes[i // 2]
    nodes[1].right = [k.Big(i, f1=nodes[i]) for i in range(n_big)]
    return nodes


def copy_sweep(do_copy, n_small=NODE_PER_CHUNK // 2 + 500):
    def setup():
        k = fresh("fault-copy")
        k.orig = graph(k, n_small)
        k.norig = live_objects(k.orig)
        k.data = pickle.dumps(k.orig, pickle.HIGHEST_PROTOCOL)
        k.result = None
        return k

    def action(k):
        k.result = do_copy(k)
        return len(k.result)

    def check(k, n, outcome):
        a = k.arena
        testing.validate(a)
        if isinstance(outcome, MemoryError):
            assert k.result is None
            del outcome
            # The partial copy is garbage: a cycle only the arena's collector
            # can free (pickle's and copy's memos are gone with the frames).
            gc.collect()
            a.collect()
            assert_consistent(a, k.norig)
        else:
            assert len(k.result) == n_small
            r = k.result
            assert r[5].left is r[4] and r[4].left is r[5] and r[9].right is r[4]
            assert r[1].right[2].f1 is r[2]
            del r
            assert live_objects(k.result) == k.norig
            assert k.result[0] is not k.orig[0]
            assert_consistent(a, 2 * k.norig)
        exercise(k)
        k.result = k.orig = None
        gc.collect()
        a.collect()
        assert_consistent(a, 0)

    return sweep(setup, action, check)


def test_unpickling():
    copy_sweep(lambda k: pickle.loads(k.data))


def test_deepcopy():
    copy_sweep(lambda k: copy.deepcopy(k.orig))


def test_copy_copy():
    def setup():
        k = fresh("fault-copy1")
        k.orig = [k.Small(i, str(i)) for i in range(SMALL_PER_CHUNK)] + [k.Big(7)]
        k.held = []
        return k

    def action(k):
        for o in k.orig:
            k.held.append(copy.copy(o))
        return k.held

    def check(k, n, outcome):
        assert_consistent(k.arena, len(k.orig) + len(k.held))
        if not isinstance(outcome, MemoryError):
            assert len(k.held) == len(k.orig)
            assert k.held[-1].f0 == 7 and k.held[100].b == "100"
        exercise(k)
        k.held.clear()
        k.orig.clear()
        assert_consistent(k.arena, 0)

    sweep(setup, action, check)


# ---------------------------------------------------------------------------
# stats() and get_referrers(): work memory of the core

def test_stats():
    def setup():
        k = fresh("fault-stats")
        k.held = [k.Small(), k.Mid(), k.Big(), k.Node()] * 3
        return k

    def check(k, n, outcome):
        st = assert_consistent(k.arena, 4)
        if not isinstance(outcome, MemoryError):
            assert outcome == st
        exercise(k)

    out = sweep(setup, lambda k: k.arena.stats(), check)
    assert out == [(1, True), (2, False)]


def test_get_referrers():
    def setup():
        k = fresh("fault-referrers")
        k.target = k.Small()
        k.held = [k.Node(k.target) for _ in range(3000)]
        k.held += [k.Node([k.target]), k.Node({"x": (k.target,)})]
        return k

    def check(k, n, outcome):
        assert_consistent(k.arena, 3003)
        if not isinstance(outcome, MemoryError):
            assert len(outcome) == 3000 + 2    # the nodes, the list, the tuple
        exercise(k)

    sweep(setup, lambda k: k.arena.get_referrers(k.target), check)


# ---------------------------------------------------------------------------
# The collector's work space

NLIVE = 300
NGARBAGE = 300   # garbage cycles: two objects each


def collect_setup():
    k = fresh("fault-collect")
    k.dels = dels = []
    k.callbacks = []

    def __del__(self):
        # Not `k.dels`: a class whose method refers to its instances (through
        # k) is a cycle through arena objects that CPython's gc cannot see.
        dels.append(id(self))

    Fin = k._make("FaultFin", ("x", "y", "__weakref__"), __del__=__del__)
    # Live objects, some reached only through foreign containers (the
    # collector pulls those into its set: its hash map grows).
    k.live = []
    for i in range(NLIVE):
        o = Fin()
        o.x = [Fin(), {"k": Fin()}]
        k.live.append(o)
    k.nlive = 3 * NLIVE
    k.roots = [k.live]
    # Garbage: cycles, one through a list; weak references with callbacks.
    k.weak = []
    for i in range(NGARBAGE):
        p = Fin()
        q = Fin(p, [p])
        p.x = q
        k.weak.append(weakref.ref(p, lambda wr: k.callbacks.append(wr)))
        k.weak.append(weakref.ref(q))
    del p, q
    k.ngarbage = 2 * NGARBAGE
    assert_consistent(k.arena, k.nlive + k.ngarbage)
    return k


def live(arena):
    return arena.stats()["objects"]


def garbage_alive(k):
    return sum(w() is not None for w in k.weak)


def check_collect_outcome(k, n, outcome):
    """What must hold after any run: MemoryError means nothing collected;
    after the injector is off, one collection frees exactly the garbage, and
    every finalizer has run exactly once."""
    a = k.arena
    testing.validate(a)
    if isinstance(outcome, MemoryError):
        assert OOM_GC in str(outcome)
        assert garbage_alive(k) == k.ngarbage
        assert k.dels == [] and k.callbacks == []
        assert_consistent(a, k.nlive + k.ngarbage)
    a.collect()
    assert_consistent(a, k.nlive)
    assert garbage_alive(k) == 0
    assert len(k.dels) == len(set(k.dels)) == k.ngarbage
    assert live_objects(k.roots) == k.nlive
    exercise(k)


def test_collect_work_space():
    sweep(collect_setup, lambda k: k.arena.collect(), check_collect_outcome,
          must_fail_when_fired=False)


def test_collect_young_generation_work_space():
    sweep(collect_setup, lambda k: k.arena.collect(0), check_collect_outcome,
          must_fail_when_fired=False)


def test_collect_that_returns_has_collected_everything():
    """No half-collection: once collect() returns, the garbage is gone (it
    does not count as resurrected for want of work space)."""
    def check(k, n, outcome):
        if not isinstance(outcome, MemoryError):
            assert (n, outcome, garbage_alive(k), live(k.arena)) == (
                n, k.ngarbage, 0, k.nlive)
        check_collect_outcome(k, n, outcome)

    sweep(collect_setup, lambda k: k.arena.collect(), check, must_fail_when_fired=False)


def test_collect_never_loses_a_weakref_callback():
    """A weak reference that survives its referent has its callback called,
    by the collection that freed the referent, whatever request failed."""
    def check(k, n, outcome):
        check_collect_outcome(k, n, outcome)
        assert (n, len(k.callbacks)) == (n, NGARBAGE)

    sweep(collect_setup, lambda k: k.arena.collect(), check, must_fail_when_fired=False)


def test_automatic_collection_without_work_space_never_raises():
    """A collection started by an allocation that cannot get its work space
    gives up silently: the allocation succeeds, the garbage waits."""
    def setup():
        k = collect_setup()
        k.arena.set_threshold(50, 10, 10)
        k.arena.enable()
        k.held = []
        k.roots.append(k.held)
        return k

    def action(k):
        # The arena's first chunk has room: no request but the collector's.
        for i in range(150):
            k.held.append(k.Small(i))
        return k.held

    def check(k, n, outcome):
        assert not isinstance(outcome, MemoryError)
        assert len(k.held) == 150
        testing.validate(k.arena)
        k.arena.disable()
        k.nlive += len(k.held)
        check_collect_outcome(k, n, None)

    out = sweep(setup, action, check, must_fail_when_fired=False, some_must_fail=False)
    assert len(out) > 5       # requests of several collections were refused


def test_collect_with_nothing_to_do_under_injection():
    def setup():
        k = fresh("fault-collect-empty")
        k.held = [k.Small(i) for i in range(100)]
        return k

    def check(k, n, outcome):
        assert_consistent(k.arena, 100)
        if not isinstance(outcome, MemoryError):
            assert outcome == 0
        exercise(k)

    sweep(setup, lambda k: k.arena.collect(), check)


# ---------------------------------------------------------------------------
# Misc

def test_max_bytes_and_os_failure_are_told_apart():
    a = Arena(name="fault-limit", max_bytes=64 << 10)
    k = Classes(a)
    a.disable()
    held = []
    with pytest.raises(MemoryError, match="max_bytes"):
        while True:
            held.append(k.Small())
    assert_consistent(a, len(held))
    del held[:100]
    testing.fail_os_alloc(1)
    with pytest.raises(MemoryError, match=OOM_OS):
        k.Big()          # a large object needs a mapping: refused by the "OS"
    testing.fail_os_alloc(0)
    held.append(k.Small())
    assert_consistent(a, len(held))


def test_injector_is_process_wide_and_one_shot():
    k1, k2 = fresh("fault-a"), fresh("fault-b")
    x = k1.Small()
    testing.fail_os_alloc(1)
    with pytest.raises(MemoryError, match="fault-b"):
        k2.Small()       # the other arena's first chunk
    y = k2.Small()       # the failure has fired
    assert_consistent(k1.arena, 1)
    assert_consistent(k2.arena, 1)
    del x, y
