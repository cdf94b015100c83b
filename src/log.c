/* log.c - messages go to stderr in the foreground, to syslog (LOG_DAEMON,
 * with a real priority per level) when daemonized, and to the journal with
 * structured fields when systemd's journal is our stderr (see log.h). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <unistd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static const struct {
    const char *name;
    int priority;
} levels[] = {
    [LOG_LEVEL_ERROR] = {"error", LOG_ERR},
    [LOG_LEVEL_WARNING] = {"warning", LOG_WARNING},
    [LOG_LEVEL_INFO] = {"info", LOG_INFO},
    [LOG_LEVEL_DEBUG] = {"debug", LOG_DEBUG},
};

static bool log_to_syslog;
static bool log_journal;       /* decided at the first log_setup */
static bool writer_installed;
static __thread const struct log_ctx *request_ctx;
static atomic_int log_threshold = LOG_LEVEL_INFO; /* a reload may change it */
static void (*log_sink)(enum log_level level, const char *line, void *arg);
static void *log_sink_arg;
static uint64_t (*log_clock)(void);

/* Rate limiting of guest-triggered lines: one lock for every limiter and the
 * global cap.  These lines are rare by construction (at most a few per
 * second get through), so the lock is never worth avoiding. */
static pthread_mutex_t guest_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_limit guest_global;

int log_parse_level(const char *name, enum log_level *level)
{
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(name, levels[i].name) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void log_write_text(enum log_level level, const char *text);

static enum log_level level_of_priority(const char *priority)
{
    switch (priority != NULL ? priority[0] : '6') {
    case '0':
    case '1':
    case '2':
    case '3':
        return LOG_LEVEL_ERROR;
    case '4':
    case '5':
        return LOG_LEVEL_WARNING;
    case '7':
        return LOG_LEVEL_DEBUG;
    default:
        return LOG_LEVEL_INFO;
    }
}

/* The one writer of every line, ours and glib's own. */
static GLogWriterOutput log_writer(GLogLevelFlags flags, const GLogField *fields, gsize n,
                                   gpointer user_data)
{
    const char *message = NULL, *priority = NULL;

    if (log_journal && log_sink == NULL &&
        g_log_writer_journald(flags, fields, n, user_data) == G_LOG_WRITER_HANDLED) {
        return G_LOG_WRITER_HANDLED;
    }
    for (gsize i = 0; i < n; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0) {
            message = fields[i].value;
        } else if (strcmp(fields[i].key, "PRIORITY") == 0 && fields[i].length < 0) {
            priority = fields[i].value;
        }
    }
    if (message != NULL) {
        log_write_text(level_of_priority(priority), message);
    }
    return G_LOG_WRITER_HANDLED;
}

bool log_to_journal(void)
{
    return log_journal;
}

void log_setup(bool use_syslog, enum log_level level)
{
    if (!writer_installed) {
        /* Before daemon() replaces stderr: systemd's stream is the sign. */
        log_journal = g_log_writer_is_journald(STDERR_FILENO);
        g_log_set_writer_func(log_writer, NULL, NULL);
        writer_installed = true;
    }
    log_to_syslog = use_syslog && !log_journal;
    log_set_level(level);
    if (log_to_syslog) {
        openlog(PACKAGE_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_threshold);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_threshold);
}

