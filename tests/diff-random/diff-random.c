/*
 * diff-random - randomized differential test of virtfs-proxyd against QEMU's
 * reference helper (issue 13).  See dr.h for the parts, README below.
 *
 * For every seed: fresh identical scratch trees, fresh servers (the
 * reference as one helper per connection, virtfs-proxyd as one daemon with
 * two connections), then DIFF_STEPS generated requests.  After each one the
 * replies (normalised: no inode or device numbers, "now" for the kernel's
 * times) and the two trees (canonical listings) are compared.  A difference
 * is either explained by a row of the table in known.c or a failure; a
 * crash, hang, malformed reply or leaked descriptor of virtfs-proxyd is
 * always a failure.  After any tree difference virtfs-proxyd's tree is made
 * a copy of the reference's again, so one difference is reported once.
 *
 * Environment:
 *   DIFF_SEEDS       "N" (seeds 1..N), "A-B", or "A,B,C"   (default 1-3)
 *   DIFF_STEPS       requests per seed                     (default 150)
 *   DIFF_TIMEOUT_MS  per request                           (default 2000)
 *   DIFF_REPORT      also write the report (Markdown) to this file
 *   DIFF_MINIMIZE    1: a minimal reproduction for every class, table rows too
 *                    (default 0: failures only)
 *   DIFF_VERBOSE     1: print every difference as it happens, 2: every request
 *   REFERENCE_HELPER, VIRTFS_PROXYD   the two programs (set by make check)
 *
 * Output is TAP, one test per seed; the exit status is 0 when every
 * difference is in the table.  It needs root (mount namespaces, chown,
 * mknod) and skips without it.
 */
#include <config.h>

#include "dr.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIN_BUDGET 48 /* replays allowed per example */
#define EXAMPLES 3    /* occurrences kept per class for minimising */

/* One occurrence of a class: its seed's history (shared, refcounted) up to
 * and including the request. */
typedef struct example {
    uint64_t seed;
    unsigned step;
    GPtrArray *history;   /* dr_req *, the whole seed's so far */
    GArray *mutated;      /* gboolean per history entry: changed the tree */
    guint len;            /* entries up to the request itself */
} example;

/* One kind of difference: a row of the table, or a failure signature. */
typedef struct klass {
    const dr_known *row;  /* NULL: a failure */
    char *signature;
    unsigned count;
    example ex[EXAMPLES]; /* the first occurrences */
    unsigned nex;
    char *ref_desc, *ours_desc;  /* of the first */
    GPtrArray *tree_diff;
    GPtrArray *fail;
    GPtrArray *minimal;   /* after minimisation */
    uint64_t min_seed;    /* the example it came from */
    unsigned min_step;
    char *min_note;
} klass;

typedef struct run {
    dr_config cfg;
    unsigned steps;
    bool minimize_known;
    GPtrArray *classes;   /* klass * */
    unsigned long total, identical, known, failures;
    unsigned long per_type[PC_T_GETVERSION + 1];
    GArray *seeds;
} run;

/* ---- the configuration --------------------------------------------------- */

static unsigned long env_num(const char *name, unsigned long def)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;

    if (v == NULL || *v == '\0') {
        return def;
    }
    n = strtoul(v, &end, 10);
    if (*end != '\0') {
        fprintf(stderr, "diff-random: %s=%s is not a number\n", name, v);
        exit(2);
    }
    return n;
}

static GArray *parse_seeds(const char *spec)
{
    GArray *seeds = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    gchar **parts = g_strsplit(spec, ",", -1);

    for (gchar **p = parts; *p != NULL; p++) {
        uint64_t a, b;
        char *dash = strchr(*p, '-');

        if (dash != NULL) {
            a = g_ascii_strtoull(*p, NULL, 10);
            b = g_ascii_strtoull(dash + 1, NULL, 10);
        } else if (parts[1] == NULL) {
            a = 1;
            b = g_ascii_strtoull(*p, NULL, 10);
        } else {
            a = b = g_ascii_strtoull(*p, NULL, 10);
        }
        for (uint64_t s = a; s <= b; s++) {
            g_array_append_val(seeds, s);
        }
    }
    g_strfreev(parts);
    return seeds;
}

