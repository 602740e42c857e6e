/*
 * obj.c -- Obj: arena objects with dynamic attributes.
 *
 * Storage.  An Obj is its fixed part (header, then any __slots__ fields,
 * tp_basicsize bytes) followed by value slots, as many as its block holds
 * (at least one).  The first slot says which of three forms the object is in:
 *
 *   canonical   slot 0 is NULL or a value (a pointer to an object: its low
 *               bits are 0).  The attributes are the first k keys of the
 *               class's shared keys (`canon`), in that order, and their
 *               values are slots 0..k-1; slots k.. are NULL.  The object
 *               spends nothing on bookkeeping: 16 bytes of header plus 8 per
 *               attribute, the physical floor.
 *   shaped      slot 0 is an OaShape * with bit 1 set; the attributes are the
 *               shape's keys, their values in slots 1..size.
 *   dict        slot 0 is a dict with bit 0 set, once the object was asked for
 *               its __dict__ or outgrew its slots or its class's shape limits.
 *
 * Shapes.  A class owns a tree of shapes (PyPy's maps, CPython's shared
 * keys): the root is empty, and adding attribute k to an object of shape s
 * moves it to s's child for k.  One path of the tree is the class's shared
 * keys, `canon`: the order in which its objects usually get their
 * attributes (as CPython's shared-key dicts learn it from the first
 * instance).  It only grows, by the first object that adds a key past its
 * end.  An object whose attributes arrive in another order takes the shaped
 * form, which costs it one slot; a shape counts the shaped objects and
 * children that use it and is freed, with its key, when none does.  A class
 * keeps at most OA_MAX_SHAPES shapes of at most OA_MAX_KEYS keys; past either
 * limit an object switches to a dict.
 *
 * Learning.  A class remembers how many slots its objects needed
 * (`learned`), and new objects get that many, so that the objects of a class
 * that sets the same attributes in __init__ never need out-of-line storage.
 * Objects cannot move, so a dict-form object keeps the block it was born
 * in; a class whose instances end up in dict form for good (their dict is
 * held elsewhere, or no inline form can hold their attributes) learns that
 * too, and gives new instances one slot, the dict's (see learn_dict).
 *
 * Lookup follows object.__getattribute__ and object.__setattr__ exactly:
 * data descriptors of the type, then the object's own attributes, then
 * non-data descriptors and class attributes; __getattr__ and overridden
 * __getattribute__/__setattr__ work through CPython's slot machinery.
 *
 * Deleting the most recent attribute keeps the form (the canonical prefix
 * shrinks, or the shaped object returns to the parent shape); deleting
 * another one switches the object to a dict, so that re-adding it puts it
 * last, as in a native instance's dict.
 */
#include "objarena.h"

#include <string.h>

#define OA_MAX_KEYS 30
#define OA_MAX_SHAPES 1024
/* Observations in a row of instances that end in dict form for good before
   a class gives its new instances the dict's slot only (see learn_dict). */
#define OA_DICT_STREAK 8

struct OaShape {
    OaShape *parent;
    PyObject *key;              /* owned; NULL for the root */
    Py_ssize_t size;            /* keys in the chain */
    Py_ssize_t refs;            /* shaped objects using it + children (+ the
                                   class, for its canon and the root) */
    PyObject **keys;            /* size keys, borrowed from the chain */
    OaShape **children;
    Py_ssize_t nchildren;
    Py_ssize_t children_cap;
};

#define FORM_MASK ((uintptr_t)3)
#define FORM_DICT ((uintptr_t)1)
#define FORM_SHAPED ((uintptr_t)2)

static inline PyObject **
value_slots(PyObject *op)
{
    return (PyObject **)((char *)op + Py_TYPE(op)->tp_basicsize);
}

static inline int
is_dict_form(uintptr_t w)
{
    return (w & FORM_MASK) == FORM_DICT;
}

static inline int
is_shaped_form(uintptr_t w)
{
    return (w & FORM_MASK) == FORM_SHAPED;
}

static inline PyObject *
form_dict(uintptr_t w)
{
    return (PyObject *)(w & ~FORM_MASK);
}

static inline OaShape *
form_shape(uintptr_t w)
{
    return (OaShape *)(w & ~FORM_MASK);
}

/* Value slots of the object's block. */
static inline Py_ssize_t
slot_capacity(PyObject *op)
{
    return ((Py_ssize_t)oa_block_size(op) - Py_TYPE(op)->tp_basicsize)
           / (Py_ssize_t)sizeof(PyObject *);
}

/* An object of a dynamic SlotObj subclass (one that declares no __slots__)
   starts with no value slot while its class has not seen an instance get
   an attribute beyond the fields: it sits at the floor.  Its form word then
   lives off the object: absent (canonical and empty), or its dict, in its
   Arena's side table (found by its address).  Obj objects always
   have a slot. */
static inline int
slotless(PyObject *op)
{
    return ((OaTypeObject *)Py_TYPE(op))->kind == OA_KIND_SLOT && slot_capacity(op) == 0;
}

/* The side table: open addressing on the object's address, linear probing,
   deletion by backward shift (no tombstones).  Lookups and deletions cannot
   fail; an insertion may (MemoryError). */
struct OaSideDicts {
    PyObject **keys;            /* objects (not references), NULL = empty */
    PyObject **dicts;           /* strong */
    size_t mask;                /* capacity - 1 (a power of two) */
    size_t n;
};

static inline size_t
side_hash(PyObject *op, size_t mask)
{
    return (size_t)(((uintptr_t)op >> 3) * (uintptr_t)0x9E3779B97F4A7C15ull) & mask;
}

static size_t
side_find(struct OaSideDicts *t, PyObject *op)
{
    size_t i = side_hash(op, t->mask);
    while (t->keys[i] != NULL && t->keys[i] != op) {
        i = (i + 1) & t->mask;
    }
    return i;
}

/* The object's dict in the table, or NULL (borrowed).  No side-table bit
   says whether there is one (the collector uses every spare bit): an arena
   whose slotless objects have no dict answers at once, others probe. */
static PyObject *
side_get(PyObject *op)
{
    struct OaSideDicts *t = ((OaArenaObject *)oa_owner_of(op))->side_dicts;
    if (t == NULL || t->n == 0) {
        return NULL;
    }
    size_t i = side_find(t, op);
    return t->keys[i] == op ? t->dicts[i] : NULL;
}

