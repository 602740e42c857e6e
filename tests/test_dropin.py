"""Drop-in for real class hierarchies: the same class statements on native bases and on
SlotObj/Obj bases, side by side (issue 12).

Every test here defines its classes in a function of the base (``object`` for the native
version, ``SlotObj`` or ``Obj`` for the arena version), runs the same story against both,
and compares what each step returned or raised: results, exception types and messages.
What only the arena version has (sizes, the arena) is asserted beside, and the one
documented difference (a SlotObj class that declares its fields by annotation takes no
undeclared attribute, as a dataclass(slots=True) does not) is asserted as such.
"""
import abc
import collections.abc
import copy
import ctypes
import dataclasses
import functools
import pickle
import sys
from dataclasses import InitVar, dataclass, field

import pytest

import objarena
from objarena import Obj, SlotObj

try:
    import attrs
except ImportError:  # the test extra installs it
    attrs = None

needs_attrs = pytest.mark.skipif(attrs is None, reason="attrs is not installed")

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def outcome(fn, *args, **kwargs):
    """("ok", result) or ("raised", type, message)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as e:  # noqa: BLE001 - compared between native and arena
        return ("raised", type(e), str(e))


def publish(cls):
    """Make a class defined in a story picklable: a module global of its own name.
    The native and the arena version take the name in turn, each for its own story."""
    cls.__qualname__ = cls.__name__
    globals()[cls.__name__] = cls
    return cls


def side_by_side(story, arena_base=SlotObj):
    """Run story(base) with the native and the arena base; both must give the same
    result.  Returns the arena version's result."""
    native, arena = story(object), story(arena_base)
    assert arena == native
    return arena


def roundtrips(obj, protocols=PROTOCOLS, show=repr):
    """What pickle (each protocol), copy and deepcopy give back, as show() sees it."""
    out = {}
    for proto in protocols:
        out[f"pickle{proto}"] = outcome(lambda: show(pickle.loads(pickle.dumps(obj, proto))))
    out["copy"] = outcome(lambda: show(copy.copy(obj)))
    out["deepcopy"] = outcome(lambda: show(copy.deepcopy(obj)))
    return out


# ---------------------------------------------------------------------------
# 1. dataclasses and attrs on SlotObj bases

DATACLASS_OPTIONS = [
    {},
    {"slots": True},
    {"frozen": True},
    {"frozen": True, "slots": True},
    {"order": True},
    {"eq": False},
    {"unsafe_hash": True},
    {"kw_only": True},
    {"match_args": False},
    {"repr": False, "eq": True, "init": True},
]
if sys.version_info >= (3, 11):
    DATACLASS_OPTIONS.append({"slots": True, "weakref_slot": True})


def dataclass_story(base, opts):
    @dataclass(**opts)
    class P(base):
        x: int
        y: int = 0
        z: list = field(default_factory=list)
        w: str = field(default="w", compare=False)

    publish(P)
    p, q = P(x=1), P(x=1, y=2, z=[3])
    # SlotObj's own repr shows the fields; with repr=False a native class has object's.
    show = repr if opts.get("repr", True) else (
        lambda o: (type(o).__name__, dataclasses.astuple(o)))
    out = {
        "repr": repr(p) if opts.get("repr", True) else None,
        "fields": [(f.name, f.default, f.kw_only) for f in dataclasses.fields(P)],
        "match_args": outcome(getattr, P, "__match_args__"),
        "eq": (p == P(x=1), p == q, p != q),
        "order": outcome(lambda: (p < q, p <= q, q > p)),
        "hash": outcome(lambda: hash(p) == hash(P(x=1))) if opts.get("eq", True) else None,
        "set": outcome(setattr, p, "y", 5),
        "del": outcome(delattr, p, "w"),
        "replace": outcome(lambda: show(dataclasses.replace(q, y=7))),
        "asdict": dataclasses.asdict(q),
        "astuple": dataclasses.astuple(q),
        "factory": P(x=1).z is not P(x=1).z,
        "init_errors": [outcome(P), outcome(P, x=1, v=2)],
    }
    # Protocols 0 and 1 cannot pickle a native __slots__ class; the arena can (below).
    out.update(roundtrips(q, PROTOCOLS if not opts.get("slots") else range(2, 6), show))
    if opts.get("match_args", True) and not opts.get("kw_only"):
        match q:
            case P(a, b, c):
                out["match"] = (a, b, c)
    return out


