"""Write (or check) the curriculum notebooks from their builders.

    python curriculum/tools/build_notebooks.py              # every module with make_notebook.py
    python curriculum/tools/build_notebooks.py 01_building_a_cohort
    python curriculum/tools/build_notebooks.py --check      # exit 1 if a notebook is stale
    python curriculum/tools/build_notebooks.py --lang zh    # source/<module>_zh/ from text.zh.yml

A module's builder is ``source/<module>/make_notebook.py`` with ``build(b)`` (see nbbuild.py);
its text is ``source/<module>/text.<lang>.yml``. Modules without a builder (hand-written
notebooks) are left alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nbbuild import Builder, dumps, load_text  # noqa: E402 (after the path set-up above)

SOURCE = Path(__file__).resolve().parents[1] / "source"


def builders(source: Path = SOURCE) -> dict[str, Path]:
    """Module name -> its ``make_notebook.py``, for modules that have one."""
    return {p.parent.name: p for p in sorted(source.glob("*/make_notebook.py"))}


def render(module_dir: Path, lang: str = "en") -> str:
    """The notebook text the builder of ``module_dir`` writes for ``lang``."""
    spec = importlib.util.spec_from_file_location(
        f"make_notebook_{module_dir.name}", module_dir / "make_notebook.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    b = Builder(text=load_text(module_dir / f"text.{lang}.yml"))
    mod.build(b)
    return dumps(b.notebook())


def target(module_dir: Path, lang: str) -> Path:
    name = module_dir.name if lang == "en" else f"{module_dir.name}_{lang}"
    return module_dir.parent / name / f"{name}.ipynb"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="module folder names (default: all)")
    ap.add_argument("--lang", default="en", help="text.<lang>.yml to build from (default en)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 when a committed notebook differs")
    args = ap.parse_args(argv)
    found = builders()
    unknown = sorted(set(args.modules) - set(found))
    if unknown:
        ap.error(f"no make_notebook.py for {unknown}; modules with one: {sorted(found)}")
    stale = []
    for name in args.modules or sorted(found):
        text = render(found[name].parent, args.lang)
        out = target(found[name].parent, args.lang)
        if args.check:
            if not out.exists() or out.read_text(encoding="utf-8") != text:
                stale.append(str(out))
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    if stale:
        print("stale (rebuild with curriculum/tools/build_notebooks.py):\n  " +
              "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
