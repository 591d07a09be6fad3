/* agent.content._chunks: content-defined chunks of a file's bytes and their fingerprints.
 *
 * agent/content/chunks.py says what the chunks and fingerprints are and holds the Python
 * reference these loops are tested against (the same values, fed in any pieces). In short: a gear
 * hash (h = (h << 1) + GEAR[byte]) rolls over every byte; a chunk ends where its top MASK_BITS
 * bits are zero once it holds MIN_BYTES, or at MAX_BYTES. As a bit of h depends only on the last
 * 64 bytes, where a chunk ends depends on the bytes around it, not on its offset: a byte put in
 * front of a file moves every chunk by one and changes none. A chunk whose first LOW_BYTES hold
 * fewer than MIN_DISTINCT distinct byte values (padding, a fill, a short pattern) has no
 * fingerprint; the others have a 47-bit hash of their bytes.
 *
 * Chunker(filter=None, keep=0): feed(data) with the file's bytes in order, then finish():
 *   - with `filter` (a buffer of sorted native uint64, agent/content/chunks.py's Prefilter), the
 *     pair (fingerprints made, [those found in the filter]): the lane's look at an egress file;
 *   - without, the sorted list of distinct fingerprints, only the `keep` least when keep > 0 (the
 *     index's sketch of a classified file, bounded whatever its size).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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
#define RELEASE_GIL_BYTES 65536

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

typedef struct {
    PyObject_HEAD
    uint64_t h;              /* the gear hash since the chunk began */
    unsigned char *carry;    /* the chunk's bytes fed so far (it began in an earlier piece) */
    size_t carried;
    uint64_t *found;         /* fingerprints made (no filter) or found in the filter */
    size_t nfound, cap;
    uint64_t made;           /* fingerprints made */
    Py_buffer filter;        /* sorted uint64; filter.buf NULL: none */
    Py_ssize_t keep;
    int finished;
    int busy; /* a feed is running without the GIL: any other call on this Chunker is refused */
} Chunker;

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

static int in_filter(const Chunker *c, uint64_t fp)
{
    const uint64_t *v = (const uint64_t *)c->filter.buf;
    size_t lo = 0, hi = (size_t)c->filter.len / sizeof(uint64_t);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < (size_t)c->filter.len / sizeof(uint64_t) && v[lo] == fp;
}

