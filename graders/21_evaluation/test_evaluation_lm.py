"""Graders for 21_evaluation, language-model units: token_nlls, perplexity, bits_per_byte,
continuation_logprob, multiple_choice_accuracy.

token_nlls: stride = window against F.cross_entropy on non-overlapping chunks (so perplexity
equals exp(mean CE)); sliding windows against a one-target-at-a-time oracle on hypothesis
inputs, with the double-counting mistake named; the exact model calls the rule prescribes;
golden NLLs of the course's trained tiny_llama; gradients with respect to the parameters;
edge cases and every Raises clause.
perplexity: a uniform model (perplexity = V by hand), the oracle, the return type.
bits_per_byte: hand values with multi-byte characters, gradients, Raises.
continuation_logprob / multiple_choice_accuracy: a bigram model whose log-likelihoods are
computed by hand, a per-token oracle with gradients, length normalisation, ties, Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import evaluation_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

_MODELS: dict[int, torch.nn.Module] = {}


def _model(seed: int = 0) -> torch.nn.Module:
    if seed not in _MODELS:
        _MODELS[seed] = O.tiny_llama(seed)
    return _MODELS[seed]


def _ids(n: int, seed: int) -> torch.Tensor:
    return tensors.randint((n,), seed, high=O.CONFIG["vocab_size"])


# ---------------------------------------------------------------- token_nlls and perplexity

@pytest.mark.points(2)
def test_token_nlls_stride_equals_window_is_mean_cross_entropy(impl):
    # With stride = window and N − 1 a multiple of the window, the windows are the
    # non-overlapping chunks of the usual evaluation loop: NLLs = F.cross_entropy per token.
    model, window = _model(), 8
    ids = _ids(4 * window + 1, 1)                                        # (33,)
    x, y = ids[:-1].view(4, window), ids[1:].view(4, window)
    expected = F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten(), reduction="none")      # (32,)
    case = check.describe(ids=ids, window=window, stride=window)
    out = impl.token_nlls(model, ids, window, window)
    check.close(out, expected, unit="token_nlls", case=case, kind="model",
                what="per-token NLL with stride = window (compared with F.cross_entropy on the 4 chunks)")
    ppl = impl.perplexity(model, ids, window, window)
    check.that(type(ppl) is float, "perplexity", f"should return a Python float, got {type(ppl).__name__}", case=case)
    check.close(torch.tensor(ppl, dtype=torch.float64), expected.mean().exp().detach(), unit="perplexity",
                case=case, kind="model", what="perplexity with stride = window (exp of the mean cross-entropy)")


@pytest.mark.points(3)
@examples(12)
@given(seed=seeds(), n=st.integers(2, 40), window=st.integers(1, 12), stride_frac=st.floats(0.0, 1.0))
def test_token_nlls_sliding_matches_one_target_oracle(impl, seed, n, window, stride_frac):
    model = _model(seed % 3)
    ids = _ids(n, seed)
    stride = max(1, min(window, round(stride_frac * window)))
    case = check.describe(ids=ids, window=window, stride=stride)
    with torch.no_grad():
        out = impl.token_nlls(model, ids, window, stride)
        expected = O.window_nll_oracle(model, ids, window, stride)
        check.close(out, expected, unit="token_nlls", case=case, kind="model",
                    what="per-token NLL (each target scored once, by the window the docstring assigns it)",
                    mistakes={"overlapping windows counting tokens twice (every row of every window scored)":
                              lambda: O.overlapping_nlls(model, ids, window, stride)})
        ppl = impl.perplexity(model, ids, window, stride)
    check.close(torch.tensor(ppl, dtype=torch.float64), expected.mean().exp(), unit="perplexity", case=case,
                kind="model", what="perplexity = exp(mean NLL) over the N − 1 targets")


@pytest.mark.points(1)
def test_token_nlls_model_calls_follow_the_window_rule(impl):
    # The docstring fixes every call: ends window, window + stride, … (capped at N − 1), each
    # reading the `window` tokens before its end.
    for n, window, stride in ((30, 10, 4), (23, 6, 6), (9, 12, 3), (17, 5, 1), (2, 1, 1)):
        ids = _ids(n, n)
        rec = O.Recorder(_model())
        with torch.no_grad():
            impl.token_nlls(rec, ids, window, stride)
        expected = O.windows(n, window, stride)
        got = [tuple(c.shape) for c in rec.calls]
        case = check.describe(N=n, window=window, stride=stride)
        check.equal(got, [(1, e - s) for s, e in expected], unit="token_nlls", case=case,
                    what="the shapes of the model calls (one (1, e − s) call per window)",
                    mistakes={"windows that start at 0 (the context is never truncated)":
                              [(1, e) for _, e in expected]})
        check.that(all(torch.equal(c[0], ids[s:e]) for c, (s, e) in zip(rec.calls, expected)), "token_nlls",
                   "a model call read other tokens than ids[s_j:e_j], s_j = max(0, e_j − window)", case=case)


@pytest.mark.points(1)
def test_token_nlls_trained_model_reference(impl):
    # Golden NLLs of the course's trained tiny_llama on held-out text, four window rules.
    from llmlab.lib.llama import load_tiny_llama

    model, _, _ = load_tiny_llama()
    ref = reference.load(O.TOPIC, "token_nlls")
    for window, stride in ((30, 30), (30, 7), (64, 16), (12, 1)):
        with torch.no_grad():
            out = impl.token_nlls(model, ref["ids"], window, stride)
        check.close(out, ref[f"nll_{window}_{stride}"], unit="token_nlls", kind="model",
                    case=check.describe(ids=ref["ids"], window=window, stride=stride, model="tiny_llama"),
                    what="NLLs of the trained tiny_llama (float32)")


@pytest.mark.points(2)
def test_token_nlls_gradients_reach_the_parameters(impl):
    model = _model(1)
    ids = _ids(21, 5)
    weights = tensors.randn((20,), 6)                                    # a weighted sum: every NLL matters
    grads = []
    for fn in (impl.token_nlls, O.window_nll_oracle):
        model.zero_grad(set_to_none=True)
        out = fn(model, ids, 8, 3)
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            check.fail("token_nlls", "the NLLs are not connected to the model's parameters in the autograd graph",
                       "do not call .item(), .detach() or torch.no_grad inside token_nlls",
                       case=check.describe(ids=ids, window=8, stride=3))
        (out * weights).sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    model.zero_grad(set_to_none=True)
    for name, expected in grads[1].items():
        check.that(name in grads[0], "token_nlls", f"no gradient reaches the parameter {name}")
        check.close(grads[0][name], expected, unit="token_nlls", kind="gradient", what=f"gradient w.r.t. {name}",
                    case=check.describe(ids=ids, window=8, stride=3, dtype="float64"))


@pytest.mark.points(1)
def test_token_nlls_edge_cases_and_raises(impl):
    model = _model()
    for n, window, stride in ((2, 1, 1), (2, 5, 5), (7, 1, 1), (7, 6, 1), (6, 40, 40)):
        ids = _ids(n, 10 + n)
        case = check.describe(ids=ids, window=window, stride=stride)
        with torch.no_grad():
            out = impl.token_nlls(model, ids, window, stride)
            check.close(out, O.window_nll_oracle(model, ids, window, stride), unit="token_nlls", case=case,
                        kind="model", what="per-token NLL at an edge (N = 2, window 1, window ≥ N)")
    # a uniform model: every NLL is log V, so the perplexity is V exactly (by hand)
    V = 7
    uniform = O.TableLM(torch.zeros(V, V, dtype=torch.float64))
    ids = tensors.randint((15,), 3, high=V)
    ppl = impl.perplexity(uniform, ids, 4, 2)
    check.close(torch.tensor(ppl, dtype=torch.float64), torch.tensor(float(V), dtype=torch.float64),
                unit="perplexity", kind="loss", case=check.describe(ids=ids, model="uniform over V = 7"),
                what="perplexity of a uniform model (by hand: exp(log 7) = 7)")
    ids = _ids(10, 0)
    table_model = O.TableLM(tensors.randn((11, 11), 4))                 # accepts idx of any shape: only the unit raises
    bad = ((ids[None], 4, 2, "ids must be 1-D"), (ids.view(2, 5), 4, 2, "ids must be 1-D, not (2, 5)"),
           (ids[:1], 4, 2, "N = 1: no target"),
           (ids, 0, 1, "window < 1"), (ids, 4, 0, "stride < 1"), (ids, 4, 5, "stride > window"))
    for x, window, stride, why in bad:
        for fn, unit in ((impl.token_nlls, "token_nlls"), (impl.perplexity, "perplexity")):
            check.expect_raises(ValueError, fn, table_model, x, window, stride, unit=unit,
                                case=check.describe(ids=x, window=window, stride=stride), why=why)


# ---------------------------------------------------------------- bits_per_byte

@pytest.mark.points(1)
def test_bits_per_byte_by_hand_gradients_and_raises(impl):
    text = "héllo 🙂"                                                   # 7 characters, 11 UTF-8 bytes
    nlls = torch.full((7,), math.log(2), dtype=torch.float64)            # 1 bit per character
    case = check.describe(nlls=nlls, text=text)
    check.close(impl.bits_per_byte(nlls, text), torch.tensor(7 / 11, dtype=torch.float64), unit="bits_per_byte",
                case=case, kind="reduction", what="7 bits over 11 UTF-8 bytes (é is 2 bytes, 🙂 is 4)",
                mistakes={"characters counted instead of UTF-8 bytes": torch.tensor(1.0, dtype=torch.float64),
                          "nats, not bits (no division by ln 2)": torch.tensor(7 * math.log(2) / 11,
                                                                              dtype=torch.float64)})
    nlls = tensors.rand((5,), 1, low=0.1, high=3.0)
    for dtype in (torch.float32, torch.float64):
        x = nlls.to(dtype)
        check.close(impl.bits_per_byte(x, "abcdefgh"), x.sum() / (8 * math.log(2)), unit="bits_per_byte",
                    kind="reduction", case=check.describe(nlls=x, text="abcdefgh"),
                    what="bits per byte (5 tokens over 8 bytes, in the nlls' dtype)",
                    mistakes={"mean NLL per token instead of the total over the bytes": x.mean() / math.log(2)})
    check.grads(lambda x: impl.bits_per_byte(x, "añb"), lambda x: x.sum() / (4 * math.log(2)), [nlls],
                unit="bits_per_byte", names=["nlls"], case=check.describe(nlls=nlls, text="añb"))
    check.close(impl.bits_per_byte(torch.zeros(0, dtype=torch.float64), "a"), torch.tensor(0.0, dtype=torch.float64),
                unit="bits_per_byte", kind="exact", case="nlls empty (M = 0), text 'a'", what="no tokens, no bits")
    for x, t, why in ((nlls, "", "empty text"), (nlls[None], "abcde", "nlls must be 1-D")):
        check.expect_raises(ValueError, impl.bits_per_byte, x, t, unit="bits_per_byte",
                            case=check.describe(nlls=x, text=t), why=why)


# ---------------------------------------------------------------- continuation_logprob

def _bigram(seed: int, V: int = 5) -> O.TableLM:
    return O.TableLM(tensors.randn((V, V), seed, scale=1.5))


def _bigram_logprob(table: torch.Tensor, context: list[int], continuation: list[int]) -> float:
    """Σ_i log softmax(table[previous token])[token i]: the bigram's log-likelihood by hand."""
    prev, total = context[-1], 0.0
    for tok in continuation:
        row = [math.exp(v) for v in table[prev].tolist()]
        total += math.log(row[tok] / sum(row))
        prev = tok
    return total


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), c_len=st.integers(1, 6), l_len=st.integers(1, 5))
def test_continuation_logprob_matches_oracles_and_gradients(impl, seed, c_len, l_len):
    context, continuation = _ids(c_len, seed), _ids(l_len, seed + 1)
    case = check.describe(context=context, continuation=continuation)
    model = _model(seed % 2)

    def oracle(*_):                                                      # one call per continuation token
        total = 0.0
        for i in range(l_len):
            seq = torch.cat([context, continuation[:i]])
            total = total + F.log_softmax(model(seq[None])[0][0, -1], dim=-1)[continuation[i]]
        return total

    def shifted(*_):                                                     # known mistake: one row too late
        seq = torch.cat([context, continuation])
        logp = F.log_softmax(model(seq[None])[0][0], dim=-1)
        return logp[c_len:].gather(1, continuation[1:, None]).sum()

    model.zero_grad(set_to_none=True)
    out = impl.continuation_logprob(model, context, continuation)
    with torch.no_grad():
        expected = oracle()
    check.close(out, expected, unit="continuation_logprob", case=case, kind="model",
                what="log P(continuation | context)", mistakes={"the rows one position late": shifted})
    check.that(out.requires_grad, "continuation_logprob",
               "the result is not connected to the model's parameters (no .item() or torch.no_grad inside)", case=case)
    out.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    oracle().backward()
    for name, p in model.named_parameters():
        check.close(got[name], p.grad, unit="continuation_logprob", kind="gradient", case=case,
                    what=f"gradient w.r.t. {name}")
    model.zero_grad(set_to_none=True)
    table = tensors.randn((5, 5), seed)
    ctx, cont = [int(t) % 5 for t in context], [int(t) % 5 for t in continuation]
    got = impl.continuation_logprob(O.TableLM(table), torch.tensor(ctx), torch.tensor(cont))
    check.close(got.detach(), torch.tensor(_bigram_logprob(table, ctx, cont), dtype=torch.float64),
                unit="continuation_logprob", kind="reduction", case=check.describe(context=ctx, continuation=cont,
                                                                                   model="bigram table"),
                what="log-likelihood under a bigram model (computed token by token)")


