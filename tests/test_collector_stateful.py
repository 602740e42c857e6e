"""A stateful property test of the cycle collector against a model graph.

The model: nodes of several kinds, each with three edge slots, a weak-reference slot
and a tag,

  - arena objects: SlotObj of arena A and of arena B, Obj of arena A, some with a
    __del__ that counts its calls, some with one that also resurrects the object;
  - native objects: lists, dicts, instances of a Python class (some with __del__);

plus a set of roots held by the test.  Rules create nodes (each new node is a root),
add and remove edges between nodes reachable from the roots, drop roots, create weak
references with callbacks (held by the test, or stored in a node), and run
``collect(g)`` on either arena or CPython's gc.  A finalizer that resurrects its
object puts it in a list that the machine takes as roots.

After a full collection (A.collect(2), B.collect(2), gc.collect(), repeated until
nothing more is found: each collector frees what only the other could see), exactly
the nodes that the model says are reachable from the roots are alive, every __del__
ran at most once (and exactly once for dead nodes that have one), and no weak
reference callback saw a live referent.

Liveness is read from the tags, objects of a third arena T each held by one node only,
so that it does not depend on weak references (a resurrected object's are cleared).

Short by default; OBJARENA_STRESS=1 runs many more and longer examples.
"""
import collections
import gc
import os
import weakref

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,
                                 precondition, rule)

import objarena._testing as testing
from objarena import Arena, Obj, SlotObj

STRESS = os.environ.get("OBJARENA_STRESS") == "1"
SLOTS = 3                       # edge slots per node
MAX_NODES = 60                  # nodes created per example

ARENA_KINDS = ("A", "A_del", "A_res", "A_obj", "B", "B_del")
NATIVE_KINDS = ("list", "dict", "nat", "nat_del", "nat_res")
KINDS = ARENA_KINDS + NATIVE_KINDS
WEAKREFABLE = ("A", "A_del", "A_res", "A_obj", "B", "B_del", "nat", "nat_del", "nat_res")
HAS_DEL = ("A_del", "A_res", "B_del", "nat_del", "nat_res")


# --- uniform access to a node's slots ----------------------------------------

def set_edge(kind, obj, slot, value):
    if kind == "list":
        obj[1 + slot] = value
    elif kind == "dict":
        obj[slot] = value
    else:
        setattr(obj, f"e{slot}", value)


def del_edge(kind, obj, slot):
    if kind == "list":
        obj[1 + slot] = None
    elif kind == "dict":
        del obj[slot]
    else:
        delattr(obj, f"e{slot}")


def get_edge(kind, obj, slot):
    if kind == "list":
        return obj[1 + slot]
    if kind == "dict":
        return obj.get(slot)
    return getattr(obj, f"e{slot}", None)


def set_weak(kind, obj, wr):
    if kind == "list":
        obj[1 + SLOTS] = wr
    elif kind == "dict":
        obj["w"] = wr
    else:
        obj.w = wr


