"""What the instructor does on the single host, as functions: install the course, release a
module, grade (as root, sandboxed), hand feedback back through nbgrader's exchange.

run-hub.sh's try-out (`python instructor.py release-demo`) and the end-to-end test call these,
so both do what docs/deploy.md tells an instructor to type.
"""

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from drylab_hub import (
    COURSE_DIR_NAME,
    COURSE_ID,
    REPO,
    HubConfigError,
    as_user,
    ensure_unix_user,
    env_list,
    prepare_exchange,
    require_env,
    role_config_path,
)
from user_env import user_environment


def install_course(course_src, instructor):
    """Copy a course (nbgrader layout: nbgrader_config.py, source/<module>/) to the instructor.

    Returns the course directory ~instructor/drylab, owned by the instructor and 0700, since
    it will hold every resident's submission, the gradebook and the solutions.
    """
    course_src = Path(course_src)
    if not (course_src / "source").is_dir():
        raise HubConfigError(f"{course_src} is not a course directory: it has no source/ folder")
    entry = pwd.getpwnam(instructor)
    dest = Path(entry.pw_dir) / COURSE_DIR_NAME
    shutil.copytree(course_src, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for path in [dest, *dest.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.chmod(dest, 0o700)
    return dest


def instructor_env(instructor, exchange_root, user_env):
    """Environment for nbgrader commands an instructor runs outside their hub server."""
    kwargs = as_user(instructor, user_env)
    kwargs["env"].update({
        "JUPYTER_CONFIG_PATH": role_config_path("instructor"),
        "DRYLAB_EXCHANGE_ROOT": str(exchange_root),
        "DRYLAB_COURSE_ID": COURSE_ID,
    })
    kwargs["cwd"] = str(Path(kwargs["cwd"]) / COURSE_DIR_NAME)
    return kwargs


def run_as_instructor(instructor, exchange_root, user_env, argv, **extra):
    """Run `argv` (e.g. ["nbgrader", "collect", "00_orientation"]) as the instructor, in the
    course directory, with the hub's nbgrader configuration. Raises CalledProcessError."""
    kwargs = instructor_env(instructor, exchange_root, user_env)
    kwargs.update(extra)
    result = subprocess.run(argv, text=True, capture_output=True, **kwargs)
    if result.returncode:
        raise subprocess.CalledProcessError(
            result.returncode, argv, result.stdout,
            f"{' '.join(argv)} as {instructor} failed:\n{result.stderr[-4000:]}")
    return result


def course_dir(instructor):
    """The instructor's course directory on the hub (~instructor/drylab)."""
    return Path(pwd.getpwnam(instructor).pw_dir) / COURSE_DIR_NAME


def _chown_tree(path, uid, gid):
    for p in [path, *Path(path).rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def grade_as_root(instructor, course, sandbox="bwrap", workers=None):
    """Grade the collected submissions with `drylab grade`, as root, in the bwrap sandbox.

    The sandbox needs root (it joins cgroups and drops each kernel to a leased uid), so on a
    single host an administrator (or a sudo rule for exactly this) runs grading; the files it
    writes (journal, gradebook, reference cache) are handed back to the instructor after.
    """
    entry = pwd.getpwnam(instructor)
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "drylab"), "grade", str(course), "--sandbox", sandbox,
            "--no-progress"]
    if workers:
        argv += ["--workers", str(workers)]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    try:
        result = subprocess.run(argv, text=True, capture_output=True, env=env, cwd=course)
    finally:
        _chown_tree(course, entry.pw_uid, entry.pw_gid)
    if result.returncode:
        raise subprocess.CalledProcessError(
            result.returncode, argv, result.stdout,
            f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def stage_feedback(course, module):
    """Put nbgrader's submission stamps next to drylab's feedback pages.

    `drylab feedback` writes COURSE/feedback/<resident>/<module>/<module>.html; nbgrader's
    release_feedback also needs that submission's timestamp.txt and submission_secret.txt
    there (the secret names the released file, so only its author can find it), which
    `nbgrader generate_feedback` would have copied from submitted/.
    """
    course = Path(course)
    owner = course.stat()
    staged = []
    for page in sorted((course / "feedback").glob(f"*/{module}/{module}.html")):
        resident = page.parent.parent.name
        submitted = course / "submitted" / resident / module
        for stamp in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy2(submitted / stamp, page.parent / stamp)
            os.chown(page.parent / stamp, owner.st_uid, owner.st_gid)
        staged.append(page)
    return staged


def release_module(instructor, course_src, module, exchange_root, user_env):
    """What an instructor does to hand out a module: copy the course in, `drylab build` it
    (the release without solutions, hidden tests or grading metadata), release it."""
    course = install_course(course_src, instructor)
    run_as_instructor(instructor, exchange_root, user_env,
                      ["drylab", "build", str(course), "--module", module])
    run_as_instructor(instructor, exchange_root, user_env,
                      ["nbgrader", "release_assignment", "--force", module])
    return course


def main(argv=None):
    """`python instructor.py release-demo`: run-hub.sh's set-up of the try-out (as root)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["release-demo"])
    parser.add_argument("--module", default="00_orientation")
    args = parser.parse_args(argv)
    instructor = env_list("DRYLAB_INSTRUCTORS")[0]
    exchange_root = Path(require_env("DRYLAB_EXCHANGE_ROOT", "where the exchange lives"))
    ensure_unix_user(instructor, create=True)
    prepare_exchange(exchange_root, COURSE_ID, owner=instructor)
    user_env = user_environment(require_env("DRYLAB_USER_ENV_DIR", "the users' Python"))
    course = release_module(instructor, REPO / "curriculum", args.module, exchange_root,
                            user_env)
    print(f"released {args.module} from {course}")


if __name__ == "__main__":
    main()
