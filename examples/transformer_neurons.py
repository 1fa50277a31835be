"""Dead and dormant feed-forward neurons of a small transformer language model while it trains.

    python examples/transformer_neurons.py [--activation relu|gelu] [--epochs 4] [--lr 1e-2] [--decay 5e-3]

Trains ``sparsitylib.models.TinyTransformerLM`` (2 pre-norm blocks, width 32, 128 feed-forward
neurons each) on text from a random bigram language (64 tokens, each followed by one of 4), next
token prediction, Adam with L2 (``weight_decay``), and measures its feed-forward neurons after
every epoch with ``SparsityMonitor`` on a fixed sample of 256 sequences: per block, the neurons
dead (never above 1e-12, ReLU only), dormant by ReDo's score (tau 0.025, 0.1) and by Dohare's rule
(fire on < 1% of token positions), and by GraMa (the gradient of the next-token loss on the
sample reaching each neuron's incoming weights, relative to its layer's); then how far the
definitions agree. Behind GELU only ReDo's scores and GraMa apply, and the table says n/a.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from sparsitylib.dormancy import agreement
from sparsitylib.models import TinyTransformerLM
from sparsitylib.monitor import SparsityMonitor

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def bigram_text(sequences: int, length: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """Sequences from a random bigram language: each token is followed by one of 4 tokens."""
    successors = torch.randint(0, vocab, (vocab, 4), generator=generator)
    tokens = torch.empty(sequences, length, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, vocab, (sequences,), generator=generator)
    for t in range(1, length):
        choice = torch.randint(0, 4, (sequences,), generator=generator)
        tokens[:, t] = successors[tokens[:, t - 1], choice]
    return tokens


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--decay", type=float, default=5e-3, help="L2 (Adam's weight_decay); 0: none")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    text = bigram_text(4096, 16, 64, generator)
    model = TinyTransformerLM(activation=ACTIVATIONS[args.activation])
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.decay)
    monitor = SparsityMonitor(model, text[:256], optimizer, warn=False, labels=text[:256], loss=next_token_loss)
    monitor(0)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in text[torch.randperm(len(text), generator=generator)].split(64):
            loss = next_token_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        monitor(epoch)
        print(f"epoch {epoch}: training loss {loss.item():.3f}")
    columns = ["epoch", "layer", "filters", "dead", "dormant-0.025", "dormant-0.1", "dormant-1%", "grama"]
    print(f"\nAdam lr {args.lr:g} + L2 {args.decay:g}, {args.activation}: feed-forward neurons per block "
          "(dead: never fires; NaN: the definition does not apply)")
    print(monitor.history[columns].to_string(index=False))
    last = monitor.filter_history
    pairs = agreement(last[last["epoch"] == args.epochs])
    print(f"\nagreement at epoch {args.epochs} (Jaccard overlap of the sets of neurons each marks):")
    print(pairs.dropna(subset=["jaccard"]).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
