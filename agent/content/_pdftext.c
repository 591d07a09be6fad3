/* The content-stream loop of agent/content/pdf_content.py's ContentReader.run in C: the same
 * tokens (its _TOKEN and _LINE regexes matched by hand, byte for byte, with the same shortcuts
 * for a run of "(line) Tj T*", LibreOffice's "q r g b rg BT x y Td /F s Tf <..> Tj ET Q" and a TJ
 * of hex strings and numbers) and the same text and graphics state, so that the reader gives the
 * very text objects the Python loop gives, or raises where it raises.
 *
 * What is rare or needs the document (a font's lookup, a form, marked-content properties, a
 * literal string with escapes or nested parentheses) and what makes a text object (ContentReader's
 * _show, _show_hex_array, _run_of_lines) stays in Python and is called back: the C replaces the
 * Python loop over tokens, which was most of the time on pages of short runs.
 *
 * Hostile input: every read is bounded by the data's length; no recursion here (forms recurse
 * through Python, which bounds their depth); the operand list, the q stack and the marked-content
 * stack keep the Python loop's limits (or grow with the data, never beyond it); reader.check_time()
 * is called every CHECK_EVERY tokens, as the Python loop does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <stdlib.h>
#include <stdint.h>
#include <math.h>
#include <limits.h>

#include "_pdfpage.h"

#define CHECK_EVERY 4096
#define MAX_OPERANDS 64
#define MAX_ARRAY 1000000
#define MAX_STACK 1000
#define MAX_WORD 255     /* pdf_content.MAX_WORD */
#define MAX_STRING 32767 /* pdf_content.MAX_STRING */
#define MAX_COORD 16384.0
#define MAX_TABLES 16 /* fonts with C tables in one run (a 2-byte font's is 320 KB): others go to Python */

static PyObject *Unsure, *NameType, *literal_string, *TextObjectType;
static PyObject *s_gs, *s_check_time, *s_font, *s_do, *s_has_actual_text, *s_show, *s_show_hex_array, *s_run_of_lines;
static PyObject *s_ctm, *s_font_attr, *s_size, *s_char_space, *s_word_space, *s_scale, *s_leading, *s_rise, *s_mode;
static PyObject *s_dict, *s_two_byte, *s_advances, *s_least_advance, *s_count, *s_codes, *s_objects, *s_min_codes;

/* byte classes: 1 white space, 2 delimiter (or white space): what ends a name or an operator */
static unsigned char cls[256];
#define IS_WS(c) (cls[(unsigned char)(c)] & 1)
#define IS_DELIM(c) (cls[(unsigned char)(c)] & 2)
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))

typedef struct {
    double ctm[6];
    PyObject *font; /* borrowed: every font is held by the run's font cache */
    double size, char_space, word_space, scale, leading, rise;
    long long mode;
} State;

static void multiply(const double m[6], const double n[6], double out[6]) {
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5];
    double A = n[0], B = n[1], C = n[2], D = n[3], E = n[4], F = n[5];
    out[0] = a * A + b * C;
    out[1] = a * B + b * D;
    out[2] = c * A + d * C;
    out[3] = c * B + d * D;
    out[4] = e * A + f * C + E;
    out[5] = e * B + f * D + F;
}

static void translate(double tx, double ty, double m[6]) { /* m = (1 0 0 1 tx ty) x m */
    double t[6] = {1.0, 0.0, 0.0, 1.0, tx, ty}, out[6];
    multiply(t, m, out);
    memcpy(m, out, sizeof out);
}

/* -- matching: each returns the offset after what it matched, or -1 ------------------------ */

/* Each matcher takes -1 (a failed match before it) and gives -1 back: no read outside [0, n). */
static Py_ssize_t skip_ws(const char *s, Py_ssize_t p, Py_ssize_t n) {
    if (p < 0) return -1;
    while (p < n && IS_WS(s[p])) p++;
    return p;
}

static Py_ssize_t ws1(const char *s, Py_ssize_t p, Py_ssize_t n) { /* [ws]++ */
    if (p < 0 || p >= n || !IS_WS(s[p])) return -1;
    return skip_ws(s, p, n);
}

static Py_ssize_t num(const char *s, Py_ssize_t p, Py_ssize_t n) { /* [+-]?+(?>\d+\.?\d*|\.\d+) */
    if (p < 0) return -1;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    if (p < n && IS_DIGIT(s[p])) {
        while (p < n && IS_DIGIT(s[p])) p++;
        if (p < n && s[p] == '.') {
            p++;
            while (p < n && IS_DIGIT(s[p])) p++;
        }
        return p;
    }
    if (p + 1 < n && s[p] == '.' && IS_DIGIT(s[p + 1])) {
        p += 2;
        while (p < n && IS_DIGIT(s[p])) p++;
        return p;
    }
    return -1;
}

static Py_ssize_t word(const char *s, Py_ssize_t p, Py_ssize_t n, const char *w) {
    if (p < 0) return -1;
    size_t len = strlen(w);
    if ((size_t)(n - p) < len || memcmp(s + p, w, len) != 0) return -1;
    return p + (Py_ssize_t)len;
}

static int ends_token(const char *s, Py_ssize_t p, Py_ssize_t n) { /* (?![^ws delims]) */
    return p >= 0 && (p >= n || IS_DELIM(s[p]));
}

static Py_ssize_t string_body(const char *s, Py_ssize_t p, Py_ssize_t n) { /* [^()\\]*+(?:\\.[^()\\]*+)*+ */
    while (p < n) {
        char c = s[p];
        if (c == '\\') {
            if (p + 1 >= n) break;
            p += 2;
        } else if (c == '(' || c == ')') {
            break;
        } else {
            p++;
        }
    }
    return p;
}

/* "(line) Tj T*" from the "(": the end, and the line's body in [*b0, *b1) */
static Py_ssize_t line_tj(const char *s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *b0, Py_ssize_t *b1) {
    if (p >= n || s[p] != '(') return -1;
    *b0 = p + 1;
    p = string_body(s, p + 1, n);
    *b1 = p;
    if (p >= n || s[p] != ')') return -1;
    p = skip_ws(s, p + 1, n);
    p = word(s, p, n, "Tj");
    if (p < 0) return -1;
    p = ws1(s, p, n);
    p = word(s, p, n, "T*");
    if (p < 0 || !ends_token(s, p, n)) return -1;
    return p;
}

/* (?:[ws]*+(?:<[hex]*+>|num))*+ : the end of the items */
static Py_ssize_t tj_items(const char *s, Py_ssize_t p, Py_ssize_t n) {
    for (;;) {
        Py_ssize_t q = skip_ws(s, p, n);
        if (q < n && s[q] == '<') {
            q++;
            while (q < n && IS_HEX(s[q])) q++;
            if (q >= n || s[q] != '>') return p;
            p = q + 1;
            continue;
        }
        q = num(s, q, n);
        if (q < 0 || !ends_token(s, q, n)) return p;
        p = q;
    }
}

/* "[items] TJ" from the "[": the end, and the items in [*b0, *b1) */
static Py_ssize_t hex_tj(const char *s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *b0, Py_ssize_t *b1) {
    *b0 = p + 1;
    p = tj_items(s, p + 1, n);
    *b1 = p;
    p = skip_ws(s, p, n);
    if (p < 0 || p >= n || s[p] != ']') return -1;
    p = word(s, skip_ws(s, p + 1, n), n, "TJ");
    if (p < 0 || !ends_token(s, p, n)) return -1;
    return p;
}

typedef struct {
    Py_ssize_t rgb_longest; /* the longest of the colour's three numbers */
    Py_ssize_t rx0, rx1, ry0, ry1, font0, font1, size0, size1, hex0, hex1, tj0, tj1;
} Run;

/* q r g b rg BT x y Td /F s Tf <..> Tj ET Q (or [..] TJ), from the "q" */
static Py_ssize_t office_run(const char *s, Py_ssize_t p, Py_ssize_t n, Run *r) {
    p = ws1(s, p + 1, n);
    r->rgb_longest = 0;
    for (int i = 0; i < 3; i++) {
        Py_ssize_t q = num(s, p, n);
        if (q - p > r->rgb_longest) r->rgb_longest = q - p;
        p = ws1(s, q, n);
    }
    p = ws1(s, word(s, p, n, "rg"), n);
    p = ws1(s, word(s, p, n, "BT"), n);
    r->rx0 = p;
    p = num(s, p, n);
    r->rx1 = p;
    p = ws1(s, p, n);
    r->ry0 = p;
    p = num(s, p, n);
    r->ry1 = p;
    p = ws1(s, p, n);
    p = word(s, p, n, "Td");
    if (p < 0) return -1;
    p = skip_ws(s, p, n);
    if (p < 0 || p >= n || s[p] != '/') return -1;
    r->font0 = ++p;
    while (p < n && !IS_DELIM(s[p])) p++;
    r->font1 = p;
    if (r->font1 == r->font0) return -1;
    p = ws1(s, p, n);
    r->size0 = p;
    p = num(s, p, n);
    r->size1 = p;
    p = ws1(s, p, n);
    p = word(s, p, n, "Tf");
    if (p < 0) return -1;
    p = skip_ws(s, p, n);
    r->hex0 = r->tj0 = -1;
    if (p < 0) return -1;
    if (p < n && s[p] == '<') {
        r->hex0 = ++p;
        while (p < n && IS_HEX(s[p])) p++;
        r->hex1 = p;
        if (p >= n || s[p] != '>') return -1;
        p = word(s, skip_ws(s, p + 1, n), n, "Tj");
    } else if (p < n && s[p] == '[') {
        r->tj0 = p + 1;
        p = tj_items(s, p + 1, n);
        r->tj1 = p;
        p = skip_ws(s, p, n);
        if (p < 0 || p >= n || s[p] != ']') return -1;
        p = word(s, skip_ws(s, p + 1, n), n, "TJ");
    } else {
        return -1;
    }
    if (p < 0) return -1;
    p = word(s, ws1(s, p, n), n, "ET");
    p = word(s, ws1(s, p, n), n, "Q");
    if (p < 0 || !ends_token(s, p, n)) return -1;
    return p;
}