static const char *program(const char *a, const char *b)
{
    const char *p = getenv(a);

    if (p == NULL || *p == '\0') {
        p = getenv(b);
    }
    return p != NULL && *p != '\0' && access(p, X_OK) == 0 ? p : NULL;
}

/* ---- classes of differences ----------------------------------------------- */

static const char *shape(const dr_outcome *o)
{
    static char buf[64];

    switch (o->kind) {
    case DR_ERROR:
        snprintf(buf, sizeof(buf), "error %s", pc_strerror(-o->err));
        return buf;
    case DR_STATUS:
        return "status";
    case DR_DATA:
        return "data";
    case DR_FD:
        switch (o->fd_type) {
        case 0040000:
            return "fd dir";
        case 0100000:
            return "fd file";
        default:
            return "fd other";
        }
    case DR_HANG:
        return "hang";
    case DR_DEAD:
        return "dead";
    default:
        return "bad reply";
    }
}

static char *signature(const dr_step *st)
{
    GString *s = g_string_new(pc_type_name(st->req->type));

    if (st->fail != NULL) {
        g_string_append_printf(s, ": virtfs-proxyd %s", shape(&st->ours));
        if (st->ours.kind != DR_HANG && st->ours.kind != DR_DEAD && st->ours.kind != DR_BAD) {
            g_string_append(s, ": descriptor");
        }
        return g_string_free(s, FALSE);
    }
    g_string_append_printf(s, ": reference %s", shape(&st->ref));
    g_string_append_printf(s, ", virtfs-proxyd %s", shape(&st->ours));
    if (dr_outcome_same(&st->ref, &st->ours)) {
        g_string_append(s, " (same reply)");
    } else if (strcmp(shape(&st->ref), shape(&st->ours)) == 0) {
        g_string_append(s, " (details differ)");
    }
    if (st->tree_diff != NULL) {
        g_string_append(s, "; trees differ");
    }
    return g_string_free(s, FALSE);
}

/* What a step amounts to: NULL if both servers agree, else its class key
 * (a row, or a failure signature); *row is set for table rows. */
static char *classify(const dr_step *st, const dr_known **row)
{
    *row = NULL;
    if (st->unmirrored != NULL) {
        return g_strdup("diff-random: the trees could not be made equal again (both re-seeded)");
    }
    if (st->fail == NULL && st->tree_diff == NULL && dr_outcome_same(&st->ref, &st->ours)) {
        return NULL;
    }
    if (st->fail == NULL) {
        *row = dr_known_find(st);
        if (*row != NULL) {
            return g_strdup((*row)->id);
        }
    }
    return signature(st);
}

static klass *class_get(run *r, const dr_known *row, const char *key)
{
    klass *k;

    for (guint i = 0; i < r->classes->len; i++) {
        k = r->classes->pdata[i];
        if (strcmp(k->signature, key) == 0) {
            return k;
        }
    }
    k = g_new0(klass, 1);
    k->row = row;
    k->signature = g_strdup(key);
    g_ptr_array_add(r->classes, k);
    return k;
}

static GPtrArray *copy_lines(const GPtrArray *a)
{
    GPtrArray *c;

    if (a == NULL) {
        return NULL;
    }
    c = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < a->len; i++) {
        g_ptr_array_add(c, g_strdup(a->pdata[i]));
    }
    return c;
}

