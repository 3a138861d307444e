# The course harness as a pytest plugin: --impl, the `impl` fixture, points and reports.
pytest_plugins = ["llmlab.grading.pytest_plugin"]
