/* report.c - status, connections, stats and metrics (see report.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "registry.h"
#include "report.h"
#include "service.h"
#include "stats.h"
#include "tally.h"
#include "worker.h"

#define VM_NAME_MAX 64

/* ---- strings ------------------------------------------------------------- */

static void json_str(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, (char)*p);
        } else if (*p < 0x20 || *p == 0x7f) {
            g_string_append_printf(out, "\\u%04x", *p);
        } else {
            g_string_append_c(out, (char)*p);
        }
    }
    g_string_append_c(out, '"');
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_str(GString *out, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, *p);
        } else if (*p == '\n') {
            g_string_append(out, "\\n");
        } else {
            g_string_append_c(out, *p);
        }
    }
}

/* Text for people: whatever came from outside, C-escaped on one line. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    return log_escape(s, strlen(s), buf, cap);
}

static const char *errno_name(int err)
{
    const char *n = strerrorname_np(err);

    return n != NULL ? n : "unknown";
}

static void duration_text(GString *out, double ns)
{
    if (ns < 1e3) {
        g_string_append_printf(out, "%.0fns", ns);
    } else if (ns < 1e6) {
        g_string_append_printf(out, "%.1fus", ns / 1e3);
    } else if (ns < 1e9) {
        g_string_append_printf(out, "%.2fms", ns / 1e6);
    } else {
        g_string_append_printf(out, "%.2fs", ns / 1e9);
    }
}

static void uptime_text(GString *out, double s)
{
    unsigned long t = (unsigned long)s;

    if (t >= 86400) {
        g_string_append_printf(out, "%lud ", t / 86400);
    }
    g_string_append_printf(out, "%02lu:%02lu:%02lu", t / 3600 % 24, t / 60 % 60, t % 60);
}

char *report_vm_name(pid_t pid)
{
    char path[64], buf[16384];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    for (char *arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
        char *v = arg + strlen(arg) + 1;
        size_t len;

        if ((strcmp(arg, "-name") != 0 && strcmp(arg, "--name") != 0) || v >= buf + n) {
            continue;
        }
        /* QEMU's -name takes "NAME[,key=value...]" or "guest=NAME,...". */
        if (g_str_has_prefix(v, "guest=")) {
            v += strlen("guest=");
        } else if (strchr(v, '=') != NULL && strchr(v, '=') < strchrnul(v, ',')) {
            char *g = strstr(v, ",guest=");

            if (g == NULL) {
                return NULL;
            }
            v = g + strlen(",guest=");
        }
        len = strcspn(v, ",");
        return g_strndup(v, len < VM_NAME_MAX ? len : VM_NAME_MAX);
    }
    return NULL;
}

/* ---- status -------------------------------------------------------------- */

struct export_row {
    const char *name, *path, *socket;
    bool systemd;
};

static void collect_export(const char *name, const char *path, const char *socket, bool systemd,
                           void *arg)
{
    struct export_row row = {name, path, socket, systemd};

    g_array_append_val((GArray *)arg, row);
}

