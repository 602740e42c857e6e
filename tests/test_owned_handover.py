"""Containers that an Obj's attribute alone holds leave CPython's gc.

The arena's collector treats a list, dict, set or Python-class instance that one
dynamic attribute of an arena object holds alone as part of that object, and takes
it off CPython's collector (CPython's collections then stop walking the children
lists and payloads of Obj trees).  Every path that hands such a value out tracks it
again first.  These tests check, side by side with native classes, that nothing is
lost either way: a cycle made through a value after it was handed out is freed by
gc.collect() as the native one is, and a cycle through the owner is freed by the
arena's collection.
"""
import copy
import gc
import pickle
import weakref

import pytest

import objarena
from objarena import Arena, Obj


class Payload:
    """A plain Python class (no __del__): its instances may be owned containers."""


ARENA = Arena("handover")


class ArenaNode(Obj, arena=ARENA):
    pass


class NativeNode:
    pass


def kinds():
    return {"native": (NativeNode, None), "arena": (ArenaNode, ARENA)}


def new_node(node_cls):
    """A node whose attributes (kids, p) arrive in the order its class knows: it
    keeps them in its value slots, not in a dict."""
    warm = node_cls()
    warm.kids = []
    warm.p = Payload()
    n = node_cls()
    n.kids = []
    n.p = Payload()
    return n


def settle(arena):
    """Collect both ways: the arena's full collection takes owned containers off
    CPython's gc (a no-op for the native kind)."""
    gc.collect()
    if arena is not None:
        arena.collect(2)


def is_listed(obj_id):
    return any(id(o) == obj_id for o in gc.get_objects())


def test_owned_containers_leave_cpythons_gc_until_read():
    node_cls, arena = kinds()["arena"]
    n = new_node(node_cls)
    state = n.__getstate__()
    ids = (id(state["kids"]), id(state["p"]))
    del state                        # n holds them alone again
    settle(arena)
    assert not any(is_listed(i) for i in ids)
    got = n.kids                     # read: tracked again
    assert gc.is_tracked(got) and is_listed(ids[0])
    assert gc.is_tracked(n.p)
    # Held twice (here and by n): not owned; the next collection leaves it tracked.
    settle(arena)
    assert gc.is_tracked(got)


def hand_out(n, arena, how):
    """(p, kids) of n, obtained the way `how` says."""
    if how == "getattr":
        return n.p, n.kids
    if how == "vars":
        return vars(n)["p"], vars(n)["kids"]
    if how == "dict":
        d = n.__dict__
        return d["p"], d["kids"]
    if how == "getstate":
        # object.__getstate__ exists from 3.11; before, a native instance's state
        # is its __dict__.
        state = n.__getstate__() if hasattr(n, "__getstate__") else vars(n)
        state = state[0] if isinstance(state, tuple) else state
        return state["p"], state["kids"]
    if how == "copy":
        c = copy.copy(n)
        return c.p, c.kids
    if how == "deepcopy_memo":
        # deepcopy's memo keeps the originals it met.
        memo = {}
        copy.deepcopy(n, memo)
        originals = [v for k, v in memo.items() if k == id(memo)][0]
        return (next(o for o in originals if type(o) is Payload),
                next(o for o in originals if type(o) is list and o is not originals))
    if how == "reduce":
        reduced = n.__reduce_ex__(2)
        state = reduced[2]
        state = state[0] if isinstance(state, tuple) else state
        return state["p"], state["kids"]
    assert how == "arena_referents"
    if arena is None:
        refs = gc.get_referents(n)
        refs = [x for r in refs if isinstance(r, dict) for x in r.values()] + refs
    else:
        refs = arena.get_referents(n)
    return (next(r for r in refs if type(r) is Payload),
            next(r for r in refs if type(r) is list))


HOW = ["getattr", "vars", "dict", "getstate", "copy", "deepcopy_memo", "reduce",
       "arena_referents"]


@pytest.mark.parametrize("kind", ["native", "arena"])
@pytest.mark.parametrize("how", HOW)
def test_a_cycle_made_through_a_handed_out_value_is_freed(kind, how):
    node_cls, arena = kinds()[kind]
    n = new_node(node_cls)
    settle(arena)
    p, kids = hand_out(n, arena, how)
    assert gc.is_tracked(p) and gc.is_tracked(kids)
    p.me = p                         # a native cycle through the payload
    kids.append(kids)                # and one through the list
    probe = Payload()
    kids.append(probe)
    wp, wk = weakref.ref(p), weakref.ref(probe)
    del p, kids, probe
    n.p = None
    n.kids = None
    gc.collect()
    assert wp() is None and wk() is None


@pytest.mark.parametrize("kind", ["native", "arena"])
def test_pickle_round_trip_after_handover(kind):
    node_cls, arena = kinds()[kind]
    n = new_node(node_cls)
    n.p.value = 7
    n.kids.extend([1, 2])
    settle(arena)
    m = pickle.loads(pickle.dumps(n))
    assert type(m) is node_cls and m.p.value == 7 and m.kids == [1, 2]
    assert gc.is_tracked(m.kids) and gc.is_tracked(n.kids)


