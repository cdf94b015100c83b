/* listener.c - the named socket of an export.
 *
 * QEMU unlink()s the socket path as soon as it has connected (9p-proxy.c,
 * "for security reasons").  So the socket is bound under a private name in a
 * root-owned 0700 directory beside the path, and the public path is a hard
 * link to it: whenever the path disappears (inotify tells at once; every
 * accept checks too) the link is made again, and the next guest finds the
 * socket.
 *
 * That only matters where QEMU can write the socket's directory, and then
 * QEMU's uid can also rename the private directory away and put a directory
 * or symlink of its own in its place.  So both directories are opened once,
 * without following symlinks, the private one is checked to be root's and
 * 0700 on the descriptor, and every later operation is relative to those
 * descriptors (linkat, fchownat, fstatat, unlinkat, all without following):
 * whatever is planted under the old names is never touched.  bind() takes
 * only a path; it is given /proc/self/fd/N/sock, which the kernel resolves
 * through the descriptor (no fchdir: the working directory is the whole
 * process's, and the other threads are running).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "peers.h"

#define PRIVATE_PREFIX ".virtfs-proxyd."
#define PRIVATE_SOCK "sock"

struct listener {
    char *path;         /* public name, given to QEMU (absolute) */
    char *dir_path;     /* its directory, for messages */
    char *base_name;    /* last component of path */
    char *private_name; /* the 0700 directory, in dir */
    int dir_fd;         /* the socket's directory */
    int private_fd;     /* the private directory, checked to be root's */
    dev_t private_dev;  /* and its identity, to find it again by name */
    ino_t private_ino;
    uid_t uid;
    gid_t gid;
    int fd;
    ino_t ino; /* the socket file, once ours to remove */
    struct evconnlistener *evl;
    struct event *ev_resume; /* re-enables accepting after a failed accept */
    int inotify_fd;
    struct event *ev_inotify;
    listener_peer_fn on_peer;
    void *peer_arg;
    struct log_limit log; /* lines that peers (or QEMU's uid) can cause */
    bool private_moved;   /* said once that the private name was replaced */
    bool own_dir;         /* the private directory is ours to remove */
    ino_t adopted_ino;    /* taken over, but the files stay the old process's
                           * until listener_claim (it may still go on) */
    bool external;        /* the socket file is systemd's (socket activation) */
    bool external_gone;   /* said that systemd's path was removed */
};

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

/* The address of name in the directory open at dir_fd, through procfs:
 * -ENAMETOOLONG if that does not fit a socket address. */
static int unix_addr_at(int dir_fd, const char *name, struct sockaddr_un *sun)
{
    char path[sizeof(sun->sun_path) + 1];
    int n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir_fd, name);

    if (n < 0 || (size_t)n >= sizeof(path)) {
        return -ENAMETOOLONG;
    }
    return unix_addr(path, sun);
}

/* Whether the socket fd is bound to exactly path. */
static bool bound_to(int fd, const char *path)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);

    memset(&sun, 0, sizeof(sun));
    if (getsockname(fd, (struct sockaddr *)&sun, &len) < 0 || sun.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path)) {
        return false;
    }
    return strncmp(sun.sun_path, path, sizeof(sun.sun_path)) == 0;
}

/* Whether a server answers on the socket name in dir_fd (shown: its path,
 * also the fallback when the procfs name is too long). */
static bool socket_is_live(int dir_fd, const char *name, const char *shown)
{
    struct sockaddr_un sun;
    bool live = false;
    int fd;

    if (unix_addr_at(dir_fd, name, &sun) < 0 && unix_addr(shown, &sun) < 0) {
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
        close(fd);
    }
    return live;
}

/* Removes what a previous run left at name in dir_fd, if it is a socket
 * nobody serves; anything else (a live server, a file that is no socket) is
 * an error. */
static int clear_stale_socket(int dir_fd, const char *name, const char *shown)
{
    struct stat st;

    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_error("%s exists and is not a socket; remove it or choose another path", shown);
        return -EEXIST;
    }
    if (socket_is_live(dir_fd, name, shown)) {
        log_error("another server is already listening on %s", shown);
        return -EADDRINUSE;
    }
    log_info("removing stale socket %s", shown);
    return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

