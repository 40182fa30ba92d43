/*
 * otel_ai.native._native — OTLP/protobuf trace requests → one ClickHouse ``Native`` block.
 *
 * The "native" decoder (docs/decisions/0003-decode-path.md): the protobuf wire format is walked once, in C,
 * and each span becomes one row of ``otel_traces`` written straight into column buffers, encoded
 * exactly like the python decoder (``decode_python._spans``) and the contrib exporter: lowercase
 * hex ids, span kind and status code names, ``Value.AsString`` attribute maps (last duplicate key
 * wins, first position kept). ClickHouse then only has to copy columns into a part (no protobuf
 * parsing, no flatten SQL, no per-insert query analysis).
 *
 * Array and kvlist values are rendered as Go's encoding/json writes pdata ``AsRaw()`` (keys
 * sorted, HTML-safe escapes, "" when a NaN/Inf sits inside). What this file does not render —
 * times past 2^63 ns, a known field with an unexpected wire type, a composite value merged from
 * two occurrences, nesting past 64 levels — raises ``Unsupported``: the caller writes that batch
 * through the engine or python decoder instead. Malformed protobuf raises ``ValueError``. Protobuf merge semantics hold:
 * fields in any order, repeated singular messages merged, last scalar wins, unknown fields skipped.
 *
 * Native block layout (what clickhouse-connect writes for HTTP and INFILE inserts, revision 0):
 * varint column count, varint row count, then per column its name, its type and its data.
 * String = varint length + bytes per row; Map(K, V) = cumulative UInt64 offsets, all keys, all
 * values; Array(T) = cumulative UInt64 offsets, then the nested column. Types are sent as plain
 * String / Map(String, String); ClickHouse converts them to the table's LowCardinality types.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the Native encoder writes little-endian integers with memcpy"
#endif

enum { OK = 0, E_MALFORMED = -1, E_UNSUPPORTED = -2, E_NOMEM = -3 };

static PyObject *Unsupported;

/* -- growable byte buffers ---------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static int buf_grow(buf_t *b, size_t extra) {
    size_t need = b->n + extra;
    if (need <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return E_NOMEM;
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int put(buf_t *b, const void *data, size_t len) {
    if (b->n + len > b->cap && buf_grow(b, len)) return E_NOMEM;
    if (len) memcpy(b->p + b->n, data, len);
    b->n += len;
    return OK;
}

static inline int put_varint(buf_t *b, uint64_t v) {
    if (b->n + 10 > b->cap && buf_grow(b, 10)) return E_NOMEM;
    while (v >= 0x80) {
        b->p[b->n++] = (char)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (char)v;
    return OK;
}

static inline int put_str(buf_t *b, const void *s, size_t len) {
    if (put_varint(b, len)) return E_NOMEM;
    return put(b, s, len);
}

static inline int put_u64(buf_t *b, uint64_t v) { return put(b, &v, 8); }
static inline int put_u32(buf_t *b, uint32_t v) { return put(b, &v, 4); }

static const char HEX[] = "0123456789abcdef";

static int put_hex(buf_t *b, const uint8_t *s, size_t len) {
    if (put_varint(b, 2 * len) || buf_grow(b, 2 * len)) return E_NOMEM;
    char *o = b->p + b->n;
    for (size_t i = 0; i < len; i++) {
        o[2 * i] = HEX[s[i] >> 4];
        o[2 * i + 1] = HEX[s[i] & 15];
    }
    b->n += 2 * len;
    return OK;
}

/* -- protobuf wire reader ----------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} rd_t;

static inline int rd_varint(rd_t *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return E_MALFORMED;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return E_MALFORMED;
}

/* The next field: its number, wire type and, for length-delimited fields, a sub-reader;
 * for varint and fixed fields, the value. */
typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;
    rd_t sub;
} field_t;

static int rd_field(rd_t *r, field_t *f) {
    uint64_t tag, len;
    if (rd_varint(r, &tag)) return E_MALFORMED;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (f->num == 0 || tag >> 3 > 0x1FFFFFFF) return E_MALFORMED;
    switch (f->wt) {
    case 0:
        return rd_varint(r, &f->v);
    case 1:
        if (r->end - r->p < 8) return E_MALFORMED;
        memcpy(&f->v, r->p, 8);
        r->p += 8;
        return OK;
    case 5: {
        uint32_t v32;
        if (r->end - r->p < 4) return E_MALFORMED;
        memcpy(&v32, r->p, 4);
        f->v = v32;
        r->p += 4;
        return OK;
    }
    case 2:
        if (rd_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return E_MALFORMED;
        f->sub.p = r->p;
        f->sub.end = r->p + len;
        r->p += len;
        return OK;
    default: /* groups (3, 4) are not part of OTLP; 6 and 7 are invalid */
        return E_MALFORMED;
    }
}

/* A known field with an unexpected wire type is an unknown field to upb (kept, ignored); rather
 * than guess, such a request goes to the exact decoders. */
#define WANT(f, type) \
    if ((f)->wt != (type)) return E_UNSUPPORTED

/* -- AnyValue → Value.AsString ------------------------------------------------------------------ */

/* The shortest decimal digits that read back as ``x`` (finite, non-zero), like Python's repr
 * (David Gay's mode 0): ``digits`` gets p digits, the return value is the decimal exponent E of
 * d.ddd x 10^E. For each length p the correctly rounded candidate is tried, then its two
 * neighbours (at a power-of-two boundary the rounding interval is lopsided, and a neighbour can
 * read back while the nearest does not); the closest that reads back wins. */
static int shortest(double x, char *digits, int *p_out) {
    char tmp[40];
    for (int p = 1;; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
        char *e = strchr(tmp, 'e');
        int exp10 = atoi(e + 1);
        uint64_t d = 0, lo = 1;
        for (char *c = tmp; c < e; c++)
            if (*c >= '0' && *c <= '9') d = d * 10 + (uint64_t)(*c - '0');
        for (int i = 1; i < p; i++) lo *= 10;
        /* 17 significant digits always read back; below that, the nearest candidate or (at a
         * lopsided interval) one neighbour — both cannot read back when the nearest does not */
        uint64_t found = (p == 17 || strtod(tmp, NULL) == x) ? d : 0;
        for (int s = -1; !found && p > 1 && s <= 1; s += 2) {
            uint64_t c = s < 0 ? d - 1 : d + 1;
            if (c < lo || c >= lo * 10) continue;
            snprintf(tmp, sizeof tmp, "%llue%d", (unsigned long long)c, exp10 - (p - 1));
            if (strtod(tmp, NULL) == x) found = c;
        }
        if (found) {
            snprintf(digits, 20, "%llu", (unsigned long long)found);
            *p_out = p;
            return exp10;
        }
    }
}

/* pdata float64AsString (ES6 number format, Go's encoding/json): shortest round-trip digits,
 * fixed notation unless |x| < 1e-6 or |x| >= 1e21, exponent without leading zeros (1e-7,
 * 1e+21); NaN and the infinities as Go's marshal error text. See decode_values.go_float. */
static int put_go_float(buf_t *b, double x) {
    if (isnan(x)) return put(b, "json: unsupported value: NaN", 28);
    if (isinf(x)) return x > 0 ? put(b, "json: unsupported value: +Inf", 29) : put(b, "json: unsupported value: -Inf", 29);
    if (x == 0) return signbit(x) ? put(b, "-0", 2) : put(b, "0", 1);
    char digits[24], out[400];
    int p, n = 0;
    int exp10 = shortest(fabs(x), digits, &p);
    if (x < 0) out[n++] = '-';
    if (exp10 < -6 || exp10 >= 21) {
        out[n++] = digits[0];
        if (p > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, (size_t)(p - 1));
            n += p - 1;
        }
        n += snprintf(out + n, 16, "e%c%d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else {
        int point = exp10 + 1; /* digits before the decimal point */
        if (point >= p) {
            memcpy(out + n, digits, (size_t)p);
            n += p;
            for (int i = p; i < point; i++) out[n++] = '0';
        } else if (point > 0) {
            memcpy(out + n, digits, (size_t)point);
            n += point;
            out[n++] = '.';
            memcpy(out + n, digits + point, (size_t)(p - point));
            n += p - point;
        } else {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -point; i++) out[n++] = '0';
            memcpy(out + n, digits, (size_t)p);
            n += p;
        }
    }
    return put(b, out, (size_t)n);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put_base64(buf_t *b, const uint8_t *s, size_t len) {
    size_t out = 4 * ((len + 2) / 3);
    if (buf_grow(b, out)) return E_NOMEM;
    char *o = b->p + b->n;
    size_t i = 0, j = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[j++] = B64[v >> 18];
        o[j++] = B64[(v >> 12) & 63];
        o[j++] = B64[(v >> 6) & 63];
        o[j++] = B64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
        o[j++] = B64[v >> 18];
        o[j++] = B64[(v >> 12) & 63];
        o[j++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        o[j++] = '=';
    }
    b->n += j;
    return OK;
}

static int put_int(buf_t *b, int64_t v, char *tmp /* >= 21 bytes */) {
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = 21;
    do {
        tmp[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--n] = '-';
    return put(b, tmp + n, (size_t)(21 - n));
}

/* One attributes map being built: entries point at keys in the request body and at values
 * rendered into ``vals``; a repeated key replaces the value and keeps its first position. */
typedef struct {
    const uint8_t *k;
    size_t klen, voff, vlen;
} ent_t;

/* A slot of an attribute map's key index: the entry's position and its key's hash; a slot is
 * in use only when its generation is the map's (so emptying the index is one increment). */
typedef struct {
    uint32_t gen, idx;
    uint64_t h;
} slot_t;

typedef struct {
    ent_t *e;
    size_t n, cap;
    buf_t vals;
    /* key index (open addressing), used from HASH_FROM entries on: linear-time deduplication */
    slot_t *ht;
    size_t htcap, hashed;
    uint32_t gen;
} amap_t;

static void amap_reset(amap_t *m) {
    m->n = 0;
    m->vals.n = 0;
}

/* An AnyValue: the oneof member last set and its payload (messages merge, so later occurrences
 * override only the members they set). */
typedef struct {
    int kind; /* 0 none, 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes */
    uint64_t num;
    rd_t data;
} anyv_t;

static int anyv_merge(anyv_t *v, rd_t av) {
    field_t g;
    while (av.p < av.end) {
        if (rd_field(&av, &g)) return E_MALFORMED;
        switch (g.num) {
        case 5: case 6:
            /* the same composite twice would merge (concatenate): not worth rendering here */
            if (v->kind == (int)g.num) return E_UNSUPPORTED;
            /* fall through */
        case 1: case 7:
            WANT(&g, 2);
            v->kind = (int)g.num;
            v->data = g.sub;
            break;
        case 2: case 3:
            WANT(&g, 0);
            v->kind = (int)g.num;
            v->num = g.v;
            break;
        case 4:
            WANT(&g, 1);
            v->kind = 4;
            v->num = g.v;
            break;
        default:
            break;
        }
    }
    return OK;
}

#define E_NOT_JSON 1 /* NaN or an infinity inside an array/kvlist: Go's marshal fails → "" */
#define MAX_DEPTH 64

/* JSON's two-character escapes, both ways: the character, then the letter after the backslash
 * (reading also accepts \/, writing never produces it). */
static const char SHORT_ESCAPES[][2] = {{'"', '"'}, {'\\', '\\'}, {'\n', 'n'}, {'\r', 'r'},
                                        {'\t', 't'}, {'\b', 'b'}, {'\f', 'f'}};

/* The other side of a pair: ``from`` 0 maps a character to its letter, 1 a letter to its character;
 * 0 when there is none. */
static char short_escape(char c, int from) {
    for (size_t i = 0; i < sizeof SHORT_ESCAPES / sizeof SHORT_ESCAPES[0]; i++)
        if (SHORT_ESCAPES[i][from] == c) return SHORT_ESCAPES[i][1 - from];
    return 0;
}

/* Go's encoding/json string: HTML-safe escapes, \u2028/\u2029, other controls as \u00xx. */
static int put_json_string(buf_t *b, const uint8_t *s, size_t len) {
    if (buf_grow(b, len + 2)) return E_NOMEM;
    b->p[b->n++] = '"';
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        const char *esc = NULL;
        char tmp[8];
        size_t skip = 1;
        if (c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&') {
            char letter = short_escape((char)c, 0);
            if (letter)
                snprintf(tmp, sizeof tmp, "\\%c", letter);
            else
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
            esc = s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            skip = 3;
        }
        if (!esc) continue;
        if (put(b, s + run, i - run) || put(b, esc, strlen(esc))) return E_NOMEM;
        i += skip - 1;
        run = i + 1;
    }
    if (put(b, s + run, len - run) || put(b, "\"", 1)) return E_NOMEM;
    return OK;
}

typedef struct {
    const uint8_t *k;
    size_t klen, index;
    rd_t value; /* the KeyValue's value occurrences are re-read from the whole KeyValue */
} kvent_t;

static int kvent_cmp(const void *a, const void *b) {
    const kvent_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->k, y->k, n);
    if (c) return c;
    if (x->klen != y->klen) return x->klen < y->klen ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static int put_json(buf_t *b, const anyv_t *v, int depth);

/* A KeyValue's key and merged value. */
static int kv_read(rd_t kv, const uint8_t **key, size_t *klen, anyv_t *v) {
    field_t f;
    int rc;
    *key = (const uint8_t *)"";
    *klen = 0;
    memset(v, 0, sizeof *v);
    while (kv.p < kv.end) {
        if (rd_field(&kv, &f)) return E_MALFORMED;
        if (f.num == 1) {
            WANT(&f, 2);
            *key = f.sub.p;
            *klen = (size_t)(f.sub.end - f.sub.p);
        } else if (f.num == 2) {
            WANT(&f, 2);
            if ((rc = anyv_merge(v, f.sub))) return rc;
        }
    }
    return OK;
}

static int put_json_kvlist(buf_t *b, rd_t list, int depth) {
    field_t f;
    size_t n = 0, cap = 0;
    kvent_t *ents = NULL;
    int rc = OK;
    rd_t r = list;
    while (r.p < r.end) {
        if (rd_field(&r, &f)) {
            rc = E_MALFORMED;
            goto out;
        }
        if (f.num != 1) continue;
        if (f.wt != 2) {
            rc = E_UNSUPPORTED;
            goto out;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            kvent_t *e = realloc(ents, cap * sizeof *e);
            if (!e) {
                rc = E_NOMEM;
                goto out;
            }
            ents = e;
        }
        anyv_t ignored;
        if ((rc = kv_read(f.sub, &ents[n].k, &ents[n].klen, &ignored))) goto out;
        ents[n].index = n;
        ents[n].value = f.sub;
        n++;
    }
    /* Go marshals a map with its keys sorted (bytewise); a repeated key keeps its last value */
    if (n > 1) qsort(ents, n, sizeof *ents, kvent_cmp);
    if ((rc = put(b, "{", 1))) goto out;
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && ents[i + 1].klen == ents[i].klen && memcmp(ents[i + 1].k, ents[i].k, ents[i].klen) == 0)
            continue;
        const uint8_t *k;
        size_t klen;
        anyv_t v;
        if ((rc = kv_read(ents[i].value, &k, &klen, &v))) goto out;
        if ((!first && (rc = put(b, ",", 1))) || (rc = put_json_string(b, k, klen)) || (rc = put(b, ":", 1)) ||
            (rc = put_json(b, &v, depth + 1)))
            goto out;
        first = 0;
    }
    rc = put(b, "}", 1);
