# Helpers to boot a disk with the example system in QEMU and talk to it.
# Bash library for check.sh, the demo and the QEMU tests:
#
#   . examples/ab-system/qemu.sh
#   qemu_boot_disk disk.img boot.log     # starts QEMU; sets QEMU_PID, QEMU_PORT
#   qemu_wait_for boot.log 'installed-system: slot=a version=1\.0\.0 up' 120
#   page=$(qemu_fetch_page)              # GET / through the port forward
#   qemu_stop                            # always safe to call (use it in a trap)
#
# QEMU runs under TCG only (KVM hangs on this project's machines), with the
# disk as virtio-blk (the guest sees /dev/vda), the serial console on the log
# file, and user networking: the guest's port 80 is forwarded to
# 127.0.0.1:QEMU_PORT on the host, nothing else is reachable from outside.
# shellcheck shell=bash disable=SC2034  # the QEMU_* variables are outputs for the caller

QEMU_PID=""
QEMU_PORT=""
# Milliseconds from QEMU's start to the line qemu_wait_for found last.
QEMU_WAITED_MS=""
QEMU_STARTED_MS=""

_qemu_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A TCP port on 127.0.0.1 that is free right now.
qemu_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# qemu_boot_disk DISK LOG [EXTRA QEMU ARGS...]: boots DISK in the background.
qemu_boot_disk() {
    local disk=$1 log=$2
    shift 2
    QEMU_PORT=$(qemu_free_port)
    QEMU_STARTED_MS=$(_qemu_now_ms)
    qemu-system-x86_64 -accel tcg -nographic -m 256 -no-reboot \
        -drive "file=$disk,format=raw,if=virtio" \
        -serial mon:stdio \
        -netdev "user,id=n,hostfwd=tcp:127.0.0.1:$QEMU_PORT-:80" \
        -device virtio-net-pci,netdev=n \
        "$@" </dev/null >"$log" 2>&1 &
    QEMU_PID=$!
}

# qemu_wait_for LOG REGEX TIMEOUT_SECONDS: waits until a line of LOG
# matches REGEX (grep -E). Fails when QEMU exits or the time runs out.
qemu_wait_for() {
    local log=$1 pattern=$2 timeout_ms=$(($3 * 1000)) start
    start=$(_qemu_now_ms)
    while ! grep -qE "$pattern" "$log" 2>/dev/null; do
        if [[ -n $QEMU_PID ]] && ! kill -0 "$QEMU_PID" 2>/dev/null; then
            echo "qemu exited before printing /$pattern/" >&2
            return 1
        fi
        if (($(_qemu_now_ms) - start > timeout_ms)); then
            echo "no /$pattern/ on the console within $3 s" >&2
            return 1
        fi
        sleep 0.1
    done
    QEMU_WAITED_MS=$(($(_qemu_now_ms) - ${QEMU_STARTED_MS:-$start}))
}

# qemu_fetch_page [PATH]: the guest's HTTP answer through the port forward.
qemu_fetch_page() {
    curl --silent --show-error --fail --max-time 10 --retry 3 --retry-connrefused --retry-delay 1 \
        "http://127.0.0.1:$QEMU_PORT${1:-/}"
}

# qemu_stop: stops QEMU if it runs and waits for it (at most 10 s).
qemu_stop() {
    [[ -n $QEMU_PID ]] || return 0
    kill "$QEMU_PID" 2>/dev/null || true
    local tries=0
    while kill -0 "$QEMU_PID" 2>/dev/null && ((tries++ < 100)); do sleep 0.1; done
    kill -9 "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=""
}