@pytest.mark.parametrize("opts", DATACLASS_OPTIONS, ids=repr)
def test_dataclass_options_as_native(opts):
    side_by_side(lambda base: dataclass_story(base, opts))


@pytest.mark.parametrize("opts", DATACLASS_OPTIONS, ids=repr)
def test_dataclass_instances_stay_at_the_floor(opts):
    @dataclass(**opts)
    class P(SlotObj):
        x: int
        y: int = 0

    publish(P)
    p = P(x=1)
    weak = 8 if opts.get("weakref_slot") else 0
    assert sys.getsizeof(p) == 32 + weak
    assert objarena.arena_of(p) is objarena.default_arena
    assert type(P).__name__ == "ArenaType"
    # The one documented difference: no undeclared attributes (a frozen dataclass
    # with slots=True raises TypeError there, native or not: its __setattr__ calls
    # super() with the class it replaced).
    with pytest.raises((AttributeError, TypeError)):
        p.extra = 1
    for proto in PROTOCOLS:
        back = pickle.loads(pickle.dumps(p, proto))
        assert type(back) is P and dataclasses.astuple(back) == (1, 0)


def test_frozen_dataclass_state_does_not_go_through_setattr():
    @dataclass(frozen=True)
    class F(SlotObj):
        x: int
        y: list = field(default_factory=list)

    publish(F)
    f = F(1, [2])
    for proto in PROTOCOLS:
        assert pickle.loads(pickle.dumps(f, proto)) == f
    assert copy.deepcopy(f) == f and copy.deepcopy(f).y is not f.y
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.x = 2


def post_init_story(base):
    @dataclass
    class R(base):
        a: int
        scale: InitVar[int] = 2
        b: int = field(init=False, default=0)

        def __post_init__(self, scale):
            self.b = self.a * scale

    publish(R)
    r = R(3)
    return [repr(r), repr(R(3, 5)), [f.name for f in dataclasses.fields(R)],
            outcome(getattr, r, "scale"), roundtrips(r)]


def test_initvar_and_post_init_as_native():
    side_by_side(post_init_story)


def inheritance_story(base):
    @dataclass
    class A(base):
        x: int
        y: int = 1

    @dataclass(slots=True)
    class B(A):
        z: int = 2

    @dataclass
    class C(B):
        pass

    publish(C)
    return [repr(C(0)), repr(B(0, z=5)), outcome(C), roundtrips(C(0, 1, 2), range(2, 6))]


def test_dataclass_inheritance_as_native():
    side_by_side(inheritance_story)


def test_kw_only_marker_and_classvar_are_no_fields():
    from typing import ClassVar

    def story(base):
        @dataclass
        class K(base):
            a: int
            _: dataclasses.KW_ONLY
            b: int = 0
            count: ClassVar[int] = 0

        return [repr(K(1, b=2)), outcome(K, 1, 2), K.count, K.__match_args__]

    side_by_side(story)

    @dataclass
    class K(SlotObj):
        a: int
        _: dataclasses.KW_ONLY
        b: int = 0

    assert sys.getsizeof(K(1)) == 32


def test_fields_with_defaults_without_a_decorator():
    class P(SlotObj):
        x: int
        y: int = 0
        z: str = "z"

    assert P.__dict__["y"] == 0        # what dataclasses and attrs read, until first use
    assert repr(P(1)) == "P(x=1, y=0, z='z')"
    assert repr(P(1, 2, z="a")) == "P(x=1, y=2, z='a')"
    assert type(P.__dict__["y"]).__name__ == "member_descriptor"
    assert str(__import__("inspect").signature(P)) == "(x, y=0, z='z')"

    class Q(P):
        w: int = 9

    assert repr(Q(1)) == "Q(x=1, y=0, z='z', w=9)"


