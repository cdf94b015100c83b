/* attacks.h - what a hostile guest does to the shared daemon (issue 8).
 *
 * One family per finding; each is something a guest can do through QEMU's
 * proxy protocol alone (or, for the lease, with the fd the protocol gave it).
 * Shared by the isolation tests, which assert on the victims, and by
 * noisy-bench, which only measures them.  Nothing here calls g_test_*:
 * failures come back as -errno / PC_ERR_* with a message in `err`.
 *
 * Every wait is bounded; every *_stop/free closes what its start opened.
 */
#ifndef VP_ATTACKS_H
#define VP_ATTACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iso.h"
#include "pclient.h"

#define ATK_ERRLEN 256

/* What a long-running attacker did. */
typedef struct atk_counts {
    uint64_t sent, answered, failed; /* failed: wrong/missing replies, refused connects */
} atk_counts;

/* ---- 1. lanes: identities ---------------------------------------------------- */

/* `conns` threads, each on its own connection to sock, doing T_MKDIR (then
 * T_REMOVE as root) under dir_wire ("//race") as random uid:gid in
 * [id_lo, id_hi], as fast as replies come.  A connection is replaced every
 * 200 identities (the daemon may bound identities per connection).  The
 * directory must exist and be writable by everyone. */
typedef struct atk_churn atk_churn;
atk_churn *atk_lane_churn_start(const char *sock, const char *dir_wire, int conns,
                                uint32_t id_lo, uint32_t id_hi);
void atk_lane_churn_stop(atk_churn *a, atk_counts *out);

/* T_MKDIR dir_wire/idN as n distinct identities first_id+i : first_id+i, in
 * turn, on one connection.  Returns how many were answered 0; stops at the
 * first reply missing after timeout_ms.  *max_us: slowest reply. */
int atk_identities(const char *sock, const char *dir_wire, int n, uint32_t first_id,
                   int timeout_ms, int64_t *max_us, char *err);

/* ---- 2. lease -------------------------------------------------------------- */

enum atk_lease_kind { ATK_LEASE_TRUNCATE, ATK_LEASE_OPEN_WRITE };

/* As uid 65534: T_CREATE dir_wire/NAME (O_RDONLY, so that a read lease is
 * allowed on the fd it returns), fill it on the host, take F_SETLEASE
 * F_RDLCK on that fd, then send T_TRUNCATE (to 10 bytes) or T_OPEN O_WRONLY
 * of the same path without waiting: the daemon must break the lease, which
 * sleeps up to /proc/sys/fs/lease-break-time.  dir_host is the host path of
 * dir_wire (world-writable).  SIGIO is ignored from here on. */
typedef struct atk_lease atk_lease;
int atk_lease_start(const char *sock, const char *dir_host, const char *dir_wire,
                    const char *name, enum atk_lease_kind kind, atk_lease **out, char *err);
/* Drops the lease (F_UNLCK): the blocked request may finish now. */
int atk_lease_release(atk_lease *a);
/* Receives the attacker's reply (bounded) and checks it: truncate answered
 * 0 and the file is 10 bytes; open answered an fd of that file, O_WRONLY. */
int atk_lease_finish(atk_lease *a, int timeout_ms, char *err);
void atk_lease_free(atk_lease *a);
/* /proc/sys/fs/lease-break-time: read (-errno) and write (0 or -errno). */
int atk_lease_break_time_get(void);
int atk_lease_break_time_set(int seconds);

/* ---- 3. unread descriptors --------------------------------------------------- */

/* `conns` connections each send n_each T_OPEN O_RDONLY of file_wire and read
 * nothing.  Sending is bounded by timeout_ms (a daemon that stops reading
 * leaves the rest in the socket buffers, which hold far more than this). */
typedef struct atk_unread atk_unread;
int atk_unread_start(const char *sock, const char *file_wire, int conns, int n_each,
                     int timeout_ms, atk_unread **out, char *err);
/* Reads every reply of every connection, in order, within timeout_ms: each
 * must be an fd of the file (dev, ino).  Returns how many were correct. */
int atk_unread_drain(atk_unread *a, dev_t dev, ino_t ino, int timeout_ms, char *err);
void atk_unread_free(atk_unread *a);

/* ---- 4. connection floods ---------------------------------------------------- */

/* Opens n connections to sock and probes each with one T_LSTAT "/": served
 * (answered) or refused (closed by the daemon, or connect failed).  Served
 * connections stay open until atk_flood_free.  Bounded by timeout_ms. */
