"""The resident's loop on a real JupyterHub, in a real browser (Debian chromium via Playwright).

The instructor releases module 00 of the curriculum; two residents log in, open it in
JupyterLab, run it (their own cohort, an ipywidgets widget), see a public check fail on a
wrong answer and pass on a right one, and submit through nbgrader's assignment list; the
instructor collects, grades with `drylab grade` (as root, in the bubblewrap sandbox), sees
the graded submissions in Formgrader, returns feedback through nbgrader's exchange; each
resident reads their own feedback and cannot reach the other's, in the browser and on the
file system. Screenshots of every step, the timings (steps.txt), the hub's log and the
grader's output go to test-artifacts/e2e/.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lab_steps as lab
import pytest
from hub_session import ARTIFACTS, REPO, drylab_hub, instructor_steps
from playwright.sync_api import expect, sync_playwright

from autograder.feedback import STATUS_LABELS
from autograder.journal import latest_entries

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODULE = "00_orientation"
# What this test relies on in module 00 (curriculum/source/00_orientation): a cell that builds
# the cohort with cohort_for(resident_id) and prints "Resident: <id>", a `person.head()` cell,
# Question 0.1's answer cell and check, and a cell with an ipywidgets `widgets.interact(...)`.
# Module 00's first question invites a wrong answer on purpose (docs in the notebook):
# `person.shape` is a tuple, so check_type's message names the variable and what it is.
ANSWER_CELL = "n_patients = None"
WRONG = "n_patients = person.shape"
WRONG_MESSAGE = "`n_patients` should be"
PASSED_MESSAGE = "Question 0.1: the public checks passed"
# Resident A answers right; resident B gives a number that passes the public checks (an int
# in range) but is not the count, so their grades, and so their feedback, differ.
RIGHT = {0: "n_patients = len(person)", 1: "n_patients = len(person) - 1"}


def _resident_session(page, hub, index, shots):
    """Fetch, open, run, fail a check, pass it, see the widget, save, submit; returns the
    first rows of the resident's `person` table as shown."""
    name = hub.residents[index]
    tag = f"resident{'AB'[index]}"
    lab.login(page, hub.url, name, hub.password, started=True)
    shots.note(f"{tag} logged in")
    lab.open_assignment_list(page)
    expect(page.locator("#released_assignments_list .list_item", has_text=MODULE)).to_be_visible()
    shots.take(page, f"{tag}_assignment_list")
    lab.fetch_assignment(page, MODULE)
    lab.open_fetched_notebook(page, MODULE, MODULE)
    shots.note(f"{tag} notebook open, kernel idle")
    lab.menu(page, "Run", "Run All Cells")
    answer = lab.cell(page, ANSWER_CELL)
    check = lab.cell(page, "passed('Question 0.1')")
    # Run All stops at the first failing check: Question 0.1 is still None.
    expect(lab.outputs(check)).to_contain_text("AssertionError", timeout=lab.SLOW)
    cohort = lab.cell(page, "cohort_for(resident_id)")
    expect(lab.outputs(cohort)).to_contain_text(f"Resident: {name}")
    first_rows = lab.outputs(lab.cell(page, "person.head()")).text_content()
    cohort.scroll_into_view_if_needed()
    shots.take(page, f"{tag}_run_all_own_cohort")

    lab.set_source(page, answer, WRONG)
    lab.run(page, answer)
    lab.run(page, check)
    expect(lab.outputs(check)).to_contain_text("AssertionError")
    expect(lab.outputs(check)).to_contain_text(WRONG_MESSAGE)
    check.scroll_into_view_if_needed()
    shots.take(page, f"{tag}_public_check_fails")

    lab.set_source(page, answer, RIGHT[index])
    lab.run(page, answer)
    lab.run(page, check)
    expect(lab.outputs(check)).to_contain_text(PASSED_MESSAGE)
    expect(lab.outputs(check)).not_to_contain_text("AssertionError")
    shots.take(page, f"{tag}_public_check_passes")

    widget_cell = lab.cell(page, "widgets.interact(")
    lab.run(page, widget_cell)
    expect(widget_cell.locator(".widget-dropdown select")).to_be_visible(timeout=lab.SLOW)
    expect(widget_cell.locator(".jp-OutputArea-output img")).to_be_visible(timeout=lab.SLOW)
    widget_cell.scroll_into_view_if_needed()
    shots.take(page, f"{tag}_widget")

    lab.save(page)
    lab.submit(page, MODULE)
    shots.take(page, f"{tag}_submitted")
    return first_rows


