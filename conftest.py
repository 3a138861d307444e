# The course harness as a pytest plugin: --impl, the `impl` fixture, points and reports.
pytest_plugins = ["llmlab.pytest_plugin"]
