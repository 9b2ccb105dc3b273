"""Parts `qwen3` and `generic` of benchmarks/check_qwen_processor_gpu.py (run that script, not this module).

qwen3: Qwen3-VL / Qwen3.5 inputs built by tempbench (`decode_video` -> `HFQwenVL.build_inputs` with the tiny Qwen3-VL
model's tokenizer) against the two stock pipelines, on real mp4 files written here (PyAV):

  A. qwen-vl-utils 0.0.14 `fetch_video(ele, image_patch_size=16, return_video_metadata=True)` (its own frame
     sampling; its decord reader is served by a small PyAV reader defined here, since the GPU image has no decord)
     then transformers' `Qwen3VLProcessor(..., do_resize=False, video_metadata=...)`: Qwen's documented usage;
     tempbench's default (`resize_mode="qwen-vl-utils"`);
  B. transformers' own pipeline: the whole decoded video and its metadata to `Qwen3VLProcessor` with
     `do_sample_frames=True, fps=2` (its `int()` frame count, its t x h x w budget, torchvision v2 resize);
     tempbench's `resize_mode="transformers", sampling="transformers"`.

Compared per case: `pixel_values_videos` (bit for bit), `video_grid_thw`, the prompt ids in the transformers layout
(bit for bit: this covers every `<t seconds>` marker), the release layout (= those ids without the template's
outer `<|vision_start|>` / `<|vision_end|>`), the sampled frame indices and source fps, and the 3-D position ids of
both layouts (tempbench's release definition against this transformers version's `get_rope_index`).

generic: tempbench's torch-only LLaVA-OneVision and GLM-4.1V processors (`tempbench.models.hf_video`) against
`AutoProcessor` (stock, torchvision) on the same frames and metadata: ids, `pixel_values_videos`, grids.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from fractions import Fraction
from pathlib import Path

import numpy as np

# (name, source fps, frames, height, width, content, settings): sizes from 56x56 to 1080p, odd frame counts,
# non-integer fps (29.97, 23.976, 59.94, 12.5), 2-minute videos
QWEN3_CASES = [
    ("ntsc-360p", Fraction(30000, 1001), 300, 360, 640, "smooth", "timelens"),
    ("odd-61", Fraction(30), 61, 240, 320, "noise", "timelens"),
    ("pal-272p", Fraction(25), 250, 272, 480, "smooth", "qvu-default"),
    ("film-30s", Fraction(24000, 1001), 719, 360, 480, "smooth", "timelens"),
    ("hfr-720p", Fraction(60000, 1001), 600, 720, 1280, "smooth", "timelens"),
    ("long-2min", Fraction(24), 2880, 144, 256, "smooth", "timelens"),
    ("few-9", Fraction(30), 9, 96, 128, "noise", "qvu-default"),
    ("ntsc-60s", Fraction(30000, 1001), 1799, 240, 426, "smooth", "timelens"),
    ("1080p", Fraction(15), 45, 1080, 1920, "smooth", "timelens"),
    ("square-12.5", Fraction(25, 2), 101, 200, 200, "noise", "qvu-default"),
    ("tiny-56", Fraction(30), 5, 56, 56, "noise", "qvu-default"),
    ("ntsc-2min", Fraction(30000, 1001), 3597, 180, 320, "smooth", "timelens"),
    ("portrait", Fraction(30), 150, 640, 360, "smooth", "qvu-default"),
]
SETTINGS = {
    # TimeLens's evaluation of Qwen3-VL (the zoo's settings) and qwen-vl-utils' own defaults for image_patch_size 16
    "timelens": {"fps": 2.0, "min_pixels": 64 * 28 * 28, "max_pixels": 768 * 32 * 32, "total_pixels": 14336 * 28 * 28},
    "qvu-default": {"fps": 2.0, "min_pixels": 128 * 32 * 32, "max_pixels": 768 * 32 * 32,
                    "total_pixels": 24576 * 32 * 32},
}
TF_SIZE = {"timelens": (4096, 25165824), "qvu-default": (128 * 32 * 32, 16384 * 32 * 32)}  # (shortest, longest)
PROMPT = "When does the event happen? Answer as S to E."


def frames_for(kind, t, h, w, seed):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return (rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(t))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def gen():
        for k in range(t):
            base = 128 + 100 * np.sin(xx / (7 + k % 5) + yy / 13.0 + k / 3)
            img = np.stack([base, 255 - base, base * 0.5 + 60], -1)
            y0, x0 = (k * 7) % max(1, h // 2), (k * 11) % max(1, w // 2)
            img[y0:y0 + h // 4, x0:x0 + w // 4] = (k * 37) % 256
            yield np.clip(img, 0, 255).astype(np.uint8)
    return gen()


def write_mp4(path, rate, t, h, w, kind, seed):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.thread_count = 1
        for k, img in enumerate(frames_for(kind, t, h, w, seed)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


# ----------------------------------------------------------------------------------- qwen-vl-utils' decord, on PyAV


class _Batch:
    def __init__(self, arr):
        self.arr = arr

    def asnumpy(self):
        return self.arr


class PyAVVideoReader:
    """What qwen-vl-utils' `_read_video_decord` uses of `decord.VideoReader`: len, get_avg_fps, get_batch."""

    def __init__(self, path, *a, **k):
        import av

        self.path = str(path)
        with av.open(self.path) as c:
            st = c.streams.video[0]
            self.fps = float(st.average_rate)
            self.n = sum(1 for p in c.demux(st) if p.size and not p.is_discard)

    def __len__(self):
        return self.n

    def get_avg_fps(self):
        return self.fps

    def get_batch(self, idx):
        import av

        want = {}
        for pos, i in enumerate(list(idx)):
            want.setdefault(int(i), []).append(pos)
        out = [None] * len(idx)
        with av.open(self.path) as c:
            for count, frame in enumerate(c.decode(c.streams.video[0])):
                if count in want:
                    arr = frame.to_ndarray(format="rgb24")
                    for pos in want[count]:
                        out[pos] = arr
                if count >= max(want):
                    break
        return _Batch(np.stack(out))


