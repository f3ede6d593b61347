#!/usr/bin/env bash
# examples/animals/fetch.sh DIR — animal pictures as folder-per-class PNG trees, 32x32 RGB
# on white, for the cats-to-lions fine-tuning example (docs/stages-finetune.md):
#
#   DIR/pretrain/CLASS/*.png   mammals without lions or big cats (cat, dog, bear, horse,
#                              fox, wolf, ... ~60 classes; cats and dogs have the most)
#   DIR/lions/lion/*.png       the few lions: emoji lion faces and openclipart lions
#   DIR/lions/tiger/*.png      and tigers and leopards ("big cats")
#
# Sources, all offline-installable, none committed:
#   npm emoji-datasource-google@16 (Apache-2.0) and emoji-datasource-twitter@16 (Twemoji
#     graphics, CC-BY 4.0: "Copyright 2020 Twitter, Inc and other contributors"):
#     32x32 sprite sheets (cells of 34 px with a 1 px border) and emoji.json, whose
#     category/subcategory/sheet_x/sheet_y say where each mammal is;
#   Debian openclipart-png (public domain): /usr/share/openclipart/png/animals/mammals
#     (housecats, dogs, bears, horses, big_cats), fitted into 32x32 keeping the aspect.
# Class names: the emoji short name without a trailing "2" or "_face" (cat2 -> cat,
# lion_face -> lion; black_cat -> cat, poodle -> dog, ...).  Needs npm, and /usr/bin/python3 with PIL (python3-pil).
set -euo pipefail
dir=${1:?usage: $0 DIR}
# What it needs, said before anything starts (make examples installs it all).
/usr/bin/python3 -c 'import PIL' 2> /dev/null \
    || { echo "$0: needs /usr/bin/python3 with PIL (make examples, or apt-get install python3-pil)" >&2; exit 2; }
cache=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/npm
clip=/usr/share/openclipart/png/animals/mammals
mkdir -p "$cache" "$dir"
for pkg in emoji-datasource-google emoji-datasource-twitter; do
    if [ ! -f "$cache/$pkg-16.0.0.tgz" ]; then
        command -v npm > /dev/null || { echo "$0: needs npm (make examples, or apt-get install npm)" >&2; exit 2; }
        (cd "$cache" && npm pack --silent "$pkg@16.0.0" > /dev/null)
    fi
    vendor=${pkg#emoji-datasource-}
    mkdir -p "$cache/$vendor"
    tar xzf "$cache/$pkg-16.0.0.tgz" -C "$cache/$vendor" package/emoji.json package/LICENSE \
        "package/img/$vendor/sheets/32.png"
done
[ -d "$clip" ] || echo "$0: $clip missing (make examples, or apt-get install openclipart-png):" \
    "emoji only, 120 pictures with 2 lions and 6 tigers instead of ~160 with 5 and 14" >&2

/usr/bin/python3 - "$cache" "$clip" "$dir" << 'PY'
import json, os, sys
from PIL import Image

cache, clip, out = sys.argv[1:4]
BIG = {"lion": "lion", "tiger": "tiger", "leopard": "tiger"}  # fine-tuning classes
SAME = {"black_cat": "cat", "poodle": "dog", "guide_dog": "dog", "service_dog": "dog",
        "racehorse": "horse", "dromedary_camel": "camel"}
count = {}

def save(img, split, cls, name):
    """Flatten on white, fit into 32x32 (keeping the aspect), save as RGB PNG."""
    img = img.convert("RGBA")
    box = img.getbbox()
    if box:
        img = img.crop(box)
    img.thumbnail((32, 32), Image.LANCZOS)
    canvas = Image.new("RGBA", (32, 32), (255, 255, 255, 255))
    canvas.alpha_composite(img, ((32 - img.width) // 2, (32 - img.height) // 2))
    path = os.path.join(out, split, cls)
    os.makedirs(path, exist_ok=True)
    canvas.convert("RGB").save(os.path.join(path, name + ".png"))
    count[(split, cls)] = count.get((split, cls), 0) + 1

def class_of(short):
    for suffix in ("_face", "2"):
        if short.endswith(suffix):
            short = short[: -len(suffix)]
    return SAME.get(short, short)

for vendor in ("google", "twitter"):
    base = os.path.join(cache, vendor, "package")
    sheet = Image.open(os.path.join(base, "img", vendor, "sheets", "32.png"))
    for e in json.load(open(os.path.join(base, "emoji.json"))):
        if e["category"] != "Animals & Nature" or not e["subcategory"].startswith("animal-mammal"):
            continue
        if not e.get("has_img_" + vendor) or e["short_name"] in ("feet", "pig_nose"):
            continue
        x, y = e["sheet_x"] * 34 + 1, e["sheet_y"] * 34 + 1
        cls = class_of(e["short_name"])
        split = "lions" if cls in BIG else "pretrain"
        save(sheet.crop((x, y, x + 32, y + 32)), split, BIG.get(cls, cls),
             f"{vendor}-{e['short_name']}")

folders = {"housecats": "cat", "dogs": "dog", "bears": "bear", "horses": "horse"}
if os.path.isdir(clip):
    for folder, cls in folders.items():
        for f in sorted(os.listdir(os.path.join(clip, folder))):
            save(Image.open(os.path.join(clip, folder, f)), "pretrain", cls, "clip-" + f[:-4])
    for f in sorted(os.listdir(os.path.join(clip, "big_cats"))):
        cls = "lion" if f.startswith("leone") else "tiger" if "tig" in f else None
        if cls:
            save(Image.open(os.path.join(clip, "big_cats", f)), "lions", cls, "clip-" + f[:-4])

pre = sum(n for (s, _), n in count.items() if s == "pretrain")
classes = sorted(c for (s, c) in count if s == "pretrain")
print(f"{out}/pretrain: {pre} images in {len(classes)} classes "
      f"(cat {count.get(('pretrain', 'cat'), 0)}, dog {count.get(('pretrain', 'dog'), 0)}); "
      f"{out}/lions: lion {count.get(('lions', 'lion'), 0)}, "
      f"tiger {count.get(('lions', 'tiger'), 0)}", file=sys.stderr)
with open(os.path.join(out, "pretrain.classes"), "w") as f:
    f.write("\n".join(classes) + "\n")
PY
