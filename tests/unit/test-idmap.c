/* test-idmap.c - the id map's grammar and translation, and the policy
 * layer that applies it to requests, stat replies and ACL values. */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "idmap.h"
#include "policy.h"
#include "proto.h"

static struct idmap *parse_ok(const char *text)
{
    GError *error = NULL;
    struct idmap *map = idmap_parse(text, &error);

    g_assert_no_error(error);
    g_assert_nonnull(map);
    return map;
}

/* The message for a refused map, which must quote the bad token. */
static char *parse_bad(const char *text, const char *token)
{
    GError *error = NULL;
    struct idmap *map = idmap_parse(text, &error);
    char *msg;

    g_assert_null(map);
    g_assert_nonnull(error);
    if (error == NULL) {
        idmap_free(map);
        return g_strdup("");
    }
    msg = g_strdup(error->message);
    g_error_free(error);
    if (token != NULL && strstr(msg, token) == NULL) {
        g_test_message("'%s': message '%s' does not name '%s'", text, msg, token);
        g_test_fail();
    }
    return msg;
}

static uint32_t host_of(const struct idmap *map, uint32_t guest)
{
    uint32_t host = 0xdeadbeef;

    g_assert_cmpint(idmap_to_host(map, guest, &host), ==, 0);
    return host;
}

static void test_ranges(void)
{
    struct idmap *map = parse_ok(" 0:100000:65536 , 65536:5000:10,70000:70000:1");
    uint32_t host;
    g_autofree char *text = idmap_describe(map);

    g_assert_cmpstr(text, ==, "0:100000:65536,65536:5000:10,70000:70000:1");
    g_assert_cmpuint(host_of(map, 0), ==, 100000);
    g_assert_cmpuint(host_of(map, 1000), ==, 101000);
    g_assert_cmpuint(host_of(map, 65535), ==, 165535);
    g_assert_cmpuint(host_of(map, 65536), ==, 5000);
    g_assert_cmpuint(host_of(map, 65545), ==, 5009);
    g_assert_cmpuint(host_of(map, 70000), ==, 70000);
    /* just past each range: unmapped */
    g_assert_cmpint(idmap_to_host(map, 65546, &host), ==, -EPERM);
    g_assert_cmpint(idmap_to_host(map, 70001, &host), ==, -EPERM);
    g_assert_cmpint(idmap_to_host(map, UINT32_MAX, &host), ==, -EPERM);
    /* and back */
    g_assert_cmpuint(idmap_to_guest(map, 100000), ==, 0);
    g_assert_cmpuint(idmap_to_guest(map, 165535), ==, 65535);
    g_assert_cmpuint(idmap_to_guest(map, 5009), ==, 65545);
    g_assert_cmpuint(idmap_to_guest(map, 99999), ==, IDMAP_OVERFLOW_ID);
    g_assert_cmpuint(idmap_to_guest(map, 165536), ==, IDMAP_OVERFLOW_ID);
    g_assert_cmpuint(idmap_to_guest(map, 0), ==, IDMAP_OVERFLOW_ID);
    g_assert_cmpuint(IDMAP_OVERFLOW_ID, ==, 65534);
    idmap_free(map);
}

/* Ranges may not overlap on either side: the map must be invertible. */
static void test_overlaps(void)
{
    g_autofree char *m1 = parse_bad("0:100:10,9:200:5", "'9:200:5'");
    g_autofree char *m2 = parse_bad("0:100:10,20:109:1", "host side");
    g_autofree char *m3 = parse_bad("5:5:1,0:0:6", "guest side");
    struct idmap *map;

    g_assert_nonnull(strstr(m1, "guest side"));
    g_assert_nonnull(strstr(m3, "5:5:1"));
    /* touching is not overlapping */
    map = parse_ok("0:100:10,10:110:10");
    g_assert_cmpuint(host_of(map, 19), ==, 119);
    idmap_free(map);
}

