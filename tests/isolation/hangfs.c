/* hangfs - a FUSE filesystem that hangs on demand, for test-hangfs and
 * noisy-bench: the "hung filesystem under the export" of issue 8 (an NFS
 * server gone away, a stuck FUSE daemon), made reproducible.
 *
 *   hangfs MOUNTPOINT      (stays in the foreground; root: allow_other)
 *
 * The root directory is empty to readdir, but any name looks up as a
 * regular file of HANG_SIZE bytes, mode 0644.  Every operation on a name
 * starting with "hang" (its lookup first: the kernel asks getattr) blocks
 * until the process gets SIGUSR1; from then on nothing blocks.  SIGTERM,
 * SIGINT or SIGHUP release everything and unmount.  A blocked operation
 * gives up after HANG_MAX_S whatever happens, so no test can hang forever
 * on it.  Other names answer at once.
 */
#define FUSE_USE_VERSION 31

#include "config.h"

#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HANG_SIZE 4242
#define HANG_MAX_S 120

/* Set by a signal, read by FUSE's worker threads: a lock-free atomic is
 * both async-signal-safe and race-free. */
static atomic_int released;

static void on_release(int sig)
{
    int saved = errno;

    atomic_store(&released, 1);
    errno = saved;
}

static int is_hang(const char *path)
{
    const char *base = strrchr(path, '/');

    return strncmp(base != NULL ? base + 1 : path, "hang", 4) == 0;
}

/* Blocks a "hang*" operation until released (or exiting, or HANG_MAX_S). */
static void maybe_hang(const char *path)
{
    struct fuse_context *ctx = fuse_get_context();
    struct fuse_session *se = ctx != NULL ? fuse_get_session(ctx->fuse) : NULL;
    const struct timespec tick = {.tv_nsec = 10 * 1000 * 1000};

    if (!is_hang(path)) {
        return;
    }
    for (int i = 0; i < HANG_MAX_S * 100 && !atomic_load(&released); i++) {
        if (se != NULL && fuse_session_exited(se)) {
            return;
        }
        nanosleep(&tick, NULL);
    }
}

static void *hang_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Every lookup reaches us: a cached entry would not hang. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    return NULL;
}

static int hang_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    memset(st, 0, sizeof(*st));
    if (strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    maybe_hang(path);
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_size = HANG_SIZE;
    return 0;
}

static int hang_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                        struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    if (strcmp(path, "/") != 0) {
        return -ENOTDIR;
    }
    filler(buf, ".", NULL, 0, 0);
    filler(buf, "..", NULL, 0, 0);
    return 0;
}

static int hang_open(const char *path, struct fuse_file_info *fi)
{
    maybe_hang(path);
    return 0;
}

static int hang_read(const char *path, char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    maybe_hang(path);
    if (off >= HANG_SIZE) {
        return 0;
    }
    if ((off_t)size > HANG_SIZE - off) {
        size = (size_t)(HANG_SIZE - off);
    }
    memset(buf, 'h', size);
    return (int)size;
}

static const struct fuse_operations hang_ops = {
    .init = hang_init,
    .getattr = hang_getattr,
    .readdir = hang_readdir,
    .open = hang_open,
    .read = hang_read,
};

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct sigaction sa = {.sa_handler = on_release};
    struct fuse *f;
    int ret;

    if (argc != 2) {
        fprintf(stderr, "usage: hangfs MOUNTPOINT\n");
        return 2;
    }
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    fuse_opt_add_arg(&args, argv[0]);
    if (geteuid() == 0) {
        fuse_opt_add_arg(&args, "-oallow_other");
    }
    fuse_opt_add_arg(&args, "-ofsname=hangfs");
    f = fuse_new(&args, &hang_ops, sizeof(hang_ops), NULL);
    if (f == NULL) {
        fuse_opt_free_args(&args);
        return 1;
    }
    if (fuse_mount(f, argv[1]) != 0) {
        fuse_destroy(f);
        fuse_opt_free_args(&args);
        return 1;
    }
    if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
        fuse_unmount(f);
        fuse_destroy(f);
        fuse_opt_free_args(&args);
        return 1;
    }
    ret = fuse_loop_mt(f, 0);
    released = 1;
    fuse_remove_signal_handlers(fuse_get_session(f));
    fuse_unmount(f);
    fuse_destroy(f);
    fuse_opt_free_args(&args);
    return ret == 0 ? 0 : 1;
}
