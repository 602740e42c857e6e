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

#include <string.h>

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
static inline int
oa_as_int(PyObject *o)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return -1;
    }
    return (int)v;
}

/* The collector's state of one arena: CPython's GCState, per arena. */
typedef struct {
    Py_ssize_t collections;
    Py_ssize_t collected;
    Py_ssize_t uncollectable;   /* always 0: arena objects have no legacy
                                   tp_del; kept for get_stats()'s keys */
    Py_ssize_t candidates;      /* shown on 3.15+ only, as gc.get_stats() */
    double duration;            /* seconds; likewise */
} OaGenStats;

/* 3.15's gc.get_stats() entries and the info of its callbacks carry
   "candidates" and "duration" beside the older keys (gh-140638); before,
   they have generation/collections, collected and uncollectable only.  The
   arena shows the keys of the running version. */
#if PY_VERSION_HEX >= 0x030F0000
#  define OA_GC_STATS_TIMED 1
#else
#  define OA_GC_STATS_TIMED 0
#endif

typedef struct {
    int threshold[3];
    Py_ssize_t count[3];
    int enabled;
    int debug;
    int collecting;
    unsigned untracked_slice;   /* automatic full collections so far: which
                                   pages' untracked records (gc.c; not the
                                   untracked pages of typed-only classes) the
                                   next one examines */
    Py_ssize_t long_lived_total;
    Py_ssize_t long_lived_pending;
    int untracked_allocated;    /* an untracked object was made since the last
                                   full collection (not in count[0]) */
    OaGenStats stats[3];
    PyObject *callbacks;        /* list of callables (phase, info) */
    PyObject *garbage;          /* list: DEBUG_SAVEALL keeps garbage here */
} OaGC;

#define OA_DEBUG_STATS 1
#define OA_DEBUG_COLLECTABLE 2
#define OA_DEBUG_UNCOLLECTABLE 4
#define OA_DEBUG_SAVEALL 32
#define OA_DEBUG_LEAK (OA_DEBUG_COLLECTABLE | OA_DEBUG_UNCOLLECTABLE | OA_DEBUG_SAVEALL)


typedef struct OaArenaObject OaArenaObject;
typedef struct OaTypeObject OaTypeObject;

struct OaArenaObject {
    PyObject_HEAD
    oa_arena *core;
    PyObject *name;             /* str or None */
    PyObject *weakreflist;
    int dealloc_depth;          /* nesting of arena deallocs in progress */
    PyObject **deferred;        /* objects whose dealloc waits (a stack);
                                   each keeps refcount 0, the state every
                                   CPython reads as dead */
    Py_ssize_t ndeferred;
    Py_ssize_t deferred_cap;
    PyObject *module;           /* strong: the objarena module */
    struct OaSideDicts *side_dicts; /* obj.c: the attribute dicts of objects
                                   that have no value slot, or NULL */
    Py_ssize_t ntypes;          /* arena classes holding this Arena */
    OaTypeObject *untracked_types; /* its classes with untracked instances
                                   (borrowed; linked through next_untracked) */
    OaArenaObject *next_arena;  /* the module's list of live arenas */
    OaArenaObject *prev_arena;
    OaGC gc;
};

/* What kind of storage an arena type's instances have. */
typedef enum {
    OA_KIND_SLOT = 1,           /* SlotObj: fixed fields only */
    OA_KIND_OBJ = 2,            /* Obj: dynamic attributes (+ fixed fields) */
} OaKind;

typedef struct OaShape OaShape;

/* What a field holds: an object reference, or a number stored unboxed in
   the object (typed.c).  The order is that of the markers objarena exports. */
typedef enum {
    OA_FT_OBJECT = 0,
    OA_FT_F64, OA_FT_F32,
    OA_FT_I64, OA_FT_I32, OA_FT_I16, OA_FT_I8,
    OA_FT_U64, OA_FT_U32, OA_FT_U16, OA_FT_U8,
    OA_FT_BOOL,
    OA_FT_COUNT
} OaFieldType;

/* One field of an arena class, in declaration order. */
typedef struct {
    Py_ssize_t offset;          /* byte offset in the object */
    OaFieldType type;
} OaField;

