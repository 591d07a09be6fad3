/* agent/content/pdf_layout.py's PageLayout.text in C, for a page whose objects are all TextObjects:
 * the same rules, in the same order, on the same doubles (Python's floats), so that it gives the
 * very page text the Python layout gives.
 *
 * Wherever the Python layout would raise (Unsure, or any other error: a width it cannot find, a
 * division by zero, int() of a NaN) and wherever this port does not model a case (a Column, an
 * object whose text is already filled, a value that is not a float, a font whose tables do not
 * fit), text() returns None before giving any text: the caller then runs the Python layout on
 * the page from the start, which decides. So the C never needs to be right about an Unsure: only
 * about the text of a page the Python reads to its end.
 *
 * Hostile input: every index into a code, a cut or a table is checked; buffers grow with the
 * page's text, never past it; the clock is looked at every CHECK_EVERY objects, as the Python does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_pdfpage.h"

#define CHECK_EVERY 256       /* pdf_layout.CHECK_EVERY */
#define MAX_LINE_OBJECTS 1024 /* pdf_layout.MAX_LINE_OBJECTS */
#define EPSILON 1e-3          /* pdf_layout.EPSILON */
#define TAIL 7                /* glyphs the repeated-glyph test looks back */
#define SEEN 5                /* objects _same_as_recent looks back, per holder */
#define BAIL 1                /* "the Python layout decides": returned up through every level */

static PyObject *TextObjectType;
static PyObject *s_two_byte, *s_widths, *s_default_width, *s_advances, *s_table, *s_space_code, *s_least_space_gap,
    *s_ascent, *s_descent, *s_cache;
enum { F_FONT, F_SIZE, F_CODES, F_KERNS, F_CUTS, F_LAST_X, F_END_X, F_A, F_D, F_X, F_Y, F_HOLDER, F_DENSE, F_TEXT, NFIELDS };
static const char *field_names[NFIELDS] = {"font", "size", "codes", "kerns", "cuts", "last_x", "end_x", "a", "d", "x",
                                           "y", "holder", "dense", "text"};
static Py_ssize_t field_offset[NFIELDS];

/* Python's max(a, b) and min(a, b) of two floats: the first unless the second is strictly past it */
static double pmax(double a, double b) { return b > a ? b : a; }
static double pmin(double a, double b) { return b < a ? b : a; }

/* -- fonts: the tables the layout reads, from a Font once (kept on it) ------------------------ */

typedef struct {
    int usable; /* 0: every page in this font goes to the Python layout */
    int two_byte;
    Py_ssize_t natural; /* the font's code space: 256 or 65536 (a code past it: the Python decides) */
    Py_ssize_t size;    /* the tables' length: the highest code any of them holds, plus one */
    Py_ssize_t bytes;   /* what they take (counted in live_bytes) */
    int32_t *width;  /* font.widths, where has_width */
    unsigned char *has_width;
    int has_default;
    int32_t default_width;
    int32_t *adv; /* font.advances (by code), where has_adv */
    unsigned char *has_adv;
    int32_t widest; /* max(advances.values()) */
    Py_ssize_t *toff; /* font.table: each code's text in pool[toff[c], toff[c] + tlen[c]) */
    Py_ssize_t *tlen;
    Py_UCS4 *pool;
    int has_space_code;
    Py_ssize_t space_code;
    double least_space_gap, ascent, descent;
} FontInfo;

/* The tables of the fonts alive, in bytes: a document of a thousand 2-byte fonts each with a
 * code near 65,535 would otherwise take some 2 GB; past this, a font's pages go to the Python. */
#define MAX_LIVE_BYTES (64 << 20)
static Py_ssize_t live_bytes;

static void font_info_free(FontInfo *f) {
    if (f == NULL) return;
    live_bytes -= f->bytes;
    PyMem_Free(f->width);
    PyMem_Free(f->has_width);
    PyMem_Free(f->adv);
    PyMem_Free(f->has_adv);
    PyMem_Free(f->toff);
    PyMem_Free(f->tlen);
    PyMem_Free(f->pool);
    PyMem_Free(f);
}

static void capsule_free(PyObject *capsule) { font_info_free(PyCapsule_GetPointer(capsule, "pdflayout.font")); }

/* an int of 32 bits from a Python int: 1, else 0 (not one), -1 error */
static int int32_of(PyObject *v, int32_t *out) {
    if (!PyLong_CheckExact(v)) return 0;
    int overflow;
    long long w = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (w == -1 && PyErr_Occurred()) return -1;
    if (overflow || w < INT32_MIN || w > INT32_MAX) return 0;
    *out = (int32_t)w;
    return 1;
}

/* a float the Python would compute with as this double: a float, or an int of at most 2**53 */
static int double_of(PyObject *v, double *out) {
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    int32_t i;
    int rc = int32_of(v, &i);
    if (rc == 1) *out = (double)i;
    return rc;
}

