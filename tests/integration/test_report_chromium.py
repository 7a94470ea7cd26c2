"""The report as a browser shows it: headless Chromium's DOM holds every section, its screenshot is not blank.

CI installs Debian's chromium (`.ci/install-browser.sh`); without it these tests skip and say why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_report import parse
from test_report_support import attribution_example, write_defences, write_run

from molleak.report import SECTION_IDS, write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (CI installs it with .ci/install-browser.sh)")


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    # one evaluated policy run with labels, a learning curve and attribution: every section has content
    root = write_run(tmp_path_factory.mktemp("audit") / "run", method="policy", victim="/x/victim.pt", seed=7,
                     curve=True, attribution=attribution_example(), steps=2)
    write_defences(root / "defences")
    out = tmp_path_factory.mktemp("html") / "report.html"
    write_report(root, out, command="pytest")
    return out



def test_rendered_dom_holds_every_section(report_file, tmp_path):
    proc = chromium(["--dump-dom", report_file.resolve().as_uri()], tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = parse(proc.stdout)
    assert dom.sections == list(SECTION_IDS) and dom.sections[0] == "decision"
    source = parse(report_file.read_text(encoding="utf-8"))
    # the browser kept every figure and table row the file holds
    assert dom.svgs == source.svgs and all(dom.svgs.get(s, 0) > 0 for s in ("decision", "precision", "alpha", "roc", "defences"))
    assert dom.rows == source.rows and dom.rows["summary"] > 0
    assert len(dom.cards) == len(source.cards) > 0


def test_screenshot_is_not_blank(report_file, tmp_path):
    import matplotlib.image

    png = tmp_path / "report.png"
    proc = chromium([f"--screenshot={png}", "--window-size=1280,4000", report_file.resolve().as_uri()],
                    tmp_path / "profile")
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]
    pixels = matplotlib.image.imread(png)[..., :3]  # floats in [0, 1]
    assert pixels.shape[:2] == (4000, 1280)
    assert pixels.std() > 0.05
    white = (pixels > 0.97).all(axis=-1)
    assert 0.02 < 1 - white.mean() < 0.9
    # the header's dark band (CSS applied) and matplotlib's first line colour (#1f77b4, figures drawn)
    assert pixels[5:30, :, :].mean() < 0.4
    blue = np.abs(pixels - np.array([31, 119, 180]) / 255).max(axis=-1) < 0.08
    assert blue.sum() > 200
