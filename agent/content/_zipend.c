/* agent.content._zipend: the lane's searches of an opaque file's bytes, and runs of text.
 *
 * The agent's lane asks it of every opaque file of a burst: a zip behind a prefix is found by its
 * end record ("PK\x05\x06") in its last 64 KiB (agent/opaque.py zip_at_end), a 7z by its
 * signature in its first 4 MB (agent/hashing.py, while it hashes): find_signature in _runs.h,
 * whose reference is `needle in data`, which tests hold it to. (The lane's digest of a batch,
 * agent/_lane.c, makes the same searches without Python where it is built.)
 *
 * text_runs and may_hold_runs find runs of text in a file no reader types, as `strings` does
 * (agent/content/textruns.py says what a run is, and holds the Python scans these are tested
 * against; may_hold_runs's scan is in _runs.h). The table of byte pairs that may stand side by
 * side in a run comes from there.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_runs.h"

/* contains(data, needle): `needle in data` for a needle of 1 to 64 bytes. */
static PyObject *zipend_contains(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view, needle;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &needle))
        return NULL;
    if (needle.len < 1 || needle.len > 64) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&needle);
        PyErr_SetString(PyExc_ValueError, "the needle must be 1 to 64 bytes");
        return NULL;
    }
    int found;
    Py_BEGIN_ALLOW_THREADS
    found = find_signature(view.buf, (size_t)view.len, needle.buf, (size_t)needle.len) != NULL;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyBuffer_Release(&needle);
    return PyBool_FromLong(found);
}

static int parse_pairs_args(PyObject *args, Py_buffer *view, Py_buffer *pairs, Py_ssize_t *utf8_bytes, Py_ssize_t *gb_bytes)
{
    if (!PyArg_ParseTuple(args, "y*y*nn", view, pairs, utf8_bytes, gb_bytes))
        return 0;
    if (pairs->len != PAIRS_BYTES || *utf8_bytes < 2 || *gb_bytes < 2) {
        PyBuffer_Release(view);
        PyBuffer_Release(pairs);
        PyErr_SetString(PyExc_ValueError, "pairs must be 65536 bytes and the run lengths at least 2");
        return 0;
    }
    return 1;
}

/* may_hold_runs(data, pairs, utf8_bytes, gb_bytes): textruns.may_hold_runs_reference. */
static PyObject *zipend_may_hold_runs(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view, pairs;
    Py_ssize_t utf8_bytes, gb_bytes;
    if (!parse_pairs_args(args, &view, &pairs, &utf8_bytes, &gb_bytes))
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf, *table = (const unsigned char *)pairs.buf;
    int found;
    Py_BEGIN_ALLOW_THREADS
    found = windows_found(d, view.len, table, utf8_bytes, gb_bytes);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyBuffer_Release(&pairs);
    return PyBool_FromLong(found);
}

static int ascii_text(unsigned char b) { return (b >= 0x20 && b < 0x7F) || b == 0x09 || b == 0x0A || b == 0x0D; }

/* textruns._utf8_char: the length of the text character at d[i] of a UTF-8 run, 0 when none. */
static Py_ssize_t utf8_char(const unsigned char *d, Py_ssize_t i, Py_ssize_t n)
{
    unsigned char b = d[i], lo = 0x80, hi = 0xBF;
    Py_ssize_t length;
    if (ascii_text(b))
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        length = 2, lo = (b == 0xC2) ? 0xA0 : 0x80;
    else if (b >= 0xE0 && b <= 0xEF)
        length = 3, lo = (b == 0xE0) ? 0xA0 : 0x80, hi = (b == 0xED) ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
        length = 4, lo = (b == 0xF0) ? 0x90 : 0x80, hi = (b == 0xF4) ? 0x8F : 0xBF;
    else
        return 0;
    if (n - i < length || d[i + 1] < lo || d[i + 1] > hi)
        return 0;
    for (Py_ssize_t k = 2; k < length; k++)
        if (d[i + k] < 0x80 || d[i + k] > 0xBF)
            return 0;
    return length;
}

/* textruns._gb_char */
static Py_ssize_t gb_char(const unsigned char *d, Py_ssize_t i, Py_ssize_t n)
{
    unsigned char b = d[i];
    if (ascii_text(b))
        return 1;
    return (b >= 0xA1 && b <= 0xF7 && n - i >= 2 && d[i + 1] >= 0xA1 && d[i + 1] <= 0xFE) ? 2 : 0;
}

/* Append (start, end) to runs; -1 on failure (MemoryError set). */
static int add_run(PyObject *runs, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *run = Py_BuildValue("(nn)", start, end);
    if (run == NULL)
        return -1;
    int failed = PyList_Append(runs, run);
    Py_DECREF(run);
    return failed;
}

/* textruns._scan (and gb_runs_reference's filter: a GB run must hold a byte past ASCII). */
static int scan(const unsigned char *d, Py_ssize_t n, int gb, Py_ssize_t min_bytes, PyObject *runs)
{
    Py_ssize_t start = 0, i = 0;
    int wide = 0; /* the run holds a byte past ASCII */
    while (i < n) {
        Py_ssize_t k = gb ? gb_char(d, i, n) : utf8_char(d, i, n);
        if (k) {
            wide |= k > 1;
            i += k;
            continue;
        }
        if (i - start >= min_bytes && (!gb || wide) && add_run(runs, start, i) < 0)
            return -1;
        i += 1;
        start = i;
        wide = 0;
    }
    if (n - start >= min_bytes && (!gb || wide) && add_run(runs, start, n) < 0)
        return -1;
    return 0;
}

/* text_runs(data, pairs, utf8_bytes, gb_bytes) -> (utf8 runs, gb runs), each a list of (start,
 * end): textruns.utf8_runs_reference and gb_runs_reference. An encoding whose windows
 * (window_found) rule every run out is not scanned. */
static PyObject *zipend_text_runs(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view, pairs;
    Py_ssize_t utf8_bytes, gb_bytes;
    if (!parse_pairs_args(args, &view, &pairs, &utf8_bytes, &gb_bytes))
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf, *table = (const unsigned char *)pairs.buf;
    PyObject *utf8 = PyList_New(0), *gb = PyList_New(0), *result = NULL;
    if (utf8 == NULL || gb == NULL)
        goto done;
    if (window_found(d, view.len, table, UTF8_BIT, utf8_bytes) && scan(d, view.len, 0, utf8_bytes, utf8) < 0)
        goto done;
    if (window_found(d, view.len, table, GB_BIT, gb_bytes) && scan(d, view.len, 1, gb_bytes, gb) < 0)
        goto done;
    result = PyTuple_Pack(2, utf8, gb);
done:
    Py_XDECREF(utf8);
    Py_XDECREF(gb);
    PyBuffer_Release(&view);
    PyBuffer_Release(&pairs);
    return result;
}

static PyMethodDef zipend_methods[] = {
    {"contains", zipend_contains, METH_VARARGS, "needle in data, for a needle of 1 to 64 bytes."},
    {"may_hold_runs", zipend_may_hold_runs, METH_VARARGS, "Whether data may hold a run of text (textruns.py)."},
    {"text_runs", zipend_text_runs, METH_VARARGS, "The UTF-8 and GB runs of text of data (textruns.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef zipend_module = {PyModuleDef_HEAD_INIT, "_zipend", NULL, -1, zipend_methods};

PyMODINIT_FUNC PyInit__zipend(void) { return PyModule_Create(&zipend_module); }