/* -- values ---------------------------------------------------------------------------------- */

/* float(text) without strtod where that is sure to give the same double: at most 2**53 as digits
 * and at most 22 after the point, the one division of two exact doubles rounds as strtod does
 * (Clinger's fast path); 1 done, 0 not sure (strtod decides) */
static int fast_double(const char *s, Py_ssize_t len, double *out) {
    static const double powers[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    Py_ssize_t i = 0;
    int negative = 0, point = 0, after = 0, digits = 0;
    uint64_t m = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.' && !point) {
            point = 1;
            continue;
        }
        if (!IS_DIGIT(c) || m > 900719925474099ULL) return 0;
        m = m * 10 + (uint64_t)(c - '0');
        if (m > (1ULL << 53)) return 0;
        after += point;
        digits++;
    }
    if (!digits || after > 22) return 0;
    double v = (double)m / powers[after];
    *out = negative ? -v : v;
    return 1;
}

static int double_at(const char *s, Py_ssize_t len, double *out) { /* float(bytes), inf past the range: 0, -1 */
    if (fast_double(s, len, out)) return 0;
    char buf[64];
    char *text = len < (Py_ssize_t)sizeof buf ? buf : PyMem_Malloc((size_t)len + 1);
    if (text == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(text, s, (size_t)len);
    text[len] = 0;
    double v = PyOS_string_to_double(text, NULL, NULL);
    if (text != buf) PyMem_Free(text);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

static PyObject *float_of(const char *s, Py_ssize_t len) { /* float(bytes), inf past the range */
    double v;
    return double_at(s, len, &v) < 0 ? NULL : PyFloat_FromDouble(v);
}

static PyObject *number_of(const char *s, Py_ssize_t len) { /* float(text) if b"." in text else int(text) */
    if (memchr(s, '.', (size_t)len) != NULL) return float_of(s, len);
    if (len <= 18) {
        long long v = 0;
        Py_ssize_t i = 0;
        int negative = 0;
        if (s[0] == '+' || s[0] == '-') negative = s[i++] == '-';
        for (; i < len; i++) v = v * 10 + (s[i] - '0');
        return PyLong_FromLongLong(negative ? -v : v);
    }
    char *text = PyMem_Malloc((size_t)len + 1);
    if (text == NULL) return PyErr_NoMemory();
    memcpy(text, s, (size_t)len);
    text[len] = 0;
    PyObject *v = PyLong_FromString(text, NULL, 10);
    PyMem_Free(text);
    return v;
}

static int hex_value(char c) {
    if (IS_DIGIT(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

static PyObject *hex_bytes(const char *s, Py_ssize_t len) { /* pdf_objects.hex_string */
    Py_ssize_t digits = 0;
    for (Py_ssize_t i = 0; i < len; i++) digits += !IS_WS(s[i]);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (digits + 1) / 2);
    if (out == NULL) return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (IS_WS(s[i])) continue;
        int v = hex_value(s[i]);
        if (k % 2 == 0) o[k / 2] = (unsigned char)(v << 4);
        else o[k / 2] |= (unsigned char)v;
        k++;
    }
    return out;
}

static int bad_name(const char *s, Py_ssize_t len) { /* pdf_content._name: a #xx escape, or past PDFium's word */
    return len > MAX_WORD - 1 || memchr(s, '#', (size_t)len) != NULL;
}

static PyObject *name_of(const char *s, Py_ssize_t len) {
    PyObject *text = PyUnicode_DecodeLatin1(s, len, NULL);
    if (text == NULL) return NULL;
    PyObject *name = PyObject_CallOneArg(NameType, text);
    Py_DECREF(text);
    return name;
}

static int unsure(const char *why) {
    PyErr_SetString(Unsure, why);
    return -1;
}

/* _number: a float of an int or float operand, else Unsure */
static int number(PyObject *v, double *out) {
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        *out = PyLong_AsDouble(v);
        return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
    }
    return unsure("operand is not a number");
}

/* -- the reader ------------------------------------------------------------------------------ */

/* A font's advances as C arrays, for the fonts whose every advance is an int of 32 bits (the
 * others are left to Python: its sums of big ints or floats would round otherwise). */
typedef struct {
    PyObject *font; /* borrowed, as State.font */
    int usable;     /* 0: every show in this font goes to Python */
    int two_byte;
    int32_t *adv;   /* by code: the advance, where has[code] */
    unsigned char *has;
    long long least_advance;
} FontTable;

typedef struct {
    PyObject *reader, *data, *resources, *pystate, *holder, *depth;
    const char *s;
    Py_ssize_t n;
    State st, synced;
    int synced_once;
    PyObject *fonts; /* name -> Font, this run's lookups (resources do not change within it) */
    PyObject **ops;
    Py_ssize_t nops, cap_ops;
    PyObject *array;
    State *stack;
    Py_ssize_t nstack, cap_stack;
    char *marked;
    Py_ssize_t nmarked, cap_marked, marked_true;
    double tm[6], tlm[6];
    PyObject *objects; /* reader.objects, where the C adds its text objects */
    double min_codes;
    long long max_objects;
    FontTable tables[MAX_TABLES];
    int ntables;
    unsigned char *buf; /* a show's codes (1 or 2 bytes each) */
    Py_ssize_t cap_buf;
    int in_text;
    int tm_is_tlm; /* Python's tm and tlm are the same tuple: equal even holding NaN */
    PyObject *run_font; /* the font the last office run named (borrowed from fonts), its name at s[run_font0..) */
    Py_ssize_t run_font0, run_font_len;
    long long count, codes; /* reader.count and reader.codes, kept here and written back around callbacks */
    int counted;            /* count and codes read from the reader */
    PdfPage *page;          /* records(): the text objects go here as C records, not into reader.objects */
    long long holder_value; /* records(): the holder as a C integer */
} Reader;

static int to_objects(Reader *r);

static int push_op(Reader *r, PyObject *v) { /* steals v */
    if (r->nops == r->cap_ops) {
        Py_ssize_t cap = r->cap_ops ? r->cap_ops * 2 : 16;
        PyObject **ops = PyMem_Realloc(r->ops, (size_t)cap * sizeof *ops);
        if (ops == NULL) {
            Py_DECREF(v);
            PyErr_NoMemory();
            return -1;
        }
        r->ops = ops;
        r->cap_ops = cap;
    }
    r->ops[r->nops++] = v;
    return 0;
}

static void clear_ops(Reader *r) {
    while (r->nops > 0) Py_DECREF(r->ops[--r->nops]);
}

static PyObject *tuple6(const double m[6]) {
    PyObject *t = PyTuple_New(6);
    if (t == NULL) return NULL;
    for (int i = 0; i < 6; i++) {
        PyObject *f = PyFloat_FromDouble(m[i]);
        if (f == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, f);
    }
    return t;
}

static int read6(PyObject *t, double m[6]) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 6) {
        PyErr_SetString(PyExc_TypeError, "a matrix of 6");
        return -1;
    }
    for (int i = 0; i < 6; i++) {
        m[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(t, i));
        if (m[i] == -1.0 && PyErr_Occurred()) return -1;
    }
    return 0;
}

static int set_float(PyObject *o, PyObject *attr, double v) {
    PyObject *f = PyFloat_FromDouble(v);
    if (f == NULL) return -1;
    int rc = PyObject_SetAttr(o, attr, f);
    Py_DECREF(f);
    return rc;
}

static int differs(double a, double b) { return memcmp(&a, &b, sizeof a) != 0; }

