/* req.c - the random source, and requests: fields, encoding, descriptions. */
#include <config.h>

#include "dr.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

/* ---- random source ------------------------------------------------------ */

uint64_t dr_rand(dr_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t dr_below(dr_rng *r, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(dr_rand(r) % n);
}

bool dr_chance(dr_rng *r, unsigned percent)
{
    return dr_below(r, 100) < percent;
}

unsigned dr_weighted(dr_rng *r, const unsigned *weights, unsigned n)
{
    unsigned total = 0, pick;

    for (unsigned i = 0; i < n; i++) {
        total += weights[i];
    }
    pick = dr_below(r, total);
    for (unsigned i = 0; i < n; i++) {
        if (pick < weights[i]) {
            return i;
        }
        pick -= weights[i];
    }
    return n - 1;
}

/* ---- fields ---------------------------------------------------------------- */

static const char *const specs[] = {
    [PC_T_OPEN] = "Pd",       [PC_T_CREATE] = "pdddd",   [PC_T_MKNOD] = "ddpdq",
    [PC_T_MKDIR] = "ddpd",    [PC_T_SYMLINK] = "ddtp",   [PC_T_LINK] = "Pp",
    [PC_T_LSTAT] = "P",       [PC_T_READLINK] = "Pd",    [PC_T_STATFS] = "P",
    [PC_T_CHMOD] = "Pd",      [PC_T_CHOWN] = "Pdd",      [PC_T_TRUNCATE] = "Pq",
    [PC_T_UTIME] = "Pqqqq",   [PC_T_RENAME] = "pp",      [PC_T_REMOVE] = "p",
    [PC_T_LGETXATTR] = "dPn", [PC_T_LLISTXATTR] = "dP",  [PC_T_LSETXATTR] = "Pnvdd",
    [PC_T_LREMOVEXATTR] = "Pn", [PC_T_GETVERSION] = "P",
};

const char *dr_req_spec(uint32_t type)
{
    return type < G_N_ELEMENTS(specs) ? specs[type] : NULL;
}

static bool is_str_role(char c)
{
    return strchr("Pptnv", c) != NULL;
}

dr_req *dr_req_new(uint32_t type)
{
    dr_req *r = g_new0(dr_req, 1);

    r->type = type;
    return r;
}

void dr_req_free(dr_req *r)
{
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < DR_MAX_STR; i++) {
        g_free(r->s[i].p);
    }
    g_free(r->frame);
    g_free(r);
}

dr_req *dr_req_copy(const dr_req *r)
{
    dr_req *c = g_memdup2(r, sizeof(*r));

    for (int i = 0; i < DR_MAX_STR; i++) {
        c->s[i].p = r->s[i].p != NULL ? g_memdup2(r->s[i].p, r->s[i].len + 1) : NULL;
    }
    c->frame = r->frame != NULL ? g_memdup2(r->frame, r->frame_len) : NULL;
    return c;
}

void dr_req_set_str(dr_req *r, int i, const char *p, size_t len)
{
    g_free(r->s[i].p);
    r->s[i].p = g_malloc(len + 1);
    memcpy(r->s[i].p, p, len);
    r->s[i].p[len] = '\0';
    r->s[i].len = len;
}

void dr_req_encode(dr_req *r)
{
    const char *spec = dr_req_spec(r->type);
    GByteArray *b = g_byte_array_new();
    int si = 0, ni = 0;
    uint32_t hdr[2] = { r->type, 0 };

    g_byte_array_append(b, (const guint8 *)hdr, sizeof(hdr));
    for (const char *f = spec; *f != '\0'; f++) {
        if (is_str_role(*f)) {
            uint16_t len = (uint16_t)r->s[si].len;

            g_byte_array_append(b, (const guint8 *)&len, 2);
            g_byte_array_append(b, (const guint8 *)r->s[si].p, len);
            si++;
        } else if (*f == 'd') {
            int32_t v = (int32_t)r->n[ni++];

            g_byte_array_append(b, (const guint8 *)&v, 4);
        } else {
            int64_t v = r->n[ni++];

            g_byte_array_append(b, (const guint8 *)&v, 8);
        }
    }
    if (r->cut > 0) {
        size_t body = b->len - 8;

        g_byte_array_set_size(b, b->len - MIN(r->cut, body));
    }
    for (size_t i = 0; i < r->junk; i++) {
        guint8 j = (guint8)(0xa5 ^ i);

        g_byte_array_append(b, &j, 1);
    }
    hdr[1] = b->len - 8;
    memcpy(b->data, hdr, sizeof(hdr));
    g_free(r->frame);
    r->frame_len = b->len;
    r->frame = g_byte_array_free(b, FALSE);
}

