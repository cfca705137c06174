#!/usr/bin/env bash
# The first install under UEFI, by hand: OVMF -> QEMU's EFI iPXE ROM ->
# boot.ipxe -> kernel + initramfs + the bundle wrapped in its own cpio ->
# install -> reset -> OVMF boots the disk (GRUB x86_64-efi from
# EFI/BOOT/BOOTX64.EFI) -> the installed system reports slot a, 1.0.0.
#
#   qemu-tests/uefi-boot.sh      # KEEP=1 keeps the work directory
#
# disk (256 MiB raw, virtio, /dev/vda):
#   before: [ blank ........................................................ ]
#   after:  [MBR|GRUB core|env a|boot FAT: grub/, EFI/BOOT/BOOTX64.EFI|A: v1|B: empty|data]
#
# One QEMU process (lib.sh vm_start with VM_FIRMWARE=uefi):
#
#   qemu-system-x86_64 -accel tcg -m 512 -nographic -serial mon:stdio \
#     -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
#     -drive if=pflash,format=raw,unit=1,file=WORK/ovmf-vars.fd \
#     -drive file=WORK/uefi-first-install.img,format=raw,if=none,id=disk \
#     -device virtio-blk-pci,drive=disk,bootindex=1 \
#     -netdev user,id=n,hostfwd=tcp:127.0.0.1:PORT-:80,bootfile=http://10.0.2.2:SERVE/boot.ipxe \
#     -device virtio-net-pci,netdev=n,bootindex=2 -device virtio-rng-pci
#
# WORK/ovmf-vars.fd is a fresh copy of /usr/share/OVMF/OVMF_VARS_4M.fd. The
# NIC's default option ROM (efi-virtio.rom from ipxe-qemu) holds both the BIOS
# and the EFI iPXE; OVMF runs the EFI one. OVMF ignores -boot once=n (that is
# SeaBIOS's CMOS), hence bootindex: the blank disk first (nothing to boot,
# "BdsDxe: failed to load ... Not Found"), then iPXE; after the loader resets
# the machine the disk boots.
#
# boot.ipxe (lib.sh chain_script_uefi):
#
#   #!ipxe
#   kernel http://10.0.2.2:SERVE/bzImage initrd=initramfs initrd=ab-v1.cpio console=tty0 console=ttyS0,115200 loader.disk=/dev/vda loader.console=plain
#   initrd http://10.0.2.2:SERVE/initramfs
#   initrd http://10.0.2.2:SERVE/ab-v1.cpio
#   boot
#
# ab-v1.cpio is `loader initramfs --wrap-bundle ab-v1.fw` (/root/install.fw,
# uncompressed). The initrd= words are needed with this iPXE: see
# chain_script_uefi in lib.sh.
#
# Passes when the console shows `loader: result: installed ... task=complete`,
# then the installed kernel started by UEFI (`efi: EFI v`), then
# `installed-system: slot=a version=1.0.0 up`; GET / says slot a, 1.0.0;
# the disk holds EFI/BOOT/BOOTX64.EFI and its U-Boot env says slot a.
# Prints when each stage began, in seconds since QEMU's start.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by lib.sh
LOG_TAG=uefi-boot
# shellcheck source-path=SCRIPTDIR/.. source=qemu-tests/lib.sh
. qemu-tests/lib.sh
timeout=${QEMU_TEST_TIMEOUT:-240}
kernel_args="console=tty0 console=ttyS0,115200 loader.disk=/dev/vda loader.console=plain"

work=$(mktemp -d "${TMPDIR:-/tmp}/uefi-boot.XXXXXX")
log=$work/uefi-first-install.serial.log
passed=""
cleanup() {
    vm_stop
    serve_stop
    if [[ -n $passed && -z ${KEEP:-} ]]; then rm -rf "$work"; else _log "kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    _log "FAIL: $*"
    [[ ! -f $log ]] || { tail -n 20 "$log" >&2; _log "serial log: $log"; }
    exit 1
}

# at AFTER REGEX: seconds since QEMU start of the first console line matching
# REGEX (awk) after the first line matching AFTER; an empty AFTER: from the start.
at() {
    awk -v after="$1" -v re="$2" '
        (after == "" || seen) && $0 ~ re { sub(/^\[ */, ""); sub(/\].*/, ""); print; exit }
        after != "" && !seen && $0 ~ after { seen = 1 }' "$log"
}

for file in "$OVMF_CODE" "$OVMF_VARS_TEMPLATE"; do
    [[ -f $file ]] || fail "$file is missing (scripts/setup installs ovmf)"
done

_log "building (cached) kernel, initramfs, bundles"
boot_artifacts
serve=$work/www
mkdir -p "$serve"
ln -s "$KERNEL" "$serve/bzImage"
ln -s "$INITRAMFS" "$serve/initramfs"
host_loader initramfs --wrap-bundle "$BUNDLE_V1" -o "$serve/ab-v1.cpio" >/dev/null
serve_start "$serve"
chain_script_uefi "$kernel_args" ab-v1.cpio >"$serve/boot.ipxe"

disk=$work/uefi-first-install.img
truncate -s 256M "$disk"
started=$SECONDS
VM_FIRMWARE=uefi VM_OVMF_VARS=$work/ovmf-vars.fd vm_start "$disk" "$log" "http://10.0.2.2:$SERVE_PORT/boot.ipxe"
vm_wait "$log" 'loader: result: (installed|failed)' "$timeout" || fail "no loader result"
grep -q 'loader: result: installed .*1\.0\.0 task=complete disk=/dev/vda' "$log" ||
    fail "$(grep -m1 'loader: result' "$log")"
vm_wait "$log" 'installed-system: slot=a version=1\.0\.0 up' "$timeout" || fail "installed system not up"
page=$(vm_fetch /) || fail "GET / failed"
vm_stop
[[ $page == *'"slot":"a"'* && $page == *'"version":"1.0.0"'* && $page == *'"boot_count":1'* ]] ||
    fail "page: $page"
# The kernel that the loader's reset led to was started by UEFI (a BIOS boot
# prints no `efi:` line).
[[ -n $(at 'loader: result:' 'efi: EFI v[0-9]') ]] || fail "the installed system did not boot through UEFI"
boot_part=$(partition_offset "$disk" 1)
MTOOLS_SKIP_CHECK=1 mdir -b -i "$disk@@$boot_part" ::EFI/BOOT 2>/dev/null | grep -qi 'BOOTX64.EFI$' ||
    fail "no EFI/BOOT/BOOTX64.EFI on the boot partition"
dd if="$disk" bs=512 skip=2048 count=16 status=none | tr '\0' '\n' | grep -qx 'nerves_fw_active=a' ||
    fail "U-Boot env does not say slot a"
passed=yes

# label|after|regex: when each stage began; "after" picks the boot after the reset.
timings=()
for stage in 'ipxe||iPXE' 'kernel||Linux version' 'loader||loader: .*starting' 'writing||stage: running on-init' \
    'result||loader: result:' 'firmware|loader: result:|BdsDxe:' 'grub|loader: result:|Booting slot' \
    'kernel|loader: result:|Linux version' 'up||installed-system: slot='; do
    IFS='|' read -r label after pattern <<<"$stage"
    stamp=$(at "$after" "$pattern")
    timings+=("$label=${stamp:-?}")
done
_log "PASS uefi-first-install ($((SECONDS - started)) s; since QEMU start: ${timings[*]})"
