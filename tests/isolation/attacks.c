/* attacks.c - see attacks.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attacks.h"
#include "pclient.h"

#define REQUEST_TIMEOUT_MS 3000

static int errf(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int errf(char *err, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err, ATK_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* A reply that never came or a connection that broke: the stream is out of
 * step and must be replaced. */
static bool transport_error(int rc)
{
    return rc <= PC_ERR_TIMEOUT && rc >= PC_ERR_USAGE;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* A non-blocking connection, retried while the listener's backlog is full
 * (EAGAIN) until the deadline.  Returns the fd or -errno.  No allocation:
 * also used in a forked child. */
static int raw_connect(const char *sock, int64_t deadline_ms)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    if (strlen(sock) >= sizeof(sun.sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, sock);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int e;

        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            return fd;
        }
        e = errno;
        close(fd);
        if (e != EAGAIN || proc_now_ms() >= deadline_ms) {
            return -e;
        }
        usleep(1000);
    }
}

/* Writes all of buf to a non-blocking socket before the deadline. */
static int send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        if (proc_now_ms() >= deadline_ms) {
            return PC_ERR_TIMEOUT;
        }
        {
            struct pollfd p = {.fd = fd, .events = POLLOUT};

            poll(&p, 1, 20);
        }
    }
    return 0;
}

/* Probes a fresh connection with T_LSTAT "/": 1 served, 0 closed, <0 silent. */
static int probe_lstat(int fd, int64_t deadline_ms)
{
    /* T_LSTAT, 4 body bytes: the string "/" with QEMU's NUL. */
    static const uint8_t frame[] = {8, 0, 0, 0, 4, 0, 0, 0, 2, 0, '/', 0};
    uint8_t buf[PC_HDR_SIZE + PC_STAT_SIZE];
    size_t got = 0;

    if (send_all(fd, frame, sizeof(frame), deadline_ms) < 0) {
        return 0;
    }
    while (got < sizeof(buf)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline_ms - proc_now_ms();
        ssize_t n;

        if (left <= 0) {
            return -1;
        }
        if (poll(&p, 1, (int)left) <= 0) {
            continue;
        }
        n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return 0;
        }
        if (n > 0) {
            got += (size_t)n;
        }
    }
    return get_u32(buf) == 0 && get_u32(buf + 4) == PC_STAT_SIZE ? 1 : 0;
}

/* ---- 1. lanes ------------------------------------------------------------------ */

struct churn_thread {
    struct atk_churn *a;
    pthread_t thread;
    int index;
    atk_counts counts;
};

struct atk_churn {
    char *sock, *dir;
    uint32_t lo, hi;
    atomic_bool stop;
    int n;
    struct churn_thread *t;
};

static void *churn_main(void *arg)
{
    struct churn_thread *t = arg;
    struct atk_churn *a = t->a;
    unsigned int seed = (unsigned int)(t->index * 7919 + iso_now_us());
    pc_conn *c = NULL;
    unsigned long k = 0;

    while (!atomic_load(&a->stop)) {
        char name[128];
        uint32_t span = a->hi - a->lo + 1;
        int32_t uid = (int32_t)(a->lo + (uint32_t)rand_r(&seed) % span);
        int32_t gid = (int32_t)(a->lo + (uint32_t)rand_r(&seed) % span);
        int rc;

        if (c == NULL) {
            if (pc_connect(a->sock, REQUEST_TIMEOUT_MS, &c) < 0) {
                c = NULL;
                t->counts.failed++;
                usleep(10000);
                continue;
            }
            pc_conn_set_timeout(c, REQUEST_TIMEOUT_MS);
        }
        snprintf(name, sizeof(name), "%s/c%d-%lu", a->dir, t->index, k++);
        t->counts.sent++;
        rc = pc_mkdir(c, uid, gid, name, 0755);
        if (rc == 0) {
            t->counts.answered++;
            rc = pc_remove(c, name);
        }
        if (rc != 0) {
            t->counts.failed++;
        }
        /* A fresh connection every 200 identities, and after any trouble. */
        if (transport_error(rc) || k % 200 == 0) {
            pc_free(c);
            c = NULL;
        }
    }
    pc_free(c);
    return NULL;
}