/* a font's tables: 0 done (f->usable says whether they can be used), -1 error */
static int font_fill(PyObject *font, FontInfo *f) {
    PyObject *v = NULL, *key, *value;
    Py_ssize_t at;
    int rc;
    if ((v = PyObject_GetAttr(font, s_two_byte)) == NULL) return -1;
    f->two_byte = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (f->two_byte < 0) return -1;
    f->natural = f->two_byte ? 65536 : 256;
    /* the highest code of the three tables within the code space */
    PyObject *dicts[3] = {s_widths, s_advances, s_table};
    f->size = 1;
    for (int i = 0; i < 3; i++) {
        if ((v = PyObject_GetAttr(font, dicts[i])) == NULL) return -1;
        if (!PyDict_CheckExact(v)) goto unusable;
        at = 0;
        while (PyDict_Next(v, &at, &key, &value)) {
            Py_ssize_t code = -1;
            if (PyUnicode_CheckExact(key) && PyUnicode_GET_LENGTH(key) == 1) {
                code = (Py_ssize_t)PyUnicode_READ_CHAR(key, 0);
            } else if (PyLong_CheckExact(key)) {
                int overflow;
                long long c = PyLong_AsLongLongAndOverflow(key, &overflow);
                if (c == -1 && PyErr_Occurred()) goto error;
                code = overflow || c < 0 || c >= f->natural ? -1 : (Py_ssize_t)c;
            }
            if (code >= 0 && code < f->natural && code >= f->size) f->size = code + 1;
        }
        Py_CLEAR(v);
    }
    f->bytes = f->size * (Py_ssize_t)(2 * sizeof(int32_t) + 2 + 2 * sizeof(Py_ssize_t));
    if (live_bytes + f->bytes > MAX_LIVE_BYTES) {
        f->bytes = 0;
        goto unusable;
    }
    live_bytes += f->bytes;
    f->width = PyMem_Calloc((size_t)f->size, sizeof *f->width);
    f->has_width = PyMem_Calloc((size_t)f->size, 1);
    f->adv = PyMem_Calloc((size_t)f->size, sizeof *f->adv);
    f->has_adv = PyMem_Calloc((size_t)f->size, 1);
    f->toff = PyMem_Calloc((size_t)f->size, sizeof *f->toff);
    f->tlen = PyMem_Calloc((size_t)f->size, sizeof *f->tlen);
    if (!f->width || !f->has_width || !f->adv || !f->has_adv || !f->toff || !f->tlen) {
        PyErr_NoMemory();
        return -1;
    }
    /* widths: int code -> int (codes past the table are never asked: the space code is checked below) */
    if ((v = PyObject_GetAttr(font, s_widths)) == NULL) return -1;
    if (!PyDict_CheckExact(v)) goto unusable;
    at = 0;
    while (PyDict_Next(v, &at, &key, &value)) {
        int32_t w;
        if (!PyLong_CheckExact(key)) goto unusable;
        Py_ssize_t code = PyLong_AsSsize_t(key);
        if (code == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto error;
            PyErr_Clear();
            continue;
        }
        if ((rc = int32_of(value, &w)) < 0) goto error;
        if (rc == 0) goto unusable;
        if (code < 0 || code >= f->size) continue;
        f->width[code] = w;
        f->has_width[code] = 1;
    }
    Py_CLEAR(v);
    if ((v = PyObject_GetAttr(font, s_default_width)) == NULL) return -1;
    if (v != Py_None) {
        if ((rc = int32_of(v, &f->default_width)) < 0) goto error;
        if (rc == 0) goto unusable;
        f->has_default = 1;
    }
    Py_CLEAR(v);
    /* advances: one-character code -> int */
    if ((v = PyObject_GetAttr(font, s_advances)) == NULL) return -1;
    if (!PyDict_CheckExact(v)) goto unusable;
    at = 0;
    int any = 0;
    while (PyDict_Next(v, &at, &key, &value)) {
        int32_t w;
        if (!PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) != 1) goto unusable;
        Py_UCS4 code = PyUnicode_READ_CHAR(key, 0);
        if ((rc = int32_of(value, &w)) < 0) goto error;
        if (rc == 0 || code >= (Py_UCS4)f->natural) goto unusable;
        f->adv[code] = w;
        f->has_adv[code] = 1;
        if (!any || w > f->widest) f->widest = w;
        any = 1;
    }
    if (!any) goto unusable; /* max() of no advances: the Python raises */
    Py_CLEAR(v);
    /* table: int code -> its text */
    if ((v = PyObject_GetAttr(font, s_table)) == NULL) return -1;
    if (!PyDict_CheckExact(v)) goto unusable;
    Py_ssize_t total = 0;
    at = 0;
    while (PyDict_Next(v, &at, &key, &value)) {
        if (!PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) > 64) goto unusable;
        total += PyUnicode_GET_LENGTH(value);
    }
    f->pool = PyMem_Malloc((size_t)(total + 1) * sizeof *f->pool);
    if (f->pool == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    Py_ssize_t used = 0;
    at = 0;
    while (PyDict_Next(v, &at, &key, &value)) {
        if (!PyLong_CheckExact(key)) goto unusable;
        Py_ssize_t code = PyLong_AsSsize_t(key);
        if (code == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto error;
            PyErr_Clear();
            continue;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(value);
        if (code < 0 || code >= f->size || len == 0 || used + len > total) continue; /* never asked, or no text */
        f->toff[code] = used;
        f->tlen[code] = len;
        for (Py_ssize_t i = 0; i < len; i++) f->pool[used++] = PyUnicode_READ_CHAR(value, i);
    }
    Py_CLEAR(v);
    if ((v = PyObject_GetAttr(font, s_space_code)) == NULL) return -1;
    if (v != Py_None) {
        if (!PyLong_CheckExact(v)) goto unusable;
        f->space_code = PyLong_AsSsize_t(v);
        if (f->space_code == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto error;
            PyErr_Clear();
            goto unusable;
        }
        if (f->space_code < 0 || f->space_code >= f->natural) goto unusable;
        f->has_space_code = 1;
    }
    Py_CLEAR(v);
    PyObject *attrs[3] = {s_least_space_gap, s_ascent, s_descent};
    double *fields[3] = {&f->least_space_gap, &f->ascent, &f->descent};
    for (int i = 0; i < 3; i++) {
        if ((v = PyObject_GetAttr(font, attrs[i])) == NULL) return -1;
        if ((rc = double_of(v, fields[i])) < 0) goto error;
        if (rc == 0) goto unusable;
        Py_CLEAR(v);
    }
    f->usable = 1;
    return 0;
unusable:
    Py_XDECREF(v);
    f->usable = 0;
    return 0;
error:
    Py_XDECREF(v);
    return -1;
}

/* the font's tables, made once and kept on the font (its tables never change once loaded) */
static FontInfo *font_info(PyObject *font) {
    PyObject *capsule = PyObject_GetAttr(font, s_cache);
    if (capsule == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return NULL;
        PyErr_Clear();
    } else {
        FontInfo *f = PyCapsule_IsValid(capsule, "pdflayout.font") ? PyCapsule_GetPointer(capsule, "pdflayout.font")
                                                                      : NULL;
        Py_DECREF(capsule);
        if (f != NULL) return f;
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "a font's layout tables");
        return NULL;
    }
    FontInfo *f = PyMem_Calloc(1, sizeof *f);
    if (f == NULL) return (FontInfo *)PyErr_NoMemory();
    if (font_fill(font, f) < 0) {
        font_info_free(f);
        return NULL;
    }
    capsule = PyCapsule_New(f, "pdflayout.font", capsule_free);
    if (capsule == NULL) {
        font_info_free(f);
        return NULL;
    }
    int rc = PyObject_SetAttr(font, s_cache, capsule);
    Py_DECREF(capsule); /* on success the font holds it, and with it f */
    return rc < 0 ? NULL : f;
}

/* -- the page's objects, read once ----------------------------------------------------------- */

typedef struct {
    PyObject *py;   /* the TextObject (a reference held while the page is laid out) */
    PyObject *font; /* borrowed from py */
    FontInfo *fi;
    const void *id;         /* the TextObject, or the record: the same object twice has the same id */
    PyObject *kerns, *cuts; /* borrowed lists, every item checked: floats, ints (NULL for a record) */
    const double *kern;     /* a record's kerns and cuts (NULL for a TextObject, or where it has none) */
    const Py_ssize_t *cut;
    Py_ssize_t nk, nc;
    int kind;               /* obj.codes: PyUnicode kind and data */
    const void *codes;
    Py_ssize_t n;
    double size, last_x, end_x, a, d, x, y, kmin;
    long long holder;
    int dense;
    Py_ssize_t t0, tn; /* its text in the layout's arena */
    int body, base;
} Obj;

typedef struct {
    PyObject *font;
    Py_UCS4 code;
    double x, y;
} Glyph;

typedef struct {
    long long holder;
    Py_ssize_t n;         /* objects seen, the last SEEN of them in at[] by n % SEEN */
    Py_ssize_t at[SEEN];
    int used;
} Seen;

typedef struct {
    Py_UCS4 *s;
    Py_ssize_t len, cap;
} Buf;

typedef struct {
    Obj *objs;
    Py_ssize_t nobjs;
    double width, height, sx, sy;
    Buf arena;               /* every object's text */
    Buf temp;                /* the line being made (PDFium's m_TempTextBuf) */
    Py_ssize_t *tpos, tn, tcap; /* where each of temp's pieces starts (the Python's list of strings) */
    Buf out, scratch;
    Py_ssize_t opos[2], on; /* where out's last two pieces start, and how many pieces */
    int out_empty, any_char;
    double line_right, line_top, line_bottom;
    Glyph tail[TAIL];
    int ntail;
    Obj *prev, *last_char;
    int line_dir; /* 0 not worked out yet, else 'H', 'V' or 'N' (None) */
    Py_ssize_t line[MAX_LINE_OBJECTS + 1];
    Py_ssize_t nline;
    Seen *seen;       /* holder -> the objects before, open addressing */
    Py_ssize_t seen_cap, seen_used;
    PyObject *check_time;
    PyObject *last_font; /* the last font_info() asked, and its answer */
    FontInfo *last_fi;
} Layout;

#define CODE(o, i) PyUnicode_READ((o)->kind, (o)->codes, (i))
#define TEXT(L, o) ((L)->arena.s + (o)->t0)

