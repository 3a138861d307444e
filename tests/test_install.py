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
    monkeypatch.setattr(module, "SITE_STAMP", tmp_path / ".venv" / ".site-installed")
    monkeypatch.setattr(module, "BROWSER_STAMP", tmp_path / ".venv" / ".browser-installed")
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


def test_site_installs_the_site_extra(install):
    assert install.main(["--site"]) == 0
    assert install.calls[-1] == ("install", "-e", f"{install.ROOT}[site]")
    assert install.SITE_STAMP.exists() and not install.BROWSER_STAMP.exists()


def test_browser_takes_the_named_chromium(install, monkeypatch, tmp_path):
    browser = tmp_path / "chrome"
    browser.write_text("")
    monkeypatch.setenv("LLMLAB_CHROMIUM", str(browser))
    assert install.main(["--browser"]) == 0
    assert install.calls[-1] == ("install", "-e", f"{install.ROOT}[site]")  # --browser implies --site
    assert install.BROWSER_STAMP.exists()


def test_no_browser_and_no_way_to_install_one_says_what_to_do(install, monkeypatch, capsys):
    monkeypatch.delenv("LLMLAB_CHROMIUM", raising=False)
    monkeypatch.setattr(install.shutil, "which", lambda name: None)  # no browser, no apt-get
    assert install.main(["--browser"]) == 1
    assert "apt-get install chromium" in capsys.readouterr().out
    assert not install.BROWSER_STAMP.exists()


def test_a_missing_browser_comes_from_apt_get_as_root(install, monkeypatch):
    monkeypatch.delenv("LLMLAB_CHROMIUM", raising=False)
    installed = []
    monkeypatch.setattr(install.sys, "platform", "linux")
    monkeypatch.setattr(install.os, "geteuid", lambda: 0, raising=False)
    monkeypatch.setattr(install.shutil, "which",
                        lambda name: {"apt-get": "/usr/bin/apt-get"}.get(name) or ("/usr/bin/chromium" if installed and name == "chromium" else None))
    monkeypatch.setattr(install.subprocess, "call", lambda cmd, env=None: installed.append(cmd) or 0)
    assert install.main(["--browser"]) == 0
    assert installed[-1][:2] == ["apt-get", "install"] and "chromium" in installed[-1]
    assert install.BROWSER_STAMP.exists()
