"""Benchmarks (not tests): print the timings the course budgets are stated in.

    python ci/benchmark.py [--only SECTION ...] [--bpe-vocab N] [--naive-vocab N]

Sections (all by default):
  pytest       seconds for `pytest exercises/NN_x --impl solutions` per topic (budget < 10 s each);
  grade        seconds for `llmlab grade --impl solutions` over all topics (budget < 2 minutes);
  bpe          the reference BPE trainer on the course corpus next to the naive trainer that
               recounts every pair after every merge (graders/02_bpe/bpe_oracle.py);
  kv_cache     16's greedy decoding with the KV cache next to recomputing the whole prefix for
               every token, 32 new tokens ending at 128, 512 and 1024 tokens of context, on
               random TinyLlamas of the checkpoint's shape (d_model 64) and a wider one (256);
  flash        16's tiled flash_attention next to naive attention (the full score matrix), causal,
               at 1024, 2048 and 4096 tokens: peak extra memory (llmlab.lib.memory) and time;
  speculative  17's speculative decoding with the given draft and target checkpoints: target
               calls per generated token for k = 1, 2, 4, 8, at temperature 1 and 0;
  class        `llmlab grade-class` on --class-n synthetic submissions (solutions, skeletons and
               catalogued mutants in turn) of the --class-topics: submissions per minute serially
               with --jobs 2, and on a two-worker local Dask cluster (--scheduler).
Each section prints its ratios from one run. Numbers are wall-clock on this machine (the CPU, and
the GPU for the flash section where PyTorch has one); run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import time

import torch

from llmlab.course import loader, paths, topics
from llmlab.lib import corpus
from llmlab.lib.llama import LlamaConfig, TinyLlama, load_tiny_llama
from llmlab.lib.memory import peak_memory

SECTIONS = ("pytest", "grade", "bpe", "kv_cache", "flash", "speculative", "class")


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=paths.root(), capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def bench_bpe(vocab: int, naive_vocab: int) -> None:
    topic = topics.resolve("02_bpe")
    impl = loader.load(topic, "solutions")
    spec = importlib.util.spec_from_file_location("bpe_oracle", topic.graders / "bpe_oracle.py")
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    text = corpus.course_corpus()
    print(f"\nBPE training on the course corpus ({len(text.encode()):,} bytes):")
    for size in sorted({300, 500, naive_vocab, vocab}):
        start = time.perf_counter()
        vocab, _ = impl.train_bpe(text, size, ["<|endoftext|>"])
        ref = time.perf_counter() - start
        line = f"  vocab {size:>5} (reached {len(vocab):>5}): reference (incremental counts) {ref:7.2f} s"
        if size <= naive_vocab:
            start = time.perf_counter()
            oracle.train_bpe(text, size, ["<|endoftext|>"])
            naive = time.perf_counter() - start
            line += f"   naive (recount per merge) {naive:7.2f} s   ratio {naive / ref:5.1f}x"
        print(line)


def best_of(repeats: int, fn, *args) -> float:
    """The fastest of `repeats` calls, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def greedy_by_recomputation(model: TinyLlama, prompt: torch.Tensor, new: int) -> torch.Tensor:
    """Greedy decoding that runs the model on the whole prefix for every new token."""
    idx = prompt
    with torch.no_grad():
        for _ in range(new):
            next_token = model(idx)[0][:, -1].argmax(-1, keepdim=True)            # (B, 1)
            idx = torch.cat([idx, next_token], dim=1)
    return idx