def attrs_story(base, decorator, **opts):
    @decorator(**opts)
    class A(base):
        x: int
        y: int = 0
        z: list = attrs.field(factory=list)

    publish(A)
    a, b = A(1), A(1, 2, [3])
    out = {
        "repr": repr(a),
        "eq": (a == A(1), a == b),
        "fields": [(f.name, f.default) for f in attrs.fields(A)],
        "match_args": outcome(getattr, A, "__match_args__"),
        "set": outcome(setattr, a, "y", 5),
        "evolve": repr(attrs.evolve(b, y=7)),
        "asdict": attrs.asdict(b),
        "astuple": attrs.astuple(b),
        "hash": outcome(lambda: hash(a) == hash(A(1))),
        "init_errors": [outcome(A), outcome(A, 1, v=2)],
    }
    out.update(roundtrips(b))
    return out


@needs_attrs
@pytest.mark.parametrize("decorator,opts", [
    ("define", {}),
    ("frozen", {}),
    ("define", {"weakref_slot": False}),
    ("define", {"order": True, "kw_only": False}),
    ("define", {"cache_hash": True, "frozen": True}),
])
def test_attrs_as_native(decorator, opts):
    decorator = getattr(attrs, decorator)
    side_by_side(lambda base: attrs_story(base, decorator, **opts))

    @decorator(**opts)
    class A(SlotObj):
        x: int
        y: int = 0

    weak = 0 if opts.get("weakref_slot") is False else 8   # attrs adds one by default
    cache = 8 if opts.get("cache_hash") else 0
    assert sys.getsizeof(A(1)) == 32 + weak + cache
    assert objarena.arena_of(A(1)) is objarena.default_arena


# ---------------------------------------------------------------------------
# 4. Subclasses without __slots__ take attributes beyond their fields

def subclass_story(base):
    ID = type("ID", (base,), {"__slots__": ("a", "b")})
    publish(ID)
    A = publish(type("A", (ID,), {}))
    x = A()
    x.a, x.b = 1, 2
    x.extra = [3]
    x.more = x                      # a cycle through a dynamic attribute
    out = [sorted(vars(x)), x.extra, outcome(getattr, x, "missing"),
           outcome(delattr, x, "missing")]
    del x.more
    out.append(roundtrips(x, range(2, 6), show=lambda o: (o.a, o.b, vars(o))))
    x.__dict__.update(u=1)
    out.append((x.u, sorted(vars(x))))
    x.__dict__ = {"v": 2}
    out.append((vars(x), outcome(getattr, x, "extra"), x.a))
    out.append(outcome(setattr, ID(), "extra", 1)[:2])
    return out


def test_subclass_without_slots_as_native():
    side_by_side(subclass_story)


def test_subclass_without_slots_pays_only_for_extra_attributes():
    class ID(SlotObj):
        __slots__ = ("a", "b")

    A = type("A", (ID,), {})
    first = A(1, 2)
    assert sys.getsizeof(first) == 32            # at the floor while it has none
    first.extra = 1
    assert first.extra == 1 and vars(first) == {"extra": 1}
    # The class learnt: new instances have room for one attribute inline.
    second = A(3, 4)
    second.extra = 2
    assert sys.getsizeof(second) == 40
    assert objarena.arena_of(first) is objarena.default_arena

    # A cycle through the attributes of either form is the arena collector's garbage.
    arena = objarena.Arena()
    B = type("B", (type("Base", (SlotObj,), {"__slots__": ("a",)}, arena=arena),), {})
    for _ in range(2):
        b = B(1)
        b.me = b
        del b
    assert arena.collect() == 2
    assert arena.stats()["objects"] == 0


def test_annotated_classes_stay_at_the_floor():
    class P(SlotObj):
        x: int
        y: int

    p = P(1, 2)
    assert sys.getsizeof(p) == 32
    with pytest.raises(AttributeError):
        p.extra = 1


