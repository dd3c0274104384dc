#!/usr/bin/env bash
# Issue 13's GPU rows in one run (the lent H200, ~8-9 minutes), each step from a committed module.
#
# On the GPU machine, from the repository root, after staging MLX's CUDA build and the extra
# wheels (shared/gpu/README.md; the list is in README.md, "NVIDIA H200") and
#     export PYTHONPATH=/tmp/site:$PWD
# run:  bash benchmarks/gpu_suite.sh [speed|compiled|whisper|all]
# (default all; each part fits one 10-minute device command: `speed` is issue 13's eager rows
# and profiles, `compiled` the compiled path's first calls and hour, `whisper` issue 11's
# Whisper rows and the identify profiles)
# Writes $OUT/gpu_suite.md (every table, each under the command that made it),
# $OUT/gpu_suite.json (every row of every step) and $OUT/gpu_suite.log (progress, stderr).
# Steps run in order of the issue's table and each gets at most its own limit and what is left
# of GPU_SUITE_SECONDS (default 540), so the whole stays inside one 10-minute device command;
# a step cut short says so in the tables. The compiled rows come only from first_call (which
# gives each family its own, empty kernel cache): elsewhere a cold cache compiles for minutes.
set -u
PART=${1:-all}
case $PART in speed|compiled|whisper|all) ;; *) echo "usage: $0 [speed|compiled|whisper|all]" >&2; exit 2 ;; esac
OUT=${OUT:-/tmp/gpu_suite_out}
mkdir -p "$OUT"
MD=$OUT/gpu_suite_$PART.md LOG=$OUT/gpu_suite_$PART.log JSON_DIR=$(mktemp -d)
BUDGET=${GPU_SUITE_SECONDS:-540}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

step() {  # step NAME LIMIT_SECONDS COMMAND...: run it, its stdout into the tables, its stderr into the log
  local name=$1 limit=$2 left=$((BUDGET - SECONDS)); shift 2
  ((left < limit)) && limit=$left
  if ((limit < 20)); then
    printf '\n## %s\n\nskipped: %s s of the %s s budget left\n' "$name" "$left" "$BUDGET" >> "$MD"
    return
  fi
  local started=$SECONDS
  printf '\n## %s\n\n`%s` (limit %s s)\n\n' "$name" "$*" "$limit" >> "$MD"
  echo "=== $name: $* (limit $limit s, at $SECONDS s)" >> "$LOG"
  timeout --kill-after=10 "$limit" "$@" >> "$MD" 2>> "$LOG"
  local status=$?
  printf '\n(exit %s, %s s)\n' "$status" "$((SECONDS - started))" >> "$MD"
  ((status == 124 || status == 137)) && printf 'CUT SHORT at its %s s limit: rows above are partial or missing\n' "$limit" >> "$MD"
}

{
  echo "# mlx-audio-lid speed round (issue 13): GPU suite"
  echo
  echo "commit ${GPU_SUITE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/GPU: /'
} > "$MD"
: > "$LOG"
if ! $PY -c "import mlx.core as mx, sys; sys.exit(mx.default_device() != mx.gpu)" >> "$LOG" 2>&1; then
  echo "MLX does not see the GPU: stage it first (shared/gpu/README.md)" | tee -a "$MD"
  exit 1
fi
$PY - >> "$MD" 2>> "$LOG" <<'PY'
from importlib.metadata import version
for name in ("mlx", "mlx-audio", "torch", "torchaudio", "transformers", "speechbrain"):
    try:
        print(f"- {name} {version(name)}")
    except Exception as error:
        print(f"- {name}: {type(error).__name__}")
PY
ECAPA_REFERENCE=()
$PY -c "import speechbrain" >> "$LOG" 2>&1 || ECAPA_REFERENCE=(--no-reference)

# Where a part runs: `all` runs every part.
part() { [[ $PART == all || $PART == "$1" ]]; }

if part speed; then

# Rows 1-3: MMS-LID float16 10 s x 1, 10 s x 16, and a 10-minute recording through identify.
step "MMS-LID float16 vs PyTorch float16 (eager)" 150 \
  $PY -m benchmarks.bench_mms --torch-device cuda --dtypes float16 --cases "10 s x 1,30 s x 1,10 s x 16" \
  --eager-only --repeats 10 --long-minutes 10 --long-batches 8,32 --json "$JSON_DIR/bench_mms.json"
# Rows 4-6: ECAPA float16 64 x 10 s and the 10-minute identify, float16 and float32.
step "ECAPA float16 and float32 vs SpeechBrain (eager)" 120 \
  $PY -m benchmarks.bench_ecapa --torch-device cuda --dtypes float16,float32 --cases "10 s x 1,30 s x 1,10 s x 64" \
  --eager-only --repeats 10 --long-minutes 10 --long-batches 8,32 ${ECAPA_REFERENCE[@]+"${ECAPA_REFERENCE[@]}"} --json "$JSON_DIR/bench_ecapa.json"