class Graph(RuleBasedStateMachine):

    @initialize()
    def setup(self):
        self.A = Arena("stateful-A")
        self.B = Arena("stateful-B")
        self.T = Arena("stateful-tags")
        self.T.disable()
        # Small thresholds: automatic collections happen while the rules run.
        self.A.set_threshold(7, 3, 3)
        self.B.set_threshold(5, 2, 2)
        self.kind = {}                          # nid -> kind
        self.edges = {}                         # nid -> {slot: nid}
        self.roots = {}                         # nid -> object (the test's strong refs)
        self.dels = collections.Counter()       # nid -> __del__ calls
        self.resurrected = []                   # filled by resurrecting finalizers
        self.callback_saw_live = []             # True when a callback saw a referent
        self.callback_calls = collections.Counter()   # weakref's token -> calls
        self.external = []                      # (weakref, nid, token) held by the test
        self.tokens = 0
        self.next_nid = 0
        self.classes = self._make_classes()
        # Everything older than the example is frozen: gc.collect() then costs what the
        # example's own objects cost, not what pytest and hypothesis hold.
        gc.collect()
        gc.freeze()

    def _make_classes(self):
        dels, resurrected = self.dels, self.resurrected

        def counting_del(self):
            dels[self.tag.nid] += 1

        def resurrecting_del(self):
            dels[self.tag.nid] += 1
            resurrected.append(self)

        fields = ("tag", "e0", "e1", "e2", "w", "__weakref__")
        meta = type(SlotObj)

        class Tag(SlotObj, arena=self.T):
            __slots__ = ("nid",)

        cls = {
            "A": meta("NodeA", (SlotObj,), {"__slots__": fields}, arena=self.A),
            "A_del": meta("NodeADel", (SlotObj,), {"__slots__": fields,
                                                  "__del__": counting_del}, arena=self.A),
            "A_res": meta("NodeARes", (SlotObj,), {"__slots__": fields,
                                                  "__del__": resurrecting_del}, arena=self.A),
            "A_obj": meta("ObjA", (Obj,), {"__slots__": ("__weakref__",)}, arena=self.A),
            "B": meta("NodeB", (SlotObj,), {"__slots__": fields}, arena=self.B),
            "B_del": meta("NodeBDel", (SlotObj,), {"__slots__": fields,
                                                  "__del__": counting_del}, arena=self.B),
            "nat": type("Nat", (), {}),
            "nat_del": type("NatDel", (), {"__del__": counting_del}),
            "nat_res": type("NatRes", (), {"__del__": resurrecting_del}),
            "tag": Tag,
        }
        return cls

    # --- helpers ---------------------------------------------------------------

    def _sync(self):
        """Resurrected objects become roots (the machine holds them from now on)."""
        while self.resurrected:
            obj = self.resurrected.pop()
            self.roots[obj.tag.nid] = obj

    def _reach(self, starts):
        seen = set()
        stack = list(starts)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(self.edges[n].values())
        return seen

    def _objects(self):
        """nid -> object for every node reachable from the roots, found by walking the
        real objects along the model's edges (and checking that they match)."""
        objs = dict(self.roots)
        stack = list(self.roots)
        while stack:
            n = stack.pop()
            obj = objs[n]
            for slot in range(SLOTS):
                target = get_edge(self.kind[n], obj, slot)
                dst = self.edges[n].get(slot)
                if dst is None:
                    assert target is None, (n, slot, target)
                    continue
                assert target is not None, (n, slot, dst)
                assert self._nid(target) == dst
                if dst not in objs:
                    objs[dst] = target
                    stack.append(dst)
        return objs

    def _nid(self, obj):
        if isinstance(obj, list):
            return obj[0].nid
        if isinstance(obj, dict):
            return obj["tag"].nid
        return obj.tag.nid

    def _new_weakref(self, obj):
        """A weakref to obj whose callback records its calls under a token."""
        self.tokens += 1
        token = self.tokens
        calls, saw_live = self.callback_calls, self.callback_saw_live

        def callback(wr):
            calls[token] += 1
            saw_live.append(wr() is not None)

        return weakref.ref(obj, callback), token

    def _reachable(self):
        self._sync()
        return sorted(self._reach(self.roots))

    # --- rules -----------------------------------------------------------------

    @precondition(lambda self: self.next_nid < MAX_NODES)
    @rule(kind=st.sampled_from(KINDS))
    def new_node(self, kind):
        self._sync()
        nid = self.next_nid
        self.next_nid += 1
        tag = self.classes["tag"](nid)
        if kind == "list":
            obj = [tag] + [None] * (SLOTS + 1)
        elif kind == "dict":
            obj = {"tag": tag}
        else:
            obj = self.classes[kind]()
            obj.tag = tag
        self.kind[nid] = kind
        self.edges[nid] = {}
        self.roots[nid] = obj

    @rule(data=st.data(), slot=st.integers(0, SLOTS - 1))
    def add_edge(self, data, slot):
        nodes = self._reachable()
        if not nodes:
            return
        src = data.draw(st.sampled_from(nodes), label="src")
        dst = data.draw(st.sampled_from(nodes), label="dst")
        objs = self._objects()
        set_edge(self.kind[src], objs[src], slot, objs[dst])
        self.edges[src][slot] = dst

    @rule(data=st.data())
    def remove_edge(self, data):
        nodes = [n for n in self._reachable() if self.edges[n]]
        if not nodes:
            return
        src = data.draw(st.sampled_from(nodes), label="src")
        slot = data.draw(st.sampled_from(sorted(self.edges[src])), label="slot")
        objs = self._objects()
        del self.edges[src][slot]
        del_edge(self.kind[src], objs[src], slot)
        del objs

    @rule(data=st.data())
    def drop_root(self, data):
        self._sync()
        if not self.roots:
            return
        nid = data.draw(st.sampled_from(sorted(self.roots)), label="root")
        del self.roots[nid]

    @rule(data=st.data(), external=st.booleans())
    def make_weakref(self, data, external):
        nodes = self._reachable()
        targets = [n for n in nodes if self.kind[n] in WEAKREFABLE]
        if not targets:
            return
        target = data.draw(st.sampled_from(targets), label="target")
        objs = self._objects()
        wr, token = self._new_weakref(objs[target])
        if external:
            self.external.append((wr, target, token))
        else:
            holder = data.draw(st.sampled_from(nodes), label="holder")
            set_weak(self.kind[holder], objs[holder], wr)
        del objs, wr

    @rule(which=st.sampled_from(["A", "B", "gc"]), generation=st.integers(0, 2))
    def collect(self, which, generation):
        if which == "gc":
            found = gc.collect(generation)
        else:
            found = getattr(self, which).collect(generation)
        assert found >= 0

    @rule()
    def full_collection_and_check(self):
        self._full_check()

    # --- invariants --------------------------------------------------------------

    @invariant()
    def finalizers_once_and_callbacks_saw_none(self):
        assert all(c <= 1 for c in self.dels.values()), self.dels
        assert not any(self.callback_saw_live)

    def _full_check(self):
        for _ in range(10):
            self._sync()
            found = self.A.collect(2) + self.B.collect(2) + gc.collect()
            if found == 0 and not self.resurrected:
                break
        self._sync()
        for arena in (self.A, self.B, self.T):
            testing.validate(arena)
        expected = self._reach(self.roots)
        tags = self.T.get_objects()
        alive = sorted(t.nid for t in tags)
        del tags
        assert alive == sorted(expected)
        objs = self._objects()                  # the structure is intact
        assert set(objs) == expected
        del objs
        in_a = sum(1 for n in expected if self.kind[n].startswith("A"))
        in_b = sum(1 for n in expected if self.kind[n].startswith("B"))
        assert self.A.stats()["objects"] == in_a
        assert self.B.stats()["objects"] == in_b
        for nid, kind in self.kind.items():
            if kind in HAS_DEL and nid not in expected:
                assert self.dels[nid] == 1, (nid, kind)
        assert all(c <= 1 for c in self.dels.values())
        for wr, nid, token in self.external:
            dead = wr() is None
            # Called once when its referent died or was found unreachable (then
            # perhaps resurrected), never while it was alive and reachable.
            assert self.callback_calls[token] == (1 if dead else 0), (nid, dead)
            if nid not in expected:
                assert dead, nid
        assert not any(self.callback_saw_live)

    def teardown(self):
        if not hasattr(self, "A"):
            return
        try:
            for _ in range(MAX_NODES + 1):      # each node resurrects at most once
                self.roots.clear()
                self._full_check()
                if not self.roots:
                    break
            assert not self.roots
        finally:
            gc.unfreeze()
        self.A.set_threshold(0)
        self.B.set_threshold(0)


Graph.TestCase.settings = settings(
    max_examples=400 if STRESS else 30,
    stateful_step_count=100 if STRESS else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestCollectorGraph = Graph.TestCase