@pytest.mark.parametrize("kind", ["native", "arena"])
def test_a_cycle_through_the_owner_and_its_owned_containers_is_freed(kind):
    node_cls, arena = kinds()[kind]
    new_node(node_cls)
    root = node_cls()
    root.kids = []
    root.p = Payload()
    probes = []
    for _ in range(50):
        child = node_cls()
        child.kids = []
        child.p = Payload()
        child.p.owner = child        # payload -> node: a cycle through the payload
        child.parent = root
        root.kids.append(child)
        probe = Payload()
        child.kids.append(probe)
        probes.append(weakref.ref(probe))
    del child, probe
    settle(arena)
    settle(arena)
    assert all(w() is not None for w in probes)
    del root
    gc.collect()                     # frees arena cycles too
    assert all(w() is None for w in probes)


def test_a_class_given_a_finalizer_after_its_instance_was_handed_over():
    """The instance left CPython's gc while its class had no __del__; the class
    gains one: the cycle through it is still found, and the finalizer runs once."""
    node_cls, arena = kinds()["arena"]

    class Late:
        pass

    ran = []
    n = node_cls()
    n.kids = []
    n.p = Late()
    settle(arena)
    Late.__del__ = lambda self: ran.append(1)
    q = Late()
    q.owner = n                      # n -> n.q -> n, n.p never read
    n.q = q
    wq = weakref.ref(q)
    del q, n
    gc.collect()
    assert wq() is None
    assert len(ran) == 2             # n.p's and q's finalizers


def test_an_owned_container_is_freed_with_its_attribute():
    node_cls, arena = kinds()["arena"]
    n = new_node(node_cls)
    probe = Payload()
    w = weakref.ref(probe)
    n.kids = [probe]
    del probe
    settle(arena)
    n.kids = None                    # the list (untracked, owned) is freed
    assert w() is None
    probe = Payload()
    w = weakref.ref(probe)
    n.p = Payload()
    n.p.probe = probe
    del probe
    settle(arena)
    del n.p
    assert w() is None


class Probe(Payload):
    """A payload that weak references can watch."""


def random_program(seed, node_cls, arena, steps=400):
    """Random trees of nodes with lists and payloads, values read out in every way
    that hands them out, native cycles made through what was read, attributes
    replaced and deleted, collections in between.  Returns weak references to
    every probe made, once the program has dropped everything."""
    import random
    rnd = random.Random(seed)
    nodes = [new_node(node_cls)]
    held = []                       # values the program keeps for a while
    probes = []

    def probe():
        p = Probe()
        probes.append(weakref.ref(p))
        return p

    for _ in range(steps):
        op = rnd.randrange(12)
        n = rnd.choice(nodes)
        if op == 0:                 # a new child: list, payload, parent pointer
            child = node_cls()
            child.kids = [probe()]
            child.p = probe()
            child.parent = n
            if isinstance(getattr(n, "kids", None), list):
                n.kids.append(child)
            nodes.append(child)
        elif op == 1:
            settle(arena)
        elif op == 2 and rnd.random() < 0.5:
            gc.collect()
        elif op == 3:               # read a value out and make a native cycle through it
            v = getattr(n, rnd.choice(["kids", "p"]), None)
            if isinstance(v, list):
                v.append(v)
                v.append(probe())
            elif isinstance(v, Payload):
                v.me = v
                v.other = probe()
            held.append(v)
        elif op == 4:
            d = vars(n)
            held.append(d.get("p"))
        elif op == 5:
            held.append(copy.copy(n))
        elif op == 6:
            n.p = probe() if rnd.random() < 0.5 else [probe()]
        elif op == 7 and hasattr(n, "p"):
            del n.p
        elif op == 8 and arena is not None:
            held.extend(r for r in arena.get_referents(n) if not isinstance(r, type))
        elif op == 9:
            p = probe()
            p.owner = n             # payload -> node -> payload: a cycle via the arena
            n.back = p
        elif op == 10 and held:
            held.pop(rnd.randrange(len(held)))
        elif op == 11 and len(nodes) > 1:
            nodes.pop(rnd.randrange(1, len(nodes)))
    del nodes, held, n
    return probes


@pytest.mark.parametrize("seed", range(6))
def test_random_programs_lose_nothing(seed):
    """Whatever a program does with the values, once it drops everything
    gc.collect() frees every probe, for native and arena nodes alike."""
    for kind in ("native", "arena"):
        node_cls, arena = kinds()[kind]
        probes = random_program(seed, node_cls, arena)
        gc.collect()
        gc.collect()
        alive = [w for w in probes if w() is not None]
        assert alive == [], (kind, len(alive), len(probes))


@pytest.mark.parametrize("kind", ["native", "arena"])
def test_a_container_found_as_a_referrer_is_tracked_again(kind):
    node_cls, arena = kinds()[kind]
    n = new_node(node_cls)
    child = Payload()
    n.kids.append(child)
    settle(arena)
    source = arena if arena is not None else gc
    referrers = [r for r in source.get_referrers(child) if type(r) is list]
    assert len(referrers) == 1 and gc.is_tracked(referrers[0])
    kids = referrers[0]
    del referrers
    kids.append(kids)
    wk = weakref.ref(child)
    del kids, child
    n.kids = None
    gc.collect()
    assert wk() is None
