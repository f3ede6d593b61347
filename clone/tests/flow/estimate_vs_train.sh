# kiln estimate against reality: the tokens/s it measures for a configuration and the
# tokens/s kiln train reports for the same configuration agree within a factor of 2: train
# runs between two estimates and must fall within half the lower and twice the higher (a
# ratio in one run; a machine shared with other jobs has quiet and busy spells).  And
# train's metrics carry eta_s, the time to --steps at its pace, which reaches 0 at the end.
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq >/dev/null || skip "no jq"

head -c 300000 "$BOOK" > book.txt
"$K" load text:book.txt | "$K" tokenize --bytes | "$K" batch -B 8 -T 128 --pack --out batches.rec
shape=(--model tiny --ctx 128)
estimate() { "$K" estimate "${shape[@]}" -B 8 -T 128 --vocab 259 --steps 40 --measure 2 --json; }
estimate > est.json
"$K" train --in batches.rec "${shape[@]}" --steps 40 --log-every 10 | "$K" show > train.jsonl
estimate > est2.json

rate() { jq '.rows[] | select(.name == "this") | .tokens_per_s' "$1"; }
lo=$(printf '%s\n' "$(rate est.json)" "$(rate est2.json)" | sort -g | head -1)
hi=$(printf '%s\n' "$(rate est.json)" "$(rate est2.json)" | sort -g | tail -1)
measured=$(jq '.measured.steps' est.json)
# the median of train's four records (the first holds the first touch of every buffer)
got=$(jq 'select(.t == "metrics") | .tokens_per_s' train.jsonl | sort -g | sed -n 2,3p \
      | awk '{s += $1} END {print s / NR}')
echo "estimates $lo and $hi tokens/s, train $got tokens/s"
expect '[ "$measured" -ge 3 ]' "the estimate measured at least 3 steps"
expect 'awk -v a="$got" -v lo="$lo" -v hi="$hi" "BEGIN{exit !(a >= lo / 2 && a <= 2 * hi)}"' \
    "train's tokens/s ($got) within [half of $lo, twice $hi]"
# the estimate's plan is the trainer's: its AdamW bytes are train's optim_bytes
expect '[ "$(jq .memory.optim est.json)" = "$(jq "select(.t == \"metrics\") | .optim_bytes" train.jsonl | head -1)" ]' \
    "AdamW memory: estimate = train's optim_bytes"
expect '[ "$(jq "select(.t == \"metrics\") | .eta_s" train.jsonl | tail -1)" = 0 ]' "eta_s is 0 at the last step"
expect '[ "$(jq "select(.t == \"metrics\") | .eta_s > 0" train.jsonl | head -1)" = true ]' "eta_s > 0 before"
finish