# Row 8: one hour through identify(segments=True), float16, eager (the default path), in
# identify's default batches of 8 and in batches of 32.
step "One hour, identify(segments=True), float16, eager" 60 \
  $PY -m benchmarks.long_recording --ecapa-minutes 60 --mms-minutes 60 --dtype float16
step "One hour, identify(segments=True, batch_size=32), float16, eager" 60 \
  $PY -m benchmarks.long_recording --ecapa-minutes 60 --mms-minutes 60 --dtype float16 --batch 32
# What limits now: per-stage profiles (eager only).
step "Profile: MMS-LID 1 x 10 s float16" 40 \
  $PY -m benchmarks.profile_models --model mms --batch 1 --seconds 10 --dtype float16 --repeats 5 --eager-only
step "Profile: MMS-LID 16 x 10 s float16" 40 \
  $PY -m benchmarks.profile_models --model mms --batch 16 --seconds 10 --dtype float16 --repeats 5 --eager-only
step "Profile: ECAPA 1 x 10 s float16" 30 \
  $PY -m benchmarks.profile_models --model ecapa --batch 1 --seconds 10 --dtype float16 --repeats 5 --eager-only
fi

if part compiled; then
# Row 7: first call of the compiled path, cold and warm kernel cache, any shape.
# (A fresh machine compiles ECAPA for ~110 s and MMS-LID for 40-80 s on the cold cache: 200 s
# cut MMS-LID's rows at 6bfc408, hence 330.)
step "First call: eager and compiled, cold and warm kernel cache" 330 \
  $PY -m benchmarks.first_call --models ecapa mms --dtype float16 --json "$JSON_DIR/first_call.json"

# Whether identify should compile by default: the same hour through the compiled forward, twice
# in the package's default kernel cache: first cold (what a fresh install pays once), then warm
# (every later process).
step "One hour, identify(segments=True, compile=True), float16, cold kernel cache" 150 \
  $PY -m benchmarks.long_recording --ecapa-minutes 60 --mms-minutes 60 --dtype float16 --compile
step "One hour, identify(segments=True, compile=True), float16, warm kernel cache" 60 \
  $PY -m benchmarks.long_recording --ecapa-minutes 60 --mms-minutes 60 --dtype float16 --compile
fi

if part whisper; then
# CTranslate2's CUDA build dlopens libcublas.so.12, its one CUDA library beside the driver; this
# machine has CUDA 13's cuBLAS. The seven cuBLAS entry points it calls (cublasCreate_v2,
# cublasGemmEx, cublasGemmStridedBatchedEx, ...) keep their signatures in cuBLAS 13, so a link
# under the old name lets it run; bench_whisper prints its probabilities against CTranslate2's
# CPU run, which says whether that holds.
CUBLAS13=$(find /usr/local /usr/lib /opt $($PY -c 'import site; print(" ".join(site.getsitepackages()))') \
  -name 'libcublas.so.13*' 2>/dev/null | head -1)
if [[ -n $CUBLAS13 ]]; then
  SHIM=$(mktemp -d)
  ln -s "$CUBLAS13" "$SHIM/libcublas.so.12"
  export LD_LIBRARY_PATH=$SHIM:$(dirname "$CUBLAS13")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "cuBLAS 13 as libcublas.so.12 for CTranslate2: $CUBLAS13" >> "$LOG"
fi
step "Whisper base size (random weights), MLX vs faster-whisper detect_language" 330 \
  $PY -m benchmarks.bench_whisper --size base-random --gpu --repeats 5 --batch 16 --json "$JSON_DIR/bench_whisper.json"
# Where one clip's time goes (bound by the ops it runs), and 16 clips'.
step "Profile: Whisper base 1 clip float16" 40 \
  $PY -m benchmarks.profile_models --model whisper --batch 1 --seconds 10 --dtype float16 --repeats 10 --eager-only
step "Profile: Whisper base 16 clips float16" 40 \
  $PY -m benchmarks.profile_models --model whisper --batch 16 --seconds 10 --dtype float16 --repeats 10 --eager-only
# What the default VAD (Silero) costs per hour beside the energy VAD the synthetic rows use.
step "VAD cost per hour: energy, Silero on MLX's GPU" 90 \
  $PY -m benchmarks.vad_cost --minutes 10 --repeats 1 --devices gpu
step "Profile: ECAPA identify of 10 minutes, float16" 60 \
  $PY -m benchmarks.profile_identify --model ecapa --minutes 10 --dtype float16
step "Profile: ECAPA identify of 10 minutes, float32" 60 \
  $PY -m benchmarks.profile_identify --model ecapa --minutes 10 --dtype float32
step "Profile: MMS-LID identify of 10 minutes, float16" 90 \
  $PY -m benchmarks.profile_identify --model mms --minutes 10 --dtype float16
fi

$PY - "$JSON_DIR" "$OUT/gpu_suite_$PART.json" <<'PY'
import json, sys
from pathlib import Path
steps = {p.stem: json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.json"))}
Path(sys.argv[2]).write_text(json.dumps(steps, indent=1))
PY
echo "done in $SECONDS s: $MD" | tee -a "$LOG"
