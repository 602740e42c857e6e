"""Typed fields: numbers stored unboxed in SlotObj instances (docs/api.md, "Typed fields").

What a typed field must do, and the reference each test holds it to:

* Reads and writes: the value read back and the exception type of a bad write are those
  of the C conversion of the running CPython, taken from the standard library's own
  users of it: ``array.array`` for f64 ('d') and the integer types (q i h b / Q I H B),
  which converts with PyFloat_AsDouble / operator.index and raises OverflowError outside
  the C type's range; for f32, ``array('f')`` for what is accepted and the rounding, plus
  the rule of ``struct.pack('<f')`` (standard size, PyFloat_Pack4) that a finite value beyond the float range is an
  OverflowError (array would store inf); for boolean, CPython's T_BOOL members: True or
  False, anything else a TypeError.  A failed write leaves the field unchanged.
* The generated __init__ (required typed fields, defaults, messages) and repr: those of
  a dataclass with the same fields, on the running version.
* Everything else (match, pickle, copy, equality, __class__): as for object fields.
* Untracked: a class whose fields are all typed is never seen by the collector.
"""
import array
import copy
import dataclasses
import decimal
import fractions
import gc
import math
import pickle
import struct
import sys
import textwrap
import weakref

import pytest

import objarena
import objarena._testing
from objarena import (Arena, FieldType, Obj, SlotObj, boolean, f32, f64, i8, i16, i32, i64,
                      u8, u16, u32, u64)
from helpers import raised

MARKERS = {"f64": f64, "f32": f32, "i64": i64, "i32": i32, "i16": i16, "i8": i8,
           "u64": u64, "u32": u32, "u16": u16, "u8": u8, "boolean": boolean}
ARRAY_CODE = {"f64": "d", "f32": "f", "i64": "q", "i32": "i", "i16": "h", "i8": "b",
              "u64": "Q", "u32": "I", "u16": "H", "u8": "B"}
SIZES = {"f64": 8, "f32": 4, "i64": 8, "i32": 4, "i16": 2, "i8": 1, "u64": 8, "u32": 4,
         "u16": 2, "u8": 1, "boolean": 1}


def define(*srcs, **names):
    """Run the class statements of `srcs` (each dedented) in one namespace."""
    ns = {"__name__": __name__, "SlotObj": SlotObj, **MARKERS, **names}
    exec("\n".join(textwrap.dedent(src) for src in srcs), ns)
    return ns


class Index:
    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class BadIndex:
    def __index__(self):
        raise ValueError("no index")


class FloatLike:
    def __float__(self):
        return 2.5


FLT_MAX = 3.4028234663852886e38
VALUES = [FLT_MAX * (1 + 2**-25), FLT_MAX * (1 + 2**-24), -FLT_MAX * (1 + 2**-24.5),
          0, 1, -1, 127, 128, -128, -129, 255, 256, -32768, 32767, 32768, 65535, 65536,
          2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -2**63,
          -2**63 - 1, 2**64 - 1, 2**64, 10**400, True, False, 0.0, -0.0, 1.5, 1e300, -1e300,
          3.4028234663852886e38, 3.5e38, 1e-50, float("inf"), float("-inf"), float("nan"),
          Index(5), Index(-1), Index(2**70), BadIndex(), FloatLike(),
          decimal.Decimal("1.25"), fractions.Fraction(1, 4), "1", b"1", None, 1j, [1]]


def reference(name, value):
    """What the C conversion of field type `name` does with `value`: ("ok", stored) or
    ("raise", exception type), from the standard library (see the module docstring)."""
    if name == "boolean":
        return ("ok", value) if type(value) is bool else ("raise", TypeError)
    try:
        stored = array.array(ARRAY_CODE[name], [value])[0]
    except Exception as e:  # noqa: BLE001 -- the type is the answer
        return ("raise", type(e))
    if name == "f32" and math.isinf(stored) and not math.isinf(float(value)):
        with pytest.raises(OverflowError):
            struct.pack("<f", value)
        return ("raise", OverflowError)
    return ("ok", stored)