static void print_step(FILE *f, const char *pfx, const dr_step *st)
{
    char *d = dr_req_describe(st->req);

    fprintf(f, "%s  request:       %s\n", pfx, d);
    fprintf(f, "%s  reference:     %s%s\n", pfx, st->ref.desc,
            st->rebased ? "   [re-based beneath a deep prefix]" : "");
    fprintf(f, "%s  virtfs-proxyd: %s\n", pfx, st->ours.desc);
    for (guint i = 0; st->fail != NULL && i < st->fail->len; i++) {
        fprintf(f, "%s  FAILURE:       %s\n", pfx, (char *)st->fail->pdata[i]);
    }
    for (guint i = 0; st->tree_diff != NULL && i < st->tree_diff->len && i < 8; i++) {
        fprintf(f, "%s  tree %s\n", pfx, (char *)st->tree_diff->pdata[i]);
    }
    for (guint i = 0; st->unmirrored != NULL && i < st->unmirrored->len && i < 8; i++) {
        fprintf(f, "%s  NOT COPIED %s\n", pfx, (char *)st->unmirrored->pdata[i]);
    }
    g_free(d);
}

static void record(run *r, const dr_step *st, uint64_t seed, unsigned stepno,
                   GPtrArray *history, GArray *mutated, int verbose)
{
    const dr_known *row;
    char *key = classify(st, &row);
    klass *k;

    if (verbose >= 2) {
        printf("# step %u:\n", stepno);
        print_step(stdout, "#", st);
    }
    r->total++;
    r->per_type[st->req->type]++;
    if (key == NULL) {
        r->identical++;
        return;
    }
    k = class_get(r, row, key);
    if (row != NULL) {
        r->known++;
    } else {
        r->failures++;
    }
    if (k->nex < EXAMPLES) {
        k->ex[k->nex++] = (example){ seed, stepno, g_ptr_array_ref(history), g_array_ref(mutated),
                                     history->len };
    }
    if (k->count++ == 0) {
        k->ref_desc = g_strdup(st->ref.desc);
        k->ours_desc = g_strdup(st->ours.desc);
        k->tree_diff = copy_lines(st->unmirrored != NULL ? st->unmirrored : st->tree_diff);
        k->fail = copy_lines(st->fail);
    }
    if (row == NULL || verbose) {
        printf("# %s at seed %" G_GUINT64_FORMAT " step %u: %s\n",
               row == NULL ? "FAILURE" : "known", seed, stepno, key);
        if (row == NULL && k->count <= 3) {
            print_step(stdout, "#", st);
        }
    }
    g_free(key);
}

/* ---- one seed -------------------------------------------------------------------- */

/* Cheap fingerprint of a listing: did the step change the tree? */
static guint tree_hash(const dr_tree *t)
{
    guint h = 0;

    for (guint i = 0; i < t->entries->len; i++) {
        h = h * 31 + g_str_hash(((dr_entry *)t->entries->pdata[i])->line);
    }
    return h;
}