@pytest.mark.points(1)
def test_continuation_logprob_raises(impl):
    model = _model()
    ok = torch.tensor([1, 2])
    for ctx, cont, why in ((torch.zeros(0, dtype=torch.long), ok, "empty context"),
                           (ok, torch.zeros(0, dtype=torch.long), "empty continuation"),
                           (ok[None], ok, "context must be 1-D"), (ok, ok[None], "continuation must be 1-D")):
        check.expect_raises(ValueError, impl.continuation_logprob, model, ctx, cont, unit="continuation_logprob",
                            case=check.describe(context=ctx, continuation=cont), why=why)


# ---------------------------------------------------------------- multiple_choice_accuracy

@pytest.mark.points(2)
def test_multiple_choice_by_hand_normalisation_and_ties(impl):
    # Bigram over 3 tokens. From token 0: p(1) = 0.5, p(2) = 0.5 (zeros elsewhere are -inf-ish);
    # from 1: p(1) = 0.9; from 2: p(2) = 0.1.
    big = 30.0
    table = torch.full((3, 3), -big, dtype=torch.float64)
    table[0, 1] = table[0, 2] = 0.0
    table[1] = torch.tensor([math.log(0.1), math.log(0.9), -big], dtype=torch.float64)
    table[2] = torch.tensor([math.log(0.9), -big, math.log(0.1)], dtype=torch.float64)
    model = O.TableLM(table)
    ctx = torch.tensor([0])
    # choice A = [2]: log 0.5 = −0.693 (mean −0.693); choice B = [1, 1, 1]: log 0.5 + 2 log 0.9 = −0.904
    # (mean −0.301). Unnormalised A wins, per token B wins.
    question = (ctx, [torch.tensor([2]), torch.tensor([1, 1, 1])], 1)
    case = check.describe(context=[0], choices=[[2], [1, 1, 1]], answer=1)
    acc, preds = impl.multiple_choice_accuracy(model, [question])
    check.equal((acc, preds), (0.0, [0]), unit="multiple_choice_accuracy", case=case,
                what="(accuracy, predictions) by total log-likelihood (by hand: −0.693 vs −0.904)",
                mistakes={"scores divided by the length although length_normalize=False": (1.0, [1])})
    acc, preds = impl.multiple_choice_accuracy(model, [question], length_normalize=True)
    check.equal((acc, preds), (1.0, [1]), unit="multiple_choice_accuracy", case=case + "; length_normalize=True",
                what="(accuracy, predictions) by mean log-likelihood per token (by hand: −0.693 vs −0.301)",
                mistakes={"length_normalize ignored": (0.0, [0])})
    check.that(type(acc) is float and all(type(p) is int for p in preds), "multiple_choice_accuracy",
               f"accuracy should be a Python float and predictions Python ints, got {type(acc).__name__} and "
               f"{[type(p).__name__ for p in preds]}", case=case)
    # ties: [1] and [2] both have log 0.5 after token 0 -> the lowest index wins
    tie = (ctx, (torch.tensor([2]), torch.tensor([1]), torch.tensor([0])), 0)
    acc, preds = impl.multiple_choice_accuracy(model, [tie, question, tie])
    check.equal((acc, preds), (2 / 3, [0, 0, 0]), unit="multiple_choice_accuracy",
                case="three questions; the first and last tie between choices 0 and 1 (choices as a tuple)",
                what="(accuracy, predictions): ties go to the lowest index",
                mistakes={"ties go to the highest index": (0.0, [1, 0, 1])})


