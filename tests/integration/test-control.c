/* test-control.c - the control socket and virtfs-proxyctl against a daemon
 * under load: what every command reports must be what the load generator
 * did, request for request and error for error; malformed and oversized
 * control requests get an error line and nothing else; a peer that is not
 * root is refused; reload and upgrade say their outcome. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_JSON_GLIB
#include <json-glib/json-glib.h>
#endif

#include "control.h"
#include "harness.h"

#define LOADERS_PER_EXPORT 2
#define ITERATIONS 600
#define NOBODY 65534

static vt_server *srv;
static char *conf, *ctl_path, *other_dir, *other_sock;

/* ---- helpers ----------------------------------------------------------------- */

static const char *ctl_bin(void)
{
    const char *p = getenv("VIRTFS_PROXYCTL");

    return p != NULL && access(p, X_OK) == 0 ? p : NULL;
}

/* Runs virtfs-proxyctl --control PATH ARGS...; returns its exit status (or
 * -1), with stdout and stderr in *out and *err when asked. */
static int ctl(char **out, char **err, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    char *o = NULL, *e = NULL;
    const char *a;
    int status = 0;
    va_list ap;

    g_ptr_array_add(argv, (char *)ctl_bin());
    g_ptr_array_add(argv, (char *)"--control");
    g_ptr_array_add(argv, ctl_path);
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL) {
        g_ptr_array_add(argv, (char *)a);
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &o, &e,
                      &status, &error)) {
        g_test_message("spawn: %s", error->message);
        return -1;
    }
    if (out != NULL) {
        *out = o;
    } else {
        g_free(o);
    }
    if (err != NULL) {
        *err = e;
    } else {
        if (e != NULL && e[0] != '\0') {
            g_test_message("virtfs-proxyctl: %s", e);
        }
        g_free(e);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One raw request on the control socket; returns the whole answer. */
static char *raw_request(const void *req, size_t len)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    GString *ans = g_string_new(NULL);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 15};
    char buf[4096];
    ssize_t n;

    strcpy(sun.sun_path, ctl_path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        g_test_message("connect %s: %s", ctl_path, g_strerror(errno));
        g_test_fail();
        close(fd);
        return g_string_free(ans, FALSE);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (len > 0 && send(fd, req, len, MSG_NOSIGNAL) < 0) {
        g_test_message("send: %s", g_strerror(errno));
    }
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        g_string_append_len(ans, buf, n);
    }
    close(fd);
    return g_string_free(ans, FALSE);
}

static void check_json(const char *text)
{
#ifdef HAVE_JSON_GLIB
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) error = NULL;

    if (!json_parser_load_from_data(p, text, -1, &error)) {
        g_test_message("not JSON (%s): %.200s", error->message, text);
        g_test_fail();
    }
#else
    g_assert_true(text[0] == '{');
#endif
}

static char *export_group(const char *name, const char *dir, const char *sock)
{
    return g_strdup_printf("[export %s]\npath = %s\nsocket = %s\nuid = root\ngid = 0\n\n", name,
                           dir, sock);
}

static void write_conf(const char *daemon_extra)
{
    g_autofree char *a = export_group("main", srv->export_dir, srv->sock_path);
    g_autofree char *b = export_group("other", other_dir, other_sock);
    g_autofree char *text =
        g_strdup_printf("[daemon]\ncontrol-socket = %s\n%s\n%s%s", ctl_path, daemon_extra, a, b);

    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
}

/* ---- the load generator ------------------------------------------------------- */

struct loader {
    pthread_t thread;
    const char *sock;
    int id;
    /* What it did, by request type; every reply checked. */
    unsigned long lstat, lstat_enoent, lstat_einval, open, open_enoent, create, remove;
    unsigned long bad; /* replies other than expected */
    char first_bad[160];
    atomic_bool done;
};

static void loader_bad(struct loader *l, const char *what, int got)
{
    if (l->bad++ == 0) {
        snprintf(l->first_bad, sizeof(l->first_bad), "%s: %s", what, pc_strerror(got));
    }
}

