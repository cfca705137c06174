#!/usr/bin/env bash
# Builds the example installed system: two bundles of the A/B disk in
# fwup.conf, version 1.0.0 and 2.0.0, from Debian packages and this
# repository only (no grub-install, no loop devices, no root beyond apt).
#
#   examples/ab-system/build.sh
#
# Prints the two bundle paths on stdout, v1 first:
#   ${LOADER_CACHE:-$HOME/.cache/loader}/example/<key>/ab-v1.fw
#   ${LOADER_CACHE:-$HOME/.cache/loader}/example/<key>/ab-v2.fw
# Progress goes to stderr. The key hashes every input (kernel, slot-init,
# fwup.conf, grub.cfg, this script, the GRUB and squashfs-tools versions,
# the two versions, the loader that packs), so a second run with the same
# inputs only prints.
#
# What goes into each bundle:
#   boot.img         GRUB's 440-byte MBR bootstrap (grub-pc-bin), loads block 1
#   core.img         grub-mkimage -O i386-pc, prefix (,msdos1)/boot/grub: the
#                    boot disk's FAT partition, wherever the BIOS numbers it
#   BOOTX64.EFI      grub-mkimage -O x86_64-efi (grub-efi-amd64-bin), same
#                    prefix and grub.cfg: UEFI firmware finds it at the
#                    removable-media path EFI/BOOT/BOOTX64.EFI of the FAT partition
#   grub.cfg         ./grub.cfg (slot from grubenv: boot=0 -> A, boot=1 -> B)
#   grubenv_*        grub-editenv blocks, as nerves_system_x86_64 makes them
#   rootfs.squashfs  /boot/bzImage (the loader kernel), /sbin/init (slot-init),
#                    /usr/bin/loader (the static loader, for updates in place),
#                    /etc/os-release (VERSION_ID), empty /proc /sys /dev /data
#
# Environment:
#   LOADER_CACHE        cache root (default $HOME/.cache/loader)
#   LOADER_KERNEL       a bzImage to use instead of scripts/build-kernel's
#   LOADER              a loader binary to run `pack` with instead of `cargo run -p loader`
#   EXAMPLE_V1, EXAMPLE_V2   the two versions (default 1.0.0 and 2.0.0)
#   EXAMPLE_LAYOUT      mbr (default: fwup.conf, BIOS and UEFI) or gpt
#                       (fwup-gpt.conf, UEFI only: GRUB's EFI image with the
#                       prefix (,gpt1)/boot/grub, grub.cfg naming gpt partitions)
#   SOURCE_DATE_EPOCH   timestamps inside the bundles (default 1700000000)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${LOADER_CACHE:-$HOME/.cache/loader}/example
v1=${EXAMPLE_V1:-1.0.0}
v2=${EXAMPLE_V2:-2.0.0}
layout=${EXAMPLE_LAYOUT:-mbr}
case $layout in
mbr) conf=$here/fwup.conf part=msdos ;;
gpt) conf=$here/fwup-gpt.conf part=gpt ;;
*) printf 'ab-system: error: EXAMPLE_LAYOUT=%s: expected mbr or gpt\n' "$layout" >&2; exit 1 ;;
esac
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
grub_dir=/usr/lib/grub/i386-pc
grub_efi_dir=/usr/lib/grub/x86_64-efi
musl_target=x86_64-unknown-linux-musl

# GRUB modules in the core image: read the MBR disk and its FAT and squashfs
# partitions, run grub.cfg (load_env, if/test, regexp, probe, echo) on the
# serial port and the screen, and load a Linux bzImage.
grub_modules=(biosdisk part_msdos fat squash4 normal configfile loadenv test
    regexp probe echo serial terminal linux)
# The same for UEFI: the firmware's disk driver instead of biosdisk, and the
# GOP video driver, without which GRUB hands the kernel no framebuffer and
# console=tty0 shows nothing on the screen.
grub_efi_modules=("part_$part" fat squash4 normal configfile loadenv test
    regexp probe echo serial terminal linux efi_gop)

