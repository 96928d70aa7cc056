#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (libFuzzer, nightly, AddressSanitizer), in
# sequence, starting from the committed corpus in fuzz/corpus/<target>/ and the dictionary
# in fuzz/dict/<target>.dict. New inputs go to a temporary directory, so the tree stays
# clean; set FUZZ_OUT=<dir> to keep them (in <dir>/<target>/) for merging with
# `cargo +nightly fuzz cmin`. Prints the executions each target reached and fails if any
# target crashed (the input is left in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh 20                  # what `make fuzz` runs
#   FUZZ_TARGETS="request" fuzz/run.sh 600
set -euo pipefail

SECONDS_PER_TARGET="${1:?usage: fuzz/run.sh SECONDS}"
CARGO_FUZZ_VERSION=0.13.2
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# What a fresh machine lacks: a nightly toolchain, cargo-fuzz, a C++ compiler (libFuzzer).
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo "+$TOOLCHAIN" install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
command -v c++ >/dev/null || ./scripts/apt-install.sh g++

TARGETS="${FUZZ_TARGETS:-$(cargo "+$TOOLCHAIN" fuzz list --fuzz-dir fuzz)}"
cargo "+$TOOLCHAIN" fuzz build --fuzz-dir fuzz

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failed=()
for target in $TARGETS; do
  out="${FUZZ_OUT:+$FUZZ_OUT/$target}"
  out="${out:-$WORK/new/$target}"
  mkdir -p "$out" "fuzz/corpus/$target"
  args=(-max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1)
  [ -f "fuzz/dict/$target.dict" ] && args+=(-dict="fuzz/dict/$target.dict")
  log="$WORK/$target.log"
  # The first corpus directory receives new inputs; the committed one is only read.
  if cargo "+$TOOLCHAIN" fuzz run --fuzz-dir fuzz "$target" "$out" "fuzz/corpus/$target" \
    -- "${args[@]}" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
    # The assertion (without its backtrace), then libFuzzer's verdict and the input.
    sed -n '/panicked at/,/^stack backtrace/p' "$log" | head -n 40 >&2
    grep -E -A3 '^(SUMMARY|==[0-9]+==ERROR)|Test unit written|^Reproduce' "$log" | head -n 30 >&2
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  time_s="$(sed -n 's/^stat::.*//; s/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)"
  corpus="$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' "$log" | tail -n 1)"
  echo "fuzz $target: $status, ${execs:-?} executions in ${time_s:-$SECONDS_PER_TARGET} s, corpus ${corpus:-?} (files/bytes)"
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
