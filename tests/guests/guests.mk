# Test kernels that kvmsnap did not build into itself: Multiboot and ELF64
# kernels written the way a user would write them. Each lands in
# $(O)/tests/guests/ and is listed in TEST_KERNELS.
TEST_KERNELS :=

# mbhello: a 32-bit Multiboot v1 kernel, built as its author would build it.
MBHELLO_CFLAGS	:= -m32 -ffreestanding -fno-pic -fno-stack-protector -nostdlib -O2 \
		   -fno-asynchronous-unwind-tables -fcf-protection=none \
		   -Wall -Wextra -Werror -Wmissing-prototypes
MBHELLO_OBJS	:= $(O)/tests/guests/mbhello/boot.o $(O)/tests/guests/mbhello/kmain.o

# Explicit rules: the generic $(O)/%.o and $(O)/tests/% rules must not apply.
$(O)/tests/guests/mbhello/boot.o: tests/guests/mbhello/boot.S
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTAS $<")
	$(Q)$(CC) -m32 -c $< -o $@

$(O)/tests/guests/mbhello/kmain.o: tests/guests/mbhello/kmain.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTCC $<")
	$(Q)$(CC) $(MBHELLO_CFLAGS) -c $< -o $@

$(O)/tests/guests/mbhello.elf: $(MBHELLO_OBJS) tests/guests/mbhello/linker.ld
	@$(if $(Q),echo "  GUESTLD $@")
	$(Q)$(LD) -m elf_i386 -T tests/guests/mbhello/linker.ld -z noexecstack -o $@ $(MBHELLO_OBJS)

TEST_KERNELS	+= $(O)/tests/guests/mbhello.elf

# porthammer: a hostile Multiboot v1 kernel (random port, string I/O and
# MMIO accesses), built with the same flags as mbhello.
PORTHAMMER_OBJS	:= $(O)/tests/guests/porthammer/boot.o $(O)/tests/guests/porthammer/kmain.o

$(O)/tests/guests/porthammer/boot.o: tests/guests/porthammer/boot.S
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTAS $<")
	$(Q)$(CC) -m32 -c $< -o $@

$(O)/tests/guests/porthammer/kmain.o: tests/guests/porthammer/kmain.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTCC $<")
	$(Q)$(CC) $(MBHELLO_CFLAGS) -c $< -o $@

$(O)/tests/guests/porthammer.elf: $(PORTHAMMER_OBJS) tests/guests/porthammer/linker.ld
	@$(if $(Q),echo "  GUESTLD $@")
	$(Q)$(LD) -m elf_i386 -T tests/guests/porthammer/linker.ld -z noexecstack -o $@ $(PORTHAMMER_OBJS)

TEST_KERNELS	+= $(O)/tests/guests/porthammer.elf
