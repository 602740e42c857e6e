"""objarena.SlotObj: the contract of docs/api.md, compared with native __slots__.

Tests taking the ``make`` (or ``root``) fixture run twice, once against a
native ``__slots__`` class and once against the SlotObj class, with the same
body: SlotObj must behave exactly like the native class there.  Tests taking
``make_native`` and ``make_slot`` build both and compare what they do (usually
the exception raised, message included).  The other tests are about what only
SlotObj has (sizes, repr, the generated __init__'s signature, ...).
"""
import copy
import dis
import gc
import inspect
import pickle
import subprocess
import sys
import tracemalloc
import types
import weakref

import pytest

import objarena
from objarena import SlotObj

HAVE_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC


class Val:
    """A weak-referenceable value, to see when a field lets go of it."""


def raised(fn, *args):
    """(type, message, AttributeError.name) of what fn(*args) raises, or None."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the point is to compare them
        return type(e), str(e), getattr(e, "name", None)
    return None


# ---------------------------------------------------------------------------
# Layout, GC flags, member descriptors

@pytest.mark.parametrize("fields", [(), ("a",), ("id", "name"), ("a", "b", "c"),
                                    tuple("abcde"), tuple("abcdefghijkl")])
@pytest.mark.parametrize("weak", [False, True])
def test_getsizeof_is_header_plus_8_per_field(make_slot, fields, weak):
    cls = make_slot("R", fields, weakref=weak)
    obj = cls()
    assert sys.getsizeof(obj) == 16 + 8 * len(fields) + 8 * weak
    obj2 = cls(*range(len(fields)))
    assert sys.getsizeof(obj2) == sys.getsizeof(obj)


class User(SlotObj):  # the example of docs/api.md (module level: qualname "User")
    __slots__ = ("id", "name")


def test_getsizeof_api_example():
    assert sys.getsizeof(User(1, "a")) == 32


@pytest.mark.parametrize("nfields", [0, 1, 2, 5])
def test_getsizeof_native_minus_gc_header(make_native, make_slot, nfields):
    fields = tuple(f"f{i}" for i in range(nfields))
    native, slot = make_native("R", fields)(), make_slot("R", fields)()
    # the native object carries a 16-byte GC header; the arena object does not
    assert sys.getsizeof(native) - sys.getsizeof(slot) == 16


def test_getsizeof_subclass_counts_inherited_fields(make_slot):
    A = make_slot("A", ("a", "b"))
    B = make_slot("B", ("c",), base=A, weakref=True)
    C = make_slot("C", ("d", "e"), base=B)
    assert sys.getsizeof(A()) == 32
    assert sys.getsizeof(B()) == 48
    assert sys.getsizeof(C()) == 64


def _shapes(make):
    A = make("A", ("x", "y"))

    class Mixin:
        __slots__ = ()

    return {
        "plain": A,
        "empty": make("E", ()),
        "weakref": make("W", ("x",), weakref=True),
        "subclass": make("S", ("z",), base=A),
        "with __del__": make("D", ("x",), __del__=lambda self: None),
        "mixin": type("M", (Mixin, A), {"__slots__": ()}),
    }


def test_not_gc_tracked_and_no_have_gc_flag(make_native, make_slot):
    natives, slots = _shapes(make_native), _shapes(make_slot)
    assert not SlotObj.__flags__ & HAVE_GC
    for shape, cls in slots.items():
        obj = cls()
        assert not type(obj).__flags__ & HAVE_GC, shape
        assert not gc.is_tracked(obj), shape
        assert not any(o is obj for o in gc.get_objects()), shape
        nat = natives[shape]()
        assert type(nat).__flags__ & HAVE_GC and gc.is_tracked(nat), shape


def test_not_tracked_even_holding_containers(make_slot):
    R = make_slot("R", ("x", "y"))
    r = R([1], {"k": [2]})
    r.x.append(r)
    assert not gc.is_tracked(r)


def test_metaclass():
    assert type(SlotObj) is objarena.ArenaType

    class U(SlotObj):
        __slots__ = ("a",)
    assert type(U) is objarena.ArenaType
    assert isinstance(U, type)


def test_fields_are_member_descriptors(make):
    A = make("A", ("id", "name"), weakref=True)
    B = make("B", ("extra",), base=A)
    for cls, name in [(A, "id"), (A, "name"), (B, "extra")]:
        d = cls.__dict__[name]
        assert type(d) is types.MemberDescriptorType
        assert type(d).__name__ == "member_descriptor"
        assert d.__name__ == name and d.__objclass__ is cls
    assert "id" not in B.__dict__ and B.id is A.__dict__["id"]
    b = B(1, "n", 3)
    assert A.__dict__["id"].__get__(b, B) == 1
    B.__dict__["extra"].__set__(b, 30)
    assert b.extra == 30
    A.__dict__["name"].__delete__(b)
    assert not hasattr(b, "name")
    assert A.__dict__["id"].__get__(None, A) is A.__dict__["id"]


def test_member_descriptor_refuses_foreign_instances(make_native, make_slot):
    # a descriptor must not read or write an instance of an unrelated class,
    # even one with the same layout: same TypeError, same words as native
    ops = [lambda d, o: d.__get__(o, type(o)), lambda d, o: d.__set__(o, 2),
           lambda d, o: d.__delete__(o)]
    results = []
    for make in (make_native, make_slot):
        A, Other = make("A", ("x",)), make("O", ("x",))
        o = Other(1)
        results.append([raised(op, A.__dict__["x"], o) for op in ops]
                       + [raised(op, A.__dict__["x"], object()) for op in ops])
        assert o.x == 1
    assert all(r is not None and r[0] is TypeError for r in results[0])
    assert results[1] == results[0]
    n, s = make_native("A", ("x",)), make_slot("A", ("x",))
    assert raised(n.x.__get__, s(1)) is not None
    assert raised(s.x.__get__, n(1)) is not None


def test_no_instance_dict(make):
    R = make("R", ("a",))
    r = R(1)
    assert "__dict__" not in R.__dict__
    assert not hasattr(r, "__dict__")
    with pytest.raises(TypeError):
        vars(r)
    assert {"a"} <= set(dir(r))


# ---------------------------------------------------------------------------
# Attribute get / set / del

def test_field_get_set_del_cycle(make):
    R = make("R", ("a", "b"))
    r = R()
    for name in ("a", "b"):
        with pytest.raises(AttributeError):
            getattr(r, name)
        assert not hasattr(r, name)
    r.a, r.b = 1, r
    assert r.a == 1 and r.b is r
    r.a = None
    assert r.a is None
    del r.a
    with pytest.raises(AttributeError):
        r.a
    with pytest.raises(AttributeError):
        del r.a
    r.a = "again"
    assert (r.a, r.b) == ("again", r)
    setattr(r, "b", 2)
    delattr(r, "b")
    assert getattr(r, "b", "default") == "default"


ATTRIBUTE_OPS = {
    "get unset": lambda o: o.a,
    "del unset": lambda o: delattr(o, "a"),
    "get undeclared": lambda o: o.undeclared,
    "set undeclared": lambda o: setattr(o, "undeclared", 1),
    "del undeclared": lambda o: delattr(o, "undeclared"),
    "set method": lambda o: setattr(o, "method", 1),
    "del method": lambda o: delattr(o, "method"),
    "get __dict__": lambda o: o.__dict__,
    "set __dict__": lambda o: setattr(o, "__dict__", {}),
    "get __weakref__": lambda o: o.__weakref__,
    "getattr non-str": lambda o: getattr(o, 1),
    "setattr non-str": lambda o: setattr(o, 1, 2),
    "delattr non-str": lambda o: delattr(o, b"a"),
    "set set-only": lambda o: setattr(o, "method", None),
}


@pytest.mark.parametrize("op", ATTRIBUTE_OPS)
def test_attribute_errors_match_native(make_native, make_slot, op):
    fn = ATTRIBUTE_OPS[op]
    ns = {"method": lambda self: 0}
    native, slot = make_native("R", ("a", "b"), **ns)(), make_slot("R", ("a", "b"), **ns)()
    expected = raised(fn, native)
    assert expected is not None
    assert raised(fn, slot) == expected


@pytest.mark.parametrize("op", ["get __weakref__", "set __weakref__", "del __weakref__"])
def test_weakref_attribute_matches_native(make_native, make_slot, op):
    fns = {"get __weakref__": lambda o: o.__weakref__,
           "set __weakref__": lambda o: setattr(o, "__weakref__", 1),
           "del __weakref__": lambda o: delattr(o, "__weakref__")}
    native = make_native("R", ("a",), weakref=True)()
    slot = make_slot("R", ("a",), weakref=True)()
    assert raised(fns[op], slot) == raised(fns[op], native)
    if op == "get __weakref__":
        assert slot.__weakref__ is None
        ref = weakref.ref(slot)
        assert slot.__weakref__ is ref


def test_weakref_descriptor_matches_native(make_native, make_slot):
    """The class's __weakref__ descriptor: its own up to 3.14, one of `object` shared by
    every class on 3.15 (its errors then name 'object'), for native classes and arena
    classes alike; handed an object of another class it answers as native's does."""
    native_cls = make_native("R", ("a",), weakref=True)
    slot_cls = make_slot("R", ("a",), weakref=True)
    dn, ds = native_cls.__dict__["__weakref__"], slot_cls.__dict__["__weakref__"]
    assert type(ds) is type(dn) and repr(ds) == repr(dn)
    assert (ds.__objclass__ is slot_cls) == (dn.__objclass__ is native_cls)
    assert (ds.__objclass__ is object) == (dn.__objclass__ is object)
    other = make_native("O", ("b",), weakref=True)()
    ref = weakref.ref(other)
    for obj in (other, 42, object()):
        assert raised(ds.__get__, obj) == raised(dn.__get__, obj)
    del ref


