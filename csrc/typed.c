/*
 * typed.c -- typed fields: numbers stored unboxed in an arena object.
 *
 * A SlotObj class may declare a field with one of the markers objarena
 * exports (`t: f64`, `count: i64`, `ok: boolean`).  Such a field holds a C
 * number inside the object instead of a reference to a Python number: an
 * f64 takes 8 bytes where a native attribute takes an 8-byte pointer plus a
 * 24-byte float object.  The metaclass (types.c) lays typed fields out after
 * the object fields, by alignment; this file holds
 *
 *   - the markers: instances of objarena.FieldType, one per C type;
 *   - the conversions between C numbers and Python objects (oa_typed_get,
 *     oa_typed_set), shared by the descriptor, __init__ and repr;
 *   - TypedMember, the data descriptor of one typed field.
 *
 * Conversions (the rule: what the matching C conversion accepts, else
 * TypeError or OverflowError, and the field unchanged):
 *   f64      PyFloat_AsDouble: float, int, objects with __float__/__index__;
 *            an int too large for a double raises OverflowError.
 *   f32      the same, then rounded to float; a finite value beyond the float
 *            range raises OverflowError, as struct.pack('<f') (PyFloat_Pack4)
 *            does (array('f'), ctypes and native struct 'f' store inf).
 *   i64..u8  operator.index() (int, bool, objects with __index__; a float is
 *            a TypeError), then a range check: OverflowError outside the C
 *            type's range, as array.array raises for the same type codes
 *            (q i h b / Q I H B).
 *   boolean  True or False only, as CPython's T_BOOL members (TypeError
 *            otherwise): a truth-value conversion would store "no" as True.
 *
 * Why not CPython's own typed members (PyMemberDef Py_T_DOUBLE ... T_BOOL)?
 * Speed is no reason to prefer them: the interpreter specialises member
 * descriptors of object slots only (Py_T_OBJECT_EX), so every other member
 * type takes the generic attribute path (a type lookup through the method
 * cache, one tp_descr_get/tp_descr_set call), exactly as this descriptor
 * does; a read or write through a T_DOUBLE member costs a little more than
 * through a TypedMember (benchmarks/profile_typed.py measures both).  Their semantics (tools/member_semantics.py prints them for the
 * running Python):
 *   - T_DOUBLE, T_LONGLONG and T_BOOL convert as above on 3.10 to 3.15;
 *   - T_ULONGLONG too on 3.10 to 3.13, but from 3.14 it stores -1 as
 *     2**64-1 with a RuntimeWarning;
 *   - T_FLOAT has no range check (1e300 is stored as inf);
 *   - T_INT, T_SHORT, T_BYTE, T_UINT, T_USHORT, T_UBYTE store a truncated
 *     value out of range, with a RuntimeWarning (300 in a T_UBYTE is 44);
 *   - deleting any of them raises "can't delete numeric/char attribute",
 *     which names neither the field nor the class.
 * Seven of the eleven types do not fit, and none deletes with a useful
 * message; one descriptor for every typed field gives one semantics on
 * every version, messages that name the field, introspection (field_type,
 * offset), and the same speed.
 */
#include "objarena.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The field types                                                            */

typedef struct {
    const char *name;
    Py_ssize_t size;            /* bytes; also the alignment */
    long long min;              /* integer types: the range (u64: see below) */
    unsigned long long max;
} TypeInfo;

static const TypeInfo type_info[OA_FT_COUNT] = {
    [OA_FT_OBJECT] = {"object", sizeof(PyObject *), 0, 0},
    [OA_FT_F64] = {"f64", 8, 0, 0},
    [OA_FT_F32] = {"f32", 4, 0, 0},
    [OA_FT_I64] = {"i64", 8, INT64_MIN, INT64_MAX},
    [OA_FT_I32] = {"i32", 4, INT32_MIN, INT32_MAX},
    [OA_FT_I16] = {"i16", 2, INT16_MIN, INT16_MAX},
    [OA_FT_I8] = {"i8", 1, INT8_MIN, INT8_MAX},
    [OA_FT_U64] = {"u64", 8, 0, UINT64_MAX},
    [OA_FT_U32] = {"u32", 4, 0, UINT32_MAX},
    [OA_FT_U16] = {"u16", 2, 0, UINT16_MAX},
    [OA_FT_U8] = {"u8", 1, 0, UINT8_MAX},
    [OA_FT_BOOL] = {"boolean", 1, 0, 1},
};

