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
oa_arena_create(OaState *st, PyObject *name, size_t max_bytes)
{
    OaArenaObject *self = PyObject_New(OaArenaObject, st->arena_type);
    if (self == NULL) {
        return NULL;
    }
    self->core = NULL;
    self->name = Py_NewRef(name);
    self->weakreflist = NULL;
    self->dealloc_depth = 0;
    self->deferred = NULL;
    self->core = oa_arena_new(max_bytes);
    if (self->core == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    oa_arena_set_owner(self->core, self);
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
    OaState *st = oa_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    return oa_arena_create(st, name, max_bytes);
}

static void
arena_dealloc(OaArenaObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    oa_arena_destroy(self->core);
    Py_XDECREF(self->name);
    tp->tp_free(self);
    Py_DECREF(tp);
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
    oa_class_stats *cs = PyMem_New(oa_class_stats, n ? n : 1);
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
    PyMem_Free(cs);
    return list;

error:
    PyMem_Free(cs);
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

static PyGetSetDef arena_getset[] = {
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
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = arena_slots,
};

int
oa_arena_module_init(PyObject *mod, OaState *st)
{
    st->arena_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &arena_spec, NULL);
    if (st->arena_type == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "Arena", (PyObject *)st->arena_type) < 0) {
        return -1;
    }
    st->default_arena = oa_arena_create(st, Py_None, 0);
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

static PyMethodDef module_methods[] = {
    {"arena_footprint", mod_arena_footprint, METH_O,
     "arena_footprint(obj) -> int or None\n\nBytes one arena object really "
     "costs (its page divided among the page's blocks); None for other objects."},
    {"arena_of", mod_arena_of, METH_O,
     "arena_of(obj) -> Arena or None\n\nThe Arena holding obj."},
    {"_fail_os_alloc", mod_fail_os_alloc, METH_O,
     "Test hook: make the n-th next OS request of the arena core fail (0: off)."},
    {"_os_alloc_count", mod_os_alloc_count, METH_NOARGS,
     "Test hook: OS requests made by the arena core so far."},
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
    return 0;
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
    Py_VISIT(st->slotobj);
    Py_VISIT(st->default_arena);
    return 0;
}

static int
module_clear(PyObject *mod)
{
    OaState *st = oa_state_of_module(mod);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->slotobj);
    Py_CLEAR(st->base_type);
    Py_CLEAR(st->meta_type);
    Py_CLEAR(st->default_arena);
    Py_CLEAR(st->arena_type);
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
