/* agent.content._chunks: content-defined chunks of a file's bytes and their fingerprints.
 *
 * The chunking loops are in _chunkcore.h (shared with the lane's digest, agent/_lane.c), which
 * says what the chunks and fingerprints are; agent/content/chunks.py holds the Python reference.
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

#include "_chunkcore.h"

#define RELEASE_GIL_BYTES 65536

typedef struct {
    PyObject_HEAD
    ChunkState s;
    Py_buffer filter;        /* the filter s.filter points into; filter.buf NULL: none */
    int finished;
    int busy; /* a feed is running without the GIL: any other call on this Chunker is refused */
} Chunker;

static int Chunker_init(Chunker *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"filter", "keep", NULL};
    PyObject *filter = Py_None;
    Py_ssize_t keep = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|On", kwlist, &filter, &keep))
        return -1;
    if (self->s.carry != NULL || self->busy) {
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
        self->s.filter = (const uint64_t *)self->filter.buf;
        self->s.nfilter = (size_t)self->filter.len / sizeof(uint64_t);
    }
    self->s.carry = PyMem_RawMalloc(MAX_BYTES);
    if (self->s.carry == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->s.keep = (size_t)keep;
    return 0;
}

static void Chunker_dealloc(Chunker *self)
{
    if (self->filter.buf != NULL)
        PyBuffer_Release(&self->filter);
    PyMem_RawFree(self->s.carry);
    free(self->s.found);
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
    if (self->s.carry == NULL || self->finished) {
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
        failed = feed_bytes(&self->s, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    } else {
        failed = feed_bytes(&self->s, view.buf, (size_t)view.len);
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

/* The end of the file (close_chunks); -1 when out of memory. finish() and finish_packed() both
 * start with it. */
static int finish_chunks(Chunker *self)
{
    self->finished = 1;
    return close_chunks(&self->s);
}

static PyObject *Chunker_finish(Chunker *self, PyObject *Py_UNUSED(ignored))
{
    if (usable(self) < 0)
        return NULL;
    if (finish_chunks(self) < 0)
        return PyErr_NoMemory();
    if (self->filter.buf != NULL) {
        PyObject *hits = list_of(self->s.found, self->s.nfound);
        if (hits == NULL)
            return NULL;
        return Py_BuildValue("(KN)", (unsigned long long)self->s.made, hits);
    }
    if (self->s.keep > 0 && self->s.nfound > self->s.keep)
        self->s.nfound = self->s.keep;
    return list_of(self->s.found, self->s.nfound);
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
    if (finish_chunks(self) < 0)
        return PyErr_NoMemory();
    if (self->s.keep > 0 && self->s.nfound > self->s.keep)
        self->s.nfound = self->s.keep;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * self->s.nfound));
    if (out == NULL)
        return NULL;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < self->s.nfound; i++)
        for (int k = 0; k < 8; k++)
            *at++ = (unsigned char)(self->s.found[i] >> (8 * k));
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
    gear_init();
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