/* 0, or -1 when out of memory (no exception set: the caller is without the GIL). */
static int emit(Chunker *c, const unsigned char *p, size_t n)
{
    if (!varied(p, n))
        return 0;
    uint64_t fp = chunk_hash(p, n);
    c->made++;
    if (c->filter.buf != NULL && !in_filter(c, fp))
        return 0;
    if (c->nfound == c->cap) { /* fold repeats (and, keeping the least, what is past them) before growing */
        c->nfound = sort_unique(c->found, c->nfound);
        if (c->filter.buf == NULL && c->keep > 0 && c->nfound > (size_t)c->keep)
            c->nfound = (size_t)c->keep;
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
static int feed_bytes(Chunker *c, const unsigned char *p, size_t n)
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

static int Chunker_init(Chunker *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"filter", "keep", NULL};
    PyObject *filter = Py_None;
    Py_ssize_t keep = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|On", kwlist, &filter, &keep))
        return -1;
    if (self->carry != NULL || self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "a Chunker is set up once");
        return -1;
    }
    if (keep < 0) {
        PyErr_SetString(PyExc_ValueError, "keep must be 0 or more");
        return -1;
    }
    if (filter != Py_None) {
        if (PyObject_GetBuffer(filter, &self->filter, PyBUF_SIMPLE) < 0)
            return -1;
        if (self->filter.len % sizeof(uint64_t)) {
            PyBuffer_Release(&self->filter);
            self->filter.buf = NULL;
            PyErr_SetString(PyExc_ValueError, "the filter must be an array of 8-byte integers");
            return -1;
        }
    }
    self->carry = PyMem_RawMalloc(MAX_BYTES);
    if (self->carry == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->keep = keep;
    return 0;
}

static void Chunker_dealloc(Chunker *self)
{
    if (self->filter.buf != NULL)
        PyBuffer_Release(&self->filter);
    PyMem_RawFree(self->carry);
    free(self->found);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -1 with an exception when the Chunker cannot be used now. busy is read and set with the GIL
 * held, so two threads sharing one Chunker get an error instead of racing on its buffers. */
static int usable(Chunker *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the Chunker is being fed by another thread");
        return -1;
    }
    if (self->carry == NULL || self->finished) {
        PyErr_SetString(PyExc_ValueError, "the Chunker is not set up, or finished");
        return -1;
    }
    return 0;
}

static PyObject *Chunker_feed(Chunker *self, PyObject *arg)
{
    if (usable(self) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int failed;
    if (view.len >= RELEASE_GIL_BYTES) {
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        failed = feed_bytes(self, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    } else {
        failed = feed_bytes(self, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    if (failed)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *list_of(const uint64_t *v, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *item = PyLong_FromUnsignedLongLong(v[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* The end of the file: its last chunk emitted, the fingerprints sorted and distinct; -1 when out
 * of memory. finish() and finish_packed() both start with it. */
static int close_chunks(Chunker *self)
{
    self->finished = 1;
    if (self->carried) { /* the file's last chunk */
        if (emit(self, self->carry, self->carried))
            return -1;
        self->carried = 0;
    }
    self->nfound = sort_unique(self->found, self->nfound);
    return 0;
}

static PyObject *Chunker_finish(Chunker *self, PyObject *Py_UNUSED(ignored))
{
    if (usable(self) < 0)
        return NULL;
    if (close_chunks(self) < 0)
        return PyErr_NoMemory();
    if (self->filter.buf != NULL) {
        PyObject *hits = list_of(self->found, self->nfound);
        if (hits == NULL)
            return NULL;
        return Py_BuildValue("(KN)", (unsigned long long)self->made, hits);
    }
    if (self->keep > 0 && self->nfound > (size_t)self->keep)
        self->nfound = (size_t)self->keep;
    return list_of(self->found, self->nfound);
}

/* finish() without a filter, as the index stores it: the sorted distinct fingerprints (the `keep`
 * least) packed 8 bytes each, little-endian (agent/content/chunks.py packed), with no Python int
 * made for each. */
static PyObject *Chunker_finish_packed(Chunker *self, PyObject *Py_UNUSED(ignored))
{
    if (usable(self) < 0)
        return NULL;
    if (self->filter.buf != NULL) {
        PyErr_SetString(PyExc_ValueError, "a Chunker with a filter has no sketch to pack");
        return NULL;
    }
    if (close_chunks(self) < 0)
        return PyErr_NoMemory();
    if (self->keep > 0 && self->nfound > (size_t)self->keep)
        self->nfound = (size_t)self->keep;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * self->nfound));
    if (out == NULL)
        return NULL;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < self->nfound; i++)
        for (int k = 0; k < 8; k++)
            *at++ = (unsigned char)(self->found[i] >> (8 * k));
    return out;
}

static PyMethodDef Chunker_methods[] = {
    {"feed", (PyCFunction)Chunker_feed, METH_O, "Feed the file's next bytes."},
    {"finish", (PyCFunction)Chunker_finish, METH_NOARGS,
     "The fingerprints: (made, found in the filter) with a filter, else the sorted distinct ones (the `keep` least)."},
    {"finish_packed", (PyCFunction)Chunker_finish_packed, METH_NOARGS,
     "finish() without a filter, packed as the index stores a sketch (8 bytes each, little-endian)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ChunkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "agent.content._chunks.Chunker",
    .tp_basicsize = sizeof(Chunker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Content-defined chunks of a file's bytes, fed in order (agent/content/chunks.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Chunker_init,
    .tp_dealloc = (destructor)Chunker_dealloc,
    .tp_methods = Chunker_methods,
};

static PyObject *gear_table(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    return list_of(GEAR, 256);
}

static PyMethodDef module_methods[] = {
    {"gear_table", gear_table, METH_NOARGS, "The gear table (tests hold it to the Python reference's)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agent.content._chunks", "Content-defined chunks of raw bytes (agent/content/chunks.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__chunks(void)
{
    uint64_t state = GEAR_SEED;
    for (int i = 0; i < 256; i++)
        GEAR[i] = splitmix64(&state);
    if (PyType_Ready(&ChunkerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ChunkerType);
    if (PyModule_AddObject(m, "Chunker", (PyObject *)&ChunkerType) < 0) {
        Py_DECREF(&ChunkerType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MIN_BYTES", MIN_BYTES) < 0 || PyModule_AddIntConstant(m, "MAX_BYTES", MAX_BYTES) < 0
        || PyModule_AddIntConstant(m, "MASK_BITS", MASK_BITS) < 0 || PyModule_AddIntConstant(m, "LOW_BYTES", LOW_BYTES) < 0
        || PyModule_AddIntConstant(m, "MIN_DISTINCT", MIN_DISTINCT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
