#!/usr/bin/env python3
"""Deterministic random workload for objarena (used by .ci/run's valgrind stage).

A seeded sequence of steps creates, mutates, drops and re-links SlotObj objects
of several sizes (from a bare header to a large object past the small-size
limit) in two arenas, one of them with a max_bytes limit, and now and then
copies and pickles small graphs, assigns __class__ between classes of the same
layout, frees a long chain, trims, and makes the arena core's next OS
allocation fail.  Typed fields take part: a class with an object field and a
field of every type (f64 ... boolean), a subclass adding one, all-typed classes
(untracked; one of them past the small-size limit, an untracked large object)
and twins of the same typed layout.  Their objects are created, linked,
dropped, copied, pickled and collected like the others; typed writes take
good and bad values of every kind (wrong type, out of range, __index__
objects, deletion), checked against a model of the conversions: a write that
raises leaves the field unchanged.  Every `validate_every` steps it runs the arena's invariant
validator and checks that each arena's live-object count is exactly the number
of arena objects reachable from the workload's roots.  At the end it drops
everything and checks that both arenas are empty.

With cycles (the default), any object may link to any other, across the two
arenas too, and the arenas' collectors run on their own (automatic collection
on allocation) and now and then by hand, a random generation; every check
collects both arenas first, so the counts must match again.  With --no-cycles,
links only go from a newer object to an older one: the graph has no cycles and
plain reference counting must free everything.

Usage:  python tools/stress.py [--steps N] [--seed S] [--validate-every K] [--no-cycles]
Import: stress.run(steps=..., seed=..., cycles=...) returns a dict of counters.
"""
import argparse
import copy
import gc
import math
import operator
import pickle
import random
import struct
import sys
import time
import weakref

import objarena
from objarena import (Arena, SlotObj, boolean, f32, f64, i8, i16, i32, i64, u8, u16, u32,
                      u64)

try:
    from objarena import _testing
except ImportError:  # pragma: no cover - the test-only module is expected
    _testing = None

# Field counts: 0 fields is a bare 16-byte header; 130 fields is past the
# arena's small-object limit (1024 bytes), so it takes the large-object path.
FIELD_COUNTS = (0, 1, 2, 3, 5, 8, 13, 30, 130)
LIMIT_B = 16 << 10   # max_bytes of arena "b": small, so that it fills up
CHAIN_MAX = 5000
LARGEST_OBJECT = 16 + 8 * (max(FIELD_COUNTS) + 2)   # bytes, with some slack
WIDE_TYPED = 130     # i64 fields of an all-typed class: past the small-object limit too

# The typed fields of the mixed class, one of every type, with their ranges.
TYPED = (("a_f64", f64), ("a_f32", f32), ("a_i64", i64), ("a_i32", i32), ("a_i16", i16),
         ("a_i8", i8), ("a_u64", u64), ("a_u32", u32), ("a_u16", u16), ("a_u8", u8),
         ("a_bool", boolean))
INT_RANGE = {"i64": (-2**63, 2**63 - 1), "i32": (-2**31, 2**31 - 1), "i16": (-2**15, 2**15 - 1),
             "i8": (-128, 127), "u64": (0, 2**64 - 1), "u32": (0, 2**32 - 1),
             "u16": (0, 2**16 - 1), "u8": (0, 255)}


