"""Hypothesis for graders: one profile, and the strategies several topics need.

The profile `llmlab` (loaded by the pytest plugin) owns the settings every property test
shares: derandomized examples (a submission gets the same verdict on every run), no
deadline (student code may be slow without being wrong), no example database, no
"explain" phase (it re-runs a failing test under a tracer, costing seconds and adding
nothing to a message that already names the input), one reported failure, and the health
checks that do not apply to graders suppressed. A test chooses only how many examples it
needs:

    @examples(25)
    @given(seed=seeds(), shape=shapes(max_dims=3))
    def test_softmax_matches_torch(impl, seed, shape): ...
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

PROFILE = "llmlab"

settings.register_profile(
    PROFILE,
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=40,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # `impl` is one object per session: safe to reuse
        HealthCheck.too_slow,                 # building models is slow; not the student's fault
        HealthCheck.data_too_large,           # tensors drawn from seeds are small but deep
    ],
)


def load_profile() -> None:
    settings.load_profile(PROFILE)


def examples(n: int) -> settings:
    """Settings for a property test: the course profile with `n` examples."""
    return settings(settings.get_profile(PROFILE), max_examples=n)


def seeds() -> st.SearchStrategy[int]:
    """Seeds for torch generators (inputs are drawn from seeds, so failures print small)."""
    return st.integers(min_value=0, max_value=2**16)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 6) -> st.SearchStrategy[tuple]:
    """Tensor shapes with `min_dims`..`max_dims` axes of `min_side`..`max_side` each."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def float_dtypes() -> st.SearchStrategy:
    """float32 and float64, the dtypes the course's units accept."""
    import torch

    return st.sampled_from([torch.float32, torch.float64])


def texts(alphabet: list[str] | str | None = None, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text from `alphabet`, or any Unicode without lone surrogates (which UTF-8 cannot encode)."""
    chars = st.sampled_from(list(alphabet)) if alphabet else st.characters(blacklist_categories=("Cs",))
    return st.text(chars, max_size=max_size)
