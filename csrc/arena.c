/*
 * arena.c -- chunks, pages, size classes and side tables (see arena.h).
 *
 * Memory layers, from the OS down to one object:
 *
 *     OS (mmap) ──> chunk 1 MiB, aligned ──> 64 pages of 16 KiB, aligned
 *                                             │
 *          page: [ header | meta: 1 byte/block | pad | block 0 | block 1 | ... ]
 *
 *     large object: its own mapping, aligned to 16 KiB: [ header | meta | object ]
 *
 * The fast path of oa_alloc pops a block from the first page on its class's
 * avail list (a free-list pop or a bump of `fresh`); everything else -- a new
 * page, a new chunk, a large object -- is the slow path.  oa_free pushes the
 * block on its page's free list; a page that empties goes back to its chunk
 * (one empty page per class is kept to avoid thrashing at a page boundary),
 * and a chunk that empties goes back to the OS once another empty chunk is
 * already kept in reserve.
 *
 * Under AddressSanitizer every byte the core is not handing out is poisoned:
 * free blocks (but for the moment their link word is read or written), pages
 * that serve no class, never-used blocks.  A use after free of an arena
 * object is therefore reported like one of malloc's.
 */
#define _DEFAULT_SOURCE 1     /* MAP_ANONYMOUS under -std=c11 */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define OA_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(OA_ASAN)
#  define OA_ASAN 1
#endif
#ifdef OA_ASAN
#  include <sanitizer/asan_interface.h>
#  define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#  define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#  define POISON(p, n) ((void)(p), (void)(n))
#  define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct oa_chunk {
    oa_arena *arena;
    oa_chunk *next;
    oa_chunk *prev;
    char *base;
    uint64_t free_mask;     /* bit i set: page i serves no class */
    size_t map_size;        /* OA_CHUNK_SIZE, or a large object's mapping */
};

typedef struct {
    oa_page *avail;         /* pages with a free or fresh block */
    size_t objects;
    size_t pages;
} oa_class;

/* Size classes [0, OA_NCLASSES) serve tracked blocks; class
   OA_NCLASSES + c serves untracked blocks of the size of class c, on pages
   of their own (see oa_alloc_untracked). */
#define UNTRACKED_BASE OA_NCLASSES
#define NCLASSES_ALL (2 * OA_NCLASSES)

struct oa_arena {
    oa_class classes[NCLASSES_ALL];
    oa_chunk *chunks;       /* chunks of pages */
    oa_chunk *large;        /* one descriptor per large object */
    oa_page *young;         /* pages with a block of generation 0 or 1 */
    size_t gen_objects[4];
    size_t nchunks;
    size_t empty_chunks;    /* chunks with every page free */
    size_t npages;
    size_t objects;
    size_t in_use;
    size_t high_water;
    size_t large_objects;
    size_t large_bytes;     /* bytes mapped for large objects */
    size_t max_bytes;
    oa_error error;
    void *owner;
};

#define ALL_PAGES_FREE UINT64_MAX
#define META_OFFSET offsetof(oa_page, meta)
#define ALIGN_UP(n, a) (((n) + (a) - 1) & ~((size_t)(a) - 1))

/* ------------------------------------------------------------------------ */
/* The OS and the fault injector                                              */

static unsigned long fail_countdown;
static unsigned long os_requests;

void
oa_fail_os_alloc(unsigned long n)
{
    fail_countdown = n;
}

unsigned long
oa_os_alloc_count(void)
{
    return os_requests;
}

/* One request to the OS: returns 1 if the fault injector says it fails. */
static int
injected_failure(void)
{
    os_requests++;
    if (fail_countdown != 0 && --fail_countdown == 0) {
        return 1;
    }
    return 0;
}

/* Working memory is counted, so that the work space of a collection can be
   measured (oa_work_bytes): each block carries its size in a 16-byte
   prefix (malloc's alignment kept). */
#define WORK_PREFIX 16
static size_t work_bytes, work_peak;

void *
oa_work_alloc(size_t size)
{
    if (injected_failure()) {
        return NULL;
    }
    char *p = malloc(WORK_PREFIX + (size ? size : 1));
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    work_bytes += size;
    if (work_bytes > work_peak) {
        work_peak = work_bytes;
    }
    return p + WORK_PREFIX;
}