atk_churn *atk_lane_churn_start(const char *sock, const char *dir_wire, int conns,
                                uint32_t id_lo, uint32_t id_hi)
{
    struct atk_churn *a = g_new0(struct atk_churn, 1);

    a->sock = g_strdup(sock);
    a->dir = g_strdup(dir_wire);
    a->lo = id_lo;
    a->hi = id_hi;
    a->t = g_new0(struct churn_thread, conns);
    for (int i = 0; i < conns; i++) {
        a->t[i].a = a;
        a->t[i].index = i;
        if (pthread_create(&a->t[i].thread, NULL, churn_main, &a->t[i]) != 0) {
            break;
        }
        a->n++;
    }
    return a;
}

void atk_lane_churn_stop(atk_churn *a, atk_counts *out)
{
    atk_counts sum = {0};

    if (a == NULL) {
        return;
    }
    atomic_store(&a->stop, true);
    for (int i = 0; i < a->n; i++) {
        pthread_join(a->t[i].thread, NULL);
        sum.sent += a->t[i].counts.sent;
        sum.answered += a->t[i].counts.answered;
        sum.failed += a->t[i].counts.failed;
    }
    if (out != NULL) {
        *out = sum;
    }
    g_free(a->t);
    g_free(a->sock);
    g_free(a->dir);
    g_free(a);
}

int atk_identities(const char *sock, const char *dir_wire, int n, uint32_t first_id,
                   int timeout_ms, int64_t *max_us, char *err)
{
    pc_conn *c = NULL;
    int ok = 0, rc;

    *max_us = 0;
    rc = pc_connect(sock, timeout_ms, &c);
    if (rc < 0) {
        return errf(err, rc, "connect: %s", pc_strerror(rc));
    }
    pc_conn_set_timeout(c, timeout_ms);
    for (int i = 0; i < n; i++) {
        char name[128];
        int32_t id = (int32_t)(first_id + (uint32_t)i);
        int64_t t0 = iso_now_us(), dt;

        snprintf(name, sizeof(name), "%s/id%d", dir_wire, (int)id);
        rc = pc_mkdir(c, id, id, name, 0755);
        dt = iso_now_us() - t0;
        if (dt > *max_us) {
            *max_us = dt;
        }
        if (rc == 0) {
            ok++;
        } else if (err != NULL && err[0] == '\0') {
            errf(err, rc, "mkdir as %d:%d: %s after %lld ms", (int)id, (int)id, pc_strerror(rc),
                 (long long)dt / 1000);
        }
        if (transport_error(rc)) {
            break;
        }
    }
    pc_free(c);
    return ok;
}

/* ---- 2. lease -------------------------------------------------------------------- */

struct atk_lease {
    pc_conn *c;
    int lease_fd;
    enum atk_lease_kind kind;
    char *host_path;
};

int atk_lease_break_time_get(void)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents("/proc/sys/fs/lease-break-time", &text, NULL, NULL)) {
        return -ENOENT;
    }
    return atoi(text);
}

int atk_lease_break_time_set(int seconds)
{
    char buf[16];
    int fd = open("/proc/sys/fs/lease-break-time", O_WRONLY);
    int len = snprintf(buf, sizeof(buf), "%d\n", seconds);
    int rc = 0;

    if (fd < 0) {
        return -errno;
    }
    if (write(fd, buf, (size_t)len) != len) {
        rc = -errno;
    }
    close(fd);
    return rc != 0 ? rc : (atk_lease_break_time_get() == seconds ? 0 : -EPERM);
}

int atk_lease_start(const char *sock, const char *dir_host, const char *dir_wire,
                    const char *name, enum atk_lease_kind kind, atk_lease **out, char *err)
{
    static const char content[] = "0123456789abcdefghijklmnopqrstuvwxyz: the lease's file\n";
    struct atk_lease *a = g_new0(struct atk_lease, 1);
    g_autofree char *wire = g_strdup_printf("%s/%s", dir_wire, name);
    int rc, fd;

    *out = NULL;
    a->lease_fd = -1;
    a->kind = kind;
    a->host_path = g_build_filename(dir_host, name, NULL);
    signal(SIGIO, SIG_IGN); /* the lease break notifies its holder */
    rc = pc_connect(sock, REQUEST_TIMEOUT_MS, &a->c);
    if (rc < 0) {
        a->c = NULL;
        atk_lease_free(a);
        return errf(err, rc, "connect: %s", pc_strerror(rc));
    }
    pc_conn_set_timeout(a->c, REQUEST_TIMEOUT_MS);
    rc = pc_create(a->c, wire, O_RDONLY | O_CREAT | O_EXCL, 0666, 65534, 65534, &a->lease_fd);
    if (rc != 0) {
        atk_lease_free(a);
        return errf(err, rc < 0 ? rc : -EIO, "T_CREATE %s as 65534: %s", wire, pc_strerror(rc));
    }
    fd = open(a->host_path, O_WRONLY);
    if (fd < 0 || write(fd, content, sizeof(content) - 1) != (ssize_t)sizeof(content) - 1) {
        rc = -errno;
        if (fd >= 0) {
            close(fd);
        }
        atk_lease_free(a);
        return errf(err, rc, "fill %s on the host", name);
    }
    close(fd);
    if (fcntl(a->lease_fd, F_SETLEASE, F_RDLCK) < 0) {
        rc = -errno;
        atk_lease_free(a);
        return errf(err, rc, "F_SETLEASE F_RDLCK on the fd T_CREATE gave: %s", strerror(-rc));
    }
    if (kind == ATK_LEASE_TRUNCATE) {
        rc = pc_send(a->c, PC_T_TRUNCATE, "Sq", wire, (int64_t)10);
    } else {
        rc = pc_send(a->c, PC_T_OPEN, "Sd", wire, (int32_t)O_WRONLY);
    }
    if (rc < 0) {
        atk_lease_free(a);
        return errf(err, rc, "send: %s", pc_strerror(rc));
    }
    *out = a;
    return 0;
}

