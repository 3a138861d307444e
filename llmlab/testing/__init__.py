"""The grader toolkit: what every topic's graders are written with.

- `check`: comparisons whose failures teach (close, equal, that, grads, gradcheck,
  expect_raises), naming the unit, the input and any known mistake the output matches;
- `tolerances`: the one tolerance policy, per dtype and kind of computation;
- `guard`: "from scratch" enforcement (forbid the built-ins a unit re-implements);
- `stats`: statistical checks with a stated false-failure rate;
- `strategies`: the course's hypothesis profile, `examples(n)` and shared strategies;
- `tensors`: seeded tensors, masks and parameter randomisers;
- `properties`: causality, permutation equivariance and batch independence checks;
- `reference`: golden data from reference/, checksum-verified.

Graders import from here, never from another grader module's private names.
"""
