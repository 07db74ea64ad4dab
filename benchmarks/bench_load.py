"""What loading the extension costs a fresh kernel, and where google-genai's import went.

  load_ext        `%load_ext agy_jupyter` as the first cell of a fresh kernel: the time the kernel spent
                  in it (perf_counter around the magic, inside the kernel)
  import_widgets  `import ipywidgets` as the first cell of another fresh kernel (baseline: what any widget
                  extension pays)
  first_create    after `%load_ext`, the first `%agent create` (the magics' module, the agent layer and
                  google-genai load here now), in the same kernel as load_ext
  import_genai    `import google.genai` as the first cell of a fresh kernel (what moved out of load_ext)
  load_ext_eager  what `%load_ext` did before the lazy imports: the magics' and notebook tools' modules
                  (and with them the agent layer and google-genai) imported, then `%load_ext`

Each round starts new kernels (one per case), in a rotating order; the kernel's own start-up is not
counted. The goal (issue 10): load_ext ≤ 250 ms here; before the lazy imports it was ~590 ms.

    python benchmarks/bench_load.py [--rounds 5]
"""
from __future__ import annotations

import time

import _common

from agy_jupyter.testing import FakeGemini
from agy_jupyter.testing.kernel import Kernel

TIMED = ("import time as _t\n_s = _t.perf_counter()\n{code}\n"
         "print('elapsed', _t.perf_counter() - _s)")


LOAD_EXT = "get_ipython().run_line_magic('load_ext', 'agy_jupyter')"
EAGER = "import agy_jupyter.notebook.magics, agy_jupyter.notebook.run_python\n" + LOAD_EXT
CREATE = "get_ipython().run_line_magic('agent', 'create bench --model gemini-2.5-flash')"


def _timed(kernel: Kernel, code: str) -> float:
    """Seconds the kernel spent running the Python `code`."""
    execution = kernel.run(TIMED.format(code=code), timeout=120)
    text = execution.text()
    if execution.errors() or "elapsed" not in text:
        raise RuntimeError(f"{code!r} failed in the kernel: {text or execution.errors()}")
    return float(text.rsplit("elapsed", 1)[1].split()[0])


def run(rounds: int, verbose: bool) -> dict:
    fake = FakeGemini()
    fake.start()
    try:
        env = fake.env()

        def in_fresh_kernel(*codes: str) -> list[float]:
            kernel = Kernel(env=env)
            try:
                return [_timed(kernel, code) for code in codes]
            finally:
                kernel.shutdown()

        def load_then_create() -> list[float]:
            return in_fresh_kernel(LOAD_EXT, CREATE)

        cases = {"load_then_create": load_then_create,
                 "import_widgets": lambda: in_fresh_kernel("import ipywidgets"),
                 "import_genai": lambda: in_fresh_kernel("import google.genai"),
                 "load_ext_eager": lambda: in_fresh_kernel(EAGER)}
        done = _common.alternate_rounds(cases, rounds, _common.progress_printer(verbose))
    finally:
        fake.stop()
    ms = {"load_ext": [1e3 * r[0] for r in done["load_then_create"]],
          "first_create": [1e3 * r[1] for r in done["load_then_create"]],
          "import_widgets": [1e3 * r[0] for r in done["import_widgets"]],
          "import_genai": [1e3 * r[0] for r in done["import_genai"]],
          "load_ext_eager": [1e3 * r[0] for r in done["load_ext_eager"]]}
    stats = {name: _common.summarize(values) for name, values in ms.items()}
    base = stats["import_widgets"]["median"]
    rows = [_common.row("import ipywidgets (fresh kernel)", "ms", stats["import_widgets"], spread="max"),
            _common.row("%load_ext agy_jupyter (fresh kernel)", "ms", stats["load_ext"], spread="max",
                        baseline="import ipywidgets", ratio_value=_common.ratio(stats["load_ext"]["median"], base),
                        best_ratio=_common.ratio(stats["load_ext"]["min"], stats["import_widgets"]["min"])),
            _common.row("%load_ext as before (eager imports)", "ms", stats["load_ext_eager"], spread="max",
                        baseline="import ipywidgets",
                        ratio_value=_common.ratio(stats["load_ext_eager"]["median"], base)),
            _common.row("first %agent create after it", "ms", stats["first_create"], spread="max"),
            _common.row("import google.genai (fresh kernel)", "ms", stats["import_genai"], spread="max")]
    notes = [f"%load_ext median {stats['load_ext']['median']:.0f} ms (goal ≤ 250 ms), "
             f"{_common.ratio(stats['load_ext']['median'], base):.2f}× a bare `import ipywidgets`; "
             f"{_common.ratio(stats['load_ext_eager']['median'], stats['load_ext']['median']):.1f}× faster than "
             "the eager imports of before"]
    return {"benchmark": "load", "environment": _common.environment(), "params": {"rounds": rounds},
            "rows": rows, "notes": notes}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="fresh kernels per case (default 5)")
    args = p.parse_args(argv)
    started = time.monotonic()
    result = run(2 if args.quick else args.rounds, args.verbose)
    result["params"]["seconds"] = round(time.monotonic() - started, 1)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