static int grow(Buf *b, Py_ssize_t more) {
    if (more > PY_SSIZE_T_MAX / 8 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = (b->len + more) * 2 + 64;
    Py_UCS4 *s = PyMem_Realloc(b->s, (size_t)cap * sizeof *s);
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const Py_UCS4 *s, Py_ssize_t len) {
    if (grow(b, len) < 0) return -1;
    memcpy(b->s + b->len, s, (size_t)len * sizeof *s);
    b->len += len;
    return 0;
}

static int is_on_baseline(Py_UCS4 c) {
    static const Py_UCS4 marks[] = {'.', ',', ':', ';', '!', '?', '(', ')', '[', ']', '{', '}', '/', '%', '&', '@', '#',
                                    '$', 0x3002, 0xff0c, 0x3001, 0xff1a, 0xff1b, 0xff01, 0xff1f, 0xff08, 0xff09, 0x300a,
                                    0x300b, 0x300c, 0x300d, 0x2026};
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (c == marks[i]) return 1;
    return 0;
}

/* a float field of a TextObject: 1, 0 not a float (the Python decides), -1 not set */
static int field_double(PyObject *obj, int field, double *out) {
    PyObject *v = *(PyObject **)((char *)obj + field_offset[field]);
    if (v == NULL || !PyFloat_CheckExact(v)) return 0;
    *out = PyFloat_AS_DOUBLE(v);
    return 1;
}

static PyObject *field(PyObject *obj, int field) { return *(PyObject **)((char *)obj + field_offset[field]); }

static int finish_object(Layout *L, Obj *o);

/* one object read: 0, BAIL, -1 */
static int read_object(Layout *L, PyObject *py, Obj *o) {
    memset(o, 0, sizeof *o);
    if ((PyObject *)Py_TYPE(py) != TextObjectType) return BAIL; /* a Column, or anything else */
    o->py = py;
    PyObject *codes = field(py, F_CODES), *holder = field(py, F_HOLDER), *dense = field(py, F_DENSE);
    o->font = field(py, F_FONT);
    o->kerns = field(py, F_KERNS);
    o->cuts = field(py, F_CUTS);
    if (o->font == NULL || codes == NULL || holder == NULL || dense == NULL || o->kerns == NULL || o->cuts == NULL)
        return BAIL;
    if (field(py, F_TEXT) != Py_None) return BAIL; /* filled before: the Python would use it as it stands */
    if (!PyUnicode_CheckExact(codes) || !PyList_CheckExact(o->kerns) || !PyList_CheckExact(o->cuts)) return BAIL;
    if (!PyLong_CheckExact(holder) || !PyBool_Check(dense)) return BAIL;
    o->kind = PyUnicode_KIND(codes);
    o->codes = PyUnicode_DATA(codes);
    o->n = PyUnicode_GET_LENGTH(codes);
    if (o->n == 0) return BAIL;
    o->id = py;
    int overflow;
    o->holder = PyLong_AsLongLongAndOverflow(holder, &overflow);
    if (overflow || (o->holder == -1 && PyErr_Occurred())) return PyErr_Occurred() ? -1 : BAIL;
    o->dense = dense == Py_True;
    double *fields[7] = {&o->size, &o->last_x, &o->end_x, &o->a, &o->d, &o->x, &o->y};
    int ids[7] = {F_SIZE, F_LAST_X, F_END_X, F_A, F_D, F_X, F_Y};
    for (int i = 0; i < 7; i++)
        if (!field_double(py, ids[i], fields[i])) return BAIL;
    Py_ssize_t nk = o->nk = PyList_GET_SIZE(o->kerns), nc = o->nc = PyList_GET_SIZE(o->cuts);
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyList_GET_ITEM(o->kerns, i);
        if (!PyFloat_CheckExact(k)) return BAIL;
        double v = PyFloat_AS_DOUBLE(k);
        o->kmin = i == 0 ? v : pmin(o->kmin, v);
    }
    for (Py_ssize_t i = 0; i < nc; i++) {
        PyObject *c = PyList_GET_ITEM(o->cuts, i);
        if (!PyLong_CheckExact(c)) return BAIL;
        Py_ssize_t v = PyLong_AsSsize_t(c);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < 0 || v > o->n) return BAIL;
    }
    return finish_object(L, o);
}

/* an object's font tables and text, once its fields are read: 0, BAIL, -1 */
static int finish_object(Layout *L, Obj *o) {
    if (o->font == L->last_font) {
        o->fi = L->last_fi;
    } else if ((o->fi = font_info(o->font)) == NULL) { /* not a Font as pdf_fonts makes them: the Python decides */
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return -1;
        PyErr_Clear();
        return BAIL;
    }
    L->last_font = o->font; /* the next object is most often in the same font: its tables without a lookup */
    L->last_fi = o->fi;
    if (!o->fi->usable) return BAIL;
    /* its text: font.text_of(codes), each code's text from the font's table */
    FontInfo *f = o->fi;
    o->t0 = L->arena.len;
    for (Py_ssize_t i = 0; i < o->n; i++) {
        Py_UCS4 c = CODE(o, i);
        if (c >= (Py_UCS4)f->size || f->tlen[c] == 0) return BAIL; /* text_of would keep or replace it */
        if (put(&L->arena, f->pool + f->toff[c], f->tlen[c]) < 0) return -1;
    }
    o->tn = L->arena.len - o->t0;
    const Py_UCS4 *t = TEXT(L, o);
    for (Py_ssize_t i = 0; i < o->tn && !o->body; i++) o->body = Py_UNICODE_ISALNUM(t[i]);
    o->base = o->body;
    for (Py_ssize_t i = 0; i < o->tn && !o->base; i++) o->base = is_on_baseline(t[i]);
    return 0;
}

static long long cut_at(Obj *o, Py_ssize_t i) {
    return o->cuts == NULL ? (long long)o->cut[i] : PyLong_AsLongLong(PyList_GET_ITEM(o->cuts, i));
}
static double kern_at(Obj *o, Py_ssize_t i) {
    return o->kerns == NULL ? o->kern[i] : PyFloat_AS_DOUBLE(PyList_GET_ITEM(o->kerns, i));
}

/* _char_width: font.width(code), BAIL where the Python raises */
static int char_width(Obj *o, Py_UCS4 code, int32_t *w) {
    FontInfo *f = o->fi;
    if (code >= (Py_UCS4)f->natural) return BAIL;
    if (code < (Py_UCS4)f->size && f->has_width[code]) *w = f->width[code];
    else if (f->has_default) *w = f->default_width;
    else return BAIL;
    return *w <= 0 ? BAIL : 0;
}

static int width_or(FontInfo *f, Py_ssize_t code, int32_t fallback, int has_fallback, int32_t *w) {
    if (code < f->size && f->has_width[code]) {
        *w = f->width[code];
        return 1;
    }
    *w = fallback;
    return has_fallback;
}

static int advance(Obj *o, Py_UCS4 code, double *out) { /* font.advances[code]: BAIL where a KeyError */
    FontInfo *f = o->fi;
    if (code >= (Py_UCS4)f->size || !f->has_adv[code]) return BAIL;
    *out = (double)f->adv[code];
    return 0;
}

static int above(double value, double limit, int *out) { /* _above */
    if (fabs(value - limit) < EPSILON) return BAIL;
    *out = value > limit;
    return 0;
}

static double normalize(double threshold, double t1, double t2, double t3) {
    if (threshold < t1) return threshold / 2.0;
    if (threshold < t2) return threshold / 4.0;
    if (threshold < t3) return threshold / 5.0;
    return threshold / 6.0;
}

