# kiln label driven through tmux, as a person at a terminal would (docs/stages-rlhf.md,
# "kiln label"): label pairs with left, right, tie, undo and skip, check the screen shows the
# prompt and the progress line, quit; restart and label on, kill -9 the labeller mid-way and
# check nothing given before is lost; end a last session with Ctrl-C; then the label file and
# the pref records hold every decision once, with the right chosen and rejected.  tmux gives
# the labeller its terminal, so the test needs none.
. "$KILN_ROOT/tests/lib.sh"
command -v tmux > /dev/null || skip "tmux is not installed (apt-get install tmux): kiln label's terminal test skipped"
command -v jq > /dev/null || skip "jq is not installed"

# Five prompts of two completions (unicode, a newline), one prompt of one, one other record.
cat > roll.jsonl << 'EOF'
{"t":"rollout","id":10,"epoch":0,"src":"p","k":0,"prompt":"Call me","completion":"Ishmael."}
{"t":"rollout","id":10,"epoch":0,"src":"p","k":1,"prompt":"Call me","completion":"a sailor\nwho sings"}
{"t":"rollout","id":11,"epoch":0,"src":"p","k":0,"prompt":"The whale","completion":"was white"}
{"t":"rollout","id":11,"epoch":0,"src":"p","k":1,"prompt":"The whale","completion":"smiled — ☺ ünïcödé"}
{"t":"rollout","id":12,"epoch":0,"src":"p","k":0,"prompt":"The sea","completion":"is grey"}
{"t":"rollout","id":12,"epoch":0,"src":"p","k":1,"prompt":"The sea","completion":"is blue"}
{"t":"sample","text":"not a rollout: passed through"}
{"t":"rollout","id":13,"epoch":0,"src":"p","k":0,"prompt":"Ahab","completion":"raged"}
{"t":"rollout","id":13,"epoch":0,"src":"p","k":1,"prompt":"Ahab","completion":"laughed"}
{"t":"rollout","id":14,"epoch":0,"src":"p","k":0,"prompt":"Queequeg","completion":"slept"}
{"t":"rollout","id":14,"epoch":0,"src":"p","k":1,"prompt":"Queequeg","completion":"sang"}
{"t":"rollout","id":15,"epoch":0,"src":"p","k":0,"prompt":"Alone","completion":"one only"}
EOF
"$K" import roll.jsonl > roll.rec

unset TMUX # a tmux of its own, even when the test runs inside one
sock="$PWD/tmux.sock"
printf 'set -g default-terminal tmux-256color\nset -g remain-on-exit off\n' > tmux.conf
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2> /dev/null' EXIT
screen() { T capture-pane -p -t lab 2> /dev/null; }
# wait_for TEXT: until the screen shows TEXT (10 s at most); false otherwise.
wait_for() {
    for _ in $(seq 100); do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    echo "screen without '$1':" >&2
    screen >&2
    return 1
}
# key KEY TEXT: press KEY, then wait until the screen shows TEXT.
key() { T send-keys -t lab "$1" && wait_for "$2"; }
# start OUT: kiln label in a new detached session; its pid in pid, its exit status in OUT.rc.
start() {
    rm -f pid "$1.rc"
    T -f tmux.conf -u new-session -d -s lab -x 120 -y 30 \
        "sh -c 'echo \$\$ > pid; exec \"$K\" label --labels labels.jsonl < roll.rec > $1.rec 2> $1.err'; echo \$? > $1.rc"
}
# The session's end: its exit status (waits 10 s at most for the pane to go).
ended() {
    for _ in $(seq 100); do
        [ -s "$1.rc" ] && break
        sleep 0.1
    done
    cat "$1.rc" 2> /dev/null
}
prefs() { "$K" show < "$1" | jq -s -c 'map(select(.t == "pref") | [.id, .chosen, .rejected, .chosen_k, .rejected_k, .by])'; }

# ---- session 1: left, right, tie, undo, skip, quit --------------------------------------------
start s1
expect 'wait_for "0 of 5 labelled"' "the progress line shows 0 of 5"
expect 'screen | grep -q "Call me"' "the screen shows the prompt"
expect 'screen | grep -q "Ishmael\." && screen | grep -q "who sings"' "the screen shows both completions"
expect 'screen | grep -q "q quit"' "the screen lists the keys"
expect 'key 1 "1 of 5 labelled"' "1: left"
expect 'screen | grep -q "The whale" && screen | grep -q "ünïcödé"' "the next pair, unicode drawn"
expect 'key Right "2 of 5 labelled"' "right arrow: right"
expect 'key t "3 of 5 labelled"' "t: tie"
expect 'key u "2 of 5 labelled"' "u: undo"
expect 'screen | grep -q "The sea"' "undo goes back to the pair undone"
expect 'key s "3 of 5 labelled"' "s: skip"
expect 'screen | grep -q "Ahab"' "the next pair after the skip"
T send-keys -t lab q
expect '[ "$(ended s1)" = 0 ]' "q ends the session with 0 (got $(cat s1.rc 2> /dev/null))"
expect '[ "$(prefs s1.rec)" = "[[10,\"Ishmael.\",\"a sailor\\nwho sings\",0,1,\"person\"],[11,\"smiled — ☺ ünïcödé\",\"was white\",1,0,\"person\"]]" ]' \
    "session 1: pref records for the left and the right decision ($(prefs s1.rec))"
