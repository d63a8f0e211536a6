"""rsafe_core: the RSafe method without I/O, shared by the gateway, the trainer and the evaluator.

Turns and targets (`turns`), neutralising and prompt rendering (`prompt`), verdict and category
parsing (`verdict`), policy files and objects (`policy`), decoding parameters (`decoding`) and the
seam for guard model families (`formats`), and the readers of the public data sets that the
evaluator and the trainer both use (`datasets`: local files in, labelled records out). It imports
no web framework, HTTP client, cache or metrics library: `tests/core/test_import_contract.py`
fails when a module does.
"""