/* An arena type: a heap type with the layout facts the C code needs on the
   hot paths.  Instances of ArenaType have this layout. */
/* A function kept out of line, so that its caller's fast path stays small
   (CPython's Py_NO_INLINE only exists from 3.11). */
#if defined(__GNUC__) || defined(__clang__)
#  define OA_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#  define OA_NOINLINE __declspec(noinline)
#else
#  define OA_NOINLINE
#endif
/* And one inlined into each caller whatever the compiler's size heuristics
   say (a fast path with several callers). */
#if defined(__GNUC__) || defined(__clang__)
#  define OA_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define OA_ALWAYS_INLINE __forceinline
#else
#  define OA_ALWAYS_INLINE inline
#endif

/* obj.c: an entry of an Obj class's cache of names without a data
   descriptor. */
typedef struct {
    PyObject *name;             /* strong: an address is never reused while
                                   the entry holds it */
    unsigned int tag;           /* the tp_version_tag it holds for */
    Py_ssize_t canon_index;     /* its place in the class's shared keys once
                                   seen there, or -1 (they only grow: it stays
                                   valid) */
} OaPlainName;

struct OaTypeObject {
    PyHeapTypeObject ht;
    int ready;                  /* 1 once ArenaType.__new__ has patched it */
    OaKind kind;
    int dynamic;                /* instances have dynamic attributes: Obj
                                   classes, and SlotObj subclasses that
                                   declare neither __slots__ nor annotations */
    OaArenaObject *arena;       /* strong */
    /* The object fields: the references an instance owns (traverse, clear
       and the collector read these two). */
    PyObject *fields;           /* tuple of str: every object field, inherited first */
    Py_ssize_t *offsets;        /* offsets[i]: byte offset of fields[i] */
    PyMemberDef *members;       /* this class's own member descriptors' defs */
    /* Every field, object or typed, in declaration order (inherited first):
       the order of the generated __init__, __match_args__ and repr. */
    PyObject *names;            /* tuple of str */
    OaField *all;               /* all[i]: where names[i] lives, what it holds */
    PyObject **defaults;        /* defaults[i]: strong, or NULL: none */
    PyObject *field_index;      /* dict: field name -> index in names */
    Py_ssize_t ntyped;          /* typed fields among them */
    Py_ssize_t last_required;   /* index of the last typed field without a
                                   default (the call must give it), or -1 */
    int untracked;              /* instances hold no reference but their class:
                                   allocated untracked (arena.h), never seen by
                                   the collector, not counted by get_count() */
    OaTypeObject *next_untracked; /* the arena's list of untracked classes */
    OaTypeObject *prev_untracked;
    PyObject *module;           /* strong: the objarena module */
    int abc;                    /* the class is an ABC (see meta_is_abc) */
    int slotnames;              /* it or a base declared fields by annotation:
                                   it has __slotnames__ for copyreg */
    int pending;                /* fields declared by annotation with a value
                                   in the class body wait for their
                                   descriptors (see finish_pending_fields) */
    /* Obj classes only (obj.c): */
    OaShape *root_shape;        /* the empty shape; the class's shape tree */
    OaShape *canon;             /* the class's shared keys: a path of the tree
                                   that only grows (a reference) */
    Py_ssize_t nshapes;         /* shapes alive in the tree */
    Py_ssize_t learned;         /* value slots new instances get ... */
    Py_ssize_t dict_streak;     /* ... unless this many instances in a row
                                   ended their constructor in dict form for
                                   good (OA_DICT_STREAK): then just the one
                                   slot that holds the dict */
    PyObject *kw_names;         /* last keyword-names tuple of a call ... */
    OaShape *kw_shape;          /* ... the shape it leads to ... */
    int kw_canonical;           /* ... whether that is a prefix of canon ... */
    unsigned int kw_tag;        /* ... valid for this tp_version_tag */
    /* Names known to have no data descriptor on the type, for this
       tp_version_tag: their lookups go straight to the object's values. */
    OaPlainName plain_names[32];
};

