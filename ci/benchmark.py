"""Benchmarks (not tests): print the timings the course budgets are stated in.

    python ci/benchmark.py [--bpe-vocab N] [--naive-vocab N]

1. seconds for `pytest exercises/NN_x --impl solutions` per topic (budget: < 10 s each);
2. seconds for `llmlab grade --impl solutions` over all topics (budget: < 2 minutes);
3. the reference BPE trainer on the course corpus, next to the naive trainer that recounts
   every pair after every merge (graders/02_bpe/bpe_oracle.py), at the same vocabulary size.
Numbers are wall-clock on this machine; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

from llmlab.course import loader, paths, topics
from llmlab.lib import corpus


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpe-vocab", type=int, default=2000, help="vocabulary size for the reference trainer")
    parser.add_argument("--naive-vocab", type=int, default=2000, help="largest vocabulary size for both trainers")
    args = parser.parse_args()

    print("pytest exercises/NN_x --impl solutions (budget < 10 s per topic):")
    for topic in topics.available():
        seconds, code = timed([sys.executable, "-m", "pytest", "-q", f"exercises/{topic.slug}", "--impl", "solutions"])
        print(f"  {topic.slug:<16} {seconds:6.2f} s  {'ok' if code == 0 else f'exit {code}'}")
    seconds, code = timed([sys.executable, "-m", "llmlab.cli", "grade", "--impl", "solutions", "--quiet"])
    print(f"llmlab grade --impl solutions (all topics, budget < 120 s): {seconds:.2f} s  "
          f"{'ok' if code == 0 else f'exit {code}'}")
    if (paths.root() / "graders" / "02_bpe" / "bpe_oracle.py").exists():
        bench_bpe(args.bpe_vocab, args.naive_vocab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
