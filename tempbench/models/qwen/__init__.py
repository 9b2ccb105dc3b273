"""Everything Qwen-VL: the torch-only video processor, the released M-RoPE position ids, grouped vision attention,
the transformers adapter and the tiny locally built models for tests."""