int atk_lease_release(atk_lease *a)
{
    if (a->lease_fd < 0) {
        return 0;
    }
    return fcntl(a->lease_fd, F_SETLEASE, F_UNLCK) < 0 ? -errno : 0;
}

int atk_lease_finish(atk_lease *a, int timeout_ms, char *err)
{
    pc_reply *r = g_new0(pc_reply, 1);
    struct stat st, host;
    int rc;

    pc_conn_set_timeout(a->c, timeout_ms);
    rc = pc_recv(a->c, a->kind == ATK_LEASE_TRUNCATE ? PC_KIND_STATUS : PC_KIND_FD, r);
    if (rc < 0) {
        errf(err, rc, "no reply: %s (%s)", pc_strerror(rc), pc_conn_error(a->c));
    } else if (r->result != 0) {
        rc = errf(err, -EIO, "answered %s", pc_strerror(r->result));
    } else if (stat(a->host_path, &host) < 0) {
        rc = errf(err, -errno, "stat %s: %s", a->host_path, strerror(errno));
    } else if (a->kind == ATK_LEASE_TRUNCATE) {
        rc = host.st_size == 10 ? 0 : errf(err, -EIO, "answered 0 but the size is %lld",
                                           (long long)host.st_size);
    } else if (fstat(r->fd, &st) < 0 || st.st_ino != host.st_ino || st.st_dev != host.st_dev) {
        rc = errf(err, -EIO, "the fd received is not the file");
    } else if ((fcntl(r->fd, F_GETFL) & O_ACCMODE) != O_WRONLY) {
        rc = errf(err, -EIO, "the fd received is not open for writing");
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    g_free(r);
    return rc;
}

void atk_lease_free(atk_lease *a)
{
    if (a == NULL) {
        return;
    }
    if (a->lease_fd >= 0) {
        fcntl(a->lease_fd, F_SETLEASE, F_UNLCK);
        close(a->lease_fd);
    }
    pc_free(a->c);
    g_free(a->host_path);
    g_free(a);
}

/* ---- 3. unread descriptors ----------------------------------------------------- */

struct atk_unread {
    int n_each;
    GPtrArray *conns; /* pc_conn */
};

int atk_unread_start(const char *sock, const char *file_wire, int conns, int n_each,
                     int timeout_ms, atk_unread **out, char *err)
{
    struct atk_unread *a = g_new0(struct atk_unread, 1);
    int64_t deadline = proc_now_ms() + timeout_ms;
    uint8_t frame[PC_MAX_FRAME];
    int len = pc_encode(frame, sizeof(frame), PC_T_OPEN, "Sd", file_wire, (int32_t)O_RDONLY);
    GByteArray *batch = g_byte_array_new();
    int rc = 0;

    a->n_each = n_each;
    a->conns = g_ptr_array_new_with_free_func((GDestroyNotify)pc_free);
    *out = a;
    for (int i = 0; i < n_each; i++) {
        g_byte_array_append(batch, frame, (guint)len);
    }
    for (int i = 0; i < conns && rc == 0; i++) {
        pc_conn *c = NULL;

        rc = pc_connect(sock, timeout_ms, &c);
        if (rc < 0) {
            errf(err, rc, "connect %d: %s", i, pc_strerror(rc));
            break;
        }
        g_ptr_array_add(a->conns, c);
        rc = send_all(pc_conn_fd(c), batch->data, batch->len, deadline);
        if (rc < 0) {
            errf(err, rc, "connection %d: sending %d T_OPEN: %s", i, n_each, pc_strerror(rc));
        }
    }
    g_byte_array_free(batch, TRUE);
    return rc;
}

int atk_unread_drain(atk_unread *a, dev_t dev, ino_t ino, int timeout_ms, char *err)
{
    int64_t deadline = proc_now_ms() + timeout_ms;
    pc_reply *r = g_new0(pc_reply, 1);
    int ok = 0;

    for (guint i = 0; i < a->conns->len; i++) {
        pc_conn *c = a->conns->pdata[i];

        for (int k = 0; k < a->n_each; k++) {
            int64_t left = deadline - proc_now_ms();
            struct stat st;
            int rc;

            pc_conn_set_timeout(c, left > 0 ? (int)left : 0);
            rc = pc_recv(c, PC_KIND_FD, r);
            if (rc < 0) {
                errf(err, rc, "connection %u, reply %d: %s (%s)", i, k, pc_strerror(rc),
                     pc_conn_error(c));
                g_free(r);
                return ok;
            }
            if (r->result == 0 && fstat(r->fd, &st) == 0 && st.st_dev == dev &&
                st.st_ino == ino) {
                ok++;
            } else if (err != NULL && err[0] == '\0') {
                errf(err, 0, "connection %u, reply %d: %s", i, k, pc_strerror(r->result));
            }
            if (r->fd >= 0) {
                close(r->fd);
            }
        }
    }
    g_free(r);
    return ok;
}

void atk_unread_free(atk_unread *a)
{
    if (a == NULL) {
        return;
    }
    g_ptr_array_free(a->conns, TRUE);
    g_free(a);
}

/* ---- 4. connection floods ------------------------------------------------------ */

struct atk_flood {
    GArray *fds; /* served connections, held open */
    int served, refused;
};

/* Opens n connections, probes each; served fds go to keep[] (cap). */
static void flood(const char *sock, int n, int timeout_ms, int *keep, int cap, int *served,
                  int *refused)
{
    int64_t deadline = proc_now_ms() + timeout_ms;

    *served = 0;
    *refused = 0;
    for (int i = 0; i < n; i++) {
        int fd = raw_connect(sock, deadline);
        int probe;

        if (fd < 0) {
            (*refused)++;
            continue;
        }
        probe = probe_lstat(fd, MIN(deadline, proc_now_ms() + 2000));
        if (probe == 1 && *served < cap) {
            keep[(*served)++] = fd;
        } else {
            (*refused)++;
            close(fd);
        }
    }
}

atk_flood *atk_flood_start(const char *sock, int n, int timeout_ms)
{
    struct atk_flood *f = g_new0(struct atk_flood, 1);
    int *keep = g_new(int, n);

    flood(sock, n, timeout_ms, keep, n, &f->served, &f->refused);
    f->fds = g_array_new(FALSE, FALSE, sizeof(int));
    g_array_append_vals(f->fds, keep, (guint)f->served);
    g_free(keep);
    return f;
}

int atk_flood_served(const atk_flood *f)
{
    return f->served;
}

int atk_flood_refused(const atk_flood *f)
{
    return f->refused;
}

void atk_flood_free(atk_flood *f)
{
    if (f == NULL) {
        return;
    }
    for (guint i = 0; i < f->fds->len; i++) {
        close(g_array_index(f->fds, int, i));
    }
    g_array_free(f->fds, TRUE);
    g_free(f);
}

#define FLOOD_AS_MAX 1024

pid_t atk_flood_as_start(const char *sock, uid_t uid, gid_t gid, int n, int timeout_ms,
                         int *served, int *refused)
{
    int pfd[2];
    pid_t pid;
    int counts[2] = {-1, -1};
    size_t got = 0;
    int64_t deadline = proc_now_ms() + timeout_ms + 2000;

    if (n > FLOOD_AS_MAX || pipe2(pfd, O_CLOEXEC) < 0) {
        return -EINVAL;
    }
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -errno;
    }
    if (pid == 0) {
        /* The child: its own credentials, no allocation (forked from a
         * threaded process), hold the served connections until killed. */
        static int keep[FLOOD_AS_MAX];
        int c[2];

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0) {
            _exit(2);
        }
        flood(sock, n, timeout_ms, keep, FLOOD_AS_MAX, &c[0], &c[1]);
        if (write(pfd[1], c, sizeof(c)) != sizeof(c)) {
            _exit(3);
        }
        for (;;) {
            pause();
        }
    }
    close(pfd[1]);
    iso_watch_pid(pid);
    while (got < sizeof(counts) && proc_now_ms() < deadline) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        ssize_t r;

        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        r = read(pfd[0], (char *)counts + got, sizeof(counts) - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(pfd[0]);
    if (got < sizeof(counts)) {
        atk_flood_as_stop(pid);
        return -EIO;
    }
    *served = counts[0];
    *refused = counts[1];
    return pid;
}

