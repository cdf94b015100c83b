/* idmap.c - guest ids to host ids and back (idmap.h has the grammar). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

struct idmap_range {
    uint32_t guest;
    uint32_t host;
    uint32_t count; /* >= 1; guest + count - 1 and host + count - 1 <= IDMAP_MAX_ID */
};

struct idmap {
    unsigned int n;
    bool squash;
    uint32_t squash_host;
    struct idmap_range r[IDMAP_MAX_RANGES];
};

/* A decimal id: digits only, at most max. */
static bool parse_number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool overlaps(uint32_t a, uint32_t a_count, uint32_t b, uint32_t b_count)
{
    return (uint64_t)a < (uint64_t)b + b_count && (uint64_t)b < (uint64_t)a + a_count;
}

static bool parse_range(struct idmap *map, const char *tok, GError **error)
{
    g_auto(GStrv) f = g_strsplit(tok, ":", 0);
    uint64_t guest, host, count;
    struct idmap_range *r;

    if (g_strv_length(f) != 3) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s' is neither GUEST:HOST:COUNT nor squash=HOST", tok);
        return false;
    }
    if (!parse_number(f[0], IDMAP_MAX_ID, &guest) || !parse_number(f[1], IDMAP_MAX_ID, &host) ||
        !parse_number(f[2], (uint64_t)IDMAP_MAX_ID + 1, &count) || count == 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': GUEST and HOST must be numbers from 0 to %u, COUNT from 1 to %llu",
                    tok, IDMAP_MAX_ID, (unsigned long long)IDMAP_MAX_ID + 1);
        return false;
    }
    if (guest + count - 1 > IDMAP_MAX_ID || host + count - 1 > IDMAP_MAX_ID) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': the range passes the largest id %u (4294967295 is no id)", tok,
                    IDMAP_MAX_ID);
        return false;
    }
    for (unsigned int i = 0; i < map->n; i++) {
        const struct idmap_range *o = &map->r[i];
        bool on_guest = overlaps((uint32_t)guest, (uint32_t)count, o->guest, o->count);

        if (on_guest || overlaps((uint32_t)host, (uint32_t)count, o->host, o->count)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "'%s' overlaps %u:%u:%u on the %s side (the map must be invertible)",
                        tok, o->guest, o->host, o->count, on_guest ? "guest" : "host");
            return false;
        }
    }
    if (map->n == IDMAP_MAX_RANGES) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': more than %d ranges", tok, IDMAP_MAX_RANGES);
        return false;
    }
    r = &map->r[map->n++];
    r->guest = (uint32_t)guest;
    r->host = (uint32_t)host;
    r->count = (uint32_t)count;
    return true;
}

static bool parse_squash(struct idmap *map, const char *tok, GError **error)
{
    uint64_t host;

    if (map->squash) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': squash given twice", tok);
        return false;
    }
    if (!parse_number(tok + strlen("squash="), IDMAP_MAX_ID, &host)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s': squash takes a host id from 0 to %u", tok, IDMAP_MAX_ID);
        return false;
    }
    map->squash = true;
    map->squash_host = (uint32_t)host;
    return true;
}

struct idmap *idmap_parse(const char *text, GError **error)
{
    g_auto(GStrv) items = g_strsplit(text, ",", 0);
    struct idmap *map = g_new0(struct idmap, 1);
    bool ok = true;

    if (items[0] == NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "empty map (leave the key out for ids passed through as they are)");
        ok = false;
    }
    for (size_t i = 0; ok && items[i] != NULL; i++) {
        char *tok = g_strstrip(items[i]);

        if (tok[0] == '\0') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "empty item %zu (a map is GUEST:HOST:COUNT or squash=HOST items "
                        "separated by commas)",
                        i + 1);
            ok = false;
        } else if (g_str_has_prefix(tok, "squash=")) {
            ok = parse_squash(map, tok, error);
        } else {
            ok = parse_range(map, tok, error);
        }
    }
    if (!ok) {
        g_free(map);
        return NULL;
    }
    return map;
}

void idmap_free(struct idmap *map)
{
    g_free(map);
}

int idmap_to_host(const struct idmap *map, uint32_t guest, uint32_t *host)
{
    for (unsigned int i = 0; i < map->n; i++) {
        const struct idmap_range *r = &map->r[i];

        if (guest - r->guest < r->count) { /* unsigned: also false below r->guest */
            *host = r->host + (guest - r->guest);
            return 0;
        }
    }
    if (map->squash && guest <= IDMAP_MAX_ID) {
        *host = map->squash_host;
        return 0;
    }
    return -EPERM;
}

uint32_t idmap_to_guest(const struct idmap *map, uint32_t host)
{
    for (unsigned int i = 0; i < map->n; i++) {
        const struct idmap_range *r = &map->r[i];

        if (host - r->host < r->count) {
            return r->guest + (host - r->host);
        }
    }
    return IDMAP_OVERFLOW_ID;
}

char *idmap_describe(const struct idmap *map)
{
    GString *s = g_string_new(NULL);

    for (unsigned int i = 0; i < map->n; i++) {
        g_string_append_printf(s, "%s%u:%u:%u", i > 0 ? "," : "", map->r[i].guest,
                               map->r[i].host, map->r[i].count);
    }
    if (map->squash) {
        g_string_append_printf(s, "%ssquash=%u", map->n > 0 ? "," : "", map->squash_host);
    }
    return g_string_free(s, FALSE);
}