static void test_squash(void)
{
    struct idmap *all = parse_ok("squash=65534");
    struct idmap *but = parse_ok("0:1000:1, squash=1000");
    struct idmap *but2 = parse_ok("0:0:1,1000:2000:10,squash=99");
    g_autofree char *text = idmap_describe(but);

    g_assert_cmpstr(text, ==, "0:1000:1,squash=1000");
    g_assert_cmpuint(host_of(all, 0), ==, 65534);
    g_assert_cmpuint(host_of(all, 4294967294u), ==, 65534);
    g_assert_cmpuint(idmap_to_guest(all, 65534), ==, IDMAP_OVERFLOW_ID);
    {
        uint32_t host;

        g_assert_cmpint(idmap_to_host(all, UINT32_MAX, &host), ==, -EPERM); /* no id */
    }
    /* every guest id lands as 1000, and 1000 shows as the guest's root */
    g_assert_cmpuint(host_of(but, 0), ==, 1000);
    g_assert_cmpuint(host_of(but, 1), ==, 1000);
    g_assert_cmpuint(host_of(but, 12345), ==, 1000);
    g_assert_cmpuint(idmap_to_guest(but, 1000), ==, 0);
    /* "all but a list" */
    g_assert_cmpuint(host_of(but2, 0), ==, 0);
    g_assert_cmpuint(host_of(but2, 1005), ==, 2005);
    g_assert_cmpuint(host_of(but2, 1), ==, 99);
    g_assert_cmpuint(host_of(but2, 1010), ==, 99);
    g_assert_cmpuint(idmap_to_guest(but2, 99), ==, IDMAP_OVERFLOW_ID);
    g_free(parse_bad("squash=1,squash=2", "squash=2"));
    g_free(parse_bad("squash=", "squash="));
    g_free(parse_bad("squash=root", "squash=root"));
    g_free(parse_bad("squash=4294967295", "squash=4294967295"));
    idmap_free(all);
    idmap_free(but);
    idmap_free(but2);
}

/* Ids run 0 .. 2^32-2; (uint32_t)-1 is never part of a range. */
static void test_boundaries(void)
{
    struct idmap *top = parse_ok("4294967294:0:1");
    struct idmap *whole = parse_ok("0:0:4294967295");
    struct idmap *high = parse_ok("0:4294967294:1");
    uint32_t host;

    g_assert_cmpuint(host_of(top, 4294967294u), ==, 0);
    g_assert_cmpuint(idmap_to_guest(top, 0), ==, 4294967294u);
    g_assert_cmpuint(host_of(whole, 4294967294u), ==, 4294967294u);
    g_assert_cmpint(idmap_to_host(whole, UINT32_MAX, &host), ==, -EPERM);
    g_assert_cmpuint(idmap_to_guest(whole, UINT32_MAX), ==, IDMAP_OVERFLOW_ID);
    g_assert_cmpuint(host_of(high, 0), ==, 4294967294u);
    idmap_free(top);
    idmap_free(whole);
    idmap_free(high);
}

/* A range past 2^32 - 2 on either side, or numbers that wrap, are refused. */
static void test_overflow(void)
{
    g_free(parse_bad("4294967294:0:2", "'4294967294:0:2'"));
    g_free(parse_bad("0:4294967295:1", "0:4294967295:1"));
    g_free(parse_bad("1:0:4294967295", "largest id"));
    g_free(parse_bad("0:0:4294967296", "0:0:4294967296"));
    g_free(parse_bad("4294967296:0:1", "4294967296"));
    g_free(parse_bad("18446744073709551617:0:1", "18446744073709551617"));
    g_free(parse_bad("0:1:0", "'0:1:0'"));
    g_free(parse_bad("-1:0:1", "-1:0:1"));
}

static void test_syntax(void)
{
    g_free(parse_bad("", "empty map"));
    g_free(parse_bad("0:0:1,,1:1:1", "empty item 2"));
    g_free(parse_bad("0:0", "'0:0'"));
    g_free(parse_bad("0:0:1:1", "0:0:1:1"));
    g_free(parse_bad("root:0:1", "root:0:1"));
    g_free(parse_bad("0:0:1x", "0:0:1x"));
    g_free(parse_bad("0 :0:1", "0 :0:1"));
    g_autofree char *many = NULL;
    GString *s = g_string_new(NULL);

    for (int i = 0; i <= IDMAP_MAX_RANGES; i++) {
        g_string_append_printf(s, "%s%d:%d:1", i > 0 ? "," : "", i, i);
    }
    many = g_string_free(s, FALSE);
    g_free(parse_bad(many, "more than"));
}

/* ---- the policy layer ---------------------------------------------------- */

static struct policy *policy_of(const char *uid, const char *gid)
{
    return policy_new(uid != NULL ? parse_ok(uid) : NULL, gid != NULL ? parse_ok(gid) : NULL,
                      NULL);
}