void atk_flood_as_stop(pid_t child)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        iso_unwatch_pid(child);
    }
}

/* ---- 5. peers that never read -------------------------------------------------- */

struct atk_noread {
    GArray *fds;
    uint64_t bytes;
};

atk_noread *atk_noread_start(const char *sock, const char *path_wire, int conns,
                             size_t max_bytes, int timeout_ms)
{
    struct atk_noread *a = g_new0(struct atk_noread, 1);
    int64_t deadline = proc_now_ms() + timeout_ms;
    uint8_t frame[PC_MAX_FRAME];
    int flen = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", path_wire);
    size_t blen = (64 * 1024 / (size_t)flen) * (size_t)flen;
    uint8_t *buf = g_malloc(blen);
    size_t *sent;
    struct pollfd *p;
    int64_t quiet_since;

    for (size_t off = 0; off < blen; off += (size_t)flen) {
        memcpy(buf + off, frame, (size_t)flen);
    }
    a->fds = g_array_new(FALSE, FALSE, sizeof(int));
    for (int i = 0; i < conns; i++) {
        int fd = raw_connect(sock, deadline);

        if (fd >= 0) {
            g_array_append_val(a->fds, fd);
        }
    }
    sent = g_new0(size_t, a->fds->len);
    p = g_new0(struct pollfd, a->fds->len);
    /* Round-robin until every socket is full (nothing writable for 500 ms,
     * while the daemon reads what it will) or has had max_bytes. */
    quiet_since = proc_now_ms();
    while (proc_now_ms() < deadline && proc_now_ms() - quiet_since < 500) {
        nfds_t np = 0;

        for (guint i = 0; i < a->fds->len; i++) {
            if (sent[i] < max_bytes) {
                p[np].fd = g_array_index(a->fds, int, i);
                p[np].events = POLLOUT;
                np++;
            }
        }
        if (np == 0) {
            break;
        }
        if (poll(p, np, 50) <= 0) {
            continue;
        }
        for (guint i = 0; i < a->fds->len; i++) {
            int fd = g_array_index(a->fds, int, i);

            for (nfds_t k = 0; k < np; k++) {
                if (p[k].fd == fd && (p[k].revents & POLLOUT)) {
                    /* Whole frames only, so the stream stays well formed. */
                    size_t off = sent[i] % blen;
                    size_t want = MIN(blen - off, max_bytes - sent[i]);
                    ssize_t n = send(fd, buf + off, want, MSG_NOSIGNAL | MSG_DONTWAIT);

                    if (n > 0) {
                        sent[i] += (size_t)n;
                        a->bytes += (uint64_t)n;
                        quiet_since = proc_now_ms();
                    } else if (n < 0 && errno != EAGAIN) {
                        sent[i] = max_bytes; /* closed on us */
                    }
                }
            }
        }
    }
    g_free(p);
    g_free(sent);
    g_free(buf);
    return a;
}