/* ---- views ---------------------------------------------------------------- */

const dr_str *dr_req_path(const dr_req *r, int i)
{
    const char *spec = dr_req_spec(r->type);
    int si = 0;

    for (const char *f = spec; *f != '\0'; f++) {
        if (*f == 'P' || *f == 'p') {
            if (i-- == 0) {
                return &r->s[si];
            }
        }
        si += is_str_role(*f);
    }
    return NULL;
}

int dr_req_npaths(const dr_req *r)
{
    int n = 0;

    while (dr_req_path(r, n) != NULL) {
        n++;
    }
    return n;
}

size_t dr_str_cstrlen(const dr_str *s)
{
    return s->p != NULL ? strnlen(s->p, s->len) : 0;
}

bool dr_str_embedded_nul(const dr_str *s)
{
    size_t len = s->len;

    if (len > 0 && s->p[len - 1] == '\0') {
        len--;
    }
    return memchr(s->p, '\0', len) != NULL;
}

bool dr_req_embedded_nul(const dr_req *r)
{
    const char *spec = dr_req_spec(r->type);
    int si = 0;

    for (const char *f = spec; *f != '\0'; f++) {
        if (is_str_role(*f)) {
            if (*f != 'v' && dr_str_embedded_nul(&r->s[si])) {
                return true;
            }
            si++;
        }
    }
    return false;
}

size_t dr_req_max_path(const dr_req *r)
{
    size_t max = 0;

    for (int i = 0; dr_req_path(r, i) != NULL; i++) {
        max = MAX(max, dr_str_cstrlen(dr_req_path(r, i)));
    }
    return max;
}

bool dr_req_is_creation(const dr_req *r)
{
    return r->type == PC_T_CREATE || r->type == PC_T_MKNOD || r->type == PC_T_MKDIR ||
           r->type == PC_T_SYMLINK;
}

void dr_req_ids(const dr_req *r, int32_t *uid, int32_t *gid)
{
    int base = r->type == PC_T_CREATE ? 2 : 0;

    *uid = (int32_t)r->n[base];
    *gid = (int32_t)r->n[base + 1];
}

int32_t dr_req_flags(const dr_req *r)
{
    return (int32_t)r->n[0];
}

/* ---- descriptions ----------------------------------------------------------- */

#define NOW_WINDOW (2 * 86400)

static time_t run_start;

void dr_set_time_origin(void)
{
    run_start = time(NULL);
}

char *dr_norm_time(int64_t sec, int64_t nsec)
{
    if (sec > run_start - NOW_WINDOW && sec < time(NULL) + NOW_WINDOW) {
        return g_strdup("now");
    }
    return g_strdup_printf("%" PRId64 ".%09" PRId64, sec, nsec);
}

char *dr_open_flags_str(int32_t flags)
{
    static const struct {
        int32_t bit;
        const char *name;
    } names[] = {
        { O_CREAT, "O_CREAT" },         { O_EXCL, "O_EXCL" },
        { O_NOCTTY, "O_NOCTTY" },       { O_TRUNC, "O_TRUNC" },
        { O_APPEND, "O_APPEND" },       { O_NONBLOCK, "O_NONBLOCK" },
        { O_DSYNC, "O_DSYNC" },         { FASYNC, "FASYNC" },
        { O_DIRECT, "O_DIRECT" },       { 0100000, "O_LARGEFILE" },
        { O_DIRECTORY, "O_DIRECTORY" }, { O_NOFOLLOW, "O_NOFOLLOW" },
        { O_NOATIME, "O_NOATIME" },     { O_CLOEXEC, "O_CLOEXEC" },
        { 04000000 /* __O_SYNC */, "__O_SYNC" },
        { O_PATH, "O_PATH" },           { 020000000 /* __O_TMPFILE */, "__O_TMPFILE" },
    };
    static const char *const acc[] = { "O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE" };
    GString *out = g_string_new(acc[flags & O_ACCMODE]);
    int32_t rest = flags & ~O_ACCMODE;

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (rest & names[i].bit) {
            g_string_append_printf(out, "|%s", names[i].name);
            rest &= ~names[i].bit;
        }
    }
    if (rest != 0) {
        g_string_append_printf(out, "|%#x", (unsigned)rest);
    }
    return g_string_free(out, FALSE);
}

