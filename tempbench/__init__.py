"""tempbench: comparable numbers for video temporal grounding with multimodal LLMs.

The public Python API mirrors the CLI (`tempbench.api`, imported on first use so `import tempbench` stays light):
`load_task`, `load_annotations`, `load_predictions`, `score`, `score_profiles`, `compare`, `run`, `write_result`,
`import_task`, `fetch_task`; the records they return are in `tempbench.results` (`Result`, `RunConfig`,
`Comparison`). Examples: docs/api.md.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_task": ("tempbench.api", "load_task"),
    "load_annotations": ("tempbench.api", "load_annotations"),
    "load_predictions": ("tempbench.api", "load_predictions"),
    "score": ("tempbench.api", "score"),
    "score_profiles": ("tempbench.api", "score_profiles"),
    "compare": ("tempbench.api", "compare"),
    "run": ("tempbench.api", "run"),
    "write_result": ("tempbench.api", "write_result"),
    "import_task": ("tempbench.annotations", "import_task"),
    "fetch_task": ("tempbench.annotations", "fetch_task"),
    "Result": ("tempbench.results", "Result"),
    "RunConfig": ("tempbench.results", "RunConfig"),
    "Comparison": ("tempbench.results", "Comparison"),
    "TempbenchError": ("tempbench.errors", "TempbenchError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tempbench' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
