/* Native kernels of the metric stage (called through judging/kernels.py by coverage.py,
 * exact_match.py and rouge.py).
 *
 * Each has a pure-Python reference in the package and is pinned to it by tests
 * (tests/judging/test_native.py and the bulk-vs-scalar tests: identical strings, identical
 * floats):
 *
 *   normalize_ascii(texts, threads)      A.2 normalisation (judging.text.normalize) of ASCII
 *                                        str items; None for the others (the caller routes
 *                                        them to the scalar function); None -> ""
 *   coverage(answers, keys, contexts,    span / unigram / bigram coverage of normalised
 *            threads) -> (span, uni, bi) answers against normalised contexts[keys[i]]
 *                                        (judging.coverage.coverage_many)
 *   rouge_l_max(answers, reference_lists, threads)
 *                                        ROUGE-L F1 of rouge_score (rougeL, no stemming), max
 *                                        over references: its tokeniser, the LCS length by a
 *                                        bit-parallel algorithm, its float operations in its
 *                                        order (judging.rouge.rouge_l_f1_many)
 *   exact_match(answers, reference_lists, normalize)
 *                                        judging.exact_match.exact_match_many
 *
 * The heavy three split their work into contiguous parts of equal cost and run them on
 * `threads` threads with the GIL released (inputs are read through a tuple the call owns;
 * outputs become Python objects after the threads are joined).  Built by setup.py as an
 * optional extension: without a C compiler the package installs and runs on the Python
 * paths.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* CLS: 0 token character, 1 whitespace (str.split), 2 punctuation (deleted)
 * DETOK: the characters the detokeniser looks at ("-", "/", "'") */
static unsigned char CLS[256], LOWER[256], DETOK[256], WORDC[256], ALNUM_LOWER[256];

static void init_tables(void)
{
    const char *ws = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f ";  /* str.split() within ASCII */
    const char *pu = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  /* string.punctuation */
    for (int c = 0; c < 256; c++) LOWER[c] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : (unsigned char)c;
    for (const char *p = ws; *p; p++) CLS[(unsigned char)*p] = 1;
    for (const char *p = pu; *p; p++) CLS[(unsigned char)*p] = 2;
    /* ASCII control characters (not whitespace): punctuation, as judging.text removes them */
    for (int c = 0; c < 32; c++) if (!CLS[c]) CLS[c] = 2;
    CLS[127] = 2;
    DETOK['-'] = DETOK['/'] = DETOK['\''] = 1;
    for (int c = 0; c < 128; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        WORDC[c] = alnum || c == '_';  /* re's \w on ASCII */
        ALNUM_LOWER[c] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : (alnum ? (unsigned char)c : 0);
    }
}

/* a growable scratch buffer */
typedef struct { void *p; size_t cap; } Buf;

static int buf_reserve(Buf *b, size_t bytes)
{
    if (bytes <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < bytes) cap *= 2;
    void *q = realloc(b->p, cap);
    if (!q) return -1;  /* callers without the GIL: the caller raises MemoryError */
    b->p = q;
    b->cap = cap;
    return 0;
}

static void buf_free(Buf *b) { free(b->p); b->p = NULL; b->cap = 0; }

/* ---------------------------------------------------------------- A.2 normalisation */

static inline int is_sp(unsigned char c) { return c == ' ' || c == '\t'; }

/* Normalise s[0..n) (ASCII) into out (capacity >= n); returns the output length.
 * drop: scratch of n bytes. The steps of judging.text.normalize: the detokeniser's space runs
 * marked in drop, then lowercase, punctuation out, articles out, single spaces. */
static Py_ssize_t norm_ascii(const unsigned char *s, Py_ssize_t n, unsigned char *drop, unsigned char *out)
{
    int dropped = 0;
    for (Py_ssize_t p = 0; p < n; p++) {
        unsigned char c = s[p];
        if (!DETOK[c]) continue;
        if (c == '-' || c == '/') {  /* detokenise: spaces/tabs around a joiner go */
            if (!dropped) { memset(drop, 0, (size_t)n); dropped = 1; }
            for (Py_ssize_t q = p - 1; q >= 0 && is_sp(s[q]); q--) drop[q] = 1;
            for (Py_ssize_t q = p + 1; q < n && is_sp(s[q]); q++) drop[q] = 1;
        } else if (p > 0 && p + 1 < n && (s[p + 1] == 's' || s[p + 1] == 'S') && is_sp(s[p - 1])) {
            unsigned char nxt = p + 2 < n ? s[p + 2] : '\n';
            if (!WORDC[nxt]) {  /* " 's" + a non-word character or the end: the spaces before go */
                if (!dropped) { memset(drop, 0, (size_t)n); dropped = 1; }
                for (Py_ssize_t q = p - 1; q >= 0 && is_sp(s[q]); q--) drop[q] = 1;
            }
        }
    }
    Py_ssize_t o = 0, p = 0;
    while (p < n) {
        while (p < n && CLS[s[p]] != 0) p++;  /* to the next token character */
        if (p == n) break;
        if (o > 0) out[o++] = ' ';
        Py_ssize_t start = o;
        /* the token: its characters lowered, punctuation and detokenised spaces deleted
         * (not boundaries), up to the next whitespace that stays */
        for (; p < n; p++) {
            unsigned char c = s[p], k = CLS[c];
            if (k == 0) out[o++] = LOWER[c];
            else if (k == 1 && !(dropped && drop[p])) break;
        }
        Py_ssize_t len = o - start;
        if (len <= 3) {
            const unsigned char *t = out + start;
            int article = (len == 1 && t[0] == 'a') || (len == 2 && t[0] == 'a' && t[1] == 'n')
                          || (len == 3 && t[0] == 't' && t[1] == 'h' && t[2] == 'e');
            if (article) o = start > 0 ? start - 1 : 0;  /* the token and its separator */
        }
    }
    return o;
}