/* the Python _State the callbacks read, brought up to the C state's values */
static int sync_state(Reader *r) {
    State *s = &r->st, *y = &r->synced;
    int all = !r->synced_once;
    if (all || memcmp(s->ctm, y->ctm, sizeof s->ctm) != 0) {
        PyObject *t = tuple6(s->ctm);
        if (t == NULL) return -1;
        int rc = PyObject_SetAttr(r->pystate, s_ctm, t);
        Py_DECREF(t);
        if (rc < 0) return -1;
    }
    if ((all || s->font != y->font) && PyObject_SetAttr(r->pystate, s_font_attr, s->font ? s->font : Py_None) < 0)
        return -1;
#define SYNC(field, attr) \
    if ((all || differs(s->field, y->field)) && set_float(r->pystate, attr, s->field) < 0) return -1;
    SYNC(size, s_size)
    SYNC(char_space, s_char_space)
    SYNC(word_space, s_word_space)
    SYNC(scale, s_scale)
    SYNC(leading, s_leading)
    SYNC(rise, s_rise)
#undef SYNC
    if (all || s->mode != y->mode) {
        PyObject *m = PyLong_FromLongLong(s->mode);
        if (m == NULL) return -1;
        int rc = PyObject_SetAttr(r->pystate, s_mode, m);
        Py_DECREF(m);
        if (rc < 0) return -1;
    }
    r->synced = *s;
    r->synced_once = 1;
    return 0;
}

static int counts_in(Reader *r);
static int counts_out(Reader *r);

static PyObject *font_named(Reader *r, PyObject *name) {
    PyObject *font = PyDict_GetItemWithError(r->fonts, name);
    if (font != NULL || PyErr_Occurred()) return font;
    font = PyObject_CallMethodObjArgs(r->reader, s_font, r->resources, name, NULL);
    if (font == NULL) return NULL;
    int rc = PyDict_SetItem(r->fonts, name, font);
    Py_DECREF(font);
    return rc < 0 ? NULL : font; /* borrowed: the dict holds it */
}

/* a show callback: tm = reader.method(state, tm, arg, holder, actual_text) */
static int show(Reader *r, PyObject *method, const double tm[6], PyObject *arg, int actual_text, double out[6]) {
    if (r->page != NULL && to_objects(r) < 0) return -1;
    if (sync_state(r) < 0) return -1;
    PyObject *t = tuple6(tm);
    if (t == NULL) return -1;
    if (counts_out(r) < 0) {
        Py_DECREF(t);
        return -1;
    }
    PyObject *res = PyObject_CallMethodObjArgs(r->reader, method, r->pystate, t, arg, r->holder,
                                               actual_text ? Py_True : Py_False, NULL);
    Py_DECREF(t);
    if (res != NULL && counts_in(r) < 0) Py_CLEAR(res);
    if (res == NULL) return -1;
    int rc = out ? read6(res, out) : 0;
    Py_DECREF(res);
    return rc;
}

static int run_of_lines(Reader *r, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t *pos) {
    if (r->page != NULL && to_objects(r) < 0) return -1;
    const char *s = r->s;
    Py_ssize_t n = r->n;
    PyObject *raw = PyList_New(0);
    if (raw == NULL) return -1;
    for (;;) {
        PyObject *line = PyBytes_FromStringAndSize(s + b0, b1 - b0);
        if (line == NULL || PyList_Append(raw, line) < 0) {
            Py_XDECREF(line);
            Py_DECREF(raw);
            return -1;
        }
        Py_DECREF(line);
        Py_ssize_t end = line_tj(s, skip_ws(s, *pos, n), n, &b0, &b1);
        if (end < 0) break;
        *pos = end;
    }
    if (sync_state(r) < 0) {
        Py_DECREF(raw);
        return -1;
    }
    PyObject *tm = tuple6(r->tm), *tlm = r->tm_is_tlm ? (Py_XINCREF(tm), tm) : tuple6(r->tlm);
    PyObject *res = NULL;
    if (tm != NULL && tlm != NULL && counts_out(r) == 0) {
        res = PyObject_CallMethodObjArgs(r->reader, s_run_of_lines, r->pystate, tm, tlm, raw, r->holder, NULL);
        if (res != NULL && counts_in(r) < 0) Py_CLEAR(res);
    }
    Py_XDECREF(tm);
    Py_XDECREF(tlm);
    Py_DECREF(raw);
    if (res == NULL) return -1;
    int rc = -1;
    if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2 && read6(PyTuple_GET_ITEM(res, 0), r->tm) == 0 &&
        read6(PyTuple_GET_ITEM(res, 1), r->tlm) == 0) {
        r->tm_is_tlm = PyTuple_GET_ITEM(res, 0) == PyTuple_GET_ITEM(res, 1);
        rc = 0;
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "_run_of_lines gives (tm, tlm)");
    }
    Py_DECREF(res);
    return rc;
}

/* -- text objects made in C: ContentReader._add for the common case ----------------------------
 * A show is taken here only where _add would surely make its text object (a font with a C table,
 * plain text state, every code usable); anything else returns "not taken" before any change, and
 * the caller hands the show to Python as before. The arithmetic is _add's, in its order, on the
 * same doubles (ints of 32 bits summed exactly, as Python's sum of ints is). */

static int table_of(Reader *r, PyObject *font, FontTable **out) {
    *out = NULL;
    for (int i = 0; i < r->ntables; i++)
        if (r->tables[i].font == font) {
            *out = &r->tables[i];
            return 0;
        }
    if (r->ntables == MAX_TABLES) return 0;
    FontTable *t = &r->tables[r->ntables++];
    memset(t, 0, sizeof *t);
    t->font = font;
    *out = t;
    PyObject *v = PyObject_GetAttr(font, s_two_byte);
    if (v == NULL) return -1;
    int two = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (two < 0) return -1;
    t->two_byte = two;
    Py_ssize_t size = two ? 65536 : 256;
    t->adv = PyMem_Calloc((size_t)size, sizeof *t->adv);
    t->has = PyMem_Calloc((size_t)size, 1);
    if (t->adv == NULL || t->has == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *advances = PyObject_GetAttr(font, s_advances);
    if (advances == NULL) return -1;
    int usable = PyDict_CheckExact(advances);
    PyObject *key, *value;
    Py_ssize_t at = 0;
    while (usable && PyDict_Next(advances, &at, &key, &value)) {
        if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) != 1 || !PyLong_CheckExact(value)) {
            usable = 0;
            break;
        }
        Py_UCS4 code = PyUnicode_READ_CHAR(key, 0);
        int overflow;
        long long w = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (code >= (Py_UCS4)size || overflow || w < -2147483647LL || w > 2147483647LL) {
            usable = 0;
            break;
        }
        t->adv[code] = (int32_t)w;
        t->has[code] = 1;
    }
    Py_DECREF(advances);
    if (PyErr_Occurred()) return -1;
    v = PyObject_GetAttr(font, s_least_advance);
    if (v == NULL) return -1;
    if (PyLong_CheckExact(v)) {
        int overflow;
        t->least_advance = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || t->least_advance < -2147483647LL || t->least_advance > 2147483647LL) usable = 0;
    } else {
        usable = 0;
    }
    Py_DECREF(v);
    if (PyErr_Occurred()) return -1;
    t->usable = usable;
    return 0;
}

static int plain_state(Reader *r, int actual_text) { /* _show and _add would not raise on the state */
    State *st = &r->st;
    return st->font != NULL && !actual_text && st->scale == 100.0 && st->char_space == 0.0 && st->mode < 4 &&
           st->size > 0;
}

