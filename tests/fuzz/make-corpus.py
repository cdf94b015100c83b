#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets under tests/fuzz/corpus/.

The frames are the ones QEMU 7.2 sends (PROTOCOL.md §4, §6, §11), aimed at
the objects fuzz-common.c seeds into the export (file, dir, dir/sub, fifo,
and symlinks lroot -> /, lup -> ../outside, labs -> the outside canary ...),
plus the malformed classes of PROTOCOL.md §7.5.  x86-64 values (host byte
order, little endian).  Run from anywhere: ./make-corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

T = dict(OPEN=2, CREATE=3, MKNOD=4, MKDIR=5, SYMLINK=6, LINK=7, LSTAT=8,
         READLINK=9, STATFS=10, CHMOD=11, CHOWN=12, TRUNCATE=13, UTIME=14,
         RENAME=15, REMOVE=16, LGETXATTR=17, LLISTXATTR=18, LSETXATTR=19,
         LREMOVEXATTR=20, GETVERSION=21)
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0, 1, 2, 0o100, 0o200, 0o1000, 0o2000
O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW, O_PATH = 0o4000, 0o200000, 0o400000, 0o10000000
UTIME_NOW, UTIME_OMIT = 0x3fffffff, 0x3ffffffe


def d(v):
    return struct.pack("<i", v) if v < 0 else struct.pack("<I", v & 0xffffffff)


def q(v):
    return struct.pack("<q", v) if v < 0 else struct.pack("<Q", v & 0xffffffffffffffff)


def s(v, nul=False):
    b = v.encode() if isinstance(v, str) else v
    if nul:
        b += b"\0"
    return struct.pack("<H", len(b)) + b


def S(v):  # a V9fsPath field: QEMU counts the trailing NUL
    return s(v, True)


def frame(t, body):
    return struct.pack("<II", t, len(body)) + body


