#!/usr/bin/env bash
# Ships a trained LoRA adapter as the default guard: copies the adapter's weights, its peft config
# and the training record (rsafe_train.json) into models/default-guard/ and pins their sha256 in
# SHA256SUMS, which scripts/setup.sh checks before it merges them onto the base
# (python -m rsafe_train.default_guard). The model card (models/default-guard/README.md) is
# written by hand and is not pinned.
#   scripts/ship-default-guard.sh artifacts/smollm2-rsafe/round6/sft/adapter
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: scripts/ship-default-guard.sh ADAPTER_DIR}
dest=models/default-guard
files=(adapter_model.safetensors adapter_config.json rsafe_train.json)
for name in "${files[@]}"; do
  [ -f "$src/$name" ] || { echo "$src/$name is missing" >&2; exit 1; }
done
mkdir -p "$dest"
for name in "${files[@]}"; do cp "$src/$name" "$dest/$name"; done
(cd "$dest" && sha256sum "${files[@]}" > SHA256SUMS)
size=$(stat -c %s "$dest/adapter_model.safetensors")
# The issue's bound on the shipped artifact.
if [ "$size" -gt $((25 * 1000 * 1000)) ]; then
  echo "adapter_model.safetensors is $size bytes, over 25 MB" >&2; exit 1
fi
echo "shipped $src -> $dest ($size bytes of weights)"; cat "$dest/SHA256SUMS"