typedef struct {
    PyTypeObject *arena_type;   /* objarena.Arena */
    PyTypeObject *meta_type;    /* objarena.ArenaType */
    PyTypeObject *base_type;    /* _ArenaBase: the C base of every arena class */
    PyTypeObject *slot_base;    /* _SlotBase: SlotObj's C base */
    PyTypeObject *obj_base;     /* _ObjBase: Obj's C base */
    PyTypeObject *dyn_base;     /* _DynamicBase: what a SlotObj subclass
                                   without __slots__ adds for its attributes */
    PyObject *obj;              /* objarena.Obj */
    PyObject *slotobj;          /* objarena.SlotObj */
    PyObject *default_arena;
    int creating_root;          /* set while the module builds SlotObj */
    int torn_down;              /* the arenas were cleared at teardown */
    int cpython_full_is_automatic; /* module.c: the running CPython full
                                   collection was chosen by CPython itself */
    OaArenaObject *arenas;      /* every live Arena (borrowed) */
    traverseproc heap_traverse; /* tp_traverse of a Python class's instances */
    PyTypeObject *refinfo_type; /* objarena.RefInfo */
    PyTypeObject *exit_watch_type; /* module.c: collections during finalization */
    PyTypeObject *field_type_type; /* typed.c: objarena.FieldType */
    PyTypeObject *typed_member_type; /* typed.c: descriptor of a typed field */
    PyObject *field_types[OA_FT_COUNT]; /* typed.c: f64 ... boolean ([0] unused) */
    /* types.c: ArenaType derives from abc.ABCMeta; an arena class is an ABC
       once abc's _abc_init ran for it. */
    PyObject *abc_init;         /* abc._abc_init */
    PyObject *abc_instancecheck;    /* ABCMeta.__instancecheck__ */
    PyObject *abc_subclasscheck;    /* ABCMeta.__subclasscheck__ */
    PyObject *type_subclasscheck;   /* type.__subclasscheck__ */
    PyObject *str_class;        /* "__class__", interned */
    PyObject *str_init;         /* "__init__", interned */
} OaState;

extern PyModuleDef oa_moduledef;

static inline OaState *
oa_state_of_module(PyObject *mod)
{
    return (OaState *)PyModule_GetState(mod);
}

/* module.c */
int oa_arena_module_init(PyObject *mod, OaState *st);
PyObject *oa_arena_create(OaState *st, PyObject *module, PyObject *name,
                          size_t max_bytes);
PyObject *oa_raise_alloc_error(OaArenaObject *arena, size_t size);

/* types.c */
void oa_meta_dealloc(PyObject *self);

/* A ready arena type, recognised by its metaclass's dealloc, so that no
   module state is needed on the hot paths. */
static inline int
oa_is_arena_type(PyTypeObject *type)
{
    for (PyTypeObject *m = Py_TYPE(type); m != NULL; m = m->tp_base) {
        if (m->tp_dealloc == oa_meta_dealloc) {
            return ((OaTypeObject *)type)->ready;
        }
    }
    return 0;
}

int oa_types_module_init(PyObject *mod, OaState *st);
int oa_finish_pending_fields(OaTypeObject *t);
int oa_apply_state(PyObject *self, PyObject *state, setattrofunc dict_part,
                   setattrofunc slots_part);
PyObject *oa_object_alloc_size(OaTypeObject *type, size_t size);
int oa_type_call_fallback_needed(PyTypeObject *tp);
/* A keyword that is a str subclass is first compared with `self`, as for a
   Python function's parameters: 0, or -1 with an exception (the "multiple
   values for argument 'self'" TypeError if it is equal). */
int oa_check_self_keyword(PyTypeObject *tp, PyObject *key);
PyObject *oa_type_call_generic(PyObject *callable, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames);
/* A call of an arena class whose generated __init__ gave way to another:
   straight to a Python __init__ when it is one, else oa_type_call_generic. */
PyObject *oa_type_call_own_init(PyObject *callable, PyObject *const *args,
                                size_t nargsf, PyObject *kwnames);

