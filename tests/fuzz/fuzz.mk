# libFuzzer targets (Documentation/fuzzing.md): one per tests/fuzz/fuzz_*.c,
# built with clang and -fsanitize=fuzzer,address,undefined into $(FUZZ_O),
# a tree of its own beside the gcc build: a sub-make builds the libraries
# there with CC=clang SANITIZE=fuzzer-no-link,address,undefined.
#
#   make fuzz [FUZZ_SECONDS=60]   build every target, run each on its corpus
#   make fuzz-build               only build them
#   make fuzz-corpus              write the seeds again (tests/fuzz/corpus/)

FUZZ_CC		?= clang
FUZZ_O		?= build-fuzz
FUZZ_SECONDS	?= 60
FUZZ_SANITIZE	:= address,undefined
FUZZ_TARGETS	:= $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

fuzz-build:
	$(Q)$(MAKE) --no-print-directory O=$(FUZZ_O) CC=$(FUZZ_CC) \
		SANITIZE=fuzzer-no-link,$(FUZZ_SANITIZE) fuzz-bins

fuzz: fuzz-build
	$(Q)tests/fuzz/run-fuzz $(FUZZ_O) $(FUZZ_SECONDS)

fuzz-corpus: fuzz-build
	$(Q)rm -rf tests/fuzz/corpus && $(FUZZ_O)/fuzz/gen-corpus tests/fuzz/corpus

# Only in the sub-make, where $(O) is $(FUZZ_O) and $(CC) is clang.
fuzz-bins: $(FUZZ_TARGETS:%=$(O)/fuzz/fuzz_%) $(O)/fuzz/gen-corpus

$(O)/fuzz/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $@ $< $(LIBS) $(LDLIBS)

$(O)/fuzz/gen-corpus: $(O)/tests/fuzz/gen-corpus.o $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

.PHONY: fuzz fuzz-build fuzz-bins fuzz-corpus

# make check: when clang can link a libFuzzer program, build the targets and
# put a test program into $(O)/tests/unit that runs each for
# FUZZ_CHECK_SECONDS; tests/run-tests counts it like any other (one test
# per target). clang is not installed for it (some 260 MB); without it,
# one line says how to fuzz.
FUZZ_CHECK_SECONDS ?= 3
FUZZ_PROBE := printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	$(FUZZ_CC) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -x c - -o /dev/null >/dev/null 2>&1

fuzz-check:
	$(Q)rm -f $(O)/tests/unit/test_fuzz
	$(Q)if $(FUZZ_PROBE); then \
		$(MAKE) --no-print-directory -s fuzz-build && mkdir -p $(O)/tests/unit && \
		printf '#!/bin/sh\nexec "%s/tests/fuzz/run-fuzz" --tap "%s" %s\n' \
			"$(CURDIR)" "$(abspath $(FUZZ_O))" "$(FUZZ_CHECK_SECONDS)" \
			>$(O)/tests/unit/test_fuzz && chmod +x $(O)/tests/unit/test_fuzz; \
	else \
		echo "fuzz: skipped, $(FUZZ_CC) with libFuzzer is not installed" \
		     "(apt-get install clang libclang-rt-dev; then make fuzz)"; \
	fi

.PHONY: fuzz-check