# ---------------------------------------------------------------------------
# 2. ABCs: no metaclass conflict, no hand-written combined metaclass

def abc_story(base):
    Node = publish(type("Node", (base,), {"__slots__": ("a",)}))

    class E(abc.ABC, Node):
        __slots__ = ()

        @abc.abstractmethod
        def f(self): ...

    class F(E):
        __slots__ = ()

        def f(self):
            return self.a

    class Virtual:
        pass

    E.register(Virtual)
    x = F()
    x.a = 1
    return [outcome(E), x.f(), isinstance(x, E), isinstance(x, Node), issubclass(F, E),
            isinstance(Virtual(), E), issubclass(Virtual, E), isinstance(Virtual(), Node),
            issubclass(Virtual, Node), outcome(issubclass, 1, Node)[:2],
            sorted(E.__abstractmethods__), type(E).__name__ in ("ABCMeta", "ArenaType")]


def test_abc_bases_as_native():
    side_by_side(abc_story)


def mapping_story(base):
    NodeMixin = type("NodeMixin", (base,), {})

    class M(NodeMixin, collections.abc.Mapping):
        def __init__(self, **items):
            self.items_ = items

        def __getitem__(self, k):
            return self.items_[k]

        def __iter__(self):
            return iter(self.items_)

        def __len__(self):
            return len(self.items_)

    class Partial(NodeMixin, collections.abc.Mapping):
        pass

    m = M(a=1, b=2)
    return [dict(m), m.get("c", 3), "a" in m, list(m.keys()), m == M(a=1, b=2),
            isinstance(m, collections.abc.Mapping), outcome(Partial)]


def test_collections_abc_mixin_as_native():
    side_by_side(mapping_story, arena_base=Obj)


def abcmeta_call_story(base):
    ID = type("ID", (base,), {"__slots__": ("a", "b")})
    E = abc.ABCMeta("E", (ID,), {"__slots__": (), "f": abc.abstractmethod(lambda self: 0)})
    G = abc.ABCMeta("G", (E,), {"__slots__": (), "f": lambda self: 1})
    g = G()
    return [outcome(E), g.f(), isinstance(g, E), isinstance(g, ID),
            isinstance(type(E), abc.ABCMeta)]


def test_abcmeta_called_on_arena_bases_as_native():
    side_by_side(abcmeta_call_story)


def test_arena_abc_instances_are_arena_objects():
    class Node(SlotObj):
        __slots__ = ("a", "b")

    class E(abc.ABC, Node):
        pass

    e = E(1, 2)
    assert sys.getsizeof(e) == 32 and objarena.arena_of(e) is objarena.default_arena
    assert type(Node).__instancecheck__ is objarena.ArenaType.__instancecheck__


# ---------------------------------------------------------------------------
# 3. Plain Python mixins with a __dict__

class Greeter:
    """A plain Python class: its instances have a __dict__ and weak references."""

    def __init__(self, *args, **kw):
        self.greeting = "hi"
        super().__init__(*args, **kw)

    def greet(self):
        return f"{self.greeting} {getattr(self, 'name', '?')}"


def mixin_story(base, arena_kind):
    import weakref

    NodeMixin = type("NodeMixin", (base,), {} if arena_kind == "Obj" else {"__slots__": ("a",)})
    MyClass = publish(type("MyClass", (Greeter, NodeMixin), {}))
    m = MyClass()
    m.name = "n"
    m.__dict__.update(extra=1)
    ref = weakref.ref(m)
    out = [m.greet(), sorted(vars(m)), ref() is m, MyClass.__base__ is Greeter,
           outcome(getattr, m, "missing")[:2], isinstance(m, Greeter)]
    if arena_kind != "Obj":
        m.a = 5
        out.append(m.a)
    out.append(roundtrips(m, range(2, 6), show=lambda o: sorted(vars(o).items())))
    del m.name
    out.append(m.greet())
    return out


@pytest.mark.parametrize("arena_base", [Obj, SlotObj], ids=["Obj", "SlotObj"])
def test_plain_mixin_with_dict_as_native(arena_base):
    side_by_side(lambda base: mixin_story(base, arena_base.__name__), arena_base=arena_base)


