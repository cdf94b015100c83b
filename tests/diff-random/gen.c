/* gen.c - the seeded generator of request sequences.
 *
 * Each request is drawn with the reference tree's current listing in view,
 * so most name objects that exist (of the right type, often), and the rest
 * are new names, missing ones and edge cases: QEMU's "//a/b" form with and
 * without its trailing NUL (PROTOCOL.md §2.3), ".", "..", trailing "/",
 * empty, embedded NULs, 255- and 256-byte components, and the seeded deep
 * tree whose paths pass 4,096 bytes.  Numbers come from small tables of
 * what QEMU sends plus the edges of each field.
 */
#include <config.h>

#include "dr.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define DEEP_MIN 2000 /* paths longer than this count as "deep" */

struct dr_gen {
    dr_rng rng;
    unsigned counter;
    const dr_tree *t;
    GPtrArray *normal; /* dr_entry *, borrowed from t */
    GPtrArray *deep;
};

dr_gen *dr_gen_new(uint64_t seed)
{
    dr_gen *g = g_new0(dr_gen, 1);

    g->rng.s = seed * 0x2545f4914f6cdd1dull + 1;
    g->normal = g_ptr_array_new();
    g->deep = g_ptr_array_new();
    return g;
}

void dr_gen_free(dr_gen *g)
{
    if (g != NULL) {
        g_ptr_array_free(g->normal, TRUE);
        g_ptr_array_free(g->deep, TRUE);
        g_free(g);
    }
}

#define PICK(g, arr) ((arr)[dr_below(&(g)->rng, G_N_ELEMENTS(arr))])
#define CHANCE(g, pct) dr_chance(&(g)->rng, (pct))
#define BELOW(g, n) dr_below(&(g)->rng, (n))

/* ---- names and paths ------------------------------------------------------ */

/* An existing entry, of the given type if one is found quickly. */
static const dr_entry *pick_entry(dr_gen *g, char type)
{
    GPtrArray *from = g->deep->len > 0 && CHANCE(g, 12) ? g->deep : g->normal;
    const dr_entry *e = NULL;

    for (int tries = 0; tries < 24; tries++) {
        e = from->pdata[BELOW(g, from->len)];
        if (type == 0 || e->type == type) {
            return e;
        }
        if (tries == 11) {
            from = g->normal;
        }
    }
    return e;
}

static char *long_name(char c, size_t len)
{
    char *s = g_malloc(len + 1);

    memset(s, c, len);
    s[len] = '\0';
    return s;
}

static char *new_name(dr_gen *g)
{
    static const char *const words[] = { "a", "b", "c", "new", "x", "file", "dir", "fifo",
                                         "lf", "hard", "f", "d", "s", "p" };

    switch (BELOW(g, 10)) {
    case 0:
    case 1:
    case 2:
        return g_strdup_printf("n%u", g->counter++);
    case 3:
        return long_name('N', CHANCE(g, 50) ? 255 : 256);
    default:
        return g_strdup(PICK(g, words));
    }
}

static char *child(const char *parent, const char *name)
{
    return parent[0] != '\0' ? g_strconcat(parent, "/", name, NULL) : g_strdup(name);
}

typedef enum want {
    W_ANY, /* anything, mostly existing */
    W_NEW, /* a new name in an existing directory, mostly */
} want;

