/* vp-probe - a small real client for the shell-driven system tests.
 *
 *   vp-probe lstat SOCKET [PATH]   connect (retrying up to 5 s), lstat PATH
 *                                  (default "/"), print "ok MODE", exit 0
 *   vp-probe ready NOTIFY_SOCKET SECONDS
 *                                  bind a datagram socket there, wait for a
 *                                  message holding READY=1 (Type=notify),
 *                                  print it, exit 0 (1 on timeout)
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pclient.h"

static int probe_lstat(const char *sock, const char *path)
{
    pc_proxy_stat st;
    pc_conn *c = NULL;
    int rc = pc_connect(sock, 5000, &c);

    if (rc < 0) {
        fprintf(stderr, "vp-probe: connect %s: %s\n", sock, pc_strerror(rc));
        return 1;
    }
    rc = pc_lstat(c, path, &st);
    pc_free(c);
    if (rc != 0) {
        fprintf(stderr, "vp-probe: lstat %s on %s: %s\n", path, sock, pc_strerror(rc));
        return 1;
    }
    printf("ok %o\n", st.mode);
    return 0;
}

static int wait_ready(const char *path, int seconds)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char buf[4096];

    if (strlen(path) >= sizeof(sun.sun_path)) {
        return 2;
    }
    strcpy(sun.sun_path, path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        perror("vp-probe: bind");
        return 2;
    }
    /* Bound: tell whoever waits for it. */
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, seconds * 1000) <= 0) {
            fprintf(stderr, "vp-probe: no READY=1 within %d s\n", seconds);
            return 1;
        }
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0) {
            continue;
        }
        buf[n] = '\0';
        if (strstr(buf, "READY=1") != NULL) {
            for (char *q = buf; *q != '\0'; q++) {
                *q = *q == '\n' ? ' ' : *q;
            }
            printf("%s\n", buf);
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "lstat") == 0) {
        return probe_lstat(argv[2], argc > 3 ? argv[3] : "/");
    }
    if (argc == 4 && strcmp(argv[1], "ready") == 0) {
        return wait_ready(argv[2], atoi(argv[3]));
    }
    fprintf(stderr, "usage: vp-probe lstat SOCKET [PATH] | ready NOTIFY_SOCKET SECONDS\n");
    return 2;
}
