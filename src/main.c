/* main.c - options, start-up, signals and shutdown of virtfs-proxyd. */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "conn.h"
#include "control.h"
#include "lanes.h"
#include "progress.h"
#include "registry.h"
#include "sandbox.h"
#include "sdactivate.h"
#include "service.h"
#include "settings.h"
#include "stats.h"
#include "supervisor.h"
#include "upgrade.h"
#include "log.h"
#include "ops.h"
#include "policy.h"
#include "worker.h"

#ifdef VP_TEST_HOOKS
/* Tests look for this word before relying on the hooks. */
#define VP_BUILD_FEATURES " (test-hooks)"
#else
#define VP_BUILD_FEATURES ""
#endif

#define SHUTDOWN_GRACE_S 10
#define LANE_IDLE_S 30
#define LANE_STOP_S 5

struct options {
    char *config; /* made absolute once valid: reloads happen after daemon() moved to / */
    bool log_level_given;
    char *path; /* likewise, and a live upgrade starts again from / */
    const char *socket;
    long uid, gid, fd; /* -1: not given */
    bool nodaemon;
    bool allow_devices;
    bool readonly;
    /* --allowed-peer-uids/-gids (-s): NULL when not given or empty. */
    GArray *allowed_uids, *allowed_gids;
    bool peer_lists_given;
    const char *uid_map, *gid_map, *xattr_map; /* NULL: not given */
    enum log_level log_level;
    unsigned long threads;
    /* Daemon settings; -1: not given.  Given ones override the file's
     * [daemon] keys, at start and at every reload, as --log-level does. */
    long max_conns;
    long max_conns_per_uid;
    long frame_timeout;
    long output_timeout;
    long io_stall_ms;
    long lane_threads;
    long takeover_fd; /* -1, or the state left by a live upgrade */
    const char *control_socket; /* NULL: not given; "": none */
    bool no_supervisor;
    int seccomp, confine; /* enum sandbox_*; -1: not given */
    /* Started by a supervisor: its registry socket and progress table. */
    int supervised_reg, supervised_progress;
};

enum {
    OPT_ALLOW_DEVICES = 256,
    OPT_READONLY,
    OPT_LOG_LEVEL,
    OPT_THREADS,
    OPT_MAX_CONNS,
    OPT_MAX_CONNS_PER_UID,
    OPT_FRAME_TIMEOUT,
    OPT_OUTPUT_TIMEOUT,
    OPT_IO_STALL_MS,
    OPT_LANE_THREADS,
    OPT_VERSION,
    OPT_TAKEOVER,
    OPT_CONTROL_SOCKET,
    OPT_NO_SUPERVISOR,
    OPT_SUPERVISED,
    OPT_ALLOWED_PEER_UIDS,
    OPT_ALLOWED_PEER_GIDS,
    OPT_UID_MAP,
    OPT_GID_MAP,
    OPT_XATTR_MAP,
    OPT_SECCOMP,
    OPT_CONFINE,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"path", required_argument, NULL, 'p'},
    {"socket", required_argument, NULL, 's'},
    {"uid", required_argument, NULL, 'u'},
    {"gid", required_argument, NULL, 'g'},
    {"fd", required_argument, NULL, 'f'},
    {"nodaemon", no_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},
    {"allow-devices", no_argument, NULL, OPT_ALLOW_DEVICES},
    {"readonly", no_argument, NULL, OPT_READONLY},
    {"allowed-peer-uids", required_argument, NULL, OPT_ALLOWED_PEER_UIDS},
    {"allowed-peer-gids", required_argument, NULL, OPT_ALLOWED_PEER_GIDS},
    {"uid-map", required_argument, NULL, OPT_UID_MAP},
    {"gid-map", required_argument, NULL, OPT_GID_MAP},
    {"xattr-map", required_argument, NULL, OPT_XATTR_MAP},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"max-connections-per-uid", required_argument, NULL, OPT_MAX_CONNS_PER_UID},
    {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
    {"output-timeout", required_argument, NULL, OPT_OUTPUT_TIMEOUT},
    {"io-stall-ms", required_argument, NULL, OPT_IO_STALL_MS},
    {"lane-threads", required_argument, NULL, OPT_LANE_THREADS},
    {"version", no_argument, NULL, OPT_VERSION},
    {"takeover", required_argument, NULL, OPT_TAKEOVER},
    {"control-socket", required_argument, NULL, OPT_CONTROL_SOCKET},
    {"no-supervisor", no_argument, NULL, OPT_NO_SUPERVISOR},
    {"supervised", required_argument, NULL, OPT_SUPERVISED},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"confine", required_argument, NULL, OPT_CONFINE},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PACKAGE_NAME " -p DIR (-s PATH -u UID -g GID | -f FD) [options]\n"
            "       " PACKAGE_NAME " -c FILE [-n] [--log-level LEVEL] [--threads N]\n"
            "Serve directories to QEMU's 9p proxy backend (-fsdev proxy).\n"
            "\n"
            "  -c, --config FILE       serve the exports FILE names; SIGHUP reloads it\n"
            "  -p, --path DIR          directory to export\n"
            "  -s, --socket PATH       listen on PATH for any number of QEMU connections\n"
            "  -u, --uid UID           owner of the socket file (name or number)\n"
            "  -g, --gid GID           group of the socket file (name or number)\n"
            "  -f, --fd N              serve the connected socket N, exit when it closes\n"
            "  -n, --nodaemon          stay in the foreground and log to stderr\n"
            "      --allow-devices     let guests create block and character devices\n"
            "      --readonly          refuse every change to the export (EROFS)\n"
            "      --allowed-peer-uids LIST\n"
            "                          with -s: accept only peers (QEMU processes) whose uid\n"
            "                          is in LIST, names or numbers separated by commas\n"
            "                          (default: every peer the socket's mode lets in)\n"
            "      --allowed-peer-gids LIST\n"
            "                          with -s: accept only peers whose primary or a\n"
            "                          supplementary group is in LIST; given both, a peer\n"
            "                          in either list is accepted\n"
            "      --uid-map MAP       guest uids to host uids: GUEST:HOST:COUNT ranges and\n"
            "                          squash=HOST, separated by commas; an unmapped id is\n"
            "                          refused (EPERM), an unmapped host id shows as 65534\n"
            "                          (default: ids pass through)\n"
            "      --gid-map MAP       the same for gids\n"
            "      --xattr-map RULES   xattr names: ok P, map GUEST-P HOST-P, hide P,\n"
            "                          refuse P, separated by ';', first match wins\n"
            "                          (default: names pass through; see virtfs-proxyd.conf(5))\n"
            "      --log-level LEVEL   error, warning, info (default) or debug\n"
            "      --threads N         I/O threads (default: half the CPUs, at least 1)\n"
            "      --max-connections N refuse connections beyond N (default 4096, 0: none)\n"
            "      --max-connections-per-uid N\n"
            "                          refuse a peer uid more than N connections over all\n"
            "                          exports (default 0: no limit)\n"
            "      --frame-timeout S   close a peer whose frame stays incomplete S seconds\n"
            "                          (default 30)\n"
            "      --output-timeout S  close a peer that reads none of its queued replies\n"
            "                          for S seconds (default 30)\n"
            "      --io-stall-ms MS    move the other connections of an I/O thread stuck\n"
            "                          MS milliseconds in one request (default 100)\n"
            "      --lane-threads N    at most N threads acting as guests' uid:gid\n"
            "                          (default 64)\n"
            "      --control-socket PATH\n"
            "                          serve virtfs-proxyctl on PATH (root only; default\n"
            "                          with --config: " SETTINGS_DEFAULT_CONTROL_SOCKET ";\n"
            "                          'none': no control socket)\n"
            "      --seccomp MODE      system calls off the allow-list: kill (default) the\n"
            "                          process, log them by name (and let them happen),\n"
            "                          or none: no filter\n"
            "      --confine MODE      landlock (default): the process reaches nothing of\n"
            "                          the host but its exports, socket directories and\n"
            "                          what it needs to run; none: no confinement\n"
            "  With --config, these nine override the file's [daemon] keys.\n"
            "      --no-supervisor     serve from the process started, without a\n"
            "                          supervisor that survives its crashes\n"
            "      --version           print the version and exit\n"
            "  -h, --help              print this help and exit\n");
}

