/*
 * gc.c -- the arena's generational cycle collector.
 *
 * CPython's collector never sees arena objects (they have no GC header), so
 * a cycle through them would leak.  This collector finds such cycles with
 * CPython's algorithm, trial deletion, over a set of its own objects, and
 * frees them in CPython's order.  The gc-like API of Arena lives in
 * gcmodule.c; the policy that decides when to collect is at the end of this
 * file (select_generation), called from allocation (types.c) and from the
 * gc.callbacks hook (module.c).
 *
 * Side-table bits (arena.h: one byte per block) the collector keeps:
 *   generation 0..3       as CPython's generations (3: frozen);
 *   FINALIZED             __del__ ran (PEP 442: once per object);
 *   UNTRACKED             persistent: at its last examination no field held
 *                         a container or an arena object, so the object
 *                         cannot be part of a cycle; collections skip it
 *                         until they examine it again (below);
 *   REACHED, ATOMIC       transient, only during the phases before Python
 *                         code runs: marked reachable; found untrackable.
 * Membership of the set is a function of the byte alone (is_member): live,
 * not dying, not untracked, generation <= g.
 *
 * Untracked objects (CPython untracks tuples of atoms, msgspec structs
 * without containers; here any record qualifies).  A field may be written at
 * any time without a hook (the interpreter specialises field access), so an
 * untracked object is examined again: at every collection of its generation
 * while it is young, at every explicit full collection (Arena.collect(2),
 * gc.collect()), and at one automatic full collection in OA_UNTRACKED_SLICES
 * for each page (round robin).  A cycle made by writing to an old untracked
 * object is therefore found at most OA_UNTRACKED_SLICES automatic full
 * collections later, or at the next explicit one.  Examining one costs a
 * read of its fields and of their types, no counter and no mark.
 *
 * One collection of generation g (collect_phases lists the phases, each a
 * function that states its pre- and post-conditions; collect_generation
 * wraps them with the bookkeeping):
 *
 *   take_set       S = the members in generations 0..g (the young list's
 *                  pages for g <= 1, every page for g == 2), untracked ones
 *                  in scope examined again; one counter byte per block of
 *                  each page holding a member.  Work space is taken here,
 *                  before anything changes; without it the collection gives
 *                  up having collected nothing.
 *   subtract_refs  gc_refs := ob_refcnt less every reference from inside S,
 *                  one pass over the pages (both are sums: each object is
 *                  read once).  Foreign objects referenced from S -- lists,
 *                  tuples, dicts, sets, instances of Python classes, objects
 *                  of other arenas; classes and their contents in full
 *                  collections -- join S (a hash map), up to a budget; a
 *                  container that one member holds alone is part of it.
 *                  Each member leaves its edge-cache word (OA_EDGE_*).
 *   mark_reachable objects with gc_refs > 0 are referenced from outside S;
 *                  they and all they reach are marked, from the edge cache
 *                  where a member reaches one other, else by reading it; the
 *                  containers a survivor's dynamic attributes hold alone
 *                  leave CPython's gc (reach_edge, oa_gc_expose).
 *   split          marked members are promoted to g+1 (ATOMIC ones become
 *                  UNTRACKED); the rest are the unreachable.
 *   -- From here Python code runs; every unreachable object is held. --
 *   handle_garbage weak references cleared then their callbacks called,
 *                  finalizers, the resurrection check (find_resurrected),
 *                  then fields cleared: CPython's order (gc_collect_main).
 *
 * Counters.  gc_refs live in one byte per block: values up to
 * OA_REFS_SMALL - 1 in the byte, larger ones (rare: objects referenced more
 * than 249 times) in an exact overflow map, the byte saying OA_REFS_BIG.
 * The work space of a collection is thus about five bytes per member (the
 * counter and the edge-cache word; plus the stack, bounded, and the foreign
 * map).
 *
 * Trial deletion over any subset is conservative: whatever is referenced
 * from outside the set survives.  So is skipping untracked objects: their
 * references to members count as external.
 */
#include "objarena.h"

#include <time.h>

/* Side-table bits of the collector (arena.h leaves USER1, USER2, USER4). */
#define OA_META_ATOMIC OA_META_USER1
#define OA_META_REACHED OA_META_USER2
#define OA_META_UNTRACKED OA_META_USER4

/* A page's untracked objects are examined again at one automatic full
   collection in this many: the bound on the delay before a cycle made
   through an old untracked object is found, against the cost of reading
   every untracked object at each full collection. */
#define OA_UNTRACKED_SLICES 4

/* Counter bytes: 0..OA_REFS_SMALL-1 exact; OA_REFS_BIG: in the overflow
   map.  OA_REFS_PENDING: marked, fields not yet visited (the mark stack was
   full; a page scan finds it). */
#define OA_REFS_SMALL 250
#define OA_REFS_PENDING 254
#define OA_REFS_BIG 255

/* The mark stack holds at most this many objects (128 KiB); past it,
   objects wait as PENDING and page scans take them (no unbounded work
   space, no recursion). */
#define OA_STACK_MAX (16 * 1024)

/* Foreign objects that may join one collection: proportional to the set,
   so that a collection's cost stays linear in |S| whatever the foreign
   graph around it (a young collection must not walk a heap of native
   objects); the constant lets a small set still reach the containers its
   cycles go through. */
#define OA_BUDGET_PER_MEMBER 4
#define OA_BUDGET_MIN 1024

/* How far ahead of the object it reads subtract_refs asks for memory. */
#define OA_PREFETCH_BYTES 2048

/* The edge cache (mark_reachable without a second read of most objects).
   subtract_refs reads every member once; for each it leaves one word in
   c->edges: OA_EDGE_NONE if marking it reaches nothing (its references are
   atoms or arena objects outside the set), the address of the one member
   it references (the page's place in c->pages, then the block) if that is
   all it reaches, OA_EDGE_READ otherwise (two or more members, a foreign
   object, an owned container, a dict to fold back inline): marking reads
   such an object again.  Records whose only reference into the set is a
   single field -- pairs, chains, parent pointers -- are thus marked from
   the cache: four bytes per block read instead of the object. */
#define OA_EDGE_NONE UINT32_MAX
#define OA_EDGE_READ (UINT32_MAX - 1)
#define OA_EDGE_OUT (UINT32_MAX - 2)    /* subtract_edge: not an atom, but
                                           nothing to follow either */
#define OA_EDGE_BLOCK_BITS 10
#define OA_EDGE_BLOCK_MASK ((1u << OA_EDGE_BLOCK_BITS) - 1)
#define OA_EDGE_MAX_PAGES ((1u << (32 - OA_EDGE_BLOCK_BITS)) - 2)
#if ((1 << OA_PAGE_SHIFT) / OA_MIN_BLOCK) > (1 << OA_EDGE_BLOCK_BITS)
#error "the edge cache needs a page's block index in OA_EDGE_BLOCK_BITS"
#endif

/* ------------------------------------------------------------------------ */
/* Work space                                                                 */

typedef struct {
    PyObject **items;
    Py_ssize_t n;
    Py_ssize_t cap;
} ObjVec;

/* Room for one more item in a work array holding n items of `size` bytes:
   the array doubles when full.  -1 if the work space cannot be had (the
   array is unchanged). */
static int
work_reserve(void **items, Py_ssize_t n, Py_ssize_t *cap, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    Py_ssize_t newcap = *cap ? *cap * 2 : 64;
    void *grown = oa_work_alloc((size_t)newcap * size);
    if (grown == NULL) {
        return -1;
    }
    if (n) {
        memcpy(grown, *items, (size_t)n * size);
    }
    oa_work_free(*items);
    *items = grown;
    *cap = newcap;
    return 0;
}

static int
vec_push(ObjVec *v, PyObject *op)
{
    void *items = v->items;
    if (work_reserve(&items, v->n, &v->cap, sizeof(PyObject *)) < 0) {
        return -1;
    }
    v->items = items;
    v->items[v->n++] = op;
    return 0;
}

/* An array of exactly n items, taken at once (n may be 0). */
static int
vec_reserve_exact(ObjVec *v, Py_ssize_t n)
{
    v->items = oa_work_alloc((size_t)(n > 0 ? n : 1) * sizeof(PyObject *));
    v->n = 0;
    v->cap = v->items != NULL ? (n > 0 ? n : 1) : 0;
    return v->items != NULL ? 0 : -1;
}

