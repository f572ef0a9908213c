"""A real browser (Debian's chromium, driven by Playwright) labels items by keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_support import XSS, live_server, make_item, make_store, rows

from annotation.queue import Queue
from annotation.sync import sync_routed
from annotation.web.server import CHROMIUM, launch_chromium
from core.schema import from_rows, messages

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (dev extra)")
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser
        browser.close()


def test_label_three_items_by_keyboard(tmp_path, browser):
    store = make_store(tmp_path / "store", routed=3, accepted=1)
    queue = Queue.for_dataset(store, "demo", seed=5)
    hostile = make_item(99, status="routed")  # first in the queue: its response carries an XSS payload
    hostile["chosen"] = messages("assistant", f"Chosen {XSS}")
    queue.add_items(from_rows([hostile]), kind="routed", source="demo@v1", k=1)
    sync_routed(queue, store, "demo", k=1)
    token = queue.add_annotator("ann")
    with live_server(queue) as url:
        page = browser.new_page()
        alerts: list[str] = []
        page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
        page.goto(url + "/")
        assert page.url.endswith("/login")
        page.fill("#token", token)
        page.keyboard.press("Enter")
        page.wait_for_selector("#label-form")
        assert page.inner_text("#my-progress") == "0 done, 4 left"

        # the payload is shown as text and never ran
        assert XSS in page.inner_text("#response-a") + page.inner_text("#response-b")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main script, main img").count() == 0

        for n, key in enumerate(["1", "2", "4"], start=1):
            item = page.get_attribute("#label-form", "data-item")
            page.keyboard.press(key)
            assert page.is_checked(f'input[name="choice"][data-key="{key}"]')
            page.keyboard.press("Enter")
            page.wait_for_function(
                "prev => document.querySelector('#label-form')?.dataset.item !== prev", arg=item
            )
            assert page.inner_text("#my-progress") == f"{n} done, {4 - n} left"
        assert page.get_attribute("#queue-bar", "value") == "3"
        assert page.inner_text("#queue-progress") == "3 / 4 labels (3 / 4 items complete)"

        skipped = page.get_attribute("#label-form", "data-item")
        page.keyboard.press("s")
        page.wait_for_selector("#done")
        page.close()
    assert alerts == []
    labels = rows(queue.path, "SELECT label FROM responses ORDER BY id")
    assert len(labels) == 3 and labels[2] == ("both_bad",)
    assert rows(queue.path, f"SELECT state FROM assignments WHERE item_id = '{skipped}'") == [("skipped",)]
