"""The page in a real browser: ``streamlit run app.py`` driven by Debian's headless Chromium via Selenium.

Why: AppTest runs the script but not the browser; this checks that a person who pastes an essay
and clicks Score actually sees a verdict and the sentence highlighting, and leaves a screenshot
(reports/app_screenshot.png) to look at. Uses $DETECTOR_BROWSER_TEST_BUNDLE if set, else the shipped
default bundle (the real product), else the session's tiny bundle. Needs
``apt-get install chromium chromium-driver`` and ``pip install selenium``; skipped with a reason otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

pytestmark = pytest.mark.browser

REPO = TESTS_DIR.parent
APP = REPO / "app.py"
SCREENSHOT = REPO / "reports" / "app_screenshot.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BUNDLE_ENV = "DETECTOR_BROWSER_TEST_BUNDLE"
SHIPPED_BUNDLE = REPO / "detector" / "bundles" / "smollm2-en"
SERVER_START_TIMEOUT = 120  # seconds until /_stcore/health answers
PAGE_TIMEOUT = 600  # seconds for the first page (loads the model) and for the verdict (real model, busy CPU)

ESSAY = (
    "Every autumn our school organises a book fair in the sports hall, and this year I volunteered to help. "
    "I expected to spend the afternoon carrying boxes, but the teacher in charge asked me to run the table for "
    "younger readers instead. At first I was nervous, because I had never sold anything before and I was afraid "
    "of giving the wrong change.\n\n"
    "The children who came to my table were eight or nine years old, and most of them had already decided what "
    "they wanted. One boy spent nearly twenty minutes choosing between a book about sharks and a book about "
    "volcanoes. In the end his grandmother bought both, and he left the hall holding them as if they were "
    "treasure. A girl asked me whether I had read every book on the table. I had to admit that I had not, but "
    "I recommended the one I loved most when I was her age, and she took it.\n\n"
    "By the end of the day we had sold almost three hundred books, and the money will pay for new shelves in "
    "the library. I was tired, but I also felt proud. I learned that helping is often less about the job you "
    "are given and more about paying attention to the people in front of you."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not answer on port {port} within {SERVER_START_TIMEOUT}s:\n"
                f"{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (its own process group, by id), escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser_bundle(request: pytest.FixtureRequest) -> str:
    """$DETECTOR_BROWSER_TEST_BUNDLE, else the shipped default bundle, else the session's tiny bundle."""
    chosen = os.environ.get(BUNDLE_ENV)
    if chosen:
        return chosen
    if (SHIPPED_BUNDLE / "manifest.json").exists():
        return str(SHIPPED_BUNDLE)
    return str(request.getfixturevalue("tiny_bundle_dir"))


@pytest.fixture
def server(browser_bundle: str, tmp_path: Path) -> Iterator[str]:
    """A headless ``streamlit run app.py`` on a free loopback port; killed in ``finally``."""
    pytest.importorskip("streamlit")
    port = _free_port()
    env = dict(os.environ, DETECTOR_BUNDLE=browser_bundle, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if browser_bundle == str(SHIPPED_BUNDLE) or os.environ.get(BUNDLE_ENV):
        try:  # the real backbone: reuse the user's cache of converted models, not the session's empty one
            from conftest import REAL_CACHE_DIR

            env["DETECTOR_CACHE_DIR"] = str(REAL_CACHE_DIR)
        except ImportError:
            env.pop("DETECTOR_CACHE_DIR", None)
    log = tmp_path / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        _wait_healthy(proc, port, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(proc)


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Debian's Chromium, headless, through its own chromedriver (Selenium Manager never downloads)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    for exe, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not exe.exists():
            pytest.skip(f"{exe} is missing (apt-get install {package})")
    monkeypatch.setenv("SE_OFFLINE", "true")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = Options()
        options.binary_location = str(CHROMIUM)
        for arg in ("--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={profile}"):
            options.add_argument(arg)
        browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        try:
            browser.set_window_size(1280, 1600)
            yield browser
        finally:
            browser.quit()


def test_paste_essay_and_see_verdict(server: str, driver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server)
    wait = WebDriverWait(driver, PAGE_TIMEOUT)
    problem = (By.XPATH, "//*[@data-testid='stAlertContentError' or @data-testid='stException']")
    area = wait.until(ec.any_of(ec.presence_of_element_located((By.CSS_SELECTOR, "textarea")),
                                ec.presence_of_element_located(problem)))
    assert area.tag_name == "textarea", f"the page shows an error instead of the form: {area.text}"
    area.click()
    area.send_keys(ESSAY)
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # commit the text before clicking Score
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space(.)='Score']"))).click()
    heading = wait.until(ec.any_of(ec.presence_of_element_located((By.XPATH, "//h3[contains(., 'Verdict:')]")),
                                   ec.presence_of_element_located(problem)))
    assert "Verdict:" in heading.text, f"the page shows an error instead of a verdict: {heading.text}"
    # Elements stream in after the heading: wait for the last metric before reading them all.
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[@data-testid='stMetric'][contains(., 'Verdict label')]")))
    metrics = " ".join(m.text for m in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']"))
    assert "P(AI)" in metrics and "Verdict label" in metrics, metrics  # an English essay is never abstained on
    assert any(label in metrics.split() for label in ("ai", "human", "uncertain")), metrics
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "span[title^='sentence P(AI)']")))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0);")
    assert driver.save_screenshot(str(SCREENSHOT)), "screenshot not written"
