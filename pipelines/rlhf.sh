#!/usr/bin/env bash
# pipelines/rlhf.sh — reinforcement learning from feedback: pairs of a model's own completions,
# preferences from a judge program or a person, a reward model, and the model optimised on
# the preferences (DPO) or against the reward model (PPO); then the model before and after on
# held-out prompts.
#
#   pipelines/rlhf.sh --base runs/moby/ckpt/latest.safetensors --prompts prompts.txt \
#       --judge afinn --method dpo --data examples/data/moby-dick.txt --out runs/rlhf
#   pipelines/rlhf.sh --base BASE --prompts prompts.jsonl --labeller human --out runs/mine
#   pipelines/rlhf.sh --base runs/fashion/ckpt/latest.safetensors --prompts classes.txt \
#       --val-images idx:t10k-images.gz,t10k-labels.gz --out runs/bright
#
# The flow it runs (printed before it starts):
#
#   kiln load PROMPTS | kiln rollout --ckpt BASE -K 2 | kiln judge --pairs JUDGE
#     (--labeller human: | kiln label --labels OUT/labels.jsonl)          > OUT/prefs.rec
#   the same on the held-out prompts                                       > OUT/prefs-held.rec
#   reward model: OUT/prefs.rec | kiln train --objective reward --init BASE | kiln ckpt
#     kiln eval --ckpt OUT/rm/latest.safetensors --data OUT/prefs-held.rec (pairwise accuracy)
#   DPO: OUT/prefs.rec | kiln logps --ckpt BASE | kiln train --objective dpo --init BASE
#     | kiln ckpt --dir OUT/dpo
#   or PPO: kiln load PROMPTS | kiln ppo --init BASE --reward 'kiln reward --ckpt OUT/rm/...'
#     | kiln ckpt --dir OUT/ppo        (--rm-steps 0: the judge itself is the reward stage)
#   evaluation, for BASE and the result: kiln load HELD | kiln rollout -K 1 | kiln logps --ckpt
#     BASE | kiln judge --score JUDGE: the judge's mean score, KL to the reference
#     (sum(logprobs - ref_logprobs) per completion); kiln eval --data (held-out LM loss of the
#     original text, --data); samples before and after side by side.  OUT/report.txt has it all.
#
# Prompts: a JSON-lines file of records with `prompt` (TRL's prompt datasets), or a text
# file with a prompt a line.  The last --held N prompts are held out for the evaluation.
# An image base (its tokenizer is levels or palette, kiln ckpt inspect) takes class names:
# JSON lines {"label": "Sneaker"} or a text file of names, a prompt a line; its judge
# defaults to brightness, --val-images gives the held-out bits/dim (tokenized as the base
# was pretrained), and the samples are PNG grids (OUT/samples-before.png, -after.png: a
# row per held-out class, 8 images each, the same seeds before and after).
# Preferences from any other program: give --prefs FILE (pref records, or TRL's
# {"prompt","chosen","rejected"} JSON lines) and no prompts are rolled out for training.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build

