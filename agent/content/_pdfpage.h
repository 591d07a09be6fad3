/* A page's text objects as plain C records, handed from the content loop (_pdftext.c) to the
 * layout (_pdflayout.c) in a capsule: the same fields as pdf_content.TextObject, without making a
 * Python object (seven floats, a str, two lists) for each and freeing it again, which was a third
 * of the loop's time on pages of short runs (office suites write a run every few glyphs).
 *
 * The page owns its arrays and holds a reference to each record's font. Offsets, not pointers,
 * index the arrays (they grow by realloc while the loop runs); the layout checks every offset
 * against the lengths before it reads. */
#ifndef MIWEI_PDFPAGE_H
#define MIWEI_PDFPAGE_H

#include <Python.h>

#define PDFPAGE_CAPSULE "agent.content._pdftext.page"

typedef struct {
    PyObject *font; /* a reference held by the page */
    double size, last_x, end_x, a, d, x, y;
    long long holder;
    int dense;
    int kind;              /* bytes a code: 1, or 2 for a two-byte font (as the codes str's kind) */
    Py_ssize_t codes, n;   /* the codes: bytes [codes, codes + n * kind) of page->codes */
    Py_ssize_t kerns, nk;  /* the TJ numbers: page->kerns[kerns, kerns + nk) */
    Py_ssize_t cuts, nc;   /* where each falls: page->cuts[cuts, cuts + nc) */
} PdfRecord;

typedef struct {
    PdfRecord *recs;
    Py_ssize_t n, cap;
    unsigned char *codes;
    Py_ssize_t codes_len, codes_cap;
    double *kerns;
    Py_ssize_t kerns_len, kerns_cap;
    Py_ssize_t *cuts;
    Py_ssize_t cuts_len, cuts_cap;
} PdfPage;

#endif
