/*
 * pclient — a small client for QEMU's 9p "proxy" protocol (PROTOCOL.md).
 *
 * Written independently of the daemon's own encoder so that the tests
 * cross-check it.  Shared by the integration, stress and benchmark code.
 *
 * Conventions
 *   - Every function returns 0 (or a non-negative value where documented)
 *     on success and a negative number on failure.
 *   - Results that came *from the wire* are plain negative errno values
 *     (-ENOENT, -EINVAL, ...), exactly as the server sent them.
 *   - Failures of the transport or of the reply framing are reported with
 *     the PC_ERR_* codes below.  They lie far outside the errno range, so a
 *     test can never mistake "the server answered ENOENT" for "the server
 *     sent garbage" or "the server never answered".  pc_strerror() names
 *     both kinds; pc_conn_error() gives the details of the last PC_ERR_*.
 *   - Every receive is bounded by the connection's timeout (poll), so a
 *     missing reply is an error within a bounded time, never a hang.
 *   - Integers are encoded in host byte order, packed (PROTOCOL.md §2.1).
 */
#ifndef PCLIENT_H
#define PCLIENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Wire constants (PROTOCOL.md §3.1). */
#define PC_HDR_SIZE      8
#define PC_MAX_IO        65536
#define PC_MAX_FRAME     (PC_MAX_IO + PC_HDR_SIZE)
#define PC_FD_VALID      0x7fffffff
#define PC_STAT_SIZE     116
#define PC_STATFS_SIZE   88
#define PC_VERSION_SIZE  8

/* Request and reply types (PROTOCOL.md §4.0). */
enum pc_type {
    PC_T_SUCCESS = 0,
    PC_T_ERROR = 1,
    PC_T_OPEN = 2,
    PC_T_CREATE = 3,
    PC_T_MKNOD = 4,
    PC_T_MKDIR = 5,
    PC_T_SYMLINK = 6,
    PC_T_LINK = 7,
    PC_T_LSTAT = 8,
    PC_T_READLINK = 9,
    PC_T_STATFS = 10,
    PC_T_CHMOD = 11,
    PC_T_CHOWN = 12,
    PC_T_TRUNCATE = 13,
    PC_T_UTIME = 14,
    PC_T_RENAME = 15,
    PC_T_REMOVE = 16,
    PC_T_LGETXATTR = 17,
    PC_T_LLISTXATTR = 18,
    PC_T_LSETXATTR = 19,
    PC_T_LREMOVEXATTR = 20,
    PC_T_GETVERSION = 21,
};

/* The three reply shapes (PROTOCOL.md §3.3-3.6). */
typedef enum pc_kind {
    PC_KIND_FD,      /* 4 bytes, no header, + SCM_RIGHTS on success */
    PC_KIND_STATUS,  /* header {0|1, 4} + d status (also the xattr probe) */
    PC_KIND_DATA,    /* header {0, N} + payload, or {1, 4} + d -errno */
} pc_kind;

/* Transport / framing failures; never confused with a wire errno. */
#define PC_ERR_TIMEOUT  (-10001)  /* no (complete) reply within the timeout */
#define PC_ERR_EOF      (-10002)  /* peer closed the connection */
#define PC_ERR_PROTO    (-10003)  /* reply violates the framing rules */
#define PC_ERR_IO       (-10004)  /* socket error (details in pc_conn_error) */
#define PC_ERR_USAGE    (-10005)  /* bad arguments to a pclient function */

/* How [NUL] path fields (PROTOCOL.md §4.0) are sent by the typed helpers. */
typedef enum pc_nul_mode {
    PC_NUL_QEMU,    /* exactly like QEMU 7.2: [NUL] fields carry one NUL */
    PC_NUL_NEVER,   /* no string ever carries a trailing NUL */
    PC_NUL_ALWAYS,  /* every string carries a trailing NUL */
} pc_nul_mode;

typedef struct pc_conn pc_conn;

/* Decoded ProxyStat (PROTOCOL.md §4.1, 116 bytes on the wire). */
typedef struct pc_proxy_stat {
    uint64_t dev, ino, nlink;
    uint32_t mode, uid, gid;
    uint64_t rdev, size, blksize, blocks;
    int64_t atime_sec, atime_nsec;
    int64_t mtime_sec, mtime_nsec;
    int64_t ctime_sec, ctime_nsec;
} pc_proxy_stat;

/* Decoded ProxyStatFS (PROTOCOL.md §4.1, 88 bytes on the wire). */
typedef struct pc_proxy_statfs {
    uint64_t type, bsize, blocks, bfree, bavail, files, ffree;
    uint64_t fsid[2];
    uint64_t namelen, frsize;
} pc_proxy_statfs;