/* ---------------------------------------------------------------- token tables */

static inline uint64_t hash_bytes(const char *p, Py_ssize_t n)
{
    uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15ULL;  /* eight bytes at a time, then a final mix */
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (Py_ssize_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h ^= w;  /* the splitmix64 finaliser: every input bit reaches the low (index) bits */
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL; h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

typedef struct { uint64_t h; const char *p; int32_t len; int32_t id; uint32_t stamp; } Ent;

/* Open addressing; an entry is live when its stamp is the table's, so starting a new
 * table (one per context or target text) costs nothing but a stamp increment. */
typedef struct {
    Ent *ents;
    size_t mask;
    int32_t n;  /* distinct tokens */
    uint32_t stamp;
} Table;

/* (re)start t for about `expected` tokens; mem holds its entries across calls */
static int table_start(Table *t, Buf *mem, size_t expected)
{
    size_t cap = 16;
    while (cap < 2 * expected + 2) cap *= 2;
    /* the first cap entries of mem; stale entries carry older stamps */
    if (cap * sizeof(Ent) > mem->cap || t->stamp == UINT32_MAX || !t->ents) {
        if (buf_reserve(mem, cap * sizeof(Ent))) return -1;
        memset(mem->p, 0, mem->cap);
        t->ents = mem->p;
        t->stamp = 0;
    }
    t->mask = cap - 1;
    t->stamp++;
    t->n = 0;
    return 0;
}

static inline int same_bytes(const char *a, const char *b, Py_ssize_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    for (; n > 0; n--)
        if (*a++ != *b++) return 0;
    return 1;
}

/* id of token p[0..n); inserted with the next id when add, else -1 when absent */
static inline int32_t table_id(Table *t, const char *p, Py_ssize_t n, int add)
{
    uint64_t h = hash_bytes(p, n);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        Ent *e = &t->ents[i];
        if (e->stamp != t->stamp) {
            if (!add) return -1;
            e->h = h; e->p = p; e->len = (int32_t)n; e->id = t->n++; e->stamp = t->stamp;
            return e->id;
        }
        if (e->h == h && e->len == n && same_bytes(e->p, p, n)) return e->id;
        i = (i + 1) & t->mask;
    }
}

/* ---------------------------------------------------------------- threads */

/* work on items [lo, hi) of a job; 0, or -1 when out of memory (no Python API here) */
typedef int (*RangeFn)(void *job, Py_ssize_t lo, Py_ssize_t hi);

typedef struct { RangeFn fn; void *job; Py_ssize_t lo, hi; int rc; } Part;

static void *part_main(void *arg)
{
    Part *p = arg;
    p->rc = p->fn(p->job, p->lo, p->hi);
    return NULL;
}

#define MAX_THREADS 16

/* Run fn over [0, n) in up to `threads` contiguous parts of about equal cost (cum: n + 1
 * prefix sums of a per-item cost), with the GIL released.  0, or -1 with MemoryError set. */
static int run_parts(RangeFn fn, void *job, Py_ssize_t n, int threads, const uint64_t *cum)
{
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = (int)n;
    if (threads < 1) threads = 1;
    Part parts[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    Py_ssize_t lo = 0;
    for (int t = 0; t < threads; t++) {
        Py_ssize_t hi = lo;
        uint64_t target = cum[n] / (uint64_t)threads * (uint64_t)(t + 1);
        if (t == threads - 1) hi = n;
        else while (hi < n && cum[hi] < target) hi++;
        parts[t] = (Part){fn, job, lo, hi, 0};
        lo = hi;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&tids[t], NULL, part_main, &parts[t]) == 0;
    part_main(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else part_main(&parts[t]);  /* no thread to be had: do it here */
    }
    Py_END_ALLOW_THREADS
    for (int t = 0; t < threads; t++)
        if (parts[t].rc) {
            PyErr_NoMemory();
            return -1;
        }
    return 0;
}

/* below this many bytes of input a kernel runs in the calling thread only */
#define PARALLEL_MIN_BYTES (1 << 20)

static int pick_threads(int threads, uint64_t bytes) { return bytes < PARALLEL_MIN_BYTES ? 1 : threads; }

/* ---------------------------------------------------------------- normalize_ascii */

enum { K_EMPTY = 0, K_ASCII = 1, K_OTHER = 2 };

typedef struct {
    const unsigned char **src;
    const Py_ssize_t *len;
    const uint64_t *off;  /* where item i's output starts in the arena (its input offset) */
    unsigned char *arena;
    Py_ssize_t *outlen;
} NormJob;

static int norm_part(void *vjob, Py_ssize_t lo, Py_ssize_t hi)
{
    NormJob *j = vjob;
    Buf drop = {0};
    for (Py_ssize_t i = lo; i < hi; i++) {
        if (!j->src[i]) continue;
        if (buf_reserve(&drop, (size_t)j->len[i] + 1)) { buf_free(&drop); return -1; }
        j->outlen[i] = norm_ascii(j->src[i], j->len[i], drop.p, j->arena + j->off[i]);
    }
    buf_free(&drop);
    return 0;
}

static PyObject *py_normalize_ascii(PyObject *self, PyObject *args)
{
    PyObject *arg, *tup = NULL, *res = NULL;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "O|i", &arg, &threads)) return NULL;
    if (!(tup = PySequence_Tuple(arg))) return NULL;  /* our own references while the GIL is released */
    Py_ssize_t n = PyTuple_GET_SIZE(tup);
    const unsigned char **src = calloc((size_t)n + 1, sizeof *src);
    Py_ssize_t *len = calloc((size_t)n + 1, sizeof *len), *outlen = calloc((size_t)n + 1, sizeof *outlen);
    uint64_t *off = calloc((size_t)n + 1, sizeof *off);
    char *kind = calloc((size_t)n + 1, 1);
    unsigned char *arena = NULL;
    if (!src || !len || !outlen || !off || !kind) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(tup, i);
        off[i + 1] = off[i];
        if (t == Py_None) continue;
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "normalize_ascii: item %zd is %.100s, not str", i, Py_TYPE(t)->tp_name);
            goto done;
        }
        if (!PyUnicode_IS_ASCII(t)) { kind[i] = K_OTHER; continue; }
        kind[i] = K_ASCII;
        src[i] = PyUnicode_1BYTE_DATA(t);
        len[i] = PyUnicode_GET_LENGTH(t);
        off[i + 1] += (uint64_t)len[i];
    }
    if (!(arena = malloc(off[n] + 1))) { PyErr_NoMemory(); goto done; }
    NormJob job = {src, len, off, arena, outlen};
    if (run_parts(norm_part, &job, n, pick_threads(threads, off[n]), off)) goto done;
    if (!(res = PyList_New(n))) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v;
        if (kind[i] == K_OTHER) {
            v = Py_None;
            Py_INCREF(v);
        } else {
            v = PyUnicode_New(outlen[i], 127);
            if (!v) { Py_CLEAR(res); goto done; }
            memcpy(PyUnicode_1BYTE_DATA(v), arena + off[i], (size_t)outlen[i]);
        }
        PyList_SET_ITEM(res, i, v);
    }
