"""Golden data for 17_speculative, generated from solutions/ by `llmlab fixtures 17_speculative`.

Records (float64 unless stated; scalars stored with shape (1,)):
  acceptance       p, q (4, 6) rows of distributions and α = Σ min(p, q) per row;
  residual         p, q (4, 5), row 2 with p = q exactly, and normalise(max(0, p − q));
  accept           30 rounds with k = 3 over V = 5: draft_probs (30, 3, 5), target_probs
                   (30, 4, 5), draft_tokens (30, 3) drawn from the draft rows, the seed of the
                   one generator all rounds share, n (30,) and tokens (30, 4) padded with −1;
  greedy_generate  the greedy speculative continuation (tokens, target_calls) for the
                   speculative_oracle.tiny_llama models of seeds 171 (target) and 172 (draft),
                   a prompt, k = 3, max_new = 14;
  sampled_generate bigram tables (V = 5) of a target and a draft, prompt, and for k = 1, 2, 4
                   the tokens and target calls of a seeded run at temperature 0.8 (one seed per k);
  draft_llama / draft_llama_config  the course's trained draft LLaMA (1 layer, d_model 32),
                   produced by the given `llmlab.lib.llama.train_tiny_llama("draft_llama")`
                   (state dict and info), read by `llmlab.lib.llama.load_tiny_llama("draft_llama")`.
"""

from __future__ import annotations

import torch

import speculative_oracle as O

SEED = 17


def generate(impl) -> dict:
    from llmlab.lib.llama import train_tiny_llama

    g = torch.Generator().manual_seed(SEED)
    f64 = dict(generator=g, dtype=torch.float64)

    def dist(*shape, scale=1.5):
        return torch.softmax(torch.randn(*shape, **f64) * scale, dim=-1)

    records = {}
    p, q = dist(4, 6), dist(4, 6)
    records["acceptance"] = {"p": p, "q": q, "alpha": impl.acceptance_rate(p, q)}

    p, q = dist(4, 5), dist(4, 5)
    q[2] = p[2]
    records["residual"] = {"p": p, "q": q, "out": impl.residual_distribution(p, q)}

    R, k, V = 30, 3, 5
    qs, ps = dist(R, k, V), dist(R, k + 1, V, scale=2.0)
    drafts = torch.stack([torch.multinomial(qs[r], 1, generator=g)[:, 0] for r in range(R)])   # (R, k)
    seed = 1717
    gen = torch.Generator().manual_seed(seed)
    ns, tokens = [], torch.full((R, k + 1), -1, dtype=torch.long)
    for r in range(R):
        t, n = impl.speculative_accept(qs[r], ps[r], drafts[r], gen)
        ns.append(n)
        tokens[r, :len(t)] = t
    records["accept"] = {"draft_probs": qs, "target_probs": ps, "draft_tokens": drafts,
                         "seed": torch.tensor([seed]), "n": torch.tensor(ns), "tokens": tokens}

    target, draft = O.tiny_llama(171), O.tiny_llama(172)
    prompt = torch.tensor([3, 1, 4, 1, 5])
    out, calls = impl.speculative_generate(target, draft, prompt, 3, 14, temperature=0.0)
    records["greedy_generate"] = {"prompt": prompt, "tokens": out, "target_calls": torch.tensor([calls])}

    t_table, d_table = torch.randn(5, 5, **f64) * 1.5, torch.randn(5, 5, **f64) * 1.5
    rec = {"target_table": t_table, "draft_table": d_table, "prompt": torch.tensor([2, 0]),
           "temperature": torch.tensor([0.8], dtype=torch.float64)}
    for k_ in (1, 2, 4):
        out, calls = impl.speculative_generate(O.TableLM(t_table), O.TableLM(d_table), rec["prompt"], k_, 9,
                                               temperature=0.8, generator=torch.Generator().manual_seed(100 + k_))
        rec[f"tokens_k{k_}"], rec[f"calls_k{k_}"] = out, torch.tensor([calls])
    records["sampled_generate"] = rec

    state, info = train_tiny_llama("draft_llama")
    records["draft_llama"] = {k_: v.detach().clone() for k_, v in state.items()}
    records["draft_llama_config"] = info
    return records