def outcome(obj, attr, value):
    try:
        setattr(obj, attr, value)
    except Exception as e:  # noqa: BLE001
        return ("raise", type(e))
    return ("ok", getattr(obj, attr))


def same(a, b):
    if a[0] == "ok" == b[0] and isinstance(a[1], float) and math.isnan(a[1]):
        return isinstance(b[1], float) and math.isnan(b[1])
    return a == b and type(a[1]) is type(b[1])


@pytest.mark.parametrize("name", list(MARKERS))
def test_writes_follow_the_c_conversion(name):
    cls = define(f"""
        class R(SlotObj):
            x: {name}
    """)["R"]
    r = cls(True if name == "boolean" else 1)
    for value in VALUES:
        before = r.x
        expected, got = reference(name, value), outcome(r, "x", value)
        assert same(expected, got), (name, value, expected, got)
        if got[0] == "raise":
            assert r.x == before and type(r.x) is type(before), "the field changed"
        else:
            assert type(r.x) is MARKERS[name].python_type
            setattr(r, "x", before)
        # The constructor converts the same way.
        try:
            built = ("ok", cls(value).x)
        except Exception as e:  # noqa: BLE001
            built = ("raise", type(e))
        assert same(expected, built), (name, value, expected, built)


def test_reads_return_python_numbers():
    ns = define("""
        class R(SlotObj):
            a: f64
            b: f32
            c: i64
            d: u64
            e: boolean
    """)
    r = ns["R"](0.1, 0.1, -5, 2**64 - 1, False)
    assert r.a == 0.1 and type(r.a) is float
    assert r.b == struct.unpack("f", struct.pack("f", 0.1))[0]
    assert (r.c, r.d, r.e) == (-5, 2**64 - 1, False) and r.e is False


def test_markers():
    assert [m.name for m in MARKERS.values()] == list(MARKERS)
    assert {m.name: m.size for m in MARKERS.values()} == SIZES
    assert f64.python_type is float and i8.python_type is int and boolean.python_type is bool
    assert repr(f64) == "objarena.f64" and isinstance(u16, FieldType)
    for m in MARKERS.values():
        assert copy.copy(m) is m and copy.deepcopy(m) is m
        assert pickle.loads(pickle.dumps(m)) is m
    assert raised(FieldType)[0] is TypeError


# ---------------------------------------------------------------------------
# Layout and size

READING = """
    class Reading(SlotObj):
        sensor: str
        t: f64
        value: f64 = 0.0
        count: i64 = 0
"""


def test_reading_is_48_bytes():
    arena = Arena()
    Reading = define(READING.replace("(SlotObj)", "(SlotObj, arena=arena)"),
                     arena=arena)["Reading"]
    rs = [Reading("s", float(i)) for i in range(1000)]
    assert sys.getsizeof(rs[0]) == 48 == Reading.__basicsize__
    stats = arena.stats()
    assert [(c["size"], c["objects"]) for c in stats["size_classes"]] == [(48, 1000)]
    assert stats["bytes_in_use"] == 48 * 1000
    assert objarena.footprint(rs[0]) < 50


def test_typed_fields_are_laid_out_by_alignment():
    R = define("""
        class R(SlotObj):
            a: u8
            b: f64
            name: str
            c: i16
            d: f32
            e: boolean
            f: i32
    """)["R"]
    offsets = {n: getattr(R, n).offset for n in ("a", "b", "c", "d", "e", "f")}
    # header 16, the object field at 16, then 8-, 4-, 2-, 1-byte fields
    assert offsets == {"b": 24, "d": 32, "f": 36, "c": 40, "a": 42, "e": 43}
    assert sys.getsizeof(R(1, 2.0, "n", 3, 4.0, True, 5)) == 48
    assert R.__match_args__ == ("a", "b", "name", "c", "d", "e", "f")
    assert repr(R(1, 2.0, "n", 3, 4.0, True, 5)) == (
        "R(a=1, b=2.0, name='n', c=3, d=4.0, e=True, f=5)")


