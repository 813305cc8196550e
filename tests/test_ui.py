"""End-to-end check of the Dagster UI on a demo home, in headless Chromium.

Why: an analyst reads experiment results in the UI, as Dagster renders the metadata of
`experiment_results`; no unit test sees that rendering, and a metadata change that Dagster
cannot display (or a webserver bound to every interface) would otherwise ship unnoticed.

One demo home and one `dagster-webserver` serve the whole module, so it stays well under a
minute. The browser is Debian's Chromium (`/usr/bin/chromium`, or the path in
$EXP_PIPELINE_TEST_CHROMIUM) driven by Playwright, because Playwright cannot download a
browser of its own here; `.ci/run` installs it. A missing browser fails the test: it never
skips, so CI cannot silently stop checking the UI.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("EXP_PIPELINE_TEST_CHROMIUM", "/usr/bin/chromium"))
# --no-sandbox: CI runs as root. The networking flags keep Chromium from calling home on a
# machine whose network is closed (each refused connection costs time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_EVENTS = 20_000
ASSET = "experiment_results"
PARTITION = "checkout-funnel"
# Dagster 1.13's asset page: the "Partitions" tab with one partition selected shows that
# partition's latest materialisation and its metadata. (`?partition=` alone opens the
# "Overview" tab, which shows the latest materialisation of any partition.)
PARTITION_PATH = f"/assets/{ASSET}?view=partitions&partition={PARTITION}"
UI_TIMEOUT_MS = 60_000
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
# How far the most overflowing pane scrolls: Dagster's layout is one viewport high and
# scrolls inside panes, so a "full page" screenshot alone stops at the viewport's edge.
OVERFLOW_JS = """() => Math.max(
  0, ...Array.from(document.querySelectorAll('*'), (e) => e.scrollHeight - e.clientHeight)
)"""
MAX_SCREENSHOT_HEIGHT = 8000
SERVER_START_TIMEOUT_S = 120.0
# The key of a results table in the metadata: one `results` table, or one table per metric
# (`purchase_funnel: results`); the test accepts either layout.
RESULTS_LABEL = re.compile(r"^(?:.+: )?results$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DATA_URI = "data:image/png;base64,"
PNG_IMG = f'img[src^="{PNG_DATA_URI}"]'

LATEST_METADATA_QUERY = """
query LatestMetadata($path: [String!]!, $partition: String!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        partition
        metadataEntries {
          __typename
          label
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
}
"""


@dataclass(frozen=True)
class UiServer:
    """A running webserver on a demo home."""

    home: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    """A port that was free a moment ago (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _home_env(home: Path) -> dict[str, str]:
    """The environment `make ui` would give: this home's stores and Dagster instance only."""
    env = {**os.environ, "EXP_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    # The demo runs on the embedded stores only, and with the project's settings file.
    env.pop("EXP_PIPELINE_CONTROL_DB_URL", None)
    env.pop("EXP_PIPELINE_CONFIG", None)
    return env


def _graphql(base_url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST one GraphQL operation and return its `data`; fail on GraphQL errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    assert not payload.get("errors"), payload["errors"]
    return payload["data"]


def _log_tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the webserver and its code server: they share the process group we created."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _start_webserver(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `dagster-webserver` on 127.0.0.1 and a free port; return once it answers.

    A port taken between `_free_port` and the bind makes the server exit early: that is
    retried with another port rather than reported as a failure.
    """
    for _attempt in range(3):
        port = _free_port()
        argv = [str(BIN / "dagster-webserver"), "-w", "workspace.yaml"]
        argv += ["-h", "127.0.0.1", "-p", str(port)]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=_home_env(home),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one at teardown
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/server_info", timeout=2
                    ) as response:
                        if response.status == 200:
                            return proc, port
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                time.sleep(0.25)
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        if "address already in use" not in _log_tail(log).lower():
            break
    pytest.fail(
        f"dagster-webserver did not answer /server_info within {SERVER_START_TIMEOUT_S:.0f} s"
        f" (exit status {proc.returncode}); its log ends with:\n{_log_tail(log)}"
    )


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A small demo home (one `exp-pipeline demo`) and the Dagster webserver on it."""
    home = tmp_path_factory.mktemp("ui") / "home"
    argv = [sys.executable, "-m", "exp_pipeline", "--home", str(home)]
    demo = subprocess.run(
        [*argv, "demo", "--events", str(DEMO_EVENTS)],
        cwd=PROJECT_ROOT,
        env=_home_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if demo.returncode != 0:
        pytest.fail(
            f"`exp-pipeline demo` failed with status {demo.returncode}:\n"
            f"{demo.stdout[-2000:]}\n{demo.stderr[-4000:]}"
        )
    proc, port = _start_webserver(home, home / "webserver.log")
    try:
        server = UiServer(home=home, port=port)
        # What the "Skip" button of Dagster's first-visit "Join the Dagster community"
        # dialog does: without it the dialog covers the page and the screenshot.
        assert _graphql(server.base_url, "mutation { setNuxSeen }") == {"setNuxSeen": True}
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; failing, never skipping, when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the UI test needs Debian's Chromium. Install it as .ci/run "
            "does: `apt-get update && apt-get install -y chromium` (as root), or point "
            "$EXP_PIPELINE_TEST_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _metadata_rows(page: Page, label: str | re.Pattern[str]) -> Locator:
    """The rows of the metadata table whose key column reads `label` (exactly, or matches).

    Only the metadata table's own rows hold the key; the rows of an inline table do not.
    """
    key = page.get_by_text(label, exact=True) if isinstance(label, str) else page.get_by_text(label)
    return page.locator("tr").filter(has=key)


@pytest.fixture(scope="module")
def partition_page(browser: Browser, ui_server: UiServer) -> Iterator[Page]:
    """The checkout-funnel partition of experiment_results, loaded once for every check.

    The checks only read the page, so sharing it saves a page load per test.
    """
    # Generous waits everywhere (actions and `expect`, whose default is 5 s): a loaded CI
    # machine renders slowly, and a passing check returns as soon as the text shows.
    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(ui_server.base_url + PARTITION_PATH, wait_until="networkidle")
        expect(_metadata_rows(page, RESULTS_LABEL).first).to_be_visible()
        yield page
    finally:
        context.close()


def test_partition_page_shows_results_table(partition_page: Page) -> None:
    """The partition's results table is rendered inline: the primary metric and a row per
    variant, where an analyst reads them (not behind a "Show" link).
    """
    expect(partition_page.get_by_text(PARTITION, exact=True).first).to_be_visible()
    # The funnel's results: its own table's row (key `purchase_funnel: results`) or, in a
    # single `results` table, the row whose cells name the metric.
    row = _metadata_rows(partition_page, RESULTS_LABEL).filter(has_text="purchase_funnel").first
    expect(row).to_be_visible()
    expect(row.get_by_text("purchase_funnel").first).to_be_visible()
    for variant in ("control", "test"):
        expect(row.get_by_role("cell", name=variant, exact=True).first).to_be_visible()


def test_partition_page_screenshot(partition_page: Page, tmp_path: Path) -> None:
    """A full-page screenshot is a real picture of the page (kept for a person to look at).

    The viewport is stretched to the content's height first, so the picture shows every
    metadata entry rather than the first screenful.
    """
    path = tmp_path / f"{ASSET}-{PARTITION}.png"
    overflow = int(partition_page.evaluate(OVERFLOW_JS))
    height = min(VIEWPORT["height"] + overflow, MAX_SCREENSHOT_HEIGHT)
    partition_page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    try:
        partition_page.screenshot(path=path, full_page=True)
    finally:
        partition_page.set_viewport_size(VIEWPORT)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, png_height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= VIEWPORT["width"] and png_height >= VIEWPORT["height"], (width, png_height)
    # A blank or single-colour 1400x1000 PNG compresses to a few kilobytes.
    assert len(data) > 30_000, f"{path} is only {len(data)} bytes"


def _plot_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Markdown entries that are plots: labelled like `*plot*`, or embedding a base64 PNG."""
    return [
        e
        for e in entries
        if e["__typename"] == "MarkdownMetadataEntry"
        and ("plot" in e["label"].lower() or PNG_DATA_URI in e.get("mdStr", ""))
    ]


def _rendered_png_count(page: Page, label: str, screenshot: Path | None = None) -> int:
    """Count the PNG data-URI images of metadata entry `label` (which embeds at least one)
    that the browser decoded; fail if one does not decode.

    Dagster 1.13 renders Markdown metadata under 1,000 characters inline and longer Markdown
    (any real base64 PNG) in a dialog behind the entry's "[Show Markdown]" link, so this
    looks inline first and otherwise opens the dialog, as an analyst would, and closes it.
    """
    row = _metadata_rows(page, label).first
    link = row.get_by_text("[Show Markdown]", exact=True)
    # The Markdown renders asynchronously: wait for one form or the other before choosing.
    expect(row.locator(PNG_IMG).or_(link).first).to_be_visible()
    dialog = None
    if link.count():
        link.click()
        dialog = page.get_by_role("dialog").filter(has_text=label)
        expect(dialog).to_be_visible()
    try:
        images = (dialog or row).locator(PNG_IMG)
        expect(images.first).to_be_visible()
        if screenshot is not None:
            (dialog or row).screenshot(path=screenshot)
        # decode() rejects (so evaluate raises) when the browser cannot decode an image.
        widths = images.evaluate_all(
            "imgs => Promise.all(imgs.map((i) => i.decode().then(() => i.naturalWidth)))"
        )
        assert all(w > 0 for w in widths), f"{label!r} rendered an empty image: {widths}"
        return len(widths)
    finally:
        if dialog is not None:
            dialog.get_by_role("button", name="Close", exact=True).click()
            expect(dialog).to_be_hidden()


def test_markdown_plots_render(ui_server: UiServer, partition_page: Page, tmp_path: Path) -> None:
    """The results metadata carries Markdown plots, and their base64 PNGs render.

    Each plot is also saved as a screenshot under the test's tmp folder.
    """
    data = _graphql(
        ui_server.base_url, LATEST_METADATA_QUERY, {"path": [ASSET], "partition": PARTITION}
    )
    materializations = data["assetOrError"]["assetMaterializations"]
    assert materializations, f"no materialisation of {ASSET} partition {PARTITION}"
    entries = materializations[0]["metadataEntries"]
    assert any(RESULTS_LABEL.match(e["label"]) for e in entries), entries
    plots = _plot_entries(entries)
    assert plots, f"{ASSET} has no Markdown plot metadata"
    with_png = [e["label"] for e in plots if PNG_DATA_URI in e.get("mdStr", "")]
    assert with_png, f"plot entries {[e['label'] for e in plots]} embed no base64 PNG"
    for label in with_png:
        screenshot = tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', label)}.png"
        assert _rendered_png_count(partition_page, label, screenshot) >= 1, label


def _local_non_loopback_addresses() -> list[str]:
    """This machine's own interface addresses other than loopback and link-local (Linux)."""
    addresses: list[str] = []
    for _index, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                ifreq = struct.pack("256s", name.encode()[:15])
                packed = fcntl.ioctl(sock.fileno(), 0x8915, ifreq)  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on this interface
        addresses.append(socket.inet_ntoa(packed[20:24]))
    inet6 = Path("/proc/net/if_inet6")
    if inet6.exists():
        for line in inet6.read_text().splitlines():
            raw = line.split()[0]
            addresses.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    return sorted(
        {
            a
            for a in addresses
            if not ipaddress.ip_address(a).is_loopback
            and not ipaddress.ip_address(a).is_link_local
            and not ipaddress.ip_address(a).is_unspecified
        }
    )


def _accepts(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        return sock.connect_ex((address, port)) == 0


def test_webserver_listens_on_loopback_only(ui_server: UiServer) -> None:
    """The UI has no authentication: it must not be reachable from other machines."""
    assert _accepts("127.0.0.1", ui_server.port)
    others = _local_non_loopback_addresses()
    if not others:
        pytest.skip("this machine has no interface besides loopback")
    reachable = [a for a in others if _accepts(a, ui_server.port)]
    assert not reachable, f"the webserver answers on {reachable}, not only 127.0.0.1"
