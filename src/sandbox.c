/* sandbox.c - seccomp allow-list and Landlock confinement (see sandbox.h).
 *
 * The allow-list is one table of groups, each a family of system calls the
 * daemon's code patterns use, with every variant of the family (all *at
 * forms of a path call, the v/p/2 forms of a read), so that new code in the
 * same patterns rarely needs a new row.  `seccomp = log` shows any call
 * missing: run the test suite with it and read the log.
 *
 * With `log`, a call off the list raises SIGSYS (SECCOMP_RET_TRAP); the
 * handler hands its number to the main loop through a pipe (write(2) is
 * async-signal-safe; naming it is not: libseccomp allocates) and makes the
 * call itself from a stub mapped at a fixed address, which the filter lets
 * through by instruction pointer: so the call really happens, as `log`
 * promises, and the daemon behaves as without a filter.  The stub's address
 * is the same in every process, so that a filter inherited across execve
 * (by a live upgrade) still lets the new process's stub through.  `log` is
 * for finding what is missing, not a boundary: code that jumps to the stub
 * passes the filter.  (SECCOMP_RET_LOG would also let the call through, but
 * writes only to the kernel's audit log, which the daemon cannot read.)
 * Without the stub (not x86-64, or its address taken), a trapped call
 * fails with ENOSYS, and the log says so.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/sockios.h>

#include "log.h"
#include "sandbox.h"
#include "settings.h"

/* ---- the allow-list -------------------------------------------------------- */

struct sc_group {
    const char *why;
    const char *const *calls;
};

/* Descriptors: reads, writes, polling, duplication, libevent's epoll and
 * eventfd, memfds (progress table, upgrade state), the listeners' inotify
 * watch on their socket directories. */
