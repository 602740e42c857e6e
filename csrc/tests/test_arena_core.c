/*
 * test_arena_core.c -- tests of the allocator core alone (no Python).
 *
 * Built with csrc/arena.c by tests/test_core_c.py and by the sanitizer stage
 * of .ci/run.  Each test checks the validator after every step that changes
 * the arena; a seeded random workload is run against a shadow model of the
 * live blocks, and the same workload on malloc serves as a control for the
 * byte pattern checks.
 *
 * Exit status 0 when every check holds; the first failure is printed.
 */
#include "../arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,         \
                    __LINE__, #cond);                                      \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
            return;                                                        \
        }                                                                  \
    } while (0)

#define VALID(a)                                                           \
    do {                                                                   \
        char msg_[256];                                                    \
        CHECK(oa_arena_validate((a), msg_, sizeof msg_) == 0, "%s", msg_); \
    } while (0)

static void
test_sizes_and_granularity(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    size_t sizes[] = {1, 16, 24, 32, 40, 56, 64, 1000, 1024};
    size_t expect[] = {16, 16, 24, 32, 40, 56, 64, 1000, 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = oa_alloc(a, sizes[i]);
        CHECK(p != NULL, "alloc %zu", sizes[i]);
        CHECK(oa_block_size(p) == expect[i], "size %zu -> block %zu", sizes[i],
              oa_block_size(p));
        CHECK((uintptr_t)p % 8 == 0, "alignment");
        CHECK(oa_arena_of(p) == a, "arena_of");
        CHECK(*oa_meta_of(p) == OA_META_LIVE, "meta");
        memset(p, 0xAB, oa_block_size(p));
        VALID(a);
        oa_free(p);
        VALID(a);
    }
    oa_stats s;
    oa_stats_get(a, &s);
    CHECK(s.objects == 0 && s.bytes_in_use == 0, "empty after frees");
    CHECK(s.high_water == 1024, "high water %zu", s.high_water);
    oa_arena_destroy(a);
}

static void
test_page_fill_and_footprint(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    enum { N = 5000 };
    void **ps = malloc(N * sizeof *ps);
    CHECK(ps != NULL, "malloc");
    for (int i = 0; i < N; i++) {
        ps[i] = oa_alloc(a, 32);
        CHECK(ps[i] != NULL, "alloc");
    }
    VALID(a);
    oa_stats s;
    oa_stats_get(a, &s);
    CHECK(s.objects == N && s.bytes_in_use == N * 32, "counts %zu %zu", s.objects,
          s.bytes_in_use);
    /* A 32-byte block costs its share of a 16 KiB page: 32 + side table +
       header, well under 34 bytes. */
    size_t fp = oa_footprint(ps[0]);
    CHECK(fp >= 32 && fp <= 34, "footprint %zu", fp);
    oa_class_stats cs[4];
    size_t n = oa_class_stats_get(a, cs, 4);
    CHECK(n == 1 && cs[0].size == 32 && cs[0].objects == N, "class stats");
    CHECK(cs[0].pages == s.pages, "pages");
    for (int i = 0; i < N; i += 2) {
        oa_free(ps[i]);
    }
    VALID(a);
    for (int i = 1; i < N; i += 2) {
        oa_free(ps[i]);
    }
    VALID(a);
    oa_stats_get(a, &s);
    CHECK(s.objects == 0 && s.pages <= 1, "empty: %zu objects %zu pages", s.objects,
          s.pages);
    size_t released = oa_trim(a);
    oa_stats_get(a, &s);
    CHECK(released == OA_CHUNK_SIZE && s.chunks == 0 && s.bytes_reserved == 0,
          "trim released %zu, %zu chunks left", released, s.chunks);
    VALID(a);
    free(ps);
    oa_arena_destroy(a);
}

static void
test_large_objects(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    void *p = oa_alloc(a, 100000);
    CHECK(p != NULL, "large alloc");
    CHECK(oa_block_size(p) == 100000, "block size %zu", oa_block_size(p));
    CHECK(oa_arena_of(p) == a, "arena of large");
    memset(p, 1, 100000);
    VALID(a);
    oa_stats s;
    oa_stats_get(a, &s);
    CHECK(s.large_objects == 1 && s.bytes_reserved >= 100000, "large stats");
    oa_free(p);
    VALID(a);
    oa_stats_get(a, &s);
    CHECK(s.large_objects == 0 && s.bytes_reserved == 0, "large freed");
    oa_arena_destroy(a);
}

