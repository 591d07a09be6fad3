/* agent.content._winnow: the hot loops of winnowing (agent/content/winnow_fast.py) and of reading
 * OOXML members (agent/content/ooxml.py, xmlscan.py) in C.
 *
 * Optional: winnow_fast.py imports it when it was built and otherwise runs its numpy passes; both
 * give exactly the values of the pure-Python reference, agent/content/winnow.py
 * (tests/agent/content/test_winnow_native.py compares the three). ooxml.py and xmlscan.py run their
 * regex paths and expat's events without it (the tests hold the C to the events). It runs inside
 * the inspection workers on text and files an employee controls, so every index and span is
 * checked against its buffer.
 *
 * The OOXML functions, each described at its section below:
 * ooxml_paragraphs(text, refused, first_table, mode, limit): a docx or pptx member's paragraphs,
 *     with a docx table's cells or a slide's places, as the events give them.
 * sheet_rows(text, begin, end, shared, chars_left): a worksheet of simple rows as ooxml.simple_rows
 *     reads it.
 * shared_strings(text, chars_left): an xlsx's shared strings (runs, phonetic guides and all) as
 *     the events give them.
 * names_bound(xml): whether expat's namespace processing could refuse a member the plain parse
 *     accepted (xmlscan's guard leaves that parse out when it could not).
 * slide_parts(data, parts, limit, max_parts, part_type, places, accepted): a pptx slide's parts
 *     from its bytes (checks, decode, scan, strip, parts) once expat's plain parse accepted it.
 * well_formed(xml): True only when expat's plain parse surely accepts it (a strict subset of XML).
 * well_bound(xml): well_formed and names_bound in one pass (xmlscan's guard then parses nothing).
 * member_paragraphs(data, refused, first_table, cells, limit): ooxml_paragraphs of a member's
 *     bytes that well_bound is sure of and that are UTF-8, scanned as bytes, only the text decoded.
 *
 * chosen(data, gram_bytes, window_bytes) -> bytes
 *     The offsets (int64, native order, ascending, distinct) of the chosen grams: in every
 *     complete window the rightmost gram of smallest zlib CRC-32; with no complete window the
 *     leftmost smallest gram. Grams start at UTF-8 character starts only. CRC-32 of every gram by
 *     a rolling update (two table lookups a byte, four independent chains), minima over blocks of
 *     W keys (van Herk / Gil-Werman: suffix and prefix minima, no branch on the text) 65,536
 *     window starts at a time, or by a monotonic queue for a window over 4,096 bytes: O(n),
 *     arrays of some 1 MB but the answer.
 * crcs(data, offsets, gram_bytes) -> bytes
 *     zlib.crc32(data[o:o + gram_bytes]) of each offset (int64 buffer), as uint32 in native order.
 * crcs_in(data, offsets, gram_bytes, keys) -> bytes
 *     For each offset, whether the CRC-32 of its gram is among keys (int64; a negative one never
 *     is): one byte each, by a hash set (not a binary search a gram).
 * hashes(data, begins, ends, prefix) -> bytes
 *     blake2b(prefix + data[b:e], digest_size=8) of each span (begins and ends: int64 buffers), as
 *     8 little-endian bytes each: hashlib's values without a Python object per span.
 * generic(folded, word, cjk_keys, lines, slots, offsets, pool, classes) -> bytes
 *     For each of `lines` lines of folded (UCS-4 code points, "\n" between lines; word: one byte a
 *     code point, 1 where it is a letter or digit) whether half or more of its tokens are in the
 *     boilerplate's vocabulary (no tokens: yes): CJK character pairs (and lone characters) looked
 *     up in the int64 keys first << 21 | second (hashed into a set here), other words (runs of
 *     letters and digits) in an open-addressing table (slots: int32 word numbers or -1, by FNV-1a of the code points;
 *     offsets into pool; classes: 1 vocabulary, 2 function word, which does not count).
 * fold(text, entries, pool, word_table) -> (bytes, bytes) | None
 *     text.casefold() as UCS-4 code points (native order) and, for each, whether it is a letter or
 *     digit (word_table: one byte for each BMP code point), by a table built as nfkc's from
 *     str.casefold; None when a character or its folding lies beyond the BMP or outside the table.
 * cells(text, space_table) -> (bytes, bytes, bytes, int)
 *     The table cells of "\n" + text + "\n" as winnow_fast._table_runs cuts them: runs of
 *     characters that are neither white space (space_table: one byte for each BMP code point; no
 *     character beyond the BMP is white space) nor "|", plus the last character of a white-space
 *     run that is tabs then one other white-space character (not a line break). Their starts and
 *     ends (int64) in that padded text, the line of each (int32), and the number of lines.
 * lines(folded, word, gram_bytes) -> (bytes, bytes, bytes, bytes, bytes)
 *     The lines of folded (UCS-4 code points, "\n" between lines; word: one byte a code point, 1
 *     where it is a letter or digit) as winnow_fast's line anchors read them: the UTF-8 of the
 *     letters, digits and line breaks (each line's normalised text, "\n" between), each line's
 *     start and size in it (int64, size in bytes without the "\n"), and for each line of at
 *     least gram_bytes bytes its number of grams starting at a character (int64; 0 for a shorter
 *     line) and the offsets of its first, middle (count // 2) and last such gram (int64, three a
 *     line; 0 for a shorter line).
 * nfkc(text, entries, pool) -> str | None
 *     unicodedata.normalize("NFKC", text) for a text whose every character is in the table
 *     winnow_fast builds (entries: 65,536 int32, -1 for a character that needs the full
 *     algorithm, -2 for one NFKC keeps, else offset << 8 | length into pool, UCS-4 code points);
 *     None when a character is not (the caller then runs unicodedata).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- CRC-32 (zlib's reflected polynomial 0xEDB88320) ------------------------------------- */

static uint32_t crc_table[256];
static uint32_t crc_slices[8][256]; /* slicing by 8: crc_slices[k][b] is b's register after k more zero bytes */

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = crc_slices[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++)
            crc_slices[k][i] = (crc_slices[k - 1][i] >> 8) ^ crc_table[crc_slices[k - 1][i] & 0xFF];
}

/* the register (no initial or final inversion) after bytes p[0..n) from state c: eight bytes a
   step by eight independent lookups (zlib's "braided" tables' simplest form), then a byte a step */
static uint32_t crc_raw(uint32_t c, const uint8_t *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint32_t lo = c ^ ((uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24);
        c = crc_slices[7][lo & 0xFF] ^ crc_slices[6][lo >> 8 & 0xFF] ^ crc_slices[5][lo >> 16 & 0xFF] ^
            crc_slices[4][lo >> 24] ^ crc_slices[3][p[i + 4]] ^ crc_slices[2][p[i + 5]] ^ crc_slices[1][p[i + 6]] ^
            crc_slices[0][p[i + 7]];
    }
    for (; i < n; i++)
        c = (c >> 8) ^ crc_table[(c ^ p[i]) & 0xFF];
    return c;
}

static uint32_t crc_zeros(uint32_t c, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        c = (c >> 8) ^ crc_table[c & 0xFF];
    return c;
}

/* ---- chosen ------------------------------------------------------------------------------- */

typedef struct {
    int64_t *items;
    Py_ssize_t count, size;
} Offsets;

static int offsets_push(Offsets *o, int64_t value)
{
    if (o->count && o->items[o->count - 1] == value)
        return 0;
    if (o->count == o->size) { /* PyMem_Raw*: called without the GIL */
        Py_ssize_t size = o->size ? o->size * 2 : 1024;
        int64_t *items = PyMem_RawRealloc(o->items, (size_t)size * sizeof(int64_t));
        if (!items)
            return -1;
        o->items = items;
        o->size = size;
    }
    o->items[o->count++] = value;
    return 0;
}

static int offsets_reserve(Offsets *o, Py_ssize_t more)
{ /* room for `more` items past the count */
    if (o->size - o->count >= more)
        return 0;
    Py_ssize_t size = o->size ? o->size : 1024;
    while (size - o->count < more)
        size *= 2;
    int64_t *items = PyMem_RawRealloc(o->items, (size_t)size * sizeof(int64_t));
    if (!items)
        return -1;
    o->items = items;
    o->size = size;
    return 0;
}

#define IS_START(b) (((b) & 0xC0) != 0x80)

/* The windows' minima by blocks (van Herk / Gil-Werman), for windows up to BLOCK_WINDOW_MAX
   bytes; a longer window takes the monotonic queue below (its arrays would grow with the window).
   Windows starting in [c0, c1) are done CHUNK_STARTS at a time: key[i] is the gram at c0 + i as
   rank << 32 | (0xFFFFFFFF - i) (not a character start: all ones), so the smallest key is the
   rightmost smallest rank; the minimum of the window at j is min(suffix[j], prefix[j + W - 1])
   over blocks of W keys from c0. Branch-free passes, and the CRC-32 rolled in four independent
   chains (a quarter of the keys each): the rolling update is a chain of dependent loads. */
#define BLOCK_WINDOW_MAX 4096
#define CHUNK_STARTS 65536
#define CHAINS 4

static uint32_t crc_roll(uint32_t r, const uint8_t *data, Py_ssize_t g, Py_ssize_t gram, const uint32_t *out_of)
{ /* from the register of the gram at g to that of the gram at g + 1 (data[g + gram] must exist) */
    return ((r >> 8) ^ crc_table[(r ^ data[g + gram]) & 0xFF]) ^ out_of[data[g]];
}

static int block_minima(const uint8_t *data, Py_ssize_t gram, Py_ssize_t window, Py_ssize_t m, uint32_t zeros,
                        const uint32_t *out_of, Offsets *out)
{
    Py_ssize_t most = (m < CHUNK_STARTS ? m : CHUNK_STARTS) + window - 1; /* keys a chunk at most */
    uint64_t *key = PyMem_RawMalloc((size_t)most * sizeof(uint64_t));
    uint64_t *suffix = PyMem_RawMalloc((size_t)most * sizeof(uint64_t));
    int failed = !key || !suffix;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c0 = 0; !failed && c0 < m; c0 += CHUNK_STARTS) {
        Py_ssize_t c1 = m - c0 < CHUNK_STARTS ? m : c0 + CHUNK_STARTS;
        Py_ssize_t count = c1 - c0, keys = count + window - 1; /* grams c0 .. c1 - 2 + window < n */
        /* ranks: CHAINS runs of `part` keys (the last ones overlap when keys is not a multiple) */
        Py_ssize_t chains = keys >= CHAINS * 64 ? CHAINS : 1;
        Py_ssize_t part = (keys + chains - 1) / chains;
        Py_ssize_t first[CHAINS];
        uint32_t r[CHAINS];
        for (Py_ssize_t k = 0; k < chains; k++) {
            first[k] = k * part < keys - part ? k * part : keys - part;
            r[k] = crc_raw(0, data + c0 + first[k], gram);
        }
#define KEY_AT(i, rank) (IS_START(data[c0 + (i)]) ? (uint64_t)(rank) << 32 | (uint32_t)(0xFFFFFFFFu - (uint32_t)(i)) \
                                                  : UINT64_MAX)
        if (chains == CHAINS) {
            Py_ssize_t a = first[0], b = first[1], c = first[2], d = first[3];
            uint32_t ra = r[0], rb = r[1], rc = r[2], rd = r[3];
            for (Py_ssize_t t = 0;; t++) {
                key[a + t] = KEY_AT(a + t, ra ^ zeros);
                key[b + t] = KEY_AT(b + t, rb ^ zeros);
                key[c + t] = KEY_AT(c + t, rc ^ zeros);
                key[d + t] = KEY_AT(d + t, rd ^ zeros);
                if (t + 1 == part)
                    break;
                /* the gram at c0 + x + t + 1 is a key of this chunk: data[c0 + x + t + gram] exists */
                ra = crc_roll(ra, data, c0 + a + t, gram, out_of);
                rb = crc_roll(rb, data, c0 + b + t, gram, out_of);
                rc = crc_roll(rc, data, c0 + c + t, gram, out_of);
                rd = crc_roll(rd, data, c0 + d + t, gram, out_of);
            }
        } else {
            uint32_t ra = r[0];
            for (Py_ssize_t t = 0; t < keys; t++) {
                key[t] = KEY_AT(t, ra ^ zeros);
                if (t + 1 < keys)
                    ra = crc_roll(ra, data, c0 + t, gram, out_of);
            }
        }
#undef KEY_AT
        /* suffix minima within blocks of `window` keys from 0 */
        for (Py_ssize_t block = 0; block < keys; block += window) {
            Py_ssize_t end = block + window < keys ? block + window : keys;
            uint64_t low = UINT64_MAX;
            for (Py_ssize_t i = end - 1; i >= block; i--) {
                low = key[i] < low ? key[i] : low;
                suffix[i] = low;
            }
        }
        /* prefix minima in a running register, a block at a time; the window at j = i - window + 1
           ends at i. Every window's pick (its key) is written, and kept (the count moved on) only
           where j is a character start and the pick is a new one: no branch on the text. The picks
           never decrease, so a repeated one follows its first; the kept keys become offsets after. */
        if (offsets_reserve(out, count) < 0) {
            failed = 1;
            break;
        }
        Py_ssize_t from = out->count, kept = from;
        uint64_t *picks = (uint64_t *)(out->items + from); /* keys first, offsets once kept */
        uint64_t previous = UINT64_MAX; /* never a pick: the window at a character start holds one */
        for (Py_ssize_t block = 0; block < keys; block += window) {
            Py_ssize_t end = block + window < keys ? block + window : keys;
            uint64_t low = UINT64_MAX;
            Py_ssize_t i = block;
            for (; i < end && i < window - 1; i++) /* the first block's keys before a window ends */
                low = key[i] < low ? key[i] : low;
            const uint8_t *at_start = data + c0 - window + 1; /* at_start[i]: the byte at window j's start */
            for (; i < end; i++) {
                low = key[i] < low ? key[i] : low;
                uint64_t best = suffix[i - window + 1] < low ? suffix[i - window + 1] : low;
                picks[kept - from] = best;
                Py_ssize_t keep = IS_START(at_start[i]) & (best != previous);
                kept += keep;
                previous = keep ? best : previous;
            }
        }
        int64_t *items = out->items;
        for (Py_ssize_t k = from; k < kept; k++) /* a key's low half is 0xFFFFFFFF less its index */
            items[k] = c0 + (int64_t)(0xFFFFFFFFu - (uint32_t)items[k]);
        if (from && kept > from && items[from] == items[from - 1]) { /* the last chunk's last pick again */
            memmove(items + from, items + from + 1, (size_t)(kept - from - 1) * sizeof(int64_t));
            kept--;
        }
        out->count = kept;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(key);
    PyMem_RawFree(suffix);
    return failed ? -1 : 0;
}

static PyObject *winnow_chosen(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t gram, window;
    if (!PyArg_ParseTuple(args, "y*nn:chosen", &view, &gram, &window))
        return NULL;
    if (gram < 1 || window < 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "gram_bytes and window_bytes must be at least 1");
        return NULL;
    }
    const uint8_t *data = view.buf;
    Py_ssize_t len = view.len;
    Py_ssize_t n = len - gram + 1; /* grams: offsets 0 .. n-1 */
    Offsets out = {NULL, 0, 0};
    uint32_t *queue_rank = NULL;
    int64_t *queue_at = NULL;
    int failed = 0;
    Py_ssize_t last = -1;
    for (Py_ssize_t i = n - 1; i >= 0; i--)
        if (IS_START(data[i])) {
            last = i;
            break;
        }
    if (last < 0)
        goto done;
    /* the rolling CRC: r is crc_raw(0, gram); crc32(gram) = r ^ crc32(K zero bytes) */
    uint32_t zeros = crc_zeros(0xFFFFFFFFu, gram) ^ 0xFFFFFFFFu;
    uint32_t out_of[256]; /* crc_raw(0, b followed by K zero bytes): the byte leaving */
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        out_of[b] = crc_zeros(crc_raw(0, &byte, 1), gram);
    }
    Py_ssize_t m = last - window + 1; /* windows starting before m are complete */
    if (m > 0 && window <= BLOCK_WINDOW_MAX) {
        if (block_minima(data, gram, window, m, zeros, out_of, &out) < 0) {
            failed = 1;
            goto done;
        }
    } else if (m > 0) {
        /* a monotonic queue of (rank, offset) of the grams in [b, b + window): ranks strictly
           rising from front to back, so the front is the rightmost smallest */
        Py_ssize_t ring = 1; /* a power of two >= window: indices by mask, not division */
        while (ring < window)
            ring <<= 1;
        Py_ssize_t mask = ring - 1;
        queue_rank = PyMem_Malloc((size_t)ring * sizeof(uint32_t));
        queue_at = PyMem_Malloc((size_t)ring * sizeof(int64_t));
        if (!queue_rank || !queue_at) {
            failed = 1;
            goto done;
        }
        Py_ssize_t head = 0, tail = 0; /* ring indices; count = tail - head */
        uint32_t r = crc_raw(0, data, gram);
        Py_ssize_t next = 0; /* the next gram to enter the queue; r is its register */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t b = 0; b < m; b++) {
            if (!IS_START(data[b]))
                continue;
            while (tail > head && queue_at[head & mask] < b) /* grams before b left the window */
                head++;
            Py_ssize_t until = b + window; /* grams before this offset are in the window */
            while (next < until) { /* until <= m - 1 + window = last + 1 <= n; the queue holds grams in [b, next) */
                if (IS_START(data[next])) {
                    uint32_t rank = r ^ zeros;
                    while (tail > head && queue_rank[(tail - 1) & mask] >= rank)
                        tail--;
                    queue_rank[tail & mask] = rank;
                    queue_at[tail & mask] = next;
                    tail++;
                }
                if (next + gram < len) /* roll on to the gram at next + 1 */
                    r = ((r >> 8) ^ crc_table[(r ^ data[next + gram]) & 0xFF]) ^ out_of[data[next]];
                next++;
            }
            /* b is a gram start in the window: the queue is not empty */
            if (offsets_push(&out, queue_at[head & mask]) < 0) {
                failed = 1;
                break;
            }
        }
        Py_END_ALLOW_THREADS
        if (failed)
            goto done;
    }
    if (!out.count) { /* no complete window: the leftmost smallest gram */
        uint32_t best = 0;
        int64_t at = -1;
        uint32_t r = crc_raw(0, data, gram);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (IS_START(data[i]) && (at < 0 || (r ^ zeros) < best)) {
                best = r ^ zeros;
                at = i;
            }
            if (i + gram < len)
                r = ((r >> 8) ^ crc_table[(r ^ data[i + gram]) & 0xFF]) ^ out_of[data[i]];
        }
        if (offsets_push(&out, at) < 0)
            failed = 1;
    }
done:
    PyMem_Free(queue_rank);
    PyMem_Free(queue_at);
    PyBuffer_Release(&view);
    if (failed) {
        PyMem_RawFree(out.items);
        return PyErr_NoMemory();
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)out.items, out.count * (Py_ssize_t)sizeof(int64_t));
    PyMem_RawFree(out.items);
    return result;
}

static int int64_buffer(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len % (Py_ssize_t)sizeof(int64_t)) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: not a buffer of int64", what);
        return -1;
    }
    return 0;
}

/* 1 (an IndexError set) when a gram of `gram` bytes at one of the offsets leaves the data */
static int grams_outside(const char *offsets, Py_ssize_t count, Py_ssize_t gram, Py_ssize_t data_len)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t o;
        memcpy(&o, offsets + 8 * i, 8);
        if (gram < 0 || o < 0 || o > data_len - gram) {
            PyErr_Format(PyExc_IndexError, "gram %zd at %lld outside the data", i, (long long)o);
            return 1;
        }
    }
    return 0;
}

static PyObject *winnow_crcs(PyObject *self, PyObject *args)
{
    Py_buffer data, offsets_view;
    PyObject *offsets_obj;
    Py_ssize_t gram;
    if (!PyArg_ParseTuple(args, "y*On:crcs", &data, &offsets_obj, &gram))
        return NULL;
    PyObject *result = NULL;
    if (int64_buffer(offsets_obj, &offsets_view, "offsets") < 0)
        goto release_data;
    Py_ssize_t count = offsets_view.len / 8;
    const char *offsets = offsets_view.buf;
    if (grams_outside(offsets, count, gram, data.len))
        goto release;
    result = PyBytes_FromStringAndSize(NULL, count * 4);
    if (!result)
        goto release;
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t o;
        memcpy(&o, offsets + 8 * i, 8);
        uint32_t crc = crc_raw(0xFFFFFFFFu, (const uint8_t *)data.buf + o, gram) ^ 0xFFFFFFFFu;
        memcpy(out + i, &crc, 4);
    }
release:
    PyBuffer_Release(&offsets_view);
release_data:
    PyBuffer_Release(&data);
    return result;
}

/* ---- blake2b (RFC 7693), unkeyed, digest of 8 bytes --------------------------------------- */

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

typedef struct {
    uint64_t h[8], t;
    uint8_t block[128];
    size_t used;
} Blake2b;

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define G(a, b, c, d, x, y)           \
    do {                              \
        v[a] = v[a] + v[b] + (x);     \
        v[d] = ROTR64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];           \
        v[b] = ROTR64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);     \
        v[d] = ROTR64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];           \
        v[b] = ROTR64(v[b] ^ v[c], 63); \
    } while (0)

/* the twelve rounds written out over v and m (words or vector lanes of words: G is the same for
   both): each round's message schedule is then a constant and the words stay in registers */
#define BLAKE2B_ROUND(r)                             \
    do {                                             \
        const uint8_t *z = blake2b_sigma[r];         \
        G(0, 4, 8, 12, m[z[0]], m[z[1]]);            \
        G(1, 5, 9, 13, m[z[2]], m[z[3]]);            \
        G(2, 6, 10, 14, m[z[4]], m[z[5]]);           \
        G(3, 7, 11, 15, m[z[6]], m[z[7]]);           \
        G(0, 5, 10, 15, m[z[8]], m[z[9]]);           \
        G(1, 6, 11, 12, m[z[10]], m[z[11]]);         \
        G(2, 7, 8, 13, m[z[12]], m[z[13]]);          \
        G(3, 4, 9, 14, m[z[14]], m[z[15]]);          \
    } while (0)