/* A path relative to the root ("" = the root), before rendering. */
static char *pick_rel(dr_gen *g, want w, char type)
{
    static const char *const odd[] = {
        ".",          "..",          "dir/..",         "dir/../..",    "../..",
        "dir/.",      "file/",       "dir/",           "dir//f",       "ld/../file",
        "lroot/file", "lup/x",       "labsdir/f",      "dir/lparent/file", "ld/",
        "lf/",        "ldang/",      "lloop/x",        "nodir/x",      "file/x",
        "fifo/",      "emptydir/.",  "emptydir/..",    "sticky/theirs", "sgid/n",
        "udir/..",    "dir/sub/../..", "deep/..",      "lroot",        "labs",
    };
    /* existing, new name, missing parent, file as parent, odd, deep new,
     * empty, existing used as a directory */
    static const unsigned any_weights[] = { 55, 14, 5, 3, 10, 5, 4, 4 };
    static const unsigned new_weights[] = { 12, 60, 5, 3, 8, 6, 2, 4 };

    switch (dr_weighted(&g->rng, w == W_ANY ? any_weights : new_weights, 8)) {
    case 0:
        return g_strdup(pick_entry(g, type)->path);
    case 1: {
        const dr_entry *e = pick_entry(g, 'd');
        char *n = new_name(g);
        char *out = child(e->type == 'd' ? e->path : "", n);

        g_free(n);
        return out;
    }
    case 2: /* a missing parent */
        return child(pick_entry(g, 'd')->path, "nodir/x");
    case 3: /* a file as a parent: ENOTDIR */
        return child(pick_entry(g, 'f')->path, "x");
    case 4:
        return g_strdup(PICK(g, odd));
    case 5: { /* a new name in the deep tree, crossing 4,096 bytes */
        const dr_entry *e = NULL;
        char *n, *out;

        for (int i = 0; i < 8 && g->deep->len > 0; i++) {
            e = g->deep->pdata[BELOW(g, g->deep->len)];
            if (e->type == 'd') {
                break;
            }
        }
        if (e == NULL || e->type != 'd') {
            return g_strdup("deep");
        }
        n = new_name(g);
        out = child(e->path, n);
        g_free(n);
        return out;
    }
    case 6:
        return g_strdup("");
    default: /* an existing name used as a directory */
        return child(pick_entry(g, 0)->path, CHANCE(g, 50) ? "f" : ".");
    }
}

/* The bytes of a path field: QEMU's "//" form, its variants, the NUL. */
static GString *render(dr_gen *g, const char *rel, char role)
{
    GString *p = g_string_new(NULL);

    if (rel[0] == '\0') {
        /* The root; occasionally the empty string or other spellings. */
        static const char *const roots[] = { "/", "/", "/", "/", "", "//", "///", "." };

        g_string_assign(p, PICK(g, roots));
    } else if (CHANCE(g, 82)) {
        g_string_printf(p, "//%s", rel);
    } else {
        switch (BELOW(g, 11)) {
        case 0:
            g_string_printf(p, "/%s", rel);
            break;
        case 1:
            g_string_assign(p, rel);
            break;
        case 2:
            g_string_printf(p, "///%s", rel);
            break;
        case 3:
            g_string_printf(p, "//%s/", rel);
            break;
        case 4:
            g_string_printf(p, "//%s/.", rel);
            break;
        case 5:
            g_string_printf(p, "//%s/..", rel);
            break;
        case 6:
            g_string_printf(p, "//./%s", rel);
            break;
        case 7: {
            const char *slash = strchr(rel, '/');

            if (slash != NULL) {
                g_string_printf(p, "//%.*s/./%s", (int)(slash - rel), rel, slash + 1);
            } else {
                g_string_printf(p, "//%s//", rel);
            }
            break;
        }
        case 8:
            g_string_printf(p, "//%s", rel);
            g_string_append_len(p, "\0zz", 3);
            break;
        case 9: {
            /* Far beyond PATH_MAX, made of a name that may exist. */
            g_string_assign(p, "/");
            while (p->len < 9000) {
                g_string_append_printf(p, "/%s", rel);
            }
            break;
        }
        default:
            g_string_printf(p, "//%s", rel);
            break;
        }
    }
    if ((role == 'P' && CHANCE(g, 85)) || (role != 'P' && CHANCE(g, 8))) {
        g_string_append_c(p, '\0');
        if (CHANCE(g, 2)) {
            g_string_append_c(p, '\0');
        }
    }
    return p;
}

static void set_path(dr_gen *g, dr_req *r, int si, char role, want w, char type)
{
    char *rel = pick_rel(g, w, type);
    GString *p = render(g, rel, role);

    dr_req_set_str(r, si, p->str, p->len);
    g_string_free(p, TRUE);
    g_free(rel);
}

static void set_cstr(dr_req *r, int si, const char *s)
{
    dr_req_set_str(r, si, s, strlen(s));
}

/* ---- numbers --------------------------------------------------------------- */

static int32_t pick_id(dr_gen *g)
{
    static const int32_t ids[] = { 0, 0, 0, 0, 1000, 1000, 1000, -1, -1, 4242 };

    return PICK(g, ids);
}