def test_unset_field_error_context(make_native, make_slot):
    for make in (make_native, make_slot):
        o = make("R", ("a",))()
        with pytest.raises(AttributeError) as info:
            o.a
        assert info.value.name == "a" and info.value.obj is o


# ---------------------------------------------------------------------------
# The generated __init__

def test_init_positional_keyword_mixed(make):
    R = make("R", ("a", "b", "c"))
    r = R(1, 2, 3)
    assert (r.a, r.b, r.c) == (1, 2, 3)
    r = R(c=3, a=1, b=2)
    assert (r.a, r.b, r.c) == (1, 2, 3)
    r = R(1, c=3)
    assert (r.a, r.c) == (1, 3) and not hasattr(r, "b")
    r = R()
    assert not any(hasattr(r, f) for f in "abc")
    r = R(None, b=None)
    assert r.a is None and r.b is None and not hasattr(r, "c")
    r = R(**{"b": 5})
    assert r.b == 5 and not hasattr(r, "a")


def test_init_api_messages():
    with pytest.raises(TypeError) as e:
        User(1, "a", 3)
    assert str(e.value) == "User.__init__() takes from 1 to 3 positional arguments but 4 were given"
    with pytest.raises(TypeError) as e:
        User(x=1)
    assert str(e.value) == "User.__init__() got an unexpected keyword argument 'x'"
    with pytest.raises(TypeError) as e:
        User(1, id=2)
    assert str(e.value) == "User.__init__() got multiple values for argument 'id'"


INIT_CALLS = {  # each with one error for classes of 1 to 3 fields a, b, c
    "too many": lambda C: C(1, 2, 3, 4),
    "unknown kw": lambda C: C(x=1),
    "unknown kw after valid": lambda C: C(a=1, zz=3),
    "duplicate": lambda C: C(1, a=2),
    "non-identifier kw": lambda C: C(**{"not an id": 1}),
}


@pytest.mark.parametrize("fields", [("a",), ("a", "b", "c")])
@pytest.mark.parametrize("call", INIT_CALLS)
def test_init_errors_match_native(make_native, make_slot, fields, call):
    fn = INIT_CALLS[call]
    expected = raised(fn, make_native("Rec", fields))
    assert expected is not None and expected[0] is TypeError
    assert raised(fn, make_slot("Rec", fields)) == expected


INIT_TWO_ERRORS = {  # too many positionals and a bad keyword: natively the keyword wins
    "too many and unknown kw": lambda C: C(1, 2, 3, 4, zz=5),
    "too many and duplicate": lambda C: C(1, 2, 3, 4, a=5),
    "too many and a field kw": lambda C: C(1, 2, 3, 4, c=5),
}


@pytest.mark.parametrize("fields", [(), ("a",), ("a", "b", "c")])
@pytest.mark.parametrize("call", INIT_TWO_ERRORS)
def test_init_error_precedence_matches_native(make_native, make_slot, fields, call):
    fn = INIT_TWO_ERRORS[call]
    expected = raised(fn, make_native("Rec", fields))
    assert expected is not None and expected[0] is TypeError
    assert raised(fn, make_slot("Rec", fields)) == expected


def test_init_errors_inherited_fields(make_native, make_slot):
    pairs = []
    for make in (make_native, make_slot):
        A = make("A", ("a", "b"))
        pairs.append(make("B", ("c",), base=A))
    for fn in INIT_CALLS.values():
        assert raised(fn, pairs[1]) == raised(fn, pairs[0])
    b = pairs[1](1, 2, c=3)
    assert (b.a, b.b, b.c) == (1, 2, 3)


@pytest.mark.parametrize("kwargs", [{1: 2}, {"a": 1, 2: 3}])
def test_init_non_str_keywords(make, kwargs):
    R = make("R", ("a",))
    with pytest.raises(TypeError):
        R(**kwargs)


def test_new_leaves_fields_unset(make):
    R = make("R", ("a", "b"))
    r = R.__new__(R)
    assert type(r) is R and not hasattr(r, "a") and not hasattr(r, "b")
    R.__init__(r, 1, b=2)
    assert (r.a, r.b) == (1, 2)


INIT_REFCOUNT_CALLS = [
    lambda C, v: C(v),
    lambda C, v: C(v, v),
    lambda C, v: C(b=v, a=v),
    lambda C, v: C(v, v, v),           # too many
    lambda C, v: C(v, zz=v),           # unknown keyword
    lambda C, v: C(v, a=v),            # duplicate
    lambda C, v: C(**{"a": v, 1: v}),  # non-str keyword
]


@pytest.mark.parametrize("call", range(len(INIT_REFCOUNT_CALLS)))
def test_init_does_not_leak_references(make, call):
    R = make("R", ("a", "b"))
    v = Val()
    before_v, before_cls = sys.getrefcount(v), sys.getrefcount(R)
    for _ in range(50):
        try:
            INIT_REFCOUNT_CALLS[call](R, v)
        except TypeError:
            pass
    assert sys.getrefcount(v) == before_v
    assert sys.getrefcount(R) == before_cls