static void run_seed(run *r, dr_session *s, uint64_t seed, unsigned *failures)
{
    dr_gen *g;
    GPtrArray *history;
    GArray *mutated;
    dr_req *pending = NULL;
    unsigned long before = r->failures;
    char *problem = NULL;

    if (dr_session_reset(s) < 0) {
        printf("# seed %" G_GUINT64_FORMAT ": cannot set up the session\n", seed);
        (*failures)++;
        return;
    }
    g = dr_gen_new(seed);
    history = g_ptr_array_new_with_free_func((GDestroyNotify)dr_req_free);
    mutated = g_array_new(FALSE, FALSE, sizeof(gboolean));
    for (unsigned step = 0; step < r->steps;) {
        dr_req *a = pending != NULL ? pending : dr_gen_next(g, dr_session_tree(s));
        dr_req *b = NULL;
        dr_step sta, stb;
        guint h0 = tree_hash(dr_session_tree(s));
        gboolean m;

        pending = NULL;
        if (a->with_next && step + 1 < r->steps) {
            b = dr_gen_next(g, dr_session_tree(s));
            b->conn = 1 - a->conn;
            b->with_next = false;
            if (!dr_gen_commute(a, b, dr_session_tree(s))) {
                pending = b;
                b = NULL;
            }
        }
        a->with_next = b != NULL;
        dr_session_run(s, a, &sta, b, &stb);
        if (b != NULL && stb.tree_diff != NULL) {
            /* The trees are compared once after a concurrent pair: the
             * difference belongs to whichever request explains it. */
            const dr_known *ra;

            sta.tree_diff = stb.tree_diff;
            ra = dr_known_find(&sta);
            if (ra != NULL && ra->tree) {
                stb.tree_diff = NULL;
            } else {
                sta.tree_diff = NULL;
            }
        }
        m = tree_hash(dr_session_tree(s)) != h0;
        /* Each request is recorded with the history that ends in it. */
        g_ptr_array_add(history, a);
        g_array_append_val(mutated, m);
        record(r, &sta, seed, step, history, mutated, r->cfg.verbose);
        if (b != NULL) {
            g_ptr_array_add(history, b);
            g_array_append_val(mutated, m);
            record(r, &stb, seed, step + 1, history, mutated, r->cfg.verbose);
        }
        dr_step_clear(&sta);
        if (b != NULL) {
            dr_step_clear(&stb);
        }
        step += b != NULL ? 2 : 1;
    }
    dr_req_free(pending);
    if (dr_session_finish(s, &problem) < 0) {
        printf("# FAILURE at seed %" G_GUINT64_FORMAT ": %s\n", seed, problem);
        r->failures++;
        g_free(problem);
    }
    *failures = (unsigned)(r->failures - before);
    g_ptr_array_unref(history);
    g_array_unref(mutated);
    dr_gen_free(g);
}

/* ---- minimal reproductions --------------------------------------------------------- */

typedef struct replay {
    dr_session *s;
    const klass *k;
    unsigned budget;
} replay;

/* Does running `list` (sequentially, from the seed tree) end in the same
 * class of difference as the example? */
static bool reproduces(replay *rp, GPtrArray *list)
{
    bool same = false;

    if (rp->budget == 0) {
        return false;
    }
    rp->budget--;
    if (dr_session_reset(rp->s) < 0) {
        return false;
    }
    for (guint i = 0; i < list->len; i++) {
        dr_req *q = dr_req_copy(list->pdata[i]);
        dr_step st;

        q->with_next = false;
        dr_session_run(rp->s, q, &st, NULL, NULL);
        if (i + 1 == list->len) {
            const dr_known *row;
            char *key = classify(&st, &row);

            same = key != NULL && strcmp(key, rp->k->signature) == 0;
            g_free(key);
        }
        dr_step_clear(&st);
        dr_req_free(q);
    }
    {
        char *problem = NULL;

        dr_session_finish(rp->s, &problem);
        g_free(problem);
    }
    return same;
}

static GPtrArray *with_last(GPtrArray *body, gpointer last)
{
    GPtrArray *l = g_ptr_array_new();

    for (guint i = 0; i < body->len; i++) {
        g_ptr_array_add(l, body->pdata[i]);
    }
    g_ptr_array_add(l, last);
    return l;
}

static bool test_body(replay *rp, GPtrArray *body, gpointer last)
{
    GPtrArray *l = with_last(body, last);
    bool ok = reproduces(rp, l);

    g_ptr_array_free(l, TRUE);
    return ok;
}