void
oa_work_free(void *p)
{
    if (p == NULL) {
        return;
    }
    char *base = (char *)p - WORK_PREFIX;
    size_t size;
    memcpy(&size, base, sizeof(size));
    OA_ASSERT(work_bytes >= size);
    work_bytes -= size;
    free(base);
}

void
oa_work_bytes(size_t *current, size_t *peak, int reset_peak)
{
    *current = work_bytes;
    *peak = work_peak;
    if (reset_peak) {
        work_peak = work_bytes;
    }
}

/* Map `size` bytes aligned to `align` (both multiples of the OS page). */
static void *
os_map_aligned(size_t size, size_t align)
{
    if (injected_failure()) {
        return NULL;
    }
    size_t request = size + align;
    char *raw = mmap(NULL, request, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return NULL;
    }
    char *aligned = (char *)ALIGN_UP((uintptr_t)raw, align);
    size_t head = (size_t)(aligned - raw);
    size_t tail = request - head - size;
    if (head) {
        munmap(raw, head);
    }
    if (tail) {
        munmap(aligned + size, tail);
    }
    return aligned;
}

static void
os_unmap(void *p, size_t size)
{
    UNPOISON(p, size);
    munmap(p, size);
}

/* ------------------------------------------------------------------------ */
/* Size classes                                                               */

static inline uint32_t
class_of(size_t size)
{
    if (size < OA_MIN_BLOCK) {
        size = OA_MIN_BLOCK;
    }
    return (uint32_t)((size + OA_GRAIN - 1) / OA_GRAIN);
}

static inline size_t
class_size(uint32_t cls)
{
    /* (cls % UNTRACKED_BASE, without the division on the allocation path) */
    return (size_t)(cls >= UNTRACKED_BASE ? cls - UNTRACKED_BASE : cls) * OA_GRAIN;
}

/* Small untracked classes and OA_LARGE_UNTRACKED. */
static inline int
page_untracked(const oa_page *pg)
{
    return pg->cls >= UNTRACKED_BASE && pg->cls != OA_LARGE;
}

/* Offset of block 0 in a page with `n` blocks. */
static inline size_t
blocks_offset(size_t n)
{
    return ALIGN_UP(META_OFFSET + n, OA_GRAIN);
}

/* The most blocks of `size` bytes that fit in a page beside their header and
   side table. */
static uint32_t
page_capacity(size_t size)
{
    size_t n = (OA_PAGE_SIZE - META_OFFSET) / (size + 1);
    while (n > 0 && blocks_offset(n) + n * size > OA_PAGE_SIZE) {
        n--;
    }
    return (uint32_t)n;
}

/* ------------------------------------------------------------------------ */
/* Block links (the first word of a free block), poisoned in between          */

static inline void *
read_link(void *block)
{
    void *next;
    UNPOISON(block, sizeof(void *));
    memcpy(&next, block, sizeof(void *));
    POISON(block, sizeof(void *));
    return next;
}

static inline void
write_link(void *block, void *next)
{
    UNPOISON(block, sizeof(void *));
    memcpy(block, &next, sizeof(void *));
    POISON(block, sizeof(void *));
}

/* ------------------------------------------------------------------------ */
/* Avail lists                                                                */

static void
avail_push(oa_class *c, oa_page *pg)
{
    pg->prev = NULL;
    pg->next = c->avail;
    if (c->avail) {
        c->avail->prev = pg;
    }
    c->avail = pg;
    pg->on_avail = 1;
}

static void
avail_remove(oa_class *c, oa_page *pg)
{
    if (pg->prev) {
        pg->prev->next = pg->next;
    }
    else {
        c->avail = pg->next;
    }
    if (pg->next) {
        pg->next->prev = pg->prev;
    }
    pg->next = pg->prev = NULL;
    pg->on_avail = 0;
}

static void
young_add(oa_arena *a, oa_page *pg)
{
    if (pg->young++ == 0) {
        pg->yprev = NULL;
        pg->ynext = a->young;
        if (a->young) {
            a->young->yprev = pg;
        }
        a->young = pg;
    }
}

static void
young_remove(oa_arena *a, oa_page *pg)
{
    if (--pg->young == 0) {
        if (pg->yprev) {
            pg->yprev->ynext = pg->ynext;
        }
        else {
            a->young = pg->ynext;
        }
        if (pg->ynext) {
            pg->ynext->yprev = pg->yprev;
        }
        pg->ynext = pg->yprev = NULL;
    }
}

