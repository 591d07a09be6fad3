/* agent._lane: a lane's files hashed and looked at in one call, without the GIL.
 *
 * A lane (agent/lanes.py) hands the files waiting for it here together. For each it does what
 * agent/hashing.py Hasher.digest_fd does with the lane's looks, the reference that
 * tests/agent/test_lane_digest.py holds this to:
 *   - the SHA-256 of its bytes from offset 0 to the end (pread, CHUNK_BYTES at a time: the
 *     descriptor's offset is left alone), with its fstat's mtime, inode and ctime (the opener's
 *     stat when fstat is refused: a user's FUSE mount refuses root);
 *   - for a file to be inspected: its first head_bytes, whether the 7z signature is in its first
 *     look_within bytes, whether it may hold a run of text anywhere or a zip's local header in its
 *     first local_within bytes (agent/opaque.py Looker), whether a zip's end record is in its last
 *     tail_bytes (opaque.zip_at_end, there a second read of the tail) and, with the index's
 *     prefilter, which of its chunks' fingerprints the prefilter holds (agent/content/chunks.py).
 *
 * In Python each file of a burst cost the lane some 100 calls (the reads, the hash, the looks, the
 * chunker) and a dozen hand-overs of the GIL to the pipeline thread and back, each read and hash
 * releasing it; here a batch is one call that releases it once. The bytes of a read are searched
 * with the last EDGE bytes of the reads before in front of them, so a window of text or a
 * signature across two reads is seen as in one.
 *
 * configure(...) with the lane's constants (agent/lanes.py, at its import), then digest_batch(jobs,
 * progress): jobs a list of (fd, inspect, prefilter or None, (st_mode, st_mtime_ns, st_ino,
 * st_ctime_ns, st_size) of the opener's stat); progress a writable 8-byte buffer to which the bytes read
 * are added as they are read (the lane's sign of life, read by another thread). The answer for
 * each job is an OSError, or (sha256 hex, size, mtime_ns, inode, ctime_ns, head, 7z seen,
 * text or local header may be there, end record in the tail, fingerprints made, (fingerprints
 * found in the prefilter)).
 */
#define _GNU_SOURCE /* memrchr */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "content/_chunkcore.h"
#include "content/_runs.h"

#define CHUNK_BYTES (64 * 1024) /* what Hasher reads at a time */
#define MAX_SIGNATURE 64

static struct {
    int set;
    unsigned char pairs[PAIRS_BYTES];
    ssize_t utf8_bytes, gb_bytes;
    size_t head_bytes;
    uint64_t look_within, local_within, tail_bytes;
    unsigned char seven_zip[MAX_SIGNATURE], local[MAX_SIGNATURE], end[MAX_SIGNATURE];
    size_t seven_zip_len, local_len, end_len;
    size_t edge; /* bytes kept from the reads before: the longest window or signature, less one */
} conf;

static const EVP_MD *sha256;

typedef struct {
    /* asked */
    int fd, inspect;
    Py_buffer filter; /* filter.buf NULL: none */
    long long known_mode;
    PyObject *known_mtime_ns, *known_ctime_ns; /* borrowed from the job: Python ints, past 64 bits after 2262 */
    unsigned long long known_size; /* the opener's stat's: what the lane compares the bytes read with */
    unsigned long long known_ino; /* inode numbers are unsigned 64-bit (a FUSE file system's may use every bit) */
    /* answered */
    int err;          /* an errno, or 0 */
    const char *why;  /* the error's text when not strerror's */
    unsigned char sha[32];
    uint64_t size, made;
    struct timespec mtime, ctime; /* its fstat's; unset when it took the opener's (known) */
    int times_known;
    unsigned long long ino;
    unsigned char *head;
    size_t head_len;
    int seen, looked, end_in_tail;
    uint64_t *hits;
    size_t nhits;
} Item;

/* Where the first byte of the last `want` (wlen >= 1 bytes) in d[0..n) is, or NULL. */
static const unsigned char *find_last_signature(const unsigned char *d, size_t n, const unsigned char *want, size_t wlen)
{
    if (n < wlen)
        return NULL;
    const unsigned char *end = d + n - wlen + 1; /* the first byte of a match is before it */
    while (end > d) {
        const unsigned char *hit = memrchr(d, want[0], (size_t)(end - d));
        if (hit == NULL)
            return NULL;
        if (memcmp(hit, want, wlen) == 0)
            return hit;
        end = hit;
    }
    return NULL;
}

