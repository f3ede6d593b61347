#!/usr/bin/env bash
# examples/embed/emoji.sh [DIR] — one emoji across two styles: find Twitter's drawing of an
# emoji from Google's.  Three systems side by side, recall@1, recall@10 and mrr@10:
#
#   pixels     cosine nearest neighbour on the 12x12 RGB pixels (bench/embed_baseline.py)
#   base       a small image GPT (4 layers, 128 wide) pretrained (next-token) on the
#              training emoji of both styles; its final states pooled by a position-
#              weighted mean (SGPT's: a causal model's later states have seen more)
#   trained    the base after contrastive training on pairs (Google's and Twitter's drawing
#              of one training emoji: kiln pairs --by-label) with CLIP's two-way loss
#              (--symmetric), pipelines/embed.sh
#
# Then pixels and the trained model query by query: which emoji each gets right, an exact
# McNemar test, the first hits by category (examples/embed/table.bash, DIR/paired.md).
#
# Data: every emoji both npm packages draw (emoji-datasource-google / -twitter 16.0.0, the
# sheets examples/animals/fetch.sh fetches), 32x32 cells flattened on white, loaded at 12x12
# and tokenized by a 64-colour palette learned on the training emoji (144 tokens an image).
# 20% of the emoji (by a hash of their name) are held out: the queries are their Google
# drawings, the corpus their Twitter drawings (one relevant document each).  A training
# emoji's skin-tone variants are training emoji of their own (SKIN=0 leaves them out); a
# held-out emoji's are never used.  PRE_STEPS, STEPS, BATCH, LR, POOL, LAYERS, DIM, THREADS
# override the settings, AUGMENT='OPS' augments the training drawings (pipelines/embed.sh
# --augment), EVERY evaluates every N steps, EMBED_OPTS adds pipelines/embed.sh options
# ("--mode lora").  VALIDATE=1 chooses settings without the test emoji: they are left out,
# and a fifth of the training emoji are held out instead (DIR of its own).
set -euo pipefail
read -r -a embed_opts <<< "${EMBED_OPTS-}" # more pipelines/embed.sh options, e.g. "--mode lora"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/emoji}
pre_steps=${PRE_STEPS:-1200} steps=${STEPS:-800} threads=${THREADS:-0}
batch=${BATCH:-32} lr=${LR:-1e-3} pool=${POOL:-weightedmean} validate=${VALIDATE:-0} every=${EVERY:-$steps}
augment=${AUGMENT-} layers=${LAYERS:-4} width=${DIM:-128} skin=${SKIN:-1}
cache=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/npm
mkdir -p "$dir"
log() { echo "emoji.sh: $*" >&2; }
. "$here/examples/embed/table.bash"
t0=$(date +%s)

