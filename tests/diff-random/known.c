/* known.c - the one table of known divergences.
 *
 * Every row is a predicate on (request, reference reply, virtfs-proxyd
 * reply) with its reason; `tree` says whether the trees may differ after
 * the step as well.  The first matching row explains a step; a step no row
 * explains is a failure.  A crash, hang, malformed reply or leaked
 * descriptor of virtfs-proxyd is never looked up here: always a failure.
 *
 * Three sections: open findings of issue 13 (remove a row when its class is
 * fixed: the run then shows whether the fix is complete), deliberate
 * divergences (DESIGN.md), and reference bugs (PROTOCOL.md).  Open-finding
 * rows are kept narrow on purpose, so that a fix which gets the errno wrong
 * shows up as a failure rather than being absorbed by a broad row.
 */
#include <config.h>

#include "dr.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define KERNEL_PATH_MAX 4096

/* ---- helpers for predicates --------------------------------------------- */

static bool is_err(const dr_outcome *o, int e)
{
    return o->kind == DR_ERROR && o->err == e;
}

static bool ok(const dr_outcome *o)
{
    return o->kind == DR_STATUS || o->kind == DR_DATA || o->kind == DR_FD;
}

static bool type_is(const dr_step *s, uint32_t t)
{
    return s->req->type == t;
}

static bool well_formed(const dr_step *s)
{
    return s->req->cut == 0 && s->req->junk == 0 && !dr_req_embedded_nul(s->req);
}

static int32_t flags(const dr_step *s)
{
    return dr_req_flags(s->req);
}

static bool long_path(const dr_step *s)
{
    return dr_req_max_path(s->req) >= KERNEL_PATH_MAX;
}

/* ---- issue 13, open findings ------------------------------------------------ */

/* None left: every class of issue 13 is fixed, and what remains is
 * deliberate (below).  A new finding goes here, as narrow as it can be, so
 * that a fix which gets the errno wrong shows up as a failure rather than
 * being absorbed by a broad row. */

/* ---- deliberate (DESIGN.md) --------------------------------------------------- */

/* T_OPEN with O_CREAT never creates (ops.c open_creat_existing): a free
 * name or a dangling symlink's target is ENOENT, where the reference creates
 * it as root with an undefined mode. */
static bool m_open_creat_nocreate(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_OPEN) && (flags(s) & O_CREAT) &&
           !(flags(s) & O_PATH) && is_err(&s->ours, ENOENT) && s->ref.kind == DR_FD;
}

/* O_TMPFILE (without O_PATH, which makes open(2) ignore it) is EINVAL. */
static bool m_tmpfile(const dr_step *s)
{
    return well_formed(s) && (type_is(s, PC_T_OPEN) || type_is(s, PC_T_CREATE)) &&
           (flags(s) & O_TMPFILE) == O_TMPFILE && !(flags(s) & O_PATH) &&
           is_err(&s->ours, EINVAL) && !is_err(&s->ref, EINVAL);
}

/* openat2(RESOLVE_IN_ROOT) fails with EAGAIN when a lookup crosses ".."
 * (also from a symlink's target) while any rename happens anywhere on the
 * host; ops.c retries 16 times and then hands EAGAIN to the guest.  A race:
 * it shows up rarely, more often under load and with the concurrent pairs. */
static bool m_eagain(const dr_step *s)
{
    return is_err(&s->ours, EAGAIN) && !is_err(&s->ref, EAGAIN);
}

static bool m_embedded_nul(const dr_step *s)
{
    return dr_req_embedded_nul(s->req) && is_err(&s->ours, EINVAL);
}

static bool m_trailing_bytes(const dr_step *s)
{
    return s->req->junk > 0 && is_err(&s->ours, EINVAL);
}

static bool m_missing_fields(const dr_step *s)
{
    return s->req->cut > 0 && is_err(&s->ours, EINVAL);
}