static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PACKAGE_NAME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '" PACKAGE_NAME " --help' for more information.\n");
    exit(EXIT_FAILURE);
}

static unsigned long parse_number(const char *opt, const char *arg, unsigned long max)
{
    unsigned long v;
    char *end;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (arg[0] == '\0' || arg[0] == '-' || *end != '\0' || errno != 0 || v > max) {
        bad_usage("%s: '%s' is not a number from 0 to %lu", opt, arg, max);
    }
    return v;
}

static long parse_id(const char *opt, const char *arg, bool is_group)
{
    unsigned long id;

    if (!settings_parse_id(arg, is_group, &id)) {
        bad_usage("%s: '%s' is neither a number nor a known %s", opt, arg,
                  is_group ? "group" : "user");
    }
    return (long)id;
}

/* --allowed-peer-uids/-gids: a list as the configuration file takes it. */
static void parse_id_list(const char *opt, const char *arg, bool is_group, GArray **ids)
{
    GError *error = NULL;

    if (*ids != NULL) {
        g_array_unref(*ids);
    }
    if (!settings_parse_id_list(arg, is_group, ids, &error)) {
        bad_usage("%s: %s", opt, error->message);
    }
}

/* A bad map is a usage error, named with its option and token. */
static void check_maps(const struct options *o)
{
    GError *error = NULL;

    policy_unref(settings_policy(o->uid_map, o->gid_map, o->xattr_map, &error));
    if (error != NULL) {
        bad_usage("--%s", error->message);
    }
}

