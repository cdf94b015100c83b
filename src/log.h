/* log.h - one logging front end for stderr (-n), syslog (daemon) and, when
 * systemd started the daemon, the journal.
 *
 * Every line goes through glib's structured logging (g_log_structured_array)
 * to one writer.  When stderr is systemd's journal stream ($JOURNAL_STREAM,
 * g_log_writer_is_journald) the writer is g_log_writer_journald, and a line
 * carries, besides MESSAGE and PRIORITY, what it is about: EXPORT (the
 * export's name), PEER_PID and OBJECT_PID (the QEMU process: journald adds
 * its OBJECT_COMM, OBJECT_CMDLINE...), REQUEST (the request type) and ERRNO,
 * so `journalctl REQUEST=lstat EXPORT=share` finds them.  Lines logged while
 * an I/O thread runs a request take those fields from the thread's request
 * context (log_request_enter); others may pass a struct log_ctx.  Elsewhere
 * the same lines go to stderr or syslog as text.
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

/* What a line is about, for the journal's fields; any member may be unset
 * (NULL, 0). */
struct log_ctx {
    const char *export;
    int peer_pid;
    const char *request;
    int err; /* positive errno */
};
void log_ctx_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The calling thread runs the request ctx describes until log_request_leave:
 * its lines carry those fields.  ctx must live until then. */
void log_request_enter(const struct log_ctx *ctx);
void log_request_leave(void);
/* Whether lines go to the journal. */
bool log_to_journal(void);

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
void log_guest_ctx(struct log_limit *lim, enum log_level level, const struct log_ctx *ctx,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
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