#define BLAKE2B_ROUNDS()                                                          \
    do {                                                                          \
        BLAKE2B_ROUND(0); BLAKE2B_ROUND(1); BLAKE2B_ROUND(2); BLAKE2B_ROUND(3);   \
        BLAKE2B_ROUND(4); BLAKE2B_ROUND(5); BLAKE2B_ROUND(6); BLAKE2B_ROUND(7);   \
        BLAKE2B_ROUND(8); BLAKE2B_ROUND(9); BLAKE2B_ROUND(10); BLAKE2B_ROUND(11); \
    } while (0)

static uint64_t load64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
#else
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
#endif
}

static void blake2b_compress(Blake2b *s, int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64(s->block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= s->t; /* the counter's high word stays 0: spans are far below 2**64 bytes */
    if (last)
        v[14] = ~v[14];
    BLAKE2B_ROUNDS();
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_init8(Blake2b *s)
{
    memcpy(s->h, blake2b_iv, sizeof s->h);
    s->h[0] ^= 0x01010000ULL ^ 8; /* fanout 1, depth 1, no key, 8-byte digest */
    s->t = 0;
    s->used = 0;
}

static void blake2b_update(Blake2b *s, const uint8_t *p, size_t n)
{
    while (n) {
        if (s->used == 128) { /* a full block is compressed only once more input follows */
            s->t += 128;
            blake2b_compress(s, 0);
            s->used = 0;
        }
        size_t take = 128 - s->used < n ? 128 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
    }
}

static void blake2b_final8(Blake2b *s, uint8_t out[8])
{
    s->t += s->used;
    memset(s->block + s->used, 0, 128 - s->used);
    blake2b_compress(s, 1);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(s->h[0] >> (8 * i));
}

/* Four messages of `blocks` blocks each (prefix + span: more than 128 * (blocks - 1) bytes, at
   most 128 * blocks), hashed side by side: the state's words as vectors of four lanes (GCC's
   vector extension: SSE2 pairs, or one AVX2 register where the CPU has it), the same rounds as
   blake2b_compress. Lanes past `used` hash an empty message and are not written. */
#define LANES 4 /* the vector initialisers below list four */
#define LANE_BLOCKS 4 /* a line of MAX_ANCHOR_BYTES with the salt fits */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
typedef uint64_t lanes_t __attribute__((vector_size(8 * LANES)));

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#if __GNUC__ >= 11 /* x86-64-v4 (AVX-512): a rotation is one instruction (vprorq), not three; a quarter less time */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) /* an ifunc: glibc resolves it at load */
#else
__attribute__((target_clones("avx2", "default")))
#endif
#endif
static void blake2b_lanes(const uint8_t *prefix, Py_ssize_t prefix_len, const uint8_t *bytes, const char *begins,
                          const char *ends, const Py_ssize_t *which, Py_ssize_t used, int blocks, uint8_t *out)
{
    uint8_t message[LANES][128 * LANE_BLOCKS];
    uint64_t total[LANES];
    lanes_t m[16] = {{0}}, v[16] = {{0}}, h[8]; /* zeroed: GCC cannot see every word is set before use */
    for (int l = 0; l < LANES; l++) {
        int64_t b = 0, e = 0;
        if (l < used) {
            memcpy(&b, begins + which[l] * 8, 8);
            memcpy(&e, ends + which[l] * 8, 8);
        }
        memset(message[l], 0, (size_t)(128 * blocks));
        memcpy(message[l], prefix, (size_t)prefix_len);
        if (e > b)
            memcpy(message[l] + prefix_len, bytes + b, (size_t)(e - b));
        total[l] = (uint64_t)(prefix_len + (e - b));
    }
    for (int i = 0; i < 8; i++) {
        uint64_t word = blake2b_iv[i] ^ (i == 0 ? 0x01010000ULL ^ 8 : 0);
        h[i] = (lanes_t){word, word, word, word}; /* LANES */
    }
    for (int block = 0; block < blocks; block++) {
        int last = block == blocks - 1;
        for (int i = 0; i < 16; i++) {
            const uint8_t *at = message[0] + 128 * block + 8 * i;
            m[i] = (lanes_t){load64(at), load64(at + sizeof message[0]), load64(at + 2 * sizeof message[0]),
                             load64(at + 3 * sizeof message[0])};
        }
        uint64_t counted = (uint64_t)(128 * (block + 1));
        lanes_t t = last ? (lanes_t){total[0], total[1], total[2], total[3]}
                         : (lanes_t){counted, counted, counted, counted};
        for (int i = 0; i < 8; i++) {
            v[i] = h[i];
            v[i + 8] = (lanes_t){blake2b_iv[i], blake2b_iv[i], blake2b_iv[i], blake2b_iv[i]};
        }
        v[12] ^= t;
        if (last)
            v[14] = ~v[14];
        BLAKE2B_ROUNDS();
        for (int i = 0; i < 8; i++)
            h[i] ^= v[i] ^ v[i + 8];
    }
    for (int l = 0; l < used; l++)
        for (int i = 0; i < 8; i++)
            out[8 * which[l] + i] = (uint8_t)(h[0][l] >> (8 * i));
}
#else
static void blake2b_lanes(const uint8_t *prefix, Py_ssize_t prefix_len, const uint8_t *bytes, const char *begins,
                          const char *ends, const Py_ssize_t *which, Py_ssize_t used, int blocks, uint8_t *out)
{ /* no vector extension: one at a time */
    (void)blocks;
    for (Py_ssize_t l = 0; l < used; l++) {
        int64_t b, e;
        memcpy(&b, begins + which[l] * 8, 8);
        memcpy(&e, ends + which[l] * 8, 8);
        Blake2b s;
        blake2b_init8(&s);
        blake2b_update(&s, prefix, (size_t)prefix_len);
        blake2b_update(&s, bytes + b, (size_t)(e - b));
        blake2b_final8(&s, out + 8 * which[l]);
    }
}
#endif

static PyObject *winnow_hashes(PyObject *self, PyObject *args)
{
    Py_buffer data, prefix, begins_view, ends_view;
    PyObject *begins_obj, *ends_obj;
    if (!PyArg_ParseTuple(args, "y*OOy*:hashes", &data, &begins_obj, &ends_obj, &prefix))
        return NULL;
    PyObject *result = NULL;
    if (int64_buffer(begins_obj, &begins_view, "begins") < 0)
        goto release_data;
    if (int64_buffer(ends_obj, &ends_view, "ends") < 0)
        goto release_begins;
    Py_ssize_t count = begins_view.len / (Py_ssize_t)sizeof(int64_t);
    if (ends_view.len != begins_view.len) {
        PyErr_SetString(PyExc_ValueError, "begins and ends differ in length");
        goto release_ends;
    }
    /* copies: the buffers need not be aligned */
    const uint8_t *bytes = data.buf;
    const char *begins = begins_view.buf, *ends = ends_view.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t b, e;
        memcpy(&b, begins + i * 8, 8);
        memcpy(&e, ends + i * 8, 8);
        if (b < 0 || e < b || e > data.len) {
            PyErr_Format(PyExc_IndexError, "span %zd (%lld, %lld) outside the data", i, (long long)b, (long long)e);
            goto release_ends;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, count * 8);
    if (!result)
        goto release_ends;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    Blake2b start;
    blake2b_init8(&start);
    blake2b_update(&start, prefix.buf, (size_t)prefix.len);
    /* with the GIL held: no other thread can change the spans checked above. A span that fits the
       first block with the prefix (every gram, most lines) waits for three more and the four are
       hashed side by side; a longer one (or a longer prefix) alone. */
    Py_ssize_t waiting[LANE_BLOCKS][LANES], ready[LANE_BLOCKS] = {0};
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t b, e;
        memcpy(&b, begins + i * 8, 8);
        memcpy(&e, ends + i * 8, 8);
        int64_t length = prefix.len + (e - b);
        if (length <= 128 * LANE_BLOCKS) { /* blocks - 1 of them: the messages of one length in blocks wait together */
            int blocks = length <= 128 ? 0 : (int)((length - 1) / 128);
            waiting[blocks][ready[blocks]++] = i;
            if (ready[blocks] == LANES) {
                blake2b_lanes(prefix.buf, prefix.len, bytes, begins, ends, waiting[blocks], LANES, blocks + 1, out);
                ready[blocks] = 0;
            }
            continue;
        }
        Blake2b s = start;
        blake2b_update(&s, bytes + b, (size_t)(e - b));
        blake2b_final8(&s, out + 8 * i);
    }
    for (int blocks = 0; blocks < LANE_BLOCKS; blocks++)
        if (ready[blocks])
            blake2b_lanes(prefix.buf, prefix.len, bytes, begins, ends, waiting[blocks], ready[blocks], blocks + 1, out);
release_ends:
    PyBuffer_Release(&ends_view);
release_begins:
    PyBuffer_Release(&begins_view);
release_data:
    PyBuffer_Release(&data);
    PyBuffer_Release(&prefix);
    return result;
}

/* ---- the generic share of each line -------------------------------------------------------- */

#define IS_CJK(c) (((c) >= 0x3400 && (c) <= 0x9FFF) || ((c) >= 0xF900 && (c) <= 0xFAFF))

/* the CJK keys as a set by open addressing (Fibonacci hashing, linear probing, a quarter full):
   one probe or two a character, not a binary search. Keys are first << 21 | second, never
   negative: a negative key given cannot equal one and is left out, -1 marks an empty slot. */
typedef struct {
    int64_t *slots;
    uint64_t mask;
    int shift;
} KeySet;

#define KEY_HASH(key, shift) (((uint64_t)(key) * 0x9E3779B97F4A7C15ull) >> (shift))

static int keyset_build(KeySet *set, const int64_t *keys, Py_ssize_t n, size_t spread)
{ /* spread: slots a key at least (a power of two) */
    size_t size = 16;
    int bits = 4;
    while (size < spread * (size_t)n) {
        size <<= 1;
        bits++;
    }
    set->slots = PyMem_Malloc(size * sizeof(int64_t));
    if (!set->slots)
        return -1;
    for (size_t i = 0; i < size; i++)
        set->slots[i] = -1;
    set->mask = size - 1;
    set->shift = 64 - bits;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (keys[i] < 0)
            continue;
        uint64_t h = KEY_HASH(keys[i], set->shift);
        while (set->slots[h] != -1 && set->slots[h] != keys[i])
            h = (h + 1) & set->mask;
        set->slots[h] = keys[i];
    }
    return 0;
}

static int keyset_has(const KeySet *set, int64_t key)
{
    for (uint64_t h = KEY_HASH(key, set->shift); set->slots[h] != -1; h = (h + 1) & set->mask)
        if (set->slots[h] == key)
            return 1;
    return 0;
}

/* keyset_has with the first slot read without a branch on its answer: in a sparse table (spread
   16) it is the key or empty for nearly every key looked up, hit or miss alike (generic's CJK
   pairs: a third of them hits, which a branch a lookup would guess wrong) */
static inline int keyset_has_first(const KeySet *set, int64_t key)
{
    uint64_t h = KEY_HASH(key, set->shift);
    int64_t first = set->slots[h];
    if (__builtin_expect(first == key || first == -1, 1))
        return first == key;
    for (h = (h + 1) & set->mask; set->slots[h] != -1; h = (h + 1) & set->mask)
        if (set->slots[h] == key)
            return 1;
    return 0;
}

static PyObject *winnow_crcs_in(PyObject *self, PyObject *args)
{
    Py_buffer data, offsets_view, keys;
    PyObject *offsets_obj;
    Py_ssize_t gram;
    if (!PyArg_ParseTuple(args, "y*Ony*:crcs_in", &data, &offsets_obj, &gram, &keys))
        return NULL;
    PyObject *result = NULL;
    KeySet set = {NULL, 0, 0};
    if (int64_buffer(offsets_obj, &offsets_view, "offsets") < 0)
        goto release_data;
    if (keys.len % 8 || (uintptr_t)keys.buf % 8) {
        PyErr_SetString(PyExc_ValueError, "crcs_in: keys must be an aligned buffer of int64");
        goto release;
    }
    Py_ssize_t count = offsets_view.len / 8;
    const char *offsets = offsets_view.buf;
    if (grams_outside(offsets, count, gram, data.len))
        goto release;
    if (keyset_build(&set, keys.buf, keys.len / 8, 4) < 0) {
        PyErr_NoMemory();
        goto release;
    }
    result = PyBytes_FromStringAndSize(NULL, count);
    if (!result)
        goto release;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t o;
        memcpy(&o, offsets + 8 * i, 8);
        uint32_t crc = crc_raw(0xFFFFFFFFu, (const uint8_t *)data.buf + o, gram) ^ 0xFFFFFFFFu;
        out[i] = (uint8_t)keyset_has(&set, crc);
    }
release:
    PyMem_Free(set.slots);
    PyBuffer_Release(&offsets_view);
release_data:
    PyBuffer_Release(&data);
    PyBuffer_Release(&keys);
    return result;
}

/* One byte a value: 1 when it is not among the keys (values as uint64, keys as int64, both
   aligned; a value of 2^63 or more is never a key). The stored grams less the boilerplate's, as
   a mask numpy compresses by, without a Python int a gram for a set's difference. */
static PyObject *winnow_absent(PyObject *self, PyObject *args)
{
    Py_buffer values, keys;
    if (!PyArg_ParseTuple(args, "y*y*:absent", &values, &keys))
        return NULL;
    PyObject *result = NULL;
    KeySet set = {NULL, 0, 0};
    if (values.len % 8 || keys.len % 8 || (uintptr_t)values.buf % 8 || (uintptr_t)keys.buf % 8) {
        PyErr_SetString(PyExc_ValueError, "absent: aligned buffers of 8-byte integers expected");
        goto release;
    }
    if (keyset_build(&set, keys.buf, keys.len / 8, 4) < 0) {
        PyErr_NoMemory();
        goto release;
    }
    Py_ssize_t count = values.len / 8;
    result = PyBytes_FromStringAndSize(NULL, count);
    if (!result)
        goto release;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    const uint64_t *v = values.buf;
    for (Py_ssize_t i = 0; i < count; i++)
        out[i] = v[i] >> 63 || !keyset_has(&set, (int64_t)v[i]);
release:
    PyMem_Free(set.slots);
    PyBuffer_Release(&values);
    PyBuffer_Release(&keys);
    return result;
}

static PyObject *winnow_generic(PyObject *self, PyObject *args)
{
    Py_buffer folded, word, keys, slots, offsets, pool, classes;
    Py_ssize_t lines;
    if (!PyArg_ParseTuple(args, "y*y*y*ny*y*y*y*:generic", &folded, &word, &keys, &lines, &slots, &offsets, &pool,
                          &classes))
        return NULL;
    PyObject *result = NULL;
    int64_t *total = NULL, *generic = NULL;
    KeySet cjk = {NULL, 0, 0};
    Py_ssize_t n = folded.len / 4, n_keys = keys.len / 8, n_slots = slots.len / 4;
    Py_ssize_t n_words = offsets.len / 4 - 1, n_pool = pool.len / 4;
    if (folded.len % 4 || word.len != n || keys.len % 8 || slots.len % 4 || offsets.len % 4 || pool.len % 4 ||
        n_words < 0 || classes.len != n_words || lines < 1 || !n_slots || (n_slots & (n_slots - 1)) ||
        (uintptr_t)folded.buf % 4 || (uintptr_t)slots.buf % 4 || (uintptr_t)offsets.buf % 4 ||
        (uintptr_t)pool.buf % 4 || (uintptr_t)keys.buf % 8) {
        PyErr_SetString(PyExc_ValueError, "generic: buffers of the wrong size or alignment");
        goto release;
    }
    const uint32_t *f = folded.buf, *codes = pool.buf;
    const uint8_t *w = word.buf, *cls = classes.buf;
    const int64_t *k = keys.buf;
    const int32_t *slot = slots.buf, *at = offsets.buf;
    for (Py_ssize_t i = 0; i <= n_words; i++) /* the pool's words lie within it */
        if (at[i] < 0 || at[i] > n_pool || (i && at[i] < at[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "generic: word offsets outside the pool");
            goto release;
        }
    for (Py_ssize_t i = 0; i < n_slots; i++)
        if (slot[i] < -1 || slot[i] >= n_words) {
            PyErr_SetString(PyExc_ValueError, "generic: a slot outside the words");
            goto release;
        }
    total = PyMem_Calloc((size_t)lines, sizeof(int64_t));
    generic = PyMem_Calloc((size_t)lines, sizeof(int64_t));
    if (!total || !generic || keyset_build(&cjk, k, n_keys, 16) < 0) {
        PyErr_NoMemory();
        goto release;
    }
    Py_ssize_t line = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = f[i];
        if (c == '\n') {
            if (++line >= lines) {
                PyErr_SetString(PyExc_ValueError, "generic: more lines than given");
                goto release;
            }
            continue;
        }
        if (IS_CJK(c)) {
            int before = i > 0 && IS_CJK(f[i - 1]), after = i + 1 < n && IS_CJK(f[i + 1]);
            int64_t key;
            if (after)
                key = (int64_t)c << 21 | f[i + 1];
            else if (!before)
                key = (int64_t)c << 21;
            else
                continue;
            total[line]++;
            generic[line] += keyset_has_first(&cjk, key);
            continue;
        }
        if (!w[i])
            continue;
        Py_ssize_t j = i; /* a word: the run of letters and digits that are not CJK */
        uint32_t h = 2166136261u; /* FNV-1a of the word as it is read: one loop (one exit) a word */
        while (j < n && w[j] && !IS_CJK(f[j]) && f[j] != '\n')
            h = (h ^ f[j++]) * 16777619u;
        int kind = 0;
        for (Py_ssize_t probe = 0; probe < n_slots; probe++) {
            int32_t number = slot[(h + probe) & (n_slots - 1)];
            if (number < 0)
                break;
            if (at[number + 1] - at[number] == j - i && !memcmp(codes + at[number], f + i, 4 * (size_t)(j - i))) {
                kind = cls[number];
                break;
            }
        }
        if (kind != 2)
            total[line]++;
        if (kind == 1)
            generic[line]++;
        i = j - 1;
    }
    result = PyBytes_FromStringAndSize(NULL, lines);
    if (!result)
        goto release;
    char *out = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < lines; i++)
        out[i] = total[i] == 0 || 2 * generic[i] >= total[i];
release:
    PyMem_Free(cjk.slots);
    PyMem_Free(total);
    PyMem_Free(generic);
    PyBuffer_Release(&folded);
    PyBuffer_Release(&word);
    PyBuffer_Release(&keys);
    PyBuffer_Release(&slots);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&pool);
    PyBuffer_Release(&classes);
    return result;
}

/* ---- NFKC by table ------------------------------------------------------------------------ */

#define TABLE_CHARS 65536
#define NFKC_FULL (-1) /* needs unicodedata */
#define NFKC_SAME (-2) /* NFKC keeps the character */

static PyObject *winnow_nfkc(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer entries, pool;
    if (!PyArg_ParseTuple(args, "Uy*y*:nfkc", &text, &entries, &pool))
        return NULL;
    PyObject *result = NULL;
    Py_UCS4 *out = NULL;
    if (entries.len != TABLE_CHARS * 4 || pool.len % 4) {
        PyErr_SetString(PyExc_ValueError, "nfkc: a table of 65,536 int32 and a pool of UCS-4 expected");
        goto release;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        goto release;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    const char *table = entries.buf;
    const char *codes = pool.buf;
    Py_ssize_t pool_chars = pool.len / 4;
    Py_ssize_t size = 0;
    int changed = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* the output's length, and whether the table holds every character */
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c >= TABLE_CHARS) {
            result = Py_None;
            goto none;
        }
        int32_t entry;
        memcpy(&entry, table + 4 * (size_t)c, 4);
        if (entry == NFKC_SAME) {
            size++;
            continue;
        }
        changed = 1;
        if (entry < 0) {
            result = Py_None;
            goto none;
        }
        Py_ssize_t at = entry >> 8, length = entry & 0xFF;
        if (at + length > pool_chars) {
            PyErr_SetString(PyExc_ValueError, "nfkc: a table entry outside the pool");
            goto release;
        }
        if (size > PY_SSIZE_T_MAX / 4 - length) {
            PyErr_NoMemory();
            goto release;
        }
        size += length;
    }
    if (!changed) { /* every character its own NFKC: the text itself (a str is never changed) */
        result = text;
        Py_INCREF(result);
        goto release;
    }
    out = PyMem_Malloc((size_t)(size ? size : 1) * sizeof(Py_UCS4));
    if (!out) {
        PyErr_NoMemory();
        goto release;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        int32_t entry;
        memcpy(&entry, table + 4 * (size_t)c, 4);
        if (entry == NFKC_SAME) {
            out[k++] = c;
            continue;
        }
        Py_ssize_t at = entry >> 8, length = entry & 0xFF;
        memcpy(out + k, codes + 4 * at, 4 * (size_t)length);
        k += length;
    }
    result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, size);
    goto release;
none:
    Py_INCREF(Py_None);
release:
    PyMem_Free(out);
    PyBuffer_Release(&entries);
    PyBuffer_Release(&pool);
    return result;
}

/* the table's mapping of c: *at and *length into pool, or length 1 and *same for c itself; -1 when
   c is not in the table (or the entry lies outside the pool) */
static int table_entry(const char *table, Py_ssize_t pool_chars, Py_UCS4 c, Py_ssize_t *at, Py_ssize_t *length)
{
    if (c >= TABLE_CHARS)
        return -1;
    int32_t entry;
    memcpy(&entry, table + 4 * (size_t)c, 4);
    if (entry == NFKC_SAME) {
        *at = -1;
        *length = 1;
        return 0;
    }
    if (entry < 0)
        return -1;
    *at = entry >> 8;
    *length = entry & 0xFF;
    return *at + *length <= pool_chars ? 0 : -2;
}

/* fold's two passes for one character width (kind a constant where inlined). fold_size: the
   output's length, or -1 (a character not in the table: the caller's way), -2 (an entry outside
   the pool), -3 (too long). fold_write: -1 when a folding lies beyond the BMP. */
static inline Py_ssize_t fold_size(const void *chars, int kind, Py_ssize_t n, const char *table, Py_ssize_t pool_chars)
{
    Py_ssize_t size = 0, at, length;
    for (Py_ssize_t i = 0; i < n; i++) {
        int found = table_entry(table, pool_chars, PyUnicode_READ(kind, chars, i), &at, &length);
        if (found < 0)
            return found;
        if (size > PY_SSIZE_T_MAX / 4 - length)
            return -3;
        size += length;
    }
    return size;
}