/* Zeller's ddmin over the steps before the last, within the budget. */
static GPtrArray *ddmin(replay *rp, GPtrArray *cand, gpointer last)
{
    GPtrArray *cur = g_ptr_array_copy(cand, NULL, NULL);
    guint n = 2;

    while (cur->len >= 2 && rp->budget > 0) {
        guint chunk = (cur->len + n - 1) / n;
        bool reduced = false;

        for (guint start = 0; start < cur->len && !reduced; start += chunk) {
            GPtrArray *comp = g_ptr_array_new();

            for (guint i = 0; i < cur->len; i++) {
                if (i < start || i >= start + chunk) {
                    g_ptr_array_add(comp, cur->pdata[i]);
                }
            }
            if (test_body(rp, comp, last)) {
                g_ptr_array_free(cur, TRUE);
                cur = comp;
                n = MAX(n - 1, 2);
                reduced = true;
            } else {
                g_ptr_array_free(comp, TRUE);
            }
        }
        if (!reduced) {
            if (n >= cur->len) {
                break;
            }
            n = MIN(n * 2, cur->len);
        }
    }
    if (cur->len == 1 && rp->budget > 0) {
        GPtrArray *none = g_ptr_array_new();

        if (test_body(rp, none, last)) {
            g_ptr_array_set_size(cur, 0);
        }
        g_ptr_array_free(none, TRUE);
    }
    return cur;
}

/* The names a path consists of (no "", ".", ".."). */
static void add_names(GHashTable *set, const dr_str *p)
{
    char *copy = g_strndup(p->p, dr_str_cstrlen(p));
    gchar **parts = g_strsplit(copy, "/", -1);

    for (gchar **c = parts; *c != NULL; c++) {
        if (**c != '\0' && strcmp(*c, ".") != 0 && strcmp(*c, "..") != 0) {
            g_hash_table_add(set, g_strdup(*c));
        }
    }
    g_strfreev(parts);
    g_free(copy);
}

/* Does an earlier request act on a name the failing request goes through? */
static bool touches(const dr_req *q, GHashTable *names)
{
    for (int i = 0; dr_req_path(q, i) != NULL; i++) {
        const dr_str *p = dr_req_path(q, i);
        size_t len = dr_str_cstrlen(p);
        const char *end = p->p + len, *last;

        while (end > p->p && end[-1] == '/') {
            end--;
        }
        last = end;
        while (last > p->p && last[-1] != '/') {
            last--;
        }
        if (end > last) {
            char *name = g_strndup(last, (size_t)(end - last));
            bool hit = g_hash_table_contains(names, name);

            g_free(name);
            if (hit) {
                return true;
            }
        }
    }
    return false;
}

/* A minimal list of requests, the example's own last, that still ends in
 * the class; NULL if the example does not replay on its own. */
static GPtrArray *minimize_example(dr_session *s, const klass *k, const example *ex,
                                   bool *exhausted)
{
    replay rp = { s, k, MIN_BUDGET };
    gpointer last = ex->history->pdata[ex->len - 1];
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *none = g_ptr_array_new();
    GPtrArray *near = g_ptr_array_new();
    GPtrArray *all = g_ptr_array_new();
    GPtrArray *body = NULL, *out = NULL;

    for (int i = 0; dr_req_path(last, i) != NULL; i++) {
        add_names(names, dr_req_path(last, i));
    }
    /* Only steps that changed the reference tree can matter; those that
     * name what the failing request goes through are tried first. */
    for (guint i = 0; i + 1 < ex->len; i++) {
        if (g_array_index(ex->mutated, gboolean, i)) {
            g_ptr_array_add(all, ex->history->pdata[i]);
            if (touches(ex->history->pdata[i], names)) {
                g_ptr_array_add(near, ex->history->pdata[i]);
            }
        }
    }
    if (test_body(&rp, none, last)) {
        body = g_ptr_array_new();
    } else if (near->len > 0 && test_body(&rp, near, last)) {
        body = ddmin(&rp, near, last);
    } else if (all->len > near->len && test_body(&rp, all, last)) {
        body = ddmin(&rp, all, last);
    }
    if (body != NULL) {
        out = with_last(body, last);
        g_ptr_array_free(body, TRUE);
    }
    *exhausted = rp.budget == 0;
    g_ptr_array_free(none, TRUE);
    g_ptr_array_free(near, TRUE);
    g_ptr_array_free(all, TRUE);
    g_hash_table_destroy(names);
    return out;
}