def bench_kv_cache() -> None:
    """The checkpoint's shape (per-step overheads dominate a model this small) and a wider one."""
    device = torch.device("cpu")                            # 16's KVCache allocates on the CPU
    impl = loader.load(topics.resolve("16_inference"), "solutions")
    new = 32
    for shape in (dict(n_layer=2, n_head=4, n_kv_head=2, d_model=64), dict(n_layer=4, n_head=8, n_kv_head=4, d_model=256)):
        config = LlamaConfig(vocab_size=71, block_size=1024, **shape)
        torch.manual_seed(0)
        model = TinyLlama(config).to(device).eval()          # random weights: speed does not need training
        print(f"\nKV cache (16): greedy decoding of {new} tokens on a {config.n_layer}-layer TinyLlama "
              f"(d_model {config.d_model}, {config.n_head}/{config.n_kv_head} heads), {device}:")
        for context in (128, 512, 1024):
            prompt = torch.randint(0, config.vocab_size, (1, context - new + 1), device=device)
            cached_tokens = impl.generate_cached(model, prompt, new)
            same = torch.equal(cached_tokens, greedy_by_recomputation(model, prompt, new))
            cached = best_of(3, impl.generate_cached, model, prompt, new)
            recompute = best_of(3, greedy_by_recomputation, model, prompt, new)
            print(f"  context {context:>5}: recompute {recompute * 1e3:8.1f} ms   cached {cached * 1e3:7.1f} ms   "
                  f"speed-up {recompute / cached:5.1f}x   same tokens: {same}")


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention through the full (T, T) score matrix."""
    T = q.shape[2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                      # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v


def bench_flash(device: torch.device) -> None:
    impl = loader.load(topics.resolve("16_inference"), "solutions")
    B, H, D, block = 1, 4, 32, 128
    print(f"\nflash attention (16) vs naive, causal, B={B} H={H} D={D}, tiles {block}x{block}, {device}:")
    for T in (1024, 2048, 4096):
        q, k, v = torch.randn(3, B, H, T, D, device=device).unbind(0)
        with torch.no_grad():
            naive_out, naive_peak = peak_memory(naive_attention, q, k, v)
            (flash_out, _), flash_peak = peak_memory(impl.flash_attention, q, k, v, True, block, block)
            error = (naive_out - flash_out).abs().max().item()
            naive_s = best_of(2, naive_attention, q, k, v)
            flash_s = best_of(2, impl.flash_attention, q, k, v, True, block, block)
        print(f"  T {T:>5}: peak extra memory naive {naive_peak / 2**20:8.1f} MiB   flash {flash_peak / 2**20:6.1f} MiB"
              f"   flash/naive {flash_peak / naive_peak:6.3f}   time naive {naive_s * 1e3:7.1f} ms"
              f"   flash {flash_s * 1e3:7.1f} ms   max |diff| {error:.1e}")


def bench_speculative() -> None:
    impl = loader.load(topics.resolve("17_speculative"), "solutions")
    target, codec, _ = load_tiny_llama("tiny_llama")
    draft, _, _ = load_tiny_llama("draft_llama")
    text = corpus.course_corpus()
    prompt_len, new, n_prompts = 16, 48, 8
    prompts = [codec.encode(text[i * 997:i * 997 + prompt_len]) for i in range(n_prompts)]
    print(f"\nspeculative decoding (17): target tiny_llama, draft draft_llama, {n_prompts} prompts of "
          f"{prompt_len} characters, {new} new tokens each:")
    for temperature in (1.0, 0.0):
        for k in (1, 2, 4, 8):
            generator = torch.Generator().manual_seed(0)
            calls = sum(impl.speculative_generate(target, draft, p, k, new, temperature, generator)[1]
                        for p in prompts)
            tokens = new * n_prompts
            print(f"  temperature {temperature:.0f}, k {k}: target calls per token {calls / tokens:5.3f}"
                  f"   tokens per target call {tokens / calls:5.2f}")


def synthetic_class(root, selected: list, n: int):
    """n submissions: the solution, the skeleton and a catalogued mutant of each topic, in turn."""
    import shutil

    from llmlab.authoring import mutants
    for i in range(n):
        folder = root / f"student{i:02d}"
        for topic in selected:
            kind = i % 3
            found, _ = mutants.catalogue(topic)
            if kind == 0 or (kind == 2 and not found):
                shutil.copytree(topic.solutions, folder / topic.slug, ignore=shutil.ignore_patterns("__pycache__"))
            elif kind == 1:
                shutil.copytree(topic.exercises, folder / topic.slug, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                mutants.apply(topic, found[(i // 3) % len(found)].edits(), folder)


def bench_class(names: list[str], n: int) -> None:
    import tempfile
    from pathlib import Path

    from llmlab.classroom import run
    selected = [topics.resolve(name) for name in names]
    print(f"\nllmlab grade-class: {n} synthetic submissions x {', '.join(t.slug for t in selected)}:")
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-class-") as tmp:
        synthetic_class(Path(tmp) / "subs", selected, n)
        for jobs in (1, 2):
            start = time.perf_counter()
            summary = run.grade_class(Path(tmp) / "subs", Path(tmp) / f"out{jobs}", selected, jobs=jobs)
            seconds = time.perf_counter() - start
            print(f"  --jobs {jobs}: {seconds:7.1f} s, {60 * n / seconds:6.1f} submissions per minute "
                  f"({len(summary.graded)} gradings)")
        from distributed import LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=50) as cluster:
            start = time.perf_counter()
            summary = run.grade_class(Path(tmp) / "subs", Path(tmp) / "out-dask", selected, scheduler=cluster)
            seconds = time.perf_counter() - start
        print(f"  Dask, 2 workers: {seconds:5.1f} s, {60 * n / seconds:6.1f} submissions per minute "
              f"({len(summary.graded)} gradings; the cluster's start not counted)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, metavar="SECTION",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--bpe-vocab", type=int, default=2000, help="vocabulary size for the reference trainer")
    parser.add_argument("--naive-vocab", type=int, default=2000, help="largest vocabulary size for both trainers")
    parser.add_argument("--class-n", type=int, default=20, help="class: synthetic submissions")
    parser.add_argument("--class-topics", nargs="+", default=["01_tokenizer", "04_attention"],
                        help="class: the topics each submission holds")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = {topic.slug for topic in topics.available()}

    if "pytest" in args.only:
        print("pytest exercises/NN_x --impl solutions (budget < 10 s per topic):")
        for topic in topics.available():
            seconds, code = timed([sys.executable, "-m", "pytest", "-q", f"exercises/{topic.slug}", "--impl", "solutions"])
            print(f"  {topic.slug:<16} {seconds:6.2f} s  {'ok' if code == 0 else f'exit {code}'}")
    if "grade" in args.only:
        seconds, code = timed([sys.executable, "-m", "llmlab.cli", "grade", "--impl", "solutions", "--quiet"])
        print(f"llmlab grade --impl solutions (all topics, budget < 120 s): {seconds:.2f} s  "
              f"{'ok' if code == 0 else f'exit {code}'}")
    if "bpe" in args.only and "02_bpe" in available:
        bench_bpe(args.bpe_vocab, args.naive_vocab)
    if "kv_cache" in args.only and "16_inference" in available:
        bench_kv_cache()
    if "flash" in args.only and "16_inference" in available:
        bench_flash(device)
    if "speculative" in args.only and "17_speculative" in available:
        bench_speculative()
    if "class" in args.only:
        bench_class(args.class_topics, args.class_n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
