#!/usr/bin/env bash
# QEMU end-to-end scenarios: the loader booted the way a server boots it
# (QEMU's iPXE ROM -> boot.ipxe -> kernel + initramfs + injected bundle),
# judged from the serial console and the disk, never from QEMU's exit code.
#
#   qemu-tests/run.sh                  # every scenario
#   qemu-tests/run.sh rescue-reinstall # one scenario by name
#
# Scenarios (each boots one VM with a 256 MiB raw virtio disk, /dev/vda):
#
#   first-install     disk: [ blank ...................................... ]
#                     iPXE + ab-v1.fw -> result: installed task=complete ->
#                     reboot -> slot=a version=1.0.0 up; page says so;
#                     MBR + U-Boot env on the disk say slot a.
#
#   rescue-reinstall  disk: [MBR|GRUB|env a|boot|A: v1|B: empty|data: marker]
#                     (v1 installed from the host, /data/marker via mcopy)
#                     iPXE + ab-v2.fw, loader.task=auto -> result: installed
#                     task=upgrade -> reboot -> slot=b version=2.0.0 up,
#                     data marker still there, boot count 1 (first boot ever).
#
#   refuse-corrupt    disk: [ blank ...................................... ]
#                     iPXE + ab-v1.fw with one byte flipped in the middle,
#                     loader.on_error=halt -> result: failed class=corrupt;
#                     "loader: halted", no reboot into anything; the disk
#                     is still all zeros (an injected bundle is verified
#                     whole before the first write).
#
#   refuse-corrupt-reinstall
#                     disk: [MBR|GRUB|env a|boot|A: v1|B: empty|data]
#                     iPXE + ab-v2.fw with one byte flipped, loader.task=auto,
#                     loader.on_error=halt -> result: failed class=corrupt;
#                     the disk is byte for byte what it was, and booting it
#                     from the disk alone brings up slot=a version=1.0.0.
#
# Per-VM deadline: QEMU_TEST_TIMEOUT seconds per wait (default 240). On a
# failure the serial log is kept and its path printed; on success the work
# directory is removed (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by lib.sh
LOG_TAG=qemu-tests
# shellcheck source-path=SCRIPTDIR/.. source=qemu-tests/lib.sh
. qemu-tests/lib.sh
timeout=${QEMU_TEST_TIMEOUT:-240}
all_scenarios=(first-install rescue-reinstall refuse-corrupt refuse-corrupt-reinstall)
base_args="console=tty0 console=ttyS0,115200 loader.disk=/dev/vda loader.console=plain"