static int
side_put(PyObject *op, PyObject *dict)
{
    OaArenaObject *arena = (OaArenaObject *)oa_owner_of(op);
    struct OaSideDicts *t = arena->side_dicts;
    if (t == NULL || 2 * (t->n + 1) > t->mask + 1) {
        size_t cap = t == NULL ? 8 : 2 * (t->mask + 1);
        struct OaSideDicts *nt = PyMem_Calloc(1, sizeof(*nt));
        if (nt != NULL) {
            nt->keys = PyMem_Calloc(cap, sizeof(PyObject *));
            nt->dicts = PyMem_Calloc(cap, sizeof(PyObject *));
        }
        if (nt == NULL || nt->keys == NULL || nt->dicts == NULL) {
            if (nt != NULL) {
                PyMem_Free(nt->keys);
                PyMem_Free(nt->dicts);
                PyMem_Free(nt);
            }
            PyErr_NoMemory();
            return -1;
        }
        nt->mask = cap - 1;
        for (size_t i = 0; t != NULL && i <= t->mask; i++) {
            if (t->keys[i] != NULL) {
                size_t j = side_find(nt, t->keys[i]);
                nt->keys[j] = t->keys[i];
                nt->dicts[j] = t->dicts[i];
                nt->n++;
            }
        }
        if (t != NULL) {
            PyMem_Free(t->keys);
            PyMem_Free(t->dicts);
            PyMem_Free(t);
        }
        arena->side_dicts = t = nt;
    }
    size_t i = side_find(t, op);
    if (t->keys[i] == NULL) {
        t->keys[i] = op;
        t->n++;
    }
    else {
        Py_DECREF(t->dicts[i]);     /* the object holds no other reference */
    }
    t->dicts[i] = Py_NewRef(dict);
    return 0;
}

/* Take the object's dict out of the table: its reference goes to the
   caller. */
static PyObject *
side_take(PyObject *op)
{
    struct OaSideDicts *t = ((OaArenaObject *)oa_owner_of(op))->side_dicts;
    size_t i = side_find(t, op);
    PyObject *dict = t->dicts[i];
    t->keys[i] = NULL;
    t->dicts[i] = NULL;
    t->n--;
    for (size_t j = (i + 1) & t->mask; t->keys[j] != NULL; j = (j + 1) & t->mask) {
        size_t home = side_hash(t->keys[j], t->mask);
        /* Move the entry at j back to the hole at i if i lies on its probe
           path (from home to j, cyclically). */
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->keys[i] = t->keys[j];
            t->dicts[i] = t->dicts[j];
            t->keys[j] = NULL;
            t->dicts[j] = NULL;
            i = j;
        }
    }
    return dict;
}

int
oa_side_dicts_traverse(OaArenaObject *arena, visitproc visit, void *arg)
{
    struct OaSideDicts *t = arena->side_dicts;
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        Py_VISIT(t->dicts[i]);
    }
    return 0;
}

/* At the Arena's dealloc every object is gone, and with it every entry. */
void
oa_side_dicts_free(OaArenaObject *arena)
{
    struct OaSideDicts *t = arena->side_dicts;
    if (t != NULL) {
        PyMem_Free(t->keys);
        PyMem_Free(t->dicts);
        PyMem_Free(t);
        arena->side_dicts = NULL;
    }
}

static inline uintptr_t
form_word(PyObject *op)
{
    if (slotless(op)) {
        PyObject *dict = side_get(op);
        return dict != NULL ? (uintptr_t)dict | FORM_DICT : 0;
    }
    return (uintptr_t)value_slots(op)[0];
}

/* Put the object in dict form, with `dict` (a reference it takes over). */
static int
set_dict_form(PyObject *op, PyObject *dict)
{
    if (slotless(op)) {
        int r = side_put(op, dict);
        Py_DECREF(dict);
        return r;
    }
    value_slots(op)[0] = (PyObject *)((uintptr_t)dict | FORM_DICT);
    return 0;
}

/* Take a dict-form object's dict out (the reference goes to the caller):
   the object is canonical and empty. */
static PyObject *
take_dict_form(PyObject *op)
{
    if (slotless(op)) {
        return side_take(op);
    }
    PyObject *dict = form_dict((uintptr_t)value_slots(op)[0]);
    value_slots(op)[0] = NULL;
    return dict;
}


static inline OaShape *
canon_of(PyObject *op)
{
    return ((OaTypeObject *)Py_TYPE(op))->canon;
}

/* A canonical object's attribute count: its leading non-NULL slots. */
static inline Py_ssize_t
canonical_size(PyObject *op, Py_ssize_t cap)
{
    PyObject **slots = value_slots(op);
    Py_ssize_t limit = canon_of(op)->size < cap ? canon_of(op)->size : cap;
    Py_ssize_t k = 0;
    while (k < limit && slots[k] != NULL) {
        k++;
    }
    return k;
}

/* The object's attributes when it is not in dict form: keys (borrowed from
   a shape), values (in the object), count. */
typedef struct {
    PyObject **keys;
    PyObject **values;
    Py_ssize_t size;
} AttrView;

static inline void
attr_view(PyObject *op, uintptr_t w, AttrView *v)
{
    if (is_shaped_form(w)) {
        OaShape *s = form_shape(w);
        v->keys = s->keys;
        v->values = value_slots(op) + 1;
        v->size = s->size;
    }
    else {
        v->keys = canon_of(op)->keys;
        v->values = value_slots(op);
        v->size = canonical_size(op, slot_capacity(op));
    }
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                     */

static OaShape *
shape_new(OaShape *parent, PyObject *key)
{
    OaShape *s = PyMem_Calloc(1, sizeof(OaShape));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t size = parent != NULL ? parent->size + 1 : 0;
    if (size > 0) {
        s->keys = PyMem_Malloc((size_t)size * sizeof(PyObject *));
        if (s->keys == NULL) {
            PyMem_Free(s);
            PyErr_NoMemory();
            return NULL;
        }
        if (parent->size > 0) {
            memcpy(s->keys, parent->keys, (size_t)parent->size * sizeof(PyObject *));
        }
        s->keys[size - 1] = key;
    }
    s->parent = parent;
    s->key = Py_XNewRef(key);
    s->size = size;
    return s;
}

static void
shape_free_one(OaShape *s)
{
    Py_XDECREF(s->key);
    PyMem_Free(s->keys);
    PyMem_Free(s->children);
    PyMem_Free(s);
}

/* Drop one reference; free the shape (and walk up) when nothing uses it.
   The root is owned by the class and never released here. */
static void
shape_release(OaTypeObject *t, OaShape *s)
{
    while (s != NULL && s->parent != NULL && --s->refs == 0) {
        OaShape *parent = s->parent;
        for (Py_ssize_t i = 0; i < parent->nchildren; i++) {
            if (parent->children[i] == s) {
                parent->children[i] = parent->children[--parent->nchildren];
                break;
            }
        }
        shape_free_one(s);
        t->nshapes--;
        s = parent;
    }
}

static inline void
shape_retain(OaShape *s)
{
    s->refs++;
}

/* Keys and the names looked up are exact str (see exact_name), so that no
   comparison runs user code while a shape is in use: 1 if equal, else 0. */
static inline int
key_eq(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    return PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b)
           && PyUnicode_Compare(a, b) == 0;
}

