/*
 * gc.c -- the arena's generational cycle collector, and the gc-like API of
 * Arena.
 *
 * CPython's collector never sees arena objects (they have no GC header), so
 * a cycle through them would leak.  This collector finds such cycles with
 * CPython's algorithm, trial deletion, over a set of its own objects, and
 * frees them in CPython's order.
 *
 * Generations.  Three plus a permanent one, in the side-table bits of each
 * block (arena.h).  count0 is allocations minus frees since the last
 * collection of generation 0; collecting generation g bumps count[g+1] and
 * zeroes count[0..g]; a full collection runs only while the objects promoted
 * into generation 2 since the last one reach 25% of those that survived it
 * (CPython's "long-lived pending" rule).  Young collections visit only the
 * pages on the arena's young list, so their cost follows the young objects,
 * not the heap.
 *
 * One collection of generation g (collect_generation):
 *
 *   1. The set.  S = the arena's live objects of generations 0..g.  Their
 *      counters (gc_refs) sit in a work array indexed through each page
 *      (page->user + block index); the COLLECTING bit marks membership.
 *      The work space is allocated before anything changes: if it cannot be
 *      had, the collection gives up having collected nothing.
 *   2. update/subtract refs.  gc_refs := ob_refcnt, then every reference
 *      from inside the set is subtracted.  References to foreign objects --
 *      lists, tuples, dicts, sets, instances of Python classes (tracked, with
 *      an allow-listed native base), objects of other arenas -- pull those
 *      objects into the set (a hash map, gc_refs := ob_refcnt too), up to a
 *      budget proportional to |S|.  Frames, generators, coroutines, types and
 *      anything not on the list are never traversed: a reference from one of
 *      them simply counts as external.  Visiting too few edges keeps objects
 *      alive; visiting one that is not owned would free a live object -- so
 *      only owned references are ever visited.
 *   3. move_unreachable.  Objects with gc_refs > 0 are referenced from
 *      outside the set; everything reachable from them (an explicit stack,
 *      no recursion) is reachable.  The rest is unreachable.  Reachable
 *      arena objects move to generation g+1.
 *   -- From here Python code runs; the set's bits are cleared first.  Every
 *      unreachable object is held (INCREF) until the end. --
 *   4. Weak references to unreachable objects are cleared, then the
 *      callbacks of those that had one are called (CPython's order: no
 *      callback can reach an unreachable object through a cleared weak
 *      reference).  Up to 3.14 all of them are cleared here; on 3.15 only
 *      those with a callback, as its gc does (the others wait for step 7).
 *   5. Finalizers (__del__) run, once per object ever (the FINALIZED bit).
 *   6. Resurrection: trial deletion again over the unreachable objects
 *      alone; what is referenced from outside them now survives, with all it
 *      reaches.
 *   7. The rest is garbage: every weak reference still set to it (3.15: the
 *      ones without a callback; any version: those finalizers made) is
 *      cleared; then with DEBUG_SAVEALL it goes to Arena.garbage, otherwise
 *      the arena objects' fields are cleared.  Releasing the held references
 *      then frees everything by plain reference counting; foreign objects
 *      are never cleared.
 *
 * Trial deletion over any subset is conservative: whatever is referenced
 * from outside the set survives.
 */
#include "objarena.h"

#include <time.h>

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