static void
vec_free(ObjVec *v)
{
    oa_work_free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* Nodes found by address (foreign members, members whose gc_refs do not
   fit a byte, the resurrection check): open addressing, one 16-byte slot
   per node holding the address, its mark (in the address's low bits:
   0 not reached, 1 reached, 2 reached but its references not yet visited)
   and its gc_refs, so that a lookup touches one cache line; plus the slots'
   order of insertion, for the passes over every node. */
typedef struct {
    uintptr_t key;              /* address | mark; 0: empty */
    Py_ssize_t refs;
} MapSlot;

typedef struct {
    MapSlot *slots;             /* mask + 1 of them, at most half used */
    size_t mask;
    size_t *order;              /* slot of the k-th node added */
    Py_ssize_t n;
    Py_ssize_t cap;             /* nodes before the table grows */
} NodeMap;

#define MARK_BITS ((uintptr_t)3)

static inline PyObject *
slot_op(const MapSlot *s)
{
    return (PyObject *)(s->key & ~MARK_BITS);
}

static inline unsigned
slot_mark(const MapSlot *s)
{
    return (unsigned)(s->key & MARK_BITS);
}

static inline void
slot_set_mark(MapSlot *s, unsigned mark)
{
    s->key = (s->key & ~MARK_BITS) | mark;
}

static inline MapSlot *
map_at(const NodeMap *m, Py_ssize_t k)
{
    return &m->slots[m->order[k]];
}

static inline size_t
hash_ptr(const void *p)
{
    uintptr_t x = (uintptr_t)p >> 3;
    x *= (uintptr_t)0x9E3779B97F4A7C15ULL;
    return (size_t)(x ^ (x >> 29));
}

static MapSlot *
map_find(const NodeMap *m, PyObject *op)
{
    if (m->n == 0) {
        return NULL;
    }
    for (size_t h = hash_ptr(op) & m->mask;; h = (h + 1) & m->mask) {
        MapSlot *s = &m->slots[h];
        if (s->key == 0) {
            return NULL;
        }
        if (slot_op(s) == op) {
            return s;
        }
    }
}

static size_t
map_place(MapSlot *slots, size_t mask, PyObject *op)
{
    size_t h = hash_ptr(op) & mask;
    while (slots[h].key != 0) {
        h = (h + 1) & mask;
    }
    return h;
}

static int
map_grow(NodeMap *m)
{
    Py_ssize_t cap = m->cap ? m->cap * 2 : 256;
    size_t tsize = (size_t)cap * 2;     /* load factor <= 1/2 */
    MapSlot *slots = oa_work_alloc(tsize * sizeof(MapSlot));
    size_t *order = oa_work_alloc((size_t)cap * sizeof(size_t));
    if (slots == NULL || order == NULL) {
        oa_work_free(slots);
        oa_work_free(order);
        return -1;
    }
    memset(slots, 0, tsize * sizeof(MapSlot));
    for (Py_ssize_t k = 0; k < m->n; k++) {
        MapSlot *old = map_at(m, k);
        size_t h = map_place(slots, tsize - 1, slot_op(old));
        slots[h] = *old;
        order[k] = h;
    }
    oa_work_free(m->slots);
    oa_work_free(m->order);
    m->slots = slots;
    m->order = order;
    m->mask = tsize - 1;
    m->cap = cap;
    return 0;
}

/* Add op (absent) with gc_refs `refs`, not reached; NULL if no room. */
static MapSlot *
map_add(NodeMap *m, PyObject *op, Py_ssize_t refs)
{
    OA_ASSERT(map_find(m, op) == NULL && ((uintptr_t)op & MARK_BITS) == 0);
    if (m->n == m->cap && map_grow(m) < 0) {
        return NULL;
    }
    size_t h = map_place(m->slots, m->mask, op);
    m->slots[h].key = (uintptr_t)op;
    m->slots[h].refs = refs;
    m->order[m->n++] = h;
    return &m->slots[h];
}

static void
map_free(NodeMap *m)
{
    oa_work_free(m->slots);
    oa_work_free(m->order);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------ */
/* The collector's state during one collection                                */

/* What a collection decides of foreign objects by their type, once per type
   (a mixed graph holds many objects of few types): expand_kind, and whether
   an instance may be an owned container (is_owned_container). */
enum { EXPAND_NEVER, EXPAND_ALWAYS, EXPAND_INSTANCE };
enum { OWN_NEVER, OWN_ALWAYS, OWN_IF_UNSEEN };

typedef struct {
    PyTypeObject *tp;
    uint8_t expand;
    uint8_t own;
} TypeFacts;

#define OA_TYPE_FACTS 64        /* direct-mapped, by address */

typedef struct {
    oa_arena *core;
    traverseproc heap_traverse; /* tp_traverse of a Python class's instances */
    unsigned gen;               /* collecting generations 0..gen */
    int full;                   /* gen == 2: classes join the set */
    int explicit_full;          /* asked for: every untracked object joins */
    unsigned slice;             /* automatic full collections: the pages
                                   whose old untracked objects are examined */
    unsigned next_gen;          /* where survivors go */
    OaTypeObject *untracked_types; /* the arena's classes whose instances are
                                   on untracked pages */
    Py_ssize_t promoted_untracked; /* untracked objects promoted by take_set */
    /* The pages holding a member; page->user is the page's first counter. */
    oa_page **pages;
    Py_ssize_t npages;
    Py_ssize_t pages_cap;
    uint8_t *counters;          /* gc_refs of the members, one byte each */
    uint32_t *edges;            /* the edge cache, one word per counter */
    size_t ncounters;
    PyTypeObject *own_type;     /* the last class found to be an own one */
    TypeFacts facts[OA_TYPE_FACTS];
    int untrack_owned;          /* reach_edge: owned containers of a
                                   survivor's dynamic attributes leave
                                   CPython's gc */
    int classes_pass;           /* mark_reachable's last pass: every member
                                   marked is read (its class is reached) */
    Py_ssize_t nown;            /* members */
    Py_ssize_t nreached;        /* members marked reachable */
    NodeMap big;                /* members whose gc_refs do not fit a byte */
    NodeMap map;                /* foreign members */
    int expanding;              /* foreign objects may join */
    Py_ssize_t budget;          /* the most foreign objects that may join */
    ObjVec stack;               /* the mark stack: fixed room, taken early */
    int pending;                /* marked objects wait past a full stack */
    /* Full collections: the references of members to their classes, a run
       of objects of one class at a time (they share pages). */
    PyTypeObject *class_run;
    Py_ssize_t class_run_refs;
    PyTypeObject *class_reached; /* the last class marked reachable */
    ObjVec *reinline;           /* reachable objects in dict form whose dict
                                   they alone hold (best effort, borrowed
                                   until split) */
    int nomem;
} Collector;

static void
collector_free(Collector *c)
{
    oa_work_free(c->pages);
    oa_work_free(c->edges);     /* the counters with it */
    c->pages = NULL;
    c->counters = NULL;
    c->edges = NULL;
    map_free(&c->big);
    map_free(&c->map);
    vec_free(&c->stack);
}

static inline PyObject *
block_at(const oa_page *pg, uint32_t b)
{
    return (PyObject *)(pg->blocks + (size_t)b * pg->block_size);
}

/* Is a block with side-table byte m a member of a collection of 0..gen? */
static inline int
is_member(uint8_t m, unsigned gen)
{
    return (m & (OA_META_LIVE | OA_META_DYING | OA_META_UNTRACKED)) == OA_META_LIVE
           && oa_meta_gen(m) <= gen;
}

/* The passes over a page read its side table a word (eight blocks) at a
   time: a gen-0 collection passes over the gen-1 blocks of the young pages
   ten times before they are promoted, a full collection over every
   untracked block, and most passes only count or move members.  A byte
   can be a member only if (byte & scan_mask(gen)) == LIVE: "live, not
   dying", and for young collections the generation's bits; frozen blocks
   (generation 3) are told apart next. */
#define BYTES8(x) ((uint64_t)(x) * (uint64_t)0x0101010101010101ULL)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the word-at-a-time passes read meta[b] as the low byte of a word"
#endif
#if OA_META_UNTRACKED != OA_META_ATOMIC << 3
#error "split turns ATOMIC into UNTRACKED by a shift"
#endif

static inline uint8_t
scan_mask(unsigned gen)
{
    uint8_t mask = OA_META_LIVE | OA_META_DYING;
    if (gen == 0) {
        mask |= OA_META_GEN_MASK;
    }
    else if (gen == 1) {
        mask |= 0x04u;          /* the generation's high bit */
    }
    return mask;
}

/* 0x80 in each byte of the result whose byte in y is zero, 0 elsewhere
   (exact: no borrow crosses a byte). */
static inline uint64_t
zero_bytes(uint64_t y)
{
    const uint64_t low7 = BYTES8(0x7F);
    return ~(((y & low7) + low7) | y | low7);
}

/* 0x80 in each byte of the word w (meta[b..b+7]) that is a member of a
   collection of 0..gen, untracked ones included. */
static inline uint64_t
member_bytes(uint64_t w, unsigned gen)
{
    uint64_t live = zero_bytes((w & BYTES8(scan_mask(gen))) ^ BYTES8(OA_META_LIVE));
    if (gen == 2) {             /* not frozen (generation 3) */
        live &= ~zero_bytes((w & BYTES8(OA_META_GEN_MASK)) ^ BYTES8(OA_META_GEN_MASK));
    }
    return live;
}

/* How many bytes of x (each 0x80 or 0) are 0x80: their sum lands in the top
   byte (no popcount instruction in a portable build). */
static inline uint32_t
count_marks(uint64_t x)
{
    return (uint32_t)(((x >> 7) * BYTES8(1)) >> 56);
}

/* 0x80 in each byte of w that has the bit set. */
static inline uint64_t
bit_bytes(uint64_t w, uint8_t bit)
{
    return zero_bytes((w & BYTES8(bit)) ^ BYTES8(bit));
}

/* 0x80 in each byte of w whose generation is g. */
static inline uint64_t
gen_bytes(uint64_t w, unsigned g)
{
    return zero_bytes((w & BYTES8(OA_META_GEN_MASK)) ^ BYTES8(g << OA_META_GEN_SHIFT));
}

/* The bytes p[0..7] as a word, those from p[left] on read as 0 (the end of
   a page's side table or counters: a page holds any number of blocks). */
static inline uint64_t
load_word(const uint8_t *p, uint32_t left)
{
    uint64_t w = 0;
    if (left >= 8) {
        memcpy(&w, p, 8);       /* one load: the usual case */
    }
    else {
        memcpy(&w, p, left);
    }
    return w;
}

/* 0x80 in each byte of meta[b..b+7] (past fresh: none) that is a member:
   in generations 0..gen, not untracked. */
static inline uint64_t
members_at(const oa_page *pg, uint32_t b, unsigned gen)
{
    uint64_t w = load_word(pg->meta + b, pg->fresh - b);
    return member_bytes(w, gen) & ~bit_bytes(w, OA_META_UNTRACKED);
}

/* Every member block b of pg, in order: a word of side-table bytes at a
   time, then its members by their bits.  The body may `continue`. */
#define FOR_EACH_MEMBER(pg, b, gen)                                           \
    for (uint32_t w0_ = 0; w0_ < (pg)->fresh; w0_ += 8)                       \
        for (uint64_t cand_ = members_at((pg), w0_, (gen)); cand_ != 0;)      \
            for (uint32_t b = w0_ + ((uint32_t)__builtin_ctzll(cand_) >> 3),   \
                          once_ = (cand_ &= cand_ - 1, 1);                     \
                 once_; once_ = 0)

/* An own object: an object of an arena class of the arena being collected
   (objects of every arena share one tp_free; an instance lives in its
   class's arena, which __class__ assignment keeps).  Returns its page. */
static inline oa_page *
own_page(Collector *c, PyObject *v, PyTypeObject *tp)
{
    if (tp != c->own_type) {
        if (!oa_frees_in_arena(tp) || ((OaTypeObject *)tp)->arena->core != c->core
            || ((OaTypeObject *)tp)->untracked) {
            return NULL;
        }
        c->own_type = tp;       /* runs of one class: one test per run */
    }
    return oa_page_of(v);
}

/* An object of this arena on an untracked page (a class whose fields are
   all typed: it holds no reference but its class, arena.h).  Never in the
   set; in a full collection, reached from the set, it joins as a foreign
   node does, so that a class whose own attribute holds one of its
   instances (P.origin = P(0.0)) is found garbage with it.  Found garbage,
   it counts as an own object. */
static inline int
is_own_untracked(const Collector *c, PyTypeObject *tp)
{
    return oa_frees_in_arena(tp) && ((OaTypeObject *)tp)->untracked
           && ((OaTypeObject *)tp)->arena->core == c->core;
}

/* Can a reference to an object of type tp be part of a cycle?  Not if the
   object is neither a GC container nor an arena object: ints, strings,
   None, floats... */
static inline int
is_atom_type(PyTypeObject *tp)
{
    return !PyType_IS_GC(tp) && !oa_frees_in_arena(tp);
}

/* Is op a finished class made by ArenaType? */
static int
is_arena_class(PyObject *op)
{
    for (PyTypeObject *m = Py_TYPE(op); m != NULL; m = m->tp_base) {
        if (m->tp_dealloc == oa_meta_dealloc) {
            return ((OaTypeObject *)op)->ready;
        }
    }
    return 0;
}

static int
expand_kind(traverseproc heap_traverse, PyTypeObject *tp)
{
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
        || tp == &PySet_Type || tp == &PyFrozenSet_Type) {
        /* Untracked ones too: CPython untracks a tuple or a dict whose items
           are all invisible to it, as arena objects are. */
        return EXPAND_ALWAYS;
    }
    if (oa_is_arena_type(tp)) {
        return EXPAND_ALWAYS;   /* an object of another arena */
    }
    if (tp == &_PyWeakref_RefType || tp == &_PyWeakref_ProxyType
        || tp == &_PyWeakref_CallableProxyType) {
        /* Its traverse visits the callback only (the referent is not owned).
           In the set, a weak reference that is garbage itself is known, and
           its callback is not called (CPython's rule).  (The type objects
           behind the public PyWeakref_Check* macros.) */
        return EXPAND_ALWAYS;
    }
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || tp->tp_traverse != heap_traverse
        || !PyType_IS_GC(tp) || tp->tp_is_gc != NULL) {
        return EXPAND_NEVER;
    }
    /* A Python class: its first base with a traverse of its own decides (a
       subclass such as weakref.KeyedRef adds slots only). */
    PyTypeObject *b = tp;
    while (b != NULL && b->tp_traverse == heap_traverse) {
        b = b->tp_base;
    }
    return b == NULL || b == &PyBaseObject_Type || b == &PyList_Type
           || b == &PyDict_Type || b == &PySet_Type || b == &PyFrozenSet_Type
           || b == &PyTuple_Type || b == &_PyWeakref_RefType
           ? EXPAND_INSTANCE : EXPAND_NEVER;
}