usage() { # usage STATUS: --help prints it on stdout and exits 0, a mistake on stderr, 2
    [ "$1" = 0 ] || exec >&2
    sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'
    cat << 'EOF'
options:
  --base FILE          the model to improve: a kiln checkpoint (required)
  --prompts FILE       prompts: JSON lines with `prompt`, or text, a prompt a line (required)
  --prefs FILE         preferences made elsewhere (pref records or TRL JSON lines) instead
                       of rolling out and judging the training prompts
  --held N             prompts held out for the evaluation (default 200)
  --method M           dpo (default) or ppo
  --labeller L         judge (default) or human (kiln label at this terminal)
  --judge NAME         the kiln judge that prefers and scores (default afinn; words,
                       repetition, length; cmd:PROGRAM for any program that prints a score;
                       an image base: brightness, the default, or cmd:PROGRAM)
  --judge-opts 'OPTS'  more kiln judge options (e.g. a lexicon file)
  -K N                 completions per prompt (default 2)
  --max-new N          tokens per completion (default 48; an image base draws its pixels)
  --temperature X      sampling temperature of the rollouts (default 1)
  --steps N            DPO optimizer steps (default 200)
  --rm-steps N         reward-model steps (default: --steps; 0 skips the reward model)
  --accum N            pairs per optimizer step (default 8)
  --epochs N           passes over the preferences (default: as many as --steps need)
  --beta X             DPO beta (default 0.1)
  --iterations N       PPO iterations (default 20)
  --ppo-prompts N      PPO prompts per iteration, K completions each (default 8)
  --kl-coef X          PPO's KL penalty beta (default 0.05)
  --ppo-opts 'OPTS'    more kiln ppo options (e.g. '--target-kl 6 --missing-eos-penalty 0')
  --loss-type T        sigmoid (default) or ipo
  --lr X               peak learning rate (default: kiln train's fine-tuning default)
  --lora SPEC          train LoRA adapters instead of every weight (kiln train --lora)
  --data FILE          the text the base learnt from: its last 5% gives the held-out LM loss
  --ptx-coef X         the rest of --data joins DPO or PPO as pretraining batches, one of 8
                       rows an optimizer step, weighted X (InstructGPT's ptx; default 0: none)
  --val-images SPEC    an image base: held-out images as kiln load reads them
                       (idx:IMAGES,LABELS or png:DIR) for the held-out bits/dim
  --val-records N      held-out images evaluated (default 256)
  --samples N          samples shown before and after (default 3; an image base: the grid's
                       rows, distinct held-out prompts, default 10)
  --threads N          threads (default: all CPUs)
  --seed S             seed (default 1)
  --out DIR            where everything goes (default runs/rlhf)
  --dry-run            print the stage chain and stop
EOF
    exit "$1"
}
die() { echo "rlhf.sh: $*" >&2; exit 2; }

base="" prompts="" prefs="" held=200 method=dpo labeller=judge judge="" judge_opts=""
val_images="" val_records=256 samples=""
K=2 max_new=48 temperature=1 steps=200 rm_steps="" accum=8 epochs="" beta=0.1 loss_type=sigmoid
lr="" lora="" data="" threads=0 seed=1 out=runs/rlhf dry=""
iterations=20 ppo_prompts=8 kl_coef=0.05 ppo_opts="" ptx_coef=0
while [ $# -gt 0 ]; do
    case "$1" in --dry-run | -h | --help) ;; -* ) [ $# -ge 2 ] || die "$1 needs a value (--help)" ;; esac
    case "$1" in
    --base) base=$2; shift ;;
    --prompts) prompts=$2; shift ;;
    --prefs) prefs=$2; shift ;;
    --held) held=$2; shift ;;
    --method) method=$2; shift ;;
    --labeller) labeller=$2; shift ;;
    --judge) judge=$2; shift ;;
    --judge-opts) judge_opts=$2; shift ;;
    -K) K=$2; shift ;;
    --max-new) max_new=$2; shift ;;
    --temperature) temperature=$2; shift ;;
    --steps) steps=$2; shift ;;
    --rm-steps) rm_steps=$2; shift ;;
    --accum) accum=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --beta) beta=$2; shift ;;
    --iterations) iterations=$2; shift ;;
    --ppo-prompts) ppo_prompts=$2; shift ;;
    --kl-coef) kl_coef=$2; shift ;;
    --ppo-opts) ppo_opts=$2; shift ;;
    --loss-type) loss_type=$2; shift ;;
    --lr) lr=$2; shift ;;
    --lora) lora=$2; shift ;;
    --data) data=$2; shift ;;
    --ptx-coef) ptx_coef=$2; shift ;;
    --samples) samples=$2; shift ;;
    --val-images) val_images=$2; shift ;;
    --val-records) val_records=$2; shift ;;
    --threads) threads=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) usage 0 ;;
    *) echo "rlhf.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$base" ] || die "give --base CHECKPOINT (--help)"