int atk_noread_conns(const atk_noread *a)
{
    return (int)a->fds->len;
}

uint64_t atk_noread_bytes(const atk_noread *a)
{
    return a->bytes;
}

int atk_noread_wait_closed(atk_noread *a, int timeout_ms)
{
    int64_t deadline = proc_now_ms() + timeout_ms;
    guint n = a->fds->len;
    struct pollfd *p = g_new0(struct pollfd, n);
    int count = 0;

    /* Reading would be progress, which is what the daemon waits for in
     * vain: watch for the hang-up alone (a closed peer sets POLLHUP on a
     * Unix stream socket whatever is still unread). */
    for (guint i = 0; i < n; i++) {
        p[i].fd = g_array_index(a->fds, int, i);
        p[i].events = POLLRDHUP;
    }
    for (;;) {
        count = 0;
        poll(p, n, 0);
        for (guint i = 0; i < n; i++) {
            count += (p[i].revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
        }
        if (count == (int)n || proc_now_ms() >= deadline) {
            break;
        }
        usleep(50000);
    }
    g_free(p);
    return count;
}

void atk_noread_free(atk_noread *a)
{
    if (a == NULL) {
        return;
    }
    for (guint i = 0; i < a->fds->len; i++) {
        close(g_array_index(a->fds, int, i));
    }
    g_array_free(a->fds, TRUE);
    g_free(a);
}

/* ---- 6. pipelining as fast as possible ------------------------------------------ */

#define PIPE_REPLY (PC_HDR_SIZE + PC_STAT_SIZE)
#define PIPE_READ_MAX (16 * PIPE_REPLY)

struct pipe_conn {
    struct atk_pipe *a;
    int fd;
    pthread_t writer, reader;
    bool has_writer, has_reader;
    atomic_ulong read_bytes; /* taken from the socket by the reader */
    atk_counts counts;       /* the reader's */
    uint64_t writer_failed;  /* the writer's own, not to race the reader */
};

struct atk_pipe {
    atomic_bool stop;
    uint8_t *buf; /* 128 KiB of whole T_LSTAT frames */
    size_t blen;
    int n;
    struct pipe_conn *c;
};

static void *pipe_writer(void *arg)
{
    struct pipe_conn *pc = arg;
    struct atk_pipe *a = pc->a;

    while (!atomic_load(&a->stop)) {
        size_t off = 0;

        while (off < a->blen && !atomic_load(&a->stop)) {
            struct pollfd p = {.fd = pc->fd, .events = POLLOUT};
            ssize_t n;

            if (poll(&p, 1, 100) <= 0) {
                continue;
            }
            n = send(pc->fd, a->buf + off, a->blen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                pc->writer_failed++;
                return NULL;
            }
        }
    }
    return NULL;
}

static void *pipe_reader(void *arg)
{
    struct pipe_conn *pc = arg;
    struct atk_pipe *a = pc->a;
    uint8_t buf[PIPE_READ_MAX];
    uint8_t hdr[PC_HDR_SIZE];
    size_t hdr_got = 0, body_left = 0;

    while (!atomic_load(&a->stop)) {
        struct pollfd p = {.fd = pc->fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        n = recv(pc->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            pc->counts.failed++;
            break;
        }
        if (n > 0) {
            atomic_fetch_add(&pc->read_bytes, (unsigned long)n);
        }
        for (ssize_t i = 0; i < n;) {
            if (body_left > 0) {
                size_t take = MIN(body_left, (size_t)(n - i));

                body_left -= take;
                i += (ssize_t)take;
                if (body_left == 0) {
                    pc->counts.answered++;
                }
                continue;
            }
            hdr[hdr_got++] = buf[i++];
            if (hdr_got == PC_HDR_SIZE) {
                hdr_got = 0;
                body_left = get_u32(hdr + 4);
                if (get_u32(hdr) != 0 || body_left != PC_STAT_SIZE) {
                    pc->counts.failed++;
                }
                if (body_left == 0) {
                    pc->counts.answered++;
                }
            }
        }
    }
    return NULL;
}

atk_pipe *atk_pipe_start(const char *sock, const char *path_wire, int conns)
{
    struct atk_pipe *a = g_new0(struct atk_pipe, 1);
    uint8_t frame[PC_MAX_FRAME];
    int flen = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", path_wire);

    a->blen = (128 * 1024 / (size_t)flen) * (size_t)flen;
    a->buf = g_malloc(a->blen);
    for (size_t off = 0; off < a->blen; off += (size_t)flen) {
        memcpy(a->buf + off, frame, (size_t)flen);
    }
    a->c = g_new0(struct pipe_conn, conns);
    for (int i = 0; i < conns; i++) {
        struct pipe_conn *pc = &a->c[i];

        pc->a = a;
        pc->fd = raw_connect(sock, proc_now_ms() + REQUEST_TIMEOUT_MS);
        a->n++;
        if (pc->fd < 0) {
            pc->counts.failed++;
            continue;
        }
        pc->has_reader = pthread_create(&pc->reader, NULL, pipe_reader, pc) == 0;
        pc->has_writer = pthread_create(&pc->writer, NULL, pipe_writer, pc) == 0;
    }
    return a;
}

unsigned long atk_pipe_delivered(atk_pipe *a)
{
    unsigned long bytes = 0;

    for (int i = 0; i < a->n; i++) {
        int inq = 0;

        if (a->c[i].fd < 0) {
            continue;
        }
        bytes += atomic_load(&a->c[i].read_bytes);
        if (ioctl(a->c[i].fd, SIOCINQ, &inq) == 0 && inq > 0) {
            bytes += (unsigned long)inq;
        }
    }
    return bytes / PIPE_REPLY;
}

void atk_pipe_stop(atk_pipe *a, atk_counts *out)
{
    atk_counts sum = {0};

    if (a == NULL) {
        return;
    }
    atomic_store(&a->stop, true);
    for (int i = 0; i < a->n; i++) {
        struct pipe_conn *pc = &a->c[i];

        if (pc->has_writer) {
            pthread_join(pc->writer, NULL);
            pc->has_writer = false;
        }
        if (pc->has_reader) {
            pthread_join(pc->reader, NULL);
            pc->has_reader = false;
        }
        sum.answered += pc->counts.answered;
        sum.failed += pc->counts.failed + pc->writer_failed;
    }
    sum.sent = sum.answered; /* pipelined: whatever was answered was sent */
    if (out != NULL) {
        *out = sum;
    }
}

void atk_pipe_free(atk_pipe *a)
{
    if (a == NULL) {
        return;
    }
    atk_pipe_stop(a, NULL);
    for (int i = 0; i < a->n; i++) {
        if (a->c[i].fd >= 0) {
            close(a->c[i].fd);
        }
    }
    g_free(a->c);
    g_free(a->buf);
    g_free(a);
}

/* ---- 7. a hung filesystem ------------------------------------------------------ */

bool atk_is_mount(const char *path)
{
    g_autofree char *parent = g_path_get_dirname(path);
    struct stat a, b;

    return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

int atk_hangfs_mount(const char *hangfs_bin, const char *mnt, pid_t *pid, char *err)
{
    pid_t p;

    if (access(hangfs_bin, X_OK) != 0) {
        return errf(err, -ENOENT, "%s is not built", hangfs_bin);
    }
    p = fork();
    if (p < 0) {
        return errf(err, -errno, "fork: %s", strerror(errno));
    }
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* hangfs unmounts on SIGTERM */
        execl(hangfs_bin, hangfs_bin, mnt, (char *)NULL);
        _exit(127);
    }
    *pid = p;
    iso_watch_pid(p);
    iso_watch_mount(mnt);
    for (int64_t end = proc_now_ms() + 5000; proc_now_ms() < end; usleep(10000)) {
        int st;

        if (atk_is_mount(mnt)) {
            return 0;
        }
        if (waitpid(p, &st, WNOHANG) == p) {
            iso_unwatch_pid(p);
            iso_unwatch_mount(mnt);
            *pid = 0;
            return errf(err, -ECHILD, "hangfs exited (status 0x%x) before mounting %s", st, mnt);
        }
    }
    atk_hangfs_unmount(mnt, p, NULL);
    *pid = 0;
    return errf(err, -ETIMEDOUT, "hangfs did not mount %s within 5 s", mnt);
}

int atk_hangfs_release(pid_t pid)
{
    return pid > 0 && kill(pid, SIGUSR1) == 0 ? 0 : -ESRCH;
}

int atk_hangfs_unmount(const char *mnt, pid_t pid, char *err)
{
    int rc = 0;

    if (pid > 0) {
        kill(pid, SIGUSR1);
        kill(pid, SIGTERM);
        for (int64_t end = proc_now_ms() + 3000;; usleep(10000)) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                break;
            }
            if (proc_now_ms() >= end) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                rc = errf(err, -ETIMEDOUT, "hangfs ignored SIGTERM for 3 s: killed");
                break;
            }
        }
        iso_unwatch_pid(pid);
    }
    if (atk_is_mount(mnt) && umount2(mnt, MNT_DETACH) < 0) {
        rc = errf(err, -errno, "umount %s: %s", mnt, strerror(errno));
    }
    iso_unwatch_mount(mnt);
    return rc;
}

