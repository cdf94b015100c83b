# tests/fuzz: libFuzzer targets, built with ./configure --enable-fuzzing CC=clang.
#   fuzz-proto  proto.c decoders (against an independent model) and encoders
#   fuzz-conn   conn.c/worker.c/lanes.c fed byte streams in arbitrary chunks
#   fuzz-ops    whole requests through ops_execute in a sandboxed export
# `make fuzz` runs each for FUZZ_SECONDS; tests/fuzz/run-fuzz.sh SECONDS is
# the same for CI.  make-corpus.py regenerates the seed corpus.
EXTRA_DIST += \
	tests/fuzz/run-fuzz.sh \
	tests/fuzz/make-corpus.py \
	tests/fuzz/corpus \
	tests/fuzz/fuzz-common.h

FUZZ_SECONDS = 300
FUZZ_TARGETS = tests/fuzz/fuzz-proto tests/fuzz/fuzz-conn tests/fuzz/fuzz-ops

if ENABLE_FUZZING
# The daemon's code again, instrumented for coverage and the sanitizers.
noinst_LIBRARIES += tests/fuzz/libvpfuzz.a
tests_fuzz_libvpfuzz_a_SOURCES = $(src_libvirtfsproxyd_a_SOURCES) \
	tests/fuzz/fuzz-common.c tests/fuzz/fuzz-common.h
tests_fuzz_libvpfuzz_a_CFLAGS = $(src_libvirtfsproxyd_a_CFLAGS) $(FUZZ_CFLAGS)

noinst_PROGRAMS += $(FUZZ_TARGETS)
VP_FUZZ_CFLAGS = $(src_libvirtfsproxyd_a_CFLAGS) $(FUZZ_CFLAGS)
VP_FUZZ_LDADD = tests/fuzz/libvpfuzz.a $(LIBEVENT_LIBS) $(CAPNG_LIBS) $(GLIB_LIBS) $(SECCOMP_LIBS) -lpthread

tests_fuzz_fuzz_proto_SOURCES = tests/fuzz/fuzz-proto.c
tests_fuzz_fuzz_proto_CFLAGS = $(VP_FUZZ_CFLAGS)
tests_fuzz_fuzz_proto_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_proto_LDADD = $(VP_FUZZ_LDADD)

tests_fuzz_fuzz_conn_SOURCES = tests/fuzz/fuzz-conn.c
tests_fuzz_fuzz_conn_CFLAGS = $(VP_FUZZ_CFLAGS)
tests_fuzz_fuzz_conn_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_conn_LDADD = $(VP_FUZZ_LDADD)

tests_fuzz_fuzz_ops_SOURCES = tests/fuzz/fuzz-ops.c
tests_fuzz_fuzz_ops_CFLAGS = $(VP_FUZZ_CFLAGS)
tests_fuzz_fuzz_ops_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_ops_LDADD = $(VP_FUZZ_LDADD)

# make check replays the seed corpus (and past crashes) through every target.
TESTS += tests/fuzz/run-fuzz.sh

fuzz: $(FUZZ_TARGETS)
	$(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS)
else
fuzz:
	@echo "make fuzz: configure with --enable-fuzzing CC=clang first" >&2; exit 1
endif
.PHONY: fuzz