void report_status(GString *out, bool json, const struct report_process *p)
{
    static const char *const level_names[] = {"error", "warning", "info", "debug"};
    g_autoptr(GArray) rows = g_array_new(FALSE, FALSE, sizeof(struct export_row));
    double uptime = (double)(stats_now_ns() - stats_started_ns()) / 1e9;
    time_t started = (time_t)stats_started_epoch();
    char since[64], esc[3][512];
    struct tm tm;

    service_foreach_export(collect_export, rows);
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&started, &tm));
    if (json) {
        g_string_append_printf(out,
                               "{\"version\":\"%s\",\"pid\":%d,\"uptime_seconds\":%.3f,"
                               "\"started\":\"%s\",\"process_model\":{\"processes\":%d,"
                               "\"supervisor\":%s,\"supervisor_pid\":%d,\"io_threads\":%u},"
                               "\"mode\":",
                               PACKAGE_VERSION, (int)getpid(), uptime, since,
                               registry_active() ? 2 : 1, registry_active() ? "true" : "false",
                               registry_active() ? (int)getppid() : 0, workers_count());
        json_str(out, p->mode);
        g_string_append(out, ",\"control_socket\":");
        json_str(out, p->control_path);
        g_string_append_printf(out,
                               ",\"log_level\":\"%s\",\"counting\":%s,\"connections\":%u,"
                               "\"exports\":[",
                               level_names[log_get_level()], stats_enabled() ? "true" : "false",
                               workers_connections());
        for (guint i = 0; i < rows->len; i++) {
            const struct export_row *r = &g_array_index(rows, struct export_row, i);

            g_string_append(out, i > 0 ? ",{\"name\":" : "{\"name\":");
            json_str(out, r->name);
            g_string_append(out, ",\"path\":");
            json_str(out, r->path);
            g_string_append(out, ",\"socket\":");
            json_str(out, r->socket);
            g_string_append_printf(out, ",\"socket_owner\":\"%s\",\"connections\":%u}",
                                   r->systemd ? "systemd" : "daemon", tally_export(r->name));
        }
        g_string_append(out, "]}\n");
        return;
    }
    g_string_append_printf(out, "%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
    g_string_append_printf(out, "pid:            %d\n", (int)getpid());
    g_string_append(out, "uptime:         ");
    uptime_text(out, uptime);
    g_string_append_printf(out, " (since %s)\n", since);
    if (registry_active()) {
        g_string_append_printf(out,
                               "process model:  supervisor %d, and this serving process: "
                               "main thread (listeners, signals, control), %u I/O threads, "
                               "lane threads on demand\n",
                               (int)getppid(), workers_count());
    } else {
        g_string_append_printf(out,
                               "process model:  one process (no supervisor): main thread "
                               "(listeners, signals, control), %u I/O threads, lane threads "
                               "on demand\n",
                               workers_count());
    }
    g_string_append_printf(out, "mode:           %s\n", shown(p->mode, esc[0], sizeof(esc[0])));
    g_string_append_printf(out, "control socket: %s\n",
                           shown(p->control_path, esc[0], sizeof(esc[0])));
    g_string_append_printf(out, "log level:      %s\n", level_names[log_get_level()]);
    g_string_append_printf(out, "counting:       %s\n", stats_enabled() ? "on" : "off");
    g_string_append_printf(out, "connections:    %u\n", workers_connections());
    g_string_append_printf(out, "exports:        %u\n", rows->len);
    for (guint i = 0; i < rows->len; i++) {
        const struct export_row *r = &g_array_index(rows, struct export_row, i);

        g_string_append_printf(out, "  %s: %u connections, socket %s (%s), path %s\n",
                               shown(r->name, esc[0], sizeof(esc[0])), tally_export(r->name),
                               shown(r->socket, esc[1], sizeof(esc[1])),
                               r->systemd ? "systemd's" : "the daemon's",
                               shown(r->path, esc[2], sizeof(esc[2])));
    }
}

/* ---- connections ------------------------------------------------------------ */

void report_connections(GString *out, bool json)
{
    size_t n;
    g_autofree struct stats_conn_info *conns = stats_conns(&n);
    char esc[2][256];

    if (json) {
        g_string_append(out, "{\"connections\":[");
    } else {
        g_string_append_printf(out, "%-16s %8s %6s %-16s %10s %8s %12s %12s %9s %9s\n", "EXPORT",
                               "PID", "UID", "VM", "REQUESTS", "ERRORS", "BYTES-IN", "BYTES-OUT",
                               "IDLE-S", "AGE-S");
    }
    for (size_t i = 0; i < n; i++) {
        const struct stats_conn_info *c = &conns[i];
        g_autofree char *vm = report_vm_name(c->peer_pid);

        if (json) {
            g_string_append(out, i > 0 ? ",{\"export\":" : "{\"export\":");
            json_str(out, c->export_name);
            g_string_append_printf(out, ",\"peer_pid\":%d,\"peer_uid\":%u,\"vm\":",
                                   (int)c->peer_pid, (unsigned)c->peer_uid);
            if (vm != NULL) {
                json_str(out, vm);
            } else {
                g_string_append(out, "null");
            }
            g_string_append_printf(out,
                                   ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                                   ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                                   ",\"idle_seconds\":%.3f,\"age_seconds\":%.3f}",
                                   c->requests, c->errors, c->bytes_in, c->bytes_out, c->idle_s,
                                   c->age_s);
        } else {
            g_string_append_printf(out,
                                   "%-16s %8d %6u %-16s %10" PRIu64 " %8" PRIu64 " %12" PRIu64
                                   " %12" PRIu64 " %9.1f %9.1f\n",
                                   shown(c->export_name, esc[0], sizeof(esc[0])), (int)c->peer_pid,
                                   (unsigned)c->peer_uid,
                                   vm != NULL ? shown(vm, esc[1], sizeof(esc[1])) : "-",
                                   c->requests, c->errors, c->bytes_in, c->bytes_out, c->idle_s,
                                   c->age_s);
        }
    }
    if (json) {
        g_string_append(out, "]}\n");
    } else if (n == 0) {
        g_string_append(out, "(no connections)\n");
    }
}

