/* xattrmap.h - one export's rules for the guest's extended attribute names,
 * in the spirit of virtiofsd's --xattrmap.
 *
 * Text form (the config value `xattr-map`): rules separated by ';', each a
 * keyword and one or two name prefixes separated by blanks; "*" as a prefix
 * matches every name:
 *
 *   ok PREFIX            names with PREFIX pass through unchanged;
 *   map GUEST HOST       guest name GUEST<rest> is host name HOST<rest>;
 *   hide PREFIX          names with PREFIX do not exist for the guest:
 *                        getxattr/removexattr answer ENODATA, setxattr EPERM;
 *   refuse PREFIX        every access to names with PREFIX answers EPERM.
 *
 * The first rule whose prefix matches decides: on a guest's request the
 * guest-side prefix (the first of map's two), on a host name being listed
 * the host-side prefix (map's second; ok/hide/refuse have one for both).
 * A name no rule matches is refused (EPERM) and never listed.  A host name
 * is listed only under the guest name that leads back to it, so whatever
 * the guest sees in a list it can also get, set and remove.
 *
 * A map is immutable once parsed. */
#ifndef VP_XATTRMAP_H
#define VP_XATTRMAP_H

#include <glib.h>
#include <stddef.h>
#include <sys/types.h>

/* Rules one map holds at most. */
#define XATTRMAP_MAX_RULES 32

struct xattrmap;

/* Parses text.  Returns NULL with *error naming the bad rule and why; the
 * caller adds file, group and key. */
struct xattrmap *xattrmap_parse(const char *text, GError **error);
void xattrmap_free(struct xattrmap *map);

/* Guest name -> host name in out (out_size bytes, at least
 * XATTR_NAME_MAX + 1).  Returns 0, -ENODATA (hidden), -EPERM (refused, or
 * no rule), or -ERANGE (the host name would pass XATTR_NAME_MAX). */
int xattrmap_to_host(const struct xattrmap *map, const char *guest, char *out, size_t out_size);
/* Rewrites a host list (NUL-terminated names, len bytes) into the guest's
 * view in out: hidden names left out, mapped ones renamed.  Returns the
 * new length, or -E2BIG when it would pass out_size. */
ssize_t xattrmap_list_to_guest(const struct xattrmap *map, const char *list, size_t len,
                               char *out, size_t out_size);
/* The rules in canonical text form, for log lines (g_free it). */
char *xattrmap_describe(const struct xattrmap *map);

#endif