def test_field_assignment_reference_counts(make):
    R = make("R", ("a", "b"))
    v, w = Val(), Val()
    base = sys.getrefcount(v)
    r = R(v)
    assert sys.getrefcount(v) == base + 1
    r.b = v
    assert sys.getrefcount(v) == base + 2
    r.a = w
    assert sys.getrefcount(v) == base + 1
    del r.b
    assert sys.getrefcount(v) == base
    r.a = v
    del r
    assert sys.getrefcount(v) == base


def test_instances_hold_a_reference_to_their_class(make):
    R = make("R", ("a",))
    base = sys.getrefcount(R)
    objs = [R(i) for i in range(10)]
    assert sys.getrefcount(R) == base + 10
    del objs
    assert sys.getrefcount(R) == base


# ---------------------------------------------------------------------------
# User-defined __init__ (SlotObj only: natively super().__init__ is object's)

def test_user_init_replaces_generated_and_super_reaches_it():
    class P(SlotObj):
        __slots__ = ("a", "b")

        def __init__(self, a):
            super().__init__(a, b=a * 2)

    p = P(3)
    assert (p.a, p.b) == (3, 6)
    with pytest.raises(TypeError) as e:
        P(1, 2)
    assert str(e.value) == f"{P.__qualname__}.__init__() takes 2 positional arguments but 3 were given"
    with pytest.raises(TypeError):
        P(a=1, b=2)
    assert str(inspect.signature(P)) == "(a)"


def test_super_init_keeps_generated_semantics_and_messages():
    class Q(SlotObj):
        __slots__ = ("a", "b")

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    q = Q(1)
    assert q.a == 1 and not hasattr(q, "b")
    q = Q(b=2)
    assert q.b == 2 and not hasattr(q, "a")
    with pytest.raises(TypeError) as e:
        Q(1, 2, 3)
    assert str(e.value) == (f"{Q.__qualname__}.__init__() takes from 1 to 3 positional"
                            " arguments but 4 were given")
    with pytest.raises(TypeError) as e:
        Q(1, a=1)
    assert str(e.value) == f"{Q.__qualname__}.__init__() got multiple values for argument 'a'"


def test_user_init_subclass_generated_init_covers_all_fields():
    class Base(SlotObj):
        __slots__ = ("a",)

    class Sub(Base):
        __slots__ = ("b", "c")

        def __init__(self, b):
            super().__init__(0, b, c=b + 1)

    s = Sub(5)
    assert (s.a, s.b, s.c) == (0, 5, 6)


def test_user_init_is_inherited_like_any_method():
    calls = []

    class Base(SlotObj):
        __slots__ = ("a",)

        def __init__(self, a):
            calls.append(a)
            super().__init__(a)

    class Sub(Base):
        __slots__ = ("b",)

    s = Sub(7)
    assert calls == [7] and s.a == 7 and not hasattr(s, "b")


def test_init_defined_in_stateless_mixin():
    class Mixin:
        __slots__ = ()

        def __init__(self, value):
            super().__init__(value, value)

    class R(Mixin, SlotObj):
        __slots__ = ("a", "b")

    r = R(4)
    assert (r.a, r.b) == (4, 4)


# ---------------------------------------------------------------------------
# inspect.signature, __match_args__, match

def test_signature(make_slot):
    A = make_slot("A", ("id", "name"))
    assert str(inspect.signature(A)) == "(id, name)"
    B = make_slot("B", ("extra",), base=A, weakref=True)
    assert str(inspect.signature(B)) == "(id, name, extra)"
    assert str(inspect.signature(make_slot("E", ()))) == "()"
    assert str(inspect.signature(User)) == "(id, name)"


def test_match_args(make_slot):
    A = make_slot("A", ("id", "name"))
    assert A.__match_args__ == ("id", "name")
    B = make_slot("B", ("extra",), base=A, weakref=True)
    assert B.__match_args__ == ("id", "name", "extra")
    assert make_slot("E", ()).__match_args__ == ()
    C = make_slot("C", ("x", "y"), __match_args__=("y",))
    assert C.__match_args__ == ("y",)


def test_match_statement():
    class User(SlotObj):
        __slots__ = ("id", "name")

    class Admin(User):
        __slots__ = ("level",)

    def describe(obj):
        match obj:
            case Admin(_, name, level):
                return ("admin", name, level)
            case User(1, name):
                return ("one", name)
            case User(id=2):
                return ("two",)
            case User(i, n):
                return ("user", i, n)
            case User():
                return ("partial",)
        return None

    assert describe(User(1, "a")) == ("one", "a")
    assert describe(User(2)) == ("two",)
    assert describe(User(3, "c")) == ("user", 3, "c")
    assert describe(User(3)) == ("partial",)      # unset field: no match
    assert describe(Admin(9, "r", 5)) == ("admin", "r", 5)
    assert describe(Admin(1, "r")) == ("one", "r")
    assert describe(object()) is None


# ---------------------------------------------------------------------------
# Inheritance and class creation

def test_inheritance_appends_fields(make):
    A = make("A", ("a", "b"))
    B = make("B", ("c",), base=A)
    C = make("C", ("d",), base=B)
    c = C(1, 2, 3, 4)
    assert (c.a, c.b, c.c, c.d) == (1, 2, 3, 4)
    assert isinstance(c, A) and isinstance(c, B)
    assert set(B.__dict__) & {"a", "b", "c", "d"} == {"c"}
    assert A.__dict__["a"].__get__(c) == 1
    c = C(d=4, a=1)
    assert (c.a, c.d) == (1, 4) and not hasattr(c, "b")
    assert sys.getsizeof(C()) - sys.getsizeof(A()) == 16


def test_slots_given_as_str_list_or_iterator(make_native, make_slot):
    for slots in ["name", ["a", "b"], iter(("a", "b")), {"a": "doc a", "b": None}]:
        for make in (make_native, make_slot):
            if isinstance(slots, type(iter(()))):
                slots = iter(("a", "b"))
            cls = type("R", (object if make is make_native else SlotObj,),
                       {"__slots__": slots})
            obj = cls()
            names = ("name",) if slots == "name" else ("a", "b")
            for n in names:
                setattr(obj, n, n)
                assert getattr(obj, n) == n
            assert not hasattr(obj, "__dict__")
    assert sys.getsizeof(type("R", (SlotObj,), {"__slots__": "name"})()) == 24


def test_class_without_slots_takes_attributes_like_native(make, kind):
    # A subclass that declares no __slots__ takes attributes beyond the fields, as a
    # native one (whose instances get a __dict__); the arena's instances pay for them
    # only once they have some.
    A = make("A", ("x", "y"))
    B = type("B", (A,), {})
    b = B(1, 2)
    assert (b.x, b.y) == (1, 2)
    if kind == "slotobj":
        assert sys.getsizeof(b) == sys.getsizeof(A()) == 32
        assert str(inspect.signature(B)) == "(x, y)"
    b.z = 3
    assert (b.x, b.y, b.z) == (1, 2, 3)
    assert vars(b) == {"z": 3}
    del b.z
    with pytest.raises(AttributeError):
        b.z
    with pytest.raises(AttributeError):
        A().z = 1

    class E(SlotObj):
        pass
    assert sys.getsizeof(E()) == 16
    with pytest.raises(TypeError) as e:
        E(1)
    assert str(e.value) == f"{E.__qualname__}.__init__() takes 1 positional argument but 2 were given"
    E().x = 1