static int32_t pick_open_flags(dr_gen *g, bool create)
{
    static const int32_t qemu[] = { O_RDONLY, O_DIRECTORY, O_WRONLY | O_APPEND, O_RDWR,
                                    O_WRONLY, O_RDONLY | O_NONBLOCK };
    static const struct {
        int32_t bit;
        unsigned pct;
    } extras[] = {
        { O_DIRECTORY, 12 }, { O_NOFOLLOW, 12 }, { O_PATH, 7 },    { O_TRUNC, 10 },
        { O_APPEND, 6 },     { O_NONBLOCK, 10 }, { O_NOATIME, 3 }, { O_CLOEXEC, 3 },
        { O_SYNC, 2 },       { O_DIRECT, 2 },    { 0100000, 3 },   { O_NOCTTY, 2 },
        { FASYNC, 2 },       { 0x40000000, 1 },
    };
    static const unsigned acc_w[] = { 40, 20, 30, 4 };
    int32_t fl;

    if (!create && CHANCE(g, 30)) {
        return PICK(g, qemu);
    }
    fl = (int32_t)dr_weighted(&g->rng, acc_w, 4);
    for (size_t i = 0; i < G_N_ELEMENTS(extras); i++) {
        if (CHANCE(g, extras[i].pct)) {
            fl |= extras[i].bit;
        }
    }
    if (create) {
        if (CHANCE(g, 85)) {
            fl |= O_CREAT;
        }
        if (CHANCE(g, 55)) {
            fl |= O_EXCL;
        }
    } else {
        if (CHANCE(g, 4)) {
            fl |= O_CREAT;
        }
        if (CHANCE(g, 4)) {
            fl |= O_EXCL;
        }
    }
    if (CHANCE(g, 1)) {
        fl |= O_TMPFILE;
    }
    return fl;
}

static int32_t pick_create_mode(dr_gen *g)
{
    static const int32_t modes[] = { 0644, 0644, 0600, 0640, 0, 07777, 04755, 02755,
                                     01777, S_IFREG | 0644, S_IFDIR | 0755, -1, 0444 };

    return PICK(g, modes);
}

static void gen_mknod(dr_gen *g, dr_req *r)
{
    static const int32_t modes[] = {
        S_IFIFO | 0644,  S_IFIFO | 0644, S_IFIFO | 0600, S_IFSOCK | 0600, S_IFREG | 0600,
        0644,            S_IFCHR | 0666, S_IFCHR | 0600, S_IFBLK | 0600,  S_IFDIR | 0755,
        S_IFLNK | 0777,  S_IFIFO | 07777, 0xf000 | 0644,  S_IFIFO | 04755, S_IFCHR | 0644,
    };
    int32_t mode = PICK(g, modes);
    uint64_t rdev = 0;

    /* Only the numbers of /dev/null, /dev/zero, /dev/full, and 0:0 (no
     * driver) for block devices: the reference opens device nodes for
     * T_GETVERSION (session.c). */
    if (S_ISCHR(mode)) {
        const uint64_t safe[] = { makedev(1, 3), makedev(1, 5), makedev(1, 7), 0 };

        rdev = PICK(g, safe);
    }
    r->n[0] = pick_id(g);
    r->n[1] = pick_id(g);
    set_path(g, r, 0, 'p', W_NEW, 0);
    r->n[2] = mode;
    r->n[3] = (int64_t)rdev;
}

static void pick_time(dr_gen *g, int64_t *sec, int64_t *nsec)
{
    static const int64_t secs[] = { 0, 1000, 123456, -1, -100000, 5000000 };
    static const int64_t nsecs[] = { 0, 0, 5, 999999999, UTIME_NOW, UTIME_OMIT,
                                     1000000000, -1 };

    if (CHANCE(g, 10)) {
        /* QEMU leaves an omitted time's seconds uninitialised (§4.14);
         * keep clear of the present, which the comparison calls "now". */
        *sec = (int64_t)(dr_rand(&g->rng) | (1ull << 40));
    } else {
        *sec = PICK(g, secs);
    }
    *nsec = PICK(g, nsecs);
}

static const char *pick_xname(dr_gen *g, char *buf, size_t size)
{
    static const char *const names[] = {
        "user.k", "user.k", "user.n", "user.n", "user.x",  "user.d", "", "user.",
        "trusted.x", "trusted.t", "security.x", "security.capability", "foo.bar",
        "system.posix_acl_access", "user.u",
    };

    if (CHANCE(g, 10)) {
        /* 255 bytes is XATTR_NAME_MAX; 256 is one too many. */
        size_t len = CHANCE(g, 50) ? 255 : 256;

        g_assert(size > len);
        memset(buf, 'x', len);
        memcpy(buf, "user.", 5);
        buf[len] = '\0';
        return buf;
    }
    return PICK(g, names);
}

