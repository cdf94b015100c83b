/* supervisor.h - the process the user starts keeps every socket; the
 * process that serves is its child, and a crash of it costs each guest at
 * most the one request it was running (issue 9).
 *
 * The supervisor parses nothing a guest sends and touches no export.  It
 * holds a duplicate of every listening socket and connection (registry.h)
 * and the progress table (progress.h).  When the serving process dies by a
 * signal or exits unexpectedly, it starts a new one with a --takeover state
 * made of what it holds; the new process drops what was answered, answers
 * the request that was running with EIO in its own reply form, and serves
 * on.  A connection on which the same request was running at three crashes
 * in a row is closed (a request that kills the server every time).  A serving process
 * that cannot start is retried after 100 ms, doubling up to 10 s.
 *
 * A serving process that sends REG_RESTART and exits is replaced at once
 * the same way, as a fresh process outside its Landlock domain (a reload
 * that needs more of the filesystem than that domain allows, sandbox.h).
 * The supervisor itself is not confined by Landlock for that reason; its
 * seccomp filter is installed before it starts the first serving process.
 *
 * Signals: SIGHUP and SIGUSR2 go on to the serving process (a live upgrade
 * is the serving process's own business: the process it starts becomes the
 * supervisor's child when the old one exits, PR_SET_CHILD_SUBREAPER);
 * SIGTERM and SIGINT too, and the supervisor then exits with the serving
 * process's status.  systemd is told READY=1 and MAINPID=the supervisor.
 */
#ifndef VP_SUPERVISOR_H
#define VP_SUPERVISOR_H

#include <stdbool.h>

struct supervisor_options {
    bool nodaemon;
    int log_level;        /* enum log_level: syslog's, once daemonized */
    int single_fd;        /* -f's socket, or -1 */
    unsigned int nslots;  /* progress slots: the most connections there can be */
    int seccomp;          /* enum sandbox_seccomp: its filter, which every serving
                           * process inherits */
};

/* Runs the supervisor; returns the exit status for main(). */
int supervisor_run(int argc, char **argv, const struct supervisor_options *opt);

/* systemd's readiness protocol (Type=notify): READY=1 and MAINPID=this
 * process, to $NOTIFY_SOCKET if set. */
void supervisor_notify_systemd(void);

#endif