done:
    free(src); free(len); free(outlen); free(off); free(kind); free(arena);
    Py_DECREF(tup);
    return res;
}

/* ---------------------------------------------------------------- coverage */

typedef struct {
    const char **aptr, **cptr;
    const Py_ssize_t *alen, *clen;
    const Py_ssize_t *order, *start;  /* answers grouped by context */
    double *sv, *uv, *bv;
} CovJob;

/* the answers of contexts [klo, khi) */
static int cov_part(void *vjob, Py_ssize_t klo, Py_ssize_t khi)
{
    CovJob *J = vjob;
    Buf tmem = {0}, cids = {0}, aids = {0}, firsts = {0}, nexts = {0};
    Table tab = {0};
    int rc = -1;
    for (Py_ssize_t k = klo; k < khi; k++) {
        Py_ssize_t lo = J->start[k], hi = J->start[k + 1];
        if (lo == hi) continue;
        const char *c = J->cptr[k];
        Py_ssize_t clen = J->clen[k];
        /* the context's token ids and its token table */
        size_t ntok = clen ? 1 : 0;
        for (Py_ssize_t j = 0; j < clen; j++) ntok += c[j] == ' ';
        if (table_start(&tab, &tmem, ntok) || buf_reserve(&cids, (ntok + 1) * sizeof(int32_t))) goto out;
        int32_t *cid = cids.p;
        size_t ct = 0;
        for (Py_ssize_t j = 0, s0 = 0; clen && j <= clen; j++) {
            if (j == clen || c[j] == ' ') {
                cid[ct++] = table_id(&tab, c + s0, j - s0, 1);
                s0 = j + 1;
            }
        }
        /* where each token occurs: first[id], then nextp[position] (-1 ends the chain) */
        if (buf_reserve(&firsts, ((size_t)tab.n + 1) * sizeof(int32_t))
            || buf_reserve(&nexts, (ct + 1) * sizeof(int32_t))) goto out;
        int32_t *first = firsts.p, *nextp = nexts.p;
        for (int32_t d = 0; d < tab.n; d++) first[d] = -1;
        for (size_t j = ct; j-- > 0;) {  /* backwards: chains run in increasing position */
            nextp[j] = first[cid[j]];
            first[cid[j]] = (int32_t)j;
        }

        for (Py_ssize_t r = lo; r < hi; r++) {
            Py_ssize_t i = J->order[r], alen = J->alen[i];
            const char *a = J->aptr[i];
            double sv = 0.0, uv = 0.0, bv = 0.0;
            if (alen) {
                size_t na = 1;
                for (Py_ssize_t j = 0; j < alen; j++) na += a[j] == ' ';
                if (buf_reserve(&aids, na * sizeof(int32_t))) goto out;
                int32_t *aid = aids.p;
                size_t m = 0, hits = 0;
                for (Py_ssize_t j = 0, s0 = 0; j <= alen; j++) {
                    if (j == alen || a[j] == ' ') {
                        int32_t id = ct ? table_id(&tab, a + s0, j - s0, 0) : -1;
                        hits += id >= 0;
                        aid[m++] = id;
                        s0 = j + 1;
                    }
                }
                int is_span = 0;
                if (hits == m && m <= ct) {  /* every token is a context token: a contiguous run? */
                    for (int32_t p = first[aid[0]]; p >= 0 && (size_t)p + m <= ct && !is_span; p = nextp[p]) {
                        size_t q = 1;
                        while (q < m && cid[p + q] == aid[q]) q++;
                        is_span = q == m;
                    }
                }
                if (is_span) {
                    sv = uv = bv = 1.0;
                } else {
                    uv = (double)hits / (double)m;
                    if (m == 1) {
                        bv = uv;  /* a one-token answer is scored on its whole run */
                    } else {
                        size_t b = 0;
                        for (size_t j = 0; j + 1 < m; j++) {
                            if (aid[j] < 0 || aid[j + 1] < 0) continue;
                            /* "x y" is a bigram of the context when y follows some x */
                            int32_t p = first[aid[j]];
                            while (p >= 0 && ((size_t)p + 1 >= ct || cid[p + 1] != aid[j + 1])) p = nextp[p];
                            b += p >= 0;
                        }
                        bv = (double)b / (double)(m - 1);
                    }
                }
            }
            J->sv[i] = sv;
            J->uv[i] = uv;
            J->bv[i] = bv;
        }
    }
    rc = 0;
out:
    buf_free(&tmem); buf_free(&cids); buf_free(&aids); buf_free(&firsts); buf_free(&nexts);
    return rc;
}