/* Index of `key` in the shape, -1 if absent, -2 on error. */
static Py_ssize_t
shape_find(OaShape *s, PyObject *key)
{
    if (s == NULL) {
        return -1;
    }
    for (Py_ssize_t i = s->size - 1; i >= 0; i--) {
        if (s->keys[i] == key) {
            return i;
        }
    }
    for (Py_ssize_t i = s->size - 1; i >= 0; i--) {
        if (key_eq(s->keys[i], key)) {
            return i;
        }
    }
    return -1;
}

/* The child of `s` for `key` (a new reference), NULL with an exception, or
   NULL without one when the class's limits are reached. */
static OaShape *
shape_child(OaTypeObject *t, OaShape *s, PyObject *key)
{
    for (Py_ssize_t i = 0; i < s->nchildren; i++) {
        if (key_eq(s->children[i]->key, key)) {
            shape_retain(s->children[i]);
            return s->children[i];
        }
    }
    if (s->size >= OA_MAX_KEYS || t->nshapes >= OA_MAX_SHAPES) {
        return NULL;
    }
    if (s->nchildren == s->children_cap) {
        Py_ssize_t cap = s->children_cap ? s->children_cap * 2 : 2;
        OaShape **children = PyMem_Realloc(s->children, (size_t)cap * sizeof(OaShape *));
        if (children == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        s->children = children;
        s->children_cap = cap;
    }
    /* Keys are stored as exact, interned str. */
    PyObject *k = PyUnicode_CheckExact(key)
                  ? Py_NewRef(key)
                  : PyUnicode_Substring(key, 0, PyUnicode_GET_LENGTH(key));
    if (k == NULL) {
        return NULL;
    }
    PyUnicode_InternInPlace(&k);
    OaShape *child = shape_new(s, k);
    Py_DECREF(k);
    if (child == NULL) {
        return NULL;
    }
    s->children[s->nchildren++] = child;
    shape_retain(s);            /* the child holds its parent */
    child->refs = 1;            /* the caller's reference */
    t->nshapes++;
    return child;
}

static void
shape_tree_free(OaShape *s)
{
    /* Depth is at most OA_MAX_KEYS: bounded recursion. */
    for (Py_ssize_t i = 0; i < s->nchildren; i++) {
        shape_tree_free(s->children[i]);
    }
    shape_free_one(s);
}

int
oa_obj_type_init(OaTypeObject *t)
{
    t->root_shape = shape_new(NULL, NULL);
    if (t->root_shape == NULL) {
        return -1;
    }
    t->root_shape->refs = 2;    /* the class's, as root and as canon */
    t->canon = t->root_shape;
    t->nshapes = 1;
    return 0;
}

void
oa_obj_type_free(OaTypeObject *t)
{
    if (t->root_shape != NULL) {
        shape_tree_free(t->root_shape);
        t->root_shape = NULL;
        t->canon = NULL;
    }
    Py_CLEAR(t->kw_names);
    t->kw_shape = NULL;
    for (size_t k = 0; k < sizeof(t->plain_names) / sizeof(t->plain_names[0]); k++) {
        Py_CLEAR(t->plain_names[k].name);
    }
}

/* ------------------------------------------------------------------------ */
/* Storage                                                                    */

/* New objects get room for what the class learnt (at least the one slot
   that says the form). */
static inline void
learn(OaTypeObject *t, Py_ssize_t slots)
{
    if (slots > t->learned && slots <= OA_MAX_KEYS + 1) {
        t->learned = slots;
    }
}

Py_ssize_t
oa_obj_initial_slots(OaTypeObject *t)
{
    if (t->dict_streak >= OA_DICT_STREAK) {
        return 1;               /* the dict's slot */
    }
    if (t->learned > 0) {
        return t->learned;
    }
    return t->kind == OA_KIND_OBJ ? 1 : 0;      /* see slotless() */
}

/* What the class learns of the form its instances end up in.  A dict-form
   object keeps the block it was born in: slots it cannot use, since it
   cannot move.  So a class counts the instances seen, in a row, to end up
   in dict form for good: at the end of their constructor (oa_obj_after_init),
   or when they outgrow every inline form (OA_MAX_KEYS attributes).  After
   OA_DICT_STREAK of them its new instances get one slot, which holds the
   dict (header + 8 bytes, against header + 8 per learnt attribute).  Any
   instance seen in an inline form with attributes, or in dict form only
   for want of room (its dict nobody else holds), resets the count, and new
   instances get the learnt slots again. */
static inline void
learn_dict(OaTypeObject *t)
{
    if (t->dict_streak < OA_DICT_STREAK) {
        t->dict_streak++;
    }
}

static inline void
learn_inline(OaTypeObject *t)
{
    t->dict_streak = 0;
}

void
oa_obj_attr_refs(PyObject *self, OaAttrRefs *r)
{
    uintptr_t w = form_word(self);
    if (is_dict_form(w)) {
        r->values = NULL;
        r->n = 0;
        r->dict = form_dict(w);
        return;
    }
    AttrView v;
    attr_view(self, w, &v);
    r->values = v.values;
    r->n = v.size;
    r->dict = NULL;
}

/* What an object's storage held, taken out of it. */
typedef struct {
    PyObject *refs[OA_MAX_KEYS + 1];    /* values, or the dict */
    Py_ssize_t n;
    OaShape *shape;                     /* a shaped object's shape, or NULL */
} Detached;

/* Empty the object's storage into `d` (the object is left canonical and
   empty); release_detached() gives it up.  Nothing runs in between, so the
   caller can install a new form first: deallocs of the old values may run
   code, which must find the object consistent. */
static void
detach_storage(PyObject *self, Detached *d)
{
    uintptr_t w = form_word(self);
    PyObject **slots = value_slots(self);
    d->n = 0;
    d->shape = NULL;
    if (is_dict_form(w)) {
        d->refs[d->n++] = take_dict_form(self);
        return;
    }
    AttrView v;
    attr_view(self, w, &v);
    for (Py_ssize_t i = 0; i < v.size; i++) {
        d->refs[d->n++] = v.values[i];
        v.values[i] = NULL;
    }
    if (is_shaped_form(w)) {
        d->shape = form_shape(w);
        slots[0] = NULL;
    }
}

static void
release_detached(OaTypeObject *t, Detached *d)
{
    if (d->shape != NULL) {
        shape_release(t, d->shape);
    }
    for (Py_ssize_t i = 0; i < d->n; i++) {
        Py_DECREF(d->refs[i]);
    }
}

void
oa_obj_clear_attrs(PyObject *self)
{
    Detached d;
    detach_storage(self, &d);
    release_detached((OaTypeObject *)Py_TYPE(self), &d);
}

/* Switch to dict storage (order kept).  The object is unchanged on error. */
int
oa_obj_materialize(PyObject *self)
{
    uintptr_t w = form_word(self);
    if (is_dict_form(w)) {
        return 0;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return -1;
    }
    AttrView v;
    attr_view(self, w, &v);
    for (Py_ssize_t i = 0; i < v.size; i++) {
        oa_gc_expose(v.values[i]);      /* the dict hands them out */
        if (PyDict_SetItem(dict, v.keys[i], v.values[i]) < 0) {
            Py_DECREF(dict);
            return -1;
        }
    }
    if (slotless(self)) {       /* nothing to detach: canonical and empty */
        return set_dict_form(self, dict);
    }
    Detached d;
    detach_storage(self, &d);
    (void)set_dict_form(self, dict);       /* cannot fail with a slot */
    release_detached((OaTypeObject *)Py_TYPE(self), &d);     /* the dict holds them */
    return 0;
}

static inline void reinline(PyObject *self);

/* The object's own attribute `name` (an exact str): a new reference, NULL
   if absent (no exception) or NULL with an exception. */
static PyObject *
attr_get(PyObject *self, PyObject *name)
{
    reinline(self);
    uintptr_t w = form_word(self);
    if (is_dict_form(w)) {
        PyObject *dict = Py_NewRef(form_dict(w));     /* keys may run code */
        PyObject *value = Py_XNewRef(PyDict_GetItemWithError(dict, name));
        Py_DECREF(dict);
        if (value != NULL) {
            oa_gc_expose(value);
        }
        return value;
    }
    AttrView v;
    attr_view(self, w, &v);
    OaShape *s = is_shaped_form(w) ? form_shape(w) : canon_of(self);
    Py_ssize_t i = shape_find(s, name);
    if (i < 0 || i >= v.size) {
        return NULL;            /* -2 left an exception */
    }
    oa_gc_expose(v.values[i]);
    return Py_NewRef(v.values[i]);
}

/* The ancestor of `s` with `size` keys. */
static OaShape *
shape_prefix(OaShape *s, Py_ssize_t size)
{
    while (s->size > size) {
        s = s->parent;
    }
    return s;
}

/* A canonical object of k attributes gets `name`, which is not canon[k]:
   it takes the shaped form if its block has room for the shape word too
   (1 on success, -1 on error), or 0 when it must go to dict form. */
static int
leave_canonical(PyObject *self, Py_ssize_t k, Py_ssize_t cap, PyObject *name,
                PyObject *value)
{
    OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
    learn(t, k + 2);
    if (k + 2 > cap) {
        return 0;
    }
    OaShape *child = shape_child(t, shape_prefix(t->canon, k), name);
    if (child == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject **slots = value_slots(self);
    for (Py_ssize_t i = k; i > 0; i--) {
        slots[i] = slots[i - 1];
    }
    slots[k + 1] = Py_NewRef(value);
    slots[0] = (PyObject *)((uintptr_t)child | FORM_SHAPED);
    return 1;
}

/* Set `name` (an exact str) in a canonical object: 1 done, 0 the object
   must go to dict form, -1 error. */
static int
canonical_set(PyObject *self, PyObject *name, PyObject *value)
{
    OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
    PyObject **slots = value_slots(self);
    Py_ssize_t cap = slot_capacity(self);
    Py_ssize_t i = shape_find(t->canon, name);
    if (i == -2) {
        return -1;
    }
    if (i >= 0 && i < cap && slots[i] != NULL) {
        PyObject *old = slots[i];
        slots[i] = Py_NewRef(value);
        Py_DECREF(old);
        return 1;
    }
    Py_ssize_t k = canonical_size(self, cap);
    if (i == k) {
        if (k < cap) {
            slots[k] = Py_NewRef(value);
            return 1;
        }
        learn(t, k + 1);
        return 0;
    }
    if (i < 0 && k == t->canon->size) {
        /* Past the end of the shared keys: they grow by this name. */
        learn(t, k + 1);
        if (k < cap) {
            OaShape *child = shape_child(t, t->canon, name);
            if (child != NULL) {
                OaShape *old = t->canon;
                t->canon = child;               /* the class's reference */
                shape_release(t, old);          /* the child holds it */
                slots[k] = Py_NewRef(value);
                return 1;
            }
            if (PyErr_Occurred()) {
                return -1;
            }
        }
        return 0;
    }
    return leave_canonical(self, k, cap, name, value);
}

/* Set `name` (an exact str) in a shaped object: 1 done, 0 the object must
   go to dict form, -1 error. */
static int
shaped_set(PyObject *self, PyObject *name, PyObject *value)
{
    OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
    PyObject **slots = value_slots(self);
    OaShape *s = form_shape(form_word(self));
    Py_ssize_t i = shape_find(s, name);
    if (i == -2) {
        return -1;
    }
    if (i >= 0) {
        PyObject *old = slots[1 + i];
        slots[1 + i] = Py_NewRef(value);
        Py_DECREF(old);
        return 1;
    }
    learn(t, s->size + 2);
    if (s->size + 2 > slot_capacity(self)) {
        return 0;
    }
    OaShape *child = shape_child(t, s, name);
    if (child == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    slots[1 + s->size] = Py_NewRef(value);
    slots[0] = (PyObject *)((uintptr_t)child | FORM_SHAPED);
    shape_release(t, s);
    return 1;
}

static int
attr_set(PyObject *self, PyObject *name, PyObject *value)
{
    reinline(self);
    uintptr_t w = form_word(self);
    if (!is_dict_form(w)) {
        int r = is_shaped_form(w) ? shaped_set(self, name, value)
                                  : canonical_set(self, name, value);
        if (r != 0) {
            return r < 0 ? -1 : 0;
        }
        if (oa_obj_materialize(self) < 0) {
            return -1;
        }
        w = form_word(self);
    }
    PyObject *dict = Py_NewRef(form_dict(w));         /* keys may run code */
    Py_ssize_t before = PyDict_GET_SIZE(dict);
    int r = PyDict_SetItem(dict, name, value);
    if (r == 0) {
        /* Learn from objects in dict form too: the next ones get the room,
           as long as an inline form can hold that many attributes. */
        OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
        Py_ssize_t n = PyDict_GET_SIZE(dict);
        if (n <= OA_MAX_KEYS) {
            learn(t, n);
        }
        else if (before == OA_MAX_KEYS) {
            learn_dict(t);      /* it just outgrew every inline form */
        }
    }
    Py_DECREF(dict);
    return r;
}

/* The name as an exact str (a new reference): a str subclass's __eq__ or
   __hash__ never runs inside the attribute storage, where it could change
   the object under the lookup. */
static PyObject *
exact_name(PyObject *name)
{
    if (PyUnicode_CheckExact(name)) {
        return Py_NewRef(name);
    }
    return PyUnicode_Substring(name, 0, PyUnicode_GET_LENGTH(name));
}

static PyObject *
no_attribute(PyObject *self, PyObject *name)
{
    PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%U'",
                 Py_TYPE(self)->tp_name, name);
    return NULL;
}

/* The error for deleting an attribute the object does not have, worded as
   CPython words it for a native instance. */
static void
missing_on_delete(PyObject *self, PyObject *name)
{
#if PY_VERSION_HEX < 0x030B0000
    (void)self;
    PyErr_SetObject(PyExc_AttributeError, name);
#else
    no_attribute(self, name);
#endif
}

/* 0 deleted, -1 error (AttributeError if absent). */
static int
attr_del(PyObject *self, PyObject *name)
{
    reinline(self);
    uintptr_t w = form_word(self);
    if (!is_dict_form(w)) {
        AttrView v;
        attr_view(self, w, &v);
        OaShape *s = is_shaped_form(w) ? form_shape(w) : canon_of(self);
        Py_ssize_t i = shape_find(s, name);
        if (i == -2) {
            return -1;
        }
        if (i < 0 || i >= v.size) {
            missing_on_delete(self, name);
            return -1;
        }
        if (i == v.size - 1) {
            /* The most recent one: the form stays. */
            PyObject *old = v.values[i];
            v.values[i] = NULL;
            if (is_shaped_form(w)) {
                OaShape *parent = s->parent;
                if (parent->parent != NULL) {
                    shape_retain(parent);
                    value_slots(self)[0] = (PyObject *)((uintptr_t)parent | FORM_SHAPED);
                }
                else {
                    value_slots(self)[0] = NULL;        /* canonical and empty */
                }
                shape_release((OaTypeObject *)Py_TYPE(self), s);
            }
            Py_DECREF(old);
            return 0;
        }
        if (oa_obj_materialize(self) < 0) {
            return -1;
        }
        w = form_word(self);
    }
    PyObject *dict = Py_NewRef(form_dict(w));         /* keys may run code */
    int r = PyDict_DelItem(dict, name);
    Py_DECREF(dict);
    if (r < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        missing_on_delete(self, name);
    }
    return r;
}

Py_ssize_t
oa_obj_owned_size(PyObject *self)
{
    uintptr_t w = form_word(self);
    if (!is_dict_form(w)) {
        return 0;
    }
    PyObject *res = PyObject_CallMethod(form_dict(w), "__sizeof__", NULL);
    if (res == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    /* The dict is a GC object: its GC header comes with it. */
    return n < 0 ? -1 : n + 2 * (Py_ssize_t)sizeof(void *);
}

/* ------------------------------------------------------------------------ */
/* Attribute protocol                                                         */

/* _PyType_Lookup is the interpreter's own type-attribute lookup through the
   method cache; it is exported and unchanged from 3.10 to 3.13 (3.14 keeps
   it beside _PyType_LookupRef).  There is no public equivalent that does not
   call descriptors: walking the MRO by hand would lose the cache. */
static inline PyObject *
type_lookup(PyTypeObject *tp, PyObject *name)
{
    return _PyType_Lookup(tp, name);
}

/* The per-class cache of names without a data descriptor.  An entry holds
   only while the class's version tag is the one it was made under: any
   change to the class or its bases gives a new tag. */
static inline size_t
plain_slot(PyObject *name)
{
    return ((uintptr_t)name >> 4) & 31;
}

/* The cache entry of `name` if it holds for the class as it is now, else
   NULL. */
static inline OaPlainName *
plain_name(PyTypeObject *tp, PyObject *name)
{
    OaTypeObject *t = (OaTypeObject *)tp;
    size_t k = plain_slot(name);
    if (t->plain_names[k].name == name && tp->tp_version_tag != 0
        && t->plain_names[k].tag == tp->tp_version_tag) {
        return &t->plain_names[k];
    }
    return NULL;
}

static inline void
remember_plain_name(PyTypeObject *tp, PyObject *name)
{
    OaTypeObject *t = (OaTypeObject *)tp;
    if (tp->tp_version_tag != 0) {
        size_t k = plain_slot(name);
        Py_XSETREF(t->plain_names[k].name, Py_NewRef(name));
        t->plain_names[k].tag = tp->tp_version_tag;
        t->plain_names[k].canon_index = -1;
    }
}

/* The fast path of a lookup of a name in the cache (`entry`): the slot
   holding the object's attribute, found by identity (names are interned),
   or NULL (absent, in dict form, or a name that is equal but not identical:
   the slow path decides).  In the canonical form the entry remembers the
   name's place in the shared keys, so no keys are scanned. */
static inline PyObject **
present_slot(PyObject *self, PyObject *name, OaPlainName *entry)
{
    if (slotless(self)) {
        return NULL;
    }
    PyObject **slots = value_slots(self);
    uintptr_t w = (uintptr_t)slots[0];
    if (is_shaped_form(w)) {
        OaShape *s = form_shape(w);
        for (Py_ssize_t i = s->size - 1; i >= 0; i--) {
            if (s->keys[i] == name) {
                return &slots[1 + i];
            }
        }
        return NULL;
    }
    if (is_dict_form(w)) {
        return NULL;
    }
    Py_ssize_t i = entry->canon_index;
    if (i < 0) {
        OaShape *c = canon_of(self);
        for (i = c->size - 1; i >= 0 && c->keys[i] != name; i--) {
        }
        if (i < 0) {
            return NULL;
        }
        entry->canon_index = i;
    }
    if (i > 0 && i >= slot_capacity(self)) {
        return NULL;
    }
    return slots[i] != NULL ? &slots[i] : NULL;
}

/* Set (value) or delete (NULL) an attribute in the object's own storage. */
static int
attr_store(PyObject *self, PyObject *name, PyObject *value)
{
    PyObject *key = exact_name(name);
    if (key == NULL) {
        return -1;
    }
    int r = value != NULL ? attr_set(self, key, value) : attr_del(self, key);
    Py_DECREF(key);
    return r;
}

int
oa_obj_store_attr(PyObject *self, PyObject *name, PyObject *value)
{
    return attr_store(self, name, value);
}

/* object.__getattribute__'s order, for every lookup the fast path (below)
   does not answer.  Out of line, so that the fast path stays small. */
static OA_NOINLINE PyObject *
getattro_slow(PyObject *self, PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "attribute name must be string, not '%.200s'",
                     Py_TYPE(name)->tp_name);
        return NULL;
    }
    PyTypeObject *tp = Py_TYPE(self);
    PyObject *descr = type_lookup(tp, name);
    if (descr == NULL || Py_TYPE(descr)->tp_descr_set == NULL) {
        remember_plain_name(tp, name);
    }
    descrgetfunc get = NULL;
    if (descr != NULL) {
        Py_INCREF(descr);
        get = Py_TYPE(descr)->tp_descr_get;
        if (get != NULL && Py_TYPE(descr)->tp_descr_set != NULL) {
            PyObject *res = get(descr, self, (PyObject *)tp);
            Py_DECREF(descr);
            return res;
        }
    }
    PyObject *key = exact_name(name);
    if (key == NULL) {
        Py_XDECREF(descr);
        return NULL;
    }
    PyObject *value = attr_get(self, key);
    Py_DECREF(key);
    if (value != NULL || PyErr_Occurred()) {
        Py_XDECREF(descr);
        return value;
    }
    if (get != NULL) {
        PyObject *res = get(descr, self, (PyObject *)tp);
        Py_DECREF(descr);
        return res;
    }
    if (descr != NULL) {
        return descr;
    }
    return no_attribute(self, name);
}

static PyObject *
obj_getattro(PyObject *self, PyObject *name)
{
    /* A name the class's cache knows has no data descriptor, found in the
       object's own slots: nothing else can answer first. */
    if (PyUnicode_Check(name)) {
        OaPlainName *entry = plain_name(Py_TYPE(self), name);
        if (entry != NULL) {
            PyObject **slot = present_slot(self, name, entry);
            if (slot != NULL) {
                oa_gc_expose(*slot);
                return Py_NewRef(*slot);
            }
        }
    }
    return getattro_slow(self, name);
}

/* object.__setattr__'s order, for every assignment or deletion the fast path
   (below) does not take. */
static OA_NOINLINE int
setattro_slow(PyObject *self, PyObject *name, PyObject *value)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "attribute name must be string, not '%.200s'",
                     Py_TYPE(name)->tp_name);
        return -1;
    }
    PyTypeObject *tp = Py_TYPE(self);
    PyObject *descr = type_lookup(tp, name);
    if (descr != NULL) {
        descrsetfunc set = Py_TYPE(descr)->tp_descr_set;
        if (set != NULL) {
            Py_INCREF(descr);
            int r = set(descr, self, value);
            Py_DECREF(descr);
            return r;
        }
    }
    remember_plain_name(tp, name);
    return attr_store(self, name, value);
}

