# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 23 · On-policy distillation
#
# Distillation trains a small student to imitate a large teacher. The ordinary recipe is
# *off-policy*: the student reads text somebody else wrote (a data set, or the teacher's own
# samples) and learns the teacher's next-token distribution on it. But when the student
# generates, it reads text **it** wrote, its own mistakes included, and nothing in training
# showed it what to do after a mistake. This train/test mismatch is called **exposure bias**.
# *On-policy* distillation removes it: the training text is sampled from the student, and the
# teacher grades every token of it.
#
# | unit | what it does |
# |---|---|
# | `kl_estimate(logp_sample, logp_ref, kind)` | Schulman's estimators k1, k2, k3 of KL(q ‖ p) from log-probs of samples |
# | `token_reverse_kl(student_logits, teacher_logits)` | the exact per-token KL(π_s ‖ π_t) over the vocabulary |
# | `generalized_jsd(student_logits, teacher_logits, beta)` | GKD's JSD(β), from forward KL (β = 0) to reverse KL (β = 1) |
# | `response_logprobs(model, ids, prompt_len)` | log-probs of the response tokens, from one model call |
# | `on_policy_distill_step(student, teacher, prompts, optimizer, R)` | sample from the student, score with the teacher, policy-gradient update |
# | `gkd_step(student, teacher, prompts, responses, optimizer, lam, beta)` | GKD: on-policy data with probability λ, else off-policy data; JSD(β) loss |
#
# The experiment at the end measures exposure bias on a toy counting task: students distilled
# off-policy and on-policy from the same teacher, for the same number of steps, compared on
# the teacher's text and on their own.

# %% [markdown]
# ## 1. Intuition
#
# **Two directions of KL.** Ordinary distillation minimises the *forward* KL, with the
# expectation under the teacher:
#
# $$
# \mathrm{KL}(\pi_t \,\|\, \pi_s) = \sum_{v} \pi_t(v) \log \frac{\pi_t(v)}{\pi_s(v)} .
# $$
#
# On-policy distillation minimises the *reverse* KL, with the expectation under the student,
# on the contexts the student itself produces:
#
# $$
# \mathrm{KL}(\pi_s \,\|\, \pi_t) = \sum_{v} \pi_s(v) \log \frac{\pi_s(v)}{\pi_t(v)} .
# $$
#
# The reverse KL punishes the student for putting mass where the teacher puts little (it is
# "mode seeking"); the forward KL punishes it for missing mass the teacher has.
#
# **Estimating KL from samples.** With the full vocabulary at hand the KL is a sum over $v$.
# In reinforcement learning one often has only the log-probabilities of the *sampled* tokens.
# For a token $x$ drawn from the sampling distribution $q$ and a reference $p$, write
# $r = p(x) / q(x)$. Schulman's three estimators of $\mathrm{KL}(q \,\|\, p)$ are
#
# $$
# k_1 = -\log r, \qquad k_2 = \tfrac{1}{2} (\log r)^2, \qquad k_3 = (r - 1) - \log r .
# $$
#
# $k_1$ is unbiased, since $\mathbb{E}_{x \sim q}[-\log r] = \sum_x q(x) \log (q(x)/p(x))$, but it is
# negative whenever $p(x) > q(x)$, and its variance is large. $k_3$ adds $r - 1$, whose
# expectation is $\sum_x q(x) \cdot p(x)/q(x) - 1 = 0$, so it is still unbiased, and because
# $\log r \le r - 1$ it is never negative. $k_2$ is never negative but biased.
#
# **The on-policy update.** Sample a response $x_1 \dots x_R$ from the student and compute for
# each token the sampled reverse-KL term
#
# $$
# d_t = \log \pi_s(x_t \mid x_{<t}) - \log \pi_t(x_t \mid x_{<t}),
# $$
#
# the $k_1$ estimate of the per-token reverse KL. Use $A_t = -d_t$ as the advantage of a policy
# gradient, a constant (detached): the loss is $-\frac{1}{BR} \sum A_t \log \pi_s(x_t \mid x_{<t})$. For
# a categorical policy $\pi = \mathrm{softmax}(\theta)$, $\nabla_\theta \log \pi(x) = e_x - \pi$, and
# the expected gradient is
#
# $$
# \mathbb{E}_{x \sim \pi}\bigl[d(x) (e_x - \pi)\bigr] = \pi \odot \bigl(\log \pi - \log \tau - \mathrm{KL}(\pi \,\|\, \tau)\bigr) = \nabla_\theta \, \mathrm{KL}(\pi \,\|\, \tau),
# $$
#
# with $\tau$ the teacher: gradient descent on the sampled loss is, on average, gradient descent on
# the reverse KL. If the advantage is *not* detached, autograd also differentiates $d$ and the
# update is no longer this gradient. Sampling the response from the teacher instead gives the
# expectation under the teacher, which is off-policy again.
#
# **GKD.** Generalised knowledge distillation (Agarwal et al. 2024) interpolates between the two
# KLs with the generalised Jensen–Shannon divergence of mixture $m = \beta \pi_t + (1 - \beta) \pi_s$,
#
# $$
# \mathrm{JSD}(\beta) = \beta \, \mathrm{KL}(\pi_t \,\|\, m) + (1 - \beta) \, \mathrm{KL}(\pi_s \,\|\, m),
# $$
#
# and mixes the data: with probability $\lambda$ a batch is sampled from the student (on-policy),
# otherwise it comes from a fixed data set (off-policy). For small $\beta$, $m \approx \pi_s$ and
# $\mathrm{JSD}(\beta) \approx \beta \, \mathrm{KL}(\pi_t \,\|\, \pi_s)$; for $\beta$ near 1,
# $\mathrm{JSD}(\beta) \approx (1 - \beta) \, \mathrm{KL}(\pi_s \,\|\, \pi_t)$. So the endpoints are
# defined as those rescaled limits: $\beta = 0$ is the forward KL and $\beta = 1$ the reverse KL.