/* typed.c: numbers stored unboxed in the object. */
int oa_typed_module_init(PyObject *mod, OaState *st);
int oa_typed_traverse_state(OaState *st, visitproc visit, void *arg);
void oa_typed_clear_state(OaState *st);
OaFieldType oa_field_type_of(OaState *st, PyObject *marker);
Py_ssize_t oa_field_type_size(OaFieldType type);
const char *oa_field_type_name(OaFieldType type);
PyObject *oa_typed_get(const char *addr, OaFieldType type);
int oa_typed_set(char *addr, OaFieldType type, PyObject *value);
PyObject *oa_typed_member_new(OaState *st, PyTypeObject *owner, PyObject *name,
                              OaField field);
int oa_is_typed_member(PyObject *op);

/* oa_typed_set with the common cases inline: an exact float into an f64;
   an exact int of one digit (compact, |v| < 2**30) into an i64, where it
   always fits (3.12+: PyUnstable_Long_CompactValue; before, the call). */
static inline int
oa_typed_store(char *addr, OaFieldType type, PyObject *value)
{
    if (type == OA_FT_F64 && PyFloat_CheckExact(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        memcpy(addr, &d, sizeof d);
        return 0;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (type == OA_FT_I64 && PyLong_CheckExact(value)
        && PyUnstable_Long_IsCompact((PyLongObject *)value)) {
        int64_t w = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)value);
        memcpy(addr, &w, sizeof w);
        return 0;
    }
#endif
    return oa_typed_set(addr, type, value);
}

/* obj.c: the dynamic attributes of Obj instances live in value slots after
   the fixed part of the object (tp_basicsize); see obj.c for their forms. */
PyTypeObject *oa_obj_base_create(PyObject *mod, PyTypeObject *base);
PyTypeObject *oa_dyn_base_create(PyObject *mod, PyTypeObject *base);
int oa_obj_init(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *oa_obj_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames);
int oa_side_dicts_traverse(OaArenaObject *arena, visitproc visit, void *arg);
void oa_side_dicts_free(OaArenaObject *arena);
int oa_obj_store_attr(PyObject *self, PyObject *name, PyObject *value);
int oa_obj_add_dict_descriptor(PyTypeObject *tp);
int oa_obj_dict_unshared(PyObject *self);
void oa_obj_reinline(PyObject *self);
void oa_obj_after_init(PyObject *self);
void oa_obj_clear_attrs(PyObject *self);
int oa_obj_type_init(OaTypeObject *t);
void oa_obj_type_free(OaTypeObject *t);
Py_ssize_t oa_obj_owned_size(PyObject *self);
int oa_obj_materialize(PyObject *self);
Py_ssize_t oa_obj_initial_slots(OaTypeObject *t);
int oa_is_arena_object(PyObject *obj);
int oa_traverse_fields(PyObject *self, visitproc visit, void *arg);
void oa_clear_fields(PyObject *self);
/* Is a dealloc of an arena object in progress (no collection may start)? */
int oa_deallocating(void);
void oa_tp_free(void *p);

/* An arena object's dynamic attributes (Obj classes, dynamic SlotObj
   classes): its value slots, or its dict (obj.c). */
typedef struct {
    PyObject **values;          /* n slots, NULL ones unset */
    Py_ssize_t n;
    PyObject *dict;             /* the dict form, or NULL */
} OaAttrRefs;
void oa_obj_attr_refs(PyObject *self, OaAttrRefs *r);

/* What OA_FOR_EACH_REF reads of a class, taken once for a run of objects of
   one class (the collector's page scans). */
typedef struct {
    Py_ssize_t nfields;
    const Py_ssize_t *offsets;
    int dynamic;
} OaRefLayout;

static inline OaRefLayout
oa_ref_layout(PyTypeObject *tp)
{
    OaTypeObject *t = (OaTypeObject *)tp;
    OaRefLayout l = {PyTuple_GET_SIZE(t->fields), t->offsets, t->dynamic};
    return l;
}

/* Every reference an arena object owns, but its class: the one definition
   of its edges, used by tp_traverse, get_referents, refinfo and the
   collector.  The fixed fields in field order, then, for an Obj, its
   attribute values or its dict; `v` is each non-NULL one in turn.  `body`
   may `break` out of neither loop; use a flag.  OA_FOR_EACH_REF_IN takes
   the layout of op's class from the caller. */
