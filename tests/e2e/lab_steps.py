"""What a resident or an instructor does in JupyterLab on the hub, as Playwright steps.

Selectors are JupyterLab 4's and nbgrader 0.9's lab extension's own (ids in its assignment
list: released_assignments_list, fetched_assignments_list, submitted_assignments_list).
"""

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

# Debian's chromium, headless, as root inside a container: the flags NOTES.md found necessary,
# and nothing that reaches the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SLOW = 120_000  # ms: a server start or a kernel start on a busy 2-core machine
# Every other expectation: generous too, since CI's 2 cores also run the hub, two servers and
# their kernels while the browser renders.
expect.set_options(timeout=30_000)


class Shots:
    """Numbered screenshots in one directory, so the story reads in order, and a log of how
    long each step took (steps.txt), to see where the time budget goes."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in self.directory.glob("*.png"):
            old.unlink()
        self.count = 0
        self.started = time.monotonic()
        self.steps = self.directory / "steps.txt"
        self.steps.write_text("")

    def note(self, what):
        with self.steps.open("a") as f:
            f.write(f"{time.monotonic() - self.started:7.1f}s  {what}\n")

    def take(self, page: Page, name):
        self.count += 1
        path = self.directory / f"{self.count:02d}_{name}.png"
        page.screenshot(path=str(path))
        self.note(path.name)
        return path


def start_login(page: Page, hub_url, user, password):
    """Submit the hub's login form; the hub then starts the user's server (slow) while the
    test goes on with something else. `login` waits for it."""
    page.goto(f"{hub_url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit", no_wait_after=True)


def login(page: Page, hub_url, user, password, started=False):
    """Log in at the hub and wait for JupyterLab (the spawner starts the server)."""
    if not started:
        start_login(page, hub_url, user, password)
    page.wait_for_url(re.compile(rf".*/user/{re.escape(user)}/lab.*"), timeout=SLOW)
    # The Nbgrader menu appears once JupyterLab and nbgrader's extension have loaded.
    expect(page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$"))) \
        .to_be_visible(timeout=SLOW)


def menu(page: Page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{item}$")).first.click()


def open_assignment_list(page: Page):
    """Nbgrader > Assignment List, or bring its tab to the front and refresh it."""
    tab = page.locator(".lm-TabBar-tab", has_text="Assignments")
    if tab.count():
        tab.first.click()
        page.click("#refresh_assignments_list")
    else:
        menu(page, "Nbgrader", "Assignment List")
    expect(page.locator("#assignments")).to_be_visible()


def fetch_assignment(page: Page, module):
    released = page.locator("#released_assignments_list .list_item", has_text=module)
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list .list_item", has_text=module)
    expect(fetched.first).to_be_visible(timeout=SLOW)
    return fetched.first


def open_fetched_notebook(page: Page, module, notebook):
    """Expand the downloaded assignment and open its notebook (named without .ipynb)."""
    page.locator("#fetched_assignments_list a.assignment-notebooks-link", has_text=module) \
        .first.click()
    page.locator(f"#fetched_assignments_list .nested_list_item a:text-is('{notebook}')") \
        .first.click()
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=SLOW)
    wait_kernel_idle(page)
    return panel


def wait_kernel_idle(page: Page, timeout=SLOW):
    # The status bar's kernel item reads "Python 3 (ipykernel) | Idle" once the kernel is up.
    expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle"))).to_be_visible(
        timeout=timeout)


def cell(page: Page, containing):
    """The first code cell whose text contains `containing`, held by position, so the
    handle stays valid after the resident edits the cell."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
    # textContent, not innerText: JupyterLab skips rendering cells outside the viewport
    # (content-visibility), and innerText of those is empty.
    texts = [cells.nth(i).locator(".jp-InputArea").text_content() or ""
             for i in range(cells.count())]
    for index, text in enumerate(texts):
        if containing in text:
            return cells.nth(index)
    raise AssertionError(f"no cell contains {containing!r}; cells: {texts}")


def set_source(page: Page, target, source):
    """Replace a code cell's source by typing it, as a resident would."""
    editor = target.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type(source)


def run(page: Page, target):
    """Run one cell (Shift+Enter on it) and wait until the kernel is idle again."""
    target.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    expect(target.locator(".jp-InputArea-prompt")).not_to_have_text(re.compile(r"\[\*\]"),
                                                                    timeout=SLOW)
    expect(target.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]"),
                                                                timeout=SLOW)


def outputs(target):
    return target.locator(".jp-OutputArea")


def save(page: Page):
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-current.jp-mod-dirty")).to_have_count(0, timeout=30_000)


def submit(page: Page, module):
    open_assignment_list(page)
    item = page.locator("#fetched_assignments_list .list_item", has_text=module).first
    item.get_by_role("button", name="Submit").click()
    expect(page.locator("#submitted_assignments_list .list_item", has_text=module).first) \
        .to_be_visible(timeout=SLOW)
