"""The benchmarks: ratios measured side by side in one run on this machine.

    python -m infra.bench [--quick] [--cold-only] [--from-json docs/bench.json]   (make bench)
    python -m infra.bench.video [--quick]                                      (make bench-video)
    python -m infra.bench.similar [--quick] | .vocabulary | .concepts

One job per module: `inputs` (the images sent), `accounting` (CPU, memory, the machine),
`harness` (subprocess runs, the server under test, the emulator and the stand-in),
`references` / `seed` / `fp16` (in-subprocess measurements), `serving` and `cold` (the server
runs), `report` / `details` / `cold_report` / `plot` / `output` (what is written to docs/),
`run` (a whole run) and `__main__` (the command line). `video`, `similar`, `vocabulary` and
`concepts` are benchmarks of their own, each with its own command line.
"""
