# Bash library for scripts/demo-qemu (the tests use the Rust harness in src/): build the
# boot artifacts, serve them on loopback, boot QEMU through its iPXE ROM,
# capture the serial console with timestamps, wait for console markers.
#
#   . qemu-tests/lib.sh
#   boot_artifacts                 # sets KERNEL INITRAMFS BUNDLE_V1 BUNDLE_V2 LOADER_BIN
#   serve_start DIR                # python3 http.server on 127.0.0.1; sets SERVE_PORT
#   chain_script KERNEL_ARGS BUNDLE_FILE >DIR/boot.ipxe
#   vm_start DISK LOG [BOOTFILE_URL]   # sets VM_PID VM_PORT VM_T0
#   vm_wait LOG REGEX SECONDS      # sets VM_AT (seconds since VM_T0 of the line)
#   vm_stop; serve_stop            # always safe (call them from a trap)
#
# Nothing but 127.0.0.1 (host side) and 10.0.2.2 (QEMU's user-network alias
# for the host) is ever addressed; QEMU runs under TCG only, never KVM.
# shellcheck shell=bash disable=SC2034  # variables are outputs for the caller

QEMU_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$QEMU_TESTS_DIR")
VM_PID="" VM_PORT="" VM_T0="" VM_AT="" VM_PIDFILE=""
SERVE_PID="" SERVE_PORT=""

_log() { printf '%s: %s\n' "${LOG_TAG:-qemu}" "$*" >&2; }

# boot_artifacts: builds (or finds cached) kernel, gzip initramfs, the
# example bundles and the musl loader binary.
boot_artifacts() {
    KERNEL=$("$REPO_DIR/scripts/build-kernel" | sed -n 1p)
    [[ -f $KERNEL ]] || { _log "scripts/build-kernel gave no bzImage"; return 1; }
    # gzip: the kernel inflates it several times faster than xz under TCG.
    INITRAMFS=$REPO_DIR/target/boot/initramfs.gz
    "$REPO_DIR/scripts/build-initramfs" --compression gzip -o "$INITRAMFS" >/dev/null
    LOADER_BIN=$REPO_DIR/target/x86_64-unknown-linux-musl/release/loader
    local bundles
    # Packing needs the host tools, which the musl /init is built without:
    # build.sh packs with `cargo run -p loader`.
    mapfile -t bundles < <(LOADER_KERNEL=$KERNEL "$REPO_DIR/examples/ab-system/build.sh")
    ((${#bundles[@]} == 2)) || { _log "examples/ab-system/build.sh failed"; return 1; }
    BUNDLE_V1=${bundles[0]} BUNDLE_V2=${bundles[1]}
}

# serve_start DIR: serves DIR on 127.0.0.1, an ephemeral port.
serve_start() {
    local dir=$1 out tries=0
    out=$(mktemp)
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$dir" >"$out" 2>&1 &
    SERVE_PID=$!
    while ! SERVE_PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$out" | head -n 1) || [[ -z $SERVE_PORT ]]; do
        ((tries++ < 100)) || { _log "http.server did not start: $(cat "$out")"; rm -f "$out"; return 1; }
        sleep 0.05
    done
    rm -f "$out"
}

serve_stop() {
    [[ -n $SERVE_PID ]] || return 0
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
}

# chain_script "KERNEL ARGS" [BUNDLE_FILE]: the iPXE script for the served dir.
chain_script() {
    local base=http://10.0.2.2:$SERVE_PORT
    printf '#!ipxe\n'
    printf 'kernel %s/bzImage %s\n' "$base" "$1"
    printf 'initrd %s/initramfs\n' "$base"
    [[ -z ${2:-} ]] || printf 'initrd %s/%s /root/install.fw\n' "$base" "$2"
    printf 'boot\n'
}

_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prefixes each line with seconds since VM_T0 (no fork per line).
_stamp() {
    local t0_us=$1 line ms
    while IFS= read -r line; do
        ms=$(((${EPOCHREALTIME/[.,]/} - t0_us) / 1000))
        printf '[%4d.%03d] %s\n' $((ms / 1000)) $((ms % 1000)) "${line//$'\r'/}"
    done
}

# vm_start DISK LOG [BOOTFILE_URL]: with a URL, the first boot is iPXE over
# the network and every later reset boots the disk; without one, the disk.
vm_start() {
    local disk=$1 log=$2 bootfile=${3:-} netdev boot
    VM_PORT=$(_free_port)
    VM_PIDFILE=$(mktemp -u)
    netdev="user,id=n,hostfwd=tcp:127.0.0.1:$VM_PORT-:80"
    boot=(-boot order=c)
    if [[ -n $bootfile ]]; then
        netdev+=",bootfile=$bootfile"
        boot=(-boot "once=n,order=c")
    fi
    VM_T0=$((${EPOCHREALTIME/[.,]/} / 1000))
    qemu-system-x86_64 -accel tcg -m 512 -nographic -serial mon:stdio \
        -pidfile "$VM_PIDFILE" \
        -drive "file=$disk,format=raw,if=virtio" \
        -netdev "$netdev" -device virtio-net-pci,netdev=n -device virtio-rng-pci \
        "${boot[@]}" </dev/null 2>&1 | _stamp "$((VM_T0 * 1000))" >"$log" &
    VM_PID=$!
    local tries=0
    while [[ ! -s $VM_PIDFILE ]] && ((tries++ < 100)); do sleep 0.05; done
}

# vm_wait LOG REGEX SECONDS: waits for a console line matching REGEX
# (grep -E); VM_AT is its timestamp. Fails when QEMU is gone or time is up.
vm_wait() {
    local log=$1 pattern=$2 deadline=$((SECONDS + $3)) hit
    while ! hit=$(grep -m1 -E "$pattern" "$log" 2>/dev/null); do
        if ! kill -0 "$VM_PID" 2>/dev/null; then
            _log "QEMU exited before /$pattern/ appeared"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _log "no /$pattern/ on the console within $3 s"
            return 1
        fi
        sleep 0.1
    done
    VM_AT=$(sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' <<<"$hit")
}

# vm_stop: stops QEMU (by its pid file) and the log pipeline.
vm_stop() {
    if [[ -n $VM_PIDFILE && -s $VM_PIDFILE ]]; then
        local pid tries=0
        pid=$(cat "$VM_PIDFILE")
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null && ((tries++ < 50)); do sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    [[ -z $VM_PID ]] || wait "$VM_PID" 2>/dev/null || true
    [[ -z $VM_PIDFILE ]] || rm -f "$VM_PIDFILE"
    VM_PID="" VM_PIDFILE=""
}

# vm_fetch [PATH]: the installed system's answer through the port forward.
vm_fetch() {
    curl --silent --show-error --fail --max-time 10 --retry 5 --retry-connrefused --retry-delay 1 \
        "http://127.0.0.1:$VM_PORT${1:-/}"
}

# Byte offset of MBR partition N (1-4) of DISK.
partition_offset() {
    local start
    start=$(od -An -tu4 -j $((446 + 16 * ($2 - 1) + 8)) -N4 "$1" | tr -d ' ')
    echo $((start * 512))
}