[ -f "$base" ] || die "$base: no such checkpoint"
[ -n "$prompts" ] || die "give --prompts FILE (--help)"
[ -f "$prompts" ] || die "$prompts: no such file"
for f in "$prefs" "$data"; do [ -z "$f" ] || [ -f "$f" ] || die "$f: no such file"; done
case "$method" in dpo | ppo) ;; *) die "--method is dpo or ppo" ;; esac
case "$labeller" in judge | human) ;; *) die "--labeller is judge or human" ;; esac
[ -n "$rm_steps" ] || rm_steps=$steps
[ "$ptx_coef" = 0 ] || [ -n "$data" ] || die "--ptx-coef needs --data (the text the base learnt from)"
command -v jq > /dev/null || die "needs jq (make deps)"

# ---- the base: text or images ----------------------------------------------------------------
meta=$(kiln ckpt inspect "$base") || die "$base: not a checkpoint kiln ckpt inspect reads"
tokenizer=$(awk '$1 == "tokenizer" { sub(/^[^ ]+ +/, ""); print }' <<< "$meta")
[ -n "$tokenizer" ] || die "$base: the checkpoint has no tokenizer"
kind=$(jq -r .kind <<< "$tokenizer")
image=""; case "$kind" in levels | palette) image=1 ;; esac
if [ -n "$image" ]; then
    [ -n "$judge" ] || judge=brightness
    case "$judge" in afinn | words | repetition | length)
        die "--judge $judge scores text; $base is an image model ($kind): brightness, reward or cmd:PROGRAM" ;; esac
    [ -z "$data" ] || die "--data is a text base's held-out text; $base is an image model: give --val-images SPEC"
    [ -n "$samples" ] || samples=10
else
    [ -n "$judge" ] || judge=afinn
    [ "$judge" != brightness ] || die "--judge brightness scores images; $base is a text model ($kind)"
    [ -z "$val_images" ] || die "--val-images is an image base's; $base is a text model: give --data FILE"
    [ -n "$samples" ] || samples=3
fi
[ -n "$dry" ] || mkdir -p "$out"
th=(); [ "$threads" = 0 ] || th=(--threads "$threads")
read -r -a jopts <<< "$judge_opts"
read -r -a popts <<< "$ppo_opts"
judge_is=("$judge"); [ "${judge#cmd:}" = "$judge" ] || judge_is=(--cmd "${judge#cmd:}")

if [ -n "$val_images" ]; then # as pipelines/pretrain.sh --images loads and tokenizes them
    read -r H W C L < <(jq -r '[.height, .width, .channels, .levels // 0] | map(tostring) | join(" ")' <<< "$tokenizer")
    pixels=$((H * W * C))
    load_val=("$val_images" --size "${H}x$W" --channels "$C" --limit "$val_records")
    [ "$(jq '.classes // [] | length' <<< "$tokenizer")" = 0 ] || load_val+=(--classes "$out/classes.txt")
    tokenize_val=(kiln tokenize --levels "$L"); [ "$kind" = levels ] || tokenize_val=(kiln tokenize --palette "$out/palette.txt")
fi

