/* test-peers.c - who may connect (peers.h): the rule of the two lists, the
 * peer's groups as the kernel reports them, and its name as a log line
 * shows it. */
#include "config.h"

#include <glib.h>
#include <string.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peers.h"
#include "settings.h"

static GArray *ids(const char *text, bool is_group)
{
    GArray *out = NULL;

    g_assert_true(settings_parse_id_list(text, is_group, &out, NULL));
    return out;
}

static void test_rule(void)
{
    g_autoptr(GArray) uids = ids("1001,2000", false);
    g_autoptr(GArray) gids = ids("5000,300", true);
    const gid_t groups[] = {17, 300};
    const gid_t others[] = {17, 18};

    /* Neither list: everyone, root and strangers alike. */
    g_assert_true(peers_open(NULL, NULL));
    g_assert_true(peers_allowed(NULL, NULL, 4242, 4242, NULL, 0));
    g_assert_false(peers_open(uids, NULL));
    g_assert_false(peers_open(NULL, gids));

    /* Only uids: the uid counts, never a group (even one that happens to
     * have a listed number). */
    g_assert_true(peers_allowed(uids, NULL, 1001, 1, NULL, 0));
    g_assert_true(peers_allowed(uids, NULL, 2000, 1, NULL, 0));
    g_assert_false(peers_allowed(uids, NULL, 1002, 1001, NULL, 0));
    g_assert_false(peers_allowed(uids, NULL, 0, 0, NULL, 0)); /* root is not implied */
    g_assert_false(peers_allowed(uids, NULL, 7, 7, (const gid_t[]){1001}, 1));

    /* Only gids: the primary gid or any supplementary group, never the uid. */
    g_assert_true(peers_allowed(NULL, gids, 1, 5000, NULL, 0));
    g_assert_true(peers_allowed(NULL, gids, 1, 1, groups, G_N_ELEMENTS(groups)));
    g_assert_false(peers_allowed(NULL, gids, 1, 1, others, G_N_ELEMENTS(others)));
    g_assert_false(peers_allowed(NULL, gids, 5000, 1, NULL, 0));

    /* Both: either. */
    g_assert_true(peers_allowed(uids, gids, 1001, 1, others, G_N_ELEMENTS(others)));
    g_assert_true(peers_allowed(uids, gids, 9, 300, NULL, 0));
    g_assert_true(peers_allowed(uids, gids, 9, 9, groups, G_N_ELEMENTS(groups)));
    g_assert_false(peers_allowed(uids, gids, 9, 9, others, G_N_ELEMENTS(others)));
}

/* SO_PEERGROUPS of a socketpair: this process's own groups. */
static void test_groups(void)
{
    gid_t want[64];
    int n_want = getgroups(G_N_ELEMENTS(want), want);
    g_autofree gid_t *got = NULL;
    size_t n = 0;
    int sv[2];

    g_assert_cmpint(n_want, >=, 0);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    g_assert_cmpint(peers_groups(sv[0], &got, &n), ==, 0);
    g_assert_cmpuint(n, ==, (size_t)n_want);
    for (int i = 0; i < n_want; i++) {
        bool found = false;

        for (size_t j = 0; j < n; j++) {
            found = found || got[j] == want[i];
        }
        g_assert_true(found);
    }
    close(sv[0]);
    close(sv[1]);
    /* Not a socket: an error, not a crash or an empty list. */
    g_assert_cmpint(peers_groups(STDIN_FILENO + 100, &got, &n), <, 0);
}

/* More groups than the first buffer holds (32): the second call, sized as
 * the kernel says.  Needs root (setgroups), in a child. */
static void test_many_groups(void)
{
    pid_t pid;
    int st = -1;

    if (geteuid() != 0) {
        g_test_skip("needs root (setgroups)");
        return;
    }
    pid = fork();
    if (pid == 0) {
        gid_t set[300];
        g_autofree gid_t *got = NULL;
        size_t n = 0;
        int sv[2];

        for (gid_t i = 0; i < G_N_ELEMENTS(set); i++) {
            set[i] = 10000 + i;
        }
        if (setgroups(G_N_ELEMENTS(set), set) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
            _exit(2);
        }
        if (peers_groups(sv[0], &got, &n) < 0 || n != G_N_ELEMENTS(set)) {
            _exit(3);
        }
        for (size_t i = 0; i < n; i++) {
            if (got[i] != set[i]) {
                _exit(4);
            }
        }
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &st, 0), ==, pid);
    g_assert_true(WIFEXITED(st));
    g_assert_cmpint(WEXITSTATUS(st), ==, 0);
}

/* A peer chooses its own name: escaped, so it cannot forge log lines. */
static void test_comm(void)
{
    char saved[17] = "", out[80];

    prctl(PR_GET_NAME, saved, 0, 0, 0);
    prctl(PR_SET_NAME, "evil\nline\x1b[m", 0, 0, 0);
    peers_comm(getpid(), out, sizeof(out));
    g_assert_cmpstr(out, ==, "evil\\nline\\x1b[m");
    prctl(PR_SET_NAME, saved, 0, 0, 0);
    peers_comm(getpid(), out, sizeof(out));
    g_assert_cmpstr(out, ==, saved);
    /* Gone (or never was): a placeholder. */
    peers_comm(0, out, sizeof(out));
    g_assert_cmpstr(out, ==, "?");
    peers_comm(4194304 + 1, out, sizeof(out)); /* beyond pid_max's ceiling */
    g_assert_cmpstr(out, ==, "?");
}

static void test_list_text(void)
{
    g_autoptr(GArray) uids = ids("7, 0,7 ,65534", false);
    g_autofree char *text = peers_list_text(uids);
    g_autofree char *none = peers_list_text(NULL);

    g_assert_cmpstr(text, ==, "0,7,65534");
    g_assert_cmpstr(none, ==, "none");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/peers/rule", test_rule);
    g_test_add_func("/peers/groups", test_groups);
    g_test_add_func("/peers/many-groups", test_many_groups);
    g_test_add_func("/peers/comm", test_comm);
    g_test_add_func("/peers/list-text", test_list_text);
    return g_test_run();
}
