/* Content-defined chunks of a file's bytes and their fingerprints: the loops that
 * agent/content/_chunks.c (the Chunker the index and the lanes use) and agent/_lane.c (the lane's
 * digest of a batch of files) share. agent/content/chunks.py says what the chunks and
 * fingerprints are and holds the Python reference these loops are tested against (the same
 * values, fed in any pieces). In short: a gear hash (h = (h << 1) + GEAR[byte]) rolls over every
 * byte; a chunk ends where its top MASK_BITS bits are zero once it holds MIN_BYTES, or at
 * MAX_BYTES. As a bit of h depends only on the last 64 bytes, where a chunk ends depends on the
 * bytes around it, not on its offset: a byte put in front of a file moves every chunk by one and
 * changes none. A chunk whose first LOW_BYTES hold fewer than MIN_DISTINCT distinct byte values
 * (padding, a fill, a short pattern) has no fingerprint; the others have a 47-bit hash of their
 * bytes. Each module that includes this calls gear_init() once before chunking.
 */
#ifndef MIWEI_CHUNKCORE_H
#define MIWEI_CHUNKCORE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BYTES 256
#define MAX_BYTES 8192
#define MASK_BITS 10
#define LOW_BYTES 256
#define MIN_DISTINCT 16
#define HASH_BITS 47
#define GEAR_SEED 0x4D6957656943ULL /* "MiWeiC" */

static uint64_t GEAR[256];
static const uint64_t MASK = ((1ULL << MASK_BITS) - 1) << (64 - MASK_BITS);

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* The 47-bit fingerprint of a chunk: its 8-byte little-endian words (the last zero-padded), the
 * even ones mixed in order into one lane and the odd ones into another (two chains the processor
 * runs side by side), the lanes and the length combined, then murmur3's finaliser. */
#define MIX(h, w) (rotl((h) ^ ((w) * 0x9E3779B97F4A7C15ULL), 27) * 0xC2B2AE3D27D4EB4FULL)
static inline uint64_t word_at(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static uint64_t chunk_hash(const unsigned char *p, size_t n)
{
    uint64_t a = 0x243F6A8885A308D3ULL, b = 0x13198A2E03707344ULL;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = MIX(a, word_at(p + i));
        b = MIX(b, word_at(p + i + 8));
    }
    if (i + 8 <= n) {
        a = MIX(a, word_at(p + i));
        i += 8;
        if (i < n) {
            uint64_t w = 0;
            for (size_t k = 0; i + k < n; k++)
                w |= (uint64_t)p[i + k] << (8 * k);
            b = MIX(b, w);
        }
    } else if (i < n) {
        uint64_t w = 0;
        for (size_t k = 0; i + k < n; k++)
            w |= (uint64_t)p[i + k] << (8 * k);
        a = MIX(a, w);
    }
    uint64_t h = a ^ rotl(b, 31) ^ (uint64_t)n;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h >> (64 - HASH_BITS);
}

static int varied(const unsigned char *p, size_t n)
{
    uint64_t seen[4] = {0, 0, 0, 0};
    if (n > LOW_BYTES)
        n = LOW_BYTES;
    for (size_t i = 0; i < n; i++)
        seen[p[i] >> 6] |= 1ULL << (p[i] & 63);
    int distinct = __builtin_popcountll(seen[0]) + __builtin_popcountll(seen[1]) + __builtin_popcountll(seen[2])
                   + __builtin_popcountll(seen[3]);
    return distinct >= MIN_DISTINCT;
}

/* A file's chunking so far: fed in order with feed_bytes, ended with close_chunks. Plain C (no
 * Python object), so the lane's digest (agent/_lane.c) chunks the bytes it hashes without the GIL. */
typedef struct {
    uint64_t h;              /* the gear hash since the chunk began */
    unsigned char *carry;    /* MAX_BYTES: the chunk's bytes fed so far (it began in an earlier piece) */
    size_t carried;
    uint64_t *found;         /* fingerprints made (no filter) or found in the filter */
    size_t nfound, cap;
    uint64_t made;           /* fingerprints made */
    const uint64_t *filter;  /* sorted; NULL: none */
    size_t nfilter;
    size_t keep;             /* no filter: only the `keep` least are kept (0: all) */
} ChunkState;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t out = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[out - 1])
            v[out++] = v[i];
    return out;
}

static int in_filter(const ChunkState *c, uint64_t fp)
{
    const uint64_t *v = c->filter;
    size_t lo = 0, hi = c->nfilter;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nfilter && v[lo] == fp;
}