def _import_qwen_vl_utils(dry_run):
    """qwen-vl-utils with its decord backend served by `PyAVVideoReader` (and, in --dry-run, a torchvision stand-in
    made of tempbench's torch-only v1 resize)."""
    os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
    sys.modules["decord"] = types.SimpleNamespace(VideoReader=PyAVVideoReader)
    try:
        import requests  # noqa: F401 - qwen-vl-utils imports it for http inputs only
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    if dry_run:
        _fake_torchvision()
    import qwen_vl_utils.vision_process as qvu

    return qvu


def _fake_torchvision():
    import torch

    from tempbench.models.hf_video import InterpolationMode

    def resize(img, size, interpolation=None, antialias=True):
        x = torch.nn.functional.interpolate(img.float(), size=list(size), mode="bicubic", align_corners=False,
                                            antialias=True)
        return x.clamp(0, 255).round().to(img.dtype) if img.dtype == torch.uint8 else x

    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.26.0"
    tv.io = types.ModuleType("torchvision.io")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.SimpleNamespace(resize=resize)
    tv.transforms.InterpolationMode = InterpolationMode
    sys.modules.update({"torchvision": tv, "torchvision.io": tv.io, "torchvision.transforms": tv.transforms})


# ----------------------------------------------------------------------------------- the stock processors


def _stock_qwen3_processor(tiny, dry_run, size=None):
    from transformers import AutoTokenizer
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    vkw = dict(patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3,
               fps=2, min_frames=4, max_frames=768)
    if size is not None:
        vkw["size"] = {"shortest_edge": size[0], "longest_edge": size[1]}
    tok = AutoTokenizer.from_pretrained(tiny)
    if dry_run:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        from tempbench.models.hf_video import _torch_only_processor, torch_only

        return _torch_only_processor(Qwen3VLProcessor)(
            image_processor=Qwen2VLImageProcessorPil(patch_size=16, merge_size=2),
            tokenizer=tok, video_processor=torch_only(Qwen3VLVideoProcessor)(**vkw), chat_template=tok.chat_template)
    from transformers import AutoImageProcessor

    return Qwen3VLProcessor(image_processor=AutoImageProcessor.from_pretrained(tiny), tokenizer=tok,
                            video_processor=Qwen3VLVideoProcessor(**vkw), chat_template=tok.chat_template)