#define OA_FOR_EACH_REF_IN(op, layout, v, body)                              \
    do {                                                                    \
        const OaRefLayout l_ = (layout);                                    \
        for (Py_ssize_t i_ = 0; i_ < l_.nfields; i_++) {                    \
            PyObject *v = *(PyObject **)((char *)(op) + l_.offsets[i_]);    \
            if (v != NULL) {                                                \
                body;                                                       \
            }                                                               \
        }                                                                   \
        if (l_.dynamic) {                                                   \
            OA_FOR_EACH_DYNAMIC_REF(op, v, body);                           \
        }                                                                   \
    } while (0)
/* The dynamic part alone (an object whose class is `dynamic`). */
#define OA_FOR_EACH_DYNAMIC_REF(op, v, body)                                 \
    do {                                                                    \
        OaAttrRefs a_;                                                      \
        oa_obj_attr_refs((op), &a_);                                        \
        for (Py_ssize_t i_ = 0; i_ < a_.n; i_++) {                          \
            PyObject *v = a_.values[i_];                                    \
            if (v != NULL) {                                                \
                body;                                                       \
            }                                                               \
        }                                                                   \
        if (a_.dict != NULL) {                                              \
            PyObject *v = a_.dict;                                          \
            body;                                                           \
        }                                                                   \
    } while (0)
#define OA_FOR_EACH_REF(op, v, body) \
    OA_FOR_EACH_REF_IN(op, oa_ref_layout(Py_TYPE(op)), v, body)

/* Is tp the class of arena objects (of any arena, ready or being made)?
   Their tp_free is the arena's, and only theirs. */
static inline int
oa_frees_in_arena(PyTypeObject *tp)
{
    return tp->tp_free == oa_tp_free;
}

/* gc.c: the collector and its policy */
int oa_gc_init(OaArenaObject *arena);

/* A container that a dynamic attribute of an arena object alone holds is
   part of that object for the arena's collector, which takes it off
   CPython's gc (gc.c, reach_edge): CPython's collections stop walking the
   lists and instances that Obj nodes own.  Every path that hands such a
   value to anyone else (an attribute read, __dict__, the pickled state, the
   referents) calls oa_gc_expose first, so that CPython's gc tracks it again
   before a second reference can exist. */
void oa_gc_track_again(PyObject *v);

static inline void
oa_gc_expose(PyObject *v)
{
    if (PyType_IS_GC(Py_TYPE(v)) && !PyObject_GC_IsTracked(v)) {
        oa_gc_track_again(v);
    }
}

/* The same for every dynamic attribute value of op. */
void oa_gc_expose_attrs(PyObject *op);
void oa_gc_maybe_collect(OaArenaObject *arena);

/* The collection policy's fast path, what allocation and free know of the
   collector: count0 is allocations minus frees since the last collection of
   generation 0 (CPython's); at threshold0, the policy (gc.c) chooses. */
static inline void
oa_gc_before_alloc(OaArenaObject *arena)
{
    OaGC *gc = &arena->gc;
    if (gc->count[0] >= gc->threshold[0] && gc->threshold[0] > 0 && gc->enabled) {
        oa_gc_maybe_collect(arena);
    }
}

static inline void
oa_gc_allocated(OaArenaObject *arena)
{
    arena->gc.count[0]++;
}

static inline void
oa_gc_freed(OaArenaObject *arena)
{
    if (arena->gc.count[0] > 0) {
        arena->gc.count[0]--;
    }
}
void oa_gc_collect_due(OaArenaObject *arena);
Py_ssize_t oa_gc_collect(OaArenaObject *arena, int generation);
void oa_gc_untrack_if_atoms(PyObject *op);
void oa_arena_teardown(OaArenaObject *arena);
PyObject *oa_gc_get_referrers(OaArenaObject *self, PyObject *args);

/* gcmodule.c: the gc-like API of Arena */
int oa_gcmodule_init(PyTypeObject *arena_type);
/* types.c */
OaState *oa_state_from_type(PyTypeObject *type);
PyObject *oa_object_alloc(OaTypeObject *type);

#endif /* OBJARENA_OBJARENA_H */