static bool m_devices(const dr_step *s)
{
    int32_t mode = (int32_t)s->req->n[2];

    return type_is(s, PC_T_MKNOD) && (S_ISCHR(mode) || S_ISBLK(mode)) &&
           is_err(&s->ours, EPERM);
}

static bool m_readlink_bufsize(const dr_step *s)
{
    return type_is(s, PC_T_READLINK) && s->req->n[0] > 65536 && is_err(&s->ours, EINVAL);
}

static bool m_xattr_size(const dr_step *s)
{
    return (type_is(s, PC_T_LGETXATTR) || type_is(s, PC_T_LLISTXATTR)) &&
           (int32_t)s->req->n[0] > 65534 && is_err(&s->ours, EINVAL);
}

static bool m_lsetxattr_size(const dr_step *s)
{
    return type_is(s, PC_T_LSETXATTR) && s->req->n[0] != (int64_t)s->req->s[2].len &&
           is_err(&s->ours, EINVAL);
}

/* open(2) of the special file itself fails first: ENOTDIR (O_DIRECTORY),
 * EINVAL (O_DIRECT on a device, access mode 3 on a FIFO), EPERM
 * (O_NOATIME on someone else's node), EACCES. */
static bool m_special_enxio(const dr_step *s)
{
    return (type_is(s, PC_T_OPEN) || type_is(s, PC_T_CREATE)) && is_err(&s->ours, ENXIO) &&
           (is_err(&s->ref, ENOTDIR) || is_err(&s->ref, EINVAL) || is_err(&s->ref, EPERM) ||
            is_err(&s->ref, EACCES) ||
            /* O_PATH: open(2) pins any type, even a symlink with O_NOFOLLOW */
            ((flags(s) & O_PATH) && s->ref.kind == DR_FD && s->ref.fd_type != S_IFREG &&
             s->ref.fd_type != S_IFDIR));
}

static bool m_getversion_special(const dr_step *s)
{
    return type_is(s, PC_T_GETVERSION) && is_err(&s->ref, ENXIO) && is_err(&s->ours, ENOTTY);
}

/* The same fd, except for flags that only steer the lookup. */
static char *without_lookup_flags(const char *desc)
{
    static const char *const drop[] = { "|O_NOFOLLOW", "|O_DIRECTORY" };
    char *out = g_strdup(desc);

    for (size_t i = 0; i < G_N_ELEMENTS(drop); i++) {
        char *at = strstr(out, drop[i]);

        if (at != NULL) {
            size_t n = strlen(drop[i]);

            memmove(at, at + n, strlen(at + n) + 1);
        }
    }
    return out;
}

static bool m_fd_lookup_flags(const dr_step *s)
{
    char *a, *b;
    bool same;

    if (s->ref.kind != DR_FD || s->ours.kind != DR_FD ||
        !(flags(s) & (O_NOFOLLOW | O_DIRECTORY))) {
        return false;
    }
    a = without_lookup_flags(s->ref.desc);
    b = without_lookup_flags(s->ours.desc);
    same = strcmp(a, b) == 0;
    g_free(a);
    g_free(b);
    return same;
}

/* Two descriptions (an fd reply, or a listing line) that differ only in
 * their third word, a mode, where ours has set-id bits the reference's
 * lacks. */
static bool differ_only_in_setid(const char *ref, const char *ours)
{
    gchar **a = g_strsplit(ref, " ", -1);
    gchar **b = g_strsplit(ours, " ", -1);
    bool ok = g_strv_length(a) == g_strv_length(b) && g_strv_length(a) > 3;

    for (guint i = 0; ok && a[i] != NULL; i++) {
        if (i == 2) {
            unsigned long ma = strtoul(a[i], NULL, 8), mb = strtoul(b[i], NULL, 8);

            ok = ma != mb && (ma | (mb & 06000)) == mb;
        } else {
            ok = strcmp(a[i], b[i]) == 0;
        }
    }
    g_strfreev(a);
    g_strfreev(b);
    return ok;
}

/* Every tree difference is one entry whose mode lacks set-id bits on the
 * reference side. */
