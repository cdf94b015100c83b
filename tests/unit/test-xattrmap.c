/* test-xattrmap.c - xattr name rules: grammar, first match, the guest's
 * view of a host list, and the policy layer's list and size answers. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <linux/limits.h>
#include <string.h>

#include "policy.h"
#include "proto.h"
#include "xattrmap.h"

/* The rule set doc/virtfs-proxyd.conf.5 recommends for multi-tenant hosts. */
#define TENANT_RULES                                                                               \
    "map security. user.virtfs.security.; map trusted. user.virtfs.trusted.;"                      \
    " hide user.virtfs.; ok user.; ok system.posix_acl_; refuse *"

static struct xattrmap *parse_ok(const char *text)
{
    GError *error = NULL;
    struct xattrmap *map = xattrmap_parse(text, &error);

    g_assert_no_error(error);
    g_assert_nonnull(map);
    return map;
}

static void parse_bad(const char *text, const char *token)
{
    GError *error = NULL;

    g_assert_null(xattrmap_parse(text, &error));
    g_assert_nonnull(error);
    if (error != NULL && strstr(error->message, token) == NULL) {
        g_test_message("'%s': message '%s' does not name '%s'", text, error->message, token);
        g_test_fail();
    }
    g_clear_error(&error);
}

/* The host name of a guest name, or the error as a string. */
static char *host_of(const struct xattrmap *map, const char *guest)
{
    char out[XATTR_NAME_MAX + 1];
    int ret = xattrmap_to_host(map, guest, out, sizeof(out));

    return ret == 0 ? g_strdup(out) : g_strdup_printf("error %d", -ret);
}

#define ASSERT_HOST(map, guest, want)                                                              \
    do {                                                                                           \
        g_autofree char *got_ = host_of(map, guest);                                               \
        g_assert_cmpstr(got_, ==, want);                                                           \
    } while (0)

static void test_to_host(void)
{
    struct xattrmap *map = parse_ok(TENANT_RULES);
    g_autofree char *text = xattrmap_describe(map);
    g_autofree char *enodata = g_strdup_printf("error %d", ENODATA);
    g_autofree char *eperm = g_strdup_printf("error %d", EPERM);

    g_assert_cmpstr(text, ==,
                    "map security. user.virtfs.security.; map trusted. user.virtfs.trusted.; "
                    "hide user.virtfs.; ok user.; ok system.posix_acl_; refuse *");
    ASSERT_HOST(map, "security.capability", "user.virtfs.security.capability");
    ASSERT_HOST(map, "security.selinux", "user.virtfs.security.selinux");
    ASSERT_HOST(map, "trusted.overlay.opaque", "user.virtfs.trusted.overlay.opaque");
    ASSERT_HOST(map, "user.mime_type", "user.mime_type");
    ASSERT_HOST(map, "system.posix_acl_access", "system.posix_acl_access");
    /* the host's own namespace is invisible, whatever the guest names */
    ASSERT_HOST(map, "user.virtfs.security.capability", enodata);
    ASSERT_HOST(map, "user.virtfs.", enodata);
    /* no rule but the last */
    ASSERT_HOST(map, "system.nfs4_acl", eperm);
    ASSERT_HOST(map, "foo", eperm);
    xattrmap_free(map);
}

/* First match wins; without a match, refused. */
static void test_order(void)
{
    struct xattrmap *a = parse_ok("hide user.secret; ok user.");
    struct xattrmap *b = parse_ok("ok user.; hide user.secret");
    struct xattrmap *none = parse_ok("ok user.");
    g_autofree char *enodata = g_strdup_printf("error %d", ENODATA);
    g_autofree char *eperm = g_strdup_printf("error %d", EPERM);

    ASSERT_HOST(a, "user.secret.x", enodata);
    ASSERT_HOST(a, "user.x", "user.x");
    ASSERT_HOST(b, "user.secret.x", "user.secret.x");
    ASSERT_HOST(none, "trusted.x", eperm);
    xattrmap_free(a);
    xattrmap_free(b);
    xattrmap_free(none);
}

/* A mapped name longer than a name can be is ERANGE, the kernel's answer. */
static void test_too_long(void)
{
    struct xattrmap *map = parse_ok("map s. user.a-rather-long-host-prefix.");
    char guest[XATTR_NAME_MAX + 1];
    g_autofree char *erange = g_strdup_printf("error %d", ERANGE);
    size_t room = XATTR_NAME_MAX - strlen("user.a-rather-long-host-prefix.");

    memset(guest, 'x', sizeof(guest));
    memcpy(guest, "s.", 2);
    guest[2 + room] = '\0';
    {
        g_autofree char *got = host_of(map, guest);

        g_assert_cmpuint(strlen(got), ==, XATTR_NAME_MAX);
    }
    guest[2 + room] = 'x';
    guest[3 + room] = '\0';
    ASSERT_HOST(map, guest, erange);
    xattrmap_free(map);
}

static void test_syntax(void)
{
    parse_bad("", "no rule");
    parse_bad("ok", "'ok'");
    parse_bad("ok user. extra", "'ok user. extra'");
    parse_bad("map security.", "'map security.'");
    parse_bad("map * user.", "not *");
    parse_bad("pass user.", "'pass user.'");
    parse_bad("ok user.;; ok trusted.", "empty rule 2");
    GString *s = g_string_new(NULL);

    for (int i = 0; i <= XATTRMAP_MAX_RULES; i++) {
        g_string_append_printf(s, "ok u%d.;", i);
    }
    parse_bad(s->str, "more than");
    g_string_free(s, TRUE);
    /* a trailing ';' and blanks are fine */
    xattrmap_free(parse_ok("  ok user. ;\tok   trusted.  ;"));
}