# %% [markdown]
# ## 2. A calculation by hand
#
# Two tokens; the student $\pi_s = (1/2, 1/2)$ (logits $\theta = (0, 0)$), the teacher
# $\pi_t = (3/4, 1/4)$.
#
# * Reverse KL: $\frac{1}{2} \log \frac{1/2}{3/4} + \frac{1}{2} \log \frac{1/2}{1/4} = \frac{1}{2}(-0.4055) + \frac{1}{2}(0.6931) = 0.1438$.
#   Forward KL: $\frac{3}{4} \log \frac{3/4}{1/2} + \frac{1}{4} \log \frac{1/4}{1/2} = 0.3041 - 0.1733 = 0.1308$.
# * Estimators at token 0 ($r = \pi_t / \pi_s = 3/2$, $\log r = 0.4055$): $k_1 = -0.4055$,
#   $k_2 = 0.0822$, $k_3 = 0.5 - 0.4055 = 0.0945$. At token 1 ($r = 1/2$, $\log r = -0.6931$):
#   $k_1 = 0.6931$, $k_2 = 0.2402$, $k_3 = -0.5 + 0.6931 = 0.1931$.
#   Averaged under the student (weights $1/2$): $k_1$ gives $0.1438$ and $k_3$ gives
#   $0.1438$, the reverse KL; $k_2$ gives $0.1612$.
# * The gradient of the reverse KL: $\log \pi_s - \log \pi_t = (-0.4055, 0.6931)$, minus the
#   KL $0.1438$: $(-0.5493, 0.5493)$, times $\pi_s$: $(-0.2747, 0.2747)$. Gradient descent raises
#   $\theta_0$, the teacher's favourite token.
#
# The code confirms each number: the estimators and the two KLs, and the gradient of one
# on-policy step on 20 000 sampled tokens against the formula.

# %%
import math