/* a string's codes after the n already in r->buf: 1 all usable, 0 not (Python decides), -1 error */
static int codes_of(Reader *r, FontTable *t, const unsigned char *raw, Py_ssize_t len, Py_ssize_t *n) {
    if (t->two_byte && len % 2) return 0;
    Py_ssize_t count = t->two_byte ? len / 2 : len, unit = t->two_byte ? 2 : 1;
    if ((*n + count) * unit > r->cap_buf) {
        Py_ssize_t cap = (*n + count) * unit * 2 + 64;
        unsigned char *buf = PyMem_Realloc(r->buf, (size_t)cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->buf = buf;
        r->cap_buf = cap;
    }
    if (!t->two_byte) {
        for (Py_ssize_t i = 0; i < len; i++)
            if (!t->has[raw[i]]) return 0;
        memcpy(r->buf + *n, raw, (size_t)len);
    } else {
        uint16_t *out = (uint16_t *)r->buf + *n;
        for (Py_ssize_t i = 0; i < count; i++) {
            unsigned u = (unsigned)raw[2 * i] << 8 | raw[2 * i + 1];
            /* a surrogate pair decodes (UTF-16BE) to one character no font code stands for */
            if (u >= 0xD800 && u < 0xDC00 && i + 1 < count) {
                unsigned next = (unsigned)raw[2 * i + 2] << 8 | raw[2 * i + 3];
                if (next >= 0xDC00 && next < 0xE000) return 0;
            }
            if (!t->has[u]) return 0;
            out[i] = (uint16_t)u;
        }
    }
    *n += count;
    return 1;
}

static unsigned code_at(FontTable *t, const unsigned char *buf, Py_ssize_t i) {
    return t->two_byte ? ((const uint16_t *)buf)[i] : buf[i];
}

static int counts_in(Reader *r) { /* reader.count and reader.codes into r (a callback may have added objects) */
    PyObject *attrs[2] = {s_count, s_codes};
    long long *into[2] = {&r->count, &r->codes};
    for (int i = 0; i < 2; i++) {
        PyObject *v = PyObject_GetAttr(r->reader, attrs[i]);
        if (v == NULL) return -1;
        int overflow;
        *into[i] = PyLong_Check(v) ? PyLong_AsLongLongAndOverflow(v, &overflow) : -1;
        if (PyLong_Check(v) && overflow) *into[i] = overflow > 0 ? LLONG_MAX : LLONG_MIN;
        Py_DECREF(v);
        if (*into[i] == -1 && PyErr_Occurred()) return -1;
        if (*into[i] < 0 || *into[i] > LLONG_MAX / 4) {
            PyErr_SetString(PyExc_ValueError, "reader.count and reader.codes are counts");
            return -1;
        }
    }
    r->counted = 1;
    return 0;
}

static int counts_out(Reader *r) { /* r's counts back into reader.count and reader.codes, before a callback reads them */
    PyObject *attrs[2] = {s_count, s_codes};
    long long from[2] = {r->count, r->codes};
    if (!r->counted) return 0;
    for (int i = 0; i < 2; i++) {
        PyObject *v = PyLong_FromLongLong(from[i]);
        int rc = v == NULL ? -1 : PyObject_SetAttr(r->reader, attrs[i], v);
        Py_XDECREF(v);
        if (rc < 0) return -1;
    }
    return 0;
}

/* TextObject(*args) with its text, body and base None, as its dataclass __init__ makes it, without
 * running that __init__ (its Python frame was a good part of a short run's cost): the slots set
 * directly (their offsets read at setup); steals the 13 references */
static Py_ssize_t slot_offset[16];

static PyObject *text_object(PyObject **args) {
    PyTypeObject *type = (PyTypeObject *)TextObjectType;
    PyObject *obj = type->tp_alloc(type, 0);
    if (obj == NULL) {
        for (int i = 0; i < 13; i++) Py_DECREF(args[i]);
        return NULL;
    }
    for (int i = 0; i < 16; i++) {
        PyObject *v = i < 13 ? args[i] : Py_NewRef(Py_None);
        *(PyObject **)((char *)obj + slot_offset[i]) = v;
    }
    /* Out of the cyclic collector's sight, as CPython does with tuples of atoms: the object holds
     * a font (which never holds text objects), floats, a str, an int, a bool, None and two lists
     * of floats and ints (the layout adds a str and two bools), so it is never part of a cycle and
     * is freed by its reference count; a page's thousands of them otherwise made the collector
     * walk them again and again (a fifth of the loop's time on pages of short runs). */
    PyObject_GC_UnTrack(args[3]);
    PyObject_GC_UnTrack(args[4]);
    PyObject_GC_UnTrack(obj);
    return obj;
}

/* room for `more` items of `size` bytes after `len` in *array (of capacity *cap): 0, -1 MemoryError */
static int reserve(void **array, Py_ssize_t *cap, Py_ssize_t len, Py_ssize_t more, size_t size) {
    if (more > (PY_SSIZE_T_MAX / 4) / (Py_ssize_t)size - len) {
        PyErr_NoMemory();
        return -1;
    }
    if (len + more <= *cap) return 0;
    Py_ssize_t want = (len + more) * 2 + 16;
    void *grown = PyMem_Realloc(*array, (size_t)want * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *array = grown;
    *cap = want;
    return 0;
}

/* records(): the text object append_object would make, as a record on r->page (the same values) */
static int add_record(Reader *r, FontTable *t, Py_ssize_t n, const Py_ssize_t *cuts, Py_ssize_t ncuts,
                      const double *kerns, Py_ssize_t nkerns, const double v[7], int dense) {
    PdfPage *page = r->page;
    Py_ssize_t unit = t->two_byte ? 2 : 1, nc = nkerns ? ncuts : 0;
    if (reserve((void **)&page->recs, &page->cap, page->n, 1, sizeof *page->recs) < 0 ||
        reserve((void **)&page->codes, &page->codes_cap, page->codes_len, n * unit + 1, 1) < 0 ||
        reserve((void **)&page->kerns, &page->kerns_cap, page->kerns_len, nkerns, sizeof *page->kerns) < 0 ||
        reserve((void **)&page->cuts, &page->cuts_cap, page->cuts_len, nc, sizeof *page->cuts) < 0)
        return -1;
    PdfRecord *rec = &page->recs[page->n];
    rec->font = Py_NewRef(r->st.font);
    page->n++;
    rec->size = v[0];
    rec->last_x = v[1];
    rec->end_x = v[2];
    rec->a = v[3];
    rec->d = v[4];
    rec->x = v[5];
    rec->y = v[6];
    rec->holder = r->holder_value;
    rec->dense = dense;
    rec->kind = (int)unit;
    if (unit == 2 && page->codes_len % 2) page->codes[page->codes_len++] = 0; /* two-byte codes read as uint16_t: aligned */
    rec->codes = page->codes_len;
    rec->n = n;
    memcpy(page->codes + page->codes_len, r->buf, (size_t)(n * unit));
    page->codes_len += n * unit;
    rec->kerns = page->kerns_len;
    rec->nk = nkerns;
    for (Py_ssize_t i = 0; i < nkerns; i++) page->kerns[page->kerns_len++] = kerns[i];
    rec->cuts = page->cuts_len;
    rec->nc = nc;
    for (Py_ssize_t i = 0; i < nc; i++) page->cuts[page->cuts_len++] = cuts[i];
    return 0;
}

/* a list of floats of kerns[0..n) */
static PyObject *floats_of(const double *kerns, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *f = PyFloat_FromDouble(kerns[i]);
        if (f == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, f);
    }
    return list;
}

/* TextObject(font, size, codes, kerns, cuts, last_x, end_x, a, d, x, y, holder, dense): codes n
 * codes of `unit` bytes, kerns a list (stolen), cuts[0..nc), v the seven floats in that order */
static PyObject *object_of(PyObject *font, Py_ssize_t unit, const unsigned char *codes, Py_ssize_t n, PyObject *kerns,
                           const Py_ssize_t *cuts, Py_ssize_t nc, const double v[7], PyObject *holder, int dense) {
    PyObject *args[13] = {NULL};
    args[0] = Py_NewRef(font);
    args[1] = PyFloat_FromDouble(v[0]);
    args[2] = unit == 2 ? PyUnicode_FromKindAndData(PyUnicode_2BYTE_KIND, codes, n)
                        : PyUnicode_DecodeLatin1((const char *)codes, n, NULL);
    args[3] = kerns;
    args[4] = PyList_New(nc);
    for (Py_ssize_t i = 0; args[4] != NULL && i < nc; i++) {
        PyObject *c = PyLong_FromSsize_t(cuts[i]);
        if (c == NULL) {
            Py_CLEAR(args[4]);
            break;
        }
        PyList_SET_ITEM(args[4], i, c);
    }
    for (int i = 1; i < 7; i++) args[4 + i] = PyFloat_FromDouble(v[i]);
    args[11] = Py_NewRef(holder);
    args[12] = Py_NewRef(dense ? Py_True : Py_False);
    int complete = 1;
    for (int i = 0; i < 13; i++) complete &= args[i] != NULL;
    if (complete) return text_object(args);
    for (int i = 0; i < 13; i++) Py_XDECREF(args[i]);
    return NULL;
}

/* the text object add_object makes, a TextObject appended to reader.objects: 0, -1 error */
static int append_object(Reader *r, FontTable *t, Py_ssize_t n, const Py_ssize_t *cuts, Py_ssize_t ncuts,
                         const double *kerns, Py_ssize_t nkerns, const double v[7], int dense) {
    PyObject *obj = object_of(r->st.font, t->two_byte ? 2 : 1, r->buf, n, floats_of(kerns, nkerns), cuts,
                              nkerns ? ncuts : 0, v, r->holder, dense);
    if (obj == NULL) return -1;
    int rc = PyList_Append(r->objects, obj);
    Py_DECREF(obj);
    return rc;
}

static void page_free(PdfPage *page);

/* records(): the step at hand needs Python's text objects (a show _show takes, a run of lines,
 * the text of a form just run): the records so far become TextObjects at the head of
 * reader.objects (before a form's), and the run goes on as run() */
static int to_objects(Reader *r) {
    PdfPage *page = r->page;
    PyObject *made = PyList_New(page->n);
    if (made == NULL) return -1;
    for (Py_ssize_t i = 0; i < page->n; i++) {
        PdfRecord *rec = &page->recs[i];
        double v[7] = {rec->size, rec->last_x, rec->end_x, rec->a, rec->d, rec->x, rec->y};
        PyObject *kerns = floats_of(rec->nk ? page->kerns + rec->kerns : NULL, rec->nk);
        PyObject *obj = kerns == NULL ? NULL
                                      : object_of(rec->font, rec->kind, page->codes + rec->codes, rec->n, kerns,
                                                  rec->nc ? page->cuts + rec->cuts : NULL, rec->nc, v, r->holder, rec->dense);
        if (obj == NULL) {
            Py_DECREF(made);
            return -1;
        }
        PyList_SET_ITEM(made, i, obj);
    }
    int rc = PyList_SetSlice(r->objects, 0, 0, made);
    Py_DECREF(made);
    if (rc < 0) return -1;
    page_free(r->page);
    r->page = NULL;
    return 0;
}

/* _add's text object from the codes in r->buf[0..n), strings cut at cuts[0..ncuts), kerns the TJ
 * numbers (PyFloats); out = the text matrix after it. 0 done, -1 error (Unsure as _add raises it) */
static int add_object(Reader *r, FontTable *t, const double tm[6], Py_ssize_t n, const Py_ssize_t *cuts,
                      Py_ssize_t ncuts, const double *kerns, Py_ssize_t nkerns, double out[6]) {
    State *st = &r->st;
    double scale = st->size / 1000.0;
    long long total = 0;
    Py_ssize_t spaces = 0;
    int narrow = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned c = code_at(t, r->buf, i);
        total += t->adv[c];
        spaces += c == 0x20;
        narrow |= t->adv[c] < 71;
    }
    double ksum = 0.0;
    for (Py_ssize_t i = 0; i < nkerns; i++) ksum += kerns[i];
    double x = nkerns ? ((double)total - ksum) * scale : (double)total * scale;
    double ws = t->two_byte ? 0.0 : st->word_space;
    if (ws != 0) x += ws * (double)spaces;
    unsigned last = code_at(t, r->buf, n - 1);
    double last_x = x - (double)t->adv[last] * scale - (last == 0x20 ? ws : 0.0);
    int dense = (ws != 0 && spaces > 0) || narrow;
    if (nkerns && !dense) {
        double most = kerns[0];
        for (Py_ssize_t i = 1; i < nkerns; i++)
            if (kerns[i] > most) most = kerns[i];
        if (most > (double)(t->least_advance - 71))
            for (Py_ssize_t i = 0; i < nkerns && i < ncuts; i++) {
                double k = kerns[i];
                if (k > 0 && (double)t->adv[code_at(t, r->buf, cuts[i] - 1)] - k < 71) {
                    dense = 1;
                    break;
                }
            }
    }
    double m[6];
    multiply(tm, st->ctm, m);
    if (fabs(m[1]) > 1e-9 || fabs(m[2]) > 1e-9 || m[0] <= 0 || m[3] <= 0) return unsure("rotated or mirrored text");
    double px = m[4], py = m[3] * st->rise + m[5];
    if (!(fabs(px) <= MAX_COORD && fabs(py) <= MAX_COORD && fabs(m[0] * x) <= MAX_COORD))
        return unsure("text far off the page: PDFium's single-precision floats place it otherwise");
    double v[7] = {st->size, last_x, x, m[0], m[3], px, py};
    int rc = r->page != NULL ? add_record(r, t, n, cuts, ncuts, kerns, nkerns, v, dense)
                             : append_object(r, t, n, cuts, ncuts, kerns, nkerns, v, dense);
    if (rc < 0) return -1;
    r->count += 1;
    r->codes += n;
    if (r->count == 64 && (double)r->codes < r->min_codes * 64) return unsure("short text runs: PDFium reads them faster");
    if (r->count > r->max_objects) return unsure("too many text objects");
    double move[6] = {1.0, 0.0, 0.0, 1.0, x - 0.0 * scale, 0.0}, after[6];
    multiply(move, tm, after);
    memcpy(out, after, sizeof after);
    return 0;
}

