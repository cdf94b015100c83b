/* progress.c - the progress table (see progress.h).
 *
 * Layout of the memfd: one page of header, then the slots' words (64 bytes
 * each), then each slot's input and out areas.  A connection of QEMU's
 * touches the first page of its input area only (each request starts at 0
 * again), and out areas only when a reply waits for its peer, so the file
 * stays sparse.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progress.h"

#define PROGRESS_MAGIC 0x76707067u /* "vppg" */
#define PAGE 4096u

struct progress_hdr {
    uint32_t magic;
    uint32_t nslots;
};

static struct {
    int fd;
    uint8_t *base;
    size_t size;
    unsigned int nslots;
    struct progress_slot *slots;
    uint8_t *areas;
    /* Serving process: which slots are in use. */
    pthread_mutex_t lock;
    uint8_t *used;
    unsigned int next;
} tbl = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

ssize_t progress_sendmsg(struct progress_slot *s, uint64_t w, int fd, const struct msghdr *msg,
                         int flags)
{
    long ret;

#if defined(__x86_64__)
    __asm__ volatile("movq %[v], (%[p])\n\t"
                     "syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_sendmsg), "D"((long)fd), "S"(msg), "d"((long)flags),
                       [p] "r"(&s->word), [v] "r"(w)
                     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_sendmsg;
    register long x0 __asm__("x0") = fd;
    register long x1 __asm__("x1") = (long)msg;
    register long x2 __asm__("x2") = flags;

    __asm__ volatile("str %[v], [%[p]]\n\t"
                     "svc #0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), [p] "r"(&s->word), [v] "r"(w)
                     : "memory");
    ret = x0;
#else
    /* Elsewhere the window between the store and the system call is the
     * libc wrapper's few instructions. */
    progress_store(s, w);
    ret = sendmsg(fd, msg, flags);
    if (ret < 0) {
        ret = -errno;
    }
#endif
    return ret;
}

static size_t table_size(unsigned int nslots)
{
    size_t words = ((size_t)nslots * sizeof(struct progress_slot) + PAGE - 1) / PAGE * PAGE;

    return PAGE + words + (size_t)nslots * (PROGRESS_IN_AREA + PROGRESS_OUT_SIZE);
}

static int map_table(int fd, unsigned int nslots)
{
    size_t size = table_size(nslots);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (p == MAP_FAILED) {
        return -errno;
    }
    tbl.base = p;
    tbl.size = size;
    tbl.nslots = nslots;
    tbl.slots = (struct progress_slot *)(tbl.base + PAGE);
    tbl.areas = tbl.base + size - (size_t)nslots * (PROGRESS_IN_AREA + PROGRESS_OUT_SIZE);
    return 0;
}

int progress_create(unsigned int nslots)
{
    int fd = memfd_create("virtfs-proxyd-progress", MFD_CLOEXEC);
    struct progress_hdr *h;
    int ret;

    if (fd < 0) {
        return -errno;
    }
    if (nslots == 0 || nslots > PROGRESS_MAX_SLOTS) {
        nslots = PROGRESS_MAX_SLOTS;
    }
    if (ftruncate(fd, (off_t)table_size(nslots)) < 0 || (ret = map_table(fd, nslots)) < 0) {
        ret = -errno;
        close(fd);
        return ret < 0 ? ret : -EIO;
    }
    h = (struct progress_hdr *)tbl.base;
    h->magic = PROGRESS_MAGIC;
    h->nslots = nslots;
    tbl.fd = fd;
    tbl.used = calloc(nslots, 1);
    if (tbl.used == NULL) {
        return -ENOMEM;
    }
    return fd;
}

int progress_attach(int fd)
{
    struct progress_hdr h;
    int ret;

    if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != PROGRESS_MAGIC ||
        h.nslots == 0 || h.nslots > PROGRESS_MAX_SLOTS) {
        return -EINVAL;
    }
    ret = map_table(fd, h.nslots);
    if (ret < 0) {
        return ret;
    }
    tbl.used = calloc(h.nslots, 1);
    tbl.fd = fd;
    return tbl.used != NULL ? 0 : -ENOMEM;
}

int progress_fd(void)
{
    return tbl.fd;
}

unsigned int progress_nslots(void)
{
    return tbl.nslots;
}

struct progress_slot *progress_slot_at(unsigned int idx)
{
    return &tbl.slots[idx];
}

uint8_t *progress_in_at(unsigned int idx)
{
    return tbl.areas + (size_t)idx * (PROGRESS_IN_AREA + PROGRESS_OUT_SIZE);
}

uint8_t *progress_out_at(unsigned int idx)
{
    return progress_in_at(idx) + PROGRESS_IN_AREA;
}

int progress_slot_alloc(void)
{
    int idx = -ENOSPC;

    if (tbl.used == NULL) {
        return -ENOSPC;
    }
    pthread_mutex_lock(&tbl.lock);
    for (unsigned int i = 0; i < tbl.nslots; i++) {
        unsigned int k = (tbl.next + i) % tbl.nslots;

        if (!tbl.used[k]) {
            tbl.used[k] = 1;
            tbl.next = k + 1;
            idx = (int)k;
            break;
        }
    }
    pthread_mutex_unlock(&tbl.lock);
    if (idx >= 0) {
        struct progress_slot *s = &tbl.slots[idx];

        atomic_store(&s->served, 0);
        progress_store_reply(s, 0, 0);
        progress_store(s, progress_pack(0, 0, PROGRESS_IDLE, 0, 0));
    }
    return idx;
}

void progress_slot_claim(unsigned int idx)
{
    if (tbl.used != NULL && idx < tbl.nslots) {
        pthread_mutex_lock(&tbl.lock);
        tbl.used[idx] = 1;
        pthread_mutex_unlock(&tbl.lock);
    }
}

void progress_slot_free(int idx)
{
    if (tbl.used != NULL && idx >= 0 && (unsigned int)idx < tbl.nslots) {
        /* Give the pages back: slots are taken in turn, and a daemon with
         * guests coming and going would otherwise keep a page of every
         * slot it ever used. */
        madvise(progress_in_at((unsigned int)idx), PROGRESS_IN_AREA + PROGRESS_OUT_SIZE,
                MADV_REMOVE);
        pthread_mutex_lock(&tbl.lock);
        tbl.used[idx] = 0;
        pthread_mutex_unlock(&tbl.lock);
    }
}
