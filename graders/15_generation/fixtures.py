"""Golden data for 15_generation, generated from solutions/ by `llmlab fixtures 15_generation`.

Records (all small):
  top_p_cases     top-p boundary cases (JSON): logits whose probabilities are exact in binary
                  (equal logits over 4 or 8 tokens, −inf entries) so the running mass hits p
                  exactly, ties that the id order must break, p = 1 with zero-probability
                  tokens, a tiny p, and a crossing token with clear margins; each with the
                  kept ids, checked here against the rule written out by hand;
  sampling_probs  (4, 10) float64 logits and the distribution of every setting of
                  test_generation_sampling.SETTINGS (probs_0 …);
  beam            beam-search results (JSON) on seeded `generation_oracle.PrefixLM` models:
                  tokens and score for several widths, length penalties and eos ids;
  chat            conversations and their rendered chat strings (JSON).
"""

from __future__ import annotations

import torch

import generation_oracle as O

SEED = 15
INF = float("inf")

SETTINGS = [dict(temperature=1.0), dict(temperature=0.7, top_k=3), dict(temperature=1.3, top_p=0.8),
            dict(temperature=0.8, top_k=5, top_p=0.6), dict(temperature=1.0, min_p=0.15),
            dict(temperature=2.0, top_k=6, top_p=0.9, min_p=0.1)]   # = test_generation_sampling.SETTINGS

# (logits, p, the kept ids by the rule "kept when the mass ranked before it is < p", what it tests)
TOP_P_CASES = [
    ([0.0] * 4, 0.5, [0, 1], "mass exactly p after two tokens: the second is kept, the third not"),
    ([0.0] * 4, 0.75, [0, 1, 2], "mass exactly p after three tokens"),
    ([0.0] * 4, 0.5001, [0, 1, 2], "p just above a running mass: the crossing token is kept"),
    ([0.0] * 4, 0.4999, [0, 1], "p just below a running mass"),
    ([0.0] * 4, 1.0, [0, 1, 2, 3], "p = 1 keeps every token of positive probability"),
    ([0.0] * 4 + [-INF] * 4, 1.0, [0, 1, 2, 3], "p = 1 with zero-probability tokens"),
    ([0.0] * 8, 0.125, [0], "one token's mass is exactly p"),
    ([0.0] * 8, 0.126, [0, 1], "just above one token's mass"),
    ([0.0] * 4, 1e-9, [0], "a tiny p keeps the most likely token"),
    ([-INF, 0.0, -INF, 0.0, 0.0, 0.0], 0.5, [1, 3], "ties broken by ascending id"),
    ([0.0, 3.0, 3.0, 3.0, 3.0, -INF], 0.45, [1, 2], "ties at the top, broken by id"),
    ([-0.6931471805599453, -1.2039728043259361, -1.6094379124341003], 0.6, [0, 1],
     "probs 0.5, 0.3, 0.2 and p = 0.6: the token that crosses p is kept"),
    ([-1.6094379124341003, -0.6931471805599453, -1.2039728043259361], 0.45, [1], "p below the top token's mass"),
    ([-1.6094379124341003, -1.2039728043259361, -0.6931471805599453], 0.85, [0, 1, 2], "all three needed"),
]

CHATS = [
    ([{"role": "user", "content": "Where is the map?"}], True),
    ([{"role": "system", "content": "You answer in one line."}, {"role": "user", "content": "Hana found a map."},
      {"role": "assistant", "content": "Then she has it."}, {"role": "user", "content": "Where?\nAt the café."}], True),
    ([{"role": "user", "content": "東京 🙂"}, {"role": "assistant", "content": ""}], False),
]

BEAMS = [dict(model_seed=7, model_scale=0.7, prompt=[1, 2], width=2, max_new=3, length_penalty=1.0, eos_id=0),
         dict(model_seed=1, model_scale=0.7, prompt=[3, 1], width=3, max_new=4, length_penalty=0.6, eos_id=None),
         dict(model_seed=16, model_scale=1.0, prompt=[2], width=4, max_new=4, length_penalty=1.0, eos_id=0)]


def generate(impl) -> dict:
    records = {}

    cases = []
    for logits, p, kept, note in TOP_P_CASES:
        x = torch.tensor(logits, dtype=torch.float64)
        keep = torch.isfinite(impl.top_p_filter(x, p))
        if keep.nonzero().flatten().tolist() != kept:
            raise RuntimeError(f"top-p case {note!r}: the reference keeps {keep.nonzero().flatten().tolist()}, "
                               f"the rule {kept}")
        cases.append({"logits": logits, "p": p, "keep": keep.tolist(), "note": note})
    records["top_p_cases"] = cases

    g = torch.Generator().manual_seed(SEED)
    logits = torch.randn(4, 10, generator=g, dtype=torch.float64) * 1.5
    record = {"logits": logits}
    for i, setting in enumerate(SETTINGS):
        record[f"probs_{i}"] = impl.sampling_probs(logits, **setting)
    records["sampling_probs"] = record

    beams = []
    for spec in BEAMS:
        model = O.PrefixLM(5, seed=spec["model_seed"], scale=spec["model_scale"])
        tokens, score = impl.beam_search(model, torch.tensor(spec["prompt"]), spec["width"], spec["max_new"],
                                         length_penalty=spec["length_penalty"], eos_id=spec["eos_id"])
        _, _, gap = O.beam_oracle(model, spec["prompt"], spec["width"], spec["max_new"], spec["eos_id"],
                                  spec["length_penalty"])
        if gap < 1e-4:
            raise RuntimeError(f"beam fixture {spec} has a near-tie (gap {gap:.2e})")
        beams.append(dict(spec, tokens=tokens.tolist(), score=round(score, 12)))
    records["beam"] = beams

    records["chat"] = [{"messages": m, "add_generation_prompt": gen,
                        "text": impl.apply_chat_template(m, add_generation_prompt=gen)} for m, gen in CHATS]
    return records
