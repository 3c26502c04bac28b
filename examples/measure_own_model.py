"""Measure the gradient noise of your own model: a causal character-level transformer (not in the
zoo) trained a few Adam steps on Python's own documentation, then one call to gradnoise.measure.
Runs in about half a minute on 2 CPU cores: `python examples/measure_own_model.py`."""

import torch

import gradnoise
from gradnoise import char_lm

x, y = char_lm.train_data(seq_len=32, max_train=2000)  # windows of pydoc_data.topics
torch.manual_seed(0)
model = char_lm.model(seq_len=32, d_model=32, n_heads=2, n_layers=1)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for k in range(20):  # a few steps, so that Adam's state (the preconditioned view) exists
    opt.zero_grad()
    char_lm.loss(model, (x[32 * k : 32 * (k + 1)], y[32 * k : 32 * (k + 1)])).backward()
    opt.step()

table = gradnoise.measure(
    model,
    char_lm.loss,  # loss_fn(model, batch) -> the scalar mean loss of the batch
    (x, y),  # tensors indexed together, a map-style Dataset, or a batch(indices) callable
    batch_size=16,
    n_draws=60,
    views=("raw", "preconditioned"),
    optimizer=opt,
    coords_per_layer=16,
)
rows = table[(table["estimator"] == "per_coordinate") & (table["view"] == "raw")]
print(rows[["layer", "alpha", "ci_low", "ci_high", "null", "verdict"]].to_string(index=False))
