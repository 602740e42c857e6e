/*
 * types.c -- ArenaType (the metaclass), the C base of arena classes, and
 * SlotObj.
 *
 * A class statement `class User(SlotObj): __slots__ = ("id", "name")` runs
 * ArenaType.__new__ (meta_new), which
 *   1. checks the bases and the __slots__ entries (TypeError/ValueError);
 *      a SlotObj class body without __slots__ declares its fields by
 *      annotation (`id: int`; ClassVar, InitVar and KW_ONLY annotations left
 *      out; a value in the class body is the field's default),
 *   2. lets type.__new__ build an ordinary heap type with no slots of its own
 *      (so that CPython adds neither a __dict__ nor a managed pre-header),
 *   3. patches that type before any instance can exist: no Py_TPFLAGS_HAVE_GC,
 *      the arena's alloc/free/dealloc, our traverse/clear, its basicsize, and
 *      one CPython member descriptor per field (so that the interpreter
 *      specialises attribute access exactly as for native __slots__).
 *
 * Instance layout (SlotObj):   [ ob_refcnt | ob_type | field 0 | field 1 ... ]
 * with the weak-reference list, when asked for, after the fields of the class
 * that asked.  Nothing precedes the object: no PyGC_Head, no pre-header.
 *
 * Slots shared by every arena class (__init__, __new__, __repr__, __class__,
 * __sizeof__, __reduce_ex__) live on the C base _ArenaBase, created from a
 * PyType_Spec so that CPython installs real slot wrappers; subclasses then
 * inherit the C functions themselves, not a Python-level redirection.
 *
 * Deallocation never recurses without bound: past OA_DEALLOC_LIMIT nested
 * arena deallocs, an object is queued on its Arena and freed by the
 * outermost dealloc (CPython's trashcan macros write into a GC header that
 * these objects do not have, so they cannot be used).
 */
#include "objarena.h"

#include <stddef.h>
#include <string.h>

/* 64 nested arena deallocs: deep enough that ordinary structures (a tree's
   depth, a short chain) never queue, shallow enough that the C stack they
   take (a few hundred bytes each, plus whatever a finalizer runs) stays far
   from its end, as CPython's trashcan (its limit is 50). */
#define OA_DEALLOC_LIMIT 64

static PyObject *base_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
static int base_init(PyObject *self, PyObject *args, PyObject *kwds);

static inline OaTypeObject *
oa_type(PyObject *o)
{
    return (OaTypeObject *)Py_TYPE(o);
}

static inline PyObject **
field_ptr(PyObject *self, Py_ssize_t offset)
{
    return (PyObject **)((char *)self + offset);
}

/* Object fields: the references an instance owns. */
static inline Py_ssize_t
nobject(OaTypeObject *t)
{
    return PyTuple_GET_SIZE(t->fields);
}

/* Every field, object or typed, in declaration order. */
static inline Py_ssize_t
nall(OaTypeObject *t)
{
    return PyTuple_GET_SIZE(t->names);
}

int
oa_is_arena_object(PyObject *obj)
{
    return oa_is_arena_type(Py_TYPE(obj));
}

/* The objarena module that made `type` or one of its bases (borrowed). */
static PyObject *
module_of_type(PyTypeObject *type)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = mro != NULL ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *mod = ((PyHeapTypeObject *)t)->ht_module;
        if (mod != NULL && PyModule_GetDef(mod) == &oa_moduledef) {
            return mod;
        }
    }
    PyErr_Format(PyExc_TypeError, "%.100s is not an objarena type", type->tp_name);
    return NULL;
}

OaState *
oa_state_from_type(PyTypeObject *type)
{
    PyObject *mod = module_of_type(type);
    return mod != NULL ? oa_state_of_module(mod) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Allocation and deallocation of arena objects                               */

static OA_ALWAYS_INLINE PyObject *object_alloc_size(OaTypeObject *t, size_t size);

/* Inline in the calls of arena classes (oa_type_vectorcall), a function for
   the rest. */
static OA_ALWAYS_INLINE PyObject *
object_alloc(OaTypeObject *t)
{
    size_t size = (size_t)((PyTypeObject *)t)->tp_basicsize;
    if (t->dynamic) {
        size += (size_t)oa_obj_initial_slots(t) * sizeof(PyObject *);
    }
    return object_alloc_size(t, size);
}

PyObject *
oa_object_alloc(OaTypeObject *t)
{
    return object_alloc(t);
}

PyObject *
oa_object_alloc_size(OaTypeObject *t, size_t size)
{
    return object_alloc_size(t, size);
}

static OA_ALWAYS_INLINE PyObject *
object_alloc_size(OaTypeObject *t, size_t size)
{
    PyTypeObject *tp = (PyTypeObject *)t;
    OaArenaObject *arena = t->arena;
    if (t->pending && oa_finish_pending_fields(t) < 0) {
        return NULL;
    }
    if (tp->tp_flags & Py_TPFLAGS_IS_ABSTRACT) {
        /* object.__new__ refuses it, with CPython's message. */
        PyObject *empty = PyTuple_New(0);
        PyObject *res = empty != NULL ? PyBaseObject_Type.tp_new(tp, empty, NULL) : NULL;
        Py_XDECREF(empty);
        if (res != NULL) {
            Py_DECREF(res);
            PyErr_Format(PyExc_SystemError, "objarena: abstract class %.100s "
                         "was instantiated", tp->tp_name);
        }
        return NULL;
    }
    void *mem;
    if (t->untracked) {
        /* Nothing for a collector to see: not counted, never collected. */
        mem = oa_alloc_untracked(arena->core, size);
        if (mem == NULL) {
            return oa_raise_alloc_error(arena, size);
        }
        arena->gc.untracked_allocated = 1;
    }
    else {
        oa_gc_before_alloc(arena);
        mem = oa_alloc(arena->core, size);
        if (mem == NULL) {
            return oa_raise_alloc_error(arena, size);
        }
        oa_gc_allocated(arena);
    }
    memset(mem, 0, size);
    PyObject *op = PyObject_Init((PyObject *)mem, tp);     /* increfs tp */
    /* Best effort, as for CPython's own allocators: -2 means tracemalloc
       is off, -1 that it could not record the trace. */
    (void)PyTraceMalloc_Track(0, (uintptr_t)mem, oa_block_size(mem));
    return op;
}

static PyObject *
oa_tp_alloc(PyTypeObject *type, Py_ssize_t Py_UNUSED(nitems))
{
    if (!oa_is_arena_type(type)) {
        PyErr_Format(PyExc_TypeError, "cannot allocate %.100s in an arena",
                     type->tp_name);
        return NULL;
    }
    return oa_object_alloc((OaTypeObject *)type);
}

/* The block of an object of `arena` back to it. */
static inline void
free_in(OaArenaObject *arena, void *p)
{
    if (!oa_untracked(p)) {
        oa_gc_freed(arena);
    }
    (void)PyTraceMalloc_Untrack(0, (uintptr_t)p);
    oa_free(p);
}

void
oa_tp_free(void *p)
{
    free_in((OaArenaObject *)oa_owner_of(p), p);
}

static inline void
clear_fields(PyObject *self)
{
    OaTypeObject *t = oa_type(self);
    Py_ssize_t n = nobject(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_CLEAR(*field_ptr(self, t->offsets[i]));
    }
    if (t->dynamic) {
        oa_obj_clear_attrs(self);
    }
}

void
oa_clear_fields(PyObject *self)
{
    clear_fields(self);
}

/* The body of a dealloc: finalizer (once per object, PEP 442), weak
   references, fields, the block, the type reference. */
static OA_ALWAYS_INLINE void
dealloc_body(OaArenaObject *arena, PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    uint8_t *meta = oa_meta_of(self);
    if (tp->tp_finalize != NULL && !(*meta & OA_META_FINALIZED)) {
        *meta |= OA_META_FINALIZED;
        if (PyObject_CallFinalizerFromDealloc(self) < 0) {
            return;             /* resurrected */
        }
        tp = Py_TYPE(self);     /* __del__ may have assigned __class__ */
    }
    /* From here on get_objects() and the collector no longer see it. */
    *meta |= OA_META_DYING;
    if (tp->tp_weaklistoffset > 0) {
        PyObject **list = field_ptr(self, tp->tp_weaklistoffset);
        if (*list != NULL) {
            PyObject_ClearWeakRefs(self);
        }
    }
    clear_fields(self);
    free_in(arena, self);
    Py_DECREF(tp);
}

/* A queued object is dead and stays as its dealloc found it: refcount 0,
   the value every CPython version's weak references (and anything else that
   asks) read as dead, whatever else the refcount word means on that version.
   Its side-table byte says DYING, so that get_objects() and the collector
   skip it.  The queue itself is a stack outside the objects.  -1 if the stack
   cannot grow (no exception set): the caller then frees the object at once,
   one level deeper, which is what a dealloc without the queue would do. */
static int
defer_push(OaArenaObject *arena, PyObject *op)
{
    if (arena->ndeferred == arena->deferred_cap) {
        Py_ssize_t cap = arena->deferred_cap ? 2 * arena->deferred_cap : 64;
        PyObject **stack = PyMem_Resize(arena->deferred, PyObject *, (size_t)cap);
        if (stack == NULL) {
            return -1;
        }
        arena->deferred = stack;
        arena->deferred_cap = cap;
    }
    *oa_meta_of(op) |= OA_META_DYING;
    arena->deferred[arena->ndeferred++] = op;
    return 0;
}

static PyObject *
defer_pop(OaArenaObject *arena)
{
    PyObject *op = arena->deferred[--arena->ndeferred];
    *oa_meta_of(op) &= (uint8_t)~OA_META_DYING;
    return op;
}

/* The stack's memory, once no dealloc is in progress. */
static void
defer_release(OaArenaObject *arena)
{
    PyMem_Free(arena->deferred);
    arena->deferred = NULL;
    arena->deferred_cap = 0;
}

/* Deallocs of arena objects in progress, in every arena: no automatic
   collection starts inside one.  GIL builds, one interpreter. */
static int oa_dealloc_nesting;

int
oa_deallocating(void)
{
    return oa_dealloc_nesting > 0;
}

static void
oa_dealloc(PyObject *self)
{
    OaArenaObject *arena = (OaArenaObject *)oa_owner_of(self);
    if (arena->dealloc_depth >= OA_DEALLOC_LIMIT && defer_push(arena, self) == 0) {
        return;
    }
    Py_INCREF(arena);   /* the last object may hold the last reference */
    oa_dealloc_nesting++;
    arena->dealloc_depth++;
    dealloc_body(arena, self);
    if (arena->dealloc_depth == 1) {
        while (arena->ndeferred > 0) {
            dealloc_body(arena, defer_pop(arena));
        }
        if (arena->deferred_cap > 1024) {
            defer_release(arena);   /* a burst's stack is not kept */
        }
    }
    arena->dealloc_depth--;
    oa_dealloc_nesting--;
    Py_DECREF(arena);
}

/* The references an arena object owns, but for its type. */
int
oa_traverse_fields(PyObject *self, visitproc visit, void *arg)
{
    OA_FOR_EACH_REF(self, v, {
        int r = visit(v, arg);
        if (r) {
            return r;
        }
    });
    return 0;
}

/* tp_traverse: gc.get_referents hands the references out. */
static int
oa_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    oa_gc_expose_attrs(self);
    return oa_traverse_fields(self, visit, arg);
}

static int
oa_clear(PyObject *self)
{
    oa_clear_fields(self);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* _ArenaBase: the slots every arena class inherits                           */

static PyObject *
base_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    if (!oa_is_arena_type(type)) {
        PyErr_Format(PyExc_TypeError,
                     "cannot create '%.100s' instances: the class is not a "
                     "finished objarena class", type->tp_name);
        return NULL;
    }
    if (type->tp_flags & Py_TPFLAGS_IS_ABSTRACT) {
        /* An ABC with abstract methods left: object.__new__ refuses it with
           the running version's own message (it raises before allocating). */
        PyObject *empty = PyTuple_New(0);
        PyObject *res = empty != NULL ? PyBaseObject_Type.tp_new(type, empty, NULL) : NULL;
        Py_XDECREF(empty);
        if (res != NULL) {      /* not reached: the flag is what it checks */
            Py_DECREF(res);
            PyErr_SetString(PyExc_SystemError, "objarena: abstract class instantiated");
        }
        return NULL;
    }
    return oa_object_alloc((OaTypeObject *)type);
}

int
oa_check_self_keyword(PyTypeObject *tp, PyObject *key)
{
    if (PyUnicode_CheckExact(key)) {
        return 0;               /* "self" is never a field, nor an attribute set here */
    }
    PyObject *self_name = PyUnicode_InternFromString("self");
    if (self_name == NULL) {
        return -1;
    }
    int r = PyObject_RichCompareBool(key, self_name, Py_EQ);
    Py_DECREF(self_name);
    if (r > 0) {
        PyErr_Format(PyExc_TypeError,
                     "%U.__init__() got multiple values for argument 'self'",
                     ((PyHeapTypeObject *)tp)->ht_qualname);
        return -1;
    }
    return r;
}

/* Index of keyword `key` among the fields, -1 if none, -2 on error.  An
   exact str is found in the field index, whose keys are exact str too
   (check_slots): no user code runs.  A str subclass is matched as CPython
   binds a keyword to a Python function's parameters: by identity, then by
   == in parameter order, `self` first.  Its __eq__ then runs as it would for
   a native class's __init__ (as often, on the same names, in the same
   order), and a match with `self` is that __init__'s "multiple values"
   error.  Its __hash__ never runs, as it does not there. */
