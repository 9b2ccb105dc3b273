#!/usr/bin/env bash
# Issue 7 on a host with 2 GPUs: each part fits one 10-minute command. Usage (repository root, after installing):
#   bash benchmarks/multi_gpu.sh infer OUT      # (a) tempbench run on 1 vs 2 GPUs: agreement, queries/s ratio
#   bash benchmarks/multi_gpu.sh ddp   OUT      # (b) TempSamp-R1 steps, LoRA: 1 process vs DDP on 2 GPUs
#   bash benchmarks/multi_gpu.sh zero3 OUT      # (b) TempSamp-R1 steps, full fine-tuning: 1 process vs ZeRO-3 on 2 GPUs
#   bash benchmarks/multi_gpu.sh zero3-offload OUT   # same with the repository's ZeRO-3 + CPU offload config
# WORK (default runs/mgpu) holds the videos and the random-weight 7B folder; a warm machine reuses them.
# CPU smoke test of this wrapper: SMALL=1 bash benchmarks/multi_gpu.sh ddp /tmp/out
set -euo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
part=${1:?part: infer|ddp|zero3|zero3-offload}
out=${2:?output folder}
work=${WORK:-runs/mgpu}
py=${PYTHON:-python3}
nproc=${NPROC:-2}
mkdir -p "$out"
small=()
[[ "${SMALL:-0}" == 1 ]] && small=(--small)
mg=(benchmarks/multi_gpu.py)
trun=("$py" -m torch.distributed.run --standalone --nproc-per-node "$nproc")
one() { CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-0} "$py" "${mg[@]}" "$@"; }

"$py" "${mg[@]}" prepare --work "$work" --videos "${VIDEOS:-32}" "${small[@]}"
case "$part" in
  infer)
    rm -rf "$work/run-1" "$work/run-$nproc"
    one infer --work "$work" --run-dir "$work/run-1" --batch-size 1 --new-tokens "${NEW_TOKENS:-16}"
    "${trun[@]}" "${mg[@]}" infer --work "$work" --run-dir "$work/run-$nproc" --batch-size 1 \
      --new-tokens "${NEW_TOKENS:-16}"
    cp "$work/run-1/infer_summary.json" "$out/infer-1gpu.json"
    cp "$work/run-$nproc/infer_summary.json" "$out/infer-${nproc}gpu.json"
    "$py" "${mg[@]}" compare-infer --single "$work/run-1" --multi "$work/run-$nproc" --out "$out/infer-compare.json"
    ;;
  ddp)
    one train --work "$work" --out "$out/lora-single.json" --mode lora --check-steps 2 --steps 2
    "${trun[@]}" "${mg[@]}" train --work "$work" --out "$out/lora-ddp.json" --mode lora --check-steps 2 --steps "${STEPS:-3}"
    "$py" "${mg[@]}" compare-train --ref "$out/lora-single.json" --dist "$out/lora-ddp.json" \
      --out "$out/lora-compare.json" || echo "lora: DDP does not match the single process (see lora-compare.json)"
    ;;
  zero3|zero3-offload)
    # the single-process reference holds bf16 weights and takes the first check step only (no fp32 masters)
    [[ -f "$out/full-single.json" ]] || one train --work "$work" --out "$out/full-single.json" --mode full \
      --check-steps 1 --steps 0
    "${trun[@]}" "${mg[@]}" train --work "$work" --out "$out/$part-full.json" --mode full --deepspeed "$part" \
      --check-steps 1 --steps "${STEPS:-3}"
    "$py" "${mg[@]}" compare-train --ref "$out/full-single.json" --dist "$out/$part-full.json" \
      --out "$out/$part-compare.json" || echo "$part: does not match the single process (see $part-compare.json)"
    ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
esac
ls -la "$out"