Py_ssize_t
oa_field_type_size(OaFieldType type)
{
    return type_info[type].size;
}

const char *
oa_field_type_name(OaFieldType type)
{
    return type_info[type].name;
}

/* ------------------------------------------------------------------------ */
/* Conversions                                                                */

PyObject *
oa_typed_get(const char *addr, OaFieldType type)
{
    switch (type) {
    case OA_FT_F64: {
        double v;
        memcpy(&v, addr, sizeof v);
        return PyFloat_FromDouble(v);
    }
    case OA_FT_F32: {
        float v;
        memcpy(&v, addr, sizeof v);
        return PyFloat_FromDouble((double)v);
    }
    case OA_FT_I64: {
        int64_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromLongLong((long long)v);
    }
    case OA_FT_I32: {
        int32_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromLong((long)v);
    }
    case OA_FT_I16: {
        int16_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromLong((long)v);
    }
    case OA_FT_I8:
        return PyLong_FromLong((long)*(const int8_t *)addr);
    case OA_FT_U64: {
        uint64_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromUnsignedLongLong((unsigned long long)v);
    }
    case OA_FT_U32: {
        uint32_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromUnsignedLong((unsigned long)v);
    }
    case OA_FT_U16: {
        uint16_t v;
        memcpy(&v, addr, sizeof v);
        return PyLong_FromLong((long)v);
    }
    case OA_FT_U8:
        return PyLong_FromLong((long)*(const uint8_t *)addr);
    case OA_FT_BOOL:
        return PyBool_FromLong(*(const uint8_t *)addr);
    default:
        PyErr_SetString(PyExc_SystemError, "objarena: not a typed field");
        return NULL;
    }
}

static int
set_double(char *addr, OaFieldType type, PyObject *value)
{
    double d = PyFloat_CheckExact(value) ? PyFloat_AS_DOUBLE(value)
                                         : PyFloat_AsDouble(value);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (type == OA_FT_F64) {
        memcpy(addr, &d, sizeof d);
        return 0;
    }
    /* A double beyond the float range is undefined behaviour to convert in
       C: decide as IEEE rounding to nearest would, and as struct.pack('<f')
       does.  Below FLT_MAX plus half its ulp (2**103) the nearest float is
       FLT_MAX; from there on it would be inf, which is an overflow. */
    float f;
    if (isfinite(d) && fabs(d) > (double)FLT_MAX) {
        if (fabs(d) >= (double)FLT_MAX + 0x1p103) {
            PyErr_SetString(PyExc_OverflowError, "float too large for an f32 field");
            return -1;
        }
        f = d > 0 ? FLT_MAX : -FLT_MAX;
    }
    else {
        f = (float)d;
    }
    memcpy(addr, &f, sizeof f);
    return 0;
}

static int
out_of_range(OaFieldType type, PyObject *index)
{
    const TypeInfo *ti = &type_info[type];
    if (type == OA_FT_U64) {
        PyErr_Format(PyExc_OverflowError,
                     "%S out of range for a u64 field (0 to 2**64-1)", index);
    }
    else {
        /* "an i8", "an f32", but "a u8" */
        PyErr_Format(PyExc_OverflowError, "%S out of range for a%s %s field (%lld to %llu)",
                     index, ti->name[0] == 'u' ? "" : "n", ti->name, ti->min, ti->max);
    }
    return -1;
}

