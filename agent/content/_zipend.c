/* agent.content._zipend: whether bytes hold an archive's signature.
 *
 * The agent's lane asks it of every opaque file of a burst: a zip behind a prefix is found by its
 * end record ("PK\x05\x06") in its last 64 KiB (agent/opaque.py zip_at_end), a 7z by its
 * signature in its first 4 MB (agent/hashing.py, while it hashes). Python's `in` takes some
 * 15-40 µs over 64 KiB here (a generic substring search); memchr for the signature's last byte
 * and a look at the bytes before it takes a few, as that byte turns up once in 256 random ones.
 * The reference is `needle in data`, which tests hold it to.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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
    const unsigned char *start = (const unsigned char *)view.buf;
    const unsigned char *end = start + view.len;
    const unsigned char *want = (const unsigned char *)needle.buf;
    Py_ssize_t before = needle.len - 1; /* bytes of the needle before its last */
    unsigned char last = want[before];
    int found = 0;
    if (view.len >= needle.len) {
        const unsigned char *at = start + before; /* where the needle's last byte can first be */
        Py_BEGIN_ALLOW_THREADS
        while (at < end) {
            const unsigned char *hit = memchr(at, last, (size_t)(end - at));
            if (hit == NULL)
                break;
            if (memcmp(hit - before, want, (size_t)before) == 0) {
                found = 1;
                break;
            }
            at = hit + 1;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&needle);
    return PyBool_FromLong(found);
}

static PyMethodDef zipend_methods[] = {
    {"contains", zipend_contains, METH_VARARGS, "needle in data, for a needle of 1 to 64 bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef zipend_module = {PyModuleDef_HEAD_INIT, "_zipend", NULL, -1, zipend_methods};

PyMODINIT_FUNC PyInit__zipend(void) { return PyModule_Create(&zipend_module); }