static void set_xname(dr_gen *g, dr_req *r, int si)
{
    char buf[300];
    const char *name = pick_xname(g, buf, sizeof(buf));
    size_t len = strlen(name);

    dr_req_set_str(r, si, name, len);
    if (CHANCE(g, 4)) {
        /* Embedded NUL: "user.n\0zz". */
        GString *s = g_string_new_len(name, (gssize)len);

        g_string_append_len(s, "\0zz", 3);
        dr_req_set_str(r, si, s->str, s->len);
        g_string_free(s, TRUE);
    } else if (CHANCE(g, 8)) {
        GString *s = g_string_new_len(name, (gssize)len);

        g_string_append_c(s, '\0');
        dr_req_set_str(r, si, s->str, s->len);
        g_string_free(s, TRUE);
    }
}

static const char *pick_target(dr_gen *g, const char *linkpath, char *buf, size_t size)
{
    static const char *const targets[] = {
        "file", "dir", "/file", "/", "..", "../..", "../../../../etc/passwd", "nowhere",
        "/nowhere/x", "", ".", "lloop", "a/b/c", "//dir//f", "fifo", "dir/sub", "/deep",
    };

    switch (BELOW(g, 12)) {
    case 0: { /* a loop onto itself */
        const char *slash = strrchr(linkpath, '/');

        g_snprintf(buf, size, "%s", slash != NULL ? slash + 1 : linkpath);
        return buf;
    }
    case 1: /* PATH_MAX - 1 is the longest target; one more is too long */
        g_assert(size > 4096);
        memset(buf, 't', CHANCE(g, 50) ? 4095 : 4096);
        buf[CHANCE(g, 50) ? 4095 : 4096] = '\0';
        return buf;
    case 2: {
        const dr_entry *e = pick_entry(g, 0);

        if (strlen(e->path) + 2 < size) {
            g_snprintf(buf, size, "/%s", e->path);
            return buf;
        }
        return "/";
    }
    default:
        return PICK(g, targets);
    }
}

/* ---- requests --------------------------------------------------------------- */

static uint32_t pick_type(dr_gen *g)
{
    static const unsigned w[] = {
        [PC_T_OPEN] = 9,       [PC_T_CREATE] = 9,     [PC_T_MKNOD] = 5,     [PC_T_MKDIR] = 6,
        [PC_T_SYMLINK] = 5,    [PC_T_LINK] = 4,       [PC_T_LSTAT] = 8,     [PC_T_READLINK] = 4,
        [PC_T_STATFS] = 3,     [PC_T_CHMOD] = 4,      [PC_T_CHOWN] = 4,     [PC_T_TRUNCATE] = 5,
        [PC_T_UTIME] = 4,      [PC_T_RENAME] = 8,     [PC_T_REMOVE] = 6,    [PC_T_LGETXATTR] = 5,
        [PC_T_LLISTXATTR] = 3, [PC_T_LSETXATTR] = 6,  [PC_T_LREMOVEXATTR] = 3,
        [PC_T_GETVERSION] = 3,
    };

    return dr_weighted(&g->rng, w, G_N_ELEMENTS(w));
}

