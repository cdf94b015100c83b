/* e2e-probe PATH: exits 0 if a Unix stream socket at PATH accepts a
 * connection (something listens there), 1 otherwise.  The daemon binds its
 * sockets through /proc/self/fd/N/..., so `ss` cannot tell which is which. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd, ok;

    if (argc != 2 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "usage: e2e-probe PATH (shorter than %zu bytes)\n", sizeof(sun.sun_path));
        return 2;
    }
    strcpy(sun.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok ? 0 : 1;
}