log() { printf 'ab-system: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_missing_packages() {
    local missing=() package
    for package in grub-pc-bin grub-efi-amd64-bin grub-common squashfs-tools mtools dosfstools; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    log "installing ${missing[*]}"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed (run 'apt-get update' first?)"
}

find_kernel() {
    if [[ -n ${LOADER_KERNEL:-} ]]; then
        [[ -f $LOADER_KERNEL ]] || die "LOADER_KERNEL=$LOADER_KERNEL does not exist"
        printf '%s\n' "$LOADER_KERNEL"
        return
    fi
    [[ -x $repo/scripts/build-kernel ]] || die "no scripts/build-kernel; set LOADER_KERNEL to a bzImage"
    log "kernel: scripts/build-kernel (cached after the first build, ~7 min)"
    "$repo/scripts/build-kernel" | sed -n 1p
}

build_slot_init() {
    log "slot-init: cargo build --release --target $musl_target"
    rustup target list --installed 2>/dev/null | grep -qx "$musl_target" || rustup target add "$musl_target" >&2
    (cd "$repo" && cargo build --quiet --release --locked -p slot-init --target "$musl_target" >&2)
    local target_dir
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    printf '%s\n' "$target_dir/$musl_target/release/slot-init"
}

# The static loader, built as scripts/build-initramfs builds it (same flags,
# so the two share cargo's build directory); slot-init runs it for
# POST /update.
build_loader() {
    log "loader: cargo build --release --target $musl_target (for updates in place)"
    local target_dir
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    (cd "$repo" &&
        CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=$repo=/loader --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
            cargo build --quiet --release --locked --target "$musl_target" -p loader --bin loader --no-default-features >&2)
    strip -o "$target_dir/$musl_target/release/loader.stripped" "$target_dir/$musl_target/release/loader"
    printf '%s\n' "$target_dir/$musl_target/release/loader.stripped"
}

pack() { # pack CONFIG OUT.fw, with the environment naming the inputs
    if [[ -n ${LOADER:-} ]]; then
        "$LOADER" pack "$1" -o "$2" >&2
    else
        (cd "$repo" && cargo run --quiet -p loader -- pack "$1" -o "$2" >&2)
    fi
}

package_version() { dpkg-query -W -f='${Version}' "$1"; }

cache_key() { # cache_key KERNEL SLOT_INIT LOADER_BINARY
    {
        sha256sum "$1" "$2" "$3" "$conf" "$here/grub.cfg" "${BASH_SOURCE[0]}" | cut -d' ' -f1
        printf '%s\n' "$layout"
        printf '%s\n' "$(package_version grub-pc-bin)" "$(package_version grub-efi-amd64-bin)"
        printf '%s\n' "$(package_version squashfs-tools)"
        printf '%s\n' "$v1" "$v2" "$SOURCE_DATE_EPOCH" "${grub_modules[*]}" "${grub_efi_modules[*]}"
        # The packer: the given binary, or the committed loader sources
        # (a rebuild is cheap, so any loader commit makes new bundles).
        if [[ -n ${LOADER:-} ]]; then
            sha256sum "$LOADER" | cut -d' ' -f1
        else
            git -C "$repo" rev-parse HEAD:loader 2>/dev/null || echo "no git"
        fi
    } | sha256sum | cut -c1-16
}