def test_plain_mixin_instances_are_arena_objects():
    class NodeMixin(Obj):
        pass

    class MyClass(Greeter, NodeMixin):
        pass

    m = MyClass()
    assert objarena.arena_of(m) is objarena.default_arena
    assert not (type(m).__flags__ & (1 << 14))          # no GC header
    m.me = m
    del m
    assert objarena.collect() >= 1


def test_c_level_state_is_refused_naming_the_base():
    class WithSlots:
        __slots__ = ("x",)

    for bad in (WithSlots, Exception, int):
        with pytest.raises(TypeError, match=f"cannot derive from '{bad.__name__}'"):
            type("Bad", (bad, Obj), {})


# ---------------------------------------------------------------------------
# 5. Code that uses __dict__

def dict_story(base):
    class Rec(base):
        def __init__(self, **kw):
            self.__dict__.update(kw)

        def __repr__(self):
            return f"Rec({vars(self)})"

    publish(Rec)
    r = Rec(a=1, b=2, c=3)
    d = vars(r)
    d["x"] = 4                       # a held dict stays the object's storage
    r.y = 5
    out = [repr(r), d == vars(r), sorted(d), r.x]
    del d
    r.z = 6
    del r.a
    out += [repr(r), outcome(getattr, r, "a")[:2], roundtrips(r, range(2, 6))]
    return out


def test_dict_update_initialiser_as_native():
    side_by_side(dict_story, arena_base=Obj)


def test_dict_form_goes_back_inline_once_unshared():
    arena = objarena.Arena()

    class Rec(Obj, arena=arena):
        def __init__(self, **kw):
            self.__dict__.update(kw)

    Rec(a=1, b=2, c=3)               # the class learns: three attributes
    r = Rec(a=1, b=2, c=3)
    assert sys.getsizeof(r) == 16 + 3 * 8          # inline right after __init__
    d = r.__dict__
    assert sys.getsizeof(r) > 40                   # dict form while d is held
    d["b"] = 20
    assert r.b == 20
    del d
    assert r.a == 1 and sys.getsizeof(r) == 40     # back at the next access
    assert vars(r) == {"a": 1, "b": 20, "c": 3}
    keep = [vars(o) for o in [r]]
    del keep
    arena.collect(0)                               # or at a collection
    assert sys.getsizeof(r) == 40


def blocks_per_instance(arena, make, n=64):
    """Bytes of arena blocks each of n new instances takes (they stay alive)."""
    before = arena.stats()["bytes_in_use"]
    keep = [make() for _ in range(n)]
    assert len(keep) == n
    return (arena.stats()["bytes_in_use"] - before) / n


def native_block(obj):
    """What a native instance itself takes, without its dict or values."""
    from objarena._measure import block_size
    return block_size(sys.getsizeof(obj))


def kept_dict_story(base):
    """Instances whose dicts are kept elsewhere, more of them than a class needs to
    learn it, and how they behave while the dicts are held and once let go."""
    registry = []

    class Rec(base):
        def __init__(self, keep, **kw):
            self.__dict__.update(kw)
            if keep:
                registry.append(vars(self))

        def __repr__(self):
            return f"Rec({vars(self)})"

    publish(Rec)
    first = Rec(False, a=1, b=2, c=3)
    objs = [Rec(True, a=i, b=[i], c=str(i)) for i in range(20)]
    out = [repr(first)]
    for i, (o, d) in enumerate(zip(objs, registry)):
        d["x"] = i                   # through the held dict
        o.b.append(o.x)              # through the object
        o.y = -i
        if i % 3 == 0:
            del o.a
        if i % 5 == 0:
            d.pop("c")
        out.append((repr(o), d == vars(o), d is vars(o), outcome(getattr, o, "c")[:2]))
    out.append(roundtrips(objs[7], range(2, 6)))
    del registry[:]
    out += [repr(o) for o in objs]
    out.append([vars(Rec(False, a=i)) for i in range(3)])
    return out


