/* agent._egress: the closed writes of one pipeline step read in one call (issue 21).

For each path: lstat, open O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, fstat and the check that
the descriptor is the regular file the lstat saw (same device and inode), SHA-256 of everything
pread from offset 0 to the end, the first head_bytes kept, and a second fstat (what a hash-time
fstat gives agent.hashing.Hasher.digest_fd). The GIL is released over all the system calls and
hashing of the batch and taken again once to build the answers.

Anything out of the ordinary is refused (None in its place) and handed back untouched to the
pipeline's Python path, which does the same work again and reports it as it always did: a path
that is not a regular file, a link, FIFO or device, a file swapped between lstat and open, gone,
unreadable, larger than max_bytes, any error at all. So this file never decides what an event
says about a strange file; it only answers for plain ones.

SHA-256 is OpenSSL's (libcrypto, the library hashlib uses here): the same digests, and the same
SHA-NI/AVX2 code.
*/

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK_BYTES (64 * 1024)
#define MAX_PATHS 4096
#define MAX_HEAD_BYTES (1024 * 1024)
#define PATH_LIMIT 4096 /* PATH_MAX on Linux: a longer path is refused (the Python path opens it by parts) */

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

typedef struct {
    int ok;               /* 1: answered; 0: refused */
    int fd;               /* open while ok */
    double looked_at;     /* CLOCK_MONOTONIC just before the lstat (time.monotonic()'s clock) */
    struct stat st;       /* fstat at open */
    struct stat after;    /* fstat once read */
    long long size;       /* bytes read */
    size_t head_len;
    unsigned char md[32];
} Answer;

static EVP_MD *sha256_md = NULL;
static PyObject *stat_result_type = NULL;

static double monotonic_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Hash the open regular file fd from offset 0; 0 on success, -1 on any error or past max_bytes. */
static int hash_fd(int fd, EVP_MD_CTX *ctx, unsigned char *buf, unsigned char *head, size_t head_bytes,
                   long long max_bytes, long long *size_out, size_t *head_len_out, unsigned char *md) {
    long long off = 0;
    size_t head_len = 0;
    unsigned int md_len = 0;
    if (EVP_DigestInit_ex(ctx, sha256_md, NULL) != 1) return -1;
    for (;;) {
        ssize_t n = pread(fd, buf, CHUNK_BYTES, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        if (n > CHUNK_BYTES) return -1; /* cannot happen; never trust it */
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) return -1;
        if (head_len < head_bytes) {
            size_t take = head_bytes - head_len;
            if (take > (size_t)n) take = (size_t)n;
            memcpy(head + head_len, buf, take);
            head_len += take;
        }
        off += n;
        if (off > max_bytes) return -1; /* grew past what is read here: the lanes read it */
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) return -1;
    *size_out = off;
    *head_len_out = head_len;
    return 0;
}

static void answer_one(const char *path, Py_ssize_t path_len, Answer *a, EVP_MD_CTX *ctx, unsigned char *buf,
                       unsigned char *head, size_t head_bytes, long long max_bytes, long long *budget) {
    struct stat lst;
    int fd;
    a->ok = 0;
    a->fd = -1;
    a->looked_at = monotonic_now();
    if (path_len <= 0 || path_len >= PATH_LIMIT || (Py_ssize_t)strlen(path) != path_len) return;
    if (*budget <= 0) return;
    if (lstat(path, &lst) != 0 || !S_ISREG(lst.st_mode) || lst.st_size < 0 || lst.st_size > max_bytes) return;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    if (fstat(fd, &a->st) != 0 || !S_ISREG(a->st.st_mode) || a->st.st_dev != lst.st_dev ||
        a->st.st_ino != lst.st_ino || a->st.st_size < 0 || a->st.st_size > max_bytes) {
        close(fd);
        return;
    }
    if (hash_fd(fd, ctx, buf, head, head_bytes, max_bytes, &a->size, &a->head_len, a->md) != 0 ||
        fstat(fd, &a->after) != 0) {
        close(fd);
        return;
    }
    *budget -= a->size > 0 ? a->size : 1;
    a->fd = fd;
    a->ok = 1;
}

/* os.stat_result of st, as os.fstat builds it (the 10 visible fields, the float and ns times,
   st_blksize, st_blocks, st_rdev). */
static PyObject *time_float(time_t sec, long nsec) { return PyFloat_FromDouble((double)sec + (double)nsec * 1e-9); }

static PyObject *time_ns(time_t sec, long nsec) {
    PyObject *s = PyLong_FromLongLong((long long)sec), *billion = NULL, *scaled = NULL, *n = NULL, *sum = NULL;
    if (s == NULL) return NULL;
    billion = PyLong_FromLong(1000000000L);
    if (billion == NULL) goto done;
    scaled = PyNumber_Multiply(s, billion);
    if (scaled == NULL) goto done;
    n = PyLong_FromLong(nsec);
    if (n == NULL) goto done;
    sum = PyNumber_Add(scaled, n);
done:
    Py_XDECREF(s);
    Py_XDECREF(billion);
    Py_XDECREF(scaled);
    Py_XDECREF(n);
    return sum;
}