/* UTF-8 view of a normalised str (tokens separated by single spaces); None is "" */
static const char *utf8_of(PyObject *o, Py_ssize_t *n, const char *what, Py_ssize_t i)
{
    if (o == Py_None) { *n = 0; return ""; }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "coverage: %s %zd is %.100s, not str", what, i, Py_TYPE(o)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(o, n);
}

static PyObject *float_list(const double *v, Py_ssize_t n)
{
    PyObject *l = PyList_New(n);
    for (Py_ssize_t i = 0; l && i < n; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (!f) { Py_CLEAR(l); break; }
        PyList_SET_ITEM(l, i, f);
    }
    return l;
}

static PyObject *py_coverage(PyObject *self, PyObject *args)
{
    PyObject *a_arg, *k_arg, *c_arg, *atup = NULL, *ktup = NULL, *ctup = NULL, *ret = NULL;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOO|i", &a_arg, &k_arg, &c_arg, &threads)) return NULL;
    Py_ssize_t *keys = NULL, *order = NULL, *start = NULL, *alen = NULL, *clen = NULL;
    const char **aptr = NULL, **cptr = NULL;
    double *vals = NULL;
    uint64_t *cum = NULL;
    atup = PySequence_Tuple(a_arg);
    ktup = atup ? PySequence_Tuple(k_arg) : NULL;
    ctup = ktup ? PySequence_Tuple(c_arg) : NULL;
    if (!ctup) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(atup), nc = PyTuple_GET_SIZE(ctup);
    if (PyTuple_GET_SIZE(ktup) != n) {
        PyErr_SetString(PyExc_ValueError, "coverage: answers and keys differ in length");
        goto done;
    }
    keys = malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    order = malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    alen = malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    aptr = malloc(sizeof(char *) * (size_t)(n + 1));
    start = calloc((size_t)nc + 2, sizeof(Py_ssize_t));
    clen = calloc((size_t)nc + 1, sizeof(Py_ssize_t));
    cptr = calloc((size_t)nc + 1, sizeof(char *));
    cum = calloc((size_t)nc + 1, sizeof(uint64_t));
    vals = malloc(sizeof(double) * 3 * (size_t)(n + 1));
    if (!keys || !order || !alen || !aptr || !start || !clen || !cptr || !cum || !vals) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(ktup, i));
        if (k == -1 && PyErr_Occurred()) goto done;
        if (k < 0 || k >= nc) {
            PyErr_Format(PyExc_IndexError, "coverage: key %zd of item %zd is out of range", k, i);
            goto done;
        }
        if (!(aptr[i] = utf8_of(PyTuple_GET_ITEM(atup, i), &alen[i], "answer", i))) goto done;
        keys[i] = k;
        start[k + 1]++;
        cum[k + 1] += (uint64_t)alen[i];
    }
    for (Py_ssize_t k = 0; k < nc; k++) {
        if (start[k + 1] && !(cptr[k] = utf8_of(PyTuple_GET_ITEM(ctup, k), &clen[k], "context", k))) goto done;
        start[k + 1] += start[k];  /* counting sort by context */
        cum[k + 1] += cum[k] + (uint64_t)clen[k];
    }
    for (Py_ssize_t i = 0; i < n; i++) order[start[keys[i]]++] = i;
    for (Py_ssize_t k = nc; k > 0; k--) start[k] = start[k - 1];
    start[0] = 0;
    CovJob job = {aptr, cptr, alen, clen, order, start, vals, vals + n, vals + 2 * n};
    if (run_parts(cov_part, &job, nc, pick_threads(threads, cum[nc]), cum)) goto done;
    PyObject *span = float_list(vals, n), *uni = span ? float_list(vals + n, n) : NULL;
    PyObject *bi = uni ? float_list(vals + 2 * n, n) : NULL;
    if (bi) ret = PyTuple_Pack(3, span, uni, bi);
    Py_XDECREF(span); Py_XDECREF(uni); Py_XDECREF(bi);
