"""The API page (/api-docs) in a real browser, as a developer uses it against the local stack.

The browser is headless Chromium, the system's (Debian's package, ./dev installs it): Playwright's own browser
download needs the internet, and the page must work without it. Every request to a host other than this machine is
refused, so anything the page would fetch from the internet fails the test instead of passing by luck.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, Request, Response, Route, expect, sync_playwright

from .running_stack import JOBS, REPO_ROOT, RunningStack

SCREENSHOT = REPO_ROOT / "test-artifacts" / "api-docs.png"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Generous: a loaded 2-core CI machine parses the page's 1.5 MB of inlined script while the rest of the suite runs.
WAIT_MS = 30_000


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system's Chromium; before the stack in a test's arguments, so a skip does not start one for nothing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no Chromium on PATH (Debian: apt-get install chromium; ./dev test installs it where it can)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the API page's browser test")
    warnings.warn(f"the API page's browser test is SKIPPED: {reason}", stacklevel=1)
    pytest.skip(f"SKIPPED, the API page was not tested in a browser: {reason}")


class PageProblems:
    """What a developer would see go wrong: console errors, script errors, failed or refused requests."""

    def __init__(self, page: Page) -> None:
        self.found: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"script error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)
        page.route("**/*", self._only_this_machine)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.found.append(f"console error: {message.text}")

    def _failed(self, request: Request) -> None:
        self.found.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _answered(self, response: Response) -> None:
        if response.status >= 400:
            self.found.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def _only_this_machine(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in {"data", "blob"} or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.found.append(f"reached for the internet: {route.request.method} {url}")
            route.abort("blockedbyclient")


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }


def operation_blocks(document: dict) -> int:
    # Swagger UI shows an operation once under each of its tags ("default" when it has none).
    return sum(
        len(operation.get("tags") or ["default"])
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    )


def save_screenshot(page: Page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    print(f"screenshot of the API page: {path}")


def test_the_api_page_works_offline_lists_every_route_and_tries_one_with_a_token(chromium: str, stack: RunningStack):
    document = requests.get(f"{stack.api}/api-docs/openapi.json", timeout=30).json()
    token = stack.token("tenant-api-page", "viewer")

    with sync_playwright() as playwright:
        # /dev/shm is small in CI containers; Chromium then writes its shared memory to /tmp instead.
        browser = playwright.chromium.launch(executable_path=chromium, args=["--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            problems = PageProblems(page)
            try:
                page.goto(f"{stack.api}/api-docs", wait_until="load")

                # Every operation of the document, and nothing else, is on the page.
                blocks = page.locator(".opblock")
                expect(blocks).to_have_count(operation_blocks(document), timeout=WAIT_MS)
                shown = blocks.evaluate_all(
                    """blocks => blocks.map(block => [
                        block.querySelector(".opblock-summary-method").textContent,
                        block.querySelector(".opblock-summary [data-path]").dataset.path,
                    ])"""
                )
                assert {(method, path) for method, path in shown} == operations(document)
                expect(page.locator(".info .title")).to_contain_text(document["info"]["title"], timeout=WAIT_MS)
                # Without an icon of its own the page makes the browser ask the stack for /favicon.ico, a 404. Chromium
                # skips that request while Playwright routes requests, so it is checked here and not seen above.
                icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(link => link.href)")
                assert icons and all(icon.startswith("data:") for icon in icons), icons
                # The validator badge, in the layouts that show one, calls validator.swagger.io unless this is null.
                assert page.evaluate("() => ui.getConfigs().validatorUrl") is None

                # Authorize: the token pasted into the bearerAuth dialog.
                authorize = page.locator(".scheme-container .btn.authorize")
                authorize.click()
                dialog = page.locator(".modal-ux")
                dialog.locator("#auth-bearer-value").fill(token)
                dialog.locator("button[type=submit].authorize").click()
                expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible(timeout=WAIT_MS)
                dialog.locator("button.btn-done").click()
                expect(authorize).to_have_class("btn authorize locked", timeout=WAIT_MS)

                # Try it out: GET the jobs list, sent to this stack with the token, answered 200 on the page.
                listing = page.locator(".opblock-get", has=page.locator(f'.opblock-summary [data-path="{JOBS}"]')).first
                listing.locator(".opblock-summary-control").click()
                listing.locator(".try-out__btn").click()
                with page.expect_response(lambda response: urlsplit(response.url).path == JOBS) as answer:
                    listing.locator("button.execute").click()
                assert answer.value.request.headers.get("authorization") == f"Bearer {token}"
                assert answer.value.url.startswith(f"{stack.api}{JOBS}")
                live = listing.locator(".live-responses-table .response .response-col_status")
                expect(live).to_have_text("200", timeout=WAIT_MS)
                expect(listing.locator(".request-url pre")).to_have_text(answer.value.url, timeout=WAIT_MS)
                expect(listing.locator(".live-responses-table .response .response-col_description")).to_contain_text(
                    '"items"', timeout=WAIT_MS
                )
            finally:
                save_screenshot(page, SCREENSHOT)
                # A step that timed out is often explained by what went wrong on the page before it.
                if problems.found:
                    print("\n".join(problems.found))
        finally:
            browser.close()

    assert problems.found == []