/* A string field for humans: printable bytes as they are, others escaped,
 * a run of 8 or more equal letters or digits as "a{250}". */
static void append_str(GString *out, const dr_str *s)
{
    g_string_append_c(out, '"');
    for (size_t i = 0; i < s->len;) {
        size_t run = 1;
        unsigned char c = (unsigned char)s->p[i];

        while (i + run < s->len && (unsigned char)s->p[i + run] == c) {
            run++;
        }
        if (run >= 8 && g_ascii_isalnum(c)) {
            g_string_append_printf(out, "%c{%zu}", c, run);
            i += run;
            continue;
        }
        if (c == '\0') {
            g_string_append(out, "\\0");
        } else if (c == '"' || c == '\\') {
            g_string_append_printf(out, "\\%c", c);
        } else if (g_ascii_isprint(c)) {
            g_string_append_c(out, (char)c);
        } else {
            g_string_append_printf(out, "\\x%02x", c);
        }
        i++;
    }
    g_string_append_printf(out, "\"(%zu)", s->len);
}

char *dr_req_describe(const dr_req *r)
{
    const char *spec = dr_req_spec(r->type);
    GString *out = g_string_new(pc_type_name(r->type));
    int si = 0, ni = 0;

    g_string_append_printf(out, " [conn %d]", r->conn);
    for (const char *f = spec; *f != '\0'; f++) {
        g_string_append_c(out, ' ');
        if (is_str_role(*f)) {
            append_str(out, &r->s[si++]);
            continue;
        }
        if ((r->type == PC_T_OPEN || r->type == PC_T_CREATE) && ni == 0) {
            char *fl = dr_open_flags_str((int32_t)r->n[0]);

            g_string_append(out, fl);
            g_free(fl);
        } else if ((r->type == PC_T_CREATE && ni == 1) || (r->type == PC_T_MKNOD && ni == 2) ||
                   (r->type == PC_T_MKDIR && ni == 2) || r->type == PC_T_CHMOD) {
            g_string_append_printf(out, "0%o", (unsigned)(uint32_t)r->n[ni]);
        } else if (*f == 'd') {
            g_string_append_printf(out, "%d", (int32_t)r->n[ni]);
        } else {
            g_string_append_printf(out, "%" G_GINT64_FORMAT, r->n[ni]);
        }
        ni++;
    }
    if (r->cut > 0) {
        g_string_append_printf(out, " (last %zu body bytes cut)", r->cut);
    }
    if (r->junk > 0) {
        g_string_append_printf(out, " (+%zu junk bytes)", r->junk);
    }
    return g_string_free(out, FALSE);
}

/* Hex, four bytes to a group; a run of 8 or more equal bytes is written
 * once with its count ("61*250"), so a 6,000-byte path stays readable. */
char *dr_req_hex(const dr_req *r)
{
    GString *out = g_string_new(NULL);
    bool sep = false;

    for (size_t i = 0; i < r->frame_len;) {
        size_t run = 1;

        while (i + run < r->frame_len && r->frame[i + run] == r->frame[i]) {
            run++;
        }
        if (run >= 8) {
            g_string_append_printf(out, "%s%02x*%zu", out->len > 0 ? " " : "", r->frame[i], run);
            i += run;
            sep = true;
            continue;
        }
        if (out->len > 0 && (i % 4 == 0 || sep)) {
            g_string_append_c(out, ' ');
        }
        sep = false;
        g_string_append_printf(out, "%02x", r->frame[i]);
        i++;
    }
    return g_string_free(out, FALSE);
}
