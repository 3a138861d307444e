"""install.py (the set-up behind `make`): on Linux, torch from PyTorch's CPU-only index first,
the default index when that one cannot be reached; elsewhere the default index."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def install(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("llmlab_install", REPO / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(module, "STAMP", tmp_path / ".venv" / ".installed")
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").write_text("")
    module.calls = []
    module.answers = {}
    monkeypatch.setattr(module, "pip", lambda *args: module.calls.append(args) or module.answers.get(args[:2], 0))
    monkeypatch.delenv("LLMLAB_TORCH_INDEX", raising=False)
    return module


def test_linux_takes_torch_from_the_cpu_index_first(install, monkeypatch):
    monkeypatch.setattr(install.sys, "platform", "linux")
    assert install.main() == 0
    torch_call = ("install", "--index-url", install.CPU_INDEX, "--timeout", "30", "--retries", "1", install.torch_pin())
    assert install.calls.index(torch_call) < install.calls.index(("install", "-e", str(install.ROOT)))
    assert install.torch_pin().startswith("torch==") and install.STAMP.exists()


def test_an_unreachable_cpu_index_falls_back_to_the_default_index(install, monkeypatch, capsys):
    monkeypatch.setattr(install.sys, "platform", "linux")
    install.answers[("install", "--index-url")] = 1
    assert install.main() == 0
    assert "torch comes from the default index instead" in capsys.readouterr().out
    assert install.calls[-1] == ("install", "-e", str(install.ROOT))


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_other_platforms_use_the_default_index(install, monkeypatch, platform):
    monkeypatch.setattr(install.sys, "platform", platform)
    assert install.main() == 0
    assert not any("--index-url" in call for call in install.calls)


def test_a_failed_install_leaves_no_stamp(install, monkeypatch):
    install.answers[("install", "-e")] = 1
    assert install.main() == 1 and not install.STAMP.exists()