static void fill(dr_gen *g, dr_req *r)
{
    static const int32_t readlink_sizes[] = { 4096, 4096, 4096, 4096, 2, 1, 0, 3, -1,
                                              65536, 65537, INT32_MAX, 100, INT32_MIN, 256 };
    static const int32_t xget_sizes[] = { 0, 0, 0, 0, 0, 6, 1, 3, 100, 255, 4096,
                                          65534, 65535, 65536, -1, INT32_MAX };
    static const int32_t xlist_sizes[] = { 0, 0, 0, 0, 100, 1, 7, 4096, 65534, 65535, -1 };
    static const int64_t lengths[] = { 0, 1, 3, 100, 4096, 1 << 20, -1, INT64_MIN,
                                       1ll << 40, 1ll << 62, 0, 5 };
    static const int32_t chmods[] = { 0644, 0755, 0, 07777, 04755, 02755, 01777,
                                      S_IFREG | 0604, S_IFDIR | 0700, -1, 0600 };
    static const int32_t mkdir_modes[] = { 0755, 0755, S_IFDIR | 0750, S_IFDIR | 0755,
                                           0, 07777, 02775, 01777, S_IFREG | 0644, -1, 0700 };
    static const int32_t xflags[] = { 0, 0, 0, 0, XATTR_CREATE, XATTR_CREATE, XATTR_REPLACE,
                                      XATTR_REPLACE, 3, 4 };
    static const int32_t chown_ids[] = { 0, 1000, -1, 4242, 65534 };
    char buf[4200];

    switch (r->type) {
    case PC_T_OPEN:
        set_path(g, r, 0, 'P', W_ANY, 0);
        r->n[0] = pick_open_flags(g, false);
        break;
    case PC_T_CREATE:
        set_path(g, r, 0, 'p', CHANCE(g, 25) ? W_ANY : W_NEW, 0);
        r->n[0] = pick_open_flags(g, true);
        r->n[1] = pick_create_mode(g);
        r->n[2] = pick_id(g);
        r->n[3] = pick_id(g);
        break;
    case PC_T_MKNOD:
        gen_mknod(g, r);
        break;
    case PC_T_MKDIR:
        r->n[0] = pick_id(g);
        r->n[1] = pick_id(g);
        set_path(g, r, 0, 'p', W_NEW, 0);
        r->n[2] = PICK(g, mkdir_modes);
        break;
    case PC_T_SYMLINK: {
        char *rel = pick_rel(g, W_NEW, 0);
        GString *p = render(g, rel, 'p');

        r->n[0] = pick_id(g);
        r->n[1] = pick_id(g);
        set_cstr(r, 0, pick_target(g, rel, buf, sizeof(buf)));
        if (CHANCE(g, 3)) {
            dr_req_set_str(r, 0, "file\0x", 6);
        }
        dr_req_set_str(r, 1, p->str, p->len);
        g_string_free(p, TRUE);
        g_free(rel);
        break;
    }
    case PC_T_LINK:
        set_path(g, r, 0, 'P', W_ANY, CHANCE(g, 60) ? 'f' : 0);
        set_path(g, r, 1, 'p', W_NEW, 0);
        break;
    case PC_T_LSTAT:
    case PC_T_STATFS:
    case PC_T_GETVERSION:
        set_path(g, r, 0, 'P', W_ANY, 0);
        break;
    case PC_T_READLINK:
        set_path(g, r, 0, 'P', W_ANY, CHANCE(g, 70) ? 'l' : 0);
        r->n[0] = PICK(g, readlink_sizes);
        break;
    case PC_T_CHMOD:
        set_path(g, r, 0, 'P', W_ANY, 0);
        r->n[0] = PICK(g, chmods);
        break;
    case PC_T_CHOWN:
        set_path(g, r, 0, 'P', W_ANY, 0);
        r->n[0] = PICK(g, chown_ids);
        r->n[1] = PICK(g, chown_ids);
        break;
    case PC_T_TRUNCATE:
        set_path(g, r, 0, 'P', W_ANY, CHANCE(g, 50) ? 'f' : 0);
        r->n[0] = PICK(g, lengths);
        break;
    case PC_T_UTIME:
        set_path(g, r, 0, 'P', W_ANY, 0);
        pick_time(g, &r->n[0], &r->n[1]);
        pick_time(g, &r->n[2], &r->n[3]);
        if (CHANCE(g, 20)) {
            r->n[1] = r->n[3]; /* as QEMU sends it (§4.14) */
        }
        break;
    case PC_T_RENAME:
        set_path(g, r, 0, 'p', W_ANY, 0);
        set_path(g, r, 1, 'p', CHANCE(g, 35) ? W_ANY : W_NEW, 0);
        break;
    case PC_T_REMOVE:
        set_path(g, r, 0, 'p', W_ANY, 0);
        break;
    case PC_T_LGETXATTR:
        r->n[0] = PICK(g, xget_sizes);
        set_path(g, r, 0, 'P', W_ANY, 0);
        set_xname(g, r, 1);
        break;
    case PC_T_LLISTXATTR:
        r->n[0] = PICK(g, xlist_sizes);
        set_path(g, r, 0, 'P', W_ANY, 0);
        break;
    case PC_T_LSETXATTR: {
        /* Small values: how much fits beside others in one inode depends
         * on the filesystem's storage history, which the two trees do not
         * share (ENOSPC on one side only).  5000 never fits. */
        static const size_t vlens[] = { 0, 1, 6, 6, 100, 5000 };
        size_t vlen = PICK(g, vlens);
        char *val = long_name('v', vlen);

        set_path(g, r, 0, 'P', W_ANY, 0);
        set_xname(g, r, 1);
        dr_req_set_str(r, 2, val, vlen);
        g_free(val);
        r->n[0] = (int64_t)vlen;
        if (CHANCE(g, 10)) {
            static const int32_t sizes[] = { 40, -1, 0, 3 };

            r->n[0] = PICK(g, sizes);
        }
        r->n[1] = PICK(g, xflags);
        break;
    }
    case PC_T_LREMOVEXATTR:
        set_path(g, r, 0, 'P', W_ANY, 0);
        set_xname(g, r, 1);
        break;
    default:
        g_assert_not_reached();
    }
}