static inline int fold_write(const void *chars, int kind, Py_ssize_t n, const char *table, const char *codes,
                             Py_ssize_t pool_chars, const uint8_t *is_word, char *out, uint8_t *flags)
{
    Py_ssize_t k = 0, at, length;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (table_entry(table, pool_chars, c, &at, &length) < 0) /* never: fold_size saw every one */
            return -1;
        if (at < 0) { /* folds to itself (in the BMP: the table holds no other) */
            uint32_t code = c;
            memcpy(out + 4 * k, &code, 4);
            flags[k++] = is_word[code] != 0;
            continue;
        }
        for (Py_ssize_t j = 0; j < length; j++) {
            uint32_t code;
            memcpy(&code, codes + 4 * (at + j), 4);
            if (code >= TABLE_CHARS) /* a folding beyond the BMP: the caller's way */
                return -1;
            memcpy(out + 4 * k, &code, 4);
            flags[k++] = is_word[code] != 0;
        }
    }
    return 0;
}

#define BY_KIND(kind, call) \
    ((kind) == PyUnicode_1BYTE_KIND ? call(PyUnicode_1BYTE_KIND) \
     : (kind) == PyUnicode_2BYTE_KIND ? call(PyUnicode_2BYTE_KIND) : call(PyUnicode_4BYTE_KIND))

/* fold in one pass when every character is in the table and folds to one BMP character (most
   text): out holds n characters. -1 at the first that does not: the caller then takes the two
   passes above, which say why (so the answer is theirs whatever the text). */
static inline int fold_one_pass(const void *chars, int kind, Py_ssize_t n, const char *table, const char *codes,
                                Py_ssize_t pool_chars, const uint8_t *is_word, char *out, uint8_t *flags)
{
    Py_ssize_t at, length;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (table_entry(table, pool_chars, c, &at, &length) < 0 || length != 1)
            return -1;
        uint32_t code = c;
        if (at >= 0) {
            memcpy(&code, codes + 4 * at, 4);
            if (code >= TABLE_CHARS)
                return -1;
        }
        memcpy(out + 4 * i, &code, 4);
        flags[i] = is_word[code] != 0;
    }
    return 0;
}

static PyObject *winnow_fold(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer entries, pool, words;
    if (!PyArg_ParseTuple(args, "Uy*y*y*:fold", &text, &entries, &pool, &words))
        return NULL;
    PyObject *result = NULL, *folded = NULL, *word = NULL;
    if (entries.len != TABLE_CHARS * 4 || pool.len % 4 || words.len != TABLE_CHARS) {
        PyErr_SetString(PyExc_ValueError, "fold: tables of 65,536 entries and a pool of UCS-4 expected");
        goto release;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        goto release;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), pool_chars = pool.len / 4;
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    const char *codes = pool.buf, *table = entries.buf;
    const uint8_t *is_word = words.buf;
    if (n <= PY_SSIZE_T_MAX / 4) {
        folded = PyBytes_FromStringAndSize(NULL, n * 4);
        word = PyBytes_FromStringAndSize(NULL, n);
        if (!folded || !word)
            goto release;
        char *out = PyBytes_AS_STRING(folded);
        uint8_t *flags = (uint8_t *)PyBytes_AS_STRING(word);
#define ONE(k) fold_one_pass(chars, k, n, table, codes, pool_chars, is_word, out, flags)
        if (BY_KIND(kind, ONE) == 0) {
            result = PyTuple_Pack(2, folded, word);
            goto release;
        }
#undef ONE
        Py_CLEAR(folded);
        Py_CLEAR(word);
    }
#define SIZE(k) fold_size(chars, k, n, table, pool_chars)
    Py_ssize_t size = BY_KIND(kind, SIZE);
#undef SIZE
    if (size == -2) {
        PyErr_SetString(PyExc_ValueError, "fold: a table entry outside the pool");
        goto release;
    }
    if (size == -3) {
        PyErr_NoMemory();
        goto release;
    }
    if (size < 0) {
        result = Py_None;
        Py_INCREF(result);
        goto release;
    }
    folded = PyBytes_FromStringAndSize(NULL, size * 4);
    word = PyBytes_FromStringAndSize(NULL, size);
    if (!folded || !word)
        goto release;
    char *out = PyBytes_AS_STRING(folded);
    uint8_t *flags = (uint8_t *)PyBytes_AS_STRING(word);
#define WRITE(k) fold_write(chars, k, n, table, codes, pool_chars, is_word, out, flags)
    int beyond = BY_KIND(kind, WRITE);
#undef WRITE
    if (beyond < 0) {
        result = Py_None;
        Py_INCREF(result);
        goto release;
    }
    result = PyTuple_Pack(2, folded, word);
release:
    Py_XDECREF(folded);
    Py_XDECREF(word);
    PyBuffer_Release(&entries);
    PyBuffer_Release(&pool);
    PyBuffer_Release(&words);
    return result;
}

/* ---- table cells -------------------------------------------------------------------------- */

typedef struct {
    char *items;
    Py_ssize_t count, size, width;
} Growing;

static int grow_push(Growing *g, const void *value)
{
    if (g->count == g->size) {
        Py_ssize_t size = g->size ? g->size * 2 : 1024;
        char *items = PyMem_Realloc(g->items, (size_t)size * (size_t)g->width);
        if (!items)
            return -1;
        g->items = items;
        g->size = size;
    }
    memcpy(g->items + g->count++ * g->width, value, (size_t)g->width);
    return 0;
}

/* One pass over the padded text (kind a constant where it is inlined: a loop for each width):
   a character is in a cell when it is neither white space nor "|", or when it ends a white-space
   run that is tabs then one other white-space character (not a line break); a cell is a run of
   such characters. The next character is read one ahead to see where a run ends. */
static inline int cells_scan(const void *chars, int kind, Py_ssize_t n, const uint8_t *is_space, Growing *starts,
                             Growing *ends, Growing *lines_of, int32_t *lines)
{
#define CP(i) ((i) == 0 || (i) == n - 1 ? (Py_UCS4)'\n' : PyUnicode_READ(kind, chars, (i) - 1))
#define SPACE(c) ((c) < TABLE_CHARS && is_space[(c)])
    int32_t line = -1;
    int previous = 0, in_run = 0;
    Py_ssize_t not_tabs = 0;
    Py_UCS4 c = '\n';
    int space = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 next = i + 1 < n ? CP(i + 1) : '\n';
        int next_space = i + 1 < n ? SPACE(next) : 0;
        int in_cell;
        if (!space) {
            in_cell = c != '|';
        } else {
            line += c == '\n';
            if (!in_run) {
                in_run = 1;
                not_tabs = 0;
            }
            not_tabs += c != '\t';
            in_cell = 0;
            if (!next_space) { /* the run's last character */
                in_cell = c != '\t' && c != '\n' && not_tabs == 1;
                in_run = 0;
            }
        }
        if (in_cell != previous) {
            int64_t at = i;
            if (in_cell ? grow_push(starts, &at) < 0 || grow_push(lines_of, &line) < 0 : grow_push(ends, &at) < 0)
                return -1;
            previous = in_cell;
        }
        if (in_cell && !space) {
            /* inside a cell after a character that is neither white space nor "|": what follows up
               to the next "|", tab, line break or run of two white-space characters stays in the
               cell and changes no state (a lone white-space character, not a tab, before one that
               is not white space is in the cell, as the run's rule above has it): a tight loop */
            while (i + 2 < n) { /* CP(i + 1) is the text's character i, CP(i + 2) exists */
                Py_UCS4 d = PyUnicode_READ(kind, chars, i), e = CP(i + 2);
                /* no branch on a lone space (one a word in prose): the stop is worked out whole */
                int d_space = SPACE(d), e_space = SPACE(e);
                if ((d == '|') | (d_space & ((d == '\t') | (d == '\n') | e_space)))
                    break;
                i++;
            }
            next = i + 1 < n ? CP(i + 1) : '\n';
            next_space = i + 1 < n ? SPACE(next) : 0;
        }
        c = next;
        space = next_space;
    }
    if (previous) { /* never: the padded text ends with a line break */
        int64_t at = n;
        if (grow_push(ends, &at) < 0)
            return -1;
    }
    *lines = line;
    return 0;
#undef CP
#undef SPACE
}

static PyObject *winnow_cells(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer spaces;
    if (!PyArg_ParseTuple(args, "Uy*:cells", &text, &spaces))
        return NULL;
    PyObject *result = NULL;
    Growing starts = {NULL, 0, 0, 8}, ends = {NULL, 0, 0, 8}, lines_of = {NULL, 0, 0, 4};
    if (spaces.len != TABLE_CHARS) {
        PyErr_SetString(PyExc_ValueError, "cells: a table of 65,536 bytes expected");
        goto release;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        goto release;
#endif
    const uint8_t *is_space = spaces.buf;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text) + 2; /* padded: "\n" + text + "\n" */
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    int32_t line = -1;
    int failed;
    if (kind == PyUnicode_1BYTE_KIND)
        failed = cells_scan(chars, PyUnicode_1BYTE_KIND, n, is_space, &starts, &ends, &lines_of, &line);
    else if (kind == PyUnicode_2BYTE_KIND)
        failed = cells_scan(chars, PyUnicode_2BYTE_KIND, n, is_space, &starts, &ends, &lines_of, &line);
    else
        failed = cells_scan(chars, PyUnicode_4BYTE_KIND, n, is_space, &starts, &ends, &lines_of, &line);
    if (failed)
        goto no_memory;
    result = Py_BuildValue("(y#y#y#i)", starts.items ? starts.items : "", starts.count * 8,
                           ends.items ? ends.items : "", ends.count * 8, lines_of.items ? lines_of.items : "",
                           lines_of.count * 4, line);
    goto release;
no_memory:
    PyErr_NoMemory();
release:
    PyMem_Free(starts.items);
    PyMem_Free(ends.items);
    PyMem_Free(lines_of.items);
    PyBuffer_Release(&spaces);
    return result;
}

/* ---- lines that may start with a clause number ------------------------------------------- */

/* Whether a line of the text may start with a clause number: its first character that is not
   white space (table byte 2: re's \s other than "\n") is one the number's pattern can start with
   (table byte 1), or the first letter of a word it names (3) followed by one that can be that
   word's second (4), or beyond the BMP (not in the table: counted as may). No line, no number:
   the caller then skips the regex. One read a character, from line break to line break. */
/* the first "\n" at or after i (n when none): memchr for one byte a character, else blocks of 64
   characters compared whole (a loop the compiler vectorises), then one at a time */
static inline Py_ssize_t next_newline(const void *chars, int kind, Py_ssize_t i, Py_ssize_t n)
{
    if (kind == PyUnicode_1BYTE_KIND) {
        const char *found = memchr((const char *)chars + i, '\n', (size_t)(n - i));
        return found ? found - (const char *)chars : n;
    }
    for (; i + 64 <= n; i += 64) {
        int any = 0;
        if (kind == PyUnicode_2BYTE_KIND)
            for (int k = 0; k < 64; k++)
                any |= ((const Py_UCS2 *)chars)[i + k] == '\n';
        else
            for (int k = 0; k < 64; k++)
                any |= ((const Py_UCS4 *)chars)[i + k] == '\n';
        if (any)
            break;
    }
    while (i < n && PyUnicode_READ(kind, chars, i) != '\n')
        i++;
    return i;
}

static inline int heads_scan(const void *chars, int kind, Py_ssize_t n, const uint8_t *table)
{
    for (Py_ssize_t i = 0; i < n; i = next_newline(chars, kind, i, n) + 1) { /* i: a line's start */
        Py_UCS4 c = 0;
        while (i < n && (c = PyUnicode_READ(kind, chars, i)) != '\n' && c < TABLE_CHARS && table[c] == 2)
            i++; /* its leading white space */
        if (i == n || c == '\n')
            continue;
        if (c >= TABLE_CHARS || table[c] == 1)
            return 1;
        if (table[c] == 3 && i + 1 < n) {
            Py_UCS4 second = PyUnicode_READ(kind, chars, i + 1);
            if (second >= TABLE_CHARS || table[second] == 4)
                return 1;
        }
    }
    return 0;
}

static PyObject *winnow_heads(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*:heads", &text, &table))
        return NULL;
    PyObject *result = NULL;
    if (table.len != TABLE_CHARS) {
        PyErr_SetString(PyExc_ValueError, "heads: a table of 65,536 bytes expected");
        goto release;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        goto release;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text), found;
    const void *chars = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        found = heads_scan(chars, PyUnicode_1BYTE_KIND, n, table.buf);
    else if (kind == PyUnicode_2BYTE_KIND)
        found = heads_scan(chars, PyUnicode_2BYTE_KIND, n, table.buf);
    else
        found = heads_scan(chars, PyUnicode_4BYTE_KIND, n, table.buf);
    result = PyBool_FromLong(found);
release:
    PyBuffer_Release(&table);
    return result;
}

/* ---- whether a marking term may be in a text ------------------------------------------- */

/* False only when no marking term can match: no character that ends a CJK term (table byte 1) and
   no place where an English term's word starts, letters compared by the table's lowercase ASCII
   letter (a character that can case-fold to an ASCII letter otherwise, byte 2, matches any).
   words: the words, "\n" after each. The caller's RE2 pass is skipped when it says none.
   marks_lines lists the places themselves (a CJK term's last character, a word's first letter),
   the first of each line holding one, at most limit + 1 of them: a word never holds a line break
   (table byte 0), so each place lies in one line, and a line holding none can hold no term (the
   caller searches only the lines listed, or the whole text when more than limit are). */
#define MARK_WORDS 16
static inline uint8_t mark_byte(Py_UCS4 c, const uint8_t *table)
{
    return c < TABLE_CHARS ? table[c] : 0;
}

/* at[k][t]: the words whose letter k a character of table byte t can be (byte 2: any; a word of
   k letters or fewer: any byte, also past the text's end). A word is compared in full only
   where its first three letters can start: a branch taken at some 1% of an English text's
   characters, not at each of the words' first letters (a quarter of them). */
static void marks_masks(uint32_t at[3][256], const char **word, const Py_ssize_t *length, int words)
{
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < 256; t++) {
            uint32_t bits = 0;
            for (int w = 0; w < words; w++)
                if (length[w] <= k || t == 2 || (uint8_t)word[w][k] == t) /* letters: never 0, 1 or 2 */
                    bits |= 1u << w;
            at[k][t] = bits;
        }
}

static inline Py_ssize_t marks_scan(const void *chars, int kind, Py_ssize_t n, Py_ssize_t start, const uint8_t *table,
                                    const char **word, const Py_ssize_t *length, uint32_t at[3][256])
{ /* the first place at or after start (0 <= start <= n) where a CJK term ends or a word starts, or -1 */
#define MARK_BYTE(i) ((i) < n ? mark_byte(PyUnicode_READ(kind, chars, (i)), table) : 0)
    uint8_t t0 = MARK_BYTE(start), t1 = MARK_BYTE(start + 1);
    for (Py_ssize_t i = start; i < n; i++) {
        uint8_t t2 = MARK_BYTE(i + 2);
        if (t0 == 1)
            return i;
        uint32_t left = at[0][t0] & at[1][t1] & at[2][t2];
        for (; left; left &= left - 1) {
            int w = __builtin_ctz(left);
            if (length[w] > n - i)
                continue;
            Py_ssize_t k = 3;
            for (; k < length[w]; k++) {
                Py_UCS4 d = PyUnicode_READ(kind, chars, i + k);
                uint8_t u = d < TABLE_CHARS ? table[d] : 0;
                if (u != 2 && u != (uint8_t)word[w][k])
                    break;
            }
            if (k >= length[w])
                return i;
        }
        t0 = t1;
        t1 = t2;
    }
    return -1;
#undef MARK_BYTE
}

/* marks (listed 0: a bool) and marks_lines (listed 1: a list) */
static PyObject *marks_common(PyObject *args, int listed)
{
    PyObject *text;
    Py_buffer table, words;
    Py_ssize_t limit = 0;
    if (listed ? !PyArg_ParseTuple(args, "Uy*y*n:marks_lines", &text, &table, &words, &limit)
               : !PyArg_ParseTuple(args, "Uy*y*:marks", &text, &table, &words))
        return NULL;
    PyObject *result = NULL;
    const char *word[MARK_WORDS];
    Py_ssize_t length[MARK_WORDS];
    int count = 0;
    const char *all = words.buf;
    if (table.len != TABLE_CHARS) {
        PyErr_SetString(PyExc_ValueError, "marks: a table of 65,536 bytes expected");
        goto release;
    }
    for (Py_ssize_t at = 0; at < words.len;) { /* each word: lowercase ASCII letters, then "\n" */
        const char *end = memchr(all + at, '\n', (size_t)(words.len - at));
        Py_ssize_t size = end ? end - (all + at) : -1;
        if (size < 1 || count == MARK_WORDS) {
            PyErr_SetString(PyExc_ValueError, "marks: at most 16 words of letters, each ended by a line break");
            goto release;
        }
        for (Py_ssize_t k = 0; k < size; k++)
            if (all[at + k] < 'a' || all[at + k] > 'z') {
                PyErr_SetString(PyExc_ValueError, "marks: words of lowercase ASCII letters expected");
                goto release;
            }
        word[count] = all + at;
        length[count++] = size;
        at += size + 1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        goto release;
#endif
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "marks_lines: a negative limit");
        goto release;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    uint32_t masks[3][256];
    marks_masks(masks, word, length, count);
    if (listed && !(result = PyList_New(0)))
        goto release;
    for (Py_ssize_t start = 0; start <= n;) { /* marks: one round; marks_lines: a round a line with a place */
        Py_ssize_t found;
        if (kind == PyUnicode_1BYTE_KIND)
            found = marks_scan(chars, PyUnicode_1BYTE_KIND, n, start, table.buf, word, length, masks);
        else if (kind == PyUnicode_2BYTE_KIND)
            found = marks_scan(chars, PyUnicode_2BYTE_KIND, n, start, table.buf, word, length, masks);
        else
            found = marks_scan(chars, PyUnicode_4BYTE_KIND, n, start, table.buf, word, length, masks);
        if (!listed) {
            result = PyBool_FromLong(found >= 0);
            break;
        }
        if (found < 0)
            break;
        PyObject *place = PyLong_FromSsize_t(found);
        if (!place || PyList_Append(result, place) < 0) {
            Py_XDECREF(place);
            Py_CLEAR(result);
            break;
        }
        Py_DECREF(place);
        if (PyList_GET_SIZE(result) > limit) /* one more than the limit: the caller's sign of more */
            break;
        start = found + 1; /* on to the next line: found < n */
        while (start < n && PyUnicode_READ(kind, chars, start - 1) != '\n')
            start++;
        if (PyUnicode_READ(kind, chars, start - 1) != '\n') /* start == n: the place was on the last line */
            break;
    }
release:
    PyBuffer_Release(&table);
    PyBuffer_Release(&words);
    return result;
}

static PyObject *winnow_marks(PyObject *self, PyObject *args) { return marks_common(args, 0); }

static PyObject *winnow_marks_lines(PyObject *self, PyObject *args) { return marks_common(args, 1); }

/* ---- lines as anchors --------------------------------------------------------------------- */


/* UTF-8 of c (a valid code point) in the low bytes of a word, and its length: arithmetic and
   selects, no branch on the text's mix of scripts */
static inline uint32_t utf8_word(uint32_t c, int *length)
{
    uint32_t one = c;
    uint32_t two = (0xC0 | c >> 6) | (0x80 | (c & 0x3F)) << 8;
    uint32_t three = (0xE0 | c >> 12) | (0x80 | (c >> 6 & 0x3F)) << 8 | (0x80 | (c & 0x3F)) << 16;
    uint32_t four = (0xF0 | c >> 18) | (0x80 | (c >> 12 & 0x3F)) << 8 | (0x80 | (c >> 6 & 0x3F)) << 16 |
                    (uint32_t)(0x80 | (c & 0x3F)) << 24;
    int n = 1 + (c >= 0x80) + (c >= 0x800) + (c >= 0x10000);
    *length = n;
    return n == 1 ? one : n == 2 ? two : n == 3 ? three : four;
}

static PyObject *winnow_lines(PyObject *self, PyObject *args)
{
    Py_buffer folded, word;
    Py_ssize_t gram;
    if (!PyArg_ParseTuple(args, "y*y*n:lines", &folded, &word, &gram))
        return NULL;
    PyObject *data = NULL, *starts = NULL, *sizes = NULL, *counts = NULL, *probes = NULL, *result = NULL;
    int64_t *char_at = NULL;
    uint8_t *text = NULL;
    Py_ssize_t n = folded.len / 4;
    if (folded.len % 4 || word.len != n || (uintptr_t)folded.buf % 4 || gram < 1) {
        PyErr_SetString(PyExc_ValueError, "lines: buffers of the wrong size or alignment, or no gram");
        goto release;
    }
    const uint32_t *f = folded.buf;
    const uint8_t *w = word.buf;
    Py_ssize_t bytes = 0, lines = 1;
    uint32_t bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* sizes, and whether every code point is a character */
        uint32_t c = f[i];
        bad |= (c > 0x10FFFF) | (c - 0xD800 < 0x800);
        int newline = c == '\n';
        lines += newline;
        bytes += (1 + (c >= 0x80) + (c >= 0x800) + (c >= 0x10000)) & -(Py_ssize_t)(newline | (w[i] != 0));
    }
    if (bad) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (f[i] > 0x10FFFF || (f[i] >= 0xD800 && f[i] < 0xE000)) {
                PyErr_Format(PyExc_ValueError, "lines: code point %u at %zd is not a character", (unsigned)f[i], i);
                goto release;
            }
    }
    data = PyBytes_FromStringAndSize(NULL, bytes);
    starts = PyBytes_FromStringAndSize(NULL, lines * 8);
    sizes = PyBytes_FromStringAndSize(NULL, lines * 8);
    counts = PyBytes_FromStringAndSize(NULL, lines * 8);
    probes = PyBytes_FromStringAndSize(NULL, lines * 24);
    text = PyMem_Malloc((size_t)bytes + 4); /* written 4 bytes a character: room past the end */
    char_at = PyMem_Malloc(((size_t)n + 1) * sizeof(int64_t)); /* the current line's character starts */
    if (!data || !starts || !sizes || !counts || !probes)
        goto release;
    if (!text || !char_at) {
        PyErr_NoMemory();
        goto release;
    }
    int64_t *start = (int64_t *)PyBytes_AS_STRING(starts), *size = (int64_t *)PyBytes_AS_STRING(sizes);
    int64_t *count = (int64_t *)PyBytes_AS_STRING(counts), *probe = (int64_t *)PyBytes_AS_STRING(probes);
    Py_ssize_t at = 0, line = 0, chars = 0; /* chars: character starts of this line so far */
    start[0] = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        { /* the line's characters, in a loop of its own with its state in locals (no spills) */
            uint8_t *write = text + at;
            int64_t *char_start = char_at, written = at;
            for (; i < n && f[i] != '\n'; i++) {
                int length;
                uint32_t encoded = utf8_word(f[i], &length);
                memcpy(write, &encoded, 4); /* written + 4 <= bytes + 4: the room allocated */
                *char_start = written;
                int keep = w[i] != 0;
                char_start += keep;
                length &= -keep;
                write += length;
                written += length;
            }
            at = written;
            chars = char_start - char_at;
        }
        /* the end of line `line`: its text is text[start .. at), its characters start at char_at[0 .. chars) */
        int64_t begin = start[line], end = at, grams = 0;
        size[line] = end - begin;
        probe[3 * line] = probe[3 * line + 1] = probe[3 * line + 2] = 0;
        if (end - begin >= gram) {
            Py_ssize_t last = chars - 1; /* grams start at characters in [begin, end - gram] */
            while (char_at[last] > end - gram) /* at most gram bytes back; the first character is at begin */
                last--;
            grams = last + 1;
            probe[3 * line] = begin;
            probe[3 * line + 1] = char_at[grams / 2];
            probe[3 * line + 2] = char_at[last];
        }
        count[line] = grams;
        chars = 0;
        if (i == n)
            break;
        text[at++] = '\n';
        start[++line] = at;
    }
    if (at != bytes || line != lines - 1) {
        PyErr_SetString(PyExc_SystemError, "lines: the text changed while it was read");
        goto release;
    }
    memcpy(PyBytes_AS_STRING(data), text, (size_t)bytes);
    result = PyTuple_Pack(5, data, starts, sizes, counts, probes);