# ---- prompts: training and held out -------------------------------------------------------
class_prompts() { # class_prompts FILE: an image base's prompts as {"label"} lines, checked
    local lines
    case "$1" in
    *.jsonl | *.json) lines=$(grep . "$1" | jq -c . 2> /dev/null) || die "$1: not JSON lines" ;;
    *) lines=$(grep . "$1" | jq -R -c '{label: .}') ;;
    esac
    local bad
    bad=$(jq -r -s --argjson tok "$tokenizer" '($tok.classes // []) as $c | to_entries
        | map(select(.value.label as $l | ($l | type) != "string" or ($c | map(. == $l) | any | not)))
        | .[0] // empty | "prompt \(.key + 1): \(.value | tojson)"' <<< "$lines")
    [ -z "$bad" ] || die "$1: $bad: an image base's prompt is {\"label\": CLASS}, a class of $base ($(
        jq -r '.classes // [] | join(", ")' <<< "$tokenizer"))"
    echo "$lines"
}
n=$(grep -c . "$prompts" || true)
[ "$n" -gt "$held" ] || die "$prompts: $n prompts, not more than --held $held"
ext=jsonl; case "$prompts" in *.jsonl | *.json) ;; *) ext=txt ;; esac
[ -z "$image" ] || ext=jsonl # class names become {"label": NAME} lines
if [ -z "$dry" ]; then
    if [ -n "$image" ]; then
        class_prompts "$prompts" > "$out/prompts-all.$ext"
    else
        grep . "$prompts" > "$out/prompts-all.$ext" # (head in a pipe would end grep early: pipefail)
    fi
    head -n $((n - held)) "$out/prompts-all.$ext" > "$out/prompts-train.$ext"
    tail -n "$held" "$out/prompts-all.$ext" > "$out/prompts-held.$ext"
fi
load() { # load FILE: the prompts as records
    if [ "$ext" = jsonl ]; then kiln load "jsonl:$1"; else kiln load "text:$1" --split lines; fi
}
draw=(--max-new "$max_new"); [ -z "$image" ] || draw=() # an image model draws its pixels
rollout=(kiln rollout -K "$K" "${draw[@]}" --temperature "$temperature" --seed "$seed" "${th[@]}")
if [ "$labeller" = human ]; then
    prefer=(kiln label --labels "$out/labels.jsonl")
else
    prefer=(kiln judge --pairs "${judge_is[@]}" "${jopts[@]}")
fi
train=(kiln train --init "$base" --accum "$accum" --log-every 10 --seed "$seed" "${th[@]}")
[ -z "$lr" ] || train+=(--lr "$lr")
[ -z "$lora" ] || train+=(--lora "$lora")
q() { # q WORDS...: as a shell would need them typed
    local a o=()
    for a; do if [[ $a =~ ^[A-Za-z0-9_./:=,+-]+$ ]]; then o+=("$a"); else o+=("'$a'"); fi; done
    echo "${o[*]}"
}
repeat() { # repeat FILE: --epochs passes over a record file; the trainer may stop reading
    for _ in $(seq "$epochs"); do cat "$1" || return 0; done # at --steps (a closed pipe)
}
# PPO's reward stage: the reward model (one forward per batch of P x K rollouts), or with
# --rm-steps 0 the judge itself; kiln ppo runs it as a co-process (docs/stages-rlhf.md)
if [ "$rm_steps" -gt 0 ]; then
    reward_cmd="kiln reward --ckpt $(q "$out/rm/latest.safetensors") -B $((ppo_prompts * K))"
else
    reward_cmd="kiln judge --score $(q "${judge_is[@]}" "${jopts[@]}")"
fi
ppo=(kiln ppo --init "$base" --reward "$reward_cmd" --iterations "$iterations" --prompts "$ppo_prompts"
    -K "$K" "${draw[@]}" --kl-coef "$kl_coef" --seed "$seed" "${popts[@]}" "${th[@]}")
[ -z "$lr" ] || ppo+=(--lr "$lr")
[ -z "$lora" ] || ppo+=(--lora "$lora")
ptx_flow=""; [ "$ptx_coef" = 0 ] || ptx_flow=" --ptx $out/ptx.rec --ptx-coef $ptx_coef"
if [ "$method" = ppo ]; then
    method_flow="ppo:         load $out/prompts-train.$ext | $(q "${ppo[@]}")$ptx_flow | kiln ckpt --dir $out/ppo"
else
    method_flow="dpo:         $out/prefs.rec | kiln logps --ckpt $base > $out/prefs-ref.rec
               $out/prefs-ref.rec x${epochs:-N} | $(q "${train[@]}") --objective dpo --beta $beta --loss-type $loss_type --steps $steps$ptx_flow | kiln ckpt --dir $out/dpo"
