#!/usr/bin/env bash
# Install localsearch and everything it needs into ./.venv on Debian/Ubuntu with Python 3.11.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: venv support, and a compiler for llama-cpp-python (PyPI ships it as source).
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v cmake >/dev/null || need+=(cmake)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
# Real documentation the tests and benchmarks judge answers on (served by the local test web).
ls -d /usr/share/doc/postgresql-doc-*/html >/dev/null 2>&1 || need+=(postgresql-doc)
[ -d /usr/share/doc/git-doc ] || need+=(git-doc)
[ -d /usr/share/debian-reference ] || need+=(debian-reference-en)
[ -d /usr/share/doc/apache2-doc/manual/en ] || need+=(apache2-doc)
# The browser the extension's tests drive (Debian's; never `playwright install`), and npm for
# web-ext, which lints the extension's Firefox build.
[ -x /usr/lib/chromium/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
# A CJK font, with which the OCR tests draw Chinese text.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

python=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: left to itself, sentence-transformers pulls a CUDA build of several GB.
# Set TORCH_SPEC (and PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index) to choose another build.
.venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
# llama.cpp compiles for this CPU (-march=native). Some virtual machines advertise Intel AMX but
# fault on its first tile instruction (seen on a Firecracker VM: SIGSEGV at ldtilecfg in the first
# llama_decode), so build without AMX: it only speeds up large-batch prefill where it works.
# No pip cache: a wheel built earlier with AMX would otherwise be reused.
amx_off="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
echo 'int main(void) { return 0; }' | cc $amx_off -x c - -o /dev/null 2>/dev/null || amx_off=""
# An install from before this fix is rebuilt if its library holds AMX tile instructions.
rebuild=()
ggml_cpu=$(ls .venv/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu.so 2>/dev/null | head -1 || true)
if [ -n "$amx_off" ] && [ -n "$ggml_cpu" ] && command -v objdump >/dev/null \
    && objdump -d "$ggml_cpu" | grep ldtilecfg >/dev/null; then
  rebuild=(--force-reinstall --no-deps)
fi
CFLAGS="${CFLAGS:-} $amx_off" CXXFLAGS="${CXXFLAGS:-} $amx_off" \
  .venv/bin/python -m pip install -q --no-cache-dir "${rebuild[@]}" "llama-cpp-python>=0.3"
.venv/bin/python -m pip install -q -e ".[all,test]"
npm ci --no-audit --no-fund --loglevel=error  # ./node_modules, as package-lock.json pins it
echo "localsearch is installed: .venv/bin/localsearch --help"