static bool tree_only_setid(const dr_step *s)
{
    const GPtrArray *d = s->tree_diff;

    if (d == NULL) {
        return true;
    }
    for (guint i = 0; i < d->len; i += 2) {
        const char *r = d->pdata[i], *o = i + 1 < d->len ? d->pdata[i + 1] : "";

        if (!g_str_has_prefix(r, "reference: ") || !g_str_has_prefix(o, "virtfs-proxyd: ") ||
            !differ_only_in_setid(strchr(r, ':') + 1 + strspn(strchr(r, ':') + 1, " "),
                                 strchr(o, ':') + 1 + strspn(strchr(o, ':') + 1, " "))) {
            return false;
        }
    }
    return true;
}

/* A creation with uid or gid -1 standing for root: virtfs-proxyd acts as
 * its own id, 0:0, with all its capabilities; the reference switches
 * anyway and keeps only CAP_DAC_OVERRIDE (its R1 path), so without
 * CAP_FSETID the kernel strips S_ISGID from a new file in another group's
 * setgid directory and S_ISUID/S_ISGID when O_TRUNC truncates, and without
 * CAP_FOWNER refuses O_NOATIME on a file it does not own. */
static bool m_minus_one_ids(const dr_step *s)
{
    int32_t uid, gid;

    if (!well_formed(s) || !dr_req_is_creation(s->req)) {
        return false;
    }
    dr_req_ids(s->req, &uid, &gid);
    if (!((uid == -1 || gid == -1) && (uid == -1 || uid == 0) && (gid == -1 || gid == 0))) {
        return false;
    }
    if (is_err(&s->ref, EPERM) && ok(&s->ours)) {
        return true;
    }
    return s->ref.kind == s->ours.kind && tree_only_setid(s) &&
           (strcmp(s->ref.desc, s->ours.desc) == 0 ||
            (s->ref.kind == DR_FD && differ_only_in_setid(s->ref.desc, s->ours.desc)));
}

/* Does p have a ".." component beyond what one openat2 can take (its end
 * past byte 4,095)? */
static bool dotdot_beyond_one_call(const dr_str *p)
{
    size_t len = dr_str_cstrlen(p);

    for (size_t i = 0; i < len;) {
        size_t j = i;

        while (j < len && p->p[j] != '/') {
            j++;
        }
        if (j - i == 2 && p->p[i] == '.' && p->p[i + 1] == '.' && j >= KERNEL_PATH_MAX) {
            return true;
        }
        i = j + 1;
    }
    return false;
}

/* ops.c: beyond the first chunk of a long path (what one openat2 takes), a
 * ".." is not walked: ENAMETOOLONG, the reference's own answer for the
 * whole path. */
static bool m_long_dotdot(const dr_step *s)
{
    if (!long_path(s) || !is_err(&s->ours, ENAMETOOLONG)) {
        return false;
    }
    for (int i = 0; dr_req_path(s->req, i) != NULL; i++) {
        if (dotdot_beyond_one_call(dr_req_path(s->req, i))) {
            return true;
        }
    }
    return false;
}

static bool m_long_no_oracle(const dr_step *s)
{
    return long_path(s) && !s->rebased && is_err(&s->ref, ENAMETOOLONG) &&
           (ok(&s->ours) || s->ours.kind == DR_ERROR);
}

/* ---- reference bugs ------------------------------------------------------------ */

static bool m_ref_getversion_garbage(const dr_step *s)
{
    return type_is(s, PC_T_GETVERSION) && s->ref.kind == DR_DATA && s->ours.kind == DR_DATA &&
           s->ref.upper != 0 && s->ours.upper == 0;
}

static bool m_ref_negative_size(const dr_step *s)
{
    int32_t size = (int32_t)s->req->n[0];

    return (type_is(s, PC_T_READLINK) || type_is(s, PC_T_LGETXATTR) ||
            type_is(s, PC_T_LLISTXATTR)) &&
           size < 0 && s->ref.kind == DR_DEAD && is_err(&s->ours, EINVAL);
}

