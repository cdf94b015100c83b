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

# The lane scheduler linked with stubs for caps_enter_lane and ops_execute.
check_PROGRAMS += tests/unit/test-lanes
TESTS += tests/unit/test-lanes
tests_unit_test_lanes_SOURCES = tests/unit/test-lanes.c src/lanes.c src/proto.c src/log.c
tests_unit_test_lanes_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_lanes_LDADD = $(LIBEVENT_LIBS) $(GLIB_LIBS) -lpthread