static int
set_integer(char *addr, OaFieldType type, PyObject *value)
{
    PyObject *index = PyLong_CheckExact(value) ? Py_NewRef(value) : PyNumber_Index(value);
    if (index == NULL) {
        return -1;
    }
    /* From here `index` is an exact int: no user code runs. */
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(index);
        return -1;
    }
    if (type == OA_FT_U64) {
        unsigned long long u;
        if (overflow == 0 && v >= 0) {
            u = (unsigned long long)v;
        }
        else if (overflow > 0) {
            u = PyLong_AsUnsignedLongLong(index);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                out_of_range(type, index);
                Py_DECREF(index);
                return -1;
            }
        }
        else {
            out_of_range(type, index);
            Py_DECREF(index);
            return -1;
        }
        uint64_t w = (uint64_t)u;
        memcpy(addr, &w, sizeof w);
        Py_DECREF(index);
        return 0;
    }
    const TypeInfo *ti = &type_info[type];
    if (overflow != 0 || v < ti->min || (v > 0 && (unsigned long long)v > ti->max)) {
        out_of_range(type, index);
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    switch (type) {
    case OA_FT_I64: { int64_t w = (int64_t)v; memcpy(addr, &w, sizeof w); break; }
    case OA_FT_I32: { int32_t w = (int32_t)v; memcpy(addr, &w, sizeof w); break; }
    case OA_FT_I16: { int16_t w = (int16_t)v; memcpy(addr, &w, sizeof w); break; }
    case OA_FT_I8: *(int8_t *)addr = (int8_t)v; break;
    case OA_FT_U32: { uint32_t w = (uint32_t)v; memcpy(addr, &w, sizeof w); break; }
    case OA_FT_U16: { uint16_t w = (uint16_t)v; memcpy(addr, &w, sizeof w); break; }
    case OA_FT_U8: *(uint8_t *)addr = (uint8_t)v; break;
    default: break;
    }
    return 0;
}

/* Convert `value` and store it at addr; on error the field is unchanged. */
int
oa_typed_set(char *addr, OaFieldType type, PyObject *value)
{
    switch (type) {
    case OA_FT_F64:
    case OA_FT_F32:
        return set_double(addr, type, value);
    case OA_FT_BOOL:
        if (value == Py_True || value == Py_False) {
            *(uint8_t *)addr = value == Py_True;
            return 0;
        }
        PyErr_Format(PyExc_TypeError,
                     "a boolean field takes True or False, not '%.100s'",
                     Py_TYPE(value)->tp_name);
        return -1;
    case OA_FT_OBJECT:
    case OA_FT_COUNT:
        PyErr_SetString(PyExc_SystemError, "objarena: not a typed field");
        return -1;
    default:
        return set_integer(addr, type, value);
    }
}

/* ------------------------------------------------------------------------ */
/* FieldType: the markers f64 ... boolean                                     */

typedef struct {
    PyObject_HEAD
    OaFieldType type;
    PyObject *name;             /* str */
    PyObject *python_type;      /* float, int or bool */
} FieldTypeObject;