/* A time in nanoseconds as os.stat's st_mtime_ns gives it: a Python int, past 64 bits for a time
 * after 2262 (ext4 keeps times up to 2446, and `touch -d` sets them): such a file must not fail
 * its batch (it did: every file of the batch was reported unreadable). */
static PyObject *ns_object(struct timespec t)
{
    if (t.tv_sec > -9223372035LL && t.tv_sec < 9223372035LL)
        return PyLong_FromLongLong((long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    PyObject *sec = PyLong_FromLongLong((long long)t.tv_sec), *billion = PyLong_FromLong(1000000000L);
    PyObject *nsec = PyLong_FromLong(t.tv_nsec), *scaled = NULL, *out = NULL;
    if (sec != NULL && billion != NULL && nsec != NULL && (scaled = PyNumber_Multiply(sec, billion)) != NULL)
        out = PyNumber_Add(scaled, nsec);
    Py_XDECREF(sec), Py_XDECREF(billion), Py_XDECREF(nsec), Py_XDECREF(scaled);
    return out;
}

/* One file, into it; -1 when the hash itself failed (out of memory). buf holds conf.edge +
 * CHUNK_BYTES bytes. */
static int digest_one(Item *it, unsigned char *buf, EVP_MD_CTX *ctx, ChunkState *chunks, int64_t *progress)
{
    struct stat st;
    long long mode;
    if (fstat(it->fd, &st) == 0) {
        mode = st.st_mode;
        it->mtime = st.st_mtim, it->ino = (unsigned long long)st.st_ino, it->ctime = st.st_ctim;
    } else if (errno == EACCES || errno == EPERM) { /* Python's PermissionError: the opener's stat */
        mode = it->known_mode;
        it->times_known = 1, it->ino = it->known_ino;
    } else {
        it->err = errno;
        return 0;
    }
    if (!S_ISREG(mode)) { /* e.g. /dev/zero: it never ends */
        it->err = EINVAL, it->why = "not a regular file";
        return 0;
    }
    if (!EVP_DigestInit_ex(ctx, sha256, NULL))
        return -1;
    size_t head_bytes = it->inspect ? conf.head_bytes : 0;
    uint64_t look_within = it->inspect ? conf.look_within : 0;
    if (head_bytes && (it->head = malloc(head_bytes)) == NULL)
        return -1;
    ChunkState *ch = it->inspect && it->filter.buf != NULL ? chunks : NULL;
    if (ch != NULL) {
        ch->h = 0, ch->carried = 0, ch->nfound = 0, ch->made = 0;
        ch->filter = it->filter.buf, ch->nfilter = (size_t)it->filter.len / sizeof(uint64_t);
    }
    /* the end record is looked for in the tail of the file as its opener saw it: read to another
     * size, the file changed while it was read, and the lane answers by that alone (_work) */
    uint64_t tail_from = it->known_size > conf.tail_bytes ? it->known_size - conf.tail_bytes : 0;
    uint64_t size = 0;
    size_t kept = 0;          /* bytes of the reads before at the start of buf */
    long long last_end = -1;  /* the offset of the last end record's signature */
    for (;;) {
        ssize_t n = pread(it->fd, buf + kept, CHUNK_BYTES, (off_t)size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            it->err = errno;
            return 0;
        }
        if (n == 0)
            break;
        const unsigned char *fresh = buf + kept;
        if (!EVP_DigestUpdate(ctx, fresh, (size_t)n))
            return -1;
        if (it->head_len < head_bytes) {
            size_t take = head_bytes - it->head_len < (size_t)n ? head_bytes - it->head_len : (size_t)n;
            memcpy(it->head + it->head_len, fresh, take);
            it->head_len += take;
        }
        size_t span = kept + (size_t)n; /* buf[0..span) is the data from offset `from` */
        uint64_t from = size - kept;
        if (!it->seen && from < look_within) {
            uint64_t reach = look_within - from < span ? look_within - from : span;
            it->seen = find_signature(buf, (size_t)reach, conf.seven_zip, conf.seven_zip_len) != NULL;
        }
        if (it->inspect) {
            if (!it->looked) {
                it->looked = windows_found(buf, (ssize_t)span, conf.pairs, conf.utf8_bytes, conf.gb_bytes);
                if (!it->looked && from < conf.local_within) {
                    uint64_t reach = conf.local_within - from < span ? conf.local_within - from : span;
                    it->looked = find_signature(buf, (size_t)reach, conf.local, conf.local_len) != NULL;
                }
            }
            if (from + span > tail_from) {
                size_t skip = tail_from > from ? (size_t)(tail_from - from) : 0;
                const unsigned char *hit = find_last_signature(buf + skip, span - skip, conf.end, conf.end_len);
                if (hit != NULL)
                    last_end = (long long)(from + (uint64_t)(hit - buf));
            }
            if (ch != NULL && feed_bytes(ch, fresh, (size_t)n) < 0)
                return -1;
        }
        size += (uint64_t)n;
        __atomic_add_fetch(progress, (int64_t)n, __ATOMIC_RELAXED);
        size_t keep = span < conf.edge ? span : conf.edge;
        memmove(buf, buf + span - keep, keep);
        kept = keep;
    }
    unsigned int len = 0;
    if (!EVP_DigestFinal_ex(ctx, it->sha, &len) || len != 32)
        return -1;
    it->size = size;
    uint64_t tail = size < conf.tail_bytes ? size : conf.tail_bytes;
    it->end_in_tail = last_end >= 0 && (uint64_t)last_end >= size - tail;
    if (ch != NULL) {
        if (close_chunks(ch) < 0)
            return -1;
        it->made = ch->made, it->hits = ch->found, it->nhits = ch->nfound;
        ch->found = NULL, ch->nfound = 0, ch->cap = 0; /* the item keeps them */
    }
    return 0;
}

static int signature_arg(Py_buffer *b, unsigned char *to, size_t *len)
{
    if (b->len < 1 || b->len > MAX_SIGNATURE) {
        PyErr_SetString(PyExc_ValueError, "a signature must be 1 to 64 bytes");
        return -1;
    }
    memcpy(to, b->buf, (size_t)b->len);
    *len = (size_t)b->len;
    return 0;
}

static PyObject *lane_configure(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pairs", "utf8_bytes", "gb_bytes", "head_bytes", "seven_zip", "look_within", "local",
                             "local_within", "end", "tail_bytes", NULL};
    Py_buffer pairs, seven_zip, local, end;
    Py_ssize_t utf8_bytes, gb_bytes, head_bytes;
    unsigned long long look_within, local_within, tail_bytes;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*nnny*Ky*Ky*K", kwlist, &pairs, &utf8_bytes, &gb_bytes, &head_bytes,
                                     &seven_zip, &look_within, &local, &local_within, &end, &tail_bytes))
        return NULL;
    int ok = 0;
    if (pairs.len != PAIRS_BYTES || utf8_bytes < 2 || gb_bytes < 2 || utf8_bytes > 4096 || gb_bytes > 4096
        || head_bytes < 0 || head_bytes > (1 << 24))
        PyErr_SetString(PyExc_ValueError, "pairs must be 65536 bytes, the run lengths 2 to 4096, the head at most 16 MiB");
    else if (signature_arg(&seven_zip, conf.seven_zip, &conf.seven_zip_len) == 0
             && signature_arg(&local, conf.local, &conf.local_len) == 0 && signature_arg(&end, conf.end, &conf.end_len) == 0) {
        memcpy(conf.pairs, pairs.buf, PAIRS_BYTES);
        conf.utf8_bytes = utf8_bytes, conf.gb_bytes = gb_bytes, conf.head_bytes = (size_t)head_bytes;
        conf.look_within = look_within, conf.local_within = local_within, conf.tail_bytes = tail_bytes;
        size_t edge = (size_t)(utf8_bytes > gb_bytes ? utf8_bytes : gb_bytes);
        edge = edge > conf.seven_zip_len ? edge : conf.seven_zip_len;
        edge = edge > conf.local_len ? edge : conf.local_len;
        edge = edge > conf.end_len ? edge : conf.end_len;
        conf.edge = edge - 1;
        conf.set = 1;
        ok = 1;
    }
    PyBuffer_Release(&pairs);
    PyBuffer_Release(&seven_zip);
    PyBuffer_Release(&local);
    PyBuffer_Release(&end);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static void release_items(Item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i].filter.buf != NULL)
            PyBuffer_Release(&items[i].filter);
        free(items[i].head);
        free(items[i].hits);
    }
    PyMem_Free(items);
}