def test_slots_with_annotations_give_slot_types():
    ns = define("""
        class R(SlotObj):
            __slots__ = ("name", "t", "n")
            t: f64
            n: "u8"
    """)
    R = ns["R"]
    assert type(R.t).__name__ == "TypedMember" and R.t.field_type is f64
    assert R.n.field_type is u8
    assert type(R.name).__name__ == "member_descriptor"
    r = R("a", 1, 2)
    assert (r.name, r.t, r.n) == ("a", 1.0, 2) and sys.getsizeof(r) == 40  # 16+8+8+1
    assert R.__slots__ == ("name", "t", "n")


def test_string_annotations_resolve_to_markers():
    ns = define("""
        from __future__ import annotations
        import objarena
        import objarena as oa
        f64_alias = float

        class R(SlotObj):
            a: f64
            b: objarena.u16
            c: oa.boolean
            d: f64_alias
            e: objarena.Arena
    """)
    R = ns["R"]
    assert [getattr(R, n).field_type for n in "abc"] == [f64, u16, boolean]
    R(1.0, 2, True)     # object fields get their descriptors at the class's first use
    assert type(R.d).__name__ == type(R.e).__name__ == "member_descriptor"


def test_typed_fields_need_a_slotobj_class():
    err = raised(define, """
        from objarena import Obj
        class P(Obj):
            __slots__ = ("t",)
            t: f64
    """)
    assert err[0] is TypeError and "SlotObj" in err[1]


# ---------------------------------------------------------------------------
# The generated __init__, defaults, repr: as a dataclass

@dataclasses.dataclass
class Reading:
    sensor: str
    t: float
    value: float = 0.0
    count: int = 0


def dataclass_twin():
    return Reading


@pytest.mark.parametrize("args, kwargs", [
    (("s", 1.5), {}), (("s",), {"t": 2.0}), ((), {"sensor": "s", "t": 1.0, "count": 3}),
    (("s", 1.0, 2.0, 3), {}), (("s", 1.0), {"value": 2.5}),
    (("s",), {}), (("s", 1.0, 2.0, 3, 4), {}),
    (("s", 1.0), {"nope": 1}), (("s", 1.0), {"t": 2.0}),
])
def test_init_is_the_dataclass_init(args, kwargs):
    Reading = define(READING)["Reading"]
    Twin = dataclass_twin()
    got, want = raised(Reading, *args, **kwargs), raised(Twin, *args, **kwargs)
    if want is None:
        assert got is None
        assert repr(Reading(*args, **kwargs)) == repr(Twin(*args, **kwargs))
    else:
        assert got == want


class Float(float):
    pass


@pytest.mark.parametrize("value", [
    0, 7, -1, 2**30 - 1, 2**30, -2**30, -2**30 - 1, 2**62, 2**63 - 1, 2**63, -2**63 - 1,
    True, 1.5, Float(2.5), Index(5), Index(2**64), "7", None,
])
def test_positional_creation_converts_as_a_write(value):
    # A call with positional arguments alone fills typed fields on a path of its own
    # (exact floats and one-digit ints inline): it converts as the descriptor does, and
    # a failed conversion leaves no object behind in the arena.
    arena = Arena(name="positional")
    ns = define(READING.replace("(SlotObj)", "(SlotObj, arena=arena)"), arena=arena)
    Reading = ns["Reading"]
    r = Reading("s", 0.0)
    write = raised(setattr, r, "count", value)
    write_t = raised(setattr, r, "t", value)
    before = arena.stats()["objects"]
    got = raised(Reading, "s", 0.0, 0.0, value)
    assert (got and got[0]) == (write and write[0])
    got_t = raised(Reading, "s", value)
    assert (got_t and got_t[0]) == (write_t and write_t[0])
    assert arena.stats()["objects"] == before
    if got is None:
        assert Reading("s", 0.0, 0.0, value).count == r.count
    if got_t is None:
        assert Reading("s", value).t == r.t


def test_signature_has_the_defaults():
    import inspect
    Reading = define(READING)["Reading"]
    assert str(inspect.signature(Reading)) == "(sensor, t, value=0.0, count=0)"


