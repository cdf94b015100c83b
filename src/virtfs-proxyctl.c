/* virtfs-proxyctl.c - ask a running virtfs-proxyd over its control socket
 * (protocol v1, control.h; manual virtfs-proxyctl(8)). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "settings.h"

enum {
    EXIT_DAEMON_ERROR = 1, /* the daemon answered with an error */
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3, /* no daemon, no complete answer */
};

#define MAX_REPLY (64u << 20)
#define DEFAULT_TIMEOUT_S 10
#define UPGRADE_TIMEOUT_S 60 /* the daemon gives up by itself within 20 s */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: virtfs-proxyctl [-c CONFIG | --control PATH] [--json] COMMAND\n"
            "Ask a running virtfs-proxyd.\n"
            "\n"
            "Commands:\n"
            "  status         version, pid, uptime, process model, exports, connections\n"
            "  connections    each connection: export, peer pid and uid, VM name,\n"
            "                 requests, errors, bytes, idle time\n"
            "  stats          per export and request type: count, errors by errno,\n"
            "                 latency p50/p99/max\n"
            "  metrics        the same in the Prometheus text exposition format\n"
            "  reload         re-read the configuration; fails if it is rejected\n"
            "  upgrade        live upgrade; waits for the outcome (exit 0: upgraded)\n"
            "  log-level [L]  show, or set to error, warning, info or debug\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE    the daemon's configuration: its [daemon] control-socket\n"
            "                       (default " SETTINGS_DEFAULT_CONTROL_SOCKET ")\n"
            "  -s, --control PATH   the control socket itself\n"
            "  -j, --json           JSON output (status, connections, stats, metrics)\n"
            "  -t, --timeout S      seconds to wait for the answer (default %d; upgrade %d)\n"
            "      --version        print the version and exit\n"
            "  -h, --help           print this help and exit\n"
            "\n"
            "Exit status: 0 done, 1 the daemon refused or failed, 2 bad usage,\n"
            "3 no daemon answered.\n",
            DEFAULT_TIMEOUT_S, UPGRADE_TIMEOUT_S);
}

static void G_GNUC_NORETURN die(int status, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void die(int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "virtfs-proxyctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (status == EXIT_USAGE) {
        fprintf(stderr, "Try 'virtfs-proxyctl --help' for more information.\n");
    }
    exit(status);
}

/* The control socket named by the daemon's configuration file.  Only that
 * key is read: the exports are the daemon's business. */
static char *path_from_config(const char *file)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    char *path;

    if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &error)) {
        die(EXIT_USAGE, "%s: %s", file, error->message);
    }
    path = g_key_file_get_string(kf, "daemon", "control-socket", NULL);
    if (path == NULL) {
        return g_strdup(SETTINGS_DEFAULT_CONTROL_SOCKET);
    }
    g_strstrip(path);
    if (path[0] == '\0') {
        die(EXIT_USAGE, "%s: [daemon] control-socket is empty: the daemon has no control "
                        "socket",
            file);
    }
    return path;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends request and returns everything the daemon wrote until it closed.
 * The reply is made once connected and freed before any die(): at exit a
 * leak checker sees nothing of it. */