release:
    PyMem_Free(text);
    PyMem_Free(char_at);
    Py_XDECREF(data);
    Py_XDECREF(starts);
    Py_XDECREF(sizes);
    Py_XDECREF(counts);
    Py_XDECREF(probes);
    PyBuffer_Release(&folded);
    PyBuffer_Release(&word);
    return result;
}

/* ---- OOXML paragraphs (agent/content/ooxml.py) ------------------------------------------ */

/* ooxml_paragraphs(text, refused, first_table, cells, limit) -> None | False | (list, list | None, list, int)
 *     The paragraphs of a whole docx or pptx member (text: its str, any width) as ooxml's
 *     handlers get them from the events (xmltext.TextHandler: text kept inside t, a part flushed
 *     at each p's end and once at the member's end, tab/br/cr giving "\t", "\n", "\n" inside a p
 *     or a t; names by local name, any prefix): the non-empty flushes in order, references
 *     replaced and raw "\r\n" and "\r" read as "\n" as expat does. With cells (_DocxHandler),
 *     tables are followed too (tbl numbered from first_table as it starts, tr and tc counted,
 *     gridSpan's val taking that many columns, clamped to 1..64) and each flush gets the index
 *     of its cell (table, row, column) among the distinct cells listed, -1 for none; the tuple
 *     ends with the tables counted. With cells 2 (_SlideHandler) each flush gets its place
 *     instead, as the last sp start (the body) or ph start (by its type) set it: 0 the body, 1 the
 *     footer, 2 the header. False once the flushes hold more than limit characters (the
 *     caller's budget: the events stop where the reference stops), said as soon as the text
 *     gathered passes it, so the buffer stays within the budget. None for what the events
 *     would read but this scan does not follow: "<!", a "<?" after the start, a tag or quote left
 *     open, a name of refused (a tuple of up to 4 local names) or with two colons, an unknown or
 *     out-of-range reference, an end with nothing open, a gridSpan val or a ph type the
 *     reference reads otherwise. The caller only sends a member expat found well-formed; on any other str the
 *     scan still reads every character a bounded number of times and never past the text. */

#define PARA_REFUSED 4
#define PARA_NAME_CHARS 32
enum { NAME_OTHER, NAME_T, NAME_P, NAME_TAB, NAME_BR, NAME_CR, NAME_TBL, NAME_TR, NAME_TC, NAME_SPAN, NAME_SP, NAME_PH,
       NAME_REFUSED, NAME_SI, NAME_RPH };
/* what each flush is given beside its text: nothing, a docx table's cell, a slide's place */
enum { MODE_PARAGRAPHS, MODE_CELLS, MODE_SLIDES };
/* a slide's places (ooxml._SlideHandler.PLACEHOLDERS): the index each flush gets in MODE_SLIDES */
enum { PLACE_BODY, PLACE_FOOTER, PLACE_HEADER };
enum { SCAN_DONE, SCAN_NONE, SCAN_OVER, SCAN_ERROR, SCAN_UNSURE /* para_well_scan: the check not sure */ };

typedef struct {
    Py_UCS4 *chars; /* the paragraph being gathered (utf8: its UTF-8 bytes, the buffer read as bytes) */
    int utf8; /* the scan reads a member's UTF-8 bytes (kind 1), not its str: lengths and the limit count bytes */
    Py_ssize_t length, size;
    Py_UCS4 max; /* the OR of its characters: below 128, 256 or 65,536 exactly when they all are */
    Py_ssize_t total, limit;
    Py_ssize_t in_part, in_text, in_phonetic; /* in_phonetic: shared_strings's rPh elements open */
    int cells; /* the mode */
    int place; /* MODE_SLIDES: where the text goes, as the last sp or ph start set it */
    int64_t *open; /* table, row, column, span of each open table */
    Py_ssize_t open_count, open_size;
    int64_t tables, cell[3];
    Py_ssize_t cell_at; /* the index of cell in seen, -1 before the first */
    PyObject *paragraphs, *index, *seen;
    int stopped; /* para_well_scan: an event said SCAN_NONE or SCAN_OVER (no answer, whatever the check says) */
    Py_ssize_t refused_count, refused_length[PARA_REFUSED];
    char refused[PARA_REFUSED][PARA_NAME_CHARS];
} Paragraphs;

/* room for more characters in the paragraph: SCAN_OVER as soon as the paragraph and those before
   it pass the limit (the buffer stays within the budget, as the events' check_chars keeps theirs) */
static int para_reserve(Paragraphs *s, Py_ssize_t more)
{
    if (s->length + more > s->limit - s->total)
        return SCAN_OVER;
    if (s->size - s->length >= more)
        return SCAN_DONE;
    Py_ssize_t size = s->size ? s->size : 256;
    while (size - s->length < more)
        size *= 2;
    size_t unit = s->utf8 ? 1 : sizeof(Py_UCS4);
    Py_UCS4 *chars = (size_t)size > PY_SSIZE_T_MAX / unit ? NULL : PyMem_Realloc(s->chars, (size_t)size * unit);
    if (!chars) {
        PyErr_NoMemory();
        return SCAN_ERROR;
    }
    s->chars = chars;
    s->size = size;
    return SCAN_DONE;
}

static int para_push(Paragraphs *s, Py_UCS4 c)
{
    if (s->utf8 && c >= 0x80) { /* a reference's character, written as UTF-8 (c <= 0x10FFFF, no surrogate) */
        unsigned char bytes[4];
        int count = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        for (int k = count - 1; k > 0; k--, c >>= 6)
            bytes[k] = (unsigned char)(0x80 | (c & 0x3F));
        bytes[0] = (unsigned char)(c | (count == 2 ? 0xC0 : count == 3 ? 0xE0 : 0xF0));
        int done = para_reserve(s, count);
        if (done != SCAN_DONE)
            return done;
        memcpy((unsigned char *)s->chars + s->length, bytes, (size_t)count);
        s->length += count;
        s->max |= 0x80;
        return SCAN_DONE;
    }
    int done = para_reserve(s, 1);
    if (done != SCAN_DONE)
        return done;
    if (s->utf8)
        ((unsigned char *)s->chars)[s->length++] = (unsigned char)c;
    else
        s->chars[s->length++] = c;
    s->max |= c;
    return SCAN_DONE;
}

/* the buffer as a str in the narrowest width that holds it (a new reference, NULL on an error),
   the buffer emptied */
/* the str of p[0:n], UTF-8 that well_utf8 passed (and para_push wrote): its characters counted and
   its width told by its greatest lead byte in one pass, then written in a second, where the
   strict decoder's writer guesses a width and widens its buffer as the text goes; any byte
   sequence that is not one character of the width told (none here) goes to that decoder, which
   raises */
static PyObject *para_utf8_string(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t count = 0;
    unsigned char widest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        count += (p[i] & 0xC0) != 0x80;
        widest = p[i] > widest ? p[i] : widest;
    }
    if (widest < 0x80 || widest >= 0xF5 || (widest >= 0x80 && widest < 0xC2))
        return PyUnicode_DecodeUTF8((const char *)p, n, "strict"); /* ASCII: a copy; else not UTF-8 */
    /* the greatest lead byte tells the greatest character's range: C2-C3 to U+00FF, C4-EF to U+FFFF */
    Py_UCS4 max = widest < 0xC4 ? 0xFF : widest < 0xF0 ? 0xFFFF : 0x10FFFF;
    PyObject *text = PyUnicode_New(count, max);
    if (!text)
        return NULL;
    int kind = PyUnicode_KIND(text);
    void *data = PyUnicode_DATA(text);
    Py_ssize_t at = 0, i = 0;
    /* one loop for each width (the width a constant in it); a sequence it does not expect stops it */
#define PARA_DECODE(type)                                                                                      \
    {                                                                                                          \
        type *out = (type *)data;                                                                              \
        while (i < n && at < count) {                                                                          \
            unsigned char c = p[i];                                                                            \
            if (c < 0x80) {                                                                                    \
                out[at++] = c;                                                                                 \
                i++;                                                                                           \
            } else if (c >= 0xC2 && c < 0xE0 && n - i >= 2 && (p[i + 1] & 0xC0) == 0x80) {                    \
                out[at++] = (type)((Py_UCS4)(c & 0x1F) << 6 | (p[i + 1] & 0x3F));                               \
                i += 2;                                                                                        \
            } else if (c >= 0xE0 && c < 0xF0 && max >= 0xFFFF && n - i >= 3 && (p[i + 1] & 0xC0) == 0x80      \
                       && (p[i + 2] & 0xC0) == 0x80) {                                                         \
                out[at++] = (type)((Py_UCS4)(c & 0x0F) << 12 | (Py_UCS4)(p[i + 1] & 0x3F) << 6 | (p[i + 2] & 0x3F)); \
                i += 3;                                                                                        \
            } else if (c >= 0xF0 && c < 0xF5 && max > 0xFFFF && n - i >= 4 && (p[i + 1] & 0xC0) == 0x80        \
                       && (p[i + 2] & 0xC0) == 0x80 && (p[i + 3] & 0xC0) == 0x80) {                            \
                out[at++] = (type)((Py_UCS4)(c & 0x07) << 18 | (Py_UCS4)(p[i + 1] & 0x3F) << 12                 \
                                   | (Py_UCS4)(p[i + 2] & 0x3F) << 6 | (p[i + 3] & 0x3F));                       \
                i += 4;                                                                                        \
            } else                                                                                             \
                break;                                                                                         \
        }                                                                                                      \
    }
    if (kind == PyUnicode_1BYTE_KIND)
        PARA_DECODE(Py_UCS1)
    else if (kind == PyUnicode_2BYTE_KIND)
        PARA_DECODE(Py_UCS2)
    else
        PARA_DECODE(Py_UCS4)
#undef PARA_DECODE
    if (i != n || at != count) {
        Py_DECREF(text);
        return PyUnicode_DecodeUTF8((const char *)p, n, "strict");
    }
    return text;
}

static PyObject *para_string(Paragraphs *s)
{
    if (s->utf8) { /* whole characters: runs end at ASCII bytes of a member checked as UTF-8 */
        PyObject *text = para_utf8_string((const unsigned char *)s->chars, s->length);
        s->length = 0;
        s->max = 0;
        return text;
    }
    PyObject *text = PyUnicode_New(s->length, s->max > 0x10FFFF ? 0x10FFFF : s->max);
    if (!text)
        return NULL;
    int kind = PyUnicode_KIND(text);
    void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        for (Py_ssize_t i = 0; i < s->length; i++)
            ((Py_UCS1 *)data)[i] = (Py_UCS1)s->chars[i];
    else if (kind == PyUnicode_2BYTE_KIND)
        for (Py_ssize_t i = 0; i < s->length; i++)
            ((Py_UCS2 *)data)[i] = (Py_UCS2)s->chars[i];
    else if (s->length)
        memcpy(data, s->chars, (size_t)s->length * sizeof(Py_UCS4));
    s->length = 0;
    s->max = 0;
    return text;
}

/* TextHandler.flush: a non-empty buffer becomes a paragraph (with _DocxHandler's cell) */
static int para_flush(Paragraphs *s)
{
    if (!s->length)
        return SCAN_DONE;
    s->total += s->length;
    if (s->total > s->limit)
        return SCAN_OVER;
    PyObject *text = para_string(s);
    if (!text)
        return SCAN_ERROR;
    int failed = PyList_Append(s->paragraphs, text);
    Py_DECREF(text);
    if (failed)
        return SCAN_ERROR;
    if (s->cells == MODE_PARAGRAPHS)
        return SCAN_DONE;
    Py_ssize_t at = -1;
    if (s->cells == MODE_SLIDES)
        at = s->place;
    else if (s->open_count) {
        const int64_t *table = s->open + 4 * (s->open_count - 1);
        int64_t cell[3] = {table[0], table[1] > 0 ? table[1] : 0, table[2] > 0 ? table[2] : 0};
        if (s->cell_at < 0 || memcmp(cell, s->cell, sizeof cell)) { /* a cell of its own */
            PyObject *made = Py_BuildValue("(LLL)", (long long)cell[0], (long long)cell[1], (long long)cell[2]);
            if (!made || PyList_Append(s->seen, made)) {
                Py_XDECREF(made);
                return SCAN_ERROR;
            }
            Py_DECREF(made);
            memcpy(s->cell, cell, sizeof cell);
            s->cell_at = PyList_GET_SIZE(s->seen) - 1;
        }
        at = s->cell_at;
    }
    PyObject *number = PyLong_FromSsize_t(at);
    if (!number)
        return SCAN_ERROR;
    failed = PyList_Append(s->index, number);
    Py_DECREF(number);
    return failed ? SCAN_ERROR : SCAN_DONE;
}

static inline int para_is_space(Py_UCS4 c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* the local name chars[a:b] (after its prefix) as one of the names the handlers react to: its
   characters compared where they stand, by its length first (no copy: every tag of a member asks,
   and most are none of these) */
static inline int para_name(const Paragraphs *s, const void *chars, int kind, Py_ssize_t a, Py_ssize_t b)
{
#define PARA_AT(k) PyUnicode_READ(kind, chars, a + (k))
    Py_ssize_t length = b - a;
    for (Py_ssize_t k = 0; k < s->refused_count; k++)
        if (s->refused_length[k] == length) {
            Py_ssize_t i = 0;
            while (i < length && PARA_AT(i) < 128 && PARA_AT(i) == (Py_UCS4)(unsigned char)s->refused[k][i])
                i++;
            if (i == length)
                return NAME_REFUSED;
        }
    switch (length) {
    case 1: {
        Py_UCS4 c = PARA_AT(0);
        return c == 't' ? NAME_T : c == 'p' ? NAME_P : NAME_OTHER;
    }
    case 2: {
        Py_UCS4 c = PARA_AT(0), d = PARA_AT(1);
        if (s->cells == MODE_SLIDES && ((c == 's' && d == 'p') || (c == 'p' && d == 'h')))
            return c == 's' ? NAME_SP : NAME_PH;
        return d == 'r' ? (c == 'b' ? NAME_BR : c == 'c' ? NAME_CR : c == 't' ? NAME_TR : NAME_OTHER)
               : c == 't' && d == 'c' ? NAME_TC
                                      : NAME_OTHER;
    }
    case 3:
        if (PARA_AT(0) != 't')
            return NAME_OTHER;
        return PARA_AT(1) == 'a' && PARA_AT(2) == 'b'   ? NAME_TAB
               : PARA_AT(1) == 'b' && PARA_AT(2) == 'l' ? NAME_TBL
                                                        : NAME_OTHER;
    case 8: {
        static const char span[] = "gridSpan";
        for (Py_ssize_t i = 0; i < 8; i++)
            if (PARA_AT(i) != (Py_UCS4)span[i])
                return NAME_OTHER;
        return NAME_SPAN;
    }
    }
    return NAME_OTHER;
#undef PARA_AT
}

/* the value of the attribute whose local name is wanted (ASCII letters) among the
   attributes chars[a:b], as xmlscan.attributes reads them (by local name; xmlns declarations are
   no attributes): 1 and [*value, *value_end) when there, 0 when not, -1 for what this does not
   read as the reference does (the name twice, a reference, a tab or line break, a control or
   non-ASCII character in the value, attributes not name="value") */
static inline int para_attribute(const void *chars, int kind, Py_ssize_t a, Py_ssize_t b, const char *wanted,
                                 Py_ssize_t *value_at, Py_ssize_t *value_end_at)
{
    Py_ssize_t wanted_length = (Py_ssize_t)strlen(wanted), value = -1, value_end = -1;
    Py_ssize_t i = a;
    for (;;) {
        while (i < b && para_is_space(PyUnicode_READ(kind, chars, i)))
            i++;
        if (i == b)
            break;
        Py_ssize_t name = i, local = i, colons = 0;
        for (; i < b; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, chars, i);
            if (c == '=' || para_is_space(c))
                break;
            if (c == ':') {
                colons++;
                local = i + 1;
            }
        }
        Py_ssize_t name_end = i;
        while (i < b && para_is_space(PyUnicode_READ(kind, chars, i)))
            i++;
        if (i == b || PyUnicode_READ(kind, chars, i) != '=' || name_end == name || colons > 1)
            return -1;
        i++;
        while (i < b && para_is_space(PyUnicode_READ(kind, chars, i)))
            i++;
        if (i == b)
            return -1;
        Py_UCS4 quote = PyUnicode_READ(kind, chars, i);
        if (quote != '"' && quote != '\'')
            return -1;
        Py_ssize_t start = ++i;
        while (i < b && PyUnicode_READ(kind, chars, i) != quote)
            i++;
        if (i == b)
            return -1;
        Py_ssize_t end = i++;
        int xmlns = name_end - name >= 5 && PyUnicode_READ(kind, chars, name) == 'x' &&
                    PyUnicode_READ(kind, chars, name + 1) == 'm' && PyUnicode_READ(kind, chars, name + 2) == 'l' &&
                    PyUnicode_READ(kind, chars, name + 3) == 'n' && PyUnicode_READ(kind, chars, name + 4) == 's' &&
                    (name_end - name == 5 || PyUnicode_READ(kind, chars, name + 5) == ':');
        if (xmlns || name_end - local != wanted_length)
            continue;
        Py_ssize_t same = 0;
        while (same < wanted_length && PyUnicode_READ(kind, chars, local + same) == (Py_UCS4)wanted[same])
            same++;
        if (same < wanted_length)
            continue;
        if (value >= 0)
            return -1; /* twice: the reference keeps the last */
        value = start;
        value_end = end;
    }
    if (value < 0)
        return 0;
    for (Py_ssize_t k = value; k < value_end; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, k);
        if (c < ' ' || c >= 127 || c == '&')
            return -1; /* str.strip's other white space, a reference: the reference's way */
    }
    *value_at = value;
    *value_end_at = value_end;
    return 1;
}

/* the columns a gridSpan's attributes chars[a:b] give its cell, as min(max(_index(val), 1), 64)
   of its val attribute ("1" when absent); -1 for a val not read here (para_attribute) */
static inline int64_t para_span(const void *chars, int kind, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t value, value_end;
    int found = para_attribute(chars, kind, a, b, "val", &value, &value_end);
    if (found <= 0)
        return found < 0 ? -1 : 1;
    while (value < value_end && PyUnicode_READ(kind, chars, value) == ' ')
        value++;
    while (value_end > value && PyUnicode_READ(kind, chars, value_end - 1) == ' ')
        value_end--;
    if (value_end == value || value_end - value > 18)
        return 1; /* _index's -1 */
    int64_t number = 0;
    for (Py_ssize_t k = value; k < value_end; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, k);
        if (c < '0' || c > '9')
            return 1;
        number = number * 10 + (c - '0');
    }
    return number < 1 ? 1 : number > 64 ? 64 : number;
}

/* the place a ph's attributes chars[a:b] give the slide's text (_SlideHandler.PLACEHOLDERS by its
   type: footer, date and slide number are the footer, hdr the header, any other the body); -1 for
   a type not read here (para_attribute) */
static inline int para_place(const void *chars, int kind, Py_ssize_t a, Py_ssize_t b)
{
    static const struct {
        const char *type;
        int place;
    } places[] = {{"ftr", PLACE_FOOTER}, {"dt", PLACE_FOOTER}, {"sldNum", PLACE_FOOTER}, {"hdr", PLACE_HEADER}};
    Py_ssize_t value, value_end;
    int found = para_attribute(chars, kind, a, b, "type", &value, &value_end);
    if (found <= 0)
        return found < 0 ? -1 : PLACE_BODY;
    for (size_t m = 0; m < sizeof places / sizeof places[0]; m++) {
        Py_ssize_t length = (Py_ssize_t)strlen(places[m].type);
        if (value_end - value != length)
            continue;
        Py_ssize_t k = 0;
        while (k < length && PyUnicode_READ(kind, chars, value + k) == (Py_UCS4)places[m].type[k])
            k++;
        if (k == length)
            return places[m].place;
    }
    return PLACE_BODY;
}

