/*
 * arena.h -- the objarena allocator core.
 *
 * This layer knows nothing of Python (it does not include Python.h) so that it
 * can be built and tested alone, under the sanitizers, from csrc/tests/.
 *
 * Glossary
 *   arena   an independent heap: its chunks, its size classes, its counters.
 *   chunk   OA_CHUNK_SIZE bytes mapped from the OS, aligned to its size, cut
 *           into OA_PAGES_PER_CHUNK pages.  A chunk's descriptor lives outside
 *           the chunk (malloc), so every page of the chunk can serve objects.
 *   page    OA_PAGE_SIZE bytes, aligned to its size.  A page serves one size
 *           class.  It opens with its header (oa_page), then one side-table
 *           byte per block (oa_page.meta), then the blocks.  The page of any
 *           block is found by masking the block's address (oa_page_of).
 *   block   the memory of one object.  Nothing is added to it: an object of
 *           40 bytes occupies a 40-byte block.
 *   large   an object bigger than OA_SMALL_MAX gets a mapping of its own that
 *           starts with a page header too, so oa_page_of works for it alike.
 *   untracked  a block from oa_alloc_untracked, for an object that holds no
 *           reference a collector must see.  A small one lives on pages of
 *           its own (a second set of size classes), a large one on a mapping
 *           of its own marked OA_LARGE_UNTRACKED; it belongs to no
 *           generation, and oa_visit_live / oa_visit_pages never show it: a
 *           collection pays nothing for it, however many there are.
 *
 * Size classes: one per multiple of 8 bytes from 16 to OA_SMALL_MAX.
 *
 * Side table: meta[i] is the state byte of block i.  OA_META_LIVE is set
 * while the block holds an object; the generation and the finalized bit are
 * kept for the layers above; a free block's byte is 0.
 *
 * Generations: a new block is in generation 0; oa_set_generation moves it.
 * Pages holding a block of generation 0 or 1 are linked on the arena's young
 * list, so a young collection visits those pages only, whatever the size of
 * the old heap.
 *
 * Invariants (checked by oa_arena_validate):
 *   - page.used == number of blocks with OA_META_LIVE;
 *   - page.used + length(page.free) == page.fresh <= page.capacity;
 *   - a page is on its class's `avail` list iff it has a free or fresh block;
 *   - chunk.free_mask has bit i set iff page i of the chunk serves no class;
 *   - page.young == live blocks of generation 0 or 1 (0 on an untracked
 *     page); a page is on the arena's young list iff page.young > 0;
 *   - the arena's counters (objects, bytes, per generation) are the sums of
 *     the pages'.
 */
#ifndef OBJARENA_ARENA_H
#define OBJARENA_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define OA_PAGE_SHIFT 14
#define OA_PAGE_SIZE ((size_t)1 << OA_PAGE_SHIFT)          /* 16 KiB */
#define OA_CHUNK_SHIFT 20
#define OA_CHUNK_SIZE ((size_t)1 << OA_CHUNK_SHIFT)        /* 1 MiB */
#define OA_PAGES_PER_CHUNK (OA_CHUNK_SIZE / OA_PAGE_SIZE)  /* 64 */
#define OA_GRAIN 8
#define OA_MIN_BLOCK 16
#define OA_SMALL_MAX 1024
#define OA_NCLASSES (OA_SMALL_MAX / OA_GRAIN + 1)

#if (1 << (OA_CHUNK_SHIFT - OA_PAGE_SHIFT)) != 64
#error "chunk.free_mask is a 64-bit mask: one bit per page"
#endif
#if OA_SMALL_MAX % OA_GRAIN != 0 || OA_MIN_BLOCK % OA_GRAIN != 0
#error "block sizes must be multiples of the grain"
#endif
#if OA_SMALL_MAX * 8 > (1 << OA_PAGE_SHIFT)
#error "a page must hold at least 8 blocks of the largest small class"
#endif

/* Side-table bits (one byte per block). */
#define OA_META_LIVE 0x01u
#define OA_META_GEN_SHIFT 1
#define OA_META_GEN_MASK 0x06u      /* generation 0..3 (3 = permanent) */
#define OA_META_FINALIZED 0x08u     /* __del__ has run (PEP 442) */
#define OA_META_USER1 0x10u         /* free for the collector */
#define OA_META_USER2 0x20u
#define OA_META_DYING 0x40u         /* being freed: invisible to visitors */
#define OA_META_USER4 0x80u

/* Debug builds (OA_DEBUG, defined by setup.py when the interpreter is a
   Py_DEBUG one, or by hand) check invariants with OA_ASSERT; release builds
   compile the checks away. */
#if defined(OA_DEBUG)
#  include <assert.h>
#  undef NDEBUG
#  define OA_ASSERT(cond) assert(cond)
#else
#  define OA_ASSERT(cond) ((void)0)
#endif

typedef enum {
    OA_OK = 0,
    OA_ERR_NOMEM,       /* the OS (or the fault injector) refused memory */
    OA_ERR_LIMIT,       /* max_bytes would be exceeded */
} oa_error;

typedef struct oa_arena oa_arena;
typedef struct oa_chunk oa_chunk;
typedef struct oa_page oa_page;

