"""tempbench: comparable numbers for video temporal grounding with multimodal LLMs.

The public Python API mirrors the CLI (imported lazily, so `import tempbench` stays light):
`load_task`, `load_annotations`, `import_task`, `fetch_task`, `score`, `compare`, `run`.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_task": ("tempbench.tasks", "get_task"),
    "get_task": ("tempbench.tasks", "get_task"),
    "load_annotations": ("tempbench.annotations", "load_annotations"),
    "import_task": ("tempbench.annotations", "import_task"),
    "fetch_task": ("tempbench.annotations", "fetch_task"),
    "score": ("tempbench.scoring", "score"),
    "compare": ("tempbench.scoring", "compare"),
    "run": ("tempbench.runner", "run"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tempbench' has no attribute {name!r}")
