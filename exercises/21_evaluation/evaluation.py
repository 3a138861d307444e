"""Topic 21: evaluation — turning a model's behaviour into numbers, and knowing how sure they are.

Four families of measurements, each with the convention that makes it comparable:

* language modelling: the negative log-likelihood of every token of a text, scored ONCE with
  as much left context as a sliding window allows; perplexity exp(mean NLL); bits per byte
  (total NLL in bits over the UTF-8 bytes of the text, which compares models whose tokenizers
  differ);
* benchmarks: multiple choice by log-likelihood of each option (optionally per token),
  pass@k by the unbiased estimator 1 − C(n−c, k)/C(n, k), SQuAD-style exact match and token F1
  after answer normalisation;
* uncertainty: a percentile bootstrap confidence interval of a mean score; the expected
  calibration error of confidences;
* comparisons and hygiene: Elo (online) and Bradley–Terry (maximum likelihood) ratings from
  pairwise games; an n-gram contamination score of test examples against training documents.

A "model" is any module called as `model(idx)` with idx (1, T) int64 that returns
`(logits (1, T, V), loss)`, as the given `llmlab.lib.llama.TinyLlama` does; row t of the
logits scores the token at position t + 1. Log-likelihoods are natural logarithms (nats).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---------------------------------------------------------------- language modelling

def token_nlls(model: nn.Module, ids: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """The negative log-likelihood of every token of `ids` after the first, by a sliding window.

    ids: (N,) int64, N ≥ 2. Targets are the tokens at positions 1 … N − 1; the token at
    position t is scored by the logits row that reads positions up to t − 1.
    window: the most tokens one model call reads, window ≥ 1 (≤ the model's context length).
    stride: how far the window's end moves between calls, 1 ≤ stride ≤ window.
    Windows: call j = 0, 1, … ends at e_j = min(window + j·stride, N − 1) and reads the
    positions [s_j, e_j) with s_j = max(0, e_j − window), one call model(ids[s_j:e_j][None]);
    it scores only the targets e_{j−1} + 1 … e_j (e_{−1} = 0), the last rows of that call, so
    every target is scored exactly once, with at least window − stride + 1 tokens of context
    (or all tokens before it). The calls stop at the first j with e_j = N − 1. With
    stride = window the windows do not overlap.
    Returns (N − 1,) in the logits' dtype: entry t − 1 is −log softmax(row)[ids[t]] for target
    t. Differentiable with respect to the model's parameters (autograd is not switched off
    here; the model runs as it is given).
    Raises ValueError when ids is not 1-D with N ≥ 2, window < 1, or stride is outside
    [1, window].
    """
    # TODO(token_nlls): your code here.
    raise NotImplementedError("TODO 21_evaluation: token_nlls")


def perplexity(model: nn.Module, ids: torch.Tensor, window: int, stride: int) -> float:
    """exp(mean NLL) of the tokens of `ids` after the first, scored as token_nlls does.

    Same arguments, rules and Raises as token_nlls. Runs under torch.no_grad; the mean is
    taken in float64. Returns a Python float ≥ 1.
    """
    # TODO(perplexity): your code here.
    raise NotImplementedError("TODO 21_evaluation: perplexity")


def bits_per_byte(nlls: torch.Tensor, text: str) -> torch.Tensor:
    """Bits per UTF-8 byte: the total NLL of the tokens that spell `text`, in bits, per byte.

    nlls: (M,) float32 or float64, natural-log NLLs (nats) of the tokens of `text`, M ≥ 0.
    text: the text those tokens spell; its length is counted in UTF-8 bytes (é is 2 bytes,
    an emoji 4), not characters or tokens.
    Returns a 0-d tensor of the nlls' dtype, Σ nlls / (ln 2 · bytes), differentiable in nlls.
    Raises ValueError when nlls is not 1-D or text is empty.
    """
    # TODO(bits_per_byte): your code here.
    raise NotImplementedError("TODO 21_evaluation: bits_per_byte")


# ---------------------------------------------------------------- multiple choice

def continuation_logprob(model: nn.Module, context: torch.Tensor, continuation: torch.Tensor) -> torch.Tensor:
    """log P(continuation | context): the sum of the log-probabilities of its tokens.

    context: (C,) int64, C ≥ 1.   continuation: (L,) int64, L ≥ 1; C + L − 1 tokens must fit
    the model's context length (the caller's job).
    One call model(cat(context, continuation)[:-1][None]); continuation token i is scored by
    row C − 1 + i of log_softmax of the logits.
    Returns a 0-d tensor in the logits' dtype, differentiable with respect to the model's
    parameters (the model runs as it is given).
    Raises ValueError when context or continuation is not 1-D or is empty.
    """
    # TODO(continuation_logprob): your code here.
    raise NotImplementedError("TODO 21_evaluation: continuation_logprob")


def multiple_choice_accuracy(model: nn.Module, questions: Sequence[tuple[torch.Tensor, Sequence[torch.Tensor], int]],
                             length_normalize: bool = False) -> tuple[float, list[int]]:
    """Answer multiple-choice questions by the log-likelihood of each option.

    questions: a non-empty sequence of (context (C,) int64, choices (a non-empty sequence of
    (L_i,) int64 tensors), answer: the index of the right choice).
    Score of choice i: continuation_logprob(model, context, choices[i]); with
    length_normalize, that score divided by L_i (the mean log-probability per token). The
    prediction is the choice of highest score; ties go to the lowest index.
    Runs under torch.no_grad. Returns (accuracy: the fraction of questions whose prediction
    equals the answer, a Python float; predictions: a list of Python ints, one per question).
    Raises ValueError when questions is empty or a question has no choices.
    """
    # TODO(multiple_choice_accuracy): your code here.
    raise NotImplementedError("TODO 21_evaluation: multiple_choice_accuracy")


# ---------------------------------------------------------------- code generation

def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c are correct (Chen et al. 2021).

    pass@k = 1 − C(n − c, k) / C(n, k): the probability that k samples drawn WITHOUT
    replacement from the n contain at least one correct one. Computed as
    1 − Π_{i = n−c+1}^{n} (1 − k / i), never through factorials, so it stays accurate for
    large n: within 1e-9 (absolute) of the exact value for n ≤ 10^5. Exactly 1.0 when
    n − c < k, exactly 0.0 when c = 0.
    n, c, k: Python ints with 0 ≤ c ≤ n and 1 ≤ k ≤ n. Returns a Python float in [0, 1].
    Raises ValueError otherwise.
    """
    # TODO(pass_at_k): your code here.
    raise NotImplementedError("TODO 21_evaluation: pass_at_k")