static void
vec_free(ObjVec *v)
{
    oa_work_free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* Nodes found by address: open addressing over indices into parallel
   arrays (object, gc_refs, reached). */
typedef struct {
    PyObject **op;
    Py_ssize_t *refs;
    uint8_t *reached;
    Py_ssize_t n;
    Py_ssize_t cap;
    Py_ssize_t *table;          /* index + 1, 0 = empty */
    size_t mask;
} NodeMap;

static inline size_t
hash_ptr(const void *p)
{
    uintptr_t x = (uintptr_t)p >> 3;
    x *= (uintptr_t)0x9E3779B97F4A7C15ULL;
    return (size_t)(x ^ (x >> 29));
}

static Py_ssize_t
map_find(const NodeMap *m, PyObject *op)
{
    if (m->n == 0) {
        return -1;
    }
    for (size_t h = hash_ptr(op) & m->mask;; h = (h + 1) & m->mask) {
        Py_ssize_t k = m->table[h];
        if (k == 0) {
            return -1;
        }
        if (m->op[k - 1] == op) {
            return k - 1;
        }
    }
}

static int
map_grow(NodeMap *m)
{
    Py_ssize_t cap = m->cap ? m->cap * 2 : 256;
    size_t tsize = (size_t)cap * 2;
    PyObject **op = oa_work_alloc((size_t)cap * sizeof(PyObject *));
    Py_ssize_t *refs = oa_work_alloc((size_t)cap * sizeof(Py_ssize_t));
    uint8_t *reached = oa_work_alloc((size_t)cap);
    Py_ssize_t *table = oa_work_alloc(tsize * sizeof(Py_ssize_t));
    if (op == NULL || refs == NULL || reached == NULL || table == NULL) {
        oa_work_free(op);
        oa_work_free(refs);
        oa_work_free(reached);
        oa_work_free(table);
        return -1;
    }
    if (m->n) {
        memcpy(op, m->op, (size_t)m->n * sizeof(PyObject *));
        memcpy(refs, m->refs, (size_t)m->n * sizeof(Py_ssize_t));
        memcpy(reached, m->reached, (size_t)m->n);
    }
    memset(table, 0, tsize * sizeof(Py_ssize_t));
    size_t mask = tsize - 1;
    for (Py_ssize_t k = 0; k < m->n; k++) {
        size_t h = hash_ptr(op[k]) & mask;
        while (table[h] != 0) {
            h = (h + 1) & mask;
        }
        table[h] = k + 1;
    }
    oa_work_free(m->op);
    oa_work_free(m->refs);
    oa_work_free(m->reached);
    oa_work_free(m->table);
    m->op = op;
    m->refs = refs;
    m->reached = reached;
    m->table = table;
    m->mask = mask;
    m->cap = cap;
    return 0;
}

/* Add op (absent) with gc_refs `refs`; returns its index or -1. */
static Py_ssize_t
map_add(NodeMap *m, PyObject *op, Py_ssize_t refs)
{
    if (m->n == m->cap && map_grow(m) < 0) {
        return -1;
    }
    Py_ssize_t k = m->n++;
    m->op[k] = op;
    m->refs[k] = refs;
    m->reached[k] = 0;
    size_t h = hash_ptr(op) & m->mask;
    while (m->table[h] != 0) {
        h = (h + 1) & m->mask;
    }
    m->table[h] = k + 1;
    return k;
}

static void
map_free(NodeMap *m)
{
    oa_work_free(m->op);
    oa_work_free(m->refs);
    oa_work_free(m->reached);
    oa_work_free(m->table);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------ */
/* Trial deletion                                                             */

typedef struct {
    OaArenaObject *arena;
    oa_arena *core;
    traverseproc heap_traverse;
    unsigned gen;               /* collecting generations 0..gen */
    int use_pages;              /* own objects found through page counters */
    int expanding;              /* foreign objects may join the set */
    Py_ssize_t budget;          /* the most foreign objects that may join */
    oa_page **pages;            /* pages holding a member of S */
    Py_ssize_t npages;
    Py_ssize_t pages_cap;
    Py_ssize_t *counters;       /* gc_refs of S, by page->user + block */
    Py_ssize_t ncounters;
    Py_ssize_t nown;            /* |S| */
    NodeMap map;                /* foreign members (all members if !use_pages) */
    ObjVec stack;
    PyTypeObject *own_type;     /* the last type seen whose objects are ours */
    /* Full collections: the references of own objects to their classes, a
       run of objects of one class at a time (they share pages). */
    PyTypeObject *class_run;    /* the class of the current run ... */
    Py_ssize_t class_run_refs;  /* ... and its objects counted so far */
    PyTypeObject *class_reached; /* the last class visited as reachable */
    int expand_types;           /* full collections: classes may join the set */
    int nomem;
} Collector;

static void
collector_free(Collector *c)
{
    oa_work_free(c->pages);
    oa_work_free(c->counters);
    c->pages = NULL;
    c->counters = NULL;
    map_free(&c->map);
    vec_free(&c->stack);
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

/* May a foreign object join the set: are all the references its traverse
   visits owned ones? */
static int
expandable(Collector *c, PyTypeObject *tp, PyObject *op)
{
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
        || tp == &PySet_Type || tp == &PyFrozenSet_Type) {
        /* Untracked ones too: CPython untracks a tuple or a dict whose items
           are all invisible to it, as arena objects are. */
        return 1;
    }
    if (oa_is_arena_type(tp)) {
        return 1;               /* an object of another arena */
    }
    if (PyWeakref_CheckRefExact(op) || PyWeakref_CheckProxy(op)) {
        /* Its traverse visits the callback only (the referent is not owned).
           In the set, a weak reference that is garbage itself is known, and
           its callback is not called (CPython's rule). */
        return 1;
    }
    if (c->expand_types && PyObject_IS_GC(op) && PyObject_GC_IsTracked(op)) {
        /* An arena class, and what a class body holds, so that a class kept
           alive only by its own instances (a class attribute, a method's
           closure) is found.  Native classes too (exact `type`, heap types):
           a cycle through a module's globals often runs through one (an
           arena object -> its class -> a method -> the globals -> a native
           class -> its methods -> the globals), and CPython's gc, which
           cannot see the arena object's references, can never free it
           alone.  Their traverses visit owned references only. */
        if (is_arena_class(op)
            || (tp == &PyType_Type
                && (((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))
            || tp == &PyFunction_Type || tp == &PyCell_Type
            || tp == &PyClassMethod_Type || tp == &PyStaticMethod_Type
            || tp == &PyProperty_Type || tp == &PyMemberDescr_Type
            || tp == &PyGetSetDescr_Type || tp == &PyMethodDescr_Type
            || tp == &PyWrapperDescr_Type || tp == &PyClassMethodDescr_Type
            || oa_is_typed_member(op)) {
            return 1;
        }
    }
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || tp->tp_traverse != c->heap_traverse
        || !PyObject_IS_GC(op) || !PyObject_GC_IsTracked(op)) {
        return 0;
    }
    /* A Python class: its first base with a traverse of its own decides. */
    PyTypeObject *b = tp;
    while (b != NULL && b->tp_traverse == c->heap_traverse) {
        b = b->tp_base;
    }
    /* _PyWeakref_RefType: the type object behind the public PyWeakref_Check*
       macros (a subclass such as weakref.KeyedRef adds slots only). */
    return b == NULL || b == &PyBaseObject_Type || b == &PyList_Type
           || b == &PyDict_Type || b == &PySet_Type || b == &PyFrozenSet_Type
           || b == &PyTuple_Type || b == &_PyWeakref_RefType;
}

/* Are tp's instances objects of the arena being collected?  An instance
   lives in its class's arena (__class__ assignment keeps to one arena), so
   the type answers without touching the object's page. */
static inline int
is_own_type(Collector *c, PyTypeObject *tp)
{
    if (tp == c->own_type) {
        return 1;
    }
    if (oa_is_arena_type(tp) && ((OaTypeObject *)tp)->arena->core == c->core) {
        c->own_type = tp;
        return 1;
    }
    return 0;
}

static inline Py_ssize_t *
node_refs(Collector *c, PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (c->use_pages && is_own_type(c, tp)) {
        oa_page *pg = oa_page_of(op);
        uint32_t i = oa_block_index(pg, op);
        if (pg->meta[i] & OA_META_COLLECTING) {
            return &c->counters[pg->user + i];
        }
        if (!c->expand_types || !oa_untracked(op)) {
            return NULL;        /* an older generation: an external root */
        }
        /* An untracked object (typed fields only) is never in the set, but
           it holds its class: in a full collection, reached from the set,
           it joins as a foreign node does, so that a class whose own
           attribute holds one of its instances (P.origin = P(0.0)) is found
           garbage with it. */
    }
    Py_ssize_t k = map_find(&c->map, op);
    if (k >= 0) {
        return &c->map.refs[k];
    }
    if (c->expanding && c->map.n < c->budget && !c->nomem && expandable(c, tp, op)) {
        k = map_add(&c->map, op, Py_REFCNT(op));
        if (k < 0) {
            c->nomem = 1;
            return NULL;
        }
        return &c->map.refs[k];
    }
    return NULL;
}

/* The fields of an own object, visited without an indirect call per edge:
   the hot loop of a collection. */
#define FOR_EACH_FIELD(op, v, body)                                         \
    do {                                                                    \
        OaTypeObject *t_ = (OaTypeObject *)Py_TYPE(op);                     \
        Py_ssize_t n_ = PyTuple_GET_SIZE(t_->fields);                       \
        for (Py_ssize_t i_ = 0; i_ < n_; i_++) {                            \
            PyObject *v = *(PyObject **)((char *)(op) + t_->offsets[i_]);   \
            if (v != NULL) {                                                \
                body;                                                       \
            }                                                               \
        }                                                                   \
    } while (0)

static int
visit_decref(PyObject *op, void *arg)
{
    Py_ssize_t *refs = node_refs((Collector *)arg, op);
    if (refs != NULL) {
        (*refs)--;
    }
    return 0;
}

static int
traverse_node(PyObject *op, visitproc visit, void *arg)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (oa_is_arena_type(tp)) {
        /* The class is an owned reference too (it joins only in a full
           collection; otherwise it counts as external). */
        int r = visit((PyObject *)tp, arg);
        return r ? r : oa_traverse_fields(op, visit, arg);
    }
    return tp->tp_traverse(op, visit, arg);
}

/* Mark op reachable; push it if it is a member not yet marked. */
static int
visit_reach(PyObject *op, void *arg)
{
    Collector *c = arg;
    PyTypeObject *tp = Py_TYPE(op);
    if (c->use_pages && is_own_type(c, tp) && !oa_untracked(op)) {
        uint8_t *meta = oa_meta_of(op);
        if ((*meta & (OA_META_COLLECTING | OA_META_REACHED)) == OA_META_COLLECTING) {
            *meta |= OA_META_REACHED;
            if (vec_push(&c->stack, op) < 0) {
                c->nomem = 1;
            }
        }
        return 0;
    }
    /* Untracked own objects are nodes of the map, as in node_refs. */
    Py_ssize_t k = map_find(&c->map, op);
    if (k >= 0 && !c->map.reached[k]) {
        c->map.reached[k] = 1;
        if (vec_push(&c->stack, op) < 0) {
            c->nomem = 1;
        }
    }
    return 0;
}

/* An own object's reference to its class, as reachable: visiting the same
   class again changes nothing, so a run of its objects visits it once. */
static inline void
reach_class(Collector *c, PyTypeObject *tp)
{
    if (tp != c->class_reached) {
        visit_reach((PyObject *)tp, c);
        c->class_reached = tp;
    }
}

static int
propagate(Collector *c)
{
    while (c->stack.n > 0 && !c->nomem) {
        PyObject *op = c->stack.items[--c->stack.n];
        if (c->use_pages && is_own_type(c, Py_TYPE(op))
            && !((OaTypeObject *)Py_TYPE(op))->dynamic) {
            if (c->expand_types) {
                reach_class(c, Py_TYPE(op));
            }
            FOR_EACH_FIELD(op, v, visit_reach(v, c));
        }
        else {
            traverse_node(op, visit_reach, c);
        }
    }
    return c->nomem ? -1 : 0;
}

/* Each visitor over the set's pages gets the collector and the page. */
typedef void (*block_fn)(Collector *c, oa_page *pg, uint32_t b, PyObject *op);

static void
for_each_member(Collector *c, block_fn fn)
{
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        for (uint32_t b = 0; b < pg->fresh; b++) {
            if (pg->meta[b] & OA_META_COLLECTING) {
                fn(c, pg, b, (PyObject *)(pg->blocks + (size_t)b * pg->block_size));
            }
        }
    }
}

static int
count_page(oa_page *pg, void *arg)
{
    Collector *c = arg;
    uint32_t members = 0;
    for (uint32_t b = 0; b < pg->fresh; b++) {
        uint8_t m = pg->meta[b];
        members += (m & (OA_META_LIVE | OA_META_DYING)) == OA_META_LIVE
                   && oa_meta_gen(m) <= c->gen;
    }
    if (members == 0) {
        return 0;
    }
    void *pages = c->pages;
    if (work_reserve(&pages, c->npages, &c->pages_cap, sizeof(oa_page *)) < 0) {
        return -1;
    }
    c->pages = pages;
    c->pages[c->npages++] = pg;
    pg->user = (size_t)c->ncounters;
    c->ncounters += pg->fresh;
    c->nown += members;
    return 0;
}

/* Subtract the references of the current run of own objects to their
   class (one node lookup per run, not per object). */
static void
flush_class_refs(Collector *c)
{
    if (c->class_run != NULL) {
        Py_ssize_t *refs = node_refs(c, (PyObject *)c->class_run);
        if (refs != NULL) {
            *refs -= c->class_run_refs;
        }
    }
    c->class_run = NULL;
    c->class_run_refs = 0;
}

static inline void
count_class_ref(Collector *c, PyTypeObject *tp)
{
    if (tp != c->class_run) {
        flush_class_refs(c);
        c->class_run = tp;
    }
    c->class_run_refs++;
}

/* gc_refs of a member: its reference count, less every reference from
   inside the set.  Both are sums, in any order: one pass over the members
   adds each one's count and subtracts what its fields reference, touching
   each object once. */
static void
member_subtract(Collector *c, oa_page *pg, uint32_t b, PyObject *op)
{
    c->counters[pg->user + b] += Py_REFCNT(op);
    if (((OaTypeObject *)Py_TYPE(op))->dynamic) {
        traverse_node(op, visit_decref, c);
        return;
    }
    if (c->expand_types) {
        count_class_ref(c, Py_TYPE(op));
    }
    FOR_EACH_FIELD(op, v, {
        Py_ssize_t *refs = node_refs(c, v);
        if (refs != NULL) {
            (*refs)--;
        }
    });
}

/* A root (referenced from outside the set): mark it and everything it
   reaches, depth first on an explicit stack. */
static void
member_root(Collector *c, oa_page *pg, uint32_t b, PyObject *op)
{
    if (c->counters[pg->user + b] > 0 && !(pg->meta[b] & OA_META_REACHED)) {
        pg->meta[b] |= OA_META_REACHED;
        if (((OaTypeObject *)Py_TYPE(op))->dynamic) {
            traverse_node(op, visit_reach, c);
        }
        else {
            if (c->expand_types) {
                reach_class(c, Py_TYPE(op));
            }
            FOR_EACH_FIELD(op, v, visit_reach(v, c));
        }
        propagate(c);
    }
}

/* Build S (generations 0..gen of the arena) and subtract the references from
   inside.  Returns -1 if the work space could not be had (nothing changed). */
static int
deduce_set(Collector *c)
{
    if (oa_visit_pages(c->core, c->gen, count_page, c) < 0) {
        return -1;
    }
    c->counters = oa_work_alloc((size_t)(c->ncounters ? c->ncounters : 1)
                                * sizeof(Py_ssize_t));
    if (c->counters == NULL) {
        return -1;
    }
    memset(c->counters, 0, (size_t)c->ncounters * sizeof(Py_ssize_t));
    for (Py_ssize_t p = 0; p < c->npages; p++) {
        oa_page *pg = c->pages[p];
        for (uint32_t b = 0; b < pg->fresh; b++) {
            uint8_t m = pg->meta[b];
            if ((m & (OA_META_LIVE | OA_META_DYING)) == OA_META_LIVE
                && oa_meta_gen(m) <= c->gen) {
                pg->meta[b] = m | OA_META_COLLECTING;
            }
        }
    }
    c->budget = 4 * c->nown + 1024;
    c->expanding = 1;
    if (c->expand_types) {
        /* The instances of these classes hold no reference but their class,
           and are never in the set; a class kept alive only by its own
           instances (P.origin = P(0.0)) is found from the class: it joins,
           its dict reaches the instances (node_refs), theirs reach it. */
        for (OaTypeObject *t = c->arena->untracked_types; t != NULL; t = t->next_untracked) {
            (void)node_refs(c, (PyObject *)t);
        }
    }
    for_each_member(c, member_subtract);
    flush_class_refs(c);
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        traverse_node(c->map.op[k], visit_decref, c);
    }
    c->expanding = 0;
    return 0;
}