out:
    free(ents);
    return rc;
}

/* Go's json.Marshal of pdata Value.AsRaw(). */
static int put_json(buf_t *b, const anyv_t *v, int depth) {
    char tmp[24];
    int rc;
    if (depth > MAX_DEPTH) return E_UNSUPPORTED;
    switch (v->kind) {
    case 1:
        return put_json_string(b, v->data.p, (size_t)(v->data.end - v->data.p));
    case 2:
        return v->num ? put(b, "true", 4) : put(b, "false", 5);
    case 3:
        return put_int(b, (int64_t)v->num, tmp);
    case 4: {
        double d;
        memcpy(&d, &v->num, 8);
        if (isnan(d) || isinf(d)) return E_NOT_JSON;
        return put_go_float(b, d);
    }
    case 7:
        if ((rc = put(b, "\"", 1)) || (rc = put_base64(b, v->data.p, (size_t)(v->data.end - v->data.p))))
            return rc;
        return put(b, "\"", 1);
    case 5: {
        rd_t r = v->data;
        field_t f;
        int first = 1;
        if ((rc = put(b, "[", 1))) return rc;
        while (r.p < r.end) {
            if (rd_field(&r, &f)) return E_MALFORMED;
            if (f.num != 1) continue;
            WANT(&f, 2);
            anyv_t e = {0};
            if ((rc = anyv_merge(&e, f.sub))) return rc;
            if ((!first && (rc = put(b, ",", 1))) || (rc = put_json(b, &e, depth + 1))) return rc;
            first = 0;
        }
        return put(b, "]", 1);
    }
    case 6:
        return put_json_kvlist(b, v->data, depth);
    default:
        return put(b, "null", 4);
    }
}

/* Below this many entries a map finds duplicate keys by scanning; from it on, by its key index. */
#define HASH_FROM 16