work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-tests.XXXXXX")
failed=()
cleanup() {
    vm_stop
    serve_stop
    if ((${#failed[@]} == 0)) && [[ -z ${KEEP:-} ]]; then rm -rf "$work"; else _log "kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Scenarios run in a subshell with errexit on: fail ends the scenario only.
fail() {
    _log "FAIL $scenario: $*"
    exit 1
}

# boot_with SCENARIO_DISK BUNDLE_FILE "EXTRA KERNEL ARGS": serves and boots.
boot_with() {
    chain_script "$base_args $3" "$2" >"$serve/boot.ipxe"
    vm_start "$1" "$log" "http://10.0.2.2:$SERVE_PORT/boot.ipxe"
}

timing() { # timing LABEL REGEX: append the seconds of REGEX's first line
    local at
    at=$(grep -m1 -E "$2" "$log" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p') || true
    timings+=("$1=${at:-?}")
}

env_block() { dd if="$1" bs=512 skip=2048 count=16 status=none | tr '\0' '\n'; }

scenario_first_install() {
    local disk=$work/first-install.img page
    truncate -s 256M "$disk"
    boot_with "$disk" ab-v1.fw ""
    vm_wait "$log" 'loader: result: (installed|failed)' "$timeout" || fail "no loader result"
    grep -q 'loader: result: installed .*1\.0\.0 task=complete disk=/dev/vda' "$log" ||
        fail "$(grep -m1 'loader: result' "$log")"
    vm_wait "$log" 'installed-system: slot=a version=1\.0\.0 up' "$timeout" || fail "installed system not up"
    page=$(vm_fetch /) || fail "GET / failed"
    vm_stop
    [[ $page == *'"slot":"a"'* && $page == *'"version":"1.0.0"'* && $page == *'"boot_count":1'* ]] ||
        fail "page: $page"
    [[ $(od -An -tx1 -j510 -N2 "$disk" | tr -d ' ') == 55aa ]] || fail "no MBR signature on the disk"
    env_block "$disk" | grep -qx 'nerves_fw_active=a' || fail "U-Boot env does not say slot a"
}

scenario_rescue_reinstall() {
    local disk=$work/rescue-reinstall.img page
    truncate -s 256M "$disk"
    "$LOADER_BIN" apply "$BUNDLE_V1" --device "$disk" --task complete --progress json >/dev/null ||
        fail "host install of v1"
    echo "kept across the reinstall" >"$work/marker"
    MTOOLS_SKIP_CHECK=1 mcopy -i "$disk@@$(partition_offset "$disk" 4)" "$work/marker" ::marker ||
        fail "mcopy marker"
    boot_with "$disk" ab-v2.fw "loader.task=auto"
    vm_wait "$log" 'loader: result: (installed|failed)' "$timeout" || fail "no loader result"
    grep -q 'loader: result: installed .*2\.0\.0 task=upgrade' "$log" || fail "$(grep -m1 'loader: result' "$log")"
    vm_wait "$log" 'installed-system: slot=b version=2\.0\.0 up' "$timeout" || fail "installed system not up in slot b"
    page=$(vm_fetch /) || fail "GET / failed"
    vm_stop
    [[ $page == *'"slot":"b"'* && $page == *'"data_marker":true'* ]] || fail "page: $page"
    env_block "$disk" | grep -qx 'nerves_fw_active=b' || fail "U-Boot env does not say slot b"
    MTOOLS_SKIP_CHECK=1 mtype -i "$disk@@$(partition_offset "$disk" 4)" ::marker | grep -q 'kept across' ||
        fail "/data/marker lost"
}

# corrupt_copy SRC DEST: DEST is SRC with the byte in its middle inverted.
corrupt_copy() {
    local size middle byte
    cp "$1" "$2"
    size=$(stat -c %s "$2")
    middle=$((size / 2))
    byte=$(od -An -tu1 -j"$middle" -N1 "$2" | tr -d ' ')
    printf '%b' "\\0$(printf '%03o' $((byte ^ 0xff)))" |
        dd of="$2" bs=1 seek="$middle" conv=notrunc status=none
    cmp -s "$1" "$2" && fail "the byte flip did not change the bundle"
    return 0
}

# expect_refusal: the console says class=corrupt, halted, and nothing rebooted.
expect_refusal() {
    vm_wait "$log" 'loader: result: (installed|failed)' "$timeout" || fail "no loader result"
    grep -q 'loader: result: failed class=corrupt' "$log" || fail "$(grep -m1 'loader: result' "$log")"
    sleep 3 # a reboot would show SeaBIOS/GRUB/the system again within this time
    grep -q 'installed-system:' "$log" && fail "something booted after the refusal"
    grep -q 'loader: halted' "$log" || fail "the console does not say the loader halted"
    vm_stop
}

scenario_refuse_corrupt() {
    local disk=$work/refuse-corrupt.img
    truncate -s 256M "$disk"
    corrupt_copy "$BUNDLE_V1" "$serve/corrupt-v1.fw"
    boot_with "$disk" corrupt-v1.fw "loader.on_error=halt"
    expect_refusal
    # An injected bundle is verified whole before the first write.
    cmp -s "$disk" <(head -c "$(stat -c %s "$disk")" /dev/zero) || fail "the refused install wrote to the disk"
}

scenario_refuse_corrupt_reinstall() {
    local disk=$work/refuse-corrupt-reinstall.img
    truncate -s 256M "$disk"
    "$LOADER_BIN" apply "$BUNDLE_V1" --device "$disk" --task complete --progress json >/dev/null ||
        fail "host install of v1"
    cp --sparse=always "$disk" "$work/before.img"
    corrupt_copy "$BUNDLE_V2" "$serve/corrupt-v2.fw"
    boot_with "$disk" corrupt-v2.fw "loader.task=auto loader.on_error=halt"
    expect_refusal
    cmp -s "$disk" "$work/before.img" || fail "the refused reinstall changed the disk"
    rm -f "$work/before.img"
    log=$work/$scenario.after.serial.log
    vm_start "$disk" "$log"
    vm_wait "$log" 'installed-system: slot=a version=1\.0\.0 up' "$timeout" || fail "the old slot a does not boot"
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=("${all_scenarios[@]}")
for scenario in "${scenarios[@]}"; do
    [[ " ${all_scenarios[*]} " == *" $scenario "* ]] || { _log "unknown scenario $scenario (have: ${all_scenarios[*]})"; exit 2; }
done

_log "building (cached) kernel, initramfs, bundles"
boot_artifacts
serve=$work/www
mkdir -p "$serve"
ln -s "$KERNEL" "$serve/bzImage"
ln -s "$INITRAMFS" "$serve/initramfs"
ln -s "$BUNDLE_V1" "$serve/ab-v1.fw"
ln -s "$BUNDLE_V2" "$serve/ab-v2.fw"
serve_start "$serve"

for scenario in "${scenarios[@]}"; do
    timings=()
    started=$SECONDS
    log=$work/$scenario.serial.log
    set +e
    (
        set -e
        trap vm_stop EXIT
        "scenario_${scenario//-/_}"
    )
    status=$?
    set -e
    if ((status == 0)); then
        timing ipxe 'iPXE'
        timing loader 'loader: '
        timing result 'loader: result:'
        timing up 'installed-system: slot='
        _log "PASS $scenario ($((SECONDS - started)) s; since QEMU start: ${timings[*]})"
    else
        failed+=("$scenario")
        _log "FAIL $scenario (exit $status); last console lines:"
        [[ ! -f $log ]] || { tail -n 20 "$log" >&2; _log "serial log: $log"; }
    fi
done
if ((${#failed[@]})); then
    _log "${#failed[@]} failed: ${failed[*]}"
    exit 1
fi
_log "all ${#scenarios[@]} passed"