/* ---- stats ---------------------------------------------------------------- */

void report_stats(GString *out, bool json)
{
    size_t n;
    struct stats_export *ex = stats_read(&n);
    char esc[256];

    if (json) {
        g_string_append_printf(out, "{\"counting\":%s,\"exports\":[",
                               stats_enabled() ? "true" : "false");
    } else if (!stats_enabled()) {
        g_string_append(out, "counting is off (VIRTFS_PROXYD_STATS=off)\n");
    }
    for (size_t e = 0; e < n; e++) {
        bool first = true;

        if (json) {
            g_string_append(out, e > 0 ? ",{\"name\":" : "{\"name\":");
            json_str(out, ex[e].name);
            g_string_append_printf(out, ",\"refused_peers\":%" PRIu64 ",\"types\":[",
                                   ex[e].refused_peers);
        } else {
            g_string_append_printf(out, "export %s\n", shown(ex[e].name, esc, sizeof(esc)));
            if (ex[e].refused_peers > 0) {
                g_string_append_printf(out,
                                       "  refused peers: %" PRIu64
                                       " (allowed-peer-uids, allowed-peer-gids)\n",
                                       ex[e].refused_peers);
            }
            g_string_append_printf(out, "  %-13s %10s %8s %10s %10s %10s  %s\n", "TYPE",
                                   "REQUESTS", "ERRORS", "P50", "P99", "MAX", "ERRNO");
        }
        for (uint32_t t = 0; t < T_NTYPES; t++) {
            const struct stats_cell *c = &ex[e].types[t];

            if (c->count == 0) {
                continue;
            }
            if (json) {
                g_string_append_printf(out,
                                       "%s{\"type\":\"%s\",\"requests\":%" PRIu64
                                       ",\"errors\":%" PRIu64 ",\"errors_by_errno\":{",
                                       first ? "" : ",", proto_type_name(t), c->count, c->errors);
                for (unsigned int i = 0; i < STATS_ERRNO_SLOTS && c->errs[i].err != 0; i++) {
                    g_string_append_printf(out, "%s\"%s\":%" PRIu64, i > 0 ? "," : "",
                                           errno_name(c->errs[i].err), c->errs[i].count);
                }
                if (c->err_other > 0) {
                    g_string_append_printf(out, "%s\"other\":%" PRIu64,
                                           c->errs[0].err != 0 ? "," : "", c->err_other);
                }
                g_string_append_printf(
                    out,
                    "},\"latency_seconds\":{\"p50\":%.9f,\"p99\":%.9f,\"max\":%.9f,"
                    "\"sum\":%.9f},\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 "}",
                    stats_quantile_ns(c, 0.5) / 1e9, stats_quantile_ns(c, 0.99) / 1e9,
                    (double)c->max_ns / 1e9, (double)c->sum_ns / 1e9, c->bytes_in, c->bytes_out);
            } else {
                GString *p50 = g_string_new(NULL), *p99 = g_string_new(NULL),
                        *max = g_string_new(NULL);

                duration_text(p50, stats_quantile_ns(c, 0.5));
                duration_text(p99, stats_quantile_ns(c, 0.99));
                duration_text(max, (double)c->max_ns);
                g_string_append_printf(out, "  %-13s %10" PRIu64 " %8" PRIu64 " %10s %10s %10s ",
                                       proto_type_name(t), c->count, c->errors, p50->str,
                                       p99->str, max->str);
                for (unsigned int i = 0; i < STATS_ERRNO_SLOTS && c->errs[i].err != 0; i++) {
                    g_string_append_printf(out, " %s:%" PRIu64, errno_name(c->errs[i].err),
                                           c->errs[i].count);
                }
                if (c->err_other > 0) {
                    g_string_append_printf(out, " other:%" PRIu64, c->err_other);
                }
                g_string_append_c(out, '\n');
                g_string_free(p50, TRUE);
                g_string_free(p99, TRUE);
                g_string_free(max, TRUE);
            }
            first = false;
        }
        if (json) {
            g_string_append(out, "]}");
        } else if (first) {
            g_string_append(out, "  (no requests)\n");
        }
    }
    if (json) {
        g_string_append(out, "]}\n");
    } else if (n == 0) {
        g_string_append(out, "(no exports)\n");
    }
    stats_free(ex, n);
}