def test_instances_that_keep_their_dict_as_native():
    side_by_side(kept_dict_story, arena_base=Obj)


def wide_story(base):
    """More attributes than an inline form holds: every instance ends in dict form."""
    class Wide(base):
        def __init__(self, n):
            for i in range(n):
                setattr(self, f"a{i}", i)

    publish(Wide)
    objs = [Wide(40) for _ in range(12)]
    for i, o in enumerate(objs):
        o.a3 = -i
        del o.a0
        vars(o)["z"] = i
    small = Wide(2)
    return ([sorted(vars(o).items()) for o in objs], vars(small),
            roundtrips(objs[5], range(2, 6), show=lambda o: sorted(vars(o).items())))


def test_wide_instances_as_native():
    side_by_side(wide_story, arena_base=Obj)


def test_instances_that_end_in_dict_form_are_born_with_the_dicts_slot_only():
    # Objects cannot move: one in dict form keeps the block it was born in.  A class whose
    # instances end their constructor in dict form for good (their dict held elsewhere)
    # learns it, and new instances take the header and the dict's slot: 24 bytes.
    arena = objarena.Arena()
    registry = []

    class Rec(Obj, arena=arena):
        def __init__(self, keep, **kw):
            self.__dict__.update(kw)
            if keep:
                registry.append(vars(self))

    class Native:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    native = Native(a=1, b=2, c=3)
    registry_native = vars(native)
    Rec(False, a=1, b=2, c=3)        # the class learns three attributes
    assert blocks_per_instance(arena, lambda: Rec(False, a=1, b=2, c=3)) == 16 + 3 * 8
    # Eight instances in a row that keep their dict still have the learnt slots ...
    assert blocks_per_instance(arena, lambda: Rec(True, a=1, b=2, c=3), n=8) == 40
    # ... then new ones are born with one slot, which holds the dict.
    assert blocks_per_instance(arena, lambda: Rec(True, a=1, b=2, c=3)) == 16 + 8
    o = Rec(True, a=1, b=2, c=3)
    assert sys.getsizeof(o) == 24 + sys.getsizeof(vars(o))
    # The object itself costs less than a native instance without its dict does.
    assert 24 < native_block(native)
    assert vars(o) == vars(native) == registry[-1] and registry_native is vars(native)

    # Once instances stop keeping their dicts, the class notices at the first constructor
    # call whose object would be inline but for its block, and new instances get the
    # learnt slots again.
    del registry[:]
    assert sys.getsizeof(Rec(False, a=1, b=2, c=3)) > 24      # one born with one slot
    assert blocks_per_instance(arena, lambda: Rec(False, a=1, b=2, c=3)) == 40
    # Instances born with one slot go on in dict form (they cannot grow), and keep their
    # attributes; a collection that finds one of them also teaches the class.
    assert o.a == 1 and vars(o) == {"a": 1, "b": 2, "c": 3}
    assert sys.getsizeof(o) > 24
    objarena._testing.validate(arena)


def test_instances_that_outgrow_the_inline_forms_are_born_with_the_dicts_slot_only():
    arena = objarena.Arena()

    class Wide(Obj, arena=arena):
        def __init__(self, n):
            for i in range(n):
                setattr(self, f"a{i}", i)

    first = [Wide(40) for _ in range(8)]          # in dict form past 30 attributes
    assert blocks_per_instance(arena, lambda: Wide(40)) == 16 + 8
    assert vars(Wide(40)) == {f"a{i}": i for i in range(40)}
    # A class whose instances are built inline again has the slots again.
    Wide(3)
    assert blocks_per_instance(arena, lambda: Wide(3)) > 24
    assert all(o.a39 == 39 for o in first)


