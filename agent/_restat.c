/* agent._restat: the re-check's looks at many reported files in one call, without the GIL.
 *
 * The pipeline looks at each file it reported again for an hour (agent/pipeline.py, RECHECK_*):
 * some 150 lstats a file, a write through a mapping kept open after the close being seen only as a
 * change of its size or times. In Python each look was an os.lstat (the call, its stat_result of
 * some 20 fields, floats among them) and a comparison, some 2 µs; a copy of 1,000 files cost the
 * agent more in the hour of looks after it than in the copy. Here the files due together are
 * looked at in one call that releases the GIL once.
 *
 * changed(paths, entries): paths a list of str (encoded as os.fsencode does), entries a list of
 * the same length of the pipeline's re-check entries, tuples whose items 1..4 are the file's
 * st_size, st_mtime_ns, st_ctime_ns and st_ino when reported. The answer is the list of the
 * indices whose lstat failed, or found another size, mtime, ctime or inode (or whose path holds a
 * NUL byte, which no lstat takes): the caller looks at those again itself, in Python (the
 * reference, tests/agent/test_restat.py), and keeps the others as they are.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    PyObject *raw; /* bytes, os.fsencode of the path */
    long long size, mtime_ns, ctime_ns;
    unsigned long long ino;
    int changed; /* or, before the look, 1: the entry is the caller's to compare (a value past 64 bits) */
} Look;

/* Nanoseconds as Python's st_mtime_ns gives them: past 64 bits for a time after 2262 (ext4 keeps
 * times up to 2446, and `touch -d` sets them), so in 128. */
static __int128 ns_of(struct timespec t) { return (__int128)t.tv_sec * 1000000000 + t.tv_nsec; }

static void release(Look *looks, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(looks[i].raw);
    PyMem_Free(looks);
}

/* The entry's items 1..4 into look; -1 with an exception when they are not integers. One past 64
 * bits (a time after 2262) leaves the look to the caller. */
static int marks_of(PyObject *entry, Look *look)
{
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 5) {
        PyErr_SetString(PyExc_TypeError, "an entry must be a tuple of at least 5 items");
        return -1;
    }
    for (int i = 1; i <= 4; i++)
        if (!PyLong_Check(PyTuple_GET_ITEM(entry, i))) {
            PyErr_SetString(PyExc_TypeError, "an entry's size, times and inode must be integers");
            return -1;
        }
    int overflow = 0, again = 0;
    look->size = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(entry, 1), &overflow);
    again |= overflow;
    look->mtime_ns = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(entry, 2), &overflow);
    again |= overflow;
    look->ctime_ns = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(entry, 3), &overflow);
    again |= overflow;
    look->ino = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(entry, 4));
    if (PyErr_Occurred()) { /* a negative inode: none is */
        PyErr_Clear();
        again = 1;
    }
    look->changed = again;
    return 0;
}

static PyObject *restat_changed(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *paths, *entries;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &paths, &PyList_Type, &entries))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(paths);
    if (PyList_GET_SIZE(entries) != n) {
        PyErr_SetString(PyExc_ValueError, "paths and entries must be as many");
        return NULL;
    }
    Look *looks = PyMem_Calloc(n ? (size_t)n : 1, sizeof *looks);
    if (looks == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *path = PyList_GET_ITEM(paths, i);
        if (!PyUnicode_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "a path must be a str");
            release(looks, n);
            return NULL;
        }
        if ((looks[i].raw = PyUnicode_EncodeFSDefault(path)) == NULL || marks_of(PyList_GET_ITEM(entries, i), &looks[i]) < 0) {
            release(looks, n);
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (looks[i].changed)
            continue;
        const char *raw = PyBytes_AS_STRING(looks[i].raw);
        struct stat st;
        if ((size_t)PyBytes_GET_SIZE(looks[i].raw) != strlen(raw) || lstat(raw, &st) != 0) {
            looks[i].changed = 1; /* a NUL in it, or the lstat failed: the caller's own lstat says why */
            continue;
        }
        looks[i].changed = (long long)st.st_size != looks[i].size || ns_of(st.st_mtim) != (__int128)looks[i].mtime_ns
                           || ns_of(st.st_ctim) != (__int128)looks[i].ctime_ns || (unsigned long long)st.st_ino != looks[i].ino;
    }
    Py_END_ALLOW_THREADS
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        if (!looks[i].changed)
            continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(out, index) < 0)
            Py_CLEAR(out);
        Py_XDECREF(index);
    }
    release(looks, n);
    return out;
}

static PyMethodDef restat_methods[] = {
    {"changed", restat_changed, METH_VARARGS, "The indices of the paths whose lstat differs from their entry's."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef restat_module = {
    PyModuleDef_HEAD_INIT, "agent._restat", "The re-check's looks at many files in one call (agent/pipeline.py).", -1,
    restat_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__restat(void) { return PyModule_Create(&restat_module); }