static int all_spaces(const Py_UCS4 *t, Py_ssize_t n) { /* not text.strip(" ") */
    for (Py_ssize_t i = 0; i < n; i++)
        if (t[i] != ' ') return 0;
    return 1;
}

/* _extent: the outer range, and the inner one where has_inner */
typedef struct {
    double lo, hi, in_lo, in_hi;
    int has_inner;
} Extent;

static Extent extent(Layout *L, Obj *o) {
    Extent e;
    double em = o->size * o->d;
    if (all_spaces(TEXT(L, o), o->tn)) {
        e.lo = e.hi = e.in_lo = e.in_hi = o->y;
        e.has_inner = 1;
        return e;
    }
    e.lo = o->y + em * (pmin(o->fi->descent, -300.0) / 1000 - 0.1);
    e.hi = o->y + em * (pmax(o->fi->ascent, 900.0) / 1000 + 0.15);
    e.has_inner = o->body || o->base;
    if (o->body) {
        e.in_lo = o->y + em * 0.05;
        e.in_hi = o->y + em * 0.35;
    } else if (o->base) {
        e.in_lo = o->y + em * 0.02;
        e.in_hi = o->y + em * 0.08;
    }
    return e;
}

/* _glyph_xs: page x of the first (head) or last glyphs, at most TAIL; *count of them */
static int glyph_xs(Obj *o, int head, double *xs, int *count) {
    double scale = o->size / 1000;
    Py_ssize_t n = o->n, nk = o->nk, nc = o->nc;
    Py_ssize_t pairs = nk < nc ? nk : nc;
    /* dict(zip(cuts, kerns)): the last kern of each cut in the window asked */
    Py_ssize_t lo = head ? 0 : (n - TAIL > 0 ? n - TAIL : 0), hi = head ? (n < TAIL ? n : TAIL) : n;
    double kern[TAIL];
    int has[TAIL] = {0};
    for (Py_ssize_t j = 0; j < pairs; j++) {
        long long c = cut_at(o, j);
        if (c >= lo && c < hi) {
            kern[c - lo] = kern_at(o, j);
            has[c - lo] = 1;
        }
    }
    double a;
    if (head) {
        double x = 0.0;
        int k = 0;
        for (Py_ssize_t i = 0; i < hi; i++) {
            if (has[i]) x -= kern[i] * scale;
            xs[k++] = o->x + o->a * x;
            if (advance(o, CODE(o, i), &a)) return BAIL;
            x += a * scale;
        }
        *count = k;
        return 0;
    }
    double x = o->last_x, back[TAIL];
    int k = 0;
    back[k++] = o->x + o->a * x;
    Py_ssize_t stop = n - TAIL > 0 ? n - TAIL : 0;
    for (Py_ssize_t i = n - 1; i > stop; i--) {
        if (has[i - lo]) x += kern[i - lo] * scale;
        if (advance(o, CODE(o, i - 1), &a)) return BAIL;
        x -= a * scale;
        back[k++] = o->x + o->a * x;
    }
    for (int i = 0; i < k; i++) xs[i] = back[k - 1 - i];
    *count = k;
    return 0;
}

/* -- the layout's pieces --------------------------------------------------------------------- */

static int temp_piece(Layout *L, const Py_UCS4 *s, Py_ssize_t len) { /* temp.append(s) */
    if (L->tn == L->tcap) {
        Py_ssize_t cap = L->tcap * 2 + 16;
        Py_ssize_t *tpos = PyMem_Realloc(L->tpos, (size_t)cap * sizeof *tpos);
        if (tpos == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        L->tpos = tpos;
        L->tcap = cap;
    }
    L->tpos[L->tn++] = L->temp.len;
    return put(&L->temp, s, len);
}

static int out_piece(Layout *L, const Py_UCS4 *s, Py_ssize_t len) { /* out.append(s) */
    L->opos[0] = L->opos[1];
    L->opos[1] = L->out.len;
    L->on++;
    return put(&L->out, s, len);
}

static const Py_UCS4 SPACE[1] = {' '}, CRLF[2] = {'\r', '\n'};

static int is_special(Py_UCS4 c) { /* _SPECIAL: dropped or spelled out */
    return c == 0x02 || c == 0x03 || c == 0x93 || c == 0x94 || c == 0x96 || c == 0x97 || c == 0x98 || c == 0xfffe ||
           (c >= 0xfb00 && c <= 0xfb06);
}

static int close_line(Layout *L) { /* _close_line */
    if (L->tn == 0) return 0;
    Buf *sc = &L->scratch;
    sc->len = 0;
    if (grow(sc, L->temp.len) < 0) return -1;
    int special = 0;
    for (Py_ssize_t i = 0; i < L->temp.len; i++) { /* runs of spaces collapse to one */
        Py_UCS4 c = L->temp.s[i];
        if (c == ' ' && sc->len > 0 && sc->s[sc->len - 1] == ' ') continue;
        sc->s[sc->len++] = c;
        special |= is_special(c);
    }
    L->temp.len = 0;
    L->tn = 0;
    if (special) { /* controls dropped, ligatures spelled out (after the spaces collapsed, as the Python) */
        static const char *spelled[7] = {"ff", "fi", "fl", "ffi", "ffl", NULL, "st"};
        Buf line = {NULL, 0, 0};
        int rc = 0;
        for (Py_ssize_t i = 0; i < sc->len && rc == 0; i++) {
            Py_UCS4 c = sc->s[i];
            if (c >= 0xfb00 && c <= 0xfb06) {
                const char *w = spelled[c - 0xfb00];
                if (w == NULL) rc = BAIL; /* the long s ligature: Unsure */
                for (; w != NULL && *w && rc == 0; w++) {
                    Py_UCS4 u = (Py_UCS4)*w;
                    rc = put(&line, &u, 1);
                }
            } else if (!is_special(c)) {
                rc = put(&line, &c, 1);
            }
        }
        if (rc == 0 && line.len) {
            L->out_empty = 0;
            rc = out_piece(L, line.s, line.len);
        }
        PyMem_Free(line.s);
        return rc;
    }
    if (sc->len == 0) return 0;
    L->out_empty = 0;
    return out_piece(L, sc->s, sc->len);
}

static int is_hyphen(Layout *L, Py_UCS4 cur) { /* _is_hyphen */
    const Py_UCS4 *s;
    Py_ssize_t len;
    if (L->tn > 0 && L->temp.len > L->tpos[L->tn > 4 ? L->tn - 4 : 0]) {
        Py_ssize_t from = L->tpos[L->tn > 4 ? L->tn - 4 : 0];
        s = L->temp.s + from;
        len = L->temp.len - from;
    } else {
        Py_ssize_t from = L->on >= 2 ? L->opos[0] : 0;
        s = L->out.s + from;
        len = L->out.len - from;
    }
    while (len > 0 && s[len - 1] == ' ') len--;
    if (len == 0 || (s[len - 1] != '-' && s[len - 1] != 0xad)) return 0;
    return len > 1 && Py_UNICODE_ISALPHA(s[len - 2]) && Py_UNICODE_ISALNUM(cur);
}

/* -- the writing direction of one-glyph objects (FindTextlineFlowOrientation) ----------------- */

typedef struct {
    long long a, b;
} Span;

static int span_order(const void *x, const void *y) {
    const Span *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

/* the length of the union of the spans, each within [0, page]: on a page of a usual size by
 * counting the unit cells some span covers (no sort: the same integer); else sorted and merged */
static long long covered(Span *spans, Py_ssize_t n, long long page) {
    int32_t *starts = page >= 0 && page <= (1 << 16) && n < (1 << 30) ? PyMem_Calloc((size_t)page + 1, sizeof *starts) : NULL;
    if (starts != NULL) {
        long long total = 0;
        int32_t open = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (spans[i].a < 0 || spans[i].b > page || spans[i].a >= spans[i].b) { /* clamped: never */
                PyMem_Free(starts);
                starts = NULL;
                break;
            }
            starts[spans[i].a]++;
            starts[spans[i].b]--;
        }
        if (starts != NULL) {
            for (long long k = 0; k < page; k++) {
                open += starts[k];
                total += open > 0;
            }
            PyMem_Free(starts);
            return total;
        }
    }
    qsort(spans, (size_t)n, sizeof *spans, span_order);
    long long total = 0, end = 0;
    int has_end = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long a = spans[i].a, b = spans[i].b;
        if (!has_end || a > end) {
            total += b - a;
            end = b;
            has_end = 1;
        } else if (b > end) {
            total += b - end;
            end = b;
        }
    }
    return total;
}