/* Full collections: an arena class, and what a class body holds, so that a
   class kept alive only by its own instances (a class attribute, a method's
   closure) is found.  Native classes too (exact `type`, heap types): a
   cycle through a module's globals often runs through one (an arena object
   -> its class -> a method -> the globals -> a native class -> its methods
   -> the globals), and CPython's gc, which cannot see the arena object's
   references, can never free it alone.  Their traverses visit owned
   references only. */
static int
holds_class_body(PyTypeObject *tp, PyObject *op)
{
    if (!PyObject_IS_GC(op) || !PyObject_GC_IsTracked(op)) {
        return 0;
    }
    return is_arena_class(op)
           || (tp == &PyType_Type && (((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))
           || tp == &PyFunction_Type || tp == &PyCell_Type
           || tp == &PyClassMethod_Type || tp == &PyStaticMethod_Type
           || tp == &PyProperty_Type || tp == &PyMemberDescr_Type
           || tp == &PyGetSetDescr_Type || tp == &PyMethodDescr_Type
           || tp == &PyWrapperDescr_Type || tp == &PyClassMethodDescr_Type
           || oa_is_typed_member(op);
}

/* May a foreign object join the set: are all the references its traverse
   visits owned ones? */
static int
expandable(int full, traverseproc heap_traverse, PyTypeObject *tp, PyObject *op)
{
    /* An instance of a Python class joins tracked by CPython's gc or not:
       reach_edge may have untracked it. */
    int kind = expand_kind(heap_traverse, tp);
    return kind != EXPAND_NEVER || (full && holds_class_body(tp, op));
}

/* The references a node owns, its class included for arena objects (the
   class joins only in a full collection; otherwise it counts as
   external). */
static int
traverse_node(PyObject *op, visitproc visit, void *arg)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (oa_is_arena_type(tp)) {
        int r = visit((PyObject *)tp, arg);
        return r ? r : oa_traverse_fields(op, visit, arg);
    }
    return tp->tp_traverse(op, visit, arg);
}

static inline PyObject **weaklist_of(PyObject *op);

/* A foreign container that one reference holds (reference count 1) and
   that neither a weak reference nor a finalizer can see: a list, a tuple
   or a dict, or an instance of a Python class with neither __del__ nor a
   weak reference.  When its one referrer is in the set, it is part of that
   referrer: reachable or garbage with it.  So its references are handled as
   the referrer's own, without a node of its own in the map (a list of
   children, an instance's payload: the commonest shapes of mixed graphs).
   Garbage of that kind is freed by reference counting when its referrer is
   cleared, as any object a garbage cycle holds alone. */
static int
own_kind(traverseproc heap_traverse, PyTypeObject *tp)
{
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type) {
        return OWN_ALWAYS;
    }
    if (oa_frees_in_arena(tp)) {
        return OWN_NEVER;       /* arena objects are nodes (counted, freed) */
    }
    if (tp->tp_finalize != NULL || tp->tp_del != NULL
        || PyType_IsSubtype(tp, &_PyWeakref_RefType)
        || tp == &_PyWeakref_ProxyType || tp == &_PyWeakref_CallableProxyType
        || expand_kind(heap_traverse, tp) == EXPAND_NEVER) {
        return OWN_NEVER;
    }
    return OWN_IF_UNSEEN;
}

/* The per-object part: no weak reference sees it.  (Tracked by CPython's
   gc or not: the collector itself may have untracked it, reach_edge.) */
static inline int
owned_if_unseen(PyObject *v)
{
    PyObject **wl = weaklist_of(v);
    return wl == NULL || *wl == NULL;
}

static int
is_owned_container(traverseproc heap_traverse, PyObject *v, PyTypeObject *tp)
{
    if (Py_REFCNT(v) != 1) {
        return 0;
    }
    int own = own_kind(heap_traverse, tp);
    return own == OWN_ALWAYS
           || (own == OWN_IF_UNSEEN && owned_if_unseen(v));
}

/* The type facts of tp, from the collection's cache. */
static inline const TypeFacts *
type_facts(Collector *c, PyTypeObject *tp)
{
    uintptr_t a = (uintptr_t)tp;
    TypeFacts *f = &c->facts[((a >> 4) ^ (a >> 10)) & (OA_TYPE_FACTS - 1)];
    if (f->tp != tp) {
        f->tp = tp;
        f->expand = (uint8_t)expand_kind(c->heap_traverse, tp);
        f->own = (uint8_t)own_kind(c->heap_traverse, tp);
    }
    return f;
}

/* is_owned_container, the type's part from the cache. */
static inline int
owned_container(Collector *c, PyObject *v, PyTypeObject *tp)
{
    if (Py_REFCNT(v) != 1) {
        return 0;
    }
    const TypeFacts *f = type_facts(c, tp);
    return f->own == OWN_ALWAYS || (f->own == OWN_IF_UNSEEN && owned_if_unseen(v));
}

static traverseproc heap_traverse_of_classes;   /* set by oa_gc_init */

/* The containers reach_edge takes off CPython's gc when a survivor's dynamic
   attribute holds one alone, and oa_gc_track_again gives back: lists, dicts,
   sets and instances of Python classes (`expand` is the type's expand_kind).
   Tuples and frozensets CPython untracks by its own rules. */
static inline int
is_handed_over(PyTypeObject *tp, int expand)
{
    return tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type
           || expand == EXPAND_INSTANCE;
}

/* oa_gc_expose's slow path: v, untracked, is of a kind that reach_edge
   takes off CPython's gc; CPython's gc tracks it again.  (A dict of atoms
   that CPython untracked itself is tracked again too: harmless, CPython
   untracks it at its next collection.) */
void
oa_gc_track_again(PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (heap_traverse_of_classes != NULL
        && is_handed_over(tp, expand_kind(heap_traverse_of_classes, tp))) {
        PyObject_GC_Track(v);
    }
}

void
oa_gc_expose_attrs(PyObject *op)
{
    if (((OaTypeObject *)Py_TYPE(op))->dynamic) {
        OA_FOR_EACH_DYNAMIC_REF(op, v, oa_gc_expose(v));
    }
}

/* Can v be a foreign member (in the map)?  In a young collection, never if
   its type says so: no lookup then.  (Full collections add class bodies by
   object, holds_class_body.) */
static inline int
may_be_foreign_member(Collector *c, PyTypeObject *tp)
{
    return c->full || type_facts(c, tp)->expand != EXPAND_NEVER;
}

/* The references of an owned container, each visited with `visit`. */
static inline void
traverse_owned(PyObject *v, PyTypeObject *tp, visitproc visit, void *arg)
{
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        PyObject **items = tp == &PyList_Type ? ((PyListObject *)v)->ob_item
                                              : ((PyTupleObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < Py_SIZE(v); i++) {
            if (items[i] != NULL) {
                (void)visit(items[i], arg);
            }
        }
    }
    else {
        (void)tp->tp_traverse(v, visit, arg);
    }
}

/* ------------------------------------------------------------------------ */
/* take_set                                                                   */

/* Does no reference of an arena object lead to a container?  An Examiner
   answers for a run of objects (a page pass examining untracked ones, most
   of them of one class whose fields hold the same few types): the class's
   layout is taken once per run, and the last two atom types seen are
   known.  (A new object is checked alone: oa_gc_untrack_if_atoms.) */
typedef struct {
    PyTypeObject *run;
    OaRefLayout layout;
    PyTypeObject *atom[2];
} Examiner;

#define EXAMINER_INIT {NULL, {0, NULL, 0}, {NULL, NULL}}

static inline void
examine_ref(Examiner *ex, int *atoms, PyObject *v)
{
    PyTypeObject *vt = Py_TYPE(v);
    if (vt == ex->atom[0] || vt == ex->atom[1]) {
        return;
    }
    if (is_atom_type(vt)) {
        ex->atom[1] = ex->atom[0];
        ex->atom[0] = vt;
    }
    else {
        *atoms = 0;
    }
}

