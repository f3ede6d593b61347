# kiln load: text splits and UTF-8 handling, PNG folders and IDX files, every bad input of
# issue 3 (exit 65 naming the file; --skip-bad turning it into err records), --shard
# partitions, --skip equals the tail, --epochs, jsonl fields, determinism.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
CLASSES="$KILN_ROOT/examples/data/fashion-mnist.classes"
show() { "$K" show | jq -c "del(.seq)"; }

# ---- text -------------------------------------------------------------------------------
mkdir -p corpus/b corpus/a
printf 'one\n\ntwo\nthree\n' > corpus/b/2.txt
printf 'first\r\nsecond\n' > corpus/a/1.txt
"$K" load text:corpus | show > docs.jsonl
expect '[ $(wc -l < docs.jsonl) = 2 ]' "docs: one record per file"
expect '[ "$(jq -r .src docs.jsonl | tr "\n" " ")" = "corpus/a/1.txt corpus/b/2.txt " ]' "sorted recursive walk"
"$K" load text:corpus --split lines | show > lines.jsonl
expect '[ "$(jq -r .text lines.jsonl | tr "\n" " ")" = "first second one two three " ]' "lines split"
expect '[ "$(jq -r .id lines.jsonl | tr "\n" " ")" = "0 1 2 3 4 " ]' "ids are positions"
"$K" load text:corpus/b/2.txt --split paragraphs | show > para.jsonl
expect '[ "$(jq -c .text para.jsonl | tr "\n" " ")" = "\"one\" \"two\\nthree\" " ]' "paragraphs"
printf 'Q1\n%%\nQ2\nA2\n%%\n' > fortunes
expect '[ $("$K" load text:fortunes --split sep:% | show | wc -l) = 2 ]' "sep:% reads fortunes"
printf 'ab\xc3\xa9\xe2\x82\xac' > utf.txt
"$K" load text:utf.txt --split chunk:3 | show > chunks.jsonl
expect '[ "$(jq -r .text chunks.jsonl | tr "\n" " ")" = "ab é € " ]' "chunk:3 never cuts a character"

# invalid UTF-8: replaced by U+FFFD, or rejected (65, naming the file and byte)
printf 'ok \xff\xfe bad\n' > bad.txt
"$K" load text:bad.txt | show > repl.jsonl
expect 'grep -q "ok �� bad" repl.jsonl' "--utf8 replace (default) repairs"
expect_status 65 "$K" load text:bad.txt --utf8 reject --out /dev/null 2> reject.err
expect 'grep -q "bad.txt: invalid UTF-8 at byte 3" reject.err' "reject names file and byte: $(cat reject.err)"

# empty directory, missing path, no source
mkdir empty
expect_status 65 "$K" load text:empty --out /dev/null 2> empty.err
expect 'grep -q "empty: no files found" empty.err' "empty directory message"
expect_status 65 "$K" load png:empty --out /dev/null 2>/dev/null
expect_status 65 "$K" load text:nonexistent --out /dev/null 2>/dev/null
expect_status 2 "$K" load --out /dev/null 2>/dev/null
expect_status 2 "$K" load bogus:x --out /dev/null 2>/dev/null

# ---- IDX ---------------------------------------------------------------------------------
"$K" load "$IDX" --classes "$CLASSES" | show > idx.jsonl
expect '[ $(wc -l < idx.jsonl) = 200 ]' "200 IDX images"
expect '[ "$(head -1 idx.jsonl | jq -c .image.shape)" = "[28,28,1]" ]' "image [28,28,1]"
expect '[ "$(head -1 idx.jsonl | jq -r .label)" = "Ankle boot" ]' "label named by --classes"
expect '[ "$("$K" load "$IDX" --channels 3 --size 14x20 --limit 1 | show | jq -c .image.shape)" = "[14,20,3]" ]' \
    "--channels and --size"
printf 'not an idx file at all' > wrong.idx
expect_status 65 "$K" load idx:wrong.idx --out /dev/null 2> magic.err
expect 'grep -q "wrong.idx: wrong magic" magic.err' "wrong magic names the file: $(cat magic.err)"
head -c 1000 < <(gzip -dc "$FM/t10k-200-images-idx3-ubyte.gz") > short.idx
expect_status 65 "$K" load idx:short.idx --out /dev/null 2> short.err
expect 'grep -q "short.idx: short data" short.err' "short data names the file: $(cat short.err)"
printf 'a\nb\n' > two.classes
expect_status 65 "$K" load "$IDX" --classes two.classes --out /dev/null 2> cls.err
expect 'grep -q "no name in the classes file two.classes" cls.err' "label missing from classes: $(cat cls.err)"

