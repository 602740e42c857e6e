/*
 * module.c -- the objarena._objarena module: its state, the Arena type,
 * module-level functions and the test-only hooks.
 *
 * Invariants kept here:
 *   - an OaArenaObject owns its core arena and destroys it in its dealloc;
 *     since every arena type holds a strong reference to its Arena and every
 *     instance to its type, no object of the arena is alive by then;
 *   - every allocation failure of the core becomes a MemoryError that names
 *     the arena and the reason (max_bytes or the OS).
 */
#include "objarena.h"

/* ------------------------------------------------------------------------ */
/* Arena                                                                      */

PyObject *
oa_raise_alloc_error(OaArenaObject *arena, size_t size)
{
    PyObject *name = arena->name != NULL ? arena->name : Py_None;
    if (oa_last_error(arena->core) == OA_ERR_LIMIT) {
        oa_stats s;
        oa_stats_get(arena->core, &s);
        PyErr_Format(PyExc_MemoryError,
                     "arena %R: %zu more bytes would exceed max_bytes=%zu "
                     "(%zu bytes in use)",
                     name, size, oa_max_bytes(arena->core), s.bytes_in_use);
    }
    else {
        PyErr_Format(PyExc_MemoryError,
                     "arena %R: the operating system refused memory "
                     "for a %zu-byte object", name, size);
    }
    return NULL;
}

PyObject *
oa_arena_create(OaState *st, PyObject *module, PyObject *name, size_t max_bytes)
{
    OaArenaObject *self = PyObject_GC_New(OaArenaObject, st->arena_type);
    if (self == NULL) {
        return NULL;
    }
    self->core = NULL;
    self->name = Py_NewRef(name);
    self->weakreflist = NULL;
    self->dealloc_depth = 0;
    self->deferred = NULL;
    self->ndeferred = 0;
    self->deferred_cap = 0;
    self->module = Py_NewRef(module);
    self->side_dicts = NULL;
    self->ntypes = 0;
    self->untracked_types = NULL;
    self->next_arena = self->prev_arena = NULL;
    memset(&self->gc, 0, sizeof(self->gc));
    /* Linked first, so that dealloc can always unlink. */
    self->next_arena = st->arenas;
    if (st->arenas != NULL) {
        st->arenas->prev_arena = self;
    }
    st->arenas = self;
    if (oa_gc_init(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->core = oa_arena_new(max_bytes);
    if (self->core == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    oa_arena_set_owner(self->core, self);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *
arena_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "max_bytes", NULL};
    PyObject *name = Py_None, *max_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:Arena", kwlist,
                                     &name, &max_obj)) {
        return NULL;
    }
    if (name != Py_None && !PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError,
                     "Arena() name must be a str or None, not %.100s",
                     Py_TYPE(name)->tp_name);
        return NULL;
    }
    size_t max_bytes = 0;
    if (max_obj != Py_None) {
        if (!PyLong_Check(max_obj) || PyBool_Check(max_obj)) {
            PyErr_Format(PyExc_TypeError,
                         "Arena() max_bytes must be an int or None, not %.100s",
                         Py_TYPE(max_obj)->tp_name);
            return NULL;
        }
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(max_obj, &overflow);
        if (v == -1 && !overflow && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow < 0 || (overflow == 0 && v <= 0)) {
            PyErr_Format(PyExc_ValueError,
                         "Arena() max_bytes must be positive, got %R", max_obj);
            return NULL;
        }
        /* Past the address space there is no limit to enforce. */
        max_bytes = (overflow > 0 || (unsigned long long)v > SIZE_MAX)
                    ? 0 : (size_t)v;
    }
    PyObject *module = PyType_GetModule(type);
    if (module == NULL) {
        return NULL;
    }
    return oa_arena_create(oa_state_of_module(module), module, name, max_bytes);
}