def _return_feedback(hub, shots):
    """The instructor's side after the deadline: collect, grade, write and release feedback."""
    hub.instructor_run("nbgrader", "collect", MODULE)
    shots.note("collected")
    course = instructor_steps.course_dir(hub.instructor)
    graded = instructor_steps.grade_as_root(hub.instructor, course)
    (ARTIFACTS / "grade.log").write_text(graded.stdout + graded.stderr)
    shots.note("graded")
    # Both submissions were graded, each in the bubblewrap sandbox.
    entries = latest_entries(course)
    assert sorted(resident for resident, _ in entries) == sorted(hub.residents)
    assert {e["sandbox"] for e in entries.values()} == {"bwrap"}
    hub.instructor_run("drylab", "feedback", str(course))
    instructor_steps.stage_feedback(course, MODULE)
    hub.instructor_run("nbgrader", "release_feedback", MODULE)
    shots.note("feedback released")
    return course


def _read_feedback(page, hub, index, shots):
    """Fetch Feedback in the assignment list, follow "(view feedback)" to the folder, open
    the page in JupyterLab's HTML viewer; returns the viewer's frame."""
    tag = f"resident{'AB'[index]}"
    lab.open_assignment_list(page)
    item = page.locator("#submitted_assignments_list .list_item", has_text=MODULE).first
    item.get_by_role("button", name="Fetch Feedback").click()
    link = page.locator("#submitted_assignments_list a", has_text="view feedback")
    expect(link.first).to_be_visible(timeout=lab.SLOW)
    shots.take(page, f"{tag}_feedback_fetched")
    link.first.click()
    html = page.locator(".jp-DirListing-item", has_text=f"{MODULE}.html")
    expect(html).to_be_visible(timeout=lab.SLOW)
    html.dblclick()
    frame = page.frame_locator(".jp-HTMLViewer:visible iframe")
    expect(frame.locator("body")).to_contain_text(hub.residents[index], timeout=lab.SLOW)
    shots.take(page, f"{tag}_feedback_page")
    return frame


def test_resident_loop_in_a_browser(hub):
    started = time.monotonic()
    shots = lab.Shots(ARTIFACTS)
    shots.note("hub up")
    # The instructor builds and releases module 00 while the residents' servers start.
    release = ThreadPoolExecutor(1).submit(_release, hub, shots)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab.CHROMIUM, args=lab.CHROMIUM_ARGS)
        try:
            teacher, *pages = [
                browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                for _ in (hub.instructor, *hub.residents)]
            for page, name in zip((teacher, *pages), (hub.instructor, *hub.residents),
                                  strict=True):
                lab.start_login(page, hub.url, name, hub.password)
            release.result()
            first_rows = [_resident_session(page, hub, i, shots) for i, page in enumerate(pages)]
            # The hub passed each resident's id into the notebook: two different cohorts.
            assert "person_id" in first_rows[0] and first_rows[0] != first_rows[1]
            course = _return_feedback(hub, shots)
            _formgrader(teacher, hub, shots)
            feedback = [_read_feedback(page, hub, i, shots) for i, page in enumerate(pages)]
            a, b = hub.residents
            # Each page is its owner's and says how Question 0.1 went: A right, B not.
            expect(feedback[0].locator("body")).not_to_contain_text(b)
            expect(feedback[1].locator("body")).not_to_contain_text(a)
            _assert_question_status(feedback[0], "passed")
            _assert_question_status(feedback[1], "failed")
            # In the browser, A can open neither B's JupyterLab nor B's feedback file: the
            # hub refuses A's token for B's server.
            b_page = _feedback_file(b).relative_to(drylab_hub.pwd.getpwnam(b).pw_dir)
            for url in (f"{hub.url}/user/{b}/lab", f"{hub.url}/user/{b}/files/{b_page}"):
                response = pages[0].goto(url)
                assert response.status == 403, (url, response.status)
            expect(pages[0].locator("body")).not_to_contain_text("Question 0.1")
            shots.take(pages[0], "residentA_refused_residentB_feedback")
        finally:
            browser.close()

    _assert_filesystem_isolation(hub, course)
    shots.note(f"done in {time.monotonic() - started:.0f}s")


