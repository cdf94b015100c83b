# tests/stress: hostile input, heavy load and escape attempts against a real
# daemon over real sockets (TAP via GTest).  Short forms run in make check;
# `make stress` runs the long forms (minutes).
#   test-malformed  PROTOCOL.md §7.5 classes, frame timeout, limits, fd hygiene
#   test-stress     1000 concurrent connections, slow readers, pipelining
#   test-escape     symlink-swap races against every path operation
EXTRA_DIST += tests/stress/lsan.supp tests/ci-sanitizers.sh
check_LIBRARIES += tests/stress/libstress.a
tests_stress_libstress_a_SOURCES = tests/stress/stress-util.c tests/stress/stress-util.h
tests_stress_libstress_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib \
	-I$(top_srcdir)/tests/integration
tests_stress_libstress_a_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)

VS_TESTS = tests/stress/test-malformed tests/stress/test-stress tests/stress/test-escape
check_PROGRAMS += $(VS_TESTS)
TESTS += $(VS_TESTS)

VS_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib -I$(top_srcdir)/tests/stress
VS_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
VS_LDADD = tests/stress/libstress.a tests/integration/libharness.a tests/lib/libpclient.a \
	$(GLIB_LIBS) -lpthread

tests_stress_test_malformed_SOURCES = tests/stress/test-malformed.c
tests_stress_test_malformed_CPPFLAGS = $(VS_CPPFLAGS)
tests_stress_test_malformed_CFLAGS = $(VS_CFLAGS)
tests_stress_test_malformed_LDADD = $(VS_LDADD)

tests_stress_test_stress_SOURCES = tests/stress/test-stress.c
tests_stress_test_stress_CPPFLAGS = $(VS_CPPFLAGS)
tests_stress_test_stress_CFLAGS = $(VS_CFLAGS)
tests_stress_test_stress_LDADD = $(VS_LDADD)

tests_stress_test_escape_SOURCES = tests/stress/test-escape.c
tests_stress_test_escape_CPPFLAGS = $(VS_CPPFLAGS)
tests_stress_test_escape_CFLAGS = $(VS_CFLAGS)
tests_stress_test_escape_LDADD = $(VS_LDADD)

# Long forms: STRESS_LONG=1 makes each test run for minutes.
stress: $(VS_TESTS) src/virtfs-proxyd
	@fail=0; for t in $(VS_TESTS); do \
	    echo "== $$t (long form)"; \
	    STRESS_LONG=1 VIRTFS_PROXYD=$(abs_top_builddir)/src/virtfs-proxyd $$t || fail=1; \
	done; exit $$fail
.PHONY: stress
