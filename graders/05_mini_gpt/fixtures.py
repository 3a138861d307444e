"""Golden data for 05_mini_gpt, generated from solutions/ by `llmlab fixtures 05_mini_gpt`.

Records (all small):
  model_config  the configuration of the reference model (JSON);
  model         its state dict (every entry, `param.<name>`, tied head included) with all
                weights, biases and norm parameters drawn away from their initial values
                (so a missing bias or norm shows), a (3, 8) batch of ids, targets with two
                ignored (-100) positions, the logits, the loss (shape (1,): the npz writer
                turns 0-d arrays into 1-d ones), and the gradient of the loss with respect
                to every parameter (`grad.<name>`, the tied matrix once);
  greedy        a prompt longer than block_size and the reference model's greedy
                continuation of it (the generator checks that every step's best logit beats
                the runner-up by a clear margin, so rounding cannot flip a token).
"""

from __future__ import annotations

import torch

SEED = 5

CONFIG = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, d_model=16, dropout=0.0, bias=True)
MIN_GREEDY_MARGIN = 1e-2   # ≫ float32 rounding of these logits (~1e-6)


def _randomise(model: torch.nn.Module, g: torch.Generator) -> None:
    """Move every parameter away from its initial value (LayerNorm weights stay near 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = 0.3 * torch.randn(p.shape, generator=g)
            p.copy_(1.0 + noise if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")) else noise)


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    model = impl.MiniGPT(impl.GPTConfig(**CONFIG))
    _randomise(model, g)
    model.eval()

    idx = torch.randint(0, CONFIG["vocab_size"], (3, 8), generator=g)
    targets = torch.randint(0, CONFIG["vocab_size"], (3, 8), generator=g)
    targets[0, 2] = -100
    targets[2, 7] = -100
    logits, loss = model(idx, targets)
    loss.backward()
    record = {f"param.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    record.update({"idx": idx, "targets": targets, "logits": logits.detach(), "loss": loss.detach().reshape(1)})
    record.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})

    prompt = torch.randint(0, CONFIG["vocab_size"], (2, 11), generator=g)   # longer than block_size
    out = impl.generate(model, prompt, max_new_tokens=6, temperature=0.0)
    with torch.no_grad():                    # prove each greedy step is far from a tie
        for t in range(prompt.shape[1], out.shape[1]):
            step = model(out[:, max(0, t - CONFIG["block_size"]):t])[0][:, -1]
            top2 = step.topk(2, dim=-1).values
            margin = float((top2[:, 0] - top2[:, 1]).min())
            if margin < MIN_GREEDY_MARGIN:
                raise RuntimeError(f"greedy fixture has a near-tie (margin {margin:.2e}); change SEED")
    return {
        "model_config": dict(CONFIG),
        "model": record,
        "greedy": {"prompt": prompt, "out": out},
    }
