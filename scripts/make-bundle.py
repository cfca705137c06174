#!/usr/bin/env python3
"""Writes a fwup-style .fw bundle without fwup, for benchmarks and tests.

Usage: make-bundle.py OUT.fw META_CONF_TEMPLATE NAME=PATH...

The template is meta.conf text in fwup's normalized form where each resource
is written as `@RESOURCE NAME@`; it is replaced by the `file-resource`
section with the real length and BLAKE2b-256. Entries are written the way
fwup writes them: deflated, with data descriptors (the archive is streamed
through a pipe so zipfile cannot seek back to fill in sizes).
"""
import hashlib
import io
import os
import sys
import zipfile


class Unseekable(io.RawIOBase):
    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)


def main():
    out, template = sys.argv[1], sys.argv[2]
    resources = [a.split("=", 1) for a in sys.argv[3:]]
    meta = open(template).read()
    for name, path in resources:
        h = hashlib.blake2b(digest_size=32)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        section = 'file-resource "%s" {\nlength=%d\nblake2b-256=%s\n}' % (name, os.path.getsize(path), h.hexdigest())
        meta = meta.replace("@RESOURCE %s@" % name, section)
    with open(out, "wb") as raw:
        with zipfile.ZipFile(Unseekable(raw), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            info = zipfile.ZipInfo("meta.conf", (2023, 11, 14, 22, 13, 20))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, meta)
            for name, path in resources:
                info = zipfile.ZipInfo("data/" + name, (1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as src, z.open(info, "w", force_zip64=False) as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)


if __name__ == "__main__":
    main()