pi_s, pi_t = [0.5, 0.5], [0.75, 0.25]
rev_h = sum(a * math.log(a / b) for a, b in zip(pi_s, pi_t))
fwd_h = sum(b * math.log(b / a) for a, b in zip(pi_s, pi_t))
log_r_h = [math.log(b / a) for a, b in zip(pi_s, pi_t)]
k_h = {"k1": [-x for x in log_r_h], "k2": [x * x / 2 for x in log_r_h], "k3": [math.expm1(x) - x for x in log_r_h]}
print(f"reverse KL {rev_h:.4f}, forward KL {fwd_h:.4f}")
for name, values in k_h.items():
    print(name, [round(v, 4) for v in values], "mean under the student", round(sum(a * v for a, v in zip(pi_s, values)), 4))
grad_h = [a * (math.log(a / b) - rev_h) for a, b in zip(pi_s, pi_t)]
print("gradient of the reverse KL w.r.t. θ:", [round(g, 4) for g in grad_h])

# %% [markdown]
# ## 3. Implementation
#
# One module, `policy_distillation.py`. A "model" is anything called as `model(ids)` with `ids`
# of shape `(B, T)` that returns `(logits (B, T, V), loss)`, as the given `TinyLlama` of
# `llmlab.lib.llama` does; the logits at position $i$ score the token at position $i + 1$.
# `_check_same_shape` and `sample_responses` (one `torch.multinomial` draw per step from the
# model's softmax, in float64) are given.

# %%
#| include: policy_distillation.py::header,_check_same_shape,sample_responses

# %% [markdown]
# ### 3.1 KL estimators
#
# `kl_estimate(logp_sample, logp_ref, kind)` takes $\log q(x)$ and $\log p(x)$ of sampled tokens
# and returns $k_1$, $k_2$ or $k_3$ elementwise, with $\log r$ = `logp_ref − logp_sample`. One
# detail matters for $k_3$: when $\log r$ is tiny, `exp(log r) − 1` cancels catastrophically and
# the result can round to a small *negative* number; `torch.expm1` computes $e^x - 1$ accurately,
# and $k_3$ must be $\ge 0$ for every input.

# %%
#| include: policy_distillation.py::kl_estimate

# %%
logq_demo = torch.log(torch.tensor(pi_s, dtype=torch.float64))
logp_demo = torch.log(torch.tensor(pi_t, dtype=torch.float64))
for kind in KL_KINDS:
    est = kl_estimate(logq_demo, logp_demo, kind)
    print(kind, [round(v, 4) for v in est.tolist()], "mean under q:", round(float((logq_demo.exp() * est).sum()), 4))
tiny = torch.tensor([2.9e-5, 5.82e-5, -2.98e-5], dtype=torch.float32)
base = torch.full((3,), -0.002)
print("naive exp − 1 − x at tiny log r (float32):", (torch.exp((base + tiny) - base) - 1 - ((base + tiny) - base)).tolist())
print("kl_estimate k3 at the same inputs:        ", kl_estimate(base, base + tiny, "k3").tolist())

# %%
#| grade: test_kl_estimate_by_hand_and_reference test_kl_estimate_k3_never_negative_and_matches_loop test_kl_estimate_unbiased_exactly test_kl_estimate_monte_carlo_means test_kl_estimate_gradients_and_raises test_kl_estimate_extreme_log_ratios_hidden

# %% [markdown]
# ### 3.2 The exact divergences
#
# `token_reverse_kl(student_logits, teacher_logits)` returns $\sum_v \pi_s(v)(\log \pi_s(v) - \log \pi_t(v))$
# over the last axis, from `log_softmax`, so it is finite for logits of any size.
# `generalized_jsd(student_logits, teacher_logits, beta)` builds $\log m$ with `logsumexp` of
# $\log \beta + \log \pi_t$ and $\log(1 - \beta) + \log \pi_s$, and returns the forward and reverse
# KL at the endpoints. Both are written without `torch.nn.functional.kl_div` (the graders' oracle).