static const char *const sc_fd_io[] = {
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64",
    "pwritev", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl",
    "pipe", "pipe2", "eventfd", "eventfd2", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6",
    "memfd_create", "ftruncate", "fallocate", "fsync", "fdatasync", "syncfs",
    "sync_file_range", "timerfd_create", "timerfd_settime", "timerfd_gettime", "flock",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", NULL};

/* Sockets besides socket(2) itself (AF_UNIX only: sc_install_socket):
 * listeners, connections, the registry, the control socket, syslog and
 * journald, systemd's notify socket; peers' credentials and groups. */
static const char *const sc_sockets[] = {
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockopt", "setsockopt",
    "getsockname", "getpeername", "shutdown", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "sendto", "recvfrom", NULL};

/* Paths: every request type of ops.c, with all the *at variants (requests
 * resolve beneath the export with openat2 and work on (dirfd, name)), the
 * xattr calls on (dirfd, name) or through /proc/self/fd (ops.c, direct
 * calls; the *xattrat ones are also in sc_by_number), the listeners'
 * private directory. */
static const char *const sc_paths[] = {
    "open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
    "getdents", "getdents64", "mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat",
    "link", "linkat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "truncate", "utime", "utimes", "futimesat", "utimensat", "getxattr", "lgetxattr",
    "fgetxattr", "getxattrat", "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "listxattr", "llistxattr", "flistxattr", "listxattrat", "removexattr", "lremovexattr",
    "fremovexattr", "removexattrat", "chdir", "fchdir", "getcwd", "umask",
    "name_to_handle_at", NULL};

/* Memory: malloc, glib's slices, thread stacks, the progress table. */
static const char *const sc_memory[] = {"brk", "mmap", "munmap", "mprotect", "mremap",
                                        "madvise", "mincore", "membarrier", NULL};

/* Threads (I/O threads, lanes, the watchdog) and time: glibc's pthreads,
 * libevent's and glib's locks and clocks. */
static const char *const sc_threads[] = {
    "clone", "clone3", "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
    "set_tid_address", "sched_yield", "sched_getaffinity", "sched_setaffinity",
    "sched_getparam", "sched_getscheduler", "gettid", "exit", "nanosleep", "clock_nanosleep",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom", NULL};

/* Signals (libevent's signal events, SIGSYS for `log`, the watchdog's
 * thread signals, the supervisor's kills of its serving process group). */
static const char *const sc_signals[] = {"rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
                                         "rt_sigtimedwait", "rt_sigpending", "rt_sigsuspend",
                                         "rt_tgsigqueueinfo", "sigaltstack", "restart_syscall",
                                         "kill", "tgkill", "tkill", "pause", NULL};

/* Identity and privileges: lanes switch uid/gid with raw setresuid/
 * setresgid and re-apply capabilities (capset) after they started;
 * libcap-ng reads them; the daemon drops them at start. */
static const char *const sc_identity[] = {
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
    "setresuid", "setresgid", "setuid", "setgid", "setreuid", "setregid", "setgroups",
    "setfsuid", "setfsgid", "capget", "capset", "prctl", "arch_prctl", NULL};

/* Processes: the live upgrade (fork, execve of the program, waitpid, kill
 * and SIGSTOP of a slow new process), the supervisor (fork/exec of the
 * serving process in its own group, reaping), the process it starts
 * (its set-up, by the same filter: seccomp filters survive execve), and
 * stacking this very filter or Landlock's rules there. */
static const char *const sc_process[] = {
    "execve", "execveat", "wait4", "waitid", "getpid", "getppid", "getpgid", "getpgrp",
    "setpgid", "getsid", "setsid", "exit_group", "uname", "getrlimit", "setrlimit",
    "prlimit64", "getrusage", "sysinfo", "getcpu", "seccomp", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self", NULL};

#ifdef VP_SANITIZED
/* Sanitizer builds only (configure saw -fsanitize): the runtimes' own
 * calls.  LeakSanitizer stops the world at exit with a tracer thread
 * (ptrace); reports are symbolized by a forked llvm-symbolizer; ASan and
 * TSan read and map their shadow memory their own way. */
static const char *const sc_sanitizer[] = {
    "ptrace", "process_vm_readv", "personality", "mlock", "munlock", "msync", "pkey_mprotect",
    "vfork", "fork", "sched_setparam", "sched_setscheduler", "getpriority", "setpriority",
    "ioctl", "socket", "shmget", "shmat", "shmdt", "shmctl", NULL};
#endif

static const struct sc_group sc_table[] = {
    {"descriptors", sc_fd_io},
    {"sockets", sc_sockets},
    {"paths", sc_paths},
    {"memory", sc_memory},
    {"threads and time", sc_threads},
    {"signals", sc_signals},
    {"identity", sc_identity},
    {"processes", sc_process},
#ifdef VP_SANITIZED
    {"sanitizer runtime", sc_sanitizer},
#endif
};

/* ioctl: SIOCOUTQ (how much a peer left unread, conn.c), FIONREAD (the
 * bytes waiting), FS_IOC_GETVERSION (T_GETVERSION), TCGETS (stdio's isatty
 * on the standard streams).  The request is an unsigned int in the kernel:
 * only the low 32 bits are compared. */
static const unsigned long sc_ioctls[] = {SIOCOUTQ, FIONREAD, FS_IOC_GETVERSION, TCGETS};

/* Calls that libseccomp 2.5.4 (Debian 12) cannot name, allowed by number:
 * ops.c's direct xattr calls (Linux 6.13; the names in sc_paths cover a
 * newer libseccomp).  Since Linux 5.1 every architecture but alpha shares
 * the numbers of new calls. */
static const struct {
    int nr;
    const char *name;
} sc_by_number[] = {
#if !defined(__alpha__)
    {463, "setxattrat"},
    {464, "getxattrat"},
    {465, "listxattrat"},
    {466, "removexattrat"},
#endif
};

static int sc_add(scmp_filter_ctx ctx, int nr, unsigned int narg, const struct scmp_arg_cmp *arg)
{
    int ret = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, narg, arg);

    /* -EEXIST: the same call in two groups (sanitizer builds). */
    return ret == -EEXIST ? 0 : ret;
}

static int sc_add_table(scmp_filter_ctx ctx)
{
    for (size_t g = 0; g < G_N_ELEMENTS(sc_table); g++) {
        for (const char *const *c = sc_table[g].calls; *c != NULL; c++) {
            int nr = seccomp_syscall_resolve_name(*c), ret;

            if (nr == __NR_SCMP_ERROR) {
                continue; /* newer than this libseccomp (or this architecture) */
            }
            ret = sc_add(ctx, nr, 0, NULL);
            if (ret < 0) {
                log_error("seccomp: cannot allow %s (%s): %s", *c, sc_table[g].why,
                          strerror(-ret));
                return ret;
            }
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sc_by_number); i++) {
        int ret = sc_add(ctx, sc_by_number[i].nr, 0, NULL);

        if (ret < 0) {
            log_error("seccomp: cannot allow %s (call %d, by number): %s", sc_by_number[i].name,
                      sc_by_number[i].nr, strerror(-ret));
            return ret;
        }
    }
    /* socket(2): Unix sockets only (SOCK_* flags are in the type, the
     * family alone decides). */
    {
        struct scmp_arg_cmp unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
        int ret = sc_add(ctx, SCMP_SYS(socket), 1, &unix_only);

        if (ret < 0) {
            log_error("seccomp: cannot allow socket(AF_UNIX): %s", strerror(-ret));
            return ret;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sc_ioctls); i++) {
        struct scmp_arg_cmp req = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, sc_ioctls[i]);
        int ret = sc_add(ctx, SCMP_SYS(ioctl), 1, &req);

        if (ret < 0) {
            log_error("seccomp: cannot allow ioctl 0x%lx: %s", sc_ioctls[i], strerror(-ret));
            return ret;
        }
    }
    return 0;
}

/* ---- `log`: SIGSYS, the stub, the report ------------------------------------ */

static int sc_report_pipe[2] = {-1, -1};
static bool sc_stub_ready;

#if defined(__x86_64__)
/* Below where the kernel puts mappings (top-down from near 0x7fff...), and
 * in application memory for AddressSanitizer (above 0x10007fff8000) and
 * ThreadSanitizer (0x7e8000000000 up): one address for every build. */
#define SC_STUB_ADDR ((void *)0x7e8c5c000000UL)
/* long stub(long nr, long a1, ..., long a6), System V ABI:
 *   mov %rdi,%rax; mov %rsi,%rdi; mov %rdx,%rsi; mov %rcx,%rdx;
 *   mov %r8,%r10; mov %r9,%r8; mov 8(%rsp),%r9; syscall; ret */
static const unsigned char sc_stub_code[] = {
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca, 0x4d, 0x89,
    0xc2, 0x4d, 0x89, 0xc8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3};
/* The instruction pointer the filter sees: just after the syscall. */
#define SC_STUB_RETURN_IP ((uint64_t)(uintptr_t)SC_STUB_ADDR + 25)

typedef long (*sc_stub_fn)(long, long, long, long, long, long, long);

static int sc_map_stub(void)
{
    void *p = mmap(SC_STUB_ADDR, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

    if (p == MAP_FAILED || p != SC_STUB_ADDR) {
        if (p != MAP_FAILED) {
            munmap(p, 4096); /* a kernel without MAP_FIXED_NOREPLACE placed it elsewhere */
        }
        return -EEXIST;
    }
    memcpy(p, sc_stub_code, sizeof(sc_stub_code));
    if (mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0) {
        int err = errno;

        munmap(p, 4096);
        return -err;
    }
    return 0;
}

static void sc_on_sigsys(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *r = uc->uc_mcontext.gregs;
    int saved = errno, nr = si->si_syscall;

    if (sc_report_pipe[1] >= 0 && write(sc_report_pipe[1], &nr, sizeof(nr)) < 0) {
        /* The pipe is full: the main loop has many to name already. */
    }
    if (sc_stub_ready) {
        r[REG_RAX] = ((sc_stub_fn)SC_STUB_ADDR)(nr, r[REG_RDI], r[REG_RSI], r[REG_RDX],
                                                r[REG_R10], r[REG_R8], r[REG_R9]);
    } else {
        r[REG_RAX] = -ENOSYS;
    }
    errno = saved;
}
#else
static int sc_map_stub(void)
{
    return -ENOTSUP;
}

static void sc_on_sigsys(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno, nr = si->si_syscall;

    if (sc_report_pipe[1] >= 0 && write(sc_report_pipe[1], &nr, sizeof(nr)) < 0) {
        /* full: see above */
    }
    errno = saved;
    /* The call fails with ENOSYS: the kernel set the return value so. */
}
#endif

/* with_pipe: false before main() closed what it inherited (the calls
 * caught until the pipe exists are made, not named). */
static int sc_prepare_log(bool with_pipe)
{
    struct sigaction sa = {.sa_sigaction = sc_on_sigsys, .sa_flags = SA_SIGINFO};
    int err;

    if (with_pipe && sc_report_pipe[0] < 0 &&
        pipe2(sc_report_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_error("seccomp: pipe: %m");
        return -errno;
    }
    if (!sc_stub_ready) {
        err = sc_map_stub();
        if (err < 0) {
            log_warn("seccomp = log: cannot map the stub that makes a caught call (%s): "
                     "calls off the list will fail with ENOSYS instead",
                     strerror(-err));
        } else {
            sc_stub_ready = true;
        }
    }
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        log_error("seccomp: sigaction(SIGSYS): %m");
        return -errno;
    }
    return 0;
}

static void sc_on_report(evutil_socket_t fd, short what, void *arg)
{
    static uint8_t seen[1024 / 8];
    int nr;

    while (read(fd, &nr, sizeof(nr)) == (ssize_t)sizeof(nr)) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        bool known = nr >= 0 && nr < 1024;

        if (known && (seen[nr / 8] & (1u << (nr % 8))) != 0) {
            free(name);
            continue;
        }
        if (known) {
            seen[nr / 8] |= (uint8_t)(1u << (nr % 8));
        }
        log_warn("seccomp: system call %s (%d) is not on the allow-list; %s (seccomp = log; "
                 "further calls of it are not logged)",
                 name != NULL ? name : "?", nr,
                 sc_stub_ready ? "made all the same" : "it failed with ENOSYS");
        free(name);
    }
}

void sandbox_early(void)
{
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2) {
        sc_prepare_log(false);
    }
}