# One well-formed body per request type, the way QEMU builds it.
BODIES = [
    ("open-file", T["OPEN"], S("//file") + d(O_RDONLY)),
    ("open-dir", T["OPEN"], S("//dir") + d(O_DIRECTORY)),
    ("open-wronly-append", T["OPEN"], S("//file") + d(O_WRONLY | O_APPEND)),
    ("open-trunc", T["OPEN"], S("//dir/f") + d(O_RDWR | O_TRUNC)),
    ("open-fifo", T["OPEN"], S("//fifo") + d(O_RDONLY)),
    ("open-lroot", T["OPEN"], S("//lroot") + d(O_DIRECTORY)),
    ("open-labs", T["OPEN"], S("//labs") + d(O_RDWR)),
    ("open-lup", T["OPEN"], S("//lup/c1") + d(O_RDONLY)),
    ("open-dotdot", T["OPEN"], S("//dir/../../..") + d(O_DIRECTORY)),
    ("open-path-nofollow", T["OPEN"], S("//lf") + d(O_PATH | O_NOFOLLOW)),
    ("create", T["CREATE"], s("//new") + d(O_CREAT | O_EXCL | O_WRONLY) + d(0o640) + d(0) + d(0)),
    ("create-user", T["CREATE"], s("//dir/new") + d(O_CREAT | O_RDWR) + d(0o644) + d(1000) + d(1000)),
    ("create-9p2000u", T["CREATE"], s("//new2") + d(O_CREAT | O_WRONLY) + d(0o600) + d(0) + d(-1)),
    ("create-via-link", T["CREATE"], s("//labsdir/evil") + d(O_CREAT | O_WRONLY) + d(0o600) + d(0) + d(0)),
    ("mknod-fifo", T["MKNOD"], d(0) + d(0) + s("//nfifo") + d(0o10600) + q(0)),
    ("mknod-chr", T["MKNOD"], d(0) + d(0) + s("//nchr") + d(0o20600) + q(259)),
    ("mkdir", T["MKDIR"], d(0) + d(0) + s("//zz") + d(0o40755)),
    ("mkdir-user", T["MKDIR"], d(1000) + d(1000) + s("//dir/zz") + d(0o755)),
    ("mkdir-through-lroot", T["MKDIR"], d(0) + d(0) + s("//lroot/tmp/x") + d(0o755)),
    ("symlink", T["SYMLINK"], d(0) + d(0) + s("/etc/passwd") + s("//sl")),
    ("link", T["LINK"], S("//file") + s("//hard")),
    ("link-out", T["LINK"], S("//labs") + s("//hard2")),
    ("lstat-root", T["LSTAT"], S("/")),
    ("lstat-file", T["LSTAT"], S("//file")),
    ("lstat-dotdot", T["LSTAT"], S("//dir/..")),
    ("readlink", T["READLINK"], S("//labs") + d(4096)),
    ("readlink-small", T["READLINK"], S("//lup") + d(3)),
    ("statfs", T["STATFS"], S("/")),
    ("statfs-lroot", T["STATFS"], S("//lroot")),
    ("chmod", T["CHMOD"], S("//file") + d(0o100604)),
    ("chmod-labs", T["CHMOD"], S("//labs") + d(0o777)),
    ("chmod-setuid", T["CHMOD"], S("//dir/f") + d(0o4755)),
    ("chown", T["CHOWN"], S("//file") + d(4242) + d(4242)),
    ("chown-ctime", T["CHOWN"], S("//labs") + d(-1) + d(-1)),
    ("truncate", T["TRUNCATE"], S("//file") + q(3)),
    ("truncate-labs", T["TRUNCATE"], S("//labs") + q(0)),
    ("utime", T["UTIME"], S("//file") + q(3000) + q(UTIME_OMIT) + q(4000) + q(0)),
    ("utime-now", T["UTIME"], S("//labs") + q(0) + q(UTIME_NOW) + q(0) + q(UTIME_NOW)),
    ("rename", T["RENAME"], s("//file") + s("//dir/moved")),
    ("rename-out", T["RENAME"], s("//lup/c1") + s("//stolen")),
    ("remove", T["REMOVE"], s("//empty")),
    ("remove-dir", T["REMOVE"], s("//dir/sub")),
    ("lgetxattr-probe", T["LGETXATTR"], d(0) + S("//file") + s("user.k")),
    ("lgetxattr", T["LGETXATTR"], d(6) + S("//file") + s("user.k")),
    ("llistxattr-probe", T["LLISTXATTR"], d(0) + S("//file")),
    ("llistxattr", T["LLISTXATTR"], d(7) + S("//file")),
    ("lsetxattr", T["LSETXATTR"], S("//file") + s("user.new") + s(b"ab\0cd") + d(5) + d(0)),
    ("lsetxattr-labs", T["LSETXATTR"], S("//labs") + s("user.x") + s("v") + d(1) + d(0)),
    ("lremovexattr", T["LREMOVEXATTR"], S("//file") + s("user.k")),
    ("getversion", T["GETVERSION"], S("//file")),
    ("getversion-fifo", T["GETVERSION"], S("//fifo")),
]

# Malformed bodies (PROTOCOL.md §7.5): framed correctly, answered EINVAL.
MALFORMED = [
    ("bad-truncated-string", T["LSTAT"], struct.pack("<H", 40) + b"//file"),
    ("bad-embedded-nul", T["LSTAT"], s(b"//fi\0le")),
    ("bad-trailing", T["CHMOD"], S("//file") + d(0o644) + b"junk"),
    ("bad-empty", T["OPEN"], b""),
    ("bad-readlink-neg", T["READLINK"], S("//labs") + d(-1)),
    ("bad-readlink-huge", T["READLINK"], S("//labs") + d(0x7fffffff)),
    ("bad-getxattr-neg", T["LGETXATTR"], d(-5) + S("//file") + s("user.k")),
    ("bad-listxattr-huge", T["LLISTXATTR"], d(70000) + S("//file")),
    ("bad-setxattr-size", T["LSETXATTR"], S("//file") + s("user.k") + s("ab") + d(40) + d(0)),
]

# Framing violations: the daemon closes the connection.
FRAMING = [
    ("frame-size-65537", struct.pack("<II", T["LSTAT"], 65537)),
    ("frame-size-max", struct.pack("<II", T["LSTAT"], 0xffffffff)),
    ("frame-type-0", struct.pack("<II", 0, 4) + s("/")),
    ("frame-type-1", struct.pack("<II", 1, 4) + s("/")),
    ("frame-type-22", struct.pack("<II", 22, 4) + s("/")),
    ("frame-type-max", struct.pack("<II", 0xffffffff, 4) + s("/")),
]