/* ---- metrics --------------------------------------------------------------- */

/* One emitter for both forms: the Prometheus text format, or JSON with the
 * same families and samples. */
struct emitter {
    GString *out;
    bool json;
    bool first_family, first_sample;
};

static void family(struct emitter *m, const char *name, const char *type, const char *help)
{
    if (m->json) {
        if (!m->first_family) {
            g_string_append(m->out, "]},");
        }
        g_string_append_printf(m->out,
                               "{\"name\":\"%s\",\"type\":\"%s\",\"help\":\"%s\",\"samples\":[",
                               name, type, help);
    } else {
        g_string_append_printf(m->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    }
    m->first_family = false;
    m->first_sample = true;
}

/* labels: name, value pairs, NULL-terminated. */
static void sample(struct emitter *m, const char *name, const char *const *labels,
                   const char *value)
{
    if (m->json) {
        g_string_append_printf(m->out, "%s{\"name\":\"%s\",\"labels\":{",
                               m->first_sample ? "" : ",", name);
        for (size_t i = 0; labels != NULL && labels[i] != NULL; i += 2) {
            g_string_append_printf(m->out, "%s\"%s\":", i > 0 ? "," : "", labels[i]);
            json_str(m->out, labels[i + 1]);
        }
        g_string_append_printf(m->out, "},\"value\":%s}", value);
    } else {
        g_string_append(m->out, name);
        for (size_t i = 0; labels != NULL && labels[i] != NULL; i += 2) {
            g_string_append_printf(m->out, "%s%s=\"", i > 0 ? "," : "{", labels[i]);
            prom_str(m->out, labels[i + 1]);
            g_string_append_c(m->out, '"');
        }
        if (labels != NULL && labels[0] != NULL) {
            g_string_append_c(m->out, '}');
        }
        g_string_append_printf(m->out, " %s\n", value);
    }
    m->first_sample = false;
}

static void sample_u64(struct emitter *m, const char *name, const char *const *labels,
                       uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    sample(m, name, labels, buf);
}

static void sample_f(struct emitter *m, const char *name, const char *const *labels, double v)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "%.9g", v);
    sample(m, name, labels, buf);
}

typedef void (*cell_fn)(struct emitter *m, const char *export, const char *type,
                        const struct stats_cell *c);

static void each_cell(struct emitter *m, const struct stats_export *ex, size_t n, cell_fn fn)
{
    for (size_t e = 0; e < n; e++) {
        for (uint32_t t = 0; t < T_NTYPES; t++) {
            if (ex[e].types[t].count > 0) {
                fn(m, ex[e].name, proto_type_name(t), &ex[e].types[t]);
            }
        }
    }
}

static void cell_requests(struct emitter *m, const char *export, const char *type,
                          const struct stats_cell *c)
{
    const char *labels[] = {"export", export, "type", type, NULL};

    sample_u64(m, "virtfs_proxyd_requests_total", labels, c->count);
}

static void cell_errors(struct emitter *m, const char *export, const char *type,
                        const struct stats_cell *c)
{
    for (unsigned int i = 0; i < STATS_ERRNO_SLOTS && c->errs[i].err != 0; i++) {
        const char *labels[] = {"export", export, "type", type,
                                "errno",  errno_name(c->errs[i].err), NULL};

        sample_u64(m, "virtfs_proxyd_request_errors_total", labels, c->errs[i].count);
    }
    if (c->err_other > 0) {
        const char *labels[] = {"export", export, "type", type, "errno", "other", NULL};

        sample_u64(m, "virtfs_proxyd_request_errors_total", labels, c->err_other);
    }
}