static void
member_clear_bits(Collector *c, oa_page *pg, uint32_t b, PyObject *op)
{
    (void)c;
    (void)op;
    pg->meta[b] &= (uint8_t)~(OA_META_COLLECTING | OA_META_REACHED);
}

typedef struct {
    ObjVec *unreachable;
    ObjVec *reinline;           /* survivors whose dict only they hold */
    unsigned next_gen;
    Py_ssize_t promoted;
    int nomem;
} SplitArgs;

static SplitArgs *split_args;

static void
member_split(Collector *c, oa_page *pg, uint32_t b, PyObject *op)
{
    (void)c;
    uint8_t m = pg->meta[b];
    pg->meta[b] = m & (uint8_t)~(OA_META_COLLECTING | OA_META_REACHED);
    if (m & OA_META_REACHED) {
        if (oa_meta_gen(m) != split_args->next_gen) {
            oa_set_generation(op, split_args->next_gen);
        }
        split_args->promoted++;
        /* Best effort: without room in the vector it waits for the next
           collection or attribute access. */
        if (((OaTypeObject *)Py_TYPE(op))->dynamic && oa_obj_dict_unshared(op)
            && vec_push(split_args->reinline, op) == 0) {
            Py_INCREF(op);
        }
    }
    else if (vec_push(split_args->unreachable, op) < 0) {
        split_args->nomem = 1;
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

/* Is op an untracked object of the arena being collected? */
static int
is_own_untracked(Collector *c, PyObject *op)
{
    return is_own_type(c, Py_TYPE(op)) && oa_untracked(op);
}

/* Is op a foreign member of the set found unreachable? */
static int
is_foreign_garbage(Collector *c, PyObject *op)
{
    Py_ssize_t k = map_find(&c->map, op);
    return k >= 0 && !c->map.reached[k];
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

/* The work space of the resurrection check, taken before any Python code
   runs so that the check itself cannot fail: a node map with room for every
   unreachable object and a stack as deep. */
static int
reserve_resurrection_check(Collector *c, OaArenaObject *arena, Py_ssize_t n)
{
    memset(c, 0, sizeof(*c));
    c->arena = arena;
    c->core = arena->core;
    while (c->map.cap < n) {
        if (map_grow(&c->map) < 0) {
            return -1;
        }
    }
    c->stack.items = oa_work_alloc((size_t)(n ? n : 1) * sizeof(PyObject *));
    if (c->stack.items == NULL) {
        return -1;
    }
    c->stack.cap = n ? n : 1;
    return 0;
}

/* Which of the held unreachable objects are still garbage after Python code
   ran?  Trial deletion over them alone (each holds one reference of ours);
   marks survivors in `alive` (1 = resurrected).  Uses only the reserved
   work space: it cannot fail. */
static void
find_resurrected(Collector *c, ObjVec *unreachable, uint8_t *alive)
{
    for (Py_ssize_t i = 0; i < unreachable->n; i++) {
        PyObject *op = unreachable->items[i];
        (void)map_add(&c->map, op, Py_REFCNT(op) - 1);      /* room reserved */
    }
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        traverse_node(c->map.op[k], visit_decref, c);
    }
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        if (c->map.refs[k] > 0 && !c->map.reached[k]) {
            c->map.reached[k] = 1;
            (void)vec_push(&c->stack, c->map.op[k]);       /* room reserved */
        }
    }
    (void)propagate(c);
    for (Py_ssize_t k = 0; k < c->map.n; k++) {
        alive[k] = c->map.reached[k];
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

/* Collect generations 0..gen.  Returns the number of unreachable arena
   objects found (resurrected ones excluded), or -1 with MemoryError if the
   work space could not be had (nothing was collected). */
static Py_ssize_t
collect_generation(OaArenaObject *arena, int gen)
{
    OaGC *gc = &arena->gc;
    OaState *st = oa_state_of_module(arena->module);
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

    Collector c;
    memset(&c, 0, sizeof(c));
    c.arena = arena;
    c.core = arena->core;
    c.heap_traverse = st->heap_traverse;
    c.gen = (unsigned)gen;
    c.expand_types = gen == 2;
    c.use_pages = 1;
    if (gen == 2) {
        gc->untracked_allocated = 0;
    }

    ObjVec unreachable = {NULL, 0, 0};
    ObjVec reinline = {NULL, 0, 0};
    ObjVec with_callback = {NULL, 0, 0};
    Collector recheck;
    memset(&recheck, 0, sizeof(recheck));
    uint8_t *alive = NULL;
    Py_ssize_t collected = 0, resurrected = 0, candidates = 0, promoted = 0;
    int failed = 0;
    unsigned next_gen = gen < 2 ? (unsigned)gen + 1 : 2;

    if (deduce_set(&c) < 0) {
        failed = 1;
        for_each_member(&c, member_clear_bits);
        goto done;
    }
    for_each_member(&c, member_root);
    for (Py_ssize_t k = 0; k < c.map.n; k++) {
        if (c.map.refs[k] > 0 && !c.map.reached[k]) {
            c.map.reached[k] = 1;
            if (vec_push(&c.stack, c.map.op[k]) < 0) {
                c.nomem = 1;
            }
        }
    }
    if (c.nomem || propagate(&c) < 0) {
        failed = 1;
        for_each_member(&c, member_clear_bits);
        goto done;
    }
    /* The unreachable: own arena objects first, then foreign ones. */
    SplitArgs sa = {&unreachable, &reinline, next_gen, 0, 0};
    split_args = &sa;
    for_each_member(&c, member_split);
    split_args = NULL;
    Py_ssize_t nown_unreachable = unreachable.n;
    /* Untracked objects of this arena (typed fields only) join through the
       map, as foreign nodes do; found garbage, they are own objects. */
    for (int own = 1; own >= 0; own--) {
        for (Py_ssize_t k = 0; k < c.map.n && !sa.nomem; k++) {
            PyObject *op = c.map.op[k];
            if (!c.map.reached[k] && own == is_own_untracked(&c, op)
                && vec_push(&unreachable, op) < 0) {
                sa.nomem = 1;
            }
        }
        if (own) {
            nown_unreachable = unreachable.n;
        }
    }
    candidates = c.nown;
    promoted = sa.promoted;
    if (sa.nomem) {
        /* Survivors were promoted; the unreachable ones stay where they are
           and wait for the next collection. */
        failed = 1;
        goto done;
    }
    if (nown_unreachable == 0) {
        goto done;
    }
    /* Everything the rest needs is taken now: past this point no Python
       code may run on a collection that could still give up. */
    alive = oa_work_alloc((size_t)unreachable.n);
    if (alive == NULL
        || reserve_resurrection_check(&recheck, arena, unreachable.n) < 0
        || gather_weakref_callbacks(&c, &unreachable, &with_callback) < 0) {
        failed = 1;
        goto done;
    }
    collector_free(&c);         /* the set's work space, no longer needed */
    for (Py_ssize_t i = 0; i < unreachable.n; i++) {
        Py_INCREF(unreachable.items[i]);
    }
    if (gc->debug & OA_DEBUG_COLLECTABLE) {
        for (Py_ssize_t i = 0; i < nown_unreachable; i++) {
            PyObject *op = unreachable.items[i];
            PySys_FormatStderr("objarena: collectable <%s %p>\n",
                               Py_TYPE(op)->tp_name, (void *)op);
        }
    }
    clear_weakrefs_then_call(&unreachable, &with_callback);
    finalize_garbage(&unreachable);
    find_resurrected(&recheck, &unreachable, alive);
    clear_final_weakrefs(&unreachable, alive);
    for (Py_ssize_t i = 0; i < nown_unreachable; i++) {
        PyObject *op = unreachable.items[i];
        if (alive[i]) {
            resurrected++;
            continue;
        }
        collected++;
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
        for (Py_ssize_t i = nown_unreachable; i < unreachable.n; i++) {
            PyObject *op = unreachable.items[i];
            if (!alive[i] && is_arena_class(op)) {
                Py_TYPE(op)->tp_clear(op);
            }
        }
    }
    for (Py_ssize_t i = 0; i < nown_unreachable; i++) {
        PyObject *op = unreachable.items[i];
        /* __class__ may have changed; the block stays in its arena. */
        oa_set_generation(op, next_gen);
    }
    promoted += resurrected;
    for (Py_ssize_t i = 0; i < unreachable.n; i++) {
        Py_DECREF(unreachable.items[i]);
    }

done:
    collector_free(&c);
    /* Survivors in dict form whose dict nothing else holds go back to their
       inline form (obj.c), now that no work space refers to the dicts. */
    for (Py_ssize_t i = 0; i < reinline.n; i++) {
        oa_obj_reinline(reinline.items[i]);
        Py_DECREF(reinline.items[i]);
    }
    vec_free(&reinline);
    oa_work_free(alive);
    collector_free(&recheck);
    vec_free(&with_callback);
    vec_free(&unreachable);
    if (gen == 1) {
        gc->long_lived_pending += promoted;
    }
    if (gen == 2) {
        gc->long_lived_pending = 0;
        gc->long_lived_total = (Py_ssize_t)oa_gen_objects(arena->core, 2);
    }
    double duration = now_seconds() - t0;
    if (!failed) {
        gc->stats[gen].collections++;
        gc->stats[gen].collected += collected;
        gc->stats[gen].candidates += candidates;
        gc->stats[gen].duration += duration;
    }
    if (gc->debug & OA_DEBUG_STATS) {
        char elapsed[32];   /* PyUnicode_FromFormat has no %f */
        snprintf(elapsed, sizeof(elapsed), "%.4f", duration);
        PySys_FormatStderr("objarena: done, %zd unreachable, %zd uncollectable, "
                           "%zd resurrected, %ss elapsed\n",
                           collected, (Py_ssize_t)0, resurrected, elapsed);
    }
    invoke_callbacks(arena, "stop", gen, collected, 0, candidates, duration);
    gc->collecting = 0;
    Py_DECREF(arena);
    if (failed) {
        PyErr_SetString(PyExc_MemoryError,
                        "objarena: no memory for the collector's work space; "
                        "nothing was collected");
        return -1;
    }
    return collected;
}

/* Is generation i over its threshold?  CPython collects the oldest
   generation whose count exceeds its threshold.  The allocation that calls
   oa_gc_maybe_collect is not counted yet (count0 == threshold0 means it
   would exceed it); counts 1 and 2 are complete. */
static inline int
generation_due(const OaGC *gc, int i)
{
    return i == 0 ? gc->count[0] >= gc->threshold[0] : gc->count[i] > gc->threshold[i];
}

/* Automatic collection, from an allocation: CPython's choice of generation,
   never inside a collection or a dealloc, never with an exception set. */
void
oa_gc_maybe_collect(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    if (gc->collecting || oa_dealloc_nesting > 0 || PyErr_Occurred()) {
        return;
    }
    for (int i = 2; i >= 0; i--) {
        if (generation_due(gc, i)) {
            if (i == 2 && gc->long_lived_pending < gc->long_lived_total / 4) {
                continue;
            }
            if (collect_generation(arena, i) < 0) {
                PyErr_Clear();      /* no work space: try again later */
            }
            return;
        }
    }
}

int
oa_gc_init(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    memset(gc, 0, sizeof(*gc));
    gc->enabled = 1;
    gc->threshold[0] = 700;
    gc->threshold[1] = 10;
    gc->threshold[2] = 10;
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
    if (collect_generation(arena, 2) < 0) {
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
/* The gc-like API of Arena                                                   */

static int
check_generation(int gen)
{
    if (gen < 0 || gen > 2) {
        PyErr_SetString(PyExc_ValueError, "invalid generation");
        return -1;
    }
    return 0;
}

PyObject *
oa_arena_collect(OaArenaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"generation", NULL};
    int gen = 2;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:collect", kwlist, &gen)) {
        return NULL;
    }
    if (check_generation(gen) < 0) {
        return NULL;
    }
    Py_ssize_t n = collect_generation(self, gen);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

PyObject *
oa_arena_get_count(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    OaGC *gc = &self->gc;
    return Py_BuildValue("(nnn)", gc->count[0], gc->count[1], gc->count[2]);
}

PyObject *
oa_arena_get_threshold(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    OaGC *gc = &self->gc;
    return Py_BuildValue("(iii)", gc->threshold[0], gc->threshold[1], gc->threshold[2]);
}

PyObject *
oa_arena_set_threshold(OaArenaObject *self, PyObject *args)
{
    OaGC *gc = &self->gc;
    int t[3] = {gc->threshold[0], gc->threshold[1], gc->threshold[2]};
    if (!PyArg_ParseTuple(args, "i|ii:set_threshold", &t[0], &t[1], &t[2])) {
        return NULL;
    }
    memcpy(gc->threshold, t, sizeof(t));
    Py_RETURN_NONE;
}

PyObject *
oa_arena_enable(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    self->gc.enabled = 1;
    Py_RETURN_NONE;
}

PyObject *
oa_arena_disable(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    self->gc.enabled = 0;
    Py_RETURN_NONE;
}

PyObject *
oa_arena_isenabled(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->gc.enabled);
}

PyObject *
oa_arena_get_stats(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(3);
    if (list == NULL) {
        return NULL;
    }
    for (int g = 0; g < 3; g++) {
        OaGenStats *st = &self->gc.stats[g];
#if OA_GC_STATS_TIMED
        PyObject *d = Py_BuildValue("{s:n,s:n,s:n,s:n,s:d}", "collections", st->collections,
                                    "collected", st->collected,
                                    "uncollectable", st->uncollectable,
                                    "candidates", st->candidates,
                                    "duration", st->duration);
#else
        PyObject *d = Py_BuildValue("{s:n,s:n,s:n}", "collections", st->collections,
                                    "collected", st->collected,
                                    "uncollectable", st->uncollectable);
#endif
        if (d == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, g, d);
    }
    return list;
}

PyObject *
oa_arena_set_debug(OaArenaObject *self, PyObject *arg)
{
    int flags = oa_as_int(arg);
    if (flags == -1 && PyErr_Occurred()) {
        return NULL;
    }
    self->gc.debug = flags;
    Py_RETURN_NONE;
}

PyObject *
oa_arena_get_debug(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(self->gc.debug);
}

/* Is obj a live object of this arena?  (An arena class's instance is always
   in the arena its block belongs to.) */
static int
in_arena(OaArenaObject *self, PyObject *obj)
{
    return oa_is_arena_object(obj) && oa_arena_of(obj) == self->core;
}

typedef struct {
    PyObject *list;
    int gen;                    /* -1: generations 0..2 */
} GetObjectsArgs;

static int
append_if_gen(void *block, uint8_t *meta, void *arg)
{
    GetObjectsArgs *a = arg;
    int g = (int)oa_meta_gen(*meta);
    if (g == 3 || (a->gen >= 0 && g != a->gen)) {
        return 0;
    }
    return PyList_Append(a->list, (PyObject *)block) < 0 ? -1 : 0;
}

PyObject *
oa_arena_get_objects(OaArenaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"generation", NULL};
    PyObject *gen_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:get_objects", kwlist, &gen_obj)) {
        return NULL;
    }
    int gen = -1;
    if (gen_obj != Py_None) {
        gen = oa_as_int(gen_obj);
        if (gen == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (gen < 0) {
            PyErr_SetString(PyExc_ValueError, "generation parameter cannot be negative");
            return NULL;
        }
        if (gen > 2) {
            PyErr_SetString(PyExc_ValueError,
                            "generation parameter must be less than the number "
                            "of available generations (3)");
            return NULL;
        }
    }
    GetObjectsArgs a = {PyList_New(0), gen};
    if (a.list == NULL) {
        return NULL;
    }
    /* Appending to a list allocates nothing in the arena. */
    if (oa_visit_live(self->core, append_if_gen, &a) != 0) {
        Py_DECREF(a.list);
        return NULL;
    }
    return a.list;
}

PyObject *
oa_arena_is_tracked(OaArenaObject *self, PyObject *obj)
{
    /* An object that holds no reference but its class (typed fields only)
       is never tracked, as CPython's gc leaves atomic objects untracked. */
    return PyBool_FromLong(in_arena(self, obj) && !oa_untracked(obj));
}

PyObject *
oa_arena_is_finalized(OaArenaObject *self, PyObject *obj)
{
    return PyBool_FromLong(in_arena(self, obj) && (*oa_meta_of(obj) & OA_META_FINALIZED));
}

PyObject *
oa_arena_generation_of(OaArenaObject *self, PyObject *obj)
{
    if (!oa_is_arena_object(obj)) {
        PyErr_Format(PyExc_TypeError, "generation_of() takes an objarena object, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (oa_arena_of(obj) != self->core) {
        PyErr_SetString(PyExc_ValueError, "the object lives in another arena");
        return NULL;
    }
    return PyLong_FromLong((long)oa_meta_gen(*oa_meta_of(obj)));
}

static int
visit_append(PyObject *op, void *arg)
{
    return PyList_Append((PyObject *)arg, op);
}

PyObject *
oa_arena_get_referents(OaArenaObject *self, PyObject *args)
{
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyObject *obj = PyTuple_GET_ITEM(args, i);
        if (!in_arena(self, obj)) {
            continue;
        }
        if (visit_append((PyObject *)Py_TYPE(obj), result) < 0
            || oa_traverse_fields(obj, visit_append, result) < 0) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
}

/* get_referrers: every arena object, and the foreign containers reachable
   from them, whose references include one of the objects asked about. */
typedef struct {
    Collector c;
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
    if (oa_is_arena_type(tp) && oa_arena_of(op) == rs->c.core) {
        return 0;               /* visited anyway */
    }
    if (map_find(&rs->c.map, op) < 0 && expandable(&rs->c, tp, op)) {
        if (map_add(&rs->c.map, op, 0) < 0) {
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
    if (rs->hit && PyList_Append(result, op) < 0) {
        return -1;
    }
    return 0;
}

PyObject *
oa_arena_get_referrers(OaArenaObject *self, PyObject *args)
{
    OaState *st = oa_state_of_module(self->module);
    ReferrerSearch rs;
    memset(&rs, 0, sizeof(rs));
    rs.c.arena = self;
    rs.c.core = self->core;
    rs.c.heap_traverse = st->heap_traverse;
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
    for (Py_ssize_t k = 0; k < rs.c.map.n; k++) {
        PyObject *op = rs.c.map.op[k];
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
    collector_free(&rs.c);
    return result;

error_held:
    for (Py_ssize_t i = 0; i < live.n; i++) {
        Py_DECREF(live.items[i]);
    }
error:
    vec_free(&live);
    collector_free(&rs.c);
    Py_DECREF(result);
    return NULL;
}

typedef struct {
    unsigned from_lo, from_hi, to;
} MoveGens;

static int
move_gen(void *block, uint8_t *meta, void *arg)
{
    MoveGens *m = arg;
    unsigned g = oa_meta_gen(*meta);
    if (g >= m->from_lo && g <= m->from_hi) {
        oa_set_generation(block, m->to);
    }
    return 0;
}

PyObject *
oa_arena_freeze(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    MoveGens m = {0, 2, 3};
    oa_visit_live(self->core, move_gen, &m);
    for (int i = 0; i < 3; i++) {
        self->gc.count[i] = 0;
    }
    Py_RETURN_NONE;
}

PyObject *
oa_arena_unfreeze(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    MoveGens m = {3, 3, 2};
    oa_visit_live(self->core, move_gen, &m);
    Py_RETURN_NONE;
}

PyObject *
oa_arena_get_freeze_count(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(oa_gen_objects(self->core, 3));
}

/* refinfo: the references to obj held by objects of every live arena. */
typedef struct {
    PyObject *target;
    Py_ssize_t count;
} RefCount;

static int
visit_count(PyObject *op, void *arg)
{
    RefCount *rc = arg;
    rc->count += op == rc->target;
    return 0;
}

static int
count_in_block(void *block, uint8_t *meta, void *arg)
{
    (void)meta;
    return oa_traverse_fields((PyObject *)block, visit_count, arg);
}

/* The references to obj that the call of refinfo(obj) itself holds, which
   refinfo does not count: 1 or 0.

   Up to 3.13 the interpreter's stack holds a reference of its own to every
   argument.  From 3.14 it pushes a local variable without one when it can
   (LOAD_FAST_BORROW), and anything else (a global, an attribute, a
   temporary) with one.  PyUnstable_Object_IsUniqueReferencedTemporary
   (3.14+) says which, by finding obj on the calling frame's stack, but only
   for an object whose count is 1; the question does not depend on the
   count, so it is asked with the count set to 1 for the duration of the
   call (no other code runs in between; an immortal object keeps its count
   and is left as it is).  A call from C code (map(), a callback) is not on
   a Python frame's stack: the caller's reference, if it holds one, is then
   counted. */
static Py_ssize_t
references_of_the_call(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030E0000
    if (PyUnstable_IsImmortal(obj)) {
        return 0;
    }
    Py_ssize_t count = Py_REFCNT(obj);
    Py_SET_REFCNT(obj, 1);
    int held = PyUnstable_Object_IsUniqueReferencedTemporary(obj);
    Py_SET_REFCNT(obj, count);
    return held ? 1 : 0;
#else
    (void)obj;
    return 1;
#endif
}

PyObject *
oa_arena_refinfo(OaArenaObject *self, PyObject *obj)
{
    OaState *st = oa_state_of_module(self->module);
    RefCount rc = {obj, 0};
    for (OaArenaObject *a = st->arenas; a != NULL; a = a->next_arena) {
        oa_visit_live(a->core, count_in_block, &rc);
    }
    Py_ssize_t refcount = Py_REFCNT(obj) - references_of_the_call(obj);
    return PyObject_CallFunction((PyObject *)st->refinfo_type, "((nnn))", refcount,
                                 rc.count, refcount - rc.count);
}
