#!/usr/bin/env bash
# End-to-end check of the example system: install, boot, upgrade, boot again.
#
#   examples/ab-system/check.sh [AB-V1.fw AB-V2.fw]
#
# Without arguments it builds the bundles with build.sh (cached). Then, on a
# sparse 256 MiB disk image in a temporary directory:
#   0. loader apply ab-v2.fw --task upgrade on the blank disk must fail (the
#      upgrade.wrongplatform guard) and leave the disk all zeros;
#   1. loader apply ab-v1.fw --task complete; boot in QEMU (TCG): the console
#      must say `installed-system: slot=a version=1.0.0 up` and GET / through
#      the port forward must report slot a, 1.0.0, no data marker, boot 1
#      (the versions are the bundles' meta-version, read with loader inspect);
#   2. put /data/marker on the data partition from the host (mtools);
#   3. loader apply ab-v2.fw --task upgrade (picks upgrade.b); boot: slot b,
#      2.0.0, the marker kept, boot 2 (the count the first boot wrote, + 1);
#   4. loader apply ab-v1.fw --task upgrade (picks upgrade.a); boot: slot a,
#      1.0.0, marker kept, boot 3.
# Prints the time from QEMU's start to the marker line for each boot. On a
# failure it prints the end of the console log and exits 1. QEMU is always
# stopped, the temporary directory always removed (KEEP=1 keeps it).
#
# Environment: LOADER (a loader binary; default `cargo run -p loader`),
# BOOT_TIMEOUT (seconds per boot, default 180), plus build.sh's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
boot_timeout=${BOOT_TIMEOUT:-180}
# shellcheck source=qemu.sh
. "$here/qemu.sh"

log() { printf 'check: %s\n' "$*" >&2; }

work=$(mktemp -d)
current_log=""
cleanup() {
    local status=$?
    qemu_stop
    if ((status != 0)) && [[ -n $current_log && -f $current_log ]]; then
        log "last console lines of $current_log:"
        tail -n 30 "$current_log" | tr -d '\r' >&2
    fi
    if [[ -n ${KEEP:-} ]]; then log "kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT

loader() {
    if [[ -n ${LOADER:-} ]]; then
        "$LOADER" "$@"
    else
        (cd "$repo" && cargo run --quiet -p loader -- "$@")
    fi
}

fail() { log "FAILED: $*"; exit 1; }

for tool in qemu-system-x86_64 curl mcopy python3 od; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done

if (($# == 2)); then
    v1_fw=$1 v2_fw=$2
elif (($# == 0)); then
    mapfile -t bundles < <("$here/build.sh")
    ((${#bundles[@]} == 2)) || fail "build.sh printed ${#bundles[@]} paths, expected 2"
    v1_fw=${bundles[0]} v2_fw=${bundles[1]}
else
    fail "usage: $0 [AB-V1.fw AB-V2.fw]"
fi

disk=$work/disk.img
timings=()

# boot_and_check NAME SLOT VERSION MARKER BOOTS: boots the disk, waits for the
# marker line and checks the page.
boot_and_check() {
    local name=$1 slot=$2 version=$3 marker=$4 boots=$5 page field
    current_log=$work/$name.log
    log "$name: booting, waiting for 'slot=$slot version=$version up' (at most ${boot_timeout} s)"
    qemu_boot_disk "$disk" "$current_log"
    qemu_wait_for "$current_log" "installed-system: slot=$slot version=${version//./\\.} up" "$boot_timeout" ||
        fail "$name: the installed system did not come up"
    timings+=("$name: QEMU start -> marker $((QEMU_WAITED_MS / 1000)).$(printf '%03d' $((QEMU_WAITED_MS % 1000))) s")
    page=$(qemu_fetch_page /) || fail "$name: GET / through 127.0.0.1:$QEMU_PORT failed"
    log "$name: page $page"
    for field in "\"slot\":\"$slot\"" "\"version\":\"$version\"" "\"data_mounted\":true" \
        "\"data_marker\":$marker" "\"boot_count\":$boots"; do
        [[ $page == *"$field"* ]] || fail "$name: the page lacks $field"
    done
    grep -q "installed-system: .*data-marker=$([[ $marker == true ]] && echo present || echo absent)" \
        "$current_log" || fail "$name: the console does not report data-marker as expected"
    qemu_stop
}

# Byte offset of partition N (1-4) from the MBR of the disk image.
partition_offset() {
    local start
    start=$(od -An -tu4 -j $((446 + 16 * ($1 - 1) + 8)) -N4 "$disk" | tr -d ' ')
    echo $((start * 512))
}

bundle_version() { loader inspect "$1" | sed -n 's/^version: *//p'; }
v1_version=$(bundle_version "$v1_fw")
v2_version=$(bundle_version "$v2_fw")
[[ -n $v1_version && -n $v2_version ]] || fail "cannot read the bundles' versions with loader inspect"
log "bundles: $v1_fw ($(stat -c %s "$v1_fw") bytes), $v2_fw ($(stat -c %s "$v2_fw") bytes)"
truncate -s 256M "$disk"

log "an upgrade onto a blank disk is refused and writes nothing"
if loader apply "$v2_fw" --device "$disk" --task upgrade; then
    fail "the upgrade task installed onto a blank disk"
fi
cmp -s "$disk" <(head -c "$(stat -c %s "$disk")" /dev/zero) || fail "the refused upgrade wrote to the disk"

log "install v1 (task complete)"
loader apply "$v1_fw" --device "$disk" --task complete
boot_and_check first-boot a "$v1_version" false 1

log "write /data/marker from the host"
echo "written before the upgrade" >"$work/marker"
MTOOLS_SKIP_CHECK=1 mcopy -i "$disk@@$(partition_offset 4)" "$work/marker" ::marker

log "upgrade to v2 (task upgrade -> upgrade.b)"
loader apply "$v2_fw" --device "$disk" --task upgrade
boot_and_check after-upgrade b "$v2_version" true 2

log "upgrade back to v1 (task upgrade -> upgrade.a)"
loader apply "$v1_fw" --device "$disk" --task upgrade
boot_and_check after-second-upgrade a "$v1_version" true 3

current_log=""
printf '%s\n' "${timings[@]}"
log "passed"