struct atk_stuck {
    pc_conn *c;
};

int atk_stuck_start(const char *sock, const char *path_wire, atk_stuck **out, char *err)
{
    struct atk_stuck *a = g_new0(struct atk_stuck, 1);
    int rc = pc_connect(sock, REQUEST_TIMEOUT_MS, &a->c);

    *out = NULL;
    if (rc < 0) {
        g_free(a);
        return errf(err, rc, "connect: %s", pc_strerror(rc));
    }
    rc = pc_send(a->c, PC_T_LSTAT, "S", path_wire);
    if (rc < 0) {
        atk_stuck_free(a);
        return errf(err, rc, "send: %s", pc_strerror(rc));
    }
    *out = a;
    return 0;
}

int atk_stuck_finish(atk_stuck *a, int timeout_ms, uint32_t *mode, uint64_t *size, char *err)
{
    pc_reply *r = g_new0(pc_reply, 1);
    pc_proxy_stat st;
    int rc;

    pc_conn_set_timeout(a->c, timeout_ms);
    rc = pc_recv(a->c, PC_KIND_DATA, r);
    if (rc < 0) {
        errf(err, rc, "no reply: %s (%s)", pc_strerror(rc), pc_conn_error(a->c));
    } else if (r->result != 0) {
        rc = errf(err, r->result, "answered %s", pc_strerror(r->result));
    } else if (pc_decode_stat(r->payload, r->len, &st) < 0) {
        rc = errf(err, PC_ERR_PROTO, "a %zu-byte stat", r->len);
    } else {
        *mode = st.mode;
        *size = st.size;
    }
    g_free(r);
    return rc;
}

