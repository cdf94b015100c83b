/* report.h - the bodies of the control socket's read-only commands: text
 * for people, JSON for programs, and the Prometheus text exposition format
 * (version 0.0.4) for scrapers.  Reads stats.h, service.h and tally.h;
 * writes nothing but the string it is given. */
#ifndef VP_REPORT_H
#define VP_REPORT_H

#include <glib.h>
#include <stdbool.h>

struct report_process {
    const char *mode;         /* "config FILE", "socket", "fd" */
    const char *control_path; /* the control socket */
};

void report_status(GString *out, bool json, const struct report_process *p);
void report_connections(GString *out, bool json);
void report_stats(GString *out, bool json);
void report_metrics(GString *out, bool json);

/* The VM name QEMU was started with (-name NAME or -name guest=NAME,...),
 * read from /proc/PID/cmdline; NULL if there is none.  g_free it. */
char *report_vm_name(pid_t pid);

#endif
