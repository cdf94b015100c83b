dist_man_MANS += doc/virtfs-proxyd.8
EXTRA_DIST += doc/performance.md