def test_private_names_are_mangled_like_native(root):
    class R(root):
        __slots__ = ("__secret", "plain")

        def set(self, v):
            self.__secret = v

        def get(self):
            return self.__secret

    r = R()
    r.set(5)
    assert r.get() == 5 and r._R__secret == 5
    assert "_R__secret" in R.__dict__


def test_class_body_features(root):
    seen = []

    class Named:
        def __set_name__(self, owner, name):
            seen.append(("set_name", owner.__name__, name))

    class Base(root):
        __slots__ = ("a",)
        LIMIT = 10
        tag = Named()

        def __init_subclass__(cls, flag=None, **kw):
            super().__init_subclass__(**kw)
            seen.append(("init_subclass", cls.__name__, flag))

        @property
        def double(self):
            return self.a * 2

        @classmethod
        def make(cls, a):
            obj = cls()
            obj.a = a
            return obj

        @staticmethod
        def helper():
            return "static"

    class Sub(Base, flag=7):
        __slots__ = ("b",)

    s = Sub.make(4)
    assert type(s) is Sub and s.double == 8 and s.LIMIT == 10 and s.helper() == "static"
    assert seen == [("set_name", "Base", "tag"), ("init_subclass", "Sub", 7)]
    with pytest.raises(TypeError):
        class Bad(Base, unknown_keyword=1):
            pass
    with pytest.raises(AttributeError):
        s.double = 1


def test_field_redefined_from_base_is_that_field(make_slot):
    A = make_slot("A", ("x", "y"))
    B = make_slot("B", ("z",), base=A)
    for fields in [("x",), ("z", "y"), ("q", "x")]:
        C = make_slot("C", fields, base=B)
        assert C.x is A.x and C.z is B.z
    assert sys.getsizeof(B()) == 40  # the bases are unharmed


@pytest.mark.parametrize("slots", [(1,), ("a", 2), (b"a",), (None,), ("a b",), ("1a",),
                                   ("",), ("a-b",), 5, None, 1.5])
def test_bad_slots_like_native(make_native, make_slot, slots):
    for base in (object, SlotObj):
        with pytest.raises(TypeError):
            type("R", (base,), {"__slots__": slots})


@pytest.mark.parametrize("slots", [("__dict__",), ("a", "__dict__"), ("a", "a"),
                                   ("a", "b", "a"), ("__weakref__", "__weakref__")])
def test_slotobj_only_bad_slots(slots):
    with pytest.raises(TypeError):
        type("R", (SlotObj,), {"__slots__": slots})


def test_weakref_slot_when_base_has_it(make_native, make_slot):
    for make in (make_native, make_slot):
        A = make("A", ("x",), weakref=True)
        with pytest.raises(TypeError):
            make("B", ("y",), base=A, weakref=True)
        with pytest.raises(TypeError):
            make("C", ("__weakref__",), base=make("B2", (), base=A))


def test_slot_conflicting_with_class_attribute_is_value_error(make_native, make_slot):
    for make in (make_native, make_slot):
        with pytest.raises(ValueError) as e:
            make("R", ("a", "b"), b=1)
        assert "'b'" in str(e.value)


def test_layout_conflict(make_native, make_slot):
    for make in (make_native, make_slot):
        A = make("A", ("a",))
        B = make("B", ("b",), base=A)
        C = make("C", ("c",), base=A)
        X = make("X", ("x",))
        for bases in [(B, C), (A, X), (X, B)]:
            with pytest.raises(TypeError):
                type("D", bases, {"__slots__": ()})
        # bases whose fields extend one another are fine
        D = type("D", (B, A), {"__slots__": ("d",)})
        d = D()
        d.a, d.b, d.d = 1, 2, 3
        assert (d.a, d.b, d.d) == (1, 2, 3)


def _stateful_natives():
    class WithDict:
        pass

    class WithWeakref:
        __slots__ = ("__weakref__",)

    class WithDictSlot:
        __slots__ = ("__dict__",)

    class WithSlot:
        __slots__ = ("a",)

    return [WithDict, WithWeakref, WithDictSlot, WithSlot, list, dict, int, Exception]


@pytest.mark.parametrize("native", range(3, 8))
@pytest.mark.parametrize("first", [True, False])
def test_native_base_with_c_level_state_refused(make_slot, native, first):
    # (0-2, plain classes with a __dict__ or weak references, are accepted:
    # tests/test_dropin.py.)
    nat = _stateful_natives()[native]
    A = make_slot("A", ("x",))
    for slotbase in (SlotObj, A):
        bases = (nat, slotbase) if first else (slotbase, nat)
        with pytest.raises(TypeError):
            type("R", bases, {"__slots__": ("y",)})
        with pytest.raises(TypeError):
            type("R", bases, {})


@pytest.mark.parametrize("first", [True, False])
def test_stateless_native_mixin_allowed(make_native, make_slot, first):
    class Mixin:
        __slots__ = ()

        def total(self):
            return self.a + self.b

        def __repr__(self):
            return f"<{type(self).__name__} {self.total()}>"

    for make in (make_native, make_slot):
        base = make("Base", ("a", "b"))
        R = type("R", (Mixin, base) if first else (base, Mixin), {"__slots__": ("c",)})
        r = R()
        r.a, r.b, r.c = 1, 2, 3
        assert r.total() == 3 and not hasattr(r, "__dict__")
        if first:  # else SlotObj's own __repr__ comes first in the MRO
            assert repr(r) == "<R 3>"
    r = type("R", (Mixin, SlotObj), {"__slots__": ("a", "b")})(1, 2)
    assert sys.getsizeof(r) == 32 and not gc.is_tracked(r) and r.total() == 3


class PMixin:
    __slots__ = ()

    def total(self):
        return self.a + self.b


class PSlotMixinFirst(PMixin, SlotObj):
    __slots__ = ("a", "b")


class PSlotMixinLast(SlotObj, PMixin):
    __slots__ = ("a", "b")


@pytest.mark.parametrize("cls", [PSlotMixinFirst, PSlotMixinLast])
def test_stateless_mixin_keeps_every_slotobj_feature(cls):
    r = cls(1, b=2)
    assert r.total() == 3 and repr(r) == f"{cls.__name__}(a=1, b=2)"
    assert str(inspect.signature(cls)) == "(a, b)"
    blank = cls.__new__(cls)
    assert type(blank) is cls and not hasattr(blank, "a")
    for c in [copy.copy(r), copy.deepcopy(r)] + [roundtrip(r, p) for p in PROTOCOLS]:
        assert type(c) is cls and (c.a, c.b) == (1, 2)


def test_metaclass_conflict_refused():
    class Meta(type):
        pass

    with pytest.raises(TypeError):
        class R(SlotObj, metaclass=Meta):
            __slots__ = ("a",)
    # naming plain `type` is no conflict: the most derived metaclass wins
    class S(SlotObj, metaclass=type):
        __slots__ = ("a",)
    assert type(S) is objarena.ArenaType and not gc.is_tracked(S(1))


def test_metaclass_subclass_call_runs(root):
    calls = []

    class Meta(type(root)):
        def __call__(cls, *args, **kwargs):
            calls.append(args)
            return super().__call__(*args, **kwargs)

    class R(root, metaclass=Meta):
        __slots__ = ("a",)

        def __init__(self, a):
            self.a = a

    r = R(3)
    assert calls == [(3,)] and r.a == 3 and type(R) is Meta


