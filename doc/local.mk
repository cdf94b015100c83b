dist_man_MANS += doc/virtfs-proxyd.8 doc/virtfs-proxyd.conf.5 doc/virtfs-proxyctl.8
EXTRA_DIST += doc/performance.md
