/* upgrade.h - live upgrade: a new process takes over every socket.
 *
 * On SIGUSR2 the running daemon stops accepting, lets every connection
 * finish the request it is in (replies its peer has not read yet do not
 * hold it back), then starts the (possibly replaced) program again with
 * --takeover FD.  FD holds what the new process needs: the listening
 * sockets, and each connection with the input already received from it and
 * the output not yet written to it.
 *
 * Ownership changes hands at one point: the new process acknowledges before
 * it touches any descriptor it was given, and the old one touches none of
 * them after reading the acknowledgement; it exits.  If the new process
 * fails or dies before acknowledging (or does not within 15 s), the old one
 * makes sure it is dead and goes on serving as if nothing happened.  QEMU
 * sees no error either way: a connection only changes hands between two
 * requests.  (upgrade.c describes the exchange.)
 */
#ifndef VP_UPGRADE_H
#define VP_UPGRADE_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct export;

/* Old process.  Remembers how the program was started; call before any
 * chdir, while argv is intact. */
int upgrade_init(int argc, char **argv, struct event_base *base, struct export *single_ex);
/* SIGUSR2.  settled is called when the attempt is over: handed_over says
 * whether this process must now exit, new_pid who serves instead (0: the
 * new process took over and then died; nobody does). */
void upgrade_start(void (*settled)(bool handed_over, pid_t new_pid));
/* Under a supervisor: parks every connection as upgrade_start does, then
 * asks the supervisor for a fresh process (REG_RESTART), which recovers
 * every connection from its progress slot; settled(true, 0) then says this
 * process must exit.  Refused (settled(false, 0)) while a reply carrying a
 * descriptor is queued: its descriptor would be lost. */
void upgrade_start_fresh(void (*settled)(bool handed_over, pid_t new_pid));
bool upgrade_in_progress(void);

/* New process.  Reads the state the old process left on fd (and closes
 * it).  Returns 0, or -errno with a message logged (the old process then
 * carries on). */
int upgrade_takeover_load(int fd);
/* Every descriptor the state hands over, sorted: what start-up must keep of
 * what it inherited. */
size_t upgrade_takeover_fds(const int **fds);
/* Offers the listening sockets to service_prepare. */
void upgrade_takeover_offer_sockets(void);
/* The commit point: call once every fallible step of start-up is done and
 * before any handed-over descriptor is used (looking with fstat or
 * getsockopt is fine).  On failure (-errno) nothing is this process's:
 * exit without touching anything. */
int upgrade_takeover_commit(void);
/* Hands every connection to the workers; single_ex is -f's export. */
int upgrade_takeover_adopt(struct export *single_ex);
/* Tells the old process that this one serves (and told systemd). */
void upgrade_takeover_ready(void);

#endif