static Py_ssize_t
field_lookup(OaTypeObject *t, PyObject *key)
{
    Py_ssize_t n = nall(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyTuple_GET_ITEM(t->names, i) == key) {
            return i;
        }
    }
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "keywords must be strings");
        return -2;
    }
    if (PyUnicode_CheckExact(key)) {
        PyObject *idx = PyDict_GetItemWithError(t->field_index, key);
        if (idx == NULL) {
            return PyErr_Occurred() ? -2 : -1;
        }
        return PyLong_AsSsize_t(idx);
    }
    if (oa_check_self_keyword((PyTypeObject *)t, key) < 0) {
        return -2;
    }
    PyObject *names = Py_NewRef(t->names);      /* the __eq__ calls run code */
    Py_ssize_t found = -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names) && found == -1; i++) {
        int r = PyObject_RichCompareBool(key, PyTuple_GET_ITEM(names, i), Py_EQ);
        found = r > 0 ? i : r < 0 ? -2 : -1;
    }
    Py_DECREF(names);
    return found;
}

static inline void
set_field(PyObject *self, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = field_ptr(self, offset);
    PyObject *old = *slot;
    *slot = Py_NewRef(value);
    Py_XDECREF(old);
}

static int
too_many_positional(OaTypeObject *t, Py_ssize_t nargs)
{
    PyObject *qualname = ((PyHeapTypeObject *)t)->ht_qualname;
    Py_ssize_t n = nall(t);
    /* The fields up to the last required one count as required here, as
       they do in the signature. */
    Py_ssize_t least = t->last_required + 1;
    if (least == n) {
        PyErr_Format(PyExc_TypeError,
                     "%U.__init__() takes %zd positional argument%s but %zd were given",
                     qualname, n + 1, n == 0 ? "" : "s", nargs + 1);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "%U.__init__() takes from %zd to %zd positional arguments "
                     "but %zd were given", qualname, least + 1, n + 1, nargs + 1);
    }
    return -1;
}

/* Every keyword of a call resolved to its field, once.  A keyword's name may
   be a str subclass whose __hash__/__eq__ are user code: each name is looked
   up exactly once, and nothing after uses a result computed before it ran
   but the index it produced (checked against the field count).  On success
   kidx[k] holds the field index of names[k]; -1 with TypeError if a keyword
   names no field, names one that a positional argument or an earlier keyword
   already fills, or is not a string. */
static int
resolve_keywords(OaTypeObject *t, PyObject *const *names, Py_ssize_t nkw,
                 Py_ssize_t nargs, Py_ssize_t *kidx)
{
    PyObject *qualname = ((PyHeapTypeObject *)t)->ht_qualname;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = names[k];
        Py_ssize_t i = field_lookup(t, key);
        if (i == -2) {
            return -1;
        }
        if (i == -1 || i >= nall(t)) {
            PyErr_Format(PyExc_TypeError,
                         "%U.__init__() got an unexpected keyword argument '%S'",
                         qualname, key);
            return -1;
        }
        int taken = i < nargs;
        for (Py_ssize_t j = 0; j < k && !taken; j++) {
            taken = kidx[j] == i;
        }
        if (taken) {
            PyErr_Format(PyExc_TypeError,
                         "%U.__init__() got multiple values for argument '%S'",
                         qualname, PyTuple_GET_ITEM(t->names, i));
            return -1;
        }
        kidx[k] = i;
    }
    return 0;
}

/* A required field: typed, without a default (an object field without a
   default may stay unset, as a native slot). */
static inline int
is_required(OaTypeObject *t, Py_ssize_t i)
{
    return t->all[i].type != OA_FT_OBJECT && (t->defaults == NULL || t->defaults[i] == NULL);
}

/* The TypeError of a Python function for the required fields that neither
   the `nargs` positional arguments nor the keywords (their field indices
   kidx[0..nkw)) give; 0 if none is missing. */
static int
check_required(OaTypeObject *t, Py_ssize_t nargs, const Py_ssize_t *kidx, Py_ssize_t nkw)
{
    if (t->last_required < nargs) {
        return 0;
    }
    PyObject *missing = PyList_New(0), *quoted = NULL, *names = NULL, *sep = NULL;
    if (missing == NULL) {
        return -1;
    }
    for (Py_ssize_t i = nargs; i <= t->last_required; i++) {
        int given = !is_required(t, i);
        for (Py_ssize_t k = 0; k < nkw && !given; k++) {
            given = kidx[k] == i;
        }
        if (!given) {
            PyObject *q = PyUnicode_FromFormat("'%U'", PyTuple_GET_ITEM(t->names, i));
            if (q == NULL || PyList_Append(missing, q) < 0) {
                Py_XDECREF(q);
                goto done;
            }
            Py_DECREF(q);
        }
    }
    Py_ssize_t n = PyList_GET_SIZE(missing);
    if (n == 0) {
        Py_DECREF(missing);
        return 0;
    }
    /* 'a'; 'a' and 'b'; 'a', 'b', and 'c' -- as CPython words it. */
    PyObject *last = PyList_GET_ITEM(missing, n - 1);
    if (n == 1) {
        quoted = Py_NewRef(last);
    }
    else {
        sep = PyUnicode_FromString(", ");
        PyObject *head = sep != NULL ? PyList_GetSlice(missing, 0, n - 1) : NULL;
        names = head != NULL ? PyUnicode_Join(sep, head) : NULL;
        Py_XDECREF(head);
        if (names == NULL) {
            goto done;
        }
        quoted = PyUnicode_FromFormat(n == 2 ? "%U and %U" : "%U, and %U", names, last);
        if (quoted == NULL) {
            goto done;
        }
    }
    PyErr_Format(PyExc_TypeError, "%U.__init__() missing %zd required positional "
                 "argument%s: %U", ((PyHeapTypeObject *)t)->ht_qualname, n,
                 n == 1 ? "" : "s", quoted);
done:
    Py_XDECREF(quoted);
    Py_XDECREF(names);
    Py_XDECREF(sep);
    Py_DECREF(missing);
    return -1;
}

/* Room for the field indices of a call's keywords (and for the converted
   numbers of its arguments): on the stack for the usual few, from the heap
   past that. */
#define OA_SMALL_KW 16

static Py_ssize_t *
kidx_buffer(Py_ssize_t nkw, Py_ssize_t *small)
{
    if (nkw <= OA_SMALL_KW) {
        return small;
    }
    Py_ssize_t *buf = PyMem_New(Py_ssize_t, (size_t)nkw);
    if (buf == NULL) {
        PyErr_NoMemory();
    }
    return buf;
}

static void
kidx_release(Py_ssize_t *buf, Py_ssize_t *small)
{
    if (buf != small) {
        PyMem_Free(buf);
    }
}

/* The typed arguments of a call converted before anything is stored: a
   conversion may fail or run user code (__index__, __float__).  conv[j] holds
   the bytes of argument j (positional first, then keywords); object fields'
   entries are unused. */
static int
convert_typed(OaTypeObject *t, PyObject *const *args, Py_ssize_t nargs,
              PyObject *const *values, const Py_ssize_t *kidx, Py_ssize_t nkw,
              uint64_t *conv)
{
    for (Py_ssize_t j = 0; j < nargs + nkw; j++) {
        Py_ssize_t i = j < nargs ? j : kidx[j - nargs];
        OaFieldType type = t->all[i].type;
        if (type != OA_FT_OBJECT
            && oa_typed_set((char *)&conv[j], type, j < nargs ? args[j] : values[j - nargs]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Store `value` in field i: a reference; or, for a typed field, the bytes
   convert_typed made (`raw`), or else `value` converted now (a default,
   checked at the class statement, or an argument for a fresh object, which
   the caller drops if the conversion fails). */
static inline int
store_field(PyObject *self, OaTypeObject *t, Py_ssize_t i, PyObject *value,
            const uint64_t *raw)
{
    OaField f = t->all[i];
    char *addr = (char *)self + f.offset;
    if (f.type == OA_FT_OBJECT) {
        set_field(self, f.offset, value);
        return 0;
    }
    if (raw == NULL) {
        return oa_typed_store(addr, f.type, value);
    }
    switch (oa_field_type_size(f.type)) {
    case 8: memcpy(addr, raw, 8); break;
    case 4: memcpy(addr, raw, 4); break;
    case 2: memcpy(addr, raw, 2); break;
    default: memcpy(addr, raw, 1); break;
    }
    return 0;
}

/* Validates a whole call (keywords first, then the positional count, in
   CPython's order for a Python function; then the required typed fields)
   and only then stores: the positional arguments, the defaults of the later
   fields, the keywords.  On an existing object (__init__ called again) the
   typed arguments are all converted before anything is stored, so that a
   call that fails changes no field; a fresh object (`fresh`: the caller
   drops it on failure) gets them converted in place. */
static int
fill_fields(PyObject *self, OaTypeObject *t, PyObject *const *args, Py_ssize_t nargs,
            PyObject *const *names, PyObject *const *values, Py_ssize_t nkw, int fresh)
{
    Py_ssize_t small[OA_SMALL_KW];
    uint64_t conv_small[OA_SMALL_KW];
    uint64_t *conv = NULL;
    Py_ssize_t *kidx = kidx_buffer(nkw, small);
    if (kidx == NULL) {
        return -1;
    }
    if (resolve_keywords(t, names, nkw, nargs, kidx) < 0) {
        goto error;
    }
    if (nargs > nall(t)) {
        (void)too_many_positional(t, nargs);
        goto error;
    }
    if (check_required(t, nargs, kidx, nkw) < 0) {
        goto error;
    }
    if (!fresh && t->ntyped > 0) {
        conv = nargs + nkw <= OA_SMALL_KW ? conv_small : PyMem_New(uint64_t, (size_t)(nargs + nkw));
        if (conv == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        if (convert_typed(t, args, nargs, values, kidx, nkw, conv) < 0) {
            goto error;
        }
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (store_field(self, t, i, args[i], conv != NULL ? &conv[i] : NULL) < 0) {
            goto error;
        }
    }
    if (t->defaults != NULL) {
        for (Py_ssize_t i = nargs; i < nall(t); i++) {
            if (t->defaults[i] != NULL) {
                (void)store_field(self, t, i, t->defaults[i], NULL);    /* cannot fail */
            }
        }
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        if (store_field(self, t, kidx[k], values[k],
                        conv != NULL ? &conv[nargs + k] : NULL) < 0) {
            goto error;
        }
    }
    if (conv != NULL && conv != conv_small) {
        PyMem_Free(conv);
    }
    kidx_release(kidx, small);
    return 0;
error:
    if (conv != NULL && conv != conv_small) {
        PyMem_Free(conv);
    }
    kidx_release(kidx, small);
    return -1;
}

/* fill_fields for a fresh object and positional arguments alone, the usual
   call (`C(a, b)`, `Reading("s1", 1.5, 2.5, 7)`): with no keyword to
   resolve, the checks are the count and the required fields, and each
   argument goes straight to its field, a typed one converted in place (the
   caller drops the object if a conversion fails); then the defaults of the
   fields after them.  The same errors, in the same order, as fill_fields. */
static inline int
fill_positional(PyObject *self, OaTypeObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = nall(t);
    if (nargs > n) {
        return too_many_positional(t, nargs);
    }
    if (nargs <= t->last_required && check_required(t, nargs, NULL, 0) < 0) {
        return -1;
    }
    const OaField *all = t->all;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        char *addr = (char *)self + all[i].offset;
        if (all[i].type == OA_FT_OBJECT) {
            *(PyObject **)addr = Py_NewRef(args[i]);
        }
        else if (oa_typed_store(addr, all[i].type, args[i]) < 0) {
            return -1;
        }
    }
    if (nargs < n && t->defaults != NULL) {
        for (Py_ssize_t i = nargs; i < n; i++) {
            if (t->defaults[i] != NULL) {
                (void)store_field(self, t, i, t->defaults[i], NULL);    /* cannot fail */
            }
        }
    }
    return 0;
}

static int
base_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    OaTypeObject *t = oa_type(self);
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    Py_INCREF(t);       /* a lookup or conversion may reassign self's __class__ */
    if (kwds == NULL || PyDict_GET_SIZE(kwds) == 0) {
        int r = fill_fields(self, t, &PyTuple_GET_ITEM(args, 0), nargs, NULL, NULL, 0, 0);
        Py_DECREF(t);
        return r;
    }
    /* A snapshot of the keywords: the lookups run user code that may
       mutate the dict the caller passed. */
    PyObject *items = PyDict_Items(kwds);
    if (items == NULL) {
        Py_DECREF(t);
        return -1;
    }
    Py_ssize_t nkw = PyList_GET_SIZE(items);
    PyObject **kv = PyMem_New(PyObject *, (size_t)nkw * 2);
    if (kv == NULL) {
        Py_DECREF(items);
        Py_DECREF(t);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *pair = PyList_GET_ITEM(items, k);
        kv[k] = PyTuple_GET_ITEM(pair, 0);
        kv[nkw + k] = PyTuple_GET_ITEM(pair, 1);
    }
    int r = fill_fields(self, t, &PyTuple_GET_ITEM(args, 0), nargs, kv, kv + nkw, nkw, 0);
    Py_DECREF(t);
    PyMem_Free(kv);
    Py_DECREF(items);
    return r;
}

/* Calling an arena class.  While the class uses the generated __new__ and
   __init__, the call fills the fields straight from the argument vector:
   no argument tuple, no keyword dict, no second dispatch. */
static inline int
fallback_needed(PyTypeObject *tp)
{
    return tp->tp_new != base_new || !((OaTypeObject *)tp)->ready
           || (tp->tp_flags & Py_TPFLAGS_IS_ABSTRACT);
}

int
oa_type_call_fallback_needed(PyTypeObject *tp)
{
    return fallback_needed(tp);
}

static inline void after_init(PyObject *self);

/* ArenaType.__call__: type's, then after_init. */
static PyObject *
meta_call(PyObject *cls, PyObject *args, PyObject *kwds)
{
    PyObject *res = PyType_Type.tp_call(cls, args, kwds);
    if (res != NULL && oa_is_arena_type(Py_TYPE(res))) {
        after_init(res);
    }
    return res;
}

/* A vectorcall's arguments as an argument tuple and a keyword dict (NULL
   without keywords): 0, or -1 with an exception. */
static int
pack_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
          PyObject **tuple_out, PyObject **kwargs_out)
{
    PyObject *tuple = PyTuple_New(nargs);
    if (tuple == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    PyObject *kwargs = NULL;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            Py_DECREF(tuple);
            return -1;
        }
        for (Py_ssize_t k = 0; k < nkw; k++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, k), args[nargs + k]) < 0) {
                Py_DECREF(kwargs);
                Py_DECREF(tuple);
                return -1;
            }
        }
    }
    *tuple_out = tuple;
    *kwargs_out = kwargs;
    return 0;
}

