"""The maths stands alone and its caches have names."""

import ast
import os
import subprocess
import sys

import numpy as np

from tinysegnet import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _internal_imports(path):
    """Modules of the package that a file imports: relative imports, resolved one level up."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            found.add(node.module or "")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinysegnet"):
            found.add(node.module.split(".")[1])
    return found


def test_functional_depends_on_the_backend_alone():
    folder = os.path.join(ROOT, "tinysegnet", "functional")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            assert _internal_imports(os.path.join(folder, name)) <= {"backend"}, name


def test_functional_imports_with_pillow_and_matplotlib_blocked():
    code = ("import sys; sys.modules['PIL'] = None; sys.modules['matplotlib'] = None; "
            "import tinysegnet.functional as F; "
            "assert not any(m.startswith('tinysegnet.data') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_every_cache_is_a_named_tuple_whose_fields_are_documented(rng):
    x = rng.standard_normal((2, 3, 5, 6))
    caches = [
        F.conv2d_forward(x, rng.standard_normal((4, 3, 3, 3)))[1],
        F.conv2d_forward_reference(x, rng.standard_normal((4, 3, 3, 3)))[1],
        F.batchnorm2d_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)[1],
        F.relu_forward(x)[1],
        F.depthwise_conv2d_forward(x, rng.standard_normal((3, 3, 3)))[1],
        F.conv_transpose2d_forward(x, rng.standard_normal((3, 2, 4, 4)), (10, 12))[1],
        F.bilinear_upsample_forward(x, (10, 12))[1],
        F.dropout_forward(x, 0.5, True, np.random.default_rng(0))[1],
    ]
    for cache in caches:
        assert hasattr(cache, "_fields"), type(cache)
        for field in cache._fields:
            assert field in type(cache).__doc__, (type(cache).__name__, field)
    assert type(caches[0]) is type(caches[1])  # fast and reference convolution share one
