/* test-settings.c - the configuration file: what it accepts and how it
 * names what it refuses. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "settings.h"

static char *tmpdir;

/* Loads text as a configuration file; on failure, returns NULL and the
 * message in *msg. */
static struct settings *load(const char *text, char **msg)
{
    g_autofree char *file = g_build_filename(tmpdir, "test.conf", NULL);
    GError *error = NULL;
    struct settings *set;

    g_assert_true(g_file_set_contents(file, text, -1, NULL));
    set = settings_load(file, &error);
    if (set == NULL) {
        *msg = g_strdup(error->message);
        g_error_free(error);
    }
    return set;
}

static void test_valid(void)
{
    char *msg = NULL;
    struct settings *set = load("[daemon]\n"
                                "max-connections = 10\n"
                                "max-connections-per-uid = 4\n"
                                "frame-timeout = 3\n"
                                "output-timeout = 12\n"
                                "io-stall-ms = 250\n"
                                "log-level = debug\n"
                                "[export one]\n"
                                "path = /srv/one\n"
                                "socket = /run/one.sock\n"
                                "uid = 0\n"
                                "gid = root\n"
                                "readonly = true\n"
                                "max-connections = 2\n"
                                "[export two]\n"
                                "path = /srv/two\n"
                                "socket = /run/two.sock\n"
                                "uid = root\n"
                                "gid = 100\n"
                                "allow-devices = true\n",
                                &msg);
    const struct export_settings *one, *two;

    g_assert_null(msg);
    g_assert_nonnull(set);
    g_assert_cmpuint(set->max_conns, ==, 10);
    g_assert_cmpuint(set->max_conns_per_uid, ==, 4);
    g_assert_cmpuint(set->frame_timeout_s, ==, 3);
    g_assert_cmpuint(set->output_timeout_s, ==, 12);
    g_assert_cmpuint(set->io_stall_ms, ==, 250);
    g_assert_cmpint(set->log_level, ==, LOG_LEVEL_DEBUG);
    g_assert_cmpuint(set->exports->len, ==, 2);
    one = settings_find_export(set, "one");
    two = settings_find_export(set, "two");
    g_assert_nonnull(one);
    g_assert_nonnull(two);
    g_assert_cmpstr(one->path, ==, "/srv/one");
    g_assert_true(one->readonly);
    g_assert_cmpuint(one->max_conns, ==, 2);
    g_assert_cmpuint(two->max_conns, ==, 0);
    g_assert_false(one->allow_devices);
    g_assert_cmpuint(two->gid, ==, 100);
    g_assert_true(two->allow_devices);
    g_assert_null(settings_find_export(set, "three"));
    settings_free(set);
}

static void test_defaults(void)
{
    char *msg = NULL;
    struct settings *set =
        load("[export x]\npath=/x\nsocket=/x.sock\nuid=0\ngid=0\n", &msg);

    g_assert_nonnull(set);
    g_assert_cmpuint(set->max_conns, ==, SETTINGS_DEFAULT_MAX_CONNS);
    g_assert_cmpuint(set->frame_timeout_s, ==, SETTINGS_DEFAULT_FRAME_TIMEOUT);
    g_assert_cmpint(set->log_level, ==, LOG_LEVEL_INFO);
    /* The limits per uid and per export are off unless asked for. */
    g_assert_cmpuint(set->max_conns_per_uid, ==, 0);
    g_assert_cmpuint(((struct export_settings *)g_ptr_array_index(set->exports, 0))->max_conns,
                     ==, 0);
    g_assert_cmpuint(set->output_timeout_s, ==, 30);
    g_assert_cmpuint(set->io_stall_ms, ==, 100);
    settings_free(set);
}

