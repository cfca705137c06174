#!/bin/sh
# byte_costs as a one-vCPU guest sees it in system mode (q35, TCG, NVMe):
#   loader/examples/byte_costs_guest.sh BUNDLE.fw [CPUS]
# Builds the example for musl, makes it the `init` of a small initramfs with
# the bundle beside it, boots the loader kernel (scripts/build-kernel: cached)
# and prints the table.
set -eu
bundle=$1
cpus=${2:-1}
cd "$(dirname "$0")/../.."
cargo build --release -q --target x86_64-unknown-linux-musl -p loader --example byte_costs
kernel=$(scripts/build-kernel | sed -n 1p)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
cp target/x86_64-unknown-linux-musl/release/examples/byte_costs "$work/root/init"
cp "$bundle" "$work/root/install.fw"
(cd "$work/root" && find . | cpio -o -H newc 2>/dev/null) >"$work/costs.cpio"
truncate -s 512M "$work/disk.img"
timeout 600 qemu-system-x86_64 -machine q35 -m 1536 -smp "$cpus" -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/costs.cpio" -append "console=ttyS0 quiet panic=-1" \
    -drive "file=$work/disk.img,format=raw,if=none,id=d0" -device nvme,drive=d0,serial=costs \
    </dev/null 2>&1 | tr -d '\r' | sed -n "/MB uncompressed/,/Power down/p" | sed "s/^.*[^0-9.]\([0-9.]* MB uncompressed\)/\1/" | grep -v "Power down"