def test_class_keeps_its_slots_declaration_like_native():
    # pydoc and copyreg read __slots__ back from the class: a dict's values are
    # the fields' docstrings
    for slots in [{"a": "doc of a", "b": None}, ("a", "b"), "a"]:
        native = type("R", (), {"__slots__": slots})
        slot = type("R", (SlotObj,), {"__slots__": slots})
        assert slot.__dict__["__slots__"] is native.__dict__["__slots__"] is slots
        assert slot.__slots__ is slots
    assert type("E", (SlotObj,), {}).__dict__.get("__slots__") is None


def test_keyword_and_non_ascii_field_names(make_slot):
    R = make_slot("R", ("class", "def", "ñame", "名前"))
    r = R(1, 2, **{"ñame": 3, "名前": 4})
    assert (getattr(r, "class"), getattr(r, "def"), r.ñame, r.名前) == (1, 2, 3, 4)
    assert repr(r) == "R(class=1, def=2, ñame=3, 名前=4)"
    assert R.__match_args__ == ("class", "def", "ñame", "名前")
    r = R(**{"class": "c"})
    assert getattr(r, "class") == "c" and not hasattr(r, "def")


def test_runtime_init_and_new_changes_are_honoured(make_slot):
    R = make_slot("R", ("a", "b"))
    Sub = make_slot("Sub", (), base=R)
    assert (R(1, 2).b, Sub(1, 2).b) == (2, 2)
    calls = []

    def __init__(self, a):
        calls.append(a)
        SlotObj.__init__(self, a, a)

    R.__init__ = __init__
    r, sub = R(5), Sub(6)
    assert calls == [5, 6] and (r.a, r.b) == (5, 5) and (sub.a, sub.b) == (6, 6)
    assert str(inspect.signature(R)) == "(a)"
    del R.__init__
    r = R(1, 2)
    assert calls == [5, 6] and (r.a, r.b) == (1, 2)
    assert str(inspect.signature(R)) == "(a, b)"
    R.__new__ = staticmethod(lambda cls, *args, **kwargs: ("made", args))
    assert R(1, 2) == ("made", (1, 2)) and Sub(3) == ("made", (3,))
    del R.__new__
    assert type(R(1)) is R and Sub(1, 2).b == 2


def test_class_creation_hooks_cannot_see_half_made_instances():
    made = []

    class Base(SlotObj):
        __slots__ = ("a",)

        def __init_subclass__(cls, **kw):
            super().__init_subclass__(**kw)
            for make in (lambda: cls(), lambda: cls(1, 2), lambda: cls.__new__(cls),
                         lambda: object.__new__(cls), lambda: copy.copy(Base(1))):
                try:
                    made.append(make())
                except TypeError:
                    made.append(None)

    class Sub(Base):
        __slots__ = ("b",)

    for obj in made:  # whatever was made is a whole, valid object
        assert obj is None or (isinstance(obj, Base) and not gc.is_tracked(obj))
        if obj is not None:
            obj.a = 1
            assert obj.a == 1 and sys.getsizeof(obj) in (24, 32)
    del made
    s = Sub(1, 2)
    assert (s.a, s.b) == (1, 2) and sys.getsizeof(s) == 32

    class Boom(Exception):
        pass

    class Fails(SlotObj):
        def __init_subclass__(cls, **kw):
            raise Boom

    with pytest.raises(Boom):
        class Sub2(Fails):
            __slots__ = ("x",)
    gc.collect()


# ---------------------------------------------------------------------------
# Weak references

def test_weakref_opt_in(make):
    R = make("R", ("a",), weakref=True)
    r = R(1)
    calls = []
    ref = weakref.ref(r, calls.append)
    proxy = weakref.proxy(r)
    assert ref() is r and proxy.a == 1
    d = weakref.WeakValueDictionary({"k": r})
    s = weakref.WeakSet([r])
    assert d["k"] is r and r in s
    del r
    assert ref() is None and calls == [ref]
    assert "k" not in d and len(s) == 0
    with pytest.raises(ReferenceError):
        proxy.a


def test_weakref_inherited_and_added_by_subclass(make):
    A = make("A", ("a",), weakref=True)
    B = make("B", ("b",), base=A)
    b = B(1, 2)
    assert weakref.ref(b)() is b
    C = make("C", ("c",))
    D = make("D", ("d",), base=C, weakref=True)
    d = D(1, 2)
    assert weakref.ref(d)() is d
    with pytest.raises(TypeError):
        weakref.ref(C(1))


def test_weakref_refused_without_slot(make_native, make_slot):
    for fn in (weakref.ref, weakref.proxy, lambda o: weakref.WeakSet([o])):
        expected = raised(fn, make_native("R", ("a",))(1))
        assert expected is not None and expected[0] is TypeError
        assert raised(fn, make_slot("R", ("a",))(1)) == expected


# ---------------------------------------------------------------------------
# repr, equality, hashing

def test_repr(make_slot):
    User = make_slot("User", ("id", "name"))
    assert repr(User(1, "a")) == "User(id=1, name='a')"
    assert repr(User(name="a")) == "User(name='a')"
    assert repr(User()) == "User()"
    u = User(1, "a")
    del u.id
    assert repr(u) == "User(name='a')"
    Sub = make_slot("Sub", ("extra",), base=User, weakref=True)
    assert repr(Sub(1, [2], {3: 4})) == "Sub(id=1, name=[2], extra={3: 4})"
    assert str(User(2, None)) == "User(id=2, name=None)"


def test_repr_self_reference(make_slot):
    A = make_slot("A", ("x", "y"))
    B = make_slot("B", ("x",))
    a = A()
    a.x = a
    assert repr(a) == "A(x=A(...))"
    a.y = 1
    assert repr(a) == "A(x=A(...), y=1)"
    b = B(a)
    a.x = b
    assert repr(a) == "A(x=B(x=A(...)), y=1)"
    assert repr(b) == "B(x=A(x=B(...), y=1))"
    a.x = [a]
    assert repr(a) == "A(x=[A(...)], y=1)"
    assert repr(A(a, a)) == "A(x=A(x=[A(...)], y=1), y=A(x=[A(...)], y=1))"


def test_repr_user_defined_and_errors(make_slot):
    R = make_slot("R", ("a",), __repr__=lambda self: "custom")
    assert repr(R(1)) == "custom"

    class Boom:
        def __repr__(self):
            raise RuntimeError("boom")

    S = make_slot("S", ("a",))
    with pytest.raises(RuntimeError):
        repr(S(Boom()))
    s = S()
    s.a = s
    assert repr(s) == "S(a=S(...))"  # the recursion guard was released


def test_identity_equality_and_hash(make):
    R = make("R", ("a",))
    r, twin = R(1), R(1)
    assert r == r and not (r != r)
    assert r != twin and not (r == twin)
    assert (r == 1) is False and (r != 1) is True
    assert hash(r) == object.__hash__(r) == hash(r)
    assert {r: "x"}[r] == "x" and twin not in {r}
    with pytest.raises(TypeError):
        r < twin
    E = make("E", ("a",), __eq__=lambda s, o: True, __hash__=lambda s: 7)
    assert E(1) == E(2) and hash(E(1)) == 7


