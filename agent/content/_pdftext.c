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
#include <string.h>
#include <stdlib.h>

#define CHECK_EVERY 4096
#define MAX_OPERANDS 64
#define MAX_ARRAY 1000000
#define MAX_STACK 1000

static PyObject *Unsure, *NameType, *literal_string;
static PyObject *s_check_time, *s_font, *s_do, *s_has_actual_text, *s_show, *s_show_hex_array, *s_run_of_lines;
static PyObject *s_ctm, *s_font_attr, *s_size, *s_char_space, *s_word_space, *s_scale, *s_leading, *s_rise, *s_mode;
static PyObject *s_dict;

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

static Py_ssize_t skip_ws(const char *s, Py_ssize_t p, Py_ssize_t n) {
    while (p < n && IS_WS(s[p])) p++;
    return p;
}

static Py_ssize_t ws1(const char *s, Py_ssize_t p, Py_ssize_t n) { /* [ws]++ */
    if (p >= n || !IS_WS(s[p])) return -1;
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
    return p >= n || IS_DELIM(s[p]);
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
        if (q < 0) return p;
        p = q;
    }
}

/* "[items] TJ" from the "[": the end, and the items in [*b0, *b1) */
static Py_ssize_t hex_tj(const char *s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *b0, Py_ssize_t *b1) {
    *b0 = p + 1;
    p = tj_items(s, p + 1, n);
    *b1 = p;
    p = skip_ws(s, p, n);
    if (p >= n || s[p] != ']') return -1;
    p = word(s, skip_ws(s, p + 1, n), n, "TJ");
    if (p < 0 || !ends_token(s, p, n)) return -1;
    return p;
}

typedef struct {
    Py_ssize_t rx0, rx1, ry0, ry1, font0, font1, size0, size1, hex0, hex1, tj0, tj1;
} Run;

/* q r g b rg BT x y Td /F s Tf <..> Tj ET Q (or [..] TJ), from the "q" */
static Py_ssize_t office_run(const char *s, Py_ssize_t p, Py_ssize_t n, Run *r) {
    p = ws1(s, p + 1, n);
    for (int i = 0; i < 3; i++) p = ws1(s, num(s, p, n), n);
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
    if (p >= n || s[p] != '/') return -1;
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
        if (p >= n || s[p] != ']') return -1;
        p = word(s, skip_ws(s, p + 1, n), n, "TJ");
    } else {
        return -1;
    }
    if (p < 0) return -1;
    p = word(s, skip_ws(s, p, n), n, "ET");
    p = word(s, ws1(s, p, n), n, "Q");
    if (p < 0 || !ends_token(s, p, n)) return -1;
    return p;
}

/* -- values ---------------------------------------------------------------------------------- */

static PyObject *float_of(const char *s, Py_ssize_t len) { /* float(bytes), inf past the range */
    char buf[64];
    char *text = len < (Py_ssize_t)sizeof buf ? buf : PyMem_Malloc((size_t)len + 1);
    if (text == NULL) return PyErr_NoMemory();
    memcpy(text, s, (size_t)len);
    text[len] = 0;
    double v = PyOS_string_to_double(text, NULL, NULL);
    if (text != buf) PyMem_Free(text);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(v);
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
    int in_text;
    int tm_is_tlm; /* Python's tm and tlm are the same tuple: equal even holding NaN */
} Reader;

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
    if (sync_state(r) < 0) return -1;
    PyObject *t = tuple6(tm);
    if (t == NULL) return -1;
    PyObject *res = PyObject_CallMethodObjArgs(r->reader, method, r->pystate, t, arg, r->holder,
                                               actual_text ? Py_True : Py_False, NULL);
    Py_DECREF(t);
    if (res == NULL) return -1;
    int rc = out ? read6(res, out) : 0;
    Py_DECREF(res);
    return rc;
}

