/* fuzz-common.h - what the libFuzzer targets share: a sandbox that nothing
 * can escape unnoticed, a throw-away export, and an oracle for replies.
 *
 * The sandbox (fz_sandbox_init, from LLVMFuzzerInitialize):
 *   - a private mount namespace in which every mount is read-only, except a
 *     fresh tmpfs holding the export, and the directories libFuzzer writes
 *     (the working directory, corpus and artifact directories);
 *   - beside the export, inside that tmpfs, canaries with known content,
 *     mode, owner and mtime, and a known directory listing: a request that
 *     escapes the export but stays inside the tmpfs changes one of them
 *     (fz_check_canaries aborts), one that leaves the tmpfs hits EROFS;
 *   - the export is seeded with files, directories, a FIFO, xattrs and
 *     symlinks pointing at "/", "..", the canaries by absolute and relative
 *     paths (fz_export_reset).
 */
#ifndef VP_FUZZ_COMMON_H
#define VP_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct export;

/* The daemon's capability set (caps.h), plus CAP_SYS_PTRACE: credential
 * lanes make the process non-dumpable, and LeakSanitizer must still be able
 * to stop every thread to scan it.  Call before any thread exists. */
void fz_drop_caps(void);
/* Sets up the sandbox and opens the export; exits on failure. */
void fz_sandbox_init(int *argc, char ***argv);
struct export *fz_export(void);
const char *fz_export_dir(void);
/* Empties the export and seeds it again. */
void fz_export_reset(void);
/* Calls fz_export_reset every `every` calls (and on the first). */
void fz_export_maybe_reset(unsigned int every);
/* Aborts if anything outside the export changed. */
void fz_check_canaries(void);
/* Aborts unless fd refers to an object inside the export. */
void fz_check_fd_inside(int fd);

/* What a well-framed request entitles its sender to (PROTOCOL.md §3). */
struct fz_expect {
    uint32_t type;
    bool malformed; /* the body does not decode: EINVAL of the right kind */
    int32_t arg;    /* readlink bufsize, xattr size */
};

/* Fills e for the request type/body (body is not modified). */
void fz_expect_for(uint32_t type, const uint8_t *body, size_t len, struct fz_expect *e);

/* Checks one reply at buf[0..avail): returns its length, 0 when more bytes
 * are needed, and aborts on a reply QEMU could misread.  *fd_valid is set
 * when it is an fd reply announcing a descriptor. */
size_t fz_check_reply(const struct fz_expect *e, const uint8_t *buf, size_t avail,
                      bool *fd_valid);

#define FZ_FAIL(...) fz_fail(__FILE__, __LINE__, __VA_ARGS__)
void fz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#endif