static bool m_ref_fifo(const dr_step *s)
{
    return s->ref.kind == DR_HANG &&
           (((type_is(s, PC_T_OPEN) || type_is(s, PC_T_CREATE)) && is_err(&s->ours, ENXIO)) ||
            (type_is(s, PC_T_GETVERSION) && is_err(&s->ours, ENOTTY)));
}

/* ---- the table ------------------------------------------------------------------- */

const dr_known dr_known_table[] = {
    /* ==== open findings of issue 13: none left (see the section above) ==== */

    /* ==== deliberate (DESIGN.md) ==== */
    { "embedded NUL", DR_DESIGN, 0, true, m_embedded_nul,
      "DESIGN.md: strip one trailing NUL, any other NUL is EINVAL. The reference truncates at "
      "the first NUL (PROTOCOL.md §2.3) and acts on the shorter name." },
    { "trailing bytes", DR_DESIGN, 0, true, m_trailing_bytes,
      "DESIGN.md: a body that does not parse exactly (trailing bytes) is EINVAL. The reference "
      "ignores the extra bytes and performs the request (§3.2, §7.5)." },
    { "missing fields", DR_DESIGN, 0, true, m_missing_fields,
      "DESIGN.md: a truncated body is EINVAL; the reference answers ENOBUFS (§3.7, §7.5)." },
    { "device nodes refused", DR_DESIGN, 0, true, m_devices,
      "DESIGN.md: block and character devices are created only with --allow-devices, else "
      "EPERM before anything else." },
    { "readlink bufsize over 65536", DR_DESIGN, 0, false, m_readlink_bufsize,
      "DESIGN.md: T_READLINK needs 1 < bufsize <= 65536." },
    { "getxattr/listxattr size over 65534", DR_DESIGN, 0, false, m_xattr_size,
      "DESIGN.md: 0 <= size <= 65534, so the reply fits a frame." },
    { "lsetxattr size != value length", DR_DESIGN, 0, true, m_lsetxattr_size,
      "DESIGN.md: size must equal the value's length. The reference trusts size: it stores "
      "size bytes, over-reading its heap when size is larger (§4.19)." },
    { "ENXIO before open(2)'s errors for special files", DR_DESIGN, 0, false, m_special_enxio,
      "DESIGN.md: open/create of anything but a regular file or directory is ENXIO, decided "
      "on an O_PATH descriptor before opening; the reference opens first and gets open(2)'s "
      "own error (ENOTDIR for O_DIRECTORY, EINVAL for O_DIRECT on a device or access mode 3 "
      "on a FIFO, EPERM for O_NOATIME, EACCES), or, under O_PATH, an O_PATH descriptor on "
      "the special file or symlink itself." },
    { "getversion of a special file: ENOTTY", DR_DESIGN, 0, false, m_getversion_special,
      "DESIGN.md: T_GETVERSION of anything but a regular file or directory is ENOTTY without "
      "opening it; the reference opens it (ENXIO for a socket or a device without a driver)." },
    { "fd status flags without O_NOFOLLOW/O_DIRECTORY", DR_DESIGN, 0, false, m_fd_lookup_flags,
      "DESIGN.md: the object is pinned with O_PATH, checked, and re-opened (or, for O_PATH, "
      "sent as it is), so O_NOFOLLOW and O_DIRECTORY, which only steer the lookup, are not "
      "among the descriptor's status flags; open(2) keeps them there. Nothing QEMU does "
      "with the fd reads them back." },
    { "uid/gid -1 is the daemon's own id", DR_DESIGN, 0, true, m_minus_one_ids,
      "DESIGN.md: a creation's -1 means the daemon's own id, so -1 with 0 runs as root with "
      "all capabilities; the reference switches anyway and keeps only CAP_DAC_OVERRIDE "
      "(PROTOCOL.md §7.3, its R1 path), so the kernel strips set-id bits (a new file in "
      "another group's setgid directory; O_TRUNC) or refuses O_NOATIME (EPERM)." },
    { "T_OPEN never creates", DR_DESIGN, 0, true, m_open_creat_nocreate,
      "DESIGN.md (virtfs-proxyd(8), PATHS AND CREATION): T_OPEN with O_CREAT answers for an "
      "existing object what open(2) answers (EISDIR, EEXIST with O_EXCL, a trailing slash "
      "EISDIR) but never creates: it runs as the daemon and carries no mode, and QEMU never "
      "sends it (T_CREATE creates). A free name or a dangling symlink's target is ENOENT; the "
      "reference creates it as root with whatever mode its stack held." },
    { "O_TMPFILE refused", DR_DESIGN, 0, true, m_tmpfile,
      "DESIGN.md: T_OPEN/T_CREATE with O_TMPFILE is EINVAL (an unnamed file is nothing QEMU "
      "asks for); open(2) makes one in the directory. Under O_PATH open(2) ignores O_TMPFILE, "
      "and so does virtfs-proxyd." },
    { "EAGAIN from a concurrent rename", DR_DESIGN, 0, false, m_eagain,
      "DESIGN.md: openat2(RESOLVE_IN_ROOT) answers EAGAIN when the lookup crosses \"..\" (a "
      "symlink's target too) while any rename happens on the host; ops.c retries 16 times, "
      "then the guest gets EAGAIN (bounded, so that renames elsewhere cannot keep a lane "
      "busy forever), where the kernel's own walk retries without bound. A race: rare, and "
      "not reproducible on its own." },
    { "\"..\" beyond one call's reach", DR_DESIGN, 0, false, m_long_dotdot,
      "DESIGN.md (virtfs-proxyd(8), PATHS AND CREATION): a path of 4,096 bytes or more is "
      "resolved in chunks, the first with one openat2(RESOLVE_IN_ROOT) from the root, the "
      "rest only downwards; a \"..\" (or a non-final symlink) beyond the first chunk is "
      "ENAMETOOLONG, the reference's answer for the whole path, rather than a component walk "
      "a guest could use to spend the daemon's descriptors and time. A kernel taking the "
      "long path would walk it (ENOENT for a missing component before it, or success)." },
    { "long path beyond the oracle", DR_DESIGN, 0, true, m_long_no_oracle,
      "Issue 13 class 1: virtfs-proxyd may serve paths of 4,096 bytes or more, which the "
      "reference refuses; for this request no re-based reference exists (no common deep "
      "prefix, \"..\" or a symlink on the way), so its answer is not checked." },

    /* ==== reference bugs (PROTOCOL.md) ==== */
    { "reference: getversion upper half", DR_REFBUG, 0, false, m_ref_getversion_garbage,
      "PROTOCOL.md §4.21: the reference sends 32 bits of uninitialised stack in the upper "
      "half of the generation." },
    { "reference: crash on a negative size", DR_REFBUG, 0, false, m_ref_negative_size,
      "PROTOCOL.md §4.9, §4.17, §7.5: a negative readlink bufsize or xattr size crashes the "
      "reference (g_malloc, SIGTRAP); virtfs-proxyd answers EINVAL. The helper is restarted." },
    { "reference: blocks on a FIFO", DR_REFBUG, 0, false, m_ref_fifo,
      "PROTOCOL.md §4.2, §4.21: the reference open()s a FIFO without O_NONBLOCK and blocks "
      "forever (so the request is not sent to it); virtfs-proxyd answers ENXIO (open, create) "
      "or ENOTTY (getversion) without opening it." },
};

const size_t dr_known_count = G_N_ELEMENTS(dr_known_table);

const dr_known *dr_known_find(const dr_step *s)
{
    for (size_t i = 0; i < dr_known_count; i++) {
        const dr_known *k = &dr_known_table[i];

        if ((k->tree || s->tree_diff == NULL) && k->match(s)) {
            return k;
        }
    }
    return NULL;
}
