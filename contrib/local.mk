# contrib: systemd units and the example configuration, installed.
#
# Units go where pkg-config's systemd says (--with-systemdsystemunitdir=DIR
# overrides, =no installs none).  The service units name the installed
# programs and configuration, so they are made from .in files at build time.
EXTRA_DIST += \
	contrib/systemd/virtfs-proxyd.service.in \
	contrib/systemd/virtfs-proxyd@.service.in \
	contrib/debian-packages.txt \
	contrib/install-deps.sh \
	contrib/quickstart.sh

exampledir = $(docdir)/examples
dist_example_DATA = contrib/virtfs-proxyd.conf.example

VP_UNITS = contrib/systemd/virtfs-proxyd.service contrib/systemd/virtfs-proxyd@.service
VP_SOCKET_UNITS = contrib/systemd/virtfs-proxyd.socket contrib/systemd/virtfs-proxyd-export@.socket

if HAVE_SYSTEMD
systemdsystemunit_DATA = $(VP_UNITS)
dist_systemdsystemunit_DATA = $(VP_SOCKET_UNITS)
else
EXTRA_DIST += $(VP_SOCKET_UNITS)
endif
CLEANFILES += $(VP_UNITS)

vp_edit = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'

contrib/systemd/virtfs-proxyd.service: $(srcdir)/contrib/systemd/virtfs-proxyd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(vp_edit) $(srcdir)/contrib/systemd/virtfs-proxyd.service.in >$@.tmp && mv $@.tmp $@

contrib/systemd/virtfs-proxyd@.service: $(srcdir)/contrib/systemd/virtfs-proxyd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(vp_edit) $(srcdir)/contrib/systemd/virtfs-proxyd@.service.in >$@.tmp && mv $@.tmp $@