done:
    free(keys); free(order); free(start); free(alen); free(clen); free(aptr); free(cptr); free(cum); free(vals);
    Py_XDECREF(atup); Py_XDECREF(ktup); Py_XDECREF(ctup);
    return ret;
}

/* ---------------------------------------------------------------- ROUGE-L */

/* rouge_score's tokeniser without stemming, on lowercased text (ASCII, or the UTF-8 of
 * str.lower()): the maximal runs of [a-z0-9] ("A"-"Z" are lowered here for ASCII input).
 * Token bytes go to chars, (offset, length) pairs to toks.  The count, or -1 (memory). */
static Py_ssize_t rouge_tokens(const unsigned char *p, Py_ssize_t n, Buf *chars, Buf *toks)
{
    if (buf_reserve(chars, (size_t)n + 1) || buf_reserve(toks, sizeof(int32_t) * 2 * ((size_t)n / 2 + 2))) return -1;
    unsigned char *out = chars->p;
    int32_t *tk = toks->p;
    Py_ssize_t nt = 0, o = 0, st = -1;
    for (Py_ssize_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? ALNUM_LOWER[p[i]] : 0;
        if (c) {
            if (st < 0) st = o;
            out[o++] = c;
        } else if (st >= 0) {
            tk[2 * nt] = (int32_t)st;
            tk[2 * nt + 1] = (int32_t)(o - st);
            nt++;
            st = -1;
        }
    }
    return nt;
}

typedef struct {
    const unsigned char **tptr, **pptr;  /* target (reference) and prediction (answer) per pair */
    const Py_ssize_t *tlen, *plen;
    double *f;
} RougeJob;