static int
obj_setattro(PyObject *self, PyObject *name, PyObject *value)
{
    /* A name without a data descriptor (the class's cache says so): the
       object's own storage takes it. */
    if (value != NULL && PyUnicode_Check(name)) {
        OaPlainName *entry = plain_name(Py_TYPE(self), name);
        if (entry != NULL) {
            PyObject **slot = present_slot(self, name, entry);
            if (slot != NULL) {
                PyObject *old = *slot;
                *slot = Py_NewRef(value);
                Py_DECREF(old);
                return 0;
            }
            return attr_store(self, name, value);
        }
    }
    return setattro_slow(self, name, value);
}

static PyObject *
obj_get_dict(PyObject *self, void *Py_UNUSED(closure))
{
    if (oa_obj_materialize(self) < 0) {
        return NULL;
    }
    PyObject *dict = form_dict(form_word(self));
    oa_gc_expose(dict);
    return Py_NewRef(dict);
}

static int
obj_set_dict(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        /* As for a native instance: the object starts again empty. */
        oa_obj_clear_attrs(self);
        return 0;
    }
    if (!PyDict_Check(value)) {
        PyErr_Format(PyExc_TypeError,
                     "__dict__ must be set to a dictionary, not a '%.200s'",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    /* The new dict is in place before the old storage goes: attributes set
       while old values are released land in the new dict, as natively. */
    Detached old;
    detach_storage(self, &old);
    int r = set_dict_form(self, Py_NewRef(value));
    release_detached((OaTypeObject *)Py_TYPE(self), &old);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Construction                                                               */

static int
too_many_positional(PyObject *qualname, Py_ssize_t nargs)
{
    PyErr_Format(PyExc_TypeError,
                 "%U.__init__() takes 1 positional argument but %zd were given",
                 qualname, nargs + 1);
    return -1;
}

/* The generated __init__: every keyword becomes an attribute. */
int
oa_obj_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs > 0) {
        return too_many_positional(((PyHeapTypeObject *)Py_TYPE(self))->ht_qualname, nargs);
    }
    if (kwds == NULL) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwds, &pos, &key, &value)) {
        /* Held: the name's __eq__/__hash__ and __setattr__ are user code
           that may change the dict. */
        Py_INCREF(key);
        Py_INCREF(value);
        int r = oa_check_self_keyword(Py_TYPE(self), key);
        if (r == 0) {
            r = PyObject_SetAttr(self, key, value);
        }
        Py_DECREF(value);
        Py_DECREF(key);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* Are all the names exact str? */
static int
exact_names(PyObject *kwnames)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(kwnames, i))) {
            return 0;
        }
    }
    return 1;
}

