"""Shared fixtures for the objarena test suite.

The central idea: wherever a SlotObj class must behave like a native
``__slots__`` class, one test body runs against both.  The ``make`` fixture is
parametrised over the two kinds and returns a class factory

    make(name, fields, weakref=False, base=None, **namespace)

that builds, for "native", ``class name(base or object): __slots__ = fields``
with a generated ``__init__(self, <all fields, inherited first>)`` (a missing
argument leaves its field unset, the way SlotObj's generated ``__init__`` does),
and for "slotobj", ``class name(base or SlotObj): __slots__ = fields``.  Both
classes get the same name and qualname, so CPython's error messages compare
equal between the two.
"""
import types

import pytest

import objarena
import objarena._testing
from objarena import SlotObj


class _Unset:
    __slots__ = ()

    def __repr__(self):
        return "<unset>"


UNSET = _Unset()  # default of the generated native __init__: "argument not given"


def slot_fields(cls):
    """Every field of cls, inherited first, without __weakref__ / __dict__."""
    out = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        slots = (slots,) if isinstance(slots, str) else slots
        out += [s for s in slots if s not in ("__weakref__", "__dict__")]
    return tuple(out)


def make_native(name, fields, weakref=False, base=None, **namespace):
    """A native __slots__ class with an __init__ like SlotObj's generated one."""
    fields = tuple(fields)
    allf = (slot_fields(base) if base is not None else ()) + fields
    params = "".join(f", {f}=UNSET" for f in allf)
    body = "".join(f"\n    if {f} is not UNSET: self.{f} = {f}" for f in allf)
    scope = {"UNSET": UNSET}
    exec(f"def __init__(self{params}):{body or chr(10) + '    pass'}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{name}.__init__"
    ns = {"__slots__": fields + (("__weakref__",) if weakref else ()),
          "__init__": init, "__module__": __name__}
    ns.update(namespace)
    return type(name, (base,) if base is not None else (), ns)


def make_slot(name, fields, weakref=False, base=None, arena=None, **namespace):
    """``class name(base or SlotObj[, arena=arena]): __slots__ = fields``."""
    ns = {"__slots__": tuple(fields) + (("__weakref__",) if weakref else ()),
          "__module__": __name__}
    ns.update(namespace)
    kwds = {} if arena is None else {"arena": arena}
    return types.new_class(name, (base if base is not None else SlotObj,),
                           kwds, lambda d: d.update(ns))


@pytest.fixture(params=["native", "slotobj"])
def kind(request):
    return request.param


@pytest.fixture
def make(kind):
    return make_native if kind == "native" else make_slot


@pytest.fixture
def root(kind):
    """The base of a class statement: ``object`` or ``SlotObj``."""
    return object if kind == "native" else SlotObj


@pytest.fixture(name="make_native")
def _make_native():
    return make_native


@pytest.fixture(name="make_slot")
def _make_slot():
    return make_slot


@pytest.fixture
def arena(request):
    return objarena.Arena(name=request.node.name[:40])


@pytest.fixture(autouse=True)
def _default_arena_stays_valid():
    """After every test, the default arena's invariants must still hold."""
    yield
    objarena._testing.validate(objarena.default_arena)
