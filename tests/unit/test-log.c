/* test-log.c - guest-triggered log lines: a guest that repeats a cause a
 * million times gets a burst of lines, then a trickle, and a count of what
 * was left out; all guests together cannot pass the global cap; and what a
 * guest names is escaped so that it cannot forge lines. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "log.h"

static uint64_t clock_ms = 1000000000;
static GPtrArray *lines;

static uint64_t fake_clock(void)
{
    return clock_ms;
}

static void capture(enum log_level level, const char *line, void *arg)
{
    g_ptr_array_add(lines, g_strdup(line));
}

/* A fresh start: time moves on far enough for every limiter (the global one
 * included) to be back to a full burst, and what that says is forgotten. */
static void reset(void)
{
    struct log_limit drain = {0};

    clock_ms += 3600 * 1000;
    log_guest(&drain, LOG_LEVEL_WARNING, "drain");
    clock_ms += 3600 * 1000;
    g_ptr_array_set_size(lines, 0);
}

static unsigned int count_with(const char *needle)
{
    unsigned int n = 0;

    for (guint i = 0; i < lines->len; i++) {
        if (strstr(g_ptr_array_index(lines, i), needle) != NULL) {
            n++;
        }
    }
    return n;
}

static void test_burst(void)
{
    struct log_limit lim = {0};

    reset();
    for (int i = 0; i < 1000; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "line %d", i);
    }
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_BURST);
    g_assert_cmpstr(g_ptr_array_index(lines, 0), ==, "line 0");
    g_assert_cmpuint(lim.suppressed, ==, 1000 - LOG_GUEST_BURST);
}

static void test_steady_rate(void)
{
    struct log_limit lim = {0};

    reset();
    for (int i = 0; i < LOG_GUEST_BURST; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "burst");
    }
    g_ptr_array_set_size(lines, 0);
    /* 10 s of a line every 10 ms: one line per interval gets through. */
    for (int i = 0; i < 1000; i++) {
        clock_ms += 10;
        log_guest(&lim, LOG_LEVEL_WARNING, "steady");
    }
    g_assert_cmpuint(lines->len, >=, 10000 / LOG_GUEST_INTERVAL_MS - 1);
    g_assert_cmpuint(lines->len, <=, 10000 / LOG_GUEST_INTERVAL_MS + 1);
    /* A quiet limiter is back to a full burst. */
    clock_ms += (uint64_t)LOG_GUEST_BURST * LOG_GUEST_INTERVAL_MS;
    g_ptr_array_set_size(lines, 0);
    for (int i = 0; i < 100; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "again");
    }
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_BURST);
}

static void test_suppression_summary(void)
{
    struct log_limit lim = {0};
    const char *last;

    reset();
    for (int i = 0; i < LOG_GUEST_BURST + 37; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "refused peer %d", i);
    }
    clock_ms += LOG_GUEST_INTERVAL_MS;
    log_guest(&lim, LOG_LEVEL_WARNING, "refused peer again");
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_BURST + 1);
    last = g_ptr_array_index(lines, lines->len - 1);
    g_assert_cmpstr(last, ==, "refused peer again (37 similar lines suppressed)");
    /* Said once: the next line has no summary. */
    clock_ms += LOG_GUEST_INTERVAL_MS;
    log_guest(&lim, LOG_LEVEL_WARNING, "quiet");
    g_assert_cmpstr(g_ptr_array_index(lines, lines->len - 1), ==, "quiet");

    /* A last word for a source that goes away. */
    for (int i = 0; i < 5 * LOG_GUEST_BURST; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "more");
    }
    g_assert_cmpuint(log_limit_take_suppressed(&lim), >, 0);
    g_assert_cmpuint(log_limit_take_suppressed(&lim), ==, 0);
}

/* Many limiters (guests), each within its own burst, together get no more
 * than the global burst; the victim limiter that then speaks is told what
 * the cap left out, and its own lines are not counted as its suppressions. */
static void test_global_cap(void)
{
    struct log_limit many[50] = {{0}};
    struct log_limit victim = {0};
    unsigned int tried = 0;

    reset();
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < G_N_ELEMENTS(many); i++) {
            log_guest(&many[i], LOG_LEVEL_WARNING, "guest %zu", i);
            tried++;
        }
    }
    g_assert_cmpuint(tried, ==, 250);
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_GLOBAL_BURST);
    /* Not a limiter's own excess: no "similar lines" for them later. */
    for (size_t i = 0; i < G_N_ELEMENTS(many); i++) {
        g_assert_cmpuint(many[i].suppressed, ==, 0);
    }
    log_guest(&victim, LOG_LEVEL_WARNING, "victim, still capped");
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_GLOBAL_BURST);
    clock_ms += LOG_GUEST_GLOBAL_INTERVAL_MS;
    g_ptr_array_set_size(lines, 0);
    log_guest(&victim, LOG_LEVEL_WARNING, "victim speaks");
    g_assert_cmpuint(lines->len, ==, 2);
    g_assert_nonnull(strstr(g_ptr_array_index(lines, 0), "151 guest-triggered lines suppressed"));
    g_assert_cmpstr(g_ptr_array_index(lines, 1), ==, "victim speaks");
    /* Over a long flood from all of them, the global rate holds. */
    reset();
    for (int ms = 0; ms < 10000; ms += 5) {
        clock_ms += 5;
        for (size_t i = 0; i < G_N_ELEMENTS(many); i++) {
            log_guest(&many[i], LOG_LEVEL_WARNING, "flood");
        }
    }
    g_assert_cmpuint(count_with("flood"), <=,
                     LOG_GUEST_GLOBAL_BURST + 10000 / LOG_GUEST_GLOBAL_INTERVAL_MS + 1);
}

