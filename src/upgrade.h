/* upgrade.h - live upgrade: a new process takes over every socket.
 *
 * On SIGUSR2 the running daemon stops accepting, lets every connection
 * finish the request it is in, then starts the (possibly replaced) program
 * again with --takeover FD.  FD holds what the new process needs: the
 * listening sockets, and each connection with the input already received
 * from it.  Once the new process says it is serving, the old one exits;
 * if it does not (it failed to start, or timed out), the old one kills it
 * and goes on serving as if nothing happened.  QEMU sees no error either
 * way: a connection only changes hands between two requests.
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
 * whether this process must now exit, new_pid who serves instead. */
void upgrade_start(void (*settled)(bool handed_over, pid_t new_pid));
bool upgrade_in_progress(void);

/* New process.  Reads the state the old process left on fd.  Returns 0, or
 * -errno with a message logged (the old process then carries on). */
int upgrade_takeover_load(int fd);
/* Offers the listening sockets to service_prepare. */
void upgrade_takeover_offer_sockets(void);
/* Hands every connection to the workers; single_ex is -f's export. */
int upgrade_takeover_adopt(struct export *single_ex);
/* Tells the old process to exit: this one is serving now. */
void upgrade_takeover_ready(void);

#endif
