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
#define XATTR_NAME_MAX_ 255
#define UTIME_OMIT_ ((1l << 30) - 2l)

/* ---- helpers for predicates --------------------------------------------- */

static bool is_err(const dr_outcome *o, int e)
{
    return o->kind == DR_ERROR && o->err == e;
}

static bool is_fd(const dr_outcome *o, unsigned type)
{
    return o->kind == DR_FD && o->fd_type == type;
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

/* The xattr name of 17, 19, 20, as the kernel would see it. */
static size_t xattr_name_len(const dr_step *s)
{
    return dr_str_cstrlen(&s->req->s[1]);
}

static bool is_xattr_named(const dr_step *s)
{
    return type_is(s, PC_T_LGETXATTR) || type_is(s, PC_T_LSETXATTR) ||
           type_is(s, PC_T_LREMOVEXATTR);
}

/* Does path field i end in ".", ".." or "/" (what the kernel resolves but
 * virtfs-proxyd refuses to act on, issue 13 class 6)? */
static bool special_final(const dr_str *p)
{
    size_t len = p != NULL ? dr_str_cstrlen(p) : 0;
    const char *last;

    if (len == 0) {
        return false;
    }
    if (p->p[len - 1] == '/') {
        return true;
    }
    last = g_strrstr_len(p->p, (gssize)len, "/");
    last = last != NULL ? last + 1 : p->p;
    return (len - (size_t)(last - p->p) == 1 && last[0] == '.') ||
           (len - (size_t)(last - p->p) == 2 && last[0] == '.' && last[1] == '.');
}

static bool any_special_final(const dr_step *s)
{
    for (int i = 0; dr_req_path(s->req, i) != NULL; i++) {
        if (special_final(dr_req_path(s->req, i))) {
            return true;
        }
    }
    return false;
}

/* ---- issue 13, open findings ------------------------------------------------ */

/* Class 1: long paths.  virtfs-proxyd refuses the path, where Linux
 * answers something else: the reference re-based beneath a deep prefix of
 * the same tree, or the reference itself when the kernel stopped at the
 * other path first (link(2) looks oldpath up before it reads newpath). */
static bool m_class1_refused(const dr_step *s)
{
    return long_path(s) && is_err(&s->ours, ENAMETOOLONG) && !is_err(&s->ref, ENAMETOOLONG) &&
           s->ref.kind != DR_DEAD && (s->ref.kind != DR_HANG || s->predicted_hang);
}

/* Class 2: T_CREATE adds O_CREAT|O_EXCL whatever its flags say. */
static bool m_class2_create_flags(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_CREATE) && !(flags(s) & O_CREAT);
}

/* Class 2, T_OPEN's side of the same: virtfs-proxyd drops O_CREAT/O_EXCL
 * from T_OPEN (ops.c: "QEMU never sends O_CREAT here"); open(2) honours
 * them: creates a missing file (mode 0), EEXIST with O_EXCL, EISDIR on a
 * directory. */
static bool m_class2_open_creat(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_OPEN) && (flags(s) & O_CREAT);
}

/* Class 2, O_PATH: open(2) ignores O_CREAT and O_EXCL under O_PATH (an
 * existing object is opened, a missing one is ENOENT); virtfs-proxyd
 * refuses O_PATH in T_CREATE with EINVAL. */
static bool m_class2_create_opath(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_CREATE) && (flags(s) & O_PATH) &&
           is_err(&s->ours, EINVAL) && !is_err(&s->ref, EINVAL);
}

/* Class 2, O_TMPFILE: refused outright (EINVAL); open(2) makes an unnamed
 * file in the directory, or ignores the flag under O_PATH. */
static bool m_class2_tmpfile(const dr_step *s)
{
    return well_formed(s) && (type_is(s, PC_T_OPEN) || type_is(s, PC_T_CREATE)) &&
           (flags(s) & O_TMPFILE) == O_TMPFILE && is_err(&s->ours, EINVAL) &&
           !is_err(&s->ref, EINVAL);
}

/* Class 3: O_CREAT without O_EXCL on an existing directory: open(2)
 * answers EISDIR; virtfs-proxyd opens the directory (an fd, or the error
 * of that open, e.g. EPERM for O_NOATIME in a lane). */
static bool m_class3_creat_dir(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_CREATE) && (flags(s) & O_CREAT) &&
           !(flags(s) & O_EXCL) && is_err(&s->ref, EISDIR) &&
           (is_fd(&s->ours, S_IFDIR) || (s->ours.kind == DR_ERROR && s->ours.err != EISDIR));
}

/* Class 4: O_CREAT without O_EXCL through a dangling symlink. */
static bool m_class4_dangling(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_CREATE) && (flags(s) & O_CREAT) &&
           !(flags(s) & O_EXCL) &&
           is_fd(&s->ref, S_IFREG) && is_err(&s->ours, ENOENT);
}

/* Class 5: the kernel checks arguments before it looks the path up. */
static bool m_class5_truncate_negative(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_TRUNCATE) && s->req->n[0] < 0 &&
           is_err(&s->ref, EINVAL) &&
           !is_err(&s->ours, EINVAL);
}

