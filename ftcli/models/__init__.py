"""Pretrained models and tokenizers: where they come from, tiny random ones, warm-started encoder-decoders."""