static GString *ask(const char *path, const char *request, int timeout_s)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    GString *reply;
    size_t off = 0, len = strlen(request);
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        die(EXIT_USAGE, "%s: path too long for a socket", path);
    }
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int err = errno;

        die(EXIT_UNREACHABLE, "cannot connect to %s: %s%s", path, strerror(err),
            err == EACCES || err == EPERM ? " (the control socket is root's)"
            : err == ENOENT || err == ECONNREFUSED ? " (is virtfs-proxyd running, with this "
                                                     "control socket?)"
                                                   : "");
    }
    reply = g_string_new(NULL);
    while (off < len) {
        ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; /* refused at once: the reply says why */
        }
        off += (size_t)n;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        char buf[65536];
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            g_string_free(reply, TRUE);
            die(EXIT_UNREACHABLE, "no complete answer from %s within %d s", path, timeout_s);
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != ECONNRESET) {
            int err = errno;

            g_string_free(reply, TRUE);
            die(EXIT_UNREACHABLE, "%s: %s", path, strerror(err));
        }
        if (n <= 0) {
            break;
        }
        if (reply->len + (size_t)n > MAX_REPLY) {
            g_string_free(reply, TRUE);
            die(EXIT_UNREACHABLE, "%s: answer larger than %u bytes", path, MAX_REPLY);
        }
        g_string_append_len(reply, buf, n);
    }
    close(fd);
    return reply;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"control", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},         {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const char *const commands[] = {"status", "connections", "stats",     "metrics",
                                           "reload", "upgrade",     "log-level", "help",
                                           NULL};
    static const char *const read_only[] = {"status", "connections", "stats", "metrics", NULL};
    const char *config = NULL, *control = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GString) request = g_string_new(CONTROL_VERSION);
    g_autoptr(GString) reply = NULL;
    bool json = false;
    int timeout_s = 0, c;
    char *nl;

    while ((c = getopt_long(argc, argv, "+c:s:jt:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 's':
            control = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*end != '\0' || v < 1 || v > 3600) {
                die(EXIT_USAGE, "--timeout: '%s' is not a number of seconds from 1 to 3600",
                    optarg);
            }
            timeout_s = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("virtfs-proxyctl " PACKAGE_VERSION "\n");
            return 0;
        default:
            fprintf(stderr, "Try 'virtfs-proxyctl --help' for more information.\n");
            return EXIT_USAGE;
        }
    }
    if (config != NULL && control != NULL) {
        die(EXIT_USAGE, "--config and --control exclude each other");
    }
    if (optind >= argc) {
        die(EXIT_USAGE, "no command");
    }
    if (!g_strv_contains(commands, argv[optind])) {
        die(EXIT_USAGE, "unknown command '%s'", argv[optind]);
    }
    /* The options may also follow the command, as in "stats --json". */
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
            json = true;
            continue;
        }
        if (strchr(argv[i], ' ') != NULL || strchr(argv[i], '\n') != NULL) {
            die(EXIT_USAGE, "'%s': arguments are single words", argv[i]);
        }
        g_string_append_printf(request, " %s", argv[i]);
    }
    if (json && !g_strv_contains(read_only, argv[optind])) {
        die(EXIT_USAGE, "--json is for status, connections, stats and metrics");
    }
    if (json) {
        g_string_append(request, " --json");
    }
    g_string_append_c(request, '\n');
    if (request->len > CONTROL_MAX_REQUEST) {
        die(EXIT_USAGE, "request too long");
    }
    if (timeout_s == 0) {
        timeout_s = strcmp(argv[optind], "upgrade") == 0 ? UPGRADE_TIMEOUT_S : DEFAULT_TIMEOUT_S;
    }
    path = control != NULL ? g_strdup(control)
           : config != NULL ? path_from_config(config)
                            : g_strdup(SETTINGS_DEFAULT_CONTROL_SOCKET);
    reply = ask(path, request->str, timeout_s);
    nl = memchr(reply->str, '\n', reply->len);
    if (nl == NULL) {
        die(EXIT_UNREACHABLE, "%s closed without an answer", path);
    }
    *nl = '\0';
    if (strcmp(reply->str, CONTROL_VERSION " ok") == 0) {
        fwrite(nl + 1, 1, reply->len - (size_t)(nl + 1 - reply->str), stdout);
        return fflush(stdout) == 0 ? 0 : EXIT_UNREACHABLE;
    }
    if (g_str_has_prefix(reply->str, CONTROL_VERSION " error ")) {
        const char *what = reply->str + strlen(CONTROL_VERSION " error ");
        const char *msg = strchr(what, ' ');

        fprintf(stderr, "virtfs-proxyctl: %s (%.*s)\n", msg != NULL ? msg + 1 : what,
                msg != NULL ? (int)(msg - what) : 0, what);
        return EXIT_DAEMON_ERROR;
    }
    die(EXIT_UNREACHABLE, "%s: unexpected answer '%.80s'", path, reply->str);
}