void atk_stuck_free(atk_stuck *a)
{
    if (a != NULL) {
        pc_free(a->c);
        g_free(a);
    }
}

/* ---- 8. garbage ------------------------------------------------------------------ */

int atk_garbage(const char *sock, int timeout_ms, char *err)
{
    uint8_t junk[8 + 64];
    uint8_t big[8 + 4096];
    pc_conn *c1 = NULL, *c2 = NULL;
    int rc;

    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 37 + 11);
    }
    put_u32(junk, 0xdeadbeef);
    put_u32(junk + 4, 64);
    memset(big, 'x', sizeof(big));
    put_u32(big, PC_T_LSTAT);
    put_u32(big + 4, 1u << 20);
    rc = pc_connect(sock, timeout_ms, &c1);
    if (rc == 0) {
        rc = pc_connect(sock, timeout_ms, &c2);
    }
    if (rc < 0) {
        errf(err, rc, "connect: %s", pc_strerror(rc));
        goto out;
    }
    pc_send_raw(c1, junk, sizeof(junk));
    pc_send_raw(c2, big, sizeof(big));
    if (pc_expect_eof(c1, timeout_ms) != 0) {
        rc = errf(err, PC_ERR_TIMEOUT, "an unknown request type left the connection open");
    } else if (pc_expect_eof(c2, timeout_ms) != 0) {
        rc = errf(err, PC_ERR_TIMEOUT, "a 1 MiB frame left the connection open");
    }
