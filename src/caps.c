/* caps.c - capability and credential handling.
 *
 * glibc's setresuid()/setgroups() change every thread of the process (they
 * broadcast a signal to make all threads follow), which is exactly what a
 * lane must not do; the raw system calls change only the calling thread. */
#include "config.h"

#include <cap-ng.h>
#include <errno.h>
#include <stdbool.h>
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

static int verify_daemon_caps(void)
{
    capng_get_caps_process();
    for (unsigned int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        int want = (CAPS_DAEMON_MASK >> cap) & 1;

        if (capng_have_capability(CAPNG_EFFECTIVE, cap) != want ||
            capng_have_capability(CAPNG_PERMITTED, cap) != want ||
            capng_have_capability(CAPNG_INHERITABLE, cap) != want ||
            prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0) {
            log_error("capability %s is not as it should be after dropping privileges",
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
     * (and no CAP_SETPCAP to clear it with): nothing to do there. */
    bool bounds_full = prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) > 0;

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
    /* Inheritable too: a live upgrade passes these, and only these, to the
     * new program as ambient capabilities (caps_exec_child).  They must be
     * set while the bounding set still holds them. */
    for (size_t i = 0; i < sizeof(daemon_caps) / sizeof(daemon_caps[0]); i++) {
        capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE,
                     daemon_caps[i]);
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

int caps_enter_lane(uid_t uid, gid_t gid)
{
    /* Saved ids stay 0 so the permitted set survives the euid change long
     * enough to re-raise CAP_DAC_OVERRIDE; the capset below then removes
     * CAP_SETUID/CAP_SETGID for good. */
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, -1, gid, -1) < 0 ||
        syscall(SYS_setresuid, -1, uid, -1) < 0) {
        int err = errno;

        log_error("lane %u:%u: cannot switch credentials: %m", (unsigned)uid, (unsigned)gid);
        return -err;
    }
    if (uid == 0 && gid == 0) {
        return 0;
    }
    capng_setpid((int)syscall(SYS_gettid));
    capng_clear(CAPNG_SELECT_CAPS);
    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_DAC_OVERRIDE);
    if (capng_apply(CAPNG_SELECT_CAPS) < 0) {
        log_error("lane %u:%u: cannot set capabilities", (unsigned)uid, (unsigned)gid);
        return -EPERM;
    }
    return 0;
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