/* Minimise the kept examples in turn; keep the shortest reproduction. */
static void minimize(dr_session *s, klass *k)
{
    bool exhausted_best = false;

    for (unsigned i = 0; i < k->nex && (k->minimal == NULL || k->minimal->len > 2); i++) {
        bool exhausted;
        GPtrArray *m = minimize_example(s, k, &k->ex[i], &exhausted);

        if (m != NULL && (k->minimal == NULL || m->len < k->minimal->len)) {
            if (k->minimal != NULL) {
                g_ptr_array_free(k->minimal, TRUE);
            }
            k->minimal = m;
            k->min_seed = k->ex[i].seed;
            k->min_step = k->ex[i].step;
            exhausted_best = exhausted;
        } else if (m != NULL) {
            g_ptr_array_free(m, TRUE);
        }
    }
    if (k->minimal == NULL) {
        k->min_note = g_strdup_printf("does not reproduce on its own (a race, or it needs state "
                                      "no replay rebuilds): replay with DIFF_SEEDS=%"
                                      G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT " DIFF_STEPS=%u",
                                      k->ex[0].seed, k->ex[0].seed, k->ex[0].step + 1);
    } else if (exhausted_best) {
        k->min_note = g_strdup("(the replay budget ran out: small, maybe not minimal)");
    }
}

/* ---- the report --------------------------------------------------------------------- */

static const char *const rank_title[] = {
    "FAILURES (not in the table)",
    "Issue 13 classes 1-6 (open findings: to be fixed in the daemon)",
    "Deliberate (DESIGN.md)",
    "Reference bugs",
};

/* Report order: failures, issue 13's classes, deliberate, reference bugs. */
static int class_rank(const klass *k)
{
    if (k->row == NULL) {
        return 0;
    }
    switch (k->row->group) {
    case DR_OPEN_FINDING:
        return 1;
    case DR_DESIGN:
        return 2;
    default:
        return 3;
    }
}

static int by_rank(gconstpointer a, gconstpointer b)
{
    const klass *x = *(klass *const *)a;
    const klass *y = *(klass *const *)b;
    /* New findings (class 0) after issue 13's own classes. */
    int cx = x->row != NULL && x->row->issue_class > 0 ? x->row->issue_class : 7;
    int cy = y->row != NULL && y->row->issue_class > 0 ? y->row->issue_class : 7;

    if (class_rank(x) != class_rank(y)) {
        return class_rank(x) - class_rank(y);
    }
    if (cx != cy) {
        return cx - cy;
    }
    return x->count == y->count ? 0 : x->count < y->count ? 1 : -1;
}

static void report_class(FILE *f, const klass *k)
{
    fprintf(f, "\n### %s — %u\n", k->signature, k->count);
    if (k->row != NULL) {
        if (k->row->issue_class > 0) {
            fprintf(f, "Issue 13 class %d. ", k->row->issue_class);
        } else if (k->row->group == DR_OPEN_FINDING) {
            fprintf(f, "New finding (no class of issue 13). ");
        }
        fprintf(f, "%s\n", k->row->why);
    }
    fprintf(f, "\nFirst seen: seed %" G_GUINT64_FORMAT ", step %u.\n", k->ex[0].seed,
            k->ex[0].step);
    fprintf(f, "- reference:     %s\n- virtfs-proxyd: %s\n", k->ref_desc, k->ours_desc);
    for (guint i = 0; k->fail != NULL && i < k->fail->len; i++) {
        fprintf(f, "- FAILURE: %s\n", (char *)k->fail->pdata[i]);
    }
    for (guint i = 0; k->tree_diff != NULL && i < k->tree_diff->len && i < 6; i++) {
        fprintf(f, "- tree %s\n", (char *)k->tree_diff->pdata[i]);
    }
    if (k->minimal != NULL) {
        fprintf(f, "\nMinimal reproduction from the seed tree (%u request%s; from seed %"
                   G_GUINT64_FORMAT " step %u):\n```\n",
                k->minimal->len, k->minimal->len == 1 ? "" : "s", k->min_seed, k->min_step);
        for (guint i = 0; i < k->minimal->len; i++) {
            char *d = dr_req_describe(k->minimal->pdata[i]);
            char *h = dr_req_hex(k->minimal->pdata[i]);

            fprintf(f, "%s\n  %s\n", d, h);
            g_free(d);
            g_free(h);
        }
        fprintf(f, "```\n");
    }
    if (k->min_note != NULL) {
        fprintf(f, "\n%s\n", k->min_note);
    }
}

