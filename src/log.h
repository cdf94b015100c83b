/* log.h - one logging front end for stderr (-n) and syslog (daemon). */
#ifndef VP_LOG_H
#define VP_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Returns 0, or -EINVAL for a name other than error/warning/info/debug. */
int log_parse_level(const char *name, enum log_level *level);
void log_setup(bool use_syslog, enum log_level level);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG)) {                                                        \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

#endif
