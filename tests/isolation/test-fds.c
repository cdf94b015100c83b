/* test-fds - finding 3 of issue 8: fd replies bounded in bytes, not fds.
 *
 * unread-opens: with RLIMIT_NOFILE 4096 (soft = hard, as under
 * LimitNOFILE=4096, so that hoarded descriptors reach the limit), one attacker connection pipelines 5,000 T_OPEN of a file
 * and reads nothing.  Asserts: the daemon never holds more than its
 * pre-attack fds + (1 socket + 16 queued or in-flight fds) per attacker
 * connection + 8 (two victims' transient opens, a lane); the victims' T_OPENs
 * on both exports keep succeeding (no EMFILE), latency < 1 s; then the
 * attacker reads everything: 5,000 replies in order, each an fd of the file
 * (dev, ino); fds back.
 *
 * in-flight: with RLIMIT_NOFILE 1024, 6 attacker connections x 300 unread
 * T_OPEN: fds sent and not yet received count against the sender's
 * in-flight limit (root's in-flight fds may not pass the sender's
 * RLIMIT_NOFILE once it has dropped CAP_SYS_RESOURCE/CAP_SYS_ADMIN), so
 * 1,800 in flight pass it.  Asserts: no victim connection dropped, all
 * victim replies correct; the fd bound as above; every attacker reply an fd of
 * the file once read; fds back.
 *
 * On a404559 both FAIL.  unread-opens: the daemon's fd count climbs to the
 * limit (4,096) while its output queue holds the fds; the victims' T_OPENs
 * get EMFILE (about 1 in 4 while the replies sit unread, on both exports),
 * and only 4,352 of the attacker's 5,000 replies are fds (then EMFILE).
 * in-flight: sendmsg of an fd fails with ETOOMANYREFS ("Too many
 * references") once root's in-flight fds pass 1,024; the daemon drops
 * whichever connection hit it: victims were dropped 260 times in 1 s, and
 * the attacker got 160 of its 1,800 fds.  (The daemon also held 159 fds for
 * 6 x 300 unread opens under the old bound, over 16 per connection.)
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso-test.h"

#define PER_CONN_FDS 16
#define FD_SLACK_ATTACK 8

static void run_unread(const char *name, unsigned long nofile, int conns, int n_each)
{
    iso_config cfg = {.nofile = nofile};
    iso_fixture f;
    atk_unread *a = NULL;
    char err[ATK_ERRLEN] = "";
    struct stat st;
    int rc, peak, bound, ok;

    if (!iso_require() || !iso_setup(&f, name, &cfg, 0, 0, NULL, NULL)) {
        return;
    }
    {
        g_autofree char *file = iso_host(f.d, ISO_A, "hoard");

        g_file_set_contents(file, "fds for the hoarder\n", -1, NULL);
        stat(file, &st);
    }
    rc = atk_unread_start(f.d->sock[ISO_A], "//hoard", conns, n_each, 5000, &a, err);
    iso_check(rc == 0, "the attack could not be sent: %s", err);
    usleep(1000000); /* the daemon answers what it will; the victims go on */
    peak = atomic_load(&f.peak_fds);
    bound = f.fds0 + conns * (1 + PER_CONN_FDS) + FD_SLACK_ATTACK;
    g_test_message("%d x %d unread T_OPEN: the daemon held at most %d fds (before %d, bound %d)",
                   conns, n_each, peak, f.fds0, bound);
    iso_check(peak <= bound, "the daemon held %d fds for unread replies (bound %d)", peak, bound);
    iso_check_victims(&f, "replies unread", NULL);
    iso_check(iso_connect_served(&f, ISO_B, 3000), "a new guest cannot be served on export B");
    err[0] = '\0';
    ok = atk_unread_drain(a, st.st_dev, st.st_ino, 20000, err);
    g_test_message("the attacker read %d correct fd replies of %d%s%s", ok, conns * n_each,
                   err[0] ? "; first problem: " : "", err);
    iso_check(ok == conns * n_each, "only %d of the attacker's %d replies were its fds", ok,
              conns * n_each);
    atk_unread_free(a);
    iso_check_victims(&f, "after the drain", NULL);
    iso_check_alive(&f, "after the attack");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 4, "I/O spares");
    iso_teardown(&f);
}

static void test_unread_opens(void)
{
    run_unread("fds-unread", 4096, 1, 5000);
}

static void test_in_flight(void)
{
    run_unread("fds-inflight", 1024, 6, 300);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/fds/unread-opens", test_unread_opens);
    g_test_add_func("/isolation/fds/in-flight", test_in_flight);
    return g_test_run();
}
