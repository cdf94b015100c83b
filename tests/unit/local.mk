# Unit tests: pure code, no daemon, no root needed.
check_PROGRAMS += tests/unit/test-proto
TESTS += tests/unit/test-proto
tests_unit_test_proto_SOURCES = tests/unit/test-proto.c
tests_unit_test_proto_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_proto_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS)

check_PROGRAMS += tests/unit/test-settings
TESTS += tests/unit/test-settings
tests_unit_test_settings_SOURCES = tests/unit/test-settings.c
tests_unit_test_settings_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_settings_LDADD = $(VP_LIBS)

# ops_execute against F_SETLEASE leases: links the daemon's ops.c directly.
check_PROGRAMS += tests/unit/test-ops-nonblock
TESTS += tests/unit/test-ops-nonblock
tests_unit_test_ops_nonblock_SOURCES = tests/unit/test-ops-nonblock.c
tests_unit_test_ops_nonblock_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_ops_nonblock_LDADD = $(VP_LIBS)

check_PROGRAMS += tests/unit/test-log
TESTS += tests/unit/test-log
tests_unit_test_log_SOURCES = tests/unit/test-log.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_log_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS) -lpthread

check_PROGRAMS += tests/unit/test-peers
TESTS += tests/unit/test-peers
tests_unit_test_peers_SOURCES = tests/unit/test-peers.c
tests_unit_test_peers_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_peers_LDADD = $(VP_LIBS)

check_PROGRAMS += tests/unit/test-tally
TESTS += tests/unit/test-tally
tests_unit_test_tally_SOURCES = tests/unit/test-tally.c
tests_unit_test_tally_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_tally_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS) -lpthread

# Needs root (skips otherwise): a listener in a scratch directory.
check_PROGRAMS += tests/unit/test-listener
TESTS += tests/unit/test-listener
tests_unit_test_listener_SOURCES = tests/unit/test-listener.c
tests_unit_test_listener_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_listener_LDADD = src/libvirtfsproxyd.a $(LIBEVENT_LIBS) $(GLIB_LIBS) -lpthread

# The lane scheduler linked with stubs for caps_enter_lane and ops_execute.
check_PROGRAMS += tests/unit/test-lanes
TESTS += tests/unit/test-lanes
tests_unit_test_lanes_SOURCES = tests/unit/test-lanes.c src/lanes.c src/proto.c src/log.c
tests_unit_test_lanes_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_lanes_LDADD = $(LIBEVENT_LIBS) $(GLIB_LIBS) -lpthread

check_PROGRAMS += tests/unit/test-stats
TESTS += tests/unit/test-stats
tests_unit_test_stats_SOURCES = tests/unit/test-stats.c
tests_unit_test_stats_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_stats_LDADD = $(VP_LIBS)

# Id maps (idmap.c) and the policy layer applying them (policy.c).
check_PROGRAMS += tests/unit/test-idmap
TESTS += tests/unit/test-idmap
tests_unit_test_idmap_SOURCES = tests/unit/test-idmap.c
tests_unit_test_idmap_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_idmap_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS) -lpthread

# Xattr name maps (xattrmap.c) and the rewritten lists.
check_PROGRAMS += tests/unit/test-xattrmap
TESTS += tests/unit/test-xattrmap
tests_unit_test_xattrmap_SOURCES = tests/unit/test-xattrmap.c
tests_unit_test_xattrmap_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_xattrmap_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS) -lpthread
