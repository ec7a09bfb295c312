#!/usr/bin/env bash
# One run on a GPU machine: the GPU tests, then the GPU training benchmark, both written to one markdown
# file (the GPU's name from torch.cuda.get_device_name) ready to paste into docs/benchmarks.md.
#
#   bash scripts/gpu_check.sh                        # a few minutes on a data-centre GPU; writes gpu-check.md
#   bash scripts/gpu_check.sh --out /tmp/gpu.md
#   bash scripts/gpu_check.sh --cpu-tiny             # every step end to end on a CPU, a few steps per run
#
# Python: $PYTHON when set; else python3 when it already imports torch (with CUDA) and the rest of what the
# GPU path needs, as a GPU image without network does; else a venv, .venv-gpu, made from requirements.txt
# and requirements-dev.txt's pytest pins. MNIST: $MNIST_ROOT (the folder holding MNIST/raw/), else ./data;
# gzipped IDX files there (*-ubyte.gz, as MNIST is distributed) are unpacked to a temporary folder.
# GIT_COMMIT names the commit in the file where the tree was copied without .git.
# Exit status: 0 when the tests pass and every target is met, 1 otherwise; the file is written either way.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" GRADIO_ANALYTICS_ENABLED=False

out=gpu-check.md
tiny=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --cpu-tiny) tiny=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- Python -----------------------------------------------------------------------------------------
needs="import torch, safetensors, scipy, numpy, pandas, PIL, tqdm, pytest, pytest_timeout"
if [ "$tiny" = 1 ]; then cuda_check="True"; else cuda_check="torch.cuda.is_available()"; fi
if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
elif python3 -c "$needs; assert $cuda_check" 2>/dev/null; then
  py=python3
else
  echo "+ making .venv-gpu from requirements.txt (python3 lacks torch with CUDA or another package)"
  python3 -m venv .venv-gpu || exit 1
  pins=$(grep -E '^(pytest|pytest-timeout)==' requirements-dev.txt)
  # shellcheck disable=SC2086  # the pins are separate words
  .venv-gpu/bin/pip install -q -r requirements.txt $pins || exit 1
  py=.venv-gpu/bin/python
fi
if ! "$py" -c "$needs; assert $cuda_check, 'torch sees no CUDA device (try --cpu-tiny)'"; then
  echo "error: $py cannot run the GPU checks (above)" >&2
  exit 1
fi

# --- MNIST ------------------------------------------------------------------------------------------
root="${MNIST_ROOT:-data}"
raw="$root/MNIST/raw"
if [ ! -f "$raw/train-images-idx3-ubyte" ] && [ -f "$raw/train-images-idx3-ubyte.gz" ]; then
  mkdir -p "$work/MNIST/raw"
  for f in "$raw"/*-ubyte.gz; do gzip -dc "$f" >"$work/MNIST/raw/$(basename "$f" .gz)"; done
  root="$work"
fi
export MNIST_ROOT="$root"
"$py" -c "from mnist_demo.data import load_mnist; load_mnist(train=True); load_mnist(train=False)" || {
  echo "error: MNIST could not be read (see above): set MNIST_ROOT to the folder holding MNIST/raw/" >&2
  exit 1
}

# --- The run ----------------------------------------------------------------------------------------
if [ "$tiny" = 1 ]; then
  tests=(tests/test_gpu.py)
  bench=(--device cpu --tiny)
else
  tests=(tests/test_gpu.py tests/test_distributed.py)
  bench=()
fi
about=$("$py" -c "import platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
print(f'GPU: {gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}); python {platform.python_version()}')")
echo "+ $about"
command -v nvidia-smi >/dev/null && nvidia-smi -L

echo "+ $py -m pytest -q -rs ${tests[*]}"
"$py" -m pytest -q -rs -p no:cacheprovider "${tests[@]}" 2>&1 | tee "$work/tests.log"
tests_rc=${PIPESTATUS[0]}

echo "+ $py -m bench.gpu_training ${bench[*]}"
"$py" -m bench.gpu_training "${bench[@]}" --out "$work/bench.md" 2>&1 | tee "$work/bench.log"
bench_rc=${PIPESTATUS[0]}
[ -f "$work/bench.md" ] || printf '## GPU training\n\nThe benchmark did not finish (exit %s):\n\n```\n%s\n```\n' \
  "$bench_rc" "$(tail -n 30 "$work/bench.log")" >"$work/bench.md"

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Written by \`bash scripts/gpu_check.sh$([ "$tiny" = 1 ] && echo ' --cpu-tiny')\` on commit ${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}."
  echo
  echo "- $about"
  echo
  echo "## GPU tests: \`pytest ${tests[*]}\` (exit $tests_rc)"
  echo
  echo '```'
  grep -E '^(SKIPPED|FAILED|ERROR)|passed|failed' "$work/tests.log" | tail -n 40
  echo '```'
  echo
  cat "$work/bench.md"
} >"$out"
echo "wrote $out"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