static inline uint64_t key_hash(const uint8_t *k, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void ht_put(amap_t *m, size_t idx, uint64_t h) {
    size_t mask = m->htcap - 1, i = (size_t)h & mask;
    while (m->ht[i].gen == m->gen) i = (i + 1) & mask;
    m->ht[i] = (slot_t){m->gen, (uint32_t)idx, h};
}

static void ht_clear(amap_t *m) {
    if (++m->gen == 0) { /* wrapped: empty every slot for real */
        if (m->ht) memset(m->ht, 0, m->htcap * sizeof *m->ht);
        m->gen = 1;
    }
    m->hashed = 0;
}

/* Make the index hold entries [0, n) with room for one more (none below HASH_FROM). A map emptied
 * since (n below what the index holds) starts a new generation. */
static int ht_ready(amap_t *m) {
    if (m->hashed > m->n) ht_clear(m);
    if (m->n < HASH_FROM) return OK;
    if (m->hashed == m->n && (m->n + 1) * 2 <= m->htcap) return OK;
    size_t cap = m->htcap ? m->htcap : 64;
    while ((m->n + 1) * 2 > cap) cap *= 2;
    if (cap != m->htcap) {
        slot_t *t = calloc(cap, sizeof *t);
        if (!t) return E_NOMEM;
        free(m->ht);
        m->ht = t;
        m->htcap = cap;
        m->gen = 1;
        m->hashed = 0;
    } else {
        ht_clear(m);
    }
    for (size_t i = 0; i < m->n; i++) ht_put(m, i, key_hash(m->e[i].k, m->e[i].klen));
    m->hashed = m->n;
    return OK;
}

/* Parse one KeyValue and add it to the map, its value rendered like pdata Value.AsString. A key
 * seen before keeps its first position and takes the new value (last wins), found by a scan of
 * the few entries of a small map or through the key index of a big one (linear time overall). */
static int amap_add(amap_t *m, rd_t kv) {
    const uint8_t *key;
    size_t klen;
    anyv_t v;
    int rc = kv_read(kv, &key, &klen, &v);
    if (rc) return rc;
    size_t voff = m->vals.n;
    char digits[24];
    switch (v.kind) {
    case 1:
        rc = put(&m->vals, v.data.p, (size_t)(v.data.end - v.data.p));
        break;
    case 2:
        rc = v.num ? put(&m->vals, "true", 4) : put(&m->vals, "false", 5);
        break;
    case 3:
        rc = put_int(&m->vals, (int64_t)v.num, digits);
        break;
    case 4: {
        double d;
        memcpy(&d, &v.num, 8);
        rc = put_go_float(&m->vals, d);
        break;
    }
    case 5: case 6:
        rc = put_json(&m->vals, &v, 0);
        if (rc == E_NOT_JSON) {
            m->vals.n = voff;
            rc = OK;
        }
        break;
    case 7:
        rc = put_base64(&m->vals, v.data.p, (size_t)(v.data.end - v.data.p));
        break;
    default: /* no value: "" */
        break;
    }
    if (rc) return rc;
    size_t vlen = m->vals.n - voff;
    if ((rc = ht_ready(m))) return rc;
    size_t slot = 0;
    uint64_t h = 0;
    if (m->n >= HASH_FROM) {
        h = key_hash(key, klen);
        size_t mask = m->htcap - 1;
        for (slot = (size_t)h & mask; m->ht[slot].gen == m->gen; slot = (slot + 1) & mask) {
            ent_t *e = &m->e[m->ht[slot].idx];
            if (m->ht[slot].h == h && e->klen == klen && memcmp(e->k, key, klen) == 0) {
                e->voff = voff;
                e->vlen = vlen;
                return OK;
            }
        }
    } else {
        for (size_t i = 0; i < m->n; i++) {
            if (m->e[i].klen == klen && memcmp(m->e[i].k, key, klen) == 0) {
                m->e[i].voff = voff;
                m->e[i].vlen = vlen;
                return OK;
            }
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        ent_t *e = realloc(m->e, cap * sizeof *e);
        if (!e) return E_NOMEM;
        m->e = e;
        m->cap = cap;
    }
    if (m->n >= HASH_FROM) {
        m->ht[slot] = (slot_t){m->gen, (uint32_t)m->n, h};
        m->hashed++;
    }
    m->e[m->n++] = (ent_t){key, klen, voff, vlen};
    return OK;
}

/* A Map(String, String) column: cumulative offsets, keys, values. */
typedef struct {
    buf_t off, keys, vals;
    uint64_t total;
} mapcol_t;

static int mapcol_put(mapcol_t *c, const amap_t *m) {
    for (size_t i = 0; i < m->n; i++) {
        if (put_str(&c->keys, m->e[i].k, m->e[i].klen)) return E_NOMEM;
        if (put_str(&c->vals, m->vals.p + m->e[i].voff, m->e[i].vlen)) return E_NOMEM;
    }
    c->total += m->n;
    return put_u64(&c->off, c->total);
}

/* A map rendered once and repeated on every row (resource and scope attributes). */
typedef struct {
    buf_t keys, vals;
    uint64_t n;
} frozen_t;

static int freeze(frozen_t *fz, const amap_t *m) {
    fz->keys.n = fz->vals.n = 0;
    fz->n = m->n;
    for (size_t i = 0; i < m->n; i++) {
        if (put_str(&fz->keys, m->e[i].k, m->e[i].klen)) return E_NOMEM;
        if (put_str(&fz->vals, m->vals.p + m->e[i].voff, m->e[i].vlen)) return E_NOMEM;
    }
    return OK;
}

static int mapcol_put_frozen(mapcol_t *c, const frozen_t *fz) {
    if (put(&c->keys, fz->keys.p, fz->keys.n) || put(&c->vals, fz->vals.p, fz->vals.n)) return E_NOMEM;
    c->total += fz->n;
    return put_u64(&c->off, c->total);
}

/* The ingest limits (otel_ai/otlp/limits.py states them; the caller passes them in): a span
 * starts within [min_ns, max_ns], an event time is below 2^63, a resource, scope, span, event or
 * link has at most max_attrs attributes of at most max_attr_bytes encoded bytes each, and the
 * resource and scope bytes repeated on every row sum to at most max_expansion. Checked on
 * protobuf by check_traces, and while transcoding OTLP/JSON by json_traces_checked. */
typedef struct {
    uint64_t spans;
    uint64_t min_ns, max_ns, max_attrs, max_attr_bytes, max_expansion;
    uint64_t expansion;
} ck_t;

#define CHECK_MAX_DEPTH 32 /* upb allows 100; deeper requests are rare and go to upb */

/* What the check needs of the span being transcoded: its ids' sizes (0 = absent), whether they
 * are nonzero, its start. */
typedef struct {
    size_t n_trace, n_span;
    int nz_trace, nz_span;
    uint64_t start;
} jids_t;

/* scratch of the OTLP/JSON transcoder: the protobuf it writes, the current key, a value; with
 * ``ck`` set it also applies check_traces' rules to the protobuf as it is written (one pass
 * instead of a second walk): ``ids`` is the current span's, ``head`` the resource or scope bytes
 * of the current ResourceSpans / ScopeSpans, ``wrappers`` the ArrayValue / KeyValueList levels
 * above (protobuf nests one message deeper than the JSON there). */
typedef struct {
    buf_t out, key, tmp;
    ck_t *ck;
    jids_t *ids;
    uint64_t head;
    int wrappers;
} jctx_t;

/* -- the otel_traces block ---------------------------------------------------------------------- */

typedef struct {
    uint64_t rows;
    buf_t ts, tid, sid, psid, tstate, name, kind, svc, scname, scver, dur, stcode, stmsg;
    buf_t flags, dattr, dev, dln, rurl, surl, enc, tr;
    mapcol_t rattr, sattr, scattr, evattr, lnattr;
    buf_t ev_off, ev_ts, ev_name;
    uint64_t ev_total;
    buf_t ln_off, ln_tid, ln_sid, ln_tstate;
    uint64_t ln_total;
    /* scratch */
    amap_t m_span, m_ev, m_res, m_scope;
    frozen_t fz_res, fz_scope;
    /* the current resource and scope */
    const uint8_t *svc_p;
    size_t svc_n;
    rd_t res_url, scope_name, scope_ver, scope_url;
    jctx_t json;
    /* the current payload's tags */
    const char *enc_s, *tr_s;
    Py_ssize_t enc_n, tr_n;
} block_t;

static void buf_free(buf_t *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
/* Every buffer of a block (columns, scratch maps, the JSON transcoder); returns how many. */
#define BLOCK_NBUFS 54
static size_t block_bufs(block_t *b, buf_t **out) {
    buf_t *all[] = {&b->ts, &b->tid, &b->sid, &b->psid, &b->tstate, &b->name, &b->kind, &b->svc,
                    &b->scname, &b->scver, &b->dur, &b->stcode, &b->stmsg, &b->flags, &b->dattr,
                    &b->dev, &b->dln, &b->rurl, &b->surl, &b->enc, &b->tr, &b->ev_off, &b->ev_ts,
                    &b->ev_name, &b->ln_off, &b->ln_tid, &b->ln_sid, &b->ln_tstate,
                    &b->fz_res.keys, &b->fz_res.vals, &b->fz_scope.keys, &b->fz_scope.vals,
                    &b->rattr.off, &b->rattr.keys, &b->rattr.vals, &b->sattr.off, &b->sattr.keys,
                    &b->sattr.vals, &b->scattr.off, &b->scattr.keys, &b->scattr.vals,
                    &b->evattr.off, &b->evattr.keys, &b->evattr.vals, &b->lnattr.off,
                    &b->lnattr.keys, &b->lnattr.vals, &b->m_span.vals, &b->m_ev.vals,
                    &b->m_res.vals, &b->m_scope.vals, &b->json.out, &b->json.key, &b->json.tmp};
    _Static_assert(sizeof all / sizeof all[0] == BLOCK_NBUFS, "BLOCK_NBUFS");
    memcpy(out, all, sizeof all);
    return BLOCK_NBUFS;
}

static void block_free(block_t *b) {
    buf_t *bufs[BLOCK_NBUFS];
    size_t n = block_bufs(b, bufs);
    for (size_t i = 0; i < n; i++) buf_free(bufs[i]);
    amap_t *maps[] = {&b->m_span, &b->m_ev, &b->m_res, &b->m_scope};
    for (size_t i = 0; i < 4; i++) {
        free(maps[i]->e);
        free(maps[i]->ht);
    }
}

/* Blocks keep their buffers between calls (a batch's columns are tens of MB: growing them anew
 * each time costs a realloc copy and fresh page faults per batch). The free list is touched only
 * with the GIL held. A buffer past KEEP_BYTES is freed instead of kept. */
#define POOL_SIZE 2
#define KEEP_BYTES (16u << 20) /* a block holding more than this is freed, not kept */
static block_t *pool[POOL_SIZE];
static int pool_n;

static block_t *block_get(void) {
    block_t *b = pool_n ? pool[--pool_n] : calloc(1, sizeof(block_t));
    return b;
}

static void block_put(block_t *b) {
    buf_t *bufs[BLOCK_NBUFS];
    size_t n = block_bufs(b, bufs), capacity = 0;
    for (size_t i = 0; i < n; i++) capacity += bufs[i]->cap;
    if (pool_n == POOL_SIZE || capacity > KEEP_BYTES) {
        block_free(b);
        free(b);
        return;
    }
    for (size_t i = 0; i < n; i++) bufs[i]->n = 0;
    b->rows = b->ev_total = b->ln_total = 0;
    b->rattr.total = b->sattr.total = b->scattr.total = b->evattr.total = b->lnattr.total = 0;
    b->m_span.n = b->m_ev.n = b->m_res.n = b->m_scope.n = 0;
    pool[pool_n++] = b;
}

static const char *SPAN_KINDS[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"};
static const char *STATUS_CODES[] = {"Unset", "Ok", "Error"};

static inline int put_rd_str(buf_t *b, rd_t s) { return put_str(b, s.p, (size_t)(s.end - s.p)); }
static inline int put_cstr(buf_t *b, const char *s) { return put_str(b, s, strlen(s)); }

static int pb_event(block_t *b, rd_t r) {
    field_t f;
    uint64_t time = 0;
    rd_t name = {NULL, NULL};
    amap_reset(&b->m_ev);
    while (r.p < r.end) {
        if (rd_field(&r, &f)) return E_MALFORMED;
        if (f.num == 1) {
            WANT(&f, 1);
            time = f.v;
        } else if (f.num == 2) {
            WANT(&f, 2);
            name = f.sub;
        } else if (f.num == 3) {
            WANT(&f, 2);
            int rc = amap_add(&b->m_ev, f.sub);
            if (rc) return rc;
        }
    }
    if (time > INT64_MAX) return E_UNSUPPORTED;
    b->ev_total++;
    if (put_u64(&b->ev_ts, time) || put_rd_str(&b->ev_name, name)) return E_NOMEM;
    return mapcol_put(&b->evattr, &b->m_ev);
}

static int pb_link(block_t *b, rd_t r) {
    field_t f;
    rd_t tid = {NULL, NULL}, sid = {NULL, NULL}, tstate = {NULL, NULL};
    amap_reset(&b->m_ev);
    while (r.p < r.end) {
        if (rd_field(&r, &f)) return E_MALFORMED;
        switch (f.num) {
        case 1: WANT(&f, 2); tid = f.sub; break;
        case 2: WANT(&f, 2); sid = f.sub; break;
        case 3: WANT(&f, 2); tstate = f.sub; break;
        case 4: {
            WANT(&f, 2);
            int rc = amap_add(&b->m_ev, f.sub);
            if (rc) return rc;
            break;
        }
        default: break;
        }
    }
    b->ln_total++;
    if (put_hex(&b->ln_tid, tid.p, (size_t)(tid.end - tid.p)) ||
        put_hex(&b->ln_sid, sid.p, (size_t)(sid.end - sid.p)) || put_rd_str(&b->ln_tstate, tstate))
        return E_NOMEM;
    return mapcol_put(&b->lnattr, &b->m_ev);
}

static int pb_span(block_t *b, rd_t r) {
    field_t f;
    rd_t tid = {NULL, NULL}, sid = {NULL, NULL}, psid = {NULL, NULL}, tstate = {NULL, NULL};
    rd_t name = {NULL, NULL}, stmsg = {NULL, NULL};
    uint64_t start = 0, end = 0, dattr = 0, dev = 0, dln = 0, flags = 0;
    int64_t kind = 0, code = 0;
    int rc;
    amap_reset(&b->m_span);
    while (r.p < r.end) {
        if (rd_field(&r, &f)) return E_MALFORMED;
        switch (f.num) {
        case 1: WANT(&f, 2); tid = f.sub; break;
        case 2: WANT(&f, 2); sid = f.sub; break;
        case 3: WANT(&f, 2); tstate = f.sub; break;
        case 4: WANT(&f, 2); psid = f.sub; break;
        case 5: WANT(&f, 2); name = f.sub; break;
        case 6: WANT(&f, 0); kind = (int64_t)f.v; break;
        case 7: WANT(&f, 1); start = f.v; break;
        case 8: WANT(&f, 1); end = f.v; break;
        case 9:
            WANT(&f, 2);
            if ((rc = amap_add(&b->m_span, f.sub))) return rc;
            break;
        case 10: WANT(&f, 0); dattr = f.v & 0xFFFFFFFFu; break;
        case 11:
            WANT(&f, 2);
            if ((rc = pb_event(b, f.sub))) return rc;
            break;
        case 12: WANT(&f, 0); dev = f.v & 0xFFFFFFFFu; break;
        case 13:
            WANT(&f, 2);
            if ((rc = pb_link(b, f.sub))) return rc;
            break;
        case 14: WANT(&f, 0); dln = f.v & 0xFFFFFFFFu; break;
        case 15: {
            WANT(&f, 2);
            rd_t st = f.sub;
            field_t g;
            while (st.p < st.end) {
                if (rd_field(&st, &g)) return E_MALFORMED;
                if (g.num == 2) {
                    WANT(&g, 2);
                    stmsg = g.sub;
                } else if (g.num == 3) {
                    WANT(&g, 0);
                    code = (int64_t)(int32_t)g.v;
                }
            }
            break;
        }
        case 16: WANT(&f, 5); flags = f.v; break;
        default: break;
        }
    }
    if (start > INT64_MAX) return E_UNSUPPORTED;
    /* int32 enums: a negative value arrives sign-extended to 64 bits */
    kind = (int32_t)kind;
    b->rows++;
    if (put_u64(&b->ts, start) || put_hex(&b->tid, tid.p, (size_t)(tid.end - tid.p)) ||
        put_hex(&b->sid, sid.p, (size_t)(sid.end - sid.p)) ||
        put_hex(&b->psid, psid.p, (size_t)(psid.end - psid.p)) || put_rd_str(&b->tstate, tstate) ||
        put_rd_str(&b->name, name) || put_cstr(&b->kind, kind >= 0 && kind < 6 ? SPAN_KINDS[kind] : "Unspecified") ||
        put_str(&b->svc, b->svc_p, b->svc_n) || mapcol_put_frozen(&b->rattr, &b->fz_res) ||
        put_rd_str(&b->scname, b->scope_name) || put_rd_str(&b->scver, b->scope_ver) ||
        mapcol_put(&b->sattr, &b->m_span) || put_u64(&b->dur, end > start ? end - start : 0) ||
        put_cstr(&b->stcode, code >= 0 && code < 3 ? STATUS_CODES[code] : "Unset") ||
        put_rd_str(&b->stmsg, stmsg) || put_u64(&b->ev_off, b->ev_total) ||
        put_u64(&b->ln_off, b->ln_total) || put_u32(&b->flags, (uint32_t)flags) ||
        put_u32(&b->dattr, (uint32_t)dattr) || put_u32(&b->dev, (uint32_t)dev) ||
        put_u32(&b->dln, (uint32_t)dln) || mapcol_put_frozen(&b->scattr, &b->fz_scope) ||
        put_rd_str(&b->rurl, b->res_url) || put_rd_str(&b->surl, b->scope_url) ||
        put_str(&b->enc, b->enc_s, (size_t)b->enc_n) || put_str(&b->tr, b->tr_s, (size_t)b->tr_n))
        return E_NOMEM;
    return OK;
}

static const rd_t EMPTY = {(const uint8_t *)"", (const uint8_t *)""};

/* Call ``fn`` on every occurrence of the message field ``num`` of the message in ``r``. */
static int each(block_t *b, rd_t r, uint32_t num, int (*fn)(block_t *, rd_t)) {
    field_t f;
    int rc;
    while (r.p < r.end) {
        if (rd_field(&r, &f)) return E_MALFORMED;
        if (f.num == num) {
            WANT(&f, 2);
            if ((rc = fn(b, f.sub))) return rc;
        }
    }
    return OK;
}

/* The InstrumentationScope: name, version, attributes. */
static int pb_scope(block_t *b, rd_t sc) {
    field_t g;
    int rc;
    while (sc.p < sc.end) {
        if (rd_field(&sc, &g)) return E_MALFORMED;
        if (g.num == 1) {
            WANT(&g, 2);
            b->scope_name = g.sub;
        } else if (g.num == 2) {
            WANT(&g, 2);
            b->scope_ver = g.sub;
        } else if (g.num == 3) {
            WANT(&g, 2);
            if ((rc = amap_add(&b->m_scope, g.sub))) return rc;
        }
    }
    return OK;
}

/* The Resource: its attributes (field 1). */
static int resource_attr(block_t *b, rd_t kv) { return amap_add(&b->m_res, kv); }
static int pb_resource(block_t *b, rd_t res) { return each(b, res, 1, resource_attr); }

/* ResourceSpans and ScopeSpans share a shape: field 1 the resource/scope, 2 the children, 3 the
 * schema URL. Pass 1 reads fields 1 and 3 wherever they sit among the children. */
static int header_pass(block_t *b, rd_t r, int (*head)(block_t *, rd_t), rd_t *url) {
    field_t f;
    int rc;
    while (r.p < r.end) {
        if (rd_field(&r, &f)) return E_MALFORMED;
        if (f.num == 1) {
            WANT(&f, 2);
            if ((rc = head(b, f.sub))) return rc;
        } else if (f.num == 3) {
            WANT(&f, 2);
            *url = f.sub;
        }
    }
    return OK;
}

static int scope_spans(block_t *b, rd_t r) {
    int rc;
    b->scope_name = b->scope_ver = b->scope_url = EMPTY;
    amap_reset(&b->m_scope);
    if ((rc = header_pass(b, r, pb_scope, &b->scope_url))) return rc;
    if ((rc = freeze(&b->fz_scope, &b->m_scope))) return rc;
    return each(b, r, 2, pb_span);
}

static int resource_spans(block_t *b, rd_t r) {
    int rc;
    b->res_url = EMPTY;
    amap_reset(&b->m_res);
    if ((rc = header_pass(b, r, pb_resource, &b->res_url))) return rc;
    if ((rc = freeze(&b->fz_res, &b->m_res))) return rc;
    b->svc_p = (const uint8_t *)"";
    b->svc_n = 0;
    for (size_t i = 0; i < b->m_res.n; i++) {
        const ent_t *e = &b->m_res.e[i];
        if (e->klen == 12 && memcmp(e->k, "service.name", 12) == 0) {
            /* points into m_res.vals, which stays untouched until the next resource */
            b->svc_p = (const uint8_t *)b->m_res.vals.p + e->voff;
            b->svc_n = e->vlen;
        }
    }
    return each(b, r, 2, scope_spans);
}

static int request(block_t *b, rd_t r) { return each(b, r, 1, resource_spans); }

/* -- OTLP/JSON → protobuf -------------------------------------------------------------------------
 *
 * An OTLP/JSON trace request is transcoded into the protobuf wire format, then read by the code
 * above, so one flatten path serves both encodings. Length prefixes are written as fixed 5-byte
 * varints and patched afterwards (a non-minimal varint is valid protobuf; only this file reads
 * it). The grammar is the one the python decoder accepts (protobuf's json_format after the hex
 * id rewrite of otlp/jsonfix.py): lowerCamelCase keys, unknown keys skipped, null = absent, ids
 * as hex, int64/uint64 as decimal strings or integral numbers, enums as ints or names, bytes as
 * base64, doubles as numbers or "NaN"/"Infinity"/"-Infinity". Anything outside the common
 * ground — a snake_case key, a duplicate key, a fraction in an integer, an unknown enum name, two
 * members of one AnyValue, a lone surrogate — is Unsupported (the engine decoder takes it). */

typedef struct {
    const uint8_t *p, *end;
} js_t;

static inline void js_ws(js_t *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static inline int js_peek(js_t *j) {
    js_ws(j);
    return j->p < j->end ? *j->p : -1;
}

static inline int js_eat(js_t *j, char c) {
    if (js_peek(j) != c) return 0;
    j->p++;
    return 1;
}

static int js_literal(js_t *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) return E_MALFORMED;
    j->p += n;
    return OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int put_utf8(buf_t *b, uint32_t cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 63));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | cp >> 12);
        t[1] = (char)(0x80 | ((cp >> 6) & 63));
        t[2] = (char)(0x80 | (cp & 63));
        n = 3;
    } else {
        t[0] = (char)(0xF0 | cp >> 18);
        t[1] = (char)(0x80 | ((cp >> 12) & 63));
        t[2] = (char)(0x80 | ((cp >> 6) & 63));
        t[3] = (char)(0x80 | (cp & 63));
        n = 4;
    }
    return put(b, t, n);
}

/* A JSON string (the opening quote next), unescaped into ``out`` (appended). */
static int js_string(js_t *j, buf_t *out) {
    if (js_peek(j) < 0) return E_MALFORMED;
    if (!js_eat(j, '"')) return E_UNSUPPORTED;
    const uint8_t *run = j->p;
    while (j->p < j->end) {
        uint8_t c = *j->p;
        if (c == '"') {
            if (put(out, run, (size_t)(j->p - run))) return E_NOMEM;
            j->p++;
            return OK;
        }
        if (c < 0x20) return E_MALFORMED;
        if (c != '\\') {
            j->p++;
            continue;
        }
        if (put(out, run, (size_t)(j->p - run))) return E_NOMEM;
        if (j->end - j->p < 2) return E_MALFORMED;
        char e = (char)j->p[1];
        j->p += 2;
        char lit = 0;
        switch (e) {
        case 'u': {
            uint32_t cp = 0;
            if (j->end - j->p < 4) return E_MALFORMED;
            for (int i = 0; i < 4; i++) {
                int h = hexval(j->p[i]);
                if (h < 0) return E_MALFORMED;
                cp = cp << 4 | (uint32_t)h;
            }
            j->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') return E_UNSUPPORTED;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(j->p[2 + i]);
                    if (h < 0) return E_MALFORMED;
                    lo = lo << 4 | (uint32_t)h;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) return E_UNSUPPORTED;
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return E_UNSUPPORTED;
            }
            if (put_utf8(out, cp)) return E_NOMEM;
            break;
        }
        default:
            lit = e == '/' ? '/' : short_escape(e, 1);
            if (!lit) return E_MALFORMED;
        }
        if (lit && put(out, &lit, 1)) return E_NOMEM;
        run = j->p;
    }
    return E_MALFORMED;
}

