#!/usr/bin/env bash
# Entrypoint of the serving image: maps the environment that the AI Core ServingTemplate and the
# KServe InferenceService set (one contract for both backends, docs/images.md) onto
# `infinity_emb v2` flags, then execs infinity (through serve.py beside it, which adds unprefixed
# OpenAI routes) so signals reach the server directly.
#
# Every invalid value exits 2 with ONE line naming the variable and the fix, before anything
# slow happens. `run.sh --print-command` (or RUN_SH_DRY_RUN=1) validates, prints the final command
# as one shell-quoted line (`env K=V ... <launcher> v2 ...`) and exits 0.
#
# Contract: MODEL_SERVE_NAME (required), MODEL_DIR (/mnt/models), STORAGE_URI (informational; an
# hf://org/model[@rev] is served from the hub when MODEL_DIR has no model), BATCH_SIZE (32),
# URL_PRE_FIX (/v1), TRUST_REMOTE_CODE (false), ENGINE (torch), DTYPE (auto), POOLING (auto),
# REVISION, ARG (extra infinity_emb flags, split like a shell would), PORT (8080), HOST (0.0.0.0),
# INFINITY_HOME / HF_HOME (writable cache dirs, default under /tmp), INFINITY_API_KEY (optional:
# requests then need `Authorization: Bearer <key>`; infinity reads it from the environment itself,
# so the key is never on a command line, and it is never printed).
set -euo pipefail

fail() {
    printf 'run.sh: %s\n' "$*" >&2
    exit 2
}

dry_run=${RUN_SH_DRY_RUN:-0}
[ "$dry_run" = 1 ] || [ "$dry_run" = 0 ] || fail "RUN_SH_DRY_RUN='$dry_run' is invalid: set it to 1 or 0"
case "${1:-}" in
    "") ;;
    --print-command) dry_run=1 ;;
    *) fail "unknown argument '$1': run.sh takes no arguments except --print-command; configure it with environment variables" ;;
esac

lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }

# one_of VAR VALUE ALLOWED...: fail unless VALUE is one of ALLOWED.
one_of() {
    local var=$1 value=$2
    shift 2
    local allowed
    for allowed in "$@"; do
        [ "$value" = "$allowed" ] && return 0
    done
    local IFS='|'
    fail "$var='$value' is invalid: set it to one of $*"
}

