#!/usr/bin/env bash
# Copies the committed seeds (fuzz/seeds/<target>/) into libFuzzer's working
# corpus (fuzz/corpus/<target>/, gitignored). With --regen, first rebuilds the
# seeds with the library in this checkout (needed after a format change):
#   fuzz/seeds.sh [--regen]
set -euo pipefail
cd "$(dirname "$0")"
targets=(batch_decode recovery_segment recovery_two_segments snapshot_decode archive_decode state_decode)
if [[ "${1:-}" == "--regen" ]]; then
    for t in "${targets[@]}"; do rm -rf "seeds/$t"; done
    cargo run --quiet --example make_seeds -- seeds
    cargo run --quiet --example make_archive_seeds -- seeds
    cargo run --quiet --example make_state_seeds -- seeds
fi
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    cp seeds/"$t"/* "corpus/$t/"
done
echo "corpus ready: $(for t in "${targets[@]}"; do printf '%s=%s ' "$t" "$(ls "corpus/$t" | wc -l)"; done)"
