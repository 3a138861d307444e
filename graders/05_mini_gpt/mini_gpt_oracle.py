"""Helpers shared by the 05_mini_gpt graders (instructor code, not a test).

- `functional_forward` is GPT-2's forward written from a parameter dict alone (embedding
  rows, the given `llmlab.lib.nn.Block` through `torch.func.functional_call`,
  `F.layer_norm`, the tied matrix as the head), independently of the student's module: the
  oracle for logits and gradients on fresh weights;
- `load_reference_model` builds the student's MiniGPT for the golden configuration and
  loads the golden state dict into it, failing with the attribute names to keep when it
  does not load;
- `is_norm_weight` tells which parameters are LayerNorm gains (drawn around one by
  `llmlab.testing.tensors.randomize_parameters`, so no norm hides behind its initial ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from llmlab.lib.nn import Block
from llmlab.testing import check, reference

TOPIC = "05_mini_gpt"


def is_norm_weight(name: str) -> bool:
    """Whether parameter `name` is a LayerNorm weight (ln_f, or a block's ln1/ln2)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] == "weight" and parts[-2].startswith("ln")


def functional_forward(params: dict, cfg: dict, idx: torch.Tensor) -> torch.Tensor:
    """GPT-2's forward from the parameter dict alone: (B, T) ids -> (B, T, V) logits.

    `params` maps the docstring's parameter names (`tok_emb.weight`, `pos_emb.weight`,
    `blocks.<i>.…`, `ln_f.weight`, optional `ln_f.bias`) to tensors; `cfg` holds d_model,
    n_head, n_layer and bias. The head is the token-embedding matrix itself (weight tying).
    """
    T = idx.shape[1]
    wte = params["tok_emb.weight"]
    x = wte[idx] + params["pos_emb.weight"][:T]                                    # (B, T, C)
    block = Block(cfg["d_model"], cfg["n_head"], 0.0, cfg.get("bias", True))
    for i in range(cfg["n_layer"]):
        prefix = f"blocks.{i}."
        own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
        x = functional_call(block, own, (x,))                                      # (B, T, C)
    x = F.layer_norm(x, (cfg["d_model"],), params["ln_f.weight"], params.get("ln_f.bias"), eps=1e-5)
    return x @ wte.T                                                               # (B, T, V)


def load_reference_model(impl):
    """(model, record, cfg): the student's MiniGPT with the golden state dict, in eval mode."""
    cfg = reference.load(TOPIC, "model_config")
    record = reference.load(TOPIC, "model")
    model = impl.MiniGPT(impl.GPTConfig(**cfg))
    state = {k[len("param."):]: v for k, v in record.items() if k.startswith("param.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        check.fail("MiniGPT.__init__", "the reference state dict does not load into your model",
                   str(exc).splitlines()[0][:300],
                   "keep the attribute names of the docstring: tok_emb, pos_emb, blocks (a ModuleList "
                   "of llmlab.lib.nn.Block), ln_f, lm_head", case=check.describe(config=cfg))
    model.eval()
    return model, record, cfg