void sandbox_seccomp_watch(struct event_base *base)
{
    if (sc_report_pipe[0] >= 0) {
        event_add(event_new(base, sc_report_pipe[0], EV_READ | EV_PERSIST, sc_on_report, NULL),
                  NULL);
    }
}

/* ---- installing ----------------------------------------------------------- */

/* `log`: libseccomp's program behind a prefix that lets the stub's calls
 * through (seccomp_data.instruction_pointer, low word first). */
static int sc_load_with_stub(scmp_filter_ctx ctx)
{
#if defined(__x86_64__)
    const uint32_t lo = (uint32_t)SC_STUB_RETURN_IP, hi = (uint32_t)(SC_STUB_RETURN_IP >> 32);
    struct sock_filter prefix[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_filter *insns = NULL;
    struct sock_fprog prog;
    struct stat st;
    int mfd, ret;

    if (!sc_stub_ready) {
        return seccomp_load(ctx);
    }
    mfd = memfd_create("virtfs-proxyd-seccomp", MFD_CLOEXEC);
    if (mfd < 0) {
        return -errno;
    }
    ret = seccomp_export_bpf(ctx, mfd);
    if (ret == 0 && (fstat(mfd, &st) < 0 || st.st_size % sizeof(struct sock_filter) != 0)) {
        ret = -EIO;
    }
    if (ret == 0) {
        size_t n = (size_t)st.st_size / sizeof(struct sock_filter);

        insns = g_new(struct sock_filter, n + G_N_ELEMENTS(prefix));
        memcpy(insns, prefix, sizeof(prefix));
        if (pread(mfd, insns + G_N_ELEMENTS(prefix), (size_t)st.st_size, 0) != st.st_size) {
            ret = -EIO;
        }
        prog.len = (unsigned short)(n + G_N_ELEMENTS(prefix));
        prog.filter = insns;
    }
    close(mfd);
    if (ret == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        ret = -errno;
    }
    if (ret == 0 &&
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
        /* TSYNC failing names a thread id: say so as an error all the same. */
        ret = errno != 0 ? -errno : -EBUSY;
    }
    g_free(insns);
    return ret;
#else
    return seccomp_load(ctx);
#endif
}

int sandbox_seccomp_install(enum sandbox_seccomp mode)
{
    scmp_filter_ctx ctx;
    int ret;

    if (mode == SANDBOX_SECCOMP_NONE) {
        return 0;
    }
    if (mode == SANDBOX_SECCOMP_LOG && (ret = sc_prepare_log(true)) < 0) {
        return ret;
    }
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2) {
        /* Inherited (from the supervisor, or the process before a live
         * upgrade): it stays, and a second would only add cost. */
        log_debug("seccomp: keeping the filter this process inherited");
        return 0;
    }
    ctx = seccomp_init(mode == SANDBOX_SECCOMP_LOG ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL) {
        log_error("seccomp: cannot make a filter (libseccomp)");
        return -ENOMEM;
    }
    ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* A binary tree of system call numbers, not a chain of ~250 tests:
     * calls whose rule has no argument test skip the filter anyway (the
     * kernel's per-call cache), the others (socket, ioctl) get there in
     * a few comparisons. */
    if (ret == 0) {
        ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    }
    if (ret == 0) {
        ret = sc_add_table(ctx);
    }
    if (ret == 0) {
        ret = mode == SANDBOX_SECCOMP_LOG ? sc_load_with_stub(ctx) : seccomp_load(ctx);
        if (ret < 0) {
            log_error("seccomp: cannot install the filter: %s (seccomp = none runs without)",
                      strerror(-ret));
        }
    }
    seccomp_release(ctx);
    if (ret == 0) {
        log_debug("seccomp: allow-list installed (seccomp = %s)", sandbox_seccomp_name(mode));
    }
    return ret;
}

/* ---- names ---------------------------------------------------------------- */

int sandbox_parse_seccomp(const char *text, enum sandbox_seccomp *mode)
{
    static const char *const names[] = {"kill", "log", "none"};

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(text, names[i]) == 0) {
            *mode = (enum sandbox_seccomp)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *sandbox_seccomp_name(enum sandbox_seccomp mode)
{
    return mode == SANDBOX_SECCOMP_KILL ? "kill" : mode == SANDBOX_SECCOMP_LOG ? "log" : "none";
}

int sandbox_parse_confine(const char *text, enum sandbox_confine *mode)
{
    if (strcmp(text, "landlock") == 0) {
        *mode = SANDBOX_CONFINE_LANDLOCK;
    } else if (strcmp(text, "none") == 0) {
        *mode = SANDBOX_CONFINE_NONE;
    } else {
        return -EINVAL;
    }
    return 0;
}

const char *sandbox_confine_name(enum sandbox_confine mode)
{
    return mode == SANDBOX_CONFINE_LANDLOCK ? "landlock" : "none";
}

/* ---- Landlock ----------------------------------------------------------------- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define LL_FILE_READ LANDLOCK_ACCESS_FS_READ_FILE
#define LL_EXEC (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE)
#define LL_TREE_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* An export: whatever a guest may do there, nothing executed. */
#define LL_EXPORT                                                                          \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |                        \
     LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |                         \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |                       \
     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |                           \
     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |                         \
     LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER | \
     LANDLOCK_ACCESS_FS_TRUNCATE)
/* A socket directory: the socket bound in the private directory, linked
 * into place after every accept, both removed at the end. */
#define LL_SOCKDIR                                                                         \
    (LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_MAKE_DIR |                           \
     LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_MAKE_SOCK |                        \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REFER)

#define LL_ENV "VIRTFS_PROXYD_CONFINED"

static struct {
    bool active;
    /* Canonical paths, each after a letter: 'E' an export (every right of
     * LL_EXPORT beneath), 'S' a socket directory (LL_SOCKDIR). */
    GPtrArray *served;
} ll;

static uint64_t ll_handled_for(int abi)
{
    uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */

    if (abi >= 2) {
        all |= LANDLOCK_ACCESS_FS_REFER;
    }
    if (abi >= 3) {
        all |= LANDLOCK_ACCESS_FS_TRUNCATE;
    }
    if (abi >= 5) {
        all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    }
    return all;
}

/* One rule; a path that does not exist is left out (an optional file). */
static int ll_allow(int ruleset, const char *path, uint64_t access, uint64_t handled,
                    bool must_exist)
{
    struct landlock_path_beneath_attr pb = {.allowed_access = access & handled};
    int fd = open(path, O_PATH | O_CLOEXEC), ret = 0;

    if (fd < 0) {
        if (must_exist) {
            log_error("landlock: %s: %m", path);
            return -errno;
        }
        return 0;
    }
    {
        struct stat st;

        /* A file's rule may only hold the rights that apply to files. */
        if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
            pb.allowed_access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                 LANDLOCK_ACCESS_FS_IOCTL_DEV;
        }
    }
    pb.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
        ret = -errno;
        log_error("landlock: cannot add a rule for %s: %m", path);
    }
    close(fd);
    return ret;
}

