"""Draws the Teams app icons (a clapperboard, «claqueta»): color.png 192×192 and outline.png 32×32.

    .venv/bin/python deploy/appPackage/make_icons.py     # rewrites both PNGs next to this file

Needs Pillow (a development dependency: the PNGs are committed, the bot never draws them).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

HERE = Path(__file__).resolve().parent
# PROINVERSIÓN-like institutional blue; also the manifest's accentColor.
BLUE = (0, 75, 141)
WHITE = (255, 255, 255)

# The glyph is drawn on a 32-unit grid; SUPER is the supersampling factor used before downscaling.
GRID = 32
SUPER = 8


def _poly(points, scale: float, offset: float = 0.0):
    return [(offset + x * scale, offset + y * scale) for x, y in points]


def _rotate(points, pivot, degrees: float):
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    px, py = pivot
    return [(px + (x - px) * cos - (y - py) * sin, py + (x - px) * sin + (y - py) * cos) for x, y in points]


def _striped(size: int, scale: float, band: tuple[float, float, float, float], rotation: float,
             pivot: tuple[float, float]) -> Image.Image:
    """A filled band with diagonal gaps (the clapper's stripes), optionally rotated about `pivot`."""
    x0, y0, x1, y1 = band
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    draw.polygon(_poly(_rotate([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], pivot, rotation), scale), fill=255)
    height = y1 - y0
    gap, period = 2.2, 6.2
    x = x0 + 3.2
    while x < x1:
        stripe = [(x + height * 0.6, y0), (x + height * 0.6 + gap, y0), (x + gap, y1), (x, y1)]
        draw.polygon(_poly(_rotate(stripe, pivot, rotation), scale), fill=0)
        x += period
    return layer


def glyph_mask(size: int) -> Image.Image:
    """The clapperboard as an antialiased alpha mask of `size`×`size` pixels (255 = ink)."""
    big = size * SUPER
    scale = big / GRID
    body = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(body)
    # The slate: a frame (open inside) under a striped band.
    draw.rounded_rectangle(_poly([(3, 19.4), (29, 29)], scale), radius=2 * scale, fill=255)
    draw.rectangle(_poly([(5.4, 21.6), (26.6, 26.6)], scale), fill=0)
    band = _striped(big, scale, (3, 14.2, 29, 17.8), 0, (3, 14.2))
    # The clapper stick, hinged at the slate's top-left corner and raised, as in a take about to start.
    stick = _striped(big, scale, (3, 8.6, 29, 12.2), -16, (3, 12.2))
    mask = ImageChops.lighter(ImageChops.lighter(body, band), stick)
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def color_icon() -> Image.Image:
    """192×192: the white glyph on a full blue square, inside Teams' central safe area."""
    size, glyph = 192, 120
    icon = Image.new("RGBA", (size, size), BLUE + (255,))
    white = Image.new("RGBA", (glyph, glyph), WHITE + (255,))
    offset = (size - glyph) // 2
    icon.paste(white, (offset, offset), glyph_mask(glyph))
    return icon


def outline_icon() -> Image.Image:
    """32×32: white only, on transparency (Teams recolours it); alpha carries the antialiasing."""
    icon = Image.new("RGBA", (32, 32), WHITE + (0,))
    icon.putalpha(glyph_mask(32))
    return icon


def main(argv: list[str] | None = None) -> int:
    target = Path(argv[0]) if argv else HERE
    color_icon().save(target / "color.png", optimize=True)
    outline_icon().save(target / "outline.png", optimize=True)
    print(f"Íconos escritos en {target}: color.png (192×192) y outline.png (32×32).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
