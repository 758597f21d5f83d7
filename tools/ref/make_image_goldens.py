#!/usr/bin/env python3
"""Write the image-input test set (tests/data/images/): small PNG/JPEG files of
every kind the loader must read or refuse, and `expected.safetensors` with what
the diffusers side makes of them:

  dec.NAME      U8 [h, w, 3]  diffusers.utils.load_image(path) as an array
                              (PIL: exif_transpose, convert("RGB"))
  rs.NAME.WxH   U8 [H, W, 3]  load_image(path).resize((W, H), LANCZOS)
  pre.NAME.WxH  F32 [3, H, W] VaeImageProcessor(vae_scale_factor=16)
                              .preprocess(load_image(path), H, W)[0]
  mask.NAME.WxH F32 [H, W]    the inpainting mask processor (grayscale,
                              binarize, no normalize) .preprocess(...)[0, 0]
  def.NAME      I32 [2]       get_default_height_width(image): (w, h)

The one deliberate difference from PIL: 16-bit GRAY PNGs, where PIL's
convert("RGB") clips every value above 255 to 255; the engine keeps the high
byte. For them `dec.` holds the high byte (computed here from the raw samples)
and the file is listed in metadata "not_pil".

Files the loader must refuse are listed in metadata "refuse" as
NAME=substring-of-the-error. Run with the oracle venv:

    /path/to/venv/bin/python tools/ref/make_image_goldens.py tests/data/images
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import load_image
from safetensors.numpy import save_file


def chunk(tag, data):
    c = struct.pack(">I", len(data)) + tag + data
    return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def raw_png(samples, depth, ctype, palette=None, trns=None, interlace=False, exif=None, tail_exif=False):
    """A PNG from integer samples [h, w, c] (any legal depth/colour type)."""
    h, w, c = samples.shape

    def pack_rows(img):
        out = b""
        for row in img:
            vals = row.reshape(-1)
            if depth == 16:
                data = b"".join(struct.pack(">H", int(v)) for v in vals)
            elif depth == 8:
                data = bytes(int(v) for v in vals)
            else:
                bits = "".join(format(int(v), "0%db" % depth) for v in vals)
                bits += "0" * (-len(bits) % 8)
                data = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            out += b"\x00" + data
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack_rows(sub)
    else:
        raw = pack_rows(samples)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if exif is not None and not tail_exif:
        out += chunk(b"eXIf", exif)
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    if exif is not None and tail_exif:
        out += chunk(b"eXIf", exif)
    return out + chunk(b"IEND", b"")


def tiff_orientation(o, big_endian=False):
    e = ">" if big_endian else "<"
    hdr = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", o, 0) + struct.pack(e + "I", 0)
    return hdr + ifd


def picture(w, h, seed):
    """A smooth picture with edges (so resizing has something to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / 3.1 + seed), 128 + 100 * np.cos(y / 2.3), (x * 7 + y * 13) % 256], -1)
    img[(x // 5 + y // 4) % 3 == 0] = 255 - img[(x // 5 + y // 4) % 3 == 0]
    img += rng.integers(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    files = {}
    not_pil = {}

    pic = picture(37, 23, 1)
    big = picture(120, 90, 2)
    files["rgb8.png"] = raw_png(pic, 8, 2)
    files["big.png"] = raw_png(big, 8, 2)
    alpha = (np.arange(37 * 23).reshape(23, 37, 1) * 7 % 256).astype(np.uint8)
    files["rgba8.png"] = raw_png(np.concatenate([pic, alpha], -1), 8, 6)
    gray = pic[..., :1]
    files["gray8.png"] = raw_png(gray, 8, 0)
    files["graya8.png"] = raw_png(np.concatenate([gray, alpha], -1), 8, 4)
    for d in (1, 2, 4):
        files["gray%d.png" % d] = raw_png((gray.astype(np.int64) >> (8 - d)), d, 0)
    g16 = (gray.astype(np.int64) * 257 + np.arange(37)[None, :, None] * 3) % 65536
    files["gray16.png"] = raw_png(g16, 16, 0)
    not_pil["gray16.png"] = np.repeat((g16 >> 8).astype(np.uint8), 3, -1)
    rgb16 = (pic.astype(np.int64) * 256 + 255 - pic.astype(np.int64))
    files["rgb16.png"] = raw_png(rgb16, 16, 2)
    files["rgba16.png"] = raw_png(np.concatenate([rgb16, alpha.astype(np.int64) * 257], -1), 16, 6)
    pal = [(i * 37) % 256 for i in range(16 * 3)]
    idx = (pic[..., :1].astype(np.int64) >> 4)
    files["pal4.png"] = raw_png(idx, 4, 3, palette=pal, trns=[0, 128, 255])
    files["interlaced.png"] = raw_png(pic, 8, 2, interlace=True)
    files["interlaced_gray2.png"] = raw_png((gray.astype(np.int64) >> 6), 2, 0, interlace=True)
    files["exif6.png"] = raw_png(pic, 8, 2, exif=tiff_orientation(6))
    # an inpainting mask for big.png: an ellipse with a gray ramp across the 0.5 threshold, as RGB
    yy, xx = np.mgrid[0:90, 0:120].astype(np.float64)
    r = np.sqrt(((xx - 70) / 38) ** 2 + ((yy - 40) / 26) ** 2)
    m = np.clip((1.3 - r) * 400, 0, 255).astype(np.uint8)
    files["mask.png"] = raw_png(np.repeat(m[..., None], 3, -1), 8, 2)
    # the pipeline goldens' inputs (tests/golden/images): a 70x52 JPEG photo (default size 64x48) and its mask
    yy, xx = np.mgrid[0:52, 0:70].astype(np.float64)
    r = np.sqrt(((xx - 40) / 20) ** 2 + ((yy - 22) / 14) ** 2)
    m2 = np.clip((1.3 - r) * 400, 0, 255).astype(np.uint8)
    files["mask_70x52.png"] = raw_png(np.repeat(m2[..., None], 3, -1), 8, 2)
    files["exif8_tail.png"] = raw_png(pic, 8, 2, exif=tiff_orientation(8, big_endian=True), tail_exif=True)

    def jpeg(img, **kw):
        b = io.BytesIO()
        img.save(b, "JPEG", **kw)
        return b.getvalue()

    pim = Image.fromarray(big)
    files["q90_420.jpg"] = jpeg(pim, quality=90)
    files["q95_444.jpg"] = jpeg(pim, quality=95, subsampling=0)
    files["progressive.jpg"] = jpeg(pim, quality=85, progressive=True)
    files["gray.jpg"] = jpeg(pim.convert("L"), quality=90)
    files["odd.jpg"] = jpeg(Image.fromarray(pic), quality=80)
    files["in_70x52.jpg"] = jpeg(Image.fromarray(picture(70, 52, 3)), quality=90)
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        files["exif%d.jpg" % o] = jpeg(Image.fromarray(pic), quality=92, exif=ex.tobytes())

    refuse = {}
    files["cmyk.jpg"] = jpeg(pim.convert("CMYK"), quality=90)
    refuse["cmyk.jpg"] = "CMYK JPEG not supported"
    files["trunc.png"] = files["big.png"][: len(files["big.png"]) // 2]
    refuse["trunc.png"] = "truncated"
    files["trunc.jpg"] = files["q90_420.jpg"][: len(files["q90_420.jpg"]) // 2]
    refuse["trunc.jpg"] = "truncated JPEG"
    files["badcrc.png"] = files["rgb8.png"][:33 + 8] + b"\x00\x00\x00\x00" + files["rgb8.png"][33 + 12:]
    refuse["badcrc.png"] = "corrupt"
    # 30000 x 30000: a header and a few rows of zeros; must be refused at the header
    bomb_rows = zlib.compress(b"\x00" * (1 + 30000 * 3) * 4, 9)
    files["bomb.png"] = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                         + chunk(b"IDAT", bomb_rows) + chunk(b"IEND", b""))
    refuse["bomb.png"] = "larger than allowed"
    j = bytearray(files["odd.jpg"])
    sof = j.find(b"\xff\xc0")
    struct.pack_into(">HH", j, sof + 5, 40000, 40000)
    files["bomb.jpg"] = bytes(j)
    refuse["bomb.jpg"] = "larger than allowed"
    files["text.png"] = b"hello, this is not an image\n"
    refuse["text.png"] = "not a PNG or JPEG"
    files["empty.jpg"] = b""
    refuse["empty.jpg"] = "not a PNG or JPEG"

    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)

    proc = VaeImageProcessor(vae_scale_factor=16)
    mproc = VaeImageProcessor(vae_scale_factor=16, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    tensors = {}
    sizes = {"rgb8.png": [(16, 16), (64, 48), (37, 8), (13, 23)], "big.png": [(48, 32), (112, 80), (128, 96), (120, 40), (50, 90)], "mask.png": [(112, 80), (64, 48)], "in_70x52.jpg": [(64, 48)], "mask_70x52.png": [(64, 48)],
             "q90_420.jpg": [(64, 48)], "exif6.png": [(16, 32)], "rgba8.png": [(32, 16)], "gray16.png": [(16, 16)]}
    for name in files:
        if name in refuse:
            continue
        path = os.path.join(outdir, name)
        im = load_image(path)
        arr = np.asarray(im, dtype=np.uint8)
        if name in not_pil:
            arr = not_pil[name]
        tensors["dec." + name] = np.ascontiguousarray(arr)
        if name not in not_pil:
            dh, dw = proc.get_default_height_width(im)
            tensors["def." + name] = np.array([dw, dh], dtype=np.int32)
        for (w, h) in sizes.get(name, []):
            src = Image.fromarray(arr) if name in not_pil else im
            tensors["rs.%s.%dx%d" % (name, w, h)] = np.ascontiguousarray(src.resize((w, h), Image.LANCZOS), np.uint8)
            if w % 16 == 0 and h % 16 == 0 and w * h <= 64 * 48:  # preprocess rounds a given size down to 16
                tensors["pre.%s.%dx%d" % (name, w, h)] = np.ascontiguousarray(proc.preprocess(src, h, w)[0].numpy(), np.float32)
                tensors["mask.%s.%dx%d" % (name, w, h)] = np.ascontiguousarray(mproc.preprocess(src, h, w)[0, 0].numpy(), np.float32)
    meta = {"refuse": json.dumps(refuse, sort_keys=True), "not_pil": json.dumps(sorted(not_pil)),
            "versions": json.dumps({"pillow": Image.__version__, "numpy": np.__version__})}
    # safetensors.numpy writes the arrays' memory as it lies: keep every one C-contiguous
    assert all(t.flags["C_CONTIGUOUS"] for t in tensors.values())
    save_file(tensors, os.path.join(outdir, "expected.safetensors"), metadata=meta)
    total = sum(len(d) for d in files.values()) + os.path.getsize(os.path.join(outdir, "expected.safetensors"))
    print("wrote %d files and %d expected tensors (%d bytes) to %s" % (len(files), len(tensors), total, outdir))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/images")
