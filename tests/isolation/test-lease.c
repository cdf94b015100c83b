/* test-lease - finding 2 of issue 8: a lease stalls an I/O thread.
 *
 * Attack: as uid 65534, T_CREATE a file (the fd comes back through the
 * protocol), take a read lease on that fd (F_SETLEASE F_RDLCK; the test is
 * root, as QEMU is not, but the guest's file is the guest's), then send
 * T_TRUNCATE of the path (case "truncate") or T_OPEN O_WRONLY (case
 * "open-write").  The kernel makes whoever truncates or opens for writing
 * wait for the lease holder, up to /proc/sys/fs/lease-break-time (set to 3 s
 * here, restored afterwards; the test skips if it cannot be written).  The
 * test holds the lease 1.5 s, then releases it.
 *
 * Asserts: both victims (export A, another path; export B) are served
 * correctly and never wait 1 s while the lease is held; after the release the
 * attacker gets its own correct reply (truncate: 0 and the file is 10 bytes;
 * open: an fd of that file, O_WRONLY); daemon alive; fds back.
 *
 * On a404559 (--threads 1) both cases FAIL: the I/O thread sleeps in
 * break_lease, so every victim waits until the lease is released:
 * victim max latency 1.5 s (= the time the test holds the lease; 45 s with
 * the default break time and a holder that never lets go).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso-test.h"

#define BREAK_TIME_S 3
#define HOLD_MS 1500

static void run_lease(enum atk_lease_kind kind, const char *name)
{
    iso_fixture f;
    atk_lease *a = NULL;
    char err[ATK_ERRLEN] = "";
    int orig, rc;

    if (!iso_require()) {
        return;
    }
    orig = atk_lease_break_time_get();
    if (orig < 0 || atk_lease_break_time_set(BREAK_TIME_S) < 0) {
        g_test_skip("cannot write /proc/sys/fs/lease-break-time");
        return;
    }
    iso_watch_lease_time(orig);
    if (iso_setup(&f, name, NULL, 0, 0, NULL, NULL)) {
        g_autofree char *dir = iso_host(f.d, ISO_A, "lease");

        mkdir(dir, 0777);
        chmod(dir, 0777); /* the attacker creates as 65534 */
        rc = atk_lease_start(f.d->sock[ISO_A], dir, "//lease", "leased", kind, &a, err);
        iso_check(rc == 0, "the attack could not be set up: %s", err);
        if (rc == 0) {
            usleep(HOLD_MS * 1000);
            iso_check_victims(&f, "lease held", NULL);
            iso_check(atk_lease_release(a) == 0, "cannot release the lease");
            err[0] = '\0';
            rc = atk_lease_finish(a, 3000, err);
            iso_check(rc == 0, "the attacker's own request after the release: %s", err);
            atk_lease_free(a);
            usleep(200000);
            iso_check_victims(&f, "after the release", NULL);
            iso_check_alive(&f, "after the attack");
            iso_check_fds_back(&f, 3000);
            /* A retry off the I/O thread may use a lane thread: 4 is plenty. */
            iso_check_threads(&f, 4, "a lane or retry thread for the blocked request");
        }
        iso_teardown(&f);
    }
    atk_lease_break_time_set(orig);
    iso_watch_lease_time(-1);
}

static void test_truncate(void)
{
    run_lease(ATK_LEASE_TRUNCATE, "lease-truncate");
}

static void test_open_write(void)
{
    run_lease(ATK_LEASE_OPEN_WRITE, "lease-open");
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/lease/truncate", test_truncate);
    g_test_add_func("/isolation/lease/open-write", test_open_write);
    return g_test_run();
}
