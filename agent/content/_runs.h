/* The scans of a file's raw bytes that agent/content/_zipend.c (the lane's searches, called from
 * Python) and agent/_lane.c (the lane's digest of a batch of files, without the GIL) share:
 * whether a short signature is in some bytes, and whether they may hold a run of text
 * (agent/content/textruns.py says what a run is, and holds the Python scans these are tested
 * against; the table of byte pairs that may stand side by side in a run comes from there).
 */
#ifndef MIWEI_RUNS_H
#define MIWEI_RUNS_H
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

/* Where the last byte of the first `want` (of `wlen` >= 1 bytes) in d[0..n) is, or NULL: memchr
 * for the signature's last byte and a look at the bytes before it (Python's `in` is a generic
 * substring search, some 15-40 µs over 64 KiB here against a few: the last byte turns up once in
 * 256 random ones). */
static const unsigned char *find_signature(const unsigned char *d, size_t n, const unsigned char *want, size_t wlen)
{
    if (n < wlen)
        return NULL;
    size_t before = wlen - 1; /* bytes of the signature before its last */
    unsigned char last = want[before];
    const unsigned char *at = d + before, *end = d + n; /* where its last byte can first be */
    while (at < end) {
        const unsigned char *hit = memchr(at, last, (size_t)(end - at));
        if (hit == NULL)
            return NULL;
        if (memcmp(hit - before, want, before) == 0)
            return hit;
        at = hit + 1;
    }
    return NULL;
}

#define PAIRS_BYTES 65536 /* a byte for each pair of bytes: UTF8_BIT, GB_BIT */
#define UTF8_BIT 1
#define GB_BIT 2

/* Whether some w bytes in a row (w >= 2) have every neighbouring pair's bit set in pairs. A
 * window's pairs are looked at from its last back; at the first whose bit is not set, no window
 * holding it can do, so the next starts just past it (on random data a few looks every w bytes;
 * a table of bits, 16 KiB, was twice as slow: the bit's shift waits on the load). */
static int window_found(const unsigned char *d, ssize_t n, const unsigned char *pairs, unsigned char bit, ssize_t w)
{
    ssize_t s = 0;
    while (n - s >= w) {
        ssize_t j = s + w - 2; /* the window's last pair: d[j], d[j + 1] */
        while (j >= s && (pairs[((unsigned)d[j] << 8) | d[j + 1]] & bit))
            j--;
        if (j < s)
            return 1;
        s = j + 1;
    }
    return 0;
}

/* window_found(d, n, pairs, UTF8_BIT, w1) || window_found(d, n, pairs, GB_BIT, w2), the two scans
 * run side by side a pair at a time, each step's next place chosen without a branch: a scan's step
 * waits on its loads (a byte pair, then its bit in the 64 KiB table), and on random data its
 * windows' ends were mispredicted branches, so one scan after the other took some 8 µs for 24 KiB,
 * mostly waiting; side by side, one scan's loads fill the other's wait. Once either reaches the
 * end, the other goes on alone from its window's start (its windows before it are ruled out). */
static int windows_found(const unsigned char *d, ssize_t n, const unsigned char *pairs, ssize_t w1, ssize_t w2)
{
    ssize_t s1 = 0, j1 = w1 - 2, s2 = 0, j2 = w2 - 2;
    while (n - s1 >= w1 && n - s2 >= w2) {
        int ok1 = (pairs[((unsigned)d[j1] << 8) | d[j1 + 1]] & UTF8_BIT) != 0;
        int ok2 = (pairs[((unsigned)d[j2] << 8) | d[j2 + 1]] & GB_BIT) != 0;
        /* a pair in the window: the next one back; else the next window starts just past it */
        ssize_t m1 = -(ssize_t)ok1, m2 = -(ssize_t)ok2; /* all ones where the pair is in */
        ssize_t ns1 = (s1 & m1) | ((j1 + 1) & ~m1), nj1 = ((j1 - 1) & m1) | ((j1 + w1 - 1) & ~m1);
        ssize_t ns2 = (s2 & m2) | ((j2 + 1) & ~m2), nj2 = ((j2 - 1) & m2) | ((j2 + w2 - 1) & ~m2);
        if (nj1 < ns1 || nj2 < ns2) /* every pair of a window looked at was in it */
            return 1;
        s1 = ns1, j1 = nj1, s2 = ns2, j2 = nj2;
    }
    return window_found(d + s1, n - s1, pairs, UTF8_BIT, w1) || window_found(d + s2, n - s2, pairs, GB_BIT, w2);
}

#endif
