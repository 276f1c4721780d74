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
CFLAGS	:= -std=gnu11 -O2 -g -D_GNU_SOURCE $(WARNINGS) -I. -Ivmm -MMD -MP
LDLIBS	:= -lpthread -lcap -ljson-c -lxxhash -lblkid -luring

ifneq ($(SANITIZE),)
CFLAGS	+= -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Every .c under vmm/ and snapshot/ goes into the library but the CLI entry.
LIB_SRCS  := $(filter-out vmm/main.c,$(shell find vmm snapshot -name '*.c' 2>/dev/null | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(O)/%.o)
LIB	  := $(O)/libkvmsnap.a
BIN	  := $(O)/kvmsnap

all: $(BIN)

# Built-in guests (freestanding, embedded in the binary) and test kernels.
include tools/guests/guests.mk
include tests/guests/guests.mk

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(O)/vmm/main.o $(LIB) $(GUEST_BLOB_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(O)/vmm/main.o $(GUEST_BLOB_OBJ) $(LIB) $(LDLIBS)

# Tests: one program per tests/{unit,kvm}/test_*.c, linked with the harness.
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c tests/kvm/test_*.c))
TEST_BINS := $(TEST_SRCS:%.c=$(O)/%)
HARNESS	  := $(O)/tests/harness.o

$(O)/tests/%: $(O)/tests/%.o $(HARNESS) $(LIB) $(GUEST_BLOB_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(HARNESS) $(GUEST_BLOB_OBJ) $(LIB) $(LDLIBS)

tests: $(BIN) $(TEST_BINS) $(TEST_KERNELS)

deps:
	$(Q)tools/install-deps

check: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)KVMSNAP_NESTED=$(NESTED) tests/run-tests $(O)

demo: $(BIN)
	$(Q)tools/demo.sh $(O)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(O)

.PHONY: all tests deps check demo format clean
.SECONDARY:

-include $(shell find $(O) -name '*.d' 2>/dev/null)
