/*
 * diff-random: a seeded, randomized differential test of virtfs-proxyd
 * against QEMU's reference helper (issue 13).
 *
 *   req.c      requests: fields, wire encoding, descriptions
 *   gen.c      the seeded generator of request sequences
 *   tree.c     scratch trees: the seed tree, canonical listings, mirroring
 *   session.c  the sandbox, both servers, running one step, normalised replies
 *   known.c    the one table of known divergences
 *   diff-random.c  seeds, comparison, minimal reproductions, the report
 *
 * Conventions as in pclient: functions return 0 or a negative errno.
 */
#ifndef DR_H
#define DR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pclient.h"

/* ---- random source ------------------------------------------------------ */

/* splitmix64: a seed names the same sequence on every machine and glib. */
typedef struct dr_rng {
    uint64_t s;
} dr_rng;

uint64_t dr_rand(dr_rng *r);
uint32_t dr_below(dr_rng *r, uint32_t n); /* 0 <= x < n */
bool dr_chance(dr_rng *r, unsigned percent);
/* Index into weights[0..n) chosen in proportion to the weights. */
unsigned dr_weighted(dr_rng *r, const unsigned *weights, unsigned n);

/* ---- requests ------------------------------------------------------------ */

#define DR_MAX_STR 3
#define DR_MAX_NUM 5

/* A string field exactly as sent: its bytes, a trailing NUL included when
 * there is one. */
typedef struct dr_str {
    char *p;
    size_t len;
} dr_str;

typedef struct dr_req {
    uint32_t type;
    int conn;        /* connection 0 or 1 of each server */
    bool with_next;  /* sent together with the next request (a race) */
    dr_str s[DR_MAX_STR];
    int64_t n[DR_MAX_NUM];
    size_t cut;      /* body bytes dropped at the end: fields missing */
    size_t junk;     /* bytes appended after the last field */
    uint8_t *frame;  /* the encoded request (dr_req_encode) */
    size_t frame_len;
} dr_req;

/*
 * Field roles in wire order, per type (PROTOCOL.md §4.0):
 *   P path sent by QEMU with a trailing NUL   p path sent without one
 *   t symlink target   n xattr name   v xattr value   d int32   q int64
 */
const char *dr_req_spec(uint32_t type);
dr_req *dr_req_new(uint32_t type);
void dr_req_free(dr_req *r);
dr_req *dr_req_copy(const dr_req *r);
void dr_req_set_str(dr_req *r, int i, const char *p, size_t len);
void dr_req_encode(dr_req *r);

/* The i-th path field (roles P and p), NULL if there is none. */
const dr_str *dr_req_path(const dr_req *r, int i);
int dr_req_npaths(const dr_req *r);
/* The bytes a C-string consumer sees: the reference truncates at the first
 * NUL (PROTOCOL.md §2.3). */
size_t dr_str_cstrlen(const dr_str *s);
/* A NUL anywhere but as the very last byte: virtfs-proxyd answers EINVAL. */
bool dr_str_embedded_nul(const dr_str *s);
bool dr_req_embedded_nul(const dr_req *r);
/* Longest path field as the kernel would see it (reference view). */
size_t dr_req_max_path(const dr_req *r);
bool dr_req_is_creation(const dr_req *r);
/* uid and gid of a creation request. */
void dr_req_ids(const dr_req *r, int32_t *uid, int32_t *gid);
/* Open flags of T_OPEN / T_CREATE. */
int32_t dr_req_flags(const dr_req *r);

/* A time as compared: "now" for the kernel's present (anything within two
 * days of the run), else exact.  The generator never sets a time near the
 * present, so the two never mix. */
char *dr_norm_time(int64_t sec, int64_t nsec);
void dr_set_time_origin(void);

/* One line for humans: T_OPEN "//dir/f\0" flags=O_RDONLY|O_DIRECTORY */
char *dr_req_describe(const dr_req *r);
char *dr_req_hex(const dr_req *r);
char *dr_open_flags_str(int32_t flags);

/* ---- trees --------------------------------------------------------------- */

typedef struct dr_entry {
    char *path;  /* relative to the root, "" for the root itself */
    char type;   /* d f l p s c b */
    char *target;
    char *line;  /* canonical description, compared as a whole */
} dr_entry;

typedef struct dr_tree {
    GPtrArray *entries;   /* dr_entry *, depth-first, names sorted */
    GHashTable *by_path;  /* path -> dr_entry * */
} dr_tree;

/* The fixed tree every seed starts from (identical on both sides). */
int dr_tree_seed(int rootfd);
dr_tree *dr_tree_list(int rootfd);
void dr_tree_free(dr_tree *t);
const dr_entry *dr_tree_get(const dr_tree *t, const char *path);
/* Lines "path: reference ... | virtfs-proxyd ..." where the trees differ. */
GPtrArray *dr_tree_diff(const dr_tree *ref, const dr_tree *ours);
/* Empties the directory, never following a symlink. */
int dr_tree_clear(int rootfd);
/* Makes dst an exact copy of src (after an accepted divergence). */
int dr_tree_mirror(int srcfd, int dstfd);