static int run_of_lines(Reader *r, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t *pos) {
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
    if (tm != NULL && tlm != NULL)
        res = PyObject_CallMethodObjArgs(r->reader, s_run_of_lines, r->pystate, tm, tlm, raw, r->holder, NULL);
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

static int office(Reader *r, const Run *run) {
    const char *s = r->s;
    State saved = r->st;
    PyObject *name = PyUnicode_DecodeLatin1(s + run->font0, run->font1 - run->font0, NULL);
    if (name == NULL) return -1;
    PyObject *font = font_named(r, name);
    Py_DECREF(name);
    if (font == NULL) return -1;
    PyObject *size = float_of(s + run->size0, run->size1 - run->size0);
    PyObject *x = size ? float_of(s + run->rx0, run->rx1 - run->rx0) : NULL;
    PyObject *y = x ? float_of(s + run->ry0, run->ry1 - run->ry0) : NULL;
    double start[6] = {1.0, 0.0, 0.0, 1.0, x ? PyFloat_AS_DOUBLE(x) : 0, y ? PyFloat_AS_DOUBLE(y) : 0};
    r->st.font = font;
    r->st.size = size ? PyFloat_AS_DOUBLE(size) : 0;
    Py_XDECREF(size);
    Py_XDECREF(x);
    if (y == NULL) {
        r->st = saved;
        return -1;
    }
    Py_DECREF(y);
    int rc;
    if (run->hex0 >= 0) {
        PyObject *parts = PyList_New(1);
        PyObject *b = parts ? hex_bytes(s + run->hex0, run->hex1 - run->hex0) : NULL;
        if (b == NULL) {
            Py_XDECREF(parts);
            r->st = saved;
            return -1;
        }
        PyList_SET_ITEM(parts, 0, b);
        rc = show(r, s_show, start, parts, 0, NULL);
        Py_DECREF(parts);
    } else {
        PyObject *body = PyBytes_FromStringAndSize(s + run->tj0, run->tj1 - run->tj0);
        if (body == NULL) {
            r->st = saved;
            return -1;
        }
        rc = show(r, s_show_hex_array, start, body, 0, NULL);
        Py_DECREF(body);
    }
    r->st = saved;
    return rc;
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
        PyObject *ctm = tuple6(st->ctm);
        if (ctm == NULL) return -1;
        PyObject *res = PyObject_CallMethodObjArgs(r->reader, s_do, r->resources, r->ops[k - 1], ctm, r->depth, NULL);
        Py_DECREF(ctm);
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    if (IS("BDC") || IS("BMC")) {
        int flag = 0;
        if (op[1] == 'D') {
            PyObject *res = PyObject_CallMethodObjArgs(r->reader, s_has_actual_text, r->resources,
                                                       k ? r->ops[k - 1] : Py_None, NULL);
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
        return OP;
    default:
        if (c == '+' || c == '-' || c == '.' || IS_DIGIT(c)) {
            *end = num(s, p, n);
            return *end < 0 ? NONE : NUM;
        }
        if (!IS_ALPHA(c)) return NONE;
    }
    q = p + 1;
    while (q < n && (IS_ALPHA(s[q]) || IS_DIGIT(s[q]) || s[q] == '*')) q++;
    *end = q;
    return OP;
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
            return 0;
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
                if (b1 - b0 == 10 && memcmp(s + b0, "ActualText", 10) == 0) dict_actual = 1;
            } else if (kind == NESTED) {
                PyObject *v = call_literal(r, at, &pos);
                if (v == NULL) return -1;
                Py_DECREF(v);
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
            PyObject *body = PyBytes_FromStringAndSize(s + b0, b1 - b0);
            if (body == NULL) return -1;
            int rc = show(r, s_show_hex_array, r->tm, body, r->marked_true > 0, r->tm);
            Py_DECREF(body);
            if (rc < 0) return -1;
            r->tm_is_tlm = 0;
            clear_ops(r);
            continue;
        }
        case NUM:
            value = number_of(s + at, end - at);
            break;
        case STR:
            value = memchr(s + b0, '\\', (size_t)(b1 - b0)) ? call_literal(r, at, NULL)
                                                             : PyBytes_FromStringAndSize(s + b0, b1 - b0);
            break;
        case NESTED:
            value = call_literal(r, at, &pos);
            break;
        case HEX:
            value = hex_bytes(s + b0, b1 - b0);
            break;
        case NAME:
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

static PyObject *pdftext_run(PyObject *self, PyObject *args) {
    Reader r;
    memset(&r, 0, sizeof r);
    if (!PyArg_ParseTuple(args, "OO!OOOO", &r.reader, &PyBytes_Type, &r.data, &r.resources, &r.pystate, &r.holder,
                          &r.depth))
        return NULL;
    if (Unsure == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_pdftext.setup() first");
        return NULL;
    }
    r.s = PyBytes_AS_STRING(r.data);
    r.n = PyBytes_GET_SIZE(r.data);
    PyObject *ctm = PyObject_GetAttr(r.pystate, s_ctm);
    if (ctm == NULL) return NULL;
    int rc = read6(ctm, r.st.ctm);
    Py_DECREF(ctm);
    if (rc < 0) return NULL;
    r.st.scale = 100.0;
    static const double one[6] = {1.0, 0.0, 0.0, 1.0, 0.0, 0.0};
    memcpy(r.tm, one, sizeof one);
    memcpy(r.tlm, one, sizeof one);
    r.tm_is_tlm = 1;
    if ((r.fonts = PyDict_New()) == NULL) return NULL;
    Py_INCREF(r.data); /* kept alive while s points into it, whatever the callbacks do */
    rc = loop(&r);
    Py_DECREF(r.data);
    clear_ops(&r);
    PyMem_Free(r.ops);
    Py_XDECREF(r.array);
    PyMem_Free(r.stack);
    PyMem_Free(r.marked);
    Py_DECREF(r.fonts);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *pdftext_setup(PyObject *self, PyObject *args) {
    PyObject *unsure_type, *name_type, *literal;
    if (!PyArg_ParseTuple(args, "OOO", &unsure_type, &name_type, &literal)) return NULL;
    Py_INCREF(unsure_type);
    Py_INCREF(name_type);
    Py_INCREF(literal);
    Py_XSETREF(Unsure, unsure_type);
    Py_XSETREF(NameType, name_type);
    Py_XSETREF(literal_string, literal);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", pdftext_setup, METH_VARARGS, "setup(Unsure, Name, literal_string): the Python types and helper the reader uses."},
    {"run", pdftext_run, METH_VARARGS,
     "run(reader, data, resources, state, holder, depth): ContentReader.run's loop over one content stream."},
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
#undef INTERN
    return PyModule_Create(&module);
}