# ---- data: the npm sheets (fetch.sh fills the cache), one PNG per emoji and style ------------
[ -d "$dir/png" ] || {
    "$here/examples/animals/fetch.sh" "$dir/animals" 2> /dev/null && rm -rf "$dir/animals"
    /usr/bin/python3 - "$cache" "$dir/png" "$validate" "$skin" << 'PY'
import hashlib, json, os, sys
from PIL import Image

cache, out, validate, skin = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
sheets = {v: Image.open(f"{cache}/{v}/package/img/{v}/sheets/32.png").convert("RGBA")
          for v in ("google", "twitter")}
emoji = json.load(open(f"{cache}/google/package/emoji.json"))
n, categories = {"train": 0, "test": 0, "skin": 0}, {}
for e in emoji:
    if not (e.get("has_img_google") and e.get("has_img_twitter")):
        continue
    name = e["short_name"]
    categories[name] = e["category"]
    fold = hashlib.sha1(name.encode()).digest()[0] % 5
    if validate and fold == 0:  # the test emoji stay unseen while settings are chosen
        continue
    split = "test" if fold == (1 if validate else 0) else "train"
    n[split] += 1
    drawings = [(name, e)]
    if split == "train" and skin:  # a training emoji's skin tones: more pairs, same split
        drawings += [(f"{name}_{tone.lower()}", v) for tone, v in e.get("skin_variations", {}).items()
                     if v.get("has_img_google") and v.get("has_img_twitter")]
    n["skin"] += len(drawings) - 1
    for label, d in drawings:
        for vendor, sheet in sheets.items():
            x, y = d["sheet_x"] * 34 + 1, d["sheet_y"] * 34 + 1
            img = Image.new("RGBA", (32, 32), (255, 255, 255, 255))
            img.alpha_composite(sheet.crop((x, y, x + 32, y + 32)))
            folder = os.path.join(out, "train" if split == "train" else vendor, label)
            os.makedirs(folder, exist_ok=True)
            img.convert("RGB").save(os.path.join(folder, vendor + ".png"))
with open(os.path.join(out, "categories.tsv"), "w") as f:  # for the paired table
    f.writelines(f"{name}\t{c}\n" for name, c in categories.items())
print(f"emoji.sh: {n['train']} training emoji and {n['skin']} of their skin tones, {n['test']} held out",
      file=sys.stderr)
PY
}
img=(--size 12x12 --channels 3)
[ -s "$dir/palette.txt" ] || kiln load png:"$dir/png/train" "${img[@]}" 2> /dev/null \
    | kiln palette -k 64 --seed 1 -o "$dir/palette.txt"
tok=(kiln tokenize --palette "$dir/palette.txt" --no-class-token)

# ---- the base: next-token pretraining on the training emoji, both styles ---------------------
base=$dir/base/latest.safetensors
if [ ! -f "$base" ]; then
    log "pretraining the base for $pre_steps steps"
    kiln load png:"$dir/png/train" "${img[@]}" --epochs 0 --shuffle --seed 1 2> /dev/null \
        | "${tok[@]}" | kiln batch -B 16 -T 144 \
        | kiln train --layers "$layers" --dim "$width" --heads 4 --ctx 145 --steps "$pre_steps" --lr 2e-3 \
            --threads "$threads" \
        | kiln ckpt --dir "$dir/base" | kiln show --progress --total "$pre_steps"
fi

# ---- contrastive training, base and trained side by side (pipelines/embed.sh) ----------------
"$here/pipelines/embed.sh" --base "$base" --images png:"$dir/png/train" \
    --val-images png:"$dir/png/google" --corpus-images png:"$dir/png/twitter" \
    --val-records 100000 --corpus-records 100000 --steps "$steps" --batch "$batch" --lr "$lr" --pool "$pool" --every "$every" --symmetric \
    --augment "$augment" --threads "$threads" --out "$dir/embed" "${embed_opts[@]}"

# ---- the pixel baseline, scored by kiln search as the models are ------------------------------
kiln load png:"$dir/png/twitter" "${img[@]}" 2> /dev/null \
    | /usr/bin/python3 "$here/bench/embed_baseline.py" --pixels | kiln index -o "$dir/pixels.index" > /dev/null
pixels=$(kiln load png:"$dir/png/google" "${img[@]}" 2> /dev/null \
    | /usr/bin/python3 "$here/bench/embed_baseline.py" --pixels \
    | kiln search --index "$dir/pixels.index" -k 10 --relevant label 2> /dev/null \
    | tee "$dir/pixels.hits.rec" | retrieval_tsv)
queries=$(kiln show < "$dir/embed/queries.rec" | grep -c '"t":"tokens"')
retrieval_table "system ($queries held-out emoji, Google -> Twitter)" "pixels (12x12 RGB, cosine)" \
    "$pixels" "$dir" "$steps" "$pool"
echo
paired_table pixels "$dir/pixels.hits.rec" "$dir/embed/trained.hits.rec" "$dir/paired.md" \
    "$dir/png/categories.tsv"
log "$(($(date +%s) - t0)) s in all; table in $dir/results.md"