static void ll_add_dir_of(GHashTable *dirs, const char *file)
{
    g_autofree char *real = realpath(file, NULL);

    if (real != NULL) {
        g_hash_table_add(dirs, g_path_get_dirname(real));
    }
}

/* The directories of the program and of every library mapped (the loader
 * included): a live upgrade execs the program, perhaps a newer file there. */
static void ll_code_dirs(GHashTable *dirs)
{
    g_autofree char *maps = NULL;
    g_auto(GStrv) lines = NULL;

    ll_add_dir_of(dirs, "/proc/self/exe");
    if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) {
        return;
    }
    lines = g_strsplit(maps, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        const char *path = strchr(*l, '/');

        if (path != NULL && strstr(*l, " r-xp ") != NULL) {
            ll_add_dir_of(dirs, path);
        }
    }
}

static void ll_served_add(char kind, const char *path)
{
    g_autofree char *real = realpath(path, NULL);

    if (real != NULL) {
        g_ptr_array_add(ll.served, g_strdup_printf("%c%s", kind, real));
    }
}

/* What the confined process serves, for sandbox_covers. */
static void ll_served_from(const struct settings *set, const char *control)
{
    for (guint i = 0; i < set->exports->len; i++) {
        const struct export_settings *e = g_ptr_array_index(set->exports, i);
        g_autofree char *dir = g_path_get_dirname(e->socket);

        ll_served_add('E', e->path);
        ll_served_add('S', dir);
    }
    if (control != NULL) {
        g_autofree char *dir = g_path_get_dirname(control);

        ll_served_add('S', dir);
    }
}