# ---------------------------------------------------------------- uncertainty

def bootstrap_ci(scores: torch.Tensor, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """A percentile bootstrap confidence interval of the mean of `scores`, level 1 − alpha.

    scores: (n,) float or bool tensor, n ≥ 1 (one score per test example); cast to float64.
    Draw ALL resamples at once, with replacement:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, n, (n_boot, n), generator=g)      # row b: resample b
    then means[b] = mean of scores[idx[b]], and the interval is
    torch.quantile(means, [alpha / 2, 1 − alpha / 2]) (linear interpolation between order
    statistics, torch's and numpy's default). The global random state is not used.
    n_boot ≥ 1, 0 < alpha < 1. Returns (lo, hi), two Python floats with lo ≤ hi.
    Raises ValueError when scores is not 1-D or empty, n_boot < 1, or alpha is not in (0, 1).
    """
    # TODO(bootstrap_ci): your code here.
    raise NotImplementedError("TODO 21_evaluation: bootstrap_ci")


def expected_calibration_error(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int = 10) -> torch.Tensor:
    """The expected calibration error with n_bins equal-width bins of confidence.

    confidences: (N,) float32 or float64 in [0, 1], N ≥ 1 (the model's probability for its
    answer).   correct: (N,) bool (or 0/1 of any dtype), whether each answer was right.
    Bin of a confidence c: b = min(floor(c · n_bins), n_bins − 1) computed in float64, so bin b
    holds [b / n_bins, (b + 1) / n_bins) and the last bin also holds c = 1.
    ECE = Σ_b (n_b / N) · |acc_b − conf_b| over the non-empty bins, with n_b the bin's count,
    acc_b its fraction correct and conf_b its mean confidence.
    Returns a 0-d float64 tensor, differentiable with respect to confidences (the bins are
    held fixed; the derivative of |acc_b − conf_b| where that gap is exactly 0 is not specified).
    Raises ValueError when the shapes differ or are not (N,) with N ≥ 1, n_bins < 1, or a
    confidence is outside [0, 1].
    """
    # TODO(expected_calibration_error): your code here.
    raise NotImplementedError("TODO 21_evaluation: expected_calibration_error")


# ---------------------------------------------------------------- answers

def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation, in this order: lower-case; delete every character of
    string.punctuation (ASCII punctuation; other characters, digits included, stay); delete
    the whole words "a", "an", "the" (regex r"\\b(a|an|the)\\b"); collapse runs of whitespace
    to single spaces and strip both ends (" ".join(text.split())).
    Returns the normalised str ("" when nothing is left).
    """
    # TODO(normalize_answer): your code here.
    raise NotImplementedError("TODO 21_evaluation: normalize_answer")


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when normalize_answer(prediction) equals normalize_answer of some reference, else 0.0.

    references: a non-empty sequence of str (a list or a tuple).
    Raises ValueError when references is empty.
    """
    # TODO(exact_match): your code here.
    raise NotImplementedError("TODO 21_evaluation: exact_match")


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD's token F1, the best over the references.

    Tokens are normalize_answer(x).split(). Against one reference: common = the size of the
    multiset intersection of the two token lists (a repeated token counts as often as it
    occurs in both); when either list is empty the F1 is 1.0 if both are empty and 0.0
    otherwise; when common = 0 it is 0.0; else precision = common / len(prediction tokens),
    recall = common / len(reference tokens), F1 = 2·precision·recall / (precision + recall).
    references: a non-empty sequence of str. Returns a Python float in [0, 1].
    Raises ValueError when references is empty.
    """
    # TODO(token_f1): your code here.
    raise NotImplementedError("TODO 21_evaluation: token_f1")


# ---------------------------------------------------------------- ratings

def _check_games(unit: str, games: torch.Tensor, scores: torch.Tensor, n_players: int) -> None:
    """Raise ValueError naming the unit unless games is (G, 2) int64 of distinct players in
    [0, n_players) and scores is (G,) in [0, 1] (given helper)."""
    if games.dim() != 2 or games.shape[1] != 2 or scores.shape != (games.shape[0],):
        raise ValueError(f"{unit}: need games (G, 2) and scores (G,), got {tuple(games.shape)} and "
                         f"{tuple(scores.shape)}")
    if games.numel() and (games.min() < 0 or games.max() >= n_players or bool((games[:, 0] == games[:, 1]).any())):
        raise ValueError(f"{unit}: players must be distinct ids in [0, {n_players})")
    if scores.numel() and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(f"{unit}: scores must lie in [0, 1]")


def elo_ratings(games: torch.Tensor, scores: torch.Tensor, n_players: int, k: float = 32.0,
                initial: float = 1000.0) -> torch.Tensor:
    """Elo ratings after playing `games` in order, every player starting at `initial`.

    games: (G, 2) int64, row g = (a, b), two distinct players in [0, n_players).
    scores: (G,) float, the score of player a in game g: 1 win, 0.5 draw, 0 loss (any value in
    [0, 1] is allowed).
    Game g, with the ratings R before it: E_a = 1 / (1 + 10^((R_b − R_a) / 400)),
    R_a ← R_a + k·(s − E_a) and R_b ← R_b − k·(s − E_a) (both from the ratings before the game).
    Returns (n_players,) float64. The sum of the ratings stays n_players · initial.
    Raises ValueError (from the given _check_games) for malformed games or scores.
    """
    # TODO(elo_ratings): your code here.
    raise NotImplementedError("TODO 21_evaluation: elo_ratings")


def bradley_terry(games: torch.Tensor, scores: torch.Tensor, n_players: int, l2: float = 0.01) -> torch.Tensor:
    """Bradley–Terry strengths θ by penalised maximum likelihood: P(a beats b) = σ(θ_a − θ_b).

    games, scores: as for elo_ratings (a draw, s = 0.5, counts as half a win for each side).
    θ maximises
        L(θ) = Σ_g [ s_g log σ(θ_a − θ_b) + (1 − s_g) log σ(θ_b − θ_a) ] − (l2 / 2) Σ_i θ_i²,
    which is strictly concave for l2 > 0, so the maximiser is unique; it has mean 0 (the
    likelihood only depends on differences) and does not depend on the order of the games.
    Any method may be used (Newton's method converges in a few steps); the returned θ must
    satisfy |∂L/∂θ_i| ≤ 1e-8 for every i.
    Returns (n_players,) float64 in natural-log units (multiply by 400 / ln 10 for the Elo
    scale). A player without games gets 0.
    Raises ValueError for malformed games or scores (as elo_ratings) or l2 ≤ 0.
    """
    # TODO(bradley_terry): your code here.
    raise NotImplementedError("TODO 21_evaluation: bradley_terry")


# ---------------------------------------------------------------- contamination

def contamination(examples: Sequence[Sequence[Hashable]], train_docs: Sequence[Sequence[Hashable]],
                  n: int) -> list[float]:
    """The n-gram contamination score of each test example against the training documents.

    examples, train_docs: sequences of token sequences; a token sequence is a list or tuple
    of hashable tokens (ids, words) or a str (a sequence of characters). Convert tensors with
    .tolist() first.
    The n-grams of a sequence are its len − n + 1 windows tuple(seq[i:i + n]). N-grams are
    taken inside each training document, never across two documents.
    Score of an example: the fraction of its n-grams (counted with repetition, one per
    position) that occur in some training document; 0.0 for an example shorter than n.
    n ≥ 1. Returns a list of Python floats in [0, 1], one per example.
    Raises ValueError when n < 1.
    """
    # TODO(contamination): your code here.
    raise NotImplementedError("TODO 21_evaluation: contamination")
