#!/usr/bin/env python3
"""The image step done with Pillow (libjpeg-turbo, libwebp) and numpy: the
reference that dynamo's image step is measured against, in the same run.

Usage: pillow_image_step.py GHOST.png KEYED-FRIEND.png ITERATIONS
Prints one JSON object: per style, the median milliseconds per image, the
output size, and the output's PSNR against its input (RGB; for friends over
the pixels left opaque, as dynamo's benchmark computes it). The friend is
dynamo's keyed image (RGBA), encoded as WEBP at quality=80: the same keyed
image dynamo encodes, so sizes and PSNR compare the encoders alone.
"""
import io
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image

JPEG_QUALITY = 80
WEBP_QUALITY = 80


def ghost(data):
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def friend(data):
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=WEBP_QUALITY)
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
    ghost_png, keyed_png, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    results = {
        "ghost": measure(ghost, open(ghost_png, "rb").read(), iterations),
        "friend": measure(friend, open(keyed_png, "rb").read(), iterations),
        "pillow": Image.__version__,
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