static void
arena_dealloc(OaArenaObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    OaState *st = oa_state_of_module(self->module);
    if (self->prev_arena != NULL) {
        self->prev_arena->next_arena = self->next_arena;
    }
    else if (st->arenas == self) {
        st->arenas = self->next_arena;
    }
    if (self->next_arena != NULL) {
        self->next_arena->prev_arena = self->prev_arena;
    }
    /* Every object of the arena held its type, and every type this Arena:
       no object is left in the memory given back here. */
    oa_arena_destroy(self->core);
    PyMem_Free(self->deferred);     /* empty: no dealloc is in progress */
    Py_XDECREF(self->name);
    Py_CLEAR(self->gc.callbacks);
    Py_CLEAR(self->gc.garbage);
    oa_side_dicts_free(self);
    Py_XDECREF(self->module);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int
arena_traverse(OaArenaObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    Py_VISIT(self->gc.callbacks);
    Py_VISIT(self->gc.garbage);
    return oa_side_dicts_traverse(self, visit, arg);
}

static int
arena_clear(OaArenaObject *self)
{
    Py_CLEAR(self->gc.callbacks);
    Py_CLEAR(self->gc.garbage);
    return 0;
}

static PyObject *
arena_repr(OaArenaObject *self)
{
    oa_stats s;
    oa_stats_get(self->core, &s);
    return PyUnicode_FromFormat("<objarena.Arena %R: %zu objects, %zu bytes in use>",
                                self->name, s.objects, s.bytes_in_use);
}

static int
dict_set_size(PyObject *d, const char *key, size_t value)
{
    PyObject *v = PyLong_FromSize_t(value);
    if (v == NULL) {
        return -1;
    }
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

static PyObject *
size_classes_list(OaArenaObject *self)
{
    size_t n = oa_class_stats_get(self->core, NULL, 0);
    /* Work memory of the core: the fault injector reaches it too. */
    oa_class_stats *cs = oa_work_alloc((n ? n : 1) * sizeof(oa_class_stats));
    if (cs == NULL) {
        return PyErr_NoMemory();
    }
    n = oa_class_stats_get(self->core, cs, n);
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        goto error;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *d = PyDict_New();
        if (d == NULL) {
            goto error;
        }
        if (dict_set_size(d, "size", cs[i].size) < 0
            || dict_set_size(d, "objects", cs[i].objects) < 0
            || dict_set_size(d, "pages", cs[i].pages) < 0
            || PyList_Append(list, d) < 0) {
            Py_DECREF(d);
            goto error;
        }
        Py_DECREF(d);
    }
    oa_work_free(cs);
    return list;

error:
    oa_work_free(cs);
    Py_XDECREF(list);
    return NULL;
}

static PyObject *
arena_stats(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    oa_stats s;
    oa_stats_get(self->core, &s);
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    PyObject *classes = NULL;
    if (dict_set_size(d, "objects", s.objects) < 0
        || dict_set_size(d, "bytes_in_use", s.bytes_in_use) < 0
        || dict_set_size(d, "bytes_reserved", s.bytes_reserved) < 0
        || dict_set_size(d, "chunks", s.chunks) < 0
        || dict_set_size(d, "pages", s.pages) < 0
        || dict_set_size(d, "high_water", s.high_water) < 0
        || dict_set_size(d, "large_objects", s.large_objects) < 0) {
        goto error;
    }
    classes = size_classes_list(self);
    if (classes == NULL || PyDict_SetItemString(d, "size_classes", classes) < 0) {
        goto error;
    }
    Py_DECREF(classes);
    return d;

error:
    Py_XDECREF(classes);
    Py_DECREF(d);
    return NULL;
}

static PyObject *
arena_trim(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(oa_trim(self->core));
}

static PyObject *
arena_get_name(OaArenaObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static PyObject *
arena_get_max_bytes(OaArenaObject *self, void *Py_UNUSED(closure))
{
    size_t m = oa_max_bytes(self->core);
    if (m == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSize_t(m);
}

static PyMethodDef arena_methods[] = {
    {"stats", (PyCFunction)arena_stats, METH_NOARGS,
     "stats() -> dict\n\nCounters of the arena: objects, bytes_in_use, "
     "bytes_reserved, chunks, pages, high_water, large_objects, size_classes."},
    {"trim", (PyCFunction)arena_trim, METH_NOARGS,
     "trim() -> int\n\nGive empty pages and chunks back to the operating "
     "system; return the bytes released."},
    {0}
};

static PyObject *
arena_get_callbacks(OaArenaObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->gc.callbacks != NULL ? self->gc.callbacks : Py_None);
}

static PyObject *
arena_get_garbage(OaArenaObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->gc.garbage != NULL ? self->gc.garbage : Py_None);
}

static PyGetSetDef arena_getset[] = {
    {"callbacks", (getter)arena_get_callbacks, NULL,
     "callables (phase, info) called at the start and stop of each collection", NULL},
    {"garbage", (getter)arena_get_garbage, NULL,
     "unreachable objects kept by DEBUG_SAVEALL", NULL},
    {"name", (getter)arena_get_name, NULL, "the arena's name, or None", NULL},
    {"max_bytes", (getter)arena_get_max_bytes, NULL,
     "the bound on bytes_in_use, or None", NULL},
    {0}
};

static PyMemberDef arena_members[] = {
    {"__weaklistoffset__", OA_T_PYSSIZET, offsetof(OaArenaObject, weakreflist), OA_READONLY, NULL},
    {0}
};

static PyType_Slot arena_slots[] = {
    {Py_tp_new, arena_new},
    {Py_tp_dealloc, arena_dealloc},
    {Py_tp_traverse, arena_traverse},
    {Py_tp_clear, arena_clear},
    {Py_tp_repr, arena_repr},
    {Py_tp_methods, arena_methods},
    {Py_tp_getset, arena_getset},
    {Py_tp_members, arena_members},
    {Py_tp_doc, "Arena(name=None, max_bytes=None)\n\n"
                "An independent heap for objarena objects."},
    {0, NULL},
};

static PyType_Spec arena_spec = {
    .name = "objarena.Arena",
    .basicsize = sizeof(OaArenaObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = arena_slots,
};

static PyStructSequence_Field refinfo_fields[] = {
    {"refcount", "the references to the object, the call's own excepted"},
    {"internal", "references held by arena objects"},
    {"external", "the other references"},
    {NULL, NULL},
};

static PyStructSequence_Desc refinfo_desc = {
    "objarena.RefInfo",
    "refinfo(obj): (refcount, internal, external)",
    refinfo_fields,
    3,
};

/* The tp_traverse CPython gives instances of Python classes (not an API:
   read off a throwaway class). */
static int
probe_heap_traverse(OaState *st)
{
    PyObject *cls = PyObject_CallFunction((PyObject *)&PyType_Type, "s()N", "_probe",
                                          PyDict_New());
    if (cls == NULL) {
        return -1;
    }
    st->heap_traverse = ((PyTypeObject *)cls)->tp_traverse;
    Py_DECREF(cls);
    return 0;
}

int
oa_arena_module_init(PyObject *mod, OaState *st)
{
    if (probe_heap_traverse(st) < 0) {
        return -1;
    }
    st->refinfo_type = PyStructSequence_NewType(&refinfo_desc);
    if (st->refinfo_type == NULL
        || PyModule_AddObjectRef(mod, "RefInfo", (PyObject *)st->refinfo_type) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(mod, "DEBUG_STATS", OA_DEBUG_STATS) < 0
        || PyModule_AddIntConstant(mod, "DEBUG_COLLECTABLE", OA_DEBUG_COLLECTABLE) < 0
        || PyModule_AddIntConstant(mod, "DEBUG_UNCOLLECTABLE", OA_DEBUG_UNCOLLECTABLE) < 0
        || PyModule_AddIntConstant(mod, "DEBUG_SAVEALL", OA_DEBUG_SAVEALL) < 0
        || PyModule_AddIntConstant(mod, "DEBUG_LEAK", OA_DEBUG_LEAK) < 0) {
        return -1;
    }
    st->arena_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &arena_spec, NULL);
    if (st->arena_type == NULL || oa_gcmodule_init(st->arena_type) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "Arena", (PyObject *)st->arena_type) < 0) {
        return -1;
    }
    st->default_arena = oa_arena_create(st, mod, Py_None, 0);
    if (st->default_arena == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "default_arena", st->default_arena) < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Module functions                                                           */

static PyObject *
mod_arena_footprint(PyObject *Py_UNUSED(mod), PyObject *obj)
{
    if (!oa_is_arena_object(obj)) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSize_t(oa_footprint(obj));
}

static PyObject *
mod_arena_of(PyObject *Py_UNUSED(mod), PyObject *obj)
{
    if (!oa_is_arena_object(obj)) {
        Py_RETURN_NONE;
    }
    return Py_NewRef((PyObject *)oa_owner_of(obj));
}

static PyObject *
mod_fail_os_alloc(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    unsigned long n = PyLong_AsUnsignedLong(arg);
    if (n == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    oa_fail_os_alloc(n);
    Py_RETURN_NONE;
}

static PyObject *
mod_os_alloc_count(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(oa_os_alloc_count());
}

static PyObject *
mod_work_bytes(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    size_t current, peak;
    oa_work_bytes(&current, &peak, 1);
    return Py_BuildValue("(nn)", (Py_ssize_t)current, (Py_ssize_t)peak);
}

static PyObject *
mod_validate(PyObject *mod, PyObject *arg)
{
    OaState *st = oa_state_of_module(mod);
    if (!PyObject_TypeCheck(arg, st->arena_type)) {
        PyErr_Format(PyExc_TypeError, "validate() takes an Arena, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    char msg[256];
    if (oa_arena_validate(((OaArenaObject *)arg)->core, msg, sizeof(msg)) < 0) {
        PyErr_Format(PyExc_AssertionError, "arena invariant broken: %s", msg);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* atexit: a last full collection of every arena, as CPython collects before
   it tears modules down, so that garbage cycles of arena objects have their
   finalizers run while the interpreter is whole. */
/* The live arenas that `want` selects (NULL: all), in a list: collecting
   one may free another, so the module's own list is not walked meanwhile. */
static PyObject *
select_arenas(OaState *st, int (*want)(OaArenaObject *))
{
    PyObject *arenas = PyList_New(0);
    if (arenas == NULL) {
        return NULL;
    }
    for (OaArenaObject *a = st->arenas; a != NULL; a = a->next_arena) {
        if ((want == NULL || want(a)) && PyList_Append(arenas, (PyObject *)a) < 0) {
            Py_DECREF(arenas);
            return NULL;
        }
    }
    return arenas;
}

/* A full collection of each arena selected; errors are unraisable. */
static int
collect_arenas(OaState *st, int (*want)(OaArenaObject *))
{
    PyObject *arenas = select_arenas(st, want);
    if (arenas == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(arenas); i++) {
        PyObject *r = PyObject_CallMethod(PyList_GET_ITEM(arenas, i), "collect", NULL);
        if (r == NULL) {
            PyErr_WriteUnraisable(PyList_GET_ITEM(arenas, i));
        }
        Py_XDECREF(r);
    }
    Py_DECREF(arenas);
    return 0;
}

/* Interpreter exit.  atexit runs while modules still hold their globals, so
   a cycle through a module's globals (a module-level instance of a class
   defined there: instance -> class -> method -> globals -> instance) is
   still reachable then.  CPython frees such cycles in the collections that
   finalization runs after it has taken the modules out of sys.modules and
   cleared their dicts; those collections call no gc.callbacks before 3.13.
   So atexit arms an ExitWatch: a GC object in a cycle of its own, garbage
   from birth.  Each CPython collection that finds it runs its finalizer,
   which collects every arena and arms a new watch for the next collection,
   as long as the interpreter is finalizing (so that a stray call of
   _shutdown() does not leave a chain behind).  The last watch is left to the
   interpreter's end. */
typedef struct {
    PyObject_HEAD
    PyObject *self_ref;         /* the watch itself: the cycle */
    PyObject *module;
    int first;                  /* armed by _shutdown, maybe before finalizing */
} ExitWatch;

static int
interpreter_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    /* No public equivalent before 3.13 (sys.is_finalizing() wraps it). */
    return _Py_IsFinalizing();
#endif
}

static int
arm_exit_watch(PyObject *mod, int first)
{
    OaState *st = oa_state_of_module(mod);
    ExitWatch *w = PyObject_GC_New(ExitWatch, st->exit_watch_type);
    if (w == NULL) {
        return -1;
    }
    w->self_ref = Py_NewRef(w);
    w->module = Py_NewRef(mod);
    w->first = first;
    PyObject_GC_Track(w);
    Py_DECREF(w);
    return 0;
}

static void
exit_watch_finalize(PyObject *self)
{
    ExitWatch *w = (ExitWatch *)self;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
#endif
    OaState *st = w->module != NULL ? oa_state_of_module(w->module) : NULL;
    if (st != NULL && !st->torn_down) {
        if (collect_arenas(st, NULL) < 0
            || ((w->first || interpreter_finalizing()) && arm_exit_watch(w->module, 0) < 0)) {
            PyErr_WriteUnraisable(self);
        }
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(type, value, tb);
#endif
}

static int
exit_watch_traverse(PyObject *self, visitproc visit, void *arg)
{
    ExitWatch *w = (ExitWatch *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(w->self_ref);
    Py_VISIT(w->module);
    return 0;
}

static int
exit_watch_clear(PyObject *self)
{
    ExitWatch *w = (ExitWatch *)self;
    Py_CLEAR(w->self_ref);
    Py_CLEAR(w->module);
    return 0;
}

static void
exit_watch_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)exit_watch_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

static PyType_Slot exit_watch_slots[] = {
    {Py_tp_finalize, exit_watch_finalize},
    {Py_tp_traverse, exit_watch_traverse},
    {Py_tp_clear, exit_watch_clear},
    {Py_tp_dealloc, exit_watch_dealloc},
    {0, NULL},
};

static PyType_Spec exit_watch_spec = {
    .name = "objarena._objarena._ExitWatch",
    .basicsize = sizeof(ExitWatch),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = exit_watch_slots,
};

static PyObject *
mod_shutdown(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    if (collect_arenas(oa_state_of_module(mod), NULL) < 0 || arm_exit_watch(mod, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A gc.callbacks entry, so that CPython's full collections reach the arenas.

   gc.collect() (a full collection asked for by the program) must free every
   collectable arena cycle, as it frees native ones, whatever the arena did
   since its last collection: a cycle through a native list may become
   garbage without any allocation in the arena.  CPython's automatic full
   collections, on the other hand, must not add full arena collections to
   the arena's own policy: they would walk again, for every arena object,
   the containers CPython has just walked.

   The callback's info says neither (no version up to 3.15 passes the
   reason), so the hook reads it from the counts at "start", before CPython
   updates them: CPython chooses generation 2 by itself only when gc is
   enabled, count0 > threshold0 > 0 (3.11 collects inside the allocation
   that crossed it, 3.12+ at the next eval-breaker check) and count2 >
   threshold2.  Any other full collection was asked for.  The rule errs in
   one direction only where a program calls gc.collect() within the few
   bytecodes between the allocation that crosses threshold0 and the
   collection it schedules, while the long-lived rule holds back CPython's
   full collections; such a gc.collect() is taken for an automatic one, and
   the arena's cycles it missed are found by the next gc.collect() or the
   arena's own next full collection.

   After an automatic full collection, each arena with automatic collection
   on that allocated since its last collection collects what its own policy
   chooses (at least generation 0), so that an arena that stopped
   allocating does not keep its young cycles until exit. */
static int
cpython_chose_full_collection(void)
{
    if (!PyGC_IsEnabled()) {
        return 0;
    }
    Py_ssize_t count[3], threshold[3];
    PyObject *gcmod = PyImport_ImportModule("gc");
    PyObject *c = gcmod != NULL ? PyObject_CallMethod(gcmod, "get_count", NULL) : NULL;
    PyObject *t = gcmod != NULL ? PyObject_CallMethod(gcmod, "get_threshold", NULL) : NULL;
    int ok = c != NULL && t != NULL
             && PyArg_ParseTuple(c, "nnn", &count[0], &count[1], &count[2])
             && PyArg_ParseTuple(t, "nnn", &threshold[0], &threshold[1], &threshold[2]);
    Py_XDECREF(c);
    Py_XDECREF(t);
    Py_XDECREF(gcmod);
    if (!ok) {
        PyErr_Clear();      /* unknown: taken as asked for, the safe side */
        return 0;
    }
    return threshold[0] > 0 && count[0] > threshold[0] && count[2] > threshold[2];
}

static int
wants_collection_after_gc(OaArenaObject *a)
{
    return a->gc.enabled && !a->gc.collecting;
}

static PyObject *
mod_after_gc(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1])) {
        Py_RETURN_NONE;
    }
    PyObject *gen = PyDict_GetItemString(args[1], "generation");
    if (gen == NULL || !PyLong_Check(gen) || PyLong_AsLong(gen) != 2) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    OaState *st = oa_state_of_module(mod);
    if (PyUnicode_CompareWithASCIIString(args[0], "start") == 0) {
        st->cpython_full_is_automatic = cpython_chose_full_collection();
        Py_RETURN_NONE;
    }
    if (PyUnicode_CompareWithASCIIString(args[0], "stop") != 0) {
        Py_RETURN_NONE;
    }
    int automatic = st->cpython_full_is_automatic;
    st->cpython_full_is_automatic = 0;
    if (!automatic) {
        if (collect_arenas(st, wants_collection_after_gc) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *arenas = select_arenas(st, wants_collection_after_gc);
    if (arenas == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(arenas); i++) {
        oa_gc_collect_due((OaArenaObject *)PyList_GET_ITEM(arenas, i));
    }
    Py_DECREF(arenas);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_shutdown", mod_shutdown, METH_NOARGS,
     "Collect every arena; registered with atexit."},
    {"_after_gc", (PyCFunction)(void (*)(void))mod_after_gc, METH_FASTCALL,
     "gc.callbacks entry: gc.collect() collects every arena; CPython's automatic "
     "full collections run the arenas' own policy."},
    {"arena_footprint", mod_arena_footprint, METH_O,
     "arena_footprint(obj) -> int or None\n\nBytes one arena object really "
     "costs (its page divided among the page's blocks); None for other objects."},
    {"arena_of", mod_arena_of, METH_O,
     "arena_of(obj) -> Arena or None\n\nThe Arena holding obj."},
    {"_fail_os_alloc", mod_fail_os_alloc, METH_O,
     "Test hook: make the n-th next OS request of the arena core fail (0: off)."},
    {"_os_alloc_count", mod_os_alloc_count, METH_NOARGS,
     "Test hook: OS requests made by the arena core so far."},
    {"_work_bytes", mod_work_bytes, METH_NOARGS,
     "Test hook: (working memory of the arena core and the collector in use "
     "now, its peak since the last call)."},
    {"_validate", mod_validate, METH_O,
     "Test hook: check the arena's invariants; AssertionError if one is broken."},
    {0}
};

/* ------------------------------------------------------------------------ */
/* Module life cycle                                                          */

static int
module_exec(PyObject *mod)
{
#ifdef Py_GIL_DISABLED
    PyErr_SetString(PyExc_ImportError,
                    "objarena does not support the free-threaded build of "
                    "CPython: its collector cannot stop the world to traverse "
                    "foreign objects safely");
    return -1;
#endif
    OaState *st = oa_state_of_module(mod);
    if (oa_arena_module_init(mod, st) < 0) {
        return -1;
    }
    if (oa_types_module_init(mod, st) < 0) {
        return -1;
    }
    st->exit_watch_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &exit_watch_spec,
                                                                   NULL);
    if (st->exit_watch_type == NULL) {
        return -1;
    }
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        return -1;
    }
    PyObject *shutdown = PyObject_GetAttrString(mod, "_shutdown");
    PyObject *r = shutdown != NULL
                  ? PyObject_CallMethod(atexit, "register", "O", shutdown) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(shutdown);
    Py_DECREF(atexit);
    if (r == NULL) {
        return -1;
    }
    PyObject *gcmod = PyImport_ImportModule("gc");
    if (gcmod == NULL) {
        return -1;
    }
    PyObject *callbacks = PyObject_GetAttrString(gcmod, "callbacks");
    PyObject *hook = PyObject_GetAttrString(mod, "_after_gc");
    int ok = callbacks != NULL && hook != NULL && PyList_Check(callbacks)
             && PyList_Append(callbacks, hook) == 0;
    Py_XDECREF(hook);
    Py_XDECREF(callbacks);
    Py_DECREF(gcmod);
    return ok ? 0 : -1;
}

static int
module_traverse(PyObject *mod, visitproc visit, void *arg)
{
    OaState *st = oa_state_of_module(mod);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->arena_type);
    Py_VISIT(st->meta_type);
    Py_VISIT(st->base_type);
    Py_VISIT(st->slot_base);
    Py_VISIT(st->obj_base);
    Py_VISIT(st->dyn_base);
    Py_VISIT(st->obj);
    Py_VISIT(st->slotobj);
    Py_VISIT(st->default_arena);
    Py_VISIT(st->refinfo_type);
    Py_VISIT(st->exit_watch_type);
    Py_VISIT(st->abc_init);
    Py_VISIT(st->abc_instancecheck);
    Py_VISIT(st->abc_subclasscheck);
    Py_VISIT(st->type_subclasscheck);
    Py_VISIT(st->str_class);
    Py_VISIT(st->str_init);
    return oa_typed_traverse_state(st, visit, arg);
}

static int
module_clear(PyObject *mod)
{
    OaState *st = oa_state_of_module(mod);
    if (st == NULL) {
        return 0;
    }
    /* Teardown: collect every arena, then release what its objects hold,
       while the interpreter can still run their deallocs. */
    if (!st->torn_down) {
        st->torn_down = 1;
        PyObject *arenas = select_arenas(st, NULL);
        if (arenas == NULL) {
            PyErr_Clear();
        }
        for (Py_ssize_t i = 0; arenas != NULL && i < PyList_GET_SIZE(arenas); i++) {
            oa_arena_teardown((OaArenaObject *)PyList_GET_ITEM(arenas, i));
        }
        Py_XDECREF(arenas);
    }
    Py_CLEAR(st->refinfo_type);
    Py_CLEAR(st->exit_watch_type);
    oa_typed_clear_state(st);
    Py_CLEAR(st->slotobj);
    Py_CLEAR(st->obj);
    Py_CLEAR(st->slot_base);
    Py_CLEAR(st->obj_base);
    Py_CLEAR(st->dyn_base);
    Py_CLEAR(st->base_type);
    Py_CLEAR(st->meta_type);
    Py_CLEAR(st->default_arena);
    Py_CLEAR(st->arena_type);
    Py_CLEAR(st->abc_init);
    Py_CLEAR(st->abc_instancecheck);
    Py_CLEAR(st->abc_subclasscheck);
    Py_CLEAR(st->type_subclasscheck);
    Py_CLEAR(st->str_class);
    Py_CLEAR(st->str_init);
    return 0;
}

static void
module_free(void *mod)
{
    (void)module_clear((PyObject *)mod);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* The arenas and the dealloc queue are per module, but objects of one
       interpreter must never be freed by another: one interpreter only. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

PyModuleDef oa_moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "objarena._objarena",
    .m_doc = "objarena's C core: arenas, arena types and their objects.",
    .m_size = sizeof(OaState),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__objarena(void)
{
    return PyModuleDef_Init(&oa_moduledef);
}
