/* log.h - one logging front end for stderr (-n) and syslog (daemon).
 *
 * A line a guest can cause (a refused peer, a malformed request, a refused
 * device node...) goes through log_guest: a guest that repeats the cause a
 * million times must not write a million lines, nor drown the lines of
 * other guests.  Whatever such a line quotes from the guest (a path, a name)
 * goes through log_escape first, so that it cannot forge lines or smuggle
 * terminal escapes into the log.
 */
#ifndef VP_LOG_H
#define VP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Returns 0, or -EINVAL for a name other than error/warning/info/debug. */
int log_parse_level(const char *name, enum log_level *level);
void log_setup(bool use_syslog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
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

/* Guest-triggered lines.  Each limiter lets LOG_GUEST_BURST lines through,
 * then one per LOG_GUEST_INTERVAL_MS; on top of that all limiters together
 * get LOG_GUEST_GLOBAL_BURST lines, then one per LOG_GUEST_GLOBAL_INTERVAL_MS,
 * so that many guests (or one with many connections) cannot flood the log
 * either.  A dropped line is counted: the limiter's next line that gets
 * through ends with "(N similar lines suppressed)", and lines dropped by the
 * global cap are reported in a line of their own once it lets one through. */
#define LOG_GUEST_BURST 10
#define LOG_GUEST_INTERVAL_MS 1000
#define LOG_GUEST_GLOBAL_BURST 100
#define LOG_GUEST_GLOBAL_INTERVAL_MS 50

/* One per source of lines (a connection, a listener); zero-initialised
 * means "nothing logged yet".  Any thread may use any limiter. */
struct log_limit {
    uint64_t tat_ms;          /* when the limiter is back to a full burst */
    unsigned int suppressed;  /* lines dropped since the last one logged */
};

void log_guest(struct log_limit *lim, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns the lines lim dropped since it last spoke, and forgets them: for
 * a last word when the source goes away ("... 37 lines suppressed"). */
unsigned int log_limit_take_suppressed(struct log_limit *lim);

/* Copies len bytes of s (NULs included) into out with C escapes: \\ \" \'
 * \n \r \t, and \xHH for every other byte below 0x20 or above 0x7e.  Always
 * NUL-terminates (cap >= 1); what does not fit is cut at a whole escape and
 * marked with "...".  Returns out. */
char *log_escape(const char *s, size_t len, char *out, size_t cap);

/* For tests: send lines to sink instead of stderr or syslog (NULL: back to
 * normal), and read the time from now_ms (NULL: CLOCK_MONOTONIC). */
void log_set_sink(void (*sink)(enum log_level level, const char *line, void *arg), void *arg);
void log_set_clock(uint64_t (*now_ms)(void));

#endif
