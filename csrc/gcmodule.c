/*
 * gcmodule.c -- the gc-like API of Arena (as CPython keeps Modules/gcmodule.c
 * apart from Python/gc.c): argument checking and the views of the arena's
 * side tables.  The collector and its policy are in gc.c.
 */
#include "objarena.h"

static int
check_generation(int gen)
{
    if (gen < 0 || gen > 2) {
        PyErr_SetString(PyExc_ValueError, "invalid generation");
        return -1;
    }
    return 0;
}

static PyObject *
arena_collect(OaArenaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"generation", NULL};
    int gen = 2;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:collect", kwlist, &gen)) {
        return NULL;
    }
    if (check_generation(gen) < 0) {
        return NULL;
    }
    Py_ssize_t n = oa_gc_collect(self, gen);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
arena_get_count(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    OaGC *gc = &self->gc;
    return Py_BuildValue("(nnn)", gc->count[0], gc->count[1], gc->count[2]);
}

static PyObject *
arena_get_threshold(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    OaGC *gc = &self->gc;
    return Py_BuildValue("(iii)", gc->threshold[0], gc->threshold[1], gc->threshold[2]);
}

static PyObject *
arena_set_threshold(OaArenaObject *self, PyObject *args)
{
    OaGC *gc = &self->gc;
    int t[3] = {gc->threshold[0], gc->threshold[1], gc->threshold[2]};
    if (!PyArg_ParseTuple(args, "i|ii:set_threshold", &t[0], &t[1], &t[2])) {
        return NULL;
    }
    memcpy(gc->threshold, t, sizeof(t));
    Py_RETURN_NONE;
}

static PyObject *
arena_enable(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    self->gc.enabled = 1;
    Py_RETURN_NONE;
}

static PyObject *
arena_disable(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    self->gc.enabled = 0;
    Py_RETURN_NONE;
}

static PyObject *
arena_isenabled(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->gc.enabled);
}

