/*
 * e2e-socketpair FD_A FD_B COMMAND [ARG...]
 *
 * Creates a connected AF_UNIX stream socket pair, puts its two ends on file
 * descriptors FD_A and FD_B (inheritable), and executes COMMAND. The shell
 * cannot make a socketpair itself; with this, a script can hand one end to
 * the server (-f FD_A) and the other to QEMU (sock_fd=FD_B).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse_fd(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    return (*s == '\0' || *end != '\0' || v < 3 || v > 255) ? -1 : (int)v;
}

/* Moves `fd` to `target`, leaving it without FD_CLOEXEC; 0 or -errno. */
static int place_fd(int fd, int target)
{
    if (fd == target) {
        return 0;
    }
    if (dup2(fd, target) < 0) {
        return -errno;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int sv[2], a, b, err;

    if (argc < 4 || (a = parse_fd(argv[1])) < 0 || (b = parse_fd(argv[2])) < 0 || a == b) {
        fprintf(stderr, "usage: %s FD_A FD_B COMMAND [ARG...]  (fds 3..255)\n", argv[0]);
        return 2;
    }
    /* Occupy both targets first so socketpair() cannot return one of them
     * for the wrong end. */
    if (dup2(STDERR_FILENO, a) < 0 || dup2(STDERR_FILENO, b) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("e2e-socketpair: socketpair");
        return 1;
    }
    err = place_fd(sv[0], a);
    if (err == 0) {
        err = place_fd(sv[1], b);
    }
    if (err < 0) {
        fprintf(stderr, "e2e-socketpair: dup2: %s\n", strerror(-err));
        return 1;
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "e2e-socketpair: %s: %s\n", argv[3], strerror(errno));
    return 127;
}
