/* idmap.h - one export's map between the guest's user (or group) ids and
 * the host's.
 *
 * Text form (a config value, `uid-map` / `gid-map`): items separated by
 * commas, blanks around them ignored:
 *
 *   GUEST:HOST:COUNT   guest ids GUEST..GUEST+COUNT-1 are host ids
 *                      HOST..HOST+COUNT-1, and back;
 *   squash=HOST        every guest id no range covers is host id HOST
 *                      (at most one; without it such ids are refused).
 *
 * Ranges may not overlap on the guest side nor on the host side, so every
 * range is invertible; a squash target may be a range's host id too
 * ("0:1000:1, squash=1000": everything the guest does lands as host 1000,
 * and host 1000 shows as guest 0).  Ids are 0 .. 2^32-2: (uint32_t)-1 is
 * "no id" on the wire and never part of a range.
 *
 * A map is immutable once parsed, so any thread may read it without a
 * lock. */
#ifndef VP_IDMAP_H
#define VP_IDMAP_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* What a host id without a guest id looks like in a stat reply (the
 * kernel's overflowuid / overflowgid). */
#define IDMAP_OVERFLOW_ID 65534u
/* The largest id: (uint32_t)-1 means "none". */
#define IDMAP_MAX_ID 0xfffffffeu
/* Ranges one map holds at most: lookups are a short scan. */
#define IDMAP_MAX_RANGES 64

struct idmap;

/* Parses text.  Returns NULL with *error naming the bad token and why; the
 * caller adds file, group and key. */
struct idmap *idmap_parse(const char *text, GError **error);
void idmap_free(struct idmap *map);

/* Guest id -> host id: 0, or -EPERM when no range covers it and there is
 * no squash. */
int idmap_to_host(const struct idmap *map, uint32_t guest, uint32_t *host);
/* Host id -> guest id; IDMAP_OVERFLOW_ID when no range covers it. */
uint32_t idmap_to_guest(const struct idmap *map, uint32_t host);
/* The map in its canonical text form, for log lines (g_free it). */
char *idmap_describe(const struct idmap *map);

#endif
