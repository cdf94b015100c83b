/* test-hangfs - finding 2 of issue 8 (its last sentence): a hung
 * filesystem under the export (NFS, FUSE) stalls an I/O thread in the
 * kernel, where no O_NONBLOCK helps.
 *
 * hangfs (tests/isolation/hangfs.c) is mounted at export-a/fuse; every
 * operation on a name starting with "hang" blocks until the test releases
 * it (SIGUSR1).  The daemon runs with --threads 1 and the default
 * io-stall-ms (100).
 *
 * Steps and asserts:
 *   1. one attacker sends T_LSTAT "//fuse/hang1" (its I/O thread blocks in
 *      the kernel's lookup): for 1.5 s the victims (export A, other paths;
 *      export B) are served correctly with latency < 1 s;
 *   2. three more attackers hang on hang2..hang4 (each sticks one more
 *      thread): another second, victims still fine;
 *   3. release: each attacker gets its own correct reply (a regular file of
 *      4242 bytes) within 3 s; the victims still fine;
 *   4. threads: while 4 requests hang, at most threads before + 4 stuck + 4
 *      (spares, a watchdog); 2 s after the release, what is left is printed
 *      and must stay within that bound as well;
 *   5. unmount; daemon alive; fds back.
 * hangfs and its mount are removed on every path (teardown, and the
 * watchdog detaches the mount if the program overruns).
 *
 * On a404559 it FAILS: the only I/O thread sleeps in the lookup, so both
 * victims wait until the release: max latency 2.5 s (the whole hang); the
 * daemon's thread count never moves (2).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso-test.h"

#define HANGERS 4
#define HANG_SIZE 4242

static void test_stuck_threads(void)
{
    g_autofree char *bin_dir = iso_exe_dir();
    g_autofree char *hangfs = g_build_filename(bin_dir, "hangfs", NULL);
    g_autofree char *mnt = NULL;
    atk_stuck *st[HANGERS] = {NULL};
    char err[ATK_ERRLEN] = "";
    iso_fixture f;
    pid_t fs = 0;
    int threads_hung, threads_after;

    if (!iso_require()) {
        return;
    }
    if (access(hangfs, X_OK) != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
        g_test_skip("needs tests/isolation/hangfs (libfuse3-dev) and /dev/fuse");
        return;
    }
    if (!iso_setup(&f, "hangfs", NULL, 0, 0, NULL, NULL)) {
        return;
    }
    mnt = iso_host(f.d, ISO_A, "fuse");
    mkdir(mnt, 0755);
    if (atk_hangfs_mount(hangfs, mnt, &fs, err) < 0) {
        g_test_message("cannot mount hangfs: %s", err);
        g_test_skip("hangfs cannot be mounted here");
        iso_teardown(&f);
        return;
    }
    /* The mount happened after the baseline: count it in. */
    f.fds0 = proc_count_fds(f.d->pid);

    for (int i = 0; i < HANGERS; i++) {
        char path[32];

        snprintf(path, sizeof(path), "//fuse/hang%d", i + 1);
        err[0] = '\0';
        iso_check(atk_stuck_start(f.d->sock[ISO_A], path, &st[i], err) == 0,
                  "attacker %d: %s", i + 1, err);
        if (i == 0) {
            usleep(1500000);
            iso_check_victims(&f, "one request hung in the filesystem", NULL);
        }
    }
    usleep(1000000);
    iso_check_victims(&f, "four requests hung in the filesystem", NULL);
    threads_hung = atomic_load(&f.peak_threads);
    g_test_message("daemon threads while %d requests hang: %d (before %d)", HANGERS,
                   threads_hung, f.threads0);

    atk_hangfs_release(fs);
    for (int i = 0; i < HANGERS; i++) {
        uint32_t mode = 0;
        uint64_t size = 0;
        int rc;

        if (st[i] == NULL) {
            continue;
        }
        err[0] = '\0';
        rc = atk_stuck_finish(st[i], 3000, &mode, &size, err);
        iso_check(rc == 0 && S_ISREG(mode) && size == HANG_SIZE,
                  "attacker %d after the release: %s (mode 0%o, size %llu)", i + 1,
                  rc == 0 ? "wrong stat" : err, (unsigned)mode, (unsigned long long)size);
        atk_stuck_free(st[i]);
        st[i] = NULL;
    }
    iso_check_victims(&f, "after the release", NULL);
    iso_check_threads(&f, HANGERS + 4, "4 threads stuck in the filesystem, spares, a watchdog");
    iso_peaks_reset(&f);
    usleep(2000000);
    threads_after = proc_count_threads(f.d->pid);
    g_test_message("daemon threads 2 s after the release: %d (before the attack %d)",
                   threads_after, f.threads0);
    iso_check(threads_after <= f.threads0 + HANGERS + 4,
              "%d threads 2 s after the release (%d before)", threads_after, f.threads0);

    err[0] = '\0';
    iso_check(atk_hangfs_unmount(mnt, fs, err) == 0, "unmount: %s", err);
    fs = 0;
    iso_check(!atk_is_mount(mnt), "%s is still a mount point", mnt);
    iso_check_alive(&f, "after the hang");
    iso_check_fds_back(&f, 3000);
    iso_check_victims(&f, "after the unmount", NULL);
    iso_teardown(&f);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/hangfs/stuck-threads", test_stuck_threads);
    return g_test_run();
}