/* The JSON number grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? from s; *out: its end. */
static int js_number_end(const uint8_t *s, const uint8_t *end, const uint8_t **out) {
    const uint8_t *q = s;
#define DIGIT(p) ((p) < end && *(p) >= '0' && *(p) <= '9')
    if (q < end && *q == '-') q++;
    if (!DIGIT(q)) return E_MALFORMED;
    if (*q == '0') q++;
    else while (DIGIT(q)) q++;
    if (q < end && *q == '.') {
        q++;
        if (!DIGIT(q)) return E_MALFORMED;
        while (DIGIT(q)) q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (!DIGIT(q)) return E_MALFORMED;
        while (DIGIT(q)) q++;
    }
#undef DIGIT
    *out = q;
    return OK;
}

/* Skip any JSON value, checked as strictly as Python's json module reads it: a string's escapes,
 * no raw control characters, the number grammar (no leading zeros). Escaped lone surrogates, which
 * Python accepts, are left to it. */
static int js_skip(js_t *j, int depth) {
    int c = js_peek(j);
    if (depth > MAX_DEPTH) return E_UNSUPPORTED;
    if (c == '"') {
        j->p++;
        while (j->p < j->end && *j->p != '"') {
            uint8_t ch = *j->p;
            if (ch < 0x20) return E_MALFORMED;
            if (ch != '\\') {
                j->p++;
                continue;
            }
            if (j->end - j->p < 2) return E_MALFORMED;
            uint8_t e = j->p[1];
            if (e == 'u') {
                if (j->end - j->p < 6) return E_MALFORMED;
                uint32_t cp = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(j->p[i]);
                    if (h < 0) return E_MALFORMED;
                    cp = cp << 4 | (uint32_t)h;
                }
                /* lone surrogates, and NUL (refused in a key): the exact path decides */
                if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) return E_UNSUPPORTED;
                j->p += 6;
            } else if (e == '/' || short_escape((char)e, 1)) {
                j->p += 2;
            } else {
                return E_MALFORMED;
            }
        }
        if (j->p >= j->end) return E_MALFORMED;
        j->p++;
        return OK;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (js_eat(j, close)) return OK;
        for (int members = 0;; members++) {
            int rc;
            if (c == '{') {
                /* a second key could repeat the first (refused): the exact path compares them */
                if (members) return E_UNSUPPORTED;
                if (js_peek(j) != '"' || (rc = js_skip(j, depth + 1))) return E_MALFORMED;
                if (!js_eat(j, ':')) return E_MALFORMED;
            }
            if ((rc = js_skip(j, depth + 1))) return rc;
            if (js_eat(j, ',')) continue;
            if (js_eat(j, close)) return OK;
            return E_MALFORMED;
        }
    }
    if (c == 't') return js_literal(j, "true");
    if (c == 'f') return js_literal(j, "false");
    if (c == 'n') return js_literal(j, "null");
    if (c == '-' || (c >= '0' && c <= '9')) return js_number_end(j->p, j->end, &j->p);
    return E_MALFORMED;
}