static int rouge_part(void *vjob, Py_ssize_t lo, Py_ssize_t hi)
{
    RougeJob *J = vjob;
    Buf tchars = {0}, ttoks = {0}, tids = {0}, pchars = {0}, ptoks = {0}, tmem = {0}, masks = {0}, vbits = {0};
    Table tab = {0};
    const unsigned char *last = NULL;  /* the target whose table and masks are built */
    Py_ssize_t last_len = -1, nt = 0;
    size_t W = 0;
    int rc = -1;
    for (Py_ssize_t i = lo; i < hi; i++) {
        if (J->tptr[i] != last || J->tlen[i] != last_len) {  /* the candidates of an example share it */
            last = J->tptr[i];
            last_len = J->tlen[i];
            if ((nt = rouge_tokens(last, last_len, &tchars, &ttoks)) < 0) goto out;
            W = ((size_t)nt + 63) / 64;
            if (table_start(&tab, &tmem, (size_t)nt)) goto out;
            if (buf_reserve(&tids, ((size_t)nt + 1) * sizeof(int32_t))) goto out;
            const char *tc = tchars.p;
            const int32_t *tt = ttoks.p;
            int32_t *ids = tids.p;
            for (Py_ssize_t j = 0; j < nt; j++) ids[j] = table_id(&tab, tc + tt[2 * j], tt[2 * j + 1], 1);
            /* one bit per target token in the mask of its distinct token */
            size_t mask_words = ((size_t)tab.n + 1) * W;
            if (buf_reserve(&masks, mask_words * sizeof(uint64_t)) || buf_reserve(&vbits, (W + 1) * sizeof(uint64_t)))
                goto out;
            uint64_t *M = masks.p;
            memset(M, 0, mask_words * sizeof(uint64_t));
            for (Py_ssize_t j = 0; j < nt; j++) M[(size_t)ids[j] * W + (size_t)j / 64] |= 1ULL << (j % 64);
        }
        Py_ssize_t np_ = rouge_tokens(J->pptr[i], J->plen[i], &pchars, &ptoks);
        if (np_ < 0) goto out;
        if (nt == 0 || np_ == 0) { J->f[i] = 0.0; continue; }
        /* Hyyro's bit-parallel LCS length */
        const char *pc = pchars.p;
        const int32_t *pt = ptoks.p;
        const uint64_t *M = masks.p;
        uint64_t *V = vbits.p;
        memset(V, 0xff, W * sizeof(uint64_t));
        for (Py_ssize_t j = 0; j < np_; j++) {
            int32_t id = table_id(&tab, pc + pt[2 * j], pt[2 * j + 1], 0);
            if (id < 0) continue;  /* a token absent from the target changes nothing */
            const uint64_t *row = M + (size_t)id * W;
            uint64_t carry = 0;
            for (size_t w = 0; w < W; w++) {
                uint64_t v = V[w], u = v & row[w];
                uint64_t sum = v + u;
                uint64_t c1 = sum < v;
                sum += carry;
                carry = c1 | (sum < carry);
                V[w] = sum | (v & ~u);
            }
        }
        Py_ssize_t lcs = 0;
        for (size_t w = 0; w < W; w++) {
            uint64_t live = (w + 1 < W || nt % 64 == 0) ? ~0ULL : ((1ULL << (nt % 64)) - 1);
            lcs += __builtin_popcountll(~V[w] & live);
        }
        /* rouge_score: precision, recall, then fmeasure = 2 * p * r / (p + r), in that order */
        double prec = (double)lcs / (double)np_, rec = (double)lcs / (double)nt;
        J->f[i] = prec + rec > 0 ? 2.0 * prec * rec / (prec + rec) : 0.0;
    }
    rc = 0;
out:
    buf_free(&tchars); buf_free(&ttoks); buf_free(&tids); buf_free(&pchars); buf_free(&ptoks);
    buf_free(&tmem); buf_free(&masks); buf_free(&vbits);
    return rc;
}

/* the lowercased bytes rouge_score tokenises: an ASCII str as it is (lowered while
 * tokenising), any other through str.lower() (which may map to ASCII: the Kelvin sign
 * becomes "k") encoded as UTF-8, lone surrogates passed through (like every non-ASCII
 * character they only separate tokens), the bytes kept alive in `keep` */
static const unsigned char *rouge_view(PyObject *s, Py_ssize_t *n, PyObject *keep)
{
    if (PyUnicode_IS_ASCII(s)) {
        *n = PyUnicode_GET_LENGTH(s);
        return PyUnicode_1BYTE_DATA(s);
    }
    PyObject *low = PyObject_CallMethod(s, "lower", NULL);
    if (!low) return NULL;
    PyObject *bytes = PyUnicode_AsEncodedString(low, "utf-8", "surrogatepass");
    Py_DECREF(low);
    if (!bytes) return NULL;
    int bad = PyList_Append(keep, bytes);
    Py_DECREF(bytes);  /* keep holds it */
    if (bad) return NULL;
    *n = PyBytes_GET_SIZE(bytes);
    return (const unsigned char *)PyBytes_AS_STRING(bytes);
}

/* max over references, as judging.rouge.rouge_l_f1_many: None when an item has no
 * (non-None) reference, 0.0 for an empty answer */
