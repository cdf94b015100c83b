# tests/system: shell drivers for what only a whole process tree shows:
# make install into a DESTDIR and the installed units, and socket
# activation through systemd-socket-activate.  vp-probe is their client.
check_PROGRAMS += tests/system/vp-probe
tests_system_vp_probe_SOURCES = tests/system/vp-probe.c
tests_system_vp_probe_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_system_vp_probe_LDADD = tests/lib/libpclient.a

TESTS += tests/system/test-install.sh tests/system/test-activation.sh
EXTRA_DIST += tests/system/test-install.sh tests/system/test-activation.sh