def test_init_applies_defaults_again():
    Reading = define(READING)["Reading"]
    r = Reading("s", 1.0, 5.0, 7)
    r.__init__("t", 2.0)
    assert (r.sensor, r.t, r.value, r.count) == ("t", 2.0, 0.0, 0)
    assert raised(r.__init__, "u") == raised(dataclass_twin(), "u")


def test_defaults_are_checked_at_the_class_statement():
    assert raised(define, "class R(SlotObj):\n    x: u8 = 256\n")[0] is OverflowError
    assert raised(define, "class R(SlotObj):\n    x: f64 = '1'\n")[0] is TypeError
    assert raised(define, "class R(SlotObj):\n    x: boolean = 1\n")[0] is TypeError
    err = raised(define, "class R(SlotObj):\n    x: f64 = 0.0\n    y: i64\n")
    assert err == (TypeError, "class R: non-default argument 'y' follows default argument")
    err = raised(define, "class R(SlotObj):\n    x: list = []\n")
    assert err[0] is ValueError and "mutable default" in err[1]
    # A default given as an int is kept as the float the field stores.
    R = define("class R(SlotObj):\n    x: f64 = 1\n    y: str = 'a'\n")["R"]
    assert type(R().x) is float and R().y == "a"


def test_object_fields_without_default_stay_optional():
    R = define("""
        class R(SlotObj):
            name: str
            t: f64
    """)["R"]
    r = R(t=1.0)
    assert raised(getattr, r, "name")[0] is AttributeError
    assert repr(r) == "R(t=1.0)"


def test_delete_is_a_type_error():
    r = define(READING)["Reading"]("s", 1.0)
    assert raised(delattr, r, "t") == (
        TypeError, "cannot delete field 't' of 'Reading' objects: a typed field (f64) "
        "always holds a value")
    assert r.t == 1.0
    del r.sensor   # object fields can still be deleted, as natively
    assert raised(getattr, r, "sensor")[0] is AttributeError


def test_descriptor():
    Reading = define(READING)["Reading"]
    d = Reading.__dict__["t"]
    assert Reading.t is d and d.__name__ == "t" and d.__objclass__ is Reading
    assert repr(d) == "<typed member 't' (f64) of 'Reading' objects>"
    other = define("class O(SlotObj):\n    t: f64\n")["O"](1.0)
    assert raised(d.__get__, other)[0] is TypeError
    assert raised(d.__set__, other, 1.0)[0] is TypeError
    assert other.t == 1.0


# ---------------------------------------------------------------------------
# Everything else a field has

def test_match_args_and_match():
    Reading = define(READING)["Reading"]
    r = Reading("s", 1.5, count=2)
    match r:
        case Reading(sensor, t, value, count=c):
            assert (sensor, t, value, c) == ("s", 1.5, 0.0, 2)
        case _:
            pytest.fail("no match")


def test_equality_and_hash_are_identity_as_native():
    Reading = define(READING)["Reading"]
    a, b = Reading("s", 1.0), Reading("s", 1.0)
    assert a != b and a == a and hash(a) == hash(a) and {a, b} == {b, a}


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_and_copy(proto):
    ns = define(READING, """
        class Point(SlotObj):
            x: f32
            y: i8 = -3
            ok: boolean = True
    """)
    # pickle finds classes by module and name: these two stand in for this
    # module's own Reading (the dataclass twin) and Point while the test runs.
    module = sys.modules[__name__]
    saved = {name: module.__dict__.get(name) for name in ("Reading", "Point")}
    module.Reading = ns["Reading"]
    module.Point = ns["Point"]
    ns["Reading"].__qualname__ = "Reading"
    ns["Point"].__qualname__ = "Point"
    try:
        for obj in (ns["Reading"]("s", 1.5, 2.5, 2**40), ns["Point"](0.25, ok=False)):
            for back in (pickle.loads(pickle.dumps(obj, proto)), copy.copy(obj),
                         copy.deepcopy(obj)):
                assert type(back) is type(obj) and back is not obj
                assert repr(back) == repr(obj)
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(module, name)
            else:
                setattr(module, name, value)