static void parse_options(int argc, char **argv, struct options *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int c;

    *o = (struct options){
        .uid = -1,
        .gid = -1,
        .fd = -1,
        .takeover_fd = -1,
        .supervised_reg = -1,
        .supervised_progress = -1,
        .log_level = LOG_LEVEL_INFO,
        /* Half the CPUs: the guests' QEMU processes need the rest. */
        .threads = ncpu > 1 ? (unsigned long)ncpu / 2 : 1,
        .max_conns = -1,
        .max_conns_per_uid = -1,
        .frame_timeout = -1,
        .output_timeout = -1,
        .io_stall_ms = -1,
        .lane_threads = -1,
        .seccomp = -1,
        .confine = -1,
    };
    while ((c = getopt_long(argc, argv, "c:p:s:u:g:f:nh", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 's':
            o->socket = optarg;
            break;
        case 'u':
            o->uid = parse_id("--uid", optarg, false);
            break;
        case 'g':
            o->gid = parse_id("--gid", optarg, true);
            break;
        case 'f':
            o->fd = (long)parse_number("--fd", optarg, INT_MAX);
            break;
        case 'n':
            o->nodaemon = true;
            break;
        case 'h':
            usage(stdout);
            exit(EXIT_SUCCESS);
        case OPT_ALLOW_DEVICES:
            o->allow_devices = true;
            break;
        case OPT_READONLY:
            o->readonly = true;
            break;
        case OPT_ALLOWED_PEER_UIDS:
            parse_id_list("--allowed-peer-uids", optarg, false, &o->allowed_uids);
            o->peer_lists_given = true;
            break;
        case OPT_ALLOWED_PEER_GIDS:
            parse_id_list("--allowed-peer-gids", optarg, true, &o->allowed_gids);
            o->peer_lists_given = true;
            break;
        case OPT_UID_MAP:
            o->uid_map = optarg;
            break;
        case OPT_GID_MAP:
            o->gid_map = optarg;
            break;
        case OPT_XATTR_MAP:
            o->xattr_map = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (log_parse_level(optarg, &o->log_level) < 0) {
                bad_usage("--log-level: '%s' is not error, warning, info or debug", optarg);
            }
            o->log_level_given = true;
            break;
        case OPT_THREADS:
            o->threads = parse_number("--threads", optarg, 256);
            if (o->threads == 0) {
                bad_usage("--threads: at least 1 is needed");
            }
            break;
        case OPT_MAX_CONNS:
            o->max_conns = (long)parse_number("--max-connections", optarg, UINT_MAX);
            break;
        case OPT_MAX_CONNS_PER_UID:
            o->max_conns_per_uid = (long)parse_number("--max-connections-per-uid", optarg,
                                                      UINT_MAX);
            break;
        case OPT_FRAME_TIMEOUT:
            o->frame_timeout = (long)parse_number("--frame-timeout", optarg,
                                                  SETTINGS_MAX_TIMEOUT);
            if (o->frame_timeout == 0) {
                bad_usage("--frame-timeout: at least 1 second is needed");
            }
            break;
        case OPT_OUTPUT_TIMEOUT:
            o->output_timeout = (long)parse_number("--output-timeout", optarg,
                                                   SETTINGS_MAX_TIMEOUT);
            if (o->output_timeout == 0) {
                bad_usage("--output-timeout: at least 1 second is needed");
            }
            break;
        case OPT_IO_STALL_MS:
            o->io_stall_ms = (long)parse_number("--io-stall-ms", optarg,
                                                SETTINGS_MAX_IO_STALL_MS);
            if (o->io_stall_ms == 0) {
                bad_usage("--io-stall-ms: at least 1 millisecond is needed");
            }
            break;
        case OPT_LANE_THREADS:
            o->lane_threads = (long)parse_number("--lane-threads", optarg,
                                                 SETTINGS_MAX_LANE_THREADS);
            if (o->lane_threads == 0) {
                bad_usage("--lane-threads: at least 1 is needed");
            }
            break;
        case OPT_CONTROL_SOCKET:
            if (strcmp(optarg, "none") == 0 || optarg[0] == '\0') {
                o->control_socket = "";
            } else if (optarg[0] != '/') {
                bad_usage("--control-socket: '%s' is not an absolute path (or none)", optarg);
            } else {
                o->control_socket = optarg;
            }
            break;
        case OPT_TAKEOVER:
            o->takeover_fd = (long)parse_number("--takeover", optarg, INT_MAX);
            break;
        case OPT_NO_SUPERVISOR:
            o->no_supervisor = true;
            break;
        case OPT_SUPERVISED:
            /* Internal: the supervisor's registry socket and progress table. */
            if (sscanf(optarg, "%d,%d", &o->supervised_reg, &o->supervised_progress) != 2 ||
                o->supervised_reg <= 2 || o->supervised_progress <= 2) {
                bad_usage("--supervised: internal, REGISTRY_FD,PROGRESS_FD");
            }
            break;
        case OPT_SECCOMP: {
            enum sandbox_seccomp m;

            if (sandbox_parse_seccomp(optarg, &m) < 0) {
                bad_usage("--seccomp: '%s' is not kill, log or none", optarg);
            }
            o->seccomp = (int)m;
            break;
        }
        case OPT_CONFINE: {
            enum sandbox_confine m;

            if (sandbox_parse_confine(optarg, &m) < 0) {
                bad_usage("--confine: '%s' is not landlock or none", optarg);
            }
            o->confine = (int)m;
            break;
        }
        case OPT_VERSION:
            printf(PACKAGE_NAME " " PACKAGE_VERSION VP_BUILD_FEATURES "\n");
            exit(EXIT_SUCCESS);
        default:
            fprintf(stderr, "Try '" PACKAGE_NAME " --help' for more information.\n");
            exit(EXIT_FAILURE);
        }
    }
    if (optind < argc) {
        bad_usage("unexpected argument '%s'", argv[optind]);
    }
    if (o->config != NULL) {
        if (o->path != NULL || o->socket != NULL || o->fd >= 0 || o->uid >= 0 || o->gid >= 0 ||
            o->allow_devices || o->readonly || o->peer_lists_given || o->uid_map != NULL ||
            o->gid_map != NULL || o->xattr_map != NULL) {
            bad_usage("--config names the exports: -p, -s, -u, -g, -f, --allow-devices, "
                      "--readonly, the peer lists and the maps go in the file "
                      "([export NAME] allowed-peer-uids, allowed-peer-gids, uid-map, gid-map, "
                      "xattr-map)");
        }
        o->config = g_canonicalize_filename(o->config, NULL);
        return;
    }
    if (o->path == NULL) {
        bad_usage("missing --path DIR: the directory to export");
    }
    check_maps(o);
    if (o->socket != NULL && o->fd >= 0) {
        bad_usage("--socket and --fd exclude each other");
    }
    if (o->socket == NULL && o->fd < 0) {
        bad_usage("missing --socket PATH or --fd N: where QEMU connects");
    }
    if (o->socket != NULL && (o->uid < 0 || o->gid < 0)) {
        bad_usage("--socket needs --uid and --gid: the owner of the socket file");
    }
    if (o->socket == NULL && (o->uid >= 0 || o->gid >= 0)) {
        bad_usage("--uid and --gid only apply to --socket");
    }
    if (o->socket == NULL && o->peer_lists_given) {
        /* -f's one peer is whoever handed the socket over. */
        bad_usage("--allowed-peer-uids and --allowed-peer-gids only apply to --socket");
    }
    if (o->fd >= 0 && o->fd <= 2 && !o->nodaemon) {
        bad_usage("--fd %ld is a standard stream, which a daemon closes; use --nodaemon",
                  o->fd);
    }
    o->path = g_canonicalize_filename(o->path, NULL);
}

static gint compare_ints(gconstpointer a, gconstpointer b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* Connections hold descriptors (fd_limit_conns): raise the soft limit as far
 * as the hard one allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Closes the inherited descriptors from lo to hi. */
static void close_fds(unsigned int lo, unsigned int hi)
{
    if (close_range(lo, hi, 0) < 0) {
        /* Linux before 5.9: every number up to the limit. */
        long max = sysconf(_SC_OPEN_MAX);

        for (long fd = lo; fd <= (long)hi && fd < max; fd++) {
            close((int)fd);
        }
    }
}

/* At start, before anything opens a descriptor of its own: whatever this
 * process inherited beyond what it was given to serve is none of its
 * business, and must not pass on to the process of a live upgrade either.
 * Kept: 0, 1 and 2, -f's socket, and what a live upgrade hands over (the
 * state lists it).  Each kept descriptor is then close-on-exec, like every
 * one this process opens (a live upgrade clears the flag on exactly what
 * it hands over).  Nothing else is needed: systemd's $NOTIFY_SOCKET is a
 * path.  Socket activation, if it is ever added, passes $LISTEN_FDS
 * descriptors from fd 3 when $LISTEN_PID is this pid: add those to the kept
 * set here, and unset LISTEN_PID/LISTEN_FDS so that a process started later
 * does not take them for its own. */
static void keep_only_own_fds(const struct options *o)
{
    g_autoptr(GArray) keep = g_array_new(FALSE, FALSE, sizeof(int));
    const int *handed;
    size_t nhanded = upgrade_takeover_fds(&handed);
    unsigned int next = 3;

    if (o->fd > 2) {
        int fd = (int)o->fd;

        g_array_append_val(keep, fd);
    }
    if (o->supervised_reg >= 0) {
        g_array_append_val(keep, o->supervised_reg);
        g_array_append_val(keep, o->supervised_progress);
    }
    g_array_append_vals(keep, handed, (guint)nhanded);
    nhanded = sdactivate_fds(&handed); /* systemd's sockets (LISTEN_FDS) */
    g_array_append_vals(keep, handed, (guint)nhanded);
    g_array_sort(keep, compare_ints);
    for (guint i = 0; i < keep->len; i++) {
        unsigned int fd = (unsigned int)g_array_index(keep, int, i);

        if (fd < next) {
            continue; /* a duplicate */
        }
        if (fd > next) {
            close_fds(next, fd - 1);
        }
        fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        next = fd + 1;
    }
    close_fds(next, ~0U);
}

/* -f: the descriptor must be a connected Unix stream socket. */
static int check_inherited_socket(int fd)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof(type);
    struct stat st;

    if (fstat(fd, &st) < 0) {
        log_error("--fd %d: %m", fd);
        return -EBADF;
    }
    if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        (len = sizeof(domain), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) ||
        type != SOCK_STREAM || domain != AF_UNIX) {
        log_error("--fd %d is not a Unix stream socket", fd);
        return -ENOTSOCK;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        log_error("--fd %d: %m", fd);
        return -errno;
    }
    return 0;
}