static inline int
examine_atoms(Examiner *ex, PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (tp != ex->run) {
        ex->run = tp;
        ex->layout = oa_ref_layout(tp);
    }
    int atoms = 1;
    OA_FOR_EACH_REF_IN(op, ex->layout, v, examine_ref(ex, &atoms, v));
    return atoms;
}

static inline uint32_t
take_block(Collector *c, oa_page *pg, uint32_t b, int examine_old, uint32_t *moved,
           Examiner *ex)
{
    uint8_t m = pg->meta[b];
    OA_ASSERT(!(m & (OA_META_REACHED | OA_META_ATOMIC)));
    if (m & OA_META_UNTRACKED) {
        if (!examine_old) {
            return 0;
        }
        unsigned g = oa_meta_gen(m);
        if (!c->explicit_full && examine_atoms(ex, block_at(pg, b))) {
            if (g != c->next_gen) {
                moved[g]++;
                pg->meta[b] = (uint8_t)((m & ~OA_META_GEN_MASK)
                                        | (c->next_gen << OA_META_GEN_SHIFT));
            }
            c->promoted_untracked++;
            return 0;
        }
        pg->meta[b] = m & (uint8_t)~OA_META_UNTRACKED;
    }
    return 1;
}

/* Pre: nothing marked.  Examines again the untracked objects this
   collection reaches: young ones always, old ones in an explicit full
   collection (they all join the set: a class kept alive by its instances'
   references to it is found then) or on the pages of this automatic full
   collection's slice; one that holds a container again is tracked again and
   joins the set, the others are promoted at once (they are alive or freed
   by reference counting alone).  Outside the slice, old untracked blocks
   are passed over eight at a time.  Counts the members and gives each page
   holding one its counters' base (page->user).  Returns -1 if the pages'
   list cannot be had. */
static int
take_page(oa_page *pg, void *arg)
{
    Collector *c = arg;
    uint32_t members = 0;
    uint32_t moved[3] = {0, 0, 0};
    /* Young collections examine every untracked object they pass. */
    int examine_old = !c->full || c->explicit_full
                      || ((uintptr_t)pg >> OA_PAGE_SHIFT) % OA_UNTRACKED_SLICES == c->slice;
    Examiner ex = EXAMINER_INIT;
    for (uint32_t b = 0; b < pg->fresh; b += 8) {
        uint64_t w = load_word(pg->meta + b, pg->fresh - b);
        uint64_t cand = member_bytes(w, c->gen);
        uint64_t untracked = cand & bit_bytes(w, OA_META_UNTRACKED);
        members += count_marks(cand & ~untracked);
        if (!examine_old) {
            continue;
        }
        for (; untracked != 0; untracked &= untracked - 1) {
            uint32_t j = b + ((uint32_t)__builtin_ctzll(untracked) >> 3);
            members += take_block(c, pg, j, examine_old, moved, &ex);
        }
    }
    for (unsigned g = 0; g < 3; g++) {
        oa_gen_moved(pg, g, c->next_gen, moved[g]);
    }
    if (members == 0) {
        return 0;
    }
    void *pages = c->pages;
    if (work_reserve(&pages, c->npages, &c->pages_cap, sizeof(oa_page *)) < 0) {
        return -1;
    }
    c->pages = pages;
    pg->user_index = (uint32_t)(c->npages < OA_EDGE_MAX_PAGES ? c->npages
                                                              : OA_EDGE_MAX_PAGES);
    c->pages[c->npages++] = pg;
    pg->user = c->ncounters;
    c->ncounters += pg->fresh;
    c->nown += members;
    return 0;
}

/* Post: S fixed (is_member of each side-table byte), counters zeroed, the
   mark stack's room taken.  On failure nothing has changed but untracked
   objects found to hold containers again, which are tracked again. */
static int
take_set(Collector *c)
{
    if (oa_visit_pages(c->core, c->gen, take_page, c) < 0) {
        return -1;
    }
    /* The edge cache then the counters, in one piece of work space. */
    size_t n = c->ncounters ? c->ncounters : 1;
    c->edges = oa_work_alloc(n * (sizeof(uint32_t) + 1));
    if (c->edges == NULL) {
        return -1;
    }
    c->counters = (uint8_t *)(c->edges + n);
    memset(c->counters, 0, c->ncounters);
    Py_ssize_t room = c->nown < OA_STACK_MAX ? c->nown + 64 : OA_STACK_MAX;
    if (vec_reserve_exact(&c->stack, room) < 0) {
        return -1;
    }
    c->budget = OA_BUDGET_PER_MEMBER * c->nown + OA_BUDGET_MIN;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* subtract_refs                                                              */

/* The overflow counter of a member whose reference count does not fit a
   byte (found or made with gc_refs = its reference count). */
static Py_ssize_t *
big_refs(Collector *c, PyObject *op, uint8_t *byte)
{
    *byte = OA_REFS_BIG;
    MapSlot *s = map_find(&c->big, op);
    if (s == NULL) {
        s = map_add(&c->big, op, Py_REFCNT(op));
        if (s == NULL) {
            c->nomem = 1;
            return NULL;
        }
    }
    return &s->refs;
}

/* A reference from a member to a foreign object: the object's gc_refs goes
   down by one, the object joining the set first if it may. */
static void
foreign_decref(Collector *c, PyObject *op, Py_ssize_t n)
{
    if (!may_be_foreign_member(c, Py_TYPE(op))) {
        return;                 /* not in the set: an external referrer */
    }
    MapSlot *s = map_find(&c->map, op);
    if (s == NULL) {
        if (!c->expanding || c->map.n >= c->budget
            || !expandable(c->full, c->heap_traverse, Py_TYPE(op), op)
            || (!c->full && is_own_untracked(c, Py_TYPE(op)))) {
            return;             /* not in the set: an external referrer */
        }
        s = map_add(&c->map, op, Py_REFCNT(op));
        if (s == NULL) {
            c->nomem = 1;       /* the collection gives up: nothing changed */
            c->expanding = 0;
            return;
        }
    }
    s->refs -= n;
}

/* One reference from inside the set to v: v's gc_refs goes down.  Returns
   what marking will find there (the edge cache): OA_EDGE_NONE if v is an
   atom (it cannot lead to a cycle), OA_EDGE_OUT for an arena object outside
   the set, v's address in the cache for a member, OA_EDGE_READ for anything
   else. */
static int visit_subtract(PyObject *op, void *arg);

static inline uint32_t
subtract_edge(Collector *c, PyObject *v, int from_member)
{
    PyTypeObject *tp = Py_TYPE(v);
    oa_page *pg = own_page(c, v, tp);
    if (pg != NULL) {
        uint32_t i = oa_block_index(pg, v);
        if (!is_member(pg->meta[i], c->gen)) {
            return OA_EDGE_OUT;
        }
        uint8_t *byte = &c->counters[pg->user + i];
        if (Py_REFCNT(v) < OA_REFS_SMALL) {
            (*byte)--;          /* modulo 256: the sum ends in 0..249 */
        }
        else {
            Py_ssize_t *refs = big_refs(c, v, byte);
            if (refs != NULL) {
                (*refs)--;
            }
        }
        return pg->user_index < OA_EDGE_MAX_PAGES
               ? (pg->user_index << OA_EDGE_BLOCK_BITS) | i : OA_EDGE_READ;
    }
    if (is_atom_type(tp)) {
        return OA_EDGE_NONE;
    }
    if (from_member && owned_container(c, v, tp)) {
        traverse_owned(v, tp, visit_subtract, c);
        return OA_EDGE_READ;
    }
    foreign_decref(c, v, 1);
    return OA_EDGE_READ;
}

/* Adds one reference's edge to a member's cache word; *atoms stays 1 while
   every reference is an atom. */
static inline void
add_edge(uint32_t *edge, int *atoms, uint32_t e)
{
    if (e == OA_EDGE_NONE) {
        return;
    }
    *atoms = 0;
    if (e != OA_EDGE_OUT) {
        *edge = *edge == OA_EDGE_NONE ? e : OA_EDGE_READ;
    }
}

static int
visit_subtract(PyObject *op, void *arg)
{
    (void)subtract_edge((Collector *)arg, op, 0);
    return 0;
}

/* Subtract the references of the current run of members to their class
   (one node lookup per run, not per object). */
static void
flush_class_refs(Collector *c)
{
    if (c->class_run != NULL) {
        foreign_decref(c, (PyObject *)c->class_run, c->class_run_refs);
    }
    c->class_run = NULL;
    c->class_run_refs = 0;
}

static void
subtract_page(Collector *c, oa_page *pg)
{
    uint8_t *counters = c->counters + pg->user;
    uint32_t *edges = c->edges + pg->user;
    PyTypeObject *run = NULL;   /* objects of one class come in runs */
    OaRefLayout layout = {0, NULL, 0};
    FOR_EACH_MEMBER(pg, b, c->gen) {
        PyObject *op = block_at(pg, b);
        /* The pass is bound by memory: ask for the objects ahead early (a
           hint, harmless past the page's end). */
        __builtin_prefetch((char *)op + OA_PREFETCH_BYTES);
        Py_ssize_t rc = Py_REFCNT(op);
        OA_ASSERT(rc > 0);
        if (rc < OA_REFS_SMALL) {
            counters[b] += (uint8_t)rc;
        }
        else {
            (void)big_refs(c, op, &counters[b]);
        }
        PyTypeObject *tp = Py_TYPE(op);
        if (tp != run) {
            run = tp;
            layout = oa_ref_layout(tp);
            if (c->full && tp != c->class_run) {
                flush_class_refs(c);
                c->class_run = tp;
            }
        }
        if (c->full) {
            c->class_run_refs++;
        }
        int atoms = 1;
        uint32_t edge = OA_EDGE_NONE;
        OA_FOR_EACH_REF_IN(op, layout, v, add_edge(&edge, &atoms, subtract_edge(c, v, 1)));
        if (atoms) {
            pg->meta[b] |= OA_META_ATOMIC;
        }
        /* A survivor whose dict only it holds goes back inline
           (reach_from): that needs a read. */
        edges[b] = layout.dynamic && oa_obj_dict_unshared(op) ? OA_EDGE_READ : edge;
    }
}

/* Pre: take_set.  Post: every member's counter is its gc_refs (ob_refcnt
   less the references from inside S), foreign members likewise in the map;
   ATOMIC marks the members that hold atoms only.  -1 (c->nomem) if the map
   or an overflow counter could not grow. */
static int
subtract_refs(Collector *c)
{
    c->expanding = 1;
    if (c->full) {
        /* The instances of these classes hold no reference but their class
           and are never members; a class kept alive only by its own
           instances (P.origin = P(0.0)) is found from the class: it joins,
           its dict reaches the instances, theirs reach it. */
        for (OaTypeObject *t = c->untracked_types; t != NULL; t = t->next_untracked) {
            foreign_decref(c, (PyObject *)t, 0);
        }
    }
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        subtract_page(c, c->pages[p]);
    }
    flush_class_refs(c);
    /* Foreign members may bring in more: the map grows while it is read. */
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        /* The table may grow under the traverse: the address first. */
        PyObject *op = slot_op(map_at(&c->map, k));
        if (PyList_CheckExact(op)) {
            /* The commonest container, without a call per item. */
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(op); i++) {
                (void)subtract_edge(c, PyList_GET_ITEM(op, i), 0);
            }
        }
        else {
            traverse_node(op, visit_subtract, c);
        }
    }
    c->expanding = 0;
    return c->nomem ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* mark_reachable                                                             */

