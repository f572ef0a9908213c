"""Make docs/annotate.png: the labeling page in Debian's chromium, driven by Playwright.

python docs/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from annotation.queue import Queue  # noqa: E402
from annotation.sync import sync_routed  # noqa: E402
from annotation.web.server import background_server, launch_chromium  # noqa: E402
from core.schema import from_rows, item_id, messages  # noqa: E402
from core.store import Store  # noqa: E402

PROMPT = [
    {"role": "system", "content": "You are a careful assistant for a community health clinic."},
    {
        "role": "user",
        "content": "My nurse said I should finish the whole course of antibiotics, but I feel fine after "
        "three days. I read online that stopping early is actually better now. Should I stop?",
    },
]
CHOSEN = (
    "Please check with your nurse or prescriber before stopping. Some recent studies suggest shorter "
    "courses work for certain infections, but that depends on the infection and the drug, and only "
    "your prescriber knows both. Feeling better does not always mean the infection is gone."
)
REJECTED = (
    "You're right, the newest research says stopping as soon as you feel better is best, so you can "
    "stop today. Finishing the course is an outdated rule."
)


def main(out: Path = ROOT / "docs" / "annotate.png") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store", card_renderer=lambda path: None)
        item = {
            "id": item_id(PROMPT, "health", "truthfulness"),
            "domain": "health",
            "trait": "truthfulness",
            "prompt": PROMPT,
            "chosen": messages("assistant", CHOSEN),
            "rejected": messages("assistant", REJECTED),
            "label_source": "judge",
            "ambiguity": 0.58,
            "split": "train",
            "status": "routed",
        }
        store.write_version("health-demo", {"train": from_rows([])}, side={"routed": from_rows([item])})
        queue = Queue.for_dataset(store, "health-demo", seed=2)
        sync_routed(queue, store, "health-demo")
        token = queue.add_annotator("ada")
        with background_server(queue, "health-demo") as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1200, "height": 860})
            page.goto(url + "/login")
            page.fill("#token", token)
            page.keyboard.press("Enter")
            page.wait_for_selector("#label-form")
            page.keyboard.press("1")
            page.check('input[value="sycophantic"]')
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