# %%
#| include: policy_distillation.py::token_reverse_kl,generalized_jsd

# %%
s_demo = torch.tensor([0.0, 0.0], dtype=torch.float64)
t_demo = torch.log(torch.tensor(pi_t, dtype=torch.float64))
print("reverse KL", round(token_reverse_kl(s_demo, t_demo).item(), 4), "(by hand 0.1438)")
print("JSD(0.5)", round(generalized_jsd(s_demo, t_demo, 0.5).item(), 5), "(by hand 0.03382)")
near = 1e-4
print(f"beta = 0: {generalized_jsd(s_demo, t_demo, 0.0).item():.4f};  JSD(1e-4) / 1e-4 = "
      f"{generalized_jsd(s_demo, t_demo, near).item() / near:.4f};  forward KL by hand {fwd_h:.4f}")
print(f"beta = 1: {generalized_jsd(s_demo, t_demo, 1.0).item():.4f};  JSD(1 − 1e-4) / 1e-4 = "
      f"{generalized_jsd(s_demo, t_demo, 1 - near).item() / near:.4f};  reverse KL by hand {rev_h:.4f}")

# %%
#| grade: test_token_reverse_kl_by_hand_and_reference test_token_reverse_kl_matches_kl_div_and_gradients test_token_reverse_kl_properties_and_raises test_jsd_by_hand_and_reference test_jsd_endpoints_and_the_limits_that_define_them test_jsd_matches_probability_oracle_and_gradients test_jsd_symmetry_bounds_and_raises test_divergences_large_float32_logits_hidden

# %% [markdown]
# ### 3.3 Log-probabilities of a response
#
# `response_logprobs(model, ids, prompt_len)` calls the model once and picks, for every response
# token at position $P + t$, the log-softmax of the logits at position $P - 1 + t$. It keeps the
# gradient: the caller decides whether to wrap it in `torch.no_grad`.

# %%
#| include: policy_distillation.py::response_logprobs

# %%
#| grade: test_response_logprobs_by_hand test_response_logprobs_match_prefix_oracle_and_gradients test_response_logprobs_raises

# %% [markdown]
# ### 3.4 The on-policy step and the GKD step
#
# `on_policy_distill_step` samples the responses from the student, scores them with the teacher
# under `torch.no_grad`, forms the detached advantages $A_t = -d_t$ and takes one optimizer step on
# $-\mathrm{mean}(A \log \pi_s)$. It returns the sampled ids and the mean of $d$, an unbiased estimate of the
# per-token reverse KL on the student's own text. `gkd_step` draws one uniform $u$ first; if
# $u < \lambda$ it samples the responses from the student, otherwise it uses the given
# off-policy responses; then it minimises the mean JSD(β) over the response positions.

# %%
#| include: policy_distillation.py::on_policy_distill_step,gkd_step

# %%
from torch import nn


class Unigram(nn.Module):
    """A context-free categorical policy: the same logits θ at every position."""

    def __init__(self, logits):
        super().__init__()
        self.theta = nn.Parameter(torch.as_tensor(logits, dtype=torch.float64).clone())

    def forward(self, ids, targets=None):
        return self.theta.expand(ids.shape[0], ids.shape[1], -1), None


student_h, teacher_h = Unigram([0.0, 0.0]), Unigram(torch.log(torch.tensor(pi_t)))
opt_h = torch.optim.SGD(student_h.parameters(), lr=0.0)             # lr 0: only look at the gradient
ids_h, kl_h = on_policy_distill_step(student_h, teacher_h, torch.zeros(10_000, 1, dtype=torch.long), opt_h, 2,
                                     torch.Generator().manual_seed(0))
print("gradient of one step on 20 000 student tokens:", [round(g, 4) for g in student_h.theta.grad.tolist()],
      "(by hand", [round(g, 4) for g in grad_h], ")")
print(f"returned mean d = {kl_h:.4f} (the reverse KL is {rev_h:.4f})")