static int clamp_int(double v, long long page, long long *out) { /* int(min(max(v, 0), page)) */
    double c = pmin(pmax(v, 0.0), (double)page);
    if (isnan(c)) return BAIL;
    *out = (long long)c;
    return 0;
}

/* _direction: *dir 'H', 'V' or 'N' */
static int direction(Layout *L, double margin, Span *xs, Span *ys, int *dir) {
    long long page_w = (long long)L->width, page_h = (long long)L->height;
    double line_height = 0.0;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < L->nobjs; i++) {
        Obj *o = &L->objs[i];
        if (o->holder != 0) continue;
        double em = o->size * o->a;
        double left = o->x - margin * em, right = o->x + o->a * o->end_x + margin * em;
        double bottom = o->y + o->d * o->size * o->fi->descent / 1000 - margin * em;
        double top = o->y + o->d * o->size * o->fi->ascent / 1000 + margin * em;
        long long min_h, max_h, min_v, max_v;
        if (clamp_int(left, page_w, &min_h) || clamp_int(right, page_w, &max_h) || clamp_int(bottom, page_h, &min_v) ||
            clamp_int(top, page_h, &max_v))
            return BAIL;
        if (min_h >= max_h || min_v >= max_v) continue;
        xs[n].a = min_h, xs[n].b = max_h;
        ys[n].a = min_v, ys[n].b = max_v;
        n++;
        if (line_height <= 0) line_height = top - bottom;
    }
    if (n == 0) {
        *dir = 'N';
        return 0;
    }
    long long start_h = xs[0].a, end_h = xs[0].b, start_v = ys[0].a, end_v = ys[0].b;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (xs[i].a < start_h) start_h = xs[i].a;
        if (xs[i].b > end_h) end_h = xs[i].b;
        if (ys[i].a < start_v) start_v = ys[i].a;
        if (ys[i].b > end_v) end_v = ys[i].b;
    }
    double twice = 2 * line_height;
    if (isnan(twice) || isinf(twice)) return BAIL; /* int() of a NaN or an infinity raises */
    /* int() of a larger one is a larger int than any span on the page (at most 9e15, above): these
     * compare with the spans as it would */
    long long dbl = twice >= 9e15 ? (long long)9e15 : twice <= -9e15 ? -(long long)9e15 : (long long)twice;
    if (end_v - start_v < dbl) {
        *dir = 'H';
        return 0;
    }
    if (end_h - start_h < dbl) {
        *dir = 'V';
        return 0;
    }
    if (end_h == start_h || end_v == start_v) return BAIL;
    double fill_h = (double)covered(xs, n, page_w) / (double)(end_h - start_h);
    if (fill_h > 0.8) {
        *dir = 'H';
        return 0;
    }
    double fill_v = (double)covered(ys, n, page_h) / (double)(end_v - start_v);
    *dir = fill_h > fill_v ? 'H' : fill_h < fill_v ? 'V' : 'N';
    return 0;
}

static int flow_direction(Layout *L) { /* _flow_direction, into L->line_dir */
    if (!(L->width < 9e15 && L->height < 9e15)) return BAIL;
    Span *xs = PyMem_Malloc((size_t)(L->nobjs + 1) * sizeof *xs), *ys = PyMem_Malloc((size_t)(L->nobjs + 1) * sizeof *ys);
    int rc = 0, first = 0, second = 0;
    if (xs == NULL || ys == NULL) {
        PyErr_NoMemory();
        rc = -1;
    }
    if (rc == 0) rc = direction(L, 0.0, xs, ys, &first);
    if (rc == 0) rc = direction(L, 0.1, xs, ys, &second);
    PyMem_Free(xs);
    PyMem_Free(ys);
    if (rc == 0) L->line_dir = first == 'H' && second == 'H' ? 'H' : 'N';
    return rc;
}

static int mode(Layout *L, Obj *o, int *out) { /* _mode: 'H', 'V', 'U' or 'N' (None) */
    if (o->n <= 1) {
        if (!L->line_dir) {
            int rc = flow_direction(L);
            if (rc) return rc;
        }
        *out = L->line_dir;
        return 0;
    }
    *out = fabs(o->a * o->last_x) <= 0.0001 ? 'U' : 'H';
    return 0;
}

/* -- the objects each holder (page or form) drew last: _seen ---------------------------------- */

static int seen_of(Layout *L, long long holder, Seen **out) {
    if (L->seen_used * 2 >= L->seen_cap) {
        Py_ssize_t cap = L->seen_cap ? L->seen_cap * 2 : 16;
        Seen *table = PyMem_Calloc((size_t)cap, sizeof *table);
        if (table == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < L->seen_cap; i++) {
            if (!L->seen[i].used) continue;
            size_t h = (size_t)((unsigned long long)L->seen[i].holder * 0x9E3779B97F4A7C15ULL) % (size_t)cap;
            while (table[h].used) h = (h + 1) % (size_t)cap;
            table[h] = L->seen[i];
        }
        PyMem_Free(L->seen);
        L->seen = table;
        L->seen_cap = cap;
    }
    size_t h = (size_t)((unsigned long long)holder * 0x9E3779B97F4A7C15ULL) % (size_t)L->seen_cap;
    while (L->seen[h].used && L->seen[h].holder != holder) h = (h + 1) % (size_t)L->seen_cap;
    if (!L->seen[h].used) {
        L->seen[h].used = 1;
        L->seen[h].holder = holder;
        L->seen[h].n = 0;
        L->seen_used++;
    }
    *out = &L->seen[h];
    return 0;
}

static int same_codes(Obj *p, Obj *q) {
    if (p->n != q->n) return 0;
    if (p->kind == q->kind) return memcmp(p->codes, q->codes, (size_t)(p->n * p->kind)) == 0;
    for (Py_ssize_t i = 0; i < p->n; i++)
        if (CODE(p, i) != CODE(q, i)) return 0;
    return 1;
}

static int same_as_recent(Layout *L, Obj *o, Seen *seen) { /* _same_as_recent: BAIL where it raises */
    Py_ssize_t from = seen->n > SEEN ? seen->n - SEEN : 0;
    for (Py_ssize_t k = from; k < seen->n; k++) {
        Obj *other = &L->objs[seen->at[k % SEEN]];
        if (!same_codes(other, o)) continue;
        Extent e = extent(L, other), f = extent(L, o);
        if (f.lo > e.hi || e.lo > f.hi) continue;
        int32_t w;
        if (char_width(other, CODE(other, other->n - 1), &w)) return BAIL;
        double reach = 0.9 * w * other->size / 1000;
        double span = pmax(other->end_x * other->a, other->size * 2);
        if (fabs(o->x - other->x) <= reach + EPSILON && fabs(o->y - other->y) <= span / 8 + EPSILON) return BAIL;
    }
    return 0;
}