expect '[ "$("$K" show < s1.rec | jq -s "map(select(.t == \"sample\")) | length")" = 1 ]' "other records pass through"
expect 'grep -q "1 prompts with a single completion skipped" s1.err' "the lonely prompt is counted: $(cat s1.err)"

# ---- session 2: a restart shows only undecided pairs; kill -9 loses nothing given --------------
start s2
expect 'wait_for "3 of 5 labelled"' "a restart counts the earlier decisions"
expect 'screen | grep -q "Ahab"' "a restart shows the first undecided pair"
expect 'key h "4 of 5 labelled"' "h: left"
expect 'screen | grep -q "Queequeg"' "the last pair"
kill -9 "$(cat pid)"
expect '[ "$(ended s2)" = 137 ]' "kill -9 (status $(cat s2.rc 2> /dev/null))"
expect '[ "$(jq -s -c "map(select(.id == 13)) | map(.label)" labels.jsonl)" = "[\"left\"]" ]' \
    "the decision before kill -9 is in the label file"

# ---- session 3: the last pair, then Ctrl-C -------------------------------------------------
start s3
expect 'wait_for "4 of 5 labelled"' "the decision before kill -9 counts after the restart"
expect 'screen | grep -q "Queequeg"' "the pair not decided before kill -9 is shown"
expect 'key l "Every pair is labelled"' "l: right; then every pair is labelled"
expect 'screen | grep -q "5 of 5 labelled"' "5 of 5"
T send-keys -t lab C-c
expect '[ "$(ended s3)" = 130 ]' "Ctrl-C ends with 130 (got $(cat s3.rc 2> /dev/null))"
want='[[10,"Ishmael.","a sailor\nwho sings",0,1,"person"],[11,"smiled — ☺ ünïcödé","was white",1,0,"person"],[13,"raged","laughed",0,1,"person"],[14,"sang","slept",1,0,"person"]]'
expect '[ "$(prefs s3.rec)" = "$want" ]' "every left/right decision once, chosen and rejected right: $(prefs s3.rec)"
expect '"$K" show --all < s3.rec | tail -1 | grep -q "\"status\":\"interrupted\""' "Ctrl-C: the stream ends with eos interrupted"

# The label file: one line per key press, each pair's decision standing once.
expect '[ "$(jq -s -c "map(.label)" labels.jsonl)" = "[\"left\",\"right\",\"tie\",\"undo\",\"skip\",\"left\",\"right\"]" ]' \
    "the label file holds every decision and the undo: $(jq -s -c "map(.label)" labels.jsonl)"
standing=$(jq -s -c 'reduce .[] as $e ({}; ($e.id|tostring) as $k | if $e.label == "undo" then del(.[$k]) else .[$k] = $e.label end)' labels.jsonl)
expect '[ "$standing" = "{\"10\":\"left\",\"11\":\"right\",\"12\":\"skip\",\"13\":\"left\",\"14\":\"right\"}" ]' \
    "replayed, every pair holds one decision: $standing"

# With every pair decided no terminal is needed: the same prefs, status 0.
expect_status 0 "$K" label --labels labels.jsonl --in roll.rec --out done.rec 2> /dev/null
expect '[ "$(prefs done.rec)" = "$want" ]' "a finished label file gives its prefs without a terminal"
expect_status 0 "$K" label --labels labels.jsonl --all-pairs --export --in roll.rec --out /dev/null 2> all.err
expect 'grep -q "5 of 5 pairs labelled" all.err' "--all-pairs of two completions each: the same 5 pairs ($(cat all.err))"

# ---- --skipped: the pair skipped in session 1 again; skipping it again ends, no loop ----------
T -f tmux.conf -u new-session -d -s lab -x 120 -y 30 \
    "\"$K\" label --labels labels.jsonl --skipped < roll.rec > s6.rec 2> s6.err; echo \$? > s6.rc"