/* TextHandler.start with _DocxHandler's table counting or _SlideHandler's places before it */
static inline int para_start(Paragraphs *s, int name, const void *chars, int kind, Py_ssize_t a, Py_ssize_t b)
{
    if (name == NAME_SP)
        s->place = PLACE_BODY;
    else if (name == NAME_PH) {
        int place = para_place(chars, kind, a, b);
        if (place < 0)
            return SCAN_NONE;
        s->place = place;
    }
    if (s->cells == MODE_CELLS) {
        int64_t *table = s->open_count ? s->open + 4 * (s->open_count - 1) : NULL;
        if (name == NAME_TBL) {
            if (s->open_count == s->open_size) {
                Py_ssize_t size = s->open_size ? s->open_size * 2 : 16;
                int64_t *open = PyMem_Realloc(s->open, (size_t)size * 4 * sizeof(int64_t));
                if (!open) {
                    PyErr_NoMemory();
                    return SCAN_ERROR;
                }
                s->open = open;
                s->open_size = size;
            }
            int64_t *made = s->open + 4 * s->open_count++;
            made[0] = s->tables++;
            made[1] = made[2] = -1;
            made[3] = 1;
        } else if (table && name == NAME_TR) {
            table[1]++;
            table[2] = -1;
            table[3] = 1;
        } else if (table && name == NAME_TC) {
            table[2] += table[3];
            table[3] = 1;
        } else if (table && name == NAME_SPAN) {
            int64_t span = para_span(chars, kind, a, b);
            if (span < 0)
                return SCAN_NONE;
            table[3] = span;
        }
    }
    if (name == NAME_P)
        s->in_part++;
    else if (name == NAME_T)
        s->in_text++;
    else if ((name == NAME_TAB || name == NAME_BR || name == NAME_CR) && (s->in_part || s->in_text))
        return para_push(s, name == NAME_TAB ? '\t' : '\n');
    return SCAN_DONE;
}

/* TextHandler.end, then _DocxHandler's table end */
static inline int para_end(Paragraphs *s, int name)
{
    if (name == NAME_T && --s->in_text < 0)
        return SCAN_NONE;
    if (name == NAME_P) {
        if (--s->in_part < 0)
            return SCAN_NONE;
        int done = para_flush(s);
        if (done != SCAN_DONE)
            return done;
    }
    if (s->cells && name == NAME_TBL && s->open_count)
        s->open_count--;
    return SCAN_DONE;
}

/* a reference at chars[i] ("&"): its character, *next after its ";"; 0 for one not read here */
static inline Py_UCS4 para_reference(const void *chars, int kind, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *next)
{
    Py_ssize_t k = i + 1;
    if (k < n && PyUnicode_READ(kind, chars, k) == '#') {
        int hex = k + 1 < n && PyUnicode_READ(kind, chars, k + 1) == 'x';
        k += 1 + hex;
        Py_ssize_t digits = k;
        uint32_t value = 0;
        for (; k < n; k++) {
            Py_UCS4 c = PyUnicode_READ(kind, chars, k);
            uint32_t digit;
            if (c >= '0' && c <= '9')
                digit = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                digit = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                digit = c - 'A' + 10;
            else
                break;
            value = value * (hex ? 16 : 10) + digit;
            if (value > 0x10FFFF)
                return 0;
        }
        if (k == digits || k == n || PyUnicode_READ(kind, chars, k) != ';' || (value >= 0xD800 && value < 0xE000))
            return 0;
        *next = k + 1;
        return value; /* 0 for "&#0;": not read here either */
    }
    static const struct {
        const char *name;
        Py_UCS4 c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    for (size_t m = 0; m < sizeof named / sizeof named[0]; m++) {
        Py_ssize_t length = (Py_ssize_t)strlen(named[m].name), j = 0;
        while (j < length && k + j < n && PyUnicode_READ(kind, chars, k + j) == (Py_UCS4)named[m].name[j])
            j++;
        if (j == length) {
            *next = k + length;
            return named[m].c;
        }
    }
    return 0;
}

/* the first character at or after i that is a, b, c or d (n when none): 16 bytes compared at a time
   with SSE2 (the text's runs and a tag's attributes are mostly a few dozen characters), then one
   at a time */
#if defined(__SSE2__)
#include <emmintrin.h>
#define PARA_VECTOR(type, bytes, equal, set)                                                                  \
    {                                                                                                         \
        const __m128i va = set((type)a), vb = set((type)b), vc = set((type)c), vd = set((type)d);              \
        for (; i + 16 / (bytes) <= n; i += 16 / (bytes)) {                                                    \
            __m128i v = _mm_loadu_si128((const __m128i *)((const type *)chars + i));                          \
            int mask = _mm_movemask_epi8(                                                                     \
                _mm_or_si128(_mm_or_si128(equal(v, va), equal(v, vb)), _mm_or_si128(equal(v, vc), equal(v, vd)))); \
            if (mask)                                                                                         \
                return i + __builtin_ctz((unsigned)mask) / (bytes);                                           \
        }                                                                                                     \
    }
#endif
static inline Py_ssize_t para_find(const void *chars, int kind, Py_ssize_t i, Py_ssize_t n, Py_UCS4 a, Py_UCS4 b,
                                   Py_UCS4 c, Py_UCS4 d)
{
#if defined(__SSE2__)
    if (kind == PyUnicode_1BYTE_KIND) /* a..d are ASCII here */
        PARA_VECTOR(uint8_t, 1, _mm_cmpeq_epi8, _mm_set1_epi8)
    else if (kind == PyUnicode_2BYTE_KIND)
        PARA_VECTOR(uint16_t, 2, _mm_cmpeq_epi16, _mm_set1_epi16)
    else
        PARA_VECTOR(uint32_t, 4, _mm_cmpeq_epi32, _mm_set1_epi32)
#endif
    for (; i < n; i++) {
        Py_UCS4 e = PyUnicode_READ(kind, chars, i);
        if (e == a || e == b || e == c || e == d)
            break;
    }
    return i;
}
#undef PARA_VECTOR

#if defined(__GNUC__)
#define PARA_INLINE static inline __attribute__((always_inline))
#else
#define PARA_INLINE static inline
#endif

/* the index after the XML declaration when the member starts with one (0 when not), the one
   instruction read here; -1 for one left open */
PARA_INLINE Py_ssize_t para_declaration(const void *chars, int kind, Py_ssize_t n)
{
    if (n < 2 || PyUnicode_READ(kind, chars, 0) != '<' || PyUnicode_READ(kind, chars, 1) != '?')
        return 0;
    for (Py_ssize_t i = 2; i + 1 < n; i++)
        if (PyUnicode_READ(kind, chars, i) == '?' && PyUnicode_READ(kind, chars, i + 1) == '>')
            return i + 2;
    return -1;
}

/* character data from *at to the next "<" (or the end) onto the buffer: runs of plain characters
   copied at once, references replaced, raw "\r\n" and "\r" read as "\n" as expat reads them (a
   "\r" just before a tag too: expat reads the line ends of the raw input, tags and all) */
PARA_INLINE int para_text(Paragraphs *s, const void *chars, int kind, Py_ssize_t *at, Py_ssize_t n)
{
    Py_ssize_t i = *at;
    Py_UCS4 c;
    int done;
    for (; i < n && (c = PyUnicode_READ(kind, chars, i)) != '<'; i++) {
        if (c != '&' && c != '\r') { /* a run of plain characters, copied at once */
            Py_ssize_t run = i;
            i = para_find(chars, kind, i, n, '<', '&', '\r', '<');
            if ((done = para_reserve(s, i - run)) != SCAN_DONE)
                return done;
            if (s->utf8) { /* kind 1: the bytes as they are */
                memcpy((unsigned char *)s->chars + s->length, (const unsigned char *)chars + run, (size_t)(i - run));
                s->length += i - run;
                i--;
                continue;
            }
            Py_UCS4 *out = s->chars + s->length, max = 0;
            for (Py_ssize_t k = run; k < i; k++) {
                Py_UCS4 d = PyUnicode_READ(kind, chars, k);
                out[k - run] = d;
                max |= d;
            }
            s->length += i - run;
            s->max |= max;
            i--;
            continue;
        }
        if (c == '&') {
            Py_ssize_t next;
            c = para_reference(chars, kind, i, n, &next);
            if (!c)
                return SCAN_NONE;
            i = next - 1;
        } else if (c == '\r') {
            c = '\n';
            if (i + 1 < n && PyUnicode_READ(kind, chars, i + 1) == '\n')
                i++;
        }
        if ((done = para_push(s, c)) != SCAN_DONE)
            return done;
    }
    *at = i;
    return SCAN_DONE;
}

/* a tag as para_tag reads it: its local name (after the prefix), its attributes, what it is */
typedef struct {
    Py_ssize_t local, local_end, attributes, attributes_end;
    int closing, empty;
} ParaTag;

/* the tag at chars[*at] ("<"), *at moved past its ">": the qualified name, then for an end tag
   white space only, for a start or empty tag its attributes up to its ">" (quote-aware: a
   quoted value may hold one). SCAN_NONE for "<!", "<?", a name that is empty, has two colons or
   holds a character no name holds, a tag or quote left open. */
PARA_INLINE int para_tag(const void *chars, int kind, Py_ssize_t *at, Py_ssize_t n, ParaTag *tag)
{
    Py_ssize_t i = *at;
    if (++i == n)
        return SCAN_NONE;
    Py_UCS4 c = PyUnicode_READ(kind, chars, i);
    int closing = c == '/';
    if (c == '!' || c == '?')
        return SCAN_NONE;
    i += closing;
    Py_ssize_t name = i, local = i, colons = 0;
    for (; i < n; i++) { /* the qualified name */
        c = PyUnicode_READ(kind, chars, i);
        if (c == '>' || c == '/' || para_is_space(c))
            break;
        if (c == ':') {
            colons++;
            local = i + 1;
        } else if (c == '<' || c == '"' || c == '\'' || c == '=' || c == '&')
            return SCAN_NONE;
    }
    if (i == n || i == name || colons > 1)
        return SCAN_NONE;
    tag->local = local;
    tag->local_end = i;
    tag->closing = closing;
    tag->empty = 0;
    tag->attributes = tag->attributes_end = i;
    if (closing) {
        while (i < n && para_is_space(PyUnicode_READ(kind, chars, i)))
            i++;
        if (i == n || PyUnicode_READ(kind, chars, i) != '>')
            return SCAN_NONE;
        *at = i + 1;
        return SCAN_DONE;
    }
    tag->attributes = i;
    for (;;) { /* to the tag's ">": a quoted value may hold one */
        i = para_find(chars, kind, i, n, '>', '"', '\'', '<');
        if (i == n || (c = PyUnicode_READ(kind, chars, i)) == '<')
            return SCAN_NONE;
        if (c == '>')
            break;
        i = para_find(chars, kind, i + 1, n, c, '<', c, '<'); /* the value's end */
        if (i == n || PyUnicode_READ(kind, chars, i) == '<')
            return SCAN_NONE;
        i++;
    }
    tag->empty = PyUnicode_READ(kind, chars, i - 1) == '/';
    tag->attributes_end = i - tag->empty;
    *at = i + 1;
    return SCAN_DONE;
}

/* One pass over the member (kind a constant where it is inlined: a loop for each width): text
   between tags kept while a t is open, each tag's name read (quote-aware up to its ">") and its
   start and end events played. */
PARA_INLINE int para_scan(Paragraphs *s, const void *chars, int kind, Py_ssize_t n)
{
    Py_ssize_t i = para_declaration(chars, kind, n);
    int done;
    if (i < 0)
        return SCAN_NONE;
    while (i < n) {
        if (PyUnicode_READ(kind, chars, i) != '<') { /* character data up to the next tag */
            if (!s->in_text)
                i = para_find(chars, kind, i, n, '<', '<', '<', '<');
            else if ((done = para_text(s, chars, kind, &i, n)) != SCAN_DONE)
                return done;
            continue;
        }
        ParaTag tag;
        if ((done = para_tag(chars, kind, &i, n, &tag)) != SCAN_DONE)
            return done;
        int found = para_name(s, chars, kind, tag.local, tag.local_end);
        if (found == NAME_REFUSED)
            return SCAN_NONE;
        if (found == NAME_OTHER)
            continue;
        if (!tag.closing && (done = para_start(s, found, chars, kind, tag.attributes, tag.attributes_end)) != SCAN_DONE)
            return done;
        if ((tag.closing || tag.empty) && (done = para_end(s, found)) != SCAN_DONE)
            return done;
    }
    return para_flush(s); /* the member's end */
}

/* the scan of a whole str in its own width; SCAN_OVER too when the flushes passed the limit
   (also with no flush at all and a limit below zero) */
static int para_scan_text(Paragraphs *s, PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text), done;
    const void *chars = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        done = para_scan(s, chars, PyUnicode_1BYTE_KIND, n);
    else if (kind == PyUnicode_2BYTE_KIND)
        done = para_scan(s, chars, PyUnicode_2BYTE_KIND, n);
    else
        done = para_scan(s, chars, PyUnicode_4BYTE_KIND, n);
    if (done == SCAN_DONE && s->total > s->limit)
        done = SCAN_OVER;
    return done;
}

static int para_well_scan(Paragraphs *s, const unsigned char *b, Py_ssize_t n);

/* ooxml_paragraphs and member_paragraphs after their input is read: text a str, or else the
   bytes b[0:n] of a member, checked and scanned by para_well_scan (None when it does not answer) */
static PyObject *para_call(PyObject *text, const unsigned char *b, Py_ssize_t n, PyObject *refused,
                           Py_ssize_t first_table, int cells, Py_ssize_t limit)
{
    if (cells < MODE_PARAGRAPHS || cells > MODE_SLIDES) {
        PyErr_SetString(PyExc_ValueError, "ooxml_paragraphs: cells is 0 (none), 1 (a docx's tables) or 2 (slides)");
        return NULL;
    }
    Paragraphs s;
    memset(&s, 0, sizeof s);
    s.limit = limit;
    s.cells = cells;
    s.tables = first_table;
    s.cell_at = -1;
    s.refused_count = PyTuple_GET_SIZE(refused);
    if (s.refused_count > PARA_REFUSED) {
        PyErr_SetString(PyExc_ValueError, "ooxml_paragraphs: at most 4 refused names");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < s.refused_count; k++) {
        Py_ssize_t length;
        const char *name = PyUnicode_Check(PyTuple_GET_ITEM(refused, k))
                               ? PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(refused, k), &length)
                               : NULL;
        if (!name || length < 1 || length >= PARA_NAME_CHARS) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "ooxml_paragraphs: refused names of 1 to 31 characters expected");
            return NULL;
        }
        memcpy(s.refused[k], name, (size_t)length);
        s.refused_length[k] = length;
    }
    PyObject *result = NULL;
    s.paragraphs = PyList_New(0);
    s.index = cells ? PyList_New(0) : NULL;
    s.seen = PyList_New(0);
    if (!s.paragraphs || (cells && !s.index) || !s.seen)
        goto release;
    int done = text ? para_scan_text(&s, text) : para_well_scan(&s, b, n);
    if (done == SCAN_ERROR)
        goto release;
    if (done == SCAN_NONE || done == SCAN_UNSURE)
        result = Py_None;
    else if (done == SCAN_OVER)
        result = Py_False;
    if (result) {
        Py_INCREF(result);
        goto release;
    }
    result = Py_BuildValue("(OOOL)", s.paragraphs, cells ? s.index : Py_None, s.seen, (long long)s.tables);
release:
    Py_XDECREF(s.paragraphs);
    Py_XDECREF(s.index);
    Py_XDECREF(s.seen);
    PyMem_Free(s.chars);
    PyMem_Free(s.open);
    return result;
}

static PyObject *winnow_ooxml_paragraphs(PyObject *self, PyObject *args)
{
    PyObject *text, *refused;
    Py_ssize_t first_table, limit;
    int cells;
    if (!PyArg_ParseTuple(args, "UO!nin:ooxml_paragraphs", &text, &PyTuple_Type, &refused, &first_table, &cells,
                          &limit))
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    return para_call(text, NULL, 0, refused, first_table, cells, limit);
}

/* ---- xlsx shared strings (agent/content/ooxml.py) ---------------------------------------- */

/* shared_strings(text, chars_left) -> None | False | (list, int)
 *     The strings of a whole xl/sharedStrings.xml (text: its str, any width) as ooxml's
 *     _SharedStrings gets them from the events (names by local name, any prefix): at each si's end
 *     (an empty si's too) the text gathered so far, "" when none, becomes the next string; text is
 *     gathered inside a t while no rPh is open (a phonetic guide's t is furigana, not the cell's
 *     text), from any element inside the t, references replaced and raw "\r\n" and "\r" read as
 *     "\n" as expat does. A run's properties, a phonetic guide's properties and anything else
 *     give nothing. With the strings, the characters gathered (_SharedStrings._chars). False once
 *     they pass chars_left (any int: the caller's budget; the events stop where the reference
 *     stops), said as soon as the text gathered passes it. None for what the events would read
 *     but this scan does not follow: "<!", a "<?" after the start, a tag or quote left open, a
 *     name with two colons, an unknown or out-of-range reference, a t or rPh end with none open,
 *     text gathered that no si's end takes (it would stay in the handler's buffer). The caller
 *     only sends a member expat found well-formed; on any other str the scan still reads every
 *     character a bounded number of times and never past the text. */

/* the local name chars[a:b] (after its prefix) as one of the names _SharedStrings reacts to */
static inline int strings_name(const void *chars, int kind, Py_ssize_t a, Py_ssize_t b)
{
    switch (b - a) {
    case 1:
        return PyUnicode_READ(kind, chars, a) == 't' ? NAME_T : NAME_OTHER;
    case 2:
        return PyUnicode_READ(kind, chars, a) == 's' && PyUnicode_READ(kind, chars, a + 1) == 'i' ? NAME_SI
                                                                                                    : NAME_OTHER;
    case 3:
        return PyUnicode_READ(kind, chars, a) == 'r' && PyUnicode_READ(kind, chars, a + 1) == 'P' &&
                       PyUnicode_READ(kind, chars, a + 2) == 'h'
                   ? NAME_RPH
                   : NAME_OTHER;
    }
    return NAME_OTHER;
}

/* _SharedStrings.end of an si: the text gathered, empty or not, becomes the next string
   (para_reserve kept it within the limit) */
static int strings_flush(Paragraphs *s)
{
    s->total += s->length;
    PyObject *text = para_string(s);
    if (!text)
        return SCAN_ERROR;
    int failed = PyList_Append(s->paragraphs, text);
    Py_DECREF(text);
    return failed ? SCAN_ERROR : SCAN_DONE;
}

/* One pass over the member (kind a constant where it is inlined: a loop for each width), as
   para_scan's: text gathered while a t is open and no rPh, t and rPh counted as they start and
   end, a string made at each si's end. */
PARA_INLINE int strings_scan(Paragraphs *s, const void *chars, int kind, Py_ssize_t n)
{
    Py_ssize_t i = para_declaration(chars, kind, n);
    int done;
    if (i < 0)
        return SCAN_NONE;
    while (i < n) {
        if (PyUnicode_READ(kind, chars, i) != '<') { /* character data up to the next tag */
            if (!s->in_text || s->in_phonetic)
                i = para_find(chars, kind, i, n, '<', '<', '<', '<');
            else if ((done = para_text(s, chars, kind, &i, n)) != SCAN_DONE)
                return done;
            continue;
        }
        ParaTag tag;
        if ((done = para_tag(chars, kind, &i, n, &tag)) != SCAN_DONE)
            return done;
        int found = strings_name(chars, kind, tag.local, tag.local_end);
        if (found == NAME_OTHER)
            continue;
        if (!tag.closing) {
            if (found == NAME_T)
                s->in_text++;
            else if (found == NAME_RPH)
                s->in_phonetic++;
        }
        if (tag.closing || tag.empty) {
            if (found == NAME_T && --s->in_text < 0)
                return SCAN_NONE;
            if (found == NAME_RPH && --s->in_phonetic < 0)
                return SCAN_NONE;
            if (found == NAME_SI && (done = strings_flush(s)) != SCAN_DONE)
                return done;
        }
    }
    return s->length ? SCAN_NONE : SCAN_DONE; /* text no si took: the handler's buffer keeps it */
}

static PyObject *winnow_shared_strings(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *text, *chars_left;
    if (!PyArg_ParseTuple(args, "UO:shared_strings", &text, &chars_left))
        return NULL;
    if (!PyLong_Check(chars_left)) {
        PyErr_SetString(PyExc_TypeError, "shared_strings: chars_left must be an int");
        return NULL;
    }
    Py_ssize_t limit = PyNumber_AsSsize_t(chars_left, NULL); /* clipped to a Py_ssize_t */
    if (limit == -1 && PyErr_Occurred())
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    Paragraphs s;
    memset(&s, 0, sizeof s);
    /* within half a Py_ssize_t: limit - total and length + more never overflow */
    s.limit = limit > PY_SSIZE_T_MAX / 2 ? PY_SSIZE_T_MAX / 2 : limit < -(PY_SSIZE_T_MAX / 2) ? -1 : limit;
    s.paragraphs = PyList_New(0);
    if (!s.paragraphs)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text), done;
    const void *chars = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        done = strings_scan(&s, chars, PyUnicode_1BYTE_KIND, n);
    else if (kind == PyUnicode_2BYTE_KIND)
        done = strings_scan(&s, chars, PyUnicode_2BYTE_KIND, n);
    else
        done = strings_scan(&s, chars, PyUnicode_4BYTE_KIND, n);
    if (done == SCAN_DONE && s.total > s.limit)
        done = SCAN_OVER; /* no text at all, and a limit below zero: as sum() > chars_left */
    PyObject *result = NULL;
    if (done == SCAN_NONE || done == SCAN_OVER) {
        result = done == SCAN_NONE ? Py_None : Py_False;
        Py_INCREF(result);
    } else if (done == SCAN_DONE)
        result = Py_BuildValue("(On)", s.paragraphs, s.total);
    Py_DECREF(s.paragraphs);
    PyMem_Free(s.chars);
    return result;
}

/* ---- XML namespaces: whether expat's namespace processing could refuse a member ------------------
 * xmlscan's guard parses every member with expat; with namespace processing that costs twice what
 * the same parse costs without it on Word's markup (every prefixed attribute expanded). A member
 * the plain parse accepted is refused by the namespace parse only for a prefix that is not bound
 * where it is used, a prefix declared empty, the reserved prefixes and names (xml, xmlns and their
 * URIs), a qualified name that is not one (two colons, an empty part) or two attributes that are
 * one after expansion. names_bound says True only where none of that can be: no declaration is
 * reserved, empty or holds a reference, every prefixed name is one prefix and one local name, every
 * prefix used is declared on its element or an open one around it (or is xml on an attribute),
 * and no two prefixed attributes of an element share a local name. Anything else, and any input it
 * does not follow (a comment, a DOCTYPE, a tag not ended, more than NAMES_MAX_PREFIXES
 * declarations in force), says False: the caller then runs the namespace parse. It reads bytes the
 * plain parse accepted (so tags nest and every "<" starts one); on any other input it only answers,
 * within the buffer. */

#define NAMES_MAX_PREFIXES 128
#define NAMES_MAX_ATTRIBUTES 256

