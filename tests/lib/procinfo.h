/*
 * procinfo — what a test can read about a process from /proc: its open
 * descriptors, threads and resident memory.  Shared by the stress,
 * isolation and benchmark code; no GLib, like the rest of tests/lib.
 */
#ifndef PROCINFO_H
#define PROCINFO_H

#include <stdint.h>
#include <sys/types.h>

int64_t proc_now_ms(void);                 /* CLOCK_MONOTONIC */
int proc_count_fds(pid_t pid);             /* -1 if the process is gone */
long proc_rss_kb(pid_t pid);               /* VmRSS, -1 if unknown */
int proc_count_threads(pid_t pid);         /* Threads, -1 if unknown */
/* Polls until pid holds at most want descriptors or timeout_ms passed;
 * returns the last count. */
int proc_wait_fds(pid_t pid, int want, int timeout_ms);

#endif
