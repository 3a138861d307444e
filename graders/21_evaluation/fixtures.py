"""Golden data for 21_evaluation, generated from solutions/ by `llmlab fixtures 21_evaluation`.

Records (float64 unless stated):
  token_nlls       ids (121,) int64 of held-out course text, and the float32 NLLs of the
                   course's trained tiny_llama (llmlab.lib.llama) for (window, stride) =
                   (30, 30), (30, 7), (64, 16), (12, 1): nll_<window>_<stride> (120,);
  bootstrap        scores (37,), and for (n_boot, alpha, seed) in CASES the interval lo_i, hi_i;
  calibration      confidences (300,), correct (300,) bool, ece_10, ece_7;
  ratings          games (80, 2) int64 among 6 players, scores (80,) with draws, elo (6,),
                   bt (6,) with l2 = 0.01 and bt_l2_1 (6,) with l2 = 1;
  answers          JSON: [prediction, references, normalised prediction, exact match, F1];
  pass_at_k        JSON: [n, c, k, pass@k].
"""

from __future__ import annotations

import torch

SEED = 21
BOOT_CASES = [(500, 0.1, 0), (2000, 0.05, 7), (1, 0.5, 3), (300, 0.3, 11)]
WINDOWS = [(30, 30), (30, 7), (64, 16), (12, 1)]
ANSWER_CASES = [
    ("The Eiffel Tower", ["Eiffel tower", "the tower"]),
    ("  in 1889!", ["1889"]),
    ("an apple, a pear and the plum", ["apple pear plum"]),
    ("cat cat dog", ["cat dog dog"]),
    ("Théâtre de l'Odéon", ["theatre de lodeon", "Théâtre de l’Odéon"]),
    ("42 km/h", ["42 kmh", "forty-two"]),
    ("", ["the"]),
    ("Paris", ["London", "paris, France"]),
]
PASS_CASES = [(10, 3, 1), (10, 3, 5), (200, 13, 10), (100, 0, 7), (20, 17, 4), (1000, 1, 100), (5, 5, 5)]


def generate(impl) -> dict:
    from llmlab.lib.corpus import course_corpus, train_val_split
    from llmlab.lib.llama import load_tiny_llama

    g = torch.Generator().manual_seed(SEED)
    records = {}

    model, codec, _ = load_tiny_llama()
    _, val = train_val_split(course_corpus(), 0.1)
    ids = codec.encode(val[500:621])                                         # (121,)
    rec = {"ids": ids}
    for window, stride in WINDOWS:
        with torch.no_grad():
            rec[f"nll_{window}_{stride}"] = impl.token_nlls(model, ids, window, stride)
    records["token_nlls"] = rec

    scores = torch.rand(37, generator=g, dtype=torch.float64) ** 2
    rec = {"scores": scores}
    for i, (n_boot, alpha, seed) in enumerate(BOOT_CASES):
        lo, hi = impl.bootstrap_ci(scores, n_boot, alpha, seed)
        rec[f"lo_{i}"], rec[f"hi_{i}"] = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
    records["bootstrap"] = rec

    conf = torch.rand(300, generator=g, dtype=torch.float64)
    conf[:5] = torch.tensor([0.0, 1.0, 0.1, 0.5, 0.7], dtype=torch.float64)     # bin edges
    correct = torch.rand(300, generator=g, dtype=torch.float64) < conf ** 1.5
    records["calibration"] = {"confidences": conf, "correct": correct,
                              "ece_10": impl.expected_calibration_error(conf, correct, 10),
                              "ece_7": impl.expected_calibration_error(conf, correct, 7)}

    strength = torch.tensor([1.5, 0.8, 0.0, -0.3, -1.0, 0.4], dtype=torch.float64)
    a = torch.randint(0, 6, (80,), generator=g)
    b = (a + torch.randint(1, 6, (80,), generator=g)) % 6
    games = torch.stack([a, b], dim=1)
    u = torch.rand(80, generator=g, dtype=torch.float64)
    p = torch.sigmoid(strength[a] - strength[b])
    scores = torch.where(u < 0.1, 0.5, (u < p).double())
    records["ratings"] = {"games": games, "scores": scores, "elo": impl.elo_ratings(games, scores, 6),
                          "bt": impl.bradley_terry(games, scores, 6),
                          "bt_l2_1": impl.bradley_terry(games, scores, 6, l2=1.0)}

    records["answers"] = [[pred, refs, impl.normalize_answer(pred), impl.exact_match(pred, refs),
                           impl.token_f1(pred, refs)] for pred, refs in ANSWER_CASES]
    records["pass_at_k"] = [[n, c, k, impl.pass_at_k(n, c, k)] for n, c, k in PASS_CASES]
    return records
