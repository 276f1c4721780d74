# kvmsnap: `make` builds build/kvmsnap; `make check` installs what it needs,
# builds and runs every test; `make demo` runs the main job with defaults.
#
#   make SANITIZE=address,undefined check    the same under ASan and UBSan
#   make V=1                                 show the commands
#   make check NESTED=1                      run the KVM tests in a nested VM
#                                            (tools/nested; also when CI=true
#                                            and /dev/kvm is missing)

CC	?= cc
LD	?= ld
O	:= build
SANITIZE ?=
NESTED	?=

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	    -Wpointer-arith -Wundef -Wvla -Wformat=2 -Wno-format-nonliteral -Wcast-align \
	    -Wwrite-strings -Wmissing-declarations -Wimplicit-fallthrough
# lib/ and snapshot/ see only the tree root: snapshot/ cannot include vmm/.
BASE_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE $(WARNINGS) -I. -MMD -MP
CFLAGS	:= $(BASE_CFLAGS) -Ivmm
SNAP_LDLIBS := -lpthread -lxxhash -lblkid -luring -lnbd
LDLIBS	:= $(SNAP_LDLIBS) -lcap -ljson-c -lseccomp -llzma -lz -lzstd

ifneq ($(SANITIZE),)
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
# KVMSNAP_SANITIZE: the lock-down leaves what the sanitizers need at exit.
CFLAGS	+= -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
	   -DKVMSNAP_SANITIZE
LDFLAGS	+= -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Three libraries, each depending only on those after it:
#   libvmm.a (vmm/ but the CLI entry)  ->  libsnapshot.a (snapshot/)  ->  libbase.a (lib/)
BASE_SRCS := $(sort $(wildcard lib/*.c))
SNAP_SRCS := $(sort $(wildcard snapshot/*.c))
VMM_SRCS  := $(filter-out vmm/main.c,$(shell find vmm -name '*.c' 2>/dev/null | sort))
BASE_LIB  := $(O)/libbase.a
SNAP_LIB  := $(O)/libsnapshot.a
VMM_LIB	  := $(O)/libvmm.a
LIBS	  := $(VMM_LIB) $(SNAP_LIB) $(BASE_LIB)
BIN	  := $(O)/kvmsnap

all: $(BIN)

# Built-in guests (freestanding, embedded in the binary) and test kernels.
include tools/guests/guests.mk
include tests/guests/guests.mk
include tests/fuzz/fuzz.mk

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Without -Ivmm: a vmm/ header included by mistake fails the build.
$(O)/lib/%.o $(O)/snapshot/%.o: CFLAGS = $(BASE_CFLAGS)
# XXH3's AVX2 loop, called only where the CPU has AVX2 (snapshot/pagehash.h).
$(O)/snapshot/pagehash-avx2.o: CFLAGS = $(BASE_CFLAGS) -mavx2

$(BASE_LIB): $(BASE_SRCS:%.c=$(O)/%.o)
$(SNAP_LIB): $(SNAP_SRCS:%.c=$(O)/%.o)
$(VMM_LIB): $(VMM_SRCS:%.c=$(O)/%.o)
$(BASE_LIB) $(SNAP_LIB) $(VMM_LIB):
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(O)/vmm/main.o $(LIBS) $(GUEST_BLOB_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(O)/vmm/main.o $(GUEST_BLOB_OBJ) $(LIBS) $(LDLIBS)

# Tests: one program per tests/{unit,kvm}/test_*.c, linked with the harness
# and the test library (tests/lib/, built once into libtest.a).
# The snapshot library's own tests build without -Ivmm and link it alone,
# without libtest: parts of it use vmm/.
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c tests/kvm/test_*.c))
TEST_BINS := $(TEST_SRCS:%.c=$(O)/%)
SNAP_TESTS := $(O)/tests/unit/test_snap_format $(O)/tests/unit/test_snap_writer \
	      $(O)/tests/unit/test_snap_target $(O)/tests/unit/test_snap_stream \
	      $(O)/tests/unit/test_snap_slots $(O)/tests/unit/test_snap_throttle \
	      $(O)/tests/unit/test_snap_append $(O)/tests/unit/test_snap_nbd
HARNESS	  := $(O)/tests/harness.o
TEST_LIB_SRCS := $(sort $(wildcard tests/lib/*.c))
TEST_LIB  := $(O)/tests/lib/libtest.a

$(TEST_LIB): $(TEST_LIB_SRCS:%.c=$(O)/%.o)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/tests/%: $(O)/tests/%.o $(HARNESS) $(TEST_LIB) $(LIBS) $(GUEST_BLOB_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(HARNESS) $(TEST_LIB) $(GUEST_BLOB_OBJ) $(LIBS) $(LDLIBS)

# The fake VM and the nbdkit runner (tests/lib/) are for them too: built without -Ivmm.
FAKE_VM	  := $(O)/tests/lib/fakevm.o $(O)/tests/lib/nbdkit.o
$(SNAP_TESTS:%=%.o) $(FAKE_VM): CFLAGS = $(BASE_CFLAGS)
$(SNAP_TESTS): $(O)/tests/unit/%: $(O)/tests/unit/%.o $(HARNESS) $(FAKE_VM) $(SNAP_LIB) $(BASE_LIB)
	@$(if $(Q),echo "  LINK    $@ (snapshot library alone)")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(HARNESS) $(FAKE_VM) $(SNAP_LIB) $(BASE_LIB) $(SNAP_LDLIBS)

# Benchmark programs that need the VMM's insides (tools/bench/*.c).
TOOL_BINS := $(patsubst %.c,$(O)/%,$(wildcard tools/bench/*.c))
$(TOOL_BINS): $(O)/tools/bench/%: $(O)/tools/bench/%.o $(LIBS) $(GUEST_BLOB_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(GUEST_BLOB_OBJ) $(LIBS) $(LDLIBS)
tools: $(TOOL_BINS)

tests: $(BIN) $(GUEST_MB_ELF) $(TEST_BINS) $(TEST_KERNELS) $(TOOL_BINS)

deps:
	$(Q)tools/install-deps

check: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)$(MAKE) --no-print-directory fuzz-check
	$(Q)KVMSNAP_NESTED=$(NESTED) tests/run-tests $(O)

demo: $(BIN)
	$(Q)tools/demo.sh $(O)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(O) $(FUZZ_O)

.PHONY: all tests tools deps check demo format clean
.SECONDARY:

-include $(shell find $(O) -name '*.d' 2>/dev/null)