/* A marked member waits on the stack, or, when the stack is full, as
   PENDING in its counter byte (its gc_refs no longer matter). */
static inline void
push_member(Collector *c, PyObject *op, uint8_t *counter)
{
    if (c->stack.n < c->stack.cap) {
        c->stack.items[c->stack.n++] = op;
    }
    else {
        *counter = OA_REFS_PENDING;
        c->pending = 1;
    }
}

/* Block b of pg, a member, was just marked: what it references is marked
   in turn, from the edge cache while each member reaches one other, else
   by queueing the member to be read (reach_from). */
static inline void
reach_member(Collector *c, oa_page *pg, uint32_t b)
{
    for (;;) {
        uint32_t e = c->edges[pg->user + b];
        if (c->classes_pass || e == OA_EDGE_READ) {
            push_member(c, block_at(pg, b), &c->counters[pg->user + b]);
            return;
        }
        if (e == OA_EDGE_NONE) {
            return;
        }
        pg = c->pages[e >> OA_EDGE_BLOCK_BITS];
        b = e & OA_EDGE_BLOCK_MASK;
        uint8_t m = pg->meta[b];
        OA_ASSERT(is_member(m, c->gen));
        if (m & OA_META_REACHED) {
            return;
        }
        pg->meta[b] = m | OA_META_REACHED;
        c->nreached++;
    }
}

/* v is referenced by a reachable object: mark it, and queue it if it is a
   member not yet marked. */
static int visit_reach(PyObject *op, void *arg);

static inline void
reach_edge(Collector *c, PyObject *v, int from_member)
{
    PyTypeObject *tp = Py_TYPE(v);
    oa_page *pg = own_page(c, v, tp);
    if (pg != NULL) {
        uint32_t i = oa_block_index(pg, v);
        uint8_t m = pg->meta[i];
        if (is_member(m, c->gen) && !(m & OA_META_REACHED)) {
            pg->meta[i] = m | OA_META_REACHED;
            c->nreached++;
            reach_member(c, pg, i);
        }
        return;
    }
    if (is_atom_type(tp)) {
        return;
    }
    if (from_member && owned_container(c, v, tp)) {
        /* A dynamic attribute of a survivor that it alone holds: part of
           it, so CPython's gc need not walk it (oa_gc_expose gives it back
           when obj.c hands it out). */
        if (c->untrack_owned && is_handed_over(tp, type_facts(c, tp)->expand)
            && PyObject_GC_IsTracked(v)) {
            PyObject_GC_UnTrack(v);
        }
        traverse_owned(v, tp, visit_reach, c);
        return;
    }
    if (c->map.n == 0 || !may_be_foreign_member(c, tp)) {
        return;
    }
    MapSlot *s = map_find(&c->map, v);
    if (s != NULL && slot_mark(s) == 0) {
        if (c->stack.n < c->stack.cap) {
            slot_set_mark(s, 1);
            c->stack.items[c->stack.n++] = v;
        }
        else {
            slot_set_mark(s, 2);
            c->pending = 1;
        }
    }
}

static int
visit_reach(PyObject *op, void *arg)
{
    reach_edge((Collector *)arg, op, 0);
    return 0;
}

/* The references of a marked object, marked in turn. */
static void
reach_from(Collector *c, PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (own_page(c, op, tp) != NULL) {
        if (c->full && tp != c->class_reached) {
            reach_edge(c, (PyObject *)tp, 0);   /* once per run of one class */
            c->class_reached = tp;
        }
        OaRefLayout fixed = oa_ref_layout(tp);
        fixed.dynamic = 0;
        OA_FOR_EACH_REF_IN(op, fixed, v, reach_edge(c, v, 1));
        if (((OaTypeObject *)tp)->dynamic) {
            /* Fixed fields are read by the interpreter without us: only
               what obj.c alone hands out may leave CPython's gc. */
            c->untrack_owned = 1;
            OA_FOR_EACH_DYNAMIC_REF(op, v, reach_edge(c, v, 1));
            c->untrack_owned = 0;
        }
        /* A survivor in dict form that alone holds its dict goes back to
           its inline form once the collection is over (obj.c); a full
           vector only leaves it for its next attribute access. */
        if (((OaTypeObject *)tp)->dynamic && oa_obj_dict_unshared(op)) {
            (void)vec_push(c->reinline, op);
        }
    }
    else if (PyList_CheckExact(op)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(op); i++) {
            reach_edge(c, PyList_GET_ITEM(op, i), 0);
        }
    }
    else {
        traverse_node(op, visit_reach, c);
    }
}

static void
propagate(Collector *c)
{
    for (;;) {
        while (c->stack.n > 0) {
            reach_from(c, c->stack.items[--c->stack.n]);
        }
        if (!c->pending) {
            return;
        }
        /* The stack was full: take what waits, page by page. */
        c->pending = 0;
        for (Py_ssize_t p = 0; p < c->npages; p++) {
            oa_page *pg = c->pages[p];
            for (uint32_t b = 0; b < pg->fresh; b++) {
                if ((pg->meta[b] & OA_META_REACHED)
                    && c->counters[pg->user + b] == OA_REFS_PENDING) {
                    c->counters[pg->user + b] = 0;
                    reach_from(c, block_at(pg, b));
                    while (c->stack.n > 0) {
                        reach_from(c, c->stack.items[--c->stack.n]);
                    }
                }
            }
        }
        for (Py_ssize_t k = 0; k < c->map.n; k++) {
            MapSlot *s = map_at(&c->map, k);
            if (slot_mark(s) == 2) {
                slot_set_mark(s, 1);
                reach_from(c, slot_op(s));
                while (c->stack.n > 0) {
                    reach_from(c, c->stack.items[--c->stack.n]);
                }
            }
        }
    }
}

/* Full collections: is an arena class in the set not marked?  Members
   marked from the edge cache did not reach their class. */
static int
class_unreached(Collector *c)
{
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        MapSlot *s = map_at(&c->map, k);
        if (slot_mark(s) == 0 && is_arena_class(slot_op(s))) {
            return 1;
        }
    }
    return 0;
}

/* The classes of the marked members are marked, and what they reach; from
   here every member marked is read, so that its class is reached too.
   (Rare: only when a class is referenced by nothing but the set.) */
static void
reach_classes(Collector *c)
{
    c->classes_pass = 1;
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        FOR_EACH_MEMBER(pg, b, c->gen) {
            if (pg->meta[b] & OA_META_REACHED) {
                PyTypeObject *tp = Py_TYPE(block_at(pg, b));
                if (tp != c->class_reached) {
                    reach_edge(c, (PyObject *)tp, 0);
                    c->class_reached = tp;
                    propagate(c);
                }
            }
        }
    }
}

/* Is a member referenced from outside the set? */
static inline int
is_root(Collector *c, PyObject *op, uint8_t byte)
{
    if (byte != OA_REFS_BIG) {
        OA_ASSERT(byte < OA_REFS_SMALL);
        return byte > 0;
    }
    MapSlot *s = map_find(&c->big, op);
    OA_ASSERT(s != NULL && s->refs >= 0);
    return s->refs > 0;
}

/* Pre: subtract_refs.  Post: REACHED marks every member that a root (gc_refs
   > 0) reaches; reached foreign members have map.reached set.  Cannot fail:
   the stack's room was taken, and a full stack leaves objects pending. */
static void
mark_reachable(Collector *c)
{
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        const uint8_t *counters = c->counters + pg->user;
        /* Only a member's counter can be non-zero (they start at 0), and
           an object found garbage so far has gc_refs 0: a word of counters
           at a time, the non-zero ones are the candidates. */
        for (uint32_t w0 = 0; w0 < pg->fresh; w0 += 8) {
            uint64_t w = load_word(counters + w0, pg->fresh - w0);
            for (uint64_t cand = ~zero_bytes(w) & BYTES8(0x80); cand != 0; cand &= cand - 1) {
                uint32_t b = w0 + ((uint32_t)__builtin_ctzll(cand) >> 3);
                uint8_t m = pg->meta[b];
                OA_ASSERT(is_member(m, c->gen));
                if ((m & OA_META_REACHED) || !is_root(c, block_at(pg, b), counters[b])) {
                    continue;
                }
                pg->meta[b] = m | OA_META_REACHED;
                c->nreached++;
                reach_member(c, pg, b);
                if (c->stack.n > 0 || c->pending) {
                    propagate(c);
                }
            }
        }
    }
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        MapSlot *s = map_at(&c->map, k);
        if (s->refs > 0 && slot_mark(s) == 0) {
            slot_set_mark(s, 1);
            reach_from(c, slot_op(s));
            propagate(c);
        }
    }
    if (c->full && class_unreached(c)) {
        reach_classes(c);
    }
}

/* ------------------------------------------------------------------------ */
/* split                                                                      */

/* One member: promoted if reached (ATOMIC turning UNTRACKED), else added to
   the unreachable; its transient bits cleared.  Returns 1 if promoted. */
