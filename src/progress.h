/* progress.h - what the serving process has done with each connection,
 * recorded where a crash cannot take it: a memfd the supervisor keeps.
 *
 * Each connection has a slot.  Its receive buffer is the slot's input area:
 * the bytes of every request not yet answered are in shared memory as soon
 * as recv() has put them there.  What the area holds, and what was done with
 * it, is one 64-bit word that the serving process alone writes:
 *
 *   head      where the oldest request not yet answered starts;
 *   in_len    where the bytes received end;
 *   phase     IDLE      no request in flight;
 *             BUSY      the request at head runs (type: its type);
 *             SENDING   its reply (the reply word: len bytes) is being
 *                       written: the chunk at off (PROGRESS_CHUNK bytes at
 *                       most, which the kernel writes whole or not at all) is
 *                       in a sendmsg that the store of this word immediately
 *                       precedes (progress_sendmsg);
 *             QUEUED    off bytes of its reply are written, the rest waits
 *                       for the peer to read (the reply is in the slot's out
 *                       area, unless it carries a descriptor);
 *   cnt       the socket's byte counter when in_len was stored, modulo 2^20.
 *
 * The counter is the socket's SO_PEEK_OFF, set high when the connection
 * starts and never used to peek: the kernel lowers it by every byte a recv()
 * takes, in the same system call.  A process killed between its recv() and
 * the store of in_len leaves the bytes in the input area and the counter
 * lower than cnt: the difference says how many.
 *
 * Per request, besides the recv's store: BUSY, the reply word and SENDING,
 * then IDLE with head past the request: plain stores, no system call.
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
/* The input area: a partial frame and a whole one always fit after the
 * requests answered, so that moving the rest down never overwrites what the
 * word still points at (conn.c, conn_make_room). */
#define PROGRESS_IN_SIZE (2u * PROTO_MAX_FRAME)
#define PROGRESS_IN_AREA 135168u /* PROGRESS_IN_SIZE, whole pages */
#define PROGRESS_OUT_SIZE 69632u /* PROTO_MAX_FRAME, whole pages */
#define PROGRESS_MAX_SLOTS 65536u
/* The socket's byte counter starts here, and goes back up by a multiple of
 * 2^20 (cnt is unchanged) before it can reach 0. */
#define PROGRESS_COUNTER_START (1u << 30)
#define PROGRESS_COUNTER_LOW (1u << 24)
#define PROGRESS_CNT_MASK 0xfffffu

enum progress_phase {
    PROGRESS_IDLE,
    PROGRESS_BUSY,
    PROGRESS_SENDING,
    PROGRESS_QUEUED,
};

struct progress_slot {
    _Atomic uint64_t word;   /* see above */
    _Atomic uint64_t reply;  /* off:17, len:17 of the reply in flight */
    _Atomic uint64_t served; /* requests answered over the connection's life */
    uint64_t spare[5];
};

struct progress_word {
    uint32_t head, in_len;
    enum progress_phase phase;
    uint32_t type;
    uint32_t cnt;
};

static inline uint64_t progress_pack(uint32_t head, uint32_t in_len, enum progress_phase phase,
                                     uint32_t type, uint32_t counter)
{
    return (uint64_t)(head & 0x3ffffu) | (uint64_t)(in_len & 0x3ffffu) << 18 |
           (uint64_t)(phase & 7u) << 36 | (uint64_t)(type & 31u) << 39 |
           (uint64_t)(counter & PROGRESS_CNT_MASK) << 44;
}

static inline struct progress_word progress_unpack(uint64_t w)
{
    return (struct progress_word){
        .head = (uint32_t)(w & 0x3ffffu),
        .in_len = (uint32_t)((w >> 18) & 0x3ffffu),
        .phase = (enum progress_phase)((w >> 36) & 7u),
        .type = (uint32_t)((w >> 39) & 31u),
        .cnt = (uint32_t)((w >> 44) & PROGRESS_CNT_MASK),
    };
}

static inline void progress_store(struct progress_slot *s, uint64_t w)
{
    atomic_store_explicit(&s->word, w, memory_order_release);
}

static inline void progress_store_reply(struct progress_slot *s, uint32_t off, uint32_t len)
{
    atomic_store_explicit(&s->reply, (uint64_t)off | (uint64_t)len << 32, memory_order_release);
}

static inline void progress_load_reply(struct progress_slot *s, uint32_t *off, uint32_t *len)
{
    uint64_t r = atomic_load_explicit(&s->reply, memory_order_acquire);

    *off = (uint32_t)r;
    *len = (uint32_t)(r >> 32);
}

/* Stores w in s->word and, with nothing in between that a signal could
 * stop (one instruction on x86-64 and arm64), enters sendmsg.  Returns
 * bytes written or -errno. */
ssize_t progress_sendmsg(struct progress_slot *s, uint64_t w, int fd, const struct msghdr *msg,
                         int flags);

/* ---- the table ------------------------------------------------------------ */

/* A new table of nslots slots in a memfd; returns the fd or -errno.  The
 * supervisor makes it and shares it; a daemon without one (--no-supervisor)
 * makes its own. */
int progress_create(unsigned int nslots);
/* Serving process: maps the supervisor's table. */
int progress_attach(int fd);
int progress_fd(void);
unsigned int progress_nslots(void);
struct progress_slot *progress_slot_at(unsigned int idx);
/* The slot's input area (PROGRESS_IN_SIZE bytes) and out area
 * (PROGRESS_OUT_SIZE bytes). */
uint8_t *progress_in_at(unsigned int idx);
uint8_t *progress_out_at(unsigned int idx);

/* Serving process: a free slot (reset to IDLE), or -ENOSPC; a slot taken
 * over from a previous process is claimed by number. */
int progress_slot_alloc(void);
void progress_slot_claim(unsigned int idx);
void progress_slot_free(int idx);

#endif