def _compare(mine: dict, ref: dict, row: dict, prefix: str) -> bool:
    import torch

    a, b = mine["pixel_values_videos"], ref["pixel_values_videos"]
    same_shape = tuple(a.shape) == tuple(b.shape)
    row[f"{prefix}_grid"] = [mine["video_grid_thw"].tolist(), ref["video_grid_thw"].tolist()]
    row[f"{prefix}_pixels_identical"] = bool(same_shape and torch.equal(a.float(), b.float()))
    row[f"{prefix}_max_abs_diff"] = float((a.float() - b.float()).abs().max()) if same_shape else None
    ids_a, ids_b = mine["input_ids"][0].tolist(), ref["input_ids"][0].tolist()
    row[f"{prefix}_ids_identical"] = ids_a == ids_b
    if ids_a != ids_b:
        k = next((i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
        row[f"{prefix}_first_id_difference"] = [k, len(ids_a), len(ids_b)]
    return row[f"{prefix}_pixels_identical"] and row[f"{prefix}_ids_identical"] and \
        row[f"{prefix}_grid"][0] == row[f"{prefix}_grid"][1]


def check_qwen3(args, work) -> dict:
    import torch
    import transformers

    from tempbench.models.base import ModelInput
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.models.qwen.timestamps import index_timestamps
    from tempbench.models.qwen.tiny3 import build_tiny_qwen3
    from tempbench.video import VideoSettings, decode_video

    work = Path(work)
    tiny = build_tiny_qwen3(work / "tiny-qwen3-vl", "qwen3_vl")
    qvu = _import_qwen_vl_utils(args.dry_run)
    from transformers.video_utils import VideoMetadata

    base = HFQwenVL(str(tiny), device="cpu", dtype="float32")
    env = {"transformers": transformers.__version__, "torch": torch.__version__,
           "qwen_vl_utils": getattr(sys.modules.get("qwen_vl_utils"), "__version__", "0.0.14 (wheel)"),
           "torchvision": getattr(sys.modules.get("torchvision"), "__version__", None), "dry_run": args.dry_run}
    vs_id, ve_id = base.tokenizer.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])
    cases = QWEN3_CASES[:4] if args.quick else QWEN3_CASES
    rows, ok = [], True
    for i, (name, rate, t, h, w, kind, setting) in enumerate(cases):
        row = {"case": name, "fps": float(rate), "frames": t, "size": [h, w], "settings": setting}
        t0 = time.perf_counter()
        try:
            path = write_mp4(work / f"{name}.mp4", rate, t, h, w, kind, seed=i)
            S = VideoSettings(**SETTINGS[setting])
            stock_a = _stock_qwen3_processor(tiny, args.dry_run)
            # A. qwen-vl-utils + processor(do_resize=False)
            ele = {"video": str(path), **{k: SETTINGS[setting][k] for k in ("fps", "min_pixels", "max_pixels",
                                                                             "total_pixels")}}
            (video, meta), _ = qvu.fetch_video(ele, image_patch_size=16, return_video_sample_fps=True,
                                               return_video_metadata=True)
            chat = base.chat_text(PROMPT, True)
            ref = stock_a(text=[chat], videos=[video], video_metadata=[meta], do_resize=False, do_sample_frames=False,
                          return_tensors="pt")
            clip = decode_video(path, S)
            row["indices_equal"] = list(map(int, meta["frames_indices"])) == clip.indices.tolist()
            row["source_fps_equal"] = float(meta["fps"]) == clip.source_fps
            a = HFQwenVL.from_loaded(base.model, base.tokenizer, video_settings=S, layout="transformers")
            mine = a.build_inputs([ModelInput(clip, PROMPT, 0)])
            good = _compare(mine, ref, row, "qvu") and row["indices_equal"] and row["source_fps_equal"]
            r = HFQwenVL.from_loaded(base.model, base.tokenizer, video_settings=S, layout="release")
            rel = r.build_inputs([ModelInput(clip, PROMPT, 0)])["input_ids"][0].tolist()
            stock_ids = ref["input_ids"][0].tolist()
            k = stock_ids.index(vs_id)
            end = len(stock_ids) - 1 - stock_ids[::-1].index(ve_id)
            row["release_is_stock_without_outer_pair"] = rel == stock_ids[:k] + stock_ids[k + 1:end] + stock_ids[end + 1:]
            row["last_marker"] = f"<{index_timestamps(clip.indices, clip.source_fps)[-1]:.1f} seconds>"
            good &= row["release_is_stock_without_outer_pair"]
            # position ids: tempbench's release definition = this transformers version's get_rope_index
            from tempbench.models.qwen.rope3 import qwen3_vl_rope_index

            inner = base.model.model
            for layout_name, inp in (("transformers", mine), ("release", r.build_inputs([ModelInput(clip, PROMPT, 0)]))):
                ours_pos, ours_d = qwen3_vl_rope_index(inp["input_ids"], inp["mm_token_type_ids"],
                                                       video_grid_thw=inp["video_grid_thw"])
                stock_pos, stock_d = type(inner).get_rope_index(inner, inp["input_ids"], inp["mm_token_type_ids"],
                                                                video_grid_thw=inp["video_grid_thw"].clone())
                row[f"rope_equal_{layout_name}"] = bool(torch.equal(ours_pos, stock_pos) and torch.equal(ours_d, stock_d))
                good &= row[f"rope_equal_{layout_name}"]
            # B. transformers' own pipeline on the whole video
            reader = PyAVVideoReader(path)
            full = reader.get_batch(range(len(reader))).asnumpy()
            shortest, longest = TF_SIZE[setting]
            stock_b = _stock_qwen3_processor(tiny, args.dry_run, size=(shortest, longest))
            meta_b = VideoMetadata(total_num_frames=len(reader), fps=reader.get_avg_fps(), width=w, height=h,
                                   duration=len(reader) / reader.get_avg_fps())
            ref_b = stock_b(text=[chat], videos=[full], video_metadata=[meta_b], do_sample_frames=True, fps=2,
                            cap_pixels_per_frame=False, return_tensors="pt")
            S_tf = VideoSettings(fps=2.0, min_frames=4, max_frames=768, min_pixels=shortest, total_pixels=longest,
                                 max_pixels=max(shortest, 768 * 32 * 32), resize_mode="transformers",
                                 sampling="transformers")
            b = HFQwenVL.from_loaded(base.model, base.tokenizer, video_settings=S_tf, layout="transformers")
            mine_b = b.build_inputs([ModelInput(decode_video(path, S_tf), PROMPT, 0)])
            good &= _compare(mine_b, ref_b, row, "transformers")
        except Exception as exc:  # keep going: one broken case must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            good = False
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["identical"] = bool(good)
        ok &= row["identical"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(json.dumps({"qwen3_all_identical": bool(ok)}), flush=True)
    return {"env": env, "cases": rows, "all_identical": bool(ok)}


def check_generic(args, work) -> dict:
    import torch  # noqa: F401

    from tempbench.models.hf_video import load_processor, video_metadata
    from tempbench.models.tiny_vlm import build_tiny_vlm
    from tempbench.video import VideoSettings, decode_video

    work = Path(work)
    rows, ok = [], True
    videos = [write_mp4(work / f"generic-{i}.mp4", rate, t, h, w, "smooth", seed=40 + i)
              for i, (rate, t, h, w) in enumerate([(Fraction(30000, 1001), 90, 360, 640), (Fraction(25), 61, 240, 320),
                                                   (Fraction(24), 150, 720, 1280), (Fraction(30), 9, 56, 96)])]
    settings = VideoSettings(fps=2.0, min_frames=2, max_frames=32, min_pixels=28 * 28, max_pixels=448 * 448,
                             total_pixels=32 * 448 * 448)
    for fam in ("llava_onevision", "glm4v"):
        folder = build_tiny_vlm(work / f"tiny-{fam}", fam)
        try:
            ours = load_processor(folder, fam, force_torch_only=True)
            stock = ours if args.dry_run else load_processor(folder, fam)
        except Exception as exc:
            rows.append({"family": fam, "error": f"{type(exc).__name__}: {exc}"[:500], "identical": False})
            ok = False
            continue
        for path in videos:
            row = {"family": fam, "video": path.name, "stock": type(stock.video_processor).__name__,
                   "ours": type(ours.video_processor).__name__}
            try:
                clip = decode_video(path, settings)
                chat = ours.apply_chat_template([{"role": "user", "content": [{"type": "video"},
                                                                              {"type": "text", "text": PROMPT}]}],
                                                tokenize=False, add_generation_prompt=True)
                kw = dict(text=[chat], videos=[clip.frames], do_sample_frames=False, return_tensors="pt")
                mine = ours(**kw, video_metadata=[video_metadata(clip)])
                ref = stock(**kw, video_metadata=[video_metadata(clip)])
                a, b = mine["pixel_values_videos"], ref["pixel_values_videos"]
                row["pixels_identical"] = bool(a.shape == b.shape and (a == b).all())
                row["ids_identical"] = mine["input_ids"].tolist() == ref["input_ids"].tolist()
                row["grid_identical"] = ("video_grid_thw" not in ref) or \
                    mine["video_grid_thw"].tolist() == ref["video_grid_thw"].tolist()
                row["identical"] = row["pixels_identical"] and row["ids_identical"] and row["grid_identical"]
            except Exception as exc:
                row.update(error=f"{type(exc).__name__}: {exc}"[:500], identical=False)
            ok &= row["identical"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(json.dumps({"generic_all_identical": bool(ok)}), flush=True)
    return {"cases": rows, "all_identical": bool(ok)}