/* How many connections the descriptor limit carries.  Each holds its
 * socket and up to CONN_MAX_FDS descriptors on their way to the peer: queued
 * here, or sent and not yet received, which the kernel counts against the
 * sender's RLIMIT_NOFILE too (SCM_RIGHTS "in flight").  With the daemon-wide
 * limit no higher than this, no guest can make another's open fail EMFILE
 * or its sendmsg fail ETOOMANYREFS. */
static unsigned int fd_limit_conns(void)
{
    const rlim_t reserve = 256; /* listeners, lanes' and threads' own, logs */
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
        return UINT_MAX;
    }
    if (rl.rlim_cur <= reserve + 1 + CONN_MAX_FDS) {
        return 1;
    }
    return (unsigned int)MIN((rl.rlim_cur - reserve) / (1 + CONN_MAX_FDS), (rlim_t)UINT_MAX);
}

/* The daemon settings given on the command line win over the file's; the
 * descriptor limit wins over both. */
static void settings_override(struct settings *set, const struct options *o)
{
    unsigned int fit;

    if (o->max_conns >= 0) {
        set->max_conns = (unsigned int)o->max_conns;
    }
    if (o->max_conns_per_uid >= 0) {
        set->max_conns_per_uid = (unsigned int)o->max_conns_per_uid;
    }
    if (o->frame_timeout >= 0) {
        set->frame_timeout_s = (unsigned int)o->frame_timeout;
    }
    if (o->output_timeout >= 0) {
        set->output_timeout_s = (unsigned int)o->output_timeout;
    }
    if (o->io_stall_ms >= 0) {
        set->io_stall_ms = (unsigned int)o->io_stall_ms;
    }
    if (o->lane_threads >= 0) {
        set->lane_threads = (unsigned int)o->lane_threads;
    }
    if (o->seccomp >= 0) {
        set->seccomp = (enum sandbox_seccomp)o->seccomp;
    }
    if (o->confine >= 0) {
        set->confine = (enum sandbox_confine)o->confine;
    }
    fit = fd_limit_conns();
    if (set->max_conns == 0 || set->max_conns > fit) {
        /* A limit someone chose deserves a warning; the default, a note. */
        log_msg(set->max_conns == SETTINGS_DEFAULT_MAX_CONNS ? LOG_LEVEL_INFO
                                                             : LOG_LEVEL_WARNING,
                "the descriptor limit carries %u connections (each may hold %u descriptors "
                "besides its socket): serving at most %u; raise LimitNOFILE= (ulimit -n) "
                "for more",
                fit, CONN_MAX_FDS, fit);
        set->max_conns = fit;
    }
}