/* Whether path is beneath a served path of one of kinds (e.g. "ES"). */
static bool ll_within(const char *path, const char *kinds)
{
    g_autofree char *real = realpath(path, NULL);

    if (real == NULL) {
        return true; /* not there: opening it fails anyway, and says why */
    }
    for (guint i = 0; i < ll.served->len; i++) {
        const char *r = g_ptr_array_index(ll.served, i);
        size_t n;

        if (strchr(kinds, r[0]) == NULL) {
            continue;
        }
        r++;
        n = strlen(r);
        if (strcmp(r, "/") == 0 ||
            (strncmp(real, r, n) == 0 && (real[n] == '\0' || real[n] == '/'))) {
            return true;
        }
    }
    return false;
}

bool sandbox_covers(const struct settings *set, const char **outside)
{
    static char where[PATH_MAX + 64];

    if (!ll.active) {
        return true;
    }
    for (guint i = 0; i < set->exports->len; i++) {
        const struct export_settings *e = g_ptr_array_index(set->exports, i);
        g_autofree char *dir = g_path_get_dirname(e->socket);

        if (!ll_within(e->path, "E")) {
            snprintf(where, sizeof(where), "export %s (%s)", e->name, e->path);
            *outside = where;
            return false;
        }
        if (!ll_within(dir, "ES")) {
            snprintf(where, sizeof(where), "the socket directory of export %s (%s)", e->name,
                     dir);
            *outside = where;
            return false;
        }
    }
    return true;
}