typedef struct {
    const unsigned char *name;
    Py_ssize_t length;
    Py_ssize_t colon; /* the colon's offset in name, -1 for none */
} xml_name;

typedef struct {
    const unsigned char *name;
    Py_ssize_t length;
    Py_ssize_t level; /* the depth of the element that declares it */
} xml_prefix;

static int xml_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int same_bytes(const unsigned char *a, Py_ssize_t alen, const char *b)
{
    return alen == (Py_ssize_t)strlen(b) && memcmp(a, b, (size_t)alen) == 0;
}

/* whether the value holds text (the reserved URIs) */
static int holds(const unsigned char *value, Py_ssize_t length, const char *text)
{
    Py_ssize_t n = (Py_ssize_t)strlen(text);
    for (Py_ssize_t i = 0; i + n <= length; i++)
        if (value[i] == (unsigned char)text[0] && memcmp(value + i, text, (size_t)n) == 0)
            return 1;
    return 0;
}

/* whether the local part at p (left bytes of the name from there) starts with a character that may
 * start one: an ASCII letter, "_", a Latin-1 letter (U+00C0 to U+00FF but U+00D7 and U+00F7) or a
 * CJK ideograph (U+4E00 to U+9FA5), which XML 1.0 and expat let start a name. Any other (a digit,
 * "-", ".", U+00B7, a combining mark such as U+0300 that a Name holds but an NCName may not start
 * with, or one not looked up here): 0, left to the namespace parse. */
static int ncname_start(const unsigned char *p, Py_ssize_t left)
{
    unsigned char c = p[0];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (c == 0xC3 && left >= 2 && p[1] >= 0x80 && p[1] <= 0xBF)
        return p[1] != 0x97 && p[1] != 0xB7; /* U+00D7, U+00F7 */
    if (c >= 0xE4 && c <= 0xE9 && left >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (uint32_t)(p[2] & 0x3F);
        return cp >= 0x4E00 && cp <= 0x9FA5;
    }
    return 0;
}

/* a name from at to the first white space, "=", "/", ">" or "<"; 0 when it is empty, runs off
 * the end or is not one name or one prefix and one local name */
static int read_name(const unsigned char *b, Py_ssize_t n, Py_ssize_t *at, xml_name *out)
{
    Py_ssize_t i = *at, colon = -1;
    while (i < n && !xml_space(b[i]) && b[i] != '=' && b[i] != '/' && b[i] != '>' && b[i] != '<') {
        if (b[i] == ':') {
            if (colon >= 0)
                return 0;
            colon = i - *at;
        }
        i++;
    }
    if (i == *at || i == n || colon == 0 || colon == i - *at - 1)
        return 0;
    if (colon > 0 && !ncname_start(b + *at + colon + 1, i - *at - colon - 1))
        return 0; /* "p:1a", "p:-a": a Name the plain parse accepts, no qualified name (the namespace parse refuses it) */
    out->name = b + *at;
    out->length = i - *at;
    out->colon = colon;
    *at = i;
    return 1;
}

static int declared(const xml_prefix *prefixes, int count, const unsigned char *prefix, Py_ssize_t length)
{
    for (int k = 0; k < count; k++)
        if (prefixes[k].length == length && memcmp(prefixes[k].name, prefix, (size_t)length) == 0)
            return 1;
    return 0;
}

static int names_bound(const unsigned char *b, Py_ssize_t n)
{
    xml_prefix prefixes[NAMES_MAX_PREFIXES]; /* the declarations in force, outermost first */
    xml_name attributes[NAMES_MAX_ATTRIBUTES];
    int prefix_count = 0, root_seen = 0;
    Py_ssize_t i = 0, depth = 0; /* depth: the elements open */
    if (n <= 0)
        return 0;
    const unsigned char *first = memchr(b, '<', (size_t)n);
    for (;;) {
        const unsigned char *lt = memchr(b + i, '<', (size_t)(n - i));
        if (lt == NULL)
            return root_seen && depth == 0;
        i = lt - b + 1;
        if (i >= n)
            return 0;
        if (b[i] == '!' || (b[i] == '?' && (root_seen || lt != first)))
            return 0; /* a comment, CDATA, DOCTYPE or instruction but the XML declaration: not read here */
        if (b[i] == '/' || b[i] == '?') { /* an end tag (its element's declarations go), the XML declaration */
            const unsigned char *gt = memchr(b + i, '>', (size_t)(n - i));
            if (gt == NULL)
                return 0;
            if (b[i] == '/') {
                if (depth == 0)
                    return 0;
                while (prefix_count && prefixes[prefix_count - 1].level == depth)
                    prefix_count--;
                depth--;
            }
            i = gt - b + 1;
            continue;
        }
        xml_name element;
        if (!read_name(b, n, &i, &element))
            return 0;
        Py_ssize_t level = depth + 1;
        int count = 0, empty;
        for (;;) { /* the attributes, to the tag's end */
            while (i < n && xml_space(b[i]))
                i++;
            if (i >= n)
                return 0;
            if (b[i] == '>' || (b[i] == '/' && i + 1 < n && b[i + 1] == '>')) {
                empty = b[i] == '/';
                break;
            }
            if (count == NAMES_MAX_ATTRIBUTES || !read_name(b, n, &i, &attributes[count]))
                return 0;
            while (i < n && xml_space(b[i]))
                i++;
            if (i >= n || b[i] != '=')
                return 0;
            i++;
            while (i < n && xml_space(b[i]))
                i++;
            if (i + 1 >= n || (b[i] != '"' && b[i] != '\''))
                return 0;
            const unsigned char *quote = memchr(b + i + 1, b[i], (size_t)(n - i - 1));
            if (quote == NULL)
                return 0;
            const unsigned char *value = b + i + 1;
            Py_ssize_t value_length = quote - value;
            i = quote - b + 1;
            xml_name *a = &attributes[count];
            int default_declaration = same_bytes(a->name, a->length, "xmlns");
            int declaration = a->colon == 5 && memcmp(a->name, "xmlns", 5) == 0;
            if (default_declaration || declaration) {
                if (memchr(value, '&', (size_t)value_length) != NULL || memchr(value, '}', (size_t)value_length) != NULL
                    || holds(value, value_length, "www.w3.org/XML/1998/namespace")
                    || holds(value, value_length, "www.w3.org/2000/xmlns"))
                    return 0; /* "}": xmltext.locked_parser's namespace separator, in a URI expat refuses */
                if (declaration) {
                    const unsigned char *prefix = a->name + 6;
                    Py_ssize_t prefix_length = a->length - 6;
                    if (value_length == 0 || prefix_count == NAMES_MAX_PREFIXES || same_bytes(prefix, prefix_length, "xml")
                        || same_bytes(prefix, prefix_length, "xmlns"))
                        return 0;
                    prefixes[prefix_count].name = prefix;
                    prefixes[prefix_count].length = prefix_length;
                    prefixes[prefix_count].level = level;
                    prefix_count++;
                }
                continue; /* a declaration is not an attribute after expansion */
            }
            count++;
        }
        if (element.colon > 0 && !declared(prefixes, prefix_count, element.name, element.colon))
            return 0;
        for (int k = 0; k < count; k++) {
            const xml_name *a = &attributes[k];
            if (a->colon < 0)
                continue; /* an attribute without a prefix is in no namespace: never one with a prefix */
            if (!same_bytes(a->name, a->colon, "xml") && !declared(prefixes, prefix_count, a->name, a->colon))
                return 0;
            const unsigned char *local = a->name + a->colon + 1;
            Py_ssize_t local_length = a->length - a->colon - 1;
            for (int m = k + 1; m < count; m++) {
                const xml_name *other = &attributes[m];
                if (other->colon > 0 && other->length - other->colon - 1 == local_length
                    && memcmp(other->name + other->colon + 1, local, (size_t)local_length) == 0)
                    return 0; /* two prefixes, one local name: perhaps one expanded name */
            }
        }
        if (empty) /* its declarations end with it */
            while (prefix_count && prefixes[prefix_count - 1].level == level)
                prefix_count--;
        else
            depth = level;
        root_seen = 1;
    }
}

static PyObject *winnow_names_bound(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:names_bound", &data))
        return NULL;
    int bound;
    Py_BEGIN_ALLOW_THREADS
    bound = names_bound((const unsigned char *)data.buf, data.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyBool_FromLong(bound);
}

/* ---- pptx slides (agent/content/ooxml.py) ------------------------------------------------ */

/* slide_parts(data, parts, limit, max_parts, part_type, places, accepted) -> int | None | False
 *     A slide or notes member (data: its bytes, whole) read the way ooxml._read_slide reads it
 *     after expat's plain parse accepted it (accepted 1: the caller's parse did; 0: well_formed
 *     must be sure it would, or the answer is False and nothing is done: the caller asks expat
 *     and calls again; 2: as 0, names_bound and well_formed asked by well_bound's one pass first
 *     and apart only when it is not sure; 3: as 2, and when that pass is also sure the bytes are
 *     UTF-8, WELL_UTF8, they are scanned as they are and only the kept text decoded), in one call instead of some twenty Python ones
 *     (xmlscan.checked_text's checks and decode, ooxml_paragraphs in slide mode, the collector's
 *     strip, blank test and part tuples): the parts appended to parts (a list) as
 *     Collector.add_placed appends them, part_type(place, text, None, 0) made as tuple.__new__
 *     makes it, place the item of places (a tuple of the body's, footer's and header's names) the
 *     scan gave; the characters they hold returned (the caller takes them from its budget).
 *     None, nothing appended, whenever that path would not end there: the XML declaration naming
 *     an encoding other than UTF-8 (or one this does not read as the regex would), names_bound
 *     saying False, a first instruction that is not a lone XML declaration, bytes that are not
 *     UTF-8, ooxml_paragraphs saying None or False (limit: the budget, clamped as the caller
 *     clamps it), the kept characters over limit or the parts over max_parts. The caller then
 *     reads the member as before. */

static const unsigned char UTF8_BOM[3] = {0xEF, 0xBB, 0xBF};

/* ---- well-formedness a pptx slide's guard may rely on (agent/content/ooxml.py) ------------ */

/* well_formed(data) -> bool
 *     True only when expat's plain parse (xmltext.locked_parser(member, namespaces=False), no
 *     encoding given) surely accepts data: a strict subset of XML 1.0 in UTF-8, read in one pass.
 *     A UTF-8 BOM perhaps; an XML declaration perhaps, exactly <?xml, version "1.0", an encoding
 *     of UTF-8 (any case) perhaps, standalone yes or no perhaps, each after white space, no white
 *     space around their "=", then "?>"; white space only outside the one root element; names of
 *     ASCII letters, digits, "_", ".", "-", ":" (not a digit, ".", "-" or ":" first); attributes
 *     after white space, quoted, no "<" in a value, no two of one name (at most
 *     WELL_MAX_ATTRIBUTES an element); end tags naming the element open (at most WELL_MAX_DEPTH
 *     open); no "]]>" in character data; "&" only in the five predefined references or a
 *     character reference to a character XML allows (at most WELL_MAX_DIGITS digits); no C0
 *     control but tab, line feed and carriage return, no U+FFFE or U+FFFF. Anything else, comments,
 *     CDATA, instructions and DOCTYPEs among it, says False, and the caller runs expat. Bytes
 *     that are not UTF-8 are not looked for here: the caller's strict decode refuses them, and
 *     then runs expat. Its soundness is tested against expat on hostile inputs
 *     (tests/agent/content/test_slide_parts.py). */

#define WELL_MAX_DEPTH 1024
#define WELL_MAX_ATTRIBUTES 64
#define WELL_MAX_DIGITS 7

static int well_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int well_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int well_name_char(unsigned char c)
{
    return well_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
}

/* well_name_char as a table (one load a byte where a name is read; made at the module's init) */
static unsigned char well_name_chars[256];

static void well_name_table(void)
{
    for (int c = 0; c < 256; c++)
        well_name_chars[c] = (unsigned char)well_name_char((unsigned char)c);
}

/* the length of the name at b[i] (0: none), which must end at white space, "=", "/" or ">" */
static Py_ssize_t well_name(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    if (i >= n || !well_name_start(b[i]))
        return 0;
    Py_ssize_t at = i + 1;
    while (at < n && well_name_chars[b[at]])
        at++;
    if (at >= n || !(well_space(b[at]) || b[at] == '=' || b[at] == '/' || b[at] == '>'))
        return 0;
    return at - i;
}

/* the length of the reference at b[i] ("&") up to and with its ";", 0 when it is not one of
 * the five predefined entities or a character reference to a Char */
static Py_ssize_t well_reference(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    static const char *const named[] = {"lt;", "gt;", "amp;", "quot;", "apos;"};
    Py_ssize_t at = i + 1;
    if (at < n && b[at] != '#') {
        for (int k = 0; k < 5; k++) {
            Py_ssize_t length = (Py_ssize_t)strlen(named[k]);
            if (n - at >= length && memcmp(b + at, named[k], (size_t)length) == 0)
                return 1 + length;
        }
        return 0;
    }
    at++;
    int hex = at < n && b[at] == 'x'; /* "&#X" is no reference */
    at += hex;
    uint32_t value = 0;
    Py_ssize_t digits = 0;
    for (; at < n && b[at] != ';'; at++, digits++) {
        unsigned char c = b[at];
        int digit = c >= '0' && c <= '9' ? c - '0'
                    : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : -1;
        if (digit < 0 || digits == WELL_MAX_DIGITS)
            return 0;
        value = value * (hex ? 16 : 10) + (uint32_t)digit; /* at most 16^7: no overflow */
    }
    if (at >= n || digits == 0)
        return 0;
    int allowed = value == 0x9 || value == 0xA || value == 0xD || (value >= 0x20 && value <= 0xD7FF)
                  || (value >= 0xE000 && value <= 0xFFFD) || (value >= 0x10000 && value <= 0x10FFFF);
    return allowed ? at + 1 - i : 0;
}

/* a pseudo-attribute of the XML declaration at b[*at]: white space, name, "=", a quoted value
 * among values (compared ignoring ASCII case when fold); *at moved past it when it is there */
static int well_pseudo(const unsigned char *b, Py_ssize_t n, Py_ssize_t *at, const char *name,
                       const char *const *values, int fold)
{
    Py_ssize_t i = *at, length = (Py_ssize_t)strlen(name);
    if (i >= n || !well_space(b[i]))
        return 0;
    while (i < n && well_space(b[i]))
        i++;
    if (n - i < length + 2 || memcmp(b + i, name, (size_t)length) != 0 || b[i + length] != '=')
        return 0;
    i += length + 1;
    unsigned char quote = b[i];
    if (quote != '"' && quote != '\'')
        return 0;
    i++;
    for (; *values; values++) {
        Py_ssize_t v = (Py_ssize_t)strlen(*values), k;
        if (n - i < v + 1 || b[i + v] != quote)
            continue;
        for (k = 0; k < v; k++) {
            unsigned char c = b[i + k];
            if (fold && c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            if (c != (unsigned char)(*values)[k])
                break;
        }
        if (k == v) {
            *at = i + v + 1;
            return 1;
        }
    }
    return 0;
}

/* the bytes character data and attribute values need a second look at: "<", "&", "]" (of
   "]]>"), 0xEF (of U+FFFE and U+FFFF), C0 controls but white space, quotes */
static const unsigned char *well_attention(void)
{
    static unsigned char table[256];
    static int made = 0;
    if (!made) {
        for (int c = 0; c < 0x20; c++)
            table[c] = !well_space((unsigned char)c);
        table['<'] = table['&'] = table[']'] = table[0xEF] = table['"'] = table['\''] = 1;
        made = 1;
    }
    return table;
}

/* well_attention's bytes and every byte from 0x80: what a scan that checks UTF-8 looks at */
static const unsigned char *well_attention_utf8(void)
{
    static unsigned char table[256];
    static int made = 0;
    if (!made) {
        memcpy(table, well_attention(), sizeof table);
        memset(table + 0x80, 1, 0x80);
        made = 1;
    }
    return table;
}

/* the length of the UTF-8 sequence at b[i] (a byte from 0x80) when Python's strict decoder reads
 * it as one character (Unicode's well-formed sequences: no overlong form, no surrogate, nothing
 * past U+10FFFF) and XML allows that character (not U+FFFE or U+FFFF); 0 when not */
static Py_ssize_t well_utf8(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    unsigned char c = b[i], d = i + 1 < n ? b[i + 1] : 0;
    if (c >= 0xC2 && c <= 0xDF)
        return (d & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n - i < 3 || (b[i + 2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 ? d < 0xA0 || d > 0xBF : c == 0xED ? d < 0x80 || d > 0x9F : (d & 0xC0) != 0x80)
            return 0;
        return c == 0xEF && d == 0xBF && b[i + 2] >= 0xBE ? 0 : 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n - i < 4 || (b[i + 2] & 0xC0) != 0x80 || (b[i + 3] & 0xC0) != 0x80)
            return 0;
        return (c == 0xF0 ? d < 0x90 || d > 0xBF : c == 0xF4 ? d < 0x80 || d > 0x8F : (d & 0xC0) != 0x80) ? 0 : 4;
    }
    return 0; /* a continuation byte, 0xC0, 0xC1, 0xF5 and up */
}

/* from b[i] to the end byte ("<" for character data, the quote for an attribute value) or the
 * end of b: references checked, no C0 control but white space, no U+FFFE or U+FFFF, no "]]>" in
 * character data, no "<" in a value, and with utf8 every byte from 0x80 in a sequence well_utf8
 * reads; the index of the end byte (n: none), -1 for any of those */
static Py_ssize_t well_text(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, unsigned char end, int utf8)
{
    const unsigned char *attention = utf8 ? well_attention_utf8() : well_attention();
#if defined(__SSE2__)
    const __m128i below_space = _mm_set1_epi8(' '), lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&'),
                  bracket = _mm_set1_epi8(']'), quote = _mm_set1_epi8('"'), apostrophe = _mm_set1_epi8('\'');
#endif
    while (i < n) {
#if defined(__SSE2__)
        /* with utf8, 16 bytes at a time to the next that may need attention: a control (tab, line
           feed and carriage return among them: the table says no and the search goes on), a byte
           from 0x80 (negative here), "<", "&", "]" or a quote */
        while (utf8 && i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(b + i));
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, below_space), _mm_cmpeq_epi8(v, lt)),
                                       _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, bracket)),
                                                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, apostrophe))));
            unsigned mask = (unsigned)_mm_movemask_epi8(hit);
            if (!mask) {
                i += 16;
                continue;
            }
            i += __builtin_ctz(mask);
            if (attention[b[i]])
                break;
            i++; /* white space */
        }
#endif
        while (i < n && !attention[b[i]])
            i++;
        if (i >= n)
            break;
        unsigned char c = b[i];
        if (c == end)
            return i;
        if (c >= 0x80 && utf8) { /* this character and those right after it from 0x80 (a run of CJK text) */
            do {
                Py_ssize_t length = well_utf8(b, i, n);
                if (!length)
                    return -1;
                i += length;
            } while (i < n && b[i] >= 0x80);
        } else if (c == '&') {
            Py_ssize_t length = well_reference(b, i, n);
            if (!length)
                return -1;
            i += length;
        } else if (c == '"' || c == '\'' || (c == ']' && end != '<'))
            i++; /* the other quote; "]" in a value */
        else if (c == ']') {
            if (n - i >= 3 && b[i + 1] == ']' && b[i + 2] == '>')
                return -1;
            i++;
        } else if (c == 0xEF) {
            if (n - i >= 3 && b[i + 1] == 0xBF && (b[i + 2] == 0xBE || b[i + 2] == 0xBF))
                return -1;
            i++;
        } else
            return -1; /* "<" in a value, a control */
    }
    return n;
}

/* whether a[0:length] and b[0:length] are the same bytes: a loop, not memcmp (names are a few
 * bytes: the call cost more than the compare) */
static inline int well_same(const unsigned char *a, const unsigned char *b, Py_ssize_t length)
{
    for (Py_ssize_t k = 0; k < length; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

/* the declaration of prefix in force (the last found is asked first: Word's markup names one
 * prefix, w, in almost every tag, among some thirty declared on its root) */
static int well_declared(const xml_prefix *prefixes, int count, const unsigned char *prefix, Py_ssize_t length,
                         int *last)
{
    if (*last < count && prefixes[*last].length == length && well_same(prefixes[*last].name, prefix, length))
        return 1;
    for (int k = count - 1; k >= 0; k--)
        if (prefixes[k].length == length && well_same(prefixes[k].name, prefix, length)) {
            *last = k;
            return 1;
        }
    return 0;
}

/* well_name(b, i, n), with *colon the offset of the name's colon (0: none; a name never starts with
 * one), -1 when the name is no qualified name names_bound would pass: two colons, nothing after
 * it, or a local part not starting as ncname_start allows; both read in one loop */
static inline Py_ssize_t well_qname(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *colon)
{
    if (i >= n || !well_name_start(b[i]))
        return 0;
    Py_ssize_t at = i + 1, first = 0, colons = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time while they lie in b: which are name characters (ASCII letters, digits,
       "_", ".", "-", ":"; a byte from 0x80 is negative here, so none) and which are colons */
    const __m128i space = _mm_set1_epi8(0x20), before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1),
                  before_dash = _mm_set1_epi8('-' - 1), after_colon = _mm_set1_epi8(':' + 1),
                  slash = _mm_set1_epi8('/'), underscore = _mm_set1_epi8('_'), colon_byte = _mm_set1_epi8(':');
    for (; at + 16 <= n; at += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + at)), folded = _mm_or_si128(v, space);
        __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, before_a), _mm_cmplt_epi8(folded, after_z));
        __m128i dash_to_colon = _mm_and_si128(_mm_cmpgt_epi8(v, before_dash), _mm_cmplt_epi8(v, after_colon));
        __m128i name = _mm_or_si128(_mm_or_si128(letter, _mm_cmpeq_epi8(v, underscore)),
                                    _mm_andnot_si128(_mm_cmpeq_epi8(v, slash), dash_to_colon));
        unsigned stop = ~(unsigned)_mm_movemask_epi8(name) & 0xFFFFu;
        unsigned found = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, colon_byte));
        if (stop)
            found &= (1u << __builtin_ctz(stop)) - 1; /* the colons before the name's end */
        if (found) {
            if (colons == 0)
                first = at + __builtin_ctz(found) - i;
            colons += found & (found - 1) ? 2 : 1; /* one, or more than one (no popcount instruction assumed) */
        }
        if (stop) {
            at += __builtin_ctz(stop);
            break;
        }
    }