static void test_refused(void)
{
    static const struct {
        const char *text;
        const char *message_part;
    } cases[] = {
        {"", "nothing to serve"},
        {"[exports x]\n", "unknown group [exports x]"},
        {"[export x]\npath=/x\nsocket=/x.sock\nuid=0\ngid=0\nreadonyl=true\n",
         "unknown key 'readonyl'"},
        {"[export x]\nsocket=/x.sock\nuid=0\ngid=0\n", "missing key 'path'"},
        {"[export x]\npath=/x\nsocket=/x.sock\nuid=0\n", "missing key 'gid'"},
        {"[export x]\npath=x\nsocket=/x.sock\nuid=0\ngid=0\n", "must be absolute"},
        {"[export x]\npath=/x\nsocket=/x.sock\nuid=nosuchuser\ngid=0\n", "no user 'nosuchuser'"},
        {"[export x]\npath=/x\nsocket=/x.sock\nuid=0\ngid=0\nreadonly=maybe\n",
         "expected true or false"},
        {"[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n[export y]\npath=/y\nsocket=/s\nuid=0\n"
         "gid=0\n",
         "also used by export 'x'"},
        {"[export a/b]\npath=/x\nsocket=/s\nuid=0\ngid=0\n", "without '/'"},
        {"[daemon]\nframe-timeout=0\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "frame-timeout"},
        {"[daemon]\nmax-connections=-1\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "max-connections"},
        {"[daemon]\nmax-connections-per-uid=some\n[export x]\npath=/x\nsocket=/s\nuid=0\n"
         "gid=0\n",
         "max-connections-per-uid: 'some' is not a number"},
        {"[daemon]\noutput-timeout=0\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "output-timeout: '0' is not a number of seconds from 1 to 86400"},
        {"[daemon]\noutput-timeout=86401\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "output-timeout"},
        {"[daemon]\nio-stall-ms=0\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "io-stall-ms: '0' is not a number of milliseconds from 1 to 60000"},
        {"[daemon]\nio-stall-ms=1e3\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
         "io-stall-ms"},
        {"[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\nmax-connections=-2\n",
         "[export x] max-connections: '-2' is not a number"},
        {"[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\nmax-connections-per-uid=2\n",
         "unknown key 'max-connections-per-uid'"},
        {"[daemon]\nlog-level=loud\n[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n", "log-level"},
        {"not a key file", "test.conf"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *msg = NULL;
        struct settings *set = load(cases[i].text, &msg);

        g_assert_null(set);
        g_assert_nonnull(msg);
        if (strstr(msg, cases[i].message_part) == NULL) {
            g_test_message("case %zu: '%s' does not say '%s'", i, msg, cases[i].message_part);
            g_test_fail();
        }
        /* Every message names the file. */
        g_assert_nonnull(strstr(msg, "test.conf"));
    }
}

/* [daemon] lane-threads: the cap on lane threads, 64 unless set, 1..4096. */
static void test_lane_threads(void)
{
    static const char *const refused[] = {"0", "4097", "-1", "many"};
    const char *exp = "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n";
    g_autofree char *text = g_strdup_printf("[daemon]\nlane-threads = 8\n%s", exp);
    char *msg = NULL;
    struct settings *set = load(text, &msg);

    g_assert_nonnull(set);
    g_assert_cmpuint(set->lane_threads, ==, 8);
    settings_free(set);
    set = load(exp, &msg);
    g_assert_nonnull(set);
    g_assert_cmpuint(set->lane_threads, ==, SETTINGS_DEFAULT_LANE_THREADS);
    g_assert_cmpuint(SETTINGS_DEFAULT_LANE_THREADS, ==, 64);
    settings_free(set);
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_autofree char *bad = g_strdup_printf("[daemon]\nlane-threads=%s\n%s", refused[i], exp);

        msg = NULL;
        g_assert_null(load(bad, &msg));
        g_assert_nonnull(strstr(msg, "lane-threads"));
        g_free(msg);
    }
}

/* [daemon] seccomp and confine: kill and landlock unless set; a bad mode
 * is refused naming the key. */
static void test_sandbox(void)
{
    const char *exp = "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n";
    g_autofree char *text = g_strdup_printf("[daemon]\nseccomp = log\nconfine = none\n%s", exp);
    static const char *const refused[] = {"seccomp = trap", "seccomp =", "confine = chroot",
                                          "confine = on"};
    char *msg = NULL;
    struct settings *set = load(text, &msg);

    g_assert_nonnull(set);
    g_assert_cmpint(set->seccomp, ==, SANDBOX_SECCOMP_LOG);
    g_assert_cmpint(set->confine, ==, SANDBOX_CONFINE_NONE);
    settings_free(set);
    set = load(exp, &msg);
    g_assert_nonnull(set);
    g_assert_cmpint(set->seccomp, ==, SANDBOX_SECCOMP_KILL);
    g_assert_cmpint(set->confine, ==, SANDBOX_CONFINE_LANDLOCK);
    settings_free(set);
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_autofree char *bad = g_strdup_printf("[daemon]\n%s\n%s", refused[i], exp);
        g_autofree char *key = g_strndup(refused[i], strcspn(refused[i], " "));

        msg = NULL;
        g_assert_null(load(bad, &msg));
        g_assert_nonnull(strstr(msg, key));
        g_free(msg);
    }
}

/* [daemon] control-socket: unset (the mode's default), a path, or empty
 * (none); a relative path is refused. */
static void test_control_socket(void)
{
    const char *exp = "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n";
    g_autofree char *given = g_strdup_printf("[daemon]\ncontrol-socket = /run/c.sock\n%s", exp);
    g_autofree char *none = g_strdup_printf("[daemon]\ncontrol-socket =\n%s", exp);
    g_autofree char *relative = g_strdup_printf("[daemon]\ncontrol-socket = c.sock\n%s", exp);
    char *msg = NULL;
    struct settings *set = load(exp, &msg);

    g_assert_nonnull(set);
    g_assert_null(set->control_socket);
    settings_free(set);
    set = load(given, &msg);
    g_assert_nonnull(set);
    g_assert_cmpstr(set->control_socket, ==, "/run/c.sock");
    settings_free(set);
    set = load(none, &msg);
    g_assert_nonnull(set);
    g_assert_cmpstr(set->control_socket, ==, "");
    settings_free(set);
    g_assert_null(load(relative, &msg));
    g_assert_nonnull(strstr(msg, "control-socket"));
    g_free(msg);
    g_assert_cmpstr(SETTINGS_DEFAULT_CONTROL_SOCKET, ==, "/run/virtfs-proxyd/control.sock");
}

static guint32 id_at(const GArray *ids, guint i)
{
    return g_array_index(ids, guint32, i);
}

/* allowed-peer-uids and allowed-peer-gids: lists of names or numbers,
 * sorted and deduplicated; absent or empty means no list. */
static void test_peer_lists(void)
{
    char *msg = NULL;
    struct settings *set = load("[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n"
                                "allowed-peer-uids = 1001, root ,daemon,1001,4294967294\n"
                                "allowed-peer-gids = users\n"
                                "[export y]\npath=/y\nsocket=/t\nuid=0\ngid=0\n"
                                "allowed-peer-uids =\n"
                                "[export z]\npath=/z\nsocket=/u\nuid=0\ngid=0\n"
                                "allowed-peer-gids = 7\n",
                                &msg);
    const struct export_settings *x, *y, *z;

    g_assert_null(msg);
    g_assert_nonnull(set);
    x = settings_find_export(set, "x");
    y = settings_find_export(set, "y");
    z = settings_find_export(set, "z");
    g_assert_nonnull(x->allowed_uids);
    g_assert_cmpuint(x->allowed_uids->len, ==, 4);
    g_assert_cmpuint(id_at(x->allowed_uids, 0), ==, 0);  /* root */
    g_assert_cmpuint(id_at(x->allowed_uids, 1), ==, 1);  /* daemon */
    g_assert_cmpuint(id_at(x->allowed_uids, 2), ==, 1001);
    g_assert_cmpuint(id_at(x->allowed_uids, 3), ==, 4294967294u);
    g_assert_nonnull(x->allowed_gids);
    g_assert_cmpuint(x->allowed_gids->len, ==, 1);
    g_assert_cmpuint(id_at(x->allowed_gids, 0), ==, 100); /* users */
    /* Empty: everyone, as absent. */
    g_assert_null(y->allowed_uids);
    g_assert_null(y->allowed_gids);
    g_assert_null(z->allowed_uids);
    g_assert_cmpuint(z->allowed_gids->len, ==, 1);
    settings_free(set);

    /* A name is looked up as a user or as a group, as the key says. */
    {
        GArray *ids = NULL;
        GError *error = NULL;

        g_assert_true(settings_parse_id_list("nogroup", true, &ids, &error));
        g_assert_cmpuint(id_at(ids, 0), ==, 65534);
        g_array_unref(ids);
        g_assert_false(settings_parse_id_list("nogroup", false, &ids, &error));
        g_assert_null(ids);
        g_assert_nonnull(strstr(error->message, "'nogroup' is neither a number"));
        g_assert_nonnull(strstr(error->message, "known user"));
        g_clear_error(&error);
        g_assert_true(settings_parse_id_list(" \t ", false, &ids, &error));
        g_assert_null(ids);
    }
}

/* Every bad list is refused naming the file, the group, the key and the
 * token. */
static void test_peer_lists_refused(void)
{
    static const struct {
        const char *line;
        const char *message_part;
    } cases[] = {
        {"allowed-peer-uids = 0,nosuchuser", "[export x] allowed-peer-uids: 'nosuchuser' is "
                                             "neither a number from 0 to 4294967294 nor a known "
                                             "user"},
        {"allowed-peer-gids = nosuchgroup", "[export x] allowed-peer-gids: 'nosuchgroup' is "
                                            "neither a number from 0 to 4294967294 nor a known "
                                            "group"},
        /* -1 means "unchanged" to the kernel: never an id. */
        {"allowed-peer-uids = 4294967295", "'4294967295' is neither"},
        {"allowed-peer-uids = -1", "'-1' is neither"},
        {"allowed-peer-gids = 12x", "'12x' is neither"},
        {"allowed-peer-uids = 1,,2", "allowed-peer-uids: entry 2 of '1,,2' is empty"},
        {"allowed-peer-uids = 1,", "entry 2 of '1,' is empty"},
        {"allowed-peer-gids = ,", "allowed-peer-gids: entry 1 of ',' is empty"},
        {"allowed-peer-uid = 1", "unknown key 'allowed-peer-uid'"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strdup_printf(
            "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n%s\n", cases[i].line);
        g_autofree char *msg = NULL;

        g_assert_null(load(text, &msg));
        g_assert_nonnull(msg);
        if (strstr(msg, cases[i].message_part) == NULL) {
            g_test_message("case %zu: '%s' does not say '%s'", i, msg, cases[i].message_part);
            g_test_fail();
        }
        g_assert_nonnull(strstr(msg, "test.conf"));
    }
    /* In [daemon] the keys mean nothing: refused, not ignored. */
    {
        g_autofree char *msg = NULL;

        g_assert_null(load("[daemon]\nallowed-peer-uids = 0\n"
                           "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n",
                           &msg));
        g_assert_nonnull(strstr(msg, "[daemon]: unknown key 'allowed-peer-uids'"));
    }
}

/* [export] uid-map, gid-map, xattr-map: kept as written when valid; a bad
 * one refuses the file with a message naming file, group, key and token. */
static void test_maps(void)
{
    const char *exp = "[export x]\npath=/x\nsocket=/s\nuid=0\ngid=0\n";
    static const char *const bad[][3] = {
        {"uid-map", "0:100:10, 5:1:1", "'5:1:1'"},
        {"gid-map", "0:1:1,squash=x", "'squash=x'"},
        {"xattr-map", "ok user.; drop trusted.", "'drop trusted.'"},
        {"uid-map", "", "empty"},
    };
    g_autofree char *good = g_strdup_printf("%suid-map = 0:100000:65536\ngid-map = squash=100\n"
                                            "xattr-map = map security. user.s.; ok *\n",
                                            exp);
    char *msg = NULL;
    struct settings *set = load(good, &msg);
    const struct export_settings *e;

    g_assert_null(msg);
    g_assert_nonnull(set);
    e = settings_find_export(set, "x");
    g_assert_cmpstr(e->uid_map, ==, "0:100000:65536");
    g_assert_cmpstr(e->gid_map, ==, "squash=100");
    g_assert_cmpstr(e->xattr_map, ==, "map security. user.s.; ok *");
    settings_free(set);
    set = load(exp, &msg);
    e = settings_find_export(set, "x");
    g_assert_null(e->uid_map);
    g_assert_null(e->xattr_map);
    settings_free(set);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *text = g_strdup_printf("%s%s = %s\n", exp, bad[i][0], bad[i][1]);

        msg = NULL;
        g_assert_null(load(text, &msg));
        g_assert_nonnull(msg);
        g_test_message("%s", msg);
        g_assert_nonnull(strstr(msg, "test.conf"));
        g_assert_nonnull(strstr(msg, "[export x]"));
        g_assert_nonnull(strstr(msg, bad[i][0]));
        g_assert_nonnull(strstr(msg, bad[i][2]));
        g_free(msg);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("vp-settings.XXXXXX", NULL);
    g_test_add_func("/settings/valid", test_valid);
    g_test_add_func("/settings/defaults", test_defaults);
    g_test_add_func("/settings/refused", test_refused);
    g_test_add_func("/settings/lane-threads", test_lane_threads);
    g_test_add_func("/settings/control-socket", test_control_socket);
    g_test_add_func("/settings/peer-lists", test_peer_lists);
    g_test_add_func("/settings/peer-lists-refused", test_peer_lists_refused);
    g_test_add_func("/settings/maps", test_maps);
    g_test_add_func("/settings/sandbox", test_sandbox);
    ret = g_test_run();
    g_autofree char *file = g_build_filename(tmpdir, "test.conf", NULL);
    g_unlink(file);
    g_rmdir(tmpdir);
    return ret;
}
