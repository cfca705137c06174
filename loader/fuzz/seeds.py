#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into seeds/TARGET/ from the
repository's fixtures (../tests/fixtures) plus a few small generated cases
the fixtures lack (stored entries sized only by a data descriptor, duplicate
names, a skipped deflate bomb, EBR chains near block 0, a GPT with both
copies on a small disk, tiny FAT volumes). Run from loader/fuzz:

    python3 seeds.py

Needs Python 3, zstd, mkfs.fat and mtools (for the FAT seeds).
Seeds are inputs to start from; the corpora the fuzzer grew from them are
in corpus/TARGET (committed, minimized)."""

import binascii
import glob
import io
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
OUT = os.path.join(HERE, "seeds")
BLOCK = 512


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def image_region(case, start, count):
    """Blocks start..start+count of a corpus expected image."""
    raw = subprocess.run(
        ["zstd", "-q", "-dc", os.path.join(FIX, "fw", "expected", case + ".img.zst")],
        check=True, capture_output=True).stdout
    return raw[start * BLOCK:(start + count) * BLOCK]


class Unseekable(io.RawIOBase):
    """A pipe-like sink: zipfile then writes data descriptors, also for
    stored entries (sizes only after the data)."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def streamed_zip(entries, method):
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=method) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with z.open(info, "w") as f:
                f.write(data)
    return bytes(sink.buf)


def plain_zip(entries, method, force_zip64=False):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with z.open(info, "w", force_zip64=force_zip64) as f:
                f.write(data)
    return out.getvalue()


def zip_seeds():
    small = [f for f in sorted(glob.glob(os.path.join(FIX, "fw", "*.fw"))
                               + glob.glob(os.path.join(FIX, "parity", "*.fw")))
             if os.path.getsize(f) <= 256 << 10]
    for i, f in enumerate(small):
        put("zip_walker", os.path.basename(f), bytes([i * 7 % 256]) + read(f))
    meta = read(os.path.join(FIX, "meta-conf", "01-minimal-raw.meta.conf"))
    data = bytes(range(256)) * 8
    # A descriptor look-alike inside stored data: the walker must not end
    # the entry there.
    tricky = data[:100] + b"PK\x07\x08" + struct.pack("<III", zlib.crc32(data[:100]), 100, 100) + data[100:]
    cases = {
        "stored-descriptor": streamed_zip([("meta.conf", meta), ("data/a", tricky)], zipfile.ZIP_STORED),
        "deflated-descriptor": streamed_zip([("meta.conf", meta), ("data/a", data)], zipfile.ZIP_DEFLATED),
        "plain-stored": plain_zip([("meta.conf", meta), ("data/a", data)], zipfile.ZIP_STORED),
        "zip64": plain_zip([("meta.conf", meta), ("data/a", data)], zipfile.ZIP_DEFLATED, True),
        "duplicate": plain_zip([("meta.conf", meta), ("meta.conf", meta)], zipfile.ZIP_STORED),
        "bomb": streamed_zip([("meta.conf", meta), ("data/zeros", bytes(1 << 20))], zipfile.ZIP_DEFLATED),
        "empty-entry": streamed_zip([("meta.conf", b""), ("data/", b"")], zipfile.ZIP_STORED),
    }
    for n, (name, z) in enumerate(cases.items()):
        for control in (0, 1 + 4 * n, 0x0f):
            put("zip_walker", f"{name}-{control}", bytes([control]) + z)


def meta_conf_seeds():
    for pattern in ("meta-conf/*.meta.conf", "formats/*.meta.conf", "fw/*.conf", "parity/*.conf"):
        for f in sorted(glob.glob(os.path.join(FIX, pattern))):
            put("meta_conf", pattern.split("/")[0] + "-" + os.path.basename(f), read(f))
    # The parser edge cases of the parity corpus live inside bundles.
    for f in sorted(glob.glob(os.path.join(FIX, "parity", "3*.fw"))):
        with zipfile.ZipFile(f) as z:
            put("meta_conf", os.path.basename(f) + ".meta.conf", z.read("meta.conf"))


