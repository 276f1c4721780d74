# Built-in test guests: freestanding x86-64 ELF programs, linked at 1 MiB and
# embedded in kvmsnap by blob.S. A guest NAME is tools/guests/NAME.c plus the
# shared runtime (crt0.S enters ring 3, rt.c has the ring-3 helpers).

GUESTS		:= hello dirtier pagewriter
GUEST_CFLAGS	:= -std=gnu11 -O2 -g -ffreestanding -fno-builtin -nostdlib -nostdinc \
		   -isystem $(shell $(CC) -print-file-name=include) \
		   -fno-pic -fno-pie -fno-stack-protector -fcf-protection=none \
		   -mno-red-zone -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only \
		   -fno-asynchronous-unwind-tables \
		   -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Ivmm -Itools/guests
GUEST_RT_SRCS	:= tools/guests/crt0.S $(filter-out $(GUESTS:%=tools/guests/%.c),$(wildcard tools/guests/*.c))
GUEST_RT_OBJS	:= $(patsubst tools/guests/%,$(O)/guests/%.o,$(GUEST_RT_SRCS))
GUEST_ELFS	:= $(GUESTS:%=$(O)/guests/%.elf)
GUEST_BLOB_OBJ	:= $(O)/guests/blob.o

$(O)/guests/%.c.o: tools/guests/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTCC $<")
	$(Q)$(CC) $(GUEST_CFLAGS) -MMD -MP -c $< -o $@

$(O)/guests/%.S.o: tools/guests/%.S
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTAS $<")
	$(Q)$(CC) $(GUEST_CFLAGS) -MMD -MP -c $< -o $@

$(O)/guests/%.elf: $(O)/guests/%.c.o $(GUEST_RT_OBJS) tools/guests/guest.ld
	@$(if $(Q),echo "  GUESTLD $@")
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack -T tools/guests/guest.ld \
		-o $@ $(GUEST_RT_OBJS) $<

# The blob defines guest_NAME_start/_end for each guest (see vmm/guests.c).
$(GUEST_BLOB_OBJ): tools/guests/blob.S $(GUEST_ELFS)
	@$(if $(Q),echo "  GUESTAS $<")
	$(Q)$(CC) -c -Wa,-I$(O)/guests $< -o $@

# The dirtier again, as a Multiboot v1 kernel with the a.out kludge, for
# QEMU and `kvmsnap run --kernel` alike: the same objects behind a 32-bit
# entry (tools/guests/multiboot/). Not embedded; `make` builds it.
GUEST_MB_OBJS	:= $(O)/guests/multiboot/head.S.o $(O)/guests/multiboot/setup.c.o
GUEST_MB_ELF	:= $(O)/guests/dirtier-mb.elf

$(GUEST_MB_ELF): $(GUEST_MB_OBJS) $(GUEST_RT_OBJS) $(O)/guests/dirtier.c.o \
		 tools/guests/multiboot/mb.ld
	@$(if $(Q),echo "  GUESTLD $@")
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T tools/guests/multiboot/mb.ld -o $@ $(GUEST_MB_OBJS) $(GUEST_RT_OBJS) \
		$(O)/guests/dirtier.c.o

all: $(GUEST_MB_ELF)