/* An integer: a JSON number without fraction/exponent, or a string of one. */
static int js_int(js_t *j, int64_t lo, uint64_t hi, int64_t *neg_out, uint64_t *out) {
    int c = js_peek(j);
    int quoted = c == '"';
    if (quoted) j->p++;
    int neg = 0;
    if (j->p < j->end && *j->p == '-') {
        neg = 1;
        j->p++;
    }
    const uint8_t *start = j->p;
    uint64_t v = 0;
    /* a leading zero: Python's json refuses 0123 as a number (as a string, int() reads it) */
    if (!quoted && j->end - j->p >= 2 && j->p[0] == '0' && j->p[1] >= '0' && j->p[1] <= '9') return E_MALFORMED;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        uint64_t d = (uint64_t)(*j->p - '0');
        if (v > (UINT64_MAX - d) / 10) return E_UNSUPPORTED;
        v = v * 10 + d;
        j->p++;
    }
    if (j->p == start) return E_UNSUPPORTED;
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return E_UNSUPPORTED;
    if (quoted) {
        if (j->p >= j->end || *j->p != '"') return E_UNSUPPORTED;
        j->p++;
    }
    if (neg) {
        if (v == 0 || lo >= 0 || v > (uint64_t)(-(lo + 1)) + 1) return E_UNSUPPORTED;
        *neg_out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        *out = 0;
        return 1; /* negative */
    }
    if (v > hi) return E_UNSUPPORTED;
    *out = v;
    return OK;
}

/* protobuf writers with patched 5-byte lengths */
static int pb_tag(buf_t *o, uint32_t num, int wt) { return put_varint(o, (uint64_t)num << 3 | (uint64_t)wt); }

static int pb_open(buf_t *o, uint32_t num, size_t *mark) {
    if (pb_tag(o, num, 2) || buf_grow(o, 5)) return E_NOMEM;
    *mark = o->n;
    o->n += 5;
    return OK;
}

static void pb_close(buf_t *o, size_t mark) {
    uint64_t len = o->n - mark - 5;
    uint8_t *q = (uint8_t *)o->p + mark;
    for (int i = 0; i < 5; i++) {
        q[i] = (uint8_t)((len & 0x7F) | (i < 4 ? 0x80 : 0));
        len >>= 7;
    }
}

static int pb_fixed64(buf_t *o, uint32_t num, uint64_t v) {
    if (pb_tag(o, num, 1)) return E_NOMEM;
    return put_u64(o, v);
}

static int pb_varint_field(buf_t *o, uint32_t num, uint64_t v) {
    if (pb_tag(o, num, 0)) return E_NOMEM;
    return put_varint(o, v);
}

/* A JSON string field written as protobuf bytes field ``num`` (decoded straight into ``o``). */
static int pb_string_field(js_t *j, buf_t *o, uint32_t num) {
    size_t mark;
    int rc;
    if (js_peek(j) != '"') return E_UNSUPPORTED;
    if (pb_open(o, num, &mark)) return E_NOMEM;
    if ((rc = js_string(j, o))) return rc;
    pb_close(o, mark);
    return OK;
}