/* A process started by a live upgrade inherits the domain of the one
 * before (Landlock only narrows, and allows 16 layers): it keeps it, and
 * learns from the environment what it serves. */
static bool ll_inherited(void)
{
    const char *env = getenv(LL_ENV);
    g_auto(GStrv) paths = NULL;

    if (env == NULL) {
        return false;
    }
    paths = g_strsplit(env, "\n", -1);
    for (char **p = paths; *p != NULL; p++) {
        if ((*p)[0] != '\0') {
            g_ptr_array_add(ll.served, g_strcompress(*p));
        }
    }
    return true;
}

static void ll_export_env(void)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < ll.served->len; i++) {
        g_autofree char *e = g_strescape(g_ptr_array_index(ll.served, i), NULL);

        g_string_append_printf(s, "%s%s", i > 0 ? "\n" : "", e);
    }
    setenv(LL_ENV, s->str, 1);
    g_string_free(s, TRUE);
}

#ifdef VP_SANITIZED
/* The sanitizer runtimes write reports where their *_OPTIONS say, and run
 * llvm-symbolizer from /usr. */
static void ll_sanitizer_dirs(GHashTable *dirs)
{
    static const char *const vars[] = {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS",
                                       "LSAN_OPTIONS"};

    for (size_t i = 0; i < G_N_ELEMENTS(vars); i++) {
        const char *v = getenv(vars[i]);
        g_auto(GStrv) opts = v != NULL ? g_strsplit_set(v, ": ", -1) : NULL;

        for (char **o = opts; o != NULL && *o != NULL; o++) {
            if (g_str_has_prefix(*o, "log_path=")) {
                g_hash_table_add(dirs, g_path_get_dirname(*o + strlen("log_path=")));
            }
        }
    }
}
#endif