class Index:
    """An object with __index__ (and no __float__): integer fields take it, and so do
    float fields (PyFloat_AsDouble falls back to __index__)."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


def typed_model(kind, v):
    """What a typed field of marker name `kind` stores for `v`: ("ok", value read
    back) or ("error", exception type), as docs/api.md states the conversions."""
    if kind in ("f64", "f32"):
        if isinstance(v, (str, bytes)) or v is None:
            return "error", TypeError
        try:
            d = float(v)            # int, float, __index__: as PyFloat_AsDouble
        except OverflowError:
            return "error", OverflowError
        if kind == "f64":
            return "ok", d
        try:
            return "ok", struct.unpack("<f", struct.pack("<f", d))[0]
        except OverflowError:
            return "error", OverflowError
    if kind == "boolean":
        return ("ok", v) if v is True or v is False else ("error", TypeError)
    try:
        n = operator.index(v)
    except TypeError:
        return "error", TypeError
    lo, hi = INT_RANGE[kind]
    return ("ok", n) if lo <= n <= hi else ("error", OverflowError)


def same_number(x, y):
    """Equal, with the same type, nan equal to nan and 0.0 apart from -0.0."""
    return type(x) is type(y) and repr(x) == repr(y)


def typed_class(name, bases, fields, arena=None, defaults=True):
    """A SlotObj class declared by annotations: fields is ((name, marker or object), ...)."""
    ns = {"__annotations__": dict(fields)}
    if defaults:
        for n, marker in fields:
            ns[n] = None if marker is object else marker.python_type(0)
    kw = {} if arena is None else {"arena": arena}
    return type(SlotObj)(name, bases, ns, **kw)


def make_typed_classes(arena, tag):
    """The typed classes of `arena`: mixed (an object field, then one field of every
    type), a subclass adding a typed field, two all-typed classes (untracked: one
    small, one large), and twins of the same typed layout."""
    mixed = typed_class(f"R{tag}", (SlotObj,), (("name", object),) + TYPED, arena)
    sub = typed_class(f"RSub{tag}", (mixed,), (("extra", u16), ("more", object)))
    small = typed_class(f"T{tag}", (SlotObj,), (("x", f64), ("n", i32), ("ok", boolean)),
                        arena)
    wide = typed_class(f"Wide{tag}", (SlotObj,),
                       tuple((f"w{i}", i64) for i in range(WIDE_TYPED)), arena)
    twin_fields = (("link", object), ("x", f64), ("n", i16))
    twins = (typed_class(f"TTA{tag}", (SlotObj,), twin_fields, arena),
             typed_class(f"TTB{tag}", (SlotObj,), twin_fields, arena))
    return [mixed, sub, small, wide] + list(twins), wide, twins


def _fields(n, prefix="f"):
    return tuple(f"{prefix}{i}" for i in range(n))


def make_classes(arena, tag):
    """Classes of several sizes in `arena`, a subclass that inherits fields,
    a weakref-enabled class, and two twin classes of identical layout (for
    __class__ assignment)."""
    classes = []
    for n in FIELD_COUNTS:
        classes.append(type(SlotObj)(f"S{tag}{n}", (SlotObj,),
                                     {"__slots__": _fields(n)}, arena=arena))
    base = classes[FIELD_COUNTS.index(3)]
    classes.append(type(base)(f"Sub{tag}", (base,), {"__slots__": ("g0", "g1")}))
    weak = type(SlotObj)(f"W{tag}", (SlotObj,),
                         {"__slots__": _fields(4) + ("__weakref__",)}, arena=arena)
    classes.append(weak)
    twin_a = type(SlotObj)(f"TA{tag}", (SlotObj,), {"__slots__": _fields(2, "t")},
                           arena=arena)
    twin_b = type(SlotObj)(f"TB{tag}", (SlotObj,), {"__slots__": _fields(2, "t")},
                           arena=arena)
    classes += [twin_a, twin_b]
    return classes, weak, (twin_a, twin_b)


def typed_fields(cls):
    """{name: marker name} of cls's typed fields (TypedMember descriptors)."""
    out = {}
    for klass in cls.__mro__:
        for n, d in vars(klass).items():
            if type(d).__name__ == "TypedMember" and n not in out:
                out[n] = d.field_type.name
    return out


def all_fields(cls):
    if any(type(d).__name__ == "TypedMember" for k in cls.__mro__ for d in vars(k).values()):
        return list(cls.__match_args__)
    names = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        names.extend(s for s in slots if s != "__weakref__")
    return names