static void *loader_main(void *arg)
{
    struct loader *l = arg;
    /* A lstat whose body is one byte: framed, but no string: EINVAL. */
    const uint8_t bad_lstat[] = {8, 0, 0, 0, 1, 0, 0, 0, 'x'};
    pc_conn *c = NULL;
    int rc = pc_connect(l->sock, VT_TIMEOUT_MS, &c);

    if (rc < 0) {
        loader_bad(l, "connect", rc);
        atomic_store(&l->done, true);
        return NULL;
    }
    for (int i = 0; i < ITERATIONS; i++) {
        char name[64];
        pc_proxy_stat st;
        pc_reply *r = g_new(pc_reply, 1);
        int fd = -1;

        snprintf(name, sizeof(name), "t%d.%d", l->id, i);
        rc = pc_lstat(c, "f", &st);
        l->lstat++;
        if (rc != 0) {
            loader_bad(l, "lstat f", rc);
        }
        rc = pc_lstat(c, "missing", &st);
        l->lstat++;
        l->lstat_enoent += rc == -ENOENT;
        if (rc != -ENOENT) {
            loader_bad(l, "lstat missing", rc);
        }
        rc = pc_open(c, "missing", O_RDONLY, &fd);
        l->open++;
        l->open_enoent += rc == -ENOENT;
        if (rc != -ENOENT) {
            loader_bad(l, "open missing", rc);
        }
        /* As another uid: on a lane. */
        rc = pc_create(c, name, O_CREAT | O_WRONLY, 0644, 1000, 1000, &fd);
        l->create++;
        if (rc != 0) {
            loader_bad(l, "create", rc);
        } else {
            close(fd);
        }
        rc = pc_remove(c, name);
        l->remove++;
        if (rc != 0) {
            loader_bad(l, "remove", rc);
        }
        rc = pc_send_raw(c, bad_lstat, sizeof(bad_lstat));
        if (rc == 0) {
            rc = pc_recv(c, PC_KIND_DATA, r);
            rc = rc == 0 ? r->result : rc;
        }
        l->lstat++;
        l->lstat_einval += rc == -EINVAL;
        if (rc != -EINVAL) {
            loader_bad(l, "malformed lstat", rc);
        }
        g_free(r);
    }
    pc_free(c);
    atomic_store(&l->done, true);
    return NULL;
}

/* ---- checks against what the loaders counted ------------------------------------ */

/* A line of `stats` for export's type: requests, errors, and the errno
 * list after the latency columns. */
