# The course harness as a pytest plugin: --impl, the `impl` fixture, points and reports.
try:
    import torch  # noqa: F401  (the graders need it; a missing one is the usual set-up mistake)
    import llmlab  # noqa: F401
except ImportError as exc:
    import sys

    sys.stderr.write(f"llmlab: {exc}: this Python is not the course's. Activate the course environment "
                     f"(`source .venv/bin/activate`; Windows: `.venv\\Scripts\\activate`) or run `make grade` "
                     f"once to create it, then run pytest again.\n")
    raise SystemExit(4)

pytest_plugins = ["llmlab.grading.pytest_plugin"]
