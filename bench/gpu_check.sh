#!/usr/bin/env bash
# Prepared device check of the GPU path (issue 11), for a machine with CUDA. From the
# repository root, with the project's environment active:
#
#   bash bench/gpu_check.sh [STORE_DIR]      # results also in $OUT (default gpu-check/)
#
# On one current data-centre GPU it takes about 7 minutes (9 at most):
#   1. the CUDA tests (`pytest -m cuda`: resident data, pinned maps, every precision,
#      the AVE baseline's LSTMs under autocast, torch.compile with inductor);
#   2. the real-size store (8.7 GB of float64 features, bench/scale.py), built once into
#      STORE_DIR (default $TMPDIR/avel-realstore) and reused;
#   3. each paper preset (ave, dpnet, edrnet) at real size: download, database, augment,
#      then SEL training for 2 full epochs in fp32 and again in bf16, printing per run the
#      videos/s, seconds per epoch and the peak GPU memory (torch.cuda.max_memory_allocated);
#   4. the default profile's SEL chain (params.yaml, 30 epochs) in fp32 and in bf16, with
#      the test metrics of both, so the bf16 tolerance is measured where bf16 is native.
set -euo pipefail
STORE="${1:-${TMPDIR:-/tmp}/avel-realstore}"
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
python - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device")
props = torch.cuda.get_device_properties(0)
print(f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
PY
# Each part has its own time limit (together at most 9 minutes, about 7 expected); a part
# that runs out is reported and the next one still runs.
part() {
    local limit=$1 name=$2
    shift 2
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt" || echo "gpu_check: $name failed or ran out of $limit s"
}
part 120 cuda_tests python -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
part 330 presets python -m bench.scale --store "$STORE" --device cuda --epochs 2 --steps 0 \
    --workers 8 --precisions fp32 bf16 --stages download database augment train@sel --json "$OUT/presets.json"
part 90 default_precision python -m bench.scale --presets default --device cuda --epochs 0 \
    --steps 0 --precisions fp32 bf16 --stages download database augment train@sel evaluate@sel \
    --json "$OUT/default_precision.json"
