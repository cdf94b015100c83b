/* fuzz-ops.c - libFuzzer target: whole requests executed by ops_execute
 * against a throw-away export inside the fuzz sandbox (fuzz-common.h).
 *
 * The input is a stream of request frames, as QEMU would send them.  Each
 * well-framed request is decoded with proto_decode_body and executed with
 * ops_execute, exactly as conn.c does (creations run on the calling thread:
 * credential lanes are the conn target's business).  After every request the
 * reply must pass the reply oracle and a received fd must lie inside the
 * export; after every input nothing outside the export may have changed.
 * The export is emptied and seeded again every FUZZ_OPS_RESET inputs.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "fuzz-common.h"
#include "ops.h"
#include "proto.h"

#define FUZZ_OPS_RESET 64
#define FUZZ_OPS_MAX_REQUESTS 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proto_reply *rep;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_sandbox_init(argc, argv);
    /* The daemon's own privileges, so that what the kernel refuses it is
     * refused here too. */
    if (getenv("FUZZ_KEEP_CAPS") == NULL && caps_drop_daemon() < 0) {
        abort();
    }
    rep = malloc(sizeof(*rep));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    fz_export_maybe_reset(FUZZ_OPS_RESET);
    for (int n = 0; n < FUZZ_OPS_MAX_REQUESTS && size - off >= PROTO_HDR_SZ; n++) {
        struct proto_hdr hdr;
        struct fz_expect e;
        struct proto_req req;
        uint8_t *body;
        bool fd_valid;

        if (proto_decode_header(data + off, &hdr) < 0 || size - off - PROTO_HDR_SZ < hdr.size) {
            break; /* the daemon would close the connection, or wait */
        }
        fz_expect_for(hdr.type, data + off + PROTO_HDR_SZ, hdr.size, &e);
        body = malloc(hdr.size > 0 ? hdr.size : 1);
        memcpy(body, data + off + PROTO_HDR_SZ, hdr.size);
        off += PROTO_HDR_SZ + hdr.size;
        if (proto_decode_body(hdr.type, body, hdr.size, &req) < 0) {
            proto_reply_error(rep, proto_reply_kind(hdr.type), -EINVAL);
        } else {
            ops_execute(fz_export(), &req, rep, 0);
        }
        free(body);
        if (fz_check_reply(&e, rep->buf, rep->len, &fd_valid) != rep->len) {
            FZ_FAIL("%s: reply of %zu bytes is not one whole reply", proto_type_name(hdr.type),
                    rep->len);
        }
        if (fd_valid != (rep->fd >= 0)) {
            FZ_FAIL("%s: fd reply %s but fd %d", proto_type_name(hdr.type),
                    fd_valid ? "announces a descriptor" : "announces none", rep->fd);
        }
        if (rep->fd >= 0) {
            fz_check_fd_inside(rep->fd);
            close(rep->fd);
        }
    }
    fz_check_canaries();
    return 0;
}