# ---------------------------------------------------------------------------
# pickle and copy

class PNative:
    __slots__ = ("x", "y")


class PSlot(SlotObj):
    __slots__ = ("x", "y")


class PSlotSub(PSlot):
    __slots__ = ("z",)


class PNativeWeak:
    __slots__ = ("x", "y", "__weakref__")


class PSlotWeak(SlotObj):
    __slots__ = ("x", "y", "__weakref__")


class PSlotInit(SlotObj):
    __slots__ = ("x", "y")

    def __init__(self, x):  # needs an argument: unpickling must not depend on it
        super().__init__(x)


class PSlotPrivate(SlotObj):
    __slots__ = ("__x", "y")

    def get(self):
        return self.__x


PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
# native __slots__ classes cannot be pickled with protocols 0 and 1
PICKLE_CASES = ([(c, p) for c in (PNative, PNativeWeak) for p in PROTOCOLS if p >= 2]
                + [(c, p) for c in (PSlot, PSlotSub, PSlotWeak, PSlotInit) for p in PROTOCOLS])
PICKLE_IDS = [f"{c.__name__}-p{p}" for c, p in PICKLE_CASES]


def blank(cls):
    obj = cls(0) if cls is PSlotInit else cls()
    if cls is PSlotInit:
        del obj.x
    return obj


def roundtrip(obj, proto):
    return pickle.loads(pickle.dumps(obj, proto))


@pytest.mark.parametrize("cls,proto", PICKLE_CASES, ids=PICKLE_IDS)
def test_pickle_values(cls, proto):
    o = blank(cls)
    o.x, o.y = 1, ("two", 2.0, None)
    p = roundtrip(o, proto)
    assert type(p) is cls and p is not o
    assert (p.x, p.y) == (1, ("two", 2.0, None))
    if cls is PSlotSub:
        o.z = "zed"
        assert roundtrip(o, proto).z == "zed"


@pytest.mark.parametrize("cls,proto", PICKLE_CASES, ids=PICKLE_IDS)
def test_pickle_unset_and_deleted_fields(cls, proto):
    o = blank(cls)
    p = roundtrip(o, proto)
    assert not hasattr(p, "x") and not hasattr(p, "y")
    o.x, o.y = 1, 2
    del o.x
    p = roundtrip(o, proto)
    assert not hasattr(p, "x") and p.y == 2


@pytest.mark.parametrize("cls,proto", PICKLE_CASES, ids=PICKLE_IDS)
def test_pickle_cycles_and_sharing(cls, proto):
    a = blank(cls)
    a.x = a
    p = roundtrip(a, proto)
    assert p.x is p and not hasattr(p, "y")
    b = blank(cls)
    a.x, b.x = b, a
    a.y = b.y = shared = [a]
    p = roundtrip(a, proto)
    assert p.x.x is p and p.y is p.x.y and p.y[0] is p and p.y is not shared
    lst = roundtrip([a, b, a], proto)
    assert lst[0] is lst[2] and lst[0].x is lst[1]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_pickle_private_field(proto):
    o = PSlotPrivate(1, 2)
    p = roundtrip(o, proto)
    assert (p.get(), p.y, p._PSlotPrivate__x) == (1, 2, 1)


def _getstate(self):
    return {"sum": self.x + self.y}


def _setstate(self, state):
    self.x, self.y = state["sum"], 0


class PNativeState:
    __slots__ = ("x", "y")
    __getstate__, __setstate__ = _getstate, _setstate


class PSlotState(SlotObj):
    __slots__ = ("x", "y")
    __getstate__, __setstate__ = _getstate, _setstate


class PNativeReduce:
    __slots__ = ("x",)

    def __reduce__(self):
        return (_rebuild, (type(self), self.x * 2))


class PSlotReduce(SlotObj):
    __slots__ = ("x",)

    def __reduce__(self):
        return (_rebuild, (type(self), self.x * 2))


def _rebuild(cls, x):
    obj = cls.__new__(cls)
    obj.x = x
    return obj


@pytest.mark.parametrize("cls,proto", [(c, p) for c in (PNativeState, PSlotState)
                                       for p in PROTOCOLS if p >= 2 or c is PSlotState])
def test_pickle_honours_getstate_setstate(cls, proto):
    o = cls()
    o.x, o.y = 1, 2
    for p in (roundtrip(o, proto), copy.copy(o), copy.deepcopy(o)):
        assert type(p) is cls and (p.x, p.y) == (3, 0)


@pytest.mark.parametrize("cls", [PNativeReduce, PSlotReduce])
@pytest.mark.parametrize("proto", PROTOCOLS)
def test_pickle_honours_reduce(cls, proto):
    o = cls()
    o.x = 21
    for p in (roundtrip(o, proto), copy.copy(o)):
        assert type(p) is cls and p.x == 42


@pytest.mark.parametrize("cls", [PSlot, PSlotSub, PSlotWeak, PSlotInit, PNative])
def test_pickle_class_by_reference(cls):
    for proto in PROTOCOLS:
        assert roundtrip(cls, proto) is cls


def test_pickle_weakref_class_stays_weakrefable():
    o = PSlotWeak()
    o.x = 1
    p = roundtrip(o, pickle.HIGHEST_PROTOCOL)
    assert weakref.ref(p)() is p


def test_copy_shallow(make):
    R = make("R", ("a", "b", "c"), weakref=True)
    item = [1]
    r = R(item, "s")
    c = copy.copy(r)
    assert type(c) is R and c is not r
    assert c.a is item and c.b == "s" and not hasattr(c, "c")
    r.c = r
    c = copy.copy(r)
    assert c.c is r
    assert weakref.ref(c)() is c


def test_copy_deep(make):
    R = make("R", ("a", "b", "c"))
    item = [1, [2]]
    r = R(item)
    r.b = r
    d = copy.deepcopy(r)
    assert type(d) is R and d is not r
    assert d.a == item and d.a is not item and d.a[1] is not item[1]
    assert d.b is d and not hasattr(d, "c")
    s = R()
    r.c, s.a = s, r
    d = copy.deepcopy(r)
    assert d.c.a is d and d.c is not s


def test_copy_does_not_call_init(make):
    calls = []

    def __init__(self, needed):
        calls.append(needed)
        self.a = needed

    R = make("R", ("a",), __init__=__init__)
    r = R(1)
    assert copy.copy(r).a == 1 and copy.deepcopy(r).a == 1 and calls == [1]


# ---------------------------------------------------------------------------
# __class__ assignment

def test_class_assignment_allowed(make):
    A = make("A", ("x", "y"))
    B = make("B", ("x", "y"), total=lambda self: self.x + self.y)
    C = make("C", (), base=A)
    o = A(1, 2)
    a_refs, b_refs = sys.getrefcount(A), sys.getrefcount(B)
    o.__class__ = B
    assert type(o) is B and o.total() == 3 and (o.x, o.y) == (1, 2)
    assert sys.getrefcount(A) == a_refs - 1 and sys.getrefcount(B) == b_refs + 1
    o.__class__ = A
    assert type(o) is A
    assert (sys.getrefcount(A), sys.getrefcount(B)) == (a_refs, b_refs)
    o.__class__ = C
    assert type(o) is C and isinstance(o, A) and (o.x, o.y) == (1, 2)
    o.__class__ = A
    assert type(o) is A and (o.x, o.y) == (1, 2)


