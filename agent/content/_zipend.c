/* agent.content._zipend: whether bytes hold a zip end record's signature, "PK\x05\x06".
 *
 * The agent's lane asks it of every opaque file of a burst (agent/opaque.py zip_at_end): a zip
 * behind a prefix is found by that record in its last 64 KiB. Python's `in` and rfind take some
 * 15-20 µs over 64 KiB here (a generic substring search); memchr for the signature's last byte
 * and a look at the three before it takes a few, as that byte turns up once in 256 random ones.
 * The reference is `b"PK\x05\x06" in data` (zipread.END_SIGNATURE), which tests hold it to.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *zipend_has_end(PyObject *Py_UNUSED(self), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *start = (const unsigned char *)view.buf;
    const unsigned char *end = start + view.len;
    int found = 0;
    if (view.len >= 4) {
        const unsigned char *at = start + 3; /* where the signature's last byte can first be */
        Py_BEGIN_ALLOW_THREADS
        while (at < end) {
            const unsigned char *hit = memchr(at, 0x06, (size_t)(end - at));
            if (hit == NULL)
                break;
            if (hit[-1] == 0x05 && hit[-2] == 'K' && hit[-3] == 'P') {
                found = 1;
                break;
            }
            at = hit + 1;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

static PyMethodDef zipend_methods[] = {
    {"has_end", zipend_has_end, METH_O, "Whether the bytes hold b'PK\\x05\\x06' (a zip end record's signature)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef zipend_module = {PyModuleDef_HEAD_INIT, "_zipend", NULL, -1, zipend_methods};

PyMODINIT_FUNC PyInit__zipend(void) { return PyModule_Create(&zipend_module); }