/* Do the keyword names, in this order, all land in the object's own
   attributes (no data descriptor, no __setattr__ override)?  Then the shape
   they lead to can be cached for the next call with the same names. */
static OaShape *
shape_for_keys(OaTypeObject *t, PyObject *const *keys, Py_ssize_t n);

static OaShape *
keyword_shape(OaTypeObject *t, PyObject *kwnames)
{
    PyTypeObject *tp = (PyTypeObject *)t;
    if (tp->tp_setattro != obj_setattro) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *descr = type_lookup(tp, PyTuple_GET_ITEM(kwnames, i));
        if (descr != NULL && Py_TYPE(descr)->tp_descr_set != NULL) {
            return NULL;
        }
    }
    return shape_for_keys(t, &PyTuple_GET_ITEM(kwnames, 0), n);
}

/* The shape of the keys `keys[0..n)` in this order, from the root (n > 0):
   a reference, or NULL without an exception when the class's limits are
   reached or memory is short. */
static OaShape *
shape_for_keys(OaTypeObject *t, PyObject *const *keys, Py_ssize_t n)
{
    OaShape *s = t->root_shape;
    for (Py_ssize_t i = 0; i < n; i++) {
        OaShape *child = shape_child(t, s, keys[i]);
        if (s != t->root_shape) {
            shape_release(t, s);    /* the child holds it */
        }
        if (child == NULL) {
            PyErr_Clear();
            return NULL;
        }
        s = child;
    }
    return s;
}