def test_class_assignment_needs_the_same_typed_layout():
    ns = define("""
        class A(SlotObj):
            name: str
            t: f64
        class B(SlotObj):
            name: str
            t: f64
        class C(SlotObj):
            name: str
            t: i64
        class D(SlotObj):
            name: str
            u: f64
        class E(SlotObj):
            __slots__ = ("name", "t")
    """)
    a = ns["A"]("x", 1.5)
    a.__class__ = ns["B"]
    assert type(a) is ns["B"] and a.t == 1.5
    for other in "CDE":
        err = raised(setattr, a, "__class__", ns[other])
        assert err[0] is TypeError and "layout differs" in err[1], other
    assert a.t == 1.5


def test_inheritance_adds_typed_fields():
    ns = define(READING, """
        class Tagged(Reading):
            tag: str = ""
            flags: u8 = 0
    """)
    Tagged = ns["Tagged"]
    assert Tagged.__match_args__ == ("sensor", "t", "value", "count", "tag", "flags")
    x = Tagged("s", 1.0, flags=3)
    assert repr(x) == "Tagged(sensor='s', t=1.0, value=0.0, count=0, tag='', flags=3)"
    assert sys.getsizeof(x) == 48 + 8 + 8
    assert raised(Tagged, "s")[0] is TypeError
    err = raised(define, READING, """
        class Bad(Reading):
            extra: f64
    """)
    assert err == (TypeError, "class Bad: non-default argument 'extra' follows default "
                   "argument")


def test_layout_conflict_is_a_type_error():
    err = raised(define, """
        class A(SlotObj):
            x: f64
        class B(SlotObj):
            y: i64
        class C(A, B):
            pass
    """)
    assert err[0] is TypeError and "lay-out conflict" in err[1]


def test_a_redeclared_base_field_is_an_error():
    err = raised(define, READING, """
        class Sub(Reading):
            t: i64
    """)
    assert err[0] is TypeError and "already defined by a base class" in err[1]


# ---------------------------------------------------------------------------
# Untracked: a class whose fields are all typed

def test_all_typed_instances_are_untracked():
    arena = Arena()
    ns = define("""
        class Point(SlotObj, arena=arena):
            x: f64
            y: f64
        class Named(SlotObj, arena=arena):
            name: str
            x: f64
        class WithRef(SlotObj, arena=arena):
            __slots__ = ("x", "__weakref__")
            x: f64
    """, arena=arena)
    count = arena.get_count()
    points = [ns["Point"](i, i) for i in range(2000)]
    assert arena.get_count() == count, "untracked objects are not counted"
    named = ns["Named"]("n", 1.0)
    w = ns["WithRef"](1.0)
    assert not arena.is_tracked(points[0]) and not arena.is_tracked(w)
    assert arena.is_tracked(named)
    assert gc.is_tracked(1.5) is False    # as CPython says of an atomic object
    assert all(type(o) is ns["Named"] for o in arena.get_objects())
    assert arena.stats()["objects"] == 2002
    arena.freeze()
    assert arena.get_freeze_count() == 1
    arena.unfreeze()
    # A tracked object referring to an untracked one: the reference is an edge out.
    holder = ns["Named"](points[0], 2.0)
    del points
    assert arena.collect() == 0 and holder.name.x == 0.0
    # Weak references and finalizers still work.
    hit = []
    r = weakref.ref(w, lambda ref: hit.append(ref))
    del w
    assert r() is None and hit == [r]
    assert arena.stats()["objects"] == 3  # named, holder and the point it holds


def test_all_typed_instances_past_a_small_block_are_untracked():
    """An all-typed instance bigger than the arena's small blocks (1 KiB) is a large
    object of its own: untracked as well, and freed like one."""
    arena = Arena()
    names = [f"x{i}" for i in range(200)]
    Wide = define("class Wide(SlotObj, arena=arena):\n"
                  + "".join(f"    {n}: f64 = {i}.5\n" for i, n in enumerate(names)),
                  arena=arena)["Wide"]
    count = arena.get_count()
    ws = [Wide() for _ in range(50)]
    assert sys.getsizeof(ws[0]) == 16 + 8 * 200
    assert arena.stats()["large_objects"] == 50
    assert arena.get_count() == count, "untracked objects are not counted"
    assert not any(arena.is_tracked(w) for w in ws)
    assert arena.get_objects() == [] and arena.get_referrers(ws[0]) == []
    assert arena.generation_of(ws[0]) == 0
    arena.freeze()
    assert arena.get_freeze_count() == 0 and arena.generation_of(ws[0]) == 0
    arena.unfreeze()
    ws[3].x199 = -1.0
    assert ws[3].x199 == -1.0 and ws[3].x0 == 0.5 and ws[4].x199 == 199.5
    assert arena.collect() == 0
    objarena._testing.validate(arena)
    del ws
    assert arena.stats()["large_objects"] == 0 and arena.stats()["objects"] == 0
    objarena._testing.validate(arena)