static void report(run *r, FILE *f, double secs, const dr_session *s)
{
    unsigned rr, orr, reb, pred;

    dr_session_counts(s, &rr, &orr, &reb, &pred);
    g_ptr_array_sort(r->classes, by_rank);
    fprintf(f, "# diff-random report\n\n");
    fprintf(f, "%u seeds x %u requests: %lu requests, %lu identical, %lu known divergences, "
               "%lu failures; %.0f s.\n",
            r->seeds->len, r->steps, r->total, r->identical, r->known, r->failures, secs);
    fprintf(f, "Requests with a path of 4,096 bytes or more answered by the re-based "
               "reference: %u; not sent to the reference because it would block: %u; "
               "reference helper starts: %u (one per R1-triggering creation or crash); "
               "virtfs-proxyd starts: %u (one per seed, more after a failure).\n",
            reb, pred, rr, orr);
    fprintf(f, "Requests per type:");
    for (uint32_t t = PC_T_OPEN; t <= PC_T_GETVERSION; t++) {
        fprintf(f, " %s %lu%s", pc_type_name(t), r->per_type[t], t < PC_T_GETVERSION ? "," : ".\n");
    }
    for (int g = 0; g < (int)G_N_ELEMENTS(rank_title); g++) {
        bool any = false;

        for (guint i = 0; i < r->classes->len; i++) {
            klass *k = r->classes->pdata[i];

            if (class_rank(k) == g) {
                if (!any) {
                    fprintf(f, "\n## %s\n", rank_title[g]);
                    any = true;
                }
                report_class(f, k);
            }
        }
    }
    fprintf(f, "\n## Table rows not matched in this run\n\n");
    for (size_t i = 0; i < dr_known_count; i++) {
        bool seen = false;

        for (guint j = 0; j < r->classes->len && !seen; j++) {
            seen = ((klass *)r->classes->pdata[j])->row == &dr_known_table[i];
        }
        if (!seen) {
            fprintf(f, "- %s\n", dr_known_table[i].id);
        }
    }
}

/* ---- main ------------------------------------------------------------------------------ */

