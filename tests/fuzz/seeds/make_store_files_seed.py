#!/usr/bin/env python3
"""tests/fuzz/seeds/make_store_files_seed.py IN OUT — fuzz seed of a version 2 block store with
files (storage/store.h): IN is a seed of fuzz_store_index (the 256-byte header, then the index) of
a store without files; OUT is the same store with two small files in sections 6 and 7 and its
sizes and checksums (XXH64 through libxxhash) brought up to date. Made so:
  tests/fuzz/seeds/make_store_files_seed.py tests/fuzz/seeds/fuzz_store_index/tiny-zstd \
      tests/fuzz/seeds/fuzz_store_index/tiny-files"""
import ctypes
import ctypes.util
import struct
import sys

xxh = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
xxh.XXH64.restype = ctypes.c_uint64
xxh.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh64(b):
    return xxh.XXH64(bytes(b), len(b), 0)


src = open(sys.argv[1], "rb").read()
head, index = bytearray(src[:256]), bytearray(src[256:])
assert head[:8] == b"ZTSTORE\0" and struct.unpack_from("<I", head, 80)[0] == 0, "a store without files"
files = [(b"tokenizer/tokenizer.json", b'{"model": {"type": "BPE", "vocab": {}, "merges": []}}'),
         (b"scheduler/notes.txt", b"shift 3.0")]
recs, data = bytearray(), bytearray()
for name, body in files:
    rec = bytearray(64)
    rec[:len(name)] = name
    struct.pack_into("<QQ", rec, 48, len(data), len(body))
    recs += rec
    data += body
index += recs + data
index_offset = struct.unpack_from("<Q", head, 24)[0]
struct.pack_into("<I", head, 8, 2)  # version
struct.pack_into("<Q", head, 16, (index_offset + len(index) + 4095) // 4096 * 4096)  # file_size
struct.pack_into("<Q", head, 32, len(index))
struct.pack_into("<Q", head, 40, xxh64(index))
struct.pack_into("<IIQ", head, 80, len(files), 0, len(data))
struct.pack_into("<Q", head, 248, xxh64(head[:248]))
open(sys.argv[2], "wb").write(head + index)
