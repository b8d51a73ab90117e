"""Input checks shared by the layer functions: one clear ValueError naming the function and shapes."""


def require_ndim(fn, name, a, ndim, layout):
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {tuple(a.shape)}")


def require_float(fn, name, a):
    if a.dtype.kind != "f":
        raise ValueError(f"{fn}: {name} must be a floating-point array, got dtype {a.dtype}")