/* report_file was opened before the namespace made everything read-only. */
static int run_all(const dr_config *cfg, const char *workdir, FILE *report_file)
{
    run r = { .cfg = *cfg };
    dr_session *s, *ms;
    unsigned all_failures = 0;
    time_t t0 = time(NULL);
    int rc;

    /* The default is make check's short run: a sanitizer build with
     * fast_unwind_on_malloc=0 (CI) spends ~45 ms of CPU per request. */
    r.steps = (unsigned)env_num("DIFF_STEPS", 150);
    r.minimize_known = env_num("DIFF_MINIMIZE", 0) != 0;
    r.seeds = parse_seeds(getenv("DIFF_SEEDS") != NULL && *getenv("DIFF_SEEDS") != '\0'
                              ? getenv("DIFF_SEEDS")
                              : "1-3");
    r.classes = g_ptr_array_new();
    rc = dr_sandbox_enter(workdir);
    if (rc < 0) {
        printf("1..0 # SKIP cannot make a private read-only mount namespace: %s\n",
               g_strerror(-rc));
        return 0;
    }
    s = dr_session_new(cfg, workdir, "run");
    printf("1..%u\n", r.seeds->len);
    fflush(stdout);
    for (guint i = 0; i < r.seeds->len; i++) {
        uint64_t seed = g_array_index(r.seeds, uint64_t, i);
        unsigned long id0 = r.identical, kn0 = r.known;
        unsigned failures = 0;

        run_seed(&r, s, seed, &failures);
        all_failures += failures;
        printf("%s %u - seed %" G_GUINT64_FORMAT ": %u requests, %lu identical, %lu known "
               "divergences, %u failures\n",
               failures == 0 ? "ok" : "not ok", i + 1, seed, r.steps, r.identical - id0,
               r.known - kn0, failures);
        fflush(stdout);
    }
    /* Minimal reproductions, in a session of their own. */
    ms = dr_session_new(cfg, workdir, "min");
    for (guint i = 0; i < r.classes->len; i++) {
        klass *k = r.classes->pdata[i];

        if (k->nex > 0 && (k->row == NULL || r.minimize_known)) {
            minimize(ms, k);
        }
    }
    dr_session_free(ms);
    {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);

        report(&r, mem, difftime(time(NULL), t0), s);
        fclose(mem);
        if (report_file != NULL) {
            fwrite(text, 1, len, report_file);
            fclose(report_file);
        }
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            printf("# %s\n", line);
        }
        free(text);
    }
    dr_session_free(s);
    return all_failures == 0 && r.failures == 0 ? 0 : 1;
}

static volatile pid_t test_pid;

/* SIGINT/SIGTERM (make's timeout, ^C): end the test so that the scratch
 * directory is still removed. */
static void forward_stop(int sig)
{
    (void)sig;
    if (test_pid > 0) {
        kill(test_pid, SIGKILL);
    }
}

int main(void)
{
    dr_config cfg = {
        .reference = program("DIFF_REFERENCE", "REFERENCE_HELPER"),
        .daemon = program("DIFF_DAEMON", "VIRTFS_PROXYD"),
        .timeout_ms = (int)env_num("DIFF_TIMEOUT_MS", 2000),
        .verbose = (int)env_num("DIFF_VERBOSE", 0),
    };
    const char *tmp = g_get_tmp_dir();
    const char *report_path = getenv("DIFF_REPORT");
    FILE *report_file = NULL;
    char *workdir;
    pid_t pid;
    int st;

    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The seed tree sets every mode explicitly; this keeps the rest (the
     * scratch directories) the same everywhere. */
    umask(022);
    if (cfg.reference == NULL || cfg.daemon == NULL) {
        printf("1..0 # SKIP needs REFERENCE_HELPER and VIRTFS_PROXYD\n");
        return 0;
    }
    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root (mount namespaces, chown, mknod)\n");
        return 0;
    }
    if (report_path != NULL && *report_path != '\0' &&
        (report_file = fopen(report_path, "w")) == NULL) {
        printf("1..0 # SKIP cannot write %s: %s\n", report_path, g_strerror(errno));
        return 0;
    }
    workdir = g_build_filename(tmp, "vpd-diffr.XXXXXX", NULL);
    if (g_mkdtemp(workdir) == NULL) {
        printf("1..0 # SKIP mkdtemp: %s\n", g_strerror(errno));
        return 0;
    }
    /* The test runs in a child inside its own mount namespace; this process
     * stays outside, where the scratch directory can be removed after. */
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(run_all(&cfg, workdir, report_file));
    }
    test_pid = pid;
    {
        struct sigaction sa = { .sa_handler = forward_stop };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (report_file != NULL) {
        fclose(report_file);
    }
    dr_remove_tree(workdir);
    g_free(workdir);
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    printf("# the test process died of signal %d\n", WTERMSIG(st));
    return 1;
}