/* Is `s` on the path of the class's shared keys?  If canon is a prefix of
   `s`, the shared keys grow to `s`. */
static int
on_canon_path(OaTypeObject *t, OaShape *s)
{
    if (shape_prefix(t->canon, s->size) == s) {
        return 1;
    }
    OaShape *c = t->canon;
    if (shape_prefix(s, c->size) == c) {
        shape_retain(s);
        t->canon = s;
        shape_release(t, c);
        return 1;
    }
    return 0;
}

/* Back to the inline form: a dict-form object whose dict nothing but the
   object holds (the caller that asked for __dict__ has let go of it) takes
   its attributes back into its value slots, canonical or shaped, and the
   dict goes.  The class learns how many slots that needs, so that its next
   objects have them.  Never fails: the object stays in dict form when the
   dict is held elsewhere, is not a plain one with str keys, has more keys
   than an inline form holds, or the block is too small; the result says
   which. */
typedef enum {
    INLINE_DONE,                /* back inline */
    INLINE_NO_ROOM,             /* an inline form would do, this block is
                                   too small for it */
    INLINE_HELD,                /* someone else holds the dict */
    INLINE_UNFIT,               /* no inline form holds these attributes
                                   (or a shape could not be made) */
} InlineOutcome;

static InlineOutcome
try_inline(PyObject *self)
{
    OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
    PyObject *dict = form_dict(form_word(self));
    Py_ssize_t n = PyDict_GET_SIZE(dict);
    if (Py_REFCNT(dict) != 1) {
        return INLINE_HELD;
    }
    if (!PyDict_CheckExact(dict) || n > OA_MAX_KEYS) {
        return INLINE_UNFIT;
    }
    PyObject *keys[OA_MAX_KEYS], *values[OA_MAX_KEYS];
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(dict, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k)) {
            return INLINE_UNFIT;
        }
        keys[i] = k;
        values[i++] = v;
    }
    Py_ssize_t cap = slot_capacity(self);
    learn(t, n);
    if (n > cap) {
        return INLINE_NO_ROOM;
    }
    /* Usually the keys are the shared keys, in order, and the very same
       (interned) strings: no shape to find. */
    int canonical = n <= t->canon->size;
    for (Py_ssize_t j = 0; j < n && canonical; j++) {
        canonical = keys[j] == t->canon->keys[j];
    }
    OaShape *s = NULL;
    if (!canonical && n > 0) {
        s = shape_for_keys(t, keys, n);
        if (s == NULL) {
            return INLINE_UNFIT;
        }
        canonical = on_canon_path(t, s);
    }
    canonical |= n == 0;
    if (!canonical && n + 1 > cap) {
        learn(t, n + 1);
        shape_release(t, s);
        return INLINE_NO_ROOM;
    }
    PyObject **slots = value_slots(self);
    PyObject *taken = take_dict_form(self);     /* the dict's only reference */
    Py_ssize_t first = canonical ? 0 : 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        slots[first + j] = Py_NewRef(values[j]);
    }
    if (canonical) {
        if (s != NULL) {
            shape_release(t, s);
        }
    }
    else {
        slots[0] = (PyObject *)((uintptr_t)s | FORM_SHAPED);     /* its reference */
    }
    Py_DECREF(taken);           /* str keys, values still held: no code runs */
    return INLINE_DONE;
}