# %%
#| grade: test_on_policy_step_samples_from_the_student test_on_policy_step_gradient_equals_the_analytic_gradient test_on_policy_step_gradient_matches_autograd_oracle_on_a_bigram test_on_policy_step_expected_gradient_is_the_reverse_kl_gradient test_on_policy_step_reference_repeated_steps_and_protocol test_on_policy_step_raises test_on_policy_step_tiny_llama_hidden test_gkd_step_mixing_rule test_gkd_step_loss_and_gradient_match_oracle test_gkd_step_raises test_gkd_step_tiny_llama_hidden

# %% [markdown]
# ## 4. Experiment: exposure bias on a counting task
#
# **The task.** Tokens are the digits $0 \dots 7$ ($V = 8$). A prompt is one digit $a$; the
# correct response counts up from it, $c_t = (a + t) \bmod 8$ for $t = 1 \dots 8$. The **teacher**
# knows the rule and is a little noisy: at every position it puts probability $1 - \varepsilon = 0.95$
# on $c_t$ and spreads $\varepsilon$ over the other digits. It *recovers* after a mistake: its
# distribution depends on $a$ and $t$, never on earlier errors.
#
# **Two students**, both trained from zero logits with Adam:
#
# * a **table** student: one row of logits per (first digit, position, previous digit) — no
#   sharing at all between contexts;
# * an **additive** student: logits = `count[a, position] + bigram[previous digit]` — a table
#   for the counting rule plus a bigram table that can learn the shortcut "previous + 1", which
#   agrees with the rule on error-free text.
#
# **Four ways to distil**, 150 steps of 64 prompts each:
#
# 1. *off-policy* — `gkd_step` with $\lambda = 0$: the correct count-up responses (a clean data set)
#    with the teacher's distributions at every position, forward KL ($\beta = 0$);
# 2. *mixed* — `gkd_step` with $\lambda = 0.5$, the same loss;
# 3. *on-policy (GKD)* — `gkd_step` with $\lambda = 1$: responses sampled from the student;
# 4. *on-policy (sampled reverse KL)* — `on_policy_distill_step`: the student's samples, the teacher's
#    log-probs of the sampled tokens only.
#
# **What we measure** on 2000 fresh prompts, after training: the accuracy at each position of
# the student's *own* sampled responses (the teacher's is 0.95 at every position), the
# recovery rate $P(\text{token } t \text{ correct} \mid \text{token } t - 1 \text{ wrong})$ in those
# samples, and the mean forward KL from the teacher on the clean data (what off-policy training
# optimises: teacher-forced) next to the mean reverse KL on the student's own samples (what
# matters when it generates). Everything is seeded; the budget for this section is well under the
# chapter's 60 s on one CPU thread.

# %%
import time

import matplotlib.pyplot as plt

torch.set_num_threads(1)
V, L, EPS, STEPS, BATCH = 8, 8, 0.05, 150, 64
POSITIONS = torch.arange(1, L + 1)


def correct_tokens(first):
    """(B, 1) first digits -> (B, L) the correct count-up responses."""
    return (first + POSITIONS[None, :]) % V


class CountingTeacher(nn.Module):
    """Probability 1 − EPS on the correct next digit (a + position + 1) mod V, EPS spread evenly."""

    def forward(self, ids, targets=None):
        B, T = ids.shape
        right = (ids[:, :1] + torch.arange(1, T + 1)[None, :]) % V           # (B, T)
        logits = torch.full((B, T, V), math.log(EPS / (V - 1)))
        return logits.scatter(2, right[..., None], math.log(1 - EPS)), None


class TableStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(V, L + 1, V, V))            # (first, position, previous, next)

    def forward(self, ids, targets=None):
        pos = torch.arange(ids.shape[1])[None, :]
        return self.table[ids[:, :1], pos, ids], None


class AdditiveStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.count = nn.Parameter(torch.zeros(V, L + 1, V))               # (first, position, next)
        self.bigram = nn.Parameter(torch.zeros(V, V))                     # (previous, next)

    def forward(self, ids, targets=None):
        pos = torch.arange(ids.shape[1])[None, :]
        return self.count[ids[:, :1], pos] + self.bigram[ids], None