PyObject *
oa_type_call_generic(PyObject *callable, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    PyObject *tuple, *kwargs;
    if (pack_args(args, nargs, kwnames, &tuple, &kwargs) < 0) {
        return NULL;
    }
    PyObject *res = meta_call(callable, tuple, kwargs);
    Py_XDECREF(kwargs);
    Py_DECREF(tuple);
    return res;
}

/* The class's __init__ if it is a Python function (borrowed), else NULL.
   Such an __init__ is what type's slot_tp_init calls.  _PyType_Lookup: see
   type_lookup in obj.c (the method cache, no public equivalent). */
static inline PyObject *
function_init(OaState *st, PyTypeObject *tp)
{
    PyObject *init = _PyType_Lookup(tp, st->str_init);
    return init != NULL && PyFunction_Check(init) ? init : NULL;
}

static inline PyObject *
python_init(PyTypeObject *tp)
{
    return function_init(oa_state_of_module(((OaTypeObject *)tp)->module), tp);
}

/* __init__ ran: an __init__ that set the attributes through self.__dict__
   (a common idiom) has let go of the dict, so the object takes its inline
   form now, before any collector pays for the dict; and the class learns
   in which form its instances leave their constructor (obj.c). */
static inline void
after_init(PyObject *self)
{
    if (((OaTypeObject *)Py_TYPE(self))->dynamic) {
        oa_obj_after_init(self);
    }
}

/* The call of a class whose __init__ is a Python function and whose
   __new__ is the arena's: what type.__call__ does (allocate, then
   __init__(self, ...), which must return None), with the caller's argument
   vector handed on as it came, as CPython 3.13+ calls native classes with
   positional arguments: no argument tuple and keyword dict built only to be
   unpacked again on the way into the function. */