/* ---- run time ------------------------------------------------------------ */

/* Start-up is over: under a supervisor it is told (and tells systemd);
 * otherwise systemd is told directly.  MAINPID lets a live upgrade hand
 * the service over. */
static void report_ready(void)
{
    if (registry_active()) {
        registry_send(REG_READY, 0, NULL, -1);
    } else {
        supervisor_notify_systemd();
    }
}

static void block_stop_signals(bool block)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static struct {
    const struct options *opt;
    struct event_base *base;
    bool single; /* -f: end with the one connection */
    bool stopping;
    bool workers_stopped; /* every worker left its loop: they can be joined */
    bool handed_over;     /* a live upgrade succeeded: the new process serves */
    bool fresh_restart;   /* ... or the supervisor starts a fresh one */
    enum sandbox_seccomp seccomp; /* as started: filters cannot be lifted */
    enum sandbox_confine confine;
    const char *stop_pending; /* a stop signal that came during an upgrade */
    struct event *ev_stopped;
    struct event *ev_grace;
    char *control_from_file; /* [daemon] control-socket at start */
    char mode[PATH_MAX + 16]; /* for `status` */
} daemon_state;

static void begin_shutdown(const char *why)
{
    struct timeval grace = {.tv_sec = SHUTDOWN_GRACE_S};

    if (daemon_state.stopping) {
        return;
    }
    daemon_state.stopping = true;
    log_info("%s: finishing requests in progress, then exiting", why);
    service_stop();
    evtimer_add(daemon_state.ev_grace, &grace);
    workers_stop(daemon_state.ev_stopped);
}

/* Daemon-wide settings that apply while running (at start, and after a
 * reload).  The connection limits go with the exports (service_reload). */
static void apply_daemon_settings(const struct settings *set)
{
    if (!daemon_state.opt->log_level_given) {
        log_set_level(set->log_level);
    }
    workers_set_frame_timeout(set->frame_timeout_s);
    workers_set_output_timeout(set->output_timeout_s);
    workers_set_io_stall_ms(set->io_stall_ms);
    lanes_set_max_threads(set->lane_threads);
}

static void on_upgrade_settled(bool handed_over, pid_t new_pid);

/* A reload needs what the Landlock confinement does not reach: the domain
 * only narrows, in this process and in any it starts, so a process started
 * by the supervisor (outside every domain) must take over, as after a
 * crash but at a moment chosen: every connection between requests. */
static int reload_outside(const char *outside, char *msg, size_t cap)
{
    if (!registry_active()) {
        snprintf(msg, cap,
                 "reload rejected: %s is outside this process's Landlock confinement, which "
                 "can only narrow, and without a supervisor (--no-supervisor) nothing can "
                 "start a process outside it: restart the daemon (or set confine = none); "
                 "still serving the previous configuration",
                 outside);
        log_error("%s", msg);
        return -EPERM;
    }
    snprintf(msg, cap,
             "reload: %s is outside this process's Landlock confinement: the supervisor "
             "starts a fresh process, confined anew, with every socket and connection",
             outside);
    log_info("%s", msg);
    daemon_state.fresh_restart = true;
    upgrade_start_fresh(on_upgrade_settled);
    if (!upgrade_in_progress()) {
        daemon_state.fresh_restart = false;
        snprintf(msg, cap, "reload: the fresh start could not begin (see the log)");
        return -EAGAIN;
    }
    return 0;
}

/* Returns 0, or -errno with the reason in msg (also logged). */
static int reload(char *msg, size_t cap)
{
    const char *file = daemon_state.opt->config;
    GError *error = NULL;
    struct settings *set;
    int ret = 0;

    if (file == NULL) {
        snprintf(msg, cap, "started without --config, nothing to reload");
        log_info("reload: %s", msg);
        return -ENOENT;
    }
    set = settings_load(file, &error);
    if (set == NULL) {
        snprintf(msg, cap, "reload rejected: %s; still serving the previous configuration",
                 error->message);
        log_error("%s", msg);
        g_error_free(error);
        return -EINVAL;
    }
    settings_override(set, daemon_state.opt);
    if (set->seccomp != daemon_state.seccomp || set->confine != daemon_state.confine) {
        log_info("reload: seccomp = %s and confine = %s apply at the next start (running "
                 "with %s and %s)",
                 sandbox_seccomp_name(set->seccomp), sandbox_confine_name(set->confine),
                 sandbox_seccomp_name(daemon_state.seccomp),
                 sandbox_confine_name(daemon_state.confine));
    }
    {
        const char *outside;

        if (!sandbox_covers(set, &outside)) {
            settings_free(set);
            return reload_outside(outside, msg, cap);
        }
    }
    if (service_reload(set) < 0) {
        snprintf(msg, cap, "reload of %s rejected (see the log); still serving the previous "
                 "configuration", file);
        log_error("%s", msg);
        ret = -EINVAL;
    } else {
        apply_daemon_settings(set);
        if (daemon_state.opt->control_socket == NULL &&
            g_strcmp0(set->control_socket, daemon_state.control_from_file) != 0) {
            log_info("control-socket changed: it applies at the next start or live upgrade");
        }
        snprintf(msg, cap, "reloaded %s", file);
        log_info("%s", msg);
    }
    settings_free(set);
    return ret;
}