expect 'wait_for "The sea"' "--skipped shows the skipped pair again"
expect 'key s "Every pair is labelled"' "skipped again: shown once a session"
expect 'key u "4 of 5 labelled"' "undo of the new skip leaves the pair undecided"
expect 'screen | grep -q "The sea"' "and shows it"
expect 'key 2 "5 of 5 labelled"' "2: right replaces the skip"
T send-keys -t lab q
expect '[ "$(ended s6)" = 0 ]' "the --skipped session ends with 0"
expect '[ "$(prefs s6.rec | jq -c ".[2]")" = "[12,\"is blue\",\"is grey\",1,0,\"person\"]" ]' \
    "the once skipped pair now gives a pref: $(prefs s6.rec | jq -c ".[2]")"
expect '[ "$(prefs s6.rec | jq length)" = 5 ]' "five prefs, each pair once"

# ---- --shuffle and scrolling: a long completion, three completions, every pair ----------------
long=$(seq -f 'line %02g' 60 | paste -sd '#' | sed 's/#/\\n/g')
printf '{"t":"rollout","id":20,"k":%d,"prompt":"Count","completion":"%s"}\n' 0 "$long" 1 short 2 other \
    | "$K" import > roll2.rec
T -f tmux.conf -u new-session -d -s lab -x 120 -y 30 \
    "\"$K\" label --labels labels2.jsonl --all-pairs --shuffle < roll2.rec > s4.rec 2> s4.err; echo \$? > s4.rc"
expect 'wait_for "0 of 3 labelled"' "--all-pairs of three completions: 3 pairs"
shown=""
for n in 1 2 3; do
    left=$(screen | sed -n 's/.*\[1\] left (k \([0-9]*\)).*\[2\] right (k \([0-9]*\)).*/\1 \2/p')
    shown="$shown${shown:+,}[${left% *},${left#* }]"
    if screen | grep -q "line 01"; then
        expect '! screen | grep -q "line 40"' "a long completion is cut at the screen's end"
        expect 'screen | grep -q "scroll"' "and the scroll keys are shown"
        expect 'key " " "line 40"' "space scrolls the completions down"
        expect 'key k "line 29"' "k scrolls up"
    fi
    expect 'key 1 "$n of 3 labelled"' "1 on pair $n (shown left, right: $left)"
done
T send-keys -t lab q
expect '[ "$(ended s4)" = 0 ]' "the --shuffle session ends with 0"
got=$("$K" show < s4.rec | jq -s -c 'map([.chosen_k, .rejected_k]) | sort')
expect '[ "$got" = "$(echo "[$shown]" | jq -c sort)" ]' "every chosen is the completion shown on the left: prefs $got, screens [$shown]"
expect '[ "$(echo "[$shown]" | jq "map(select(.[0] > .[1])) | length")" -ge 1 ]' "--shuffle put a later completion on the left ([$shown])"

# ---- images: half blocks in colour, the pair as PNGs, image prefs -----------------------------
img() { printf '{"dtype":"U8","shape":[2,2,3],"data":[[[%s],[0,255,0]],[[0,0,255],[255,255,255]]]}' "$1"; }
printf '{"t":"rollout","id":30,"k":%d,"label":"T-shirt/top","image":%s}\n' 0 "$(img 255,0,0)" 1 "$(img 0,0,0)" \
    | "$K" import > roll3.rec
T -f tmux.conf -u new-session -d -s lab -x 100 -y 24 \
    "\"$K\" label --labels labels3.jsonl --png-dir pngs < roll3.rec > s5.rec 2> s5.err; echo \$? > s5.rc"
expect 'wait_for "T-shirt/top"' "an image rollout's label is its prompt"
expect 'screen | grep -q "▀▀▀▀"' "images drawn with upper half blocks"
expect 'T capture-pane -p -e -t lab | grep -q "38;5;196m.*▀"' "in colour: the red pixel as xterm colour 196"
expect '[ -s pngs/left.png ] && [ -s pngs/right.png ]' "--png-dir: the pair as left.png and right.png"
"$K" load png:pngs 2> /dev/null | "$K" show > pngs.jsonl
expect '[ "$(jq -s -c "map(.image.shape)" pngs.jsonl)" = "[[2,2,3],[2,2,3]]" ]' "the PNGs hold the images: $(jq -s -c "map(.image.shape)" pngs.jsonl)"
expect 'key 2 "1 of 1 labelled"' "2: right"
T send-keys -t lab q
expect '[ "$(ended s5)" = 0 ]' "the image session ends with 0"
expect '[ "$("$K" show --full < s5.rec | jq -c "[.prompt, .chosen, .chosen_k, .rejected_k, .chosen_image.data[0][0], .rejected_image.data[0][0]]")" = "[\"T-shirt/top\",\"\",1,0,[0,0,0],[255,0,0]]" ]' \
    "an image pref carries the chosen and rejected images"
finish