static int pb_hex_field(js_t *j, buf_t *o, buf_t *tmp, uint32_t num, size_t nbytes) {
    int rc;
    tmp->n = 0;
    if ((rc = js_string(j, tmp))) return rc;
    if (tmp->n == 0) return OK; /* "" = absent */
    if (tmp->n != 2 * nbytes) return E_UNSUPPORTED;
    uint8_t raw[16];
    for (size_t i = 0; i < nbytes; i++) {
        int hi = hexval((uint8_t)tmp->p[2 * i]), lo = hexval((uint8_t)tmp->p[2 * i + 1]);
        if (hi < 0 || lo < 0) return E_UNSUPPORTED;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    if (pb_tag(o, num, 2) || put_varint(o, nbytes) || put(o, raw, nbytes)) return E_NOMEM;
    return OK;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int pb_base64_field(js_t *j, buf_t *o, buf_t *tmp, uint32_t num) {
    int rc;
    tmp->n = 0;
    if ((rc = js_string(j, tmp))) return rc;
    size_t n = tmp->n;
    const uint8_t *s = (const uint8_t *)tmp->p;
    if (n % 4) return E_UNSUPPORTED;
    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t outlen = n / 4 * 3 - pad;
    if (pb_tag(o, num, 2) || put_varint(o, outlen) || buf_grow(o, n / 4 * 3)) return E_NOMEM;
    uint8_t *q = (uint8_t *)o->p + o->n;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = (i + (size_t)k >= n - pad) ? 0 : b64val(s[i + (size_t)k]);
            if (v[k] < 0) return E_UNSUPPORTED;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        *q++ = (uint8_t)(w >> 16);
        *q++ = (uint8_t)(w >> 8);
        *q++ = (uint8_t)w;
    }
    o->n += outlen;
    return OK;
}

/* The trace request's messages: each field's JSON key, number and kind — read by the JSON
 * transcoder below and by the protobuf check (check_traces). The kinds after K_REPEATED occur only
 * in AnyValue, ArrayValue and KeyValueList, which the transcoder reads with js_anyvalue. */
enum { K_STR, K_HEX16, K_HEX8, K_U64, K_U32, K_FIXED32, K_KIND, K_CODE, K_MSG, K_REPEATED, K_BOOL, K_I64, K_DOUBLE, K_BYTES };
typedef struct fdesc fdesc_t;
typedef struct {
    const fdesc_t *fields;
    int anyvalue; /* AnyValue: its own rules */
} mdesc_t;
struct fdesc {
    const char *key;
    uint32_t num;
    int kind;
    const mdesc_t *msg;
};

static const mdesc_t M_ANY;
static const fdesc_t F_KV[] = {{"key", 1, K_STR, NULL}, {"value", 2, K_MSG, &M_ANY}, {NULL, 0, 0, NULL}};
static const mdesc_t M_KV = {F_KV, 0};
static const fdesc_t F_ARRAY[] = {{"values", 1, K_REPEATED, &M_ANY}, {NULL, 0, 0, NULL}};
static const mdesc_t M_ARRAY = {F_ARRAY, 0};
static const fdesc_t F_KVLIST[] = {{"values", 1, K_REPEATED, &M_KV}, {NULL, 0, 0, NULL}};
static const mdesc_t M_KVLIST = {F_KVLIST, 0};
static const fdesc_t F_ANY[] = {{"stringValue", 1, K_STR, NULL},   {"boolValue", 2, K_BOOL, NULL},
                                {"intValue", 3, K_I64, NULL},      {"doubleValue", 4, K_DOUBLE, NULL},
                                {"arrayValue", 5, K_MSG, &M_ARRAY}, {"kvlistValue", 6, K_MSG, &M_KVLIST},
                                {"bytesValue", 7, K_BYTES, NULL},  {NULL, 0, 0, NULL}};
static const mdesc_t M_ANY = {F_ANY, 1};
static const fdesc_t F_RESOURCE[] = {
    {"attributes", 1, K_REPEATED, &M_KV}, {"droppedAttributesCount", 2, K_U32, NULL}, {NULL, 0, 0, NULL}};
static const mdesc_t M_RESOURCE = {F_RESOURCE, 0};
static const fdesc_t F_SCOPE[] = {{"name", 1, K_STR, NULL},
                                  {"version", 2, K_STR, NULL},
                                  {"attributes", 3, K_REPEATED, &M_KV},
                                  {"droppedAttributesCount", 4, K_U32, NULL},
                                  {NULL, 0, 0, NULL}};
static const mdesc_t M_SCOPE = {F_SCOPE, 0};
static const fdesc_t F_EVENT[] = {{"timeUnixNano", 1, K_U64, NULL},
                                  {"name", 2, K_STR, NULL},
                                  {"attributes", 3, K_REPEATED, &M_KV},
                                  {"droppedAttributesCount", 4, K_U32, NULL},
                                  {NULL, 0, 0, NULL}};
static const mdesc_t M_EVENT = {F_EVENT, 0};
static const fdesc_t F_LINK[] = {{"traceId", 1, K_HEX16, NULL},
                                 {"spanId", 2, K_HEX8, NULL},
                                 {"traceState", 3, K_STR, NULL},
                                 {"attributes", 4, K_REPEATED, &M_KV},
                                 {"droppedAttributesCount", 5, K_U32, NULL},
                                 {"flags", 6, K_FIXED32, NULL},
                                 {NULL, 0, 0, NULL}};
static const mdesc_t M_LINK = {F_LINK, 0};
static const fdesc_t F_STATUS[] = {{"message", 2, K_STR, NULL}, {"code", 3, K_CODE, NULL}, {NULL, 0, 0, NULL}};
static const mdesc_t M_STATUS = {F_STATUS, 0};
static const fdesc_t F_SPAN[] = {{"traceId", 1, K_HEX16, NULL},
                                 {"spanId", 2, K_HEX8, NULL},
                                 {"traceState", 3, K_STR, NULL},
                                 {"parentSpanId", 4, K_HEX8, NULL},
                                 {"flags", 16, K_FIXED32, NULL},
                                 {"name", 5, K_STR, NULL},
                                 {"kind", 6, K_KIND, NULL},
                                 {"startTimeUnixNano", 7, K_U64, NULL},
                                 {"endTimeUnixNano", 8, K_U64, NULL},
                                 {"attributes", 9, K_REPEATED, &M_KV},
                                 {"droppedAttributesCount", 10, K_U32, NULL},
                                 {"events", 11, K_REPEATED, &M_EVENT},
                                 {"droppedEventsCount", 12, K_U32, NULL},
                                 {"links", 13, K_REPEATED, &M_LINK},
                                 {"droppedLinksCount", 14, K_U32, NULL},
                                 {"status", 15, K_MSG, &M_STATUS},
                                 {NULL, 0, 0, NULL}};
static const mdesc_t M_SPAN = {F_SPAN, 0};
static const fdesc_t F_SCOPE_SPANS[] = {{"scope", 1, K_MSG, &M_SCOPE},
                                        {"spans", 2, K_REPEATED, &M_SPAN},
                                        {"schemaUrl", 3, K_STR, NULL},
                                        {NULL, 0, 0, NULL}};
static const mdesc_t M_SCOPE_SPANS = {F_SCOPE_SPANS, 0};
static const fdesc_t F_RESOURCE_SPANS[] = {{"resource", 1, K_MSG, &M_RESOURCE},
                                           {"scopeSpans", 2, K_REPEATED, &M_SCOPE_SPANS},
                                           {"schemaUrl", 3, K_STR, NULL},
                                           {NULL, 0, 0, NULL}};
static const mdesc_t M_RESOURCE_SPANS = {F_RESOURCE_SPANS, 0};
static const fdesc_t F_REQUEST[] = {{"resourceSpans", 1, K_REPEATED, &M_RESOURCE_SPANS}, {NULL, 0, 0, NULL}};
static const mdesc_t M_REQUEST = {F_REQUEST, 0};

static const char *KIND_NAMES[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                   "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER", NULL};
static const char *CODE_NAMES[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR", NULL};

static int js_message(jctx_t *c, js_t *j, const mdesc_t *m, int depth);
static int ck_nonzero(rd_t s);
static int utf8_ok(const uint8_t *s, const uint8_t *end);

static int js_enum(jctx_t *c, js_t *j, const char **names, uint64_t *out) {
    int ch = js_peek(j);
    if (ch == '"') {
        int rc;
        c->tmp.n = 0;
        if ((rc = js_string(j, &c->tmp))) return rc;
        for (int i = 0; names[i]; i++) {
            if (strlen(names[i]) == c->tmp.n && memcmp(names[i], c->tmp.p, c->tmp.n) == 0) {
                *out = (uint64_t)i;
                return OK;
            }
        }
        return E_UNSUPPORTED;
    }
    if (ch != '-' && (ch < '0' || ch > '9')) return E_UNSUPPORTED;
    int64_t neg;
    uint64_t v;
    int rc = js_int(j, INT32_MIN, INT32_MAX, &neg, &v);
    if (rc < 0) return rc;
    *out = rc == 1 ? (uint64_t)neg : v;
    return OK;
}

static int js_double(jctx_t *c, js_t *j, double *out) {
    int ch = js_peek(j);
    if (ch == '"') {
        int rc;
        c->tmp.n = 0;
        if ((rc = js_string(j, &c->tmp))) return rc;
        if (c->tmp.n == 3 && !memcmp(c->tmp.p, "NaN", 3)) *out = NAN;
        else if (c->tmp.n == 8 && !memcmp(c->tmp.p, "Infinity", 8)) *out = INFINITY;
        else if (c->tmp.n == 9 && !memcmp(c->tmp.p, "-Infinity", 9)) *out = -INFINITY;
        else return E_UNSUPPORTED;
        return OK;
    }
    /* the JSON number grammar, then strtod on a copy of the token */
    const uint8_t *s = j->p;
    const uint8_t *q = s;
    if (q < j->end && *q == '-') q++;
    if (q >= j->end || *q < '0' || *q > '9') return E_UNSUPPORTED;
    if (*q == '0') q++;
    else while (q < j->end && *q >= '0' && *q <= '9') q++;
    if (q < j->end && *q == '.') {
        q++;
        if (q >= j->end || *q < '0' || *q > '9') return E_MALFORMED;
        while (q < j->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < j->end && (*q == '+' || *q == '-')) q++;
        if (q >= j->end || *q < '0' || *q > '9') return E_MALFORMED;
        while (q < j->end && *q >= '0' && *q <= '9') q++;
    }
    size_t n = (size_t)(q - s);
    char tok[400];
    if (n >= sizeof tok) return E_UNSUPPORTED;
    memcpy(tok, s, n);
    tok[n] = 0;
    *out = strtod(tok, NULL);
    if (isinf(*out)) return E_UNSUPPORTED; /* an overflowing literal: let the exact path decide */
    j->p = q;
    return OK;
}

/* AnyValue: exactly one member, or none ({}). */
static int js_anyvalue(jctx_t *c, js_t *j, int depth) {
    int rc, members = 0, keys = 0;
    if (depth > MAX_DEPTH) return E_UNSUPPORTED;
    if (c->ck && depth + c->wrappers > CHECK_MAX_DEPTH) return E_UNSUPPORTED;
    if (js_peek(j) < 0) return E_MALFORMED;
    if (!js_eat(j, '{')) return E_UNSUPPORTED;
    if (js_eat(j, '}')) return OK;
    for (;;) {
        /* one key is the norm; a second one might repeat it (refused): the exact path decides */
        if (keys++) return E_UNSUPPORTED;
        c->key.n = 0;
        if ((rc = js_string(j, &c->key))) return rc;
        if (c->key.n && memchr(c->key.p, 0, c->key.n)) return E_UNSUPPORTED; /* "a\u0000": exact path */
        if (!js_eat(j, ':')) return E_MALFORMED;
        const char *k = c->key.p;
        size_t kn = c->key.n;
#define KEY(lit) (kn == sizeof(lit) - 1 && memcmp(k, lit, kn) == 0)
        if (js_peek(j) == 'n') { /* null member: as if absent */
            if ((rc = js_literal(j, "null"))) return rc;
        } else if (KEY("stringValue")) {
            members++;
            if ((rc = pb_string_field(j, &c->out, 1))) return rc;
        } else if (KEY("boolValue")) {
            members++;
            int ch = js_peek(j);
            if (ch == 't') rc = js_literal(j, "true");
            else if (ch == 'f') rc = js_literal(j, "false");
            else return E_UNSUPPORTED;
            if (rc || pb_varint_field(&c->out, 2, ch == 't')) return rc ? rc : E_NOMEM;
        } else if (KEY("intValue")) {
            members++;
            int64_t neg;
            uint64_t v;
            rc = js_int(j, INT64_MIN, INT64_MAX, &neg, &v);
            if (rc < 0) return rc;
            if (pb_varint_field(&c->out, 3, rc == 1 ? (uint64_t)neg : v)) return E_NOMEM;
        } else if (KEY("doubleValue")) {
            members++;
            double d;
            uint64_t bits;
            if ((rc = js_double(c, j, &d))) return rc;
            memcpy(&bits, &d, 8);
            if (pb_fixed64(&c->out, 4, bits)) return E_NOMEM;
        } else if (KEY("arrayValue") || KEY("kvlistValue")) {
            members++;
            int kv = KEY("kvlistValue");
            size_t outer, inner;
            if (c->ck && depth + ++c->wrappers > CHECK_MAX_DEPTH) return E_UNSUPPORTED;
            if (pb_open(&c->out, kv ? 6 : 5, &outer)) return E_NOMEM;
            if (!js_eat(j, '{')) return E_UNSUPPORTED;
            int seen = 0;
            if (!js_eat(j, '}')) {
                for (int inner_keys = 0;; inner_keys++) {
                    if (inner_keys) return E_UNSUPPORTED; /* {"values": [...]} alone */
                    c->key.n = 0;
                    if ((rc = js_string(j, &c->key))) return rc;
                    if (c->key.n && memchr(c->key.p, 0, c->key.n)) return E_UNSUPPORTED;
                    if (!js_eat(j, ':')) return E_MALFORMED;
                    if (c->key.n == 6 && memcmp(c->key.p, "values", 6) == 0) {
                        if (seen++) return E_UNSUPPORTED;
                        if (js_peek(j) == 'n') {
                            if ((rc = js_literal(j, "null"))) return rc;
                        } else {
                            if (!js_eat(j, '[')) return E_UNSUPPORTED;
                            if (!js_eat(j, ']')) {
                                for (;;) {
                                    if (pb_open(&c->out, 1, &inner)) return E_NOMEM;
                                    rc = kv ? js_message(c, j, &M_KV, depth + 1) : js_anyvalue(c, j, depth + 1);
                                    if (rc) return rc;
                                    pb_close(&c->out, inner);
                                    if (js_eat(j, ',')) continue;
                                    if (js_eat(j, ']')) break;
                                    return E_MALFORMED;
                                }
                            }
                        }
                    } else if ((c->key.n && memchr(c->key.p, '_', c->key.n))) {
                        return E_UNSUPPORTED;
                    } else if ((rc = js_skip(j, depth + 1))) {
                        return rc;
                    }
                    if (js_eat(j, ',')) continue;
                    if (js_eat(j, '}')) break;
                    return E_MALFORMED;
                }
            }
            pb_close(&c->out, outer);
            if (c->ck) c->wrappers--;
        } else if (KEY("bytesValue")) {
            members++;
            if ((rc = pb_base64_field(j, &c->out, &c->tmp, 7))) return rc;
        } else if ((kn && memchr(k, '_', kn))) {
            return E_UNSUPPORTED;
        } else if ((rc = js_skip(j, depth + 1))) {
            return rc;
        }
#undef KEY
        if (members > 1) return E_UNSUPPORTED;
        if (js_eat(j, ',')) continue;
        if (js_eat(j, '}')) return OK;
        return E_MALFORMED;
    }
}

/* The rules of check_traces for one element of a repeated message field, once it is written
 * (``start``: where its bytes begin; ``attrs``: the KeyValues of the message it belongs to). */
static int js_checked(jctx_t *c, const fdesc_t *f, size_t start, const jids_t *ids, uint64_t spans_before,
                      uint64_t *attrs) {
    ck_t *ck = c->ck;
    if (f->msg == &M_KV && (++*attrs > ck->max_attrs || c->out.n - start > ck->max_attr_bytes))
        return E_UNSUPPORTED;
    if (f->msg == &M_SPAN) { /* links need nothing: the transcoder writes ids of the right size or none */
        if (ids->n_trace != 16 || !ids->nz_trace || ids->n_span != 8 || !ids->nz_span) return E_UNSUPPORTED;
        if (ids->start < ck->min_ns || ids->start > ck->max_ns) return E_UNSUPPORTED;
        ck->spans++;
    }
    if (c->head) { /* the resource (scope) is repeated on every row of its spans */
        uint64_t rows = ck->spans - spans_before;
        if (rows && c->head > (UINT64_MAX - ck->expansion) / rows) return E_UNSUPPORTED;
        ck->expansion += c->head * rows;
        if (ck->expansion > ck->max_expansion) return E_UNSUPPORTED;
    }
    return OK;
}

static int js_field(jctx_t *c, js_t *j, const mdesc_t *m, const fdesc_t *f, int depth) {
    int rc;
    int64_t neg;
    uint64_t v;
    size_t mark;
    switch (f->kind) {
    case K_STR:
        return pb_string_field(j, &c->out, f->num);
    case K_HEX16:
    case K_HEX8: {
        if (js_peek(j) != '"') return E_UNSUPPORTED;
        size_t nbytes = f->kind == K_HEX16 ? 16 : 8, before = c->out.n;
        if ((rc = pb_hex_field(j, &c->out, &c->tmp, f->num, nbytes))) return rc;
        if (c->ids && m == &M_SPAN && f->num <= 2) { /* traceId, spanId */
            size_t n = c->out.n > before ? nbytes : 0;
            int nz = n && ck_nonzero((rd_t){(const uint8_t *)c->out.p + c->out.n - n, (const uint8_t *)c->out.p + c->out.n});
            if (f->num == 1) c->ids->n_trace = n, c->ids->nz_trace = nz;
            else c->ids->n_span = n, c->ids->nz_span = nz;
        }
        return OK;
    }
    case K_U64:
    case K_U32:
    case K_FIXED32:
        rc = js_int(j, 0, f->kind == K_U64 ? UINT64_MAX : UINT32_MAX, &neg, &v);
        if (rc) return rc < 0 ? rc : E_UNSUPPORTED;
        if (f->kind == K_U64) {
            if (c->ck && m == &M_SPAN && f->num == 7 && c->ids) c->ids->start = v;
            if (c->ck && m == &M_EVENT && v > INT64_MAX) return E_UNSUPPORTED;
            return pb_fixed64(&c->out, f->num, v) ? E_NOMEM : OK;
        }
        if (f->kind == K_U32) return pb_varint_field(&c->out, f->num, v) ? E_NOMEM : OK;
        if (pb_tag(&c->out, f->num, 5) || put_u32(&c->out, (uint32_t)v)) return E_NOMEM;
        return OK;
    case K_KIND:
    case K_CODE:
        if ((rc = js_enum(c, j, f->kind == K_KIND ? KIND_NAMES : CODE_NAMES, &v))) return rc;
        return pb_varint_field(&c->out, f->num, v) ? E_NOMEM : OK;
    case K_MSG:
        if (pb_open(&c->out, f->num, &mark)) return E_NOMEM;
        rc = f->msg->anyvalue ? js_anyvalue(c, j, depth + 1) : js_message(c, j, f->msg, depth + 1);
        if (rc) return rc;
        pb_close(&c->out, mark);
        if (c->ck && (m == &M_RESOURCE_SPANS || m == &M_SCOPE_SPANS) && f->num == 1) c->head += c->out.n - mark - 5;
        return OK;
    case K_REPEATED: {
        uint64_t attrs = 0;
        if (!js_eat(j, '[')) return E_UNSUPPORTED;
        if (js_eat(j, ']')) return OK;
        for (;;) {
            if (js_peek(j) == 'n') return E_UNSUPPORTED; /* null element: json_format rejects it */
            if (pb_open(&c->out, f->num, &mark)) return E_NOMEM;
            jids_t ids = {0, 0, 0, 0, 0}, *outer_ids = c->ids;
            uint64_t outer_head = c->head, spans_before = c->ck ? c->ck->spans : 0;
            if (c->ck) {
                if (f->msg == &M_SPAN) c->ids = &ids;
                c->head = 0;
            }
            if ((rc = js_message(c, j, f->msg, depth + 1))) return rc;
            pb_close(&c->out, mark);
            if (c->ck) {
                if ((rc = js_checked(c, f, mark + 5, &ids, spans_before, &attrs))) return rc;
                c->ids = outer_ids;
                c->head = outer_head;
            }
            if (js_eat(j, ',')) continue;
            if (js_eat(j, ']')) return OK;
            return E_MALFORMED;
        }
    }
    default:
        return E_UNSUPPORTED;
    }
}

static int js_message(jctx_t *c, js_t *j, const mdesc_t *m, int depth) {
    int rc, unknown = 0;
    uint32_t seen = 0;
    if (depth > MAX_DEPTH) return E_UNSUPPORTED;
    if (c->ck && depth + c->wrappers > CHECK_MAX_DEPTH) return E_UNSUPPORTED;
    if (js_peek(j) < 0) return E_MALFORMED;
    if (!js_eat(j, '{')) return E_UNSUPPORTED;
    if (js_eat(j, '}')) return OK;
    for (;;) {
        c->key.n = 0;
        if ((rc = js_string(j, &c->key))) return rc;
        if (c->key.n && memchr(c->key.p, 0, c->key.n)) return E_UNSUPPORTED; /* "a\u0000": exact path */
        if (!js_eat(j, ':')) return E_MALFORMED;
        const fdesc_t *f = NULL;
        int idx = 0;
        for (const fdesc_t *d = m->fields; d->key; d++, idx++) {
            if (strlen(d->key) == c->key.n && memcmp(d->key, c->key.p, c->key.n) == 0) {
                f = d;
                break;
            }
        }
        if (f) {
            if (seen & (1u << idx)) return E_UNSUPPORTED; /* a duplicate key */
            seen |= 1u << idx;
            if (js_peek(j) == 'n') {
                if ((rc = js_literal(j, "null"))) return rc;
            } else if ((rc = js_field(c, j, m, f, depth))) {
                return rc;
            }
        } else if ((c->key.n && memchr(c->key.p, '_', c->key.n))) {
            return E_UNSUPPORTED; /* json_format also reads proto (snake_case) names */
        } else if (unknown++) {
            return E_UNSUPPORTED; /* two unknown keys might be one key twice: the exact path decides */
        } else if ((rc = js_skip(j, depth + 1))) {
            return rc;
        }
        if (js_eat(j, ',')) continue;
        if (js_eat(j, '}')) return OK;
        return E_MALFORMED;
    }
}

/* An OTLP/JSON ExportTraceServiceRequest → protobuf in c->out. The whole body must be UTF-8, as
 * for Python's json (unknown fields and keys included: they are skipped, never copied). */
static int json_request(jctx_t *c, const uint8_t *p, size_t n) {
    js_t j = {p, p + n};
    c->out.n = 0;
    if (!utf8_ok(p, p + n)) return E_MALFORMED;
    int rc = js_message(c, &j, &M_REQUEST, 0);
    if (rc) return rc;
    js_ws(&j);
    return j.p == j.end ? OK : E_MALFORMED;
}

/* -- assembling the block ----------------------------------------------------------------------- */

typedef struct {
    const char *name, *type;
    const buf_t *parts[4];
} col_t;

static PyObject *assemble(block_t *b, int fd) {
    const col_t cols[] = {
        {"Timestamp", "DateTime64(9)", {&b->ts}},
        {"TraceId", "String", {&b->tid}},
        {"SpanId", "String", {&b->sid}},
        {"ParentSpanId", "String", {&b->psid}},
        {"TraceState", "String", {&b->tstate}},
        {"SpanName", "String", {&b->name}},
        {"SpanKind", "String", {&b->kind}},
        {"ServiceName", "String", {&b->svc}},
        {"ResourceAttributes", "Map(String, String)", {&b->rattr.off, &b->rattr.keys, &b->rattr.vals}},
        {"ScopeName", "String", {&b->scname}},
        {"ScopeVersion", "String", {&b->scver}},
        {"SpanAttributes", "Map(String, String)", {&b->sattr.off, &b->sattr.keys, &b->sattr.vals}},
        {"Duration", "UInt64", {&b->dur}},
        {"StatusCode", "String", {&b->stcode}},
        {"StatusMessage", "String", {&b->stmsg}},
        {"Events.Timestamp", "Array(DateTime64(9))", {&b->ev_off, &b->ev_ts}},
        {"Events.Name", "Array(String)", {&b->ev_off, &b->ev_name}},
        {"Events.Attributes", "Array(Map(String, String))",
         {&b->ev_off, &b->evattr.off, &b->evattr.keys, &b->evattr.vals}},
        {"Links.TraceId", "Array(String)", {&b->ln_off, &b->ln_tid}},
        {"Links.SpanId", "Array(String)", {&b->ln_off, &b->ln_sid}},
        {"Links.TraceState", "Array(String)", {&b->ln_off, &b->ln_tstate}},
        {"Links.Attributes", "Array(Map(String, String))",
         {&b->ln_off, &b->lnattr.off, &b->lnattr.keys, &b->lnattr.vals}},
        {"TraceFlags", "UInt32", {&b->flags}},
        {"DroppedAttributesCount", "UInt32", {&b->dattr}},
        {"DroppedEventsCount", "UInt32", {&b->dev}},
        {"DroppedLinksCount", "UInt32", {&b->dln}},
        {"ScopeAttributes", "Map(String, String)", {&b->scattr.off, &b->scattr.keys, &b->scattr.vals}},
        {"ResourceSchemaUrl", "String", {&b->rurl}},
        {"ScopeSchemaUrl", "String", {&b->surl}},
        {"IngestEncoding", "String", {&b->enc}},
        {"IngestTransport", "String", {&b->tr}},
    };
    const size_t ncols = sizeof cols / sizeof cols[0];
    /* The block as a list of pieces: the header and every column's name/type (built here), then
     * the column buffers themselves — written to ``fd`` with writev, or copied into one bytes. */
    buf_t head = {0};
    size_t heads[sizeof cols / sizeof cols[0] + 1];
    if (put_varint(&head, ncols) || put_varint(&head, b->rows)) goto nomem;
    heads[0] = head.n;
    for (size_t i = 0; i < ncols; i++) {
        if (put_cstr(&head, cols[i].name) || put_cstr(&head, cols[i].type)) goto nomem;
        heads[i + 1] = head.n;
    }
    struct iovec iov[1 + 5 * (sizeof cols / sizeof cols[0])];
    int n = 0;
    size_t total = 0;
    iov[n++] = (struct iovec){head.p, heads[0]};
    for (size_t i = 0; i < ncols; i++) {
        iov[n++] = (struct iovec){head.p + heads[i], heads[i + 1] - heads[i]};
        for (int k = 0; k < 4 && cols[i].parts[k]; k++)
            if (cols[i].parts[k]->n) iov[n++] = (struct iovec){cols[i].parts[k]->p, cols[i].parts[k]->n};
    }
    for (int k = 0; k < n; k++) total += iov[k].iov_len;
    PyObject *out = NULL;
    if (fd >= 0) {
        /* straight from the column buffers into the file: no block-sized copy in memory */
        int err = 0;
        Py_BEGIN_ALLOW_THREADS
        int at = 0;
        while (at < n) {
            ssize_t w = writev(fd, iov + at, n - at > IOV_MAX ? IOV_MAX : n - at);
            if (w < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            while (at < n && (size_t)w >= iov[at].iov_len) w -= (ssize_t)iov[at++].iov_len;
            if (at < n) {
                iov[at].iov_base = (char *)iov[at].iov_base + w;
                iov[at].iov_len -= (size_t)w;
            }
        }
        Py_END_ALLOW_THREADS
        if (err) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
        } else {
            out = PyLong_FromSize_t(total);
        }
    } else if ((out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total))) {
        char *dst = PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS /* tens of MB of memcpy */
        for (int k = 0; k < n; k++) {
            memcpy(dst, iov[k].iov_base, iov[k].iov_len);
            dst += iov[k].iov_len;
        }
        Py_END_ALLOW_THREADS
    }
    buf_free(&head);
    return out;
nomem:
    buf_free(&head);
    return PyErr_NoMemory();
}

static PyObject *traces(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *arg;
    int fd = -1;
    if (!PyArg_ParseTuple(args, "O|i", &arg, &fd)) return NULL;
    PyObject *seq = PySequence_Fast(arg, "traces() takes a sequence of (body, encoding, transport)");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    block_t *b = block_get();
    if (!b) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    int rc = OK;
    for (Py_ssize_t i = 0; i < n && rc == OK; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_buffer body;
        PyObject *enc, *tr;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 4) {
            PyErr_SetString(PyExc_TypeError,
                            "each item must be a (body, encoding, transport, body encoding) tuple");
            goto done;
        }
        enc = PyTuple_GET_ITEM(item, 1);
        tr = PyTuple_GET_ITEM(item, 2);
        b->enc_s = PyUnicode_AsUTF8AndSize(enc, &b->enc_n);
        b->tr_s = b->enc_s ? PyUnicode_AsUTF8AndSize(tr, &b->tr_n) : NULL;
        if (!b->tr_s) goto done;
        /* The encoding the body is in; `encoding` is what the rows record (an OTLP/JSON request
         * validation already transcoded to protobuf has "json" there and "protobuf" here). */
        Py_ssize_t wire_n;
        const char *wire_s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 3), &wire_n);
        if (!wire_s) goto done;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 0), &body, PyBUF_SIMPLE)) goto done;
        int is_json = wire_n == 4 && memcmp(wire_s, "json", 4) == 0;
        Py_BEGIN_ALLOW_THREADS
        if (is_json) {
            rc = json_request(&b->json, (const uint8_t *)body.buf, (size_t)body.len);
            if (rc == OK) {
                rd_t r = {(const uint8_t *)b->json.out.p, (const uint8_t *)b->json.out.p + b->json.out.n};
                rc = request(b, r);
                /* the rows point into the transcoded bytes until they are copied: they are
                 * (every value is copied into the column buffers as each span completes) */
            }
        } else {
            rd_t r = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
            rc = request(b, r);
        }
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&body);
        if (rc == E_MALFORMED) {
            PyErr_Format(PyExc_ValueError, "payload %zd is not a valid ExportTraceServiceRequest%s", i,
                         is_json ? " (OTLP/JSON)" : "");
            goto done;
        }
    }
    if (rc == E_UNSUPPORTED) {
        PyErr_SetString(Unsupported, "a value the native decoder does not render (see otel_ai/native/_native.c)");
        goto done;
    }
    if (rc == E_NOMEM) {
        PyErr_NoMemory();
        goto done;
    }
    {
        PyObject *block = assemble(b, fd);
        if (block) {
            result = Py_BuildValue("(NK)", block, (unsigned long long)b->rows);
        }
    }
