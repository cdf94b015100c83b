/* caps.h - process privileges and per-thread credentials.
 *
 * Who holds what, once caps_drop_daemon has run (capabilities are per
 * thread, and a new thread starts with its creator's):
 * - the main thread and the I/O threads: uid and gid 0, effective
 *   CAPS_DAEMON_EFFECTIVE (what requests use); permitted and inheritable
 *   CAPS_DAEMON_MASK, i.e. also CAP_SETGID and CAP_SETUID, which stay out of
 *   the effective set: they are there for the lane threads those threads
 *   start, and for the live upgrade, which passes exactly CAPS_DAEMON_MASK
 *   on as ambient capabilities;
 * - a lane thread for a guest uid:gid other than 0:0: real, effective and
 *   saved uid and gid all the guest's, no supplementary groups, effective
 *   and permitted exactly CAP_DAC_OVERRIDE, inheritable empty: it can never
 *   switch back;
 * - a lane thread for 0:0 (a guest's root creations, and requests that may
 *   block, run as the daemon itself): uid and gid 0, effective and permitted
 *   CAPS_DAEMON_EFFECTIVE, inheritable empty.
 * The bounding and ambient sets are empty and no_new_privs is set in every
 * thread. */
#ifndef VP_CAPS_H
#define VP_CAPS_H

#include <sys/types.h>

/* CHOWN, DAC_OVERRIDE, FOWNER, FSETID, MKNOD: what the requests use. */
#define CAPS_DAEMON_EFFECTIVE                                                                      \
    ((1ull << 0) | (1ull << 1) | (1ull << 3) | (1ull << 4) | (1ull << 27))
/* The above plus SETGID and SETUID, which only a lane's switch uses
 * (PROTOCOL.md §7.2). */
#define CAPS_DAEMON_MASK (CAPS_DAEMON_EFFECTIVE | (1ull << 6) | (1ull << 7))
/* What a lane for a guest identity other than 0:0 keeps (reference
 * semantics: such creations have CAP_DAC_OVERRIDE only). */
#define CAPS_LANE_GUEST (1ull << 1)

/* Reduces the whole process to the daemon's capabilities (see above),
 * clears the bounding and ambient sets and supplementary groups, and sets
 * no_new_privs; then verifies the result.  Must run before any thread
 * exists: new threads inherit their creator's capabilities. */
int caps_drop_daemon(void);

/* Turns the calling thread, and only it, into uid:gid (real, effective and
 * saved) with no supplementary groups and the capabilities listed above for
 * its kind of lane, and verifies the result.  The calling thread must hold
 * CAP_SETUID and CAP_SETGID in its permitted set: a thread started by the
 * main or an I/O thread does.  Afterwards it holds neither, so nothing can
 * switch it back: it is bound to this identity for life. */
int caps_enter_lane(uid_t uid, gid_t gid);

/* In a child about to execute the new program of a live upgrade: lets the
 * daemon's capabilities (and no others: the bounding set is empty) survive
 * execve as ambient capabilities.  Async-signal-safe. */
int caps_exec_child(void);

#endif