teacher = CountingTeacher()


def distil(make_student, method, seed=0):
    student = make_student()
    opt = torch.optim.Adam(student.parameters(), lr=0.2 if make_student is TableStudent else 0.05)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        prompts = torch.randint(0, V, (BATCH, 1), generator=gen)
        if method == "sampled reverse KL":
            on_policy_distill_step(student, teacher, prompts, opt, L, gen)
        else:
            lam = {"off-policy": 0.0, "mixed": 0.5, "on-policy": 1.0}[method]
            gkd_step(student, teacher, prompts, correct_tokens(prompts), opt, lam, 0.0, gen)
    return student


@torch.no_grad()
def measure(student, n=2000, seed=123):
    gen = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, V, (n, 1), generator=gen)
    own = sample_responses(student, prompts, L, gen)                        # (n, 1 + L)
    ok = own[:, 1:] == correct_tokens(prompts)                              # (n, L)
    after_error = ~ok[:, :-1]
    clean = torch.cat([prompts, correct_tokens(prompts)], dim=1)
    return {"accuracy": ok.double().mean(0),
            "recovery": ok[:, 1:][after_error].double().mean().item(),
            "errors_followed": int(after_error.sum()),
            "fwd_kl_clean": generalized_jsd(student(clean)[0][:, :-1], teacher(clean)[0][:, :-1], 0.0).mean().item(),
            "rev_kl_own": token_reverse_kl(student(own)[0][:, :-1], teacher(own)[0][:, :-1]).mean().item()}


METHODS = ["off-policy", "mixed", "on-policy", "sampled reverse KL"]
started = time.perf_counter()
results = {(name, method): measure(distil(cls, method))
           for name, cls in (("table", TableStudent), ("additive", AdditiveStudent)) for method in METHODS}
print(f"8 students distilled ({STEPS} steps × {BATCH} prompts each) and measured in {time.perf_counter() - started:.1f} s")
print(f"{'student':>8} {'method':>19} | {'acc pos 1':>9} {'acc pos 8':>9} {'recovery':>8} | "
      f"{'fwd KL, clean text':>18} {'rev KL, own text':>16}")