/* Says once at start-up where QEMU can remove the socket path: the daemon
 * copes, but a directory only root can write is the safer deployment. */
static void note_directory(const struct listener *l)
{
    struct stat st;

    if (fstat(l->dir_fd, &st) < 0) {
        return;
    }
    if ((st.st_uid != 0 && (st.st_mode & S_IWUSR)) ||
        ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
        if (l->external) {
            log_warn("%s is writable by others than root: QEMU removes %s after each "
                     "connection, and a path systemd bound cannot be put back (see "
                     "virtfs-proxyd(8), SOCKET ACTIVATION)",
                     l->dir_path, l->base_name);
            return;
        }
        log_info("%s is writable by others than root: QEMU removes %s after each connection "
                 "and the daemon puts it back; a directory only root can write is safer "
                 "(see virtfs-proxyd(8))",
                 l->dir_path, l->base_name);
    }
}

/* Opens the private directory (creating it if asked) and checks, on the
 * descriptor, that it is a directory only root can use. */
static int open_private_dir(struct listener *l, bool create)
{
    struct stat st;
    int fd;

    if (create && mkdirat(l->dir_fd, l->private_name, 0700) < 0 && errno != EEXIST) {
        log_error("cannot create %s/%s: %m", l->dir_path, l->private_name);
        return -errno;
    }
    fd = openat(l->dir_fd, l->private_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;

        log_error("cannot open %s/%s: %s%s", l->dir_path, l->private_name, strerror(err),
                  err == ELOOP || err == ENOTDIR ? " (it must be a directory; remove it)" : "");
        return -err;
    }
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & 077) != 0) {
        log_error("%s/%s is not a private root-owned directory (owner %u, mode %04o); "
                  "remove it",
                  l->dir_path, l->private_name, (unsigned)st.st_uid,
                  (unsigned)(st.st_mode & 07777));
        close(fd);
        return -EEXIST;
    }
    l->private_fd = fd;
    l->private_dev = st.st_dev;
    l->private_ino = st.st_ino;
    return 0;
}