static inline int
split_block(Collector *c, oa_page *pg, uint32_t b, ObjVec *unreachable, uint32_t *moved)
{
    uint8_t m = pg->meta[b];
    int reached = (m & OA_META_REACHED) != 0;
    if (reached) {
        if (m & OA_META_ATOMIC) {
            m |= OA_META_UNTRACKED;
        }
        moved[oa_meta_gen(m)]++;
        m = (uint8_t)((m & ~OA_META_GEN_MASK) | (c->next_gen << OA_META_GEN_SHIFT));
    }
    else {
        OA_ASSERT(unreachable->n < unreachable->cap);
        unreachable->items[unreachable->n++] = block_at(pg, b);
    }
    pg->meta[b] = m & (uint8_t)~(OA_META_REACHED | OA_META_ATOMIC);
    return reached;
}

/* Pre: mark_reachable; `unreachable` has room for every member not reached
   and every foreign member not reached.  Post: no transient bit is left;
   reached members are in generation next_gen, the ATOMIC ones UNTRACKED;
   the unreachable members then the unreachable foreign members are in
   `unreachable`.  Returns the members promoted. */
static Py_ssize_t
split(Collector *c, ObjVec *unreachable)
{
    Py_ssize_t promoted = 0;
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        uint32_t moved[3] = {0, 0, 0};
        /* Eight blocks at a time where every member among them was reached
           (they are promoted alike), else one at a time. */
        for (uint32_t b = 0; b < pg->fresh; b += 8) {
            uint32_t left = pg->fresh - b;
            uint64_t w = load_word(pg->meta + b, left);
            uint64_t cand = member_bytes(w, c->gen) & ~bit_bytes(w, OA_META_UNTRACKED);
            if (cand == 0) {
                continue;
            }
            if ((cand & ~bit_bytes(w, OA_META_REACHED)) != 0) {
                for (; cand != 0; cand &= cand - 1) {
                    uint32_t j = b + ((uint32_t)__builtin_ctzll(cand) >> 3);
                    promoted += split_block(c, pg, j, unreachable, moved);
                }
                continue;
            }
            for (unsigned g = 0; g < 3; g++) {
                moved[g] += (uint32_t)count_marks(cand & gen_bytes(w, g));
            }
            promoted += count_marks(cand);
            uint64_t all = (cand >> 7) * 0xFF;
            uint64_t nw = (w & ~BYTES8(OA_META_REACHED | OA_META_ATOMIC | OA_META_GEN_MASK))
                          | BYTES8(c->next_gen << OA_META_GEN_SHIFT)
                          | ((w & BYTES8(OA_META_ATOMIC)) << 3);   /* ATOMIC: UNTRACKED */
            w = (w & ~all) | (nw & all);
            memcpy(pg->meta + b, &w, left < 8 ? left : 8);
        }
        for (unsigned g = 0; g < 3; g++) {
            oa_gen_moved(pg, g, c->next_gen, moved[g]);
        }
    }
    /* Map nodes: own untracked objects first (own garbage), then foreign. */
    for (int own = 1; own >= 0; own--) {
        for (Py_ssize_t k = 0; k < c->map.n; k++) {
            PyObject *op = slot_op(map_at(&c->map, k));
            if (slot_mark(map_at(&c->map, k)) == 0
                && own == is_own_untracked(c, Py_TYPE(op))) {
                OA_ASSERT(unreachable->n < unreachable->cap);
                unreachable->items[unreachable->n++] = op;
            }
        }
    }
    return promoted;
}

/* After a failure before split: the transient bits go. */
static void
clear_marks(Collector *c)
{
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        for (uint32_t b = 0; b < pg->fresh; b++) {
            pg->meta[b] &= (uint8_t)~(OA_META_REACHED | OA_META_ATOMIC);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Garbage                                                                    */

/* The head of op's list of weak references, or NULL if its type has none.
   The address is op + tp_weaklistoffset, before the object (negative) when
   3.12+ manages the list for a Python class, as CPython computes it; only a
   static type keeps its list elsewhere, and no static type is ever in the
   unreachable set. */
static inline PyObject **
weaklist_of(PyObject *op)
{
    Py_ssize_t off = Py_TYPE(op)->tp_weaklistoffset;
    if (off == 0 || (PyType_Check(op)
                     && !(((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))) {
        return NULL;
    }
    return (PyObject **)((char *)op + off);
}

/* Clear op's weak references without calling their callbacks (which stay on
   the weakref objects).  3.13 has an unstable API for it; before, the
   private but exported _PyWeakref_ClearRef is the only way that does not
   call the callbacks at once (PyObject_ClearWeakRefs also insists on a dead
   object). */
static void
clear_weakrefs_no_callbacks(PyObject *op)
{
    PyObject **list = weaklist_of(op);
    if (list == NULL || *list == NULL) {
        return;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyUnstable_Object_ClearWeakRefsNoCallbacks(op);
#else
    while (*list != NULL) {
        _PyWeakref_ClearRef((PyWeakReference *)*list);
    }
#endif
}

/* Is op a foreign member of the set found unreachable? */
static int
is_foreign_garbage(Collector *c, PyObject *op)
{
    MapSlot *s = map_find(&c->map, op);
    return s != NULL && slot_mark(s) == 0;
}

/* Remember (and hold) every weak reference with a callback to an
   unreachable object, except those that are garbage themselves: their
   callbacks are never called (CPython's handle_weakrefs).  `c` still holds
   the set.  Nothing is changed yet: on failure the references taken are
   given back and -1 returned. */
static int
gather_weakref_callbacks(Collector *c, ObjVec *unreachable, ObjVec *with_callback)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        PyObject **list = weaklist_of(unreachable->items[i]);
        if (list == NULL) {
            continue;
        }
        for (PyWeakReference *wr = (PyWeakReference *)*list; wr; wr = wr->wr_next) {
            if (wr->wr_callback == NULL || is_foreign_garbage(c, (PyObject *)wr)) {
                continue;
            }
            if (vec_push(with_callback, (PyObject *)wr) < 0) {
                for (Py_ssize_t k = 0; k < with_callback->n; k++) {
                    Py_DECREF(with_callback->items[k]);
                }
                with_callback->n = 0;
                return -1;
            }
            Py_INCREF(wr);
        }
    }
    return 0;
}

/* 3.15: clear only op's weak references that have a callback (the
   callback stays on the weakref object).  No API clears one weak reference
   alone: the private but exported _PyWeakref_ClearRef, declared in
   cpython/weakrefobject.h, is what CPython's gc uses for it.  Clearing
   unlinks the weakref from the list and runs no code. */
#if PY_VERSION_HEX >= 0x030F0000
static void
clear_weakrefs_with_callbacks(PyObject *op)
{
    PyObject **list = weaklist_of(op);
    if (list == NULL) {
        return;
    }
    PyWeakReference *next;
    for (PyWeakReference *wr = (PyWeakReference *)*list; wr != NULL; wr = next) {
        next = wr->wr_next;
        if (wr->wr_callback != NULL) {
            _PyWeakref_ClearRef(wr);
        }
    }
}
#endif

/* CPython's order: the weak references to the unreachable objects, arena
   objects and foreign ones alike, are cleared, and only then are the
   callbacks called, so that no callback can reach an unreachable object
   through a weak reference that has a callback.  Up to 3.14 every weak
   reference is cleared here, before finalizers run.  3.15 clears here only
   those with a callback; the others stay usable while callbacks and
   finalizers run, and are cleared once the garbage is final
   (clear_final_weakrefs), as its gc does since gh-135552.  What Python code
   reaches through them is found by the resurrection check. */
static void
clear_weakrefs_then_call(ObjVec *unreachable, ObjVec *with_callback)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
#if PY_VERSION_HEX >= 0x030F0000
        clear_weakrefs_with_callbacks(unreachable->items[i]);
#else
        clear_weakrefs_no_callbacks(unreachable->items[i]);
#endif
    }
    for (Py_ssize_t i = 0; i < with_callback->n; i++) {
        PyWeakReference *wr = (PyWeakReference *)with_callback->items[i];
        PyObject *callback = wr->wr_callback;
        if (callback != NULL) {
            Py_INCREF(callback);
            PyObject *res = PyObject_CallOneArg(callback, (PyObject *)wr);
            if (res == NULL) {
                PyErr_WriteUnraisable(callback);
            }
            Py_XDECREF(res);
            Py_DECREF(callback);
        }
        Py_DECREF(wr);
    }
    with_callback->n = 0;
}

/* Before any field is cleared: no weak reference may reach an object that
   is garbage for good, arena object or foreign one (3.15: those without a
   callback are still set; every version: those that finalizers made). */
static void
clear_final_weakrefs(ObjVec *unreachable, const uint8_t *alive)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        if (!alive[i]) {
            clear_weakrefs_no_callbacks(unreachable->items[i]);
        }
    }
}

static void
finalize_garbage(ObjVec *unreachable)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        PyObject *op = unreachable->items[i];
        PyTypeObject *tp = Py_TYPE(op);
        if (tp->tp_finalize == NULL) {
            continue;
        }
        if (oa_is_arena_type(tp)) {
            uint8_t *meta = oa_meta_of(op);
            if (*meta & OA_META_FINALIZED) {
                continue;
            }
            *meta |= OA_META_FINALIZED;
        }
        /* For a foreign GC object, PyObject_CallFinalizer keeps the once
           rule itself. */
        PyObject_CallFinalizer(op);
    }
}

/* The resurrection check: trial deletion again over the unreachable
   objects alone, with work space taken before any Python code runs (a node
   map with room for every unreachable object, a stack as deep), so that the
   check itself cannot fail. */
typedef struct {
    NodeMap map;
    ObjVec stack;
    traverseproc heap_traverse;
} Recheck;

static int
reserve_recheck(Recheck *r, Py_ssize_t n, traverseproc heap_traverse)
{
    memset(r, 0, sizeof(*r));
    r->heap_traverse = heap_traverse;
    while (r->map.cap < n) {
        if (map_grow(&r->map) < 0) {
            return -1;
        }
    }
    return vec_reserve_exact(&r->stack, n);
}

static void
recheck_free(Recheck *r)
{
    map_free(&r->map);
    vec_free(&r->stack);
}

static int
recheck_decref(PyObject *op, void *arg)
{
    MapSlot *s = map_find(&((Recheck *)arg)->map, op);
    if (s != NULL) {
        s->refs--;
    }
    return 0;
}

/* The references of a node: those of an owned container it holds too (the
   same rule as the collection's). */
