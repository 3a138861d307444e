"""llmlab.lib.memory.peak_memory: the CPU measurement topic 16 and the benchmarks rely on."""

import torch

from llmlab.lib.memory import peak_memory


def test_counts_new_storages_and_not_inputs_views_or_in_place_updates():
    x = torch.randn(1000)                                        # 4000 bytes, exists before
    assert peak_memory(lambda: x.view(10, 100).t()[0])[1] == 0
    assert peak_memory(lambda: x.add_(1.0))[1] == 0
    result, peak = peak_memory(lambda: x * 2)
    assert peak == 4000 and torch.equal(result, x * 2)


def test_freed_tensors_leave_the_total_and_the_peak_is_the_worst_moment():
    def two_at_once_then_one():
        a = torch.ones(1000)
        b = torch.ones(1000)
        del a
        c = torch.ones(1000)
        return (b + c).sum()

    # b, c, b + c and the 4-byte sum are alive together at the end
    assert peak_memory(two_at_once_then_one)[1] == 3 * 4000 + 4

    def one_at_a_time():
        total = torch.zeros(())
        for _ in range(5):
            total = total + torch.ones(1000).sum()
        return total

    assert peak_memory(one_at_a_time)[1] < 2 * 4000 + 64


def test_attention_scores_grow_quadratically_and_a_row_loop_linearly():
    def naive(q, k, v):
        return torch.softmax(q @ k.transpose(-1, -2), -1) @ v    # (T, T) scores

    def by_rows(q, k, v):
        return torch.cat([naive(q[i:i + 32], k, v) for i in range(0, q.shape[0], 32)])

    peaks = {}
    for T in (256, 512):
        q, k, v = torch.randn(3, T, 8).unbind(0)
        for fn in (naive, by_rows):
            peaks[fn.__name__, T] = peak_memory(fn, q, k, v)[1]
    assert peaks["naive", 256] >= 2 * 256 * 256 * 4             # scores and their softmax
    assert 3.5 < peaks["naive", 512] / peaks["naive", 256] < 4.5
    assert 1.5 < peaks["by_rows", 512] / peaks["by_rows", 256] < 2.5


def test_autograd_saved_tensors_count_outside_no_grad():
    w = torch.randn(200, 200, requires_grad=True)
    x = torch.randn(50, 200)
    with torch.no_grad():
        _, without_graph = peak_memory(lambda: torch.tanh(x @ w) @ w)
    _, with_graph = peak_memory(lambda: torch.tanh(x @ w) @ w)
    assert with_graph >= without_graph