PyObject *
oa_type_call_own_init(PyObject *callable, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    PyTypeObject *tp = (PyTypeObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (oa_type_call_fallback_needed(tp) || python_init(tp) == NULL) {
        return oa_type_call_generic(callable, args, nargs, kwnames);
    }
    PyObject *self = oa_object_alloc((OaTypeObject *)tp);
    if (self == NULL) {
        return NULL;
    }
    /* The allocation may have run a collection, and so finalizers that
       change the class: __init__ is looked up now, as slot_tp_init does
       after __new__. */
    PyObject *init = python_init(tp);
    if (init == NULL) {
        /* No longer a function: the class's tp_init as type.__call__ calls it. */
        PyObject *tuple, *kwargs;
        int r = pack_args(args, nargs, kwnames, &tuple, &kwargs);
        if (r == 0) {
            r = tp->tp_init != NULL ? tp->tp_init(self, tuple, kwargs) : 0;
            Py_XDECREF(kwargs);
            Py_DECREF(tuple);
        }
        if (r < 0) {
            Py_DECREF(self);
            return NULL;
        }
        after_init(self);
        return self;
    }
    Py_INCREF(init);
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t total = nargs + nkw;
    PyObject *res;
    if (nargsf & PY_VECTORCALL_ARGUMENTS_OFFSET) {
        /* The caller lent args[-1] for this. */
        PyObject **stack = (PyObject **)args - 1;
        PyObject *saved = stack[0];
        stack[0] = self;
        res = PyObject_Vectorcall(init, stack, (size_t)nargs + 1, kwnames);
        stack[0] = saved;
    }
    else {
        PyObject *small[16];
        PyObject **stack = total < 16 ? small : PyMem_New(PyObject *, (size_t)total + 1);
        if (stack == NULL) {
            Py_DECREF(init);
            Py_DECREF(self);
            PyErr_NoMemory();
            return NULL;
        }
        stack[0] = self;
        if (total > 0) {
            memcpy(stack + 1, args, (size_t)total * sizeof(PyObject *));
        }
        res = PyObject_Vectorcall(init, stack, (size_t)nargs + 1, kwnames);
        if (stack != small) {
            PyMem_Free(stack);
        }
    }
    Py_DECREF(init);
    if (res == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (res != Py_None) {
        PyErr_Format(PyExc_TypeError, "__init__() should return None, not '%.200s'",
                     Py_TYPE(res)->tp_name);
        Py_DECREF(res);
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(res);
    after_init(self);
    return self;
}

static PyObject *
oa_type_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                   PyObject *kwnames)
{
    PyTypeObject *tp = (PyTypeObject *)callable;
    OaTypeObject *t = (OaTypeObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (tp->tp_init != base_init) {
        return oa_type_call_own_init(callable, args, nargsf, kwnames);
    }
    if (fallback_needed(tp)) {
        return oa_type_call_generic(callable, args, nargs, kwnames);
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *self = object_alloc(t);
    if (self == NULL) {
        return NULL;
    }
    if (nkw == 0 ? fill_positional(self, t, args, nargs) < 0
                 : fill_fields(self, t, args, nargs, &PyTuple_GET_ITEM(kwnames, 0),
                               args + nargs, nkw, 1) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    if (!t->untracked) {
        oa_gc_untrack_if_atoms(self);
    }
    return self;
}

static PyObject *
slot_repr(PyObject *self, OaTypeObject *t)
{
    PyObject *name = ((PyHeapTypeObject *)t)->ht_name;
    PyObject *parts = PyList_New(0);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *result = NULL, *sep = NULL, *body = NULL;
    Py_ssize_t n = nall(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        OaField f = t->all[i];
        PyObject *value;
        if (f.type == OA_FT_OBJECT) {
            value = Py_XNewRef(*field_ptr(self, f.offset));
            if (value == NULL) {
                continue;
            }
        }
        else if ((value = oa_typed_get((char *)self + f.offset, f.type)) == NULL) {
            goto done;
        }
        PyObject *part = PyUnicode_FromFormat("%U=%R", PyTuple_GET_ITEM(t->names, i),
                                              value);
        Py_DECREF(value);
        if (part == NULL || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            goto done;
        }
        Py_DECREF(part);
    }
    sep = PyUnicode_FromString(", ");
    if (sep == NULL) {
        goto done;
    }
    body = PyUnicode_Join(sep, parts);
    if (body == NULL) {
        goto done;
    }
    result = PyUnicode_FromFormat("%U(%U)", name, body);
done:
    Py_XDECREF(body);
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return result;
}

static PyObject *
base_repr(PyObject *self)
{
    OaTypeObject *t = oa_type(self);
    int r = Py_ReprEnter(self);
    if (r != 0) {
        return r > 0 ? PyUnicode_FromFormat("%U(...)", ((PyHeapTypeObject *)t)->ht_name)
                     : NULL;
    }
    Py_INCREF(t);       /* a field's repr may reassign __class__ */
    PyObject *result = slot_repr(self, t);
    Py_DECREF(t);
    Py_ReprLeave(self);
    return result;
}

static PyObject *
base_get_class(PyObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef((PyObject *)Py_TYPE(self));
}

/* Same storage, same place: fields (names, offsets and types), weak-reference
   slot, size and arena. */
static int
same_layout(PyObject *self, OaTypeObject *a, OaTypeObject *b)
{
    PyTypeObject *ta = (PyTypeObject *)a, *tb = (PyTypeObject *)b;
    if (a->kind != b->kind || a->dynamic != b->dynamic
        || ta->tp_basicsize != tb->tp_basicsize
        || ta->tp_weaklistoffset != tb->tp_weaklistoffset
        || (PyObject *)b->arena != oa_owner_of(self)
        || nall(a) != nall(b)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < nall(a); i++) {
        if (a->all[i].offset != b->all[i].offset || a->all[i].type != b->all[i].type) {
            return 0;
        }
    }
    return PyObject_RichCompareBool(a->names, b->names, Py_EQ);
}

static int
base_set_class(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "can't delete __class__ attribute");
        return -1;
    }
    if (!PyType_Check(value)) {
        PyErr_Format(PyExc_TypeError,
                     "__class__ must be set to a class, not '%.100s' object",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (PySys_Audit("object.__setattr__", "OsO", self, "__class__", value) < 0) {
        return -1;
    }
    PyTypeObject *newto = (PyTypeObject *)value;
    PyTypeObject *oldto = Py_TYPE(self);
    if (!oa_is_arena_type(newto)) {
        PyErr_Format(PyExc_TypeError,
                     "__class__ assignment: '%.100s' is not an objarena class, "
                     "and '%.100s' objects live in an arena",
                     newto->tp_name, oldto->tp_name);
        return -1;
    }
    if (((OaTypeObject *)newto)->pending
        && oa_finish_pending_fields((OaTypeObject *)newto) < 0) {
        return -1;
    }
    int same = same_layout(self, (OaTypeObject *)oldto, (OaTypeObject *)newto);
    if (same < 0) {
        return -1;
    }
    if (!same) {
        PyErr_Format(PyExc_TypeError,
                     "__class__ assignment: '%.100s' object layout differs from "
                     "'%.100s' (fields, weak-reference slot and arena must match)",
                     newto->tp_name, oldto->tp_name);
        return -1;
    }
    /* An Obj's shape belongs to its class: its attributes move to a dict,
       which belongs to no class. */
    if (((OaTypeObject *)oldto)->dynamic && oldto != newto
        && oa_obj_materialize(self) < 0) {
        return -1;
    }
    Py_INCREF(newto);
    Py_SET_TYPE(self, newto);
    Py_DECREF(oldto);
    return 0;
}

static PyObject *
base_sizeof(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t owned = 0;
    if (oa_type(self)->dynamic) {
        owned = oa_obj_owned_size(self);
        if (owned < 0) {
            return NULL;
        }
    }
    return PyLong_FromSize_t(oa_block_size(self) + (size_t)owned);
}

/* Every protocol reduces as protocol 2 does (copyreg.__newobj__ and the
   slot state), so protocols 0 and 1 work too, unlike native __slots__. */
static PyObject *
base_reduce_ex(PyObject *self, PyObject *arg)
{
    long proto = PyLong_AsLong(arg);
    if (proto == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *reduce_ex = PyObject_GetAttrString((PyObject *)&PyBaseObject_Type,
                                                 "__reduce_ex__");
    if (reduce_ex == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_CallFunction(reduce_ex, "Ol", self, proto < 2 ? 2L : proto);
    Py_DECREF(reduce_ex);
    return res;
}

/* One part of a pickled state (a dict of attribute names, or None), each
   item stored with `set`. */
static int
apply_state_part(PyObject *self, PyObject *part, setattrofunc set)
{
    if (part == Py_None) {
        return 0;
    }
    if (!PyDict_Check(part)) {
        PyErr_SetString(PyExc_TypeError, "state is not a dictionary");
        return -1;
    }
    /* A snapshot of the items: storing one runs user code (a name's
       __eq__, a value's __del__) that may change the dict. */
    PyObject *items = PyDict_Items(part);
    if (items == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "attribute name must be string, not '%.200s'",
                         Py_TYPE(key)->tp_name);
            Py_DECREF(items);
            return -1;
        }
        if (set(self, key, PyTuple_GET_ITEM(pair, 1)) < 0) {
            Py_DECREF(items);
            return -1;
        }
    }
    Py_DECREF(items);
    return 0;
}

/* Restore a state as pickle and copy restore a native instance's, (dict,
   slots) or dict, except that no __setattr__ override runs: the dict part
   goes through `dict_part`, the slots part through `slots_part`.  A frozen
   dataclass's instances then survive pickle and copy. */
int
oa_apply_state(PyObject *self, PyObject *state, setattrofunc dict_part,
               setattrofunc slots_part)
{
    if (PyTuple_Check(state) && PyTuple_GET_SIZE(state) == 2) {
        if (apply_state_part(self, PyTuple_GET_ITEM(state, 0), dict_part) < 0
            || apply_state_part(self, PyTuple_GET_ITEM(state, 1), slots_part) < 0) {
            return -1;
        }
        return 0;
    }
    return apply_state_part(self, state, dict_part);
}

static PyObject *
slot_setstate(PyObject *self, PyObject *state)
{
    setattrofunc dict_part = oa_type(self)->dynamic ? oa_obj_store_attr
                                                    : PyObject_GenericSetAttr;
    if (oa_apply_state(self, state, dict_part, PyObject_GenericSetAttr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef slot_base_methods[] = {
    {"__setstate__", slot_setstate, METH_O, "Helper for pickle and copy."},
    {0},
};

static PyObject *
get_weakref(PyObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t off = Py_TYPE(self)->tp_weaklistoffset;
    if (!oa_is_arena_object(self)) {
        /* 3.15: the descriptor belongs to `object` (see weakref_descr_owner)
           and may be handed any object: answer as CPython's own does. */
        if (off == 0) {
            PyErr_SetString(PyExc_AttributeError, "This object has no __weakref__");
            return NULL;
        }
        PyObject *name = PyUnicode_FromString("__weakref__");
        if (name == NULL) {
            return NULL;
        }
        PyObject *res = PyObject_GenericGetAttr(self, name);
        Py_DECREF(name);
        return res;
    }
    PyObject *head = off > 0 ? *field_ptr(self, off) : NULL;
    return Py_NewRef(head != NULL ? head : Py_None);
}

static PyGetSetDef weakref_getset = {
    "__weakref__", get_weakref, NULL,
    "list of weak references to the object", NULL,
};

/* The class a __weakref__ descriptor belongs to, as for a native class: up to
   3.14 the class itself; 3.15 makes one __weakref__ descriptor of `object`
   for every class (gh-135228), so its errors name 'object'.  get_weakref
   reads the list at the offset of the instance's own type, whatever the
   descriptor's class. */
static PyTypeObject *
weakref_descr_owner(PyTypeObject *tp)
{
#if PY_VERSION_HEX >= 0x030F0000
    (void)tp;
    return &PyBaseObject_Type;
#else
    return tp;
#endif
}

static PyGetSetDef base_getset[] = {
    {"__class__", base_get_class, base_set_class,
     "the object's class; assignable between arena classes of one layout", NULL},
    {0},
};

static PyMethodDef base_methods[] = {
    {"__sizeof__", base_sizeof, METH_NOARGS,
     "Bytes of the object's block in its arena."},
    {"__reduce_ex__", base_reduce_ex, METH_O, "Helper for pickle and copy."},
    {0},
};

static PyType_Slot base_slots[] = {
    {Py_tp_new, base_new},
    {Py_tp_dealloc, oa_dealloc},
    {Py_tp_getset, base_getset},
    {Py_tp_methods, base_methods},
    {Py_tp_doc, "The C base of every objarena class."},
    {0, NULL},
};

static PyType_Spec base_spec = {
    .name = "objarena._ArenaBase",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = base_slots,
};

static PyType_Slot slot_base_slots[] = {
    {Py_tp_init, base_init},
    {Py_tp_repr, base_repr},
    {Py_tp_methods, slot_base_methods},
    {Py_tp_doc, "The C base of SlotObj."},
    {0, NULL},
};

static PyType_Spec slot_base_spec = {
    .name = "objarena._SlotBase",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = slot_base_slots,
};

/* ------------------------------------------------------------------------ */
/* ArenaType                                                                  */

/* Private names in __slots__ are mangled as CPython mangles them. */
static PyObject *
mangle(PyObject *classname, PyObject *ident)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(ident);
    if (n < 3 || PyUnicode_READ_CHAR(ident, 0) != '_'
        || PyUnicode_READ_CHAR(ident, 1) != '_'
        || (PyUnicode_READ_CHAR(ident, n - 1) == '_'
            && PyUnicode_READ_CHAR(ident, n - 2) == '_')) {
        return Py_NewRef(ident);
    }
    Py_ssize_t cn = PyUnicode_GET_LENGTH(classname), i = 0;
    while (i < cn && PyUnicode_READ_CHAR(classname, i) == '_') {
        i++;
    }
    if (i == cn) {
        return Py_NewRef(ident);
    }
    PyObject *stripped = PyUnicode_Substring(classname, i, cn);
    if (stripped == NULL) {
        return NULL;
    }
    PyObject *res = PyUnicode_FromFormat("_%U%U", stripped, ident);
    Py_DECREF(stripped);
    return res;
}

/* The flags of a type whose instance dict or weak-reference list CPython
   keeps itself (outside tp_basicsize, or in values after it). */
static unsigned long
managed_flags(void)
{
    unsigned long managed = 0;
#if PY_VERSION_HEX >= 0x030B0000
    managed |= Py_TPFLAGS_MANAGED_DICT;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    managed |= Py_TPFLAGS_MANAGED_WEAKREF;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    managed |= Py_TPFLAGS_INLINE_VALUES;
#endif
    return managed;
}

static int
has_instance_state(PyTypeObject *b)
{
    return b->tp_basicsize != (Py_ssize_t)sizeof(PyObject) || b->tp_itemsize != 0
           || b->tp_dictoffset != 0 || b->tp_weaklistoffset != 0
           || (b->tp_flags & managed_flags()) != 0;
}

/* A plain Python class: its instances carry a __dict__ and/or a weak-
   reference list, and nothing else (no __slots__ entries, no C fields), in
   every class of its MRO.  Its attributes have a home in the dynamic
   storage of an arena object. */
static int
is_plain_dict_class(PyTypeObject *b)
{
    PyObject *mro = b->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *c = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (c == &PyBaseObject_Type) {
            continue;
        }
        if (!(c->tp_flags & Py_TPFLAGS_HEAPTYPE) || c->tp_itemsize != 0) {
            return 0;
        }
        Py_ssize_t expect = (Py_ssize_t)sizeof(PyObject);
        if (c->tp_dictoffset > 0) {
            expect += (Py_ssize_t)sizeof(PyObject *);
        }
        if (c->tp_weaklistoffset > 0) {
            expect += (Py_ssize_t)sizeof(PyObject *);
        }
        if (c->tp_basicsize != expect) {
            return 0;
        }
    }
    return mro != NULL;
}

/* The arena class that introduced `t`'s layout. */
static PyTypeObject *
solid_base(PyTypeObject *t)
{
    while (t->tp_base != NULL && oa_is_arena_type(t->tp_base)
           && t->tp_base->tp_basicsize == t->tp_basicsize) {
        t = t->tp_base;
    }
    return t;
}

/* What meta_new learns before it calls type.__new__. */
typedef struct {
    OaTypeObject *layout;       /* the base whose layout is extended, or NULL */
    PyObject *arena;            /* the Arena, strong */
    PyObject *own;              /* list: this class's own (mangled) fields */
    PyObject *deferred;         /* list: those declared by annotation, whose
                                   descriptors wait (finish_pending_fields) */
    int add_weak;
    OaKind kind;
    int dynamic;                /* instances get dynamic attributes */
    int dict_mixin;             /* a plain Python base has a __dict__ */
    int mixin_weak;             /* ... or a weak-reference list */
    Py_ssize_t base_size;       /* where this class's own fields start */
    OaFieldType *own_types;     /* own_types[k]: the type of own[k] */
    PyObject *defaults;         /* dict: own field -> default, or NULL */
} ClassPlan;

static int
check_bases(OaState *st, PyObject *name, PyObject *bases, ClassPlan *plan)
{
    Py_ssize_t nb = PyTuple_GET_SIZE(bases);
    int has_arena_base = 0;
    for (Py_ssize_t i = 0; i < nb; i++) {
        PyObject *b = PyTuple_GET_ITEM(bases, i);
        if (!PyType_Check(b)) {
            continue;           /* type.__new__ says what is wrong */
        }
        PyTypeObject *bt = (PyTypeObject *)b;
        if (oa_is_arena_type(bt)) {
            has_arena_base = 1;
            if (plan->layout == NULL
                || bt->tp_basicsize > ((PyTypeObject *)plan->layout)->tp_basicsize) {
                plan->layout = (OaTypeObject *)bt;
            }
        }
        else if (bt == st->dyn_base) {
            plan->dynamic = 1;      /* a dynamic class recreated from its bases */
        }
        else if (bt == st->base_type || bt == st->slot_base || bt == st->obj_base) {
            if (!st->creating_root) {
                PyErr_SetString(PyExc_TypeError,
                                "derive from objarena.SlotObj or objarena.Obj, "
                                "not from their C bases");
                return -1;
            }
            plan->kind = bt == st->obj_base ? OA_KIND_OBJ : OA_KIND_SLOT;
            plan->base_size = bt->tp_basicsize;
        }
        else if (is_plain_dict_class(bt) && has_instance_state(bt)) {
            /* Its __dict__ goes to the dynamic storage, its weak-reference
               list to a slot of the arena object. */
            plan->dict_mixin = 1;
            plan->mixin_weak |= bt->tp_weaklistoffset != 0;
        }
        else if (has_instance_state(bt)) {
            PyErr_Format(PyExc_TypeError,
                         "class %U cannot derive from '%.100s': its instances "
                         "carry C-level state (fields of a C type, or __slots__) "
                         "that has no place in an arena object", name, bt->tp_name);
            return -1;
        }
    }
    if (!has_arena_base && !st->creating_root) {
        PyErr_Format(PyExc_TypeError,
                     "class %U: ArenaType classes must derive from objarena.SlotObj "
                     "or objarena.Obj", name);
        return -1;
    }
    if (plan->layout != NULL) {
        plan->kind = plan->layout->kind;
        plan->base_size = ((PyTypeObject *)plan->layout)->tp_basicsize;
        plan->dynamic |= plan->layout->dynamic;
    }
    plan->dynamic |= plan->kind == OA_KIND_OBJ;
    for (Py_ssize_t i = 0; i < nb; i++) {
        PyObject *b = PyTuple_GET_ITEM(bases, i);
        if (!PyType_Check(b) || !oa_is_arena_type((PyTypeObject *)b)) {
            continue;
        }
        if (((OaTypeObject *)b)->kind != plan->kind) {
            PyErr_Format(PyExc_TypeError,
                         "class %U cannot derive from both SlotObj and Obj classes",
                         name);
            return -1;
        }
        PyTypeObject *solid = solid_base((PyTypeObject *)b);
        if (!PyType_IsSubtype((PyTypeObject *)plan->layout, solid)) {
            PyErr_Format(PyExc_TypeError,
                         "multiple bases have instance lay-out conflict: "
                         "'%.100s' and '%.100s' both add fields",
                         ((PyTypeObject *)plan->layout)->tp_name,
                         ((PyTypeObject *)b)->tp_name);
            return -1;
        }
    }
    return 0;
}

/* Where a class's own fields were declared: their names in messages. */
typedef enum { OA_FROM_SLOTS, OA_FROM_ANNOTATIONS } FieldSource;

static int
check_slots(PyObject *name, PyObject *ns, PyObject *slots, ClassPlan *plan,
            FieldSource source)
{
    const char *where = source == OA_FROM_SLOTS ? "__slots__" : "__annotations__";
    PyObject *seq = PyUnicode_Check(slots) ? PyTuple_Pack(1, slots)
                                           : PySequence_Tuple(slots);
    if (seq == NULL) {
        return -1;
    }
    PyObject *base_fields = plan->layout != NULL ? plan->layout->names : NULL;
    int base_weak = plan->layout != NULL
                    && ((PyTypeObject *)plan->layout)->tp_weaklistoffset != 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError,
                         "%s items must be strings, not '%.200s'",
                         where, Py_TYPE(item)->tp_name);
            goto error;
        }
        if (!PyUnicode_IsIdentifier(item)) {
            PyErr_Format(PyExc_TypeError,
                         "%s must be identifiers, not %R", where, item);
            goto error;
        }
        if (PyUnicode_CompareWithASCIIString(item, "__dict__") == 0) {
            if (plan->kind == OA_KIND_OBJ) {
                PyErr_SetString(PyExc_TypeError,
                                "__dict__ slot disallowed: we already got one");
            }
            else {
                PyErr_Format(PyExc_TypeError,
                             "class %U: '__dict__' cannot be a SlotObj field "
                             "(derive from Obj for dynamic attributes)", name);
            }
            goto error;
        }
        if (PyUnicode_CompareWithASCIIString(item, "__weakref__") == 0) {
            if (plan->add_weak || base_weak) {
                PyErr_SetString(PyExc_TypeError,
                                "__weakref__ slot disallowed: we already got one");
                goto error;
            }
            plan->add_weak = 1;
            continue;
        }
        PyObject *mangled = mangle(name, item);
        if (mangled == NULL) {
            goto error;
        }
        /* A class variable of the same name, looked up with the name as
           given, as type.__new__ does: a str subclass's __hash__/__eq__ run
           here as they do for a native class (and raise as they do there). */
        int clash = PyDict_Contains(ns, mangled);
        /* Fields are exact, interned str, as a native class's member names
           are: a str subclass's __hash__/__eq__ (user code) then never runs
           when the class looks its fields up (keywords, the class dict,
           duplicates), and callers' literal names match by identity. */
        PyObject *field = clash < 0 ? NULL
            : PyUnicode_CheckExact(mangled)
            ? Py_NewRef(mangled)
            : PyUnicode_Substring(mangled, 0, PyUnicode_GET_LENGTH(mangled));
        Py_DECREF(mangled);
        if (field == NULL) {
            goto error;
        }
        PyUnicode_InternInPlace(&field);
        int dup = PySequence_Contains(plan->own, field);
        if (dup > 0) {
            PyErr_Format(PyExc_TypeError,
                         "class %U: field %R appears twice in __slots__", name, field);
            Py_DECREF(field);
            goto error;
        }
        /* A base's field named again in __slots__ (as dataclasses and attrs
           do when they recreate a class) is that field: native classes
           accept it too, with a second slot that shadows the first.  By
           annotation it is an error, as it would declare it anew. */
        int inherited = dup < 0 || base_fields == NULL ? dup
                        : PySequence_Contains(base_fields, field);
        if (inherited > 0 && source != OA_FROM_SLOTS) {
            PyErr_Format(PyExc_TypeError,
                         "class %U: field %R is already defined by a base class",
                         name, field);
            inherited = -1;
        }
        if (inherited != 0) {
            Py_DECREF(field);
            if (inherited < 0) {
                goto error;
            }
            continue;
        }
        /* An annotated field's value in the body is its default
           (take_defaults); a __slots__ entry conflicts, as natively.  An
           annotated field's descriptor waits (finish_pending_fields). */
        if (clash > 0 && source == OA_FROM_SLOTS) {
            PyErr_Format(PyExc_ValueError,
                         "%R in __slots__ conflicts with class variable", field);
            Py_DECREF(field);
            goto error;
        }
        if (clash < 0 || (source == OA_FROM_ANNOTATIONS
                          && PyList_Append(plan->deferred, field) < 0)) {
            Py_DECREF(field);
            goto error;
        }
        if (PyList_Append(plan->own, field) < 0) {
            Py_DECREF(field);
            goto error;
        }
        Py_DECREF(field);
    }
    Py_DECREF(seq);
    return 0;

error:
    Py_DECREF(seq);
    return -1;
}

/* Does the annotation string `s` name `marker` ("ClassVar"), alone, with
   arguments ("ClassVar[...]"), or behind a module name
   ("typing.ClassVar[int]")?  1, 0, or -1. */
static int
string_names(PyObject *s, const char *marker)
{
    const size_t k = strlen(marker);
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL) {
        return -1;
    }
    const char *end = memchr(p, '[', (size_t)n);
    if (end == NULL) {
        end = p + n;
    }
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    size_t len = (size_t)(end - p);
    if (len < k || memcmp(end - k, marker, k) != 0) {
        return 0;
    }
    return len == k || end[-(Py_ssize_t)k - 1] == '.';
}

/* Attribute `attr` of module `modname` if that module is imported (a new
   reference), else NULL, with an exception only on error. */
static PyObject *
imported_attr(const char *modname, const char *attr)
{
    PyObject *name = PyUnicode_FromString(modname);
    if (name == NULL) {
        return NULL;
    }
    PyObject *mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_GetAttrString(mod, attr);
    Py_DECREF(mod);
    return res;
}

/* Is `ann` (an annotation object) `marker` or marker[...]?  1, 0, -1. */
static int
is_marker(PyObject *ann, PyObject *marker)
{
    if (ann == marker) {
        return 1;
    }
    if (PyType_Check(ann)) {
        return 0;
    }
    if (PyType_Check(marker) && PyObject_TypeCheck(ann, (PyTypeObject *)marker)) {
        return 1;               /* dataclasses.InitVar[int] is an InitVar */
    }
    PyObject *origin = PyObject_GetAttrString(ann, "__origin__");
    if (origin == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    int r = origin == marker;
    Py_DECREF(origin);
    return r;
}

/* An annotation that declares no field: typing.ClassVar (a class
   attribute), and dataclasses' InitVar (an __init__ argument) and KW_ONLY
   (a marker), as objects or as strings (`from __future__ import
   annotations`).  1, 0, or -1 with an exception set. */
static int
is_not_a_field(PyObject *ann)
{
    static const struct { const char *module, *name; } markers[] = {
        {"typing", "ClassVar"}, {"dataclasses", "InitVar"}, {"dataclasses", "KW_ONLY"},
    };
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
        int r;
        if (PyUnicode_Check(ann)) {
            r = string_names(ann, markers[i].name);
        }
        else {
            /* Without its module imported, nothing can be the marker. */
            PyObject *marker = imported_attr(markers[i].module, markers[i].name);
            if (marker == NULL) {
                if (PyErr_Occurred()) {
                    return -1;
                }
                continue;
            }
            r = is_marker(ann, marker);
            Py_DECREF(marker);
        }
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

/* The class body's annotations (a new reference), or NULL without an
   exception if it has none.  CPython 3.10 to 3.13 store them eagerly in the
   namespace; 3.14 stores a function that computes them (PEP 649). */
static PyObject *
class_annotations(PyObject *ns)
{
    PyObject *key = PyUnicode_FromString("__annotations__");
    if (key == NULL) {
        return NULL;
    }
    PyObject *ann = Py_XNewRef(PyDict_GetItemWithError(ns, key));
    Py_DECREF(key);
#if PY_VERSION_HEX >= 0x030E0000
    if (ann == NULL && !PyErr_Occurred()) {
        PyObject *lib = PyImport_ImportModule("annotationlib");
        if (lib == NULL) {
            return NULL;
        }
        PyObject *format = NULL;
        PyObject *annotate = PyObject_CallMethod(
            lib, "get_annotate_from_class_namespace", "O", ns);
        if (annotate != NULL && annotate != Py_None) {
            format = PyObject_GetAttrString(lib, "Format");
            if (format != NULL) {
                Py_SETREF(format, PyObject_GetAttrString(format, "FORWARDREF"));
            }
            if (format != NULL) {
                ann = PyObject_CallMethod(lib, "call_annotate_function", "OO",
                                          annotate, format);
            }
        }
        Py_XDECREF(format);
        Py_XDECREF(annotate);
        Py_DECREF(lib);
    }
#endif
    return ann;
}

/* The fields of a SlotObj class body without __slots__: the names it
   annotates, in order, but those is_not_a_field() leaves out (`id: int`
   declares the field `id`).  0 with a new tuple in *out, or with NULL there if the body has no
   annotations; -1 with an exception. */
static int
annotated_fields(PyObject *name, PyObject *ann, PyObject **out)
{
    *out = NULL;
    if (ann == NULL) {
        return 0;
    }
    PyObject *items = NULL, *fields = NULL, *result = NULL;
    if (!PyDict_Check(ann)) {
        PyErr_Format(PyExc_TypeError,
                     "class %U: __annotations__ must be a dict, not %.100s",
                     name, Py_TYPE(ann)->tp_name);
        goto done;
    }
    /* A copy: an annotation's __origin__ may run code that changes the dict. */
    items = PyDict_Items(ann);
    if (items == NULL) {
        goto done;
    }
    fields = PyList_New(0);
    if (fields == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        int cv = is_not_a_field(PyTuple_GET_ITEM(item, 1));
        if (cv < 0) {
            goto done;
        }
        if (!cv && PyList_Append(fields, PyTuple_GET_ITEM(item, 0)) < 0) {
            goto done;
        }
    }
    result = PyList_AsTuple(fields);
done:
    Py_XDECREF(fields);
    Py_XDECREF(items);
    *out = result;
    return result != NULL ? 0 : -1;
}

/* The field type a string annotation names ("f64", "objarena.f64",
   "oa.u8"), as `from __future__ import annotations` leaves them: the name, or
   a dotted path to it, looked up in the class body, the globals of the class
   statement, then those of the class's module, must lead to one of the
   markers (as dataclasses find ClassVar in a string).  Anything else is
   an object field.  OA_FT_OBJECT, a field type, or -1 with an exception. */
static int
field_type_of_string(OaState *st, PyObject *ns, PyObject *s)
{
    PyObject *parts = NULL, *obj = NULL, *stripped = PyObject_CallMethod(s, "strip", NULL);
    int result = -1;
    if (stripped == NULL) {
        return -1;
    }
    PyObject *dot = PyUnicode_FromString(".");
    if (dot == NULL) {
        goto done;
    }
    parts = PyUnicode_Split(stripped, dot, -1);
    Py_DECREF(dot);
    if (parts == NULL) {
        goto done;
    }
    Py_ssize_t n = PyList_GET_SIZE(parts);
    /* Cheap first: the last name must be a marker's. */
    PyObject *last = PyList_GET_ITEM(parts, n - 1);
    int known = 0;
    for (int k = OA_FT_F64; k < OA_FT_COUNT && !known; k++) {
        known = PyUnicode_CompareWithASCIIString(last, oa_field_type_name((OaFieldType)k)) == 0;
    }
    if (!known) {
        result = OA_FT_OBJECT;
        goto done;
    }
    PyObject *first = PyList_GET_ITEM(parts, 0);
    obj = Py_XNewRef(PyDict_GetItemWithError(ns, first));
    /* The globals the class statement runs in (those of the code that calls
       the metaclass), then those of the module the class names. */
    PyObject *globals = PyEval_GetGlobals();
    if (obj == NULL && !PyErr_Occurred() && globals != NULL) {
        obj = Py_XNewRef(PyDict_GetItemWithError(globals, first));
    }
    if (obj == NULL && !PyErr_Occurred()) {
        PyObject *modname = PyDict_GetItemString(ns, "__module__");
        PyObject *mod = modname != NULL && PyUnicode_Check(modname)
                        ? PyImport_GetModule(modname) : NULL;
        if (mod != NULL) {
            PyObject *mglobals = PyModule_Check(mod) ? PyModule_GetDict(mod) : NULL;
            obj = mglobals != NULL ? Py_XNewRef(PyDict_GetItemWithError(mglobals, first))
                                   : NULL;
            Py_DECREF(mod);
        }
    }
    for (Py_ssize_t i = 1; obj != NULL && i < n; i++) {
        PyObject *next = PyObject_GetAttr(obj, PyList_GET_ITEM(parts, i));
        Py_SETREF(obj, next);
    }
    if (obj == NULL) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_AttributeError)) {
            goto done;
        }
        PyErr_Clear();
        result = OA_FT_OBJECT;
        goto done;
    }
    result = (int)oa_field_type_of(st, obj);
done:
    Py_XDECREF(obj);
    Py_XDECREF(parts);
    Py_DECREF(stripped);
    return result;
}

/* The type of each of the class's own fields, from its annotation (a
   marker, or a string naming one; `__slots__ = ("t",)` with `t: f64` gives
   the slot t that type).  Only SlotObj classes take typed fields. */
static int
field_types(OaState *st, PyObject *name, PyObject *ns, PyObject *ann, ClassPlan *plan)
{
    Py_ssize_t nown = PyList_GET_SIZE(plan->own);
    plan->own_types = PyMem_Calloc((size_t)nown + 1, sizeof(OaFieldType));
    if (plan->own_types == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (ann == NULL || !PyDict_Check(ann)) {
        return 0;
    }
    /* The annotations by exact str name: fields are exact str, and a key that
       is a str subclass must not have its __eq__/__hash__ (user code) run by
       a lookup, as the fields' own look-ups never run it. */
    PyObject *by_name = PyDict_New();
    if (by_name == NULL) {
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(ann, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            continue;
        }
        PyObject *exact = PyUnicode_CheckExact(key) ? Py_NewRef(key)
            : PyUnicode_Substring(key, 0, PyUnicode_GET_LENGTH(key));
        if (exact == NULL || PyDict_SetItem(by_name, exact, value) < 0) {
            Py_XDECREF(exact);
            Py_DECREF(by_name);
            return -1;
        }
        Py_DECREF(exact);
    }
    for (Py_ssize_t k = 0; k < nown; k++) {
        PyObject *field = PyList_GET_ITEM(plan->own, k);
        PyObject *a = Py_XNewRef(PyDict_GetItemWithError(by_name, field));
        if (a == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(by_name);
                return -1;
            }
            continue;
        }
        int type = PyUnicode_Check(a) ? field_type_of_string(st, ns, a)
                                      : (int)oa_field_type_of(st, a);
        Py_DECREF(a);
        if (type < 0) {
            Py_DECREF(by_name);
            return -1;
        }
        if (type != OA_FT_OBJECT && plan->kind != OA_KIND_SLOT) {
            PyErr_Format(PyExc_TypeError,
                         "class %U: typed field %R needs a SlotObj class "
                         "(Obj classes hold object fields only)", name, field);
            Py_DECREF(by_name);
            return -1;
        }
        plan->own_types[k] = (OaFieldType)type;
    }
    Py_DECREF(by_name);
    return 0;
}

/* Typed fields get their descriptors at once (their defaults are converted
   and checked at the class statement): only object fields declared by
   annotation wait for theirs. */
static int
keep_typed_fields(ClassPlan *plan)
{
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(plan->own); k++) {
        if (plan->own_types[k] == OA_FT_OBJECT) {
            continue;
        }
        PyObject *f = PyList_GET_ITEM(plan->own, k);
        Py_ssize_t i = 0, n = PyList_GET_SIZE(plan->deferred);
        while (i < n && PyList_GET_ITEM(plan->deferred, i) != f) {
            i++;
        }
        if (i < n && PySequence_DelItem(plan->deferred, i) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Defaults, dataclass-style: a field declared by annotation takes the value
   the class body gives it (`value: f64 = 0.0`) as its default; an object
   field's value stays a class attribute until the class is first used
   (dataclasses and attrs read it there), when finish_pending_fields() puts
   the field's descriptor in its place; a typed field's descriptor takes it
   at once.  A mutable default (a value whose type is unhashable: list, dict,
   set...) is a ValueError, as for a dataclass: every instance would share
   it.  A typed field's default is converted now, so that a bad one fails
   at the class statement, and kept as the number it stores. */
static int
take_defaults(PyObject *name, PyObject *ns2, ClassPlan *plan)
{
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(plan->own); k++) {
        PyObject *field = PyList_GET_ITEM(plan->own, k);
        PyObject *value = Py_XNewRef(PyDict_GetItemWithError(ns2, field));
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        OaFieldType type = plan->own_types[k];
        if (type == OA_FT_OBJECT && Py_TYPE(value)->tp_hash == PyObject_HashNotImplemented) {
            PyErr_Format(PyExc_ValueError,
                         "class %U: mutable default %R for field %R is not allowed "
                         "(every instance would share it)",
                         name, (PyObject *)Py_TYPE(value), field);
            Py_DECREF(value);
            return -1;
        }
        if (type != OA_FT_OBJECT) {
            char scratch[8];
            int r = oa_typed_set(scratch, type, value);
            Py_SETREF(value, r < 0 ? NULL : oa_typed_get(scratch, type));
            if (value == NULL) {
                return -1;
            }
        }
        if (plan->defaults == NULL && (plan->defaults = PyDict_New()) == NULL) {
            Py_DECREF(value);
            return -1;
        }
        int r = PyDict_SetItem(plan->defaults, field, value);
        Py_DECREF(value);
        /* A typed field's descriptor takes the value's place at once. */
        if (r < 0 || (type != OA_FT_OBJECT && PyDict_DelItem(ns2, field) < 0)) {
            return -1;
        }
    }
    return 0;
}

/* The most derived metaclass among `metatype` and the bases' (as type.__new__
   computes it), so that a derived metaclass's __new__ runs before ours. */
static PyTypeObject *
winning_metatype(PyTypeObject *metatype, PyObject *bases)
{
    PyTypeObject *winner = metatype;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bases); i++) {
        PyTypeObject *t = Py_TYPE(PyTuple_GET_ITEM(bases, i));
        if (PyType_IsSubtype(winner, t)) {
            continue;
        }
        if (PyType_IsSubtype(t, winner)) {
            winner = t;
            continue;
        }
        PyErr_SetString(PyExc_TypeError,
                        "metaclass conflict: the metaclass of a derived class "
                        "must be a (non-strict) subclass of the metaclasses of "
                        "all its bases");
        return NULL;
    }
    return winner;
}