/* Bookkeeping of a block entering (delta 1) or leaving (-1) generation gen. */
static inline void
gen_account(oa_arena *a, oa_page *pg, unsigned gen, int delta)
{
    a->gen_objects[gen] += (size_t)(ptrdiff_t)delta;
    if (gen <= 1) {
        if (delta > 0) {
            young_add(a, pg);
        }
        else {
            young_remove(a, pg);
        }
    }
}

static inline uint32_t
reciprocal(size_t size)
{
    return (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
}

/* ------------------------------------------------------------------------ */
/* Chunks and pages                                                           */

static void
chunk_link(oa_chunk **head, oa_chunk *ch)
{
    ch->prev = NULL;
    ch->next = *head;
    if (*head) {
        (*head)->prev = ch;
    }
    *head = ch;
}

static void
chunk_unlink(oa_chunk **head, oa_chunk *ch)
{
    if (ch->prev) {
        ch->prev->next = ch->next;
    }
    else {
        *head = ch->next;
    }
    if (ch->next) {
        ch->next->prev = ch->prev;
    }
}

static oa_chunk *
chunk_new(oa_arena *a)
{
    oa_chunk *ch = oa_work_alloc(sizeof(oa_chunk));
    if (ch == NULL) {
        return NULL;
    }
    ch->base = os_map_aligned(OA_CHUNK_SIZE, OA_CHUNK_SIZE);
    if (ch->base == NULL) {
        oa_work_free(ch);
        return NULL;
    }
    POISON(ch->base, OA_CHUNK_SIZE);
    ch->arena = a;
    ch->free_mask = ALL_PAGES_FREE;
    ch->map_size = OA_CHUNK_SIZE;
    chunk_link(&a->chunks, ch);
    a->nchunks++;
    a->empty_chunks++;
    return ch;
}

static void
chunk_release(oa_arena *a, oa_chunk *ch)
{
    chunk_unlink(&a->chunks, ch);
    os_unmap(ch->base, OA_CHUNK_SIZE);
    oa_work_free(ch);
    a->nchunks--;
    a->empty_chunks--;
}

static oa_page *
page_new(oa_arena *a, uint32_t cls)
{
    oa_chunk *ch = a->chunks;
    while (ch && ch->free_mask == 0) {
        ch = ch->next;
    }
    if (ch == NULL) {
        ch = chunk_new(a);
        if (ch == NULL) {
            a->error = OA_ERR_NOMEM;
            return NULL;
        }
    }
    if (ch->free_mask == ALL_PAGES_FREE) {
        a->empty_chunks--;
    }
    unsigned idx = (unsigned)__builtin_ctzll(ch->free_mask);
    ch->free_mask &= ~((uint64_t)1 << idx);

    size_t size = class_size(cls);
    uint32_t cap = page_capacity(size);
    oa_page *pg = (oa_page *)(ch->base + (size_t)idx * OA_PAGE_SIZE);
    UNPOISON(pg, blocks_offset(cap));
    memset(pg, 0, blocks_offset(cap));
    pg->chunk = ch;
    pg->blocks = (char *)pg + blocks_offset(cap);
    pg->block_size = (uint32_t)size;
    pg->recip = reciprocal(size);
    pg->capacity = cap;
    pg->cls = cls;
    oa_class *c = &a->classes[cls];
    avail_push(c, pg);
    c->pages++;
    a->npages++;
    return pg;
}

static void
page_release(oa_arena *a, oa_page *pg)
{
    oa_class *c = &a->classes[pg->cls];
    oa_chunk *ch = pg->chunk;
    if (pg->on_avail) {
        avail_remove(c, pg);
    }
    c->pages--;
    a->npages--;
    unsigned idx = (unsigned)(((char *)pg - ch->base) / OA_PAGE_SIZE);
    POISON(pg, OA_PAGE_SIZE);
    ch->free_mask |= (uint64_t)1 << idx;
    if (ch->free_mask == ALL_PAGES_FREE) {
        a->empty_chunks++;
        /* Keep one empty chunk in reserve; give the rest back. */
        if (a->empty_chunks > 1) {
            chunk_release(a, ch);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Large objects                                                              */

/* A large object: a mapping of its own, one block; an untracked one
   (OA_LARGE_UNTRACKED) belongs to no generation, as on untracked pages. */
static void *
large_alloc(oa_arena *a, size_t size, int untracked)
{
    size_t rounded = ALIGN_UP(size, OA_GRAIN);
    size_t offset = blocks_offset(1);
    if (size > UINT32_MAX - OA_GRAIN || rounded > SIZE_MAX - offset - OA_PAGE_SIZE) {
        a->error = OA_ERR_NOMEM;
        return NULL;
    }
    if (a->max_bytes && a->in_use + rounded > a->max_bytes) {
        a->error = OA_ERR_LIMIT;
        return NULL;
    }
    size_t map_size = ALIGN_UP(offset + rounded, 4096);
    oa_chunk *ch = oa_work_alloc(sizeof(oa_chunk));
    if (ch == NULL) {
        a->error = OA_ERR_NOMEM;
        return NULL;
    }
    ch->base = os_map_aligned(map_size, OA_PAGE_SIZE);
    if (ch->base == NULL) {
        oa_work_free(ch);
        a->error = OA_ERR_NOMEM;
        return NULL;
    }
    ch->arena = a;
    ch->free_mask = 0;
    ch->map_size = map_size;
    chunk_link(&a->large, ch);

    oa_page *pg = (oa_page *)ch->base;
    memset(pg, 0, offset);
    pg->chunk = ch;
    pg->blocks = (char *)pg + offset;
    pg->block_size = (uint32_t)rounded;
    pg->recip = 0;          /* one block: index 0 */
    pg->capacity = 1;
    pg->used = 1;
    pg->fresh = 1;
    pg->cls = untracked ? OA_LARGE_UNTRACKED : OA_LARGE;
    pg->map_size = map_size;
    pg->meta[0] = OA_META_LIVE;
    if (!untracked) {
        gen_account(a, pg, 0, 1);
    }

    a->large_objects++;
    a->large_bytes += map_size;
    a->objects++;
    a->in_use += rounded;
    if (a->in_use > a->high_water) {
        a->high_water = a->in_use;
    }
    return pg->blocks;
}

static void
large_free(oa_page *pg)
{
    oa_chunk *ch = pg->chunk;
    oa_arena *a = ch->arena;
    if (!page_untracked(pg)) {
        gen_account(a, pg, oa_meta_gen(pg->meta[0]), -1);
    }
    a->large_objects--;
    a->large_bytes -= ch->map_size;
    a->objects--;
    a->in_use -= pg->block_size;
    chunk_unlink(&a->large, ch);
    os_unmap(ch->base, ch->map_size);
    oa_work_free(ch);
}

/* ------------------------------------------------------------------------ */
/* The public entry points                                                    */

oa_arena *
oa_arena_new(size_t max_bytes)
{
    oa_arena *a = oa_work_alloc(sizeof(oa_arena));
    if (a == NULL) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->max_bytes = max_bytes;
    return a;
}

void
oa_arena_destroy(oa_arena *a)
{
    if (a == NULL) {
        return;
    }
    while (a->chunks) {
        oa_chunk *ch = a->chunks;
        a->chunks = ch->next;
        os_unmap(ch->base, OA_CHUNK_SIZE);
        oa_work_free(ch);
    }
    while (a->large) {
        oa_chunk *ch = a->large;
        a->large = ch->next;
        os_unmap(ch->base, ch->map_size);
        oa_work_free(ch);
    }
    oa_work_free(a);
}

void
oa_arena_set_owner(oa_arena *a, void *owner)
{
    a->owner = owner;
}

oa_error
oa_last_error(const oa_arena *a)
{
    return a->error;
}

size_t
oa_max_bytes(const oa_arena *a)
{
    return a->max_bytes;
}

static inline void *alloc_small(oa_arena *a, uint32_t cls, int untracked);

void *
oa_alloc(oa_arena *a, size_t size)
{
    if (size > OA_SMALL_MAX) {
        return large_alloc(a, size, 0);
    }
    return alloc_small(a, class_of(size), 0);
}

void *
oa_alloc_untracked(oa_arena *a, size_t size)
{
    if (size > OA_SMALL_MAX) {
        return large_alloc(a, size, 1);
    }
    return alloc_small(a, UNTRACKED_BASE + class_of(size), 1);
}

/* Inline in oa_alloc and oa_alloc_untracked: the allocation fast path is
   one call from the layers above. */
static inline void *
alloc_small(oa_arena *a, uint32_t cls, int untracked)
{
    size_t bsize = class_size(cls);
    if (a->max_bytes && a->in_use + bsize > a->max_bytes) {
        a->error = OA_ERR_LIMIT;
        return NULL;
    }
    oa_class *c = &a->classes[cls];
    oa_page *pg = c->avail;
    if (pg == NULL) {
        pg = page_new(a, cls);
        if (pg == NULL) {
            return NULL;
        }
    }
    char *block;
    uint32_t idx;
    if (pg->free) {
        block = pg->free;
        pg->free = read_link(block);
        idx = oa_block_index(pg, block);
    }
    else {
        idx = pg->fresh++;
        block = pg->blocks + (size_t)idx * bsize;
    }
    UNPOISON(block, bsize);
    pg->used++;
    pg->meta[idx] = OA_META_LIVE;
    if (!untracked) {
        gen_account(a, pg, 0, 1);
    }
    if (pg->free == NULL && pg->fresh == pg->capacity) {
        avail_remove(c, pg);
    }
    c->objects++;
    a->objects++;
    a->in_use += bsize;
    if (a->in_use > a->high_water) {
        a->high_water = a->in_use;
    }
    return block;
}

void
oa_free(void *p)
{
    oa_page *pg = oa_page_of(p);
    if (oa_cls_large(pg->cls)) {
        large_free(pg);
        return;
    }
    oa_arena *a = pg->chunk->arena;
    oa_class *c = &a->classes[pg->cls];
    uint8_t *meta = &pg->meta[oa_block_index(pg, p)];
    OA_ASSERT(*meta & OA_META_LIVE);        /* a double free */
    if (!page_untracked(pg)) {
        gen_account(a, pg, oa_meta_gen(*meta), -1);
    }
    *meta = 0;
    POISON(p, pg->block_size);
    write_link(p, pg->free);
    pg->free = p;
    pg->used--;
    c->objects--;
    a->objects--;
    a->in_use -= pg->block_size;
    if (!pg->on_avail) {
        avail_push(c, pg);
    }
    if (pg->used == 0 && !(c->avail == pg && pg->next == NULL)) {
        page_release(a, pg);
    }
}

void
oa_set_generation(void *p, unsigned gen)
{
    oa_page *pg = oa_page_of(p);
    oa_arena *a = pg->chunk->arena;
    uint8_t *meta = &pg->meta[oa_block_index(pg, p)];
    unsigned old = oa_meta_gen(*meta);
    if (old == gen || page_untracked(pg)) {
        return;
    }
    gen_account(a, pg, old, -1);
    gen_account(a, pg, gen, 1);
    *meta = (uint8_t)((*meta & ~OA_META_GEN_MASK) | (gen << OA_META_GEN_SHIFT));
}

void
oa_gen_moved(oa_page *pg, unsigned from, unsigned to, uint32_t n)
{
    if (from == to || n == 0) {
        return;
    }
    oa_arena *a = pg->chunk->arena;
    a->gen_objects[from] -= n;
    a->gen_objects[to] += n;
    int was_young = pg->young > 0;
    if (from <= 1) {
        OA_ASSERT(pg->young >= n);
        pg->young -= n;
    }
    if (to <= 1) {
        pg->young += n;
    }
    /* Relink with the same rule as young_add/young_remove. */
    if (was_young && pg->young == 0) {
        pg->young = 1;
        young_remove(a, pg);
    }
    else if (!was_young && pg->young > 0) {
        uint32_t y = pg->young;
        pg->young = 0;
        young_add(a, pg);
        pg->young = y;
    }
}

size_t
oa_gen_objects(const oa_arena *a, unsigned gen)
{
    return gen < 4 ? a->gen_objects[gen] : 0;
}

oa_arena *
oa_arena_of(const void *p)
{
    return oa_page_of(p)->chunk->arena;
}

void *
oa_owner_of(const void *p)
{
    return oa_page_of(p)->chunk->arena->owner;
}

size_t
oa_footprint(const void *p)
{
    const oa_page *pg = oa_page_of(p);
    if (oa_cls_large(pg->cls)) {
        return pg->map_size;
    }
    return (OA_PAGE_SIZE + pg->capacity / 2) / pg->capacity;
}

void
oa_stats_get(const oa_arena *a, oa_stats *out)
{
    out->objects = a->objects;
    out->bytes_in_use = a->in_use;
    out->bytes_reserved = a->nchunks * OA_CHUNK_SIZE + a->large_bytes;
    out->chunks = a->nchunks;
    out->pages = a->npages;
    out->high_water = a->high_water;
    out->large_objects = a->large_objects;
}

/* One entry per block size: tracked and untracked pages together. */
size_t
oa_class_stats_get(const oa_arena *a, oa_class_stats *out, size_t n)
{
    size_t k = 0;
    for (uint32_t cls = 0; cls < OA_NCLASSES; cls++) {
        const oa_class *c = &a->classes[cls];
        const oa_class *u = &a->classes[UNTRACKED_BASE + cls];
        if (c->pages + u->pages == 0) {
            continue;
        }
        if (k < n) {
            out[k].size = class_size(cls);
            out[k].objects = c->objects + u->objects;
            out[k].pages = c->pages + u->pages;
        }
        k++;
    }
    return k;
}

size_t
oa_trim(oa_arena *a)
{
    size_t before = a->nchunks;
    for (uint32_t cls = 0; cls < NCLASSES_ALL; cls++) {
        oa_class *c = &a->classes[cls];
        oa_page *pg = c->avail;
        while (pg) {
            oa_page *next = pg->next;
            if (pg->used == 0) {
                page_release(a, pg);
            }
            pg = next;
        }
    }
    oa_chunk *ch = a->chunks;
    while (ch) {
        oa_chunk *next = ch->next;
        if (ch->free_mask == ALL_PAGES_FREE) {
            chunk_release(a, ch);
        }
        ch = next;
    }
    /* Releasing pages may already have given chunks back: count them all. */
    return (before - a->nchunks) * OA_CHUNK_SIZE;
}

int
oa_visit_live(oa_arena *a, oa_visit_fn fn, void *arg)
{
    for (oa_chunk *ch = a->chunks; ch; ch = ch->next) {
        for (unsigned i = 0; i < OA_PAGES_PER_CHUNK; i++) {
            if (ch->free_mask & ((uint64_t)1 << i)) {
                continue;
            }
            oa_page *pg = (oa_page *)(ch->base + (size_t)i * OA_PAGE_SIZE);
            if (page_untracked(pg)) {
                continue;
            }
            for (uint32_t b = 0; b < pg->fresh; b++) {
                if ((pg->meta[b] & (OA_META_LIVE | OA_META_DYING)) == OA_META_LIVE) {
                    int r = fn(pg->blocks + (size_t)b * pg->block_size,
                               &pg->meta[b], arg);
                    if (r) {
                        return r;
                    }
                }
            }
        }
    }
    for (oa_chunk *ch = a->large; ch; ch = ch->next) {
        oa_page *pg = (oa_page *)ch->base;
        if (page_untracked(pg) || (pg->meta[0] & OA_META_DYING)) {
            continue;
        }
        int r = fn(pg->blocks, &pg->meta[0], arg);
        if (r) {
            return r;
        }
    }
    return 0;
}

int
oa_visit_pages(oa_arena *a, unsigned maxgen, oa_page_fn fn, void *arg)
{
    if (maxgen <= 1) {
        for (oa_page *pg = a->young, *next; pg; pg = next) {
            next = pg->ynext;
            int r = fn(pg, arg);
            if (r) {
                return r;
            }
        }
        return 0;
    }
    for (oa_chunk *ch = a->chunks; ch; ch = ch->next) {
        for (unsigned i = 0; i < OA_PAGES_PER_CHUNK; i++) {
            if (ch->free_mask & ((uint64_t)1 << i)) {
                continue;
            }
            oa_page *pg = (oa_page *)(ch->base + (size_t)i * OA_PAGE_SIZE);
            if (page_untracked(pg)) {
                continue;
            }
            int r = fn(pg, arg);
            if (r) {
                return r;
            }
        }
    }
    for (oa_chunk *ch = a->large; ch; ch = ch->next) {
        if (page_untracked((oa_page *)ch->base)) {
            continue;
        }
        int r = fn((oa_page *)ch->base, arg);
        if (r) {
            return r;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The validator                                                              */

#define FAIL(...) do { snprintf(msg, msg_size, __VA_ARGS__); return -1; } while (0)

static int
validate_page(const oa_arena *a, const oa_chunk *ch, const oa_page *pg,
              char *msg, size_t msg_size)
{
    if (pg->chunk != ch) {
        FAIL("page %p: chunk pointer %p, expected %p", (void *)pg,
             (void *)pg->chunk, (void *)ch);
    }
    if (pg->cls % UNTRACKED_BASE == 0 || pg->cls >= NCLASSES_ALL
        || pg->block_size != class_size(pg->cls)
        || pg->capacity != page_capacity(pg->block_size)
        || pg->blocks != (const char *)pg + blocks_offset(pg->capacity)) {
        FAIL("page %p: bad geometry (class %u, block %u, capacity %u)",
             (void *)pg, pg->cls, pg->block_size, pg->capacity);
    }
    if (pg->fresh > pg->capacity || pg->used > pg->fresh) {
        FAIL("page %p: used %u, fresh %u, capacity %u", (void *)pg,
             pg->used, pg->fresh, pg->capacity);
    }
    uint32_t live = 0, young = 0;
    for (uint32_t b = 0; b < pg->capacity; b++) {
        if (pg->meta[b] & OA_META_LIVE) {
            young += oa_meta_gen(pg->meta[b]) <= 1;
            if (b >= pg->fresh) {
                FAIL("page %p: block %u is live but was never handed out",
                     (void *)pg, b);
            }
            live++;
        }
        else if (pg->meta[b] != 0) {
            FAIL("page %p: free block %u has side-table byte 0x%02x",
                 (void *)pg, b, pg->meta[b]);
        }
    }
    if (live != pg->used) {
        FAIL("page %p: %u live blocks in the side table, used says %u",
             (void *)pg, live, pg->used);
    }
    if (page_untracked(pg)) {
        young = 0;      /* untracked blocks belong to no generation */
    }
    if (young != pg->young) {
        FAIL("page %p: %u young blocks in the side table, young says %u",
             (void *)pg, young, pg->young);
    }
    uint32_t nfree = 0;
    for (void *f = pg->free; f; f = read_link(f)) {
        const char *fc = f;
        if (fc < pg->blocks || fc >= pg->blocks + (size_t)pg->fresh * pg->block_size
            || (size_t)(fc - pg->blocks) % pg->block_size != 0) {
            FAIL("page %p: free-list entry %p is not a handed-out block",
                 (void *)pg, f);
        }
        if (pg->meta[oa_block_index(pg, f)] != 0) {
            FAIL("page %p: free-list entry %p is live", (void *)pg, f);
        }
        if (++nfree > pg->capacity) {
            FAIL("page %p: free list longer than the page (a loop?)", (void *)pg);
        }
    }
    if (pg->used + nfree != pg->fresh) {
        FAIL("page %p: used %u + free %u != fresh %u", (void *)pg, pg->used,
             nfree, pg->fresh);
    }
    int has_room = pg->free != NULL || pg->fresh < pg->capacity;
    if (has_room != (int)pg->on_avail) {
        FAIL("page %p: has room %d but on_avail %u", (void *)pg, has_room,
             pg->on_avail);
    }
    (void)a;
    return 0;
}

int
oa_arena_validate(const oa_arena *a, char *msg, size_t msg_size)
{
    size_t objects = 0, in_use = 0, pages = 0, chunks = 0, empty = 0;
    size_t cls_objects[NCLASSES_ALL] = {0};
    size_t cls_pages[NCLASSES_ALL] = {0};
    size_t avail_pages = 0;

    for (const oa_chunk *ch = a->chunks; ch; ch = ch->next) {
        chunks++;
        if (ch->arena != a) {
            FAIL("chunk %p belongs to another arena", (const void *)ch);
        }
        if ((uintptr_t)ch->base % OA_CHUNK_SIZE != 0) {
            FAIL("chunk %p is not aligned", (const void *)ch->base);
        }
        if (ch->free_mask == ALL_PAGES_FREE) {
            empty++;
        }
        for (unsigned i = 0; i < OA_PAGES_PER_CHUNK; i++) {
            if (ch->free_mask & ((uint64_t)1 << i)) {
                continue;
            }
            const oa_page *pg = (const oa_page *)(ch->base + (size_t)i * OA_PAGE_SIZE);
            if (validate_page(a, ch, pg, msg, msg_size) < 0) {
                return -1;
            }
            pages++;
            objects += pg->used;
            in_use += (size_t)pg->used * pg->block_size;
            cls_objects[pg->cls] += pg->used;
            cls_pages[pg->cls]++;
            avail_pages += pg->on_avail;
        }
    }
    size_t on_lists = 0;
    for (uint32_t cls = 0; cls < NCLASSES_ALL; cls++) {
        const oa_class *c = &a->classes[cls];
        if (c->objects != cls_objects[cls] || c->pages != cls_pages[cls]) {
            FAIL("class %zu: counts %zu objects / %zu pages, pages hold %zu / %zu",
                 class_size(cls), c->objects, c->pages, cls_objects[cls],
                 cls_pages[cls]);
        }
        const oa_page *prev = NULL;
        for (const oa_page *pg = c->avail; pg; pg = pg->next) {
            if (pg->cls != cls || !pg->on_avail || pg->prev != prev) {
                FAIL("class %zu: avail list broken at page %p",
                     class_size(cls), (const void *)pg);
            }
            if (++on_lists > pages) {
                FAIL("avail lists longer than the pages in use (a loop?)");
            }
            prev = pg;
        }
    }
    if (on_lists != avail_pages) {
        FAIL("%zu pages say they are on an avail list, the lists hold %zu",
             avail_pages, on_lists);
    }
    size_t large = 0, large_bytes = 0;
    for (const oa_chunk *ch = a->large; ch; ch = ch->next) {
        const oa_page *pg = (const oa_page *)ch->base;
        if (ch->arena != a || pg->chunk != ch || !oa_cls_large(pg->cls)
            || pg->used != 1 || pg->meta[0] == 0) {
            FAIL("large object %p is inconsistent", (const void *)pg->blocks);
        }
        large++;
        large_bytes += ch->map_size;
        objects++;
        in_use += pg->block_size;
    }
    if (chunks != a->nchunks || empty != a->empty_chunks || pages != a->npages) {
        FAIL("arena counts %zu chunks (%zu empty) / %zu pages; found %zu (%zu) / %zu",
             a->nchunks, a->empty_chunks, a->npages, chunks, empty, pages);
    }
    if (large != a->large_objects || large_bytes != a->large_bytes) {
        FAIL("arena counts %zu large objects in %zu bytes; found %zu in %zu",
             a->large_objects, a->large_bytes, large, large_bytes);
    }
    if (objects != a->objects || in_use != a->in_use) {
        FAIL("arena counts %zu objects / %zu bytes; pages hold %zu / %zu",
             a->objects, a->in_use, objects, in_use);
    }
    size_t young_pages = 0, young_blocks = 0, listed = 0;
    size_t gens[4] = {0, 0, 0, 0};
    for (const oa_chunk *ch = a->chunks; ch; ch = ch->next) {
        for (unsigned i = 0; i < OA_PAGES_PER_CHUNK; i++) {
            if (ch->free_mask & ((uint64_t)1 << i)) {
                continue;
            }
            const oa_page *pg = (const oa_page *)(ch->base + (size_t)i * OA_PAGE_SIZE);
            young_pages += pg->young > 0;
            young_blocks += pg->young;
            if (page_untracked(pg)) {
                continue;
            }
            for (uint32_t b = 0; b < pg->fresh; b++) {
                if (pg->meta[b] & OA_META_LIVE) {
                    gens[oa_meta_gen(pg->meta[b])]++;
                }
            }
        }
    }
    for (const oa_chunk *ch = a->large; ch; ch = ch->next) {
        const oa_page *pg = (const oa_page *)ch->base;
        young_pages += pg->young > 0;
        young_blocks += pg->young;
        if (page_untracked(pg)) {
            if (pg->young != 0) {
                FAIL("untracked large object %p is on the young list",
                     (const void *)pg->blocks);
            }
            continue;
        }
        gens[oa_meta_gen(pg->meta[0])]++;
    }
    for (const oa_page *pg = a->young; pg; pg = pg->ynext) {
        if (pg->young == 0 || ++listed > young_pages) {
            FAIL("young list holds page %p with %u young blocks (or loops)",
                 (const void *)pg, pg->young);
        }
    }
    if (listed != young_pages) {
        FAIL("young list holds %zu pages, %zu pages have young blocks",
             listed, young_pages);
    }
    for (unsigned g = 0; g < 4; g++) {
        if (gens[g] != a->gen_objects[g]) {
            FAIL("generation %u: counted %zu, blocks say %zu", g,
                 a->gen_objects[g], gens[g]);
        }
    }
    if (gens[0] + gens[1] != young_blocks) {
        FAIL("young blocks %zu != generations 0 and 1 (%zu)", young_blocks,
             gens[0] + gens[1]);
    }
    if (a->high_water < a->in_use) {
        FAIL("high water %zu below bytes in use %zu", a->high_water, a->in_use);
    }
    if (a->max_bytes && a->in_use > a->max_bytes) {
        FAIL("bytes in use %zu above max_bytes %zu", a->in_use, a->max_bytes);
    }
    return 0;
}