static PyObject *
arena_get_stats(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
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

static PyObject *
arena_set_debug(OaArenaObject *self, PyObject *arg)
{
    int flags = oa_as_int(arg);
    if (flags == -1 && PyErr_Occurred()) {
        return NULL;
    }
    self->gc.debug = flags;
    Py_RETURN_NONE;
}

static PyObject *
arena_get_debug(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
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

static PyObject *
arena_get_objects(OaArenaObject *self, PyObject *args, PyObject *kwds)
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

static PyObject *
arena_is_tracked(OaArenaObject *self, PyObject *obj)
{
    /* An object that holds no reference but its class (typed fields only)
       is never tracked, as CPython's gc leaves atomic objects untracked. */
    return PyBool_FromLong(in_arena(self, obj) && !oa_untracked(obj));
}

static PyObject *
arena_is_finalized(OaArenaObject *self, PyObject *obj)
{
    return PyBool_FromLong(in_arena(self, obj) && (*oa_meta_of(obj) & OA_META_FINALIZED));
}

static PyObject *
arena_generation_of(OaArenaObject *self, PyObject *obj)
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

static PyObject *
arena_get_referents(OaArenaObject *self, PyObject *args)
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
        oa_gc_expose_attrs(obj);
        if (visit_append((PyObject *)Py_TYPE(obj), result) < 0
            || oa_traverse_fields(obj, visit_append, result) < 0) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
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

static PyObject *
arena_freeze(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    MoveGens m = {0, 2, 3};
    oa_visit_live(self->core, move_gen, &m);
    for (int i = 0; i < 3; i++) {
        self->gc.count[i] = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *
arena_unfreeze(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
{
    MoveGens m = {3, 3, 2};
    oa_visit_live(self->core, move_gen, &m);
    Py_RETURN_NONE;
}

static PyObject *
arena_get_freeze_count(OaArenaObject *self, PyObject *Py_UNUSED(ignored))
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

static PyObject *
arena_refinfo(OaArenaObject *self, PyObject *obj)
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

#define GC_DOC(name, text) name "\n\n" text

static PyMethodDef gc_methods[] = {
    {"collect", (PyCFunction)(void (*)(void))arena_collect, METH_VARARGS | METH_KEYWORDS,
     GC_DOC("collect(generation=2) -> int", "Collect generations 0..generation of "
            "this arena; return the number of unreachable objects found.")},
    {"get_count", (PyCFunction)arena_get_count, METH_NOARGS,
     GC_DOC("get_count() -> (count0, count1, count2)", "As gc.get_count().")},
    {"get_threshold", (PyCFunction)arena_get_threshold, METH_NOARGS,
     GC_DOC("get_threshold() -> (t0, t1, t2)", "As gc.get_threshold().")},
    {"set_threshold", (PyCFunction)arena_set_threshold, METH_VARARGS,
     GC_DOC("set_threshold(threshold0[, threshold1[, threshold2]])",
            "As gc.set_threshold().")},
    {"enable", (PyCFunction)arena_enable, METH_NOARGS,
     GC_DOC("enable()", "Enable automatic collection.")},
    {"disable", (PyCFunction)arena_disable, METH_NOARGS,
     GC_DOC("disable()", "Disable automatic collection.")},
    {"isenabled", (PyCFunction)arena_isenabled, METH_NOARGS,
     GC_DOC("isenabled() -> bool", "Is automatic collection enabled?")},
    {"get_stats", (PyCFunction)arena_get_stats, METH_NOARGS,
     GC_DOC("get_stats() -> list of 3 dicts", "collections, collected and "
            "uncollectable per generation (3.15+: also candidates and "
            "duration), as the running gc.get_stats().")},
    {"set_debug", (PyCFunction)arena_set_debug, METH_O,
     GC_DOC("set_debug(flags)", "DEBUG_STATS, DEBUG_COLLECTABLE, DEBUG_SAVEALL...")},
    {"get_debug", (PyCFunction)arena_get_debug, METH_NOARGS,
     GC_DOC("get_debug() -> int", "The debug flags.")},
    {"get_objects", (PyCFunction)(void (*)(void))arena_get_objects,
     METH_VARARGS | METH_KEYWORDS,
     GC_DOC("get_objects(generation=None) -> list", "The arena's objects, of one "
            "generation or of generations 0..2.")},
    {"is_tracked", (PyCFunction)arena_is_tracked, METH_O,
     GC_DOC("is_tracked(obj) -> bool", "Is obj an object of this arena?")},
    {"is_finalized", (PyCFunction)arena_is_finalized, METH_O,
     GC_DOC("is_finalized(obj) -> bool", "Has obj's __del__ run?")},
    {"generation_of", (PyCFunction)arena_generation_of, METH_O,
     GC_DOC("generation_of(obj) -> int", "0, 1, 2, or 3 when frozen.")},
    {"get_referents", (PyCFunction)arena_get_referents, METH_VARARGS,
     GC_DOC("get_referents(*objs) -> list", "What the arena objects among objs "
            "refer to.")},
    {"get_referrers", (PyCFunction)oa_gc_get_referrers, METH_VARARGS,
     GC_DOC("get_referrers(*objs) -> list", "Arena objects, and containers "
            "reachable from them, that refer to any of objs.")},
    {"freeze", (PyCFunction)arena_freeze, METH_NOARGS,
     GC_DOC("freeze()", "Move every object to the permanent generation.")},
    {"unfreeze", (PyCFunction)arena_unfreeze, METH_NOARGS,
     GC_DOC("unfreeze()", "Move the permanent generation back into generation 2.")},
    {"get_freeze_count", (PyCFunction)arena_get_freeze_count, METH_NOARGS,
     GC_DOC("get_freeze_count() -> int", "Objects in the permanent generation.")},
    {"refinfo", (PyCFunction)arena_refinfo, METH_O,
     GC_DOC("refinfo(obj) -> RefInfo(refcount, internal, external)",
            "The references to obj other than the call's own (a variable "
            "passed directly counts once on every version), those held by "
            "arena objects, and the rest.")},
    {0}
};

/* Give the Arena type the gc-like methods (its own are in module.c). */
int
oa_gcmodule_init(PyTypeObject *arena_type)
{
    for (PyMethodDef *def = gc_methods; def->ml_name != NULL; def++) {
        PyObject *descr = PyDescr_NewMethod(arena_type, def);
        if (descr == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(arena_type->tp_dict, def->ml_name, descr);
        Py_DECREF(descr);
        if (r < 0) {
            return -1;
        }
    }
    PyType_Modified(arena_type);
    return 0;
}