/*
 * One received reply.  `result` is what the server meant: for PC_KIND_FD
 * 0 (and `fd` >= 0) or -errno; for PC_KIND_STATUS the status (>= 0, e.g.
 * an xattr probe length) or -errno; for PC_KIND_DATA 0 with `payload`/`len`
 * or -errno.  `raw`/`raw_len` hold the reply exactly as received (header
 * included, for byte-for-byte comparisons).
 */
typedef struct pc_reply {
    pc_kind kind;
    int32_t result;
    int fd;                   /* caller owns it once returned; -1 if none */
    uint32_t hdr_type;        /* header fields (status/data kinds) */
    uint32_t hdr_size;
    const uint8_t *payload;   /* points into raw, after the header */
    size_t len;               /* payload length */
    uint8_t raw[PC_MAX_FRAME];
    size_t raw_len;
} pc_reply;

/* Options for pc_spawn(): run a server in "-f FD" mode on a socketpair. */
typedef struct pc_spawn_opts {
    const char *program;              /* server binary */
    const char *export_dir;           /* passed as -p */
    const char *const *extra_args;    /* NULL-terminated, may be NULL */
    const char *log_path;             /* stderr appended here, NULL: inherit */
} pc_spawn_opts;

/* ---- connections ------------------------------------------------------ */

/* Connect to a listening socket path, retrying up to timeout_ms while the
 * path is missing or refuses (the server may be re-creating it). */
int pc_connect(const char *path, int timeout_ms, pc_conn **out);

/* Start `program -n -f 3 -p DIR [extra_args]` with fd 3 = one end of a
 * socketpair; *out is the other end.  The child gets PR_SET_PDEATHSIG, so a
 * crashing test never leaves a server behind. */
int pc_spawn(const pc_spawn_opts *opts, pc_conn **out);

/* Adopt an already connected stream socket (takes ownership of fd). */
int pc_conn_from_fd(int fd, pc_conn **out);

/* Close the socket (the server sees EOF), keep the child for pc_wait(). */
void pc_shutdown(pc_conn *c);

/* Wait for the spawned child to exit; 0 and *wstatus, or PC_ERR_TIMEOUT. */
int pc_wait(pc_conn *c, int timeout_ms, int *wstatus);

/* Close everything; a still-running spawned child is SIGKILLed and reaped. */
void pc_free(pc_conn *c);

int pc_conn_fd(const pc_conn *c);
pid_t pc_conn_pid(const pc_conn *c);
void pc_conn_set_timeout(pc_conn *c, int timeout_ms);  /* default 5000 */
void pc_conn_set_nul_mode(pc_conn *c, pc_nul_mode mode);
const char *pc_conn_error(const pc_conn *c);  /* last PC_ERR_* detail */

const char *pc_strerror(int err);   /* "ENOENT", "PC_ERR_TIMEOUT", "0", ... */
const char *pc_type_name(uint32_t type);

/* ---- encoding ---------------------------------------------------------- */

/*
 * Encode header + body into buf.  Format letters:
 *   d  int32_t          q  int64_t
 *   s  const char *     string, no trailing NUL
 *   S  const char *     string sent with one trailing NUL (QEMU's [NUL])
 *   b  const void *, size_t   raw bytes as an `s` (binary, may hold NULs)
 * Returns the frame length, or PC_ERR_USAGE if it does not fit in cap or a
 * string is longer than 65535 bytes.
 */
int pc_encode(uint8_t *buf, size_t cap, uint32_t type, const char *fmt, ...);
int pc_vencode(uint8_t *buf, size_t cap, uint32_t type, const char *fmt,
               va_list ap);

/* The reply kind a request type gets (xattr_size matters for 17/18). */
pc_kind pc_reply_kind(uint32_t type, int32_t xattr_size);

/* ---- sending ----------------------------------------------------------- */

/* Send bytes as they are (also malformed frames). */
int pc_send_raw(pc_conn *c, const void *buf, size_t len);
/* Same, in chunks of `chunk` bytes with `delay_us` between them. */
int pc_send_chunked(pc_conn *c, const void *buf, size_t len, size_t chunk,
                    unsigned delay_us);
/* Encode and send one request (see pc_encode for fmt). */
int pc_send(pc_conn *c, uint32_t type, const char *fmt, ...);

/* ---- receiving --------------------------------------------------------- */

