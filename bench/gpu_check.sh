#!/usr/bin/env bash
# Prepared device check of the GPU path (issue 11), for a machine with CUDA. From the
# repository root, with the project's environment active:
#
#   bash bench/gpu_check.sh [STORE_DIR]      # results also in $OUT (default gpu-check/)
#
# On one current data-centre GPU it takes about 8 minutes (10 at most: give the device command its full 600 s):
#   1. the CUDA tests (`pytest -m cuda`: resident data, pinned maps, every precision,
#      the AVE baseline's LSTMs under autocast, torch.compile with inductor);
#   2. the real-size store (8.7 GB of float64 features, bench/scale.py), built once into
#      STORE_DIR (default $TMPDIR/avel-realstore) and reused;
#   3. each paper preset (ave, dpnet, edrnet) at real size: download, database, augment,
#      then SEL training for 2 full epochs in fp32 and again in bf16, printing per run the
#      videos/s, seconds per epoch and the peak GPU memory (torch.cuda.max_memory_allocated);
#   4. the default profile's SEL chain (params.yaml, 30 epochs) in fp32 and in bf16, with
#      the test metrics of both, so the bf16 tolerance is measured where bf16 is native;
#   5. the map models PSP and CMRAN (bench/map_models_throughput.py) at their papers' batches
#      (128 and 32) on a store of 256 videos of official-shape float64 maps (512 MB, built
#      into STORE_DIR/maps once): the training step's time on the batch in memory, the
#      loader's map reading rate (MB/s, 8 workers, page-locked) and what bounds the step,
#      and their bf16 outputs against fp32 (largest score difference, same predicted class).
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
# Each part has its own time limit (together at most 10 minutes, about 8 expected); a part
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
part 60 map_models python -m bench.map_models_throughput --device cuda --paper --videos 256 \
    --steps 5 --warmup 1 --workers 8 --precision-check --dir "$STORE/maps"
