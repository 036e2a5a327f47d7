"""Safe loading of FLAME model files and landmark embeddings (pickles that must not run code).

A pickle can call any importable function while it loads, so ``pickle.load`` on a file a user
downloaded is arbitrary code execution. FLAME ships as pickles: FLAME 2020
``generic_model.pkl`` (Python 2, chumpy ``Ch`` arrays, a scipy.sparse ``J_regressor``), FLAME
2023 ``flame2023.pkl`` / ``flame2023_Open.pkl`` (numpy). :class:`RestrictedUnpickler` admits
only the globals those files need to rebuild arrays and refuses everything else before it is
called. chumpy and scipy.sparse objects are never constructed: their pickled state is read into
stand-ins and turned into numpy arrays, so chumpy is not needed at run time.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

from ..errors import ModelFileError

FLAME_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
"""Arrays every FLAME model file must hold (FLAME 2020 and 2023 alike)."""

_FLAME_SITE = "https://flame.is.tue.mpg.de"


class _ChumpyState:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled ``x`` (the array value) and nothing else."""

    def __setstate__(self, state):
        self.x = state.get("x") if isinstance(state, dict) else None


class _SparseState:
    """Stand-in for a scipy.sparse matrix: keeps the pickled attribute dict."""

    fmt = ""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


def _sparse_stand_in(fmt: str) -> type:
    return type(f"_{fmt}_state", (_SparseState,), {"fmt": fmt})


_SPARSE_STAND_INS = {
    f"{fmt}_{kind}": _sparse_stand_in(fmt) for fmt in ("csc", "csr", "coo") for kind in ("matrix", "array")
}