dr_req *dr_gen_next(dr_gen *g, const dr_tree *t)
{
    dr_req *r = dr_req_new(pick_type(g));

    g->t = t;
    g_ptr_array_set_size(g->normal, 0);
    g_ptr_array_set_size(g->deep, 0);
    for (guint i = 0; i < t->entries->len; i++) {
        dr_entry *e = t->entries->pdata[i];

        g_ptr_array_add(strlen(e->path) > DEEP_MIN ? g->deep : g->normal, e);
    }
    r->conn = CHANCE(g, 25) ? 1 : 0;
    fill(g, r);
    if (CHANCE(g, 2)) {
        r->junk = 1 + BELOW(g, 8);
    } else if (CHANCE(g, 2)) {
        r->cut = 1 + BELOW(g, 6);
    }
    r->with_next = CHANCE(g, 6);
    dr_req_encode(r);
    return r;
}

/* ---- races ------------------------------------------------------------------- */

/* The top-level name a path is under, if it leads nowhere surprising: no
 * "." or "..", no symlink and no hard-linked object on the way, not the
 * root, not too long. */
static char *plain_top(const dr_str *p, const dr_tree *t)
{
    size_t len = dr_str_cstrlen(p);
    char *copy = g_strndup(p->p, len);
    gchar **parts = g_strsplit(copy, "/", -1);
    GString *cur = g_string_new(NULL);
    char *top = NULL;
    bool ok = len > 0 && len < 2000;

    for (gchar **c = parts; *c != NULL && ok; c++) {
        const dr_entry *e;

        if (**c == '\0') {
            continue;
        }
        if (strcmp(*c, ".") == 0 || strcmp(*c, "..") == 0) {
            ok = false;
            break;
        }
        g_string_append_printf(cur, "%s%s", cur->len > 0 ? "/" : "", *c);
        if (top == NULL) {
            top = g_strdup(*c);
        }
        e = dr_tree_get(t, cur->str);
        if (e != NULL && (e->type == 'l' || strstr(e->line, " link=") != NULL)) {
            ok = false;
        }
    }
    if (!ok || top == NULL) {
        g_free(top);
        top = NULL;
    }
    g_string_free(cur, TRUE);
    g_strfreev(parts);
    g_free(copy);
    return top;
}

bool dr_gen_commute(const dr_req *a, const dr_req *b, const dr_tree *t)
{
    GPtrArray *tops[2] = { g_ptr_array_new_with_free_func(g_free),
                           g_ptr_array_new_with_free_func(g_free) };
    const dr_req *rs[2] = { a, b };
    bool ok = true;

    for (int i = 0; i < 2 && ok; i++) {
        if (rs[i]->cut > 0 || rs[i]->junk > 0 || dr_req_embedded_nul(rs[i])) {
            ok = false;
        }
        for (int k = 0; ok && dr_req_path(rs[i], k) != NULL; k++) {
            char *top = plain_top(dr_req_path(rs[i], k), t);

            ok = top != NULL;
            if (ok) {
                g_ptr_array_add(tops[i], top);
            }
        }
    }
    for (guint i = 0; ok && i < tops[0]->len; i++) {
        for (guint j = 0; ok && j < tops[1]->len; j++) {
            ok = strcmp(tops[0]->pdata[i], tops[1]->pdata[j]) != 0;
        }
    }
    g_ptr_array_free(tops[0], TRUE);
    g_ptr_array_free(tops[1], TRUE);
    return ok;
}
