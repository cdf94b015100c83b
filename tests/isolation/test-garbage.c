/* test-garbage - the "garbage, floods" part of issue 8's promise, kept
 * minimal: tests/stress/test-malformed covers every malformed class.
 *
 * Attack, 10 times over, 30 ms apart: one connection sends 64 bytes under an unknown
 * request type, another announces a 1 MiB frame.  Asserts: the daemon
 * closes both within 2 s; the victims are served correctly, latency < 1 s;
 * daemon alive; fds back.
 *
 * On a404559 it PASSES (framing errors were already fatal to the sender
 * only); it is here so that the isolation suite covers every attack class
 * and catches a regression.
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "iso-test.h"

static void test_garbage(void)
{
    iso_fixture f;

    if (!iso_require() || !iso_setup(&f, "garbage", NULL, 0, 0, NULL, NULL)) {
        return;
    }
    for (int i = 0; i < 10; i++) {
        char err[ATK_ERRLEN] = "";
        int rc = atk_garbage(f.d->sock[ISO_A], 2000, err);

        iso_check(rc == 0, "round %d: %s", i, err);
        usleep(30000);
    }
    iso_check_victims(&f, "garbage sent", NULL);
    iso_check_alive(&f, "after the garbage");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 2, "none expected");
    iso_teardown(&f);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/garbage/framing", test_garbage);
    return g_test_run();
}
