"""Renders the printable ASCII characters of DejaVu Sans Mono (Bitstream Vera licence, free to
embed) into 7x13 8-bit coverage cells: crates/contra/src/plot/font_7x13.bin, 95 glyphs from
' ' to '~', row-major. contra's PNG plots draw text with it; SVG plots use real text.

    /root/venv-ref/bin/python tools/make_font.py
"""
import pathlib

from PIL import Image, ImageDraw, ImageFont

W, H = 7, 13
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
OUT = pathlib.Path(__file__).resolve().parents[1] / "crates/contra/src/plot/font_7x13.bin"

font = ImageFont.truetype(FONT, 11)
out = bytearray()
for code in range(32, 127):
    img = Image.new("L", (W, H), 0)
    ImageDraw.Draw(img).text((0, 0), chr(code), fill=255, font=font)
    out += img.tobytes()
OUT.write_bytes(bytes(out))
print("wrote", OUT, len(out), "bytes")
