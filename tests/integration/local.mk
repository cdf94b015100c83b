# tests/integration: GTest programs driving a real daemon (TAP output).
check_LIBRARIES += tests/integration/libharness.a
tests_integration_libharness_a_SOURCES = \
	tests/integration/harness.c tests/integration/harness.h
tests_integration_libharness_a_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/tests/lib
tests_integration_libharness_a_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)

VT_INTEGRATION_TESTS = \
	tests/integration/test-ops \
	tests/integration/test-conn \
	tests/integration/test-security \
	tests/integration/test-lifecycle \
	tests/integration/test-diff \
	tests/integration/test-reload \
	tests/integration/test-upgrade \
	tests/integration/test-limits \
	tests/integration/test-peers \
	tests/integration/test-sockdir \
	tests/integration/test-exact \
	tests/integration/test-control \
	tests/integration/test-journal \
	tests/integration/test-crash \
	tests/integration/test-maps \
	tests/integration/test-sandbox
check_PROGRAMS += $(VT_INTEGRATION_TESTS)
TESTS += $(VT_INTEGRATION_TESTS)

VT_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib \
	-I$(top_srcdir)/tests/integration
VT_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
VT_LDADD = tests/integration/libharness.a tests/lib/libpclient.a \
	$(GLIB_LIBS) -lpthread

tests_integration_test_ops_SOURCES = tests/integration/test-ops.c
tests_integration_test_ops_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_ops_CFLAGS = $(VT_CFLAGS)
tests_integration_test_ops_LDADD = $(VT_LDADD)

tests_integration_test_conn_SOURCES = tests/integration/test-conn.c
tests_integration_test_conn_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_conn_CFLAGS = $(VT_CFLAGS)
tests_integration_test_conn_LDADD = $(VT_LDADD)

tests_integration_test_security_SOURCES = tests/integration/test-security.c
tests_integration_test_security_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_security_CFLAGS = $(VT_CFLAGS)
tests_integration_test_security_LDADD = $(VT_LDADD)

tests_integration_test_lifecycle_SOURCES = tests/integration/test-lifecycle.c
tests_integration_test_lifecycle_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_lifecycle_CFLAGS = $(VT_CFLAGS)
tests_integration_test_lifecycle_LDADD = $(VT_LDADD)

tests_integration_test_diff_SOURCES = tests/integration/test-diff.c
tests_integration_test_diff_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_diff_CFLAGS = $(VT_CFLAGS)
tests_integration_test_diff_LDADD = $(VT_LDADD)

tests_integration_test_maps_SOURCES = tests/integration/test-maps.c
tests_integration_test_maps_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_maps_CFLAGS = $(VT_CFLAGS)
tests_integration_test_maps_LDADD = $(VT_LDADD)

tests_integration_test_reload_SOURCES = tests/integration/test-reload.c
tests_integration_test_reload_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_reload_CFLAGS = $(VT_CFLAGS)
tests_integration_test_reload_LDADD = $(VT_LDADD)

tests_integration_test_upgrade_SOURCES = tests/integration/test-upgrade.c
tests_integration_test_upgrade_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_upgrade_CFLAGS = $(VT_CFLAGS)
tests_integration_test_upgrade_LDADD = $(VT_LDADD)

tests_integration_test_limits_SOURCES = tests/integration/test-limits.c
tests_integration_test_limits_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_limits_CFLAGS = $(VT_CFLAGS)
tests_integration_test_limits_LDADD = $(VT_LDADD)

tests_integration_test_peers_SOURCES = tests/integration/test-peers.c
tests_integration_test_peers_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_peers_CFLAGS = $(VT_CFLAGS)
tests_integration_test_peers_LDADD = $(VT_LDADD)

tests_integration_test_sockdir_SOURCES = tests/integration/test-sockdir.c
tests_integration_test_sockdir_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_sockdir_CFLAGS = $(VT_CFLAGS)
tests_integration_test_sockdir_LDADD = $(VT_LDADD)

tests_integration_test_exact_SOURCES = tests/integration/test-exact.c
tests_integration_test_exact_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_exact_CFLAGS = $(VT_CFLAGS)
tests_integration_test_exact_LDADD = $(VT_LDADD)

tests_integration_test_control_SOURCES = tests/integration/test-control.c
tests_integration_test_control_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_control_CFLAGS = $(VT_CFLAGS) $(JSON_GLIB_CFLAGS)
tests_integration_test_control_LDADD = $(VT_LDADD) $(JSON_GLIB_LIBS)

tests_integration_test_journal_SOURCES = tests/integration/test-journal.c
tests_integration_test_journal_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_journal_CFLAGS = $(VT_CFLAGS)
tests_integration_test_journal_LDADD = $(VT_LDADD)

tests_integration_test_crash_SOURCES = tests/integration/test-crash.c
tests_integration_test_crash_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_crash_CFLAGS = $(VT_CFLAGS)
tests_integration_test_crash_LDADD = $(VT_LDADD)

# The long forms of test-crash: 10,000 kills, and the recovery figures for
# doc/performance.md (1, 64 and 1,000 connections, 100 kills each).
crash-long: tests/integration/test-crash src/virtfs-proxyd
	$(TESTS_ENVIRONMENT) CRASH_KILLS=$${CRASH_KILLS:-10000} \
		tests/integration/test-crash -p /crash/kill-under-load
crash-figures: tests/integration/test-crash src/virtfs-proxyd
	$(TESTS_ENVIRONMENT) CRASH_FIGURES=1 tests/integration/test-crash -p /crash/figures
.PHONY: crash-long crash-figures

tests_integration_test_sandbox_SOURCES = tests/integration/test-sandbox.c
tests_integration_test_sandbox_CPPFLAGS = $(VT_CPPFLAGS)
tests_integration_test_sandbox_CFLAGS = $(VT_CFLAGS)
tests_integration_test_sandbox_LDADD = $(VT_LDADD)