/* A stop asked for during an upgrade waits for it to settle, and then goes
 * to whichever process serves. */
static void on_upgrade_settled(bool handed_over, pid_t new_pid)
{
    control_upgrade_settled(handed_over, new_pid);
    if (handed_over) {
        if (daemon_state.stop_pending != NULL && new_pid > 0) {
            log_info("passing the stop (%s) on to process %d", daemon_state.stop_pending,
                     (int)new_pid);
            kill(new_pid, SIGTERM);
        }
        daemon_state.handed_over = true;
        event_base_loopbreak(daemon_state.base);
    } else {
        daemon_state.fresh_restart = false;
        if (daemon_state.stop_pending != NULL) {
            begin_shutdown(daemon_state.stop_pending);
        }
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGUSR2) {
        if (!daemon_state.stopping) {
            upgrade_start(on_upgrade_settled);
        }
        return;
    }
    if (sig == SIGHUP) {
        if (upgrade_in_progress()) {
            /* The new process reads the configuration anyway. */
            log_info("SIGHUP during an upgrade: the process taking over reads the "
                     "configuration itself");
        } else if (!daemon_state.stopping) {
            char msg[512];

            reload(msg, sizeof(msg));
        }
        return;
    }
    if (upgrade_in_progress()) {
        log_info("%s during an upgrade: stopping once it has settled", strsignal((int)sig));
        daemon_state.stop_pending = strsignal((int)sig);
        return;
    }
    begin_shutdown(strsignal((int)sig));
}

/* virtfs-proxyctl reload: what SIGHUP does, with the outcome. */
static int control_reload(char *msg, size_t cap)
{
    if (upgrade_in_progress()) {
        snprintf(msg, cap, "an upgrade is in progress: the process taking over reads the "
                 "configuration itself");
        return -EBUSY;
    }
    if (daemon_state.stopping) {
        snprintf(msg, cap, "the daemon is stopping");
        return -ESHUTDOWN;
    }
    return reload(msg, cap);
}

/* virtfs-proxyctl upgrade: what SIGUSR2 does; on_upgrade_settled tells
 * control.c the outcome. */
static int control_upgrade(char *msg, size_t cap)
{
    if (daemon_state.stopping) {
        snprintf(msg, cap, "the daemon is stopping");
        return -ESHUTDOWN;
    }
    if (upgrade_in_progress()) {
        return 1;
    }
    upgrade_start(on_upgrade_settled);
    if (!upgrade_in_progress()) {
        snprintf(msg, cap, "the upgrade could not start (see the log)");
        return -EAGAIN;
    }
    return 0;
}

static const struct control_hooks control_hooks = {
    .reload = control_reload,
    .upgrade = control_upgrade,
    .mode = daemon_state.mode,
};

/* The control socket's path: the option's, the file's, or with --config the
 * default; NULL for none.  *explicit says whether it was asked for. */
static const char *control_socket_path(const struct options *o, const struct settings *set,
                                       bool *explicit)
{
    const char *path = o->control_socket;

    *explicit = true;
    if (path == NULL && o->config != NULL) {
        path = set->control_socket;
        if (path == NULL) {
            path = SETTINGS_DEFAULT_CONTROL_SOCKET;
            *explicit = false;
        }
    }
    return path != NULL && path[0] != '\0' ? path : NULL;
}

static void on_conn_closed(evutil_socket_t fd, short what, void *arg)
{
    if (daemon_state.single && !daemon_state.handed_over && workers_connections() == 0) {
        begin_shutdown("the connection closed");
    }
}

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    daemon_state.workers_stopped = true;
    event_base_loopbreak(daemon_state.base);
}

static void on_grace_expired(evutil_socket_t fd, short what, void *arg)
{
    log_warn("connections still busy after %d s; exiting anyway", SHUTDOWN_GRACE_S);
    event_base_loopbreak(daemon_state.base);
}

/* The supervisor never writes: the registry becomes readable at its end. */
static void on_supervisor_gone(evutil_socket_t fd, short what, void *arg)
{
    log_error("the supervisor is gone; exiting");
    _exit(EXIT_FAILURE);
}

static void on_lanes_respawn(evutil_socket_t fd, short what, void *arg)
{
    lanes_respawn();
}

/* Runs the event loop until a stop; ex and inherited_fd are -f's. */
static int run(int argc, char **argv, const struct options *o, const struct settings *set,
               struct export *ex, int inherited_fd)
{
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
    struct event *ev_closed, *ev_respawn;
    struct worker_options wopt;
    int ret;

