/* vp-bench.c - load generator for the 9p proxy protocol.
 *
 * Drives N concurrent connections against one or more servers, in the same
 * invocation and alternating between them, so that ratios come from one run
 * on one (noisy) machine:
 *
 *   ours  virtfs-proxyd, one process for all connections (-s SOCKET);
 *   ref   QEMU's virtfs-proxy-helper, one process per connection (-f FD,
 *         it accepts only one);
 *   min   contrib/bench/minserver, a single-threaded epoll server doing the
 *         bare syscalls: the machine's limit.
 *
 * Each connection keeps `pipeline` requests in flight (1 = like QEMU, which
 * holds a mutex per request).  Client threads (few; epoll, level-triggered)
 * own disjoint sets of connections.  Every reply is checked: the right kind
 * and size, the expected result, an fd that fstat()s as the right type.
 * Anything else is an error, and any error makes the exit status 1.
 *
 * An "op" is one request/reply.  The create mix issues create + remove of a
 * fresh name (two ops per file).  Server CPU per op is the utime+stime delta
 * of all server processes over the measurement window divided by the ops
 * completed in it; peak RSS is the sum of VmHWM over them.
 *
 * Per-type mixes (issue 12): one mix named after each of the 20 request
 * types, each a short script that leaves the tree as it found it (mkdir then
 * remove, rename a->b then b->a, setxattr then removexattr, ...), so that it
 * can run for seconds.  Besides the overall ops/s, every run counts each
 * request type's replies and the time spent waiting for them; with one
 * request in flight, count / summed latency is that type's own rate (the
 * "type ops/s"), free of the other requests of its script and of the
 * client's time between a reply and the next request.
 *
 * --pin same|split pins the client threads and every server process (all
 * threads: the affinity is set before they are forked) to one CPU, or the
 * client to one CPU and the servers to another.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "pclient.h"

#define MAX_PIPELINE 16
#define MAX_CLIENTS_LIST 16
#define RBUF_SIZE 1024
#define ROOT_FILES 256
#define SUB_DIRS 16
#define SUB_FILES 64
#define SUBSUB_FILES 16
#define MAX_SERVERS 4
#define MAX_MIXES 24
#define MAX_REPEAT 15
#define MAX_PINS 3
#define NTYPES 22 /* request types 0..21, indexed by type */
#define LINKS 16  /* l0..l15 -> f0..f15, dN/l -> f1: readlink fixtures */

/* The tree's files all carry this attribute (getxattr, listxattr mixes). */
#define XATTR_NAME "user.vpbench"
#define XATTR_VALUE "vp-bench-xattr-value"

/* ---- options ------------------------------------------------------------ */

/* bare: virtfs-proxyd with its request counting off (VIRTFS_PROXYD_STATS=off),
 * only to measure what counting costs against ours. */
enum server_kind { SRV_OURS, SRV_REF, SRV_MIN, SRV_BARE };
static const char *const server_names[] = {"ours", "ref", "min", "bare"};

/* The first four are the mixes of issue 5; the rest are named after the
 * request type they measure (lstat, open and create measure theirs too). */
enum mix {
    MIX_LSTAT, MIX_OPEN, MIX_CREATE, MIX_MIXED,
    MIX_MKDIR, MIX_MKNOD, MIX_SYMLINK, MIX_LINK, MIX_RENAME, MIX_REMOVE, MIX_CHMOD,
    MIX_CHOWN, MIX_TRUNCATE, MIX_UTIME, MIX_READLINK, MIX_STATFS, MIX_GETXATTR,
    MIX_LISTXATTR, MIX_SETXATTR, MIX_REMOVEXATTR, MIX_GETVERSION,
    NMIXES
};
static const char *const mix_names[] = {
    "lstat", "open", "create", "mixed",
    "mkdir", "mknod", "symlink", "link", "rename", "remove", "chmod",
    "chown", "truncate", "utime", "readlink", "statfs", "getxattr",
    "listxattr", "setxattr", "removexattr", "getversion",
};
/* The request type each mix is named after; 0 for mixed. */
static const uint8_t mix_type[] = {
    PC_T_LSTAT, PC_T_OPEN, PC_T_CREATE, 0,
    PC_T_MKDIR, PC_T_MKNOD, PC_T_SYMLINK, PC_T_LINK, PC_T_RENAME, PC_T_REMOVE, PC_T_CHMOD,
    PC_T_CHOWN, PC_T_TRUNCATE, PC_T_UTIME, PC_T_READLINK, PC_T_STATFS, PC_T_LGETXATTR,
    PC_T_LLISTXATTR, PC_T_LSETXATTR, PC_T_LREMOVEXATTR, PC_T_GETVERSION,
};
/* --mix types: the 20 types in the order of issue 12; all: those + mixed. */
static const int type_mix_order[] = {
    MIX_LSTAT, MIX_OPEN, MIX_CREATE, MIX_MKDIR, MIX_MKNOD, MIX_SYMLINK, MIX_LINK,
    MIX_RENAME, MIX_REMOVE, MIX_CHMOD, MIX_CHOWN, MIX_TRUNCATE, MIX_UTIME, MIX_READLINK,
    MIX_STATFS, MIX_GETXATTR, MIX_LISTXATTR, MIX_SETXATTR, MIX_REMOVEXATTR, MIX_GETVERSION,
};

/* none: as the scheduler likes; same: client and servers on one CPU;
 * split: client on one CPU, servers on another. */
enum pin { PIN_NONE, PIN_SAME, PIN_SPLIT };
static const char *const pin_names[] = {"none", "same", "split"};

static struct {
    int servers[MAX_SERVERS], nservers;
    int mixes[MAX_MIXES], nmixes;
    int clients[MAX_CLIENTS_LIST], nclients;
    int pins[MAX_PINS], npins;
    double duration, warmup;
    long count;
    int pipeline, threads, repeat, depth;
    int32_t uid, gid;
    int daemon_threads;
    const char *daemon_args[8]; /* --daemon-arg: extra options of virtfs-proxyd */
    int ndaemon_args;
    long idle;
    const char *daemon, *reference, *minserver;
    const char *workdir, *csv, *summary, *markdown;
    bool verbose;
} opt = {
    .duration = 3.0,
    .warmup = 0.5,
    .pipeline = 1,
    .threads = 1,
    .repeat = 1,
    .depth = 2,
};

static char export_dir[512], sock_path[512], log_path[512];
static FILE *csv_out;
static long total_errors;

/* ---- time and statistics ------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Log-linear latency histogram: 32 sub-buckets per power of two (< 3 %). */
#define HSUB 32
#define HBUCKETS (HSUB * 2 + 40 * HSUB)

struct hist {
    uint64_t b[HBUCKETS];
    uint64_t n;
};

static int hist_index(uint64_t v)
{
    int msb, shift;

    if (v < 2 * HSUB) {
        return (int)v;
    }
    msb = 63 - __builtin_clzll(v);
    shift = msb - 5;
    if (shift >= 40) {
        return HBUCKETS - 1;
    }
    return 2 * HSUB + (shift - 1) * HSUB + (int)((v >> shift) - HSUB);
}

static double hist_value(int i)
{
    int shift;

    if (i < 2 * HSUB) {
        return i;
    }
    shift = (i - 2 * HSUB) / HSUB + 1;
    return (double)(((uint64_t)(HSUB + (i - 2 * HSUB) % HSUB) << shift) +
                    ((uint64_t)1 << (shift - 1)));
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->n++;
}

static double hist_pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)ceil(p * (double)h->n), acc = 0;

    if (h->n == 0) {
        return 0;
    }
    if (want == 0) {
        want = 1;
    }
    for (int i = 0; i < HBUCKETS; i++) {
        acc += h->b[i];
        if (acc >= want) {
            return hist_value(i);
        }
    }
    return hist_value(HBUCKETS - 1);
}

/* ---- the export tree ---------------------------------------------------- */

/* Every file of the tree carries XATTR_NAME (the getxattr and listxattr
 * mixes read it back and compare). */
static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0) {
        fprintf(stderr, "vp-bench: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (fsetxattr(fd, XATTR_NAME, XATTR_VALUE, strlen(XATTR_VALUE), 0) < 0) {
        fprintf(stderr, "vp-bench: setxattr %s on %s: %s (the export needs user xattrs)\n",
                XATTR_NAME, path, strerror(errno));
        exit(2);
    }
    close(fd);
}