@pytest.mark.points(1)
def test_multiple_choice_matches_bigram_oracle_and_raises(impl):
    table = tensors.randn((6, 6), 8, scale=1.5)
    model = O.TableLM(table)
    questions, expected_plain, expected_norm = [], [], []
    for q in range(12):
        ctx = tensors.randint((3,), 100 + q, high=6)
        choices = [tensors.randint((1 + (q + i) % 4,), 200 + 10 * q + i, high=6) for i in range(4)]
        answer = q % 4
        questions.append((ctx, choices, answer))
        scores = [_bigram_logprob(table, ctx.tolist(), ch.tolist()) for ch in choices]
        expected_plain.append(max(range(4), key=lambda i: (scores[i], -i)))
        expected_norm.append(max(range(4), key=lambda i: (scores[i] / choices[i].shape[0], -i)))
    for norm, expected in ((False, expected_plain), (True, expected_norm)):
        acc, preds = impl.multiple_choice_accuracy(model, questions, length_normalize=norm)
        want = sum(p == q[2] for p, q in zip(expected, questions)) / len(questions)
        check.equal((acc, preds), (want, expected), unit="multiple_choice_accuracy",
                    case=check.describe(questions=12, choices=4, length_normalize=norm, model="bigram table"),
                    what="(accuracy, predictions) against the bigram log-likelihoods computed by hand")
    ctx = torch.tensor([1])
    single = [(ctx, [torch.tensor([2, 3])], 0)]
    check.equal(impl.multiple_choice_accuracy(model, single), (1.0, [0]), unit="multiple_choice_accuracy",
                case="one question with a single choice (answer 0)", what="(accuracy, predictions)")
    for qs, why in (([], "no questions"), ([(ctx, [], 0)], "a question without choices")):
        check.expect_raises(ValueError, impl.multiple_choice_accuracy, model, qs, unit="multiple_choice_accuracy",
                            case=check.describe(questions=qs), why=why)