    evthread_use_pthreads();
    daemon_state.base = event_base_new();
    if (daemon_state.base == NULL) {
        log_error("cannot create the event loop");
        return -ENOMEM;
    }
    sandbox_seccomp_watch(daemon_state.base);
    for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
        event_add(evsignal_new(daemon_state.base, signals[i], on_signal, NULL), NULL);
    }
    ev_closed = event_new(daemon_state.base, -1, 0, on_conn_closed, NULL);
    if (registry_active()) {
        event_add(event_new(daemon_state.base, registry_fd(), EV_READ, on_supervisor_gone, NULL),
                  NULL);
    }
    ev_respawn = event_new(daemon_state.base, -1, 0, on_lanes_respawn, NULL);
    daemon_state.ev_stopped = event_new(daemon_state.base, -1, 0, on_stopped, NULL);
    daemon_state.ev_grace = evtimer_new(daemon_state.base, on_grace_expired, NULL);

    lanes_init(set->lane_threads, LANE_IDLE_S, ev_respawn);
    wopt = (struct worker_options){
        .threads = inherited_fd >= 0 ? 1 : (unsigned)o->threads,
        .frame_timeout_s = set->frame_timeout_s,
        .output_timeout_s = set->output_timeout_s,
        .io_stall_ms = set->io_stall_ms,
        .on_conn_closed = ev_closed,
    };
    ret = workers_start(&wopt);
    if (ret < 0) {
        log_error("cannot start worker threads");
        return ret;
    }
    apply_daemon_settings(set);
    upgrade_init(argc, argv, daemon_state.base, ex);
    daemon_state.single = inherited_fd >= 0;
    if (o->takeover_fd >= 0) {
        /* Every step that can fail is behind: take the hand-over.  Not a
         * byte was read or written on what was handed over until here. */
        ret = upgrade_takeover_commit();
        if (ret < 0) {
            return ret;
        }
        upgrade_takeover_adopt(ex);
    } else if (inherited_fd >= 0) {
        struct ucred peer = {0};
        socklen_t len = sizeof(peer);

        getsockopt(inherited_fd, SOL_SOCKET, SO_PEERCRED, &peer, &len);
        log_info("serving %s on inherited socket %d", ex->dir, inherited_fd);
        workers_assign(inherited_fd, ex, &peer, NULL);
    }
    if (inherited_fd < 0 && service_start(daemon_state.base) < 0) {
        if (o->takeover_fd < 0) {
            return -EIO;
        }
        /* The connections taken over are this process's alone now:
         * ending would cost every guest its filesystem. */
        log_error("upgrade: cannot accept on every socket (see above); serving the "
                  "connections taken over");
    }
    {
        bool explicit;
        const char *path = control_socket_path(o, set, &explicit);

        if (path != NULL &&
            control_start(daemon_state.base, path, o->takeover_fd >= 0, &control_hooks) < 0) {
            if (explicit) {
                return -EIO;
            }
            log_warn("no control socket: virtfs-proxyctl cannot reach this daemon (set "
                     "control-socket in [daemon])");
        }
    }
    report_ready();
    sandbox_test_probe();
    if (o->takeover_fd >= 0) {
        upgrade_takeover_ready();
        service_claim_sockets();
    }
    if (registry_active() && !o->nodaemon && o->takeover_fd < 0) {
        /* The first serving process: the supervisor daemonized, and start-up
         * errors went to the terminal; from now on the log is syslog. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        log_setup(true, set->log_level);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
    /* Threads started above inherited the blocked mask: signals go to
     * this thread, whose loop handles them. */
    block_stop_signals(false);
    event_base_dispatch(daemon_state.base);
    if (daemon_state.handed_over) {
        /* The sockets and connections are the new process's now: leave
         * them as they are, and leave no thread with other credentials. */
        service_abandon();
        if (!daemon_state.fresh_restart) {
            /* (A fresh process finds the control socket as after a crash.) */
            control_stop();
        }
        if (lanes_stop(LANE_STOP_S) == 0) {
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
        return 0;
    }
    service_stop();
    control_stop();
    /* Threads stuck in a system call (a hung filesystem) are left to exit
     * with the process; the others are joined, so nothing is left running. */
    if (daemon_state.workers_stopped) {
        workers_join();
        if (lanes_stop(LANE_STOP_S) == 0) {
            /* Lanes changed credentials, which made the process
             * non-dumpable; with them gone, let leak checkers look. */
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
    }
    log_info("stopped");
    return 0;
}

/* The settings of a command-line start: one export, or none for -f. */
static struct settings *settings_from_options(const struct options *o)
{
    struct settings *set = settings_new();

    settings_override(set, o);
    set->log_level = o->log_level;
    if (o->socket != NULL) {
        struct export_settings *e = g_new0(struct export_settings, 1);

        e->name = g_strdup("default");
        e->path = g_strdup(o->path);
        e->socket = g_strdup(o->socket);
        e->uid = (uid_t)o->uid;
        e->gid = (gid_t)o->gid;
        e->allow_devices = o->allow_devices;
        e->readonly = o->readonly;
        e->allowed_uids = o->allowed_uids != NULL ? g_array_ref(o->allowed_uids) : NULL;
        e->allowed_gids = o->allowed_gids != NULL ? g_array_ref(o->allowed_gids) : NULL;
        e->uid_map = g_strdup(o->uid_map);
        e->gid_map = g_strdup(o->gid_map);
        e->xattr_map = g_strdup(o->xattr_map);
        g_ptr_array_add(set->exports, e);
    }
    return set;
}

int main(int argc, char **argv)
{
    struct export *ex = NULL;
    struct settings *set = NULL;
    struct options o;
    int ret = -EINVAL;

    /* The socket path appears before the event loop runs: hold the stop
     * signals until their handlers exist, or an early SIGTERM kills. */
    block_stop_signals(true);
    sandbox_early();
    parse_options(argc, argv, &o);
    daemon_state.opt = &o;
    log_setup(false, o.log_level);
    stats_init();
    if (o.supervised_reg >= 0) {
        int err = progress_attach(o.supervised_progress);

        if (err < 0) {
            log_error("--supervised: cannot map the progress table: %s", strerror(-err));
            goto out;
        }
        registry_init(o.supervised_reg);
    }
    if (o.takeover_fd >= 0 && upgrade_takeover_load((int)o.takeover_fd) < 0) {
        goto out;
    }
    /* Before anything opens a descriptor: systemd's start at 3. */
    if (o.takeover_fd < 0 && sdactivate_collect() < 0) {
        goto out;
    }
    keep_only_own_fds(&o);
    raise_fd_limit();
    if (o.config != NULL) {
        GError *error = NULL;

        set = settings_load(o.config, &error);
        if (set == NULL) {
            log_error("%s", error->message);
            g_error_free(error);
            goto out;
        }
        if (o.log_level_given) {
            set->log_level = o.log_level;
        }
        settings_override(set, &o);
        log_set_level(set->log_level);
        daemon_state.control_from_file = g_strdup(set->control_socket);
        snprintf(daemon_state.mode, sizeof(daemon_state.mode), "config %s", o.config);
    } else {
        set = settings_from_options(&o);
    }
    if (geteuid() != 0) {
        log_error("must run as root: it serves guests of every uid");
        goto out;
    }
    if (!o.no_supervisor && o.supervised_reg < 0 && o.takeover_fd < 0) {
        /* The options and the file are valid: the process started stays
         * as the supervisor, and the serving process is its child. */
        struct supervisor_options so = {
            .nodaemon = o.nodaemon,
            .log_level = (int)set->log_level,
            .single_fd = (int)o.fd,
            .nslots = o.fd >= 0 ? 1 : MIN(fd_limit_conns(), PROGRESS_MAX_SLOTS),
            .seccomp = (int)set->seccomp,
        };

        if (o.fd >= 0 && check_inherited_socket((int)o.fd) < 0) {
            goto out;
        }
        signal(SIGPIPE, SIG_IGN);
        settings_free(set);
        set = NULL;
        ret = supervisor_run(argc, argv, &so) == EXIT_SUCCESS ? 0 : -EIO;
        goto out;
    }
    if (o.takeover_fd >= 0) {
        upgrade_takeover_offer_sockets();
    }
    if (o.fd >= 0) {
        if (check_inherited_socket((int)o.fd) < 0 || (ex = ops_export_new(o.path)) == NULL) {
            goto out;
        }
        atomic_store(&ex->allow_devices, o.allow_devices);
        atomic_store(&ex->readonly, o.readonly);
        policy_set(ex, settings_policy(o.uid_map, o.gid_map, o.xattr_map, NULL));
        stats_export_register(ex, "default");
        snprintf(daemon_state.mode, sizeof(daemon_state.mode), "fd %ld (-f)", o.fd);
    } else {
        if (service_prepare(set) < 0 || sdactivate_finish(o.config) < 0) {
            goto out;
        }
        if (o.config == NULL) {
            snprintf(daemon_state.mode, sizeof(daemon_state.mode), "socket %s (-s)", o.socket);
        }
    }
    /* Modes from the guest are applied exactly, setuid bits included. */
    umask(0);
    signal(SIGPIPE, SIG_IGN);
    /* A process started by a live upgrade, or by a supervisor, is already
     * where it should be. */
    if (!o.nodaemon && o.takeover_fd < 0 && o.supervised_reg < 0) {
        if (daemon(0, 0) < 0) {
            log_error("daemon: %m");
            goto out;
        }
    }
    if (!o.nodaemon && (o.supervised_reg < 0 || o.takeover_fd >= 0)) {
        log_setup(true, set->log_level);
    }
    if (o.supervised_reg < 0) {
        /* No supervisor: the progress table is this process's own (each
         * connection's input area is in it all the same). */
        int err = progress_create(o.fd >= 0 ? 1 : MIN(fd_limit_conns(), PROGRESS_MAX_SLOTS));

        if (err < 0) {
            log_error("cannot make the progress table: %s", strerror(-err));
            goto out;
        }
    }
    /* Everything below runs with the reduced privileges, in every thread,
     * confined and filtered (before any thread starts: Landlock binds the
     * calling thread and the threads it makes). */
    if (ops_init() < 0 || caps_drop_daemon() < 0) {
        goto out;
    }
    daemon_state.seccomp = set->seccomp;
    daemon_state.confine = set->confine;
    {
        bool explicit;

        if (sandbox_confine(set->confine, set, o.fd >= 0 ? o.path : NULL,
                            control_socket_path(&o, set, &explicit), o.config) < 0 ||
            sandbox_seccomp_install(set->seccomp) < 0) {
            goto out;
        }
    }
    ret = run(argc, argv, &o, set, ex, (int)o.fd);
out:
    service_stop();
    if (ex != NULL) {
        ops_export_unref(ex);
    }
    settings_free(set);
    g_free(daemon_state.control_from_file);
    g_free(o.config);
    g_free(o.path);
    if (o.allowed_uids != NULL) {
        g_array_unref(o.allowed_uids);
    }
    if (o.allowed_gids != NULL) {
        g_array_unref(o.allowed_gids);
    }
    return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