/* Is the arena class an ABC, that is, did abc's _abc_init run for it
   (ABCMeta.__new__, or meta_new for a class with an ABC among its bases)?
   _abc_init sets the class's _abc_impl, which meta_setattro sees. */
static inline int
meta_is_abc(OaTypeObject *t)
{
    return t->abc;
}

static int
meta_setattro(PyObject *cls, PyObject *name, PyObject *value)
{
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "_abc_impl") == 0) {
        ((OaTypeObject *)cls)->abc = value != NULL;
    }
    return PyType_Type.tp_setattro(cls, name, value);
}

static OaState *
meta_state(PyObject *cls)
{
    PyObject *mod = ((OaTypeObject *)cls)->module;
    return mod != NULL ? oa_state_of_module(mod) : oa_state_from_type(Py_TYPE(cls));
}

/* isinstance() and issubclass() against an arena class: an ABC answers as
   ABCMeta does (registered classes, __subclasshook__); any other class as
   type does, a real instance first, without a call into Python. */
static PyObject *
meta_instancecheck(PyObject *cls, PyObject *inst)
{
    int abc = meta_is_abc((OaTypeObject *)cls);
    if (!abc && PyObject_TypeCheck(inst, (PyTypeObject *)cls)) {
        Py_RETURN_TRUE;
    }
    OaState *st = meta_state(cls);
    if (st == NULL) {
        return NULL;
    }
    if (abc) {
        PyObject *args[2] = {cls, inst};
        return PyObject_Vectorcall(st->abc_instancecheck, args, 2, NULL);
    }
    /* type's rule: an object whose __class__ claims another class (a proxy)
       is an instance of what that class derives from. */
    PyObject *icls = PyObject_GetAttr(inst, st->str_class);
    if (icls == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    int r = icls != (PyObject *)Py_TYPE(inst) && PyType_Check(icls)
            && PyType_IsSubtype((PyTypeObject *)icls, (PyTypeObject *)cls);
    Py_DECREF(icls);
    return PyBool_FromLong(r);
}

static PyObject *
meta_subclasscheck(PyObject *cls, PyObject *sub)
{
    int abc = meta_is_abc((OaTypeObject *)cls);
    if (!abc && PyType_Check(sub)) {
        return PyBool_FromLong(PyType_IsSubtype((PyTypeObject *)sub, (PyTypeObject *)cls));
    }
    OaState *st = meta_state(cls);
    if (st == NULL) {
        return NULL;
    }
    PyObject *args[2] = {cls, sub};
    return PyObject_Vectorcall(abc ? st->abc_subclasscheck : st->type_subclasscheck,
                               args, 2, NULL);
}

/* A class with an ABC among its bases, or made by a metaclass of the
   user's (a subclass of ArenaType, written to combine it with ABCMeta before
   ArenaType was one), is an ABC: abc's _abc_init computes its abstract
   methods and gives it a registry, as ABCMeta.__new__ would. */
static int
init_abc_if_needed(OaState *st, PyTypeObject *tp)
{
    if (Py_TYPE(tp) != st->meta_type) {
        PyObject *r = PyObject_CallOneArg(st->abc_init, (PyObject *)tp);
        Py_XDECREF(r);
        return r != NULL ? 0 : -1;
    }
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 1; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *b = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (b->tp_dict != NULL && PyDict_GetItemString(b->tp_dict, "_abc_impl") != NULL) {
            PyObject *r = PyObject_CallOneArg(st->abc_init, (PyObject *)tp);
            Py_XDECREF(r);
            return r != NULL ? 0 : -1;      /* meta_setattro marked it */
        }
    }
    return 0;
}