typedef struct atk_flood atk_flood;
atk_flood *atk_flood_start(const char *sock, int n, int timeout_ms);
int atk_flood_served(const atk_flood *f);
int atk_flood_refused(const atk_flood *f);
void atk_flood_free(atk_flood *f);

/* The same from a child process running as uid:gid (no supplementary
 * groups): returns its pid (held connections stay open until
 * atk_flood_as_stop) and the counts it reported, or -errno. */
pid_t atk_flood_as_start(const char *sock, uid_t uid, gid_t gid, int n, int timeout_ms,
                         int *served, int *refused);
void atk_flood_as_stop(pid_t child);

/* ---- 5. peers that never read ------------------------------------------------ */

/* `conns` connections each write T_LSTAT frames of path_wire until the
 * socket is full (at most max_bytes each) and never read a reply. */
typedef struct atk_noread atk_noread;
atk_noread *atk_noread_start(const char *sock, const char *path_wire, int conns,
                             size_t max_bytes, int timeout_ms);
int atk_noread_conns(const atk_noread *a);
uint64_t atk_noread_bytes(const atk_noread *a); /* frames written in all */
/* Without reading anything: how many connections the daemon has closed,
 * once all are or timeout_ms has passed. */
int atk_noread_wait_closed(atk_noread *a, int timeout_ms);
void atk_noread_free(atk_noread *a);

/* ---- 6. pipelining as fast as possible --------------------------------------- */

/* `conns` connections, each with a writer thread sending whole 128 KiB
 * buffers of T_LSTAT frames of path_wire and a reader thread parsing the
 * replies (each must be a 116-byte stat), so that output never blocks. */
typedef struct atk_pipe atk_pipe;
atk_pipe *atk_pipe_start(const char *sock, const char *path_wire, int conns);
/* Replies the daemon has written to the attackers so far: those parsed by
 * the readers plus those still waiting in the sockets (SIOCINQ), so that a
 * reader running late does not change the count.  Readers take at most 16
 * replies per recv, which bounds the error of a snapshot to 16 per
 * connection. */
unsigned long atk_pipe_delivered(atk_pipe *a);
/* Stops sending and reading; the connections stay open (a victim may still
 * call atk_pipe_delivered) until atk_pipe_free. */
void atk_pipe_stop(atk_pipe *a, atk_counts *out);
void atk_pipe_free(atk_pipe *a);

/* ---- 7. a hung filesystem ---------------------------------------------------- */

/* Mounts hangfs (tests/isolation/hangfs.c) at mnt and waits until it
 * serves (bounded); registers it with the watchdog. */
int atk_hangfs_mount(const char *hangfs_bin, const char *mnt, pid_t *pid, char *err);
/* Lets every blocked and future "hang*" operation finish. */
int atk_hangfs_release(pid_t pid);
/* Releases, stops hangfs, makes sure mnt is no longer a mount. */
int atk_hangfs_unmount(const char *mnt, pid_t pid, char *err);
/* Is path a mount point (a different device than its parent)? */
bool atk_is_mount(const char *path);

/* One connection that sends T_LSTAT path_wire and does not wait. */
typedef struct atk_stuck atk_stuck;
int atk_stuck_start(const char *sock, const char *path_wire, atk_stuck **out, char *err);
/* Its reply (bounded): 0 with the stat decoded, or an error. */
int atk_stuck_finish(atk_stuck *a, int timeout_ms, uint32_t *mode, uint64_t *size, char *err);
void atk_stuck_free(atk_stuck *a);

/* ---- 8. garbage ---------------------------------------------------------------- */

/* Two connections: one sends random bytes under an unknown request type,
 * one announces a frame of 1 MiB.  0 when the daemon closed both within
 * timeout_ms, PC_ERR_TIMEOUT otherwise. */
int atk_garbage(const char *sock, int timeout_ms, char *err);

/* ---- 9. log flood ------------------------------------------------------------ */

/* n T_MKNOD of character devices (refused without --allow-devices) as 0:0,
 * pipelined in batches of 256 on c, names prefix_wire-N.  Returns how many
 * were answered EPERM, or a PC_ERR_*. */
int atk_mknod_flood(pc_conn *c, const char *prefix_wire, int n, int timeout_ms, char *err);
/* One T_MKNOD of a character device named path_wire (any bytes but NUL). */
int atk_mknod_one(pc_conn *c, const char *path_wire, int timeout_ms);

#endif