static bool m_class5_xattr_name(const dr_step *s)
{
    return well_formed(s) && is_xattr_named(s) &&
           (xattr_name_len(s) == 0 || xattr_name_len(s) > XATTR_NAME_MAX_) &&
           is_err(&s->ref, ERANGE) && !is_err(&s->ours, ERANGE);
}

static bool m_class5_xattr_flags(const dr_step *s)
{
    int32_t fl = (int32_t)s->req->n[1];

    return well_formed(s) && type_is(s, PC_T_LSETXATTR) && (fl & ~3) != 0 &&
           is_err(&s->ref, EINVAL) &&
           !is_err(&s->ours, EINVAL);
}

static bool m_class5_mknod_type(const dr_step *s)
{
    int32_t mode = (int32_t)s->req->n[2];

    return well_formed(s) && type_is(s, PC_T_MKNOD) &&
           ((S_ISDIR(mode) && is_err(&s->ref, EPERM) && !is_err(&s->ours, EPERM)) ||
            (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISCHR(mode) &&
             !S_ISBLK(mode) && (mode & S_IFMT) != 0 && is_err(&s->ref, EINVAL) &&
             !is_err(&s->ours, EINVAL)));
}

static bool m_class5_utime_omit(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_UTIME) && s->req->n[1] == UTIME_OMIT_ &&
           s->req->n[3] == UTIME_OMIT_ && s->ref.kind == DR_STATUS && s->ours.kind == DR_ERROR;
}

static bool m_class5_dir_nofollow(const dr_step *s)
{
    return well_formed(s) && (type_is(s, PC_T_OPEN) || type_is(s, PC_T_CREATE)) &&
           (flags(s) & (O_DIRECTORY | O_NOFOLLOW)) == (O_DIRECTORY | O_NOFOLLOW) &&
           is_err(&s->ref, ENOTDIR) && is_err(&s->ours, ELOOP);
}

static bool m_class5_symlink_empty(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_SYMLINK) && dr_str_cstrlen(&s->req->s[0]) == 0 &&
           is_err(&s->ref, ENOENT) && !is_err(&s->ours, ENOENT);
}

static bool m_class5_creat_directory(const dr_step *s)
{
    return well_formed(s) && (type_is(s, PC_T_CREATE) || type_is(s, PC_T_OPEN)) &&
           (flags(s) & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY) &&
           is_err(&s->ref, EINVAL) && !is_err(&s->ours, EINVAL);
}

/* A lookup error: what resolving a path can answer. */
static bool lookup_err(const dr_outcome *o)
{
    return o->kind == DR_ERROR && (o->err == ENOENT || o->err == ENOTDIR || o->err == ELOOP ||
                                   o->err == ENAMETOOLONG || o->err == EEXIST);
}

/* link(2) looks oldpath up completely before it looks at newpath;
 * virtfs-proxyd opens both parents first. */
static bool m_class5_link_order(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_LINK) && lookup_err(&s->ref) &&
           !is_err(&s->ref, EEXIST) && lookup_err(&s->ours) && s->ref.err != s->ours.err;
}

static bool m_class5_symlink_target_long(const dr_step *s)
{
    return well_formed(s) && type_is(s, PC_T_SYMLINK) &&
           dr_str_cstrlen(&s->req->s[0]) >= KERNEL_PATH_MAX && is_err(&s->ref, ENAMETOOLONG) &&
           !is_err(&s->ours, ENAMETOOLONG);
}

/* Class 6: a final ".", ".." or "/" that the kernel resolves. */
static bool m_class6_special_final(const dr_step *s)
{
    return well_formed(s) && any_special_final(s) &&
           (is_err(&s->ours, EBUSY) || is_err(&s->ours, EEXIST) || is_err(&s->ours, EPERM));
}

/* New (not in the list): openat2(RESOLVE_IN_ROOT) fails with
 * EAGAIN when a lookup crosses ".." (also from a symlink's target) while
 * any rename happens anywhere on the host; ops.c retries 16 times and then
 * hands EAGAIN to the guest.  A race: it shows up rarely, more often under
 * load and with the concurrent pairs. */
static bool m_new_eagain(const dr_step *s)
{
    return is_err(&s->ours, EAGAIN) && !is_err(&s->ref, EAGAIN);
}