for (name, method), r in results.items():
    print(f"{name:>8} {method:>19} | {r['accuracy'][0]:>9.3f} {r['accuracy'][-1]:>9.3f} {r['recovery']:>8.3f} | "
          f"{r['fwd_kl_clean']:>18.2e} {r['rev_kl_own']:>16.2e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, name in zip(axes[:2], ("table", "additive")):
    for method in METHODS:
        ax.plot(POSITIONS, results[(name, method)]["accuracy"], marker="o", label=method)
    ax.axhline(1 - EPS, color="grey", ls=":", label="teacher (0.95)")
    ax.set_title(f"{name} student: accuracy of its own samples")
    ax.set_xlabel("response position t")
    ax.set_ylabel("P(token t correct)")
    ax.legend()
width = 0.2
for i, method in enumerate(METHODS):
    xs = [j + (i - 1.5) * width for j in range(4)]
    vals = [results[(n, method)][k] for n in ("table", "additive") for k in ("fwd_kl_clean", "rev_kl_own")]
    axes[2].bar(xs, vals, width, label=method)
axes[2].set_xticks(range(4), ["table:\nfwd KL clean", "table:\nrev KL own", "additive:\nfwd KL clean",
                               "additive:\nrev KL own"])
axes[2].set_yscale("log")
axes[2].set_ylabel("mean per-token KL (log scale)")
axes[2].set_title("teacher-forced vs free-running")
axes[2].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
plt.tight_layout()
plt.show()

# %%
for name in ("table", "additive"):
    off, on = results[(name, "off-policy")], results[(name, "on-policy")]
    print(f"{name} student: off-policy accuracy {off['accuracy'][0]:.3f} at position 1 → {off['accuracy'][-1]:.3f} at "
          f"position 8; on-policy {on['accuracy'][0]:.3f} → {on['accuracy'][-1]:.3f}")
    print(f"  after one of its own errors the next token is right with probability {off['recovery']:.3f} "
          f"(off-policy, {off['errors_followed']} errors followed) vs {on['recovery']:.3f} (on-policy, "
          f"{on['errors_followed']} errors); the teacher's is {1 - EPS:.2f}")
    ratio_clean = off["fwd_kl_clean"] / on["fwd_kl_clean"]
    ratio_own = off["rev_kl_own"] / on["rev_kl_own"]
    print(f"  KL of the off-policy student divided by that of the on-policy one: {ratio_clean:.3g} on the clean "
          f"text (teacher-forced), {ratio_own:.3g} on the student's own text")

# %% [markdown]
# **Reading the numbers.** The teacher is right with probability 0.95 at every position, so a
# student that imitated it everywhere would have a flat accuracy curve at 0.95 and a recovery
# rate of 0.95. An off-policy student only ever saw error-free text: at a context that contains
# one of its own mistakes, the table student has never been trained (its logits there are still
# zero, uniform over 8 digits), and the additive student has two tables that disagree — the
# counting table votes for the right digit, the bigram table for "previous + 1". The lines above
# print, for each student, how the off-policy accuracy changes from position 1 to position 8,
# the recovery rates of the off-policy and on-policy students, and the ratio of the off-policy to
# the on-policy student's KL, once teacher-forced on clean text and once on the student's own
# samples. The gap between those two ratios is the exposure bias: an evaluation on clean text,
# the only text off-policy training sees, cannot show it. The two on-policy
# recipes differ in what the teacher must supply: GKD needs the teacher's whole distribution at
# every position, the sampled-reverse-KL step only the log-probability of each sampled token.
#
# ## 5. Summary
#
# * Off-policy distillation trains on text the student did not write; on-policy distillation samples
#   the training text from the student and lets the teacher grade it, so the student learns what
#   to do after its own mistakes.
# * Per token, the on-policy signal is $d_t = \log \pi_s(x_t) - \log \pi_t(x_t)$, the $k_1$ estimate of the
#   reverse KL; used as a detached advantage $A_t = -d_t$ in a policy gradient, its expected gradient is
#   $\nabla_\theta \mathrm{KL}(\pi_s \,\|\, \pi_t)$.
# * $k_1 = -\log r$ and $k_3 = (r - 1) - \log r$ are unbiased estimates of $\mathrm{KL}(q \,\|\, p)$ with
#   $r = p/q$; $k_3 \ge 0$ (compute $r - 1$ with `expm1`); $k_2 = \frac{1}{2}(\log r)^2$ is biased.
# * GKD's JSD(β) runs from forward KL ($\beta = 0$) to reverse KL ($\beta = 1$) as rescaled limits, and λ
#   sets the share of on-policy batches.
#
# ## 6. Exercises
#
# 1. **By hand.** Repeat section 2 with the teacher $(0.9, 0.1)$. Which estimator has the larger
#    spread between the two tokens, $k_1$ or $k_3$? Check with `kl_estimate`.
# 2. **Break it.** Remove the `.detach()` of the advantage in `on_policy_distill_step` and rerun the
#    gradient demo of section 3.4. What does the gradient converge to instead?
# 3. **Noisy data.** Replace the clean off-policy responses by the teacher's own samples
#    (`sample_responses(teacher, …)`). The teacher makes mistakes 5% of the time: how much of the
#    off-policy student's recovery does that buy?
# 4. **β.** Run the on-policy GKD student with $\beta = 0.5$ and $\beta = 1$. Do the accuracy curves change?
# 5. **Variance.** Estimate the variance of $k_1$ and $k_3$ over 10 000 samples for the distributions of
#    section 2, and for a teacher $(0.99, 0.01)$.
