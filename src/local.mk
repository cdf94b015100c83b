# The daemon is built from a convenience library so that tests and fuzz
# targets link exactly the code that ships.
noinst_LIBRARIES += src/libvirtfsproxyd.a
src_libvirtfsproxyd_a_SOURCES = \
	src/caps.c src/caps.h \
	src/control.c src/control.h \
	src/report.c src/report.h \
	src/sdactivate.c src/sdactivate.h \
	src/stats.c src/stats.h \
	src/settings.c src/settings.h \
	src/peers.c src/peers.h \
	src/tally.c src/tally.h \
	src/service.c src/service.h \
	src/upgrade.c src/upgrade.h \
	src/conn.c src/conn.h src/fdpass.h \
	src/lanes.c src/lanes.h \
	src/listener.c src/listener.h \
	src/log.c src/log.h \
	src/ops.c src/ops.h \
	src/idmap.c src/idmap.h \
	src/xattrmap.c src/xattrmap.h \
	src/policy.c src/policy.h \
	src/progress.c src/progress.h \
	src/proto.c src/proto.h \
	src/registry.c src/registry.h \
	src/sandbox.c src/sandbox.h \
	src/supervisor.c src/supervisor.h \
	src/worker.c src/worker.h
src_libvirtfsproxyd_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(CAPNG_CFLAGS) $(GLIB_CFLAGS) \
	$(SECCOMP_CFLAGS)

VP_LIBS = src/libvirtfsproxyd.a $(LIBEVENT_LIBS) $(CAPNG_LIBS) $(GLIB_LIBS) $(SECCOMP_LIBS) \
	-lpthread

sbin_PROGRAMS += src/virtfs-proxyd
src_virtfs_proxyd_SOURCES = src/main.c
src_virtfs_proxyd_CFLAGS = $(src_libvirtfsproxyd_a_CFLAGS)
src_virtfs_proxyd_LDADD = $(VP_LIBS)

# The control client: a glib program, nothing of the daemon but two headers.
sbin_PROGRAMS += src/virtfs-proxyctl
src_virtfs_proxyctl_SOURCES = src/virtfs-proxyctl.c
src_virtfs_proxyctl_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
src_virtfs_proxyctl_LDADD = $(GLIB_LIBS)