static PyObject *py_rouge_l_max(PyObject *self, PyObject *args)
{
    PyObject *a_arg, *r_arg, *atup = NULL, *rtup = NULL, *keep = NULL, *res = NULL;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OO|i", &a_arg, &r_arg, &threads)) return NULL;
    Buf owner = {0}, tptr = {0}, pptr = {0}, tlen = {0}, plen = {0};
    char *state = NULL;  /* per item: 0 no reference, 1 scored (0.0 unless a pair beats it) */
    double *f = NULL;
    uint64_t *cum = NULL;
    Py_ssize_t np = 0;
    atup = PySequence_Tuple(a_arg);
    rtup = atup ? PySequence_Tuple(r_arg) : NULL;
    keep = rtup ? PyList_New(0) : NULL;
    if (!keep) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(atup);
    if (PyTuple_GET_SIZE(rtup) != n) {
        PyErr_SetString(PyExc_ValueError, "rouge_l_max: answers and references differ in length");
        goto done;
    }
    if (!(state = calloc((size_t)n + 1, 1))) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(atup, i), *refs = PyTuple_GET_ITEM(rtup, i), *rs;
        if (a != Py_None && !PyUnicode_Check(a)) {
            PyErr_Format(PyExc_TypeError, "rouge_l_max: answer %zd is %.100s, not str", i, Py_TYPE(a)->tp_name);
            goto done;
        }
        if (refs == Py_None) continue;
        if (!(rs = PySequence_Fast(refs, "rouge_l_max: references must be sequences of str"))) goto done;
        const unsigned char *ap = NULL;
        Py_ssize_t al = 0;
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(rs); j++) {
            PyObject *r = PySequence_Fast_GET_ITEM(rs, j);
            if (r == Py_None) continue;
            if (!PyUnicode_Check(r)) {
                PyErr_Format(PyExc_TypeError, "rouge_l_max: reference %zd of item %zd is %.100s, not str", j, i,
                             Py_TYPE(r)->tp_name);
                Py_DECREF(rs);
                goto done;
            }
            state[i] = 1;
            if (a == Py_None || PyUnicode_GET_LENGTH(a) == 0) break;  /* an empty answer scores 0.0 */
            if (!ap && !(ap = rouge_view(a, &al, keep))) { Py_DECREF(rs); goto done; }
            Py_ssize_t rl;
            const unsigned char *rp = rouge_view(r, &rl, keep);
            if (!rp || buf_reserve(&owner, sizeof(Py_ssize_t) * (size_t)(np + 1))
                || buf_reserve(&tptr, sizeof(char *) * (size_t)(np + 1)) || buf_reserve(&pptr, sizeof(char *) * (size_t)(np + 1))
                || buf_reserve(&tlen, sizeof(Py_ssize_t) * (size_t)(np + 1))
                || buf_reserve(&plen, sizeof(Py_ssize_t) * (size_t)(np + 1))) {
                if (!PyErr_Occurred()) PyErr_NoMemory();
                Py_DECREF(rs);
                goto done;
            }
            ((Py_ssize_t *)owner.p)[np] = i;
            ((const unsigned char **)tptr.p)[np] = rp;
            ((Py_ssize_t *)tlen.p)[np] = rl;
            ((const unsigned char **)pptr.p)[np] = ap;
            ((Py_ssize_t *)plen.p)[np] = al;
            np++;
        }
        Py_DECREF(rs);
    }
    f = malloc(sizeof(double) * (size_t)(np + 1));
    cum = malloc(sizeof(uint64_t) * (size_t)(np + 1));
    if (!f || !cum) { PyErr_NoMemory(); goto done; }
    cum[0] = 0;
    for (Py_ssize_t k = 0; k < np; k++)  /* the LCS costs about |target| x |prediction| / 64 */
        cum[k + 1] = cum[k] + (uint64_t)((Py_ssize_t *)plen.p)[k] * (1 + (uint64_t)((Py_ssize_t *)tlen.p)[k] / 512);
    RougeJob job = {tptr.p, pptr.p, tlen.p, plen.p, f};
    if (run_parts(rouge_part, &job, np, pick_threads(threads, cum[np]), cum)) goto done;
    double *best = calloc((size_t)n + 1, sizeof(double));
    if (!best) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < np; k++) {
        Py_ssize_t i = ((Py_ssize_t *)owner.p)[k];
        if (f[k] > best[i]) best[i] = f[k];
    }
    if ((res = PyList_New(n))) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = state[i] ? PyFloat_FromDouble(best[i]) : (Py_INCREF(Py_None), Py_None);
            if (!v) { Py_CLEAR(res); break; }
            PyList_SET_ITEM(res, i, v);
        }
    }
    free(best);
done:
    buf_free(&owner); buf_free(&tptr); buf_free(&pptr); buf_free(&tlen); buf_free(&plen);
    free(state); free(f); free(cum);
    Py_XDECREF(atup); Py_XDECREF(rtup); Py_XDECREF(keep);
    return res;
}

/* ---------------------------------------------------------------- exact match */

/* exact_match(answers, references, normalize): answers already normalised; each item's
 * references normalised here (ASCII in C, others by the Python callable `normalize`), once
 * per run of items sharing one reference list.  None: no reference; 1.0 when the non-empty
 * answer equals a normalised reference; else 0.0 (judging.exact_match.exact_match_many). */
