# tests/lib: the proxy-protocol client library shared by the integration,
# stress and benchmark code.
check_LIBRARIES += tests/lib/libpclient.a
tests_lib_libpclient_a_SOURCES = tests/lib/pclient.c tests/lib/pclient.h \
	tests/lib/procinfo.c tests/lib/procinfo.h