done:
    block_put(b);
    Py_DECREF(seq);
    return result;
}

/* -- receive-side check of a protobuf trace request (instead of a upb parse) --------------------
 *
 * check_traces(body) walks the request as upb would parse it, without building anything: every
 * message is well-formed, every string field is valid UTF-8 (proto3), and every span has the ids
 * the receivers require. It only ever says "fine, N spans": anything else — malformed, a span
 * to reject, a field it does not know, a known field with another wire type, deep nesting —
 * raises, and the caller asks upb, which words the error (so the two can never disagree on what
 * is accepted: this code accepts a subset of what upb does). */

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF), as upb's utf8_range. */
static int utf8_ok(const uint8_t *s, const uint8_t *end) {
    while (s < end) {
        uint8_t c = *s;
        if (c < 0x80) {
            uint64_t w;
            while (end - s >= 8 && (memcpy(&w, s, 8), !(w & 0x8080808080808080ull))) s += 8;
            if (s < end && *s < 0x80) s++;
            continue;
        }
        size_t left = (size_t)(end - s);
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || (s[1] & 0xC0) != 0x80) return 0;
            s += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
            if (c == 0xED && s[1] > 0x9F) return 0; /* surrogate */
            s += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
            if (c == 0xF4 && s[1] > 0x8F) return 0; /* > U+10FFFF */
            s += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* rd_varint reads up to 10 bytes; a 10th byte above 1 overflows 64 bits (upb refuses it). */
static inline int ck_varints_ok(const rd_t *before, const rd_t *after) {
    return after->p - before->p < 10 || after->p[-1] <= 1;
}

/* The id fields of a span or link (the last occurrence wins, as when upb merges); a span's start. */
typedef struct {
    rd_t f1, f2, f4;
    uint64_t start;
} ck_ids_t;

static int ck_nonzero(rd_t s) {
    for (const uint8_t *p = s.p; p < s.end; p++)
        if (*p) return 1;
    return 0;
}

#define RD_LEN(s) ((size_t)((s).end - (s).p))

/* The wire type a field of this kind has in protobuf. */
static int ck_wire_type(int kind) {
    switch (kind) {
    case K_U64: case K_DOUBLE: return 1;
    case K_FIXED32: return 5;
    case K_U32: case K_KIND: case K_CODE: case K_BOOL: case K_I64: return 0;
    default: return 2; /* strings, bytes, ids, messages */
    }
}

static int ck_message(ck_t *c, rd_t r, const mdesc_t *m, int depth, ck_ids_t *ids) {
    if (depth > CHECK_MAX_DEPTH) return E_UNSUPPORTED;
    uint64_t attrs = 0, head_bytes = 0, spans_before = c->spans;
    while (r.p < r.end) {
        field_t f;
        rd_t before = r;
        /* every field here has a number below 16: a tag longer than 2 bytes, or a length longer
         * than 5, is left to upb rather than assumed to read the same there */
        size_t tag_n = (r.p[0] & 0x80) ? 2 : 1;
        if (tag_n == 2 && (r.end - r.p < 2 || (r.p[1] & 0x80))) return E_UNSUPPORTED;
        if (rd_field(&r, &f)) return E_MALFORMED;
        if (f.wt == 2 && (size_t)(f.sub.p - before.p) - tag_n > 5) return E_UNSUPPORTED;
        const fdesc_t *d = m->fields;
        while (d->key && d->num != f.num) d++;
        if (!d->key) return E_UNSUPPORTED; /* an unknown field (or one the table lacks): upb decides */
        if (f.wt != ck_wire_type(d->kind)) return E_UNSUPPORTED;
        switch (d->kind) {
        case K_U32: case K_KIND: case K_CODE: case K_BOOL: case K_I64:
            if (!ck_varints_ok(&before, &r)) return E_UNSUPPORTED;
            break;
        case K_STR:
            if (!utf8_ok(f.sub.p, f.sub.end)) return E_UNSUPPORTED;
            break;
        case K_HEX16: case K_HEX8:
            if (ids) *(f.num == 1 ? &ids->f1 : f.num == 2 ? &ids->f2 : &ids->f4) = f.sub;
            break;
        case K_U64:
            if (m == &M_SPAN && f.num == 7 && ids) ids->start = f.v;
            if (m == &M_EVENT && f.v > INT64_MAX) return E_UNSUPPORTED;
            break;
        case K_MSG: case K_REPEATED: {
            if (d->msg == &M_KV && m != &M_KVLIST &&
                (++attrs > c->max_attrs || RD_LEN(f.sub) > c->max_attr_bytes))
                return E_UNSUPPORTED;
            if ((m == &M_RESOURCE_SPANS || m == &M_SCOPE_SPANS) && f.num == 1) head_bytes += RD_LEN(f.sub);
            ck_ids_t sub = {EMPTY, EMPTY, EMPTY, 0};
            int span = d->msg == &M_SPAN, link = d->msg == &M_LINK;
            int rc = ck_message(c, f.sub, d->msg, depth + 1, span || link ? &sub : NULL);
            if (rc) return rc;
            if (span) { /* ids the receivers require; a span to reject goes to upb's path */
                if (RD_LEN(sub.f1) != 16 || !ck_nonzero(sub.f1) || RD_LEN(sub.f2) != 8 || !ck_nonzero(sub.f2) ||
                    (RD_LEN(sub.f4) != 0 && RD_LEN(sub.f4) != 8))
                    return E_UNSUPPORTED;
                if (sub.start < c->min_ns || sub.start > c->max_ns) return E_UNSUPPORTED;
                c->spans++;
            } else if (link) {
                if ((RD_LEN(sub.f1) != 0 && RD_LEN(sub.f1) != 16) || (RD_LEN(sub.f2) != 0 && RD_LEN(sub.f2) != 8))
                    return E_UNSUPPORTED;
            }
            break;
        }
        default: /* fixed-width values: nothing to check */
            break;
        }
    }
    if (head_bytes) { /* the resource (scope) is repeated on every row of its spans */
        uint64_t rows = c->spans - spans_before;
        if (rows && head_bytes > (UINT64_MAX - c->expansion) / rows) return E_UNSUPPORTED;
        c->expansion += head_bytes * rows;
        if (c->expansion > c->max_expansion) return E_UNSUPPORTED;
    }
    return OK;
}

/* check_traces(body) -> int: the spans of a protobuf request upb would accept with every span
 * kept; raises Unsupported for anything else (the caller then parses with upb). */
/* (body, limits...) of check_traces and json_traces_checked: the body's buffer, the limits in *c. */
static int ck_args(PyObject *args, PyObject *kwargs, ck_t *c, Py_buffer *body) {
    static char *kwlist[] = {"body", "min_ns", "max_ns", "max_attrs", "max_attr_bytes", "max_expansion", NULL};
    PyObject *arg;
    *c = (ck_t){0, 0, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0};
    unsigned long long lim[5] = {c->min_ns, c->max_ns, c->max_attrs, c->max_attr_bytes, c->max_expansion};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|KKKKK", kwlist, &arg, &lim[0], &lim[1], &lim[2], &lim[3],
                                     &lim[4]))
        return -1;
    c->min_ns = lim[0], c->max_ns = lim[1], c->max_attrs = lim[2], c->max_attr_bytes = lim[3];
    c->max_expansion = lim[4];
    return PyObject_GetBuffer(arg, body, PyBUF_SIMPLE);
}