#endif
    for (; at < n && well_name_chars[b[at]]; at++) /* the rest (none when the loop above found the end) */
        if (b[at] == ':' && colons++ == 0)
            first = at - i;
    if (at >= n || !(well_space(b[at]) || b[at] == '=' || b[at] == '/' || b[at] == '>'))
        return 0;
    Py_ssize_t length = at - i;
    if (colons == 0)
        *colon = 0;
    else if (colons > 1 || first + 1 >= length || !ncname_start(b + i + first + 1, length - first - 1))
        *colon = -1;
    else
        *colon = first;
    return length;
}

/* an attribute's name and value (as written, between its quotes) as names_bound reads them: a
 * declaration (xmlns, xmlns:p) of no reserved prefix or URI, with no reference, a prefix's not
 * empty, pushed at level (0 when there is no room: not sure); *colon the name's colon (0: none),
 * -1 for a declaration. 0: names_bound would say False, or might. */
static int well_attribute(const unsigned char *name, Py_ssize_t length, Py_ssize_t at, const unsigned char *value,
                          Py_ssize_t value_length, Py_ssize_t level, Py_ssize_t *colon, xml_prefix *prefixes,
                          int *prefix_count)
{
    if (at < 0) /* at: well_qname's colon */
        return 0;
    int default_declaration = at == 0 && length == 5 && memcmp(name, "xmlns", 5) == 0;
    int declaration = at == 5 && memcmp(name, "xmlns", 5) == 0;
    *colon = at;
    if (!default_declaration && !declaration)
        return 1;
    *colon = -1;
    if (memchr(value, '&', (size_t)value_length) != NULL || memchr(value, '}', (size_t)value_length) != NULL
        || holds(value, value_length, "www.w3.org/XML/1998/namespace") || holds(value, value_length, "www.w3.org/2000/xmlns"))
        return 0; /* "}": the namespace separator, which expat refuses in a URI (names_bound's reason) */
    if (default_declaration)
        return 1;
    const unsigned char *prefix = name + 6;
    Py_ssize_t prefix_length = length - 6;
    if (value_length == 0 || *prefix_count == NAMES_MAX_PREFIXES || same_bytes(prefix, prefix_length, "xml")
        || same_bytes(prefix, prefix_length, "xmlns"))
        return 0;
    prefixes[*prefix_count].name = prefix;
    prefixes[*prefix_count].length = prefix_length;
    prefixes[*prefix_count].level = level;
    (*prefix_count)++;
    return 1;
}

/* well_scan(b, n, 0) is well_formed(b, n); with WELL_BIND it says True only when well_formed and
 * names_bound both would, in one pass: the same names, declarations and attributes names_bound
 * reads (its limits or stricter), checked as the tags go by. With WELL_UTF8 it also says True
 * only of bytes Python's strict UTF-8 decode reads (the BOM aside, every byte from 0x80 stands in
 * character data or an attribute value, where well_text reads each sequence): a scan of the bytes
 * may then decode only the text it keeps. */
#define WELL_BIND 1
#define WELL_UTF8 2

/* well_scan's answer when an event of its Paragraphs said done: 0 (no answer), -1 on an error */
static int well_stop(Paragraphs *s, int done)
{
    if (done == SCAN_ERROR)
        return -1;
    s->stopped = 1;
    return 0;
}

/* With s (and WELL_BIND | WELL_UTF8), the events para_scan plays are played on s as the tags and
 * text go by, in the same order (a start tag's once it is checked): the one pass both checks the
 * member and reads its paragraphs, but for the flush at its end (para_well_scan). Then 0 also
 * when an event said SCAN_NONE or SCAN_OVER (s->stopped), -1 on an error (an exception set). */
static int well_scan_events(const unsigned char *b, Py_ssize_t n, int flags, Paragraphs *s)
{
    int bind = flags & WELL_BIND, utf8 = (flags & WELL_UTF8) != 0;
    signed char open_found[WELL_MAX_DEPTH]; /* s: the name para_name gave each open element */
    static const char *const versions[] = {"1.0", NULL}, *const encodings[] = {"utf-8", NULL},
                             *const standalones[] = {"yes", "no", NULL};
    Py_ssize_t open_at[WELL_MAX_DEPTH], open_length[WELL_MAX_DEPTH], depth = 0, i = 0;
    Py_ssize_t attribute_at[WELL_MAX_ATTRIBUTES], attribute_length[WELL_MAX_ATTRIBUTES];
    Py_ssize_t attribute_colon[WELL_MAX_ATTRIBUTES]; /* bind: each attribute's colon (0: none), a declaration's -1 */
    xml_prefix prefixes[NAMES_MAX_PREFIXES]; /* bind: the declarations in force, outermost first */
    int root_done = 0, prefix_count = 0, last = 0;
    if (n >= 3 && memcmp(b, UTF8_BOM, 3) == 0)
        i = 3;
    if (n - i >= 5 && memcmp(b + i, "<?xml", 5) == 0) {
        i += 5;
        if (!well_pseudo(b, n, &i, "version", versions, 0))
            return 0;
        well_pseudo(b, n, &i, "encoding", encodings, 1);
        well_pseudo(b, n, &i, "standalone", standalones, 0);
        while (i < n && well_space(b[i]))
            i++;
        if (n - i < 2 || b[i] != '?' || b[i + 1] != '>')
            return 0;
        i += 2;
    }
    while (i < n) {
        unsigned char c = b[i];
        if (c != '<') {
            if (depth == 0) { /* outside the root: white space only */
                if (!well_space(c))
                    return 0;
                i++;
            } else {
                Py_ssize_t start = i;
                if ((i = well_text(b, i, n, '<', utf8)) < 0)
                    return 0;
                int done;
                if (s && s->in_text && (done = para_text(s, b, PyUnicode_1BYTE_KIND, &start, i)) != SCAN_DONE)
                    return well_stop(s, done);
            }
            continue;
        }
        if (i + 1 >= n)
            return 0;
        if (b[i + 1] == '/') { /* an end tag: the name of the element open */
            if (depth == 0)
                return 0;
            Py_ssize_t length = well_name(b, i + 2, n);
            if (length != open_length[depth - 1] || !well_same(b + i + 2, b + open_at[depth - 1], length))
                return 0;
            i += 2 + length;
            while (i < n && well_space(b[i]))
                i++;
            if (i >= n || b[i] != '>')
                return 0;
            i++;
            while (prefix_count && prefixes[prefix_count - 1].level == depth)
                prefix_count--; /* its declarations end with it */
            int done;
            if (s && open_found[depth - 1] != NAME_OTHER && (done = para_end(s, open_found[depth - 1])) != SCAN_DONE)
                return well_stop(s, done);
            if (--depth == 0)
                root_done = 1;
            continue;
        }
        if (root_done)
            return 0;
        Py_ssize_t name_colon, name_length = well_qname(b, i + 1, n, &name_colon), name_at = i + 1, count = 0;
        if (!name_length)
            return 0;
        i = name_at + name_length;
        int empty;
        Py_ssize_t tag_end; /* its "/>" or ">" */
        for (;;) { /* the attributes, to the tag's end */
            int spaced = i < n && well_space(b[i]);
            while (i < n && well_space(b[i]))
                i++;
            if (i >= n)
                return 0;
            if (b[i] == '>' || (b[i] == '/' && i + 1 < n && b[i + 1] == '>')) {
                empty = b[i] == '/';
                tag_end = i;
                i += 1 + empty;
                break;
            }
            Py_ssize_t colon, length = spaced ? well_qname(b, i, n, &colon) : 0;
            if (!length || count == WELL_MAX_ATTRIBUTES)
                return 0;
            for (Py_ssize_t k = 0; k < count; k++)
                if (attribute_length[k] == length && well_same(b + attribute_at[k], b + i, length))
                    return 0; /* two of one name */
            attribute_at[count] = i;
            attribute_length[count++] = length;
            i += length;
            while (i < n && well_space(b[i]))
                i++;
            if (i >= n || b[i] != '=')
                return 0;
            i++;
            while (i < n && well_space(b[i]))
                i++;
            if (i >= n || (b[i] != '"' && b[i] != '\''))
                return 0;
            unsigned char quote = b[i++];
            Py_ssize_t value_at = i;
            if ((i = well_text(b, i, n, quote, utf8)) < 0 || i >= n || b[i] != quote)
                return 0;
            if (bind && !well_attribute(b + attribute_at[count - 1], length, colon, b + value_at, i - value_at, depth + 1,
                                        &attribute_colon[count - 1], prefixes, &prefix_count))
                return 0;
            i++; /* the closing quote */
        }
        if (bind) { /* the element's and its attributes' prefixes, declared on it or around it */
            Py_ssize_t colon = name_colon;
            if (colon < 0 || (colon > 0 && !well_declared(prefixes, prefix_count, b + name_at, colon, &last)))
                return 0;
            for (Py_ssize_t k = 0; k < count; k++) {
                Py_ssize_t at = attribute_colon[k];
                if (at <= 0)
                    continue; /* no prefix (in no namespace), or a declaration */
                const unsigned char *name = b + attribute_at[k];
                if (!(at == 3 && memcmp(name, "xml", 3) == 0) && !well_declared(prefixes, prefix_count, name, at, &last))
                    return 0;
                Py_ssize_t local_length = attribute_length[k] - at - 1;
                for (Py_ssize_t m = k + 1; m < count; m++) {
                    Py_ssize_t other = attribute_colon[m];
                    if (other > 0 && attribute_length[m] - other - 1 == local_length
                        && well_same(b + attribute_at[m] + other + 1, name + at + 1, local_length))
                        return 0; /* two prefixes, one local name: perhaps one expanded name */
                }
            }
        }
        int found = NAME_OTHER;
        if (s) { /* para_scan's events of the tag: its start, and its end when empty */
            Py_ssize_t local = name_at + (name_colon > 0 ? name_colon + 1 : 0), done = SCAN_DONE; /* bind: one colon at most */
            found = para_name(s, b, PyUnicode_1BYTE_KIND, local, name_at + name_length);
            if (found == NAME_REFUSED)
                return well_stop(s, SCAN_NONE);
            if (found != NAME_OTHER
                && ((done = para_start(s, found, b, PyUnicode_1BYTE_KIND, name_at + name_length, tag_end)) != SCAN_DONE
                    || (empty && (done = para_end(s, found)) != SCAN_DONE)))
                return well_stop(s, (int)done);
        }
        if (empty) {
            while (prefix_count && prefixes[prefix_count - 1].level == depth + 1)
                prefix_count--; /* its declarations end with it */
            if (depth == 0)
                root_done = 1;
            continue;
        }
        if (depth == WELL_MAX_DEPTH)
            return 0;
        open_found[depth] = (signed char)found;
        open_at[depth] = name_at;
        open_length[depth++] = name_length;
    }
    return root_done && depth == 0;
}

static int well_scan(const unsigned char *b, Py_ssize_t n, int flags) { return well_scan_events(b, n, flags, NULL); }

static int well_formed(const unsigned char *b, Py_ssize_t n) { return well_scan(b, n, 0); }

/* para_scan's answer on a member's UTF-8 bytes b[0:n] (a BOM first or not) from the one pass of
   well_scan_events, which checks them (WELL_BIND | WELL_UTF8) as it plays the events in utf8
   mode (kind 1: every byte a unit; markup is ASCII, so no search stops inside a character, and
   only the text kept is decoded): SCAN_DONE when the check is sure and the events all went
   through, SCAN_UNSURE when the check is not sure (s then holds what the events did so far: the
   caller starts again from a fresh one), SCAN_NONE where para_scan says SCAN_NONE or SCAN_OVER
   (the limit counted bytes here, at least the characters: the caller's str scan says exactly)
   and for a paragraph that does not decode (none can: each ends at an ASCII byte or the member's
   end), SCAN_ERROR on an error. */
/* s as new for another scan (its lists emptied, its buffers freed: a buffer para_well_scan made is
   sized in bytes); -1 on an error */
static int para_restart(Paragraphs *s, Py_ssize_t limit, int cells, int64_t first_table)
{
    PyObject *paragraphs = s->paragraphs, *index = s->index, *seen = s->seen;
    PyMem_Free(s->chars);
    PyMem_Free(s->open);
    memset(s, 0, sizeof *s);
    s->paragraphs = paragraphs;
    s->index = index;
    s->seen = seen;
    s->limit = limit;
    s->cells = cells;
    s->tables = first_table;
    s->cell_at = -1;
    if (PyList_SetSlice(paragraphs, 0, PyList_GET_SIZE(paragraphs), NULL) < 0)
        return -1;
    if (index && PyList_SetSlice(index, 0, PyList_GET_SIZE(index), NULL) < 0)
        return -1;
    return PyList_SetSlice(seen, 0, PyList_GET_SIZE(seen), NULL);
}

static int para_well_scan(Paragraphs *s, const unsigned char *b, Py_ssize_t n)
{
    s->utf8 = 1; /* before any buffer is made: it is sized in bytes */
    int sure = well_scan_events(b, n, WELL_BIND | WELL_UTF8, s), done;
    if (sure < 0)
        done = SCAN_ERROR;
    else if (!sure)
        done = s->stopped ? SCAN_NONE : SCAN_UNSURE;
    else if ((done = para_flush(s)) == SCAN_DONE && s->total > s->limit) /* the member's end */
        done = SCAN_OVER;
    if (done == SCAN_ERROR && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        done = SCAN_NONE;
    }
    return done == SCAN_OVER ? SCAN_NONE : done;
}

/* well_formed and well_bound: well_scan over a bytes-like object, without the GIL */
static PyObject *well_scan_call(PyObject *args, const char *format, int bound)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, format, &data))
        return NULL;
    int sure;
    Py_BEGIN_ALLOW_THREADS
    sure = well_scan((const unsigned char *)data.buf, data.len, bound);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyBool_FromLong(sure);
}

static PyObject *winnow_well_formed(PyObject *Py_UNUSED(self), PyObject *args)
{
    return well_scan_call(args, "y*:well_formed", 0);
}

/* well_bound(data) -> bool
 *     True only when well_formed(data) and names_bound(data) both say True (expat's plain parse
 *     surely accepts data and its namespace parse cannot refuse it: xmlscan.checked_text may
 *     leave both parses out), by one pass instead of two; False says nothing (the caller asks
 *     them). Tested against both and against expat (tests/agent/content/test_well_bound.py). */
static PyObject *winnow_well_bound(PyObject *Py_UNUSED(self), PyObject *args)
{
    return well_scan_call(args, "y*:well_bound", 1);
}

/* bytes regex \s */
static int regex_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* 1 when xmlscan._utf8_declared says True for b (the BOM already skipped); 0 when it says False
 * or may (a first "encoding" in the declaration that is not followed by = and a quoted value:
 * the regex would try a later one) */
static int utf8_declared(const unsigned char *b, Py_ssize_t n)
{
    /* a member written 16 or 32 bits a character: a NUL or a UTF-16 mark in its first bytes */
    if (memchr(b, 0, (size_t)(n < 4 ? n : 4)) || (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff))))
        return 0;
    if (n < 5 || memcmp(b, "<?xml", 5) != 0)
        return 1; /* the regex matches only at the start */
    const unsigned char *gt = memchr(b + 5, '>', (size_t)(n - 5));
    Py_ssize_t end = gt ? gt - b : n, at = -1; /* "encoding" lies before the first ">" */
    for (Py_ssize_t i = 5; i + 8 <= end; i++)
        if (b[i] == 'e' && memcmp(b + i, "encoding", 8) == 0) {
            at = i + 8;
            break;
        }
    if (at < 0)
        return 1;
    while (at < n && regex_space(b[at]))
        at++;
    if (at >= n || b[at] != '=')
        return 0;
    at++;
    while (at < n && regex_space(b[at]))
        at++;
    if (at >= n || (b[at] != '"' && b[at] != '\''))
        return 0;
    Py_ssize_t value = ++at;
    while (at < n && b[at] != '"' && b[at] != '\'')
        at++;
    if (at >= n)
        return 0;
    Py_ssize_t length = at - value;
    char lower[6];
    if (length != 5 && length != 4)
        return 0;
    for (Py_ssize_t k = 0; k < length; k++)
        lower[k] = (char)(b[value + k] >= 'A' && b[value + k] <= 'Z' ? b[value + k] + 32 : b[value + k]);
    return (length == 5 && memcmp(lower, "utf-8", 5) == 0) || (length == 4 && memcmp(lower, "utf8", 4) == 0);
}

/* 1 when xmlscan._decoded(data, bound=True) decodes b (the BOM skipped) rather than saying None
 * for its first tag: not an instruction, or "<?xml" at the very start with no "<" before its
 * first ">" (a stricter test than the comment, CDATA and instruction search there) */
static int first_tag_plain(const unsigned char *b, Py_ssize_t n)
{
    const unsigned char *first = memchr(b, '<', (size_t)n);
    if (first == NULL)
        return 0;
    if (first + 1 >= b + n || first[1] != '?')
        return 1;
    if (first != b || n < 5 || memcmp(b, "<?xml", 5) != 0)
        return 0;
    const unsigned char *gt = memchr(b, '>', (size_t)n);
    return gt != NULL && memchr(b + 1, '<', (size_t)(gt - b - 1)) == NULL;
}

/* whether str.isspace() is True for text (not empty, every character white space) */
static int all_space(PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, chars, i)))
            return 0;
    return 1;
}

/* budget.STRIPPED */
static int stripped(Py_UCS4 c) { return c == ' ' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

static PyObject *winnow_slide_parts(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *data, *parts, *places, *text = NULL, *made = NULL, *result = NULL;
    PyTypeObject *part_type;
    Py_ssize_t limit, max_parts;
    int accepted;
    if (!PyArg_ParseTuple(args, "O!O!nnO!O!i:slide_parts", &PyBytes_Type, &data, &PyList_Type, &parts, &limit,
                          &max_parts, &PyType_Type, &part_type, &PyTuple_Type, &places, &accepted))
        return NULL;
    if (!PyType_IsSubtype(part_type, &PyTuple_Type) || part_type->tp_basicsize != PyTuple_Type.tp_basicsize
        || part_type->tp_itemsize != PyTuple_Type.tp_itemsize) {
        PyErr_SetString(PyExc_TypeError, "slide_parts: part_type is a tuple subclass with no fields of its own");
        return NULL;
    }
    if (PyTuple_GET_SIZE(places) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(places, 0))
        || !PyUnicode_Check(PyTuple_GET_ITEM(places, 1)) || !PyUnicode_Check(PyTuple_GET_ITEM(places, 2))) {
        PyErr_SetString(PyExc_TypeError, "slide_parts: places is a tuple of 3 str");
        return NULL;
    }
    int bytes_allowed = accepted == 3; /* 3: as 2, and the bytes may be scanned as they are */
    if (bytes_allowed)
        accepted = 2;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    Py_ssize_t skip = n >= 3 && memcmp(b, UTF8_BOM, 3) == 0 ? 3 : 0;
    if (!utf8_declared(b + skip, n - skip) || !first_tag_plain(b + skip, n - skip))
        Py_RETURN_NONE;
    Paragraphs s;
    memset(&s, 0, sizeof s);
    s.limit = limit;
    s.cells = MODE_SLIDES;
    s.cell_at = -1;
    s.paragraphs = PyList_New(0);
    s.index = PyList_New(0);
    s.seen = PyList_New(0);
    if (!s.paragraphs || !s.index || !s.seen)
        goto release;
    /* the bytes checked and scanned in one pass, only the text kept decoded; else as before */
    int done = bytes_allowed ? para_well_scan(&s, b, n) : SCAN_UNSURE;
    if (done == SCAN_UNSURE) {
        if (bytes_allowed && para_restart(&s, limit, MODE_SLIDES, 0) < 0)
            goto release;
        if (accepted != 2 || !well_scan(b, n, WELL_BIND)) { /* not sure by the one pass: names_bound, then well_formed */
            if (!names_bound(b, n)) {
                result = Py_NewRef(Py_None);
                goto release;
            }
            if (accepted != 1 && !well_formed(b, n)) {
                result = Py_NewRef(Py_False); /* the caller asks expat */
                goto release;
            }
        }
        text = PyUnicode_DecodeUTF8((const char *)b + skip, n - skip, "strict");
        if (text == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                goto release;
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto release;
        }
        done = para_scan_text(&s, text);
    }
    if (done == SCAN_ERROR)
        goto release;
    Py_ssize_t count = PyList_GET_SIZE(s.paragraphs);
    if (done != SCAN_DONE || PyList_GET_SIZE(s.index) != count) {
        result = Py_NewRef(Py_None);
        goto release;
    }
    made = PyList_New(0);
    if (!made)
        goto release;
    Py_ssize_t chars = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *paragraph = PyList_GET_ITEM(s.paragraphs, k);
        Py_ssize_t length = PyUnicode_GET_LENGTH(paragraph);
        if (length == 0 || all_space(paragraph))
            continue; /* add keeps no blank text */
        int kind = PyUnicode_KIND(paragraph);
        const void *chars_of = PyUnicode_DATA(paragraph);
        Py_ssize_t start = 0, end = length;
        while (start < end && stripped(PyUnicode_READ(kind, chars_of, start)))
            start++;
        while (end > start && stripped(PyUnicode_READ(kind, chars_of, end - 1)))
            end--;
        Py_ssize_t place = PyLong_AsSsize_t(PyList_GET_ITEM(s.index, k));
        if (place < 0 || place > 2) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_SystemError, "slide_parts: a place out of range");
            goto release;
        }
        chars += end - start;
        PyObject *kept = PyUnicode_Substring(paragraph, start, end);
        PyObject *part = kept ? part_type->tp_alloc(part_type, 4) : NULL;
        if (!part) {
            Py_XDECREF(kept);
            goto release;
        }
        PyTuple_SET_ITEM(part, 0, Py_NewRef(PyTuple_GET_ITEM(places, place)));
        PyTuple_SET_ITEM(part, 1, kept);
        PyTuple_SET_ITEM(part, 2, Py_NewRef(Py_None));
        PyObject *zero = PyLong_FromLong(0);
        if (!zero) {
            Py_DECREF(part);
            goto release;
        }
        PyTuple_SET_ITEM(part, 3, zero);
        int failed = PyList_Append(made, part);
        Py_DECREF(part);
        if (failed)
            goto release;
    }
    Py_ssize_t have = PyList_GET_SIZE(parts);
    if (chars > limit || PyList_GET_SIZE(made) > max_parts - have) { /* the collector adds them one by one */
        result = Py_NewRef(Py_None);
        goto release;
    }
    if (PyList_SetSlice(parts, have, have, made) == 0)
        result = PyLong_FromSsize_t(chars);