static int
visit_recheck_decref(PyObject *op, void *arg)
{
    Recheck *r = arg;
    MapSlot *s = map_find(&r->map, op);
    if (s != NULL) {
        s->refs--;
    }
    else if (is_owned_container(r->heap_traverse, op, Py_TYPE(op))) {
        traverse_owned(op, Py_TYPE(op), recheck_decref, r);
    }
    return 0;
}

static int
recheck_reach(PyObject *op, void *arg)
{
    Recheck *r = arg;
    MapSlot *s = map_find(&r->map, op);
    if (s != NULL && slot_mark(s) == 0) {
        slot_set_mark(s, 1);
        OA_ASSERT(r->stack.n < r->stack.cap);
        r->stack.items[r->stack.n++] = op;      /* room for every node */
    }
    return 0;
}

static int
visit_recheck_reach(PyObject *op, void *arg)
{
    Recheck *r = arg;
    if (map_find(&r->map, op) == NULL && is_owned_container(r->heap_traverse, op, Py_TYPE(op))) {
        traverse_owned(op, Py_TYPE(op), recheck_reach, r);
        return 0;
    }
    return recheck_reach(op, arg);
}

/* Which of the held unreachable objects are still garbage after Python code
   ran?  Trial deletion over them alone (each holds one reference of ours);
   marks survivors in `alive` (1 = resurrected).  Uses only the reserved
   work space: it cannot fail. */
static void
find_resurrected(Recheck *r, ObjVec *unreachable, uint8_t *alive)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        PyObject *op = unreachable->items[i];
        (void)map_add(&r->map, op, Py_REFCNT(op) - 1);      /* room reserved */
    }
    for (Py_ssize_t k = 0; k < r->map.n; k++) {
        traverse_node(slot_op(map_at(&r->map, k)), visit_recheck_decref, r);
    }
    for (Py_ssize_t k = 0; k < r->map.n; k++) {
        MapSlot *s = map_at(&r->map, k);
        if (s->refs > 0 && slot_mark(s) == 0) {
            slot_set_mark(s, 1);
            r->stack.items[r->stack.n++] = slot_op(s);
        }
        while (r->stack.n > 0) {
            traverse_node(r->stack.items[--r->stack.n], visit_recheck_reach, r);
        }
    }
    for (Py_ssize_t k = 0; k < r->map.n; k++) {
        alive[k] = slot_mark(map_at(&r->map, k)) != 0;
    }
}

/* ------------------------------------------------------------------------ */
/* A collection                                                               */

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
invoke_callbacks(OaArenaObject *arena, const char *phase, int generation,
                 Py_ssize_t collected, Py_ssize_t uncollectable,
                 Py_ssize_t candidates, double duration)
{
    PyObject *callbacks = arena->gc.callbacks;
    if (callbacks == NULL || PyList_GET_SIZE(callbacks) == 0) {
        return;
    }
#if OA_GC_STATS_TIMED
    PyObject *info = Py_BuildValue("{s:i,s:n,s:n,s:n,s:d}",
                                   "generation", generation,
                                   "collected", collected,
                                   "uncollectable", uncollectable,
                                   "candidates", candidates,
                                   "duration", duration);
#else
    (void)candidates;
    (void)duration;
    PyObject *info = Py_BuildValue("{s:i,s:n,s:n}",
                                   "generation", generation,
                                   "collected", collected,
                                   "uncollectable", uncollectable);
#endif
    if (info == NULL) {
        PyErr_WriteUnraisable(NULL);
        return;
    }
    PyObject *phase_obj = PyUnicode_FromString(phase);
    /* A copy: a callback may change the list. */
    PyObject *copy = PyList_GetSlice(callbacks, 0, PyList_GET_SIZE(callbacks));
    if (phase_obj == NULL || copy == NULL) {
        PyErr_WriteUnraisable(NULL);
    }
    else {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copy); i++) {
            PyObject *cb = PyList_GET_ITEM(copy, i);
            PyObject *r = PyObject_CallFunctionObjArgs(cb, phase_obj, info, NULL);
            if (r == NULL) {
                PyErr_WriteUnraisable(cb);
            }
            Py_XDECREF(r);
        }
    }
    Py_XDECREF(copy);
    Py_XDECREF(phase_obj);
    Py_DECREF(info);
}

/* What the phases of one collection found. */
typedef struct {
    Py_ssize_t candidates;      /* members of the set */
    Py_ssize_t collected;       /* unreachable arena objects freed */
    Py_ssize_t resurrected;     /* unreachable ones that survived */
    Py_ssize_t promoted;        /* moved to the next generation */
    int failed;                 /* no work space: nothing was collected */
} Outcome;

/* Garbage: from here Python code runs (weak reference callbacks,
   finalizers), so every unreachable object is held until the end.  Weak
   references to the unreachable objects are cleared, then the callbacks of
   those that had one are called (up to 3.14 all of them are cleared here; on
   3.15 only those with a callback, as its gc does, the others once the
   garbage is final); finalizers run once per object ever; the resurrection
   check; every weak reference still set to the final garbage is cleared;
   then the fields.  Pre:
   `unreachable` holds the own unreachable objects (the first nown) then
   the foreign ones; the work space of what follows is taken; `c` still
   holds the set.  Post: the unreachable objects that are still garbage
   are cleared (or saved, DEBUG_SAVEALL), the rest promoted. */
static void
handle_garbage(OaArenaObject *arena, Collector *c, ObjVec *unreachable,
               Py_ssize_t nown, unsigned next_gen, Outcome *out)
{
    OaGC *gc = &arena->gc;
    ObjVec with_callback = {NULL, 0, 0};
    Recheck recheck;
    memset(&recheck, 0, sizeof(recheck));
    uint8_t *alive = oa_work_alloc((size_t)unreachable->n);
    if (alive == NULL
        || reserve_recheck(&recheck, unreachable->n, c->heap_traverse) < 0
        || gather_weakref_callbacks(c, unreachable, &with_callback) < 0) {
        /* The unreachable ones stay where they are, for the next one. */
        out->failed = 1;
        goto done;
    }
    collector_free(c);          /* the set's work space, no longer needed */
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        Py_INCREF(unreachable->items[i]);
    }
    if (gc->debug & OA_DEBUG_COLLECTABLE) {
        for (Py_ssize_t i = 0; i < nown; i++) {
            PyObject *op = unreachable->items[i];
            PySys_FormatStderr("objarena: collectable <%s %p>\n",
                               Py_TYPE(op)->tp_name, (void *)op);
        }
    }
    clear_weakrefs_then_call(unreachable, &with_callback);
    finalize_garbage(unreachable);
    find_resurrected(&recheck, unreachable, alive);
    clear_final_weakrefs(unreachable, alive);
    for (Py_ssize_t i = 0; i < nown; i++) {
        PyObject *op = unreachable->items[i];
        if (alive[i]) {
            out->resurrected++;
            continue;
        }
        out->collected++;
        if (gc->debug & OA_DEBUG_SAVEALL) {
            if (PyList_Append(gc->garbage, op) < 0) {
                PyErr_WriteUnraisable(NULL);
            }
        }
        else {
            oa_clear_fields(op);
        }
    }
    /* An arena class found unreachable with its instances is cleared too,
       as CPython's gc clears a garbage class: its dict held the references
       that closed the cycle (a class attribute, a method's closure), which
       clearing the instances' fields cannot reach. */
    if (!(gc->debug & OA_DEBUG_SAVEALL)) {
        for (Py_ssize_t i = nown; i < unreachable->n; i++) {
            PyObject *op = unreachable->items[i];
            if (!alive[i] && is_arena_class(op)) {
                Py_TYPE(op)->tp_clear(op);
            }
        }
    }
    for (Py_ssize_t i = 0; i < nown; i++) {
        /* __class__ may have changed; the block stays in its arena. */
        oa_set_generation(unreachable->items[i], next_gen);
    }
    out->promoted += out->resurrected;
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        Py_DECREF(unreachable->items[i]);
    }
done:
    oa_work_free(alive);
    recheck_free(&recheck);
    vec_free(&with_callback);
}

/* The phases of a collection of generations 0..gen, in order.  On failure
   (no work space) nothing is collected and out->failed is set; the set's
   marks are gone either way. */
static void
collect_phases(OaArenaObject *arena, int gen, int explicit_full, Outcome *out)
{
    OaState *st = oa_state_of_module(arena->module);
    unsigned next_gen = gen < 2 ? (unsigned)gen + 1 : 2;
    Collector c;
    memset(&c, 0, sizeof(c));
    c.core = arena->core;
    c.heap_traverse = st->heap_traverse;
    c.gen = (unsigned)gen;
    c.full = gen == 2;
    c.explicit_full = c.full && explicit_full;
    c.slice = arena->gc.untracked_slice % OA_UNTRACKED_SLICES;
    c.untracked_types = arena->untracked_types;
    c.next_gen = next_gen;
    ObjVec unreachable = {NULL, 0, 0};
    ObjVec reinline = {NULL, 0, 0};
    c.reinline = &reinline;

    int taken = take_set(&c);
    out->promoted = c.promoted_untracked;
    if (taken < 0 || subtract_refs(&c) < 0) {
        clear_marks(&c);
        out->failed = 1;
        goto done;
    }
    out->candidates = c.nown;
    mark_reachable(&c);
    Py_ssize_t nown = c.nown - c.nreached;
    Py_ssize_t nforeign = 0;
    for (Py_ssize_t k = 0; k < c.map.n; k++) {
        PyObject *op = slot_op(map_at(&c.map, k));
        if (slot_mark(map_at(&c.map, k)) == 0) {
            if (is_own_untracked(&c, Py_TYPE(op))) {
                nown++;
            }
            else {
                nforeign++;
            }
        }
    }
    if (vec_reserve_exact(&unreachable, nown + nforeign) < 0) {
        clear_marks(&c);
        out->failed = 1;
        goto done;
    }
    out->promoted += split(&c, &unreachable);
    OA_ASSERT(unreachable.n == nown + nforeign);
    /* Survivors: held across the Python code that garbage handling runs. */
    for (Py_ssize_t i = 0; i < reinline.n; i++) {
        Py_INCREF(reinline.items[i]);
    }
    if (nown > 0) {
        handle_garbage(arena, &c, &unreachable, nown, next_gen, out);
    }
    collector_free(&c);
    /* Now that no work space refers to their dicts. */
    for (Py_ssize_t i = 0; i < reinline.n; i++) {
        oa_obj_reinline(reinline.items[i]);
        Py_DECREF(reinline.items[i]);
    }
    vec_free(&reinline);
    vec_free(&unreachable);
    return;
done:
    collector_free(&c);
    vec_free(&reinline);
    vec_free(&unreachable);
}

