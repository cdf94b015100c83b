/* test-limits - finding 5 of issue 8 (first half): connection limits are
 * global, so the peers of one export lock every other export out.
 *
 * per-export: [daemon] max-connections = 100, [export a] max-connections =
 * 20.  The victims connect first (one on A, one on B); an attacker opens 200
 * connections to A and probes each with T_LSTAT "/".  Asserts: exactly 19
 * served (A's limit, the victim holding the 20th), 181 refused; a new guest
 * of export B connects and is served; the victims go on, latency < 1 s; once
 * the attacker leaves, A accepts again; fds back.
 *
 * per-uid: [daemon] max-connections-per-uid = 10; both sockets' group is
 * 4242.  A child process running as 4242:4242 opens 30 connections to A:
 * exactly 10 served, 20 refused; a second child as 4242 then opens 5 to B:
 * none served (the count is over all exports); root's new connections to A
 * and B are served; victims fine; fds back once the children are gone.
 *
 * On a404559 both FAIL at start-up: the keys are unknown ("[export a]:
 * unknown key 'max-connections'", "unknown key 'max-connections-per-uid'").
 * The finding itself, with only the daemon-wide limit of 100: the
 * attacker's 200 connections to A take every slot left (98 served) and a
 * new guest of export B is refused.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "iso-test.h"

#define ATTACKER_UID 4242

static void test_per_export(void)
{
    iso_config cfg = {
        .daemon_keys = "max-connections = 100\n",
        .export_keys = {"max-connections = 20\n", NULL},
    };
    iso_fixture f;
    atk_flood *fl;
    int served, refused;

    if (!iso_require() || !iso_setup(&f, "limits-export", &cfg, 0, 0, NULL, NULL)) {
        return;
    }
    fl = atk_flood_start(f.d->sock[ISO_A], 200, 10000);
    served = atk_flood_served(fl);
    refused = atk_flood_refused(fl);
    g_test_message("200 connections to export A: %d served, %d refused", served, refused);
    iso_check(served == 19 && refused == 181,
              "export A (limit 20, one victim connected) served %d of 200", served);
    iso_check(iso_connect_served(&f, ISO_B, 3000), "a new guest of export B was not served");
    iso_check_victims(&f, "export A full", NULL);
    atk_flood_free(fl);
    {
        bool again = false;

        for (int64_t end = proc_now_ms() + 3000; !again && proc_now_ms() < end; usleep(50000)) {
            again = iso_connect_served(&f, ISO_A, 1000);
        }
        iso_check(again, "export A does not accept again after its attacker left");
    }
    iso_check_alive(&f, "after the flood");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 4, "I/O spares");
    iso_check_victims(&f, "after the flood", NULL);
    iso_teardown(&f);
}

static void test_per_uid(void)
{
    iso_config cfg = {
        .daemon_keys = "max-connections-per-uid = 10\n",
        .sock_gid = {"4242", "4242"},
    };
    iso_fixture f;
    int served = -1, refused = -1, served_b = -1, refused_b = -1;
    pid_t child, child_b;

    if (!iso_require() || !iso_setup(&f, "limits-uid", &cfg, 0, 0, NULL, NULL)) {
        return;
    }
    child = atk_flood_as_start(f.d->sock[ISO_A], ATTACKER_UID, ATTACKER_UID, 30, 10000, &served,
                               &refused);
    iso_check(child > 0, "the attacker process failed: %s", g_strerror((int)-child));
    g_test_message("uid %d: 30 connections to export A: %d served, %d refused", ATTACKER_UID,
                   served, refused);
    iso_check(served == 10 && refused == 20, "uid %d got %d connections served (limit 10)",
              ATTACKER_UID, served);
    child_b = atk_flood_as_start(f.d->sock[ISO_B], ATTACKER_UID, ATTACKER_UID, 5, 10000,
                                 &served_b, &refused_b);
    iso_check(child_b > 0, "the second attacker process failed: %s", g_strerror((int)-child_b));
    g_test_message("uid %d: 5 more connections, to export B: %d served, %d refused",
                   ATTACKER_UID, served_b, refused_b);
    iso_check(served_b == 0 && refused_b == 5,
              "uid %d got %d more connections served on export B (the limit is per uid over "
              "all exports)",
              ATTACKER_UID, served_b);
    iso_check(iso_connect_served(&f, ISO_A, 3000), "root was refused on export A");
    iso_check(iso_connect_served(&f, ISO_B, 3000), "root was refused on export B");
    iso_check_victims(&f, "uid 4242 at its limit", NULL);
    atk_flood_as_stop(child);
    atk_flood_as_stop(child_b);
    iso_check_alive(&f, "after the flood");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 4, "I/O spares");
    iso_check_victims(&f, "after the flood", NULL);
    iso_teardown(&f);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/limits/per-export", test_per_export);
    g_test_add_func("/isolation/limits/per-uid", test_per_uid);
    return g_test_run();
}
