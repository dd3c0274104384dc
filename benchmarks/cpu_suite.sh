#!/usr/bin/env bash
# Issue 13's CPU rows (and issue 11's Whisper CPU rows) in one run, each step from a committed module.
#
# From the repository root, in the environment of the README's test command (torch 2.13 CPU,
# faster-whisper), with SpeechBrain's own environment beside it (torch 2.9.1 + torchaudio 2.9:
# torchaudio does not load beside torch 2.13) and this package installed there too:
#     SPEECHBRAIN_PYTHON=/path/to/speechbrain-env/bin/python bash benchmarks/cpu_suite.sh [speed|whisper|all]
# (default all, ~20 minutes on 2 cores; `speed` is issue 13's MMS-LID and ECAPA rows and the
# per-stage profiles, `whisper` Whisper base against faster-whisper on real speech).
# Writes $OUT/cpu_suite_$PART.md (every table under the command that made it) and
# $OUT/cpu_suite_$PART.json (every benchmark's rows). Steps run one after another, never side by
# side: on 2 cores a second job would halve both sides' times unevenly.
set -u
PART=${1:-all}
case $PART in speed|whisper|all) ;; *) echo "usage: $0 [speed|whisper|all]" >&2; exit 2 ;; esac
OUT=${OUT:-/tmp/cpu_suite_out}
mkdir -p "$OUT"
MD=$OUT/cpu_suite_$PART.md JSON_DIR=$(mktemp -d)
PY=${PYTHON:-python}
SB_PY=${SPEECHBRAIN_PYTHON:-}
export PYTHONUNBUFFERED=1

step() {  # step NAME COMMAND...: run it, its stdout into the tables, its status after them
  local name=$1 started=$SECONDS; shift
  printf '\n## %s\n\n`%s`\n\n' "$name" "$*" >> "$MD"
  echo "=== $name: $*" >&2
  "$@" >> "$MD"
  local status=$?
  printf '\n(exit %s, %s s)\n' "$status" "$((SECONDS - started))" >> "$MD"
  ((status == 0)) || echo "FAILED: $name (exit $status)" | tee -a "$MD" >&2
}

{
  echo "# mlx-audio-lid CPU suite (issues 13 and 11)"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$MD"

part() { [[ $PART == all || $PART == "$1" ]]; }

if part speed; then
  # MMS-LID 10 s x 1 and 30 s x 1 against PyTorch, float32 (the CPU's dtype).
  step "MMS-LID float32 vs PyTorch float32 (eager)" \
    $PY -m benchmarks.bench_mms --cases "10 s x 1,30 s x 1" --eager-only --repeats 3 --json "$JSON_DIR/bench_mms.json"
  # ECAPA against SpeechBrain needs SpeechBrain's environment; without it the step says so.
  if [[ -n $SB_PY ]] && $SB_PY -c "import speechbrain, mlx_audio_lid" 2>/dev/null; then
    step "ECAPA float32 vs SpeechBrain (eager)" \
      $SB_PY -m benchmarks.bench_ecapa --eager-only --repeats 3 --long-minutes 2 --json "$JSON_DIR/bench_ecapa.json"
  else
    printf '\n## ECAPA float32 vs SpeechBrain (eager)\n\nskipped: set SPEECHBRAIN_PYTHON to a Python with speechbrain and this package\n' | tee -a "$MD" >&2
  fi
  # What limits: per-stage times of each network.
  step "Profile: MMS-LID 1 x 10 s float32" \
    $PY -m benchmarks.profile_models --model mms --batch 1 --seconds 10 --dtype float32 --repeats 3 --eager-only
  step "Profile: ECAPA 1 x 10 s float32" \
    $PY -m benchmarks.profile_models --model ecapa --batch 1 --seconds 10 --dtype float32 --repeats 3 --eager-only
fi

if part whisper; then
  step "Whisper base (real weights, recorded speech), MLX vs faster-whisper detect_language" \
    $PY -m benchmarks.bench_whisper --repeats 3 --json "$JSON_DIR/bench_whisper.json"
fi

$PY - "$JSON_DIR" "$OUT/cpu_suite_$PART.json" <<'PY'
import json, sys
from pathlib import Path
steps = {p.stem: json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.json"))}
Path(sys.argv[2]).write_text(json.dumps(steps, indent=1))
PY
echo "done in $SECONDS s: $MD" >&2