static PyObject *check_traces(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    ck_t c;
    Py_buffer body;
    if (ck_args(args, kwargs, &c, &body)) return NULL;
    rd_t r = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ck_message(&c, r, &M_REQUEST, 0, NULL);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&body);
    if (rc) {
        PyErr_SetString(Unsupported, "not a request the fast check accepts; parse it with upb");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)c.spans);
}

/* The transcoder on ``body`` (checking as check_traces does when ``ck`` is set): its protobuf as
 * bytes, or (bytes, spans) with ``ck``; ValueError when malformed, Unsupported when outside the
 * fast path's grammar or limits (the exact path then decides). Releases ``body``. */
static PyObject *transcode(Py_buffer *body, ck_t *ck) {
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.ck = ck;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = json_request(&c, (const uint8_t *)body->buf, (size_t)body->len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(body);
    PyObject *out = NULL;
    const char *pb = c.out.p ? c.out.p : "";
    if (rc == OK && ck)
        out = Py_BuildValue("(y#K)", pb, (Py_ssize_t)c.out.n, (unsigned long long)ck->spans);
    else if (rc == OK)
        out = PyBytes_FromStringAndSize(pb, (Py_ssize_t)c.out.n);
    else if (rc == E_MALFORMED)
        PyErr_SetString(PyExc_ValueError, "not a valid OTLP/JSON ExportTraceServiceRequest");
    else if (rc == E_UNSUPPORTED)
        PyErr_SetString(Unsupported, "OTLP/JSON outside the native decoder's grammar or limits");
    else
        PyErr_NoMemory();
    buf_free(&c.out);
    buf_free(&c.key);
    buf_free(&c.tmp);
    return out;
}

/* json_traces_to_protobuf(body) -> bytes: the transcoder alone. */
static PyObject *json_traces_to_protobuf(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer body;
    if (PyObject_GetBuffer(arg, &body, PyBUF_SIMPLE)) return NULL;
    return transcode(&body, NULL);
}

/* json_traces_checked(body, min_ns=.., ...) -> (bytes, int): json_traces_to_protobuf and then
 * check_traces on its output, in one pass (the receivers' OTLP/JSON path); the same verdict for
 * the same body and limits. */
static PyObject *json_traces_checked(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    ck_t ck;
    Py_buffer body;
    if (ck_args(args, kwargs, &ck, &body)) return NULL;
    return transcode(&body, &ck);
}

static PyObject *go_float(PyObject *self, PyObject *arg) {
    (void)self;
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    buf_t b = {0};
    int rc = put_go_float(&b, x);
    if (rc) {
        buf_free(&b);
        return PyErr_NoMemory();
    }
    PyObject *s = PyUnicode_FromStringAndSize(b.p ? b.p : "", (Py_ssize_t)b.n);
    buf_free(&b);
    return s;
}

static PyMethodDef METHODS[] = {
    {"traces", traces, METH_VARARGS,
     "traces(payloads, fd=-1) -> (block, rows): (body, encoding, transport, body encoding) items --\n"
     "ExportTraceServiceRequest bodies (protobuf or OTLP/JSON) with the ingest encoding and transport\n"
     "the rows record -- as one ClickHouse Native block of\n"
     "otel_traces rows; with a file descriptor the block is written there and `block` is its size."},
    {"json_traces_to_protobuf", json_traces_to_protobuf, METH_O,
     "json_traces_to_protobuf(body) -> bytes: an OTLP/JSON trace request as protobuf wire bytes."},
    {"check_traces", (PyCFunction)(void (*)(void))check_traces, METH_VARARGS | METH_KEYWORDS,
     "check_traces(body, min_ns=0, max_ns=2**64-1, max_attrs=.., max_attr_bytes=.., max_expansion=..) -> int:\n"
     "the spans of a protobuf ExportTraceServiceRequest upb would accept with every span kept and\n"
     "within the limits; raises Unsupported for anything else (then parse it with upb)."},
    {"json_traces_checked", (PyCFunction)(void (*)(void))json_traces_checked, METH_VARARGS | METH_KEYWORDS,
     "json_traces_checked(body, min_ns=.., max_ns=.., max_attrs=.., max_attr_bytes=.., max_expansion=..)\n"
     "-> (bytes, int): json_traces_to_protobuf, then check_traces on the result, in one pass."},
    {"go_float", go_float, METH_O, "go_float(x) -> str: pdata float64AsString (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (!m) return NULL;
    Unsupported = PyErr_NewException("otel_ai.native._native.Unsupported", PyExc_Exception, NULL);
    if (!Unsupported || PyModule_AddObject(m, "Unsupported", Unsupported)) {
        Py_XDECREF(Unsupported);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Unsupported);
    return m;
}
