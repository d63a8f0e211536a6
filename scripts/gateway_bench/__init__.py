"""The gateway benchmark (`scripts/benchmark.py`), one module per experiment: `miss` (a), `hit`
(b), `single_flight` (c); `shared` holds the plan, the bodies, the statistics and the load
generator, `report` the checks and tables, `bare_app` the baseline endpoint of (b)."""