/* ---- outcomes and steps ------------------------------------------------- */

typedef enum dr_okind {
    DR_ERROR,   /* a wire error: err */
    DR_STATUS,  /* a status >= 0 (0, or an xattr probe's length) */
    DR_DATA,    /* a data reply */
    DR_FD,      /* an fd reply: fd_type */
    DR_HANG,    /* no reply in time (or, for the reference, predicted) */
    DR_DEAD,    /* the connection closed: the server died */
    DR_BAD,     /* a reply QEMU would misread */
} dr_okind;

typedef struct dr_outcome {
    dr_okind kind;
    int err;           /* DR_ERROR: positive errno */
    int32_t status;    /* DR_STATUS */
    unsigned fd_type;  /* DR_FD: S_IFMT bits of the object */
    uint32_t upper;    /* T_GETVERSION: upper half of the generation */
    char *desc;        /* normalised: equal descriptions, equal answers */
} dr_outcome;

typedef struct dr_step {
    const dr_req *req;
    dr_outcome ref, ours;
    bool rebased;        /* the reference answered with the path re-based */
    bool predicted_hang; /* not sent to the reference: it would block */
    GPtrArray *tree_diff; /* NULL when the trees agree */
    GPtrArray *fail;     /* always-failures of ours: crash, hang, leak */
    GPtrArray *unmirrored; /* the tool could not make the trees equal again */
} dr_step;

void dr_step_clear(dr_step *s);
bool dr_outcome_same(const dr_outcome *a, const dr_outcome *b);

/* ---- the table of known divergences (known.c) ---------------------------- */

typedef enum dr_group {
    DR_OPEN_FINDING, /* issue 13 classes 1-6: to be fixed in the daemon */
    DR_DESIGN,       /* deliberate, DESIGN.md */
    DR_REFBUG,       /* the reference helper is wrong */
} dr_group;

typedef struct dr_known {
    const char *id;
    dr_group group;
    int issue_class;  /* issue 13's class 1-6; 0: a new finding, or not a finding */
    bool tree;        /* the trees may differ after the step too */
    bool (*match)(const dr_step *s);
    const char *why;
} dr_known;

extern const dr_known dr_known_table[];
extern const size_t dr_known_count;
/* The first row that explains the step, or NULL. */
const dr_known *dr_known_find(const dr_step *s);

/* ---- the session: sandbox, servers, one step (session.c) ----------------- */

typedef struct dr_session dr_session;

typedef struct dr_config {
    const char *reference;  /* QEMU's virtfs-proxy-helper */
    const char *daemon;     /* virtfs-proxyd */
    int timeout_ms;         /* per request */
    int verbose;            /* 1: every difference, 2: every request */
} dr_config;

/* Enter the private mount namespace (everything read-only except workdir)
 * and make workdir ready for sessions.  Run in a child of the process that
 * created workdir: see diff-random.c. */
int dr_sandbox_enter(const char *workdir);
/* Remove a directory tree from the outside, never following a symlink. */
int dr_remove_tree(const char *path);

/* A session owns two fresh scratch trees (name-ref, name-new) beneath
 * workdir and the servers on them. */
dr_session *dr_session_new(const dr_config *cfg, const char *workdir, const char *name);
void dr_session_free(dr_session *s);
/* Fresh seed trees and fresh servers. */
int dr_session_reset(dr_session *s);
/* The reference tree's current listing (the generator picks from it). */
const dr_tree *dr_session_tree(const dr_session *s);
/* Run one request (or, with b, two at once on both connections) on both
 * servers, compare the trees, and mirror the reference tree into ours if
 * they differ.  Fills st (and stb for b). */
void dr_session_run(dr_session *s, const dr_req *a, dr_step *st, const dr_req *b, dr_step *stb);
/* Stop the servers; -1 with *problem set if virtfs-proxyd did not exit
 * cleanly on SIGTERM (a sanitizer build reports leaks that way). */
int dr_session_finish(dr_session *s, char **problem);
/* Counters for the report. */
void dr_session_counts(const dr_session *s, unsigned *ref_restarts, unsigned *ours_restarts,
                       unsigned *rebased, unsigned *predicted);

/* ---- the generator (gen.c) ------------------------------------------------ */

typedef struct dr_gen dr_gen;

dr_gen *dr_gen_new(uint64_t seed);
void dr_gen_free(dr_gen *g);
/* The next request, chosen with the reference tree's current state in view. */
dr_req *dr_gen_next(dr_gen *g, const dr_tree *t);
/* May a and b run at the same time without their order mattering? */
bool dr_gen_commute(const dr_req *a, const dr_req *b, const dr_tree *t);

#endif /* DR_H */