static PyObject *stat_of(const struct stat *st) {
    PyObject *items = PyTuple_New(19), *result;
    if (items == NULL) return NULL;
    PyTuple_SET_ITEM(items, 0, PyLong_FromLong((long)st->st_mode));
    PyTuple_SET_ITEM(items, 1, PyLong_FromUnsignedLongLong((unsigned long long)st->st_ino));
    PyTuple_SET_ITEM(items, 2, PyLong_FromUnsignedLongLong((unsigned long long)st->st_dev));
    PyTuple_SET_ITEM(items, 3, PyLong_FromUnsignedLongLong((unsigned long long)st->st_nlink));
    PyTuple_SET_ITEM(items, 4, PyLong_FromUnsignedLongLong((unsigned long long)st->st_uid));
    PyTuple_SET_ITEM(items, 5, PyLong_FromUnsignedLongLong((unsigned long long)st->st_gid));
    PyTuple_SET_ITEM(items, 6, PyLong_FromLongLong((long long)st->st_size));
    PyTuple_SET_ITEM(items, 7, PyLong_FromLongLong((long long)st->st_atim.tv_sec));
    PyTuple_SET_ITEM(items, 8, PyLong_FromLongLong((long long)st->st_mtim.tv_sec));
    PyTuple_SET_ITEM(items, 9, PyLong_FromLongLong((long long)st->st_ctim.tv_sec));
    PyTuple_SET_ITEM(items, 10, time_float(st->st_atim.tv_sec, st->st_atim.tv_nsec));
    PyTuple_SET_ITEM(items, 11, time_float(st->st_mtim.tv_sec, st->st_mtim.tv_nsec));
    PyTuple_SET_ITEM(items, 12, time_float(st->st_ctim.tv_sec, st->st_ctim.tv_nsec));
    PyTuple_SET_ITEM(items, 13, time_ns(st->st_atim.tv_sec, st->st_atim.tv_nsec));
    PyTuple_SET_ITEM(items, 14, time_ns(st->st_mtim.tv_sec, st->st_mtim.tv_nsec));
    PyTuple_SET_ITEM(items, 15, time_ns(st->st_ctim.tv_sec, st->st_ctim.tv_nsec));
    PyTuple_SET_ITEM(items, 16, PyLong_FromLong((long)st->st_blksize));
    PyTuple_SET_ITEM(items, 17, PyLong_FromLongLong((long long)st->st_blocks));
    PyTuple_SET_ITEM(items, 18, PyLong_FromUnsignedLongLong((unsigned long long)st->st_rdev));
    for (Py_ssize_t i = 0; i < 19; i++) {
        if (PyTuple_GET_ITEM(items, i) == NULL) {
            Py_DECREF(items);
            return NULL;
        }
    }
    result = PyObject_CallOneArg(stat_result_type, items);
    Py_DECREF(items);
    return result;
}

static PyObject *answer_tuple(const Answer *a, const unsigned char *head) {
    static const char hex[] = "0123456789abcdef";
    char text[64];
    PyObject *st, *ns_after, *out;
    for (int i = 0; i < 32; i++) {
        text[2 * i] = hex[a->md[i] >> 4];
        text[2 * i + 1] = hex[a->md[i] & 15];
    }
    st = stat_of(&a->st);
    if (st == NULL) return NULL;
    ns_after = time_ns(a->after.st_mtim.tv_sec, a->after.st_mtim.tv_nsec);
    if (ns_after == NULL) {
        Py_DECREF(st);
        return NULL;
    }
    PyObject *ctime_after = time_ns(a->after.st_ctim.tv_sec, a->after.st_ctim.tv_nsec);
    if (ctime_after == NULL) {
        Py_DECREF(st);
        Py_DECREF(ns_after);
        return NULL;
    }
    /* (fd, stat at open, looked_at, sha256 hex, bytes read, mtime_ns, inode, ctime_ns once read, head) */
    out = Py_BuildValue("(iNds#LNKNy#)", a->fd, st, a->looked_at, text, (Py_ssize_t)64, a->size, ns_after,
                        (unsigned long long)a->after.st_ino, ctime_after, (const char *)head, (Py_ssize_t)a->head_len);
    return out;
}

static void close_answers(Answer *answers, Py_ssize_t from, Py_ssize_t n) {
    for (Py_ssize_t i = from; i < n; i++) {
        if (answers[i].ok && answers[i].fd >= 0) close(answers[i].fd);
        answers[i].ok = 0;
        answers[i].fd = -1;
    }
}