static void
test_max_bytes(void)
{
    oa_arena *a = oa_arena_new(1000);
    CHECK(a != NULL, "arena");
    void *ps[40];
    int n = 0;
    while (n < 40 && (ps[n] = oa_alloc(a, 32)) != NULL) {
        n++;
    }
    CHECK(n == 31, "31 blocks of 32 fit in 1000 bytes, got %d", n);
    CHECK(oa_last_error(a) == OA_ERR_LIMIT, "limit error");
    CHECK(oa_alloc(a, 5000) == NULL, "large over the limit");
    VALID(a);
    oa_free(ps[0]);
    ps[0] = oa_alloc(a, 32);
    CHECK(ps[0] != NULL, "room again after a free");
    for (int i = 0; i < n; i++) {
        oa_free(ps[i]);
    }
    VALID(a);
    oa_arena_destroy(a);
}

static void
test_fault_injection(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    for (unsigned long k = 1; k <= 2; k++) {
        oa_fail_os_alloc(k);
        void *p = oa_alloc(a, 48);
        CHECK(p == NULL && oa_last_error(a) == OA_ERR_NOMEM,
              "request %lu of a new chunk fails", k);
        VALID(a);
    }
    oa_fail_os_alloc(1);
    CHECK(oa_alloc(a, 50000) == NULL, "large alloc fails");
    VALID(a);
    oa_fail_os_alloc(0);
    void *p = oa_alloc(a, 48);
    CHECK(p != NULL, "works again");
    VALID(a);
    oa_free(p);
    oa_arena_destroy(a);
}

/* Seeded random workload against a shadow copy of each block's pattern. */
typedef struct {
    unsigned char *p;
    size_t size;
    unsigned char tag;
} slot;

static unsigned long rng_state = 12345;

static unsigned long
rng(void)
{
    rng_state = rng_state * 6364136223846793005UL + 1442695040888963407UL;
    return rng_state >> 33;
}

static void
test_random_workload(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    enum { SLOTS = 20000, STEPS = 400000 };
    slot *live = calloc(SLOTS, sizeof *live);
    CHECK(live != NULL, "calloc");
    for (long step = 0; step < STEPS; step++) {
        slot *s = &live[rng() % SLOTS];
        if (s->p != NULL) {
            for (size_t i = 0; i < s->size; i++) {
                CHECK(s->p[i] == s->tag, "block %p corrupted at %zu", (void *)s->p, i);
            }
            oa_free(s->p);
            s->p = NULL;
        }
        else {
            size_t size = (rng() % 16 == 0) ? 16 + rng() % 3000 : 16 + 8 * (rng() % 12);
            s->p = oa_alloc(a, size);
            CHECK(s->p != NULL, "alloc %zu", size);
            s->size = size;
            s->tag = (unsigned char)rng();
            memset(s->p, s->tag, size);
        }
        if (step % 50000 == 0) {
            VALID(a);
        }
    }
    VALID(a);
    for (int i = 0; i < SLOTS; i++) {
        if (live[i].p) {
            oa_free(live[i].p);
        }
    }
    VALID(a);
    oa_stats st;
    oa_stats_get(a, &st);
    CHECK(st.objects == 0 && st.bytes_in_use == 0, "all freed");
    oa_trim(a);
    oa_stats_get(a, &st);
    CHECK(st.bytes_reserved == 0, "trimmed to nothing: %zu", st.bytes_reserved);
    free(live);
    oa_arena_destroy(a);
}

static int
count_live(void *block, uint8_t *meta, void *arg)
{
    (void)block;
    if (*meta & OA_META_LIVE) {
        (*(size_t *)arg)++;
    }
    return 0;
}

static void
test_visit_live(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    void *ps[3000];
    for (int i = 0; i < 3000; i++) {
        ps[i] = oa_alloc(a, i % 7 == 0 ? 2048 : 24 + 8 * (i % 5));
        CHECK(ps[i] != NULL, "alloc");
    }
    for (int i = 0; i < 3000; i += 3) {
        oa_free(ps[i]);
    }
    size_t n = 0;
    CHECK(oa_visit_live(a, count_live, &n) == 0 && n == 2000, "visited %zu", n);
    for (int i = 0; i < 3000; i++) {
        if (i % 3) {
            oa_free(ps[i]);
        }
    }
    VALID(a);
    oa_arena_destroy(a);
}

static int
count_page(oa_page *pg, void *arg)
{
    (void)pg;
    (*(size_t *)arg)++;
    return 0;
}

