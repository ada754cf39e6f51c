"""The text side of the artists' model: a CLIP BPE tokenizer over the captions' words and a small CLIP text encoder.

No pretrained text encoder can be had offline, so the base model trains its own, as Stable Diffusion's
CLIP was trained before it: a ``transformers.CLIPTextModel`` read by the pipeline's own loading code,
with a ``CLIPTokenizer`` whose byte-level BPE (``vocab.json`` + ``merges.txt``, the files CLIP ships)
is written here: every byte, with and without the end-of-word mark, plus merges that make each word
of :data:`~surrogateshap.examples.artists.planting.CAPTION_WORDS` one token. Other text still
tokenizes (byte by byte), as CLIP's tokenizer handles any string.

>>> tokenizer = caption_tokenizer()
>>> tokenizer.tokenize("a painting of a seven by ada marlow")
['a</w>', 'painting</w>', 'of</w>', 'a</w>', 'seven</w>', 'by</w>', 'ada</w>', 'marlow</w>']
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .planting import CAPTION_WORDS

__all__ = ["MAX_TOKENS", "caption_tokenizer", "text_encoder"]

#: tokens per prompt (start and end marks included); the longest caption has 10
MAX_TOKENS = 16
_START, _END = "<|startoftext|>", "<|endoftext|>"


def _byte_chars() -> list[str]:
    """CLIP's (GPT-2's) printable stand-ins for the 256 bytes, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _vocab_and_merges(words: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """Every byte (bare and word-final), then the merges of a BPE trained on ``words`` until each is one token.

    Training merges, at each step, the most frequent adjacent pair over all words (ties: the first in sorted
    order) everywhere it occurs; encoding applies merges lowest rank first, i.e. in training order, so every
    training word comes out whole (a hand-made chain per word would not: another word's earlier merge can
    split it).
    """
    vocab = {_START: 0, _END: 1}
    for ch in _byte_chars():
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    pieces = [[*w[:-1], w[-1] + "</w>"] for w in dict.fromkeys(w.lower() for w in words) if w.isascii() and w]
    merges: list[str] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for word in pieces:
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return vocab, merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(f"{best[0]} {best[1]}")
        vocab.setdefault(best[0] + best[1], len(vocab))
        for k, word in enumerate(pieces):
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            pieces[k] = merged


def caption_tokenizer(words: Iterable[str] = CAPTION_WORDS) -> Any:
    """A ``CLIPTokenizer`` (``MAX_TOKENS`` long) in which each of ``words`` is one token."""
    from transformers import CLIPTokenizer

    vocab, merges = _vocab_and_merges(words)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        lines = "".join(f"{m}\n" for m in merges)  # no blank line: the fast tokenizer refuses one
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n" + lines, encoding="utf-8")
        return CLIPTokenizer(str(Path(folder) / "vocab.json"), str(Path(folder) / "merges.txt"),
                             model_max_length=MAX_TOKENS, pad_token=_END)


def text_encoder(vocab_size: int, hidden_size: int = 64, layers: int = 2, heads: int = 4) -> Any:
    """A small ``CLIPTextModel`` (random weights) whose hidden states the UNet cross-attends to."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=MAX_TOKENS,
        projection_dim=hidden_size, bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_act="gelu",
    )
    return CLIPTextModel(config)
