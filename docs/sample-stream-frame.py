# A sample 1920x1080 "stream frame" (a made-up side-scroller) for overlay screenshots.
from PIL import Image, ImageDraw, ImageFilter
import random
W, H = 1920, 1080
random.seed(7)
img = Image.new("RGB", (W, H))
d = ImageDraw.Draw(img)
for y in range(H):  # dusk sky
    t = y / H
    d.line([(0, y), (W, y)], fill=(int(40 + 180 * t), int(30 + 80 * t), int(90 + 40 * (1 - t))))
for _ in range(160):  # stars
    x, y = random.randrange(W), random.randrange(H // 2)
    d.point((x, y), fill=(255, 255, 230))
d.ellipse([1450, 140, 1650, 340], fill=(255, 214, 150))  # sun
for layer, (color, base, amp) in enumerate([((70, 50, 110), 700, 160), ((45, 35, 80), 800, 120), ((25, 20, 45), 900, 80)]):
    pts = [(0, H)]
    for x in range(0, W + 40, 40):
        pts.append((x, base - amp * abs(((x / 300 + layer) % 2) - 1) - random.randrange(30)))
    pts.append((W, H))
    d.polygon(pts, fill=color)
d.rectangle([0, 960, W, H], fill=(40, 90, 50))  # ground
for x in range(0, W, 64):
    d.rectangle([x, 960, x + 60, 980], fill=(70, 140, 70))
for x, y in [(300, 760), (364, 760), (428, 760), (1100, 700), (1164, 700)]:  # platforms
    d.rectangle([x, y, x + 60, y + 60], fill=(180, 110, 60), outline=(90, 50, 20), width=4)
d.rectangle([560, 880, 620, 960], fill=(220, 60, 60))  # the hero
d.rectangle([572, 895, 608, 915], fill=(255, 220, 180))
for i in range(5):  # coins
    d.ellipse([700 + i * 70, 820, 736 + i * 70, 856], fill=(250, 210, 60), outline=(160, 120, 20), width=3)
img = img.filter(ImageFilter.GaussianBlur(0.6))
d = ImageDraw.Draw(img)
d.rectangle([40, 40, 420, 110], fill=(0, 0, 0))  # HUD
d.text((60, 55), "SCORE 0042150   x3", fill=(255, 255, 255), font_size=36)
d.rounded_rectangle([1520, 960, 1880, 1050], radius=12, fill=(0, 0, 0))  # webcam spot
d.text((1545, 990), "LIVE  webcam", fill=(255, 90, 90), font_size=34)
img.save(__import__("sys").argv[1] if len(__import__("sys").argv) > 1 else "docs/sample-stream-frame.png", optimize=True)
