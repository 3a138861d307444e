"""Instructor-only graders for 21_evaluation (left out of student bundles).

  - token_nlls / perplexity of the course's two trained LLaMAs on held-out text, against the
    one-target-at-a-time oracle, and exp(evaluate_lm) of the given library for stride = window;
  - pass_at_k on random (n, c, k) against exact rational arithmetic;
  - bootstrap_ci and expected_calibration_error on fresh random inputs against the loop oracles.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

import evaluation_oracle as O
from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import load_tiny_llama
from llmlab.lib.train import evaluate_lm
from llmlab.testing import check, tensors
from llmlab.testing.tolerances import Tolerance


@pytest.mark.hidden
@pytest.mark.points(2)
def test_perplexity_of_trained_models_hidden(impl):
    _, val = train_val_split(course_corpus(), 0.1)
    for name in ("tiny_llama", "draft_llama"):
        model, codec, _ = load_tiny_llama(name)
        ids = codec.encode(val[2000:2129])                               # (129,): 128 targets
        case = check.describe(model=name, N=129)
        with torch.no_grad():
            for window, stride in ((64, 64), (64, 5), (40, 13)):
                out = impl.token_nlls(model, ids, window, stride)
                check.close(out, O.window_nll_oracle(model, ids, window, stride), unit="token_nlls", kind="model",
                            case=case + f"; window={window}, stride={stride}", what="NLLs of a trained model")
            ppl = impl.perplexity(model, ids, 64, 64)
            expected = math.exp(evaluate_lm(model, ids, 64))             # two non-overlapping windows of 64
        # float32 models: compared at float32's tolerance
        check.close(torch.tensor(ppl, dtype=torch.float32), torch.tensor(expected, dtype=torch.float32),
                    unit="perplexity", kind="model", case=case + "; window = stride = 64",
                    what="perplexity with stride = window against exp(llmlab.lib.train.evaluate_lm)")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_pass_at_k_random_cases_hidden(impl):
    gen = tensors.generator(2101)
    for _ in range(300):
        n = int(torch.randint(1, 3000, (1,), generator=gen))
        c = int(torch.randint(0, n + 1, (1,), generator=gen))
        k = int(torch.randint(1, n + 1, (1,), generator=gen))
        exact = float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))
        check.close(torch.tensor(impl.pass_at_k(n, c, k), dtype=torch.float64), torch.tensor(exact, dtype=torch.float64),
                    unit="pass_at_k", case=check.describe(n=n, c=c, k=k), tol=Tolerance(0.0, 1e-9),  # the docstring's 1e-9
                    what="pass@k against exact rational arithmetic")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_bootstrap_and_ece_fresh_inputs_hidden(impl):
    for seed in range(5):
        n = 3 + 7 * seed
        scores = tensors.randn((n,), 300 + seed)
        n_boot, alpha = 50 + 40 * seed, 0.05 + 0.1 * seed
        got = impl.bootstrap_ci(scores, n_boot, alpha, seed)
        x, g, means = scores.tolist(), torch.Generator().manual_seed(seed), []
        for _ in range(n_boot):
            row = torch.randint(0, n, (n,), generator=g).tolist()
            means.append(sum(x[i] for i in row) / n)
        expected = (O.quantile(means, alpha / 2), O.quantile(means, 1 - alpha / 2))
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                    unit="bootstrap_ci", kind="reduction", case=check.describe(scores=scores, n_boot=n_boot,
                                                                              alpha=alpha, seed=seed))
        conf = tensors.rand((40 + seed,), 400 + seed)
        correct = tensors.rand((40 + seed,), 500 + seed) < 0.6
        expected = O.ece_loop(conf.tolist(), correct.tolist(), 5 + seed)
        check.close(impl.expected_calibration_error(conf, correct, 5 + seed), torch.tensor(expected, dtype=torch.float64),
                    unit="expected_calibration_error", kind="reduction",
                    case=check.describe(confidences=conf, n_bins=5 + seed))