def _formgrader(page, hub, shots):
    """The instructor's Formgrader (nbgrader's lab extension) shows the module and the two
    graded submissions, read from the gradebook that `drylab grade` filled."""
    lab.login(page, hub.url, hub.instructor, hub.password, started=True)
    lab.menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("#formgrader iframe")
    expect(frame.locator("body")).to_contain_text(MODULE, timeout=lab.SLOW)
    shots.take(page, "instructor_formgrader")
    page.goto(f"{hub.url}/user/{hub.instructor}/formgrader/manage_submissions/{MODULE}")
    # A earned Question 0.1's point, B did not; nothing else was answered.
    for name, points in zip(hub.residents, (1, 0), strict=True):
        # (the slash escaped: Playwright hands the pattern to the browser as /.../)
        score = page.locator("tr", has_text=name).locator(
            "td", has_text=re.compile(rf"^{points} \/ \d+$"))
        expect(score).to_be_visible(timeout=lab.SLOW)
    shots.take(page, "instructor_formgrader_submissions")


def _feedback_file(resident):
    """The feedback page nbgrader fetched into the resident's home (one, after one fetch)."""
    home = Path(drylab_hub.pwd.getpwnam(resident).pw_dir)
    pages = sorted(home.glob(f"{MODULE}/feedback/*/{MODULE}.html"))
    assert len(pages) == 1, pages
    return pages[0]


def _assert_question_status(frame, status):
    """The feedback table's row for Question 0.1 shows `status` in the page's own words."""
    row = frame.locator("tr").filter(has=frame.locator("th", has_text="Question 0.1"))
    expect(row.locator(".status").first).to_contain_text(STATUS_LABELS[status][0])


def _release(hub, shots):
    instructor_steps.release_module(hub.instructor, REPO / "curriculum", MODULE, hub.exchange,
                              hub.user_env)
    shots.note("built and released")


def _assert_filesystem_isolation(hub, course):
    """As resident A's unix user, B's submission, B's home, the exchange's listings and the
    instructor's course are all out of reach; B can still read their own submission."""
    a, b = hub.residents
    exchange = hub.exchange / drylab_hub.COURSE_ID
    submissions = {p.name.split("+")[0]: p for p in (exchange / "inbound").iterdir()}
    assert set(submissions) == {a, b}
    b_notebook = submissions[b] / f"{MODULE}.ipynb"
    probe = f"""
import os, sys
def denied(fn, *args):
    try:
        fn(*args)
    except PermissionError:
        return True
    return False
checks = {{
    "list inbound": denied(os.listdir, {str(exchange / "inbound")!r}),
    "list feedback": denied(os.listdir, {str(exchange / "feedback")!r}),
    "list B's submission": denied(os.listdir, {str(submissions[b])!r}),
    "read B's submission": denied(open, {str(b_notebook)!r}),
    "read B's feedback": denied(open, {str(_feedback_file(b))!r}),
    "list B's home": denied(os.listdir, os.path.expanduser("~{b}")),
    "list the course": denied(os.listdir, {str(course)!r}),
}}
print(checks)
sys.exit(0 if all(checks.values()) else 1)
"""
    result = hub.as_user(a, probe)
    assert result.returncode == 0, f"{a} could reach {b}'s work: {result.stdout}{result.stderr}"
    own = hub.as_user(b, f"open({str(b_notebook)!r}).read(1)")
    assert own.returncode == 0, own.stderr