# int_in VAR VALUE MIN MAX: fail unless VALUE is a decimal integer in [MIN, MAX].
int_in() {
    local var=$1 value=$2 min=$3 max=$4
    if ! [[ "$value" =~ ^[0-9]{1,9}$ ]] || ((10#$value < min || 10#$value > max)); then
        fail "$var='$value' is invalid: set it to an integer from $min to $max"
    fi
}

# --- required name -------------------------------------------------------------------------
name=${MODEL_SERVE_NAME:-}
[ -n "$name" ] || fail "MODEL_SERVE_NAME is not set: set it to the model name clients send (e.g. all-minilm-l6-v2)"
[[ "$name" =~ ^[^[:space:]]+$ ]] || fail "MODEL_SERVE_NAME='$name' is invalid: use a name without whitespace"

# --- scalar settings -----------------------------------------------------------------------
batch_size=${BATCH_SIZE:-32}
int_in BATCH_SIZE "$batch_size" 1 4096
batch_size=$((10#$batch_size))

prefix=${URL_PRE_FIX:-/v1}
if [[ "$prefix" != /* || "$prefix" == */ ]]; then
    fail "URL_PRE_FIX='$prefix' is invalid: set it to a path that starts with '/' and does not end with '/' (e.g. /v1)"
fi
[[ "$prefix" =~ ^[A-Za-z0-9/._~-]+$ ]] ||
    fail "URL_PRE_FIX='$prefix' is invalid: use only letters, digits and / . _ ~ - (e.g. /v1)"

trust=$(lower "${TRUST_REMOTE_CODE:-false}")
one_of TRUST_REMOTE_CODE "$trust" true false

engine=$(lower "${ENGINE:-torch}")
one_of ENGINE "$engine" torch optimum ctranslate2
# NB: the image installs only some engines' extras; it lists them so a missing one fails here,
# clearly, instead of as an ImportError deep inside infinity.
if [ -n "${INFINITY_AVAILABLE_ENGINES:-}" ] && [[ " $INFINITY_AVAILABLE_ENGINES " != *" $engine "* ]]; then
    fail "ENGINE='$engine' is not installed in this image: set ENGINE to one of: $INFINITY_AVAILABLE_ENGINES"
fi

dtype=$(lower "${DTYPE:-auto}")
one_of DTYPE "$dtype" auto float32 float16 bfloat16 int8 fp8

# NB: infinity 0.0.78 accepts only mean|cls|auto (PoolingMethod); only the optimum engine uses it,
# torch and ctranslate2 take pooling from the model's sentence-transformers config.
pooling=$(lower "${POOLING:-auto}")
one_of POOLING "$pooling" auto mean cls

port=${PORT:-8080}
int_in PORT "$port" 1 65535
port=$((10#$port))
host=${HOST:-0.0.0.0}
[[ "$host" =~ ^[A-Za-z0-9.:-]+$ ]] || fail "HOST='$host' is invalid: set it to an IP address or hostname (e.g. 0.0.0.0)"

revision=${REVISION:-}
[[ -z "$revision" || "$revision" =~ ^[A-Za-z0-9._/-]+$ ]] ||
    fail "REVISION='$revision' is invalid: set it to a branch, tag or commit (letters, digits, . _ / -)"

# NB: checked here because a key with a trailing newline (a Secret made with --from-file) would be
# accepted by infinity and then refuse every request with 401. The value is never printed.
if [ -n "${INFINITY_API_KEY+set}" ]; then
    [ -n "$INFINITY_API_KEY" ] ||
        fail "INFINITY_API_KEY is set but empty, which would switch authentication off: put the key in its Secret, or unset the variable"
    [[ "$INFINITY_API_KEY" =~ ^[!-~]+$ ]] ||
        fail "INFINITY_API_KEY has whitespace, a newline or non-ASCII characters, which a bearer token cannot carry: store the key without a trailing newline (kubectl create secret generic ... --from-literal=apiKey=...)"
fi

# --- model source: the mounted directory, else an hf:// STORAGE_URI served from the hub --------
model_dir=${MODEL_DIR:-/mnt/models}
storage_uri=${STORAGE_URI:-}
offline=1
if [ -f "$model_dir/config.json" ] || [ -f "$model_dir/modules.json" ]; then
    model_id=$model_dir
elif [[ "$storage_uri" == hf://* ]]; then
    hf_re='^hf://([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(@([A-Za-z0-9._/-]+))?$'
    [[ "$storage_uri" =~ $hf_re ]] ||
        fail "STORAGE_URI='$storage_uri' is invalid: use hf://<org>/<model> or hf://<org>/<model>@<revision>"
    model_id=${BASH_REMATCH[1]}
    uri_revision=${BASH_REMATCH[3]}
    if [ -n "$uri_revision" ] && [ -n "$revision" ] && [ "$uri_revision" != "$revision" ]; then
        fail "REVISION='$revision' contradicts STORAGE_URI='$storage_uri': drop one of the two revisions"
    fi
    revision=${revision:-$uri_revision}
    offline=0
elif [ -d "$model_dir" ]; then
    fail "MODEL_DIR='$model_dir' has no model files (config.json or modules.json): put the model there or set STORAGE_URI=hf://<org>/<model>"
else
    fail "MODEL_DIR='$model_dir' does not exist: mount the model there (KServe/AI Core use /mnt/models) or set STORAGE_URI=hf://<org>/<model>"
fi

# --- extra flags: split like a shell would, but never let them fight the flags set here --------
extra=()
if [ -n "${ARG:-}" ]; then
    # NB: shlex, not eval: ARG comes from user config and must never run as shell code.
    py=$(command -v python3 || command -v python || true)
    [ -n "$py" ] || fail "ARG is set but no python3 is on PATH to split it: put the infinity venv's bin on PATH"
    split='import shlex, sys; sys.stdout.write("".join(a + "\0" for a in shlex.split(sys.argv[1])))'
    "$py" -c "$split" "$ARG" >/dev/null 2>&1 ||
        fail "ARG cannot be split like a shell would (unbalanced quote?): fix the quoting in ARG"
    mapfile -d '' extra < <("$py" -c "$split" "$ARG")
    declare -A owner=(
        [--model-id]=MODEL_DIR [--served-model-name]=MODEL_SERVE_NAME [--batch-size]=BATCH_SIZE
        [--url-prefix]=URL_PRE_FIX [--trust-remote-code]=TRUST_REMOTE_CODE
        [--no-trust-remote-code]=TRUST_REMOTE_CODE [--engine]=ENGINE [--dtype]=DTYPE
        [--pooling-method]=POOLING [--revision]=REVISION [--port]=PORT [--host]=HOST
        [--api-key]=INFINITY_API_KEY
    )
    for a in "${extra[@]}"; do
        flag=${a%%=*}
        if [ -n "${owner[$flag]:-}" ]; then
            fail "ARG contains $flag, which run.sh sets itself: remove it from ARG and set ${owner[$flag]} instead"
        fi
    done
fi

# --- writable state: a read-only root filesystem needs only a writable /tmp (emptyDir) ----------
export INFINITY_HOME=${INFINITY_HOME:-/tmp/infinity}
export HF_HOME=${HF_HOME:-$INFINITY_HOME/hf}
for var in INFINITY_HOME HF_HOME; do
    dir=${!var}
    mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ] ||
        fail "$var='$dir' is not writable: mount a writable volume (e.g. an emptyDir at /tmp) or point $var at one"
done
# NB: uid 65534 has HOME=/nonexistent; libraries that cache under ~ must not fail.
if ! [ -w "${HOME:-/nonexistent}" ]; then
    export HOME=$INFINITY_HOME
fi
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$INFINITY_HOME/cache}
export DO_NOT_TRACK=1 INFINITY_ANONYMOUS_USAGE_STATS=false
if [ "$offline" = 1 ]; then
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
fi

# NB: serve.py (beside this script) is infinity's own CLI plus aliases so the OpenAI routes also
# answer without the prefix (gen_ai_hub 7.x posts to {deploymentUrl}/embeddings). It needs the
# Python of the venv that has infinity_emb; without either, plain infinity_emb runs.
launcher=(infinity_emb)
if infinity_bin=$(command -v infinity_emb); then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    venv_python="$(dirname "$infinity_bin")/python"
    if [ -f "$here/serve.py" ] && [ -x "$venv_python" ]; then
        launcher=("$venv_python" "$here/serve.py")
    fi
fi

cmd=("${launcher[@]}" v2
    --model-id "$model_id"
    --served-model-name "$name"
    --batch-size "$batch_size"
    --engine "$engine"
    --dtype "$dtype"
    --pooling-method "$pooling"
    --url-prefix "$prefix"
    --redirect-slash "$prefix/docs"
    --host "$host"
    --port "$port")
if [ "$trust" = true ]; then cmd+=(--trust-remote-code); else cmd+=(--no-trust-remote-code); fi
[ -z "$revision" ] || cmd+=(--revision "$revision")
cmd+=("${extra[@]}")

if [ "$dry_run" = 1 ]; then
    envs=(DO_NOT_TRACK=1 INFINITY_ANONYMOUS_USAGE_STATS=false "INFINITY_HOME=$INFINITY_HOME"
        "HF_HOME=$HF_HOME")
    [ "$offline" = 0 ] || envs+=(HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1)
    line=$(printf '%q ' env "${envs[@]}" "${cmd[@]}")
    echo "${line% }"
    exit 0
fi

[ -n "${infinity_bin:-}" ] ||
    fail "infinity_emb is not on PATH: put the infinity venv's bin on PATH (scripts/ensure-infinity-venv.sh prints it)"
# NB: the served name and source only; ARG may carry an --api-key and is never logged.
printf 'run.sh: serving %s as %s on %s:%s%s (engine %s, batch %s)\n' \
    "$model_id" "$name" "$host" "$port" "$prefix" "$engine" "$batch_size" >&2
exec "${cmd[@]}"