/* The collector's and the attribute protocol's question: is this object in
   dict form with a dict that nothing else holds? */
int
oa_obj_dict_unshared(PyObject *self)
{
    uintptr_t w = form_word(self);
    return is_dict_form(w) && Py_REFCNT(form_dict(w)) == 1;
}

/* The attribute protocol's way back inline, before each access. */
static inline void
reinline(PyObject *self)
{
    if (oa_obj_dict_unshared(self)) {
        (void)try_inline(self);
    }
}

/* The collector's, for a survivor in dict form whose dict it alone holds:
   one that goes back inline, or could but for its block's size, tells its
   class that its instances need not be born with the dict's slot only
   (learn_inline).  Access does not teach that: an object being built up in
   dict form has such a dict between its assignments. */
void
oa_obj_reinline(PyObject *self)
{
    if (oa_obj_dict_unshared(self)) {
        InlineOutcome r = try_inline(self);
        if (r == INLINE_DONE || r == INLINE_NO_ROOM) {
            learn_inline((OaTypeObject *)Py_TYPE(self));
        }
    }
}

/* The end of a constructor call (ArenaType.__call__ or a call straight to a
   Python __init__): back inline if the dict is the object's alone, and the
   class learns which form its instances leave their constructor in. */
void
oa_obj_after_init(PyObject *self)
{
    uintptr_t w = form_word(self);
    if (!is_dict_form(w)) {
        if (w != 0) {           /* inline, with attributes */
            learn_inline((OaTypeObject *)Py_TYPE(self));
        }
        return;
    }
    InlineOutcome r = try_inline(self);
    if (r == INLINE_HELD || r == INLINE_UNFIT) {
        learn_dict((OaTypeObject *)Py_TYPE(self));
    }
    else {
        learn_inline((OaTypeObject *)Py_TYPE(self));
    }
}