static bool stats_line(const char *stats, const char *export, const char *type,
                       unsigned long *count, unsigned long *errors, char **errnos)
{
    g_autofree char *head = g_strdup_printf("export %s\n", export);
    const char *p = strstr(stats, head), *end;

    if (p == NULL) {
        return false;
    }
    p += strlen(head);
    end = strstr(p, "\nexport ");
    for (const char *line = p; line != NULL && (end == NULL || line < end);) {
        const char *nl = strchr(line, '\n');
        g_autofree char *l = g_strndup(line, nl != NULL ? (size_t)(nl - line) : strlen(line));
        g_auto(GStrv) w = g_strsplit_set(g_strstrip(l), " ", -1);
        g_autoptr(GPtrArray) words = g_ptr_array_new();

        for (size_t i = 0; w[i] != NULL; i++) {
            if (w[i][0] != '\0') {
                g_ptr_array_add(words, w[i]);
            }
        }
        if (words->len >= 6 && strcmp(words->pdata[0], type) == 0) {
            GString *e = g_string_new(NULL);

            *count = strtoul(words->pdata[1], NULL, 10);
            *errors = strtoul(words->pdata[2], NULL, 10);
            for (guint i = 6; i < words->len; i++) {
                g_string_append_printf(e, "%s%s", e->len > 0 ? " " : "",
                                       (char *)words->pdata[i]);
            }
            *errnos = g_string_free(e, FALSE);
            return true;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

/* Whether `stats` says exactly what the loaders of one export did. */
static bool stats_match(const char *stats, const char *export, struct loader *ls, int n,
                        GString *why)
{
    unsigned long lstat = 0, enoent = 0, einval = 0, open = 0, open_enoent = 0, create = 0,
                  remove = 0, count, errors;
    bool ok = true;

    for (int i = 0; i < n; i++) {
        lstat += ls[i].lstat;
        enoent += ls[i].lstat_enoent;
        einval += ls[i].lstat_einval;
        open += ls[i].open;
        open_enoent += ls[i].open_enoent;
        create += ls[i].create;
        remove += ls[i].remove;
    }
    struct {
        const char *type;
        unsigned long count, errors;
        char *errnos;
    } want[] = {
        {"lstat", lstat, enoent + einval, g_strdup_printf("ENOENT:%lu EINVAL:%lu", enoent, einval)},
        {"open", open, open_enoent, g_strdup_printf("ENOENT:%lu", open_enoent)},
        {"create", create, 0, g_strdup("")},
        {"remove", remove, 0, g_strdup("")},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        g_autofree char *errnos = NULL;

        if (!stats_line(stats, export, want[i].type, &count, &errors, &errnos)) {
            g_string_append_printf(why, "%s/%s: no line; ", export, want[i].type);
            ok = false;
        } else if (count != want[i].count || errors != want[i].errors ||
                   strcmp(errnos, want[i].errnos) != 0) {
            g_string_append_printf(why, "%s/%s: %lu requests %lu errors [%s], loaders did %lu "
                                        "%lu [%s]; ",
                                   export, want[i].type, count, errors, errnos, want[i].count,
                                   want[i].errors, want[i].errnos);
            ok = false;
        }
        g_free(want[i].errnos);
    }
    return ok;
}

static void test_under_load(void)
{
    struct loader ls[2 * LOADERS_PER_EXPORT] = {0};
    const int n = G_N_ELEMENTS(ls);
    g_autofree char *f = vt_host(srv, "f");
    g_autofree char *f2 = g_build_filename(other_dir, "f", NULL);
    g_autoptr(GString) why = g_string_new(NULL);
    g_autofree char *metrics = NULL, *conns = NULL;
    unsigned long per_conn_requests = 0, per_conn_errors = 0;
    bool matched = false;
    int rounds = 0;

    if (!vt_require_daemon() || ctl_bin() == NULL) {
        g_test_skip("needs virtfs-proxyd and VIRTFS_PROXYCTL");
        return;
    }
    vt_write_file(f, "data");
    vt_write_file(f2, "data");
    for (int i = 0; i < n; i++) {
        ls[i].id = i;
        ls[i].sock = i < LOADERS_PER_EXPORT ? srv->sock_path : other_sock;
        pthread_create(&ls[i].thread, NULL, loader_main, &ls[i]);
    }
    /* Every command, again and again, while the load runs. */
    for (bool running = true; running; rounds++) {
        static const char *const ro[] = {"status", "connections", "stats", "metrics"};

        for (size_t i = 0; i < G_N_ELEMENTS(ro); i++) {
            g_autofree char *out = NULL, *jout = NULL;

            g_assert_cmpint(ctl(&out, NULL, ro[i], NULL), ==, 0);
            g_assert_cmpint(ctl(&jout, NULL, ro[i], "--json", NULL), ==, 0);
            if (jout != NULL) {
                check_json(jout);
            }
        }
        g_assert_cmpint(ctl(NULL, NULL, "log-level", "debug", NULL), ==, 0);
        g_assert_cmpint(ctl(NULL, NULL, "reload", NULL), ==, 0); /* back to the file's */
        running = false;
        for (int i = 0; i < n; i++) {
            running |= !atomic_load(&ls[i].done);
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(ls[i].thread, NULL);
        if (ls[i].bad > 0) {
            g_test_message("loader %d: %lu unexpected replies, first %s", i, ls[i].bad,
                           ls[i].first_bad);
            g_test_fail();
        }
    }
    g_test_message("%d rounds of every command ran under load", rounds);
    g_assert_cmpint(rounds, >=, 1);
    /* A reply leaves just before it is counted: give the last ones a moment. */
    for (int tries = 0; tries < 100 && !matched; tries++) {
        g_autofree char *stats = NULL;

        g_string_truncate(why, 0);
        g_assert_cmpint(ctl(&stats, NULL, "stats", NULL), ==, 0);
        matched = stats != NULL &&
                  stats_match(stats, "main", ls, LOADERS_PER_EXPORT, why) &&
                  stats_match(stats, "other", ls + LOADERS_PER_EXPORT, LOADERS_PER_EXPORT, why);
        if (!matched) {
            g_usleep(20000);
        }
    }
    if (!matched) {
        g_test_message("stats differ from the load: %s", why->str);
        g_test_fail();
    }
    /* The same figures in the Prometheus format. */
    g_assert_cmpint(ctl(&metrics, NULL, "metrics", NULL), ==, 0);
    if (metrics != NULL) {
        g_autofree char *lstat = g_strdup_printf(
            "virtfs_proxyd_requests_total{export=\"main\",type=\"lstat\"} %lu\n",
            ls[0].lstat + ls[1].lstat);
        g_autofree char *enoent = g_strdup_printf(
            "virtfs_proxyd_request_errors_total{export=\"other\",type=\"open\",errno=\"ENOENT\"} "
            "%lu\n",
            ls[2].open_enoent + ls[3].open_enoent);
        g_autofree char *hist = g_strdup_printf(
            "virtfs_proxyd_request_duration_seconds_bucket{export=\"main\",type=\"create\","
            "le=\"+Inf\"} %lu\n",
            ls[0].create + ls[1].create);

        g_assert_nonnull(strstr(metrics, lstat));
        g_assert_nonnull(strstr(metrics, enoent));
        g_assert_nonnull(strstr(metrics, hist));
        g_assert_nonnull(strstr(metrics, "# TYPE virtfs_proxyd_request_duration_seconds "
                                         "histogram\n"));
    }
    /* The loaders' connections are closed: none is listed any more, and
     * a new one starts from zero. */
    g_assert_cmpint(ctl(&conns, NULL, "connections", NULL), ==, 0);
    g_assert_nonnull(strstr(conns, "(no connections)"));
    for (int i = 0; i < n; i++) {
        per_conn_requests += ls[i].lstat + ls[i].open + ls[i].create + ls[i].remove;
        per_conn_errors += ls[i].lstat_enoent + ls[i].lstat_einval + ls[i].open_enoent;
    }
    g_test_message("the load: %lu requests, %lu errors", per_conn_requests, per_conn_errors);
}

/* `connections` counts each connection's own requests, errors and bytes. */
static void test_connections(void)
{
    pc_conn *a = NULL, *b = NULL;
    pc_proxy_stat st;
    g_autofree char *json = NULL, *text = NULL;
    g_autofree char *want_a = NULL, *want_b = NULL;

    if (!vt_require_daemon() || ctl_bin() == NULL) {
        g_test_skip("needs virtfs-proxyd and VIRTFS_PROXYCTL");
        return;
    }
    g_assert_cmpint(pc_connect(srv->sock_path, VT_TIMEOUT_MS, &a), ==, 0);
    g_assert_cmpint(pc_connect(other_sock, VT_TIMEOUT_MS, &b), ==, 0);
    for (int i = 0; i < 7; i++) {
        vt_assert_rc(pc_lstat(a, "/", &st), 0);
    }
    for (int i = 0; i < 3; i++) {
        vt_assert_rc(pc_lstat(b, "nope", &st), -ENOENT);
    }
    /* Replies: a stat is 8 + 116 bytes, an error 8 + 4. */
    want_a = g_strdup_printf("{\"export\":\"main\",\"peer_pid\":%d,\"peer_uid\":0,\"vm\":null,"
                             "\"requests\":7,\"errors\":0,\"bytes_in\":",
                             (int)getpid());
    want_b = g_strdup_printf("{\"export\":\"other\",\"peer_pid\":%d,\"peer_uid\":0,\"vm\":null,"
                             "\"requests\":3,\"errors\":3,\"bytes_in\":",
                             (int)getpid());
    for (int tries = 0; tries < 100; tries++) {
        g_free(json);
        json = NULL;
        g_assert_cmpint(ctl(&json, NULL, "connections", "--json", NULL), ==, 0);
        if (json != NULL && strstr(json, want_a) != NULL && strstr(json, want_b) != NULL) {
            break;
        }
        g_usleep(20000);
    }
    if (json == NULL || strstr(json, want_a) == NULL || strstr(json, want_b) == NULL) {
        g_test_message("connections --json: %s\nwanted %s\nand %s", json, want_a, want_b);
        g_test_fail();
    }
    check_json(json);
    g_assert_nonnull(strstr(json, "\"bytes_out\":868,")); /* 7 x 124 */
    g_assert_nonnull(strstr(json, "\"bytes_out\":36,"));  /* 3 x 12 */
    g_assert_cmpint(ctl(&text, NULL, "status", NULL), ==, 0);
    g_assert_nonnull(strstr(text, "  main: 1 connections, socket "));
    g_assert_nonnull(strstr(text, "  other: 1 connections, socket "));
    /* The harness runs the daemon under its supervisor (the default). */
    g_assert_nonnull(strstr(text, "process model:  supervisor "));
    pc_free(a);
    pc_free(b);
}

/* A QEMU started with -name shows under that name. */
static void test_vm_name(void)
{
    g_autofree char *out = NULL;
    int ready[2];
    char c;
    pid_t pid;

    if (!vt_require_daemon() || ctl_bin() == NULL) {
        g_test_skip("needs virtfs-proxyd and VIRTFS_PROXYCTL");
        return;
    }
    g_assert_cmpint(pipe(ready), ==, 0);
    pid = fork();
    if (pid == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);

        strcpy(sun.sun_path, srv->sock_path);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            _exit(1);
        }
        close(ready[0]);
        dup2(ready[1], 3);
        /* The same process (same pid) with a QEMU-like command line. */
        execl("/bin/sh", "sh", "-c", "echo >&3; exec 3>&-; sleep 20", "qemu-system-x86_64",
              "-name", "guest=vm-\"7\",debug-threads=on", (char *)NULL);
        _exit(2);
    }
    close(ready[1]);
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
    close(ready[0]);
    for (int tries = 0; tries < 100; tries++) {
        g_free(out);
        out = NULL;
        g_assert_cmpint(ctl(&out, NULL, "connections", "--json", NULL), ==, 0);
        if (out != NULL && strstr(out, "\"vm\":\"vm-\\\"7\\\"\"") != NULL) {
            break;
        }
        g_usleep(20000);
    }
    if (out == NULL || strstr(out, "\"vm\":\"vm-\\\"7\\\"\"") == NULL) {
        g_test_message("no VM name in %s", out);
        g_test_fail();
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Whatever a client sends gets an error line, and the daemon goes on. */
static void test_malformed(void)
{
    static const struct {
        const char *req;
        const char *answer;
    } cases[] = {
        {"status\n", "v1 error EPROTO "},
        {"v2 status\n", "v1 error EPROTONOSUPPORT "},
        {"v1\n", "v1 error EINVAL no command"},
        {"v1 frobnicate\n", "v1 error EINVAL unknown command"},
        {"v1 status extra\n", "v1 error EINVAL "},
        {"v1 reload --json\n", "v1 error EINVAL "},
        {"v1 log-level loud\n", "v1 error EINVAL "},
        {"v1 a b c d e f g h i j\n", "v1 error E2BIG "},
        {"v1 stat\001us\n", "v1 error EINVAL a request is one line of printable ASCII"},
        {"v1 st\xc3\xa4tus\n", "v1 error EINVAL a request is one line of printable ASCII"},
        {"\n", "v1 error EPROTO "},
        {"v1 help\r\n", "v1 ok\n"},
    };
    g_autofree char *big = g_strnfill(5000, 'a');
    g_autofree char *big_nl = g_strconcat(big, "\n", NULL);
    const char nul_req[] = "v1 sta\0tus\n";
    int held[CONTROL_MAX_CLIENTS];
    char *ans;

    if (!vt_require_daemon()) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        ans = raw_request(cases[i].req, strlen(cases[i].req));
        if (!g_str_has_prefix(ans, cases[i].answer)) {
            g_test_message("%zu: '%s' got '%s'", i, cases[i].req, ans);
            g_test_fail();
        }
        g_free(ans);
    }
    ans = raw_request(nul_req, sizeof(nul_req) - 1);
    g_assert_true(g_str_has_prefix(ans, "v1 error EINVAL "));
    g_free(ans);
    /* Oversized, with and without a newline: refused at 1024 bytes. */
    ans = raw_request(big, strlen(big));
    g_assert_true(g_str_has_prefix(ans, "v1 error E2BIG "));
    g_free(ans);
    ans = raw_request(big_nl, strlen(big_nl));
    g_assert_true(g_str_has_prefix(ans, "v1 error E2BIG "));
    g_free(ans);
    /* Connect and say nothing / half a request, then leave. */
    ans = raw_request(NULL, 0);
    g_free(ans);
    /* Too many at once: the ones beyond are told so. */
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        strcpy(sun.sun_path, ctl_path);
        held[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(connect(held[i], (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
        if (send(held[i], "v1 sta", 6, MSG_NOSIGNAL) < 0) {
            g_test_fail();
        }
    }
    g_usleep(200000);
    ans = raw_request("v1 status\n", 10);
    g_assert_true(g_str_has_prefix(ans, "v1 error EBUSY "));
    g_free(ans);
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        close(held[i]);
    }
    g_usleep(200000);
    ans = raw_request("v1 status\n", 10);
    g_assert_true(g_str_has_prefix(ans, "v1 ok\n" PACKAGE_NAME " "));
    g_free(ans);
    g_assert_true(vt_server_alive(srv));
}

/* Only root: the file's mode keeps others out, and if it did not, the
 * daemon would (SO_PEERCRED). */
static void test_non_root(void)
{
    pid_t pid;
    int st;

    if (!vt_require_daemon()) {
        return;
    }
    g_assert_cmpint(chmod(srv->workdir, 0711), ==, 0); /* others may look for it */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            g_assert_cmpint(chmod(ctl_path, 0666), ==, 0);
        }
        pid = fork();
        if (pid == 0) {
            struct sockaddr_un sun = {.sun_family = AF_UNIX};
            char buf[256] = "";
            ssize_t n;
            int fd;

            if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
                _exit(10);
            }
            strcpy(sun.sun_path, ctl_path);
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
                _exit(errno == EACCES ? 20 : 21);
            }
            if (send(fd, "v1 status\n", 10, MSG_NOSIGNAL) < 0) {
                /* refused before reading: the answer is there anyway */
            }
            n = recv(fd, buf, sizeof(buf) - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            _exit(g_str_has_prefix(buf, "v1 error EACCES ") ? 30 : 31);
        }
        g_assert_cmpint(waitpid(pid, &st, 0), ==, pid);
        g_assert_true(WIFEXITED(st));
        /* 0600 root's: connect is refused; 0666: the daemon refuses. */
        g_assert_cmpint(WEXITSTATUS(st), ==, pass == 0 ? 20 : 30);
    }
    g_assert_cmpint(chmod(ctl_path, 0600), ==, 0);
    if (ctl_bin() != NULL) {
        /* virtfs-proxyctl as nobody: says it cannot connect, exit 3. */
        pid = fork();
        if (pid == 0) {
            if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
                _exit(10);
            }
            execl(ctl_bin(), ctl_bin(), "--control", ctl_path, "status", (char *)NULL);
            _exit(11);
        }
        g_assert_cmpint(waitpid(pid, &st, 0), ==, pid);
        g_assert_cmpint(WEXITSTATUS(st), ==, 3); /* unreachable */
    }
    g_assert_cmpint(chmod(srv->workdir, 0700), ==, 0);
}

static void test_reload_outcome(void)
{
    g_autofree char *err = NULL, *out = NULL;

    if (!vt_require_daemon() || ctl_bin() == NULL) {
        g_test_skip("needs virtfs-proxyd and VIRTFS_PROXYCTL");
        return;
    }
    write_conf("frame-timeout = banana\n");
    g_assert_cmpint(ctl(NULL, &err, "reload", NULL), ==, 1);
    g_assert_nonnull(strstr(err, "reload rejected"));
    g_assert_nonnull(strstr(err, "frame-timeout"));
    write_conf("log-level = warning\n");
    g_assert_cmpint(ctl(&out, NULL, "reload", NULL), ==, 0);
    g_assert_nonnull(strstr(out, "reloaded"));
    g_free(out);
    /* The harness gives --log-level debug, which wins over the file. */
    g_assert_cmpint(ctl(&out, NULL, "log-level", NULL), ==, 0);
    g_assert_cmpstr(out, ==, "debug\n");
    g_free(out);
    g_assert_cmpint(ctl(&out, NULL, "log-level", "warning", NULL), ==, 0);
    g_assert_cmpstr(out, ==, "warning\n");
    g_free(out);
    g_assert_cmpint(ctl(&out, NULL, "log-level", NULL), ==, 0);
    g_assert_cmpstr(out, ==, "warning\n");
    g_free(out);
    g_assert_cmpint(ctl(&out, NULL, "log-level", "debug", NULL), ==, 0);
    g_assert_cmpstr(out, ==, "debug\n");
    write_conf("");
}

/* The upgrade answers once it has settled; the new process then answers on
 * the same control socket. */
static void test_upgrade(void)
{
    g_autofree char *out = NULL, *status = NULL;
    g_autofree char *pid_field = NULL;
    pc_conn *c = NULL;
    pc_proxy_stat st;
    int new_pid = 0;
    pid_t old;
    const char *p;

    if (!vt_require_daemon() || ctl_bin() == NULL) {
        g_test_skip("needs virtfs-proxyd and VIRTFS_PROXYCTL");
        return;
    }
    g_assert_cmpint(pc_connect(srv->sock_path, VT_TIMEOUT_MS, &c), ==, 0);
    vt_assert_rc(pc_lstat(c, "/", &st), 0);
    old = vt_serving_pid(srv);
    g_assert_cmpint(ctl(&out, NULL, "upgrade", NULL), ==, 0);
    g_assert_nonnull(out);
    p = out != NULL ? strstr(out, "upgraded: process ") : NULL;
    g_assert_nonnull(p);
    if (p == NULL) {
        pc_free(c);
        return;
    }
    new_pid = atoi(p + strlen("upgraded: process "));
    g_assert_cmpint(new_pid, >, 0);
    g_assert_cmpint(new_pid, !=, old);
    /* The old serving process exits; the connection goes on with the new
     * one (under the same supervisor, unless --no-supervisor). */
    for (int i = 0; i < 400 && kill(old, 0) == 0; i++) {
        g_usleep(10000);
    }
    g_assert_cmpint(kill(old, 0), <, 0);
    vt_assert_rc(pc_lstat(c, "/", &st), 0);
    g_assert_cmpint(ctl(&status, NULL, "status", "--json", NULL), ==, 0);
    pid_field = g_strdup_printf("\"pid\":%d,", new_pid);
    g_assert_nonnull(strstr(status, pid_field));
    pc_free(c);
}

int main(int argc, char **argv)
{
    const char *args[3];
    int rc;

    vt_init(&argc, &argv);
    if (vt_target_is_reference() || vt_daemon_path() == NULL) {
        printf("1..0 # SKIP needs virtfs-proxyd\n");
        return 0;
    }
    srv = vt_server_new("control");
    conf = g_build_filename(srv->workdir, "virtfs-proxyd.conf", NULL);
    ctl_path = g_build_filename(srv->workdir, "control.sock", NULL);
    other_dir = g_build_filename(srv->workdir, "other", NULL);
    other_sock = g_build_filename(srv->workdir, "other.sock", NULL);
    vt_mkdir(other_dir, 0755);
    write_conf("");
    args[0] = "-c";
    args[1] = conf;
    args[2] = NULL;
    if (vt_server_start_args(srv, args, ctl_path) < 0) {
        printf("Bail out! cannot start the server (log: %s)\n", srv->log_path);
        vt_server_free(srv);
        return 1;
    }
    g_test_add_func("/control/under-load", test_under_load);
    g_test_add_func("/control/connections", test_connections);
    g_test_add_func("/control/vm-name", test_vm_name);
    g_test_add_func("/control/malformed", test_malformed);
    g_test_add_func("/control/non-root", test_non_root);
    g_test_add_func("/control/reload-outcome", test_reload_outcome);
    g_test_add_func("/control/upgrade", test_upgrade);
    rc = g_test_run();
    vt_server_free(srv);
    return rc;
}