CMDLINES = [
    (b"", b"BOOT_IMAGE=/vmlinuz console=ttyS0 loader.url=https://h.example/x.fw quiet\n"),
    (b"", b'vmlinuz loader.env.GREETING="hello world" "loader.env.B=x y" loader.env.C="" -- init'),
    (b"", b"loader.disk=serial:S3X1 loader.task=upgrade loader.on_error=halt loader.on_error_delay=5s"),
    (b"", b"loader.disk=size:>=100G loader.force=removable loader.console=plain loader.disk_wait=2m"),
    (b"", b"loader.sha256=" + b"ab" * 32 + b" loader.insecure loader.url=http://10.0.2.2/x.fw"),
    (b"", b"loader.pubkey=1Yh0m4X2JdHXXmAn3FDDmyA5LT1wPQ6Efe2wAx9kSKE= loader.pubkey= loader.ca="),
    (b"", b"ip=dhcp ip=10.0.0.2::10.0.0.1:255.255.255.0:h:eth0:none loader.net.mtu=1400"),
    (b"", b"loader.on-success=poweroff loader.on_error_retries=7 loader.report=https://r.example/cb"),
    (b"", b"loader.urll=x loader.unknown=1 loader.disk=wwn:0x5000c500a1b2c3d4 loader.disk=model:samsung"),
    (b"", b'loader.env.X="never closed'),
    (b"", b"loader.url=https://example.test/" + b"a" * 2020),
    (b"# defaults\nloader.url=https://images.example.com/server.fw\nloader.on_error=halt\n"
     b'loader.env.NERVES_SERIAL_NUMBER="rack 4 unit 2"\nip=dhcp\nloader.insecure\n',
     b"loader.url= loader.on_error=retry loader.disk=largest"),
    (b"loader.disk = /dev/vda\nloader.task=complete\nloader.metadata=http://169.254.169.254/v1.json\n",
     b"loader.task=auto loader.disk=smallest"),
]


def cmdline_seeds():
    for i, (file, line) in enumerate(CMDLINES):
        put("cmdline_config", f"line-{i:02}", file + b"\0" + line if file else line)


def part_entry(boot, kind, start, count):
    return struct.pack("<B3sB3sII", 0x80 if boot else 0, b"\0\0\0", kind, b"\0\0\0", start, count)


def table_block(entries):
    b = bytearray(BLOCK)
    for i, e in enumerate(entries):
        b[446 + 16 * i:462 + 16 * i] = e
    b[510:512] = b"\x55\xaa"
    return bytes(b)


def mbr_seeds():
    for f in sorted(glob.glob(os.path.join(FIX, "formats", "*.0+1.bin"))) + \
            [os.path.join(FIX, "formats", "03-complete.0+34.bin")]:
        put("mbr", os.path.basename(f), read(f)[:BLOCK])
    # 06-complete's MBR with its two EBRs moved next to it (extended
    # partition at block 1 instead of 22528).
    mbr = bytearray(read(os.path.join(FIX, "formats", "06-complete.0+1.bin")))
    ebrs = read(os.path.join(FIX, "formats", "06-complete.22528+2.bin"))
    mbr[446 + 48 + 8:446 + 48 + 12] = struct.pack("<I", 1)
    put("mbr", "06-ebrs-moved", bytes(mbr) + ebrs)
    # A chain of 5 logicals and one that loops back to itself.
    chain = [table_block([part_entry(True, 0x83, 8, 8), part_entry(False, 0x0f, 1, 100)])]
    for k in range(1, 6):
        link = [part_entry(False, 0x05, k + 1, 1)] if k < 5 else []
        chain.append(table_block([part_entry(False, 0x83, 16, 4)] + link))
    put("mbr", "ebr-chain", b"".join(chain))
    loop = [table_block([part_entry(False, 0x85, 1, 10)]),
            table_block([part_entry(False, 0x0c, 2, 2), part_entry(False, 0x0f, 0, 1)])]
    put("mbr", "ebr-loop", b"".join(loop))


def guid(s):
    import uuid
    return uuid.UUID(s).bytes_le


def gpt_copy(disk_blocks, parts, disk_guid):
    entries = bytearray(128 * 128)
    for i, (tguid, pguid, first, last, flags, name) in enumerate(parts):
        e = guid(tguid) + guid(pguid) + struct.pack("<QQQ", first, last, flags)
        e += name.encode("utf-16-le")[:72].ljust(72, b"\0")
        entries[i * 128:(i + 1) * 128] = e
    ecrc = binascii.crc32(entries) & 0xffffffff

    def header(current, backup, entries_at):
        h = bytearray(b"EFI PART" + struct.pack("<IIIIQQQQ", 0x10000, 92, 0, 0, current, backup, 34,
                                                 disk_blocks - 34))
        h += guid(disk_guid) + struct.pack("<QIII", entries_at, 128, 128, ecrc)
        h[16:20] = struct.pack("<I", binascii.crc32(bytes(h[:92])) & 0xffffffff)
        return bytes(h).ljust(BLOCK, b"\0")

    pmbr = table_block([struct.pack("<B3sB3sII", 0, b"\0\x02\0", 0xee, b"\xff\xff\xff", 1,
                                    min(disk_blocks - 1, 0xffffffff))])
    disk = bytearray(disk_blocks * BLOCK)
    disk[0:BLOCK] = pmbr
    disk[BLOCK:2 * BLOCK] = header(1, disk_blocks - 1, 2)
    disk[2 * BLOCK:34 * BLOCK] = entries
    disk[(disk_blocks - 33) * BLOCK:(disk_blocks - 1) * BLOCK] = entries
    disk[(disk_blocks - 1) * BLOCK:] = header(disk_blocks - 1, 1, disk_blocks - 33)
    return bytes(disk)


