"""Graders for 05_mini_gpt: GPTConfig, MiniGPT (construction and forward) and count_parameters.

Evidence per unit:
  - golden data (reference/05_mini_gpt): logits, loss and every parameter's gradient of a
    reference model whose state dict is loaded into the student's model;
  - independent oracles: `F.cross_entropy` for the loss on the student's own logits, a
    brute-force parameter count of the model's parts (one real Block and LayerNorm per
    shape; the embedding tables by their shapes), and the gradients of every parameter
    against a functional forward written from the parameter dict (`mini_gpt_oracle`);
  - properties on fresh random weights and inputs: causality, independence of the batch
    rows, the use of positions, the first loss ≈ ln(V), initialisation statistics
    (chi-square, stated rates), weight tying by identity.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import mini_gpt_oracle as O
from llmlab.lib.nn import Block, scaled_init_std
from llmlab.testing import check, guard, properties, stats, tensors
from llmlab.testing.strategies import examples

GPT2_SMALL = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768, bias=True)
GPT2_SMALL_PARAMETERS = 124_439_808


def _config(impl, **overrides):
    fields = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=16)
    fields.update(overrides)
    return impl.GPTConfig(**fields)


def _randomised_model(impl, seed: int, **overrides) -> nn.Module:
    """A MiniGPT (the default config changed by `overrides`) with every parameter drawn fresh,
    norm gains around one, so no part of the model hides behind its initial zeros or ones."""
    model = impl.MiniGPT(_config(impl, **overrides))
    return tensors.randomize_parameters(model, seed, 0.5, around_one=O.is_norm_weight)


@functools.lru_cache(maxsize=None)
def _module_count(kind: str, d_model: int, n_head: int, bias: bool) -> int:
    module = Block(d_model, n_head, 0.0, bias) if kind == "block" else nn.LayerNorm(d_model, bias=bias)
    return sum(p.numel() for p in module.parameters())


def _brute_force_count(vocab_size, block_size, n_layer, n_head, d_model, bias=True, **_) -> int:
    """Parameters of the model's parts: the blocks and the final norm counted on real modules
    (the L blocks are alike, so one is built), the two embedding tables by their shapes."""
    return ((vocab_size + block_size) * d_model + n_layer * _module_count("block", d_model, n_head, bias)
            + _module_count("norm", d_model, n_head, bias))


def _expected_state_shapes(vocab_size, block_size, n_layer, n_head, d_model, bias=True, **_) -> dict:
    block = {k: tuple(v.shape) for k, v in Block(d_model, n_head, 0.0, bias).state_dict().items()}
    shapes = {"tok_emb.weight": (vocab_size, d_model), "pos_emb.weight": (block_size, d_model),
              "ln_f.weight": (d_model,), "lm_head.weight": (vocab_size, d_model)}
    if bias:
        shapes["ln_f.bias"] = (d_model,)
    for i in range(n_layer):
        shapes.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    return shapes


# ---------------------------------------------------------------- GPTConfig

@pytest.mark.points(1)
def test_config_fields_and_defaults(impl):
    cfg = impl.GPTConfig(vocab_size=65, block_size=32, n_layer=3, n_head=4, d_model=64)
    got = {k: getattr(cfg, k, None) for k in ("vocab_size", "block_size", "n_layer", "n_head",
                                               "d_model", "dropout", "bias")}
    check.equal(got, dict(vocab_size=65, block_size=32, n_layer=3, n_head=4, d_model=64, dropout=0.0, bias=True),
                unit="GPTConfig", what="fields (dropout defaults to 0.0, bias to True)")
    other = impl.GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, d_model=3, dropout=0.5, bias=False)
    check.equal((other.dropout, other.bias), (0.5, False), unit="GPTConfig", what="(dropout, bias) as given")


@pytest.mark.points(1)
def test_config_accepts_the_smallest_valid_values(impl):
    # "positive integer" includes 1, and dropout's interval [0, 1) includes 0.
    fields = dict(vocab_size=1, block_size=1, n_layer=1, n_head=1, d_model=1, dropout=0.0, bias=False)
    cfg = impl.GPTConfig(**fields)
    check.equal({k: getattr(cfg, k, None) for k in fields}, fields, unit="GPTConfig",
                what="fields of the smallest valid configuration", case=check.describe(**fields))
    almost_one = impl.GPTConfig(vocab_size=3, block_size=2, n_layer=1, n_head=3, d_model=9, dropout=0.999)
    check.equal(almost_one.dropout, 0.999, unit="GPTConfig", what="dropout just below 1",
                case=check.describe(dropout=0.999))


@pytest.mark.points(2)
def test_config_rejects_bad_values(impl):
    good = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=16)
    impl.GPTConfig(**good)
    # (field the message must name, its value, the change, the docstring rule it breaks)
    bad_cases = [
        ("d_model", 18, dict(d_model=18, n_head=4), "d_model must be divisible by n_head"),
        ("n_layer", 0, dict(n_layer=0), "sizes must be positive integers"),
        ("vocab_size", -3, dict(vocab_size=-3), "sizes must be positive integers"),
        ("block_size", 0, dict(block_size=0), "sizes must be positive integers"),
        ("n_head", 0, dict(n_head=0), "sizes must be positive integers"),
        ("d_model", 2.5, dict(d_model=2.5), "sizes must be positive integers"),
        ("vocab_size", 11.5, dict(vocab_size=11.5), "sizes must be integers, not floats"),
        ("n_layer", True, dict(n_layer=True), "booleans are not valid sizes"),
        ("n_head", True, dict(n_head=True), "booleans are not valid sizes"),
        ("dropout", 1.0, dict(dropout=1.0), "dropout must be in [0, 1)"),
        ("dropout", -0.1, dict(dropout=-0.1), "dropout must be in [0, 1)"),
    ]
    for field, value, change, why in bad_cases:
        case = check.describe(**change)
        exc = check.expect_raises(ValueError, impl.GPTConfig, unit="GPTConfig", case=case, why=why,
                                  **{**good, **change})
        message = str(exc)
        check.that(field in message and str(value) in message, "GPTConfig",
                   f"the ValueError should name the offending field `{field}` and its value {value!r}",
                   f"message was: {message!r}", case=case)


# ---------------------------------------------------------------- MiniGPT.__init__

@pytest.mark.points(2)
def test_model_structure_and_names(impl):
    for fields in (dict(vocab_size=11, block_size=8, n_layer=3, n_head=2, d_model=16, bias=True),
                   dict(vocab_size=7, block_size=5, n_layer=1, n_head=4, d_model=8, bias=False)):
        case = check.describe(**fields)
        model = impl.MiniGPT(impl.GPTConfig(**fields))
        check.that(getattr(model, "config", None) is not None and model.config.d_model == fields["d_model"],
                   "MiniGPT.__init__", "store the config as `self.config`", case=case)
        blocks = getattr(model, "blocks", None)
        check.that(isinstance(blocks, nn.ModuleList) and len(blocks) == fields["n_layer"]
                   and all(isinstance(b, Block) for b in blocks),
                   "MiniGPT.__init__", "`self.blocks` must be an nn.ModuleList of config.n_layer llmlab.lib.nn.Block",
                   f"got {type(blocks).__name__} of length {len(blocks) if blocks is not None else None}", case=case)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        check.equal(shapes, _expected_state_shapes(**fields), unit="MiniGPT.__init__",
                    what="state_dict names and shapes (bias=False means no bias anywhere)", case=case)


@pytest.mark.points(2)
def test_head_is_tied_to_token_embedding(impl):
    model = impl.MiniGPT(_config(impl))
    head, emb = model.lm_head, model.tok_emb
    check.that(isinstance(head, nn.Linear) and head.bias is None, "MiniGPT.__init__",
               "lm_head must be nn.Linear(d_model, vocab_size, bias=False)", case=check.describe(lm_head=repr(head)))
    check.that(head.weight is emb.weight, "MiniGPT.__init__",
               "lm_head.weight must be the same Parameter object as tok_emb.weight (weight tying)",
               "equal values are not enough: after one optimizer step two separate matrices drift apart",
               "known mistake: untied LM head — write `self.lm_head.weight = self.tok_emb.weight`")


@pytest.mark.points(2)
def test_parameter_count_of_model_matches_formula(impl):
    for fields in (dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=16),
                   dict(vocab_size=30, block_size=5, n_layer=1, n_head=1, d_model=12, bias=False),
                   dict(vocab_size=7, block_size=16, n_layer=3, n_head=4, d_model=8)):
        model = impl.MiniGPT(impl.GPTConfig(**fields))
        expected = _brute_force_count(**fields)
        V, C = fields["vocab_size"], fields["d_model"]
        check.equal(sum(p.numel() for p in model.parameters()), expected, unit="MiniGPT.__init__",
                    what="number of parameters (model.parameters() counts a tied matrix once)",
                    case=check.describe(**fields),
                    mistakes={"untied LM head (a second V×C matrix)": expected + V * C})


def _normal_init_check(w: torch.Tensor, sigma: float, name: str, case: str, rate: float, wrong: dict) -> None:
    """Entries ~ N(0, sigma²) i.i.d. (chi-square over equal-probability bins, false-failure
    rate `rate`); a failure adds the observed standard deviation and names the mistake in
    `wrong` (mistake -> the standard deviation it gives) that it matches within 10 %."""
    try:
        stats.normal(w, mean=0.0, std=sigma, unit="MiniGPT.__init__", rate=rate, case=case,
                     what=f"{name} does not look like N(0, {sigma:.4g}²)")
    except check.GradingFailure as failure:
        observed = math.sqrt(float((w.double() ** 2).mean()))
        mistake = next((m for m, s in wrong.items() if abs(observed / s - 1) < 0.1), None)
        lines = [str(failure), f"  observed standard deviation {observed:.4g}, expected {sigma:.4g}"]
        if mistake:
            lines.append(f"  known mistake: {mistake}")
        raise check.GradingFailure("\n".join(lines)) from None


@pytest.mark.points(2)
def test_initialisation_statistics(impl):
    # Ten normality tests at rate 1e-7 each: a correct init fails with probability ≤ 1e-6.
    fields = dict(vocab_size=64, block_size=32, n_layer=2, n_head=2, d_model=64)
    case = check.describe(**fields)
    torch.manual_seed(0)
    model = impl.MiniGPT(impl.GPTConfig(**fields))
    base, resid = 0.02, scaled_init_std(fields["n_layer"])
    # PyTorch's own defaults, for naming the mistake: N(0, 1) embeddings, and Linear weights
    # uniform on ±1/sqrt(fan_in) (standard deviation 1/sqrt(3·fan_in)).
    no_init = "weights not initialised with init_gpt_weights"
    embedding_default = {no_init: 1.0}
    linear_default = {no_init: 1 / math.sqrt(3 * fields["d_model"])}
    tensors = [("tok_emb.weight", base, embedding_default), ("pos_emb.weight", base, embedding_default)]
    for i in range(fields["n_layer"]):
        tensors += [(f"blocks.{i}.attn.qkv.weight", base, linear_default),
                    (f"blocks.{i}.mlp.up.weight", base, linear_default),
                    (f"blocks.{i}.attn.proj.weight", resid,
                     {"residual projection not re-initialised with scaled_init_std(n_layer)": base}),
                    (f"blocks.{i}.mlp.down.weight", resid,
                     {"residual projection not re-initialised with scaled_init_std(n_layer)": base})]
    params = dict(model.named_parameters())
    for name, sigma, wrong in tensors:
        _normal_init_check(params[name].detach(), sigma, name, case, 1e-7, wrong)
    for name, p in params.items():
        if name.endswith("bias"):
            check.that(bool((p == 0).all()), "MiniGPT.__init__", f"{name} should start at zero", case=case)
        elif name.split(".")[-2].startswith("ln"):
            check.that(bool((p == 1).all()), "MiniGPT.__init__", f"{name} (a LayerNorm weight) should start at one",
                       case=case)


@pytest.mark.points(2)
def test_initial_loss_is_close_to_log_vocab(impl):
    # With N(0, 0.02²) weights the logits are ≈ 0, so the loss is ≈ ln V. Measured over 30
    # seeds the solution lands within ±0.025 of ln V; the band ±0.1 leaves a margin of four,
    # while PyTorch's default init (no init_gpt_weights) gives a loss above ln V + 1.
    fields = dict(vocab_size=64, block_size=16, n_layer=2, n_head=2, d_model=32)
    torch.manual_seed(1)
    model = impl.MiniGPT(impl.GPTConfig(**fields))
    idx = tensors.randint((8, 16), 2, high=64)
    targets = tensors.randint((8, 16), 3, high=64)
    _, loss = model(idx, targets)
    value = float(loss.detach())
    check.that(abs(value - math.log(64)) <= 0.1, "MiniGPT.__init__",
               f"the first loss is {value:.4f}, expected ln(64) = {math.log(64):.4f} ± 0.1",
               "an untrained model should be unsure of every token",
               "known mistake: weights not initialised with init_gpt_weights" if value > math.log(64) + 0.5 else "",
               case=check.describe(**fields))


@pytest.mark.points(1)
def test_dropout_follows_config_and_mode(impl):
    cfg = _config(impl, dropout=0.5)
    model = impl.MiniGPT(cfg)
    rates = [model.drop.p] + [b.drop.p for b in model.blocks] + [b.attn.dropout for b in model.blocks]
    check.that(all(r == 0.5 for r in rates), "MiniGPT.__init__",
               "pass config.dropout to the embedding dropout `drop` and to every Block",
               f"found dropout rates {rates}", case=check.describe(dropout=0.5))
    idx = tensors.randint((2, 8), 0, high=11)
    model.eval()
    a, b = model(idx)[0], model(idx)[0]
    check.close(a, b, unit="MiniGPT.forward", kind="exact", what="two eval-mode forwards (dropout must be off)")
    model.train()
    torch.manual_seed(0)
    a, b = model(idx)[0], model(idx)[0]
    check.that(not torch.equal(a, b), "MiniGPT.forward", "two train-mode forwards with dropout=0.5 are identical",
               "dropout should be active in train mode")


# ---------------------------------------------------------------- MiniGPT.forward

@pytest.mark.points(1)
def test_forward_shapes(impl):
    model = impl.MiniGPT(_config(impl))
    # (B, T): a usual batch, batch 1 with T = 1, and T = block_size (the longest allowed)
    for seed, (B, T) in enumerate(((3, 5), (1, 1), (2, 8))):
        idx = tensors.randint((B, T), seed, high=11)
        case = check.describe(idx=idx, block_size=8)
        out = model(idx)
        check.that(isinstance(out, tuple) and len(out) == 2, "MiniGPT.forward", "should return (logits, loss)",
                   f"got {type(out).__name__}", case=case)
        logits, loss = out
        check.equal(tuple(logits.shape), (B, T, 11), unit="MiniGPT.forward", what="logits shape (B, T, V)",
                    case=case)
        check.that(logits.dtype == torch.float32, "MiniGPT.forward", f"logits should be float32, got {logits.dtype}",
                   case=case)
        check.that(loss is None, "MiniGPT.forward", "loss should be None when targets is None", case=case)
        _, loss = model(idx, idx)
        check.that(isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad, "MiniGPT.forward",
                   "with targets, loss should be a scalar (0-d) tensor connected to the graph", case=case)
    too_long = torch.zeros(1, 9, dtype=torch.long)
    check.expect_raises(ValueError, model, too_long, unit="MiniGPT.forward",
                        case=check.describe(idx=too_long, block_size=8), why="T exceeds config.block_size")


@pytest.mark.points(3)
def test_logits_and_loss_match_reference(impl):
    model, record, cfg = O.load_reference_model(impl)
    logits, loss = model(record["idx"], record["targets"])
    case = check.describe(idx=record["idx"], config=cfg)
    check.close(logits, record["logits"], unit="MiniGPT.forward", case=case, kind="model", what="logits")
    check.close(loss.detach().reshape(1), record["loss"], unit="MiniGPT.forward", case=case, kind="loss",
                what="loss (mean cross-entropy over targets ≠ -100)")


@pytest.mark.points(2)
def test_gradients_match_reference(impl):
    model, record, cfg = O.load_reference_model(impl)
    _, loss = model(record["idx"], record["targets"])
    loss.backward()
    case = check.describe(idx=record["idx"], config=cfg)
    grads = dict(model.named_parameters())
    for key, expected in record.items():
        if not key.startswith("grad."):
            continue
        name = key[len("grad."):]
        p = grads.get(name)
        check.that(p is not None and p.grad is not None, "MiniGPT.forward", f"no gradient reaches {name}", case=case)
        check.close(p.grad, expected, unit="MiniGPT.forward", case=case, kind="gradient",
                    what=f"gradient of the loss w.r.t. {name}")


@pytest.mark.points(2)
def test_loss_is_mean_cross_entropy_ignoring_minus_100(impl):
    model = _randomised_model(impl, 3, vocab_size=9)
    idx = tensors.randint((4, 8), 11, high=9)
    # the last case passes idx and targets as non-contiguous (transposed) views
    for seed, ignored, contiguous in ((12, 0, True), (13, 7, True), (15, 5, False)):
        targets = tensors.randint((4, 8), seed, high=9)
        targets.view(-1)[torch.randperm(32, generator=tensors.generator(seed))[:ignored]] = -100
        if not contiguous:
            idx, targets = idx.t().contiguous().t(), targets.t().contiguous().t()
        logits, loss = model(idx, targets)
        flat_logits, flat_t = logits.detach().reshape(-1, 9), targets.reshape(-1)
        expected = F.cross_entropy(flat_logits, flat_t, ignore_index=-100)
        per_token = F.cross_entropy(flat_logits, flat_t, ignore_index=-100, reduction="none")
        check.close(loss.detach(), expected, unit="MiniGPT.forward", kind="loss", what="loss",
                    case=check.describe(idx=idx, targets=targets, ignored_positions=ignored, contiguous=contiguous),
                    mistakes={"loss averaged over ignored positions too": per_token.sum() / per_token.numel(),
                              "loss summed instead of averaged": per_token.sum()})


@pytest.mark.points(2)
def test_causality(impl):
    model = _randomised_model(impl, 5, block_size=10).eval()
    idx = tensors.randint((2, 10), 12, high=11)
    # every cut t = 0 … 8: the tokens after t are redrawn, the logits up to t must not move
    properties.causal(lambda ids: model(ids)[0], idx, unit="MiniGPT.forward", dim=1, kind="model",
                      vocab_size=11, seed=12, case=check.describe(idx=idx))


@pytest.mark.points(1)
def test_batch_rows_are_independent(impl):
    # logits[b, t] depends only on idx[b, :t+1]: a row gives the same logits alone as in a batch
    model = _randomised_model(impl, 8).eval()
    idx = tensors.randint((3, 7), 14, high=11)
    properties.batch_independent(lambda ids: model(ids)[0], idx, unit="MiniGPT.forward", kind="model",
                                 case=check.describe(idx=idx))


@pytest.mark.points(2)
def test_positions_are_used(impl):
    model = _randomised_model(impl, 6).eval()
    idx = torch.full((1, 6), 4, dtype=torch.long)     # one token, repeated
    logits = model(idx)[0]
    spread = (logits - logits[:, :1]).detach().abs().amax(dim=-1)[0, 1:]   # (5,) difference to position 0
    check.that(bool((spread > 1e-3).all()), "MiniGPT.forward",
               "a repeated token gets the same logits at different positions",
               f"max |logits[t] − logits[0]| per position t = 1…5: {[round(float(s), 6) for s in spread]}",
               "known mistake: missing position embeddings (add pos_emb(positions 0 … T−1))",
               case=check.describe(idx=idx))
    model.train()
    _, loss = model(idx, idx)
    loss.backward()
    rows = model.pos_emb.weight.grad.abs().sum(dim=-1)
    check.that(bool((rows[:6] > 0).all()) and bool((rows[6:] == 0).all()), "MiniGPT.forward",
               "a sequence of length 6 should use (and send gradient to) exactly the position rows 0…5",
               f"gradient norm per pos_emb row: {[round(float(r), 4) for r in rows]}", case=check.describe(idx=idx))


@pytest.mark.points(2)
def test_gradients_match_functional_oracle(impl):
    # Fresh weights, float32 as the docstring states: the gradient of the logits w.r.t. every
    # parameter (the tied matrix once) against the functional forward of mini_gpt_oracle.
    fields = dict(vocab_size=5, block_size=4, n_layer=1, n_head=2, d_model=4)
    model = _randomised_model(impl, 7, **fields).eval()
    idx = torch.tensor([[1, 4, 0], [3, 3, 2]])
    params = dict(model.named_parameters())
    names = sorted(params)
    check.grads(lambda *ps: functional_call(model, dict(zip(names, ps)), (idx,))[0],
                lambda *ps: O.functional_forward(dict(zip(names, ps)), fields, idx),
                [params[n].detach() for n in names], names=names, unit="MiniGPT.forward",
                case=check.describe(idx=idx, config=fields))


# ---------------------------------------------------------------- count_parameters

def _count_mistakes(fields: dict, right: int) -> dict:
    V, T, L, C, bias = (fields["vocab_size"], fields["block_size"], fields["n_layer"], fields["d_model"],
                        fields.get("bias", True))
    mistakes = {"tied LM head counted a second time": right + V * C,
                "position embeddings left out": right - T * C,
                "final LayerNorm left out": right - (2 * C if bias else C),
                "blocks counted as 12·C² only (biases and norms left out)": right - L * (13 * C if bias else 2 * C)}
    if not bias:
        mistakes["biases counted although config.bias is False"] = right + L * 11 * C + C
    return mistakes


# count_parameters must not build the model: the layers' constructors are forbidden while it runs.
_LAYER_CONSTRUCTORS = ["torch.nn.Linear.__init__", "torch.nn.Embedding.__init__", "torch.nn.LayerNorm.__init__"]
_NO_MODEL_HINT = "Compute the count from the closed-form formula; do not build the model."


@pytest.mark.points(2)
def test_count_parameters_gpt2_small(impl):
    cfg = impl.GPTConfig(**GPT2_SMALL)
    right = _brute_force_count(**GPT2_SMALL)
    check.that(right == GPT2_SMALL_PARAMETERS, "grader", "the brute-force GPT-2 small count is off (grader bug)")
    got = guard.call_without("count_parameters", _LAYER_CONSTRUCTORS, impl.count_parameters, cfg,
                             hint=_NO_MODEL_HINT)
    check.equal(got, GPT2_SMALL_PARAMETERS, unit="count_parameters", case=check.describe(**GPT2_SMALL),
                mistakes=_count_mistakes(GPT2_SMALL, right))


@pytest.mark.points(2)
@examples(15)
@given(vocab_size=st.integers(1, 300), block_size=st.integers(1, 64), n_layer=st.integers(1, 6),
       n_head=st.sampled_from([1, 2, 4]), head_dim=st.integers(1, 16), bias=st.booleans())
def test_count_parameters_matches_brute_force(impl, vocab_size, block_size, n_layer, n_head, head_dim, bias):
    fields = dict(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                  d_model=n_head * head_dim, bias=bias)
    right = _brute_force_count(**fields)
    cfg = impl.GPTConfig(**fields)
    got = guard.call_without("count_parameters", _LAYER_CONSTRUCTORS, impl.count_parameters, cfg,
                             hint=_NO_MODEL_HINT)
    check.that(isinstance(got, int) and not isinstance(got, bool), "count_parameters",
               f"should return a Python int, got {type(got).__name__}", case=check.describe(**fields))
    check.equal(got, right, unit="count_parameters", case=check.describe(**fields),
                mistakes=_count_mistakes(fields, right))
