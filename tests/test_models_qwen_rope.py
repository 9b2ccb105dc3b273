"""3-D (M-RoPE) position ids of Qwen2(.5)-VL, as released (tempbench.models.qwen.rope)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tempbench.errors import TempbenchError  # noqa: E402
from tempbench.models.qwen.rope import qwen_vl_rope_index  # noqa: E402


def _seq(parts):
    """parts: list of (type, n) -> input ids (dummy) and mm_token_type_ids, batch of one."""
    types = [t for t, n in parts for _ in range(n)]
    mm = torch.tensor([types], dtype=torch.int32)
    return torch.zeros_like(mm, dtype=torch.long), mm


def test_hand_computed_video_positions():
    ids, mm = _seq([(0, 3), (2, 3 * 2 * 2), (0, 2)])
    pos, delta = qwen_vl_rope_index(ids, mm, video_grid_thw=torch.tensor([[3, 4, 4]]),
                                    second_per_grid_ts=torch.tensor([1.0]), spatial_merge_size=2, tokens_per_second=2)
    p = pos[:, 0]
    assert p[:, :3].tolist() == [[0, 1, 2]] * 3
    video = p[:, 3:15]
    assert video[0].tolist() == [3] * 4 + [5] * 4 + [7] * 4  # 3 + floor(k * 1.0 * 2)
    assert video[1].tolist() == [3, 3, 4, 4] * 3 and video[2].tolist() == [3, 4, 3, 4] * 3
    # text after the video starts after the video's last temporal position (7), not after its spatial extent
    assert p[:, 15:].tolist() == [[8, 9]] * 3
    assert delta.tolist() == [[10 - 17]]


@pytest.mark.parametrize("sp, expected", [(0.5, [0, 1, 2, 3]), (1.0, [0, 2, 4, 6]), (1.5625, [0, 3, 6, 9]),
                                          (2.0, [0, 4, 8, 12])])
def test_fractional_seconds_per_grid_are_not_truncated(sp, expected):
    ids, mm = _seq([(2, 4)])
    pos, _ = qwen_vl_rope_index(ids, mm, video_grid_thw=torch.tensor([[4, 2, 2]]),
                                second_per_grid_ts=torch.tensor([sp]), spatial_merge_size=2, tokens_per_second=2)
    assert pos[0, 0].tolist() == expected


def test_qwen2_vl_has_no_time_scaling_and_images_are_one_frame():
    ids, mm = _seq([(1, 4), (0, 1), (2, 2)])
    pos, _ = qwen_vl_rope_index(ids, mm, image_grid_thw=torch.tensor([[1, 4, 4]]),
                                video_grid_thw=torch.tensor([[2, 2, 2]]), second_per_grid_ts=torch.tensor([3.0]),
                                spatial_merge_size=2, tokens_per_second=None)
    assert pos[0, 0].tolist() == [0, 0, 0, 0, 2, 3, 4]
    assert pos[1, 0].tolist() == [0, 0, 1, 1, 2, 3, 3]


def test_left_padding_gives_the_same_positions():
    ids, mm = _seq([(0, 2), (2, 4), (0, 3)])
    grid, sp = torch.tensor([[4, 2, 2]]), torch.tensor([0.5])
    alone, d1 = qwen_vl_rope_index(ids, mm, video_grid_thw=grid, second_per_grid_ts=sp)
    pad = 5
    mm_p = torch.cat([torch.zeros(1, pad, dtype=torch.int32), mm], 1)
    ids_p = torch.zeros_like(mm_p, dtype=torch.long)
    mask = torch.cat([torch.zeros(1, pad, dtype=torch.long), torch.ones_like(ids)], 1)
    padded, d2 = qwen_vl_rope_index(ids_p, mm_p, video_grid_thw=grid, second_per_grid_ts=sp, attention_mask=mask)
    assert torch.equal(padded[:, :, pad:], alone) and (padded[:, :, :pad] == 0).all()
    assert torch.equal(d1, d2)


def test_mismatched_grid_is_an_error():
    ids, mm = _seq([(2, 5)])
    with pytest.raises(TempbenchError, match="does not match grid"):
        qwen_vl_rope_index(ids, mm, video_grid_thw=torch.tensor([[4, 2, 2]]), second_per_grid_ts=torch.tensor([1.0]))


def test_agrees_with_transformers_where_definitions_coincide():
    """Images and videos whose temporal extent is within the spatial one: transformers 5.x gives the same ids."""
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    cfg = Qwen2_5_VLConfig(text_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                        "num_key_value_heads": 1, "intermediate_size": 32, "vocab_size": 64,
                                        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]}},
                           vision_config={"depth": 1, "hidden_size": 16, "num_heads": 1, "intermediate_size": 16,
                                          "out_hidden_size": 32, "tokens_per_second": 2})
    model = Qwen2_5_VLModel(cfg)
    ids, mm = _seq([(0, 3), (1, 16), (0, 2), (2, 2 * 4 * 4), (0, 4)])
    kw = dict(image_grid_thw=torch.tensor([[1, 8, 8]]), video_grid_thw=torch.tensor([[2, 8, 8]]),
              second_per_grid_ts=torch.tensor([1.0]))
    ours, d_ours = qwen_vl_rope_index(ids, mm, spatial_merge_size=2, tokens_per_second=2, **kw)
    theirs, d_theirs = model.get_rope_index(ids, mm_token_type_ids=mm, **kw)
    assert torch.equal(ours, theirs.long()) and torch.equal(d_ours, d_theirs.long())
