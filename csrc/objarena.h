/*
 * objarena.h -- what the Python layers of objarena share: the module state,
 * the Arena object and the arena type (the metaclass's instances).
 *
 * Layers: arena.c (no Python) <- module.c (Arena, module) <- types.c
 * (ArenaType, SlotObj).  Names: oa_ for the allocator core, OA_/Oa for the
 * Python layer's shared names, static for the rest.
 */
#ifndef OBJARENA_OBJARENA_H
#define OBJARENA_OBJARENA_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "arena.h"

#if PY_VERSION_HEX >= 0x030C0000
#  define OA_T_OBJECT_EX Py_T_OBJECT_EX
#  define OA_T_PYSSIZET Py_T_PYSSIZET
#  define OA_READONLY Py_READONLY
#else
#  include <structmember.h>
#  define OA_T_OBJECT_EX T_OBJECT_EX
#  define OA_T_PYSSIZET T_PYSSIZET
#  define OA_READONLY READONLY
#endif

#if PY_VERSION_HEX < 0x030A0000
#error "objarena needs CPython 3.10 or later"
#endif

/* The Arena object: a Python handle on one allocator-core arena.  Every
   arena type holds a strong reference to its Arena, and every instance to
   its type, so the Arena outlives its objects. */
typedef struct {
    PyObject_HEAD
    oa_arena *core;
    PyObject *name;             /* str or None */
    PyObject *weakreflist;
    int dealloc_depth;          /* nesting of arena deallocs in progress */
    PyObject *deferred;         /* objects whose dealloc waits; linked
                                   through their ob_refcnt word */
} OaArenaObject;

/* What kind of storage an arena type's instances have. */
typedef enum {
    OA_KIND_SLOT = 1,           /* SlotObj: fixed fields only */
} OaKind;

/* An arena type: a heap type with the layout facts the C code needs on the
   hot paths.  Instances of ArenaType have this layout. */
typedef struct {
    PyHeapTypeObject ht;
    int ready;                  /* 1 once ArenaType.__new__ has patched it */
    OaKind kind;
    OaArenaObject *arena;       /* strong */
    PyObject *fields;           /* tuple of str: every field, inherited first */
    Py_ssize_t *offsets;        /* offsets[i]: byte offset of fields[i] */
    PyMemberDef *members;       /* this class's own member descriptors' defs */
    PyObject *field_index;      /* dict: field name -> index */
    PyObject *module;           /* strong: the objarena module */
} OaTypeObject;

typedef struct {
    PyTypeObject *arena_type;   /* objarena.Arena */
    PyTypeObject *meta_type;    /* objarena.ArenaType */
    PyTypeObject *base_type;    /* the C base of every arena class */
    PyObject *slotobj;          /* objarena.SlotObj */
    PyObject *default_arena;
    int creating_root;          /* set while the module builds SlotObj */
} OaState;

extern PyModuleDef oa_moduledef;

static inline OaState *
oa_state_of_module(PyObject *mod)
{
    return (OaState *)PyModule_GetState(mod);
}

/* module.c */
int oa_arena_module_init(PyObject *mod, OaState *st);
PyObject *oa_arena_create(OaState *st, PyObject *name, size_t max_bytes);
PyObject *oa_raise_alloc_error(OaArenaObject *arena, size_t size);

/* types.c */
int oa_types_module_init(PyObject *mod, OaState *st);
int oa_is_arena_object(PyObject *obj);
OaState *oa_state_from_type(PyTypeObject *type);
PyObject *oa_object_alloc(OaTypeObject *type);

#endif /* OBJARENA_OBJARENA_H */