/* a Tj's one string (raw bytes): 1 made here, 0 not taken (Python shows it), -1 error */
static int fast_string(Reader *r, const double tm[6], const unsigned char *raw, Py_ssize_t len, int actual_text,
                       double out[6]) {
    FontTable *t;
    if (len == 0 || !plain_state(r, actual_text)) return 0;
    if (table_of(r, r->st.font, &t) < 0) return -1;
    if (t == NULL || !t->usable) return 0;
    Py_ssize_t n = 0;
    int rc = codes_of(r, t, raw, len, &n);
    if (rc <= 0) return rc;
    return add_object(r, t, tm, n, NULL, 0, NULL, 0, out) < 0 ? -1 : 1;
}

/* a TJ of hex strings and numbers taking turns, its body s[b0..b1) as tj_items matched it:
 * 1 made here, 0 not taken (Python's _show_hex_array decides), -1 error */
static int fast_hex_array(Reader *r, const double tm[6], const char *s, Py_ssize_t b0, Py_ssize_t b1, int actual_text,
                          double out[6]) {
    FontTable *t;
    if (!plain_state(r, actual_text)) return 0;
    if (table_of(r, r->st.font, &t) < 0) return -1;
    if (t == NULL || !t->usable) return 0;
    Py_ssize_t width = t->two_byte ? 4 : 2, items = 0, p = b0;
    while ((p = skip_ws(s, p, b1)) < b1) { /* the items: hex strings of whole codes and numbers, taking turns */
        Py_ssize_t q;
        if (s[p] == '<') {
            for (q = p + 1; q < b1 && IS_HEX(s[q]);) q++;
            if (items % 2 || q >= b1 || s[q] != '>' || q == p + 1 || (q - p - 1) % width || q - p - 1 > 2 * MAX_STRING)
                return 0;
            p = q + 1;
        } else {
            q = num(s, p, b1);
            if (items % 2 == 0 || q < 0 || q - p > MAX_WORD) return 0;
            p = q;
        }
        items++;
    }
    if (items == 0) return 0;
    Py_ssize_t nkerns = items / 2, nstrings = (items + 1) / 2, ncuts = 0, n = 0;
    double *kerns = PyMem_Calloc((size_t)nkerns + 1, sizeof *kerns);
    Py_ssize_t *cuts = PyMem_Malloc(((size_t)nstrings + 1) * sizeof *cuts);
    unsigned char *raw = PyMem_Malloc((size_t)(b1 - b0) / 2 + 1);
    int rc = 1;
    if (kerns == NULL || cuts == NULL || raw == NULL) {
        PyErr_NoMemory();
        rc = -1;
    }
    Py_ssize_t k = 0;
    for (p = b0; rc == 1 && (p = skip_ws(s, p, b1)) < b1;) {
        if (s[p] == '<') {
            Py_ssize_t q = p + 1, len = 0;
            for (; q + 1 < b1 && IS_HEX(s[q]) && IS_HEX(s[q + 1]); q += 2)
                raw[len++] = (unsigned char)(hex_value(s[q]) << 4 | hex_value(s[q + 1]));
            rc = codes_of(r, t, raw, len, &n);
            if (rc == 1) cuts[ncuts++] = n; /* the codes before the next string (the last's is dropped) */
            p = q + 1;
        } else {
            Py_ssize_t q = num(s, p, b1);
            if (double_at(s + p, q - p, &kerns[k]) < 0) rc = -1;
            k++;
            p = q;
        }
    }
    if (rc == 1) ncuts = nstrings - 1;
    if (rc == 1 && add_object(r, t, tm, n, cuts, ncuts, kerns, nkerns, out) < 0) rc = -1;
    PyMem_Free(kerns);
    PyMem_Free(cuts);
    PyMem_Free(raw);
    return rc;
}

static int office(Reader *r, const Run *run) {
    const char *s = r->s;
    State saved = r->st;
    if (run->hex0 >= 0 && run->hex1 - run->hex0 > 2 * MAX_STRING) return unsure("a string longer than PDFium keeps");
    if (run->rgb_longest > MAX_WORD || run->rx1 - run->rx0 > MAX_WORD || run->ry1 - run->ry0 > MAX_WORD ||
        run->size1 - run->size0 > MAX_WORD)
        return unsure("a number longer than PDFium's word");
    if (bad_name(s + run->font0, run->font1 - run->font0)) return unsure("a name PDFium decodes or cuts");
    Py_ssize_t name_len = run->font1 - run->font0;
    PyObject *font = r->run_font;
    /* the font the run before named, where this run names it too (font_named gives the same) */
    if (font == NULL || name_len != r->run_font_len || memcmp(s + run->font0, s + r->run_font0, (size_t)name_len) != 0) {
        PyObject *name = PyUnicode_DecodeLatin1(s + run->font0, name_len, NULL);
        if (name == NULL) return -1;
        font = font_named(r, name);
        Py_DECREF(name);
        if (font == NULL) return -1;
        r->run_font = font; /* borrowed: r->fonts holds it for the run */
        r->run_font0 = run->font0;
        r->run_font_len = name_len;
    }
    double size, x, y;
    if (double_at(s + run->size0, run->size1 - run->size0, &size) < 0 ||
        double_at(s + run->rx0, run->rx1 - run->rx0, &x) < 0 || double_at(s + run->ry0, run->ry1 - run->ry0, &y) < 0)
        return -1;
    double start[6] = {1.0, 0.0, 0.0, 1.0, x, y};
    r->st.font = font;
    r->st.size = size;
    int rc;
    if (run->hex0 >= 0 && run->hex1 - run->hex0 <= 512) { /* a short string: its bytes decoded here, no object */
        unsigned char raw[256];
        Py_ssize_t len = 0;
        for (Py_ssize_t q = run->hex0; q + 1 < run->hex1; q += 2)
            raw[len++] = (unsigned char)(hex_value(s[q]) << 4 | hex_value(s[q + 1]));
        if ((run->hex1 - run->hex0) % 2) raw[len++] = (unsigned char)(hex_value(s[run->hex1 - 1]) << 4);
        double after[6];
        rc = fast_string(r, start, raw, len, 0, after);
        if (rc == 0) {
            PyObject *parts = PyList_New(1);
            PyObject *b = parts ? PyBytes_FromStringAndSize((const char *)raw, len) : NULL;
            if (b == NULL) {
                Py_XDECREF(parts);
                r->st = saved;
                return -1;
            }
            PyList_SET_ITEM(parts, 0, b);
            rc = show(r, s_show, start, parts, 0, NULL);
            Py_DECREF(parts);
        }
    } else if (run->hex0 >= 0) {
        PyObject *parts = PyList_New(1);
        PyObject *b = parts ? hex_bytes(s + run->hex0, run->hex1 - run->hex0) : NULL;
        if (b == NULL) {
            Py_XDECREF(parts);
            r->st = saved;
            return -1;
        }
        PyList_SET_ITEM(parts, 0, b);
        double after[6];
        rc = fast_string(r, start, (const unsigned char *)PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), 0, after);
        if (rc == 0) rc = show(r, s_show, start, parts, 0, NULL);
        Py_DECREF(parts);
    } else {
        double after[6];
        rc = fast_hex_array(r, start, s, run->tj0, run->tj1, 0, after);
        if (rc == 0) {
            PyObject *body = PyBytes_FromStringAndSize(s + run->tj0, run->tj1 - run->tj0);
            if (body == NULL) {
                r->st = saved;
                return -1;
            }
            rc = show(r, s_show_hex_array, start, body, 0, NULL);
            Py_DECREF(body);
        }
    }
    r->st = saved;
    return rc < 0 ? -1 : 0;
}