static void
test_generations(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    enum { N = 4000 };
    void *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = oa_alloc(a, i % 50 == 0 ? 5000 : 40);
        CHECK(ps[i] != NULL, "alloc");
    }
    CHECK(oa_gen_objects(a, 0) == N, "all young");
    size_t young_pages = 0, all_pages = 0;
    oa_visit_pages(a, 0, count_page, &young_pages);
    oa_visit_pages(a, 2, count_page, &all_pages);
    CHECK(young_pages == all_pages && all_pages > 0, "young %zu all %zu",
          young_pages, all_pages);
    for (int i = 0; i < N; i++) {
        oa_set_generation(ps[i], 2);
    }
    VALID(a);
    young_pages = 0;
    oa_visit_pages(a, 1, count_page, &young_pages);
    CHECK(young_pages == 0 && oa_gen_objects(a, 2) == N, "promoted: %zu young pages",
          young_pages);
    void *p = oa_alloc(a, 40);
    CHECK(p != NULL, "alloc");
    young_pages = 0;
    oa_visit_pages(a, 1, count_page, &young_pages);
    CHECK(young_pages == 1, "one young page, got %zu", young_pages);
    oa_set_generation(p, 3);
    CHECK(oa_gen_objects(a, 3) == 1 && (*oa_meta_of(p) & OA_META_LIVE), "frozen");
    VALID(a);
    oa_free(p);
    for (int i = 0; i < N; i += 2) {
        oa_set_generation(ps[i], 1);
    }
    VALID(a);
    for (int i = 0; i < N; i++) {
        oa_free(ps[i]);
    }
    VALID(a);
    CHECK(oa_gen_objects(a, 0) + oa_gen_objects(a, 1) + oa_gen_objects(a, 2)
          + oa_gen_objects(a, 3) == 0, "no objects left");
    oa_arena_destroy(a);
}

static int
count_visit(void *block, uint8_t *meta, void *arg)
{
    (void)block;
    (void)meta;
    ++*(size_t *)arg;
    return 0;
}

static int
count_page_visit(oa_page *pg, void *arg)
{
    (void)pg;
    ++*(size_t *)arg;
    return 0;
}

/* Untracked blocks: pages of their own, no generation, never visited. */
static void
test_untracked(void)
{
    oa_arena *a = oa_arena_new(0);
    CHECK(a != NULL, "arena");
    enum { N = 3000 };
    static void *ps[N];
    void *tracked = oa_alloc(a, 48);
    CHECK(tracked != NULL && !oa_untracked(tracked), "tracked block");
    for (int i = 0; i < N; i++) {
        ps[i] = oa_alloc_untracked(a, 48);
        CHECK(ps[i] != NULL, "untracked alloc %d", i);
        CHECK(oa_untracked(ps[i]) && oa_block_size(ps[i]) == 48, "untracked page");
        CHECK(oa_page_of(ps[i]) != oa_page_of(tracked), "pages of their own");
    }
    VALID(a);
    CHECK(oa_gen_objects(a, 0) == 1, "only the tracked block is in generation 0");
    size_t live = 0, young = 0, all = 0;
    oa_visit_live(a, count_visit, &live);
    oa_visit_pages(a, 0, count_page_visit, &young);
    oa_visit_pages(a, 2, count_page_visit, &all);
    CHECK(live == 1 && young == 1 && all == 1, "visits %zu %zu %zu", live, young, all);
    oa_set_generation(ps[0], 2);
    CHECK(oa_meta_gen(*oa_meta_of(ps[0])) == 0, "no generation for untracked");
    oa_stats s;
    oa_stats_get(a, &s);
    CHECK(s.objects == N + 1, "stats count every block: %zu", s.objects);
    oa_class_stats cs[4];
    CHECK(oa_class_stats_get(a, cs, 4) == 1 && cs[0].objects == N + 1,
          "one entry per block size");
    /* A large untracked block: a mapping of its own, untracked alike. */
    void *big = oa_alloc_untracked(a, 5000);
    CHECK(big != NULL && oa_untracked(big) && oa_block_size(big) >= 5000,
          "large untracked block");
    VALID(a);
    live = young = all = 0;
    oa_visit_live(a, count_visit, &live);
    oa_visit_pages(a, 0, count_page_visit, &young);
    oa_visit_pages(a, 2, count_page_visit, &all);
    CHECK(live == 1 && young == 1 && all == 1, "large untracked visited: %zu %zu %zu",
          live, young, all);
    CHECK(oa_gen_objects(a, 0) == 1, "no generation for a large untracked block");
    oa_set_generation(big, 2);
    CHECK(oa_meta_gen(*oa_meta_of(big)) == 0 && oa_gen_objects(a, 2) == 0,
          "oa_set_generation ignores a large untracked block");
    oa_stats_get(a, &s);
    CHECK(s.large_objects == 1 && s.objects == N + 2, "large untracked counted");
    oa_free(big);
    VALID(a);
    oa_stats_get(a, &s);
    CHECK(s.large_objects == 0 && s.objects == N + 1, "large untracked freed");
    for (int i = 0; i < N; i++) {
        oa_free(ps[i]);
    }
    oa_free(tracked);
    VALID(a);
    oa_trim(a);
    VALID(a);
    oa_stats_get(a, &s);
    CHECK(s.objects == 0 && s.bytes_in_use == 0, "empty");
    oa_arena_destroy(a);
}

int
main(void)
{
    test_sizes_and_granularity();
    test_page_fill_and_footprint();
    test_large_objects();
    test_max_bytes();
    test_fault_injection();
    test_random_workload();
    test_visit_live();
    test_generations();
    test_untracked();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("arena core: all checks passed\n");
    return 0;
}