static void
field_type_dealloc(PyObject *self)
{
    FieldTypeObject *ft = (FieldTypeObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(ft->name);
    Py_CLEAR(ft->python_type);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
field_type_repr(PyObject *self)
{
    return PyUnicode_FromFormat("objarena.%U", ((FieldTypeObject *)self)->name);
}

/* Pickled and copied by name: the marker is the module's attribute. */
static PyObject *
field_type_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(((FieldTypeObject *)self)->name);
}

static PyObject *
field_type_get_size(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(type_info[((FieldTypeObject *)self)->type].size);
}

static PyMemberDef field_type_members[] = {
    {"name", OA_T_OBJECT_EX, offsetof(FieldTypeObject, name), OA_READONLY,
     "the marker's name: 'f64', 'i32', 'boolean' ..."},
    {"python_type", OA_T_OBJECT_EX, offsetof(FieldTypeObject, python_type), OA_READONLY,
     "the type a read returns: float, int or bool"},
    {NULL},
};

static PyGetSetDef field_type_getset[] = {
    {"size", field_type_get_size, NULL, "bytes the field takes in the object", NULL},
    {NULL},
};

static PyMethodDef field_type_methods[] = {
    {"__reduce__", field_type_reduce, METH_NOARGS, "pickled by name"},
    {NULL},
};

static PyType_Slot field_type_slots[] = {
    {Py_tp_dealloc, field_type_dealloc},
    {Py_tp_repr, field_type_repr},
    {Py_tp_members, field_type_members},
    {Py_tp_getset, field_type_getset},
    {Py_tp_methods, field_type_methods},
    {Py_tp_doc, "The type of a typed field, used as an annotation in a SlotObj "
                "class: objarena.f64, f32, i64, i32, i16, i8, u64, u32, u16, u8, "
                "boolean."},
    {0, NULL},
};

static PyType_Spec field_type_spec = {
    .name = "objarena.FieldType",
    .basicsize = sizeof(FieldTypeObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = field_type_slots,
};

OaFieldType
oa_field_type_of(OaState *st, PyObject *marker)
{
    if (Py_TYPE(marker) != st->field_type_type) {
        return OA_FT_OBJECT;
    }
    return ((FieldTypeObject *)marker)->type;
}

/* ------------------------------------------------------------------------ */
/* TypedMember: the descriptor of one typed field                             */

typedef struct {
    PyObject_HEAD
    PyTypeObject *owner;        /* strong: the class that declared the field */
    PyObject *name;             /* str */
    OaField field;
} TypedMember;

static int
check_owner(TypedMember *m, PyObject *obj)
{
    if (Py_TYPE(obj) == m->owner || PyObject_TypeCheck(obj, m->owner)) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "descriptor '%U' for '%.100s' objects doesn't apply to a '%.100s' object",
                 m->name, m->owner->tp_name, Py_TYPE(obj)->tp_name);
    return -1;
}

static PyObject *
typed_member_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    TypedMember *m = (TypedMember *)self;
    if (obj == NULL) {
        return Py_NewRef(self);
    }
    if (check_owner(m, obj) < 0) {
        return NULL;
    }
    const char *addr = (const char *)obj + m->field.offset;
    if (m->field.type == OA_FT_F64) {          /* the common case, inline */
        double v;
        memcpy(&v, addr, sizeof v);
        return PyFloat_FromDouble(v);
    }
    return oa_typed_get(addr, m->field.type);
}

static int
typed_member_set(PyObject *self, PyObject *obj, PyObject *value)
{
    TypedMember *m = (TypedMember *)self;
    if (check_owner(m, obj) < 0) {
        return -1;
    }
    if (value == NULL) {
        PyErr_Format(PyExc_TypeError,
                     "cannot delete field '%U' of '%.100s' objects: "
                     "a typed field (%s) always holds a value",
                     m->name, m->owner->tp_name, type_info[m->field.type].name);
        return -1;
    }
    return oa_typed_store((char *)obj + m->field.offset, m->field.type, value);
}

static int
typed_member_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((TypedMember *)self)->owner);
    return 0;
}

static int
typed_member_clear(PyObject *self)
{
    Py_CLEAR(((TypedMember *)self)->owner);
    return 0;
}

static void
typed_member_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)typed_member_clear(self);
    Py_CLEAR(((TypedMember *)self)->name);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
typed_member_repr(PyObject *self)
{
    TypedMember *m = (TypedMember *)self;
    return PyUnicode_FromFormat("<typed member '%U' (%s) of '%s' objects>", m->name,
                                type_info[m->field.type].name,
                                m->owner != NULL ? m->owner->tp_name : "?");
}