/* Collect generations 0..gen, with CPython's bookkeeping around the phases
   (counts, long-lived totals, stats, callbacks, DEBUG_STATS).  explicit_full:
   asked for by the program (every untracked object joins a full one).
   Returns the number of unreachable arena objects found (resurrected ones
   excluded), or -1 with MemoryError if the work space could not be had
   (nothing was collected). */
static Py_ssize_t
collect_generation(OaArenaObject *arena, int gen, int explicit_full)
{
    OaGC *gc = &arena->gc;
    if (gc->collecting) {
        return 0;
    }
    gc->collecting = 1;
    Py_INCREF(arena);
    double t0 = now_seconds();
    invoke_callbacks(arena, "start", gen, 0, 0, 0, 0.0);
    if (gc->debug & OA_DEBUG_STATS) {
        PySys_FormatStderr("objarena: collecting generation %d of arena %R...\n",
                           gen, arena->name);
    }
    if (gen + 1 < 3) {
        gc->count[gen + 1]++;
    }
    for (int i = 0; i <= gen; i++) {
        gc->count[i] = 0;
    }

    if (gen == 2) {
        gc->untracked_allocated = 0;
    }
    Outcome out;
    memset(&out, 0, sizeof(out));
    collect_phases(arena, gen, explicit_full, &out);

    if (gen == 1) {
        gc->long_lived_pending += out.promoted;
    }
    if (gen == 2) {
        gc->long_lived_pending = 0;
        gc->long_lived_total = (Py_ssize_t)oa_gen_objects(arena->core, 2);
        if (!explicit_full) {
            gc->untracked_slice++;
        }
    }
    double duration = now_seconds() - t0;
    if (!out.failed) {
        gc->stats[gen].collections++;
        gc->stats[gen].collected += out.collected;
        gc->stats[gen].candidates += out.candidates;
        gc->stats[gen].duration += duration;
    }
    if (gc->debug & OA_DEBUG_STATS) {
        char elapsed[32];   /* PyUnicode_FromFormat has no %f */
        snprintf(elapsed, sizeof(elapsed), "%.4f", duration);
        PySys_FormatStderr("objarena: done, %zd unreachable, %zd uncollectable, "
                           "%zd resurrected, %ss elapsed\n",
                           out.collected, (Py_ssize_t)0, out.resurrected, elapsed);
    }
    /* uncollectable is always 0: arena objects have no legacy tp_del. */
    invoke_callbacks(arena, "stop", gen, out.collected, 0, out.candidates, duration);
    gc->collecting = 0;
    Py_DECREF(arena);
    if (out.failed) {
        PyErr_SetString(PyExc_MemoryError,
                        "objarena: no memory for the collector's work space; "
                        "nothing was collected");
        return -1;
    }
    return out.collected;
}

/* A new object whose references are atoms only starts untracked, as
   msgspec's structs do: its first young collection examines it (a read of
   its fields' types) instead of counting and marking it. */
void
oa_gc_untrack_if_atoms(PyObject *op)
{
    int atoms = 1;              /* one object: no run to take a layout for */
    OA_FOR_EACH_REF(op, v, atoms &= is_atom_type(Py_TYPE(v)));
    if (atoms) {
        *oa_meta_of(op) |= OA_META_UNTRACKED;
    }
}

Py_ssize_t
oa_gc_collect(OaArenaObject *arena, int gen)
{
    return collect_generation(arena, gen, 1);
}

/* ------------------------------------------------------------------------ */
/* The collection policy                                                      */

/* CPython's choice of generation (gc_select_generation): the oldest
   generation whose count reached its threshold; generation 2 only while
   the objects promoted into it since the last full collection reach 25% of
   those that survived it (the "long-lived pending" rule, which keeps the
   amortised cost of full collections linear in the objects allocated).
   -1 if none is due. */
static int
select_generation(const OaGC *gc)
{
    for (int i = 2; i >= 0; i--) {
        /* CPython collects the oldest generation whose count exceeds its
           threshold.  The allocation that asks is not counted yet (count0 ==
           threshold0 means it would exceed it); counts 1 and 2 are. */
        int due = i == 0 ? gc->count[0] >= gc->threshold[0]
                         : gc->count[i] > gc->threshold[i];
        if (due) {
            if (i == 2 && gc->long_lived_pending < gc->long_lived_total / 4) {
                continue;
            }
            return i;
        }
    }
    return -1;
}

static int
may_collect_now(const OaGC *gc)
{
    return gc->enabled && !gc->collecting && !oa_deallocating() && !PyErr_Occurred();
}

/* Automatic collection, from an allocation that found count0 at its
   threshold: never inside a collection or a dealloc, never with an
   exception set. */
void
oa_gc_maybe_collect(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    if (!may_collect_now(gc)) {
        return;
    }
    int gen = select_generation(gc);
    if (gen >= 0 && collect_generation(arena, gen, 0) < 0) {
        PyErr_Clear();          /* no work space: try again later */
    }
}

/* After one of CPython's automatic full collections: the arena's own choice,
   at least generation 0 if it allocated since its last collection. */
void
oa_gc_collect_due(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    if (gc->count[0] <= 0 || !may_collect_now(gc)) {
        return;
    }
    int gen = select_generation(gc);
    if (collect_generation(arena, gen < 0 ? 0 : gen, 0) < 0) {
        PyErr_Clear();
    }
}

int
oa_gc_init(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    memset(gc, 0, sizeof(*gc));
    gc->enabled = 1;
    heap_traverse_of_classes = oa_state_of_module(arena->module)->heap_traverse;
    /* The running CPython's defaults. */
    PyObject *gcmod = PyImport_ImportModule("gc");
    if (gcmod == NULL) {
        return -1;
    }
    PyObject *t = PyObject_CallMethod(gcmod, "get_threshold", NULL);
    Py_DECREF(gcmod);
    if (t == NULL) {
        return -1;
    }
    int ok = PyArg_ParseTuple(t, "iii", &gc->threshold[0], &gc->threshold[1],
                              &gc->threshold[2]);
    Py_DECREF(t);
    if (!ok) {
        return -1;
    }
    gc->callbacks = PyList_New(0);
    gc->garbage = PyList_New(0);
    if (gc->callbacks == NULL || gc->garbage == NULL) {
        return -1;
    }
    return 0;
}

static int
push_live(void *block, uint8_t *meta, void *arg)
{
    (void)meta;
    return vec_push((ObjVec *)arg, (PyObject *)block);
}

/* At module teardown: collect, then clear the fields of every object left,
   so that the references they hold are released while the interpreter can
   still run their deallocs. */
void
oa_arena_teardown(OaArenaObject *arena)
{
    if (arena->gc.collecting) {
        return;
    }
    Py_INCREF(arena);
    if (collect_generation(arena, 2, 1) < 0) {
        PyErr_Clear();
    }
    ObjVec live = {NULL, 0, 0};
    if (oa_visit_live(arena->core, push_live, &live) == 0) {
        for (Py_ssize_t i = 0; i < live.n; i++) {
            Py_INCREF(live.items[i]);
        }
        for (Py_ssize_t i = 0; i < live.n; i++) {
            oa_clear_fields(live.items[i]);
        }
        for (Py_ssize_t i = 0; i < live.n; i++) {
            Py_DECREF(live.items[i]);
        }
    }
    vec_free(&live);
    Py_DECREF(arena);
}

/* ------------------------------------------------------------------------ */
/* get_referrers                                                              */

/* get_referrers: every arena object, and the foreign containers reachable
   from them, whose references include one of the objects asked about. */
typedef struct {
    oa_arena *core;
    traverseproc heap_traverse;
    NodeMap map;                /* foreign containers seen */
    PyObject *targets;          /* tuple */
    int hit;
} ReferrerSearch;

static int
visit_referrer(PyObject *op, void *arg)
{
    ReferrerSearch *rs = arg;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(rs->targets); i++) {
        if (PyTuple_GET_ITEM(rs->targets, i) == op) {
            rs->hit = 1;
        }
    }
    PyTypeObject *tp = Py_TYPE(op);
    if (oa_is_arena_type(tp) && oa_arena_of(op) == rs->core) {
        return 0;               /* visited anyway */
    }
    if (map_find(&rs->map, op) == NULL && expandable(0, rs->heap_traverse, tp, op)) {
        if (map_add(&rs->map, op, 0) == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
collect_referrer(ReferrerSearch *rs, PyObject *op, PyObject *result)
{
    rs->hit = 0;
    if (traverse_node(op, visit_referrer, rs) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (rs->hit) {
        oa_gc_expose(op);       /* an owned container, handed out */
        if (PyList_Append(result, op) < 0) {
            return -1;
        }
    }
    return 0;
}

PyObject *
oa_gc_get_referrers(OaArenaObject *self, PyObject *args)
{
    OaState *st = oa_state_of_module(self->module);
    ReferrerSearch rs;
    memset(&rs, 0, sizeof(rs));
    rs.core = self->core;
    rs.heap_traverse = st->heap_traverse;
    rs.targets = args;
    ObjVec live = {NULL, 0, 0};
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    if (oa_visit_live(self->core, push_live, &live) != 0) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < live.n; i++) {
        Py_INCREF(live.items[i]);
    }
    for (Py_ssize_t i = 0; i < live.n; i++) {
        if (collect_referrer(&rs, live.items[i], result) < 0) {
            goto error_held;
        }
    }
    for (Py_ssize_t k = 0; k < rs.map.n; k++) {
        PyObject *op = slot_op(map_at(&rs.map, k));
        if (op == (PyObject *)result) {
            continue;
        }
        if (collect_referrer(&rs, op, result) < 0) {
            goto error_held;
        }
    }
    for (Py_ssize_t i = 0; i < live.n; i++) {
        Py_DECREF(live.items[i]);
    }
    vec_free(&live);
    map_free(&rs.map);
    return result;

error_held:
    for (Py_ssize_t i = 0; i < live.n; i++) {
        Py_DECREF(live.items[i]);
    }
error:
    vec_free(&live);
    map_free(&rs.map);
    Py_DECREF(result);
    return NULL;
}