def test_class_assignment_allowed_with_weakref_slot(make_slot):
    # (native 3.10/3.11 refuse this one: their weakref slot breaks same_slots_added)
    A = make_slot("A", ("x", "y"), weakref=True)
    B = make_slot("B", ("x", "y"), weakref=True)
    o = A(1, 2)
    calls = []
    ref = weakref.ref(o, calls.append)
    o.__class__ = B
    assert type(o) is B and (o.x, o.y) == (1, 2) and ref() is o
    assert repr(o) == "B(x=1, y=2)"
    del o
    assert ref() is None and calls == [ref]


def _refused_targets(make):
    A = make("A", ("x", "y"))
    return A, {
        "other names": make("B", ("x", "z")),
        "fewer fields": make("B", ("x",)),
        "more fields": make("B", ("x", "y", "z")),
        "subclass with a field": make("B", ("z",), base=A),
        "weakref slot": make("B", ("x", "y"), weakref=True),
        "builtin": int,
        "not a class": 5,
        "None": None,
    }


def _check_refused(A, o, target, values):
    before = sys.getrefcount(A), sys.getrefcount(target)
    with pytest.raises(TypeError):
        o.__class__ = target
    assert type(o) is A and (o.x, o.y) == values
    assert sys.getrefcount(A) == before[0]
    if isinstance(target, type) and target.__module__ != "builtins":
        assert sys.getrefcount(target) == before[1]


@pytest.mark.parametrize("case", ["other names", "fewer fields", "more fields",
                                  "subclass with a field", "weakref slot", "builtin",
                                  "not a class", "None"])
def test_class_assignment_refused(make, case):
    A, targets = _refused_targets(make)
    values = (Val(), Val())
    o = A(*values)
    _check_refused(A, o, targets[case], values)
    with pytest.raises(TypeError):
        del o.__class__
    o.x = 1
    assert type(o) is A and o.x == 1


def test_class_assignment_refused_weakref_other_way(make):
    A = make("A", ("x", "y"), weakref=True)
    B = make("B", ("x", "y"))
    o = A(1, 2)
    before = sys.getrefcount(A), sys.getrefcount(B)
    with pytest.raises(TypeError):
        o.__class__ = B
    assert type(o) is A and weakref.ref(o)() is o
    assert (sys.getrefcount(A), sys.getrefcount(B)) == before


def test_class_assignment_between_native_and_slotobj_refused(make_native, make_slot):
    N, S = make_native("A", ("x", "y")), make_slot("A", ("x", "y"))
    n, s = N(1, 2), S(1, 2)
    _check_refused(S, s, N, (1, 2))
    _check_refused(N, n, S, (1, 2))


def test_class_assignment_refused_field_order_and_arena(make_slot, arena):
    A = make_slot("A", ("x", "y"))
    o = A(1, 2)
    _check_refused(A, o, make_slot("B", ("y", "x")), (1, 2))
    _check_refused(A, o, make_slot("B", ("x", "y"), arena=arena), (1, 2))
    _check_refused(A, o, SlotObj, (1, 2))


# ---------------------------------------------------------------------------
# Deallocation

def test_fields_released_on_dealloc(make):
    R = make("R", ("a", "b"))
    v1, v2 = Val(), Val()
    refs = weakref.ref(v1), weakref.ref(v2)
    r = R(v1, [v2])
    del v1, v2
    assert all(ref() is not None for ref in refs)
    del r
    assert all(ref() is None for ref in refs)


def test_class_freed_when_unused(make):
    Root = make("Root", ())
    root_refs = sys.getrefcount(Root)
    A = make("A", ("x",), base=Root, marker=Val())
    B = make("B", ("y",), base=A)
    a, b = A(1), B(1, 2)
    wa, wb, wm = weakref.ref(A), weakref.ref(B), weakref.ref(A.marker)
    del A, B
    gc.collect()
    assert wa() is not None and wb() is not None
    del a
    gc.collect()
    assert wa() is not None and wb() is not None  # b's class keeps A as its base
    del b
    gc.collect()
    assert wb() is None and wa() is None and wm() is None
    # freed indeed, not only found unreachable: the base has its references back
    assert sys.getrefcount(Root) == root_refs


def test_class_freed_after_subclass_without_instances(make):
    Root = make("Root", ())
    root_refs = sys.getrefcount(Root)
    A = make("A", ("x",), base=Root)
    a = A(1)
    B = make("B", ("y",), base=A)
    wa, wb = weakref.ref(A), weakref.ref(B)
    a_refs = sys.getrefcount(A)
    del B
    gc.collect()
    assert wb() is None and wa() is not None
    assert sys.getrefcount(A) < a_refs  # B's references to A are gone
    del A, a
    gc.collect()
    assert wa() is None
    assert sys.getrefcount(Root) == root_refs


def test_many_short_lived_classes_do_not_accumulate(make):
    Root = make("Root", ())
    root_refs = sys.getrefcount(Root)
    for i in range(50):
        C = make(f"C{i}", tuple(f"f{j}" for j in range(i % 5)), base=Root)
        objs = [C() for _ in range(3)]
    del C, objs
    gc.collect()
    assert sys.getrefcount(Root) == root_refs


@pytest.mark.parametrize("via", ["direct", "list", "tuple"])
def test_long_chain_freed(make, via):
    N = make("N", ("next",))
    tail = Val()
    ref = weakref.ref(tail)
    head = tail
    for _ in range(100_000):
        head = N([head] if via == "list" else (head,) if via == "tuple" else head)
    del tail
    assert ref() is not None
    del head
    assert ref() is None


def test_long_chain_with_finalizers(make):
    calls = []
    N = make("N", ("next",), __del__=lambda self: calls.append(1))
    head = None
    for _ in range(100_000):
        head = N(head)
    del head
    assert len(calls) == 100_000


CHAIN_SCRIPT = """
import sys, objarena, objarena._testing
from objarena import SlotObj
class N(SlotObj):
    __slots__ = ("next",)
class W:
    pass
base = objarena.default_arena.stats()["objects"]
n = int(sys.argv[1])
via = sys.argv[2]
tail = W()
import weakref
ref = weakref.ref(tail)
head = tail
del tail
for _ in range(n):
    head = N([head] if via == "list" else head)
assert objarena.default_arena.stats()["objects"] == base + n
del head
assert ref() is None, "tail not freed"
assert objarena.default_arena.stats()["objects"] == base
objarena._testing.validate(objarena.default_arena)
print("ok", flush=True)
"""