def test_collection_teaches_that_instances_fit_inline():
    arena = objarena.Arena()
    registry = []

    class Rec(Obj, arena=arena):
        def __init__(self, **kw):
            self.__dict__.update(kw)
            registry.append(vars(self))

    objs = [Rec(a=i, b=i) for i in range(20)]
    assert {sys.getsizeof(o) - sys.getsizeof(vars(o)) for o in objs[-5:]} == {24}
    assert blocks_per_instance(arena, lambda: Rec(a=1, b=2)) == 24
    del registry[:]
    arena.collect()                  # survivors in dict form that would fit inline
    registry_free = blocks_per_instance(arena, lambda: Rec(a=1, b=2), n=1)
    assert registry_free == 16 + 2 * 8
    assert [o.a for o in objs] == list(range(20))


def test_dynamic_slotobj_subclass_that_keeps_dicts():
    arena = objarena.Arena()
    registry = []
    Base = type("Base", (SlotObj,), {"__slots__": ("a",)}, arena=arena)

    class A(Base):
        def __init__(self, a, **kw):
            super().__init__(a)
            self.__dict__.update(kw)
            registry.append(vars(self))

    objs = [A(i, x=i, y=i) for i in range(20)]
    # the field, then one slot for the dict (not the arena's side table)
    assert blocks_per_instance(arena, lambda: A(1, x=1, y=2)) == 16 + 8 + 8
    assert [(o.a, o.x, vars(o)) for o in objs[-2:]] == [
        (18, 18, {"x": 18, "y": 18}), (19, 19, {"x": 19, "y": 19})]


