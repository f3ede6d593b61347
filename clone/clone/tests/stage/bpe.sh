# kiln bpe and BPE text through tokenize, batch, train, eval, ckpt, sample and detok:
# a vocabulary learned from the book, decode(encode(x)) = x on the book and on invalid
# UTF-8, bits per byte from the bytes the tokens stand for, a model whose vocabulary is not
# the data's refused, and bad vocabulary directories named with their file.
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"

# Learn 512 ids from the first ~200 KB, twice: the same files.
"$K" load text:"$book" --split chunk:2000 --limit 100 2> /dev/null > part.rec
expect_status 0 "$K" bpe --vocab 512 --dir v1 --special '<|sep|>' --in part.rec 2> said.txt
expect_status 0 "$K" bpe --vocab 512 --dir v2 --special '<|sep|>' --in part.rec 2> /dev/null
expect 'cmp -s v1/vocab.bpe v2/vocab.bpe && cmp -s v1/encoder.json v2/encoder.json' "learning is deterministic"
expect '[ "$(head -1 v1/vocab.bpe)" = "#version: 0.2" ] && [ "$(wc -l < v1/vocab.bpe)" = 255 ]' \
    "vocab.bpe: the version line and 254 merges (512 - 256 - 2 specials)"
expect '[ "$(jq length v1/encoder.json)" = 512 ] && [ "$(jq ".\"<|endoftext|>\"" v1/encoder.json)" = 510 ] && [ "$(jq ".\"<|sep|>\"" v1/encoder.json)" = 511 ]' \
    "encoder.json: 512 ids, <|endoftext|> then <|sep|> after the merges"
expect 'grep -q "254 merges from" said.txt' "a summary on stderr"

# The whole book round-trips, as one document, and the ids shrink.
"$K" load text:"$book" 2> /dev/null | "$K" tokenize --bpe v1 > book.rec
expect_status 0 "$K" detok --in book.rec > back.txt
expect 'cmp -s <(cat "$book"; echo) back.txt' "decode(encode(book)) = book"
ntok=$("$K" show --in book.rec --out /dev/null | jq -r 'select(.t == "tokens") | .tokens.shape[0]')
expect '[ "$ntok" -lt $(( $(wc -c < "$book") * 2 / 3 )) ]' "fewer tokens than 2/3 of the bytes ($ntok)"
# Invalid UTF-8: kiln load replaces it with U+FFFD (--utf8), which round-trips; the encoder
# itself takes any bytes (tests/unit/test_bpe.c).
printf 'caf\xc3\xa9 \xff\xfe bad \xe2\x82 end' > bad.txt
"$K" load text:bad.txt 2> /dev/null | "$K" tokenize --bpe v1 | "$K" detok > bad.back
expect '[ "$(cat bad.back)" = "café �� bad � end" ]' "repaired text round-trips"

# Train a few steps; eval reports bits per byte near loss * tokens / bytes / ln 2.
"$K" load text:"$book" --split chunk:500 --limit 6 2> /dev/null | "$K" tokenize --bpe v1 \
    | "$K" batch -B 2 -T 32 --pack > val.rec
"$K" tokenize --bpe v1 --in part.rec | "$K" batch -B 4 -T 32 --pack > train.rec
"$K" train --model tiny --ctx 32 --steps 6 --every 6 --threads 2 --in train.rec 2> /dev/null \
    | "$K" eval --data val.rec --samples 1 --sample-len 16 --threads 2 2> /dev/null \
    | "$K" ckpt --dir run > out.rec
"$K" show --in out.rec --out /dev/null > out.jsonl 2> /dev/null
bpb=$(jq -r 'select(.stage == "eval") | .bits_per_byte' out.jsonl)
loss=$(jq -r 'select(.stage == "eval") | .loss' out.jsonl)
expect 'awk "BEGIN { exit !($bpb > 0.2 * $loss / log(2) && $bpb < 0.6 * $loss / log(2)) }"' \
    "bits per byte = loss per token over ~3 bytes a token ($bpb, loss $loss)"
ck=run/step-000006.safetensors
expect '[ -f $ck ]' "a checkpoint with the BPE tokenizer"
expect_status 0 "$K" sample --ckpt $ck -n 12 --prompt " The whale" --seed 1 --threads 2 > s.txt
expect 'grep -q "^ The whale" s.txt && [ $(wc -c < s.txt) -gt 12 ]' "sample decodes BPE tokens to text"
# Eval data in bytes against the BPE checkpoint: refused, naming both tokenizers.
"$K" load text:"$book" --split chunk:500 --limit 2 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 2 -T 32 --pack > bytes.rec
expect_status 65 "$K" eval --data bytes.rec --ckpt $ck 2> err.txt > /dev/null
expect 'grep -q "bytes.rec.*bytes.*differs.*bpe 254 merges" err.txt' "the mismatch named: $(cat err.txt)"

# Bad vocabulary directories: the file named, exit 65.
mkdir -p nov && cp v1/encoder.json nov/
expect_status 65 "$K" tokenize --bpe nov --in part.rec --out /dev/null 2> err.txt
expect 'grep -q "nov/vocab.bpe: cannot open" err.txt' "a missing vocab.bpe: $(cat err.txt)"
mkdir -p unk && cp v1/encoder.json unk/ && { head -3 v1/vocab.bpe; echo "Ġzzq Ġq"; } > unk/vocab.bpe
expect_status 65 "$K" tokenize --bpe unk --in part.rec --out /dev/null 2> err.txt
expect 'grep -q "unk/vocab.bpe:4: merge .* references the unknown token .Ġzzq." err.txt' \
    "a merge of an unknown token: $(cat err.txt)"
mkdir -p short && cp v1/encoder.json short/ && head -100 v1/vocab.bpe > short/vocab.bpe
expect_status 65 "$K" tokenize --bpe short --in part.rec --out /dev/null 2> err.txt
expect 'grep -q "short/encoder.json: .*short/vocab.bpe" err.txt' "encoder.json and vocab.bpe disagree: $(cat err.txt)"
expect_status 2 "$K" bpe --vocab 257 --special x --dir small --in part.rec 2> err.txt
expect 'grep -q "cannot hold the 256 bytes and 2 special tokens" err.txt' "--vocab too small: $(cat err.txt)"
expect_status 2 "$K" tokenize --bpe v1 --bytes --in part.rec 2> /dev/null
finish
