"""Graders for 20_vlm, aligning images and texts: clip_loss and retrieval_accuracy.

clip_loss: a 2 × 2 case by hand (not symmetric, so each direction shows), golden data, a loop
oracle with logsumexp on hypothesis inputs, properties (symmetry under swapping the two
modalities, invariance to the scale of the embeddings and to a common permutation of the
pairs, the limits: about 0 for aligned pairs at low temperature, log N at high temperature),
the known mistakes named, gradients w.r.t. both embeddings and a learned temperature against
the oracle and by float64 gradcheck, every Raises clause.
retrieval_accuracy: a hand case with ties, golden data, a loop oracle, cosine (not raw dot
product), Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vlm_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance

# Accuracies are fractions k/N; a float32 mean of the hits (a correct choice) is off by ~1e-8.
ACCURACY = Tolerance(0.0, 1e-6)


def _accuracies(got, want, *, case, what="(image→text, text→image) accuracy", mistakes=None):
    check.that(isinstance(got, tuple) and len(got) == 2 and all(type(v) is float for v in got),
               "retrieval_accuracy", "must return a tuple of two Python floats", f"got {got!r}", case=case)
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)
    check.close(as_tensor(got), as_tensor(want), unit="retrieval_accuracy", case=case, what=what, tol=ACCURACY,
                mistakes={k: as_tensor(v) for k, v in (mistakes or {}).items()})


# ---------------------------------------------------------------- clip_loss

@pytest.mark.points(2)
def test_clip_loss_by_hand_and_reference(impl):
    a = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)          # unit rows [1, 0], [0, 1]
    b = torch.tensor([[1.0, 0.0], [0.3, 0.4]], dtype=torch.float64)          # unit rows [1, 0], [0.6, 0.8]
    # cosines [[1, 0.6], [0, 0.8]]; at τ = 0.5 the logits are [[2, 1.2], [0, 1.6]]
    i2t = (O.log1p_exp(-0.8) + O.log1p_exp(-1.6)) / 2                       # rows
    t2i = (O.log1p_exp(-2.0) + O.log1p_exp(-0.4)) / 2                       # columns
    case = check.describe(image_emb=a, text_emb=b, temperature=0.5)
    check.close(impl.clip_loss(a, b, 0.5), torch.tensor((i2t + t2i) / 2, dtype=torch.float64), unit="clip_loss",
                case=case, kind="loss", what=f"loss (by hand ({i2t:.4f} + {t2i:.4f}) / 2)",
                mistakes={**O.clip_mistakes(a, b, 0.5),
                          "a one-directional CLIP loss (image → text only)": torch.tensor(i2t, dtype=torch.float64),
                          "a one-directional CLIP loss (text → image only)": torch.tensor(t2i, dtype=torch.float64)})
    ref = reference.load(O.TOPIC, "clip")
    tau = float(ref["temperature"][0])
    out = impl.clip_loss(ref["image_emb"], ref["text_emb"], tau)
    check.close(out, ref["loss"][0], unit="clip_loss", kind="loss", what="loss of the reference pairs",
                case=check.describe(image_emb=ref["image_emb"], text_emb=ref["text_emb"], temperature=tau),
                mistakes=O.clip_mistakes(ref["image_emb"], ref["text_emb"], tau))


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), N=st.integers(1, 7), D=st.integers(2, 6), tau=st.sampled_from([0.05, 0.3, 1.0, 2.5]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_clip_loss_matches_oracle_and_properties(impl, seed, N, D, tau, dtype):
    a, b = tensors.randn((N, D), seed, dtype), tensors.randn((N, D), seed + 1, dtype)
    case = check.describe(image_emb=a, text_emb=b, temperature=tau)
    out = impl.clip_loss(a, b, tau)
    check.close(out, O.clip_loss_loop(a, b, tau), unit="clip_loss", case=case, kind="loss",
                mistakes=O.clip_mistakes(a, b, tau))
    check.close(impl.clip_loss(b, a, tau), out, unit="clip_loss", case=case, kind="loss",
                what="loss with the two modalities swapped (the symmetric loss must not change)")
    check.close(impl.clip_loss(3.0 * a, 0.5 * b, tau), out, unit="clip_loss", case=case, kind="loss",
                what="loss of rescaled embeddings 3·image_emb, 0.5·text_emb (cosines do not change)",
                mistakes={"embeddings not normalised": O.clip_loss_variant(3 * a, 0.5 * b, tau, "no normalisation")})
    perm = torch.randperm(N, generator=tensors.generator(seed))
    check.close(impl.clip_loss(a[perm], b[perm], tau), out, unit="clip_loss", case=case, kind="loss",
                what=f"loss with the pairs reordered by {perm.tolist()} (the pairs, not their order, matter)")


@pytest.mark.points(1)
def test_clip_loss_limits(impl):
    # aligned one-hot pairs at τ = 0.01: every logit off the diagonal is 100 below it, loss ≈ 2·e^-100 ≈ 0
    eye = torch.eye(4, dtype=torch.float64)
    low = impl.clip_loss(eye, 2 * eye, 0.01)
    check.close(low, torch.tensor(3 * math.exp(-100.0), dtype=torch.float64), unit="clip_loss", kind="loss",
                case=check.describe(image_emb=eye, text_emb=2 * eye, temperature=0.01),
                what="loss of perfectly aligned orthogonal pairs at low temperature (≈ 0)",
                mistakes={"the temperature used as a multiplier": O.clip_loss_variant(eye, eye, 0.01,
                                                                                      "temperature multiplies")})
    # mismatched pairs are costly: the texts of the same images in reversed order
    high = impl.clip_loss(eye, eye.flip(0), 0.01)
    check.that(float(high) > 50.0, "clip_loss", f"mismatched pairs at τ = 0.01 give loss {float(high):.4g}, "
               "expected about 100 (each true pair has cosine 0, the best wrong one cosine 1)",
               case=check.describe(image_emb=eye, text_emb=eye.flip(0), temperature=0.01))
    a, b = tensors.randn((5, 3), 31), tensors.randn((5, 3), 32)
    check.close(impl.clip_loss(a, b, 1e6), torch.tensor(math.log(5), dtype=torch.float64), unit="clip_loss",
                tol=Tolerance(0.0, 1e-5),   # logits within 1e-6 of 0: the loss is log N up to ~1e-6
                case=check.describe(image_emb=a, text_emb=b, temperature=1e6),
                what="loss at a huge temperature (uniform softmax: log N)")
    one = tensors.randn((1, 3), 33)
    check.close(impl.clip_loss(one, -one, 0.1), torch.tensor(0.0, dtype=torch.float64), unit="clip_loss",
                kind="loss", case=check.describe(image_emb=one, text_emb=-one, temperature=0.1),
                what="loss of a single pair (N = 1: one candidate, loss 0)")


@pytest.mark.points(2)
def test_clip_loss_gradients(impl):
    a, b = tensors.randn((5, 4), 34), tensors.randn((5, 4), 35)
    case = check.describe(image_emb=a, text_emb=b, temperature="exp(log τ), log τ = −1.2")
    log_tau = torch.tensor(-1.2, dtype=torch.float64)
    check.grads(lambda x, y, t: impl.clip_loss(x, y, t.exp()), lambda x, y, t: O.clip_loss_loop(x, y, t.exp()),
                [a, b, log_tau], names=["image_emb", "text_emb", "log temperature"], unit="clip_loss", case=case,
                mistakes={"a one-directional CLIP loss (image → text only)":
                          lambda x, y, t: O.clip_loss_variant(x, y, t.exp(), "image to text only"),
                          "the temperature used as a multiplier":
                          lambda x, y, t: O.clip_loss_variant(x, y, t.exp(), "temperature multiplies")})
    check.gradcheck(lambda x, y: impl.clip_loss(x, y, 0.3), [a[:3], b[:3]], unit="clip_loss",
                    case=check.describe(image_emb=a[:3], text_emb=b[:3], temperature=0.3))
    a32, b32 = a.float(), b.float()
    out = impl.clip_loss(a32, b32, 0.07)
    check.close(out, O.clip_loss_loop(a, b, 0.07).float(), unit="clip_loss", kind="loss",
                case=check.describe(image_emb=a32, text_emb=b32, temperature=0.07),
                what="float32 loss (the inputs' dtype)")


@pytest.mark.points(1)
def test_clip_loss_raises(impl):
    a = tensors.randn((4, 3), 36)
    for x, y, tau, why in ((a, a[:3], 0.1, "shapes differ"), (a[0], a[0], 0.1, "1-D inputs"),
                           (a[:0], a[:0], 0.1, "N = 0"), (a, a, 0.0, "temperature 0"), (a, a, -0.5, "τ < 0"),
                           (a, a, torch.tensor(-1.0), "a 0-d tensor τ < 0")):
        check.expect_raises(ValueError, impl.clip_loss, x, y, tau, unit="clip_loss",
                            case=check.describe(image_emb=x, text_emb=y, temperature=tau), why=why)


# ---------------------------------------------------------------- retrieval_accuracy

@pytest.mark.points(1)
def test_retrieval_by_hand_ties_and_reference(impl):
    # cosines [[1, 1, 0], [0.6, 0.6, 0.8], [0, 0, 1]]: image 0 ties texts 0 and 1 (lowest wins: 0, right);
    # image 1 picks text 2 (wrong); image 2 text 2 (right) -> 2/3. Texts: 0 -> image 0 (right), 1 -> image 0
    # (wrong), 2 -> images 1 (0.8) or 2 (1.0): image 2 (right) -> 2/3.
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[5.0, 0.0], [1.0, 0.0], [0.0, 0.1]], dtype=torch.float64)
    case = check.describe(image_emb=a, text_emb=b)
    _accuracies(impl.retrieval_accuracy(a, b), (2 / 3, 2 / 3), case=case, what="accuracy, by hand (2/3, 2/3)",
                mistakes={"ties to the highest index": (1 / 3, 2 / 3)})
    skew_a = torch.tensor([[1.0, 0.1], [0.1, 1.0]], dtype=torch.float64)
    skew_b = torch.tensor([[10.0, 3.0], [0.1, 1.0]], dtype=torch.float64)
    _accuracies(impl.retrieval_accuracy(skew_a, skew_b), (1.0, 1.0), what="accuracy (cosine similarity)",
                case=check.describe(image_emb=skew_a, text_emb=skew_b),
                mistakes={"raw dot products instead of cosines": (0.5, 1.0)})
    eye = torch.eye(3, dtype=torch.float64)
    _accuracies(impl.retrieval_accuracy(eye, eye.flip(0)), (1 / 3, 1 / 3), case=check.describe(image_emb=eye),
                what="accuracy of reversed texts (only the middle pair matches)")
    ref = reference.load(O.TOPIC, "retrieval")
    _accuracies(impl.retrieval_accuracy(ref["image_emb"], ref["text_emb"]), tuple(ref["accuracy"].tolist()),
                case=check.describe(image_emb=ref["image_emb"]), what="accuracy of the reference embeddings")


@pytest.mark.points(1)
@examples(8)
@given(seed=seeds(), N=st.integers(1, 9), D=st.integers(2, 4))
def test_retrieval_matches_loop_oracle_and_raises(impl, seed, N, D):
    # D ≥ 2: random cosines never tie (with D = 1 every cosine is ±1 and the winner of a tie would
    # depend on the last bit of how a correct implementation rounds; the hand case tests the tie rule)
    a = tensors.randn((N, D), seed)
    b = a + 0.8 * tensors.randn((N, D), seed + 1)                         # noisy matches: not all right
    case = check.describe(image_emb=a, text_emb=b)
    want = O.retrieval_loop(a, b)
    _accuracies(impl.retrieval_accuracy(a, b), want, case=case,
                mistakes={"text → image computed as image → text": (want[0], want[0])})
    for x, y, why in ((a, torch.cat([b, b]), "shapes differ"), (a[0], b[0], "1-D inputs"), (a[:0], b[:0], "N = 0")):
        check.expect_raises(ValueError, impl.retrieval_accuracy, x, y, unit="retrieval_accuracy",
                            case=check.describe(image_emb=x, text_emb=y), why=why)
