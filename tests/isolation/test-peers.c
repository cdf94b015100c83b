/* test-peers - issue 11, who may connect: a peer that export A's
 * allowed-peer-uids refuses knocks again and again, and the allowed guests
 * do not notice.
 *
 * [export a] allowed-peer-uids = 0 (the victims are root's); both sockets'
 * group is 4242, so the attacker, a child process running as 4242:4242,
 * gets through the socket's mode and only the list stops it.  It makes
 * rounds of PER_ROUND connections to A, each probed with T_LSTAT "/", for
 * MIN_ATTACK_S seconds (at least MIN_ROUNDS rounds).
 * Asserts: every one refused, none served; the daemon counted every one
 * (virtfs_proxyd_refused_peers_total{export="a"}, so none merely failed to
 * connect) and logged them rate-limited; the victims on A and on B got
 * every reply right, none missing or dropped, worst latency under the
 * bound; a new guest of B is served; the daemon's fds are back once the
 * attacker left.
 *
 * Without the feature the daemon refuses to start ("[export a]: unknown
 * key 'allowed-peer-uids'"); with the check left out of the accept path
 * the attacker's connections are all served.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iso-test.h"

#define ATTACKER_UID 4242
#define MIN_ROUNDS 10
#define PER_ROUND 400
#define MIN_ATTACK_S 2 /* so that the victims' window is mostly the attack's */

/* The daemon's count of refused peers of export a, from virtfs-proxyctl
 * metrics; -1 if it cannot be read. */
static long refused_count(const char *control)
{
    const char *bin = g_getenv("VIRTFS_PROXYCTL");
    const char *argv[] = {bin, "--control", control, "metrics", NULL};
    const char *key = "virtfs_proxyd_refused_peers_total{export=\"a\"} ";
    g_autofree char *out = NULL;
    const char *hit;
    int status = -1;

    if (bin == NULL || !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                                     NULL, &out, NULL, &status, NULL) ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0 || (hit = strstr(out, key)) == NULL) {
        return -1;
    }
    return atol(hit + strlen(key));
}

static void test_refused_knocking(void)
{
    g_autofree char *tmp = g_dir_make_tmp("vpd-iso-peers.XXXXXX", NULL);
    g_autofree char *control = g_build_filename(tmp, "control.sock", NULL);
    g_autofree char *daemon_keys = g_strdup_printf("control-socket = %s\n", control);
    iso_config cfg = {
        .daemon_keys = daemon_keys,
        .export_keys = {"allowed-peer-uids = 0\n", NULL},
        .sock_gid = {"4242", "4242"},
    };
    iso_fixture f;
    int served_total = 0, refused_total = 0, attempts = 0;
    int64_t t0;
    long counted;
    size_t log_len;
    g_autofree char *log = NULL;
    unsigned int lines = 0;

    if (!iso_require() || !iso_setup(&f, "peers", &cfg, 0, 0, NULL, NULL)) {
        g_rmdir(tmp);
        return;
    }
    /* The window measured below is the attack's. */
    iso_check_victims(&f, "before the attack", NULL);
    t0 = iso_now_us();
    for (int r = 0; r < MIN_ROUNDS || iso_now_us() - t0 < MIN_ATTACK_S * 1000000; r++) {
        int served = -1, refused = -1;
        pid_t child = atk_flood_as_start(f.d->sock[ISO_A], ATTACKER_UID, ATTACKER_UID,
                                         PER_ROUND, 20000, &served, &refused);

        iso_check(child > 0, "the attacker process failed: %s", g_strerror((int)-child));
        if (child > 0) {
            atk_flood_as_stop(child);
        }
        served_total += served;
        refused_total += refused;
        attempts += PER_ROUND;
    }
    g_test_message("uid %d: %d connections to export A in %.1f s: %d served, %d refused",
                   ATTACKER_UID, attempts, (double)(iso_now_us() - t0) / 1e6,
                   served_total, refused_total);
    iso_check(served_total == 0 && refused_total == attempts,
              "uid %d, not in allowed-peer-uids, was served %d times", ATTACKER_UID,
              served_total);
    counted = refused_count(control);
    iso_check(counted == attempts,
              "the daemon counted %ld refused peers of %d (the rest did not even connect?)",
              counted, attempts);
    log = iso_log_text(f.d, &log_len);
    for (const char *p = log; p != NULL && (p = strstr(p, "refusing peer pid")) != NULL; p++) {
        lines++;
    }
    g_test_message("%u log lines for %d refusals", lines, attempts);
    /* The burst (10), then one a second. */
    iso_check(lines >= 1 && lines <= 10 + 2 * MIN_ATTACK_S + 10, "%u log lines for %d refusals",
              lines, attempts);
    iso_check_victims(&f, "refused peer knocking on A", NULL);
    iso_check(iso_connect_served(&f, ISO_B, 3000), "a new guest of export B was not served");
    iso_check(iso_connect_served(&f, ISO_A, 3000), "root was refused on export A");
    iso_check_alive(&f, "after the knocking");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 4, "I/O spares");
    iso_teardown(&f);
    g_rmdir(tmp);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/peers/refused-knocking", test_refused_knocking);
    return g_test_run();
}
