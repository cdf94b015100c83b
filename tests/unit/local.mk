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
tests_unit_test_settings_LDADD = src/libvirtfsproxyd.a $(GLIB_LIBS)

# ops_execute against F_SETLEASE leases: links the daemon's ops.c directly.
check_PROGRAMS += tests/unit/test-ops-nonblock
TESTS += tests/unit/test-ops-nonblock
tests_unit_test_ops_nonblock_SOURCES = tests/unit/test-ops-nonblock.c
tests_unit_test_ops_nonblock_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_ops_nonblock_LDADD = $(VP_LIBS)
