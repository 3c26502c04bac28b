"""A small causal character-level transformer and its text, for measuring a model outside the zoo
(DESIGN.md §12): the regime where Adam is known to beat SGD (Zhang et al. 2020; Kunstner et al. 2023).

The text ships with Python: the standard library's ``pydoc_data.topics`` (the help topics, ≈ 465 KB
of English in Python 3.11). It changes with the Python version, so ``corpus_provenance`` records its
SHA-256 and length. Examples are non-overlapping windows of ``seq_len + 1`` characters (input: the
first ``seq_len``, target: the last ``seq_len``); the last ``test_fraction`` of the windows, a
contiguous stretch of the text, is the test split.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from typing import Any

import torch
from torch import nn

CORPUS = "pydoc_data.topics"


@functools.cache
def corpus_text() -> str:
    """The help topics in the order of their names, separated by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


@functools.cache
def vocabulary() -> str:
    """Every character of the corpus, sorted: index i is character ``vocabulary()[i]``."""
    return "".join(sorted(set(corpus_text())))


def corpus_provenance() -> dict[str, Any]:
    """What the data are made of: the corpus, the Python that shipped it, its checksum and length."""
    text = corpus_text()
    return {
        "corpus": CORPUS,
        "python": platform.python_version(),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "chars": len(text),
        "vocabulary": len(vocabulary()),
    }


def encode(text: str) -> torch.Tensor:
    index = {c: i for i, c in enumerate(vocabulary())}
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def splits(
    seq_len: int = 64, test_fraction: float = 0.1, max_train: int | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train": (x, y), "test": (x, y)}``: windows of the corpus, x and y (N × seq_len) the inputs
    and the next characters. `max_train` keeps the first that many training windows."""
    codes = encode(corpus_text())
    n = len(codes) // (seq_len + 1)
    windows = codes[: n * (seq_len + 1)].reshape(n, seq_len + 1)
    n_test = max(1, round(n * test_fraction))
    train, test = windows[: n - n_test], windows[n - n_test :]
    if max_train is not None:
        train = train[:max_train]
    return {
        name: (w[:, :-1].clone(), w[:, 1:].clone())
        for name, w in (("train", train), ("test", test))
    }


def dataset(
    seq_len: int = 64, test_fraction: float = 0.1, max_train: int | None = None
) -> dict[str, Any]:
    """A dataset factory for the workflow config (``gradnoise.tasks``): the splits, and the
    corpus's checksum as their provenance (it changes with the Python version)."""
    return {**splits(seq_len, test_fraction, max_train), "provenance": corpus_provenance()}


def train_data(
    seq_len: int = 64, max_train: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training windows as (x, y): what ``gradnoise.measure`` takes as `data`."""
    return splits(seq_len, max_train=max_train)["train"]


class CharTransformer(nn.Module):
    """Token and position embeddings, pre-LayerNorm transformer blocks with causal self-attention
    (``nn.TransformerEncoderLayer`` under a causal mask), a final LayerNorm and a linear readout:
    (N, T) character codes → (N, T, vocabulary) logits of the next character."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(seq_len, d_model)
        block = nn.TransformerEncoderLayer(
            d_model, n_heads, 4 * d_model, dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        mask = nn.Transformer.generate_square_subsequent_mask(seq_len)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.position(torch.arange(t, device=x.device))
        h = self.blocks(h, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


def model(seq_len: int = 64, d_model: int = 64, n_heads: int = 4, n_layers: int = 2) -> nn.Module:
    """The transformer for this corpus's vocabulary (a model factory for ``gradnoise measure``)."""
    return CharTransformer(len(vocabulary()), seq_len, d_model, n_heads, n_layers)


def loss(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-character cross entropy, the mean over every position of every sequence (a mean of
    per-sequence means, as the sequences have one length: micro-batching is exact)."""
    x, y = batch
    logits = net(x)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