void log_set_sink(void (*sink)(enum log_level level, const char *line, void *arg), void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

void log_set_clock(uint64_t (*now_ms)(void))
{
    log_clock = now_ms;
}

void log_request_enter(const struct log_ctx *ctx)
{
    request_ctx = ctx;
}

void log_request_leave(void)
{
    request_ctx = NULL;
}

/* Through glib's structured logging, with the fields of ctx (or of the
 * request the thread runs). */
static void log_write_ctx(enum log_level level, const char *text, const struct log_ctx *ctx)
{
    static const char *const priorities[] = {"3", "4", "6", "7"};
    static const GLogLevelFlags glib_levels[] = {G_LOG_LEVEL_CRITICAL, G_LOG_LEVEL_WARNING,
                                                 G_LOG_LEVEL_INFO, G_LOG_LEVEL_DEBUG};
    char pid[16], err[16];
    GLogField f[9];
    gsize n = 0;

    if (!writer_installed || log_sink != NULL) {
        log_write_text(level, text);
        return;
    }
    if (ctx == NULL) {
        ctx = request_ctx;
    }
    f[n++] = (GLogField){"MESSAGE", text, -1};
    f[n++] = (GLogField){"PRIORITY", priorities[level], -1};
    f[n++] = (GLogField){"SYSLOG_IDENTIFIER", PACKAGE_NAME, -1};
    if (ctx != NULL) {
        if (ctx->export != NULL) {
            f[n++] = (GLogField){"EXPORT", ctx->export, -1};
        }
        if (ctx->peer_pid > 0) {
            snprintf(pid, sizeof(pid), "%d", ctx->peer_pid);
            f[n++] = (GLogField){"PEER_PID", pid, -1};
            f[n++] = (GLogField){"OBJECT_PID", pid, -1};
        }
        if (ctx->request != NULL) {
            f[n++] = (GLogField){"REQUEST", ctx->request, -1};
        }
        if (ctx->err > 0) {
            snprintf(err, sizeof(err), "%d", ctx->err);
            f[n++] = (GLogField){"ERRNO", err, -1};
        }
    }
    g_log_structured_array(glib_levels[level], f, n);
}

static void log_write(enum log_level level, const char *text)
{
    log_write_ctx(level, text, NULL);
}

static void log_write_text(enum log_level level, const char *text)
{
    if (log_sink != NULL) {
        log_sink(level, text, log_sink_arg);
    } else if (log_to_syslog) {
        syslog(levels[level].priority, "%s", text);
    } else {
        /* One fprintf per line keeps lines from different threads whole. */
        fprintf(stderr, PACKAGE_NAME ": %s: %s\n", levels[level].name, text);
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (!log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_write(level, text);
}

void log_ctx_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (!log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_write_ctx(level, text, ctx);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    if (log_clock != NULL) {
        return log_clock();
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The generic cell rate algorithm: lim->tat_ms is the theoretical arrival
 * time of the next line; a line may come up to (burst - 1) intervals early.
 * One number per limiter, and zero means a full burst.  Returns whether a
 * line may go now, and sets *tat to commit if it does. */
static bool gcra_allows(const struct log_limit *lim, uint64_t now, unsigned int burst,
                        uint64_t interval, uint64_t *tat)
{
    uint64_t t = lim->tat_ms > now ? lim->tat_ms : now;

    if (t - now > (uint64_t)(burst - 1) * interval) {
        return false;
    }
    *tat = t + interval;
    return true;
}

static void log_vguest(struct log_limit *lim, enum log_level level, const struct log_ctx *ctx,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

void log_guest(struct log_limit *lim, enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vguest(lim, level, NULL, fmt, ap);
    va_end(ap);
}

void log_guest_ctx(struct log_limit *lim, enum log_level level, const struct log_ctx *ctx,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vguest(lim, level, ctx, fmt, ap);
    va_end(ap);
}

static void log_vguest(struct log_limit *lim, enum log_level level, const struct log_ctx *ctx,
                       const char *fmt, va_list ap)
{
    char text[1024];
    char global_note[128] = "";
    uint64_t now, tat, global_tat;
    int n;

    if (!log_enabled(level)) {
        return;
    }
    pthread_mutex_lock(&guest_lock);
    now = now_ms();
    if (!gcra_allows(lim, now, LOG_GUEST_BURST, LOG_GUEST_INTERVAL_MS, &tat)) {
        lim->suppressed++;
        pthread_mutex_unlock(&guest_lock);
        return;
    }
    if (!gcra_allows(&guest_global, now, LOG_GUEST_GLOBAL_BURST, LOG_GUEST_GLOBAL_INTERVAL_MS,
                     &global_tat)) {
        /* Not the limiter's doing: it keeps its share for later. */
        guest_global.suppressed++;
        pthread_mutex_unlock(&guest_lock);
        return;
    }
    lim->tat_ms = tat;
    guest_global.tat_ms = global_tat;
    if (guest_global.suppressed > 0) {
        snprintf(global_note, sizeof(global_note),
                 "%u guest-triggered lines suppressed (more than %d per second from all guests)",
                 guest_global.suppressed, 1000 / LOG_GUEST_GLOBAL_INTERVAL_MS);
        guest_global.suppressed = 0;
    }
    n = vsnprintf(text, sizeof(text), fmt, ap);
    if (lim->suppressed > 0) {
        size_t used = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;

        snprintf(text + used, sizeof(text) - used, " (%u similar lines suppressed)",
                 lim->suppressed);
        lim->suppressed = 0;
    }
    /* Written under the lock, so that the summary precedes the line. */
    if (global_note[0] != '\0') {
        log_write(LOG_LEVEL_WARNING, global_note);
    }
    log_write_ctx(level, text, ctx);
    pthread_mutex_unlock(&guest_lock);
}

unsigned int log_limit_take_suppressed(struct log_limit *lim)
{
    unsigned int n;

    pthread_mutex_lock(&guest_lock);
    n = lim->suppressed;
    lim->suppressed = 0;
    pthread_mutex_unlock(&guest_lock);
    return n;
}

/* The escape for one byte; returns its length (at most 4). */
static size_t escape_byte(unsigned char c, char esc[5])
{
    static const char hex[] = "0123456789abcdef";
    const char *named = NULL;

    switch (c) {
    case '\\':
        named = "\\\\";
        break;
    case '"':
        named = "\\\"";
        break;
    case '\'':
        named = "\\'";
        break;
    case '\n':
        named = "\\n";
        break;
    case '\r':
        named = "\\r";
        break;
    case '\t':
        named = "\\t";
        break;
    default:
        if (c < 0x20 || c > 0x7e) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 0xf];
            esc[4] = '\0';
            return 4;
        }
        esc[0] = (char)c;
        esc[1] = '\0';
        return 1;
    }
    strcpy(esc, named);
    return 2;
}

char *log_escape(const char *s, size_t len, char *out, size_t cap)
{
    static const char more[] = "...";
    size_t total = 0, o = 0, room;
    char esc[5];

    if (cap == 0) {
        return out;
    }
    for (size_t i = 0; i < len; i++) {
        total += escape_byte((unsigned char)s[i], esc);
    }
    /* Cut short: keep room for the marker where there is any. */
    room = total < cap ? cap - 1 : cap > sizeof(more) ? cap - sizeof(more) : cap - 1;
    for (size_t i = 0; i < len; i++) {
        size_t n = escape_byte((unsigned char)s[i], esc);

        if (o + n > room) {
            break;
        }
        memcpy(out + o, esc, n);
        o += n;
    }
    if (total >= cap && cap > sizeof(more)) {
        memcpy(out + o, more, sizeof(more) - 1);
        o += sizeof(more) - 1;
    }
    out[o] = '\0';
    return out;
}