# ---- PNG ---------------------------------------------------------------------------------
"$K" load "$IDX" --classes "$CLASSES" --limit 12 | "$K" tokenize --levels 256 | "$K" detok --dir png 2>/dev/null
"$K" load png:png | show > png.jsonl
expect '[ $(wc -l < png.jsonl) = 12 ]' "12 PNG files read back"
expect 'jq -r .label png.jsonl | grep -qx "Ankle boot"' "label from the first subfolder"
expect '[ "$(head -1 png.jsonl | jq -c .image.shape)" = "[28,28,1]" ]' "gray PNG stays gray"
cp -r png pngbad
mkdir pngbad/Bag
printf 'this is no png' > "pngbad/Bag/zz-not.png"
head -c 100 "$(ls png/Trouser/*.png | head -1)" > "pngbad/Bag/zz-truncated.png"
# a PNG header declaring 100000x100000 pixels (no pixel data at all)
/usr/bin/python3 - <<'PY'
import struct, zlib
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
open("pngbad/Bag/zz-huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk)
PY
expect_status 65 "$K" load png:pngbad --out /dev/null 2> pngbad.err
expect 'grep -q "zz-huge.png: declares 100000x100000 pixels, over the limit" pngbad.err' "huge PNG refused: $(cat pngbad.err)"
rm pngbad/Bag/zz-huge.png
expect_status 65 "$K" load png:pngbad --out /dev/null 2> notpng.err
expect 'grep -q "zz-not.png: not a PNG file" notpng.err' "not a PNG: $(cat notpng.err)"
rm pngbad/Bag/zz-not.png
expect_status 65 "$K" load png:pngbad --out /dev/null 2> trunc.err
expect 'grep -q "zz-truncated.png: truncated file" trunc.err' "truncated PNG: $(cat trunc.err)"
expect_status 65 "$K" load png:png --max-pixels 100 --out /dev/null 2>/dev/null
printf 'Trouser\n' > bagonly.classes
expect_status 65 "$K" load png:png --classes bagonly.classes --out /dev/null 2> pngcls.err
expect 'grep -q "is not in the classes file bagonly.classes" pngcls.err' "PNG label not in classes: $(cat pngcls.err)"

# --skip-bad: err records in place of the bad files, a count on stderr, exit 0
printf 'nope' > "pngbad/Bag/zz-not.png"
"$K" load png:pngbad --skip-bad 2> skipbad.err | show > skipbad.jsonl
expect '[ $? = 0 ] && [ $(jq -r .t skipbad.jsonl | grep -c err) = 2 ]' "two err records"
expect '[ $(jq -r .t skipbad.jsonl | grep -c sample) = 12 ]' "the good files still load"
expect 'grep -q "2 bad inputs skipped" skipbad.err' "count on stderr"

# ---- jsonl -------------------------------------------------------------------------------
printf '{"prompt":"hi","chosen":"a","rejected":"b","score":1.5,"id":99}\n\n{"text":"x","label":"cat"}\n' > d.jsonl
"$K" load jsonl:d.jsonl | show > j.jsonl
expect '[ "$(head -1 j.jsonl | jq -c "[.prompt,.chosen,.rejected,.score,.id]")" = "[\"hi\",\"a\",\"b\",1.5,0]" ]' "jsonl fields"
expect '[ "$(tail -1 j.jsonl | jq -r .label)" = cat ]' "jsonl label"
printf '{"text":"ok"}\n{broken\n' > broken.jsonl
expect_status 65 "$K" load jsonl:broken.jsonl --out /dev/null 2> broken.err
expect 'grep -q "broken.jsonl:2:" broken.err' "bad JSON line named: $(cat broken.err)"

# ---- shard, skip, limit, epochs, determinism ---------------------------------------------
"$K" load "$IDX" --epochs 2 | show > full.jsonl
expect '[ $(wc -l < full.jsonl) = 400 ] && [ "$(tail -1 full.jsonl | jq -c "[.epoch,.id]")" = "[1,199]" ]' "two epochs"
for i in 0 1 2; do "$K" load "$IDX" --epochs 2 --shard $i/3 | show > shard$i.jsonl; done
cat shard0.jsonl shard1.jsonl shard2.jsonl | jq -c . | sort > shards.sorted
jq -c . full.jsonl | sort > full.sorted
expect 'cmp -s shards.sorted full.sorted' "--shard 0/3,1/3,2/3 partition the stream exactly"
expect '[ $(wc -l < shard1.jsonl) = 133 ] && [ "$(head -1 shard1.jsonl | jq .id)" = 1 ]' "shard 1/3 starts at 1"
"$K" load "$IDX" --epochs 2 --skip 137 | show > skip.jsonl
tail -n +138 full.jsonl > tail.jsonl
expect 'cmp -s skip.jsonl tail.jsonl' "--skip 137 equals the tail of the full stream"
"$K" load "$IDX" --epochs 2 --shard 1/3 --skip 5 --limit 7 | show > ssl.jsonl
expect 'cmp -s ssl.jsonl <(sed -n 6,12p shard1.jsonl)' "--shard, then --skip, then --limit"
"$K" load "$IDX" --epochs 0 --limit 450 | show > forever.jsonl
expect '[ $(wc -l < forever.jsonl) = 450 ] && [ "$(tail -1 forever.jsonl | jq .epoch)" = 2 ]' "--epochs 0 runs on"
"$K" load "$IDX" png:png text:corpus --out a.rec
"$K" load "$IDX" png:png text:corpus --out b.rec
expect 'cmp -s a.rec b.rec' "same sources, same bytes"

# ---- --shuffle: each epoch a permutation from (seed, epoch); --skip resumes it exactly ------
FMX="$KILN_ROOT/tests/fixtures/fashion-mnist"
head -c 20000 "$KILN_ROOT/examples/data/moby-dick.txt" > sh.txt 2> /dev/null || seq 1 3000 > sh.txt
printf '{"text":"a"}\n{"text":"b"}\nnot json\n{"text":"c"}\n{"text":"d"}\n' > sh.jsonl
for src in "text:sh.txt --split chunk:200" "jsonl:sh.jsonl --skip-bad" \
    "idx:$FMX/t10k-200-images-idx3-ubyte.gz,$FMX/t10k-200-labels-idx1-ubyte.gz"; do
    # shellcheck disable=SC2086
    "$K" load $src --epochs 3 2> /dev/null | "$K" show | jq -c '[.t, .id, .epoch, .src, .text, .label]' > plain.txt
    # shellcheck disable=SC2086
    "$K" load $src --epochs 3 --shuffle --seed 7 2> /dev/null | "$K" show | jq -c '[.t, .id, .epoch, .src, .text, .label]' > shuf.txt
    expect 'cmp -s <(sort plain.txt) <(sort shuf.txt)' "--shuffle ($src): the same records, ids and epochs"
    expect '! cmp -s plain.txt shuf.txt' "--shuffle ($src): another order"
    expect '[ "$(grep ",0,\"" shuf.txt | head -20 | cut -d, -f2)" != "$(grep ",1,\"" shuf.txt | head -20 | cut -d, -f2)" ]' \
        "--shuffle ($src): each epoch its own order"
    n=$(wc -l < shuf.txt) at=$(( n / 3 + 5 ))
    # shellcheck disable=SC2086
    "$K" load $src --epochs 3 --shuffle --seed 7 --skip $at 2> /dev/null | "$K" show | jq -c '[.t, .id, .epoch, .src, .text, .label]' > resumed.txt
    expect 'cmp -s <(tail -n +$((at + 1)) shuf.txt) resumed.txt' "--shuffle ($src): --skip $at resumes exactly"
done
"$K" load text:sh.txt --split chunk:200 --shuffle --seed 8 | "$K" show | jq -c .id > s8.txt
"$K" load text:sh.txt --split chunk:200 --shuffle --seed 7 | "$K" show | jq -c .id > s7.txt
expect '! cmp -s s7.txt s8.txt' "--shuffle: the seed chooses the order"

# ---- what the next stage would refuse is refused here, naming file and line (issue 15) ------
deep='"x"'; for _ in $(seq 8); do deep="[$deep]"; done
{ echo '{"text":"ok"}'; echo "{\"a\":$deep}"
  python3 -c 'print("{\"a\":[" + ",".join(["1"] * 1025) + "]}")'
  echo '{"w":{"dtype":"F32","shape":[1],"data":[1]}}'; echo '{"text":"also ok"}'; } > bad.jsonl
"$K" load jsonl:bad.jsonl > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "bad.jsonl:2: nested deeper than a record allows" err.txt' \
    "jsonl: nesting deeper than a record: 65, file and line ($(cat err.txt))"
"$K" load jsonl:bad.jsonl --skip-bad 2> err.txt | "$K" show > out.jsonl
expect '[ "$(grep -c "\"t\":\"err\"" out.jsonl)" = 3 ] && [ "$(grep -c "\"t\":\"sample\"" out.jsonl)" = 2 ]' \
    "jsonl --skip-bad: three err records, two samples ($(cut -c1-60 out.jsonl | tr '\n' ' '))"
expect 'grep -q "bad.jsonl:3.*an array of 1025 entries" out.jsonl && grep -q "bad.jsonl:4.*shaped like a tensor" out.jsonl' \
    "jsonl: a 1,025-entry array and a tensor-shaped object named with their lines"
# IDX with bytes after its data; a dangling symlink in a PNG folder.
FMI="$KILN_ROOT/tests/fixtures/fashion-mnist/t10k-200-images-idx3-ubyte.gz"
{ gzip -dc "$FMI"; printf 'junk'; } > extra.idx
"$K" load idx:extra.idx > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "extra.idx: bytes after the" err.txt' "IDX with trailing bytes: 65 ($(cat err.txt))"
mkdir -p dangling/cats
cp "$KILN_ROOT/docs/demo-loss.png" dangling/cats/a.png && ln -sf /nonexistent/b.png dangling/cats/b.png
"$K" load png:dangling --size 8x8 > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "dangling/cats/b.png: cannot open" err.txt' "a dangling PNG symlink: 65 ($(cat err.txt))"
"$K" load png:dangling --size 8x8 --skip-bad 2> err.txt | "$K" show > out.jsonl
expect 'grep -q "\"t\":\"err\".*b.png" out.jsonl && grep -q "1 bad input skipped" err.txt' \
    "a dangling PNG symlink with --skip-bad: counted ($(cat err.txt))"
finish
