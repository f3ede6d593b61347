# JSON -> records -> JSON is lossless; show's --full output imports back to the same JSON.
. "$KILN_ROOT/tests/lib.sh"
cat > in.jsonl <<'J'
{"t":"sample","id":0,"text":"hi","label":"cat"}
{"t":"sample","id":18446744073709551615,"neg":-9223372036854775808,"pi":3.141592653589793,"tiny":1e-300,"one":1.0,"ok":true,"none":null,"nested":{"a":[1,[2,"x"]],"b":{"c":"\u00e9\n\u0000"}}}
{"t":"tokens","tokens":{"dtype":"I32","shape":[5],"data":[1,-2,3,2147483647,-2147483648]},"mask":{"dtype":"U8","data":[1,0,1,1,0]}}
{"t":"batch","x":{"dtype":"F32","data":[[0.5,-1.25],[3.0e-5,1.0e10]]},"h":{"dtype":"BF16","data":[1.0,-2.0,0.5]},"w":{"dtype":"I64","data":[9223372036854775807]},"raw":{"$bin":"AAEC/w=="}}
J
"$K" import in.jsonl | "$K" show --full > out1.jsonl
"$K" import out1.jsonl | "$K" show --full > out2.jsonl
expect 'cmp -s out1.jsonl out2.jsonl' "show --full | import | show --full is the identity"
expect '[ $(wc -l < out1.jsonl) = 4 ]' "four records"
# Every field of the input survives (compare as JSON, ignoring seq and key order).
if command -v jq >/dev/null; then
    jq -cS 'del(.seq)' out1.jsonl > a.json
    jq -cS '.' in.jsonl | jq -cS 'if .t == "tokens" then .mask.shape = [5] else . end' > b.json
    jq -cS 'if .t=="tokens" then .tokens.shape=[5] else . end | if .t=="batch" then .x.shape=[2,2] | .h.shape=[3] | .w.shape=[1] else . end' b.json > c.json
    expect 'diff <(jq -cS . a.json) c.json >/dev/null' "JSON -> records -> JSON keeps every value"
fi
# The summary form: dtype, shape, min, max, mean.
"$K" import in.jsonl | "$K" show | sed -n 3p > sum.json
expect 'grep -q "\"tokens\":{\"dtype\":\"I32\",\"shape\":\[5\],\"min\":-2147483648.0,\"max\":2147483647.0" sum.json' "tensor summary"
# --all shows hdr and eos.
"$K" import in.jsonl | "$K" show --all > all.jsonl
expect 'head -1 all.jsonl | grep -q "\"t\":\"hdr\""' "--all starts with hdr"
expect 'tail -1 all.jsonl | grep -q "\"t\":\"eos\",\"seq\":5,\"count\":4,\"status\":\"ok\""' "--all ends with eos"
# The issue's example.
out=$(printf '{"t":"sample","text":"hi"}\n' | "$K" import | "$K" show)
expect '[ "$out" = "{\"t\":\"sample\",\"seq\":1,\"text\":\"hi\"}" ]' "import | show prints the record"
printf '{"t":"sample","text":"hi"}\n' | "$K" import | head -c 20 | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 74 ]' "a stream cut short exits 74"
finish