/* -- second pass: the text page's characters --------------------------------------------------- */

static int kerning_space(Obj *o, Py_UCS4 code, double spacing, int *out) { /* _kerning_space */
    FontInfo *f = o->fi;
    int32_t w;
    if (code >= (Py_UCS4)f->natural) return BAIL; /* widths.get(code) past the code space: not modelled */
    width_or(f, code, 0, 1, &w);
    double by_glyph = normalize((double)w, 300, 500, 700) / 1000;
    double candidates[2];
    int n = 0;
    if (f->has_space_code) {
        width_or(f, f->space_code, 0, 1, &w);
        double space = (double)w / 1000;
        candidates[n++] = 0 < space && space <= 1.0 / 3 ? space / 2 : by_glyph;
    } else {
        candidates[n++] = by_glyph;
        if (width_or(f, 0, f->default_width, f->has_default, &w))
            candidates[n++] = 0 < w && w <= 333 ? (double)w / 2000 : by_glyph;
    }
    int decided = -1;
    for (int i = 0; i < n; i++) {
        double threshold = candidates[i];
        if (threshold != 0.0 && fabs(spacing - threshold) < EPSILON / pmax(o->size, 1.0)) return BAIL;
        int decision = threshold != 0.0 && spacing >= threshold;
        if (decided >= 0 && decision != decided) return BAIL;
        decided = decision;
    }
    *out = decided;
    return 0;
}

/* _kerned: the object's text into temp, a space at each TJ gap wide enough */
static int kerned(Layout *L, Obj *o) {
    const Py_UCS4 *text = TEXT(L, o);
    int one_each = o->tn == o->n;
    Py_ssize_t start = 0, measured = 0, measured_len = 0;
    Py_ssize_t nk = o->nk, nc = o->nc, pairs = nk < nc ? nk : nc;
    Py_ssize_t pieces = 0; /* how many pieces this object put in temp so far */
    for (Py_ssize_t j = 0; j < pairs; j++) {
        double k = kern_at(o, j);
        if (k >= 0) continue;
        long long cut = cut_at(o, j);
        Py_ssize_t at;
        if (one_each) {
            at = (Py_ssize_t)cut;
        } else {
            if (cut < measured) return BAIL;
            for (Py_ssize_t i = measured; i < cut; i++) measured_len += o->fi->tlen[CODE(o, i)];
            measured = (Py_ssize_t)cut;
            at = measured_len;
        }
        /* text[start:at], as Python slices */
        Py_ssize_t b0 = start < o->tn ? start : o->tn, b1 = at < o->tn ? at : o->tn;
        if (b1 < b0) b1 = b0;
        Py_UCS4 tail;
        if (b1 > b0) tail = text[b1 - 1];
        else if (pieces) tail = ' '; /* pieces[-1] is the space put after a piece */
        else if (L->tn) {
            if (L->temp.len == L->tpos[L->tn - 1]) return BAIL; /* temp[-1][-1] of an empty string: IndexError */
            tail = L->temp.s[L->temp.len - 1];
        } else {
            tail = 0;
        }
        if (!tail || tail == ' ') continue;
        if (cut >= o->n) return BAIL; /* codes[cut]: IndexError */
        int space;
        int rc = kerning_space(o, CODE(o, cut), -k / 1000, &space);
        if (rc) return rc;
        if (!space) continue;
        if (temp_piece(L, text + b0, b1 - b0) < 0 || temp_piece(L, SPACE, 1) < 0) return -1;
        pieces += 2;
        start = at;
    }
    Py_ssize_t b0 = start < o->tn ? start : o->tn;
    return temp_piece(L, text + b0, o->tn - b0) < 0 ? -1 : 0;
}

static int vertical_overlap(Layout *L, Obj *o, Obj *prev) { /* _vertical_overlap: 1 True, 0 False, 2 None */
    Extent e = extent(L, o), p = extent(L, prev);
    if (e.hi - e.lo <= 4.5 || p.hi - p.lo <= 4.5) return 1;
    if (e.has_inner && p.has_inner && pmin(e.in_hi, p.in_hi) > pmax(e.in_lo, p.in_lo)) return 1;
    if (e.lo > p.hi || p.lo > e.hi) {
        if (e.has_inner && p.has_inner && e.in_hi - e.in_lo > 4.5 && p.in_hi - p.in_lo > 4.5) return 0;
    }
    return 2;
}

static int inside(Layout *L, double x, double y, Obj *o) { /* _inside: 1 True, 0 False, 2 None */
    if (!(0 <= x && x <= 1000)) return 0;
    Extent e = extent(L, o);
    if (y < e.lo - EPSILON || y > e.hi + EPSILON) return 0;
    if (e.has_inner && e.in_lo <= y && y <= e.in_hi) return 1;
    return 2;
}

static int space_between(double pos_x, double last_pos, double this_width, double last_width, double threshold,
                         int *out) { /* _space_between */
    int v;
    if (above(fabs(last_pos + last_width - pos_x), threshold, &v)) return BAIL;
    if (!v) {
        *out = 0;
        return 0;
    }
    double threshold_pos = threshold + last_width;
    double difference = pos_x - last_pos;
    if (above(fabs(difference), threshold_pos, &v)) return BAIL;
    if (v) {
        *out = 1;
        return 0;
    }
    if (pos_x < 0) {
        if (above(-threshold_pos, difference, &v)) return BAIL;
        if (v) {
            *out = 1;
            return 0;
        }
    }
    return above(difference, this_width + last_width, out);
}

enum { JOIN_NONE, JOIN_BREAK, JOIN_SPACE };

static int join(Layout *L, Obj *o, int *out) { /* _join */
    Obj *prev = L->last_char ? L->last_char : L->prev;
    int m, rc;
    if ((rc = mode(L, o, &m))) return rc;
    if (m == 'U' && (rc = mode(L, prev, &m))) return rc;
    if (m != 'H' && m != 'U') return BAIL;
    Py_UCS4 cur = TEXT(L, o)[0];
    if (prev->a == 0.0 || prev->d == 0.0) return BAIL; /* ZeroDivisionError */
    double last_pos = prev->last_x;
    int32_t last_w, this_w;
    if (char_width(prev, CODE(prev, prev->n - 1), &last_w) || char_width(o, CODE(o, 0), &this_w)) return BAIL;
    double last_width = fabs(last_w * prev->size / 1000), this_width = fabs(this_w * o->size / 1000);
    double threshold = pmax(last_width, this_width) / 4;
    double pos_x = (o->x - prev->x) / prev->a, pos_y = (o->y - prev->y) / prev->d;
    double reverse_scale = (1 / prev->a + 1 / prev->d) / 2;
    if (last_width < this_width) threshold *= reverse_scale;
    if (m == 'H') {
        int overlap = vertical_overlap(L, o, prev);
        int newline, v;
        if (above(pos_y, threshold * 2, &v)) return BAIL;
        if (!v && above(-threshold * 3, pos_y, &v)) return BAIL;
        newline = v && (fabs(pos_y) >= 1 || fabs(pos_y) > fabs(pos_x));
        if (newline && prev->n > 1 && prev->last_x > 0) {
            int in1 = inside(L, o->x, o->y, prev), in2 = inside(L, prev->x, prev->y, o);
            if (in1 == 1 || in2 == 1) newline = 0;
            else if (in1 == 2 || in2 == 2) return BAIL;
        }
        if (overlap == 0) newline = 1;
        else if (overlap == 2 && !newline) return BAIL;
        if (newline) {
            if (is_hyphen(L, cur)) return BAIL;
            *out = JOIN_BREAK;
            return 0;
        }
    }
    if (o->n == 1 && (cur == '-' || cur == 0xad) && is_hyphen(L, cur)) return BAIL;
    if (cur == ' ' || TEXT(L, prev)[prev->tn - 1] == ' ') {
        *out = JOIN_NONE;
        return 0;
    }
    double threshold2 = normalize((double)(last_w > this_w ? last_w : this_w), 400, 700, 800);
    if (last_w >= this_w) threshold2 *= fabs(prev->size);
    else threshold2 *= fabs(o->size) * (o->a + o->d) / 2 * reverse_scale;
    threshold2 /= 1000;
    if ((1.4879 < threshold2 && threshold2 < 1.4881) || (1.38999 < threshold2 && threshold2 < 1.39001))
        threshold2 *= 1.5;
    int space;
    if ((rc = space_between(pos_x, last_pos, this_width, last_width, threshold2, &space))) return rc;
    *out = space ? JOIN_SPACE : JOIN_NONE;
    return 0;
}

