"""A property test of objarena.Obj against a native class, side by side.

Two worlds run the same random program: in one, ``P`` is a plain Python class whose
``__init__(self, **kw)`` sets every keyword as an attribute; in the other, ``P`` derives
from ``objarena.Obj``.  Both are called ``P`` and are built the same way (optionally
with a ``__slots__`` field ``"a"`` beside the dynamic attributes), so results, exception
types and messages must be identical, step by step.

A program is a list of operations on three instances of the class (so that the
instances share, grow and abandon the class's shapes) and on the class itself:

  set name=value, get, del, getattr with a default, hasattr, a ``vars()`` snapshot,
  writes and deletes through ``__dict__`` (write-through), ``__dict__`` replacement,
  writes through a ``__dict__`` held from before (which a replacement detaches),
  ``__dict__.clear()``, many attributes at once (past the 30-key shape limit),
  re-creating an instance with keywords (the keyword-shape cache), class attributes
  and read-only properties appearing and disappearing, and ``__class__`` assignment
  between two classes of the same layout, copy.copy and copy.deepcopy;
  instances of a third class of that layout whose ``__init__`` does
  ``self.__dict__.update(kw)`` and may keep ``vars(self)`` in a registry (a run of them
  teaches the Obj class to give its instances the dict's slot only), the registry let go,
  and a collection.

Names come from a small alphabet, so that collisions happen, and are built at run time
half of the time, so that they are not interned.  Short by default (100 examples);
OBJARENA_STRESS=1 runs many more and longer programs.
"""
import copy
import gc
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

try:
    from objarena import Obj
except ImportError:  # until python/objarena/__init__.py re-exports it
    from objarena._objarena import Obj

STRESS = os.environ.get("OBJARENA_STRESS") == "1"
NAMES = ("a", "b", "c", "d", "e")
INSTANCES = 3


class NativeRoot:
    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def make_classes(root, slots, registry):
    ns = {"__module__": __name__, "__qualname__": "P"}
    if slots:
        ns["__slots__"] = ("a",)
    P = type("P", (root,), dict(ns))
    ns["__qualname__"] = "Q"
    Q = type("Q", (root,), dict(ns))  # same layout as P: __class__ can move between them

    def __init__(self, keep, **kw):
        self.__dict__.update(kw)
        if keep:
            registry.append(vars(self))

    ns.update(__qualname__="K", __init__=__init__)
    K = type("K", (root,), ns)        # the same layout too
    return P, Q, K


def fresh(name, runtime):
    """The name, built at run time (not interned) when asked."""
    return "".join(list(name)) if runtime else name


class World:
    def __init__(self, root, slots):
        self.registry = []
        self.P, self.Q, self.K = make_classes(root, slots, self.registry)
        self.objs = [self.P() for _ in range(INSTANCES)]
        self.held = [None] * INSTANCES

    def run(self, op):
        kind, i, args = op[0], op[1], op[2:]
        o = self.objs[i]
        if kind == "set":
            name, rt, value = args
            setattr(o, fresh(name, rt), value)
        elif kind == "get":
            name, rt = args
            return getattr(o, fresh(name, rt))
        elif kind == "del":
            name, rt = args
            delattr(o, fresh(name, rt))
        elif kind == "getdefault":
            name, rt = args
            return getattr(o, fresh(name, rt), "<default>")
        elif kind == "hasattr":
            name, rt = args
            return hasattr(o, fresh(name, rt))
        elif kind == "vars":
            return list(vars(o).items())
        elif kind == "dict_set":
            name, value = args
            o.__dict__[name] = value
        elif kind == "dict_del":
            (name,) = args
            del o.__dict__[name]
        elif kind == "dict_clear":
            o.__dict__.clear()
        elif kind == "dict_replace":
            (items,) = args
            o.__dict__ = dict(items)
        elif kind == "hold":
            self.held[i] = o.__dict__
        elif kind == "held_set":
            name, value = args
            if self.held[i] is not None:
                self.held[i][name] = value
                return list(self.held[i].items())
        elif kind == "bulk":
            (n,) = args
            for k in range(n):
                setattr(o, f"k{k}", k)
        elif kind == "create":
            (items,) = args
            self.objs[i] = type(o)(**dict(items))
        elif kind == "class_set":
            name, value = args
            setattr(self.P, name, value)
        elif kind == "class_prop":
            (name,) = args
            setattr(self.P, name, property(lambda self, name=name: ("property", name)))
        elif kind == "class_del":
            (name,) = args
            delattr(self.P, name)
        elif kind == "copy":
            (deep,) = args
            self.objs[i] = (copy.deepcopy if deep else copy.copy)(o)
        elif kind == "set_class":
            (to_q,) = args
            o.__class__ = self.Q if to_q else self.P
        elif kind == "kcreate":
            count, keep, items = args
            for _ in range(count):
                self.objs[i] = self.K(keep, **dict(items))
        elif kind == "release":
            del self.registry[:]
        elif kind == "collect":
            gc.collect()
        else:  # pragma: no cover
            raise AssertionError(kind)
        return None

    def step(self, op):
        try:
            return ("ok", self.run(op))
        except Exception as e:  # noqa: BLE001 - the point is to compare them
            return ("raise", type(e), str(e))

    def snapshot(self):
        out = []
        for o in self.objs:
            # "a" may be the __slots__ field: it is not in vars()
            out.append((type(o).__name__, list(vars(o).items()),
                        getattr(o, "a", "<unset>")))
        return out


