#!/usr/bin/env python3
"""The image step done with Pillow (libjpeg-turbo, libwebp) and numpy: the
reference that dynamo's image step is measured against, in the same run.

Usage: pillow_image_step.py GHOST.png FRIEND.png ITERATIONS
Prints one JSON object: per style, the median milliseconds per image, the
output size, and the output's PSNR against the source (RGB; for friends over
the pixels left opaque, as dynamo's benchmark computes it).
"""
import io
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image

JPEG_QUALITY = 80
HARD, BORDER = 60.0, 4


def ghost(data):
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def friend(data):
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    frame = np.concatenate([
        rgb[:BORDER].reshape(-1, 3), rgb[-BORDER:].reshape(-1, 3),
        rgb[:, :BORDER].reshape(-1, 3), rgb[:, -BORDER:].reshape(-1, 3),
    ])
    background = np.median(frame, axis=0)
    distance = np.sqrt(((rgb - background) ** 2).sum(axis=2))
    soft = float(np.clip(0.75 * np.sqrt((background ** 2).sum()), HARD + 60, 250))
    alpha = np.clip((distance - HARD) / (soft - HARD), 0, 1)
    rgba = np.dstack([rgb, alpha * 255]).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="WEBP", lossless=True)
    return out.getvalue()


def psnr(source, encoded):
    a = np.asarray(Image.open(io.BytesIO(source)).convert("RGBA"), dtype=np.float64)
    b = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGBA"), dtype=np.float64)
    opaque = b[:, :, 3] == 255
    diff = (a[:, :, :3] - b[:, :, :3])[opaque]
    mse = float((diff ** 2).mean()) if diff.size else 0.0
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def measure(work, data, iterations):
    output = work(data)  # warm-up
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        output = work(data)
        times.append((time.perf_counter() - start) * 1000)
    return {"ms": statistics.median(times), "bytes": len(output), "psnr": psnr(data, output)}


def main():
    ghost_png, friend_png, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    results = {
        "ghost": measure(ghost, open(ghost_png, "rb").read(), iterations),
        "friend": measure(friend, open(friend_png, "rb").read(), iterations),
        "pillow": Image.__version__,
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