static PyObject *py_exact_match(PyObject *self, PyObject *args)
{
    PyObject *a_arg, *r_arg, *norm_fn, *atup = NULL, *rtup = NULL, *res = NULL, *prev = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &a_arg, &r_arg, &norm_fn)) return NULL;
    Buf chars = {0}, spans = {0}, drop = {0};
    Py_ssize_t nref = 0;
    atup = PySequence_Tuple(a_arg);
    rtup = atup ? PySequence_Tuple(r_arg) : NULL;
    if (!rtup) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(atup);
    if (PyTuple_GET_SIZE(rtup) != n) {
        PyErr_SetString(PyExc_ValueError, "exact_match: answers and references differ in length");
        goto done;
    }
    if (!(res = PyList_New(n))) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *refs = PyTuple_GET_ITEM(rtup, i), *v;
        if (refs != prev) {  /* normalise this reference list into chars (offset, length pairs) */
            nref = 0;
            prev = refs;
            size_t used = 0;
            PyObject *rs = refs == Py_None ? NULL : PySequence_Fast(refs, "exact_match: references must be sequences");
            if (!rs && refs != Py_None) goto fail;
            for (Py_ssize_t j = 0; rs && j < PySequence_Fast_GET_SIZE(rs); j++) {
                PyObject *r = PySequence_Fast_GET_ITEM(rs, j), *low = NULL;
                if (r == Py_None) continue;
                if (!PyUnicode_Check(r)) {
                    PyErr_Format(PyExc_TypeError, "exact_match: reference %zd of item %zd is %.100s, not str", j, i,
                                 Py_TYPE(r)->tp_name);
                    Py_DECREF(rs);
                    goto fail;
                }
                const char *src;
                Py_ssize_t len;
                if (!PyUnicode_IS_ASCII(r)) {  /* the Python normaliser, then its UTF-8 */
                    if (!(low = PyObject_CallOneArg(norm_fn, r)) || !(src = PyUnicode_AsUTF8AndSize(low, &len))) {
                        Py_XDECREF(low);
                        Py_DECREF(rs);
                        goto fail;
                    }
                } else {
                    src = (const char *)PyUnicode_1BYTE_DATA(r);
                    len = PyUnicode_GET_LENGTH(r);
                }
                if (buf_reserve(&chars, used + (size_t)len + 1) || buf_reserve(&drop, (size_t)len + 1)
                    || buf_reserve(&spans, sizeof(Py_ssize_t) * 2 * (size_t)(nref + 1))) {
                    Py_XDECREF(low);
                    Py_DECREF(rs);
                    PyErr_NoMemory();
                    goto fail;
                }
                char *dst = (char *)chars.p + used;
                Py_ssize_t m = len;
                if (low) memcpy(dst, src, (size_t)len);
                else m = norm_ascii((const unsigned char *)src, len, drop.p, (unsigned char *)dst);
                Py_XDECREF(low);
                ((Py_ssize_t *)spans.p)[2 * nref] = (Py_ssize_t)used;
                ((Py_ssize_t *)spans.p)[2 * nref + 1] = m;
                used += (size_t)m;
                nref++;
            }
            Py_XDECREF(rs);
        }
        if (nref == 0) {
            v = Py_None;
            Py_INCREF(v);
        } else {
            Py_ssize_t al;
            const char *a = utf8_of(PyTuple_GET_ITEM(atup, i), &al, "answer", i);
            if (!a) goto fail;
            int hit = 0;
            for (Py_ssize_t j = 0; al && j < nref && !hit; j++) {
                const Py_ssize_t *sp = (Py_ssize_t *)spans.p + 2 * j;
                hit = sp[1] == al && memcmp((char *)chars.p + sp[0], a, (size_t)al) == 0;
            }
            v = PyFloat_FromDouble(hit ? 1.0 : 0.0);
            if (!v) goto fail;
        }
        PyList_SET_ITEM(res, i, v);
    }
    goto done;
fail:
    Py_CLEAR(res);
done:
    buf_free(&chars); buf_free(&spans); buf_free(&drop);
    Py_XDECREF(atup); Py_XDECREF(rtup);
    return res;
}

static PyMethodDef methods[] = {
    {"normalize_ascii", py_normalize_ascii, METH_VARARGS,
     "normalize_ascii(texts, threads=1) -> A.2-normalised ASCII texts (None for non-ASCII items, '' for None)."},
    {"coverage", py_coverage, METH_VARARGS,
     "coverage(answers, keys, contexts, threads=1) -> (span, unigram, bigram) lists of floats."},
    {"rouge_l_max", py_rouge_l_max, METH_VARARGS,
     "rouge_l_max(answers, reference_lists, threads=1) -> max ROUGE-L F1 per answer (None: no reference)."},
    {"exact_match", py_exact_match, METH_VARARGS,
     "exact_match(normalised_answers, reference_lists, normalize) -> 1.0 / 0.0 / None per answer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Native metric kernels.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void)
{
    init_tables();
    return PyModule_Create(&module);
}