out:
    pc_free(c1);
    pc_free(c2);
    return rc;
}

/* ---- 9. log flood ---------------------------------------------------------------- */

#define MKNOD_BATCH 256

int atk_mknod_flood(pc_conn *c, const char *prefix_wire, int n, int timeout_ms, char *err)
{
    int64_t deadline = proc_now_ms() + timeout_ms;
    uint8_t *buf = g_malloc((size_t)MKNOD_BATCH * 256);
    pc_reply *r = g_new0(pc_reply, 1);
    int eperm = 0, rc = 0;

    for (int done = 0; done < n;) {
        int batch = MIN(MKNOD_BATCH, n - done);
        size_t len = 0;

        for (int i = 0; i < batch; i++) {
            char name[128];

            snprintf(name, sizeof(name), "%s-%d", prefix_wire, done + i);
            len += (size_t)pc_encode(buf + len, 256, PC_T_MKNOD, "ddsdq", 0, 0, name,
                                     (int32_t)(S_IFCHR | 0600), (int64_t)makedev(1, 3));
        }
        rc = send_all(pc_conn_fd(c), buf, len, deadline);
        for (int i = 0; i < batch && rc == 0; i++) {
            int64_t left = deadline - proc_now_ms();

            pc_conn_set_timeout(c, left > 0 ? (int)left : 0);
            rc = pc_recv(c, PC_KIND_STATUS, r);
            if (rc == 0 && r->result == -EPERM) {
                eperm++;
            }
        }
        if (rc < 0) {
            errf(err, rc, "after %d requests: %s (%s)", done, pc_strerror(rc), pc_conn_error(c));
            break;
        }
        done += batch;
    }
    g_free(r);
    g_free(buf);
    return rc < 0 ? rc : eperm;
}

int atk_mknod_one(pc_conn *c, const char *path_wire, int timeout_ms)
{
    pc_reply *r = g_new0(pc_reply, 1);
    int rc;

    pc_conn_set_timeout(c, timeout_ms);
    rc = pc_call(c, r, PC_T_MKNOD, 0, "ddbdq", 0, 0, path_wire, strlen(path_wire),
                 (int32_t)(S_IFCHR | 0600), (int64_t)makedev(1, 3));
    if (rc == 0) {
        rc = r->result;
    }
    g_free(r);
    return rc;
}