static void test_level_filtered(void)
{
    struct log_limit lim = {0};

    reset();
    log_set_level(LOG_LEVEL_WARNING);
    for (int i = 0; i < 100; i++) {
        log_guest(&lim, LOG_LEVEL_DEBUG, "hidden");
    }
    log_set_level(LOG_LEVEL_DEBUG);
    /* Lines nobody would see spend no budget. */
    g_assert_cmpuint(lines->len, ==, 0);
    g_assert_cmpuint(lim.suppressed, ==, 0);
    log_guest(&lim, LOG_LEVEL_DEBUG, "shown");
    g_assert_cmpuint(lines->len, ==, 1);
}

static void test_escape(void)
{
    static const char in[] = "a\nb\rc\td\\e\"f'g\x01h\x7f\xff\xc3\xa9 ok";
    char out[128];

    g_assert_cmpstr(log_escape(in, sizeof(in) - 1, out, sizeof(out)), ==,
                    "a\\nb\\rc\\td\\\\e\\\"f\\'g\\x01h\\x7f\\xff\\xc3\\xa9 ok");
    /* An embedded NUL does not end the string early. */
    g_assert_cmpstr(log_escape("x\0y", 3, out, sizeof(out)), ==, "x\\x00y");
    g_assert_cmpstr(log_escape("", 0, out, sizeof(out)), ==, "");
    /* A forged line stays on one line. */
    log_escape("evil\nvirtfs-proxyd: error: fake", 31, out, sizeof(out));
    g_assert_null(strchr(out, '\n'));
}

static void test_escape_truncation(void)
{
    char out[64];
    char big[300];

    memset(big, '\n', sizeof(big));
    /* Every capacity, every cut: NUL-terminated, within cap, whole escapes. */
    for (size_t cap = 1; cap <= sizeof(out); cap++) {
        memset(out, 'Z', sizeof(out));
        log_escape(big, sizeof(big), out, cap);
        g_assert_cmpuint(strlen(out), <, cap);
        if (cap > 4) {
            g_assert_true(g_str_has_suffix(out, "..."));
            /* No half escape before the marker: an even number of chars. */
            g_assert_cmpuint((strlen(out) - 3) % 2, ==, 0);
        }
    }
    for (size_t cap = 1; cap <= sizeof(out); cap++) {
        memset(out, 'Z', sizeof(out));
        log_escape("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0", 16, out,
                   cap);
        g_assert_cmpuint(strlen(out), <, cap);
        if (cap <= 16 * 4) {
            size_t body = strlen(out) - (g_str_has_suffix(out, "...") ? 3 : 0);

            g_assert_cmpuint(body % 4, ==, 0);
        }
    }
    /* Exactly fitting: no marker. */
    g_assert_cmpstr(log_escape("abc", 3, out, 4), ==, "abc");
    g_assert_cmpstr(log_escape("abcd", 4, out, 4), ==, "abc");
    g_assert_cmpstr(log_escape("abcdef", 6, out, 6), ==, "ab...");
    /* cap 0 writes nothing at all. */
    out[0] = 'Z';
    log_escape("abc", 3, out, 0);
    g_assert_cmpint(out[0], ==, 'Z');
}

/* A long line and its summary are cut, not overflowed. */
static void test_long_line(void)
{
    struct log_limit lim = {0};
    g_autofree char *huge = g_strnfill(5000, 'x');

    reset();
    for (int i = 0; i < LOG_GUEST_BURST + 3; i++) {
        log_guest(&lim, LOG_LEVEL_WARNING, "%s", huge);
    }
    clock_ms += LOG_GUEST_INTERVAL_MS;
    log_guest(&lim, LOG_LEVEL_WARNING, "%s", huge);
    g_assert_cmpuint(lines->len, ==, LOG_GUEST_BURST + 1);
    g_assert_cmpuint(strlen(g_ptr_array_index(lines, lines->len - 1)), <, 1024);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    lines = g_ptr_array_new_with_free_func(g_free);
    log_setup(false, LOG_LEVEL_DEBUG);
    log_set_clock(fake_clock);
    log_set_sink(capture, NULL);
    g_test_add_func("/log/burst", test_burst);
    g_test_add_func("/log/steady-rate", test_steady_rate);
    g_test_add_func("/log/suppression-summary", test_suppression_summary);
    g_test_add_func("/log/global-cap", test_global_cap);
    g_test_add_func("/log/level-filtered", test_level_filtered);
    g_test_add_func("/log/escape", test_escape);
    g_test_add_func("/log/escape-truncation", test_escape_truncation);
    g_test_add_func("/log/long-line", test_long_line);
    ret = g_test_run();
    g_ptr_array_free(lines, TRUE);
    return ret;
}