static int place(Layout *L, Obj *o) { /* _place */
    int rc;
    if (L->prev != NULL) {
        if (L->last_char != NULL && L->last_char->id != L->prev->id && L->last_char->holder != L->prev->holder)
            return BAIL;
        int result;
        if ((rc = join(L, o, &result))) return rc;
        if (result == JOIN_BREAK) {
            if ((rc = close_line(L))) return rc;
            if (!L->out_empty && out_piece(L, CRLF, 2) < 0) return -1;
        } else if (result == JOIN_SPACE && L->any_char) {
            if (temp_piece(L, SPACE, 1) < 0) return -1;
        }
    }
    L->prev = o;
    if (o->dense) return BAIL;
    if (L->tn) { /* the repeated-glyph test against the line so far: only when surely far */
        double limit = 0.07 * o->size * o->a + EPSILON;
        int far = o->x >= L->line_right + limit || o->y >= L->line_top + limit || o->y <= L->line_bottom - limit;
        if (!far) {
            int any = 0;
            Py_ssize_t head = o->n < TAIL ? o->n : TAIL;
            for (Py_ssize_t i = 0; i < head && !any; i++)
                for (int j = 0; j < L->ntail && !any; j++)
                    any = L->tail[j].font == o->font && L->tail[j].code == CODE(o, i);
            if (any) {
                double xs[TAIL];
                int count;
                if (glyph_xs(o, 1, xs, &count)) return BAIL;
                limit -= 2 * EPSILON;
                for (int i = 0; i < count; i++)
                    for (int j = 0; j < L->ntail; j++) {
                        Glyph *g = &L->tail[j];
                        if (g->font == o->font && g->code == CODE(o, i) && fabs(xs[i] - g->x) < limit + EPSILON &&
                            fabs(o->y - g->y) < limit + EPSILON)
                            return BAIL;
                    }
            }
        }
        L->line_top = pmax(L->line_top, o->y);
        L->line_bottom = pmin(L->line_bottom, o->y);
    } else {
        L->line_top = L->line_bottom = o->y;
        L->line_right = o->x;
        L->ntail = 0;
    }
    L->line_right = pmax(L->line_right, o->x + o->a * o->last_x);
    double xs[TAIL];
    int count;
    if (glyph_xs(o, 0, xs, &count)) return BAIL;
    Glyph merged[2 * TAIL];
    int k = 0;
    for (int j = 0; j < L->ntail; j++) merged[k++] = L->tail[j];
    for (int i = 0; i < count; i++) {
        Glyph g = {o->font, CODE(o, o->n - count + i), xs[i], o->y};
        merged[k++] = g;
    }
    int from = k > TAIL ? k - TAIL : 0;
    L->ntail = k - from;
    memcpy(L->tail, merged + from, (size_t)L->ntail * sizeof *merged);
    if (o->nk && o->kmin <= -1000 * o->fi->least_space_gap) {
        if ((rc = kerned(L, o))) return rc;
    } else if (temp_piece(L, TEXT(L, o), o->tn) < 0) {
        return -1;
    }
    L->any_char = 1;
    L->last_char = o;
    return 0;
}

/* -- first pass: one line's objects sorted by x -------------------------------------------------- */

static int place_line(Layout *L) {
    for (Py_ssize_t i = 0; i < L->nline; i++) {
        int rc = place(L, &L->objs[L->line[i]]);
        if (rc) return rc;
    }
    L->nline = 0;
    return 0;
}

static int gather(Layout *L, Py_ssize_t index) { /* _gather */
    Obj *o = &L->objs[index];
    const Py_UCS4 *text = TEXT(L, o);
    int blank = o->n == 1 && o->tn > 0;
    for (Py_ssize_t i = 0; i < o->tn && blank; i++) blank = Py_UNICODE_ISSPACE(text[i]);
    if (blank && !(o->tn == 1 && text[0] == ' ')) return BAIL;
    Seen *seen;
    if (seen_of(L, o->holder, &seen) < 0) return -1;
    if (!blank && same_as_recent(L, o, seen)) return BAIL;
    seen->at[seen->n % SEEN] = index;
    seen->n++;
    if (blank) return 0;
    if (L->nline == 0) {
        L->line[L->nline++] = index;
        return 0;
    }
    if (L->nline >= MAX_LINE_OBJECTS) return BAIL;
    Obj *prev = &L->objs[L->line[L->nline - 1]];
    int32_t pw, tw;
    if (char_width(prev, CODE(prev, prev->n - 1), &pw) || char_width(o, CODE(o, 0), &tw)) return BAIL;
    double prev_width = pw * prev->size / 1000 * (prev->a + prev->d) / 2;
    double this_width = tw * o->size / 1000 * (o->a + o->d) / 2;
    double threshold = pmax(prev_width, this_width) / 4;
    int v;
    if (above(fabs(o->y - prev->y) * L->sy, threshold * 2, &v)) return BAIL;
    if (v) {
        int rc = place_line(L);
        if (rc) return rc;
        L->line[L->nline++] = index;
        return 0;
    }
    Py_ssize_t i;
    for (i = L->nline; i > 0; i--) {
        Obj *other = &L->objs[L->line[i - 1]];
        if (fabs(o->x - other->x) * L->sx < EPSILON && o->x != other->x) return BAIL;
        if (o->x >= other->x) break;
    }
    memmove(L->line + i + 1, L->line + i, (size_t)(L->nline - i) * sizeof *L->line);
    L->line[i] = index;
    L->nline++;
    return 0;
}

static int is_rtl(Py_UCS4 c) {
    return (c >= 0x590 && c <= 0x8ff) || (c >= 0xfb1d && c <= 0xfdff) || (c >= 0xfe70 && c <= 0xfeff) ||
           (c >= 0x10800 && c <= 0x10fff) || (c >= 0x1e800 && c <= 0x1efff);
}

static int check(Layout *L) {
    PyObject *res = PyObject_CallNoArgs(L->check_time);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

static int lay_out(Layout *L);

/* the page: 0 (L->out holds its text), BAIL, -1 */
static int layout(Layout *L, PyObject *objects) {
    Py_ssize_t n = PyList_GET_SIZE(objects);
    L->objs = PyMem_Calloc((size_t)n + 1, sizeof *L->objs);
    if (L->objs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i && i % CHECK_EVERY == 0 && check(L) < 0) return -1;
        PyObject *py = PyList_GET_ITEM(objects, i);
        Py_INCREF(py);
        L->objs[i].py = py;
        L->nobjs = i + 1;
        int rc = read_object(L, py, &L->objs[i]);
        L->objs[i].py = py; /* read_object clears it first: kept for the release */
        if (rc) return rc;
    }
    return lay_out(L);
}

