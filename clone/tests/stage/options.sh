# The option parser on real stages (lib/stream/options.c): a usage error names the option
# and the range it wants, comes before any cast or any reading of input, starts with
# `kiln STAGE:`, points to --help and exits 2; a misspelt option or stage gets a suggestion;
# --help lists every option a stage accepts.
. "$KILN_ROOT/tests/lib.sh"

# usage_error WANT-FIRST-LINE CMD...: exit 2, exactly that message, then the pointer to the
# help of the program the message names (or of $help_of)
usage_error() {
    local want=$1; shift
    "$@" </dev/null >out.txt 2>err.txt; local rc=$?
    local try="Try '${help_of:-$(printf '%s' "$want" | sed 's/: .*//')} --help'."
    expect "[ $rc = 2 ]" "'$*' exits 2 (got $rc)"
    expect '[ "$(sed -n 1p err.txt)" = "$want" ]' "'$*': $(sed -n 1p err.txt)"
    expect '[ "$(sed -n 2p err.txt)" = "$try" ] && [ "$(wc -l < err.txt)" = 2 ]' \
        "'$*' points to --help: $(sed -n 2p err.txt)"
    expect '[ ! -s out.txt ]' "'$*' writes nothing to stdout"
}

usage_error "kiln train: --steps wants a whole number 0..2^64-1, not 'abc'" "$K" train --steps abc
# 4294967297 is 1 as an int: checked before the cast, not a 1-layer model
usage_error "kiln train: --layers must be 1..80 (got 4294967297)" "$K" train --layers 4294967297
usage_error "kiln train: --heads must be 1..16384 (got 0)" "$K" train --heads 0
usage_error "kiln train: unknown option --stpes (did you mean --steps?)" "$K" train --stpes 10
usage_error "kiln train: --lr wants a number in (0, 10), not 'nan'" "$K" train --lr=nan
usage_error "kiln train: --lr must be in (0, 10) (got 1e400)" "$K" train --lr=1e400
usage_error "kiln train: --model wants tiny, small or char, not 'huge'" "$K" train --model huge
usage_error "kiln train: --train needs --lora (else use --freeze)" \
    "$K" train --init x.safetensors --train ln_f
usage_error "kiln train: --lora and --freeze do not go together (--lora freezes the whole base already)" \
    "$K" train --init x.safetensors --lora r=4 --freeze wte
# 4294967296 is 0 as an int: it used to make nothing
usage_error "kiln sample: -n must be 0..1048576 (got 4294967296)" \
    "$K" sample --ckpt x.safetensors -n 4294967296
usage_error "kiln sample: --ckpt FILE is required" "$K" sample -n 5
usage_error "kiln sample: --top-p must be in (0, 1] (got 1.5)" "$K" sample --ckpt x --top-p 1.5
usage_error "kiln eval: --adapter needs --ckpt" "$K" eval --data x.rec --adapter a.safetensors
usage_error "kiln batch: -B must be 1..1048576 (got 0)" "$K" batch -B0 -T 8
usage_error "kiln batch: --ctx LEN is required" "$K" batch -B 4
usage_error "kiln load: --channels wants 1, 3 or 4, not '2'" "$K" load --channels 2 text:x
usage_error "kiln load: --shard wants I/N with 0 <= I < N, not '2/2'" "$K" load --shard 2/2 text:x
usage_error "kiln palette: --colors must be 2..4096 (got 1)" "$K" palette --colors 1
usage_error "kiln show: unexpected argument 'x'" "$K" show x
help_of="kiln ckpt merge" usage_error "kiln ckpt: --out OUT is required" \
    "$K" ckpt merge base.safetensors adapter.safetensors
# the kiln-STAGE binaries name themselves the way they are called, too
usage_error "kiln shuffle: -n must be 1..67108864 (got 0)" "$KILN_BIN/kiln-shuffle" -n 0

# the dispatcher: a misspelt stage
"$K" trian </dev/null 2>err.txt; rc=$?
expect '[ $rc = 2 ]' "kiln trian exits 2 (got $rc)"
expect '[ "$(cat err.txt)" = "kiln: '"'trian'"' is not a kiln stage (did you mean '"'train'"'?); '"'kiln'"' lists them" ]' \
    "kiln trian suggests train: $(cat err.txt)"
"$K" --no-such-option </dev/null 2>err.txt; rc=$?
expect '[ $rc = 2 ] && grep -q "^kiln: unknown option --no-such-option$" err.txt' "kiln's own options: $(cat err.txt)"

# options come before or after arguments; "--" ends them; a good value is taken
printf 'a\n\nb\n' > t.txt
"$K" load --split paragraphs text:t.txt --limit=1 | "$K" show > one.jsonl
expect '[ "$(wc -l < one.jsonl)" = 1 ] && grep -q "\"text\":\"a\"" one.jsonl' "options after a SOURCE: $(cat one.jsonl)"

# every option a stage accepts is in its --help (show's --progress and --total were not)
"$K" show --help > help.txt
expect 'grep -q "^  -p, --progress " help.txt && grep -q "^      --total N " help.txt' "show --help lists --progress and --total"
for p in "$KILN_BIN"/kiln-*; do
    "$p" --help > help.txt
    expect 'grep -q "^  -h, --help " help.txt && grep -q "^      --version " help.txt' \
        "$(basename "$p") --help lists --help and --version"
done
finish
