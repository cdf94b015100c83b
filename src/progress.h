/* progress.h - what the serving process has done with each connection,
 * recorded where a crash cannot take it: a memfd the supervisor keeps.
 *
 * Unanswered input never needs copying: a connection only peeks at its
 * socket (SO_PEEK_OFF) and drops bytes from it once their request is
 * answered, so whatever a dead process read but did not answer is still in
 * the socket, which the supervisor holds a duplicate of.  What the socket
 * cannot tell is recorded here, one slot per connection, in one 64-bit word
 * the serving process alone writes:
 *
 *   answered  bytes at the head of the socket whose requests are answered,
 *             not yet dropped;
 *   phase     IDLE      no request in flight;
 *             BUSY      the request after `answered` runs (type: its type);
 *             SENDING   its reply (len bytes) is being written: the chunk at
 *                       off (PROGRESS_CHUNK bytes at most, which the kernel
 *                       writes whole or not at all) is in a sendmsg that the
 *                       store of this word immediately precedes;
 *             QUEUED    off bytes of its reply are written, the rest waits
 *                       for the peer to read (the reply is in the slot's
 *                       out area, unless it carries a descriptor);
 *             DROPPING  `answered` bytes are being dropped; drop_peek is the
 *                       socket's peek offset before (after: drop_peek -
 *                       answered), so the socket tells whether it happened.
 *
 * Per request: BUSY, SENDING, then IDLE with `answered` grown: three plain
 * stores.  Every 16 requests (or 16 KiB) the answered bytes are dropped.
 */
#ifndef VP_PROGRESS_H
#define VP_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "proto.h"

/* Largest piece of a reply given to one sendmsg: AF_UNIX stream sockets
 * queue up to 36 KiB as one buffer, written whole or not at all. */
#define PROGRESS_CHUNK (32u * 1024u)
/* Answered bytes are dropped from the socket once this many requests or
 * bytes have piled up (they hold the peer's send buffer). */
#define PROGRESS_DROP_FRAMES 16u
#define PROGRESS_DROP_BYTES (16u * 1024u)
#define PROGRESS_OUT_SIZE 69632u /* PROTO_MAX_FRAME, whole pages */
#define PROGRESS_MAX_SLOTS 65536u

enum progress_phase {
    PROGRESS_IDLE,
    PROGRESS_BUSY,
    PROGRESS_SENDING,
    PROGRESS_QUEUED,
    PROGRESS_DROPPING,
};

struct progress_slot {
    _Atomic uint64_t word;      /* see above */
    _Atomic uint64_t served;    /* requests answered over the connection's life */
    _Atomic uint64_t drop_peek; /* DROPPING: the peek offset before */
    uint64_t spare[5];
};

struct progress_word {
    uint32_t answered;
    enum progress_phase phase;
    uint32_t type;
    uint32_t off, len;
};

static inline uint64_t progress_pack(uint32_t answered, enum progress_phase phase, uint32_t type,
                                     uint32_t off, uint32_t len)
{
    return (uint64_t)(answered & 0xfffffu) | (uint64_t)(phase & 7u) << 20 |
           (uint64_t)(type & 31u) << 23 | (uint64_t)(off & 0x1ffffu) << 28 |
           (uint64_t)(len & 0x1ffffu) << 45;
}

static inline struct progress_word progress_unpack(uint64_t w)
{
    return (struct progress_word){
        .answered = (uint32_t)(w & 0xfffffu),
        .phase = (enum progress_phase)((w >> 20) & 7u),
        .type = (uint32_t)((w >> 23) & 31u),
        .off = (uint32_t)((w >> 28) & 0x1ffffu),
        .len = (uint32_t)((w >> 45) & 0x1ffffu),
    };
}

static inline void progress_store(struct progress_slot *s, uint64_t w)
{
    atomic_store_explicit(&s->word, w, memory_order_release);
}

/* Stores w in s->word and, with nothing in between that a signal could
 * stop (one instruction on x86-64 and arm64), enters sendmsg.  Returns
 * bytes written or -errno. */
ssize_t progress_sendmsg(struct progress_slot *s, uint64_t w, int fd, const struct msghdr *msg,
                         int flags);

/* ---- the table ------------------------------------------------------------ */

/* Supervisor: a new table of nslots slots in a memfd; returns the fd or
 * -errno.  The mapping stays this process's (progress_slot_at). */
int progress_create(unsigned int nslots);
/* Serving process: maps the supervisor's table. */
int progress_attach(int fd);
bool progress_shared(void);
int progress_fd(void);
unsigned int progress_nslots(void);
struct progress_slot *progress_slot_at(unsigned int idx);
/* The slot's out area: PROGRESS_OUT_SIZE bytes. */
uint8_t *progress_out_at(unsigned int idx);

/* Serving process: a free slot (reset to IDLE), or -ENOSPC; a slot taken
 * over from a previous process is claimed by number. */
int progress_slot_alloc(void);
void progress_slot_claim(unsigned int idx);
void progress_slot_free(int idx);

#endif