fi

prefs_flow="" rm_flow=""
if [ "$method" = dpo ] || [ "$rm_steps" -gt 0 ]; then
    prefs_flow="preferences: ${prefs:-load $out/prompts-train.$ext | $(q "${rollout[@]}") --ckpt $base | $(q "${prefer[@]}")} > $out/prefs.rec
  held out:    load $out/prompts-held.$ext | $(q "${rollout[@]}") --ckpt $base | $(q "${prefer[@]}") > $out/prefs-held.rec
  "
fi
if [ "$rm_steps" -gt 0 ]; then
    rm_flow="reward:      $out/prefs.rec x${epochs:-N} | $(q "${train[@]}") --objective reward --steps $rm_steps | kiln ckpt --dir $out/rm
               kiln eval --ckpt $out/rm/latest.safetensors --data $out/prefs-held.rec
  "
fi
cat >&2 << EOF
rlhf.sh: the flow
  $prefs_flow$rm_flow$method_flow
  evaluation:  load $out/prompts-held.$ext | kiln rollout -K 1 --ckpt BASE|AFTER | kiln logps --ckpt $base | kiln judge --score $(q "${judge_is[@]}")${data:+
               kiln eval --ckpt BASE|AFTER --data $out/val.rec (the last 5% of $data)}${val_images:+
               kiln load $(q "${load_val[@]}") | $(q "${tokenize_val[@]}") | kiln batch -B 16 -T ${pixels:-} > $out/val.rec
               kiln eval --ckpt BASE|AFTER --data $out/val.rec (held-out bits/dim)}${image:+
               $samples held-out prompts | kiln rollout -K 8 --ckpt BASE|AFTER --png $out/samples-before.png|-after.png}
EOF
[ -z "$dry" ] || exit 0
t0=$(date +%s)

# ---- held-out images, first: a bad --val-images stops the run before anything trains ----------
if [ -n "$val_images" ]; then # held-out images, tokenized as pretrain.sh --images did
    jq -r '.classes // [] | .[]' <<< "$tokenizer" > "$out/classes.txt"
    [ "$kind" != palette ] || jq -r '.palette[] | join(" ")' <<< "$tokenizer" > "$out/palette.txt"
    kiln load "${load_val[@]}" 2> "$out/val-load.err" | "${tokenize_val[@]}" \
        | kiln batch -B 16 -T "$pixels" > "$out/val.rec" \
        || die "--val-images $val_images: could not load and tokenize it ($(tail -1 "$out/val-load.err"))"
fi

# ---- preferences (PPO against the judge itself, --rm-steps 0, needs none) --------------------
pairs=0
if [ "$method" = dpo ] || [ "$rm_steps" -gt 0 ]; then
    if [ -n "$prefs" ]; then
        case "$prefs" in *.jsonl | *.json) kiln load "jsonl:$prefs" > "$out/prefs.rec" ;; *) cp "$prefs" "$out/prefs.rec" ;; esac
    else
        load "$out/prompts-train.$ext" | "${rollout[@]}" --ckpt "$base" | "${prefer[@]}" > "$out/prefs.rec"
    fi
    load "$out/prompts-held.$ext" | "${rollout[@]}" --ckpt "$base" | "${prefer[@]}" > "$out/prefs-held.rec"
    pairs=$(kiln show < "$out/prefs.rec" | jq -s 'map(select(.chosen != null)) | length')
    echo "rlhf.sh: $pairs preference pairs ($(($(date +%s) - t0)) s)" >&2
    [ "$pairs" -gt 0 ] || die "no preference pairs to train on"
    most=$((steps > rm_steps ? steps : rm_steps))
    [ -n "$epochs" ] || epochs=$(((most * accum + pairs - 1) / pairs))
fi