struct oa_page {
    oa_chunk *chunk;        /* owner; for a large object, its own descriptor */
    oa_page *next;          /* the class's avail list */
    oa_page *prev;
    oa_page *ynext;         /* the arena's young list */
    oa_page *yprev;
    void *free;             /* released blocks, linked through their first word */
    char *blocks;           /* block 0 */
    uint32_t block_size;
    uint32_t capacity;      /* blocks in this page */
    uint32_t used;          /* live blocks */
    uint32_t fresh;         /* blocks [fresh, capacity) were never handed out */
    uint32_t cls;           /* size class index, or OA_LARGE(_UNTRACKED) */
    uint32_t on_avail;      /* 1 while linked on the avail list */
    uint32_t young;         /* live blocks of generation 0 or 1 */
    uint32_t recip;         /* ceil(2**32 / block_size): index by multiply */
    uint32_t user_index;    /* free for the layers above (the collector) */
    size_t map_size;        /* large objects: bytes of the mapping */
    size_t user;            /* free for the layers above (the collector) */
    uint8_t meta[];         /* capacity side-table bytes */
};

#define OA_LARGE UINT32_MAX
#define OA_LARGE_UNTRACKED (UINT32_MAX - 1)

/* Is cls the class of a large object's page (tracked or not)? */
static inline int
oa_cls_large(uint32_t cls)
{
    return cls >= OA_LARGE_UNTRACKED;
}

typedef struct {
    size_t size;
    size_t objects;
    size_t pages;
} oa_class_stats;

typedef struct {
    size_t objects;
    size_t bytes_in_use;
    size_t bytes_reserved;
    size_t chunks;
    size_t pages;
    size_t high_water;
    size_t large_objects;
} oa_stats;

/* Arena life cycle.  max_bytes == 0 means no limit. */
oa_arena *oa_arena_new(size_t max_bytes);
void oa_arena_destroy(oa_arena *a);     /* unmaps everything, live or not */

/* Allocation.  Returns NULL and sets the arena's last error on failure.  The
   block is not zeroed.  oa_free takes any block of any arena. */
void *oa_alloc(oa_arena *a, size_t size);
void oa_free(void *p);
/* The same, untracked: on untracked pages up to OA_SMALL_MAX, a mapping of
   its own beyond. */
void *oa_alloc_untracked(oa_arena *a, size_t size);
oa_error oa_last_error(const oa_arena *a);

/* The layers above keep a pointer of their own in the arena. */
void oa_arena_set_owner(oa_arena *a, void *owner);

static inline oa_page *
oa_page_of(const void *p)
{
    return (oa_page *)((uintptr_t)p & ~(uintptr_t)(OA_PAGE_SIZE - 1));
}

/* Exact for offsets below 2**14 and blocks of 16 bytes or more (the offset
   times recip stays below 2**46 and the error below one block). */
static inline uint32_t
oa_block_index(const oa_page *pg, const void *p)
{
    uint64_t off = (uint64_t)((const char *)p - pg->blocks);
    return (uint32_t)((off * pg->recip) >> 32);
}

static inline unsigned
oa_meta_gen(uint8_t meta)
{
    return (meta & OA_META_GEN_MASK) >> OA_META_GEN_SHIFT;
}

static inline uint8_t *
oa_meta_of(const void *p)
{
    oa_page *pg = oa_page_of(p);
    return &pg->meta[oa_block_index(pg, p)];
}

/* Does block p live on an untracked page (small or large)? */
static inline int
oa_untracked(const void *p)
{
    uint32_t cls = oa_page_of(p)->cls;
    return cls >= OA_NCLASSES && cls != OA_LARGE;
}

static inline size_t
oa_block_size(const void *p)
{
    return oa_page_of(p)->block_size;
}

oa_arena *oa_arena_of(const void *p);
void *oa_owner_of(const void *p);

/* The bytes one block really costs: the page divided among its blocks
   (header, side table and slack included); a large object's whole mapping. */
size_t oa_footprint(const void *p);

/* Counters.  oa_class_stats_get fills at most n entries (classes with pages)
   and returns how many classes have pages. */
void oa_stats_get(const oa_arena *a, oa_stats *out);
size_t oa_class_stats_get(const oa_arena *a, oa_class_stats *out, size_t n);
size_t oa_max_bytes(const oa_arena *a);

/* Generations 0..3 (3: permanent).  oa_gen_objects counts live blocks. */
void oa_set_generation(void *p, unsigned gen);
/* The caller rewrote the generation bits of n blocks of pg from `from` to
   `to` in their side-table bytes: keep the counters and the young list. */
void oa_gen_moved(oa_page *pg, unsigned from, unsigned to, uint32_t n);
size_t oa_gen_objects(const oa_arena *a, unsigned gen);

/* Give empty pages and chunks back to the OS; returns the bytes released. */
size_t oa_trim(oa_arena *a);

/* Visit every live block but dying ones: fn(block, meta, arg); a non-zero
   return stops the walk and is returned.  The visitor must not allocate or
   free in `a`. */
typedef int (*oa_visit_fn)(void *block, uint8_t *meta, void *arg);
int oa_visit_live(oa_arena *a, oa_visit_fn fn, void *arg);

/* Visit the pages that may hold a block of generation <= maxgen (the young
   list when maxgen <= 1, else every page): fn(page, arg). */
typedef int (*oa_page_fn)(oa_page *page, void *arg);
int oa_visit_pages(oa_arena *a, unsigned maxgen, oa_page_fn fn, void *arg);

/* Check every invariant listed above.  Returns 0 when all hold, else -1 with
   the first broken one described in msg. */
int oa_arena_validate(const oa_arena *a, char *msg, size_t msg_size);

/* Fault injection (tests only): the n-th next request the core makes to the
   OS fails (n == 0 switches it off).  Process-wide. */
void oa_fail_os_alloc(unsigned long n);
unsigned long oa_os_alloc_count(void);

/* Working memory for the layers above (malloc), subject to the injector. */
void *oa_work_alloc(size_t size);
void oa_work_free(void *p);
/* Working memory in use now and at its peak (process-wide); reset_peak
   starts a new peak from now. */
void oa_work_bytes(size_t *current, size_t *peak, int reset_peak);

#endif /* OBJARENA_ARENA_H */
