#!/usr/bin/python3
"""Tiny images in formats SkiaSharp cannot write itself (CMYK JPEG, 16-bit PNG, palette PNG, GIF, BMP, EXIF
orientation), made with Debian's PIL 9.4. Every image is 32x24: left half red (200,30,30), right half blue
(30,30,200), so a test can check the decoded colours; exif6.jpg stores that image with EXIF orientation 6
(displayed rotated 90 degrees clockwise: 24x32, red on top).

Run from the repository root:  /usr/bin/python3 tests/FeatureTransfer.Tests/Fixtures/preprocessing/make_format_fixtures.py
"""
import os, struct, zlib
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "formats")
W, H = 32, 24
RED, BLUE = (200, 30, 30), (30, 30, 200)


def base():
    img = Image.new("RGB", (W, H), BLUE)
    img.paste(Image.new("RGB", (W // 2, H), RED), (0, 0))
    return img


def png16(path):
    # PIL cannot save 16-bit RGB PNG: write it by hand (colour type 2, bit depth 16).
    rows = b""
    for y in range(H):
        row = b"\x00"
        for x in range(W):
            r, g, b = RED if x < W // 2 else BLUE
            row += struct.pack(">HHH", r * 257, g * 257, b * 257)
        rows += row
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)


def main():
    os.makedirs(OUT, exist_ok=True)
    img = base()
    img.convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    img.convert("L").save(os.path.join(OUT, "gray.jpg"), quality=95)
    img.convert("L").save(os.path.join(OUT, "gray.png"))
    png16(os.path.join(OUT, "rgb16.png"))
    pal = img.convert("P", palette=Image.ADAPTIVE, colors=4)
    pal.save(os.path.join(OUT, "palette.png"))
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.new("L", (W, H), 255))
    for y in range(H // 2, H):  # bottom half fully transparent
        for x in range(W):
            rgba.putpixel((x, y), (255, 255, 255, 0))
    rgba.save(os.path.join(OUT, "rgba.png"))
    green = Image.new("RGB", (W, H), (30, 200, 30))
    img.save(os.path.join(OUT, "anim.gif"), save_all=True, append_images=[green], duration=100, loop=0)
    img.save(os.path.join(OUT, "img.bmp"))
    img.save(os.path.join(OUT, "img.webp"), lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(os.path.join(OUT, "exif6.jpg"), quality=95, exif=exif.tobytes())


if __name__ == "__main__":
    main()