# PROTOCOL.md §11, byte for byte.
APPENDIX = [
    ("appendix-lstat", bytes.fromhex("08000000 04000000 02002f00")),
    ("appendix-open", bytes.fromhex("02000000 0d000000 07002f2f66696c6500 00000000")),
    ("appendix-mkdir", bytes.fromhex("05000000 12000000 0000000000000000 04002f2f7a7a ed410000")),
]

# What a Linux guest session looks like (§6): attach, walk, getattr, open...
SESSION = b"".join([
    frame(T["LSTAT"], S("/")),
    frame(T["LSTAT"], S("//dir")),
    frame(T["GETVERSION"], S("//dir")),
    frame(T["OPEN"], S("//dir") + d(O_DIRECTORY)),
    frame(T["CREATE"], s("//dir/n") + d(O_CREAT | O_EXCL | O_WRONLY) + d(0o640) + d(1000) + d(1000)),
    frame(T["LSTAT"], S("//dir/n")),
    frame(T["STATFS"], S("//dir/n")),
    frame(T["LGETXATTR"], d(0) + S("//dir/n") + s("security.capability")),
    frame(T["CHMOD"], S("//dir/n") + d(0o100600)),
    frame(T["UTIME"], S("//dir/n") + q(1) + q(UTIME_OMIT) + q(2) + q(UTIME_OMIT)),
    frame(T["CHOWN"], S("//dir/n") + d(-1) + d(-1)),
    frame(T["TRUNCATE"], S("//dir/n") + q(10)),
    frame(T["RENAME"], s("//dir/n") + s("//dir/m")),
    frame(T["REMOVE"], s("//dir/m")),
])


def write(target, name, data):
    d_ = os.path.join(OUT, target)
    os.makedirs(d_, exist_ok=True)
    with open(os.path.join(d_, name), "wb") as f:
        f.write(data)


def main():
    for name, t, body in BODIES + MALFORMED:
        write("proto", name, bytes([t - 2]) + body)
        write("ops", name, frame(t, body))
        write("conn", name, bytes([3, 0]) + frame(t, body))
    for name, data in FRAMING + APPENDIX:
        write("proto", name, bytes([struct.unpack("<I", data[:4])[0] % 20 if data[0] < 22 else 0]) + data)
        write("ops", name, data)
        write("conn", name, bytes([3, 0]) + data)
    # Reply encoders: selector 0x80 + n.
    for n in range(7):
        write("proto", "reply-%d" % n, bytes([0x80 + n]) + bytes(range(1, 160)))
    write("proto", "reply-string-max", bytes([0x86]) + struct.pack("<I", 65534)[:3])
    write("proto", "reply-string-over", bytes([0x86]) + struct.pack("<I", 65535)[:3])
    every = b"".join(frame(t, b) for _, t, b in BODIES)
    bad = b"".join(frame(t, b) for _, t, b in MALFORMED)
    write("ops", "session", SESSION)
    write("ops", "every-type", every)
    write("ops", "every-malformed", bad)
    # The connection target: the same streams cut into chunks of every size.
    for mode, tag in ((0, "bytewise"), (1, "chunk7"), (2, "chunk100"), (3, "whole"), (5, "chunk7-slow")):
        write("conn", "session-" + tag, bytes([mode, 42]) + SESSION)
    write("conn", "every-type", bytes([2, 7]) + every)
    write("conn", "every-malformed", bytes([1, 9]) + bad)
    write("conn", "session-then-bad-frame", bytes([3, 0]) + SESSION + FRAMING[0][1])
    write("conn", "half-frame-at-eof", bytes([0, 1]) + SESSION + frame(T["LSTAT"], S("//file"))[:7])
    big = frame(T["LSETXATTR"], S("//file") + s("user.big") + s(b"v" * 60000) + d(60000) + d(0))
    write("conn", "big-frame", bytes([2, 3]) + big + frame(T["LGETXATTR"], d(65534) + S("//file") + s("user.big")))
    write("conn", "max-body", bytes([3, 0]) + frame(T["LSTAT"], s("/" * 65534)))


if __name__ == "__main__":
    main()
