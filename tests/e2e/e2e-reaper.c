/*
 * e2e-reaper LOG COMMAND [ARG...]
 *
 * Runs COMMAND as the child of a child subreaper (PR_SET_CHILD_SUBREAPER):
 * a process that COMMAND starts and then leaves behind becomes this
 * program's child instead of init's, so its exit status is not lost. A live
 * upgrade is exactly that: the old daemon starts the new one and exits, and
 * a shell could never learn how the new one ends.
 *
 * Appends to LOG "start PID" for COMMAND, then one line per process reaped:
 * "exit PID STATUS" or "exit PID signal N". Exits 0 once no child is left
 * (127 if COMMAND cannot be started). LOG is not inherited by COMMAND.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int log_fd, status;
    pid_t pid;

    if (argc < 3) {
        fprintf(stderr, "usage: %s LOG COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    log_fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "e2e-reaper: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("e2e-reaper: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "e2e-reaper: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    dprintf(log_fd, "start %d\n", (int)pid);
    for (;;) {
        pid_t done = waitpid(-1, &status, 0);

        if (done < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; /* ECHILD: nobody left */
        }
        if (WIFSIGNALED(status)) {
            dprintf(log_fd, "exit %d signal %d\n", (int)done, WTERMSIG(status));
        } else {
            dprintf(log_fd, "exit %d %d\n", (int)done, WEXITSTATUS(status));
        }
    }
    return 0;
}
