/* procinfo.c - see procinfo.h. */
#include "procinfo.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t proc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int proc_count_fds(pid_t pid)
{
    char path[64];
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    if (dir == NULL) {
        return -1;
    }
    for (struct dirent *de; (de = readdir(dir)) != NULL;) {
        n += de->d_name[0] != '.';
    }
    closedir(dir);
    return n;
}

/* The number after "Field:" in /proc/PID/status, or -1. */
static long status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0) {
            v = strtol(line + flen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

long proc_rss_kb(pid_t pid)
{
    return status_field(pid, "VmRSS:");
}

int proc_count_threads(pid_t pid)
{
    return (int)status_field(pid, "Threads:");
}

int proc_wait_fds(pid_t pid, int want, int timeout_ms)
{
    int n;

    for (int64_t end = proc_now_ms() + timeout_ms;; usleep(10000)) {
        n = proc_count_fds(pid);
        if (n <= want || proc_now_ms() >= end) {
            return n;
        }
    }
}