@pytest.mark.parametrize("n,via", [(10_000_000, "direct"), (1_000_000, "list")])
def test_huge_chain_freed_in_subprocess(tmp_path, n, via):
    proc = subprocess.run([sys.executable, "-c", CHAIN_SCRIPT, str(n), via],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


# ---------------------------------------------------------------------------
# __del__ (PEP 442)

def test_del_called_once_with_fields_readable(make):
    calls = []
    R = make("R", ("a", "b"), __del__=lambda self: calls.append((self.a, self.b)))
    r = R(1, "x")
    del r
    assert calls == [(1, "x")]
    R(2, None)  # a temporary
    assert calls == [(1, "x"), (2, None)]


def test_del_not_called_while_alive_and_once_after(make):
    calls = []
    R = make("R", ("a",), __del__=lambda self: calls.append(self.a))
    objs = [R(i) for i in range(5)]
    assert calls == []
    del objs[1:3]
    assert sorted(calls) == [1, 2]
    objs.clear()
    assert sorted(calls) == [0, 1, 2, 3, 4]


def test_resurrection_in_del(make):
    keep, calls = [], []

    def __del__(self):
        calls.append(self.a)
        keep.append(self)

    R = make("R", ("a", "b"), weakref=True, __del__=__del__)
    value = Val()
    vref = weakref.ref(value)
    r = R(1, value)
    wcalls = []
    rref = weakref.ref(r, wcalls.append)
    del r, value
    assert calls == [1] and len(keep) == 1
    survivor = keep[0]
    assert rref() is survivor and wcalls == []
    assert (survivor.a, type(survivor.b)) == (1, Val) and vref() is not None
    survivor.a = 2
    del survivor
    keep.clear()
    # PEP 442: __del__ is not called a second time
    assert calls == [1]
    assert rref() is None and wcalls == [rref] and vref() is None


def test_del_allocating_and_freeing_objects(make):
    made = []

    def __del__(self):
        if self.a < 3:
            made.append(type(self)(self.a + 1, [self.b]))
        made.append(self.b)

    R = make("R", ("a", "b"), __del__=__del__)
    r = R(0, "x")
    del r
    while made:
        made.pop()
    assert made == []


def test_del_exception_goes_to_unraisablehook(make, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))

    def __del__(self):
        raise ValueError("in __del__")

    R = make("R", ("a",), __del__=__del__)
    value = Val()
    vref = weakref.ref(value)
    r = R(value)
    del r, value
    assert seen == [ValueError] and vref() is None


def test_del_assigning_class(make):
    B = make("B", ("x",))
    A = make("A", ("x",), __del__=lambda self: setattr(self, "__class__", B))
    a = A(Val())
    vref = weakref.ref(a.x)
    before = sys.getrefcount(A), sys.getrefcount(B)
    del a
    assert (sys.getrefcount(A), sys.getrefcount(B)) == (before[0] - 1, before[1])
    assert vref() is None
    wa, wb = weakref.ref(A), weakref.ref(B)
    del A, B
    gc.collect()
    assert wa() is None and wb() is None


def test_threads_allocating_and_freeing(make):
    import threading

    count = []

    def __del__(self):
        count.append(1)
        if self.i % 50 == 0:
            type(self)(None, -1)  # allocates and frees during a dealloc

    N = make("N", ("next", "i"), __del__=__del__)
    errors = []

    def work():
        try:
            for _ in range(10):
                head = None
                for i in range(1000):
                    head = N(head, i)
                del head
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert len(count) == 4 * 10 * (1000 + 20)


DEEP_WEAKREF_SCRIPT = """
import sys, weakref, objarena, objarena._testing
arena = objarena.default_arena
base = objarena.SlotObj if sys.argv[1] == "slotobj" else object
class N(base):
    __slots__ = ("next", "side", "payload", "__weakref__")
class P:
    pass
refs, found, prefs, active = [], [], [], [True]
def grab(_):  # a weakref callback that runs while the chain is being freed
    if active[0]:
        found.extend(o for o in (r() for r in refs) if o is not None)
def node(nxt, side, payload):
    n = N()
    n.next, n.side, n.payload = nxt, side, payload
    return n
start = arena.stats()["objects"]
head = None
for _ in range(150):   # past the dealloc depth limit (64) twice over
    p = P()
    prefs.append(weakref.ref(p, grab))
    head = node(head, node(None, None, None), p)
    refs += [weakref.ref(head), weakref.ref(head.side)]
del head, p
for o in found:  # whatever a weak reference handed out is a whole, live object
    assert type(o) is N and sys.getrefcount(o) >= 2
    repr(getattr(o, "next", None))
active[0] = False
found.clear()
del o
assert all(r() is None for r in refs)
assert arena.stats()["objects"] == start
objarena._testing.validate(arena)
print("ok", flush=True)
"""


def test_weakrefs_never_return_objects_waiting_to_be_freed(kind, tmp_path):
    # past the dealloc depth limit, objects wait on a deferred list; a weakref
    # callback that runs meanwhile must not get one of them back
    proc = subprocess.run([sys.executable, "-c", DEEP_WEAKREF_SCRIPT, kind],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


EXIT_SCRIPT = """
import sys, weakref, objarena
from objarena import SlotObj, Arena
arena = Arena(name="exit")
class N(SlotObj, arena=arena):
    __slots__ = ("next", "data", "__weakref__")
    def __del__(self):
        sys.stdout.write("")
class M(SlotObj):
    __slots__ = ("x",)
head = None
for i in range(100_000):
    head = N(head, [i])
cycle = M()
cycle.x = cycle
N.instance = N(M(N()), {"k": head})
M.registry = [M(M()) for _ in range(1000)]
refs = [weakref.ref(n, lambda r: None) for n in (head, head.next)]
lst = []
lst.append(lst)
keep = M(lst)
print("ready", flush=True)
"""


def test_objects_alive_at_interpreter_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ready"), proc.stderr[-2000:]
    assert "Fatal" not in proc.stderr and "Error" not in proc.stderr


# ---------------------------------------------------------------------------
# tracemalloc

def _tracing():
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    return started


def test_tracemalloc_traceback(make):
    R = make("R", ("a", "b"))
    started = _tracing()
    try:
        obj = R(1, 2)
        line = sys._getframe().f_lineno - 1
        tb = tracemalloc.get_object_traceback(obj)
    finally:
        if started:
            tracemalloc.stop()
    assert tb is not None
    assert (tb[0].filename, tb[0].lineno) == (__file__, line)


def test_tracemalloc_traced_memory_per_object(make, kind):
    n = 20_000
    R = make("R", ("a", "b"))
    holder = [None] * n
    started = _tracing()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            holder[i] = R(None, None)
        grown = tracemalloc.get_traced_memory()[0] - before
        holder[:] = [None] * n
        left = tracemalloc.get_traced_memory()[0] - before
    finally:
        if started:
            tracemalloc.stop()
    per_object = grown / n
    assert abs(per_object - sys.getsizeof(R())) < 1.5, per_object
    if kind == "slotobj":
        assert abs(per_object - 32) < 1.5
    assert abs(left) < n  # freeing untracks them again


# ---------------------------------------------------------------------------
# Attribute specialisation (3.11+)

SPECIALISE_SRC = """
def read(o):
    t = None
    for _ in range(1000):
        t = o.id
    return t

def write(o):
    for i in range(1000):
        o.id = i
"""


def _specialised(obj):
    ns = {}
    exec(compile(SPECIALISE_SRC, "<specialise>", "exec"), ns)  # fresh code objects
    out = {}
    for name in ("read", "write"):
        f = ns[name]
        for _ in range(3):
            f(obj)
        out[name] = sorted({i.opname for i in dis.get_instructions(f, adaptive=True)
                            if "_ATTR" in i.opname})
    return out


@pytest.mark.skipif(sys.version_info < (3, 11), reason="no specialising interpreter")
def test_attribute_access_specialises_like_native(make_native, make_slot):
    native = _specialised(make_native("R", ("id", "name"))(1, "a"))
    assert native == {"read": ["LOAD_ATTR_SLOT"], "write": ["STORE_ATTR_SLOT"]}
    assert _specialised(make_slot("R", ("id", "name"))(1, "a")) == native
    assert _specialised(make_slot("R", ("id", "name"), weakref=True)(1, "a")) == native
