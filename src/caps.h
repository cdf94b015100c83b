/* caps.h - process privileges and per-thread credentials. */
#ifndef VP_CAPS_H
#define VP_CAPS_H

#include <sys/types.h>

/* Capabilities every thread keeps after start-up (PROTOCOL.md §7.2). */
#define CAPS_DAEMON_MASK                                                                           \
    ((1ull << 0) | (1ull << 1) | (1ull << 3) | (1ull << 4) | (1ull << 6) | (1ull << 7) |           \
     (1ull << 27))

/* Reduces the whole process to CAPS_DAEMON_MASK (effective, permitted and
 * inheritable), clears the bounding and ambient sets and supplementary
 * groups, and sets no_new_privs; then verifies the result.  Must run before any thread
 * exists: capabilities are per thread and new threads inherit them. */
int caps_drop_daemon(void);

/* Turns the calling thread, and only it, into uid:gid with no supplementary
 * groups.  Unless both are 0 the thread keeps just CAP_DAC_OVERRIDE, and
 * cannot switch back: the lane thread is bound to this identity for life. */
int caps_enter_lane(uid_t uid, gid_t gid);

/* In a child about to execute the new program of a live upgrade: lets the
 * daemon's capabilities (and no others: the bounding set is empty) survive
 * execve as ambient capabilities.  Async-signal-safe. */
int caps_exec_child(void);

#endif