static PyObject *
typed_member_get_objclass(PyObject *self, void *Py_UNUSED(closure))
{
    TypedMember *m = (TypedMember *)self;
    if (m->owner == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef((PyObject *)m->owner);
}

static PyObject *
typed_member_get_type(PyObject *self, void *Py_UNUSED(closure))
{
    OaState *st = PyType_GetModuleState(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    return Py_NewRef(st->field_types[((TypedMember *)self)->field.type]);
}

static PyObject *
typed_member_get_offset(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(((TypedMember *)self)->field.offset);
}

static PyMemberDef typed_member_members[] = {
    {"__name__", OA_T_OBJECT_EX, offsetof(TypedMember, name), OA_READONLY, NULL},
    {NULL},
};

static PyGetSetDef typed_member_getset[] = {
    {"__objclass__", typed_member_get_objclass, NULL, "the class of the field", NULL},
    {"field_type", typed_member_get_type, NULL, "the field's type marker (objarena.f64 ...)",
     NULL},
    {"offset", typed_member_get_offset, NULL, "the field's byte offset in the object",
     NULL},
    {NULL},
};

static PyType_Slot typed_member_slots[] = {
    {Py_tp_dealloc, typed_member_dealloc},
    {Py_tp_repr, typed_member_repr},
    {Py_tp_traverse, typed_member_traverse},
    {Py_tp_clear, typed_member_clear},
    {Py_tp_descr_get, typed_member_get},
    {Py_tp_descr_set, typed_member_set},
    {Py_tp_members, typed_member_members},
    {Py_tp_getset, typed_member_getset},
    {Py_tp_doc, "Descriptor of a typed field: a number stored unboxed in the object."},
    {0, NULL},
};

static PyType_Spec typed_member_spec = {
    .name = "objarena.TypedMember",
    .basicsize = sizeof(TypedMember),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = typed_member_slots,
};

int
oa_is_typed_member(PyObject *op)
{
    return Py_TYPE(op)->tp_traverse == typed_member_traverse;
}

PyObject *
oa_typed_member_new(OaState *st, PyTypeObject *owner, PyObject *name, OaField field)
{
    TypedMember *m = PyObject_GC_New(TypedMember, st->typed_member_type);
    if (m == NULL) {
        return NULL;
    }
    m->owner = (PyTypeObject *)Py_NewRef((PyObject *)owner);
    m->name = Py_NewRef(name);
    m->field = field;
    PyObject_GC_Track((PyObject *)m);
    return (PyObject *)m;
}

/* ------------------------------------------------------------------------ */
/* Module state                                                               */

int
oa_typed_module_init(PyObject *mod, OaState *st)
{
    st->field_type_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &field_type_spec,
                                                                   NULL);
    if (st->field_type_type == NULL) {
        return -1;
    }
    st->typed_member_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &typed_member_spec, NULL);
    if (st->typed_member_type == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "FieldType", (PyObject *)st->field_type_type) < 0
        || PyModule_AddObjectRef(mod, "TypedMember", (PyObject *)st->typed_member_type) < 0) {
        return -1;
    }
    for (int k = OA_FT_F64; k < OA_FT_COUNT; k++) {
        FieldTypeObject *ft = PyObject_New(FieldTypeObject, st->field_type_type);
        if (ft == NULL) {
            return -1;
        }
        ft->type = (OaFieldType)k;
        ft->name = NULL;
        ft->python_type = Py_NewRef(k == OA_FT_BOOL ? (PyObject *)&PyBool_Type
                                    : k <= OA_FT_F32 ? (PyObject *)&PyFloat_Type
                                    : (PyObject *)&PyLong_Type);
        st->field_types[k] = (PyObject *)ft;
        ft->name = PyUnicode_FromString(type_info[k].name);
        if (ft->name == NULL
            || PyModule_AddObjectRef(mod, type_info[k].name, (PyObject *)ft) < 0) {
            return -1;
        }
    }
    return 0;
}

int
oa_typed_traverse_state(OaState *st, visitproc visit, void *arg)
{
    Py_VISIT(st->field_type_type);
    Py_VISIT(st->typed_member_type);
    for (int k = 0; k < OA_FT_COUNT; k++) {
        Py_VISIT(st->field_types[k]);
    }
    return 0;
}

void
oa_typed_clear_state(OaState *st)
{
    for (int k = 0; k < OA_FT_COUNT; k++) {
        Py_CLEAR(st->field_types[k]);
    }
    Py_CLEAR(st->typed_member_type);
    Py_CLEAR(st->field_type_type);
}