static int last_number(Reader *r, Py_ssize_t back, double *out) { return number(r->ops[r->nops - back], out); }

static int numbers6(Reader *r, double m[6]) {
    for (int i = 0; i < 6; i++)
        if (number(r->ops[r->nops - 6 + i], &m[i]) < 0) return -1;
    return 0;
}

static int is_str(PyObject *v) { return PyUnicode_Check(v); }

/* one operator: 0 done, -1 error (operands are cleared by the caller) */
static int operator(Reader *r, const char *op, Py_ssize_t len) {
    State *st = &r->st;
    Py_ssize_t k = r->nops;
#define IS(w) (len == (Py_ssize_t)strlen(w) && memcmp(op, w, (size_t)len) == 0)
    if (IS("Tf")) {
        if (k < 2 || !is_str(r->ops[k - 2])) return unsure("Tf");
        PyObject *font = font_named(r, r->ops[k - 2]);
        if (font == NULL) return -1;
        st->font = font;
        return last_number(r, 1, &st->size);
    }
    if (IS("Td") || IS("TD")) {
        double tx, ty;
        if (k < 2) return unsure("Td");
        if (last_number(r, 2, &tx) < 0 || last_number(r, 1, &ty) < 0) return -1;
        if (op[1] == 'D') st->leading = -ty;
        translate(tx, ty, r->tlm);
        memcpy(r->tm, r->tlm, sizeof r->tm);
        r->tm_is_tlm = 1;
        return 0;
    }
    if (IS("Tm")) {
        if (k < 6) return unsure("Tm");
        if (numbers6(r, r->tlm) < 0) return -1;
        memcpy(r->tm, r->tlm, sizeof r->tm);
        r->tm_is_tlm = 1;
        return 0;
    }
    if (IS("T*")) {
        translate(0.0, -st->leading, r->tlm);
        memcpy(r->tm, r->tlm, sizeof r->tm);
        r->tm_is_tlm = 1;
        return 0;
    }
    if (IS("TL") || IS("Tc") || IS("Tw") || IS("Tz") || IS("Ts")) {
        if (k < 1) return unsure("operands of a text state operator");
        double *field = op[1] == 'L' ? &st->leading : op[1] == 'c' ? &st->char_space : op[1] == 'w' ? &st->word_space
                      : op[1] == 'z' ? &st->scale : &st->rise;
        return last_number(r, 1, field);
    }
    if (IS("Tr")) {
        if (k < 1 || !PyLong_Check(r->ops[k - 1])) return unsure("operands of Tr");
        int overflow;
        long long mode = PyLong_AsLongLongAndOverflow(r->ops[k - 1], &overflow);
        if (mode == -1 && PyErr_Occurred()) return -1;
        st->mode = overflow > 0 ? LLONG_MAX : overflow < 0 ? LLONG_MIN : mode;
        return 0;
    }
    if (IS("Tj") || IS("'") || IS("\"") || IS("TJ")) {
        if (!r->in_text) return unsure("text outside BT");
        int tj = IS("TJ");
        if (IS("'") || IS("\"")) {
            if (op[0] == '"') {
                if (k < 3) return unsure("\"");
                if (last_number(r, 3, &st->word_space) < 0 || last_number(r, 2, &st->char_space) < 0) return -1;
            }
            translate(0.0, -st->leading, r->tlm);
            memcpy(r->tm, r->tlm, sizeof r->tm);
            r->tm_is_tlm = 1;
        }
        if (k < 1) return unsure("show without a string");
        PyObject *parts = r->ops[k - 1];
        int rc;
        if (!tj) {
            if (!PyBytes_Check(parts)) return unsure("Tj operand");
            rc = fast_string(r, r->tm, (const unsigned char *)PyBytes_AS_STRING(parts), PyBytes_GET_SIZE(parts),
                             r->marked_true > 0, r->tm);
            if (rc != 0) {
                if (rc == 1) r->tm_is_tlm = 0;
                return rc < 0 ? -1 : 0;
            }
            PyObject *list = PyList_New(1);
            if (list == NULL) return -1;
            Py_INCREF(parts);
            PyList_SET_ITEM(list, 0, parts);
            rc = show(r, s_show, r->tm, list, r->marked_true > 0, r->tm);
            Py_DECREF(list);
        } else {
            if (!PyList_Check(parts)) return unsure("TJ operand");
            rc = show(r, s_show, r->tm, parts, r->marked_true > 0, r->tm);
        }
        if (rc == 0) r->tm_is_tlm = 0;
        return rc;
    }
    if (IS("BT")) {
        static const double one[6] = {1.0, 0.0, 0.0, 1.0, 0.0, 0.0};
        memcpy(r->tm, one, sizeof one);
        memcpy(r->tlm, one, sizeof one);
        r->tm_is_tlm = 1;
        r->in_text = 1;
        return 0;
    }
    if (IS("ET")) {
        r->in_text = 0;
        return 0;
    }
    if (IS("q")) {
        if (r->nstack == r->cap_stack) {
            Py_ssize_t cap = r->cap_stack ? r->cap_stack * 2 : 8;
            State *stack = PyMem_Realloc(r->stack, (size_t)cap * sizeof *stack);
            if (stack == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            r->stack = stack;
            r->cap_stack = cap;
        }
        r->stack[r->nstack++] = *st;
        return r->nstack > MAX_STACK ? unsure("q nesting") : 0;
    }
    if (IS("Q")) {
        if (r->nstack > 0) *st = r->stack[--r->nstack];
        return 0;
    }
    if (IS("cm")) {
        double m[6], out[6];
        if (k < 6) return unsure("cm");
        if (numbers6(r, m) < 0) return -1;
        multiply(m, st->ctm, out);
        memcpy(st->ctm, out, sizeof out);
        return 0;
    }
    if (IS("Do")) {
        if (k < 1 || !is_str(r->ops[k - 1])) return unsure("Do");
        if (sync_state(r) < 0 || counts_out(r) < 0) return -1; /* the form starts from this state */
        PyObject *res = PyObject_CallMethodObjArgs(r->reader, s_do, r->resources, r->ops[k - 1], r->pystate, r->depth,
                                                   NULL);
        if (res != NULL && counts_in(r) < 0) Py_CLEAR(res);
        Py_XDECREF(res);
        if (res == NULL) return -1;
        return r->page != NULL && PyList_GET_SIZE(r->objects) > 0 ? to_objects(r) : 0; /* a form's text */
    }
    if (IS("BDC") || IS("BMC")) {
        int flag = 0;
        if (op[1] == 'D') {
            PyObject *res = PyObject_CallMethodObjArgs(r->reader, s_has_actual_text, r->resources,
                                                       k ? r->ops[k - 1] : Py_None, r->depth, NULL);
            if (res == NULL) return -1;
            flag = PyObject_IsTrue(res);
            Py_DECREF(res);
            if (flag < 0) return -1;
        }
        if (r->nmarked == r->cap_marked) {
            Py_ssize_t cap = r->cap_marked ? r->cap_marked * 2 : 16;
            char *marked = PyMem_Realloc(r->marked, (size_t)cap);
            if (marked == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            r->marked = marked;
            r->cap_marked = cap;
        }
        r->marked[r->nmarked++] = (char)flag;
        r->marked_true += flag;
        return 0;
    }
    if (IS("EMC")) {
        if (r->nmarked > 0) r->marked_true -= r->marked[--r->nmarked];
        return 0;
    }
    if (IS("gs")) {
        PyObject *res =
            PyObject_CallMethodObjArgs(r->reader, s_gs, r->resources, k ? r->ops[k - 1] : Py_None, r->depth, NULL);
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    if (IS("BI") || IS("ID") || IS("EI")) return unsure("inline image");
    if (IS("d0") || IS("d1")) return unsure("type3 glyph procedure");
    return 0;
#undef IS
}

enum { NONE, RUN, LINES, TJ, NUM, STR, NESTED, HEX, NAME, AOPEN, ACLOSE, DOPEN, DCLOSE, OP };

/* the next token from p (white space and comments skipped): its kind, end and body */
static int token(const char *s, Py_ssize_t n, Py_ssize_t *at, Py_ssize_t *end, Py_ssize_t *b0, Py_ssize_t *b1,
                 Run *run) {
    Py_ssize_t p = *at, q;
    for (;;) {
        if (p < n && IS_WS(s[p])) {
            p++;
        } else if (p < n && s[p] == '%') {
            while (p < n && s[p] != '\r' && s[p] != '\n') p++;
        } else {
            break;
        }
    }
    *at = p;
    if (p >= n) return NONE;
    char c = s[p];
    switch (c) {
    case 'q':
        if ((*end = office_run(s, p, n, run)) >= 0) return RUN;
        break; /* an operator */
    case '(':
        if ((*end = line_tj(s, p, n, b0, b1)) >= 0) return LINES;
        q = string_body(s, p + 1, n);
        if (q < n && s[q] == ')') {
            *b0 = p + 1, *b1 = q, *end = q + 1;
            return STR;
        }
        *end = p + 1;
        return NESTED;
    case '[':
        if ((*end = hex_tj(s, p, n, b0, b1)) >= 0) return TJ;
        *end = p + 1;
        return AOPEN;
    case ']':
        *end = p + 1;
        return ACLOSE;
    case '<':
        q = p + 1;
        while (q < n && (IS_HEX(s[q]) || IS_WS(s[q]))) q++;
        if (q < n && s[q] == '>') {
            *b0 = p + 1, *b1 = q, *end = q + 1;
            return HEX;
        }
        if (p + 1 < n && s[p + 1] == '<') {
            *end = p + 2;
            return DOPEN;
        }
        return NONE;
    case '>':
        if (p + 1 < n && s[p + 1] == '>') {
            *end = p + 2;
            return DCLOSE;
        }
        return NONE;
    case '/':
        q = p + 1;
        while (q < n && !IS_DELIM(s[q])) q++;
        *b0 = p + 1, *b1 = q, *end = q;
        return NAME;
    case '\'':
    case '"':
        *end = p + 1;
        return ends_token(s, *end, n) ? OP : NONE;
    default:
        if (c == '+' || c == '-' || c == '.' || IS_DIGIT(c)) {
            *end = num(s, p, n);
            return *end < 0 || !ends_token(s, *end, n) ? NONE : NUM;
        }
        if (!IS_ALPHA(c)) return NONE;
    }
    q = p + 1;
    while (q < n && (IS_ALPHA(s[q]) || IS_DIGIT(s[q]) || s[q] == '*')) q++;
    *end = q;
    return ends_token(s, q, n) ? OP : NONE;
}

static PyObject *call_literal(Reader *r, Py_ssize_t at, Py_ssize_t *end) { /* literal_string(data, at) */
    PyObject *res = PyObject_CallFunction(literal_string, "On", r->data, at);
    if (res == NULL) return NULL;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "literal_string gives (bytes, end)");
        return NULL;
    }
    PyObject *value = PyTuple_GET_ITEM(res, 0);
    if (end != NULL) {
        *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
        if (*end == -1 && PyErr_Occurred()) {
            Py_DECREF(res);
            return NULL;
        }
        if (*end < 0 || *end > r->n) { /* never from literal_string: kept in bounds whatever it gives */
            Py_DECREF(res);
            PyErr_SetString(PyExc_ValueError, "literal_string's end out of the data");
            return NULL;
        }
    }
    Py_INCREF(value);
    Py_DECREF(res);
    return value;
}

static int loop(Reader *r) {
    const char *s = r->s;
    Py_ssize_t n = r->n, pos = 0;
    long long tokens = 0;
    Py_ssize_t dict_depth = 0;
    int dict_actual = 0;
    Run run;
    memset(&run, 0, sizeof run);
    for (;;) {
        tokens++;
        if (tokens % CHECK_EVERY == 0) {
            PyObject *res = PyObject_CallMethodObjArgs(r->reader, s_check_time, NULL);
            if (res == NULL) return -1;
            Py_DECREF(res);
        }
        Py_ssize_t at = pos, end = -1, b0 = 0, b1 = 0;
        int kind = token(s, n, &at, &end, &b0, &b1, &run);
        if (kind == NONE) {
            for (Py_ssize_t i = pos; i < n; i++)
                if (!IS_WS(s[i])) return unsure("content stream token");
            return dict_depth ? unsure("a dictionary never closed") : 0;
        }
        pos = end;
        if (dict_depth) {
            if (kind == DOPEN) {
                dict_depth++;
            } else if (kind == DCLOSE) {
                if (--dict_depth == 0) {
                    PyObject *v = PyTuple_Pack(2, s_dict, dict_actual ? Py_True : Py_False);
                    if (v == NULL || push_op(r, v) < 0) return -1;
                }
            } else if (kind == NAME) {
                if (bad_name(s + b0, b1 - b0)) return unsure("a name PDFium decodes or cuts");
                if (b1 - b0 == 10 && memcmp(s + b0, "ActualText", 10) == 0) dict_actual = 1;
            } else if (kind == NESTED) {
                PyObject *v = call_literal(r, at, &pos);
                if (v == NULL) return -1;
                Py_DECREF(v);
            } else if (kind == OP || kind == RUN || kind == LINES || kind == TJ) {
                return unsure("an operator inside a dictionary");
            }
            continue;
        }
        PyObject *value = NULL;
        switch (kind) {
        case LINES:
            if (!r->in_text || r->array || r->nops || r->marked_true) return unsure("a run of lines outside plain text");
            if (run_of_lines(r, b0, b1, &pos) < 0) return -1;
            continue;
        case RUN:
            if (r->in_text || r->array || r->nops || r->marked_true) return unsure("a run inside text");
            if (office(r, &run) < 0) return -1;
            continue;
        case TJ: {
            if (!r->in_text || r->array) return unsure("TJ outside text");
            int rc = fast_hex_array(r, r->tm, s, b0, b1, r->marked_true > 0, r->tm);
            if (rc == 0) {
                PyObject *body = PyBytes_FromStringAndSize(s + b0, b1 - b0);
                if (body == NULL) return -1;
                rc = show(r, s_show_hex_array, r->tm, body, r->marked_true > 0, r->tm);
                Py_DECREF(body);
            }
            if (rc < 0) return -1;
            r->tm_is_tlm = 0;
            clear_ops(r);
            continue;
        }
        case NUM:
            if (end - at > MAX_WORD) return unsure("a number longer than PDFium's word");
            value = number_of(s + at, end - at);
            break;
        case STR:
            if (b1 - b0 > MAX_STRING) return unsure("a string longer than PDFium keeps");
            value = memchr(s + b0, '\\', (size_t)(b1 - b0)) ? call_literal(r, at, NULL)
                                                             : PyBytes_FromStringAndSize(s + b0, b1 - b0);
            break;
        case NESTED:
            value = call_literal(r, at, &pos);
            if (value != NULL && pos - at - 2 > MAX_STRING) {
                Py_DECREF(value);
                return unsure("a string longer than PDFium keeps");
            }
            break;
        case HEX:
            value = hex_bytes(s + b0, b1 - b0);
            if (value != NULL && PyBytes_GET_SIZE(value) > MAX_STRING) {
                Py_DECREF(value);
                return unsure("a string longer than PDFium keeps");
            }
            break;
        case NAME:
            if (bad_name(s + b0, b1 - b0)) return unsure("a name PDFium decodes or cuts");
            value = name_of(s + b0, b1 - b0);
            break;
        case AOPEN:
            if (r->array) return unsure("nested array in content");
            if ((r->array = PyList_New(0)) == NULL) return -1;
            continue;
        case ACLOSE: {
            if (r->array == NULL) return unsure("stray ]");
            PyObject *array = r->array;
            r->array = NULL;
            if (push_op(r, array) < 0) return -1;
            continue;
        }
        case DOPEN:
            dict_depth = 1;
            dict_actual = 0;
            continue;
        case DCLOSE:
            return unsure("stray >>");
        default: /* OP */
            if (r->array) return unsure("operator inside an array");
            if (operator(r, s + at, end - at) < 0) return -1;
            clear_ops(r);
            continue;
        }
        if (value == NULL) return -1;
        if (r->array) {
            int rc = PyList_Append(r->array, value);
            Py_DECREF(value);
            if (rc < 0) return -1;
        } else if (push_op(r, value) < 0) {
            return -1;
        }
        if (r->nops > MAX_OPERANDS || (r->array && PyList_GET_SIZE(r->array) > MAX_ARRAY))
            return unsure("too many operands");
    }
}

/* the C state from the Python _State the run starts from (a fresh one, or a form's at its Do) */
static int read_state(Reader *r) {
    PyObject *v = PyObject_GetAttr(r->pystate, s_ctm);
    if (v == NULL) return -1;
    int rc = read6(v, r->st.ctm);
    Py_DECREF(v);
    if (rc < 0 || (v = PyObject_GetAttr(r->pystate, s_font_attr)) == NULL) return -1;
    r->st.font = v == Py_None ? NULL : v; /* kept alive by the run's font dict (pdftext_run) */
    Py_DECREF(v);
    PyObject *attrs[6] = {s_size, s_char_space, s_word_space, s_scale, s_leading, s_rise};
    double *fields[6] = {&r->st.size, &r->st.char_space, &r->st.word_space, &r->st.scale, &r->st.leading, &r->st.rise};
    for (int i = 0; i < 6; i++) {
        if ((v = PyObject_GetAttr(r->pystate, attrs[i])) == NULL) return -1;
        *fields[i] = PyFloat_AsDouble(v);
        Py_DECREF(v);
        if (*fields[i] == -1.0 && PyErr_Occurred()) return -1;
    }
    if ((v = PyObject_GetAttr(r->pystate, s_mode)) == NULL) return -1;
    int overflow;
    r->st.mode = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (r->st.mode == -1 && PyErr_Occurred()) return -1;
    if (overflow) r->st.mode = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    return 0;
}

static void page_free(PdfPage *page) {
    if (page == NULL) return;
    for (Py_ssize_t i = 0; i < page->n; i++) Py_DECREF(page->recs[i].font);
    PyMem_Free(page->recs);
    PyMem_Free(page->codes);
    PyMem_Free(page->kerns);
    PyMem_Free(page->cuts);
    PyMem_Free(page);
}

static void page_capsule_free(PyObject *capsule) { page_free(PyCapsule_GetPointer(capsule, PDFPAGE_CAPSULE)); }

/* run() and records(): 0 done, -1 error */
static int run_reader(Reader *r, PyObject *args) {
    if (!PyArg_ParseTuple(args, "OO!OOOOL", &r->reader, &PyBytes_Type, &r->data, &r->resources, &r->pystate, &r->holder,
                          &r->depth, &r->max_objects))
        return -1;
    if (Unsure == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_pdftext.setup() first");
        return -1;
    }
    r->s = PyBytes_AS_STRING(r->data);
    r->n = PyBytes_GET_SIZE(r->data);
    if (read_state(r) < 0) return -1;
    int rc;
    static const double one[6] = {1.0, 0.0, 0.0, 1.0, 0.0, 0.0};
    memcpy(r->tm, one, sizeof one);
    memcpy(r->tlm, one, sizeof one);
    r->tm_is_tlm = 1;
    PyObject *min_codes = PyObject_GetAttr(r->reader, s_min_codes);
    if (min_codes == NULL) return -1;
    r->min_codes = PyFloat_AsDouble(min_codes);
    Py_DECREF(min_codes);
    if (r->min_codes == -1.0 && PyErr_Occurred()) return -1;
    if ((r->objects = PyObject_GetAttr(r->reader, s_objects)) == NULL) return -1;
    if (!PyList_Check(r->objects)) {
        Py_CLEAR(r->objects);
        PyErr_SetString(PyExc_TypeError, "reader.objects is a list");
        return -1;
    }
    if (r->page != NULL) { /* records(): a fresh reader's page, its holder a C integer */
        int overflow = 0;
        r->holder_value = PyLong_CheckExact(r->holder) ? PyLong_AsLongLongAndOverflow(r->holder, &overflow) : -1;
        if (r->holder_value == -1 && PyErr_Occurred()) {
            Py_CLEAR(r->objects);
            return -1;
        }
        if (PyList_GET_SIZE(r->objects) || !PyLong_CheckExact(r->holder) || overflow) {
            page_free(r->page); /* a reader records() does not expect: run() as it stands */
            r->page = NULL;
        }
    }
    if ((r->fonts = PyDict_New()) == NULL) {
        Py_CLEAR(r->objects);
        return -1;
    }
    if (r->st.font != NULL && PyDict_SetItem(r->fonts, Py_None, r->st.font) < 0) { /* held while the run uses it */
        Py_CLEAR(r->fonts);
        Py_CLEAR(r->objects);
        return -1;
    }
    Py_INCREF(r->data); /* kept alive while s points into it, whatever the callbacks do */
    rc = counts_in(r);
    if (rc == 0) rc = loop(r);
    if (rc == 0) rc = counts_out(r);
    Py_DECREF(r->data);
    clear_ops(r);
    PyMem_Free(r->ops);
    Py_XDECREF(r->array);
    PyMem_Free(r->stack);
    PyMem_Free(r->marked);
    Py_CLEAR(r->fonts);
    Py_CLEAR(r->objects);
    for (int i = 0; i < r->ntables; i++) {
        PyMem_Free(r->tables[i].adv);
        PyMem_Free(r->tables[i].has);
    }
    PyMem_Free(r->buf);
    return rc;
}

static PyObject *pdftext_run(PyObject *self, PyObject *args) {
    Reader r;
    memset(&r, 0, sizeof r);
    if (run_reader(&r, args) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *pdftext_records(PyObject *self, PyObject *args) {
    Reader r;
    memset(&r, 0, sizeof r);
    if ((r.page = PyMem_Calloc(1, sizeof *r.page)) == NULL) return PyErr_NoMemory();
    if (run_reader(&r, args) < 0) {
        page_free(r.page);
        return NULL;
    }
    if (r.page == NULL) Py_RETURN_NONE; /* its objects are TextObjects in reader.objects, as run() leaves them */
    PyObject *capsule = PyCapsule_New(r.page, PDFPAGE_CAPSULE, page_capsule_free);
    if (capsule == NULL) page_free(r.page);
    return capsule;
}

static PyObject *pdftext_setup(PyObject *self, PyObject *args) {
    PyObject *unsure_type, *name_type, *literal, *text_object;
    if (!PyArg_ParseTuple(args, "OOOO", &unsure_type, &name_type, &literal, &text_object)) return NULL;
    static const char *slots[16] = {"font", "size", "codes", "kerns", "cuts", "last_x", "end_x", "a",
                                    "d",    "x",    "y",     "holder", "dense", "text", "body", "base"};
    if (!PyType_Check(text_object)) {
        PyErr_SetString(PyExc_TypeError, "TextObject is a class");
        return NULL;
    }
    for (int i = 0; i < 16; i++) { /* the slots text_object() fills, in the dataclass's order */
        PyObject *d = PyObject_GetAttrString(text_object, slots[i]);
        if (d == NULL) return NULL;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
        if (ok) slot_offset[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "TextObject.%s is not a slot", slots[i]);
            return NULL;
        }
    }
    Py_INCREF(text_object);
    Py_XSETREF(TextObjectType, text_object);
    Py_INCREF(unsure_type);
    Py_INCREF(name_type);
    Py_INCREF(literal);
    Py_XSETREF(Unsure, unsure_type);
    Py_XSETREF(NameType, name_type);
    Py_XSETREF(literal_string, literal);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", pdftext_setup, METH_VARARGS, "setup(Unsure, Name, literal_string, TextObject): the Python types and helper the reader uses."},
    {"run", pdftext_run, METH_VARARGS,
     "run(reader, data, resources, state, holder, depth, max_objects): ContentReader.run's loop over one content stream."},
    {"records", pdftext_records, METH_VARARGS,
     "records(...run's arguments): run(), but the text objects as C records (a capsule for "
     "_pdflayout.records_text) where the C made every one of them; else None, the objects in reader.objects."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pdftext", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pdftext(void) {
    const char *ws = "\x00\t\n\x0c\r ", *delims = "()<>[]{}/%";
    for (int i = 0; i < 6; i++) cls[(unsigned char)ws[i]] = 3;
    for (const char *d = delims; *d; d++) cls[(unsigned char)*d] = 2;
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL;
    INTERN(s_check_time, "check_time")
    INTERN(s_gs, "_gs")
    INTERN(s_font, "_font")
    INTERN(s_do, "_do")
    INTERN(s_has_actual_text, "_has_actual_text")
    INTERN(s_show, "_show")
    INTERN(s_show_hex_array, "_show_hex_array")
    INTERN(s_run_of_lines, "_run_of_lines")
    INTERN(s_ctm, "ctm")
    INTERN(s_font_attr, "font")
    INTERN(s_size, "size")
    INTERN(s_char_space, "char_space")
    INTERN(s_word_space, "word_space")
    INTERN(s_scale, "scale")
    INTERN(s_leading, "leading")
    INTERN(s_rise, "rise")
    INTERN(s_mode, "mode")
    INTERN(s_dict, "dict")
    INTERN(s_two_byte, "two_byte")
    INTERN(s_advances, "advances")
    INTERN(s_least_advance, "least_advance")
    INTERN(s_count, "count")
    INTERN(s_codes, "codes")
    INTERN(s_objects, "objects")
    INTERN(s_min_codes, "min_codes")
#undef INTERN
    return PyModule_Create(&module);
}
