"""Graders for 14_rlhf (losses): bradley_terry_loss, dpo_loss, gae, ppo_policy_loss,
clipped_value_loss, kl_penalty, grpo_advantages.

Evidence per unit:
  - hand-computed values (small cases written out in the tests, as in the chapter);
  - golden data (reference/14_rlhf);
  - independent oracles from rlhf_oracle: GAE as a reverse Python loop per trajectory,
    PPO and value losses token by token with branches instead of min/max/clamp, GRPO
    advantages group by group in Python, F.softplus for the logistic losses;
  - properties: gradient signs (DPO), zero gradient where PPO's clip is active, no gradient
    into constants (old log-probs, advantages, reference log-probs, GAE targets), exact
    expectations of the KL estimators under a discrete π, finite losses at huge margins.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import rlhf_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds

TOPIC = O.TOPIC


def _ref(name):
    return reference.load(TOPIC, name)


# ================================================================= bradley_terry_loss

@pytest.mark.points(2)
def test_bradley_terry_by_hand_and_reference(impl):
    rc, rr = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])
    # −log σ(1) = log(1 + e^−1) = 0.31326, −log σ(0) = log 2 = 0.69315, −log σ(−1) = 1.31326
    expected = torch.tensor((math.log1p(math.exp(-1)) + math.log(2) + math.log1p(math.exp(1))) / 3)
    case = check.describe(r_chosen=rc, r_rejected=rr)
    check.close(impl.bradley_terry_loss(rc, rr), expected, unit="bradley_terry_loss", case=case, kind="loss",
                mistakes={"chosen and rejected swapped": -F.logsigmoid(rr - rc).mean(),
                          "sum over pairs instead of the mean": -F.logsigmoid(rc - rr).sum()})
    rec = _ref("bradley_terry")
    a, b = rec["r_chosen"].clone().requires_grad_(True), rec["r_rejected"].clone().requires_grad_(True)
    loss = impl.bradley_terry_loss(a, b)
    case = check.describe(r_chosen=rec["r_chosen"], r_rejected=rec["r_rejected"])
    check.close(loss.reshape(1), rec["loss"], unit="bradley_terry_loss", case=case, kind="loss",
                mistakes={"chosen and rejected swapped": -F.logsigmoid(rec["r_rejected"] - rec["r_chosen"]).mean()
                          .reshape(1)})
    loss.backward()
    check.close(a.grad, rec["grad_chosen"], unit="bradley_terry_loss", case=case, kind="gradient",
                what="gradient w.r.t. r_chosen")
    check.close(b.grad, rec["grad_rejected"], unit="bradley_terry_loss", case=case, kind="gradient",
                what="gradient w.r.t. r_rejected")


@pytest.mark.points(2)
@examples(10)
@given(n=st.integers(1, 9), dtype=float_dtypes(), scale=st.sampled_from([0.5, 3.0, 30.0]), seed=seeds())
def test_bradley_terry_matches_oracle_and_gradients(impl, n, dtype, scale, seed):
    rc, rr = tensors.randn((n,), seed, dtype, scale), tensors.randn((n,), seed + 1, dtype, scale)
    case = check.describe(r_chosen=rc, r_rejected=rr)

    def oracle(c, r):
        return F.softplus(r - c).mean()

    check.close(impl.bradley_terry_loss(rc, rr), oracle(rc, rr), unit="bradley_terry_loss", case=case,
                kind="loss", mistakes={"chosen and rejected swapped": oracle(rr, rc)})
    check.grads(impl.bradley_terry_loss, oracle, [rc, rr], unit="bradley_terry_loss", case=case,
                names=["r_chosen", "r_rejected"])


@pytest.mark.points(2)
def test_bradley_terry_huge_margins_and_gradcheck(impl):
    for dtype in (torch.float32, torch.float64):
        rc, rr = torch.tensor([-100.0, 1e4, 0.0], dtype=dtype), torch.tensor([100.0, -1e4, 0.0], dtype=dtype)
        case = check.describe(r_chosen=rc, r_rejected=rr)
        out = impl.bradley_terry_loss(rc, rr)
        check.that(bool(torch.isfinite(out)), "bradley_terry_loss", f"the loss must be finite, got {out.item()}",
                   "known mistake: log(sigmoid(·)) underflows for large negative margins; use F.logsigmoid",
                   case=case)
        check.close(out, torch.tensor((200.0 + math.log(2)) / 3, dtype=dtype), unit="bradley_terry_loss",
                    case=case, kind="loss")
        a = rc.clone().requires_grad_(True)
        impl.bradley_terry_loss(a, rr).backward()
        check.close(a.grad, torch.tensor([-1 / 3, 0.0, -1 / 6], dtype=dtype), unit="bradley_terry_loss",
                    case=case, kind="gradient", what="gradient w.r.t. r_chosen (−σ(−margin)/B)")
    check.gradcheck(impl.bradley_terry_loss, [tensors.randn((1,), 3), tensors.randn((1,), 4)],
                    unit="bradley_terry_loss", case="B = 1")


@pytest.mark.points(1)
def test_bradley_terry_raises(impl):
    ok = torch.zeros(3)
    for rc, rr, why in [(ok, torch.zeros(4), "shapes differ"), (torch.zeros(2, 3), torch.zeros(2, 3), "not (B,)"),
                        (torch.zeros(0), torch.zeros(0), "B = 0")]:
        check.expect_raises(ValueError, impl.bradley_terry_loss, rc, rr, unit="bradley_terry_loss",
                            case=check.describe(r_chosen=rc, r_rejected=rr), why=why)


# ================================================================= dpo_loss

def _dpo_oracle(pc, pr, rc, rr, beta):
    return F.softplus(-beta * ((pc - rc.detach()) - (pr - rr.detach()))).mean()


@pytest.mark.points(2)
def test_dpo_by_hand_and_reference(impl):
    # Policy log-ratios: chosen −1 − (−2) = 1, rejected −3 − (−3) = 0; β = 0.5 -> −log σ(0.5) = 0.474077.
    args = [torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-3.0])]
    case = check.describe(pi_chosen=args[0], pi_rejected=args[1], ref_chosen=args[2], ref_rejected=args[3], beta=0.5)
    check.close(impl.dpo_loss(*args, 0.5), torch.tensor(math.log1p(math.exp(-0.5))), unit="dpo_loss", case=case,
                kind="loss", mistakes={"chosen and rejected swapped": torch.tensor(math.log1p(math.exp(0.5))),
                                       "β's meaning inverted (margin divided by β)":
                                           torch.tensor(math.log1p(math.exp(-2.0))),
                                       "reference log-probs added instead of subtracted":
                                           torch.tensor(math.log1p(math.exp(-0.5 * (-3 + 6))))})
    rec = _ref("dpo")
    beta = float(rec["beta"][0])
    leaves = [rec["pi_chosen"].clone().requires_grad_(True), rec["pi_rejected"].clone().requires_grad_(True)]
    loss = impl.dpo_loss(leaves[0], leaves[1], rec["ref_chosen"], rec["ref_rejected"], beta)
    case = check.describe(**{k: rec[k] for k in ("pi_chosen", "pi_rejected", "ref_chosen", "ref_rejected")}, beta=beta)
    check.close(loss.reshape(1), rec["loss"], unit="dpo_loss", case=case, kind="loss",
                mistakes={"β's meaning inverted (margin divided by β)":
                          _dpo_oracle(rec["pi_chosen"], rec["pi_rejected"], rec["ref_chosen"], rec["ref_rejected"],
                                      1 / beta).reshape(1)})
    loss.backward()
    check.close(leaves[0].grad, rec["grad_chosen"], unit="dpo_loss", case=case, kind="gradient",
                what="gradient w.r.t. pi_chosen")
    check.close(leaves[1].grad, rec["grad_rejected"], unit="dpo_loss", case=case, kind="gradient",
                what="gradient w.r.t. pi_rejected")


@pytest.mark.points(3)
@examples(10)
@given(n=st.integers(1, 7), beta=st.sampled_from([0.05, 0.5, 2.0]), dtype=float_dtypes(), seed=seeds())
def test_dpo_gradient_signs_and_oracle(impl, n, beta, dtype, seed):
    pc, pr, rc, rr = (tensors.randn((n,), seed + i, dtype, 2.0) - 8 for i in range(4))
    case = check.describe(pi_chosen=pc, pi_rejected=pr, ref_chosen=rc, ref_rejected=rr, beta=beta)
    leaves = [x.clone().requires_grad_(True) for x in (pc, pr, rc, rr)]
    loss = impl.dpo_loss(*leaves, beta)
    check.close(loss, _dpo_oracle(pc, pr, rc, rr, beta), unit="dpo_loss", case=case, kind="loss",
                mistakes={"chosen and rejected swapped": _dpo_oracle(pr, pc, rr, rc, beta),
                          "β's meaning inverted (margin divided by β)": _dpo_oracle(pc, pr, rc, rr, 1 / beta)})
    loss.backward()
    for leaf, name in zip(leaves[2:], ("ref_chosen", "ref_rejected")):
        check.that(leaf.grad is None or bool((leaf.grad == 0).all()), "dpo_loss",
                   f"no gradient may reach {name} (the reference is frozen)",
                   "known mistake: reference log-probs not detached", case=case)
    check.that(bool((leaves[0].grad < 0).all()), "dpo_loss",
               "the derivative w.r.t. pi_chosen must be negative (the loss falls as the chosen response "
               f"gets likelier), got {leaves[0].grad.tolist()}", case=case)
    check.that(bool((leaves[1].grad > 0).all()), "dpo_loss",
               f"the derivative w.r.t. pi_rejected must be positive, got {leaves[1].grad.tolist()}", case=case)
    check.grads(lambda a, b: impl.dpo_loss(a, b, rc, rr, beta), lambda a, b: _dpo_oracle(a, b, rc, rr, beta),
                [pc, pr], unit="dpo_loss", case=case, names=["pi_chosen", "pi_rejected"])


@pytest.mark.points(1)
def test_dpo_huge_margins_and_raises(impl):
    args = [torch.tensor([0.0, -500.0]), torch.tensor([-500.0, 0.0]), torch.zeros(2), torch.zeros(2)]
    out = impl.dpo_loss(*args, 1.0)
    check.close(out, torch.tensor(250.0), unit="dpo_loss", kind="loss",
                case=check.describe(pi_chosen=args[0], pi_rejected=args[1], beta=1.0))
    for bad, why in [((torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2), 0.1), "shapes differ"),
                     ((torch.zeros(0),) * 4 + (0.1,), "B = 0"),
                     ((torch.zeros(2, 2),) * 4 + (0.1,), "not (B,)"),
                     ((torch.zeros(2),) * 4 + (0.0,), "beta ≤ 0"), ((torch.zeros(2),) * 4 + (-1.0,), "beta ≤ 0")]:
        check.expect_raises(ValueError, impl.dpo_loss, *bad, unit="dpo_loss", why=why,
                            case=check.describe(shape=tuple(bad[0].shape), beta=bad[4]))


# ================================================================= gae

def _gae_mistakes(rewards, values, dones, gamma, lam):
    def loop(reset_delta: bool, reset_acc: bool, lam_=lam):
        T = rewards.shape[-1]
        nd = 1.0 - dones.double()
        adv = torch.zeros(rewards.shape, dtype=torch.float64)
        nxt = torch.zeros(rewards.shape[:-1], dtype=torch.float64)
        r, v = rewards.double(), values.double()
        for t in reversed(range(T)):
            m1 = nd[..., t] if reset_delta else 1.0
            m2 = nd[..., t] if reset_acc else 1.0
            nxt = r[..., t] + gamma * m1 * v[..., t + 1] - v[..., t] + gamma * lam_ * m2 * nxt
            adv[..., t] = nxt
        return adv.to(values.dtype)
    return {"GAE not reset at episode ends": lambda: loop(False, False),
            "the accumulated advantage is not reset at episode ends (only the bootstrap value is)":
                lambda: loop(True, False),
            "the bootstrap value is not cut at episode ends (only the accumulation is reset)":
                lambda: loop(False, True),
            "λ ignored (one-step TD advantages)": lambda: loop(True, True, 0.0)}


@pytest.mark.points(2)
def test_gae_by_hand(impl):
    # One trajectory of 3 steps, γ = 0.5, λ = 1, the episode ends at step 1:
    #   step 2: δ = 1 + 0.5·4 − 2 = 1,   A = 1
    #   step 1: done, δ = 2 − 1 = 1,     A = 1           (no bootstrap, no accumulation)
    #   step 0: δ = 0 + 0.5·1 − 3 = −2.5, A = −2.5 + 0.5·1·1 = −2
    rewards, values = torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([[3.0, 1.0, 2.0, 4.0]])
    dones = torch.tensor([[False, True, False]])
    adv, ret = impl.gae(rewards, values, dones, 0.5, 1.0)
    case = check.describe(rewards=rewards, values=values, dones=dones, gamma=0.5, lam=1.0)
    check.close(adv, torch.tensor([[-2.0, 1.0, 1.0]]), unit="gae", case=case, kind="reduction", what="advantages",
                mistakes=_gae_mistakes(rewards, values, dones, 0.5, 1.0))
    check.close(ret, torch.tensor([[1.0, 2.0, 3.0]]), unit="gae", case=case, kind="reduction", what="returns",
                mistakes={"returns computed with the next state's values": adv + values[..., 1:]})


@pytest.mark.points(3)
@examples(20)
@given(batch=st.sampled_from([(), (1,), (3,), (2, 2)]), T=st.integers(1, 9), gamma=st.sampled_from([0.0, 0.9, 1.0]),
       lam=st.sampled_from([0.0, 0.7, 1.0]), p_done=st.sampled_from([0.0, 0.3, 1.0]), dtype=float_dtypes(),
       seed=seeds())
def test_gae_matches_reverse_loop_oracle(impl, batch, T, gamma, lam, p_done, dtype, seed):
    rewards = tensors.randn(batch + (T,), seed, dtype)
    values = tensors.randn(batch + (T + 1,), seed + 1, dtype)
    dones = tensors.rand(batch + (T,), seed + 2) < p_done
    adv, ret = impl.gae(rewards, values, dones, gamma, lam)
    exp_adv, exp_ret = O.gae_loop(rewards, values, dones, gamma, lam)
    case = check.describe(rewards=rewards, values=values, dones=dones, gamma=gamma, lam=lam)
    check.close(adv, exp_adv, unit="gae", case=case, kind="reduction", what="advantages",
                mistakes=_gae_mistakes(rewards, values, dones, gamma, lam))
    check.close(ret, exp_ret, unit="gae", case=case, kind="reduction", what="returns")


@pytest.mark.points(2)
def test_gae_special_cases_reference_and_no_grad(impl):
    rec = _ref("gae")
    adv, ret = impl.gae(rec["rewards"], rec["values"], rec["dones"], float(rec["gamma"][0]), float(rec["lam"][0]))
    case = check.describe(rewards=rec["rewards"], dones=rec["dones"], gamma=float(rec["gamma"][0]))
    check.close(adv, rec["advantages"], unit="gae", case=case, kind="reduction", what="advantages (reference)")
    check.close(ret, rec["returns"], unit="gae", case=case, kind="reduction", what="returns (reference)")
    # λ = 1, γ = 1, no episode end: A_t = Σ_{s≥t} r_s + V_T − V_t (Monte-Carlo return minus the value).
    r, v = tensors.randn((2, 6), 5), tensors.randn((2, 7), 6).requires_grad_(True)
    adv, ret = impl.gae(r, v, torch.zeros(2, 6, dtype=torch.bool), 1.0, 1.0)
    mc = r.flip(-1).cumsum(-1).flip(-1) + v.detach()[:, -1:]
    case = check.describe(rewards=r, gamma=1.0, lam=1.0)
    check.close(ret, mc, unit="gae", case=case, kind="reduction", what="returns with γ = λ = 1 (Monte-Carlo returns)")
    check.that(not adv.requires_grad and not ret.requires_grad, "gae",
               "advantages and returns are targets: they must carry no gradient when values requires grad "
               "(detach values)", "known mistake: advantages not detached", case=case)
    check.equal(adv.dtype, torch.float64, unit="gae", what="dtype of the advantages", case=case)


@pytest.mark.points(1)
def test_gae_raises(impl):
    r, v, d = torch.zeros(2, 4), torch.zeros(2, 5), torch.zeros(2, 4, dtype=torch.bool)
    for args, why in [((r, torch.zeros(2, 4), d, 0.9, 0.9), "values must have T + 1 steps"),
                      ((r, v, torch.zeros(2, 3, dtype=torch.bool), 0.9, 0.9), "dones must match rewards"),
                      ((r, torch.zeros(3, 5), d, 0.9, 0.9), "batch shapes differ"),
                      ((r, v, d, 1.5, 0.9), "gamma outside [0, 1]"), ((r, v, d, 0.9, -0.1), "lam outside [0, 1]"),
                      ((r, v, d, -0.1, 0.9), "gamma outside [0, 1]"), ((r, v, d, 0.9, 1.1), "lam outside [0, 1]")]:
        check.expect_raises(ValueError, impl.gae, *args, unit="gae", why=why,
                            case=check.describe(rewards=args[0], values=args[1], dones=args[2], gamma=args[3],
                                                lam=args[4]))


# ================================================================= ppo_policy_loss

def _ppo_mistakes(new, old, adv, eps, mask):
    ratio = torch.exp(new - old)
    clipped = ratio.clamp(1 - eps, 1 + eps)
    per_min = -torch.min(ratio * adv, clipped * adv)
    m = mask.to(new.dtype)
    seq_mean = ((per_min * m).sum(-1) / m.sum(-1).clamp_min(1))[m.sum(-1) > 0].mean()
    return {"max instead of min (the optimistic bound)": lambda: (-torch.max(ratio * adv, clipped * adv) * m).sum()
            / m.sum(),
            "ratio not clipped": lambda: (-(ratio * adv) * m).sum() / m.sum(),
            "a per-sequence mean where the per-token mean is stated (length bias)": lambda: seq_mean,
            "objective not negated (the loss should be minimised)": lambda: -(per_min * m).sum() / m.sum(),
            "mean over all positions, masked ones included": lambda: (per_min * m).mean()}


@pytest.mark.points(2)
def test_ppo_by_hand_and_reference(impl):
    # ε = 0.2. Token 0: ratio e^0.5 = 1.6487, A = 1 -> min(1.6487, 1.2) = 1.2.
    # Token 1: ratio e^−0.5 = 0.6065, A = 1 -> min(0.6065, 0.8) = 0.6065.
    # Token 2: ratio e^0.5, A = −2 -> min(−3.2974, −2.4) = −3.2974.  Token 3 masked.
    new = torch.tensor([[0.5, -0.5, 0.5, 9.0]], dtype=torch.float64)
    old, adv = torch.zeros(1, 4, dtype=torch.float64), torch.tensor([[1.0, 1.0, -2.0, 5.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False]])
    expected = torch.tensor(-(1.2 + math.exp(-0.5) - 2 * math.exp(0.5)) / 3, dtype=torch.float64)
    case = check.describe(logp_new=new, logp_old=old, advantages=adv, mask=mask, clip_eps=0.2)
    check.close(impl.ppo_policy_loss(new, old, adv, 0.2, mask), expected, unit="ppo_policy_loss", case=case,
                kind="loss", mistakes=_ppo_mistakes(new, old, adv, 0.2, mask))
    rec = _ref("ppo")
    eps = float(rec["clip_eps"][0])
    leaf = rec["logp_new"].clone().requires_grad_(True)
    loss = impl.ppo_policy_loss(leaf, rec["logp_old"], rec["advantages"], eps, rec["mask"])
    case = check.describe(logp_new=rec["logp_new"], mask=rec["mask"], clip_eps=eps)
    check.close(loss.reshape(1), rec["loss"], unit="ppo_policy_loss", case=case, kind="loss",
                mistakes={k: (lambda f=f: f().reshape(1)) for k, f in
                          _ppo_mistakes(rec["logp_new"], rec["logp_old"], rec["advantages"], eps, rec["mask"]).items()})
    loss.backward()
    check.close(leaf.grad, rec["grad"], unit="ppo_policy_loss", case=case, kind="gradient",
                what="gradient w.r.t. logp_new")


@pytest.mark.points(2)
@examples(15)
@given(shape=st.sampled_from([(1, 1), (2, 5), (4, 3)]), eps=st.sampled_from([0.1, 0.2, 0.3]),
       spread=st.sampled_from([0.05, 0.5]), dtype=float_dtypes(), seed=seeds())
def test_ppo_matches_oracle(impl, shape, eps, spread, dtype, seed):
    old = tensors.randn(shape, seed, dtype) - 2
    new = old + tensors.randn(shape, seed + 1, dtype, spread)
    adv = tensors.randn(shape, seed + 2, dtype)
    mask = tensors.bool_mask(shape, seed + 3)
    case = check.describe(logp_new=new, logp_old=old, advantages=adv, mask=mask, clip_eps=eps)
    check.close(impl.ppo_policy_loss(new, old, adv, eps, mask), O.ppo_loss_loop(new, old, adv, eps, mask).to(dtype),
                unit="ppo_policy_loss", case=case, kind="loss", mistakes=_ppo_mistakes(new, old, adv, eps, mask))
    check.grads(lambda x: impl.ppo_policy_loss(x, old, adv, eps, mask),
                lambda x: O.ppo_loss_torch(x, old, adv, eps, mask), [new], unit="ppo_policy_loss", case=case,
                names=["logp_new"])


def _ppo_wrong_grads(new, old, adv, eps, names):
    """name -> the gradient w.r.t. logp_new of that catalogued wrong loss (computed on demand)."""
    def grad_of(name):
        leaf = new.detach().clone().requires_grad_(True)
        _ppo_mistakes(leaf, old.detach(), adv.detach(), eps, torch.ones_like(leaf, dtype=torch.bool))[name]().backward()
        return leaf.grad
    return {name: (lambda name=name: grad_of(name)) for name in names}


@pytest.mark.points(3)
def test_ppo_gradient_zero_where_clip_active(impl):
    # ε = 0.2; the ratios e^Δ: 1.35, 0.74, 1.35, 0.74, 1.05, 0.95 against A = +, −, −, +, +, −.
    # The clip is active (zero gradient) exactly for tokens 0 and 1; tokens 2 and 3 are outside
    # the interval on the pessimistic side and keep the unclipped gradient −ratio·A / n.
    delta = torch.tensor([0.3, -0.3, 0.3, -0.3, 0.05, -0.05], dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, -2.0, 0.5, 1.5, -0.7], dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        old = (torch.full((6,), -1.5, dtype=torch.float64)).to(dtype).requires_grad_(True)
        new = (old.detach().double() + delta).to(dtype).requires_grad_(True)
        a = adv.detach().clone().to(dtype).requires_grad_(True)
        mask = torch.ones(6, dtype=torch.bool)
        case = check.describe(ratio=delta.exp(), advantages=adv, clip_eps=0.2, dtype=str(dtype))
        impl.ppo_policy_loss(new.view(2, 3), old.view(2, 3), a.view(2, 3), 0.2, mask.view(2, 3)).backward()
        expected = -(delta.exp() * adv) / 6
        expected[:2] = 0.0
        mistakes = _ppo_wrong_grads(new, old, a, 0.2, ["ratio not clipped", "max instead of min (the optimistic bound)"])
        check.that(new.grad is not None and bool((new.grad[:2] == 0).all()), "ppo_policy_loss",
                   "where the clip is active the gradient w.r.t. logp_new must be exactly zero",
                   f"got {None if new.grad is None else new.grad.tolist()}", case=case)
        check.close(new.grad, expected.to(dtype), unit="ppo_policy_loss", case=case, kind="gradient",
                    what="gradient w.r.t. logp_new", mistakes=mistakes)
        for leaf, name in ((old, "logp_old"), (a, "advantages")):
            check.that(leaf.grad is None or bool((leaf.grad == 0).all()), "ppo_policy_loss",
                       f"no gradient may reach {name}",
                       "known mistake: advantages not detached" if name == "advantages"
                       else "known mistake: old log-probs not detached", case=case)


@pytest.mark.points(1)
def test_ppo_input_forms_and_raises(impl):
    old = tensors.randn((5, 3), 40) - 2
    new, adv = old + tensors.randn((5, 3), 41, scale=0.3), tensors.randn((5, 3), 42)
    mask = tensors.bool_mask((5, 3), 43)
    args = (new.T, old.T, adv.T, 0.2, mask.T)                  # transposed views: not contiguous
    case = check.describe(logp_new=new.T, note="non-contiguous transposed inputs")
    check.close(impl.ppo_policy_loss(*args), O.ppo_loss_loop(*args), unit="ppo_policy_loss", case=case, kind="loss")
    f32 = impl.ppo_policy_loss(new.float(), old.float(), adv.float(), 0.2, mask)
    check.equal(f32.dtype, torch.float32, unit="ppo_policy_loss", what="dtype of the loss for float32 inputs")
    z = torch.zeros(2, 3)
    for bad, why in [((z, z, torch.zeros(2, 2), 0.2, torch.ones(2, 3, dtype=torch.bool)), "shapes differ"),
                     ((z, z, z, 0.0, torch.ones(2, 3, dtype=torch.bool)), "clip_eps ≤ 0"),
                     ((z, z, z, 0.2, torch.zeros(2, 3, dtype=torch.bool)), "mask has no True position")]:
        check.expect_raises(ValueError, impl.ppo_policy_loss, *bad, unit="ppo_policy_loss", why=why,
                            case=check.describe(advantages=bad[2], clip_eps=bad[3], mask=bad[4]))


# ================================================================= clipped_value_loss

@pytest.mark.points(2)
def test_value_loss_by_hand_oracle_and_gradients(impl):
    # ε = 0.2. Token 0: v = 1.5, old = 1, R = 2: v_clip = 1.2 -> ½·max(0.25, 0.64) = 0.32.
    # Token 1: v = 0.9, old = 1, R = 0: inside the clip -> ½·0.81 = 0.405. Mean 0.3625.
    v, o, r = torch.tensor([[1.5, 0.9]]), torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    case = check.describe(values=v, old_values=o, returns=r, clip_eps=0.2)
    check.close(impl.clipped_value_loss(v, o, r, 0.2, mask), torch.tensor(0.3625), unit="clipped_value_loss",
                case=case, kind="loss", mistakes={"min instead of max (the clip lets the error shrink)":
                                                  torch.tensor((0.125 + 0.405) / 2),
                                                  "the ½ left out": torch.tensor(0.725)})
    rec = _ref("value_loss")
    eps = float(rec["clip_eps"][0])
    leaf = rec["values"].clone().requires_grad_(True)
    loss = impl.clipped_value_loss(leaf, rec["old_values"], rec["returns"], eps, rec["mask"])
    case = check.describe(values=rec["values"], mask=rec["mask"], clip_eps=eps)
    check.close(loss.reshape(1), rec["loss"], unit="clipped_value_loss", case=case, kind="loss")
    loss.backward()
    check.close(leaf.grad, rec["grad"], unit="clipped_value_loss", case=case, kind="gradient", what="gradient")
    for seed in range(3):
        old = tensors.randn((3, 4), 60 + seed)
        vals = (old + tensors.randn((3, 4), 70 + seed, scale=0.4)).requires_grad_(True)
        ret, m = tensors.randn((3, 4), 80 + seed), tensors.bool_mask((3, 4), 90 + seed)
        oldg, retg = old.clone().requires_grad_(True), ret.clone().requires_grad_(True)
        out = impl.clipped_value_loss(vals, oldg, retg, 0.25, m)
        case = check.describe(values=vals, old_values=old, returns=ret, mask=m, clip_eps=0.25)
        check.close(out, O.value_loss_loop(vals, old, ret, 0.25, m), unit="clipped_value_loss", case=case,
                    kind="loss")
        out.backward()
        check.that((oldg.grad is None or bool((oldg.grad == 0).all())) and
                   (retg.grad is None or bool((retg.grad == 0).all())), "clipped_value_loss",
                   "no gradient may reach old_values or returns (they are constants)", case=case)
    check.gradcheck(lambda x: impl.clipped_value_loss(x, old.double(), ret.double(), 0.25, m),
                    [vals.detach()], unit="clipped_value_loss", case=case)


@pytest.mark.points(1)
def test_value_loss_raises(impl):
    z, m = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)
    for bad, why in [((z, z, torch.zeros(3), 0.2, m), "shapes differ"), ((z, z, z, -0.1, m), "clip_eps ≤ 0"),
                     ((z, z, z, 0.0, m), "clip_eps ≤ 0"),
                     ((z, z, z, 0.2, torch.zeros(2, 3, dtype=torch.bool)), "mask has no True position")]:
        check.expect_raises(ValueError, impl.clipped_value_loss, *bad, unit="clipped_value_loss", why=why,
                            case=check.describe(returns=bad[2], clip_eps=bad[3], mask=bad[4]))


# ================================================================= kl_penalty

@pytest.mark.points(2)
@examples(8)
@given(V=st.integers(2, 8), dtype=float_dtypes(), seed=seeds())
def test_kl_estimators_values_and_expectations(impl, V, dtype, seed):
    logp = tensors.randn((V,), seed, dtype, 2.0).log_softmax(-1)
    logp_ref = tensors.randn((V,), seed + 1, dtype, 2.0).log_softmax(-1)
    log_r = logp_ref - logp
    case = check.describe(logp=logp, logp_ref=logp_ref)
    formulas = {"k1": -log_r, "k2": 0.5 * log_r ** 2, "k3": log_r.exp() - 1 - log_r}
    for kind, expected in formulas.items():
        check.close(impl.kl_penalty(logp, logp_ref, kind), expected, unit="kl_penalty", case=case + f"; kind={kind}",
                    kind="elementwise", mistakes={"the KL penalty with the wrong sign (log π_ref − log π)": log_r,
                                                  "k3 with the ratio inverted (π/π_ref)":
                                                      (-log_r).exp() - 1 + log_r})
    check.close(impl.kl_penalty(logp, logp_ref), formulas["k3"], unit="kl_penalty", case=case + "; default kind",
                kind="elementwise", what="output of the default kind (k3)")
    # Exact expectations under π: Σ_x π(x)·k(x) = KL(π ‖ π_ref) for k1 and k3.
    p = logp.exp()
    kl = (p * (logp - logp_ref)).sum()
    for kind in ("k1", "k3"):
        check.close((p * impl.kl_penalty(logp, logp_ref, kind)).sum(), kl, unit="kl_penalty", kind="reduction",
                    case=case + f"; kind={kind}", what=f"Σ_x π(x)·{kind}(x), which must equal KL(π ‖ π_ref)",
                    mistakes={"the KL penalty with the wrong sign (log π_ref − log π)": -kl})
    for kind in ("k2", "k3"):
        out = impl.kl_penalty(logp, logp_ref, kind)
        check.that(bool((out >= 0).all()), "kl_penalty", f"{kind} must be ≥ 0 everywhere, got {out.tolist()}",
                   case=case)


@pytest.mark.points(1)
def test_kl_gradients_and_raises(impl):
    logp, logp_ref = tensors.randn((2, 3), 50) - 1, tensors.randn((2, 3), 51) - 1
    for kind, grad in (("k1", lambda lp, lr: torch.ones_like(lp)), ("k2", lambda lp, lr: lp - lr),
                       ("k3", lambda lp, lr: 1 - (lr - lp).exp())):
        a, b = logp.clone().requires_grad_(True), logp_ref.clone().requires_grad_(True)
        impl.kl_penalty(a, b, kind).sum().backward()
        case = check.describe(logp=logp, logp_ref=logp_ref, kind=kind)
        check.close(a.grad, grad(logp, logp_ref), unit="kl_penalty", case=case, kind="gradient",
                    what="gradient w.r.t. logp")
        check.that(b.grad is None or bool((b.grad == 0).all()), "kl_penalty",
                   "no gradient may reach logp_ref (the reference is frozen)",
                   "known mistake: reference log-probs not detached", case=case)
    for args, why in [((logp, logp_ref, "k4"), "unknown kind"), ((logp, logp_ref, "K1"), "unknown kind"),
                      ((logp, logp_ref[:, :2], "k1"), "shapes differ")]:
        check.expect_raises(ValueError, impl.kl_penalty, *args, unit="kl_penalty", why=why,
                            case=check.describe(logp=args[0], logp_ref=args[1], kind=args[2]))


# ================================================================= grpo_advantages

def _grpo_mistakes(rewards, G, eps=1e-6):
    groups = rewards.view(-1, G)
    return {"advantages not normalised within groups (whole-batch statistics)":
                lambda: (rewards - rewards.mean()) / (rewards.std() + eps),
            "not divided by the group's standard deviation":
                lambda: (groups - groups.mean(1, keepdim=True)).reshape(-1),
            "population standard deviation (divisor G) instead of Bessel's (G − 1)":
                lambda: ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, unbiased=False, keepdim=True) + eps))
                .reshape(-1),
            "groups taken as interleaved (reshape(G, -1)) instead of consecutive":
                lambda: ((rewards.view(G, -1) - rewards.view(G, -1).mean(0)) / (rewards.view(G, -1).std(0) + eps))
                .reshape(-1)}


@pytest.mark.points(2)
def test_grpo_advantages_by_hand_and_reference(impl):
    # Group 1: [1, 0, 0, 1]: mean 0.5, sample std sqrt(1/3) = 0.57735 -> ±0.866025.
    # Group 2: [1, 1, 1, 1]: all equal -> 0.
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    s = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    expected = torch.tensor([s, -s, -s, s, 0, 0, 0, 0], dtype=torch.float64)
    case = check.describe(rewards=rewards, group_size=4)
    check.close(impl.grpo_advantages(rewards, 4), expected, unit="grpo_advantages", case=case, kind="reduction",
                mistakes=_grpo_mistakes(rewards, 4))
    rec = _ref("grpo")
    check.close(impl.grpo_advantages(rec["rewards"], 4), rec["advantages"], unit="grpo_advantages", kind="reduction",
                case=check.describe(rewards=rec["rewards"], group_size=4), mistakes=_grpo_mistakes(rec["rewards"], 4))


@pytest.mark.points(2)
@examples(15)
@given(groups=st.integers(1, 4), G=st.integers(2, 6), eps=st.sampled_from([1e-6, 1e-3]), dtype=float_dtypes(),
       seed=seeds())
def test_grpo_advantages_match_oracle(impl, groups, G, eps, dtype, seed):
    rewards = tensors.randint((groups * G,), seed, high=3).to(dtype).requires_grad_(True)  # ties and equal groups
    out = impl.grpo_advantages(rewards, G, eps)
    case = check.describe(rewards=rewards, group_size=G, eps=eps)
    check.close(out, O.grpo_advantages_oracle(rewards.detach(), G, eps), unit="grpo_advantages", case=case,
                kind="reduction", mistakes=_grpo_mistakes(rewards.detach(), G, eps))
    check.that(not out.requires_grad, "grpo_advantages", "advantages are targets: they must carry no gradient",
               "known mistake: advantages not detached", case=case)


@pytest.mark.points(1)
def test_grpo_advantages_raises(impl):
    for args, why in [((torch.zeros(6), 4), "N not a multiple of group_size"), ((torch.zeros(6), 1), "group_size < 2"),
                      ((torch.zeros(2, 4), 4), "rewards not 1-D")]:
        check.expect_raises(ValueError, impl.grpo_advantages, *args, unit="grpo_advantages", why=why,
                            case=check.describe(rewards=args[0], group_size=args[1]))