static int bind_socket(struct listener *l)
{
    struct sockaddr_un sun;
    struct stat st;

    /* "/proc/self/fd/N/sock" always fits. */
    unix_addr_at(l->private_fd, PRIVATE_SOCK, &sun);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        log_error("socket: %m");
        return -errno;
    }
    if (bind(l->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        log_error("cannot bind a socket in %s/%s: %m", l->dir_path, l->private_name);
        return -errno;
    }
    if (fstatat(l->private_fd, PRIVATE_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        log_error("cannot find the socket in %s/%s: %m", l->dir_path, l->private_name);
        return -errno;
    }
    l->ino = st.st_ino;
    /* srwxrwx---, as the reference helper.  Set here rather than through
     * the umask, which is the whole process's: the I/O threads create
     * guests' files meanwhile, and rely on it being 0. */
    if (fchmodat(l->private_fd, PRIVATE_SOCK, 0770, 0) < 0 ||
        fchownat(l->private_fd, PRIVATE_SOCK, l->uid, l->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
        listen(l->fd, SOMAXCONN) < 0) {
        log_error("cannot set up socket %s: %m", l->path);
        return -errno;
    }
    if (linkat(l->private_fd, PRIVATE_SOCK, l->dir_fd, l->base_name, 0) < 0) {
        log_error("cannot create socket path %s: %m", l->path);
        return -errno;
    }
    return 0;
}

/* Whether the private directory is still where it was made; a warning the
 * first time it is not (only the socket directory's writers can move it,
 * and the daemon goes on with the directory it has open). */
static void check_private_name(struct listener *l)
{
    struct stat st;
    bool moved = fstatat(l->dir_fd, l->private_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                 st.st_dev != l->private_dev || st.st_ino != l->private_ino;

    if (moved && !l->private_moved) {
        /* Rate-limited all the same: renaming it back and forth is cheap. */
        log_guest(&l->log, LOG_LEVEL_WARNING,
                  "%s/%s was moved or replaced (by a writer of %s): the daemon goes on "
                  "with its own directory; a live upgrade cannot take this socket over and "
                  "a restart refuses to start until the name is removed",
                  l->dir_path, l->private_name, l->dir_path);
    }
    l->private_moved = moved;
}

/* systemd's socket path cannot be put back (no name of ours links to the
 * socket): say so once each time it goes. */
static void check_external_path(struct listener *l)
{
    struct stat st;
    bool gone = fstatat(l->dir_fd, l->base_name, &st, AT_SYMLINK_NOFOLLOW) < 0;

    if (gone && !l->external_gone) {
        log_guest(&l->log, LOG_LEVEL_ERROR,
                  "socket path %s (systemd's, socket activation) was removed, probably by "
                  "QEMU after connecting: later guests cannot connect until it is made again "
                  "(systemctl restart of its .socket unit); keep %s writable by root only "
                  "(see virtfs-proxyd(8), SOCKET ACTIVATION)",
                  l->path, l->dir_path);
    }
    l->external_gone = gone;
}

void listener_restore(struct listener *l)
{
    if (l->external) {
        check_external_path(l);
        return;
    }
    if (l->private_fd < 0) {
        return;
    }
    if (linkat(l->private_fd, PRIVATE_SOCK, l->dir_fd, l->base_name, 0) == 0) {
        log_debug("socket path %s restored", l->path);
    } else if (errno != EEXIST) {
        log_guest(&l->log, LOG_LEVEL_WARNING, "cannot restore socket path %s: %s", l->path,
                  strerror(errno));
    }
    check_private_name(l);
}

static struct listener *listener_alloc(const char *path, uid_t uid, gid_t gid)
{
    struct sockaddr_un sun;
    struct listener *l;

    if (unix_addr(path, &sun) < 0) {
        log_error("socket path %s is too long (at most %zu bytes)", path,
                  sizeof(sun.sun_path) - 1);
        return NULL;
    }
    l = g_new0(struct listener, 1);
    /* Absolute, so that the messages still name the socket after daemon()
     * has changed directory to /. */
    l->path = g_canonicalize_filename(path, NULL);
    l->dir_path = g_path_get_dirname(l->path);
    l->base_name = g_path_get_basename(l->path);
    l->private_name = g_strconcat(PRIVATE_PREFIX, l->base_name, NULL);
    l->uid = uid;
    l->gid = gid;
    l->fd = -1;
    l->private_fd = -1;
    l->inotify_fd = -1;
    l->dir_fd = open(l->dir_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (l->dir_fd < 0) {
        log_error("socket directory %s: %m%s", l->dir_path,
                  errno == ELOOP ? " (a symlink: give the directory itself)" : "");
        listener_free(l);
        return NULL;
    }
    return l;
}

struct listener *listener_create(const char *path, uid_t uid, gid_t gid)
{
    struct listener *l = listener_alloc(path, uid, gid);

    if (l == NULL) {
        return NULL;
    }
    if (clear_stale_socket(l->dir_fd, l->base_name, l->path) < 0 ||
        open_private_dir(l, true) < 0) {
        listener_free(l);
        return NULL;
    }
    l->own_dir = true;
    if (clear_stale_socket(l->private_fd, PRIVATE_SOCK, l->path) < 0 || bind_socket(l) < 0) {
        listener_free(l);
        return NULL;
    }
    note_directory(l);
    return l;
}

struct listener *listener_adopt(int fd, const char *path, uid_t uid, gid_t gid)
{
    struct listener *l = listener_alloc(path, uid, gid);
    int listening = 0;
    socklen_t len = sizeof(listening);
    struct stat st;

    if (l == NULL) {
        close(fd);
        return NULL;
    }
    l->fd = fd;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        log_error("cannot take over the socket of %s: not a listening socket", l->path);
        listener_free(l);
        return NULL;
    }
    if (bound_to(fd, l->path)) {
        /* Bound at the path itself, not through a private name: systemd's
         * (the daemon binds through /proc/self/fd). */
        l->external = true;
        return l;
    }
    /* A private directory that is not root's (QEMU's uid renamed the real
     * one away and made its own) fails here: the upgrade is refused, and
     * the old process, which still has the real one open, goes on. */
    if (open_private_dir(l, false) < 0) {
        log_error("cannot take over the socket of %s", l->path);
        listener_free(l);
        return NULL;
    }
    if (fstatat(l->private_fd, PRIVATE_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISSOCK(st.st_mode)) {
        log_error("cannot take over the socket of %s: no socket in %s/%s", l->path, l->dir_path,
                  l->private_name);
        listener_free(l);
        return NULL;
    }
    l->adopted_ino = st.st_ino;
    return l;
}

struct listener *listener_from_systemd(int fd, const char *path, uid_t uid, gid_t gid)
{
    struct listener *l = listener_alloc(path, uid, gid);
    int listening = 0;
    socklen_t len = sizeof(listening);

    if (l == NULL) {
        close(fd);
        return NULL;
    }
    l->fd = fd;
    l->external = true;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        log_error("%s: the socket systemd passed is not listening", l->path);
        listener_free(l);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    note_directory(l);
    return l;
}

bool listener_external(const struct listener *l)
{
    return l->external;
}

void listener_claim(struct listener *l)
{
    if (l->adopted_ino != 0) {
        l->ino = l->adopted_ino;
        l->adopted_ino = 0;
        l->own_dir = true;
    }
}

int listener_fd(const struct listener *l)
{
    return l->evl != NULL ? evconnlistener_get_fd(l->evl) : l->fd;
}

void listener_pause(struct listener *l, bool pause)
{
    if (l->evl == NULL) {
        return;
    }
    if (pause) {
        evconnlistener_disable(l->evl);
        evtimer_del(l->ev_resume);
    } else {
        evconnlistener_enable(l->evl);
    }
}

void listener_abandon(struct listener *l)
{
    if (l != NULL) {
        l->ino = 0; /* the new process owns the socket files now */
        l->own_dir = false;
        listener_free(l);
    }
}

/* SO_PEERCRED, and whether the peer is root or the socket's owner or
 * group (the same people the file mode lets in). */
static bool peer_allowed(const struct listener *l, int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    gid_t *groups = NULL;
    size_t n = 0;
    bool member = false;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) {
        return false;
    }
    if (cred->uid == 0 || cred->uid == l->uid || cred->gid == l->gid) {
        return true;
    }
    /* Every supplementary group, however many: the file mode lets a
     * member of the socket's group in wherever the group sits. */
    if (peers_groups(fd, &groups, &n) == 0) {
        for (size_t i = 0; i < n && !member; i++) {
            member = groups[i] == l->gid;
        }
        g_free(groups);
    }
    return member;
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    struct listener *l = arg;
    struct ucred cred = {0};

    listener_restore(l);
    if (!peer_allowed(l, fd, &cred)) {
        log_guest(&l->log, LOG_LEVEL_WARNING,
                  "%s: refused peer pid %d uid %u gid %u (not root, uid %u or gid %u)", l->path,
                  (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid, (unsigned)l->uid,
                  (unsigned)l->gid);
        close(fd);
        return;
    }
    l->on_peer(fd, &cred, l->peer_arg);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    evconnlistener_enable(l->evl);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    const struct timeval pause = {.tv_sec = 0, .tv_usec = 100 * 1000};

    /* Out of descriptors or memory: the peer stays in the backlog and the
     * socket stays readable, so pause accepting instead of spinning. */
    log_guest(&l->log, LOG_LEVEL_WARNING, "%s: accept: %s; pausing accepts for 100 ms",
              l->path, strerror(EVUTIL_SOCKET_ERROR()));
    evconnlistener_disable(evl);
    evtimer_add(l->ev_resume, &pause);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    union {
        char buf[4096];
        struct inotify_event align;
    } events;
    ssize_t n = read(fd, events.buf, sizeof(events.buf));
    bool check = n < 0;

    for (ssize_t off = 0; off < n;) {
        const struct inotify_event *ev = (const void *)(events.buf + off);

        if (ev->mask & IN_Q_OVERFLOW) {
            /* Events were lost, maybe the one about our name. */
            log_debug("%s: inotify queue overflowed; checking the socket path", l->dir_path);
            check = true;
        } else if (ev->mask & IN_IGNORED) {
            log_warn("%s: no longer watched (removed or unmounted); the socket path is "
                     "restored only at the next accept",
                     l->dir_path);
        } else if (ev->len > 0 && strcmp(ev->name, l->base_name) == 0) {
            check = true;
        }
        off += (ssize_t)(sizeof(*ev) + ev->len);
    }
    if (check) {
        listener_restore(l);
    }
}

int listener_start(struct listener *l, struct event_base *base, listener_peer_fn on_peer,
                   void *arg)
{
    char watched[64];

    l->on_peer = on_peer;
    l->peer_arg = arg;
    /* The directory we hold, whatever is at its path now. */
    snprintf(watched, sizeof(watched), "/proc/self/fd/%d", l->dir_fd);
    l->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (l->inotify_fd < 0 ||
        inotify_add_watch(l->inotify_fd, watched, IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0) {
        log_warn("inotify on %s: %m; the socket path is restored only at the next accept",
                 l->dir_path);
    } else {
        l->ev_inotify = event_new(base, l->inotify_fd, EV_READ | EV_PERSIST, on_inotify, l);
        event_add(l->ev_inotify, NULL);
    }
    l->evl = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, l->fd);
    if (l->evl == NULL) {
        log_error("cannot listen on %s", l->path);
        return -EIO;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    l->ev_resume = evtimer_new(base, on_accept_resume, l);
    l->fd = -1; /* owned by evl now */
    listener_restore(l);
    return 0;
}

int listener_set_owner(struct listener *l, uid_t uid, gid_t gid)
{
    struct stat st;

    if (l->external) {
        /* systemd's file (SocketUser=, SocketGroup=): only who is admitted. */
        l->uid = uid;
        l->gid = gid;
        return 0;
    }
    if (fstatat(l->private_fd, PRIVATE_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISSOCK(st.st_mode)) {
        log_error("cannot give %s to %u:%u: no socket in %s/%s", l->path, (unsigned)uid,
                  (unsigned)gid, l->dir_path, l->private_name);
        return -ENOENT;
    }
    if ((st.st_uid != uid || st.st_gid != gid) &&
        fchownat(l->private_fd, PRIVATE_SOCK, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        log_error("cannot give %s to %u:%u: %m", l->path, (unsigned)uid, (unsigned)gid);
        return -errno;
    }
    l->uid = uid;
    l->gid = gid;
    return 0;
}

const char *listener_path(const struct listener *l)
{
    return l->path;
}

/* Removes the socket files that are ours, each only if the name still
 * names what we made: a name QEMU's uid has reused is left alone. */
static void remove_files(struct listener *l)
{
    struct stat st;

    if (l->ino != 0 && fstatat(l->dir_fd, l->base_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == l->ino && S_ISSOCK(st.st_mode)) {
        unlinkat(l->dir_fd, l->base_name, 0);
    }
    if (l->private_fd < 0) {
        return;
    }
    if (l->ino != 0 && fstatat(l->private_fd, PRIVATE_SOCK, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == l->ino) {
        unlinkat(l->private_fd, PRIVATE_SOCK, 0);
    }
    if (l->own_dir && fstatat(l->dir_fd, l->private_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_dev == l->private_dev && st.st_ino == l->private_ino) {
        unlinkat(l->dir_fd, l->private_name, AT_REMOVEDIR);
    }
}

void listener_free(struct listener *l)
{
    if (l == NULL) {
        return;
    }
    if (l->evl != NULL) {
        evconnlistener_free(l->evl);
    }
    if (l->ev_resume != NULL) {
        event_free(l->ev_resume);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    if (l->ev_inotify != NULL) {
        event_free(l->ev_inotify);
    }
    if (l->inotify_fd >= 0) {
        close(l->inotify_fd);
    }
    if (l->dir_fd >= 0) {
        remove_files(l);
        close(l->dir_fd);
    }
    if (l->private_fd >= 0) {
        close(l->private_fd);
    }
    g_free(l->path);
    g_free(l->dir_path);
    g_free(l->base_name);
    g_free(l->private_name);
    g_free(l);
}