static void cell_latency(struct emitter *m, const char *export, const char *type,
                         const struct stats_cell *c)
{
    uint64_t cum = 0;
    char le[32];

    for (unsigned int i = 0; i < STATS_NBUCKETS; i++) {
        const char *labels[] = {"export", export, "type", type, "le", le, NULL};

        cum += c->buckets[i];
        if (i < STATS_NBUCKETS - 1) {
            snprintf(le, sizeof(le), "%.9g", (double)stats_bucket_le_ns[i] / 1e9);
        } else {
            strcpy(le, "+Inf");
        }
        sample_u64(m, "virtfs_proxyd_request_duration_seconds_bucket", labels, cum);
    }
    const char *labels[] = {"export", export, "type", type, NULL};

    sample_f(m, "virtfs_proxyd_request_duration_seconds_sum", labels, (double)c->sum_ns / 1e9);
    sample_u64(m, "virtfs_proxyd_request_duration_seconds_count", labels, c->count);
}

static void cell_bytes_in(struct emitter *m, const char *export, const char *type,
                          const struct stats_cell *c)
{
    const char *labels[] = {"export", export, "type", type, NULL};

    sample_u64(m, "virtfs_proxyd_received_bytes_total", labels, c->bytes_in);
}

static void cell_bytes_out(struct emitter *m, const char *export, const char *type,
                           const struct stats_cell *c)
{
    const char *labels[] = {"export", export, "type", type, NULL};

    sample_u64(m, "virtfs_proxyd_sent_bytes_total", labels, c->bytes_out);
}

void report_metrics(GString *out, bool json)
{
    struct emitter m = {.out = out, .json = json, .first_family = true};
    g_autoptr(GArray) rows = g_array_new(FALSE, FALSE, sizeof(struct export_row));
    const char *version[] = {"version", PACKAGE_VERSION, NULL};
    size_t n;
    struct stats_export *ex = stats_read(&n);

    service_foreach_export(collect_export, rows);
    if (json) {
        g_string_append(out, "{\"metrics\":[");
    }
    family(&m, "virtfs_proxyd_build_info", "gauge", "The running version (always 1).");
    sample(&m, "virtfs_proxyd_build_info", version, "1");
    family(&m, "virtfs_proxyd_start_time_seconds", "gauge",
           "When the daemon started, in seconds since the epoch.");
    sample_f(&m, "virtfs_proxyd_start_time_seconds", NULL, stats_started_epoch());
    family(&m, "virtfs_proxyd_io_threads", "gauge", "I/O threads started.");
    sample_u64(&m, "virtfs_proxyd_io_threads", NULL, workers_count());
    family(&m, "virtfs_proxyd_connections", "gauge", "Open connections by export.");
    for (guint i = 0; i < rows->len; i++) {
        const struct export_row *r = &g_array_index(rows, struct export_row, i);
        const char *labels[] = {"export", r->name, NULL};

        sample_u64(&m, "virtfs_proxyd_connections", labels, tally_export(r->name));
    }
    family(&m, "virtfs_proxyd_refused_peers_total", "counter",
           "Connections refused by an export's allowed-peer-uids and allowed-peer-gids.");
    for (size_t e = 0; e < n; e++) {
        const char *labels[] = {"export", ex[e].name, NULL};

        sample_u64(&m, "virtfs_proxyd_refused_peers_total", labels, ex[e].refused_peers);
    }
    family(&m, "virtfs_proxyd_requests_total", "counter",
           "Requests answered, by export and request type.");
    each_cell(&m, ex, n, cell_requests);
    family(&m, "virtfs_proxyd_request_errors_total", "counter",
           "Requests answered with an error, by export, request type and errno.");
    each_cell(&m, ex, n, cell_errors);
    family(&m, "virtfs_proxyd_request_duration_seconds", "histogram",
           "Time from a complete request to its reply being sent.");
    each_cell(&m, ex, n, cell_latency);
    family(&m, "virtfs_proxyd_received_bytes_total", "counter",
           "Request bytes received (headers included), by export and request type.");
    each_cell(&m, ex, n, cell_bytes_in);
    family(&m, "virtfs_proxyd_sent_bytes_total", "counter",
           "Reply bytes sent (headers included), by export and request type.");
    each_cell(&m, ex, n, cell_bytes_out);
    if (json) {
        g_string_append(out, "]}]}\n");
    }
    stats_free(ex, n);
}