# Files both versions share: GRUB's boot code, core and EFI images, config, grubenvs.
make_boot_files() { # make_boot_files DIR
    local dir=$1 name
    head -c 440 "$grub_dir/boot.img" >"$dir/boot.img"
    grub-mkimage -O i386-pc -d "$grub_dir" -o "$dir/core.img" -p '(,msdos1)/boot/grub' "${grub_modules[@]}"
    # boot.img loads the core image from block 1; block 2048 holds the U-Boot env.
    (($(stat -c %s "$dir/core.img") <= 2047 * 512)) || die "GRUB core image does not fit in blocks 1-2047"
    # Under UEFI GRUB starts from the FAT partition itself; the prefix still
    # names partition 1 of the disk it came from, so both GRUBs read one grub.cfg.
    grub-mkimage -O x86_64-efi -d "$grub_efi_dir" -o "$dir/BOOTX64.EFI" -p "(,${part}1)/boot/grub" "${grub_efi_modules[@]}"
    # The slots are partitions 2 and 3 under either table; GRUB names them
    # msdosN on an MBR disk and gptN on a GPT disk.
    sed "s/msdos\([0-9]\)/$part\1/g" "$here/grub.cfg" >"$dir/grub.cfg"
    for name in a:0:0:0 a_valid:0:1:1 b:1:0:0 b_valid:1:1:1; do
        IFS=: read -r suffix boot validated booted_once <<<"$name"
        grub-editenv "$dir/grubenv_$suffix" create
        grub-editenv "$dir/grubenv_$suffix" set "boot=$boot" "validated=$validated" "booted_once=$booted_once"
    done
}

make_rootfs() { # make_rootfs OUT.squashfs VERSION KERNEL SLOT_INIT LOADER_BINARY
    local out=$1 version=$2 tree
    tree=$(dirname "$out")/tree-$version
    rm -rf "$tree"
    mkdir -p "$tree"/{boot,sbin,etc,proc,sys,dev,data,tmp,usr/bin}
    install -m 0644 "$3" "$tree/boot/bzImage"
    install -m 0755 "$4" "$tree/sbin/init"
    install -m 0755 "$5" "$tree/usr/bin/loader"
    cat >"$tree/etc/os-release" <<EOF
NAME="Loader example A/B system"
ID=loader-example
VERSION="$version"
VERSION_ID=$version
PRETTY_NAME="Loader example A/B system $version"
EOF
    chmod 0644 "$tree/etc/os-release"
    chmod 0755 "$tree" "$tree"/{boot,sbin,etc,proc,sys,dev,data,tmp,usr,usr/bin}
    # mksquashfs refuses SOURCE_DATE_EPOCH together with explicit times.
    env -u SOURCE_DATE_EPOCH mksquashfs "$tree" "$out" -noappend -quiet -no-progress -comp xz -all-root -no-xattrs \
        -all-time "$SOURCE_DATE_EPOCH" -mkfs-time "$SOURCE_DATE_EPOCH" >&2
}

work=""
trap '[[ -z $work ]] || rm -rf "$work"' EXIT

main() {
    install_missing_packages
    local kernel slot_init loader_bin key result
    kernel=$(find_kernel)
    slot_init=$(build_slot_init)
    loader_bin=$(build_loader)
    key=$(cache_key "$kernel" "$slot_init" "$loader_bin")
    result=$cache_root/$key
    if [[ -f $result/ab-v1.fw && -f $result/ab-v2.fw ]]; then
        log "cached in $result"
        printf '%s\n' "$result/ab-v1.fw" "$result/ab-v2.fw"
        return
    fi

    mkdir -p "$cache_root"
    work=$(mktemp -d "$cache_root/.build-$key.XXXXXX")
    log "building in $work"
    mkdir -p "$work/common"
    make_boot_files "$work/common"
    local version label
    for label in v1 v2; do
        [[ $label == v1 ]] && version=$v1 || version=$v2
        mkdir -p "$work/$label"
        cp "$work/common"/* "$work/$label/"
        make_rootfs "$work/$label/rootfs.squashfs" "$version" "$kernel" "$slot_init" "$loader_bin"
        log "packing ab-$label.fw (version $version)"
        NERVES_FW_VERSION=$version EXAMPLE_BUILD_DIR=$work/$label \
            pack "$conf" "$work/ab-$label.fw"
    done

    mkdir -p "$work/result"
    mv "$work/ab-v1.fw" "$work/ab-v2.fw" "$work/result/"
    rm -rf "$result"
    mv "$work/result" "$result"
    log "bundles: $(stat -c '%n %s bytes' "$result"/ab-v1.fw "$result"/ab-v2.fw | tr '\n' ';')"
    printf '%s\n' "$result/ab-v1.fw" "$result/ab-v2.fw"
}

main "$@"
