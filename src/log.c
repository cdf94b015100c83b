/* log.c - messages go to stderr in the foreground and to syslog (LOG_DAEMON,
 * with a real priority per level) when daemonized. */
#include "config.h"

#include <errno.h>
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
static atomic_int log_threshold = LOG_LEVEL_INFO; /* a reload may change it */

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

void log_setup(bool use_syslog, enum log_level level)
{
    log_to_syslog = use_syslog;
    log_set_level(level);
    if (use_syslog) {
        openlog(PACKAGE_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_threshold);
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
    if (log_to_syslog) {
        syslog(levels[level].priority, "%s", text);
        return;
    }
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, PACKAGE_NAME ": %s: %s\n", levels[level].name, text);
}
