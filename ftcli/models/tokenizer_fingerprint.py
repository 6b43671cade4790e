"""What makes one tokenizer split text as it does, as plain values to hash: never the object's id or path.

Two tokenizers with the same fingerprint give the same ids for every text; any change to the
vocabulary, the merges, the normalizer, the special or added tokens, the template that wraps a
text or a chat, the side it pads or truncates, or a setting it was built with changes it. A
tokenizer served features built by another is the stale-cache bug other tools are known for
(a model trained on the wrong ids, its loss far above what it should be), so the fingerprint
takes in everything the tokenizer holds rather than a name that could point to other files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# where the tokenizer was read from: the files' contents are in the fingerprint, their places are not
WHERE_FROM = ("name_or_path", "is_local", "local_files_only", "cache_dir")


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The tokenizer's class, vocabulary and rules, special and added tokens, sides, chat template
    and init settings, as plain values (`repr` for the few objects among the settings)."""
    kind = type(tokenizer)
    parts: dict[str, Any] = {
        "class": f"{kind.__module__}.{kind.__qualname__}",
        "special_tokens": {name: str(token) for name, token in tokenizer.special_tokens_map.items()},
        "special_ids": list(tokenizer.all_special_ids),
        "added_tokens": [[index, repr(token)] for index, token in sorted(tokenizer.added_tokens_decoder.items())],
        "padding_side": tokenizer.padding_side,
        "truncation_side": tokenizer.truncation_side,
        "model_max_length": tokenizer.model_max_length,
        "chat_template": tokenizer.chat_template,
        "init": {key: repr(value) for key, value in sorted(tokenizer.init_kwargs.items())
                 if key not in WHERE_FROM and not key.endswith("_file") and key != "added_tokens_decoder"},
    }
    if tokenizer.is_fast:
        parts["backend"] = _backend(tokenizer)
    else:
        parts["vocab"] = sorted(tokenizer.get_vocab().items())
        parts["files"] = _vocab_files(tokenizer)
    return parts


def _backend(tokenizer: Any) -> str:
    """The `tokenizers` pipeline's whole definition (normalizer, pre-tokenizer, model with its
    vocabulary and merges, post-processor, added tokens), as a digest, without the truncation and
    padding of its last call (read into a copy, so the tokenizer itself is left as it is)."""
    from tokenizers import Tokenizer

    pipeline = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    pipeline.no_truncation()
    pipeline.no_padding()
    return hashlib.sha256(pipeline.to_str().encode("utf-8")).hexdigest()


def _vocab_files(tokenizer: Any) -> dict[str, str]:
    """A slow tokenizer's vocabulary files (a sentencepiece model holds more than its vocabulary
    lists), as digests of their bytes."""
    digests = {}
    for name in sorted(tokenizer.vocab_files_names):
        path = tokenizer.init_kwargs.get(name)
        if isinstance(path, str) and Path(path).is_file():
            digests[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digests