class Workload:
    def __init__(self, seed, validate_every=500, cycles=True):
        self.rng = random.Random(seed)
        self.validate_every = validate_every
        self.cycles = cycles
        self.arenas = [Arena(name="stress-a"), Arena(name="stress-b", max_bytes=LIMIT_B)]
        self.kinds = []
        self.weak_classes = set()
        self.twins = []
        self.typed_twins = []
        self.wide = []
        for arena, tag in zip(self.arenas, "ab"):
            classes, weak, twins = make_classes(arena, tag)
            typed, wide, typed_twins = make_typed_classes(arena, tag)
            self.kinds.append(classes + typed)
            self.weak_classes.add(weak)
            self.twins.append(twins)
            self.typed_twins.append(typed_twins)
            self.wide.append(wide)
        self.typed = {cls: typed_fields(cls) for classes in self.kinds for cls in classes}
        # Make the classes importable by name from this module, so that
        # pickle (which stores classes by reference) can round-trip them.
        self.arena_of = {}
        for arena, classes in zip(self.arenas, self.kinds):
            for cls in classes:
                self.arena_of[cls] = arena
                cls.__module__ = __name__
                globals()[cls.__name__] = cls
        self.live = []          # the roots, oldest first
        self.weakrefs = []      # weak references to objects of the weak classes
        self.counts = dict(steps=0, created=0, dropped=0, mutated=0, deleted=0,
                           relinked=0, copied=0, pickled=0, class_swaps=0, chains=0,
                           limit_errors=0, injected=0, injected_errors=0, validations=0,
                           trims=0, collections=0, too_deep=0, typed_writes=0,
                           typed_errors=0)

    # -- helpers -----------------------------------------------------------
    def value(self, older_than=None):
        """A random field value: a plain object, or a link to a live root;
        without cycles, only to a root older than root number `older_than`
        (all of them when None), so that no cycle can form."""
        r = self.rng.random()
        if r < 0.25:
            return self.rng.randrange(-1000, 1 << 40)
        if r < 0.35:
            return "s" * self.rng.randrange(0, 40)
        if r < 0.40:
            return None
        if r < 0.45:
            return (self.rng.random(), b"x" * self.rng.randrange(0, 8))
        if self.live:
            limit = len(self.live) if older_than is None or self.cycles else older_than
            if limit > 0:
                i = self.rng.randrange(limit)
                return self.live[i]
        return 0

    def typed_value(self, kind, good):
        """A value for a typed field of marker name `kind`: one it takes (good), or
        any of the kinds of value a typed field may be given, most of them bad."""
        rng = self.rng
        if good:
            if kind == "boolean":
                return rng.random() < 0.5
            if kind in ("f64", "f32"):
                return rng.choice((rng.uniform(-1e6, 1e6), rng.randrange(-10**6, 10**6),
                                   -0.0, math.inf, 1e-40))
            lo, hi = INT_RANGE[kind]
            return rng.choice((lo, hi, 0, rng.randrange(lo, hi + 1)))
        return rng.choice((
            "1", None, b"x", 1.5, -2.5, math.nan, math.inf, 1e300, 3.5e38, 1e39,
            10**400, 2**64, 2**63, -2**63 - 1, -1, 0, 1, 256, 70000, -129, True, False,
            Index(rng.randrange(-300, 300)), Index(2**70), 2**31, -2**31 - 1,
        ))

    def new_object(self):
        arena_i = 0 if self.rng.random() < 0.7 else 1
        cls = self.rng.choice(self.kinds[arena_i])
        names = all_fields(cls)
        typed = self.typed[cls]
        n_init = self.rng.randrange(0, len(names) + 1)
        # Values link only to objects that exist now (older than the new one).
        values = [self.typed_value(typed[n], True) if n in typed else self.value()
                  for n in names[:n_init]]
        if self.rng.random() < 0.5:
            obj = cls(*values)
        else:
            obj = cls(**dict(zip(names, values)))
        self.live.append(obj)
        if cls in self.weak_classes and self.rng.random() < 0.5:
            self.weakrefs.append(weakref.ref(obj))
        self.counts["created"] += 1
        return obj

    def pick(self):
        i = self.rng.randrange(len(self.live))
        return i, self.live[i]

    # -- operations --------------------------------------------------------
    def op_create(self):
        self.new_object()

    def op_drop(self):
        i, _ = self.pick()
        del self.live[i]        # keeps the roots ordered by age
        self.counts["dropped"] += 1

    def drop_some(self, arena, fraction):
        keep = []
        for o in self.live:
            if self.arena_of[type(o)] is arena and self.rng.random() < fraction:
                self.counts["dropped"] += 1
                continue
            keep.append(o)
        self.live = keep

    def op_mutate(self):
        i, obj = self.pick()
        typed = self.typed[type(obj)]
        names = [n for n in all_fields(type(obj)) if n not in typed]
        if not names:
            return
        name = self.rng.choice(names)
        if self.rng.random() < 0.2:
            try:
                delattr(obj, name)
                self.counts["deleted"] += 1
            except AttributeError:
                pass            # was unset: native behaviour
            return
        v = self.value(older_than=i)
        setattr(obj, name, v)
        key = "relinked" if isinstance(v, SlotObj) else "mutated"
        self.counts[key] += 1

    def op_read(self):
        _, obj = self.pick()
        linked = False
        for name in all_fields(type(obj)):
            try:
                linked |= isinstance(getattr(obj, name), SlotObj)
            except AttributeError:
                pass
        # repr prints linked objects in full: on a DAG with shared nodes that
        # grows exponentially, so only objects without links are printed.
        if not linked:
            repr(obj)
        sys.getsizeof(obj)
        objarena.footprint(obj)

    def check_typed_copy(self, c, obj):
        for n in self.typed[type(obj)]:
            assert same_number(getattr(c, n), getattr(obj, n)), (n, c, obj)

    def op_typed_write(self):
        """Write a typed field of a live object (or of a new one) with a good or a
        bad value, or delete it; compare with the model."""
        for _ in range(4):
            _, obj = self.pick()
            if self.typed[type(obj)]:
                break
        else:
            arena_i = self.rng.randrange(2)
            obj = self.rng.choice([c for c in self.kinds[arena_i] if self.typed[c]])()
            self.live.append(obj)
            self.counts["created"] += 1
        typed = self.typed[type(obj)]
        name = self.rng.choice(sorted(typed))
        kind = typed[name]
        before = getattr(obj, name)
        if self.rng.random() < 0.05:
            try:
                delattr(obj, name)
            except TypeError:
                pass
            else:
                raise AssertionError(f"del of typed field {name} was accepted")
            assert same_number(getattr(obj, name), before)
            self.counts["typed_errors"] += 1
            return
        v = self.typed_value(kind, self.rng.random() < 0.4)
        outcome, expected = typed_model(kind, v)
        try:
            setattr(obj, name, v)
        except (TypeError, OverflowError) as exc:
            if outcome != "error" or type(exc) is not expected:
                raise AssertionError(f"{kind} field {name} = {v!r} raised {exc!r}; "
                                     f"the model says {outcome} {expected!r}") from exc
            assert same_number(getattr(obj, name), before), "a failed write changed it"
            self.counts["typed_errors"] += 1
            return
        if outcome != "ok" or not same_number(getattr(obj, name), expected):
            raise AssertionError(f"{kind} field {name} = {v!r} reads "
                                 f"{getattr(obj, name)!r}; the model says {outcome} "
                                 f"{expected!r}")
        self.counts["typed_writes"] += 1

    def op_copy(self):
        _, obj = self.pick()
        try:
            c = copy.copy(obj) if self.rng.random() < 0.5 else copy.deepcopy(obj)
        except RecursionError:
            # A deep graph: native objects fail the same way; what was built
            # is freed, which the next check verifies.
            self.counts["too_deep"] += 1
            return
        assert type(c) is type(obj)
        self.check_typed_copy(c, obj)
        self.counts["copied"] += 1

    def op_pickle(self):
        _, obj = self.pick()
        proto = self.rng.randrange(0, pickle.HIGHEST_PROTOCOL + 1)
        try:
            c = pickle.loads(pickle.dumps(obj, protocol=proto))
        except RecursionError:
            self.counts["too_deep"] += 1
            return
        assert type(c) is type(obj)
        assert all_fields(type(c)) == all_fields(type(obj))
        self.check_typed_copy(c, obj)
        self.counts["pickled"] += 1

    def op_class_swap(self):
        arena_i = self.rng.randrange(2)
        if self.rng.random() < 0.5:
            self.typed_class_swap(arena_i)
            return
        ta, tb = self.twins[arena_i]
        obj = ta(self.value(), self.value())
        obj.__class__ = tb
        assert type(obj) is tb
        try:
            obj.__class__ = self.kinds[1 - arena_i][0]   # other arena: refused
        except TypeError:
            pass
        else:
            raise AssertionError("__class__ assignment across arenas was accepted")
        assert type(obj) is tb
        self.counts["class_swaps"] += 1

    def typed_class_swap(self, arena_i):
        """Between twins of one typed layout, and back; refused towards a class of
        another layout (object fields of the same count, no typed field)."""
        ta, tb = self.typed_twins[arena_i]
        x = self.typed_value("f64", True)
        n = self.typed_value("i16", True)
        obj = ta(self.value(), x, n)
        self.live.append(obj)
        self.counts["created"] += 1
        obj.__class__ = tb
        assert type(obj) is tb and same_number(obj.x, float(x)) and obj.n == n
        other = self.kinds[arena_i][FIELD_COUNTS.index(3)]     # three object fields
        try:
            obj.__class__ = other
        except TypeError:
            pass
        else:
            raise AssertionError("__class__ assignment to another layout was accepted")
        if self.rng.random() < 0.5:
            obj.__class__ = ta
        assert same_number(obj.x, float(x)) and obj.n == n
        self.counts["class_swaps"] += 1

    def op_chain(self):
        cls = self.kinds[0][FIELD_COUNTS.index(1)]
        head = None
        for _ in range(self.rng.randrange(100, CHAIN_MAX)):
            head = cls(head)
        del head                # frees the whole chain from its head
        self.counts["chains"] += 1

    def op_collect(self):
        if not self.cycles:
            return
        self.rng.choice(self.arenas).collect(self.rng.randrange(3))
        self.counts["collections"] += 1

    def op_trim(self):
        for a in self.arenas:
            a.trim()
        self.counts["trims"] += 1

    def op_inject(self):
        if _testing is None or not hasattr(_testing, "fail_os_alloc"):
            return
        made = []
        _testing.fail_os_alloc(self.rng.randrange(1, 4))
        try:
            # A large-object class, tracked or untracked (all typed).
            big = self.rng.choice((self.kinds[0][FIELD_COUNTS.index(130)], self.wide[0]))
            for _ in range(8):
                made.append(big())
        except MemoryError:
            self.counts["injected_errors"] += 1
        finally:
            _testing.fail_os_alloc(0)
        self.counts["injected"] += 1
        del made
        self.check()

    # -- checks ------------------------------------------------------------
    def reachable_counts(self):
        """Arena objects reachable from the roots, per arena."""
        seen = set()
        per_arena = [0, 0]
        stack = list(self.live)
        while stack:
            o = stack.pop()
            if isinstance(o, tuple):
                stack.extend(o)
                continue
            if not isinstance(o, SlotObj) or id(o) in seen:
                continue
            seen.add(id(o))
            a = self.arena_of[type(o)]
            per_arena[self.arenas.index(a)] += 1
            for name in all_fields(type(o)):
                try:
                    stack.append(getattr(o, name))
                except AttributeError:
                    pass
        return per_arena

    def collect_all(self):
        gc.collect()
        if self.cycles:
            # A cycle through both arenas may need both collections.
            for a in self.arenas + self.arenas:
                a.collect()
            gc.collect()

    def check(self):
        self.collect_all()
        if _testing is not None:
            for a in self.arenas:
                _testing.validate(a)
        expected = self.reachable_counts()
        for a, n in zip(self.arenas, expected):
            got = a.stats()["objects"]
            if got != n:
                raise AssertionError(
                    f"arena {a!r}: stats() counts {got} objects, {n} are reachable")
        b = self.arenas[1].stats()
        if b["bytes_in_use"] > LIMIT_B:
            raise AssertionError(f"arena b is past max_bytes: {b}")
        for w in self.weakrefs:
            o = w()
            if o is not None:
                assert type(o) in self.weak_classes
        self.weakrefs = [w for w in self.weakrefs if w() is not None]
        self.counts["validations"] += 1

    # -- driver ------------------------------------------------------------
    OPS = (("create", 30), ("drop", 14), ("mutate", 25), ("read", 10), ("copy", 4),
           ("pickle", 2), ("class_swap", 2), ("chain", 0.3), ("trim", 0.5),
           ("inject", 0.5), ("collect", 1), ("typed_write", 10))

    def run(self, steps):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for step in range(steps):
            op = "create" if len(self.live) < 8 else \
                self.rng.choices(names, weights)[0]
            try:
                getattr(self, "op_" + op)()
            except MemoryError as exc:
                # Only arena "b" has a limit (injected failures are caught in
                # op_inject): the error must be its own, then free some of it.
                # (What an operation had built before the error is freed by
                # then, so bytes_in_use may be well under the limit again.)
                used = self.arenas[1].stats()["bytes_in_use"]
                if "stress-b" not in str(exc) and used + 2 * LARGEST_OBJECT < LIMIT_B:
                    raise
                self.counts["limit_errors"] += 1
                self.drop_some(arena=self.arenas[1], fraction=0.5)
            self.counts["steps"] += 1
            if self.validate_every and (step + 1) % self.validate_every == 0:
                self.check()
        self.check()
        # Drop everything: once collected, both arenas must be empty.
        self.live.clear()
        self.collect_all()
        for a in self.arenas:
            objects = a.stats()["objects"]
            if objects:
                raise AssertionError(f"{a!r} holds {objects} objects after the "
                                     f"workload dropped every reference")
            if _testing is not None:
                _testing.validate(a)
            a.trim()
        return dict(self.counts)


def run(steps=2000, seed=0, validate_every=500, cycles=True):
    """Run the workload; raise AssertionError on any inconsistency."""
    return Workload(seed, validate_every, cycles).run(steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000, help="number of steps (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--validate-every", type=int, default=500,
                   help="run the validators every K steps (default 500; 0: only at the end)")
    p.add_argument("--no-cycles", dest="cycles", action="store_false",
                   help="link only new objects to older ones: no cycles, no collections")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    counts = run(args.steps, args.seed, args.validate_every, args.cycles)
    dt = time.perf_counter() - t0
    print(f"stress: seed={args.seed} cycles={args.cycles} "
          + " ".join(f"{k}={v}" for k, v in counts.items())
          + f" time={dt:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