PyObject *
oa_obj_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                  PyObject *kwnames)
{
    PyTypeObject *tp = (PyTypeObject *)callable;
    OaTypeObject *t = (OaTypeObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (tp->tp_init != oa_obj_init) {
        return oa_type_call_own_init(callable, args, nargsf, kwnames);
    }
    if (oa_type_call_fallback_needed(tp)) {
        return oa_type_call_generic(callable, args, nargs, kwnames);
    }
    if (nargs > 0) {
        too_many_positional(((PyHeapTypeObject *)t)->ht_qualname, nargs);
        return NULL;
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    OaShape *shape = NULL;
    if (nkw > 0) {
        if (kwnames == t->kw_names && tp->tp_version_tag == t->kw_tag
            && tp->tp_version_tag != 0) {
            shape = t->kw_shape;
        }
        else if (!exact_names(kwnames)) {
            /* A str subclass among the names: its __eq__ meets `self`
               first, as for a native __init__(self, **kwargs). */
            return oa_type_call_generic(callable, args, nargs, kwnames);
        }
        else {
            shape = keyword_shape(t, kwnames);
            if (shape != NULL) {
                if (t->kw_shape != NULL) {
                    shape_release(t, t->kw_shape);
                }
                Py_XSETREF(t->kw_names, Py_NewRef(kwnames));
                t->kw_shape = shape;
                t->kw_canonical = on_canon_path(t, shape);
                t->kw_tag = tp->tp_version_tag;
            }
        }
    }
    /* Keywords in the order of the shared keys fill the slots as they are;
       in another order, the shape takes the first slot. */
    Py_ssize_t first = shape != NULL && !t->kw_canonical ? 1 : 0;
    Py_ssize_t room = oa_obj_initial_slots(t);
    if (shape != NULL) {
        learn(t, nkw + first);
        room = nkw + first > room ? nkw + first : room;
    }
    else if (nkw > room) {
        room = nkw;             /* one by one below; past the shared keys: a dict */
    }
    /* The allocation may run a collection, and so finalizers: user code that
       may call this class with other keywords (which replaces the cached
       shape and may free it) or change the class.  The shape is held across
       it, and used only if the class is still the one it was computed for. */
    unsigned int tag = tp->tp_version_tag;
    if (shape != NULL) {
        shape_retain(shape);
    }
    PyObject *self = oa_object_alloc_size(
        t, (size_t)tp->tp_basicsize + (size_t)room * sizeof(PyObject *));
    if (shape != NULL && (self == NULL || tp->tp_version_tag != tag || tag == 0)) {
        shape_release(t, shape);
        shape = NULL;
    }
    if (self == NULL) {
        return NULL;
    }
    if (shape != NULL) {
        PyObject **slots = value_slots(self);
        for (Py_ssize_t i = 0; i < nkw; i++) {
            slots[first + i] = Py_NewRef(args[i]);
        }
        if (first) {
            slots[0] = (PyObject *)((uintptr_t)shape | FORM_SHAPED);    /* our hold */
        }
        else {
            shape_release(t, shape);
        }
        learn_inline(t);
        return self;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyObject_SetAttr(self, PyTuple_GET_ITEM(kwnames, i), args[i]) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    }
    oa_obj_after_init(self);
    return self;
}

/* ------------------------------------------------------------------------ */
/* Pickle and copy: the state is that of a native instance, (dict, slots)     */

static PyObject *
obj_getstate(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    OaTypeObject *t = (OaTypeObject *)Py_TYPE(self);
    PyObject *state = NULL, *slots = NULL;
    oa_gc_expose_attrs(self);           /* the state hands them out */
    uintptr_t w = form_word(self);
    if (is_dict_form(w)) {
        if (PyDict_GET_SIZE(form_dict(w)) > 0) {
            state = PyDict_Copy(form_dict(w));
            if (state == NULL) {
                return NULL;
            }
        }
    }
    else {
        AttrView v;
        attr_view(self, w, &v);
        if (v.size > 0) {
            state = PyDict_New();
            if (state == NULL) {
                return NULL;
            }
        }
        for (Py_ssize_t i = 0; i < v.size; i++) {
            if (PyDict_SetItem(state, v.keys[i], v.values[i]) < 0) {
                Py_DECREF(state);
                return NULL;
            }
        }
    }
    Py_ssize_t n = PyTuple_GET_SIZE(t->fields);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = *(PyObject **)((char *)self + t->offsets[i]);
        if (v == NULL) {
            continue;
        }
        if (slots == NULL && (slots = PyDict_New()) == NULL) {
            goto error;
        }
        if (PyDict_SetItem(slots, PyTuple_GET_ITEM(t->fields, i), v) < 0) {
            goto error;
        }
    }
    if (slots != NULL) {
        PyObject *res = PyTuple_Pack(2, state != NULL ? state : Py_None, slots);
        Py_XDECREF(state);
        Py_DECREF(slots);
        return res;
    }
    return state != NULL ? state : Py_NewRef(Py_None);

error:
    Py_XDECREF(state);
    Py_XDECREF(slots);
    return NULL;
}

/* As pickle and copy restore a native instance: the dict part goes straight
   into the object's storage, the slots part through the fields' descriptors,
   and neither through a __setattr__ override (a frozen dataclass has one). */
static PyObject *
obj_setstate(PyObject *self, PyObject *state)
{
    if (oa_apply_state(self, state, attr_store, obj_setattro) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyGetSetDef obj_getset[] = {
    {"__dict__", obj_get_dict, obj_set_dict,
     "the object's attributes; asking for it switches the object to a dict", NULL},
    {0},
};

/* A class with a plain Python base: its __dict__ descriptor (the base's
   reads a dict CPython keeps) gives way to the arena object's. */
int
oa_obj_add_dict_descriptor(PyTypeObject *tp)
{
    PyObject *descr = PyDescr_NewGetSet(tp, &obj_getset[0]);
    if (descr == NULL) {
        return -1;
    }
    int r = PyDict_SetItemString(tp->tp_dict, "__dict__", descr);
    Py_DECREF(descr);
    return r;
}

static PyMethodDef obj_methods[] = {
    {"__getstate__", obj_getstate, METH_NOARGS, "Helper for pickle."},
    {"__setstate__", obj_setstate, METH_O, "Helper for pickle."},
    {0},
};

static PyType_Slot obj_base_slots[] = {
    {Py_tp_init, oa_obj_init},
    {Py_tp_getattro, obj_getattro},
    {Py_tp_setattro, obj_setattro},
    {Py_tp_getset, obj_getset},
    {Py_tp_methods, obj_methods},
    {Py_tp_doc, "The C base of Obj."},
    {0, NULL},
};

static PyType_Spec obj_base_spec = {
    .name = "objarena._ObjBase",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = obj_base_slots,
};

PyTypeObject *
oa_obj_base_create(PyObject *mod, PyTypeObject *base)
{
    return (PyTypeObject *)PyType_FromModuleAndSpec(mod, &obj_base_spec,
                                                    (PyObject *)base);
}

/* What a SlotObj subclass without __slots__ or annotations gets beside its
   fields: Obj's attribute protocol and storage, SlotObj's __init__ and
   repr (which come first in its MRO). */
static PyMethodDef dyn_methods[] = {
    {"__getstate__", obj_getstate, METH_NOARGS, "Helper for pickle."},
    {0},
};

static PyType_Slot dyn_base_slots[] = {
    {Py_tp_getattro, obj_getattro},
    {Py_tp_setattro, obj_setattro},
    {Py_tp_getset, obj_getset},
    {Py_tp_methods, dyn_methods},
    {Py_tp_doc, "Dynamic attributes of a SlotObj subclass that declares no fields."},
    {0, NULL},
};

static PyType_Spec dyn_base_spec = {
    .name = "objarena._DynamicBase",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = dyn_base_slots,
};

PyTypeObject *
oa_dyn_base_create(PyObject *mod, PyTypeObject *base)
{
    return (PyTypeObject *)PyType_FromModuleAndSpec(mod, &dyn_base_spec,
                                                    (PyObject *)base);
}