static int ll_build(int ruleset, uint64_t handled, const struct settings *set,
                    const char *control, const char *config)
{
    static const char *const etc_files[] = {"/etc/passwd",    "/etc/group",
                                            "/etc/nsswitch.conf", "/etc/ld.so.cache",
                                            "/etc/localtime", "/etc/ld.so.preload"};
    g_autoptr(GHashTable) code = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer code_dir;
    int ret = 0;

    for (guint i = 0; i < set->exports->len && ret == 0; i++) {
        const struct export_settings *e = g_ptr_array_index(set->exports, i);
        g_autofree char *sockdir = g_path_get_dirname(e->socket);

        ret = ll_allow(ruleset, e->path, LL_EXPORT, handled, true);
        if (ret == 0) {
            ret = ll_allow(ruleset, sockdir, LL_SOCKDIR, handled, true);
        }
    }
    if (ret == 0 && control != NULL) {
        g_autofree char *dir = g_path_get_dirname(control);

        /* control.c makes it if missing, once confined: make it now, as it
         * would (its parent is no business of the confined process). */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            log_warn("landlock: cannot make %s: %m (the control socket will fail)", dir);
        }
        ret = ll_allow(ruleset, dir, LL_SOCKDIR, handled, false);
    }
    if (ret == 0 && config != NULL) {
        g_autofree char *dir = g_path_get_dirname(config);

        /* The directory: an editor replaces the file with a new inode. */
        ret = ll_allow(ruleset, dir, LL_FILE_READ, handled, true);
    }
    /* /proc: /proc/self/fd (reopening, binding, xattrs), limits, maps;
     * /sys: the number of CPUs a new process counts. */
    if (ret == 0) {
        ret = ll_allow(ruleset, "/proc", LL_TREE_READ, handled, true);
    }
    if (ret == 0) {
        ret = ll_allow(ruleset, "/sys/devices/system/cpu", LL_TREE_READ, handled, false);
    }
    if (ret == 0) {
        ret = ll_allow(ruleset, "/dev/null",
                       LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE, handled,
                       false);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(etc_files) && ret == 0; i++) {
        ret = ll_allow(ruleset, etc_files[i], LL_FILE_READ, handled, false);
    }
    ll_code_dirs(code);
