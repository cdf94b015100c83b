# tests/e2e: real QEMU guests whose 9p share is served through -fsdev proxy.
# run-e2e.sh builds (and caches) its guest image with build-image.sh, boots
# guests with boot-guest.sh and prints TAP. SERVER=reference runs it against
# QEMU's virtfs-proxy-helper instead of virtfs-proxyd.
TESTS += tests/e2e/run-e2e.sh
EXTRA_DIST += \
	tests/e2e/run-e2e.sh \
	tests/e2e/build-image.sh \
	tests/e2e/boot-guest.sh \
	tests/e2e/init.sh \
	tests/e2e/e2e-work.c \
	tests/e2e/e2e-socketpair.c \
	tests/e2e/e2e-reaper.c \
	tests/e2e/e2e-probe.c
