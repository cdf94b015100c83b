/* caps.c - capability and credential handling.
 *
 * glibc's setresuid()/setgroups() change every thread of the process (they
 * broadcast a signal to make all threads follow), which is exactly what a
 * lane must not do; the raw system calls change only the calling thread.
 * Capabilities and securebits (keepcaps) are per thread too; libcap-ng's
 * state is thread-local, and capng_setpid(gettid) points it at the calling
 * thread rather than the process's main thread. */
#include "config.h"

#include <cap-ng.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "log.h"

static const unsigned int daemon_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID, CAP_MKNOD,
};

/* Reads the calling thread's capabilities into libcap-ng's state. */
static int get_thread_caps(void)
{
    capng_setpid((int)syscall(SYS_gettid));
    return capng_get_caps_process() < 0 ? -EPERM : 0;
}

/* Whether the calling thread's sets (as last read) are exactly these. */
static bool thread_caps_are(uint64_t eff, uint64_t prm, uint64_t inh)
{
    for (unsigned int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (capng_have_capability(CAPNG_EFFECTIVE, cap) != (int)((eff >> cap) & 1) ||
            capng_have_capability(CAPNG_PERMITTED, cap) != (int)((prm >> cap) & 1) ||
            capng_have_capability(CAPNG_INHERITABLE, cap) != (int)((inh >> cap) & 1)) {
            log_error("capability %s is not as it should be", capng_capability_to_name(cap));
            return false;
        }
    }
    return true;
}

static int verify_daemon_caps(void)
{
    if (get_thread_caps() < 0 ||
        !thread_caps_are(CAPS_DAEMON_EFFECTIVE, CAPS_DAEMON_MASK, CAPS_DAEMON_MASK)) {
        return -EPERM;
    }
    for (unsigned int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 ||
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) > 0) {
            log_error("capability %s is left in the bounding or ambient set",
                      capng_capability_to_name(cap));
            return -EPERM;
        }
    }
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        log_error("no_new_privs is not set");
        return -EPERM;
    }
    return 0;
}

int caps_drop_daemon(void)
{
    /* A process started by a live upgrade inherits an empty bounding set
     * (and no CAP_SETPCAP to clear it with): nothing to do there.  Any other
     * start has CAP_SETPCAP in it: a root shell's full set, or the units'
     * CapabilityBoundingSet=, which holds only the daemon's capabilities and
     * CAP_SETPCAP (so no CAP_SYS_ADMIN: testing for that one made the daemon
     * leave the units' set in place and refuse to start under systemd). */
    bool bounds_full = prctl(PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) > 0;

    if (setgroups(0, NULL) < 0) {
        log_error("setgroups: %m");
        return -errno;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        log_error("prctl(PR_SET_NO_NEW_PRIVS): %m");
        return -errno;
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    capng_clear(CAPNG_SELECT_ALL);
    /* Permitted and inheritable hold all of them: a live upgrade passes
     * these, and only these, to the new program as ambient capabilities
     * (caps_exec_child), which needs them in both sets; inheritable must be
     * set while the bounding set still holds them.  Effective holds only
     * what requests use: CAP_SETUID and CAP_SETGID are raised by a new lane
     * thread for its own switch, never by the threads that serve requests. */
    for (size_t i = 0; i < sizeof(daemon_caps) / sizeof(daemon_caps[0]); i++) {
        unsigned int cap = daemon_caps[i];

        capng_update(CAPNG_ADD, CAPNG_PERMITTED | CAPNG_INHERITABLE, cap);
        if ((CAPS_DAEMON_EFFECTIVE >> cap) & 1) {
            capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, cap);
        }
    }
    if (bounds_full) {
        /* Keep CAP_SETPCAP just long enough to empty the bounding set. */
        capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SETPCAP);
        if (capng_apply(CAPNG_SELECT_CAPS) < 0 || capng_apply(CAPNG_SELECT_BOUNDS) < 0) {
            log_error("cannot drop capabilities (is the daemon running as root?)");
            return -EPERM;
        }
        capng_update(CAPNG_DROP, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SETPCAP);
    }
    if (capng_apply(CAPNG_SELECT_CAPS) < 0) {
        log_error("cannot drop capabilities (is the daemon running as root?)");
        return -EPERM;
    }
    return verify_daemon_caps();
}

/* Sets the calling thread's effective and permitted sets to exactly keep,
 * and empties its inheritable set. */
static int set_thread_caps(uint64_t keep)
{
    capng_setpid((int)syscall(SYS_gettid));
    capng_clear(CAPNG_SELECT_CAPS);
    for (unsigned int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if ((keep >> cap) & 1) {
            capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, cap);
        }
    }
    return capng_apply(CAPNG_SELECT_CAPS) < 0 ? -EPERM : 0;
}

/* The calling thread is uid:gid in every field, with no groups and exactly
 * keep in its effective and permitted sets. */
static bool lane_is(uid_t uid, gid_t gid, uint64_t keep)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    /* getresuid, getresgid and getgroups read the calling thread's own
     * credentials. */
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
        ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid ||
        getgroups(0, NULL) != 0) {
        log_error("lane %u:%u: the credentials are not as they should be", (unsigned)uid,
                  (unsigned)gid);
        return false;
    }
    return get_thread_caps() == 0 && thread_caps_are(keep, keep, 0);
}

int caps_enter_lane(uid_t uid, gid_t gid)
{
    uint64_t keep = uid == 0 && gid == 0 ? CAPS_DAEMON_EFFECTIVE : CAPS_LANE_GUEST;

    /* The switch needs CAP_SETUID and CAP_SETGID effective: raise them from
     * the permitted set this thread inherited. */
    if (get_thread_caps() < 0 || capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_SETUID) < 0 ||
        capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_SETGID) < 0 ||
        capng_apply(CAPNG_SELECT_CAPS) < 0) {
        log_error("lane %u:%u: cannot raise CAP_SETUID/CAP_SETGID", (unsigned)uid,
                  (unsigned)gid);
        return -EPERM;
    }
    /* Keepcaps (a per-thread securebit) keeps the permitted set across the
     * change to a non-zero uid in every field, so that CAP_DAC_OVERRIDE can
     * be made effective again below; the kernel clears the effective set
     * there anyway. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
        syscall(SYS_setresgid, gid, gid, gid) < 0 || syscall(SYS_setresuid, uid, uid, uid) < 0) {
        int err = errno;

        log_error("lane %u:%u: cannot switch credentials: %m", (unsigned)uid, (unsigned)gid);
        return -err;
    }
    /* Lowering the permitted set drops CAP_SETUID and CAP_SETGID for good. */
    if (set_thread_caps(keep) < 0) {
        log_error("lane %u:%u: cannot set capabilities", (unsigned)uid, (unsigned)gid);
        return -EPERM;
    }
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    return lane_is(uid, gid, keep) ? 0 : -EPERM;
}

int caps_exec_child(void)
{
    /* Raw prctl only: this runs between fork() and execve(). */
    for (size_t i = 0; i < sizeof(daemon_caps) / sizeof(daemon_caps[0]); i++) {
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, daemon_caps[i], 0, 0) < 0) {
            return -errno;
        }
    }
    return 0;
}