/*
 * Receive one reply of the given kind with strict validation:
 *   FD:     exactly 4 bytes in one recvmsg; PC_FD_VALID with exactly one
 *           SCM_RIGHTS fd, or a negative errno with no fd;
 *   STATUS: size exactly 4; type 0 with status >= 0 or type 1 with < 0;
 *   DATA:   type 0 with any size <= 65536, or type 1 with size 4 and < 0.
 * Returns 0 with *r filled (the server's verdict in r->result), or PC_ERR_*.
 */
int pc_recv(pc_conn *c, pc_kind kind, pc_reply *r);

/* Read exactly len raw bytes (PC_ERR_TIMEOUT / PC_ERR_EOF otherwise). */
int pc_recv_bytes(pc_conn *c, void *buf, size_t len);

/* 0 if the peer closes the connection within timeout_ms (any unread
 * bytes are discarded), PC_ERR_TIMEOUT if it stays open. */
int pc_expect_eof(pc_conn *c, int timeout_ms);

/* 0 if nothing at all arrives within timeout_ms, PC_ERR_PROTO otherwise. */
int pc_expect_silence(pc_conn *c, int timeout_ms);

/* Send one request and receive its reply (kind from pc_reply_kind). */
int pc_call(pc_conn *c, pc_reply *r, uint32_t type, int32_t xattr_size,
            const char *fmt, ...);

/* ---- decoding ---------------------------------------------------------- */

/* len must be 116 */
int pc_decode_stat(const uint8_t *p, size_t len, pc_proxy_stat *st);
/* len must be 88 */
int pc_decode_statfs(const uint8_t *p, size_t len, pc_proxy_statfs *sf);
/* An `s` filling the payload exactly; *out points into p. */
int pc_decode_string(const uint8_t *p, size_t len, const uint8_t **out,
                     size_t *out_len);

/* ---- typed requests ---------------------------------------------------- */
/*
 * One function per request type.  Each sends the request the way QEMU does
 * (field order, [NUL] per the connection's nul mode), waits for the reply
 * and returns the wire result: 0 (or a length for xattr probes), -errno, or
 * PC_ERR_* if the reply was missing or malformed.  Payload sizes are checked
 * exactly (116 / 88 / 8 bytes, `s` filling the payload).
 */
int pc_open(pc_conn *c, const char *path, int32_t flags, int *fd);
int pc_create(pc_conn *c, const char *path, int32_t flags, int32_t mode,
              int32_t uid, int32_t gid, int *fd);
int pc_mknod(pc_conn *c, int32_t uid, int32_t gid, const char *path,
             int32_t mode, uint64_t rdev);
int pc_mkdir(pc_conn *c, int32_t uid, int32_t gid, const char *path,
             int32_t mode);
int pc_symlink(pc_conn *c, int32_t uid, int32_t gid, const char *target,
               const char *linkpath);
int pc_link(pc_conn *c, const char *oldpath, const char *newpath);
int pc_lstat(pc_conn *c, const char *path, pc_proxy_stat *st);
/* target is NUL-terminated in buf (cap bytes); *len = bytes received. */
int pc_readlink(pc_conn *c, const char *path, int32_t bufsize, char *buf,
                size_t cap, size_t *len);
int pc_statfs(pc_conn *c, const char *path, pc_proxy_statfs *sf);
int pc_chmod(pc_conn *c, const char *path, int32_t mode);
int pc_chown(pc_conn *c, const char *path, int32_t uid, int32_t gid);
int pc_truncate(pc_conn *c, const char *path, int64_t length);
int pc_utime(pc_conn *c, const char *path, int64_t atime_sec,
             int64_t atime_nsec, int64_t mtime_sec, int64_t mtime_nsec);
int pc_rename(pc_conn *c, const char *oldpath, const char *newpath);
int pc_remove(pc_conn *c, const char *path);
/* size 0: returns the probed length (>= 0).  Otherwise 0 and the value in
 * buf (cap bytes), *len = bytes received. */
int pc_lgetxattr(pc_conn *c, int32_t size, const char *path, const char *name,
                 void *buf, size_t cap, size_t *len);
int pc_llistxattr(pc_conn *c, int32_t size, const char *path, void *buf,
                  size_t cap, size_t *len);
/* `size` is sent as given: pass vlen to behave like QEMU. */
int pc_lsetxattr(pc_conn *c, const char *path, const char *name,
                 const void *value, size_t vlen, int32_t size, int32_t flags);
int pc_lremovexattr(pc_conn *c, const char *path, const char *name);
int pc_getversion(pc_conn *c, const char *path, uint64_t *generation);

#endif /* PCLIENT_H */