static PyMethodDef meta_methods[] = {
    {"__instancecheck__", meta_instancecheck, METH_O,
     "isinstance(): as ABCMeta for an ABC, else as type."},
    {"__subclasscheck__", meta_subclasscheck, METH_O,
     "issubclass(): as ABCMeta for an ABC, else as type."},
    {0},
};

static int install_field_descr(PyTypeObject *tp, PyObject *dict, PyObject *name,
                               PyObject *descr);
static int check_default_order(OaTypeObject *t, int strict);

/* The descriptors that check_slots() held back for the fields declared by
   annotation go in once the class is used (its first instance, a subclass,
   __class__ assignment, its signature): whatever the class dict holds then
   under a field's name is its default (dataclasses may have replaced a
   field() by its default, attrs deleted it). */
int
oa_finish_pending_fields(OaTypeObject *t)
{
    PyTypeObject *tp = (PyTypeObject *)t;
    OaTypeObject *layout = NULL;
    for (PyTypeObject *b = tp->tp_base; b != NULL && layout == NULL; b = b->tp_base) {
        if (oa_is_arena_type(b)) {
            layout = (OaTypeObject *)b;
        }
    }
    OaState *st = oa_state_from_type(tp);
    if (st == NULL) {
        return -1;
    }
    Py_ssize_t nbase = layout != NULL ? nall(layout) : 0;
    Py_ssize_t m = 0;   /* own object fields: t->members[m] */
    for (Py_ssize_t i = nbase; i < nall(t); i++) {
        PyObject *f = PyTuple_GET_ITEM(t->names, i);
        OaField field = t->all[i];
        int own_object = field.type == OA_FT_OBJECT;
        PyMemberDef *def = own_object ? &t->members[m++] : NULL;
        /* Exact str keys: the lookup runs no user code. */
        PyObject *cur = Py_XNewRef(PyDict_GetItemWithError(tp->tp_dict, f));
        if (cur == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (cur != NULL && ((own_object && Py_IS_TYPE(cur, &PyMemberDescr_Type)
                             && ((PyMemberDescrObject *)cur)->d_member == def)
                            || (!own_object && Py_IS_TYPE(cur, st->typed_member_type)))) {
            Py_DECREF(cur);
            continue;           /* its descriptor is in */
        }
        if (cur != NULL && !own_object) {
            char scratch[8];
            int r = oa_typed_set(scratch, field.type, cur);
            Py_SETREF(cur, r < 0 ? NULL : oa_typed_get(scratch, field.type));
            if (cur == NULL) {
                return -1;
            }
        }
        if (cur != NULL && t->defaults == NULL) {
            t->defaults = PyMem_Calloc((size_t)nall(t) + 1, sizeof(PyObject *));
            if (t->defaults == NULL) {
                Py_DECREF(cur);
                PyErr_NoMemory();
                return -1;
            }
        }
        if (t->defaults != NULL) {
            Py_XSETREF(t->defaults[i], cur);       /* its reference, or none */
        }
        PyObject *descr = own_object ? PyDescr_NewMember(tp, def)
                                     : oa_typed_member_new(st, tp, f, field);
        if (descr == NULL) {
            return -1;
        }
        int r = install_field_descr(tp, tp->tp_dict, f, descr);
        Py_DECREF(descr);
        if (r < 0) {
            return -1;
        }
    }
    t->pending = 0;
    PyType_Modified(tp);
    return check_default_order(t, tp->tp_init == base_init);
}

/* Classes of the bases' MROs still waiting for their descriptors finish:
   a subclass's instances need them. */
static int
finish_pending_bases(PyObject *bases)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bases); i++) {
        PyObject *b = PyTuple_GET_ITEM(bases, i);
        PyObject *mro = PyType_Check(b) ? ((PyTypeObject *)b)->tp_mro : NULL;
        for (Py_ssize_t j = 0; mro != NULL && j < PyTuple_GET_SIZE(mro); j++) {
            PyTypeObject *c = (PyTypeObject *)PyTuple_GET_ITEM(mro, j);
            if (oa_is_arena_type(c) && ((OaTypeObject *)c)->pending
                && oa_finish_pending_fields((OaTypeObject *)c) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Turn the type that type.__new__ made into an arena type. */

/* Is `name` a data descriptor of the metatype or one of its bases (type's
   __name__, __qualname__, __bases__, __module__, object's __class__ ...)?
   1, 0, or -1 with an exception.  `name` is an exact str (check_slots). */
static int
meta_data_descr(PyTypeObject *meta, PyObject *name)
{
    PyObject *mro = meta->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *b = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
#if PY_VERSION_HEX >= 0x030C0000
        /* 3.12+: a static builtin type's dict is per interpreter, and
           tp_dict is NULL; PyType_GetDict (3.12) is the public way in. */
        PyObject *dict = PyType_GetDict(b);
#else
        PyObject *dict = Py_XNewRef(b->tp_dict);
#endif
        if (dict == NULL) {
            continue;
        }
        PyObject *v = PyDict_GetItemWithError(dict, name);   /* borrowed */
        int data = v != NULL && Py_TYPE(v)->tp_descr_set != NULL;
        Py_DECREF(dict);        /* the type still holds it, and so v */
        if (v != NULL) {
            return data;
        }
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

/* A field's member descriptor goes into the class dict, as a native class
   statement puts it there.  A dunder field name (`__slots__ = ("__init__",)`)
   may name a type slot: it goes in through type.__setattr__ (type's own, not
   a metaclass's), which updates that slot as a class statement would have
   (`C()` then fails as it does for a native class).  type.__new__ ran with
   no slots, so nothing else can have set it.  Not where the metatype has a
   data descriptor of that name (`__name__`, `__qualname__`, `__class__`...):
   type.__setattr__ would hand the member descriptor to it (rename the class,
   change its bases); no slot has such a name, and a native class simply has
   the member in its dict.  `__module__` is in the dict already, put there
   by type.__new__, and a native class keeps it: its members only take names
   that are free. */
static int
install_field_descr(PyTypeObject *tp, PyObject *dict, PyObject *name, PyObject *descr)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(name);
    if (len > 4 && PyUnicode_ReadChar(name, 0) == '_' && PyUnicode_ReadChar(name, 1) == '_'
        && PyUnicode_ReadChar(name, len - 1) == '_' && PyUnicode_ReadChar(name, len - 2) == '_') {
        if (PyUnicode_CompareWithASCIIString(name, "__module__") == 0) {
            return PyDict_SetDefault(dict, name, descr) != NULL ? 0 : -1;
        }
        int meta = meta_data_descr(Py_TYPE(tp), name);
        if (meta < 0) {
            return -1;
        }
        if (!meta) {
            return PyType_Type.tp_setattro((PyObject *)tp, name, descr);
        }
    }
    return PyDict_SetItem(dict, name, descr);
}

/* As for a dataclass: once a field has a default, every later one needs one
   (else the generated __init__ would have no valid signature); `strict` 0
   only finds the last required field.  A class whose fields wait for their
   descriptors is checked when it is first used, and only if it still uses
   the generated __init__ then (dataclasses and attrs order fields their own
   way: kw_only, init=False). */
static int
check_default_order(OaTypeObject *t, int strict)
{
    t->last_required = -1;
    int seen_default = 0;
    for (Py_ssize_t i = 0; i < nall(t); i++) {
        int has = t->defaults != NULL && t->defaults[i] != NULL;
        if (strict && seen_default && !has) {
            PyErr_Format(PyExc_TypeError,
                         "class %U: non-default argument %R follows default argument",
                         ((PyHeapTypeObject *)t)->ht_name, PyTuple_GET_ITEM(t->names, i));
            return -1;
        }
        seen_default |= has;
        if (is_required(t, i)) {
            t->last_required = i;
        }
    }
    return 0;
}

static void
clear_defaults(OaTypeObject *t)
{
    if (t->defaults != NULL && t->names != NULL) {
        for (Py_ssize_t i = 0; i < nall(t); i++) {
            Py_CLEAR(t->defaults[i]);
        }
    }
}

/* The fields of `t`: its base's, then its own, in declaration order
   (names, all, defaults, field_index); the object fields among them (fields,
   offsets, members) -- every own object field in order, the weak-reference
   slot if asked for, then the own typed fields by decreasing size, so that
   each sits at its natural alignment.  Returns the size of the object. */
static Py_ssize_t
lay_out_fields(OaTypeObject *t, ClassPlan *plan)
{
    PyTypeObject *tp = (PyTypeObject *)t;
    OaTypeObject *layout = plan->layout;
    Py_ssize_t nbase_obj = layout != NULL ? nobject(layout) : 0;
    Py_ssize_t nbase = layout != NULL ? nall(layout) : 0;
    Py_ssize_t nown = PyList_GET_SIZE(plan->own), nown_obj = 0;
    for (Py_ssize_t k = 0; k < nown; k++) {
        nown_obj += plan->own_types[k] == OA_FT_OBJECT;
    }
    Py_ssize_t n = nbase + nown;
    t->offsets = PyMem_Calloc((size_t)(nbase_obj + nown_obj) + 1, sizeof(Py_ssize_t));
    t->members = PyMem_Calloc((size_t)nown_obj + 1, sizeof(PyMemberDef));
    t->all = PyMem_Calloc((size_t)n + 1, sizeof(OaField));
    int any_default = plan->defaults != NULL || (layout != NULL && layout->defaults != NULL);
    t->defaults = any_default ? PyMem_Calloc((size_t)n + 1, sizeof(PyObject *)) : NULL;
    t->field_index = PyDict_New();
    t->fields = PyTuple_New(nbase_obj + nown_obj);
    t->names = PyTuple_New(n);
    if (t->offsets == NULL || t->members == NULL || t->all == NULL
        || (any_default && t->defaults == NULL)) {
        PyErr_NoMemory();
        return -1;
    }
    if (t->field_index == NULL || t->fields == NULL || t->names == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < nbase_obj; i++) {
        PyTuple_SET_ITEM(t->fields, i, Py_NewRef(PyTuple_GET_ITEM(layout->fields, i)));
        t->offsets[i] = layout->offsets[i];
    }
    for (Py_ssize_t i = 0; i < nbase; i++) {
        PyTuple_SET_ITEM(t->names, i, Py_NewRef(PyTuple_GET_ITEM(layout->names, i)));
        t->all[i] = layout->all[i];
        if (layout->defaults != NULL) {
            t->defaults[i] = Py_XNewRef(layout->defaults[i]);
        }
    }
    Py_ssize_t offset = plan->base_size, j = nbase_obj, m = 0;
    for (Py_ssize_t k = 0; k < nown; k++) {
        PyObject *f = PyList_GET_ITEM(plan->own, k);
        PyTuple_SET_ITEM(t->names, nbase + k, Py_NewRef(f));
        t->all[nbase + k].type = plan->own_types[k];
        if (plan->defaults != NULL) {
            t->defaults[nbase + k] = Py_XNewRef(PyDict_GetItemWithError(plan->defaults, f));
            if (t->defaults[nbase + k] == NULL && PyErr_Occurred()) {
                return -1;
            }
        }
        if (plan->own_types[k] != OA_FT_OBJECT) {
            continue;
        }
        const char *utf8 = PyUnicode_AsUTF8(f);   /* kept alive by t->names */
        if (utf8 == NULL) {
            return -1;
        }
        PyTuple_SET_ITEM(t->fields, j, Py_NewRef(f));
        t->offsets[j++] = offset;
        t->all[nbase + k].offset = offset;
        t->members[m].name = utf8;
        t->members[m].type = OA_T_OBJECT_EX;
        t->members[m++].offset = offset;
        offset += (Py_ssize_t)sizeof(PyObject *);
    }
    if (plan->mixin_weak && !plan->add_weak
        && (layout == NULL || ((PyTypeObject *)layout)->tp_weaklistoffset == 0)) {
        plan->add_weak = 1;
    }
    if (plan->add_weak) {
        tp->tp_weaklistoffset = offset;
        offset += (Py_ssize_t)sizeof(PyObject *);
    }
    else {
        tp->tp_weaklistoffset = layout != NULL ? ((PyTypeObject *)layout)->tp_weaklistoffset : 0;
    }
    for (Py_ssize_t size = 8; size >= 1; size /= 2) {
        for (Py_ssize_t k = 0; k < nown; k++) {
            OaFieldType type = plan->own_types[k];
            if (type != OA_FT_OBJECT && oa_field_type_size(type) == size) {
                t->all[nbase + k].offset = offset;
                offset += size;
            }
        }
    }
    offset = (offset + 7) & ~(Py_ssize_t)7;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *idx = PyLong_FromSsize_t(i);
        if (idx == NULL) {
            return -1;
        }
        int r = PyDict_SetItem(t->field_index, PyTuple_GET_ITEM(t->names, i), idx);
        Py_DECREF(idx);
        if (r < 0) {
            return -1;
        }
    }
    if (check_default_order(t, PyList_GET_SIZE(plan->deferred) == 0
                                   && ((PyTypeObject *)t)->tp_init == base_init) < 0) {
        return -1;
    }
    t->ntyped = n - nobject(t);
    /* Of any size: beyond OA_SMALL_MAX an instance gets an untracked large
       mapping (arena.h). */
    t->untracked = plan->kind == OA_KIND_SLOT && !plan->dynamic && nobject(t) == 0
                   && n > 0;
    return offset;
}

/* Turn the type that type.__new__ made into an arena type. */
static int
patch_type(OaState *st, PyObject *module, OaTypeObject *t, ClassPlan *plan,
           PyObject *slots_orig)
{
    PyTypeObject *tp = (PyTypeObject *)t;
    OaTypeObject *layout = plan->layout;
    Py_ssize_t nbase = layout != NULL ? nall(layout) : 0;
    Py_ssize_t nown = PyList_GET_SIZE(plan->own);

    if (plan->dict_mixin) {
        /* A plain base listed first became tp_base (as natively) and handed
           down its __dict__ and weak-reference list: they live in the arena
           object instead (dynamic storage, a weak-reference slot). */
        tp->tp_dictoffset = 0;
        tp->tp_flags &= ~managed_flags();
    }
    if (tp->tp_base == NULL || tp->tp_dictoffset != 0 || tp->tp_itemsize != 0
        || (tp->tp_base->tp_basicsize != plan->base_size
            && !(plan->dict_mixin && !oa_is_arena_type(tp->tp_base)))) {
        PyErr_Format(PyExc_SystemError,
                     "objarena: type.__new__ gave '%.100s' an unexpected layout",
                     tp->tp_name);
        return -1;
    }
    Py_ssize_t offset = lay_out_fields(t, plan);
    if (offset < 0) {
        return -1;
    }

    /* Descriptors: one per own field (a CPython member descriptor for an
       object field, a TypedMember for a typed one), but those that wait for
       finish_pending_fields (declared by annotation), __weakref__. */
    PyObject *dict = tp->tp_dict;
    for (Py_ssize_t k = 0, m = 0; k < nown; k++) {
        PyObject *f = PyList_GET_ITEM(plan->own, k);
        int deferred = PySequence_Contains(plan->deferred, f);
        if (deferred != 0) {
            if (deferred < 0) {
                return -1;
            }
            m += plan->own_types[k] == OA_FT_OBJECT;
            t->pending = 1;
            continue;
        }
        PyObject *descr = plan->own_types[k] == OA_FT_OBJECT
                          ? PyDescr_NewMember(tp, &t->members[m++])
                          : oa_typed_member_new(st, tp, f, t->all[nbase + k]);
        if (descr == NULL) {
            return -1;
        }
        int r = install_field_descr(tp, dict, f, descr);
        Py_DECREF(descr);
        if (r < 0) {
            return -1;
        }
    }
    if (plan->dict_mixin && oa_obj_add_dict_descriptor(tp) < 0) {
        return -1;
    }
    if (plan->add_weak) {
        PyObject *descr = PyDescr_NewGetSet(weakref_descr_owner(tp), &weakref_getset);
        if (descr == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(dict, "__weakref__", descr);
        Py_DECREF(descr);
        if (r < 0) {
            return -1;
        }
    }
    /* Keep the user's __slots__ for introspection.  Fields declared by
       annotation leave none, as a native class has none, so that
       dataclass(slots=True) and attrs can add it when they recreate the
       class.  copyreg (pickle, copy) reads the fields from __slotnames__. */
    if (slots_orig != NULL) {
        if (PyDict_SetItemString(dict, "__slots__", slots_orig) < 0) {
            return -1;
        }
    }
    else if (PyDict_DelItemString(dict, "__slots__") < 0) {
        return -1;
    }
    t->slotnames = (slots_orig == NULL && nown > 0) || (layout != NULL && layout->slotnames);
    if (t->slotnames) {
        /* copyreg finds no __slots__ for fields declared by annotation. */
        PyObject *slotnames = PySequence_List(t->names);
        if (slotnames == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(dict, "__slotnames__", slotnames);
        Py_DECREF(slotnames);
        if (r < 0) {
            return -1;
        }
    }

    /* The storage: the arena, without the GC. */
    tp->tp_flags &= ~Py_TPFLAGS_HAVE_GC;
    tp->tp_basicsize = offset;
    tp->tp_alloc = oa_tp_alloc;
    tp->tp_free = oa_tp_free;
    tp->tp_dealloc = oa_dealloc;
    tp->tp_traverse = oa_traverse;
    tp->tp_clear = oa_clear;
    tp->tp_is_gc = NULL;
    /* A stateless native mixin listed first becomes tp_base, and hands down
       object.__new__: arena objects are made by base_new. */
    if (tp->tp_new == PyBaseObject_Type.tp_new) {
        tp->tp_new = base_new;
    }
    t->kind = plan->kind;
    t->dynamic = plan->dynamic;
    tp->tp_vectorcall = t->kind == OA_KIND_OBJ ? oa_obj_vectorcall : oa_type_vectorcall;
    if (tp->tp_new != base_new
        || (tp->tp_init != (t->kind == OA_KIND_OBJ ? oa_obj_init : base_init)
            && function_init(st, tp) == NULL)) {
        /* A class with its own __new__, or an __init__ that is no Python
           function: calls go to meta_call as they come (a call with
           **kwargs keeps its dict); one made later still falls back
           through oa_type_call_generic. */
        tp->tp_vectorcall = NULL;
    }
    if (t->dynamic) {
        if (oa_obj_type_init(t) < 0) {
            return -1;
        }
        /* A subclass's instances likely get its base's attributes; objarena.Obj
           itself teaches nothing. */
        t->learned = layout != NULL && (PyObject *)layout != st->obj && layout->dynamic
                     ? layout->learned : 0;
    }
    t->arena = (OaArenaObject *)Py_NewRef(plan->arena);
    t->arena->ntypes++;
    if (t->untracked) {
        /* Its instances are never in a collection's set: full collections
           start from the class instead (gc.c, deduce_set). */
        t->next_untracked = t->arena->untracked_types;
        if (t->next_untracked != NULL) {
            t->next_untracked->prev_untracked = t;
        }
        t->arena->untracked_types = t;
    }
    t->module = Py_NewRef(module);
    PyType_Modified(tp);
    t->ready = 1;
    return 0;
}

static PyObject *
meta_new(PyTypeObject *metatype, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 3) {
        return PyType_Type.tp_new(metatype, args, kwds);     /* type(x), errors */
    }
    PyObject *name, *bases, *ns;
    if (!PyArg_ParseTuple(args, "UO!O!:ArenaType.__new__", &name, &PyTuple_Type,
                          &bases, &PyDict_Type, &ns)) {
        return NULL;
    }
    PyTypeObject *winner = winning_metatype(metatype, bases);
    if (winner == NULL) {
        return NULL;
    }
    if (winner != metatype && winner->tp_new != meta_new) {
        return winner->tp_new(winner, args, kwds);
    }
    metatype = winner;
    PyObject *module = module_of_type(metatype);
    if (module == NULL) {
        return NULL;
    }
    OaState *st = oa_state_of_module(module);

    ClassPlan plan = {.kind = OA_KIND_SLOT, .base_size = (Py_ssize_t)sizeof(PyObject)};
    PyObject *kw = NULL, *slots_orig = NULL, *ns2 = NULL, *args2 = NULL;
    PyObject *type = NULL, *all = NULL, *ann = NULL, *bases2 = Py_NewRef(bases);

    /* arena= is ours; the other keywords go to __init_subclass__. */
    if (kwds != NULL) {
        kw = PyDict_Copy(kwds);
        if (kw == NULL) {
            goto error;
        }
        PyObject *arena = PyDict_GetItemString(kw, "arena");
        if (arena != NULL) {
            if (!PyObject_TypeCheck(arena, st->arena_type)) {
                PyErr_Format(PyExc_TypeError,
                             "class %U: arena= must be an objarena.Arena, not %.100s",
                             name, Py_TYPE(arena)->tp_name);
                goto error;
            }
            plan.arena = Py_NewRef(arena);
            if (PyDict_DelItemString(kw, "arena") < 0) {
                goto error;
            }
        }
    }
    if (finish_pending_bases(bases) < 0 || check_bases(st, name, bases, &plan) < 0) {
        goto error;
    }
    if (plan.arena == NULL) {
        plan.arena = Py_NewRef(plan.layout != NULL ? (PyObject *)plan.layout->arena
                                                   : st->default_arena);
    }
    plan.own = PyList_New(0);
    plan.deferred = PyList_New(0);
    if (plan.own == NULL || plan.deferred == NULL) {
        goto error;
    }
    slots_orig = Py_XNewRef(PyDict_GetItemString(ns, "__slots__"));
    /* Annotations declare a SlotObj's fields, or give slots their types;
       an Obj class without slots has no use for them (nor are they
       evaluated: 3.14 computes them on demand). */
    if (plan.kind == OA_KIND_SLOT || slots_orig != NULL) {
        ann = class_annotations(ns);
        if (ann == NULL && PyErr_Occurred()) {
            goto error;
        }
    }
    FieldSource source = slots_orig != NULL ? OA_FROM_SLOTS : OA_FROM_ANNOTATIONS;
    int declares = slots_orig != NULL;
    if (slots_orig != NULL) {
        if (check_slots(name, ns, slots_orig, &plan, OA_FROM_SLOTS) < 0) {
            goto error;
        }
    }
    else if (plan.kind == OA_KIND_SLOT) {
        /* Fields declared by annotation act as that __slots__ would (the
           class keeps no __slots__: dataclass(slots=True) adds its own). */
        PyObject *annotated = NULL;
        int r = annotated_fields(name, ann, &annotated);
        if (r == 0 && annotated != NULL) {
            declares = 1;
            r = check_slots(name, ns, annotated, &plan, OA_FROM_ANNOTATIONS);
        }
        Py_XDECREF(annotated);
        if (r < 0) {
            goto error;
        }
    }
    if (field_types(st, name, ns, ann, &plan) < 0 || keep_typed_fields(&plan) < 0) {
        goto error;
    }

    /* A SlotObj subclass that declares neither __slots__ nor annotations,
       or that has a plain Python base with a __dict__, takes attributes
       beyond its fields, as a native one (which has a __dict__):
       _DynamicBase, last among its bases, brings Obj's attribute protocol. */
    if (!plan.dynamic && !st->creating_root && (!declares || plan.dict_mixin)) {
        PyObject *dyn = PyTuple_Pack(1, (PyObject *)st->dyn_base);
        if (dyn == NULL) {
            goto error;
        }
        Py_SETREF(bases2, PySequence_Concat(bases, dyn));
        Py_DECREF(dyn);
        if (bases2 == NULL) {
            goto error;
        }
        plan.dynamic = 1;
    }

    /* type.__new__ sees no slots, so it adds no __dict__, no pre-header. */
    ns2 = PyDict_Copy(ns);
    if (ns2 == NULL) {
        goto error;
    }
    if (source == OA_FROM_ANNOTATIONS && take_defaults(name, ns2, &plan) < 0) {
        goto error;
    }
    all = PyTuple_New(0);
    if (all == NULL || PyDict_SetItemString(ns2, "__slots__", all) < 0) {
        goto error;
    }
    args2 = PyTuple_Pack(3, name, bases2, ns2);
    if (args2 == NULL) {
        goto error;
    }
    type = PyType_Type.tp_new(metatype, args2, kw);
    if (type == NULL) {
        goto error;
    }
    if (patch_type(st, module, (OaTypeObject *)type, &plan, slots_orig) < 0
        || init_abc_if_needed(st, (PyTypeObject *)type) < 0) {
        goto error;
    }
    goto done;

error:
    Py_CLEAR(type);
done:
    Py_XDECREF(all);
    Py_XDECREF(args2);
    Py_XDECREF(ns2);
    Py_XDECREF(bases2);
    Py_XDECREF(slots_orig);
    Py_XDECREF(ann);
    Py_XDECREF(kw);
    Py_XDECREF(plan.arena);
    Py_XDECREF(plan.own);
    Py_XDECREF(plan.deferred);
    Py_XDECREF(plan.defaults);
    PyMem_Free(plan.own_types);
    return type;
}

static int
meta_traverse(PyObject *self, visitproc visit, void *arg)
{
    OaTypeObject *t = (OaTypeObject *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(t->arena);
    Py_VISIT(t->fields);
    Py_VISIT(t->names);
    Py_VISIT(t->field_index);
    Py_VISIT(t->module);
    if (t->defaults != NULL && t->names != NULL) {
        for (Py_ssize_t i = 0; i < nall(t); i++) {
            Py_VISIT(t->defaults[i]);
        }
    }
    return PyType_Type.tp_traverse(self, visit, arg);
}

void
oa_meta_dealloc(PyObject *self)
{
    OaTypeObject *t = (OaTypeObject *)self;
    PyTypeObject *metatype = Py_TYPE(self);
    /* As subtype_dealloc does: untracked while our references go, tracked
       again for type's own dealloc, which untracks. */
    PyObject_GC_UnTrack(self);
    t->ready = 0;
    PyMem_Free(t->offsets);
    t->offsets = NULL;
    PyMem_Free(t->members);     /* the descriptors using them held the type */
    t->members = NULL;
    clear_defaults(t);
    PyMem_Free(t->defaults);
    t->defaults = NULL;
    PyMem_Free(t->all);
    t->all = NULL;
    Py_CLEAR(t->names);
    oa_obj_type_free(t);
    Py_CLEAR(t->fields);
    Py_CLEAR(t->field_index);
    if (t->arena != NULL && t->untracked) {
        if (t->prev_untracked != NULL) {
            t->prev_untracked->next_untracked = t->next_untracked;
        }
        else if (t->arena->untracked_types == t) {
            t->arena->untracked_types = t->next_untracked;
        }
        if (t->next_untracked != NULL) {
            t->next_untracked->prev_untracked = t->prev_untracked;
        }
    }
    if (t->arena != NULL) {
        t->arena->ntypes--;
        Py_CLEAR(t->arena);
    }
    Py_CLEAR(t->module);
    PyObject_GC_Track(self);
    PyType_Type.tp_dealloc(self);
    Py_DECREF(metatype);
}

/* inspect.signature(cls) while the generated __init__ is in use. */
static PyObject *
meta_get_signature(PyObject *cls, void *Py_UNUSED(closure))
{
    PyTypeObject *tp = (PyTypeObject *)cls;
    OaTypeObject *t = (OaTypeObject *)cls;
    if (!t->ready || tp->tp_init != base_init || tp->tp_new != base_new) {
        PyErr_SetString(PyExc_AttributeError, "__signature__");
        return NULL;
    }
    if (t->pending && oa_finish_pending_fields(t) < 0) {      /* the defaults */
        return NULL;
    }
    PyObject *inspect = NULL, *parameter = NULL, *kind = NULL, *params = NULL;
    PyObject *result = NULL;
    inspect = PyImport_ImportModule("inspect");
    if (inspect == NULL) {
        goto done;
    }
    parameter = PyObject_GetAttrString(inspect, "Parameter");
    if (parameter == NULL) {
        goto done;
    }
    kind = PyObject_GetAttrString(parameter, "POSITIONAL_OR_KEYWORD");
    if (kind == NULL) {
        goto done;
    }
    Py_ssize_t n = nall(t);
    params = PyList_New(n);
    if (params == NULL) {
        goto done;
    }
    /* Defaults show from the last field without one on (a signature has no
       default before a parameter without one; the generated __init__ leaves
       any field not given unset). */
    Py_ssize_t shown = n;
    while (shown > 0 && t->defaults != NULL && t->defaults[shown - 1] != NULL) {
        shown--;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *dflt = i >= shown ? t->defaults[i] : NULL;
        PyObject *pargs = PyTuple_Pack(2, PyTuple_GET_ITEM(t->names, i), kind);
        PyObject *pkw = dflt != NULL ? Py_BuildValue("{sO}", "default", dflt) : NULL;
        PyObject *p = pargs != NULL && (dflt == NULL || pkw != NULL)
                      ? PyObject_Call(parameter, pargs, pkw) : NULL;
        Py_XDECREF(pkw);
        Py_XDECREF(pargs);
        if (p == NULL) {
            goto done;
        }
        PyList_SET_ITEM(params, i, p);
    }
    result = PyObject_CallMethod(inspect, "Signature", "O", params);
done:
    Py_XDECREF(params);
    Py_XDECREF(kind);
    Py_XDECREF(parameter);
    Py_XDECREF(inspect);
    return result;
}

static PyGetSetDef meta_getset[] = {
    {"__signature__", meta_get_signature, NULL,
     "the generated __init__'s signature: the fields, in order, with their defaults",
     NULL},
    {0},
};

/* type's own clear (not inherited once traverse is ours); the fields and the
   arena stay until dealloc, which instances' deallocs may still need. */
static int
meta_clear(PyObject *self)
{
    clear_defaults((OaTypeObject *)self);
    return PyType_Type.tp_clear(self);
}

static PyType_Slot meta_slots[] = {
    {Py_tp_new, meta_new},
    {Py_tp_call, meta_call},
    {Py_tp_dealloc, oa_meta_dealloc},
    {Py_tp_traverse, meta_traverse},
    {Py_tp_clear, meta_clear},
    {Py_tp_getset, meta_getset},
    {Py_tp_methods, meta_methods},
    {Py_tp_setattro, meta_setattro},
    {Py_tp_doc, "The metaclass of objarena classes: lays out their instances "
                "in an arena, without a GC header."},
    {0, NULL},
};

static PyType_Spec meta_spec = {
    .name = "objarena.ArenaType",
    .basicsize = sizeof(OaTypeObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = meta_slots,
};

/* ArenaType.__match_args__: a descriptor without __set__, so that it only
   answers for a class whose MRO defines no __match_args__ (dataclasses and
   attrs check the class __dict__ before they add theirs): a SlotObj class
   whose generated __init__ is in use matches its fields positionally, in
   that __init__'s order. */
static PyObject *
match_args_get(PyObject *self, PyObject *cls, PyObject *Py_UNUSED(type))
{
    if (cls == NULL || cls == Py_None) {
        return Py_NewRef(self);
    }
    if (PyType_Check(cls) && oa_is_arena_type((PyTypeObject *)cls)
        && ((OaTypeObject *)cls)->kind == OA_KIND_SLOT
        && ((PyTypeObject *)cls)->tp_init == base_init) {
        return Py_NewRef(((OaTypeObject *)cls)->names);
    }
    PyErr_Format(PyExc_AttributeError, "type object '%.100s' has no attribute "
                 "'__match_args__'", PyType_Check(cls) ? ((PyTypeObject *)cls)->tp_name
                                                       : Py_TYPE(cls)->tp_name);
    return NULL;
}

static void
match_args_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot match_args_slots[] = {
    {Py_tp_descr_get, match_args_get},
    {Py_tp_dealloc, match_args_dealloc},
    {Py_tp_doc, "The fields of a SlotObj class while its generated __init__ is in use."},
    {0, NULL},
};

static PyType_Spec match_args_spec = {
    .name = "objarena._GeneratedMatchArgs",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = match_args_slots,
};

static int
add_match_args(PyObject *mod, PyTypeObject *meta)
{
    PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &match_args_spec, NULL);
    if (tp == NULL) {
        return -1;
    }
    PyObject *descr = tp->tp_alloc(tp, 0);
    Py_DECREF(tp);
    if (descr == NULL) {
        return -1;
    }
    int r = PyDict_SetItemString(meta->tp_dict, "__match_args__", descr);
    Py_DECREF(descr);
    PyType_Modified(meta);
    return r;
}

/* SlotObj and Obj are made by ArenaType itself, from their C bases. */
static PyObject *
make_root(OaState *st, const char *name, PyTypeObject *base, const char *doc)
{
    PyObject *ns = NULL, *args = NULL, *root = NULL, *empty = NULL;
    ns = Py_BuildValue("{s:s,s:s,s:s}", "__module__", "objarena",
                       "__qualname__", name, "__doc__", doc);
    empty = PyTuple_New(0);
    if (ns == NULL || empty == NULL
        || PyDict_SetItemString(ns, "__slots__", empty) < 0) {
        goto done;
    }
    args = Py_BuildValue("(s(O)O)", name, (PyObject *)base, ns);
    if (args == NULL) {
        goto done;
    }
    st->creating_root = 1;
    root = PyObject_Call((PyObject *)st->meta_type, args, NULL);
    st->creating_root = 0;
done:
    Py_XDECREF(empty);
    Py_XDECREF(args);
    Py_XDECREF(ns);
    return root;
}

int
oa_types_module_init(PyObject *mod, OaState *st)
{
    if (oa_typed_module_init(mod, st) < 0) {
        return -1;
    }
    /* ArenaType is an abc.ABCMeta, so that a class statement can mix arena
       classes with ABCs (the class statement refuses a metaclass conflict
       before any metaclass runs); its __instancecheck__/__subclasscheck__
       keep type's speed for arena classes that are no ABCs. */
    PyObject *abc = PyImport_ImportModule("abc");
    if (abc == NULL) {
        return -1;
    }
    PyObject *abcmeta = PyObject_GetAttrString(abc, "ABCMeta");
    st->abc_init = PyObject_GetAttrString(abc, "_abc_init");
    Py_DECREF(abc);
    if (abcmeta == NULL || st->abc_init == NULL || !PyType_Check(abcmeta)) {
        Py_XDECREF(abcmeta);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ImportError, "objarena needs abc.ABCMeta to be a class");
        }
        return -1;
    }
    st->str_class = PyUnicode_InternFromString("__class__");
    st->str_init = PyUnicode_InternFromString("__init__");
    if (st->str_class == NULL || st->str_init == NULL) {
        Py_DECREF(abcmeta);
        return -1;
    }
    st->abc_instancecheck = PyObject_GetAttrString(abcmeta, "__instancecheck__");
    st->abc_subclasscheck = PyObject_GetAttrString(abcmeta, "__subclasscheck__");
    /* The unbound method descriptor of type (a static type's tp_dict is not
       for extensions to read from 3.12 on). */
    st->type_subclasscheck = PyObject_GetAttrString((PyObject *)&PyType_Type,
                                                    "__subclasscheck__");
    if (st->abc_instancecheck == NULL || st->abc_subclasscheck == NULL
        || st->type_subclasscheck == NULL) {
        Py_DECREF(abcmeta);
        return -1;
    }
    st->meta_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &meta_spec, abcmeta);
    Py_DECREF(abcmeta);
    if (st->meta_type == NULL) {
        return -1;
    }
    /* Calls of arena classes go through their tp_vectorcall; before 3.12
       a heap metaclass does not inherit type's flag for it. */
    st->meta_type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    if (add_match_args(mod, st->meta_type) < 0) {
        return -1;
    }
    st->base_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &base_spec, NULL);
    if (st->base_type == NULL) {
        return -1;
    }
    st->slot_base = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &slot_base_spec,
                                                             (PyObject *)st->base_type);
    if (st->slot_base == NULL) {
        return -1;
    }
    st->obj_base = oa_obj_base_create(mod, st->base_type);
    st->dyn_base = oa_dyn_base_create(mod, st->base_type);
    if (st->obj_base == NULL || st->dyn_base == NULL) {
        return -1;
    }
    st->obj = make_root(st, "Obj", st->obj_base,
        "Base class of records with dynamic attributes that live in an arena.\n\n"
        "    class Point(Obj):\n"
        "        pass\n\n"
        "    p = Point(x=1, y=2); p.z = 3\n\n"
        "Attributes are kept as a per-class shape plus values inline in the\n"
        "object; asking for __dict__ switches one object to a real dict.\n"
        "Weak references: put \"__weakref__\" in __slots__.");
    if (st->obj == NULL) {
        return -1;
    }
    st->slotobj = make_root(st, "SlotObj", st->slot_base,
        "Base class of fixed-field records that live in an arena.\n\n"
        "    class User(SlotObj):\n"
        "        __slots__ = (\"id\", \"name\")\n\n"
        "Instances take positional or keyword arguments in field order, carry\n"
        "no GC header and cost 16 bytes plus 8 per field.");
    if (st->slotobj == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "ArenaType", (PyObject *)st->meta_type) < 0
        || PyModule_AddObjectRef(mod, "SlotObj", st->slotobj) < 0
        || PyModule_AddObjectRef(mod, "Obj", st->obj) < 0
        || PyModule_AddObjectRef(mod, "_ArenaBase", (PyObject *)st->base_type) < 0) {
        return -1;
    }
    return 0;
}