/* a record of _pdftext's page read as read_object reads a TextObject: 0, BAIL, -1 */
static int read_record(Layout *L, const PdfPage *page, const PdfRecord *rec, Obj *o) {
    memset(o, 0, sizeof *o);
    /* every offset checked against the page's arrays before it is read */
    if (rec->font == NULL || (rec->kind != 1 && rec->kind != 2) || rec->n <= 0 || rec->codes < 0 || rec->nk < 0 ||
        rec->kerns < 0 || rec->nc < 0 || rec->cuts < 0 || rec->codes > page->codes_len ||
        rec->n > (page->codes_len - rec->codes) / rec->kind || rec->kerns > page->kerns_len ||
        rec->nk > page->kerns_len - rec->kerns || rec->cuts > page->cuts_len || rec->nc > page->cuts_len - rec->cuts ||
        rec->codes % rec->kind) /* two-byte codes are read as Py_UCS2: aligned */
        return BAIL;
    o->id = rec;
    o->font = rec->font;
    o->kind = rec->kind == 1 ? PyUnicode_1BYTE_KIND : PyUnicode_2BYTE_KIND;
    o->codes = page->codes + rec->codes;
    o->n = rec->n;
    o->holder = rec->holder;
    o->dense = rec->dense != 0;
    o->size = rec->size;
    o->last_x = rec->last_x;
    o->end_x = rec->end_x;
    o->a = rec->a;
    o->d = rec->d;
    o->x = rec->x;
    o->y = rec->y;
    o->kern = rec->nk ? page->kerns + rec->kerns : NULL; /* nk and nc checked against the arrays above */
    o->cut = rec->nc ? page->cuts + rec->cuts : NULL;
    o->nk = rec->nk;
    o->nc = rec->nc;
    for (Py_ssize_t i = 0; i < o->nk; i++) o->kmin = i == 0 ? o->kern[i] : pmin(o->kmin, o->kern[i]);
    for (Py_ssize_t i = 0; i < o->nc; i++)
        if (o->cut[i] < 0 || o->cut[i] > o->n) return BAIL;
    return finish_object(L, o);
}

/* the page from a _pdftext page of records (PDFPAGE_CAPSULE): 0, BAIL, -1 */
static int layout_records(Layout *L, const PdfPage *page) {
    L->objs = PyMem_Calloc((size_t)page->n + 1, sizeof *L->objs);
    if (L->objs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < page->n; i++) {
        if (i && i % CHECK_EVERY == 0 && check(L) < 0) return -1;
        L->nobjs = i + 1;
        int rc = read_record(L, page, &page->recs[i], &L->objs[i]);
        if (rc) return rc;
    }
    return lay_out(L);
}

/* the objects read: their text laid out into L->out (0), BAIL, -1 */
static int lay_out(Layout *L) {
    Py_ssize_t n = L->nobjs;
    Py_ssize_t next_check = CHECK_EVERY;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= next_check) {
            if (check(L) < 0) return -1;
            next_check = i + CHECK_EVERY;
        }
        /* the Python first tries a column of lines from here (_column), working out a step
         * from the line's one object: 1 / a and 1 / d */
        if (L->nline == 1 && (L->objs[L->line[0]].a == 0.0 || L->objs[L->line[0]].d == 0.0)) return BAIL;
        int rc = gather(L, i);
        if (rc) return rc;
    }
    int rc = place_line(L);
    if (rc || (rc = close_line(L))) return rc;
    for (Py_ssize_t i = 0; i < L->out.len; i++)
        if (is_rtl(L->out.s[i])) return BAIL;
    return 0;
}

/* the page's text from a finished layout (rc 0), None (BAIL) or NULL (an error); L's buffers freed */
static PyObject *finish(Layout *L, int rc) {
    PyObject *result = NULL;
    if (rc == 0) result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, L->out.s ? L->out.s : (Py_UCS4 *)SPACE, L->out.len);
    else if (rc == BAIL) result = Py_NewRef(Py_None);
    for (Py_ssize_t i = 0; i < L->nobjs; i++) Py_XDECREF(L->objs[i].py);
    PyMem_Free(L->objs);
    PyMem_Free(L->arena.s);
    PyMem_Free(L->temp.s);
    PyMem_Free(L->tpos);
    PyMem_Free(L->out.s);
    PyMem_Free(L->scratch.s);
    PyMem_Free(L->seen);
    return result;
}

static PyObject *pdflayout_text(PyObject *self, PyObject *args) {
    PyObject *objects;
    Layout L;
    memset(&L, 0, sizeof L);
    if (!PyArg_ParseTuple(args, "O!ddddO", &PyList_Type, &objects, &L.width, &L.height, &L.sx, &L.sy, &L.check_time))
        return NULL;
    if (TextObjectType == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_pdflayout.setup() first");
        return NULL;
    }
    L.out_empty = 1;
    Py_INCREF(objects);
    PyObject *result = finish(&L, layout(&L, objects));
    Py_DECREF(objects);
    return result;
}

static PyObject *pdflayout_records_text(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Layout L;
    memset(&L, 0, sizeof L);
    if (!PyArg_ParseTuple(args, "OddddO", &capsule, &L.width, &L.height, &L.sx, &L.sy, &L.check_time)) return NULL;
    PdfPage *page = PyCapsule_IsValid(capsule, PDFPAGE_CAPSULE) ? PyCapsule_GetPointer(capsule, PDFPAGE_CAPSULE) : NULL;
    if (page == NULL) {
        PyErr_SetString(PyExc_TypeError, "a page of records from _pdftext.records");
        return NULL;
    }
    L.out_empty = 1;
    Py_INCREF(capsule); /* the page's arrays live while the layout reads them, whatever check_time does */
    PyObject *result = finish(&L, layout_records(&L, page));
    Py_DECREF(capsule);
    return result;
}

static int offset_of(PyObject *type, const char *name, Py_ssize_t *out) {
    PyObject *d = PyObject_GetAttrString(type, name);
    if (d == NULL) return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
    if (ok) *out = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    if (!ok) PyErr_Format(PyExc_TypeError, "TextObject.%s is not a slot", name);
    return ok ? 0 : -1;
}

static PyObject *pdflayout_setup(PyObject *self, PyObject *args) {
    PyObject *text_object;
    if (!PyArg_ParseTuple(args, "O!", &PyType_Type, &text_object)) return NULL;
    for (int i = 0; i < NFIELDS; i++)
        if (offset_of(text_object, field_names[i], &field_offset[i]) < 0) return NULL;
    Py_INCREF(text_object);
    Py_XSETREF(TextObjectType, text_object);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", pdflayout_setup, METH_VARARGS, "setup(TextObject): the class whose slots the layout reads."},
    {"text", pdflayout_text, METH_VARARGS,
     "text(objects, width, height, sx, sy, check_time): PageLayout.text's page text, or None (the Python decides)."},
    {"records_text", pdflayout_records_text, METH_VARARGS,
     "records_text(page, width, height, sx, sy, check_time): text() of a page of _pdftext.records, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pdflayout", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pdflayout(void) {
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL;
    INTERN(s_two_byte, "two_byte")
    INTERN(s_widths, "widths")
    INTERN(s_default_width, "default_width")
    INTERN(s_advances, "advances")
    INTERN(s_table, "table")
    INTERN(s_space_code, "space_code")
    INTERN(s_least_space_gap, "least_space_gap")
    INTERN(s_ascent, "ascent")
    INTERN(s_descent, "descent")
    INTERN(s_cache, "_layout_tables")
#undef INTERN
    return PyModule_Create(&module);
}
