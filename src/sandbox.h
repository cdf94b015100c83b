/* sandbox.h - the daemon boxed in: a seccomp allow-list of system calls
 * and a Landlock confinement of the filesystem (issue 11).
 *
 * Seccomp: one table of every system call the daemon makes (sandbox.c),
 * installed for every thread of the process (SECCOMP_FILTER_FLAG_TSYNC)
 * before the first connection is served.  Filters are inherited by
 * fork and execve and can only be added to, never removed: the supervisor
 * installs the table before it starts a serving process, and a process
 * that finds a filter in place (started by the supervisor or by a live
 * upgrade) keeps it rather than stacking a second copy, which would double
 * the cost of every system call and reach the kernel's limit after enough
 * upgrades.
 *
 * Landlock: the serving process can reach, below the root, its exports,
 * the directories of its sockets, the configuration file's directory, what
 * it reads of /proc and /dev/null, and read and execute the program's and
 * its libraries' directories (a live upgrade execs it).  A Landlock domain
 * is inherited across execve and only ever narrows, so a process that
 * needs more (a reload adding an export outside it) must be started by a
 * process outside it: the supervisor (main.c, reload).
 */
#ifndef VP_SANDBOX_H
#define VP_SANDBOX_H

#include <stdbool.h>

struct event_base;
struct settings;

enum sandbox_seccomp {
    SANDBOX_SECCOMP_KILL, /* a call off the list kills the process (default) */
    SANDBOX_SECCOMP_LOG,  /* it is made all the same, and logged by name */
    SANDBOX_SECCOMP_NONE,
};

enum sandbox_confine {
    SANDBOX_CONFINE_LANDLOCK, /* default; a warning and none where unavailable */
    SANDBOX_CONFINE_NONE,
};

int sandbox_parse_seccomp(const char *text, enum sandbox_seccomp *mode);
int sandbox_parse_confine(const char *text, enum sandbox_confine *mode);
const char *sandbox_seccomp_name(enum sandbox_seccomp mode);
const char *sandbox_confine_name(enum sandbox_confine mode);

/* First thing in main(): a process started under a filter (by the
 * supervisor, or a live upgrade) may be under a `log` one, whose SIGSYS it
 * must handle from its first call off the list, before it knows the mode. */
void sandbox_early(void);
/* Installs the filter for every thread (unless one is inherited).
 * Returns 0 or -errno, logged. */
int sandbox_seccomp_install(enum sandbox_seccomp mode);
/* With `log`: the calls caught are logged from base's loop.  Call it once
 * the loop exists, in every process that installed or inherited a filter. */
void sandbox_seccomp_watch(struct event_base *base);

/* Confines the calling process (call it before any other thread exists)
 * to what set serves (and single, -f's export, unless NULL), the control
 * socket's directory (control may be NULL) and the configuration file's
 * directory (config may be NULL).
 * Returns 0 (also when Landlock is unavailable: a warning says so), or
 * -errno, logged. */
int sandbox_confine(enum sandbox_confine mode, const struct settings *set, const char *single,
                    const char *control, const char *config);
/* Whether every export and socket directory of set is within the
 * confinement in place (always true without one).  *outside names the
 * first that is not (static storage, valid until the next call). */
bool sandbox_covers(const struct settings *set, const char **outside);

/* Tests (--enable-test-hooks): VIRTFS_PROXYD_TEST_HOOK=sandbox-probe makes
 * the calling thread attempt a system call off the list and open a file
 * outside the confinement, and log what happened. */
void sandbox_test_probe(void);

#endif
