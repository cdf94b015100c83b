/* test-tally.c - connection counts per export and per uid: what the limits
 * compare with.  A count goes down exactly when a connection ends, so that
 * a guest who leaves frees its place, and one who never was counted (-f's)
 * frees nobody else's. */
#include "config.h"

#include <glib.h>

#include "tally.h"

/* Export objects are only compared by address here. */
static char ex_a1, ex_a2, ex_b, ex_orphan;
#define A1 ((const struct export *)&ex_a1)
#define A2 ((const struct export *)&ex_a2)
#define B ((const struct export *)&ex_b)
#define ORPHAN ((const struct export *)&ex_orphan)

static void test_export_limit(void)
{
    g_assert_cmpint(tally_admit("a", A1, 1000, 2, 0), ==, TALLY_ADMITTED);
    g_assert_cmpint(tally_admit("a", A1, 1001, 2, 0), ==, TALLY_ADMITTED);
    g_assert_cmpint(tally_admit("a", A1, 1002, 2, 0), ==, TALLY_EXPORT_FULL);
    /* Another export is not affected. */
    g_assert_cmpint(tally_admit("b", B, 1002, 2, 0), ==, TALLY_ADMITTED);
    /* A reload gave export a a new object: the old one's connections still
     * count for the name. */
    g_assert_cmpint(tally_admit("a", A2, 1003, 2, 0), ==, TALLY_EXPORT_FULL);
    g_assert_cmpint(tally_admit("a", A2, 1003, 3, 0), ==, TALLY_ADMITTED);
    g_assert_cmpuint(tally_export("a"), ==, 3);
    tally_remove(A1, 1000);
    g_assert_cmpuint(tally_export("a"), ==, 2);
    g_assert_cmpint(tally_admit("a", A2, 1004, 3, 0), ==, TALLY_ADMITTED);
    tally_remove(A1, 1001);
    tally_remove(A2, 1003);
    tally_remove(A2, 1004);
    tally_remove(B, 1002);
    g_assert_cmpuint(tally_export("a"), ==, 0);
    g_assert_cmpuint(tally_export("b"), ==, 0);
    g_assert_cmpuint(tally_uid(1000), ==, 0);
}

static void test_uid_limit(void)
{
    g_assert_cmpint(tally_admit("a", A1, 7, 0, 2), ==, TALLY_ADMITTED);
    g_assert_cmpint(tally_admit("b", B, 7, 0, 2), ==, TALLY_ADMITTED);
    g_assert_cmpint(tally_admit("b", B, 7, 0, 2), ==, TALLY_UID_FULL);
    g_assert_cmpint(tally_admit("b", B, 8, 0, 2), ==, TALLY_ADMITTED);
    g_assert_cmpuint(tally_uid(7), ==, 2);
    /* Refused ones were not counted. */
    g_assert_cmpuint(tally_export("b"), ==, 2);
    tally_remove(A1, 7);
    g_assert_cmpint(tally_admit("a", A1, 7, 0, 2), ==, TALLY_ADMITTED);
    tally_remove(A1, 7);
    tally_remove(B, 7);
    tally_remove(B, 8);
    g_assert_cmpuint(tally_uid(7), ==, 0);
    g_assert_cmpuint(tally_uid(8), ==, 0);
}

static void test_uncounted_and_adopted(void)
{
    /* Never counted: changes nothing, never goes below zero. */
    tally_remove(ORPHAN, 9);
    g_assert_cmpuint(tally_uid(9), ==, 0);
    /* Handed over by an upgrade: counted without a limit. */
    tally_add("a", A1, 9);
    tally_add(NULL, ORPHAN, 9);
    g_assert_cmpuint(tally_uid(9), ==, 2);
    g_assert_cmpuint(tally_export("a"), ==, 1);
    g_assert_cmpint(tally_admit("a", A1, 9, 0, 2), ==, TALLY_UID_FULL);
    tally_remove(ORPHAN, 9);
    tally_remove(A1, 9);
    g_assert_cmpuint(tally_uid(9), ==, 0);
    g_assert_cmpuint(tally_export("a"), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tally/export-limit", test_export_limit);
    g_test_add_func("/tally/uid-limit", test_uid_limit);
    g_test_add_func("/tally/uncounted-and-adopted", test_uncounted_and_adopted);
    return g_test_run();
}