release:
    Py_XDECREF(text);
    Py_XDECREF(made);
    Py_XDECREF(s.paragraphs);
    Py_XDECREF(s.index);
    Py_XDECREF(s.seen);
    PyMem_Free(s.chars);
    PyMem_Free(s.open);
    return result;
}

/* member_paragraphs(data, refused, first_table, cells, limit) -> None | (list, list | None, list, int)
 *     ooxml_paragraphs(text, refused, first_table, cells, limit) for a whole member given as its
 *     bytes, when xmlscan.checked_text would give text by well_bound alone (UTF-8 declared or
 *     none, no instruction first but the declaration, well_bound sure) and the bytes are UTF-8
 *     that XML allows (well_scan's WELL_UTF8): the bytes are scanned as they are and only the
 *     kept text decoded, not the whole member (on Word's markup some 7 bytes of it a byte of
 *     text, mostly tags). None where ooxml_paragraphs would say None or False, and wherever this
 *     is not sure (the caller then decodes the member and asks ooxml_paragraphs): the limit is
 *     counted in bytes here. */
static PyObject *winnow_member_paragraphs(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *data, *refused;
    Py_ssize_t first_table, limit;
    int cells;
    if (!PyArg_ParseTuple(args, "O!O!nin:member_paragraphs", &PyBytes_Type, &data, &PyTuple_Type, &refused,
                          &first_table, &cells, &limit))
        return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    Py_ssize_t skip = n >= 3 && memcmp(b, UTF8_BOM, 3) == 0 ? 3 : 0;
    if (!utf8_declared(b + skip, n - skip) || !first_tag_plain(b + skip, n - skip))
        Py_RETURN_NONE;
    return para_call(NULL, b, n, refused, first_table, cells, limit);
}

/* ---- xlsx rows (agent/content/ooxml.py) -------------------------------------------------- */

/* sheet_rows(text, begin, end, shared, chars_left) -> None | (list, list, int, set)
 *     ooxml.simple_rows(text, begin, end, shared, chars_left) in one pass over text[begin:end]
 *     (a sheetData's rows; text: its str, any width) instead of a fullmatch, an index findall,
 *     three substitutions, replacements, a split and a join: the rows as lines of their values
 *     joined by tabs, [] for the open row, the characters counted (each cell's value and one) and
 *     the shared strings' indexes used. The grammar is simple_rows's exactly: rows of
 *     <row(\s[^>/]*)?>, cells r="A.." "B.." with none left out (at most SIMPLE_COLUMNS), an s
 *     attribute perhaps, t="s" with an index of 1 to 18 digits or t="n" (or none) with a number
 *     kept as written (-?[0-9]+, a fraction only when not all zeros), nothing between elements,
 *     every row one cell at least, the whole span consumed. None where simple_rows says None (not
 *     that grammar, an index past shared, the count plus 18 over chars_left) and where it would
 *     normalise a shared string's spaces or leave a blank one out (the caller then runs
 *     simple_rows, which does both): a shared string that is empty, starts or ends with a space,
 *     holds two spaces or any other white space (str.split's), or is not a str. Out-of-range
 *     begin or end: None. Every character of the span is read a bounded number of times, never
 *     one past it. */

#define ROWS_COLUMNS 64 /* ooxml.SIMPLE_COLUMNS */
#define ROWS_MAX_LIMIT ((int64_t)1 << 62)

typedef struct {
    PyObject *value; /* a shared string (a new reference), or NULL: text[at:at + length], a number */
    Py_ssize_t at, length;
} RowPiece;

typedef struct {
    PyObject *rows, *shared;
    uint8_t *used; /* a bit for each shared string used, its value checked once */
    Py_ssize_t count; /* len(shared) when the bits were made */
    int64_t chars, limit;
    RowPiece pieces[ROWS_COLUMNS];
    int cells;
} Rows;

/* whether text[i:] starts with word (ASCII) before end */
PARA_INLINE int rows_is(const void *chars, int kind, Py_ssize_t i, Py_ssize_t end, const char *word, Py_ssize_t length)
{
    if (end - i < length)
        return 0;
    for (Py_ssize_t k = 0; k < length; k++)
        if (PyUnicode_READ(kind, chars, i + k) != (Py_UCS4)(unsigned char)word[k])
            return 0;
    return 1;
}

/* the index after the ASCII digits from i */
PARA_INLINE Py_ssize_t rows_digits(const void *chars, int kind, Py_ssize_t i, Py_ssize_t end)
{
    while (i < end) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c < '0' || c > '9')
            break;
        i++;
    }
    return i;
}

/* whether data[k:n] holds no white space but single spaces (before: the character before k): a
   letter is passed by two comparisons (white space is at most U+0020, U+0085, U+00A0, U+1680, in
   U+2000..U+205F or U+3000), the rest asked of Py_UNICODE_ISSPACE (str.split's white space) */
PARA_INLINE int rows_plain_chars(const void *data, int kind, Py_ssize_t k, Py_ssize_t n, Py_UCS4 before)
{
    for (; k < n; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        if (c <= ' ' || (c >= 0x85 && c <= 0x3000)) {
            if (c == ' ' ? before == ' ' : Py_UNICODE_ISSPACE(c))
                return 0;
        }
        before = c;
    }
    return 1;
}

/* rows_plain_chars over the whole of data, 16 bytes at a time with SSE2 where no character in them
   may be white space (below U+0020, U+0085, U+00A0, in U+0085..U+3000 for two bytes) and no two
   spaces stand together; a block that may: the characters one at a time from the start */
static int rows_plain_text(const void *data, int kind, Py_ssize_t n)
{
    Py_ssize_t k = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    if (kind == PyUnicode_1BYTE_KIND) {
        const uint8_t *c = data;
        const __m128i low = _mm_set1_epi8(0x1F), space = _mm_set1_epi8(' ');
        const __m128i next_line = _mm_set1_epi8((char)0x85), no_break = _mm_set1_epi8((char)0xA0);
        for (; k + 17 <= n; k += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(c + k)), after = _mm_loadu_si128((const __m128i *)(c + k + 1));
            __m128i odd = _mm_or_si128(_mm_cmpeq_epi8(_mm_subs_epu8(v, low), zero),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, next_line), _mm_cmpeq_epi8(v, no_break)));
            odd = _mm_or_si128(odd, _mm_and_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(after, space)));
            if (_mm_movemask_epi8(odd))
                return rows_plain_chars(data, PyUnicode_1BYTE_KIND, 0, n, 0);
        }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const uint16_t *c = data;
        const __m128i low = _mm_set1_epi16(0x1F), space = _mm_set1_epi16(' ');
        const __m128i first = _mm_set1_epi16(0x85), span = _mm_set1_epi16(0x3000 - 0x85);
        for (; k + 9 <= n; k += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(c + k)), after = _mm_loadu_si128((const __m128i *)(c + k + 1));
            __m128i odd = _mm_or_si128(_mm_cmpeq_epi16(_mm_subs_epu16(v, low), zero),
                                       _mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(v, first), span), zero));
            odd = _mm_or_si128(odd, _mm_and_si128(_mm_cmpeq_epi16(v, space), _mm_cmpeq_epi16(after, space)));
            if (_mm_movemask_epi8(odd))
                return rows_plain_chars(data, PyUnicode_2BYTE_KIND, 0, n, 0);
        }
    }
#endif
    Py_UCS4 before = k ? PyUnicode_READ(kind, data, k - 1) : 0;
    if (kind == PyUnicode_1BYTE_KIND)
        return rows_plain_chars(data, PyUnicode_1BYTE_KIND, k, n, before);
    if (kind == PyUnicode_2BYTE_KIND)
        return rows_plain_chars(data, PyUnicode_2BYTE_KIND, k, n, before);
    return rows_plain_chars(data, PyUnicode_4BYTE_KIND, k, n, before);
}

/* whether " ".join(value.split()) leaves value as it is and it is not empty: simple_rows's values
   then are shared's own (any other shared string: None, simple_rows normalises it itself) */
static int rows_plain_value(PyObject *value)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(value) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    if (n == 0 || PyUnicode_READ(kind, data, 0) == ' ' || PyUnicode_READ(kind, data, n - 1) == ' ')
        return 0;
    return rows_plain_text(data, kind, n);
}

/* shared[index] for a cell, checked (rows_plain_value) the first time it is used, noted as used;
   NULL when simple_rows would not keep it as it is (SCAN_NONE) or on an error (*failed) */
static PyObject *rows_shared(Rows *s, int64_t index, int *failed)
{
    if (index >= s->count || index >= PyList_GET_SIZE(s->shared))
        return NULL; /* simple_rows's max(indexes) >= len(shared) */
    PyObject *value = PyList_GET_ITEM(s->shared, index);
    if (!s->used) {
        s->used = PyMem_Calloc((size_t)(s->count / 8 + 1), 1);
        if (!s->used) {
            PyErr_NoMemory();
            *failed = 1;
            return NULL;
        }
    }
    uint8_t bit = (uint8_t)(1u << (index & 7));
    if (!(s->used[index >> 3] & bit)) {
        if (!PyUnicode_Check(value) || !rows_plain_value(value))
            return NULL;
        s->used[index >> 3] |= bit;
    }
    Py_INCREF(value); /* held until its row is made */
    return value;
}

static void rows_release(Rows *s)
{
    for (int k = 0; k < s->cells; k++)
        Py_XDECREF(s->pieces[k].value);
    s->cells = 0;
}

/* the row of s->pieces as a str: their values joined by tabs, in the narrowest width that holds
   them (a number is ASCII; a shared string's width says its widest character) */
static int rows_flush(Rows *s, const void *chars, int kind)
{
    Py_ssize_t length = s->cells - 1;
    Py_UCS4 widest = 127;
    for (int k = 0; k < s->cells; k++) {
        RowPiece *piece = &s->pieces[k];
        if (piece->value) {
            Py_UCS4 top = PyUnicode_MAX_CHAR_VALUE(piece->value);
            widest = top > widest ? top : widest;
        }
        length += piece->length;
    }
    PyObject *row = PyUnicode_New(length, widest);
    if (!row)
        return SCAN_ERROR;
    int to_kind = PyUnicode_KIND(row);
    void *to = PyUnicode_DATA(row);
    Py_ssize_t at = 0;
    for (int k = 0; k < s->cells; k++) {
        RowPiece *piece = &s->pieces[k];
        if (k)
            PyUnicode_WRITE(to_kind, to, at++, '\t');
        int from_kind = piece->value ? PyUnicode_KIND(piece->value) : kind;
        const void *from = piece->value ? PyUnicode_DATA(piece->value) : chars;
        if (from_kind == to_kind)
            memcpy((char *)to + at * to_kind, (const char *)from + piece->at * from_kind, (size_t)(piece->length * to_kind));
        else /* a number of a wider text, or a narrower shared string */
            for (Py_ssize_t m = 0; m < piece->length; m++)
                PyUnicode_WRITE(to_kind, to, at + m, PyUnicode_READ(from_kind, from, piece->at + m));
        at += piece->length;
    }
    rows_release(s);
    int appended = PyList_Append(s->rows, row);
    Py_DECREF(row);
    return appended < 0 ? SCAN_ERROR : SCAN_DONE;
}

/* one cell at text[*at] in column `column` (0 for A) into s->pieces: SCAN_NONE where
   _simple_cell does not match it */
PARA_INLINE int rows_cell(Rows *s, const void *chars, int kind, Py_ssize_t *at, Py_ssize_t end, int column)
{
#define READ(k) PyUnicode_READ(kind, chars, (k))
    Py_ssize_t i = *at, j;
    if (!rows_is(chars, kind, i, end, "<c r=\"", 6))
        return SCAN_NONE;
    i += 6;
    if (column < 26) {
        if (i >= end || READ(i) != (Py_UCS4)('A' + column))
            return SCAN_NONE;
        i++;
    } else {
        if (end - i < 2 || READ(i) != (Py_UCS4)('A' + column / 26 - 1) || READ(i + 1) != (Py_UCS4)('A' + column % 26))
            return SCAN_NONE;
        i += 2;
    }
    j = rows_digits(chars, kind, i, end);
    if (j == i || j >= end || READ(j) != '"')
        return SCAN_NONE;
    i = j + 1;
    if (rows_is(chars, kind, i, end, " s=\"", 4)) {
        i += 4;
        j = rows_digits(chars, kind, i, end);
        if (j == i || j >= end || READ(j) != '"')
            return SCAN_NONE;
        i = j + 1;
    }
    RowPiece *piece = &s->pieces[s->cells];
    if (rows_is(chars, kind, i, end, " t=\"s\"><v>", 10)) {
        i += 10;
        j = rows_digits(chars, kind, i, end);
        if (j == i || j - i > 18)
            return SCAN_NONE;
        int64_t index = 0;
        for (; i < j; i++)
            index = index * 10 + (int64_t)(READ(i) - '0');
        int failed = 0;
        PyObject *value = rows_shared(s, index, &failed);
        if (!value)
            return failed ? SCAN_ERROR : SCAN_NONE;
        piece->value = value;
        piece->at = 0;
        piece->length = PyUnicode_GET_LENGTH(value);
        s->cells++; /* released with the row, or on the way out */
    } else {
        if (rows_is(chars, kind, i, end, " t=\"n\"", 6))
            i += 6;
        if (!rows_is(chars, kind, i, end, "><v>", 4))
            return SCAN_NONE;
        i += 4;
        Py_ssize_t start = i;
        if (i < end && READ(i) == '-')
            i++;
        j = rows_digits(chars, kind, i, end);
        if (j == i)
            return SCAN_NONE;
        i = j;
        if (i < end && READ(i) == '.') { /* a fraction of digits, not all zeros */
            j = rows_digits(chars, kind, i + 1, end);
            Py_ssize_t k = i + 1;
            while (k < j && READ(k) == '0')
                k++;
            if (k == j)
                return SCAN_NONE;
            i = j;
        }
        piece->value = NULL;
        piece->at = start;
        piece->length = i - start;
        s->cells++;
    }
    if (!rows_is(chars, kind, i, end, "</v></c>", 8))
        return SCAN_NONE;
    s->chars += piece->length + 1; /* its value and a tab or line end */
    if (s->chars + 18 > s->limit)
        return SCAN_NONE; /* simple_rows's budget (the count only grows) */
    *at = i + 8;
    return SCAN_DONE;
#undef READ
}

/* text[i:end] row by row (kind a constant where it is inlined) */
PARA_INLINE int rows_scan(Rows *s, const void *chars, int kind, Py_ssize_t i, Py_ssize_t end)
{
    while (i < end) {
        if (!rows_is(chars, kind, i, end, "<row", 4))
            return SCAN_NONE;
        i += 4;
        if (i >= end)
            return SCAN_NONE;
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c != '>') { /* attributes: white space, then anything but ">" and "/" */
            if (!Py_UNICODE_ISSPACE(c))
                return SCAN_NONE;
            for (i++; i < end; i++) {
                c = PyUnicode_READ(kind, chars, i);
                if (c == '>' || c == '/')
                    break;
            }
            if (i >= end || c != '>')
                return SCAN_NONE;
        }
        i++;
        for (int column = 0;; column++) {
            if (column && rows_is(chars, kind, i, end, "</row>", 6)) {
                i += 6;
                break;
            }
            if (column == ROWS_COLUMNS)
                return SCAN_NONE;
            int done = rows_cell(s, chars, kind, &i, end, column);
            if (done != SCAN_DONE)
                return done;
        }
        int done = rows_flush(s, chars, kind);
        if (done != SCAN_DONE)
            return done;
    }
    return SCAN_DONE;
}

/* the used bits as a set of their indexes */
static PyObject *rows_used(const Rows *s)
{
    PyObject *used = PySet_New(NULL);
    if (!used || !s->used)
        return used;
    for (Py_ssize_t b = 0; b <= s->count / 8; b++) {
        if (!s->used[b])
            continue;
        for (int k = 0; k < 8; k++) {
            if (!(s->used[b] & (1u << k)))
                continue;
            PyObject *index = PyLong_FromSsize_t(b * 8 + k);
            if (!index || PySet_Add(used, index) < 0) {
                Py_XDECREF(index);
                Py_DECREF(used);
                return NULL;
            }
            Py_DECREF(index);
        }
    }
    return used;
}

static PyObject *winnow_sheet_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *text, *shared, *chars_left;
    Py_ssize_t begin, end;
    if (!PyArg_ParseTuple(args, "UnnO!O:sheet_rows", &text, &begin, &end, &PyList_Type, &shared, &chars_left))
        return NULL;
    if (!PyLong_Check(chars_left)) {
        PyErr_SetString(PyExc_TypeError, "sheet_rows: chars_left must be an int");
        return NULL;
    }
    int overflow;
    long long limit = PyLong_AsLongLongAndOverflow(chars_left, &overflow);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (begin < 0 || end > n || begin > end)
        Py_RETURN_NONE; /* never a sheetData's span */
    Rows s;
    memset(&s, 0, sizeof s);
    s.shared = shared;
    s.count = PyList_GET_SIZE(shared);
    s.limit = overflow > 0 || limit > ROWS_MAX_LIMIT ? ROWS_MAX_LIMIT : overflow < 0 || limit < -ROWS_MAX_LIMIT ? -ROWS_MAX_LIMIT : limit;
    s.rows = PyList_New(0);
    if (!s.rows)
        return NULL;
    int kind = PyUnicode_KIND(text), done;
    const void *chars = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        done = rows_scan(&s, chars, PyUnicode_1BYTE_KIND, begin, end);
    else if (kind == PyUnicode_2BYTE_KIND)
        done = rows_scan(&s, chars, PyUnicode_2BYTE_KIND, begin, end);
    else
        done = rows_scan(&s, chars, PyUnicode_4BYTE_KIND, begin, end);
    rows_release(&s);
    if (done == SCAN_DONE && s.chars + 18 > s.limit)
        done = SCAN_NONE; /* no cell at all, and a budget under 18 */
    PyObject *result = NULL, *open = NULL, *used = NULL;
    if (done == SCAN_NONE) {
        result = Py_None;
        Py_INCREF(result);
    } else if (done == SCAN_DONE && (open = PyList_New(0)) && (used = rows_used(&s)))
        result = Py_BuildValue("(OOLO)", s.rows, open, (long long)s.chars, used);
    Py_XDECREF(open);
    Py_XDECREF(used);
    Py_DECREF(s.rows);
    PyMem_Free(s.used);
    return result;
}

static PyMethodDef methods[] = {
    {"chosen", winnow_chosen, METH_VARARGS, "chosen(data, gram_bytes, window_bytes) -> int64 offsets as bytes"},
    {"crcs", winnow_crcs, METH_VARARGS, "crcs(data, offsets, gram_bytes) -> uint32 zlib CRC-32 of each gram"},
    {"crcs_in", winnow_crcs_in, METH_VARARGS, "crcs_in(data, offsets, gram_bytes, keys) -> one byte a gram: its CRC-32 in keys"},
    {"hashes", winnow_hashes, METH_VARARGS, "hashes(data, begins, ends, prefix) -> 8-byte blake2b digests"},
    {"generic", winnow_generic, METH_VARARGS, "generic(folded, word, keys, lines, slots, offsets, pool, classes) -> bytes"},
    {"fold", winnow_fold, METH_VARARGS, "fold(text, entries, pool, word_table) -> (UCS-4 casefold, word flags) or None"},
    {"cells", winnow_cells, METH_VARARGS, "cells(text, space_table) -> (starts, ends, lines of, lines)"},
    {"lines", winnow_lines, METH_VARARGS, "lines(folded, word, gram_bytes) -> (utf8, starts, sizes, grams, probes)"},
    {"absent", winnow_absent, METH_VARARGS, "absent(values, keys) -> one byte a value: 1 when not among the keys"},
    {"marks", winnow_marks, METH_VARARGS, "marks(text, table, words) -> whether a marking term may be in text"},
    {"marks_lines", winnow_marks_lines, METH_VARARGS,
     "marks_lines(text, table, words, limit) -> the first place of marks in each line holding one (limit + 1 at most)"},
    {"heads", winnow_heads, METH_VARARGS, "heads(text, table) -> whether a line may start with a clause number"},
    {"nfkc", winnow_nfkc, METH_VARARGS, "nfkc(text, entries, pool) -> NFKC of text by table, or None"},
    {"ooxml_paragraphs", winnow_ooxml_paragraphs, METH_VARARGS,
     "ooxml_paragraphs(text, refused, first_table, cells, limit) -> (paragraphs, cell or place index, cells, tables), "
     "None or False"},
    {"member_paragraphs", winnow_member_paragraphs, METH_VARARGS,
     "member_paragraphs(data, refused, first_table, cells, limit) -> ooxml_paragraphs's answer for a member's UTF-8 "
     "bytes that well_bound is sure of, or None"},
    {"names_bound", winnow_names_bound, METH_VARARGS,
     "names_bound(xml) -> True when expat's namespace processing cannot refuse what the plain parse accepts"},
    {"sheet_rows", winnow_sheet_rows, METH_VARARGS,
     "sheet_rows(text, begin, end, shared, chars_left) -> ooxml.simple_rows's (rows, [], chars, used), or None"},
    {"slide_parts", winnow_slide_parts, METH_VARARGS,
     "slide_parts(data, parts, limit, max_parts, part_type, places, accepted) -> the characters of a slide's parts "
     "appended to parts, None, or False (not sure expat accepts it)"},
    {"well_formed", winnow_well_formed, METH_VARARGS,
     "well_formed(xml) -> True only when expat's plain parse surely accepts it (a strict subset of XML 1.0 in UTF-8)"},
    {"well_bound", winnow_well_bound, METH_VARARGS,
     "well_bound(xml) -> True only when well_formed(xml) and names_bound(xml) both are (one pass)"},
    {"shared_strings", winnow_shared_strings, METH_VARARGS,
     "shared_strings(text, chars_left) -> (the strings of xl/sharedStrings.xml as the events give them, chars), "
     "None or False"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_winnow",
    "The hot loops of winnowing (agent/content/winnow_fast.py) and of reading OOXML members (ooxml.py, xmlscan.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__winnow(void)
{
    crc_init();
    well_attention(); /* its tables made here, under the GIL: well_formed and well_bound read them without */
    well_attention_utf8();
    well_name_table();
    return PyModule_Create(&module);
}