/* Creations name their uid:gid at the row's indices; chown keeps -1. */
static void test_policy_ids_in(void)
{
    struct policy *pol = policy_of("0:100000:1000", "0:200000:1000");
    struct policy_req pr;
    struct proto_req req = {.type = T_MKDIR};

    g_assert_null(policy_new(NULL, NULL, NULL));
    req.a[0].d = 5;
    req.a[1].d = 7;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(req.a[0].d, ==, 100005);
    g_assert_cmpuint(req.a[1].d, ==, 200007);

    req = (struct proto_req){.type = T_CREATE};
    req.a[3].d = 999;
    req.a[4].d = UINT32_MAX; /* the daemon's own id: the guest's root with a map */
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(req.a[3].d, ==, 100999);
    g_assert_cmpuint(req.a[4].d, ==, 200000);

    req = (struct proto_req){.type = T_SYMLINK};
    req.a[0].d = 1000; /* unmapped */
    req.a[1].d = 0;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -EPERM);

    req = (struct proto_req){.type = T_CHOWN};
    req.a[1].d = UINT32_MAX;
    req.a[2].d = 3;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(req.a[1].d, ==, UINT32_MAX);
    g_assert_cmpuint(req.a[2].d, ==, 200003);
    req.a[1].d = 1;
    req.a[2].d = 5000;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, -EPERM);
    policy_unref(pol);

    /* only a gid map: uids pass through, -1 included */
    pol = policy_of(NULL, "squash=100");
    req = (struct proto_req){.type = T_MKNOD};
    req.a[0].d = UINT32_MAX;
    req.a[1].d = 4;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(req.a[0].d, ==, UINT32_MAX);
    g_assert_cmpuint(req.a[1].d, ==, 100);
    policy_unref(pol);
}

static void put_stat_ids(struct proto_reply *rep, uint32_t uid, uint32_t gid)
{
    struct stat st = {.st_uid = uid, .st_gid = gid, .st_mode = 0100644, .st_size = 77};

    proto_reply_stat(rep, &st);
}

static uint32_t get32(const struct proto_reply *rep, size_t off)
{
    uint32_t v;

    memcpy(&v, rep->buf + off, sizeof(v));
    return v;
}

static void test_policy_stat_out(void)
{
    struct policy *pol = policy_of("0:100000:1000", "0:200000:1000");
    struct policy_req pr;
    struct proto_req req = {.type = T_LSTAT};
    static struct proto_reply rep;

    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    put_stat_ids(&rep, 100042, 200007);
    policy_reply(pol, &pr, &rep);
    g_assert_cmpuint(get32(&rep, PROTO_STAT_UID_OFF), ==, 42);
    g_assert_cmpuint(get32(&rep, PROTO_STAT_GID_OFF), ==, 7);
    /* the mode before and the size after are untouched */
    g_assert_cmpuint(get32(&rep, PROTO_STAT_UID_OFF - 4), ==, 0100644);
    g_assert_cmpuint(get32(&rep, PROTO_STAT_GID_OFF + 4 + 8), ==, 77);
    put_stat_ids(&rep, 0, 99);
    policy_reply(pol, &pr, &rep);
    g_assert_cmpuint(get32(&rep, PROTO_STAT_UID_OFF), ==, 65534);
    g_assert_cmpuint(get32(&rep, PROTO_STAT_GID_OFF), ==, 65534);
    /* an error reply is left alone */
    proto_reply_error(&rep, REPLY_DATA, -ENOENT);
    policy_reply(pol, &pr, &rep);
    g_assert_cmpuint(rep.len, ==, 12);
    g_assert_cmpint((int32_t)get32(&rep, 8), ==, -ENOENT);
    policy_unref(pol);
}

/* An ACL value: version 2, then (tag, perm, id) entries. */
static size_t make_acl(uint8_t *buf, const uint16_t *tags, const uint32_t *ids, size_t n)
{
    uint32_t v = htole32(2);

    memcpy(buf, &v, 4);
    for (size_t i = 0; i < n; i++) {
        uint16_t tag = htole16(tags[i]), perm = htole16(6);
        uint32_t id = htole32(ids[i]);

        memcpy(buf + 4 + 8 * i, &tag, 2);
        memcpy(buf + 6 + 8 * i, &perm, 2);
        memcpy(buf + 8 + 8 * i, &id, 4);
    }
    return 4 + 8 * n;
}