def _copyreg_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` limited to the stand-ins (protocol 0/1 pickles of chumpy)."""
    if not (isinstance(cls, type) and issubclass(cls, (_ChumpyState, _SparseState)) and base is object):
        raise pickle.UnpicklingError(f"copyreg._reconstructor called on {cls!r}")
    return object.__new__(cls)


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles of bytes use it, limited to latin-1."""
    if encoding.lower().replace("-", "") != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1", errors)


def _numpy_globals() -> dict[tuple[str, str], object]:
    from numpy.core import multiarray, numeric

    table = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # numpy 1.x writes numpy.core.*, numpy 2.x writes numpy._core.*: same functions.
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return table


_ALLOWED = {
    **_numpy_globals(),
    ("chumpy.ch", "Ch"): _ChumpyState,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "object"): object,
    ("builtins", "set"): set,  # chumpy's pickled state holds a set of dirty variable names
    ("builtins", "frozenset"): frozenset,
}


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy, scipy.sparse and chumpy arrays and refuses any other global.

    Python 2 pickles are read with ``encoding='latin1'`` (numpy's documented way to read
    Python 2 array data); ``__builtin__``/``copy_reg`` are read as their Python 3 names.

    Raises:
        ModelFileError: from :meth:`find_class`, naming the file and the refused global, as
            soon as the pickle asks for anything outside the allow-list (nothing has run).
    """

    def __init__(self, file, path: Path | str):
        super().__init__(file, encoding="latin1")
        self.path = Path(path)

    def find_class(self, module: str, name: str):
        # Overriding find_class bypasses pickle's own Python 2 name mapping: redo the two we need.
        module = _PY2_MODULES.get(module, module)
        found = _ALLOWED.get((module, name))
        if found is None and module.startswith("scipy.sparse"):
            found = _SPARSE_STAND_INS.get(name)
        if found is None:
            raise ModelFileError(
                f"{self.path}: refused to load global '{module}.{name}': a model file may only hold "
                f"numpy, scipy.sparse and chumpy arrays, and this one asks to import code (it may be "
                f"malicious or not a FLAME file); use the original file from {_FLAME_SITE}"
            )
        return found


def _to_numpy(obj, path: Path):
    """Replace stand-ins by numpy arrays, recursively through dicts, lists and tuples."""
    if isinstance(obj, _ChumpyState):
        if obj.x is None:
            raise ModelFileError(f"{path}: a chumpy array without a value 'x'; re-download the model file")
        return np.asarray(_to_numpy(obj.x, path))
    if isinstance(obj, _SparseState):
        return _sparse_to_numpy(obj, path)
    if isinstance(obj, dict):
        return {key: _to_numpy(value, path) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(value, path) for value in obj)
    return obj


def _sparse_to_numpy(obj: _SparseState, path: Path) -> np.ndarray:
    """Dense array from a pickled scipy.sparse state (old scipy wrote 'shape', newer '_shape')."""
    state = obj.state
    shape = state.get("_shape", state.get("shape"))
    try:
        if obj.fmt == "coo":
            rows, cols = (state["row"], state["col"]) if "row" in state else state["coords"]
            matrix = scipy.sparse.coo_matrix((state["data"], (rows, cols)), shape=shape)
        else:
            build = scipy.sparse.csc_matrix if obj.fmt == "csc" else scipy.sparse.csr_matrix
            matrix = build((state["data"], state["indices"], state["indptr"]), shape=shape)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: malformed sparse matrix ({exc}); re-download the model file") from exc
    return matrix.toarray()


def load_pickle(path: Path | str):
    """Load a pickle through :class:`RestrictedUnpickler`; chumpy and sparse arrays become numpy.

    Args:
        path: a ``.pkl`` file (FLAME model, landmark embedding).

    Returns:
        The unpickled object with every chumpy ``Ch`` and scipy.sparse matrix replaced by a
        dense ``np.ndarray``.

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: the pickle asks for a global outside the allow-list, or is not a
            readable pickle.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; give the path to a FLAME model file (generic_model.pkl, "
            f"flame2023.pkl, flame2023_Open.pkl) downloaded from {_FLAME_SITE}"
        )
    with path.open("rb") as file:
        try:
            obj = RestrictedUnpickler(file, path).load()
        except ModelFileError:
            raise
        except Exception as exc:  # a corrupt pickle raises anything from EOFError to TypeError
            raise ModelFileError(
                f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); re-download the file"
            ) from exc
    return _to_numpy(obj, path)


def load_flame_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Read a FLAME model file into numpy arrays, safely.

    Args:
        path: FLAME 2020 ``generic_model.pkl``, FLAME 2023 ``flame2023.pkl`` or
            ``flame2023_Open.pkl``.

    Returns:
        Every array in the file, including at least :data:`FLAME_KEYS`: ``v_template`` (V, 3)
        metres, ``shapedirs`` (V, 3, S) shape then expression components, ``posedirs``
        (V, 3, 36), ``J_regressor`` (5, V) dense, ``weights`` (V, 5), ``kintree_table`` (2, 5),
        ``f`` (F, 3).

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: unsafe or unreadable pickle, not a dict, or keys missing (named).
    """
    path = Path(path).expanduser()
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise ModelFileError(
            f"{path}: holds a {type(data).__name__}, not a FLAME model dict; give generic_model.pkl, "
            f"flame2023.pkl or flame2023_Open.pkl"
        )
    missing = [key for key in FLAME_KEYS if key not in data]
    if missing:
        raise ModelFileError(
            f"{path}: not a FLAME model file, missing {', '.join(missing)}; give generic_model.pkl, "
            f"flame2023.pkl or flame2023_Open.pkl from {_FLAME_SITE}"
        )
    return {key: np.asarray(value) for key, value in data.items() if not isinstance(value, str)}


def load_landmark_embedding(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a FLAME barycentric landmark embedding (``flame_static_embedding_68.pkl``), safely.

    Returns:
        ``(lmk_face_idx (L,) int64, lmk_b_coords (L, 3) float64)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: unsafe pickle or keys ``lmk_face_idx``/``lmk_b_coords`` missing.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give a 68-point FLAME landmark embedding "
                                f"(flame_static_embedding_68.pkl), or none to use the default avatar's")
    data = load_pickle(path)
    if not isinstance(data, dict) or not {"lmk_face_idx", "lmk_b_coords"} <= data.keys():
        raise ModelFileError(
            f"{path}: not a landmark embedding (needs lmk_face_idx and lmk_b_coords); give "
            f"flame_static_embedding_68.pkl"
        )
    return np.asarray(data["lmk_face_idx"], dtype=np.int64), np.asarray(data["lmk_b_coords"], np.float64)


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes (the rig-map cache key of a model file)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