/* ---- deliberate (DESIGN.md) --------------------------------------------------- */

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
            is_err(&s->ref, EACCES));
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
    /* ==== open findings of issue 13 (to be fixed; remove the row when fixed) ==== */
    { "class 1: long path refused", DR_OPEN_FINDING, 1, true, m_class1_refused,
      "A path of 4,096 bytes or more is answered ENAMETOOLONG where Linux answers otherwise: "
      "the reference re-based beneath a deep prefix of the same tree serves it, or the "
      "kernel answered from the other path first." },
    { "class 2: T_CREATE without O_CREAT", DR_OPEN_FINDING, 2, true, m_class2_create_flags,
      "T_CREATE always adds O_CREAT|O_EXCL; open(2) follows the flags (ENOENT for a missing "
      "file, the existing object opened, O_EXCL ignored without O_CREAT)." },
    { "class 2: T_OPEN with O_CREAT", DR_OPEN_FINDING, 2, true, m_class2_open_creat,
      "T_OPEN drops O_CREAT and O_EXCL; open(2) creates a missing file, answers EEXIST with "
      "O_EXCL and EISDIR for a directory. (Not in the issue's list: the T_OPEN side of class 2; "
      "QEMU never sends O_CREAT in T_OPEN.)" },
    { "class 2: T_CREATE with O_PATH", DR_OPEN_FINDING, 2, false, m_class2_create_opath,
      "open(2) ignores O_CREAT/O_EXCL under O_PATH (opens an existing object, ENOENT for a "
      "missing one); virtfs-proxyd answers EINVAL. (Not in the issue's list; the same "
      "\"follow the flags\" class.)" },
    { "class 2: O_TMPFILE refused", DR_OPEN_FINDING, 2, true, m_class2_tmpfile,
      "T_OPEN/T_CREATE with O_TMPFILE is EINVAL; open(2) makes an unnamed file in the "
      "directory (an fd on it), or ignores O_TMPFILE under O_PATH. (Not in the issue's list; "
      "\"follow the flags\".)" },
    { "class 3: O_CREAT on an existing directory", DR_OPEN_FINDING, 3, false, m_class3_creat_dir,
      "T_CREATE with O_CREAT and without O_EXCL of an existing directory answers a directory "
      "fd; open(2) answers EISDIR." },
    { "class 4: create through a dangling symlink", DR_OPEN_FINDING, 4, true, m_class4_dangling,
      "open(2) with O_CREAT and without O_EXCL creates a dangling symlink's target; "
      "virtfs-proxyd answers ENOENT." },
    { "class 5: truncate to a negative length", DR_OPEN_FINDING, 5, false,
      m_class5_truncate_negative,
      "truncate(2) answers EINVAL for a negative length before it looks the path up." },
    { "class 5: xattr name empty or over 255 bytes", DR_OPEN_FINDING, 5, false,
      m_class5_xattr_name, "The xattr calls answer ERANGE for such a name before the lookup." },
    { "class 5: lsetxattr flags", DR_OPEN_FINDING, 5, false, m_class5_xattr_flags,
      "lsetxattr(2) answers EINVAL for unknown flags before the lookup. (Not named in the "
      "issue; same errno-order class.)" },
    { "class 5: mknod of a directory or bad type", DR_OPEN_FINDING, 5, false, m_class5_mknod_type,
      "mknod(2) answers EPERM for S_IFDIR and EINVAL for a type it does not know, before the "
      "lookup." },
    { "class 5: utime with both times UTIME_OMIT", DR_OPEN_FINDING, 5, false, m_class5_utime_omit,
      "utimensat(2) with both nsec fields UTIME_OMIT succeeds without looking the path up. "
      "(Not named in the issue; same class.)" },
    { "class 5: O_DIRECTORY|O_NOFOLLOW on a symlink", DR_OPEN_FINDING, 5, false,
      m_class5_dir_nofollow, "open(2) answers ENOTDIR before ELOOP." },
    { "class 5: empty symlink target", DR_OPEN_FINDING, 5, false, m_class5_symlink_empty,
      "symlink(2) answers ENOENT for an empty target before the lookup." },
    { "class 5: O_CREAT|O_DIRECTORY", DR_OPEN_FINDING, 5, false, m_class5_creat_directory,
      "open(2) answers EINVAL for O_CREAT|O_DIRECTORY before the lookup (the issue's "
      "example: on \"\")." },
    { "class 5: link looks oldpath up first", DR_OPEN_FINDING, 5, false, m_class5_link_order,
      "link(2) resolves oldpath completely (ENOENT, ENOTDIR, ENAMETOOLONG for a 256-byte "
      "name, ...) before newpath; virtfs-proxyd opens both parent directories first and "
      "answers newpath's error." },
    { "class 5: symlink target of 4,096 bytes", DR_OPEN_FINDING, 5, false,
      m_class5_symlink_target_long,
      "symlink(2) answers ENAMETOOLONG for a target of PATH_MAX bytes or more before it looks "
      "linkpath up. (Not named in the issue; same class.)" },
    { "new: EAGAIN from a concurrent rename", DR_OPEN_FINDING, 0, false, m_new_eagain,
      "Not in the issue's classes. openat2(RESOLVE_IN_ROOT) answers EAGAIN when the lookup "
      "crosses \"..\" (a symlink's target too) while any rename happens on the host; ops.c "
      "retries 16 times, then the guest gets EAGAIN, which Linux never answers for these "
      "calls. A race: rare, and not reproducible on its own." },
    { "class 6: final \".\", \"..\" or \"/\"", DR_OPEN_FINDING, 6, true, m_class6_special_final,
      "A last component \".\", \"..\" or a trailing \"/\" is refused with EBUSY/EEXIST/EPERM; "
      "the kernel (inside the chroot) answers ENOENT, ENOTDIR, EINVAL, ENOTEMPTY, ... or "
      "performs the call." },

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
      "on a FIFO, EPERM for O_NOATIME, EACCES)." },
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