# ---- reward model ------------------------------------------------------------------------------
rm_acc=""
if [ "$rm_steps" -gt 0 ]; then
    repeat "$out/prefs.rec" | "${train[@]}" --objective reward --steps "$rm_steps" \
        | kiln ckpt --dir "$out/rm" | kiln show > "$out/rm-log.jsonl"
    rm_acc=$(kiln eval --ckpt "$out/rm/latest.safetensors" --data "$out/prefs-held.rec" \
        | kiln show | jq -s -r 'map(select(.accuracy != null)) | .[0].accuracy')
    echo "rlhf.sh: reward model: held-out pairwise accuracy $rm_acc ($(($(date +%s) - t0)) s)" >&2
fi

# ---- the original text: its last 5% held out, the rest --ptx batches ---------------------------
ptx=()
if [ -n "$data" ]; then # the held-out LM loss: byte models, rows as pretrain.sh --text makes them
    ctx=$(awk '$1 == "config" { print $2 }' <<< "$meta" | jq .n_ctx)
    [ "$ctx" -le 128 ] || ctx=128
    if [ "$kind" = bytes ]; then
        bytes=$(wc -c < "$data")
        tail -c $((bytes / 20)) "$data" > "$out/val.txt"
        kiln load "text:$out/val.txt" --split "chunk:$ctx" | kiln tokenize --bytes \
            | kiln batch -B 16 -T "$ctx" > "$out/val.rec"
        if [ "$ptx_coef" != 0 ]; then # the rest: pretraining batches mixed into DPO
            head -c $((bytes - bytes / 20)) "$data" > "$out/ptx.txt"
            kiln load "text:$out/ptx.txt" --split "chunk:$ctx" --shuffle --seed "$seed" \
                | kiln tokenize --bytes | kiln batch -B 8 -T "$ctx" > "$out/ptx.rec"
            ptx=(--ptx "$out/ptx.rec" --ptx-coef "$ptx_coef")
        fi
    else
        [ "$ptx_coef" = 0 ] || die "--ptx-coef: the base's tokenizer is $kind, not bytes"
        echo "rlhf.sh: --data: the base's tokenizer is $kind, not bytes: no held-out LM loss" >&2
        data=""
    fi
fi
# ---- DPO, or PPO against the reward stage --------------------------------------------------------
if [ "$method" = dpo ]; then
    kiln logps --ckpt "$base" "${th[@]}" < "$out/prefs.rec" > "$out/prefs-ref.rec"
    repeat "$out/prefs-ref.rec" | "${train[@]}" --objective dpo --beta "$beta" --loss-type "$loss_type" \
        --steps "$steps" "${ptx[@]}" | kiln ckpt --dir "$out/dpo" | kiln show > "$out/dpo-log.jsonl"
    summary='{step, loss, "rewards/accuracies", "rewards/margins"}'
else
    load "$out/prompts-train.$ext" | "${ppo[@]}" "${ptx[@]}" | kiln ckpt --dir "$out/ppo" | kiln show > "$out/ppo-log.jsonl"
    summary='{iteration, "objective/scores", "objective/kl", "loss/policy_avg", "loss/value_avg"}'
fi
after=$out/$method/latest.safetensors
after_model=(--ckpt "$after")
if [ -n "$lora" ]; then # the adapters folded into the base
    kiln ckpt merge "$base" "$after" -o "$out/$method/merged.safetensors" > /dev/null
    after=$out/$method/merged.safetensors after_model=(--ckpt "$after")
