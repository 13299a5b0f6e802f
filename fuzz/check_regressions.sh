#!/usr/bin/env bash
# Replays every saved reproducer under fuzz/regressions/<target>/ against the
# current code; prints one line per file and exits non-zero if any still
# panics. Run from the repository root or fuzz/ (needs cargo-fuzz, see README).
set -uo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
sanitizer="${SANITIZER:-address}"
cargo fuzz build --sanitizer "$sanitizer" >/dev/null || exit 2
failed=0
for dir in fuzz/regressions/*/; do
    t=$(basename "$dir")
    for f in "$dir"*; do
        [[ -f "$f" ]] || continue
        if out=$(cargo fuzz run --sanitizer "$sanitizer" "$t" "$f" 2>&1); then
            echo "ok     $f"
        else
            failed=1
            echo "PANIC  $f: $(grep -m1 -A1 'panicked at' <<<"$out" | tr '\n' ' ')"
        fi
    done
done
exit $failed
