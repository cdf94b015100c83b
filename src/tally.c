/* tally.c - live connections, counted per export and per peer uid. */
#include "config.h"

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>

#include "tally.h"

/* The export objects with live counted connections, and the name each
 * counts for.  An entry lives exactly as long as its connections do, so an
 * address is never mistaken for a freed object's: the connections hold
 * references until after tally_remove. */
struct by_export {
    char *name; /* NULL: counted for its uid only */
    unsigned int conns;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *exports; /* const struct export * -> struct by_export */
static GHashTable *names;   /* export name -> connections, as a pointer */
static GHashTable *uids;    /* uid -> connections, as a pointer */

static void by_export_free(gpointer p)
{
    struct by_export *e = p;

    g_free(e->name);
    g_free(e);
}

static void init_locked(void)
{
    if (exports == NULL) {
        exports = g_hash_table_new_full(NULL, NULL, NULL, by_export_free);
        names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        uids = g_hash_table_new(NULL, NULL);
    }
}

static unsigned int count_of(GHashTable *t, gconstpointer key)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(t, key));
}

/* Adds delta (+1 or -1) to a count, dropping it at zero. */
static void bump(GHashTable *t, gpointer key, int delta, bool copy_key)
{
    unsigned int n = count_of(t, key);

    if (delta < 0 && n == 0) {
        return; /* never counted */
    }
    n = delta < 0 ? n - 1 : n + 1;
    if (n == 0) {
        g_hash_table_remove(t, key);
    } else {
        /* An existing entry keeps its key (the copy is freed). */
        g_hash_table_insert(t, copy_key ? g_strdup(key) : key, GUINT_TO_POINTER(n));
    }
}

static void add_locked(const char *name, const struct export *ex, uid_t uid)
{
    struct by_export *e = g_hash_table_lookup(exports, ex);

    if (e == NULL) {
        e = g_new0(struct by_export, 1);
        e->name = g_strdup(name);
        g_hash_table_insert(exports, (gpointer)ex, e);
    }
    e->conns++;
    if (e->name != NULL) {
        bump(names, e->name, +1, true);
    }
    bump(uids, GUINT_TO_POINTER(uid), +1, false);
}

enum tally_verdict tally_admit(const char *name, const struct export *ex, uid_t uid,
                               unsigned int export_max, unsigned int uid_max)
{
    enum tally_verdict v = TALLY_ADMITTED;

    pthread_mutex_lock(&lock);
    init_locked();
    if (export_max > 0 && count_of(names, name) >= export_max) {
        v = TALLY_EXPORT_FULL;
    } else if (uid_max > 0 && count_of(uids, GUINT_TO_POINTER(uid)) >= uid_max) {
        v = TALLY_UID_FULL;
    } else {
        add_locked(name, ex, uid);
    }
    pthread_mutex_unlock(&lock);
    return v;
}

void tally_add(const char *name, const struct export *ex, uid_t uid)
{
    pthread_mutex_lock(&lock);
    init_locked();
    add_locked(name, ex, uid);
    pthread_mutex_unlock(&lock);
}

void tally_remove(const struct export *ex, uid_t uid)
{
    struct by_export *e;

    pthread_mutex_lock(&lock);
    init_locked();
    e = g_hash_table_lookup(exports, ex);
    if (e != NULL) {
        if (e->name != NULL) {
            bump(names, e->name, -1, true);
        }
        bump(uids, GUINT_TO_POINTER(uid), -1, false);
        if (--e->conns == 0) {
            g_hash_table_remove(exports, ex);
        }
    }
    pthread_mutex_unlock(&lock);
}

unsigned int tally_export(const char *name)
{
    unsigned int n;

    pthread_mutex_lock(&lock);
    init_locked();
    n = count_of(names, name);
    pthread_mutex_unlock(&lock);
    return n;
}

unsigned int tally_uid(uid_t uid)
{
    unsigned int n;

    pthread_mutex_lock(&lock);
    init_locked();
    n = count_of(uids, GUINT_TO_POINTER(uid));
    pthread_mutex_unlock(&lock);
    return n;
}