/* The guest's view of a host list: hidden names absent, mapped renamed,
 * and only names that lead back to themselves. */
static void test_list(void)
{
    static const char host[] = "user.virtfs.security.capability\0security.selinux\0user.a\0"
                               "user.virtfs.private\0system.posix_acl_access\0"
                               "user.virtfs.trusted.t1\0trusted.host\0";
    static const char want[] = "security.capability\0user.a\0system.posix_acl_access\0"
                               "trusted.t1\0";
    struct xattrmap *map = parse_ok(TENANT_RULES);
    char out[256];
    ssize_t n = xattrmap_list_to_guest(map, host, sizeof(host) - 1, out, sizeof(out));

    g_assert_cmpint(n, ==, sizeof(want) - 1);
    g_assert_cmpmem(out, (size_t)MAX(n, 0), want, sizeof(want) - 1);
    /* out of room */
    g_assert_cmpint(xattrmap_list_to_guest(map, host, sizeof(host) - 1, out, 10), ==, -E2BIG);
    xattrmap_free(map);

    /* "ok user." before the map: user.virtfs.security.x is shown as it is
     * (its guest name leads back to it); the map never applies */
    map = parse_ok("ok user.; map security. user.virtfs.security.");
    n = xattrmap_list_to_guest(map, "user.virtfs.security.x", sizeof("user.virtfs.security.x"),
                               out, sizeof(out));
    g_assert_cmpint(n, ==, sizeof("user.virtfs.security.x"));
    g_assert_cmpstr(out, ==, "user.virtfs.security.x");
    xattrmap_free(map);

    /* a host name that maps to a guest name an earlier rule sends
     * elsewhere is not listed: the guest could not reach it */
    map = parse_ok("hide security.x; map security. user.s.");
    n = xattrmap_list_to_guest(map, "user.s.x\0user.s.y", sizeof("user.s.x\0user.s.y"), out,
                               sizeof(out));
    g_assert_cmpint(n, ==, sizeof("security.y"));
    g_assert_cmpstr(out, ==, "security.y");
    xattrmap_free(map);
}

/* The policy layer asks the host for its whole list, and answers the
 * guest's size: the probe gives the rewritten list's length, a short buffer
 * ERANGE. */
static void test_policy_list(void)
{
    static const char host[] = "user.virtfs.security.capability\0user.virtfs.x\0user.a\0";
    static const char want[] = "security.capability\0user.a\0";
    struct policy *pol = policy_new(NULL, NULL, parse_ok(TENANT_RULES));
    static struct proto_reply rep;
    struct proto_req req = {.type = T_LLISTXATTR};
    struct policy_req pr;
    const int32_t sizes[] = {0, (int32_t)sizeof(want) - 2, (int32_t)sizeof(want) - 1, 1000};

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        int32_t got;

        req.a[0].d = (uint32_t)sizes[i];
        g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
        g_assert_cmpuint(req.a[0].d, ==, PROTO_MAX_STRING);
        memcpy(proto_reply_string_area(&rep), host, sizeof(host) - 1);
        proto_reply_string_commit(&rep, sizeof(host) - 1);
        policy_reply(pol, &pr, &rep);
        memcpy(&got, rep.buf + 8, 4);
        if (sizes[i] == 0) {
            g_assert_cmpuint(rep.len, ==, 12);
            g_assert_cmpint(got, ==, sizeof(want) - 1);
        } else if (sizes[i] < (int32_t)sizeof(want) - 1) {
            g_assert_cmpuint(rep.len, ==, 12);
            g_assert_cmpint(got, ==, -ERANGE);
        } else {
            g_assert_cmpuint(rep.len, ==, 8 + 2 + sizeof(want) - 1);
            g_assert_cmpmem(rep.buf + 10, rep.len - 10, want, sizeof(want) - 1);
        }
    }
    /* a negative size is not touched: ops.c answers EINVAL for it */
    req.a[0].d = (uint32_t)-5;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(req.a[0].d, ==, (uint32_t)-5);
    policy_unref(pol);
}

/* Names in requests: translated in place, errors by operation. */
static void test_policy_names(void)
{
    struct policy *pol = policy_new(NULL, NULL, parse_ok(TENANT_RULES));
    char cap[] = "security.capability", own[] = "user.virtfs.x", empty[] = "";
    struct proto_req req = {.type = T_LSETXATTR};
    struct policy_req pr;

    req.a[1].s.p = cap;
    req.a[1].s.len = sizeof(cap) - 1;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpstr(req.a[1].s.p, ==, "user.virtfs.security.capability");
    g_assert_cmpuint(req.a[1].s.len, ==, strlen("user.virtfs.security.capability"));
    req.a[1].s.p = own;
    req.a[1].s.len = sizeof(own) - 1;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -EPERM); /* set a hidden name */
    req.type = T_LREMOVEXATTR;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -ENODATA);
    req = (struct proto_req){.type = T_LGETXATTR};
    req.a[2].s.p = own;
    req.a[2].s.len = sizeof(own) - 1;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -ENODATA);
    req.a[2].s.p = empty;
    req.a[2].s.len = 0;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -ERANGE);
    policy_unref(pol);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_set_nonfatal_assertions();
    g_test_add_func("/xattrmap/to-host", test_to_host);
    g_test_add_func("/xattrmap/order", test_order);
    g_test_add_func("/xattrmap/too-long", test_too_long);
    g_test_add_func("/xattrmap/syntax", test_syntax);
    g_test_add_func("/xattrmap/list", test_list);
    g_test_add_func("/policy/list", test_policy_list);
    g_test_add_func("/policy/names", test_policy_names);
    return g_test_run();
}
