/* test-logflood - finding 10 of issue 8: guest-triggered log lines are
 * neither rate-limited nor escaped.
 *
 * The daemon runs at --log-level info (debug would log every state change
 * of every request anyway) without --allow-devices.  On one connection:
 *   1. T_MKNOD of a character device named "//evil\n\033[31mFORGED ..."
 *      (refused, EPERM): the line is logged, with the name escaped;
 *   2. 10,000 more refused device T_MKNOD, pipelined;
 *   3. one more refused T_MKNOD every 250 ms until the log says
 *      "suppressed" (at most 6 s): the limiter's summary when it speaks
 *      again.
 * Asserts: every request answered EPERM; the log grew by at most 200
 * lines in all; it holds a "suppressed" summary; no ESC byte and no line
 * starting with the forged text (the newline was not written raw), while
 * "FORGED" does appear (the name was logged, escaped); the victims are
 * served correctly, latency < 1 s; daemon alive; fds back.
 *
 * On a404559 it FAILS: the log grows by 10,024 lines, has no "suppressed",
 * and holds the name raw: an ESC byte and a forged line of its own.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "iso-test.h"

#define FLOOD 10000
#define MAX_LINES 200
#define EVIL "//evil\n\033[31mFORGED line: virtfs-proxyd: error: nothing happened"

static void test_mknod_flood(void)
{
    iso_config cfg = {.log_level = "info"};
    iso_fixture f;
    char err[ATK_ERRLEN] = "";
    pc_conn *c = NULL;
    size_t len0, len;
    g_autofree char *log0 = NULL;
    g_autofree char *log = NULL;
    bool suppressed = false;
    int rc, extra = 0;

    if (!iso_require() || !iso_setup(&f, "logflood", &cfg, 0, 0, NULL, NULL)) {
        return;
    }
    rc = pc_connect(f.d->sock[ISO_A], 3000, &c);
    iso_check(rc == 0, "connect: %s", pc_strerror(rc));
    if (rc == 0) {
        log0 = iso_log_text(f.d, &len0);
        rc = atk_mknod_one(c, EVIL, 3000);
        iso_check(rc == -EPERM, "the evil device mknod: %s", pc_strerror(rc));
        rc = atk_mknod_flood(c, "//flood", FLOOD, 20000, err);
        iso_check(rc == FLOOD, "flood: %d of %d answered EPERM %s", rc, FLOOD, err);
        for (int64_t end = proc_now_ms() + 6000; !suppressed && proc_now_ms() < end; extra++) {
            g_autofree char *text = NULL;

            usleep(250000);
            rc = atk_mknod_one(c, "//after-the-flood", 3000);
            iso_check(rc == -EPERM, "a device mknod after the flood: %s", pc_strerror(rc));
            text = iso_log_text(f.d, &len);
            suppressed = strstr(text + MIN(len0, len), "suppressed") != NULL;
        }
        pc_free(c);
        log = iso_log_text(f.d, &len);
        {
            size_t lines = iso_count_lines(log + len0, len - len0);

            g_test_message("%d refused device mknods (and %d more, 250 ms apart): the log grew "
                           "by %zu lines (bound %d)%s",
                           FLOOD + 1, extra, lines, MAX_LINES,
                           suppressed ? ", with a 'suppressed' summary" : "");
            iso_check(lines <= MAX_LINES, "the log grew by %zu lines", lines);
        }
        iso_check(suppressed, "no 'suppressed' summary in the log after the flood");
        iso_check(memchr(log, '\033', len) == NULL, "the log holds a raw ESC byte");
        iso_check(strstr(log, "\n\033[31mFORGED") == NULL && strstr(log, "\nFORGED") == NULL,
                  "the guest's name forged a log line of its own");
        iso_check(strstr(log + len0, "FORGED") != NULL,
                  "the refused evil name is not in the log at all");
    }
    iso_check_victims(&f, "log flood", NULL);
    iso_check_alive(&f, "after the flood");
    iso_check_fds_back(&f, 3000);
    iso_check_threads(&f, 2, "none expected");
    iso_teardown(&f);
}

int main(int argc, char **argv)
{
    iso_test_init(&argc, &argv);
    g_test_add_func("/isolation/logflood/mknod", test_mknod_flood);
    return g_test_run();
}
