"""Issue 14: do a model's video tokens carry the colour of the object they show? A linear probe on the vision
tower's output (the features that replace the `<|video_pad|>` tokens), for the `synthetic-hard` val videos.

Each merged video token (2 frames x 28 x 28 pixels) whose pixels are at least 15 % saturated colour is labelled with
the task colour nearest to their mean (the grey background is not saturated); a multinomial logistic regression
(standardised features, L2 1e-3, Adam, 300 steps) is fitted on the tokens of the first 70 % of the videos and scored
on the rest, next to always answering the most frequent colour. High accuracy means the colour is there for the
language model to match against the query's colour word.

    python benchmarks/colour_probe.py tiny-synthetic --videos 40 --out docs/results/colour_probe_shipped.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SATURATION = 90  # max - min of a pixel's RGB (0-255) above which it counts as object colour
MIN_SHARE = 0.15  # of a token's pixels


def token_labels(pixel_values: np.ndarray, mean, std, colours: np.ndarray) -> np.ndarray:
    """Pure: the colour index (into `colours`, (K, 3) RGB) of each merged token, or -1 for a token without enough
    saturated pixels. `pixel_values`: (tokens * 4, 3 * 2 * 14 * 14) normalised patches in Qwen2.5-VL's order (each
    merged token's 4 patches together; channels, then the 2 frames, then 14 x 14 pixels)."""
    p = pixel_values.reshape(-1, 4, 3, 2, 14, 14)
    m = np.asarray(mean, dtype=float)[None, None, :, None, None, None]
    s = np.asarray(std, dtype=float)[None, None, :, None, None, None]
    rgb = ((p * s + m) * 255.0).transpose(0, 1, 3, 4, 5, 2).reshape(p.shape[0], -1, 3)
    sat = rgb.max(-1) - rgb.min(-1)
    out = np.full(p.shape[0], -1, dtype=int)
    for k in range(p.shape[0]):
        mask = sat[k] > SATURATION
        if mask.mean() >= MIN_SHARE:
            out[k] = int(np.argmin(((colours - rgb[k][mask].mean(0)) ** 2).sum(-1)))
    return out


def fit_probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, classes: int, seed: int = 0) -> float:
    """Accuracy (%) on ~train of a linear softmax probe fitted on train (standardised with train's statistics)."""
    import torch

    torch.manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float32)
    mu, sd = xt[train].mean(0), xt[train].std(0) + 1e-6
    xt = (xt - mu) / sd
    yt = torch.tensor(y)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    tr = torch.tensor(train)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt[tr] @ w + b, yt[tr]) + 1e-3 * (w**2).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return 100.0 * float(((xt[~tr] @ w + b).argmax(1) == yt[~tr]).float().mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a zoo alias (tiny-synthetic) or a model folder")
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    from tempbench.annotations import ensure_synthetic
    from tempbench.errors import TempbenchError
    from tempbench.models import load_model, zoo
    from tempbench.models.qwen.processor import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    from tempbench.synthetic import COLOURS, draw_scene
    from tempbench.tasks import synthetic
    from tempbench.train.loss import video_features
    from tempbench.video import VideoSettings, decode_video

    video = VideoSettings(**zoo.get("tiny-synthetic").video)
    try:
        adapter = load_model(args.model, dtype="float32", video_settings=video)
        folder = ensure_synthetic("val", "synthetic-hard", first=args.videos)
    except TempbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = sorted(COLOURS)
    colours = np.array([COLOURS[c] for c in names], dtype=float)
    settings = synthetic.settings("synthetic-hard")
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["val"]["seed"]
    feats, labels, video_of = [], [], []
    for i in range(args.videos):
        scene, _ = draw_scene(settings, seed, i)
        v = adapter.video_preprocessor(decode_video(folder / f"{scene.vid}.mp4", video))
        pv = torch.as_tensor(v["pixel_values_videos"])
        with torch.no_grad():  # the features the trainer places at the video tokens
            per_video, _ = video_features(adapter.model, pv, torch.as_tensor(v["video_grid_thw"]).reshape(1, 3))
        f = per_video[0].float().numpy()
        lab = token_labels(pv.numpy(), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, colours)
        keep = lab >= 0
        feats.append(f[keep])
        labels.append(lab[keep])
        video_of += [i] * int(keep.sum())
    x, y, g = np.concatenate(feats), np.concatenate(labels), np.array(video_of)
    train = g < int(0.7 * args.videos)
    if train.all() or not train.any():
        print("error: too few videos to hold some out (use --videos 4 or more)", file=sys.stderr)
        return 2
    accuracy = fit_probe(x, y, train, len(names))
    majority = 100.0 * float((y[~train] == np.bincount(y[train], minlength=len(names)).argmax()).mean())
    res = {"produced_by": "benchmarks/colour_probe.py", "model": args.model, "weights": adapter.identity().weights,
           "videos": args.videos, "tokens_with_an_object": int(len(y)), "held_out_tokens": int((~train).sum()),
           "colour_probe_accuracy_pct": accuracy, "majority_colour_pct": majority,
           "tokens_per_colour": dict(zip(names, np.bincount(y, minlength=len(names)).tolist()))}
    print(f"{args.model}: the colour of {res['held_out_tokens']} held-out object tokens read linearly from the video "
          f"features: {accuracy:.1f}% (the most frequent colour: {majority:.1f}%)")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
