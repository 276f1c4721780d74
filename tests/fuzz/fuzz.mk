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

