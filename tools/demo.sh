#!/bin/sh
# `make demo`: run the dirtier test guest, take a live snapshot of it into a
# preallocated image while it keeps running, and show the image.
# Usage: tools/demo.sh [BUILD_DIR]
set -eu
build=${1:-build}
kvmsnap=$build/kvmsnap
dir=$build/demo
sock=$dir/vm.sock
img=$dir/vm.img
mem=256M
vcpus=2

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -e /dev/kvm ] || { echo "demo: /dev/kvm is missing: KVM is not available here" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"

step "A built-in guest: hello (exit status 1 means code 0)"
status=0
"$kvmsnap" run --guest hello --serial stdio || status=$?
echo "exit status $status"

step "Start the dirtier: 2 vCPUs rewriting 64 MiB of a $mem guest, stamping every page"
"$kvmsnap" run --guest dirtier:ws=64M --mem $mem --vcpus $vcpus --control "$sock" \
	--serial "$dir/serial.log" &
vm=$!
trap 'kill $vm 2>/dev/null || true' EXIT
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.5
"$kvmsnap" ctl "$sock" status | head -6

step "Size and preallocate the image (one fixed slot per guest page)"
"$kvmsnap" image size --mem $mem --vcpus $vcpus
"$kvmsnap" image create "$img" --mem $mem --vcpus $vcpus
ls -l "$img"

step "Guest progress before the snapshot"
"$kvmsnap" ctl "$sock" stats | head -2

step "Live snapshot while the guest runs"
"$kvmsnap" snapshot "$img" --control "$sock"

step "The guest continued: progress after the snapshot"
sleep 0.5
"$kvmsnap" ctl "$sock" stats | head -2

step "A second snapshot, incremental: only the pages changed since the first, over their same slots"
"$kvmsnap" snapshot "$img" --control "$sock" --incremental | sed -n '1p;$p'
echo "(the image keeps its size; the generation goes up by one)"
ls -l "$img"

step "The image"
"$kvmsnap" image info "$img" | head -12
"$kvmsnap" image verify --deep "$img"

step "The guest's VGA text screen, as stored in the image"
"$kvmsnap" image screen "$img" | head -4

step "Stop the original guest"
"$kvmsnap" ctl "$sock" quit
wait $vm || true
trap - EXIT

step "Restore the image (lazily: memory loads on first touch), paused"
sock2=$dir/restored.sock
"$kvmsnap" restore "$img" --lazy --paused --control "$sock2" --serial "$dir/serial-restored.log" &
vm2=$!
trap 'kill $vm2 2>/dev/null || true' EXIT
i=0
while [ ! -S "$sock2" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$kvmsnap" ctl "$sock2" status | head -2

step "Exactness: the restored memory's digests equal those the snapshot recorded"
echo "restored VM (paused):"
"$kvmsnap" ctl "$sock2" digest | grep -v '^algorithm\|^paused'
echo "image footer:"
"$kvmsnap" image info "$img" | sed -n '/digest/,$p' | grep -E 'pc\.ram|vga\.vram|pc\.bios|acpi\.tables' | tail -4

step "Resume: the dirtier goes on from its saved stamps, checking each page"
"$kvmsnap" ctl "$sock2" stats | head -1
"$kvmsnap" ctl "$sock2" resume
sleep 1
"$kvmsnap" ctl "$sock2" stats | head -2
"$kvmsnap" ctl "$sock2" status | head -1

step "Stop the restored guest"
"$kvmsnap" ctl "$sock2" quit
status=0
wait $vm2 || status=$?
trap - EXIT
echo "restored VM exit status $status (0: quit; 6 would mean a failed stamp check)"