def gpt_seeds():
    for f in ("03-complete.0+34.bin", "03-complete-emptyfile.0+34.bin"):
        put("gpt", f, read(os.path.join(FIX, "formats", f)))
    linux = "0fc63daf-8483-4772-8e79-3d69d8477de4"
    efi = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
    parts = [(efi, "5278721d-0089-4768-85df-b8f1b97e6684", 40, 49, 4, "boot"),
             (linux, "fcc205c8-2f1c-4dcd-bef4-7b209aa15cca", 50, 79, 0, "rootfs A \u00e9\U0001F600")]
    disk = gpt_copy(120, parts, "b443fbeb-2c93-481b-88b3-0ecb0aeba911")
    put("gpt", "small-disk", disk)
    # The primary header destroyed: only the backup remains.
    put("gpt", "backup-only", disk[:BLOCK] + bytes(BLOCK) + disk[2 * BLOCK:])


def env_seeds():
    for name, control in (("02-complete.2048+16.bin", 15), ("02-up1-v2-to-b.2048+16.bin", 15),
                          ("06-complete.256+32.bin", 0x20 | 15), ("06-guard.256+32.bin", 0x20 | 15)):
        put("uboot_env", name, bytes([control]) + read(os.path.join(FIX, "formats", name)))

    def copy(pairs, blocks, flag=None):
        data = b"".join(k + b"=" + v + b"\0" for k, v in pairs) + b"\0"
        start = 4 if flag is None else 5
        body = data.ljust(blocks * BLOCK - start, b"\xff")
        head = struct.pack("<I", binascii.crc32(body) & 0xffffffff)
        return head + (b"" if flag is None else bytes([flag])) + body

    pairs = [(b"a", b"1"), (b"nerves_fw_active", b"a"), (b"x", b"y=z")]
    put("uboot_env", "single-1", bytes([0]) + copy(pairs, 1))
    put("uboot_env", "redundant-wrap", bytes([0x20]) + copy(pairs, 1, 255) + copy(pairs[:1], 1, 0))
    put("uboot_env", "redundant-one-bad", bytes([0x21]) + copy(pairs, 2, 7) + bytes(2 * BLOCK))


def fat_seeds():
    # fwup's own boot partitions (4096.. of the MBR corpus images, 6144.. of
    # the GPT ones), cut after the root directory and first files.
    for case, start in (("02-complete", 4096), ("03-complete", 64), ("06-complete", 2048)):
        try:
            put("fat", case + "-boot", image_region(case, start, 160))
        except (subprocess.CalledProcessError, FileNotFoundError):
            pass
    # Tiny volumes made by mkfs.fat + mtools: FAT12 with long names and
    # subdirectories; FAT16; FAT32 (one FAT, truncated: the rest reads as
    # zeros).
    with tempfile.TemporaryDirectory() as tmp:
        content = os.path.join(tmp, "f.txt")
        with open(content, "wb") as f:
            f.write(b"loader test file\n" * 100)
        for name, args, kib, cut in (("fat12", ["-F", "12"], 128, None),
                                     ("fat16", ["-F", "16", "-s", "1"], 4200, 64 << 10),
                                     ("fat32", ["-F", "32", "-s", "1", "-f", "1"], 34 << 10, 300 << 10)):
            img = os.path.join(tmp, name + ".img")
            subprocess.run(["mkfs.fat", "-C", img, str(kib)] + args, check=True, capture_output=True)
            for cmd in (["mmd", "-i", img, "::/boot", "::/boot/grub"],
                        ["mcopy", "-i", img, content, "::/boot/grub/grub.cfg"],
                        ["mcopy", "-i", img, content, "::/A Long File Name.txt"],
                        ["mcopy", "-i", img, content, "::/short.bin"]):
                subprocess.run(cmd, check=True, capture_output=True)
            data = read(img)
            put("fat", name, data[:cut] if cut else data)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    zip_seeds()
    meta_conf_seeds()
    cmdline_seeds()
    mbr_seeds()
    gpt_seeds()
    env_seeds()
    fat_seeds()
    for target in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, target))
        size = sum(os.path.getsize(os.path.join(OUT, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
