"""The given training utilities (llmlab.lib.train), which topics after 09 train with."""

import math

import pytest
import torch

from llmlab.lib import llama, train


def test_schedule_warms_up_then_follows_the_cosine_to_min_lr():
    lr = [train.warmup_cosine_lr(s, 1.0, 0.1, 4, 12) for s in range(14)]
    assert lr[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lr[4] == 1.0 and lr[8] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert lr[12:] == [0.1, 0.1]
    assert all(a >= b for a, b in zip(lr[4:], lr[5:])), "the cosine part must not increase"
    assert train.warmup_cosine_lr(0, 1.0, 0.0, 0, 10) == 1.0, "warmup 0 starts at max_lr"


def test_random_windows_are_shifted_slices_that_reach_the_last_token():
    data = torch.arange(10)
    g = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        x, y = train.random_windows(data, 3, 4, g)
        assert x.shape == y.shape == (3, 4) and torch.equal(y, x + 1)
        assert torch.equal(x, x[:, :1] + torch.arange(4))
        starts.update(x[:, 0].tolist())
    assert starts == set(range(6)), "every start 0..len-T-1 is possible, no other"
    with pytest.raises(ValueError, match="block_size"):
        train.random_windows(torch.arange(4), 1, 4)


def test_train_lm_lowers_the_loss_reproducibly_and_evaluate_lm_is_the_mean_loss():
    data = torch.tensor([0, 1, 2, 3] * 40)
    config = llama.LlamaConfig(vocab_size=4, block_size=8, n_layer=1, n_head=2, n_kv_head=1, d_model=16)

    def run():
        torch.manual_seed(0)
        model = llama.TinyLlama(config)
        losses = train.train_lm(model, data, 30, batch_size=4, block_size=8, lr=1e-2, warmup=3,
                                generator=torch.Generator().manual_seed(1))
        return model, losses

    (model, losses), (_, again) = run(), run()
    assert losses == again and len(losses) == 30 and model.training
    assert losses[-1] < 0.3 * losses[0]
    value = train.evaluate_lm(model, data[:17], 8)
    x, y = data[:16].view(2, 8), data[1:17].view(2, 8)
    with torch.no_grad():
        expected = model(x, y)[1].item()
    assert not model.training and value == pytest.approx(expected)
    with pytest.raises(ValueError, match="block_size"):
        train.evaluate_lm(model, data[:8], 8)
