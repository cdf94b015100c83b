/* xattrmap.c - guest xattr names to host names and back (see xattrmap.h). */
#include "config.h"

#include <errno.h>
#include <linux/limits.h>
#include <stdbool.h>
#include <string.h>

#include "xattrmap.h"

enum xattrmap_action { XM_OK, XM_MAP, XM_HIDE, XM_REFUSE };

struct xattrmap_rule {
    enum xattrmap_action action;
    char *guest; /* prefix a guest's name must have ("" = every name) */
    char *host;  /* prefix a host name must have; for XM_MAP what replaces guest */
};

struct xattrmap {
    unsigned int n;
    struct xattrmap_rule r[XATTRMAP_MAX_RULES];
};

static const char *const action_names[] = {"ok", "map", "hide", "refuse"};

/* "*" is every name; anything else is a literal prefix. */
static char *prefix_of(const char *word)
{
    return g_strdup(strcmp(word, "*") == 0 ? "" : word);
}

static bool parse_rule(struct xattrmap *map, const char *text, GError **error)
{
    g_auto(GStrv) w = g_strsplit_set(text, " \t", 0);
    const char *word[4];
    unsigned int n = 0, action;
    struct xattrmap_rule *r;

    for (size_t i = 0; w[i] != NULL; i++) {
        if (w[i][0] != '\0') {
            if (n == G_N_ELEMENTS(word)) {
                break;
            }
            word[n++] = w[i];
        }
    }
    for (action = 0; action < G_N_ELEMENTS(action_names); action++) {
        if (n > 0 && strcmp(word[0], action_names[action]) == 0) {
            break;
        }
    }
    if (action == G_N_ELEMENTS(action_names)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': a rule starts with ok, map, hide or refuse", text);
        return false;
    }
    if (n != (action == XM_MAP ? 3u : 2u)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': expected %s", text,
                    action == XM_MAP ? "map GUEST-PREFIX HOST-PREFIX" : "KEYWORD PREFIX");
        return false;
    }
    if (action == XM_MAP && (strcmp(word[1], "*") == 0 || strcmp(word[2], "*") == 0)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': map needs two real prefixes, not *", text);
        return false;
    }
    if (strlen(word[1]) > XATTR_NAME_MAX || (n == 3 && strlen(word[2]) > XATTR_NAME_MAX)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': a prefix longer than a name (%d bytes)", text, XATTR_NAME_MAX);
        return false;
    }
    if (map->n == XATTRMAP_MAX_RULES) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': more than %d rules", text, XATTRMAP_MAX_RULES);
        return false;
    }
    r = &map->r[map->n++];
    r->action = (enum xattrmap_action)action;
    r->guest = prefix_of(word[1]);
    r->host = prefix_of(word[action == XM_MAP ? 2 : 1]);
    return true;
}

struct xattrmap *xattrmap_parse(const char *text, GError **error)
{
    g_auto(GStrv) rules = g_strsplit(text, ";", 0);
    struct xattrmap *map = g_new0(struct xattrmap, 1);
    bool ok = true;

    if (rules[0] == NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "no rule (leave the key out for names passed through as they are)");
        ok = false;
    }
    for (size_t i = 0; ok && rules[i] != NULL; i++) {
        char *rule = g_strstrip(rules[i]);

        if (rule[0] == '\0' && rules[i + 1] == NULL && i > 0) {
            break; /* a trailing ';' */
        }
        if (rule[0] == '\0') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "empty rule %zu (rules are separated by ';')", i + 1);
            ok = false;
        } else {
            ok = parse_rule(map, rule, error);
        }
    }
    if (!ok) {
        xattrmap_free(map);
        return NULL;
    }
    return map;
}

void xattrmap_free(struct xattrmap *map)
{
    if (map != NULL) {
        for (unsigned int i = 0; i < map->n; i++) {
            g_free(map->r[i].guest);
            g_free(map->r[i].host);
        }
        g_free(map);
    }
}

/* from + name[skip..] into out; -ERANGE if it is no valid name length. */
static int splice(const char *from, const char *name, size_t skip, char *out, size_t out_size)
{
    size_t a = strlen(from), b = strlen(name + skip);

    if (a + b > XATTR_NAME_MAX || a + b + 1 > out_size) {
        return -ERANGE;
    }
    memcpy(out, from, a);
    memcpy(out + a, name + skip, b + 1);
    return 0;
}

int xattrmap_to_host(const struct xattrmap *map, const char *guest, char *out, size_t out_size)
{
    for (unsigned int i = 0; i < map->n; i++) {
        const struct xattrmap_rule *r = &map->r[i];
        size_t plen = strlen(r->guest);

        if (strncmp(guest, r->guest, plen) != 0) {
            continue;
        }
        switch (r->action) {
        case XM_OK:
            return splice("", guest, 0, out, out_size);
        case XM_MAP:
            return splice(r->host, guest, plen, out, out_size);
        case XM_HIDE:
            return -ENODATA;
        case XM_REFUSE:
            return -EPERM;
        }
    }
    return -EPERM;
}

/* Host name -> guest name, or -ENODATA when the guest must not see it. */
static int to_guest(const struct xattrmap *map, const char *host, char *out, size_t out_size)
{
    char back[XATTR_NAME_MAX + 1];

    for (unsigned int i = 0; i < map->n; i++) {
        const struct xattrmap_rule *r = &map->r[i];
        size_t plen = strlen(r->host);

        if (strncmp(host, r->host, plen) != 0) {
            continue;
        }
        if ((r->action != XM_OK && r->action != XM_MAP) ||
            splice(r->action == XM_MAP ? r->guest : "", host, r->action == XM_MAP ? plen : 0,
                   out, out_size) < 0) {
            return -ENODATA;
        }
        /* Listed only if the guest's name leads back to this very name: an
         * earlier rule for the guest's name may send it elsewhere. */
        if (xattrmap_to_host(map, out, back, sizeof(back)) < 0 || strcmp(back, host) != 0) {
            return -ENODATA;
        }
        return 0;
    }
    return -ENODATA;
}

ssize_t xattrmap_list_to_guest(const struct xattrmap *map, const char *list, size_t len,
                               char *out, size_t out_size)
{
    char name[XATTR_NAME_MAX + 1];
    size_t n = 0;

    for (size_t off = 0; off < len;) {
        const char *host = list + off;
        size_t hlen = strnlen(host, len - off);

        off += hlen + 1; /* a last name without its NUL still counts whole */
        if (hlen == 0 || hlen > XATTR_NAME_MAX) {
            continue;
        }
        memcpy(name, host, hlen);
        name[hlen] = '\0';
        char guest[XATTR_NAME_MAX + 1];

        if (to_guest(map, name, guest, sizeof(guest)) < 0) {
            continue;
        }
        size_t glen = strlen(guest) + 1;

        if (n + glen > out_size) {
            return -E2BIG;
        }
        memcpy(out + n, guest, glen);
        n += glen;
    }
    return (ssize_t)n;
}

char *xattrmap_describe(const struct xattrmap *map)
{
    GString *s = g_string_new(NULL);

    for (unsigned int i = 0; i < map->n; i++) {
        const struct xattrmap_rule *r = &map->r[i];

        g_string_append_printf(s, "%s%s %s", i > 0 ? "; " : "", action_names[r->action],
                               r->guest[0] != '\0' ? r->guest : "*");
        if (r->action == XM_MAP) {
            g_string_append_printf(s, " %s", r->host);
        }
    }
    return g_string_free(s, FALSE);
}
