"""Graders for 05_mini_gpt: get_batch, generate and train — the routines around the model.

Evidence per unit:
  get_batch  properties on fresh data (windows are contiguous, targets are the inputs
             shifted by one), a chi-square test of the start positions (stated rate),
             reproducibility through the generator, or through the global RNG without one;
  generate   small stand-in models written here, whose next token follows a known rule
             (so the expected continuation is computed without a network), that record
             every call (context length, autograd, train/eval mode); a chi-square test of
             sampling at two temperatures (stated rates); golden greedy output of the
             reference model;
  train      the documented training loop run here on a copy of a small model, step for
             step (losses and final weights; with and without a generator, with the
             default lr); overfitting one batch with the student's MiniGPT within a stated
             number of steps.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import mini_gpt_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds


# ---------------------------------------------------------------- get_batch

@pytest.mark.points(2)
@examples(25)
@given(n=st.integers(2, 60), batch_size=st.integers(1, 6), block_size=st.integers(1, 12), seed=seeds())
def test_get_batch_windows_and_shift(impl, n, batch_size, block_size, seed):
    n = max(n, block_size + 1)
    data = torch.randperm(n, generator=tensors.generator(seed)) + 100   # distinct values: a value tells its position
    position = {int(v): i for i, v in enumerate(data)}
    case = check.describe(data=data, batch_size=batch_size, block_size=block_size)
    x, y = impl.get_batch(data, batch_size, block_size, tensors.generator(seed + 1))
    for name, t in (("x", x), ("y", y)):
        check.that(isinstance(t, torch.Tensor) and t.dtype == torch.long and tuple(t.shape) == (batch_size, block_size),
                   "get_batch", f"{name} should be an int64 tensor of shape (batch_size, block_size) = "
                   f"{(batch_size, block_size)}", f"got {getattr(t, 'dtype', type(t))} {tuple(getattr(t, 'shape', ()))}",
                   case=case)
    for b in range(batch_size):
        start = position.get(int(x[b, 0]))
        check.that(start is not None and start + block_size + 1 <= n, "get_batch",
                   f"row {b} of x does not start at a valid window start 0 … len(data) − block_size − 1",
                   case=case)
        check.equal(x[b].tolist(), data[start:start + block_size].tolist(), unit="get_batch", case=case,
                    what=f"x[{b}] (should be the contiguous window data[s : s + block_size])")
        check.equal(y[b].tolist(), data[start + 1:start + block_size + 1].tolist(), unit="get_batch", case=case,
                    what=f"y[{b}] (should be the window shifted by one, data[s + 1 : s + block_size + 1])",
                    mistakes={"targets not shifted (y equals x)": x[b].tolist()})


@pytest.mark.points(2)
def test_get_batch_start_positions_are_uniform(impl):
    # 12 000 starts over the 9 valid positions of a 13-token stream with block_size 4. A
    # correct implementation fails this chi-square test with probability ≤ 1e-6.
    n, block_size, starts_valid = 13, 4, 9
    data = torch.arange(n)
    g = tensors.generator(2024)
    counts = torch.zeros(n, dtype=torch.long)
    for _ in range(6):
        x, _ = impl.get_batch(data, 2000, block_size, g)
        counts += torch.bincount(x[:, 0], minlength=n)[:n]
    case = check.describe(data=data, block_size=block_size, draws=12000)
    if counts[starts_valid - 1] == 0 and counts[:starts_valid - 1].min() > 0:
        check.fail("get_batch", "the last valid start position, len(data) − block_size − 1, is never drawn",
                   f"counts per start position: {counts.tolist()}",
                   case=case, mistake="off by one in the range of start positions (randint bound one too small)")
    probs = [1 / starts_valid] * starts_valid + [0.0] * (n - starts_valid)
    stats.chi_square(counts.tolist(), probs, unit="get_batch", what="start positions", rate=1e-6, case=case)


@pytest.mark.points(1)
def test_get_batch_randomness_comes_from_generator(impl):
    data = torch.arange(500)
    torch.manual_seed(0)
    a = impl.get_batch(data, 8, 6, tensors.generator(42))
    torch.manual_seed(1)                                          # the global RNG must not matter
    b = impl.get_batch(data, 8, 6, tensors.generator(42))
    check.that(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "get_batch",
               "two calls with identically seeded generators gave different batches",
               "draw the start positions with `generator=generator`, not from the global RNG")
    c = impl.get_batch(data, 8, 6, tensors.generator(43))
    check.that(not torch.equal(a[0], c[0]), "get_batch", "generators with different seeds gave the same batch")


@pytest.mark.points(1)
def test_get_batch_without_generator_uses_global_rng(impl):
    # generator=None (or left out) means the global RNG: seeding it makes the batch reproducible
    data = torch.arange(500)
    torch.manual_seed(7)
    a = impl.get_batch(data, 8, 6)
    torch.manual_seed(7)
    b = impl.get_batch(data, 8, 6, None)
    check.that(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "get_batch",
               "without a generator, two calls after the same torch.manual_seed gave different batches",
               "when generator is None, draw from the global RNG (torch.randint(..., generator=None))",
               case=check.describe(data=data, batch_size=8, block_size=6))
    check.equal(b[1][:, :-1].tolist(), b[0][:, 1:].tolist(), unit="get_batch",
                what="y[:, :-1] vs x[:, 1:] without a generator (targets are the inputs shifted by one)",
                case=check.describe(data=data, batch_size=8, block_size=6))
    torch.manual_seed(8)
    c = impl.get_batch(data, 8, 6)
    check.that(not torch.equal(a[0], c[0]), "get_batch",
               "without a generator, different global seeds gave the same batch (is the randomness fixed?)")


@pytest.mark.points(1)
def test_get_batch_edge_cases(impl):
    data = torch.tensor([5, 3, 9, 1])
    x, y = impl.get_batch(data, 3, 3, tensors.generator(0))   # exactly one window fits
    check.equal(x.tolist(), [[5, 3, 9]] * 3, unit="get_batch", what="x when len(data) == block_size + 1",
                case=check.describe(data=data, block_size=3))
    check.equal(y.tolist(), [[3, 9, 1]] * 3, unit="get_batch", what="y when len(data) == block_size + 1",
                case=check.describe(data=data, block_size=3))
    strided = torch.arange(100, 160)[::3]                     # a non-contiguous (20,) view: 100, 103, …, 157
    x, y = impl.get_batch(strided, 4, 5, tensors.generator(1))
    case = check.describe(data=strided, contiguous=False, batch_size=4, block_size=5)
    starts = (x[:, :1] - 100) // 3
    check.equal(x.tolist(), (100 + 3 * (starts + torch.arange(5))).tolist(), unit="get_batch", case=case,
                what="x for a non-contiguous data tensor (rows must be windows data[s : s + block_size])")
    check.equal(y.tolist(), (x + 3).tolist(), unit="get_batch", case=case,
                what="y for a non-contiguous data tensor (the windows shifted by one)")
    for bad, block_size, why in ((torch.arange(4), 4, "data holds fewer than block_size + 1 tokens"),
                                 (torch.arange(12).view(3, 4), 2, "data is not 1-D"),
                                 (torch.tensor(7), 1, "data is not 1-D (a 0-d tensor)")):
        check.expect_raises(ValueError, impl.get_batch, bad, 2, block_size, tensors.generator(0), unit="get_batch",
                            case=check.describe(data=bad, block_size=block_size), why=why)


# ---------------------------------------------------------------- generate

class _Recorder(nn.Module):
    """A stand-in language model: records (context length, grad enabled, training) per call
    and fails with a clear message when given more than block_size tokens."""

    def __init__(self, vocab_size: int, block_size: int):
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size, block_size=block_size)
        self.anchor = nn.Parameter(torch.zeros(()))               # so outputs can carry autograd history
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, idx: torch.Tensor, targets=None):
        T = idx.shape[1]
        self.calls.append((T, torch.is_grad_enabled(), self.training))
        if T > self.config.block_size:
            check.fail("generate", f"the model was called with a context of {T} tokens, but "
                       f"model.config.block_size is {self.config.block_size}",
                       "feed it only the last block_size tokens: idx[:, -block_size:]",
                       mistake="context not cropped to block_size")
        return self.logits(idx) + self.anchor, None


class _RuleLM(_Recorder):
    """The logits at position t single out (w[0] + 2·w[t] + t + 1) mod V for the window w it
    was given: causal, and sensitive to which window and which position generate uses."""

    def logits(self, idx):
        V = self.config.vocab_size
        nxt = (idx[:, :1] + 2 * idx + torch.arange(1, idx.shape[1] + 1)) % V      # (B, T)
        return 10.0 * F.one_hot(nxt, V).float()                                    # (B, T, V)


class _FixedLM(_Recorder):
    """The same logits at every position, whatever the input."""

    def __init__(self, logits: torch.Tensor, block_size: int = 4):
        super().__init__(logits.numel(), block_size)
        self.fixed = logits

    def logits(self, idx):
        return self.fixed.expand(idx.shape[0], idx.shape[1], -1).clone()


def _rule_continuation(prompt: list[int], n: int, V: int, window) -> list[int]:
    seq = list(prompt)
    for _ in range(n):
        w = window(seq)
        seq.append((w[0] + 2 * w[-1] + len(w)) % V)
    return seq


@pytest.mark.points(3)
def test_generate_greedy_uses_last_position_of_cropped_context(impl):
    V, K = 17, 5
    # context grows past block_size / starts beyond it / batch 1 from a one-token prompt /
    # a non-contiguous (transposed) prompt
    for seed, (B, T0, new) in enumerate(((3, 2, 9), (3, 8, 6), (1, 1, 7), (2, 6, 3))):
        model = _RuleLM(V, K)
        prompt = tensors.randint((B, T0), 3 + seed, high=V)
        if seed == 3:
            prompt = prompt.t().contiguous().t()
        out = impl.generate(model, prompt, new, temperature=0.0)
        case = check.describe(prompt=prompt, contiguous=prompt.is_contiguous(), max_new_tokens=new, block_size=K)
        rows = prompt.tolist()
        expected = torch.tensor([_rule_continuation(r, new, V, lambda s: s[-K:]) for r in rows])
        wrong = {
            "uses the logits of the first position instead of the last":
                [_rule_continuation(r, new, V, lambda s: s[-K:][:1]) for r in rows],
            "context cropped to the first block_size tokens instead of the last":
                [_rule_continuation(r, new, V, lambda s: s[:K]) for r in rows],
            "context cropped one token too short":
                [_rule_continuation(r, new, V, lambda s: s[-(K - 1):]) for r in rows],
        }
        check.close(out, expected, unit="generate", kind="exact", what="greedy continuation", case=case,
                    mistakes={k: torch.tensor(v) for k, v in wrong.items()})
        lengths = [c[0] for c in model.calls]
        check.equal(lengths, [min(T0 + i, K) for i in range(new)], unit="generate",
                    what="context length of each model call (one call per new token)", case=case)


@pytest.mark.points(2)
def test_generate_greedy_matches_reference_model(impl):
    model, _, cfg = O.load_reference_model(impl)
    greedy = reference.load(O.TOPIC, "greedy")
    out = impl.generate(model, greedy["prompt"], max_new_tokens=6, temperature=0.0)
    check.close(out, greedy["out"], unit="generate", kind="exact",
                what="greedy continuation by the reference weights",
                case=check.describe(prompt=greedy["prompt"], max_new_tokens=6, block_size=cfg["block_size"]))


@pytest.mark.points(1)
def test_generate_greedy_ties_go_to_lowest_id(impl):
    logits = torch.tensor([0.5, 2.0, -1.0, 2.0, 2.0])
    out = impl.generate(_FixedLM(logits), torch.zeros(2, 1, dtype=torch.long), 3, temperature=0.0)
    check.equal(out[:, 1:].tolist(), [[1, 1, 1]] * 2, unit="generate",
                what="greedy tokens when ids 1, 3 and 4 share the largest logit",
                case=check.describe(logits=logits))


@pytest.mark.points(3)
def test_generate_samples_from_tempered_softmax(impl):
    # 8 000 draws per temperature, each checked by chi-square at rate 1e-6: a correct
    # implementation fails this test with probability ≤ 2e-6.
    logits = torch.tensor([1.0, 0.5, 0.0, -0.25, -0.5, -1.0])
    for temperature, seed in ((0.5, 10), (2.0, 11)):
        model = _FixedLM(logits)
        out = impl.generate(model, torch.zeros(2000, 1, dtype=torch.long), 4, temperature=temperature,
                            generator=tensors.generator(seed))
        counts = torch.bincount(out[:, 1:].reshape(-1), minlength=6).tolist()
        case = check.describe(logits=logits, temperature=temperature, draws=8000)
        wrong = {"temperature multiplied instead of divided": torch.softmax(logits * temperature, -1),
                 "temperature ignored (sampled from softmax(logits))": torch.softmax(logits, -1),
                 "greedy instead of sampling": F.one_hot(logits.argmax(), 6).double()}
        stats.chi_square(counts, torch.softmax(logits / temperature, -1).tolist(), unit="generate",
                         what=f"sampled tokens at temperature {temperature}", rate=1e-6, case=case, mistakes=wrong)


@pytest.mark.points(1)
def test_generate_sampling_uses_generator(impl):
    logits = torch.tensor([0.3, 0.1, 0.0, -0.2])
    prompt = torch.zeros(50, 1, dtype=torch.long)
    torch.manual_seed(0)
    a = impl.generate(_FixedLM(logits), prompt, 5, temperature=1.0, generator=tensors.generator(9))
    torch.manual_seed(1)
    b = impl.generate(_FixedLM(logits), prompt, 5, temperature=1.0, generator=tensors.generator(9))
    check.that(torch.equal(a, b), "generate", "identically seeded generators gave different samples",
               "draw every sample with `generator=generator`")
    c = impl.generate(_FixedLM(logits), prompt, 5, temperature=1.0, generator=tensors.generator(10))
    check.that(not torch.equal(a, c), "generate", "generators with different seeds gave the same 250 samples")


@pytest.mark.points(2)
def test_generate_no_grad_eval_mode_and_contract(impl):
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    for start_training in (True, False):
        model = _RuleLM(7, 4)
        model.train(start_training)
        out = impl.generate(model, prompt, 3, temperature=0.0)
        case = check.describe(prompt=prompt, model_was_training=start_training)
        check.equal(prompt.tolist(), [[1, 2, 3], [4, 5, 6]], unit="generate",
                    what="the prompt tensor after the call (idx must not be modified in place)", case=case)
        check.that(all(not grad for _, grad, _ in model.calls), "generate",
                   "the model ran with autograd enabled; wrap the loop in torch.no_grad()", case=case)
        check.that(all(not training for _, _, training in model.calls), "generate",
                   "the model ran in train mode; call model.eval() so dropout is off", case=case)
        check.that(model.training == start_training, "generate",
                   "the model's train/eval mode was not restored on return", case=case)
        check.that(isinstance(out, torch.Tensor) and out.dtype == torch.long and tuple(out.shape) == (2, 6),
                   "generate", "should return an int64 tensor of shape (B, T0 + max_new_tokens) = (2, 6)",
                   f"got {getattr(out, 'dtype', type(out))} {tuple(getattr(out, 'shape', ()))}", case=case)
        check.equal(out[:, :3].tolist(), prompt.tolist(), unit="generate", what="the prompt part of the output",
                    case=case)
    same = impl.generate(_RuleLM(7, 4), prompt, 0, temperature=1.0)
    check.equal(same.tolist(), prompt.tolist(), unit="generate", what="output for max_new_tokens=0")
    check.expect_raises(ValueError, impl.generate, _RuleLM(7, 4), prompt, 2, temperature=-1.0, unit="generate",
                        case=check.describe(prompt=prompt, max_new_tokens=2, temperature=-1.0),
                        why="temperature < 0")
    check.expect_raises(ValueError, impl.generate, _RuleLM(7, 4), prompt, -1, temperature=1.0, unit="generate",
                        case=check.describe(prompt=prompt, max_new_tokens=-1, temperature=1.0),
                        why="max_new_tokens < 0")


# ---------------------------------------------------------------- train

class _Bigram(nn.Module):
    """A bigram model (logits = table[idx] + bias) that records its train/eval mode per call."""

    def __init__(self, vocab_size: int, seed: int):
        super().__init__()
        self.table = nn.Parameter(tensors.randn((vocab_size, vocab_size), seed, torch.float32, scale=0.5))
        self.bias = nn.Parameter(tensors.randn((vocab_size,), seed + 1, torch.float32, scale=0.1))
        self.modes: list[bool] = []

    def forward(self, idx, targets=None):
        self.modes.append(self.training)
        logits = self.table[idx] + self.bias                                    # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def _documented_loop(impl, model, data, steps, batch_size, block_size, lr, seed,
                     clear_grads=True, one_optimizer=True) -> list[float]:
    """The loop train()'s docstring specifies (the flags produce known mistakes); seed None
    draws the batches from the global RNG, as train does without a generator."""
    g = None if seed is None else tensors.generator(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        if not one_optimizer:
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        x, y = impl.get_batch(data, batch_size, block_size, g)
        _, loss = model(x, y)
        if clear_grads:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


@pytest.mark.points(3)
def test_train_follows_documented_loop(impl):
    V, steps, batch_size, block_size, lr, seed = 7, 8, 4, 5, 0.05, 21
    data = tensors.randint((200,), 1, high=V)
    model = _Bigram(V, seed=2)
    fresh = copy.deepcopy(model)
    case = check.describe(steps=steps, batch_size=batch_size, block_size=block_size, lr=lr)

    def run(**flags):
        return torch.tensor(_documented_loop(impl, copy.deepcopy(fresh), data, steps, batch_size, block_size,
                                             lr, seed, **flags))

    history = impl.train(model, data, steps, batch_size, block_size, lr=lr, generator=tensors.generator(seed))
    oracle = copy.deepcopy(fresh)
    expected = torch.tensor(_documented_loop(impl, oracle, data, steps, batch_size, block_size, lr, seed))
    check.that(isinstance(history, list) and len(history) == steps, "train",
               f"should return a list of {steps} losses (one per step)",
               f"got {type(history).__name__} of length {len(history) if hasattr(history, '__len__') else '?'}",
               case=case)
    check.that(all(type(v) is float for v in history), "train",
               "the losses should be Python floats (use loss.item()), not tensors", case=case)
    check.close(torch.tensor(history), expected, unit="train", kind="loss", what="loss history", case=case,
                mistakes={"gradients never cleared (zero_grad missing)": lambda: run(clear_grads=False),
                          "a new optimizer every step (AdamW's moments are reset)": lambda: run(one_optimizer=False)})
    for name in ("table", "bias"):
        check.close(getattr(model, name).detach(), getattr(oracle, name).detach(), unit="train", kind="model",
                    what=f"parameter {name} after training", case=case)


@pytest.mark.points(1)
def test_train_defaults_global_rng_and_lr(impl):
    # Without a generator the batches come from the global RNG (get_batch's rule), and lr
    # defaults to 1e-3: the documented loop from the same global seed gives the same run.
    V, steps, batch_size, block_size = 6, 5, 3, 4
    data = tensors.randint((120,), 5, high=V)
    model = _Bigram(V, seed=4)
    oracle = copy.deepcopy(model)
    case = check.describe(steps=steps, batch_size=batch_size, block_size=block_size, generator=None)
    torch.manual_seed(31)
    history = impl.train(model, data, steps, batch_size, block_size)
    torch.manual_seed(31)
    expected = torch.tensor(_documented_loop(impl, oracle, data, steps, batch_size, block_size, 1e-3, None))
    check.close(torch.tensor(history), expected, unit="train", kind="loss", case=case,
                what="loss history with the defaults (generator None: global RNG; lr 1e-3)")
    for name in ("table", "bias"):
        check.close(getattr(model, name).detach(), getattr(oracle, name).detach(), unit="train", kind="model",
                    what=f"parameter {name} after training with the default lr 1e-3", case=case)
    before = copy.deepcopy(model.state_dict())
    empty = impl.train(model, data, 0, batch_size, block_size, generator=tensors.generator(0))
    check.equal(empty, [], unit="train", what="history of a run of 0 steps", case=check.describe(steps=0))
    check.that(all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "train",
               "a run of 0 steps changed the parameters", case=check.describe(steps=0))


@pytest.mark.points(1)
def test_train_puts_model_in_train_mode(impl):
    model = _Bigram(5, seed=3).eval()
    data = tensors.randint((50,), 0, high=5)
    impl.train(model, data, 3, 2, 4, lr=1e-2, generator=tensors.generator(0))
    check.equal(model.modes, [True, True, True], unit="train",
                what="model.training during each step's forward (call model.train() first)")


@pytest.mark.points(3)
def test_overfits_one_batch(impl):
    # Data of block_size + 1 tokens holds exactly one window, so every batch is the same: a
    # correct model and training loop memorise it. Measured: the reference reaches about
    # 0.02 after 40 steps at lr 1e-2; the threshold 0.1 leaves a factor of five.
    torch.manual_seed(0)
    cfg = impl.GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, d_model=32)
    model = impl.MiniGPT(cfg)
    data = tensors.randint((9,), 4, high=16)
    history = impl.train(model, data, 40, 2, 8, lr=1e-2, generator=tensors.generator(0))
    case = check.describe(config=cfg, data=data, steps=40, lr=1e-2)
    check.that(len(history) == 40 and history[-1] < 0.1, "train",
               f"a seeded run should memorise a single batch: final loss {history[-1] if history else None!r}, "
               f"expected < 0.1 after 40 steps", f"first loss {history[0] if history else None!r}", case=case)