def test_untracked_finalizer_and_class_lifetime():
    arena = Arena()
    ran = []
    ns = define("""
        class P(SlotObj, arena=arena):
            x: f64
            def __del__(self):
                ran.append(self.x)
    """, arena=arena, ran=ran)
    p = ns["P"](3.0)
    ref = weakref.ref(ns["P"])
    del p, ns
    assert ran == [3.0]
    gc.collect()
    assert ref() is None
    assert arena.stats()["objects"] == 0


def test_empty_class_stays_tracked():
    E = define("class E(SlotObj):\n    pass\n")["E"]
    assert objarena.is_tracked(E())


def test_a_failing_init_changes_no_field():
    Reading = define(READING)["Reading"]
    r = Reading("s", 1.0, 2.0, 3)
    for args, kwargs in [(("t", 5.0, "x"), {}), (("t", 5.0), {"count": 1.5}),
                         (("t",), {"t": 5.0, "count": 2**64}), (("t", 5.0, 6.0, BadIndex()), {})]:
        assert raised(r.__init__, *args, **kwargs)[0] in (TypeError, OverflowError, ValueError)
        assert repr(r) == "Reading(sensor='s', t=1.0, value=2.0, count=3)"


def test_many_arguments():
    names = [f"x{i}" for i in range(40)]
    R = define("class R(SlotObj):\n" + "".join(f"    {n}: i16 = {i}\n"
                                               for i, n in enumerate(names)))["R"]
    r = R(*range(100, 120), **{n: -i for i, n in enumerate(names) if i >= 20})
    assert [getattr(r, n) for n in names] == list(range(100, 120)) + [-i for i in range(20, 40)]
    assert sys.getsizeof(r) == 16 + 80
    assert raised(R, *range(20), x30=40000)[0] is OverflowError


def _class_with_instances(arena, ran):
    """A class P whose class attributes hold two of its untracked instances, and one
    more instance held by the caller."""
    P = define("""
        class P(SlotObj, arena=arena):
            x: f64
            y: f64 = 0.0
            def __del__(self):
                ran.append(self.x)
        P.origin = P(1.5)
        P.unit = P(1.0, 1.0)
    """, arena=arena, ran=ran)["P"]
    return weakref.ref(P), P(7.0)


def test_class_kept_by_its_own_untracked_instances_is_collected():
    """A class attribute holding an instance (P.origin = P(1.5)) makes a cycle through
    the class that no collection's set contains: the untracked instance is never in
    one.  Full collections start from the arena's untracked classes, as CPython's gc
    finds native classes (always GC types) with their instances."""
    arena = Arena()
    ran = []
    ref, kept = _class_with_instances(arena, ran)
    assert arena.collect() == 0
    assert ref() is not None and ran == []     # `kept` holds the class: all alive
    del kept
    assert ran == [7.0]
    assert arena.collect() == 2
    assert ref() is None
    assert sorted(ran) == [1.0, 1.5, 7.0]
    assert arena.stats()["objects"] == 0


def test_gc_collect_finds_the_class_cycle_too():
    """gc.collect() collects the arenas after a full collection of its own when they
    made objects since their last one: untracked objects count for that."""
    arena = Arena()
    ran = []
    ref, kept = _class_with_instances(arena, ran)
    del kept
    gc.collect()
    assert ref() is None and sorted(ran) == [1.0, 1.5, 7.0]
    assert arena.stats()["objects"] == 0