PyDoc_STRVAR(read_files_doc,
             "read_files(paths, head_bytes, max_bytes, budget_bytes) -> list\n\n"
             "For each path (bytes): None when refused (the caller's own path handles it), else\n"
             "(fd, os.stat_result of fd at open, time.monotonic() before its lstat, sha256 hex,\n"
             "bytes read, mtime_ns, inode and ctime_ns of fd once read, the first head_bytes bytes).\n"
             "The caller owns and closes every fd returned. Files larger than max_bytes, and all\n"
             "after budget_bytes were read, are refused.");

static PyObject *read_files(PyObject *self, PyObject *args) {
    PyObject *paths_in, *paths = NULL, *out = NULL;
    Py_ssize_t head_bytes, n, i;
    long long max_bytes, budget;
    Answer *answers = NULL;
    unsigned char *heads = NULL, *buf = NULL;
    const char **raw = NULL;
    Py_ssize_t *raw_len = NULL;
    EVP_MD_CTX *ctx = NULL;
    (void)self;

    if (!PyArg_ParseTuple(args, "OnLL", &paths_in, &head_bytes, &max_bytes, &budget)) return NULL;
    if (head_bytes < 0 || head_bytes > MAX_HEAD_BYTES) {
        PyErr_SetString(PyExc_ValueError, "head_bytes out of range");
        return NULL;
    }
    if (max_bytes < 0 || budget < 0) {
        PyErr_SetString(PyExc_ValueError, "max_bytes and budget_bytes must not be negative");
        return NULL;
    }
    paths = PySequence_Tuple(paths_in); /* our own: nobody changes it while the GIL is released */
    if (paths == NULL) return NULL;
    n = PyTuple_GET_SIZE(paths);
    if (n > MAX_PATHS) {
        PyErr_SetString(PyExc_ValueError, "too many paths in one batch");
        goto fail;
    }
    for (i = 0; i < n; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(paths, i))) {
            PyErr_SetString(PyExc_TypeError, "paths must be bytes");
            goto fail;
        }
    }
    answers = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Answer));
    raw = PyMem_Calloc(n ? (size_t)n : 1, sizeof(char *));
    raw_len = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    heads = PyMem_Malloc(n && head_bytes ? (size_t)n * (size_t)head_bytes : 1); /* n <= 4096, head <= 1 MiB */
    buf = PyMem_Malloc(CHUNK_BYTES);
    if (answers == NULL || raw == NULL || raw_len == NULL || heads == NULL || buf == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (i = 0; i < n; i++) {
        raw[i] = PyBytes_AS_STRING(PyTuple_GET_ITEM(paths, i));
        raw_len[i] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(paths, i));
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n; i++)
        answer_one(raw[i], raw_len[i], &answers[i], ctx, buf, heads + (size_t)i * (size_t)head_bytes, (size_t)head_bytes,
                   max_bytes, &budget);
    Py_END_ALLOW_THREADS

    out = PyList_New(n);
    if (out == NULL) goto fail;
    for (i = 0; i < n; i++) {
        PyObject *item;
        if (!answers[i].ok) {
            item = Py_NewRef(Py_None);
        } else {
            item = answer_tuple(&answers[i], heads + (size_t)i * (size_t)head_bytes);
            if (item == NULL) goto fail;
            answers[i].ok = 0; /* its fd is the caller's now */
        }
        PyList_SET_ITEM(out, i, item);
    }
    EVP_MD_CTX_free(ctx);
    PyMem_Free(answers);
    PyMem_Free(raw);
    PyMem_Free(raw_len);
    PyMem_Free(heads);
    PyMem_Free(buf);
    Py_DECREF(paths);
    return out;

fail:
    if (out != NULL) { /* descriptors already in answers given out: close them with the list */
        for (i = 0; i < PyList_GET_SIZE(out); i++) {
            PyObject *item = PyList_GET_ITEM(out, i);
            if (item != NULL && PyTuple_Check(item)) close((int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0)));
        }
        Py_DECREF(out);
    }
    if (answers != NULL) close_answers(answers, 0, n);
    if (ctx != NULL) EVP_MD_CTX_free(ctx);
    PyMem_Free(answers);
    PyMem_Free(raw);
    PyMem_Free(raw_len);
    PyMem_Free(heads);
    PyMem_Free(buf);
    Py_XDECREF(paths);
    return NULL;
}

static PyMethodDef methods[] = {
    {"read_files", read_files, METH_VARARGS, read_files_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_egress", NULL, -1, methods};

PyMODINIT_FUNC PyInit__egress(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) return NULL;
    stat_result_type = PyObject_GetAttrString(os, "stat_result");
    Py_DECREF(os);
    if (stat_result_type == NULL) return NULL;
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no SHA256");
        return NULL;
    }
    return PyModule_Create(&module);
}