/* 0, or -1 when out of memory (no exception set: the caller is without the GIL). */
static int emit(ChunkState *c, const unsigned char *p, size_t n)
{
    if (!varied(p, n))
        return 0;
    uint64_t fp = chunk_hash(p, n);
    c->made++;
    if (c->filter != NULL && !in_filter(c, fp))
        return 0;
    if (c->nfound == c->cap) { /* fold repeats (and, keeping the least, what is past them) before growing */
        c->nfound = sort_unique(c->found, c->nfound);
        if (c->filter == NULL && c->keep > 0 && c->nfound > c->keep)
            c->nfound = c->keep;
        if (c->nfound >= c->cap / 2) {
            size_t cap = c->cap ? 2 * c->cap : 64;
            uint64_t *grown = realloc(c->found, cap * sizeof *grown);
            if (grown == NULL)
                return -1;
            c->found = grown;
            c->cap = cap;
        }
    }
    c->found[c->nfound++] = fp;
    return 0;
}

/* Where the chunk that has `size` bytes before p ends, at or before end: the byte after its
 * last, or NULL when it goes on past end. *hp is the gear hash so far, left as it stands at the
 * returned byte (or at end). Until the chunk holds MIN_BYTES - 1 bytes no end is looked for (and
 * only the last 64 of them are rolled: each shift pushes a byte's part of h out after 64); then
 * two bytes a step: (h << 1) + GEAR[x] is the hash after the first and (h << 2) + (GEAR[x] << 1) +
 * GEAR[y] after both, each from h alone, so the chain waits on one shift and add per two bytes. */
static const unsigned char *chunk_end(const unsigned char *p, const unsigned char *end, size_t size, uint64_t *hp)
{
    uint64_t h = *hp;
    const unsigned char *at_max = p + (MAX_BYTES - size); /* the byte after the longest chunk's last */
    const unsigned char *checked = size < MIN_BYTES - 1 ? p + (MIN_BYTES - 1 - size) : p;
    if (checked > end)
        checked = end;
    if (checked - p > 64) { /* h there holds the last 64 bytes only: the ones before need no rolling */
        p = checked - 64;
        h = 0;
    }
    while (p < checked)
        h = (h << 1) + GEAR[*p++];
    const unsigned char *stop = at_max < end ? at_max : end;
    while (p + 2 <= stop) {
        uint64_t h1 = (h << 1) + GEAR[p[0]];
        uint64_t h2 = (h << 2) + (GEAR[p[0]] << 1) + GEAR[p[1]];
        if ((h1 & MASK) == 0) {
            *hp = h1;
            return p + 1;
        }
        if ((h2 & MASK) == 0) {
            *hp = h2;
            return p + 2;
        }
        h = h2;
        p += 2;
    }
    while (p < stop) {
        h = (h << 1) + GEAR[*p++];
        if ((h & MASK) == 0) {
            *hp = h;
            return p;
        }
    }
    *hp = h;
    return p == at_max ? p : NULL;
}

/* Feed n bytes: 0, or -1 when out of memory. */
static int feed_bytes(ChunkState *c, const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    while (p < end) {
        uint64_t h = c->h;
        const unsigned char *cut = chunk_end(p, end, c->carried, &h);
        if (cut == NULL) { /* the chunk goes on in the next piece */
            memcpy(c->carry + c->carried, p, (size_t)(end - p));
            c->carried += (size_t)(end - p);
            c->h = h;
            return 0;
        }
        int failed;
        if (c->carried) {
            memcpy(c->carry + c->carried, p, (size_t)(cut - p));
            failed = emit(c, c->carry, c->carried + (size_t)(cut - p));
            c->carried = 0;
        } else {
            failed = emit(c, p, (size_t)(cut - p));
        }
        if (failed)
            return -1;
        c->h = 0;
        p = cut;
    }
    return 0;
}

/* The end of the file: its last chunk emitted, the fingerprints sorted and distinct; -1 when out
 * of memory. */
static int close_chunks(ChunkState *c)
{
    if (c->carried) { /* the file's last chunk */
        if (emit(c, c->carry, c->carried))
            return -1;
        c->carried = 0;
    }
    c->nfound = sort_unique(c->found, c->nfound);
    return 0;
}

static void gear_init(void)
{
    uint64_t state = GEAR_SEED;
    for (int i = 0; i < 256; i++)
        GEAR[i] = splitmix64(&state);
}

#endif