index = st.integers(0, INSTANCES - 1)
name = st.sampled_from(NAMES)
runtime = st.booleans()
value = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y", None]))
# not "a": replacing the __slots__ field's member descriptor on the class makes native
# copy/pickle read the class attribute as slot state; Obj reads its fields directly
class_name = st.sampled_from(NAMES[1:])
items = st.lists(st.tuples(name, value), max_size=4)

op = st.one_of(
    st.tuples(st.just("set"), index, name, runtime, value),
    st.tuples(st.just("get"), index, name, runtime),
    st.tuples(st.just("del"), index, name, runtime),
    st.tuples(st.just("getdefault"), index, name, runtime),
    st.tuples(st.just("hasattr"), index, name, runtime),
    st.tuples(st.just("vars"), index),
    st.tuples(st.just("dict_set"), index, name, value),
    st.tuples(st.just("dict_del"), index, name),
    st.tuples(st.just("dict_clear"), index),
    st.tuples(st.just("dict_replace"), index, items),
    st.tuples(st.just("hold"), index),
    st.tuples(st.just("held_set"), index, name, value),
    st.tuples(st.just("bulk"), index, st.integers(25, 36)),
    st.tuples(st.just("create"), index, items),
    st.tuples(st.just("class_set"), index, class_name, value),
    st.tuples(st.just("class_prop"), index, class_name),
    st.tuples(st.just("class_del"), index, class_name),
    st.tuples(st.just("set_class"), index, st.booleans()),
    st.tuples(st.just("copy"), index, st.booleans()),
    st.tuples(st.just("kcreate"), index, st.sampled_from([1, 9]), st.booleans(), items),
    st.tuples(st.just("release"), index),
    st.tuples(st.just("collect"), index),
)

# the common operations more often than the rare ones
program = st.lists(
    st.one_of(
        st.tuples(st.just("set"), index, name, runtime, value),
        st.tuples(st.just("del"), index, name, runtime),
        st.tuples(st.just("get"), index, name, runtime),
        op,
    ),
    max_size=150 if STRESS else 40,
)

SETTINGS = settings(
    max_examples=2000 if STRESS else 100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(ops=program, slots=st.booleans())
# Divergences found by this test, kept as explicit examples so that they fail every run:
# deleting a missing attribute (CPython 3.10 says just 'b'), and copy.copy restoring the
# state through setattr (a dict entry shadowed by the __slots__ field goes to the field).
@example(ops=[("set", 0, "a", False, 0), ("del", 0, "b", False)], slots=False)
@example(ops=[("dict_set", 0, "a", 0), ("set", 0, "a", False, 1), ("copy", 0, False)],
         slots=True)
def test_obj_matches_native(ops, slots):
    native, obj = World(NativeRoot, slots), World(Obj, slots)
    for n, step in enumerate(ops):
        expected, got = native.step(step), obj.step(step)
        assert got == expected, f"step {n}: {step!r}"
        assert obj.snapshot() == native.snapshot(), f"after step {n}: {step!r}"