/* The job's fields into it; -1 with an exception when one is not what it should be. */
static int item_of(PyObject *job, Item *it)
{
    PyObject *filter, *known;
    if (!PyArg_ParseTuple(job, "ipOO", &it->fd, &it->inspect, &filter, &known))
        return -1;
    if (!PyArg_ParseTuple(known, "LO!KO!K", &it->known_mode, &PyLong_Type, &it->known_mtime_ns, &it->known_ino, &PyLong_Type,
                          &it->known_ctime_ns, &it->known_size))
        return -1;
    if (filter != Py_None) {
        if (PyObject_GetBuffer(filter, &it->filter, PyBUF_SIMPLE) < 0)
            return -1;
        if (it->filter.len % sizeof(uint64_t)) {
            PyErr_SetString(PyExc_ValueError, "a prefilter must be an array of 8-byte integers");
            return -1;
        }
    }
    return 0;
}

static PyObject *answer_of(const Item *it)
{
    if (it->err) {
        if (it->why != NULL)
            return PyObject_CallFunction(PyExc_OSError, "is", it->err, it->why);
        return PyObject_CallFunction(PyExc_OSError, "is", it->err, strerror(it->err));
    }
    char hex[65];
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = "0123456789abcdef"[it->sha[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[it->sha[i] & 15];
    }
    PyObject *hits = PyTuple_New((Py_ssize_t)it->nhits);
    if (hits == NULL)
        return NULL;
    for (size_t i = 0; i < it->nhits; i++) {
        PyObject *fp = PyLong_FromUnsignedLongLong(it->hits[i]);
        if (fp == NULL) {
            Py_DECREF(hits);
            return NULL;
        }
        PyTuple_SET_ITEM(hits, (Py_ssize_t)i, fp);
    }
    PyObject *mtime = it->times_known ? Py_NewRef(it->known_mtime_ns) : ns_object(it->mtime);
    PyObject *ctime = it->times_known ? Py_NewRef(it->known_ctime_ns) : ns_object(it->ctime);
    if (mtime == NULL || ctime == NULL) {
        Py_XDECREF(mtime), Py_XDECREF(ctime), Py_DECREF(hits);
        return NULL;
    }
    return Py_BuildValue("(s#KNKNy#NNNKN)", hex, (Py_ssize_t)64, (unsigned long long)it->size, mtime, it->ino,
                         ctime, it->head ? (const char *)it->head : "", (Py_ssize_t)it->head_len,
                         PyBool_FromLong(it->seen), PyBool_FromLong(it->looked), PyBool_FromLong(it->end_in_tail),
                         (unsigned long long)it->made, hits);
}

static PyObject *lane_digest_batch(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *jobs;
    Py_buffer progress;
    if (!PyArg_ParseTuple(args, "O!w*", &PyList_Type, &jobs, &progress))
        return NULL;
    if (!conf.set || progress.len < 8 || (uintptr_t)progress.buf % 8) {
        PyBuffer_Release(&progress);
        PyErr_SetString(PyExc_ValueError, "configure() first, and progress must be 8 aligned bytes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(jobs);
    Item *items = PyMem_Calloc(n ? (size_t)n : 1, sizeof *items);
    if (items == NULL) {
        PyBuffer_Release(&progress);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (item_of(PyList_GET_ITEM(jobs, i), &items[i]) < 0) {
            release_items(items, n);
            PyBuffer_Release(&progress);
            return NULL;
        }
    unsigned char *buf = PyMem_RawMalloc(conf.edge + CHUNK_BYTES);
    unsigned char *carry = PyMem_RawMalloc(MAX_BYTES);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int failed = buf == NULL || carry == NULL || ctx == NULL;
    ChunkState chunks = {.carry = carry};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !failed; i++)
        failed = digest_one(&items[i], buf, ctx, &chunks, (int64_t *)progress.buf) < 0;
    Py_END_ALLOW_THREADS
    free(chunks.found);
    EVP_MD_CTX_free(ctx);
    PyMem_RawFree(carry);
    PyMem_RawFree(buf);
    PyBuffer_Release(&progress);
    PyObject *out = failed ? PyErr_NoMemory() : PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *answer = answer_of(&items[i]);
        if (answer == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, answer);
    }
    release_items(items, n);
    return out;
}

static PyMethodDef lane_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))lane_configure, METH_VARARGS | METH_KEYWORDS,
     "Set the lane's constants (agent/lanes.py does at its import)."},
    {"digest_batch", lane_digest_batch, METH_VARARGS, "Hash and look at a batch of open files."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef lane_module = {
    PyModuleDef_HEAD_INIT, "agent._lane", "A lane's files hashed and looked at in one call (agent/lanes.py).", -1,
    lane_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lane(void)
{
    gear_init();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* fetched once, not at every file's init */
#else
    sha256 = EVP_sha256();
#endif
    if (sha256 == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no SHA-256");
        return NULL;
    }
    return PyModule_Create(&lane_module);
}
