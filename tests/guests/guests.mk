# Test kernels that kvmsnap did not build into itself: Multiboot and ELF64
# kernels written the way a user would write them. Each lands in
# $(O)/tests/guests/ and is listed in TEST_KERNELS.
TEST_KERNELS :=