static uint32_t acl_id(const uint8_t *buf, size_t i)
{
    uint32_t id;

    memcpy(&id, buf + 8 + 8 * i, 4);
    return le32toh(id);
}

static void test_policy_acl(void)
{
    /* USER_OBJ, USER 5, GROUP_OBJ, GROUP 7, MASK, OTHER */
    static const uint16_t tags[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20};
    uint32_t ids[] = {UINT32_MAX, 5, UINT32_MAX, 7, UINT32_MAX, UINT32_MAX};
    struct policy *pol = policy_of("0:100000:1000", "0:200000:1000");
    uint8_t buf[64], before[64];
    size_t len = make_acl(buf, tags, ids, 6);

    g_assert_cmpint(policy_acl_to_host(pol, buf, len), ==, 0);
    g_assert_cmpuint(acl_id(buf, 1), ==, 100005);
    g_assert_cmpuint(acl_id(buf, 3), ==, 200007);
    g_assert_cmpuint(acl_id(buf, 0), ==, UINT32_MAX); /* entries without an id */
    g_assert_cmpuint(acl_id(buf, 5), ==, UINT32_MAX);
    policy_acl_to_guest(pol, buf, len);
    g_assert_cmpuint(acl_id(buf, 1), ==, 5);
    g_assert_cmpuint(acl_id(buf, 3), ==, 7);
    /* unmapped on the way in: EPERM, and nothing rewritten */
    ids[1] = 4;
    ids[3] = 5000;
    len = make_acl(buf, tags, ids, 6);
    memcpy(before, buf, len);
    g_assert_cmpint(policy_acl_to_host(pol, buf, len), ==, -EPERM);
    g_assert_cmpmem(buf, len, before, len);
    /* unmapped on the way out: the overflow id */
    policy_acl_to_guest(pol, buf, len);
    g_assert_cmpuint(acl_id(buf, 1), ==, 65534);
    g_assert_cmpuint(acl_id(buf, 3), ==, 65534);
    /* not an ACL the kernel takes: left for the kernel to refuse */
    buf[0] = 3;
    memcpy(before, buf, len);
    g_assert_cmpint(policy_acl_to_host(pol, buf, len), ==, 0);
    g_assert_cmpmem(buf, len, before, len);
    g_assert_cmpint(policy_acl_to_host(pol, buf, 7), ==, 0);
    policy_unref(pol);
}

/* Setting an ACL through the request layer rewrites the value in place,
 * only for the two ACL names. */
static void test_policy_acl_request(void)
{
    static const uint16_t tags[] = {0x02};
    const uint32_t ids[] = {9};
    struct policy *pol = policy_of("0:100000:1000", NULL);
    struct policy_req pr;
    uint8_t buf[16];
    size_t len = make_acl(buf, tags, ids, 1);
    char name[] = "system.posix_acl_default", other[] = "user.acl";
    struct proto_req req = {.type = T_LSETXATTR};

    req.a[1].s.p = name;
    req.a[1].s.len = sizeof(name) - 1;
    req.a[2].s.p = (char *)buf;
    req.a[2].s.len = (uint16_t)len;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(acl_id(buf, 0), ==, 100009);
    req.a[1].s.p = other;
    req.a[1].s.len = sizeof(other) - 1;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_cmpuint(acl_id(buf, 0), ==, 100009);

    req = (struct proto_req){.type = T_LGETXATTR};
    req.a[0].d = 100;
    req.a[2].s.p = name;
    req.a[2].s.len = sizeof(name) - 1;
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_true(pr.acl_reply);
    req.a[0].d = 0; /* the size probe has no value to rewrite */
    g_assert_cmpint(policy_request(pol, &req, &pr), ==, 0);
    g_assert_false(pr.acl_reply);
    policy_unref(pol);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_set_nonfatal_assertions();
    g_test_add_func("/idmap/ranges", test_ranges);
    g_test_add_func("/idmap/overlaps", test_overlaps);
    g_test_add_func("/idmap/squash", test_squash);
    g_test_add_func("/idmap/boundaries", test_boundaries);
    g_test_add_func("/idmap/overflow", test_overflow);
    g_test_add_func("/idmap/syntax", test_syntax);
    g_test_add_func("/policy/ids-in", test_policy_ids_in);
    g_test_add_func("/policy/stat-out", test_policy_stat_out);
    g_test_add_func("/policy/acl", test_policy_acl);
    g_test_add_func("/policy/acl-request", test_policy_acl_request);
    return g_test_run();
}