static void make_link(const char *target, const char *path)
{
    if (symlink(target, path) < 0 && errno != EEXIST) {
        fprintf(stderr, "vp-bench: symlink %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "vp-bench: mkdir %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* f0..f255, l0..l15 -> fN, d0..d15/{f0..f63, l -> f1, s/f0..f15},
 * w/ (creations) */
static void make_tree(void)
{
    char p[700], target[16];

    make_dir(export_dir);
    for (int i = 0; i < ROOT_FILES; i++) {
        snprintf(p, sizeof(p), "%s/f%d", export_dir, i);
        touch(p);
    }
    for (int i = 0; i < LINKS; i++) {
        snprintf(p, sizeof(p), "%s/l%d", export_dir, i);
        snprintf(target, sizeof(target), "f%d", i);
        make_link(target, p);
    }
    for (int d = 0; d < SUB_DIRS; d++) {
        snprintf(p, sizeof(p), "%s/d%d", export_dir, d);
        make_dir(p);
        for (int i = 0; i < SUB_FILES; i++) {
            snprintf(p, sizeof(p), "%s/d%d/f%d", export_dir, d, i);
            touch(p);
        }
        snprintf(p, sizeof(p), "%s/d%d/l", export_dir, d);
        make_link("f1", p);
        snprintf(p, sizeof(p), "%s/d%d/s", export_dir, d);
        make_dir(p);
        for (int i = 0; i < SUBSUB_FILES; i++) {
            snprintf(p, sizeof(p), "%s/d%d/s/f%d", export_dir, d, i);
            touch(p);
        }
    }
    snprintf(p, sizeof(p), "%s/w", export_dir);
    make_dir(p);
}

/* ---- requests ----------------------------------------------------------- */

/* What a reply must be.  CHK_NONE only in a step: issue() picks the path
 * and the check itself (the issue-5 mixes). */
enum check {
    CHK_NONE, CHK_STAT_REG, CHK_STAT_DIR, CHK_STATFS, CHK_VERSION, CHK_FD_REG, CHK_FD_DIR,
    CHK_STATUS_OK, CHK_XATTR_PROBE,
    CHK_READLINK,   /* data: `s` equal to expect */
    CHK_XATTR_LEN,  /* probe: exactly strlen(XATTR_VALUE) */
    CHK_XATTR_VAL,  /* data: `s` equal to XATTR_VALUE */
    CHK_LIST_LEN,   /* probe: at least the size of XATTR_NAME's entry */
    CHK_LIST_VAL,   /* data: `s` list holding XATTR_NAME as one entry */
};

struct slot {
    int64_t t_send;
    uint8_t kind;  /* pc_kind */
    uint8_t check; /* enum check */
    uint8_t type;
    char expect[16]; /* CHK_READLINK: the target */
};

/* A step of an action script (creations span several requests).  Steps of
 * the per-type mixes are complete (check != CHK_NONE): name is the path,
 * name2 the second path, the target, the xattr name or the expected reply,
 * arg the mode, size or buffer size. */
struct step {
    uint8_t type;
    uint8_t check;
    int32_t arg;
    char name[48];
    char name2[48];
};

struct bconn {
    int fd;
    int id;
    uint64_t rng;
    struct slot slots[MAX_PIPELINE];
    int head, inflight, fd_inflight;
    uint8_t rbuf[RBUF_SIZE];
    size_t rlen;
    struct step script[4];
    int script_len, script_pos;
    uint32_t seq, actions;
    int32_t accepted_errno; /* set by check_status for the reply just taken */
    bool dead;
};

struct bthread {
    pthread_t tid;
    struct bconn **conns;
    int nconns;
    int mix;
    int64_t ws, we;   /* measurement window (completion times) */
    int64_t t_stop;   /* no new action after this */
    atomic_long *budget; /* count mode: actions left */
    int active;       /* connections waiting for a reply */
    struct hist hist;
    uint64_t ops, errors, ops_total;
    /* Per request type, in the window: replies, summed latency, and
     * replies that were an accepted errno (getversion where the
     * filesystem has no generation numbers). */
    uint64_t tcount[NTYPES], tlat_ns[NTYPES], terrno[NTYPES];
    int32_t terrno_val[NTYPES];
    char first_error[200];
};

static uint64_t rnd(struct bconn *c)
{
    /* xorshift64* */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

/* A random existing file at depth 1..opt.depth. */
static void pick_file(struct bconn *c, char *p, size_t cap)
{
    uint64_t r = rnd(c);
    int depth = 1 + (int)(r % (uint64_t)opt.depth);

    r >>= 8;
    switch (depth) {
    case 1:
        snprintf(p, cap, "//f%d", (int)(r % ROOT_FILES));
        break;
    case 2:
        snprintf(p, cap, "//d%d/f%d", (int)(r % SUB_DIRS), (int)((r >> 8) % SUB_FILES));
        break;
    default:
        snprintf(p, cap, "//d%d/s/f%d", (int)(r % SUB_DIRS), (int)((r >> 8) % SUBSUB_FILES));
        break;
    }
}

static void pick_dir(struct bconn *c, char *p, size_t cap)
{
    uint64_t r = rnd(c);

    if (r % 4 == 0) {
        snprintf(p, cap, "/");
    } else {
        snprintf(p, cap, "//d%d", (int)((r >> 8) % SUB_DIRS));
    }
}

static void thread_error(struct bthread *t, struct bconn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void thread_error(struct bthread *t, struct bconn *c, const char *fmt, ...)
{
    va_list ap;

    t->errors++;
    if (t->first_error[0] == '\0') {
        int n = snprintf(t->first_error, sizeof(t->first_error), "conn %d: ", c->id);

        va_start(ap, fmt);
        vsnprintf(t->first_error + n, sizeof(t->first_error) - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

static int send_frame(struct bthread *t, struct bconn *c, const uint8_t *buf, int len)
{
    ssize_t n;

    if (len < 0) {
        thread_error(t, c, "cannot encode a request");
        return -1;
    }
    do {
        n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != len) {
        /* Frames are small and at most 16 are in flight: never a full socket. */
        thread_error(t, c, "send: %s", n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

/* A fresh name in //w/: kind tag, connection, sequence number. */
static void fresh_name(struct bconn *c, char tag, char *out, size_t cap)
{
    snprintf(out, cap, "//w/%c%d.%u", tag, c->id, c->seq++);
}

static void add_step(struct bconn *c, uint8_t type, uint8_t check, int32_t arg,
                     const char *name, const char *name2)
{
    struct step *s = &c->script[c->script_len++];

    s->type = type;
    s->check = check;
    s->arg = arg;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->name2, sizeof(s->name2), "%s", name2 != NULL ? name2 : "");
}

/* The per-type mixes: each script leaves the tree as it found it, so a run
 * can last as long as wanted, and every step's reply is checked.  Paths and
 * arguments are those QEMU sends for the matching 9p request. */
static void plan_type_mix(struct bthread *t, struct bconn *c)
{
    char a[48], b[48], f[48];
    uint64_t r;

    pick_file(c, f, sizeof(f));
    switch (t->mix) {
    case MIX_MKDIR:
        fresh_name(c, 'd', a, sizeof(a));
        add_step(c, PC_T_MKDIR, CHK_STATUS_OK, 0755, a, NULL);
        add_step(c, PC_T_REMOVE, CHK_STATUS_OK, 0, a, NULL);
        break;
    case MIX_MKNOD: /* a FIFO: never opened, so nothing can block on it */
        fresh_name(c, 'p', a, sizeof(a));
        add_step(c, PC_T_MKNOD, CHK_STATUS_OK, S_IFIFO | 0644, a, NULL);
        add_step(c, PC_T_REMOVE, CHK_STATUS_OK, 0, a, NULL);
        break;
    case MIX_SYMLINK:
        fresh_name(c, 's', a, sizeof(a));
        add_step(c, PC_T_SYMLINK, CHK_STATUS_OK, 0, a, "f0");
        add_step(c, PC_T_REMOVE, CHK_STATUS_OK, 0, a, NULL);
        break;
    case MIX_LINK:
        fresh_name(c, 'h', a, sizeof(a));
        add_step(c, PC_T_LINK, CHK_STATUS_OK, 0, a, f);
        add_step(c, PC_T_REMOVE, CHK_STATUS_OK, 0, a, NULL);
        break;
    case MIX_RENAME: /* w/rID.a exists from the start of the run (run_one) */
        snprintf(a, sizeof(a), "//w/r%d.a", c->id);
        snprintf(b, sizeof(b), "//w/r%d.b", c->id);
        add_step(c, PC_T_RENAME, CHK_STATUS_OK, 0, a, b);
        add_step(c, PC_T_RENAME, CHK_STATUS_OK, 0, b, a);
        break;
    case MIX_REMOVE:
        fresh_name(c, 'c', a, sizeof(a));
        add_step(c, PC_T_CREATE, CHK_FD_REG, 0644, a, NULL);
        add_step(c, PC_T_REMOVE, CHK_STATUS_OK, 0, a, NULL);
        break;
    case MIX_CHMOD:
        add_step(c, PC_T_CHMOD, CHK_STATUS_OK, 0600, f, NULL);
        add_step(c, PC_T_CHMOD, CHK_STATUS_OK, 0644, f, NULL);
        break;
    case MIX_CHOWN:
        add_step(c, PC_T_CHOWN, CHK_STATUS_OK, 1000, f, NULL);
        add_step(c, PC_T_CHOWN, CHK_STATUS_OK, 0, f, NULL);
        break;
    case MIX_TRUNCATE:
        add_step(c, PC_T_TRUNCATE, CHK_STATUS_OK, 4096, f, NULL);
        add_step(c, PC_T_TRUNCATE, CHK_STATUS_OK, 0, f, NULL);
        break;
    case MIX_UTIME:
        add_step(c, PC_T_UTIME, CHK_STATUS_OK, 0, f, NULL);
        break;
    case MIX_READLINK:
        r = rnd(c);
        if (opt.depth == 1 || r % 2 == 0) {
            snprintf(a, sizeof(a), "//l%d", (int)((r >> 8) % LINKS));
            snprintf(b, sizeof(b), "f%d", (int)((r >> 8) % LINKS));
        } else {
            snprintf(a, sizeof(a), "//d%d/l", (int)((r >> 8) % SUB_DIRS));
            snprintf(b, sizeof(b), "f1");
        }
        add_step(c, PC_T_READLINK, CHK_READLINK, 4096, a, b);
        break;
    case MIX_STATFS:
        add_step(c, PC_T_STATFS, CHK_STATFS, 0, f, NULL);
        break;
    case MIX_GETXATTR: /* QEMU's Txattrwalk: probe the size, then fetch */
        add_step(c, PC_T_LGETXATTR, CHK_XATTR_LEN, 0, f, XATTR_NAME);
        add_step(c, PC_T_LGETXATTR, CHK_XATTR_VAL, (int32_t)strlen(XATTR_VALUE), f,
                 XATTR_NAME);
        break;
    case MIX_LISTXATTR:
        add_step(c, PC_T_LLISTXATTR, CHK_LIST_LEN, 0, f, NULL);
        add_step(c, PC_T_LLISTXATTR, CHK_LIST_VAL, 256, f, NULL);
        break;
    case MIX_SETXATTR:
    case MIX_REMOVEXATTR:
        snprintf(b, sizeof(b), "user.vpb.%d", c->id);
        add_step(c, PC_T_LSETXATTR, CHK_STATUS_OK, 0, f, b);
        add_step(c, PC_T_LREMOVEXATTR, CHK_STATUS_OK, 0, f, b);
        break;
    case MIX_GETVERSION:
        add_step(c, PC_T_GETVERSION, CHK_VERSION, 0, f, NULL);
        break;
    default:
        break;
    }
}

/* Plans the next action of connection c into its script. */
static void plan_action(struct bthread *t, struct bconn *c)
{
    uint64_t r;

    c->script_len = 0;
    c->script_pos = 0;
    if (t->mix >= MIX_MKDIR) {
        plan_type_mix(t, c);
        return;
    }
    for (int i = 0; i < 4; i++) {
        c->script[i].check = CHK_NONE;
    }
    switch (t->mix) {
    case MIX_LSTAT:
        c->script[c->script_len++].type = PC_T_LSTAT;
        return;
    case MIX_OPEN:
        c->script[c->script_len++].type = PC_T_OPEN;
        return;
    case MIX_CREATE:
        snprintf(c->script[0].name, sizeof(c->script[0].name), "//w/c%d.%u", c->id, c->seq);
        memcpy(c->script[1].name, c->script[0].name, sizeof(c->script[0].name));
        c->seq++;
        c->script[0].type = PC_T_CREATE;
        c->script[1].type = PC_T_REMOVE;
        c->script_len = 2;
        return;
    default:
        break;
    }
    /* Weighted like guest traffic (PROTOCOL.md §6): walks and getattr
     * dominate (lstat, getversion), then opens and their statfs, then
     * creations (create, lstat, statfs ... remove) and setattr pieces. */
    r = rnd(c) % 100;
    if (r < 40) {
        c->script[c->script_len++].type = PC_T_LSTAT;
    } else if (r < 65) {
        c->script[c->script_len++].type = PC_T_GETVERSION;
    } else if (r < 73) {
        c->script[c->script_len++].type = PC_T_OPEN;
    } else if (r < 80) {
        c->script[c->script_len++].type = PC_T_STATFS;
    } else if (r < 84) {
        snprintf(c->script[0].name, sizeof(c->script[0].name), "//w/m%d.%u", c->id, c->seq++);
        for (int i = 1; i < 4; i++) {
            memcpy(c->script[i].name, c->script[0].name, sizeof(c->script[0].name));
        }
        c->script[0].type = PC_T_CREATE;
        c->script[1].type = PC_T_LSTAT;
        c->script[2].type = PC_T_STATFS;
        c->script[3].type = PC_T_REMOVE;
        c->script_len = 4;
    } else if (r < 87) {
        c->script[c->script_len++].type = PC_T_LGETXATTR;
    } else if (r < 91) {
        c->script[c->script_len++].type = PC_T_CHMOD;
    } else if (r < 95) {
        c->script[c->script_len++].type = PC_T_UTIME;
    } else if (r < 98) {
        c->script[c->script_len++].type = PC_T_CHOWN;
    } else {
        c->script[c->script_len++].type = PC_T_TRUNCATE;
    }
}

/* Encodes a complete step (of a per-type mix) into buf. */
static int encode_step(const struct step *s, uint8_t *buf, size_t cap)
{
    static const char value[] = "v";

    switch (s->type) {
    case PC_T_MKDIR:
        return pc_encode(buf, cap, PC_T_MKDIR, "ddsd", opt.uid, opt.gid, s->name, s->arg);
    case PC_T_MKNOD:
        return pc_encode(buf, cap, PC_T_MKNOD, "ddsdq", opt.uid, opt.gid, s->name, s->arg,
                         (int64_t)0);
    case PC_T_SYMLINK:
        return pc_encode(buf, cap, PC_T_SYMLINK, "ddss", opt.uid, opt.gid, s->name2, s->name);
    case PC_T_LINK:
        return pc_encode(buf, cap, PC_T_LINK, "Ss", s->name2, s->name);
    case PC_T_RENAME:
        return pc_encode(buf, cap, PC_T_RENAME, "ss", s->name, s->name2);
    case PC_T_CREATE:
        return pc_encode(buf, cap, PC_T_CREATE, "sdddd", s->name,
                         (int32_t)(O_CREAT | O_EXCL | O_WRONLY), s->arg, opt.uid, opt.gid);
    case PC_T_REMOVE:
        return pc_encode(buf, cap, PC_T_REMOVE, "s", s->name);
    case PC_T_CHMOD:
        return pc_encode(buf, cap, PC_T_CHMOD, "Sd", s->name, s->arg);
    case PC_T_CHOWN:
        return pc_encode(buf, cap, PC_T_CHOWN, "Sdd", s->name, s->arg, s->arg);
    case PC_T_TRUNCATE:
        return pc_encode(buf, cap, PC_T_TRUNCATE, "Sq", s->name, (int64_t)s->arg);
    case PC_T_UTIME:
        return pc_encode(buf, cap, PC_T_UTIME, "Sqqqq", s->name, (int64_t)1700000000,
                         (int64_t)0, (int64_t)1700000000, (int64_t)0);
    case PC_T_READLINK:
        return pc_encode(buf, cap, PC_T_READLINK, "Sd", s->name, s->arg);
    case PC_T_STATFS:
        return pc_encode(buf, cap, PC_T_STATFS, "S", s->name);
    case PC_T_LGETXATTR:
        return pc_encode(buf, cap, PC_T_LGETXATTR, "dSs", s->arg, s->name, s->name2);
    case PC_T_LLISTXATTR:
        return pc_encode(buf, cap, PC_T_LLISTXATTR, "dS", s->arg, s->name);
    case PC_T_LSETXATTR: /* as QEMU: size = the value's length, flags 0 */
        return pc_encode(buf, cap, PC_T_LSETXATTR, "Ssbdd", s->name, s->name2, value,
                         sizeof(value) - 1, (int32_t)(sizeof(value) - 1), (int32_t)0);
    case PC_T_LREMOVEXATTR:
        return pc_encode(buf, cap, PC_T_LREMOVEXATTR, "Ss", s->name, s->name2);
    case PC_T_GETVERSION:
        return pc_encode(buf, cap, PC_T_GETVERSION, "S", s->name);
    default:
        return -1;
    }
}

/* Encodes a step of the issue-5 mixes: the path (and so the check) is
 * picked here, per request. */
static int encode_legacy(struct bthread *t, struct bconn *c, const struct step *s,
                         struct slot *sl, uint8_t *buf, size_t cap)
{
    char path[64];
    int len = -1;

    switch (s->type) {
    case PC_T_LSTAT:
        if (c->script_len > 1) {
            len = pc_encode(buf, cap, PC_T_LSTAT, "S", s->name);
            sl->check = CHK_STAT_REG;
        } else if (t->mix == MIX_MIXED && rnd(c) % 8 == 0) {
            pick_dir(c, path, sizeof(path));
            len = pc_encode(buf, cap, PC_T_LSTAT, "S", path);
            sl->check = CHK_STAT_DIR;
        } else {
            pick_file(c, path, sizeof(path));
            len = pc_encode(buf, cap, PC_T_LSTAT, "S", path);
            sl->check = CHK_STAT_REG;
        }
        break;
    case PC_T_OPEN:
        if (t->mix == MIX_MIXED && rnd(c) % 4 == 0) {
            pick_dir(c, path, sizeof(path));
            len = pc_encode(buf, cap, PC_T_OPEN, "Sd", path, (int32_t)O_DIRECTORY);
            sl->check = CHK_FD_DIR;
        } else {
            pick_file(c, path, sizeof(path));
            len = pc_encode(buf, cap, PC_T_OPEN, "Sd", path, (int32_t)O_RDONLY);
            sl->check = CHK_FD_REG;
        }
        break;
    case PC_T_CREATE:
        len = pc_encode(buf, cap, PC_T_CREATE, "sdddd", s->name,
                        (int32_t)(O_CREAT | O_EXCL | O_WRONLY), (int32_t)0644, opt.uid, opt.gid);
        sl->check = CHK_FD_REG;
        break;
    case PC_T_REMOVE:
        len = pc_encode(buf, cap, PC_T_REMOVE, "s", s->name);
        sl->check = CHK_STATUS_OK;
        break;
    case PC_T_STATFS:
        if (c->script_len > 1) {
            len = pc_encode(buf, cap, PC_T_STATFS, "S", s->name);
        } else {
            pick_file(c, path, sizeof(path));
            len = pc_encode(buf, cap, PC_T_STATFS, "S", path);
        }
        sl->check = CHK_STATFS;
        break;
    case PC_T_GETVERSION:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_GETVERSION, "S", path);
        sl->check = CHK_VERSION;
        break;
    case PC_T_LGETXATTR:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_LGETXATTR, "dSs", (int32_t)0, path,
                        "security.capability");
        sl->kind = PC_KIND_STATUS;
        sl->check = CHK_XATTR_PROBE;
        break;
    case PC_T_CHMOD:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_CHMOD, "Sd", path, (int32_t)0644);
        sl->check = CHK_STATUS_OK;
        break;
    case PC_T_UTIME:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_UTIME, "Sqqqq", path, (int64_t)1700000000,
                        (int64_t)0, (int64_t)1700000000, (int64_t)0);
        sl->check = CHK_STATUS_OK;
        break;
    case PC_T_CHOWN:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_CHOWN, "Sdd", path, (int32_t)0, (int32_t)0);
        sl->check = CHK_STATUS_OK;
        break;
    case PC_T_TRUNCATE:
        pick_file(c, path, sizeof(path));
        len = pc_encode(buf, cap, PC_T_TRUNCATE, "Sq", path, (int64_t)0);
        sl->check = CHK_STATUS_OK;
        break;
    default:
        break;
    }
    return len;
}

/* Issues the next request of c; false when the connection has nothing more
 * to send (run over, script finished). */
static bool issue(struct bthread *t, struct bconn *c, int64_t now)
{
    uint8_t buf[256];
    const struct step *s;
    struct slot *sl;
    int len;

    if (c->dead) {
        return false;
    }
    if (c->script_pos == c->script_len) {
        /* Every connection completes one action at least, so that even a
         * run starved of CPU checks the replies of its mix. */
        if (now >= t->t_stop && c->actions > 0) {
            return false;
        }
        if (t->budget != NULL && atomic_fetch_sub(t->budget, 1) <= 0) {
            return false;
        }
        plan_action(t, c);
        c->actions++;
    }
    s = &c->script[c->script_pos];
    sl = &c->slots[(c->head + c->inflight) % MAX_PIPELINE];
    sl->type = s->type;
    sl->kind = (uint8_t)pc_reply_kind(s->type, 0);
    if (s->check != CHK_NONE) {
        sl->kind = (uint8_t)pc_reply_kind(s->type, s->arg);
        sl->check = s->check;
        snprintf(sl->expect, sizeof(sl->expect), "%s",
                 s->check == CHK_READLINK ? s->name2 : "");
        len = encode_step(s, buf, sizeof(buf));
    } else {
        len = encode_legacy(t, c, s, sl, buf, sizeof(buf));
    }
    sl->t_send = now;
    if (send_frame(t, c, buf, len) < 0) {
        c->dead = true;
        return false;
    }
    c->script_pos++;
    c->inflight++;
    if (sl->kind == PC_KIND_FD) {
        c->fd_inflight++;
    }
    return true;
}

static bool fd_is(int fd, bool dir)
{
    struct stat st;

    return fstat(fd, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

/* Judges a status (or size-probe) reply.  The one errno accepted as an
 * answer is getversion's where the filesystem has no generation numbers
 * (ENOTTY, EOPNOTSUPP): it is counted per type, so that the table can show
 * both servers answering alike. */
static void check_status(struct bthread *t, struct bconn *c, const struct slot *sl,
                         int32_t status)
{
    const char *name = pc_type_name(sl->type);

    if (status < 0) {
        if (sl->check == CHK_XATTR_PROBE && status == -ENODATA) {
            return;
        }
        if (sl->check == CHK_VERSION && (status == -ENOTTY || status == -EOPNOTSUPP)) {
            c->accepted_errno = status;
            return;
        }
        thread_error(t, c, "%s failed: %s", name, pc_strerror(status));
        return;
    }
    switch (sl->check) {
    case CHK_STATUS_OK:
        if (status != 0) {
            thread_error(t, c, "%s answered %d", name, status);
        }
        return;
    case CHK_XATTR_LEN:
        if (status != (int32_t)strlen(XATTR_VALUE)) {
            thread_error(t, c, "%s probe answered %d, the value has %zu bytes", name, status,
                         strlen(XATTR_VALUE));
        }
        return;
    case CHK_LIST_LEN:
        if (status < (int32_t)sizeof(XATTR_NAME)) {
            thread_error(t, c, "%s probe answered %d, the list holds %s", name, status,
                         XATTR_NAME);
        }
        return;
    case CHK_XATTR_PROBE:
        return;
    default:
        thread_error(t, c, "%s answered with a bare status %d", name, status);
        return;
    }
}

/* Checks the `s` payload of a readlink, getxattr or listxattr reply. */
static int check_string(struct bthread *t, struct bconn *c, const struct slot *sl,
                        const uint8_t *p, uint32_t size)
{
    const char *name = pc_type_name(sl->type);
    const uint8_t *str;
    size_t len;

    if (pc_decode_string(p, size, &str, &len) < 0) {
        thread_error(t, c, "%s payload of %u bytes is not one string", name, size);
        return -1;
    }
    switch (sl->check) {
    case CHK_READLINK:
        if (len != strlen(sl->expect) || memcmp(str, sl->expect, len) != 0) {
            thread_error(t, c, "%s: target '%.*s', expected '%s'", name, (int)len, str,
                         sl->expect);
        }
        break;
    case CHK_XATTR_VAL:
        if (len != strlen(XATTR_VALUE) || memcmp(str, XATTR_VALUE, len) != 0) {
            thread_error(t, c, "%s: value of %zu bytes, not the one set", name, len);
        }
        break;
    default: { /* CHK_LIST_VAL: NUL-terminated names, one of them ours */
        bool found = false;

        for (size_t i = 0; i < len && !found;) {
            const uint8_t *end = memchr(str + i, '\0', len - i);
            size_t n = end != NULL ? (size_t)(end - (str + i)) : len - i;

            found = end != NULL && n == strlen(XATTR_NAME) && memcmp(str + i, XATTR_NAME, n) == 0;
            i += n + 1;
        }
        if (!found) {
            thread_error(t, c, "%s: %zu bytes without %s", name, len, XATTR_NAME);
        }
        break;
    }
    }
    return 0;
}

/* Checks a complete reply for the head slot; returns the bytes it used, 0 if
 * incomplete, -1 on a protocol violation. */
static int take_reply(struct bthread *t, struct bconn *c, int rfd)
{
    const struct slot *sl = &c->slots[c->head];
    const uint8_t *p = c->rbuf;
    uint32_t type, size;
    int32_t status;

    if (sl->kind == PC_KIND_FD) {
        if (c->rlen < 4) {
            return 0;
        }
        memcpy(&status, p, 4);
        if (status == PC_FD_VALID) {
            if (rfd < 0) {
                thread_error(t, c, "fd reply without an fd");
                return -1;
            }
            if (!fd_is(rfd, sl->check == CHK_FD_DIR)) {
                thread_error(t, c, "received fd is not a %s",
                             sl->check == CHK_FD_DIR ? "directory" : "regular file");
            }
            return 4;
        }
        if (rfd >= 0 || status >= 0) {
            thread_error(t, c, "bad fd reply %d", status);
            return -1;
        }
        thread_error(t, c, "%s failed: %s", pc_type_name(sl->type), pc_strerror(status));
        return 4;
    }
    if (rfd >= 0) {
        thread_error(t, c, "unexpected fd with a %s reply", pc_type_name(sl->type));
        return -1;
    }
    if (c->rlen < PC_HDR_SIZE) {
        return 0;
    }
    memcpy(&type, p, 4);
    memcpy(&size, p + 4, 4);
    if (size > RBUF_SIZE - PC_HDR_SIZE || type > 1) {
        thread_error(t, c, "bad reply header %u/%u", type, size);
        return -1;
    }
    if (c->rlen < PC_HDR_SIZE + size) {
        return 0;
    }
    if (type == 1 || sl->kind == PC_KIND_STATUS) {
        if (size != 4) {
            thread_error(t, c, "status reply of %u bytes", size);
            return -1;
        }
        memcpy(&status, p + 8, 4);
        if ((type == 1) != (status < 0)) {
            thread_error(t, c, "reply type %u with status %d", type, status);
            return -1;
        }
        check_status(t, c, sl, status);
        return PC_HDR_SIZE + 4;
    }
    switch (sl->check) {
    case CHK_STAT_REG:
    case CHK_STAT_DIR: {
        pc_proxy_stat st;

        if (pc_decode_stat(p + 8, size, &st) < 0) {
            thread_error(t, c, "lstat payload of %u bytes", size);
            return -1;
        }
        if ((sl->check == CHK_STAT_DIR) != S_ISDIR(st.mode) ||
            (sl->check == CHK_STAT_REG && !S_ISREG(st.mode))) {
            thread_error(t, c, "lstat: wrong file type 0%o", st.mode);
        }
        break;
    }
    case CHK_STATFS: {
        pc_proxy_statfs sf;

        if (pc_decode_statfs(p + 8, size, &sf) < 0) {
            thread_error(t, c, "statfs payload of %u bytes", size);
            return -1;
        }
        /* any real filesystem has a block size and a name length */
        if (sf.bsize == 0 || sf.namelen == 0) {
            thread_error(t, c, "statfs: block size %llu, name length %llu",
                         (unsigned long long)sf.bsize, (unsigned long long)sf.namelen);
        }
        break;
    }
    case CHK_VERSION:
        if (size != PC_VERSION_SIZE) {
            thread_error(t, c, "getversion payload of %u bytes", size);
            return -1;
        }
        break;
    case CHK_READLINK:
    case CHK_XATTR_VAL:
    case CHK_LIST_VAL:
        return check_string(t, c, sl, p + 8, size) < 0 ? -1 : PC_HDR_SIZE + (int)size;
    default:
        break;
    }
    return PC_HDR_SIZE + (int)size;
}

/* How many bytes may be read without swallowing part of a later fd reply
 * (an fd rides on its own 4 bytes; a plain read of them would lose it). */
static size_t read_allowance(const struct bconn *c)
{
    const struct slot *sl = &c->slots[c->head];
    int later_fd = c->fd_inflight - (sl->kind == PC_KIND_FD ? 1 : 0);

    if (sl->kind == PC_KIND_FD) {
        return c->rlen < 4 ? 4 - c->rlen : 0;
    }
    if (later_fd == 0) {
        return RBUF_SIZE - c->rlen;
    }
    if (c->rlen < PC_HDR_SIZE) {
        return PC_HDR_SIZE - c->rlen;
    } else {
        uint32_t size;

        memcpy(&size, c->rbuf + 4, 4);
        if (size > RBUF_SIZE - PC_HDR_SIZE) {
            return 1; /* let take_reply reject it */
        }
        return PC_HDR_SIZE + size - c->rlen;
    }
}

static void conn_kill(struct bthread *t, struct bconn *c, int ep)
{
    if (c->inflight > 0) {
        t->active--;
    }
    c->dead = true;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Readable: take replies, issue the next requests. */
static void conn_readable(struct bthread *t, struct bconn *c, int ep)
{
    for (;;) {
        union {
            char b[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct iovec iov;
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        struct cmsghdr *cm;
        size_t want;
        ssize_t n;
        int rfd = -1, nfds = 0;
        int64_t now;

        if (c->inflight == 0) {
            return;
        }
        want = read_allowance(c);
        if (want == 0) {
            want = 1;
        }
        iov.iov_base = c->rbuf + c->rlen;
        iov.iov_len = want;
        msg.msg_control = control.b;
        msg.msg_controllen = sizeof(control.b);
        n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            thread_error(t, c, "%s with %d requests in flight",
                         n == 0 ? "EOF" : strerror(errno), c->inflight);
            conn_kill(t, c, ep);
            return;
        }
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

                for (int i = 0; i < k; i++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                    if (nfds++ == 0) {
                        rfd = fd;
                    } else {
                        close(fd);
                    }
                }
            }
        }
        if (nfds > 1 || (msg.msg_flags & MSG_CTRUNC)) {
            thread_error(t, c, "%d fds in one reply", nfds);
        }
        c->rlen += (size_t)n;
        now = now_ns();
        for (;;) {
            int used = take_reply(t, c, rfd);
            const struct slot *sl = &c->slots[c->head];

            if (rfd >= 0 && used != 0) {
                close(rfd);
                rfd = -1;
            }
            if (used < 0) {
                conn_kill(t, c, ep);
                return;
            }
            if (used == 0) {
                break;
            }
            memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
            c->rlen -= (size_t)used;
            if (now >= t->ws && now < t->we) {
                hist_add(&t->hist, (uint64_t)(now - sl->t_send));
                t->ops++;
                t->tcount[sl->type]++;
                t->tlat_ns[sl->type] += (uint64_t)(now - sl->t_send);
                if (c->accepted_errno != 0) {
                    t->terrno[sl->type]++;
                    t->terrno_val[sl->type] = c->accepted_errno;
                }
            }
            c->accepted_errno = 0;
            t->ops_total++;
            if (sl->kind == PC_KIND_FD) {
                c->fd_inflight--;
            }
            c->head = (c->head + 1) % MAX_PIPELINE;
            c->inflight--;
            issue(t, c, now);
            if (c->inflight == 0) {
                t->active--;
                break;
            }
        }
        if (rfd >= 0) {
            thread_error(t, c, "fd received before its reply was complete");
            close(rfd);
            conn_kill(t, c, ep);
            return;
        }
    }
}

static void *thread_main(void *arg)
{
    struct bthread *t = arg;
    struct epoll_event evs[256];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int64_t now = now_ns();

    for (int i = 0; i < t->nconns; i++) {
        struct bconn *c = t->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        for (int k = 0; k < opt.pipeline; k++) {
            if (!issue(t, c, now)) {
                break;
            }
        }
        t->active += c->inflight > 0;
    }
    while (t->active > 0) {
        int n;

        n = epoll_wait(ep, evs, 256, 1000);
        if (n == 0 && now_ns() > t->t_stop + 10 * (int64_t)1000000000) {
            thread_error(t, t->conns[0], "%d connections still wait for replies", t->active);
            break;
        }
        for (int i = 0; i < n; i++) {
            conn_readable(t, evs[i].data.ptr, ep);
        }
    }
    close(ep);
    return NULL;
}

/* ---- servers ------------------------------------------------------------ */

struct server {
    int kind;
    pid_t pids[1024];
    int npids;
    pc_conn *pcs[1024];
    int nconns;
};

static pid_t spawn_argv(char *const argv[])
{
    pid_t pid = fork();

    if (pid == 0) {
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

        if (log >= 0) {
            dup2(log, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static bool wait_for_path(const char *path, pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        struct stat st;

        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            return true;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            return false;
        }
        usleep(5000);
    }
    return false;
}

static int connect_many(struct server *s, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = pc_connect(sock_path, 5000, &s->pcs[s->nconns]);

        if (rc < 0) {
            fprintf(stderr, "vp-bench: connect %d to %s: %s\n", i, sock_path, pc_strerror(rc));
            return -1;
        }
        s->nconns++;
    }
    return 0;
}

/* virtfs-proxyd serves from a child of the process started (its
 * supervisor): count that one too. */
static void add_children(struct server *s)
{
    char p[64], buf[256];
    FILE *f;

    snprintf(p, sizeof(p), "/proc/%d/task/%d/children", (int)s->pids[0], (int)s->pids[0]);
    f = fopen(p, "r");
    if (f == NULL) {
        return;
    }
    if (fgets(buf, sizeof(buf), f) != NULL) {
        for (char *tok = strtok(buf, " \n"); tok != NULL && s->npids < 1024;
             tok = strtok(NULL, " \n")) {
            s->pids[s->npids++] = (pid_t)atoi(tok);
        }
    }
    fclose(f);
}

static int server_start(struct server *s, int kind, int nconns, long max_conns)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    unlink(sock_path);
    if (kind == SRV_REF) {
        pc_spawn_opts so = {.program = opt.reference, .export_dir = export_dir,
                            .log_path = log_path};

        for (int i = 0; i < nconns; i++) {
            int rc = pc_spawn(&so, &s->pcs[i]);

            if (rc < 0) {
                fprintf(stderr, "vp-bench: cannot start %s: %s\n", opt.reference,
                        pc_strerror(rc));
                return -1;
            }
            s->pids[s->npids++] = pc_conn_pid(s->pcs[i]);
            s->nconns++;
        }
        return 0;
    }
    if (kind == SRV_OURS || kind == SRV_BARE) {
        char maxc[32], thr[32];
        char *argv[16 + 8];
        int n = 0;

        snprintf(maxc, sizeof(maxc), "%ld", max_conns);
        argv[n++] = (char *)opt.daemon;
        argv[n++] = "-n";
        argv[n++] = "-p";
        argv[n++] = export_dir;
        argv[n++] = "-s";
        argv[n++] = sock_path;
        argv[n++] = "-u";
        argv[n++] = "0";
        argv[n++] = "-g";
        argv[n++] = "0";
        argv[n++] = "--log-level";
        argv[n++] = "warning";
        argv[n++] = "--max-connections";
        argv[n++] = maxc;
        if (opt.daemon_threads > 0) {
            snprintf(thr, sizeof(thr), "--threads=%d", opt.daemon_threads);
            argv[n++] = thr;
        }
        for (int i = 0; i < opt.ndaemon_args; i++) {
            argv[n++] = (char *)opt.daemon_args[i];
        }
        argv[n] = NULL;
        if (kind == SRV_BARE) {
            setenv("VIRTFS_PROXYD_STATS", "off", 1);
        }
        s->pids[s->npids++] = spawn_argv(argv);
        unsetenv("VIRTFS_PROXYD_STATS");
    } else {
        char *argv[] = {(char *)opt.minserver, "-p", export_dir, "-s", sock_path, NULL};

        s->pids[s->npids++] = spawn_argv(argv);
    }
    if (s->pids[0] < 0 || !wait_for_path(sock_path, s->pids[0])) {
        fprintf(stderr, "vp-bench: %s did not come up (see %s)\n", server_names[kind], log_path);
        return -1;
    }
    add_children(s);
    return connect_many(s, nconns);
}

static void server_stop(struct server *s)
{
    for (int i = 0; i < s->nconns; i++) {
        pc_shutdown(s->pcs[i]);
    }
    if (s->kind == SRV_REF) {
        for (int i = 0; i < s->nconns; i++) {
            pc_wait(s->pcs[i], 2000, NULL);
        }
    } else {
        kill(s->pids[0], SIGTERM);
        for (int i = 0; i < 400 && waitpid(s->pids[0], NULL, WNOHANG) == 0; i++) {
            usleep(5000);
        }
        kill(s->pids[0], SIGKILL);
        waitpid(s->pids[0], NULL, 0);
    }
    for (int i = 0; i < s->nconns; i++) {
        pc_free(s->pcs[i]);
    }
    s->nconns = 0;
}

/* utime+stime of all server processes, in clock ticks. */
static long long server_cpu_ticks(const struct server *s)
{
    long long sum = 0;

    for (int i = 0; i < s->npids; i++) {
        char p[64], buf[1024];
        unsigned long long ut, st;
        FILE *f;
        char *q;

        snprintf(p, sizeof(p), "/proc/%d/stat", (int)s->pids[i]);
        f = fopen(p, "r");
        if (f == NULL) {
            continue;
        }
        if (fgets(buf, sizeof(buf), f) != NULL && (q = strrchr(buf, ')')) != NULL &&
            sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) ==
                2) {
            sum += (long long)(ut + st);
        }
        fclose(f);
    }
    return sum;
}

/* Sum of a /proc/PID/status field (kB) over the server processes. */
static long server_status_kb(const struct server *s, const char *field)
{
    long sum = 0;
    size_t fl = strlen(field);

    for (int i = 0; i < s->npids; i++) {
        char p[64], line[256];
        FILE *f;

        snprintf(p, sizeof(p), "/proc/%d/status", (int)s->pids[i]);
        f = fopen(p, "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
                sum += strtol(line + fl + 1, NULL, 10);
                break;
            }
        }
        fclose(f);
    }
    return sum;
}

/* ---- one run ------------------------------------------------------------ */

struct result {
    double ops_s, p50, p90, p99, p999; /* latencies in µs */
    double cpu_us_op, client_cpu_us_op;
    long rss_kb;
    long errors;
    bool ok;
    /* Per request type: replies in the window, their count / summed
     * latency (ops/s of that type alone), accepted errno replies. */
    long type_count[NTYPES], type_errno[NTYPES];
    double type_ops_s[NTYPES];
    int32_t type_errno_val[NTYPES];
};

/* ---- pinning ------------------------------------------------------------ */

static cpu_set_t start_cpus;         /* what we were given */
static int cpu_client = -1, cpu_server = -1;

/* Finds the CPUs of --pin: the first two we may run on. */
static void pin_init(void)
{
    if (sched_getaffinity(0, sizeof(start_cpus), &start_cpus) < 0) {
        perror("vp-bench: sched_getaffinity");
        exit(2);
    }
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (!CPU_ISSET(i, &start_cpus)) {
            continue;
        }
        if (cpu_client < 0) {
            cpu_client = i;
        } else if (cpu_server < 0) {
            cpu_server = i;
            break;
        }
    }
}

/* Pins the calling thread (and so whatever it forks or creates from now
 * on) to cpu, or back to all of start_cpus for -1. */
static void pin_self(int cpu)
{
    cpu_set_t set = start_cpus;

    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
    }
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        fprintf(stderr, "vp-bench: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
        exit(2);
    }
}

/* ---- the creation directory --------------------------------------------- */

/* The rename mix renames w/rN.a to w/rN.b and back: one per connection. */
static void rename_fixtures(int nclients, bool make, struct result *res)
{
    char p[700];

    for (int i = 0; i < nclients; i++) {
        snprintf(p, sizeof(p), "%s/w/r%d.a", export_dir, i);
        if (make) {
            int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

            if (fd < 0) {
                fprintf(stderr, "vp-bench: %s: %s\n", p, strerror(errno));
                exit(2);
            }
            close(fd);
        } else if (unlink(p) < 0) {
            fprintf(stderr, "vp-bench: rename mix did not put %s back: %s\n", p,
                    strerror(errno));
            res->errors++;
        }
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Every script removes what it made: after a run w/ must be empty again
 * (anything left is an error of the server or of the script).  It is then
 * made anew: an ext4 directory never shrinks, so reusing one would make
 * every run slower than the one before. */
static void fresh_w(const char *who, struct result *res)
{
    char w[700];

    snprintf(w, sizeof(w), "%s/w", export_dir);
    if (rmdir(w) < 0 && errno != ENOENT) {
        fprintf(stderr, "vp-bench: %s: rmdir %s: %s (entries left behind)\n", who, w,
                strerror(errno));
        res->errors++;
        nftw(w, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    make_dir(w);
}

static double cpu_self_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

static struct result run_one(int kind, int mix, int nclients, int rep, int pin)
{
    struct result res = {0};
    struct server s;
    int nthreads = opt.threads < nclients ? opt.threads : nclients;
    struct bthread *th = calloc((size_t)nthreads, sizeof(*th));
    struct bconn *conns = calloc((size_t)nclients, sizeof(*conns));
    atomic_long budget = opt.count;
    long long cpu0, cpu1;
    double ccpu0, ccpu1;
    int64_t t0, ws, we;
    struct hist *h = calloc(1, sizeof(*h));
    uint64_t ops = 0;
    long hz = sysconf(_SC_CLK_TCK);

    fresh_w("before the run", &res);
    if (mix == MIX_RENAME) {
        rename_fixtures(nclients, true, &res);
    }
    /* The servers inherit the affinity of the thread that forks them, the
     * client threads that of the thread that creates them. */
    if (pin != PIN_NONE) {
        pin_self(pin == PIN_SAME ? cpu_client : cpu_server);
    }
    if (server_start(&s, kind, nclients, nclients + 64) < 0) {
        server_stop(&s);
        pin_self(-1);
        res.errors = 1;
        total_errors++;
        free(th);
        free(conns);
        free(h);
        return res;
    }
    if (pin != PIN_NONE) {
        pin_self(cpu_client);
    }
    for (int i = 0; i < nthreads; i++) {
        th[i].conns = calloc((size_t)nclients, sizeof(struct bconn *));
        th[i].mix = mix;
        th[i].budget = opt.count > 0 ? &budget : NULL;
    }
    for (int i = 0; i < nclients; i++) {
        struct bthread *t = &th[i % nthreads];

        conns[i].fd = pc_conn_fd(s.pcs[i]);
        conns[i].id = i;
        conns[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) + (uint64_t)rep;
        t->conns[t->nconns++] = &conns[i];
    }
    t0 = now_ns();
    if (opt.count > 0) {
        ws = t0;
        we = INT64_MAX;
    } else {
        ws = t0 + (int64_t)(opt.warmup * 1e9);
        we = ws + (int64_t)(opt.duration * 1e9);
    }
    for (int i = 0; i < nthreads; i++) {
        th[i].ws = ws;
        th[i].we = we;
        th[i].t_stop = we;
        pthread_create(&th[i].tid, NULL, thread_main, &th[i]);
    }
    if (opt.count > 0) {
        cpu0 = server_cpu_ticks(&s);
        ccpu0 = cpu_self_us();
        for (int i = 0; i < nthreads; i++) {
            pthread_join(th[i].tid, NULL);
        }
        we = now_ns();
        cpu1 = server_cpu_ticks(&s);
        ccpu1 = cpu_self_us();
    } else {
        sleep_until(ws);
        cpu0 = server_cpu_ticks(&s);
        ccpu0 = cpu_self_us();
        sleep_until(we);
        cpu1 = server_cpu_ticks(&s);
        ccpu1 = cpu_self_us();
        for (int i = 0; i < nthreads; i++) {
            pthread_join(th[i].tid, NULL);
        }
    }
    res.rss_kb = server_status_kb(&s, "VmHWM");
    server_stop(&s);
    pin_self(-1);
    if (mix == MIX_RENAME) {
        rename_fixtures(nclients, false, &res);
    }
    fresh_w(mix_names[mix], &res);
    for (int i = 0; i < nthreads; i++) {
        for (int b = 0; b < HBUCKETS; b++) {
            h->b[b] += th[i].hist.b[b];
        }
        h->n += th[i].hist.n;
        ops += th[i].ops;
        for (int k = 0; k < NTYPES; k++) {
            uint64_t lat = th[i].tlat_ns[k];

            /* summed over threads: per type, count / summed latency */
            res.type_count[k] += (long)th[i].tcount[k];
            res.type_ops_s[k] += (double)lat; /* ns for now */
            res.type_errno[k] += (long)th[i].terrno[k];
            if (th[i].terrno[k] > 0) {
                res.type_errno_val[k] = th[i].terrno_val[k];
            }
        }
        res.errors += (long)th[i].errors;
        if (th[i].first_error[0] != '\0') {
            fprintf(stderr, "vp-bench: %s/%s/%d: %lu errors, first: %s\n", server_names[kind],
                    mix_names[mix], nclients, (unsigned long)th[i].errors, th[i].first_error);
        }
        free(th[i].conns);
    }
    for (int k = 0; k < NTYPES; k++) {
        res.type_ops_s[k] = res.type_ops_s[k] > 0 ? (double)res.type_count[k] * 1e9 /
                                                        res.type_ops_s[k]
                                                  : 0;
    }
    res.ops_s = (double)ops / ((double)(we - ws) / 1e9);
    res.p50 = hist_pct(h, 0.50) / 1e3;
    res.p90 = hist_pct(h, 0.90) / 1e3;
    res.p99 = hist_pct(h, 0.99) / 1e3;
    res.p999 = hist_pct(h, 0.999) / 1e3;
    res.cpu_us_op = ops > 0 ? (double)(cpu1 - cpu0) * 1e6 / (double)hz / (double)ops : 0;
    res.client_cpu_us_op = ops > 0 ? (ccpu1 - ccpu0) / (double)ops : 0;
    res.ok = res.errors == 0;
    total_errors += res.errors;
    if (csv_out != NULL) {
        int ty = mix_type[mix];

        fprintf(csv_out,
                "%s,%s,%d,%d,%d,%.0f,%.1f,%.1f,%.1f,%.1f,%.2f,%.2f,%ld,%d,%ld,%s,%s,%ld,%.0f,"
                "%ld\n",
                server_names[kind], mix_names[mix], nclients, opt.pipeline, rep, res.ops_s,
                res.p50, res.p90, res.p99, res.p999, res.cpu_us_op, res.client_cpu_us_op,
                res.rss_kb, s.npids, res.errors, pin_names[pin],
                ty != 0 ? pc_type_name((uint32_t)ty) : "", res.type_count[ty],
                res.type_ops_s[ty], res.type_errno[ty]);
        fflush(csv_out);
    }
    if (opt.verbose) {
        fprintf(stderr,
                "  %-4s %-11s %-5s c=%-3d rep=%d  %9.0f ops/s (type %9.0f)  p50 %7.1f p99 %7.1f "
                "p99.9 %7.1f us  srv %.2f us/op  cli %.2f us/op  rss %ld KiB  err %ld\n",
                server_names[kind], mix_names[mix], pin_names[pin], nclients, rep, res.ops_s,
                res.type_ops_s[mix_type[mix]], res.p50, res.p99, res.p999, res.cpu_us_op,
                res.client_cpu_us_op, res.rss_kb, res.errors);
    }
    free(th);
    free(conns);
    free(h);
    return res;
}

/* ---- idle connections --------------------------------------------------- */

static int run_idle(long n)
{
    struct server s;
    pc_conn **pcs = calloc((size_t)n, sizeof(*pcs));
    long rss0, rss1, hwm, ok = 0;
    int rc = 0;
    int64_t t0;

    memset(&s, 0, sizeof(s));
    s.kind = SRV_OURS;
    /* server_start connects at most 1024; these are held here instead. */
    if (server_start(&s, SRV_OURS, 0, n + 64) < 0) {
        server_stop(&s);
        return 1;
    }
    usleep(200000);
    rss0 = server_status_kb(&s, "VmRSS");
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pc_proxy_stat st;
        int r = pc_connect(sock_path, 5000, &pcs[i]);

        if (r < 0) {
            fprintf(stderr, "vp-bench: idle connection %ld: %s\n", i, pc_strerror(r));
            rc = 1;
            break;
        }
        /* QEMU's first request on every connection. */
        r = pc_lstat(pcs[i], "/", &st);
        if (r < 0) {
            fprintf(stderr, "vp-bench: idle connection %ld: lstat /: %s\n", i, pc_strerror(r));
            rc = 1;
            break;
        }
        ok++;
    }
    usleep(500000);
    rss1 = server_status_kb(&s, "VmRSS");
    hwm = server_status_kb(&s, "VmHWM");
    /* Prove they are all still served. */
    for (long i = 0; i < ok; i++) {
        pc_proxy_stat st;

        if (pc_lstat(pcs[i], "//f0", &st) < 0) {
            fprintf(stderr, "vp-bench: idle connection %ld no longer answers\n", i);
            rc = 1;
            break;
        }
    }
    printf("idle: %ld connections held by one daemon (%.1f s to open): RSS %.1f MiB (%.1f before), "
           "peak %.1f MiB, %.2f KiB/connection\n",
           ok, (double)(now_ns() - t0) / 1e9, rss1 / 1024.0, rss0 / 1024.0, hwm / 1024.0,
           ok > 0 ? (double)(rss1 - rss0) / (double)ok : 0.0);
    if (csv_out != NULL) {
        fprintf(csv_out, "ours,idle,%ld,1,1,0,0,0,0,0,0,0,%ld,1,%d\n", ok, hwm, rc);
    }
    for (long i = 0; i < n; i++) {
        pc_free(pcs[i]);
    }
    free(pcs);
    server_stop(&s);
    if (rc != 0) {
        total_errors++;
    }
    return rc;
}

/* ---- main --------------------------------------------------------------- */

static char own_workdir[64]; /* made by us: removed at exit */

static void rm_workdir(void)
{
    if (own_workdir[0] != '\0') {
        nftw(own_workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static int lookup(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void parse_list(const char *arg, const char *what, const char *const *names, int nnames,
                       int *out, int *nout, int cap)
{
    char *copy = strdup(arg), *save = NULL;

    *nout = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int v = names != NULL ? lookup(tok, names, nnames) : atoi(tok);

        if (v < 0 || (names == NULL && (v < 1 || v > 1000)) || *nout == cap) {
            fprintf(stderr, "vp-bench: bad %s '%s'\n", what, tok);
            exit(2);
        }
        out[(*nout)++] = v;
    }
    free(copy);
}

/* --mix: names, 'types' (the 20 per-type mixes) or 'all' (and mixed). */
static void parse_mixes(const char *arg)
{
    if (strcmp(arg, "types") == 0 || strcmp(arg, "all") == 0) {
        opt.nmixes = 0;
        for (size_t i = 0; i < sizeof(type_mix_order) / sizeof(type_mix_order[0]); i++) {
            opt.mixes[opt.nmixes++] = type_mix_order[i];
        }
        if (strcmp(arg, "all") == 0) {
            opt.mixes[opt.nmixes++] = MIX_MIXED;
        }
        return;
    }
    parse_list(arg, "mix", mix_names, NMIXES, opt.mixes, &opt.nmixes, MAX_MIXES);
}

static void usage(int status)
{
    fprintf(status == 0 ? stdout : stderr,
            "usage: vp-bench [options]\n"
            "  --servers LIST      ours,ref,min,bare (default: ours,ref,min, alternating;\n"
            "                      bare: ours with request counting off)\n"
            "  --mix LIST          lstat,open,create,mixed, or a request type's own mix:\n"
            "                      mkdir,mknod,symlink,link,rename,remove,chmod,chown,\n"
            "                      truncate,utime,readlink,statfs,getxattr,listxattr,\n"
            "                      setxattr,removexattr,getversion; 'types': all 20\n"
            "                      types, 'all': those and mixed (default lstat)\n"
            "  --pin LIST          none,same,split: client and servers unpinned, on one\n"
            "                      CPU, or on two different CPUs (default none)\n"
            "  --clients LIST      concurrent connections, e.g. 1,4,16,64,256 (default 1)\n"
            "  --duration S        measured seconds per run (default 3)\n"
            "  --warmup S          unmeasured seconds before (default 0.5)\n"
            "  --count N           instead of a duration: N actions per run, all measured\n"
            "  --pipeline K        requests in flight per connection (default 1, max %d)\n"
            "  --threads N         client threads (default 1)\n"
            "  --repeat R          runs per cell; medians are reported (default 1)\n"
            "  --depth D           paths of 1..D components (default 2, max 3)\n"
            "  --uid U --gid G     credentials of creations (default 0 0)\n"
            "  --daemon-threads N  pass --threads N to virtfs-proxyd\n"
            "  --daemon-arg ARG    pass ARG to virtfs-proxyd too (repeatable, at most 8),\n"
            "                      e.g. --daemon-arg=--uid-map=0:100000:65536\n"
            "  --idle N            only: hold N idle connections to virtfs-proxyd, print RSS\n"
            "  --daemon PATH --reference PATH --minserver PATH   server binaries\n"
            "  --workdir DIR       export tree, sockets and logs (default: a new /tmp dir)\n"
            "  --csv FILE          one line per run;  --summary FILE  medians and ratios\n"
            "  --markdown FILE     append the issue-12 tables (per type at 1 client, CPU\n"
            "                      per request at more)\n"
            "  -v, --verbose       print every run\n",
            MAX_PIPELINE);
    exit(status);
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];

            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- reporting ---------------------------------------------------------- */

static struct result *res; /* [pin][mix][clients][server][rep] */
#define RES(p, m, c, sv, r)                                                                   \
    (&res[(((((size_t)(p) * (size_t)opt.nmixes + (size_t)(m)) * (size_t)opt.nclients +       \
             (size_t)(c)) * (size_t)opt.nservers + (size_t)(sv)) * (size_t)opt.repeat) +      \
          (size_t)(r)])

enum { F_OPS, F_P50, F_P99, F_P999, F_CPU, F_CCPU, F_TYPE_OPS, NFIELDS };

/* Medians over the repetitions of one cell, by server kind.  Ratios are
 * the medians of the per-repetition ratios: ours and the other server ran
 * back to back in each repetition, so a burst of load elsewhere on the
 * machine spoils one pair, not the comparison. */
struct cell {
    double med[MAX_SERVERS][NFIELDS];
    double pair[MAX_SERVERS][NFIELDS]; /* ours / this server, 0 if not run */
    long rss[MAX_SERVERS], errs;
    bool have[MAX_SERVERS];
    /* the mix's own type, summed over the repetitions */
    long type_count[MAX_SERVERS], type_errno[MAX_SERVERS];
    int32_t errno_val[MAX_SERVERS];
};

static double field_of(const struct result *y, int f, int ty)
{
    switch (f) {
    case F_OPS:
        return y->ops_s;
    case F_P50:
        return y->p50;
    case F_P99:
        return y->p99;
    case F_P999:
        return y->p999;
    case F_CPU:
        return y->cpu_us_op;
    case F_CCPU:
        return y->client_cpu_us_op;
    default:
        return y->type_ops_s[ty];
    }
}

static void cell_medians(int p, int m, int c, struct cell *x)
{
    int ty = mix_type[opt.mixes[m]];

    memset(x, 0, sizeof(*x));
    for (int sv = 0; sv < opt.nservers; sv++) {
        int kind = opt.servers[sv];
        double v[NFIELDS][MAX_REPEAT];

        for (int r = 0; r < opt.repeat; r++) {
            const struct result *y = RES(p, m, c, sv, r);

            for (int f = 0; f < NFIELDS; f++) {
                v[f][r] = field_of(y, f, ty);
            }
            x->rss[kind] = y->rss_kb > x->rss[kind] ? y->rss_kb : x->rss[kind];
            x->errs += y->errors;
            x->type_count[kind] += y->type_count[ty];
            x->type_errno[kind] += y->type_errno[ty];
            if (y->type_errno[ty] > 0) {
                x->errno_val[kind] = y->type_errno_val[ty];
            }
        }
        for (int f = 0; f < NFIELDS; f++) {
            x->med[kind][f] = median(v[f], opt.repeat);
        }
        x->have[kind] = true;
    }
    for (int so = 0; so < opt.nservers; so++) {
        if (opt.servers[so] != SRV_OURS) {
            continue;
        }
        for (int sv = 0; sv < opt.nservers; sv++) {
            for (int f = 0; f < NFIELDS; f++) {
                double v[MAX_REPEAT];
                int n = 0;

                for (int r = 0; r < opt.repeat; r++) {
                    double o = field_of(RES(p, m, c, so, r), f, ty);
                    double y = field_of(RES(p, m, c, sv, r), f, ty);

                    if (y > 0 && o > 0) {
                        v[n++] = o / y;
                    }
                }
                x->pair[opt.servers[sv]][f] = n > 0 ? median(v, n) : 0;
            }
        }
    }
}

/* ours / server b for field f: the median of the per-repetition ratios. */
static double ratio_of(const struct cell *x, int b, int f)
{
    return x->have[SRV_OURS] && x->have[b] ? x->pair[b][f] : 0.0;
}

static void print_cell(int p, int m, int c, const struct cell *x)
{
    for (int sv = 0; sv < opt.nservers; sv++) {
        int kind = opt.servers[sv];
        char ratio[32] = "";

        if (kind != SRV_OURS && ratio_of(x, kind, F_OPS) > 0) {
            snprintf(ratio, sizeof(ratio), "%.2fx", ratio_of(x, kind, F_OPS));
        }
        printf("%-11s %5d %-5s %-4s %10.0f %10.0f %9.1f %9.1f %9.1f %10.2f %8.1fM %10s\n",
               mix_names[opt.mixes[m]], opt.clients[c], pin_names[opt.pins[p]],
               server_names[kind], x->med[kind][F_OPS], x->med[kind][F_TYPE_OPS],
               x->med[kind][F_P50], x->med[kind][F_P99], x->med[kind][F_P999],
               x->med[kind][F_CPU], x->rss[kind] / 1024.0, ratio);
    }
}


static void summary_line(FILE *sum, int p, int m, int c, const struct cell *x)
{
    fprintf(sum, "%s,%d,%d", mix_names[opt.mixes[m]], opt.clients[c], opt.pipeline);
    for (int k = 0; k < 3; k++) {
        if (x->have[k]) {
            fprintf(sum, ",%.0f,%.1f,%.1f,%.1f,%.2f,%ld", x->med[k][F_OPS], x->med[k][F_P50],
                    x->med[k][F_P99], x->med[k][F_P999], x->med[k][F_CPU], x->rss[k]);
        } else {
            fprintf(sum, ",,,,,,");
        }
    }
    fprintf(sum, ",%.3f,%.3f,%.3f,%ld,%s", ratio_of(x, SRV_REF, F_OPS),
            ratio_of(x, SRV_MIN, F_OPS), ratio_of(x, SRV_REF, F_CPU),
            x->errs, pin_names[opt.pins[p]]);
    for (int k = 0; k < 3; k++) {
        if (x->have[k]) {
            fprintf(sum, ",%.0f", x->med[k][F_TYPE_OPS]);
        } else {
            fprintf(sum, ",");
        }
    }
    fprintf(sum, "\n");
}

static const char *verdict(double ratio, double target, bool at_least)
{
    if (ratio <= 0) {
        return "—";
    }
    return (at_least ? ratio >= target : ratio <= target) ? "met" : "**not met**";
}

static const char *pin_label(int pin)
{
    return pin == PIN_SAME ? "same CPU" : pin == PIN_SPLIT ? "split CPUs" : "unpinned";
}

/* A table cell: v with the given decimals, or a dash when not measured. */
static void md_num(FILE *md, bool have, double v, int decimals)
{
    if (have) {
        fprintf(md, " %.*f |", decimals, v);
    } else {
        fprintf(md, " — |");
    }
}

/* One row of the 1-client table: a type's own ops/s, or a mix's overall. */
static void md_type_row(FILE *md, int m, int c, const char *label, int field)
{
    fprintf(md, "| %s |", label);
    for (int p = 0; p < opt.npins; p++) {
        struct cell x;
        double r;

        cell_medians(p, m, c, &x);
        r = ratio_of(&x, SRV_REF, field);
        md_num(md, x.have[SRV_OURS], x.med[SRV_OURS][field], 0);
        md_num(md, x.have[SRV_REF], x.med[SRV_REF][field], 0);
        md_num(md, r > 0, r, 2);
        fprintf(md, " %s |", verdict(r, 1.0, true));
    }
    fprintf(md, "\n");
}

/* Errors of all the cells of one client count; accepted errnos listed. */
static long md_notes(FILE *md, int c)
{
    long errs = 0;

    for (int p = 0; p < opt.npins; p++) {
        for (int m = 0; m < opt.nmixes; m++) {
            struct cell x;

            cell_medians(p, m, c, &x);
            errs += x.errs;
            for (int sv = 0; sv < opt.nservers; sv++) {
                int k = opt.servers[sv];

                if (x.type_errno[k] > 0) {
                    fprintf(md, "* %s, %s: %s answered %s to %ld of its %ld %s requests.\n",
                            mix_names[opt.mixes[m]], pin_label(opt.pins[p]), server_names[k],
                            pc_strerror(x.errno_val[k]), x.type_errno[k], x.type_count[k],
                            mix_names[opt.mixes[m]]);
                }
            }
        }
    }
    fprintf(md, "* Wrong or missing replies in these runs: %ld.\n", errs);
    return errs;
}

static void md_per_type(FILE *md, int c)
{
    fprintf(md, "\n#### 1 client, one request in flight: ops/s (target ours/ref ≥ 1.0)\n\n"
                "Request rows: that type's own ops/s (its replies ÷ the time spent waiting "
                "for them); *mix* rows: all requests of the mix ÷ the measured window. "
                "Medians of %d × %.1f s; ours/ref is the median of the per-repetition "
                "ratios (ours and ref back to back).\n\n| request |",
            opt.repeat, opt.duration);
    for (int p = 0; p < opt.npins; p++) {
        const char *l = pin_label(opt.pins[p]);

        fprintf(md, " ours %s | ref %s | ours/ref | %s |", l, l, l);
    }
    fprintf(md, "\n|---|");
    for (int p = 0; p < opt.npins; p++) {
        fprintf(md, "---:|---:|---:|---|");
    }
    fprintf(md, "\n");
    for (int m = 0; m < opt.nmixes; m++) {
        if (opt.mixes[m] != MIX_MIXED) {
            md_type_row(md, m, c, mix_names[opt.mixes[m]], F_TYPE_OPS);
        }
    }
    for (int m = 0; m < opt.nmixes; m++) {
        if (opt.mixes[m] <= MIX_MIXED) {
            char label[48];

            snprintf(label, sizeof(label), "*mix %s*", mix_names[opt.mixes[m]]);
            md_type_row(md, m, c, label, F_OPS);
        }
    }
    fprintf(md, "\n");
    md_notes(md, c);
}

/* Server CPU per request with many clients: ours against ref and min. */
static void md_cpu(FILE *md, int c)
{
    for (int p = 0; p < opt.npins; p++) {
        fprintf(md, "\n#### %d clients (%s): server CPU µs per request "
                    "(targets ours/ref ≤ 0.6; ours/min ≤ 1.15 for lstat and open)\n\n"
                    "Medians of %d × %.1f s; ratios are medians of the per-repetition "
                    "ratios.\n\n"
                    "| mix | ours | ref | min | ours/ref | ≤ 0.6 | ours/min | ≤ 1.15 | "
                    "ops/s ours/ref |\n"
                    "|---|---:|---:|---:|---:|---|---:|---|---:|\n",
                opt.clients[c], pin_label(opt.pins[p]), opt.repeat, opt.duration);
        for (int m = 0; m < opt.nmixes; m++) {
            int mix = opt.mixes[m];
            struct cell x;
            double rr, rm;

            cell_medians(p, m, c, &x);
            rr = ratio_of(&x, SRV_REF, F_CPU);
            rm = ratio_of(&x, SRV_MIN, F_CPU);
            fprintf(md, "| %s |", mix_names[mix]);
            md_num(md, x.have[SRV_OURS], x.med[SRV_OURS][F_CPU], 2);
            md_num(md, x.have[SRV_REF], x.med[SRV_REF][F_CPU], 2);
            md_num(md, x.have[SRV_MIN], x.med[SRV_MIN][F_CPU], 2);
            md_num(md, rr > 0, rr, 2);
            fprintf(md, " %s |", verdict(rr, 0.6, false));
            md_num(md, rm > 0, rm, 2);
            fprintf(md, " %s |", mix == MIX_LSTAT || mix == MIX_OPEN ? verdict(rm, 1.15, false)
                                                                      : "(no target)");
            md_num(md, ratio_of(&x, SRV_REF, F_OPS) > 0,
                   ratio_of(&x, SRV_REF, F_OPS), 2);
            fprintf(md, "\n");
        }
    }
    fprintf(md, "\n");
    md_notes(md, c);
}

/* The issue-12 tables: per type for every 1-client cell, CPU per request
 * for every cell with more clients. */
static void markdown_tables(FILE *md)
{
    for (int c = 0; c < opt.nclients; c++) {
        if (opt.clients[c] == 1) {
            md_per_type(md, c);
        } else {
            md_cpu(md, c);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"servers", required_argument, NULL, 'S'},
        {"mix", required_argument, NULL, 'm'},
        {"clients", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'W'},
        {"count", required_argument, NULL, 'n'},
        {"pipeline", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'},
        {"repeat", required_argument, NULL, 'r'},
        {"depth", required_argument, NULL, 'D'},
        {"uid", required_argument, NULL, 'u'},
        {"gid", required_argument, NULL, 'g'},
        {"daemon-threads", required_argument, NULL, 'T'},
        {"daemon-arg", required_argument, NULL, 7},
        {"idle", required_argument, NULL, 'I'},
        {"daemon", required_argument, NULL, 1},
        {"reference", required_argument, NULL, 2},
        {"minserver", required_argument, NULL, 3},
        {"workdir", required_argument, NULL, 'w'},
        {"csv", required_argument, NULL, 4},
        {"summary", required_argument, NULL, 5},
        {"markdown", required_argument, NULL, 6},
        {"pin", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char tmpl[] = "/tmp/vp-bench.XXXXXX";
    struct rlimit rl;
    FILE *sum = NULL;
    int o;

    opt.servers[0] = SRV_OURS;
    opt.servers[1] = SRV_REF;
    opt.servers[2] = SRV_MIN;
    opt.nservers = 3;
    opt.mixes[0] = MIX_LSTAT;
    opt.nmixes = 1;
    opt.clients[0] = 1;
    opt.nclients = 1;
    opt.pins[0] = PIN_NONE;
    opt.npins = 1;
    opt.daemon = "src/virtfs-proxyd";
    opt.reference = "/usr/lib/qemu/virtfs-proxy-helper";
    opt.minserver = "contrib/bench/minserver";
    while ((o = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (o) {
        case 'S':
            parse_list(optarg, "server", server_names, 4, opt.servers, &opt.nservers,
                       MAX_SERVERS);
            break;
        case 'm':
            parse_mixes(optarg);
            break;
        case 'P':
            parse_list(optarg, "pin mode", pin_names, 3, opt.pins, &opt.npins, MAX_PINS);
            break;
        case 'c':
            parse_list(optarg, "client count", NULL, 0, opt.clients, &opt.nclients,
                       MAX_CLIENTS_LIST);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'W':
            opt.warmup = atof(optarg);
            break;
        case 'n':
            opt.count = atol(optarg);
            break;
        case 'k':
            opt.pipeline = atoi(optarg);
            if (opt.pipeline < 1 || opt.pipeline > MAX_PIPELINE) {
                usage(2);
            }
            break;
        case 't':
            opt.threads = atoi(optarg) > 0 ? atoi(optarg) : 1;
            break;
        case 'r':
            opt.repeat = atoi(optarg);
            if (opt.repeat < 1 || opt.repeat > MAX_REPEAT) {
                usage(2);
            }
            break;
        case 'D':
            opt.depth = atoi(optarg);
            if (opt.depth < 1 || opt.depth > 3) {
                usage(2);
            }
            break;
        case 'u':
            opt.uid = (int32_t)atol(optarg);
            break;
        case 'g':
            opt.gid = (int32_t)atol(optarg);
            break;
        case 'T':
            opt.daemon_threads = atoi(optarg);
            break;
        case 7:
            if (opt.ndaemon_args == (int)(sizeof(opt.daemon_args) / sizeof(opt.daemon_args[0]))) {
                fprintf(stderr, "vp-bench: --daemon-arg: at most 8\n");
                return 2;
            }
            opt.daemon_args[opt.ndaemon_args++] = optarg;
            break;
        case 'I':
            opt.idle = atol(optarg);
            break;
        case 1:
            opt.daemon = optarg;
            break;
        case 2:
            opt.reference = optarg;
            break;
        case 3:
            opt.minserver = optarg;
            break;
        case 'w':
            opt.workdir = optarg;
            break;
        case 4:
            opt.csv = optarg;
            break;
        case 5:
            opt.summary = optarg;
            break;
        case 6:
            opt.markdown = optarg;
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'h':
            usage(0);
            break;
        default:
            usage(2);
        }
    }
    signal(SIGPIPE, SIG_IGN);
    pin_init();
    for (int p = 0; p < opt.npins; p++) {
        if (opt.pins[p] != PIN_NONE && (cpu_client < 0 || (opt.pins[p] == PIN_SPLIT &&
                                                           cpu_server < 0))) {
            fprintf(stderr, "vp-bench: --pin %s needs %s CPUs to run on\n",
                    pin_names[opt.pins[p]], opt.pins[p] == PIN_SPLIT ? "two" : "one");
            return 2;
        }
    }
    /* Thousands of sockets, on this side and (inherited) the daemon's. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (opt.idle > 0 && (rlim_t)(opt.idle + 64) > rl.rlim_cur) {
        fprintf(stderr, "vp-bench: --idle %ld needs RLIMIT_NOFILE > %ld (hard limit %lu)\n",
                opt.idle, opt.idle + 64, (unsigned long)rl.rlim_max);
        return 2;
    }
    if (opt.workdir == NULL) {
        if (mkdtemp(tmpl) == NULL) {
            perror("vp-bench: mkdtemp");
            return 2;
        }
        opt.workdir = tmpl;
        snprintf(own_workdir, sizeof(own_workdir), "%s", tmpl);
        atexit(rm_workdir);
    } else {
        mkdir(opt.workdir, 0755);
    }
    snprintf(export_dir, sizeof(export_dir), "%s/export", opt.workdir);
    snprintf(sock_path, sizeof(sock_path), "%s/sock", opt.workdir);
    snprintf(log_path, sizeof(log_path), "%s/servers.log", opt.workdir);
    make_tree();
    for (int i = 0; i < opt.nservers; i++) {
        const char *bin = opt.servers[i] == SRV_OURS || opt.servers[i] == SRV_BARE ? opt.daemon
                          : opt.servers[i] == SRV_REF ? opt.reference
                                                      : opt.minserver;

        if (access(bin, X_OK) != 0) {
            fprintf(stderr, "vp-bench: %s server %s: %s\n", server_names[opt.servers[i]], bin,
                    strerror(errno));
            return 2;
        }
    }
    if (opt.csv != NULL) {
        bool fresh = access(opt.csv, F_OK) != 0;

        csv_out = fopen(opt.csv, "a");
        if (csv_out == NULL) {
            perror(opt.csv);
            return 2;
        }
        if (fresh) {
            fprintf(csv_out, "server,mix,clients,pipeline,rep,ops_s,p50_us,p90_us,p99_us,"
                             "p999_us,server_cpu_us_op,client_cpu_us_op,server_peak_rss_kib,"
                             "server_procs,errors,pin,type,type_count,type_ops_s,type_errno\n");
        }
    }
    if (opt.idle > 0) {
        return run_idle(opt.idle);
    }
    for (int i = 0; i < opt.nclients; i++) {
        if (opt.clients[i] > 1000) {
            usage(2);
        }
    }

    res = calloc((size_t)opt.npins * (size_t)opt.nmixes * (size_t)opt.nclients *
                     (size_t)opt.nservers * (size_t)opt.repeat,
                 sizeof(*res));
    if (res == NULL) {
        perror("vp-bench");
        return 2;
    }
    /* Alternate servers inside every repetition so that drift of the
     * machine hits all of them alike. */
    for (int r = 0; r < opt.repeat; r++) {
        for (int p = 0; p < opt.npins; p++) {
            for (int m = 0; m < opt.nmixes; m++) {
                for (int c = 0; c < opt.nclients; c++) {
                    for (int sv = 0; sv < opt.nservers; sv++) {
                        int k = (sv + r) % opt.nservers; /* rotate who goes first */

                        *RES(p, m, c, k, r) = run_one(opt.servers[k], opt.mixes[m],
                                                      opt.clients[c], r, opt.pins[p]);
                    }
                }
            }
        }
    }

    if (opt.summary != NULL) {
        bool fresh = access(opt.summary, F_OK) != 0;

        sum = fopen(opt.summary, "a");
        if (sum != NULL && fresh) {
            fprintf(sum, "mix,clients,pipeline");
            for (int k = 0; k < 3; k++) {
                fprintf(sum, ",%s_ops_s,%s_p50_us,%s_p99_us,%s_p999_us,%s_cpu_us_op,%s_rss_kib",
                        server_names[k], server_names[k], server_names[k], server_names[k],
                        server_names[k], server_names[k]);
            }
            fprintf(sum, ",ours_vs_ref_ops,ours_vs_min_ops,ours_vs_ref_cpu,errors,pin");
            for (int k = 0; k < 3; k++) {
                fprintf(sum, ",%s_type_ops_s", server_names[k]);
            }
            fprintf(sum, "\n");
        }
    }
    printf("%-11s %5s %-5s %-4s %10s %10s %9s %9s %9s %10s %10s %10s\n", "mix", "conns", "pin",
           "srv", "ops/s", "type ops/s", "p50 us", "p99 us", "p99.9 us", "srv us/op",
           "peak RSS", "vs ours");
    for (int p = 0; p < opt.npins; p++) {
        for (int m = 0; m < opt.nmixes; m++) {
            for (int c = 0; c < opt.nclients; c++) {
                struct cell x;

                cell_medians(p, m, c, &x);
                print_cell(p, m, c, &x);
                if (sum != NULL) {
                    summary_line(sum, p, m, c, &x);
                }
            }
        }
    }
    if (sum != NULL) {
        fclose(sum);
    }
    if (opt.markdown != NULL) {
        FILE *md = fopen(opt.markdown, "a");

        if (md == NULL) {
            perror(opt.markdown);
            return 2;
        }
        markdown_tables(md);
        fclose(md);
    }
    if (csv_out != NULL) {
        fclose(csv_out);
    }
    free(res);
    if (total_errors > 0) {
        fprintf(stderr, "vp-bench: %ld errors (wrong or missing replies)\n", total_errors);
        return 1;
    }
    return 0;
}
