/* sdactivate.c - systemd socket activation (see sdactivate.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sdactivate.h"

#define SD_LISTEN_FDS_START 3
#define SD_MAX_FDS 4096

struct passed {
    int fd; /* -1 once taken */
    char *name;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
};

static struct passed *passed;
static size_t npassed;
static int *fd_list;

char *sdactivate_names(void)
{
    GString *s = g_string_new(NULL);

    for (size_t i = 0; i < npassed; i++) {
        g_string_append_printf(s, "%s%s", i > 0 ? ":" : "", passed[i].name);
    }
    return g_string_free(s, FALSE);
}

static int parse_count(const char *text, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(text, &end, 10);
    return text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 && *out <= max ? 0
                                                                                           : -1;
}

/* Whether fd is a listening Unix stream socket; its bound path into out. */
static bool listening_unix_stream(int fd, char *out, size_t cap)
{
    int type = 0, domain = 0, listening = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_un sun;
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
        (len = sizeof(domain), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0 ||
        domain != AF_UNIX ||
        (len = sizeof(listening), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) <
            0 ||
        !listening) {
        return false;
    }
    memset(&sun, 0, sizeof(sun));
    len = sizeof(sun);
    if (getsockname(fd, (struct sockaddr *)&sun, &len) < 0) {
        return false;
    }
    /* An abstract or unnamed socket has no path; shown as such. */
    snprintf(out, cap, "%.*s", (int)sizeof(sun.sun_path),
             sun.sun_path[0] != '\0' ? sun.sun_path : "(no path)");
    return true;
}

int sdactivate_collect(void)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    const char *names_s = getenv("LISTEN_FDNAMES");
    g_auto(GStrv) names = NULL;
    unsigned long pid, n;
    int ret = 0;

    if (pid_s == NULL || fds_s == NULL) {
        return 0;
    }
    if (parse_count(pid_s, (unsigned long)INT32_MAX, &pid) < 0 ||
        parse_count(fds_s, SD_MAX_FDS, &n) < 0) {
        log_error("socket activation: malformed LISTEN_PID=%s or LISTEN_FDS=%s", pid_s, fds_s);
        ret = -EINVAL;
        goto out;
    }
    if ((pid_t)pid != getpid()) {
        goto out; /* meant for another process (the one that started us) */
    }
    names = names_s != NULL ? g_strsplit(names_s, ":", -1) : g_new0(char *, 1);
    passed = g_new0(struct passed, n > 0 ? n : 1);
    fd_list = g_new0(int, n > 0 ? n : 1);
    for (unsigned long i = 0; i < n; i++) {
        struct passed *p = &passed[npassed];
        int fd = SD_LISTEN_FDS_START + (int)i;

        p->fd = fd;
        p->name = g_strdup(i < g_strv_length(names) ? names[i] : "");
        fd_list[npassed++] = fd;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!listening_unix_stream(fd, p->path, sizeof(p->path))) {
            log_error("socket activation: descriptor %d ('%s') is not a listening Unix stream "
                      "socket: give the export's .socket unit a ListenStream= with a path",
                      fd, p->name);
            ret = -EINVAL;
        }
    }
    if (ret == 0) {
        ret = (int)npassed;
        log_info("socket activation: systemd passed %lu sockets", n);
    }
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return ret;
}

size_t sdactivate_fds(const int **fds)
{
    *fds = fd_list;
    return npassed;
}

int sdactivate_take(const char *name, const char *want_path)
{
    for (size_t i = 0; i < npassed; i++) {
        struct passed *p = &passed[i];
        int fd = p->fd;

        if (fd < 0 || strcmp(p->name, name) != 0) {
            continue;
        }
        if (strcmp(p->path, want_path) != 0) {
            log_error("socket activation: systemd's socket '%s' is bound to %s, but [export %s] "
                      "has socket = %s: make FileDescriptorName= and ListenStream= of the "
                      ".socket unit agree with the configuration",
                      name, p->path, name, want_path);
            return -EINVAL;
        }
        p->fd = -1;
        return fd;
    }
    return -1;
}

/* The complaint about a socket systemd passed without an export's name. */
static bool unnamed(const struct passed *p)
{
    return p->name[0] == '\0' || strcmp(p->name, "unknown") == 0 ||
           g_str_has_suffix(p->name, ".socket");
}

int sdactivate_check_path(const char *name, const char *path)
{
    for (size_t i = 0; i < npassed; i++) {
        const struct passed *p = &passed[i];

        if (p->fd < 0 || strcmp(p->path, path) != 0) {
            continue;
        }
        if (unnamed(p)) {
            log_error("socket activation: systemd passed the socket %s without an export's name "
                      "(FileDescriptorName=%s): set FileDescriptorName=%s in its .socket unit",
                      path, p->name[0] != '\0' ? p->name : "(none)", name);
        } else {
            log_error("socket activation: systemd passed the socket %s named '%s', but it is "
                      "the socket of [export %s]: set FileDescriptorName=%s in its .socket "
                      "unit, or give the export another socket",
                      path, p->name, name, name);
        }
        return -EINVAL;
    }
    return 0;
}

int sdactivate_finish(const char *config)
{
    int ret = 0;

    for (size_t i = 0; i < npassed; i++) {
        struct passed *p = &passed[i];

        if (p->fd < 0) {
            continue;
        }
        if (unnamed(p)) {
            log_error("socket activation: systemd passed the socket %s without an export's "
                      "name (FileDescriptorName=%s): set FileDescriptorName= in its .socket "
                      "unit to the NAME of its [export NAME] in %s",
                      p->path, p->name[0] != '\0' ? p->name : "(none)",
                      config != NULL ? config : "the configuration");
        } else {
            log_error("socket activation: systemd passed the socket %s named '%s', but %s has "
                      "no [export %s]: add it, or remove the socket from the .socket units",
                      p->path, p->name, config != NULL ? config : "the configuration", p->name);
        }
        close(p->fd);
        p->fd = -1;
        ret = -EINVAL;
    }
    return ret;
}