fi
echo "rlhf.sh: $method done ($(($(date +%s) - t0)) s): $(jq -s -c "map(select(.t == \"metrics\")) | last
    | $summary" "$out/$method-log.jsonl")" >&2

# ---- evaluation on the held-out prompts --------------------------------------------------------
lm_key=bits_per_byte; [ -z "$image" ] || lm_key=bits_per_dim
evaluate() { # evaluate NAME CKPT: scored held-out completions, KL, LM loss (images: a grid)
    load "$out/prompts-held.$ext" | kiln rollout -K 1 "${draw[@]}" --temperature 1 \
        --seed $((seed + 7)) --ckpt "$2" "${th[@]}" | kiln logps --ckpt "$base" "${th[@]}" \
        | kiln judge --score "${judge_is[@]}" "${jopts[@]}" | kiln show > "$out/eval-$1.jsonl"
    jq -s -c 'map(select(.t == "rollout")) | {score: (map(.reward) | add / length),
        sd: ((map(.reward) | add / length) as $m | map((.reward - $m) * (.reward - $m)) | add / length | sqrt),
        kl: (map((.logprobs.mean - .ref_logprobs.mean) * .logprobs.shape[0]) | add / length)}' \
        "$out/eval-$1.jsonl" > "$out/eval-$1.json"
    if [ -n "$data$val_images" ]; then
        kiln eval --ckpt "$2" --data "$out/val.rec" "${th[@]}" | kiln show \
            | jq -s -c "map(select(.$lm_key != null)) | .[0] | {loss, $lm_key}" > "$out/lm-$1.json"
    fi
    if [ -n "$image" ]; then # the same prompts and seeds before and after: image i of row r
        awk '!seen[$0]++' "$out/prompts-held.$ext" | head -n "$samples" > "$out/grid-prompts.jsonl" || true
        kiln load "jsonl:$out/grid-prompts.jsonl" | kiln rollout -K 8 --seed $((seed + 11)) \
            --ckpt "$2" "${th[@]}" --png "$out/samples-$1.png" 2> /dev/null > /dev/null
    fi
}
evaluate before "$base"
evaluate after "$after"
get() { jq -r "$2" "$out/$1"; }
{
    trained_on="$pairs pairs"; [ "$pairs" -gt 0 ] || trained_on="the judge's scores"
    echo "rlhf.sh --method $method --labeller $labeller --judge $judge: $trained_on, $held held-out prompts, $(($(date +%s) - t0)) s"
    [ -z "$rm_acc" ] || echo "reward model held-out pairwise accuracy: $rm_acc"
    printf '%-26s %12s %12s\n' "" before after
    printf '%-26s %12.4f %12.4f\n' "mean judge score" "$(get eval-before.json .score)" "$(get eval-after.json .score)"
    printf '%-26s %12.4f %12.4f\n' "  (standard deviation)" "$(get eval-before.json .sd)" "$(get eval-after.json .sd)"
    printf '%-26s %12s %12.2f\n' "  shift (base's sds)" "" "$(jq -n --slurpfile b "$out/eval-before.json" \
        --slurpfile a "$out/eval-after.json" '($a[0].score - $b[0].score) / (if $b[0].sd > 0 then $b[0].sd else 1 end)')"
    printf '%-26s %12.4f %12.4f\n' "KL to the base (nats)" "$(get eval-before.json .kl)" "$(get eval-after.json .kl)"
    if [ -n "$data$val_images" ]; then
        printf '%-26s %12.4f %12.4f\n' "held-out ${lm_key//_per_//}" "$(get lm-before.json ".$lm_key")" "$(get lm-after.json ".$lm_key")"
    fi
    echo
    if [ -n "$image" ]; then
        echo "samples: $out/samples-before.png, $out/samples-after.png (a row per prompt of $(
            jq -r -s 'map(.label) | join(", ")' "$out/grid-prompts.jsonl"), the same seeds)"
    else
        echo "samples (prompt | before | after):"
        paste -d '\t' \
            <(jq -r 'select(.t == "rollout") | [.prompt, (.completion | gsub("[\n\t]"; " "))] | join(" | ")' "$out/eval-before.jsonl") \
            <(jq -r 'select(.t == "rollout") | .completion | gsub("[\n\t]"; " ")' "$out/eval-after.jsonl") \
            | sed -n "1,${samples}p" | sed 's/\t/ | /; s/^/  /'
    fi
} > "$out/report.txt"
cat "$out/report.txt"