#ifdef VP_SANITIZED
    ll_sanitizer_dirs(code);
    g_hash_table_add(code, g_strdup("/usr"));
#endif
    g_hash_table_iter_init(&it, code);
    while (ret == 0 && g_hash_table_iter_next(&it, &code_dir, NULL)) {
#ifdef VP_SANITIZED
        ret = ll_allow(ruleset, code_dir, LL_EXEC | LL_EXPORT, handled, false);
#else
        ret = ll_allow(ruleset, code_dir, LL_EXEC, handled, false);
#endif
    }
    return ret;
}

int sandbox_confine(enum sandbox_confine mode, const struct settings *set, const char *single,
                    const char *control, const char *config)
{
    struct landlock_ruleset_attr attr = {0};
    int abi, ruleset, ret;

    ll.served = g_ptr_array_new_with_free_func(g_free);
    /* Whatever the mode now: a domain inherited cannot be left. */
    if (ll_inherited()) {
        ll.active = true;
        log_debug("landlock: keeping the confinement this process inherited");
        return 0;
    }
    if (mode == SANDBOX_CONFINE_NONE) {
        return 0;
    }
    abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        log_warn("landlock is unavailable (%s): the process is not confined to its exports "
                 "(confine = none silences this)",
                 abi < 0 ? strerror(errno) : "no ABI");
        return 0;
    }
    attr.handled_access_fs = ll_handled_for(abi);
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0) {
        log_error("landlock: cannot make a ruleset: %m");
        return -errno;
    }
    ret = ll_build(ruleset, attr.handled_access_fs, set, control, config);
    if (ret == 0 && single != NULL) {
        ret = ll_allow(ruleset, single, LL_EXPORT, attr.handled_access_fs, true);
    }
    if (ret == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        ret = -errno;
        log_error("landlock: PR_SET_NO_NEW_PRIVS: %m");
    }
    if (ret == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
        ret = -errno;
        log_error("landlock: cannot confine the process: %m");
    }
    close(ruleset);
    if (ret < 0) {
        return ret;
    }
    ll.active = true;
    ll_served_from(set, control);
    if (single != NULL) {
        ll_served_add('E', single);
    }
    ll_export_env();
    log_info("landlock (ABI %d): confined to %u export(s), their socket directories and what "
             "the process needs of the host",
             abi, set->exports->len + (single != NULL));
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

#ifdef VP_TEST_HOOKS
void sandbox_test_probe(void)
{
    const char *want = getenv("VIRTFS_PROXYD_TEST_HOOK");
    const char *path = getenv("VIRTFS_PROXYD_TEST_PROBE_PATH");
    long r;
    int fd;

    if (want == NULL || strcmp(want, "sandbox-probe") != 0) {
        return;
    }
    if (path != NULL) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            log_warn("test hook sandbox-probe: open %s: %m", path);
        } else {
            log_warn("test hook sandbox-probe: open %s: allowed", path);
            close(fd);
        }
    }
    /* ioprio_get: harmless, and no part of the daemon (or a sanitizer
     * runtime) calls it. */
    log_warn("test hook sandbox-probe: calling ioprio_get");
    r = syscall(SYS_ioprio_get, 1, 0);
    log_warn("test hook sandbox-probe: ioprio_get returned %ld (%s)", r,
             r < 0 ? strerror(errno) : "allowed");
}
#else
void sandbox_test_probe(void)
{
}
#endif