def vectorcall(callable, args, kwargs):
    """Call through PyObject_Vectorcall as a C caller that lends no args[-1] does
    (no PY_VECTORCALL_ARGUMENTS_OFFSET): 3.12+, else the ordinary call."""
    fn = getattr(ctypes.pythonapi, "PyObject_Vectorcall", None)
    if fn is None or sys.version_info < (3, 12):
        return callable(*args, **kwargs)
    fn.restype = ctypes.py_object
    fn.argtypes = (ctypes.py_object, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    values = (ctypes.py_object * (len(args) + len(kwargs) or 1))(*args, *kwargs.values())
    kwnames = tuple(kwargs)
    return fn(callable, ctypes.addressof(values), len(args),
              id(kwnames) if kwnames else None)


def init_call_story(base):
    """Calls of a class whose __init__ is a Python function, every way a caller can
    make them, and that __init__ replaced later."""
    class P(base):
        def __init__(self, a, b=2, *rest, c=3, **kw):
            self.a, self.b, self.rest, self.c = a, b, rest, c
            self.__dict__.update(kw)

    publish(P)
    many = {f"k{i}": i for i in range(20)}
    calls = [
        lambda: P(1), lambda: P(1, 2, 3, 4, c=5, d=6), lambda: P(*range(20), **many),
        lambda: P(**dict(a=1, **many)), lambda: functools.partial(P, 1, c=0)(9, **many),
        lambda: list(map(P, range(3))), lambda: P(), lambda: P(1, a=2),
        lambda: vectorcall(P, (1, 2), {"c": 3, "z": 4}), lambda: vectorcall(P, (1,), {}),
        lambda: vectorcall(P, tuple(range(20)), many), lambda: vectorcall(P, (), {}),
    ]
    out = []
    for call in calls:
        r = outcome(call)
        if r[0] == "ok":
            r = ("ok", [vars(o) for o in (r[1] if isinstance(r[1], list) else [r[1]])])
        out.append(r)

    class Returns(base):
        def __init__(self, ret):
            self.x = 1
            return ret

    class Raises(base):
        def __init__(self):
            self.x = 1
            raise ValueError("no")

    out += [vars(Returns(None)), outcome(Returns, 5), outcome(Returns, "s"), outcome(Raises)]

    class Q(P):
        def __init__(self, **kw):
            super().__init__(0, **kw)

    publish(Q)
    out.append(vars(Q(x=1)))
    Q.__init__ = lambda self, **kw: self.__dict__.update(kw, late=True)
    out.append(vars(Q(x=1)))
    del Q.__init__                   # P's again
    out.append(vars(Q(7, x=1)))
    Q.__init__ = functools.partialmethod(P.__init__, 100, c=-1)    # not a function
    out.append(vars(Q(x=1)))
    Q.__init__ = staticmethod(lambda **kw: None)
    out += [vars(Q(x=1)), outcome(Q, 1)[:2], roundtrips(P(1, x=2), range(2, 6), show=vars)]
    return out


def test_python_init_calls_as_native():
    side_by_side(init_call_story, arena_base=Obj)


def slot_init_story(base):
    class S(base):
        __slots__ = ("a", "b")

        def __init__(self, a, b=0, **kw):
            self.a, self.b = a, sorted(kw)

    publish(S)
    out = [outcome(lambda: (s.a, s.b)) for s in (S(1), S(1, z=1, y=2), S(a=2))]
    out += [outcome(S)[:2], outcome(lambda: vectorcall(S, (1,), {"q": 1}).b),
            roundtrips(S(1, x=1), range(2, 6), show=lambda o: (o.a, o.b))]
    return out


def test_python_init_of_slotobj_class_as_native():
    side_by_side(slot_init_story, arena_base=SlotObj)


def test_python_init_is_looked_up_after_the_allocation():
    # The allocation may run a collection, and finalizers may change the class: the
    # __init__ that runs is the one the class has once the object exists, as type.__call__
    # looks __init__ up after __new__.
    arena = objarena.Arena()

    class Rec(Obj, arena=arena):
        def __init__(self, **kw):
            self.first = True

    def second(self, **kw):
        self.second = True

    class Trigger(Obj, arena=arena):
        def __del__(self):
            Rec.__init__ = second

    arena.collect()                  # a clean start: the next allocations count from 0
    old = arena.get_threshold()
    try:
        t = Trigger()
        t.me = t
        del t                        # garbage with a finalizer, for the next collection
        arena.set_threshold(1)
        r = Rec(a=1)                 # its allocation collects
    finally:
        arena.set_threshold(*old)
    assert Rec.__init__ is second
    assert vars(r) == {"second": True}

    # The same with an __init__ that is no function any more: the object made is the one
    # initialised (no other is made, and none is finalized unseen).
    finalized = []

    class Logged(Obj, arena=arena):
        def __init__(self, **kw):
            self.first = True

        def __del__(self):
            finalized.append(vars(self))

    class Trigger2(Obj, arena=arena):
        def __del__(self):
            Logged.__init__ = functools.partialmethod(second, extra=1)

    arena.collect()
    try:
        t = Trigger2()
        t.me = t
        del t
        arena.set_threshold(1)
        r = Logged(a=1)
    finally:
        arena.set_threshold(*old)
    assert isinstance(Logged.__dict__["__init__"], functools.partialmethod)
    assert vars(r) == {"second": True} and finalized == []
    del r
    assert finalized == [{"second": True}]


def test_objects_without_value_slots_keep_their_attributes_beside_the_arena():
    # Objects made before their class learnt that instances get attributes have no value
    # slot: their dicts live in the arena's side table, which grows and shrinks.
    import random

    arena = objarena.Arena()
    Base = type("Base", (SlotObj,), {"__slots__": ("a",)}, arena=arena)
    A = type("A", (Base,), {})
    objs = [A(i) for i in range(3000)]
    assert {sys.getsizeof(o) for o in objs} == {24}
    model = {}
    rng = random.Random(12)
    for step in range(20000):
        i = rng.randrange(len(objs))
        o, d = objs[i], model.setdefault(i, {})
        name = rng.choice("xyz")
        if rng.random() < 0.3 and name in d:
            delattr(o, name)
            del d[name]
        elif rng.random() < 0.05:
            o.__dict__ = {}
            d.clear()
        else:
            setattr(o, name, step)
            d[name] = step
    for i, o in enumerate(objs):
        assert vars(o) == model.get(i, {}) and o.a == i
    for o in objs[::2]:
        o.me = o                     # cycles through the side table
    del o
    objs = objs[1::2]
    assert arena.collect() == 1500
    objarena._testing.validate(arena)
    for i, o in zip(range(1, 3000, 2), objs):
        assert vars(o) == model.get(i, {})
    del objs, o
    arena.collect()
    assert arena.stats()["objects"] == 0
