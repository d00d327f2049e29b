"""Render real H.264 MP4s with the ffmpeg binary that imageio-ffmpeg ships.

Pillow draws the still parts (a striped background, the prompt text, the input image) into PNGs,
and ffmpeg moves them over time. That avoids ffmpeg's drawtext, which needs system fonts that a
fresh machine may not have. Everything is rendered at a low frame rate with the fastest x264
preset: the point is a decodable video of the right size and length, not a pretty one.
"""

import hashlib
import subprocess
import textwrap
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont, ImageOps

FPS = 12
X264_OPTIONS = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


class RenderError(Exception):
    pass


def even(value: int) -> int:
    """yuv420p needs even dimensions; an odd one goes up by one."""
    return max(2, (value + 1) // 2 * 2)


def render_text_video(prompt: str, width: int, height: int, seconds: float, out: Path) -> None:
    """Draw the prompt on a background that pans sideways while the text bobs up and down."""
    width, height = even(width), even(height)
    work = out.parent
    background = work / f"{out.stem}-bg.png"
    card = work / f"{out.stem}-text.png"
    _striped_background(prompt, width * 2, height).save(background)
    _text_card(prompt or "(no prompt)", width, height).save(card)
    # The background is twice as wide as the frame; crop walks across it over the clip, and the
    # text card drifts on a sine so that every frame differs from its neighbours.
    graph = (
        f"[0:v]crop={width}:{height}:x='(iw-ow)*t/{seconds}':y=0[bg];"
        f"[bg][1:v]overlay=x='(W-w)/2':y='(H-h)/2+H/8*sin(2*PI*t/{seconds})',format=yuv420p[v]"
    )
    try:
        _ffmpeg(
            [
                ["-loop", "1", "-framerate", str(FPS), "-i", str(background)],
                ["-loop", "1", "-framerate", str(FPS), "-i", str(card)],
                ["-filter_complex", graph, "-map", "[v]"],
            ],
            seconds,
            out,
        )
    finally:
        background.unlink(missing_ok=True)
        card.unlink(missing_ok=True)


def render_image_video(image: Image.Image, width: int, height: int, seconds: float, out: Path):
    """Pan and zoom slowly over the input image (the Ken Burns effect)."""
    width, height = even(width), even(height)
    still = out.parent / f"{out.stem}-still.png"
    # Fit the image to cover the frame first, so zoompan works on a frame-sized picture and
    # never has to scale a 4000-pixel upload sixty times.
    ImageOps.fit(image.convert("RGB"), (width, height)).save(still)
    frames = max(1, round(seconds * FPS))
    zoom = (
        f"zoompan=z='1+0.3*on/{frames}':x='(iw-iw/zoom)*on/{frames}':y='(ih-ih/zoom)/2'"
        f":d=1:s={width}x{height}:fps={FPS},format=yuv420p"
    )
    try:
        loop = ["-loop", "1", "-framerate", str(FPS), "-i", str(still)]
        _ffmpeg([loop, ["-vf", zoom]], seconds, out)
    finally:
        still.unlink(missing_ok=True)


def pad_with_free_box(path: Path, target_bytes: int) -> None:
    """Grow an MP4 to about target_bytes with a trailing `free` box, which players skip.

    The box body is made with truncate(), so the zeros are a sparse hole on disk and never pass
    through memory.
    """
    size = path.stat().st_size
    padding = target_bytes - size
    if padding < 16:
        return
    with path.open("r+b") as f:
        f.seek(size)
        if padding < 2**32:
            f.write(padding.to_bytes(4, "big") + b"free")
        else:
            # A size field of 1 means "a 64-bit size follows the type".
            f.write((1).to_bytes(4, "big") + b"free" + padding.to_bytes(8, "big"))
        f.truncate(size + padding)


def _ffmpeg(option_groups: list[list[str]], seconds: float, out: Path) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    for group in option_groups:
        command += group
    command += ["-t", f"{seconds:g}", "-r", str(FPS), *X264_OPTIONS]
    command += ["-movflags", "+faststart", "-an", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise RenderError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-500:]}")


def _hue(prompt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(prompt.encode()).digest()
    return digest[0], digest[1], digest[2]


def _striped_background(prompt: str, width: int, height: int) -> Image.Image:
    """Diagonal stripes in two colours taken from the prompt's hash."""
    r, g, b = _hue(prompt)
    base = (r // 2, g // 2, b // 2)
    stripe = (255 - r // 2, 255 - g // 2, 255 - b // 2)
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)
    step = max(24, height // 6)
    for x in range(-height, width, step * 2):
        draw.polygon(
            [(x, height), (x + step, height), (x + step + height, 0), (x + height, 0)], fill=stripe
        )
    return image


def _text_card(prompt: str, width: int, height: int) -> Image.Image:
    """The prompt, wrapped, white on a translucent dark panel."""
    font_size = max(10, height // 12)
    font = ImageFont.load_default(size=font_size)
    chars_per_line = max(8, int(width * 0.8 / (font_size * 0.55)))
    lines = textwrap.wrap(prompt, chars_per_line)[: max(1, int(height * 0.5 / font_size))]
    text = "\n".join(lines) or " "
    probe_draw = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe_draw.multiline_textbbox((0, 0), text, font=font)
    pad = font_size // 2
    card = Image.new("RGBA", (min(width, right - left + 2 * pad), bottom - top + 2 * pad))
    draw = ImageDraw.Draw(card)
    draw.rectangle([0, 0, card.width, card.height], fill=(0, 0, 0, 150))
    draw.multiline_text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    return card
