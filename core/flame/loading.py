"""Safe loading of FLAME model files and landmark embeddings (pickles that must not run code).

A pickle can call any importable function while it loads, so ``pickle.load`` on a file a user
downloaded is arbitrary code execution. FLAME ships as pickles: FLAME 2020
``generic_model.pkl`` (Python 2, chumpy ``Ch`` arrays, a scipy.sparse ``J_regressor``), FLAME
2023 ``flame2023.pkl`` / ``flame2023_Open.pkl`` (numpy). :class:`RestrictedUnpickler` admits
only the globals those files need and refuses everything else before it is called.

Nothing numpy, chumpy or scipy defines runs on the file's data while it is read: every array,
dtype, scalar, chumpy ``Ch`` and sparse matrix is read into an inert stand-in, and only once
the whole pickle is read are they turned into numpy arrays, each checked first (a plain
numeric or bool dtype with no fields or object parts, a shape whose size matches the stored
bytes, sparse indices in range). A hostile pickle cannot forge object pointers through a dtype,
make numpy allocate what the file does not hold, expand shared references exponentially,
recurse without end, or crash the interpreter through the hash of a deeply nested tuple; what
the loader builds is bounded by the file's size (see the ``_MAX_*`` limits).
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse

from ..errors import ModelFileError

FLAME_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
"""Arrays every FLAME model file must hold (FLAME 2020 and 2023 alike)."""

FLAME_NUM_JOINTS = 5
"""FLAME's joints: global, neck, jaw, left eye, right eye (its pose vector is 5 x 3 values)."""

SHAPE_SPACE_DIM = 300
"""Shape components at the front of every FLAME ``shapedirs`` (expression components follow)."""

_FLAME_SITE = "https://flame.is.tue.mpg.de"
_HOSTILE = f"it is not a FLAME model file and may be malicious; use the original file from {_FLAME_SITE}"
_DAMAGED = f"the file is damaged or not a FLAME model; download it again from {_FLAME_SITE}"

# Limits on what a file may make the loader build. FLAME 2020 and 2023 files are 50-100 MB
# and hold a few dozen objects; the largest array (shapedirs, 5023 x 3 x 400) has 6.0 M elements.
_MAX_FILE_BYTES = 1 << 30
_MAX_OPCODES = 1_000_000  # a FLAME pickle runs a few thousand; one costs about 1 us here
_MAX_DEPTH = 32  # a FLAME pickle nests 4 deep: dict, Ch, its state, the array
_MAX_ARRAY_ELEMENTS = 1 << 26  # 512 MiB as float64, 11x FLAME 2023's shapedirs
_EXTRA_ELEMENTS = 1 << 20  # beyond one element per file byte: densified sparse matrices
_MAX_VALUE = 1e4  # FLAME is in metres, its bases and weights are below 1: larger is corruption

_PLAIN_DTYPES = frozenset(
    ["b1"] + [f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)] + [f"f{size}" for size in (2, 4, 8)]
)
"""numpy type strings a model file may use for an array: bool, integers, float16/32/64."""
_SCALAR_KEYS = (str, bytes, int, float, bool, type(None))
"""What may be a dict key or a set element: hashing one never recurses."""


class _Refused(Exception):
    """The file breaks a rule; the message says which and what to do (the path is added later)."""


def _printable(text: str, limit: int = 80) -> str:
    """An attacker-chosen name cut to ``limit`` characters on one line (messages are one line)."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _brief(value) -> str:
    """A short, safe description of an attacker-chosen value (never its full repr)."""
    if isinstance(value, str) and len(value) <= 40 and value.isprintable():
        return repr(value)
    if isinstance(value, _Global):
        return value.name
    return f"a {type(value).__name__}"


# --- Stand-ins: what the pickle builds instead of numpy, chumpy and scipy objects ------------


class _StandIn:
    """Records the state BUILD gives it, once; nothing numpy defines sees it until it is checked."""

    __slots__ = ("state", "built")
    kind = "value"

    def __new__(cls):  # NEWOBJ and copyreg._reconstructor create stand-ins without __init__
        self = object.__new__(cls)
        self.state, self.built = None, False
        return self

    def __setstate__(self, state):
        if self.built:
            raise _Refused(f"the pickle rebuilds a {self.kind} a second time; {_HOSTILE}")
        self.state, self.built = state, True


class _DtypeState(_StandIn):
    """``numpy.dtype(spec, align, copy)``; ``state`` is what its ``__setstate__`` would take."""

    __slots__ = ("spec",)
    kind = "numpy dtype"


class _ArrayState(_StandIn):
    """An ndarray: the state ``ndarray.__setstate__`` takes, ``(1, shape, dtype, fortran, data)``."""

    __slots__ = ()
    kind = "numpy array"


class _ScalarState(_StandIn):
    """``numpy.core.multiarray.scalar(dtype, data)``: a numpy scalar from its bytes."""

    __slots__ = ()
    kind = "numpy scalar"


class _ChumpyState(_StandIn):
    """``chumpy.ch.Ch``: only the pickled value ``x`` is ever used."""

    __slots__ = ()
    kind = "chumpy array"


class _SparseState(_StandIn):
    """A scipy.sparse matrix: its pickled attribute dict."""

    __slots__ = ()
    kind = "sparse matrix"
    fmt = ""


def _built(cls, state) -> _StandIn:
    stand_in = cls()
    stand_in.state, stand_in.built = state, True
    return stand_in


def _scalar(dtype, data) -> _ScalarState:
    return _built(_ScalarState, (dtype, data))


def _dtype(spec, align=False, copy=False) -> _DtypeState:
    stand_in = _DtypeState()
    stand_in.spec = spec
    return stand_in


_SPARSE_STAND_INS = {
    f"{fmt}_{kind}": type(f"_{fmt}_state", (_SparseState,), {"__slots__": (), "fmt": fmt})
    for fmt in ("csc", "csr", "coo") for kind in ("matrix", "array")
}
_STAND_IN_CLASSES = (_ChumpyState, *_SPARSE_STAND_INS.values())
"""Classes a pickle may instantiate itself (NEWOBJ, copyreg._reconstructor)."""


class _Global:
    """An admitted global function under the name messages give it (BUILD and NEWOBJ refuse it:
    on a plain function, BUILD would set attributes such as ``__defaults__`` for every later load)."""

    __slots__ = ("name", "function")

    def __init__(self, name: str, function):
        self.name, self.function = name, function

    def __call__(self, *args):
        return self.function(*args)


def _refuse_call(name: str):
    def refuse(*args):
        raise _Refused(f"the pickle calls {name} directly, which no numpy pickle does; {_HOSTILE}")
    return refuse


_NDARRAY = _Global("numpy.ndarray", _refuse_call("numpy.ndarray"))


def _reconstruct(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct``: an empty array that BUILD then fills (nothing is
    allocated: numpy would allocate ``shape`` here, whatever the file holds)."""
    if subtype is not _NDARRAY:
        raise _Refused(f"numpy's _reconstruct called on {_brief(subtype)}, not numpy.ndarray; {_HOSTILE}")
    return _ArrayState()


def _frombuffer(buffer, dtype, shape, order):
    """``numpy.core.numeric._frombuffer`` (protocol 5 arrays): the same state as an ndarray's."""
    return _built(_ArrayState, (1, shape, dtype, order == "F", buffer))


def _copyreg_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` limited to the stand-ins (protocol 0/1 pickles of chumpy)."""
    if not (isinstance(cls, type) and issubclass(cls, _STAND_IN_CLASSES) and base is object):
        raise _Refused(f"copyreg._reconstructor called on {_brief(cls)}; {_HOSTILE}")
    return cls()


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles of bytes use it, limited to latin-1."""
    if not (isinstance(encoding, str) and encoding.lower().replace("-", "") == "latin1" and isinstance(text, str)
            and errors == "strict"):
        raise _Refused(f"_codecs.encode with encoding {_brief(encoding)}; {_HOSTILE}")
    return text.encode("latin1")


def _scalar_items(kind):
    def build(items=()):
        items = list(items) if isinstance(items, (list, tuple, set, frozenset)) else None
        if items is None or not all(type(item) in _SCALAR_KEYS for item in items):
            raise _Refused(f"a {kind.__name__} of something other than names and numbers; {_HOSTILE}")
        return kind(items)
    return build


def _admitted() -> dict[tuple[str, str], object]:
    table = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _Global("numpy.dtype", _dtype),
        ("chumpy.ch", "Ch"): _ChumpyState,
        ("copyreg", "_reconstructor"): _Global("copyreg._reconstructor", _copyreg_reconstructor),
        ("_codecs", "encode"): _Global("_codecs.encode", _latin1_encode),
        ("builtins", "object"): object,  # the base class argument of copyreg._reconstructor
        ("builtins", "bytes"): _Global("bytes", lambda: b""),  # Python 3 pickles b"" as bytes() below protocol 3
        # chumpy's pickled state holds a set of dirty variable names
        ("builtins", "set"): _Global("set", _scalar_items(set)),
        ("builtins", "frozenset"): _Global("frozenset", _scalar_items(frozenset)),
    }
    # numpy 1.x writes numpy.core.*, numpy 2.x writes numpy._core.*: same functions.
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _Global("numpy _reconstruct", _reconstruct)
        table[(f"{core}.multiarray", "scalar")] = _Global("numpy scalar", _scalar)
        table[(f"{core}.numeric", "_frombuffer")] = _Global("numpy _frombuffer", _frombuffer)
    return table


_ADMITTED = _admitted()
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


# --- The unpickler -----------------------------------------------------------------------------


def _check_keys(items, what: str) -> None:
    # Hashing a tuple nested a million deep overflows the C stack (a segfault, not an exception).
    if not all(type(item) in _SCALAR_KEYS for item in items):
        raise _Refused(f"a {what} other than a name or a number; {_HOSTILE}")


def _load_setitem(self):
    _check_keys(self.stack[-2:-1], "dict key")
    pickle._Unpickler.load_setitem(self)


def _load_setitems(self):
    _check_keys(self.stack[0::2], "dict key")  # after MARK, self.stack holds only the items
    pickle._Unpickler.load_setitems(self)


def _load_dict(self):
    _check_keys(self.stack[0::2], "dict key")
    pickle._Unpickler.load_dict(self)


def _load_set_items(original):
    def load(self):
        _check_keys(self.stack, "set element")
        original(self)
    return load


def _load_build(self):
    if not isinstance(self.stack[-2], _StandIn):
        raise _Refused(f"the pickle sets the state of {_brief(self.stack[-2])}; {_HOSTILE}")
    pickle._Unpickler.load_build(self)


def _load_newobj(original):
    def load(self):
        cls = self.stack[-2] if original is pickle._Unpickler.load_newobj else self.stack[-3]
        if cls not in _STAND_IN_CLASSES:
            raise _Refused(f"the pickle instantiates {_brief(cls)}; {_HOSTILE}")
        original(self)
    return load


def _counted(load):
    def run(self):
        self.opcodes += 1
        if self.opcodes > _MAX_OPCODES:
            raise _Refused(f"the pickle runs more than {_MAX_OPCODES:,} instructions, far more than "
                           f"any FLAME model file; {_HOSTILE}")
        load(self)
    return run


def _dispatch() -> dict[int, object]:
    base = pickle._Unpickler
    table = dict(base.dispatch)
    table.update({
        pickle.SETITEM[0]: _load_setitem, pickle.SETITEMS[0]: _load_setitems, pickle.DICT[0]: _load_dict,
        pickle.ADDITEMS[0]: _load_set_items(base.load_additems),
        pickle.FROZENSET[0]: _load_set_items(base.load_frozenset),
        pickle.BUILD[0]: _load_build,
        pickle.NEWOBJ[0]: _load_newobj(base.load_newobj), pickle.NEWOBJ_EX[0]: _load_newobj(base.load_newobj_ex),
    })
    return {opcode: _counted(load) for opcode, load in table.items()}


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that reads numpy, scipy.sparse and chumpy arrays into stand-ins and refuses
    any other global, any instruction count past :data:`_MAX_OPCODES`, dict keys and set
    elements other than names and numbers, and BUILD/NEWOBJ on anything but a stand-in.

    It is Python's own pure-Python unpickler: the C one grows its memo table to the largest
    index a file names (an 8-byte pickle asks it for 1 GiB, measured). Python 2 pickles are
    read with ``encoding='latin1'`` (numpy's documented way to read Python 2 array data);
    ``__builtin__``/``copy_reg`` are read as their Python 3 names.

    Args:
        file: a binary file object (read whole by :func:`load_pickle`).
        path: the file's path, for messages.

    Raises:
        ModelFileError: from :meth:`find_class`, naming the file and the refused global, as
            soon as the pickle asks for anything outside the allow-list (nothing has run).
        _Refused: (private; :func:`load_pickle` turns it into ModelFileError) any other rule broken.
    """

    dispatch = _dispatch()

    def __init__(self, file, path: Path | str):
        super().__init__(file, encoding="latin1")
        self.path = Path(path)
        self.opcodes = 0

    def find_class(self, module: str, name: str):
        # Overriding find_class bypasses pickle's own Python 2 name mapping: redo the two we need.
        module = _PY2_MODULES.get(module, module)
        found = _ADMITTED.get((module, name))
        if found is None and module.startswith("scipy.sparse"):
            found = _SPARSE_STAND_INS.get(name)
        if found is None:
            raise ModelFileError(
                f"{self.path}: refused to load global '{_printable(module)}.{_printable(name)}': a model file may only "
                f"hold numpy, scipy.sparse and chumpy arrays, and this one asks to import code (it may be "
                f"malicious or not a FLAME file); use the original file from {_FLAME_SITE}"
            )
        return found


# --- Stand-ins to numpy, checked ---------------------------------------------------------------


def _plain_dtype(value) -> np.dtype:
    """The dtype a stand-in describes, if it is a plain bool/integer/float one, in the file's byte order."""
    if not isinstance(value, _DtypeState):
        raise _Refused(f"an array whose dtype is {_brief(value)}, not a numpy dtype; {_HOSTILE}")
    if type(value.spec) is not str or value.spec not in _PLAIN_DTYPES:
        raise _Refused(f"an array of numpy type {_brief(value.spec)}: a model file holds only bool, integer "
                       f"and float arrays; {_HOSTILE}")
    state, order = value.state, "|"
    if state is not None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]): only
        # the byte order may vary. Fields, names, a subarray or flags are how a pickle forges an
        # object dtype out of raw bytes (pointers numpy would then follow).
        plain = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                 and state[1] in ("<", ">", "|", "=") and state[2:8] == (None, None, None, -1, -1, 0)
                 and state[8:] in ((), (None,)))
        if not plain:
            raise _Refused(f"a numpy dtype with fields, a subarray, flags or metadata (how a pickle forges "
                           f"object pointers); {_HOSTILE}")
        order = state[1]
    return np.dtype(value.spec).newbyteorder("=" if order == "|" else order)


def _check_plain(dtype: np.dtype) -> None:
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        raise _Refused(f"an array of dtype {dtype}: a model file holds only bool, integer and float arrays; "
                       f"{_HOSTILE}")


def _raw_bytes(data) -> bytes | bytearray:
    if isinstance(data, str):  # Python 2 str, read as latin-1
        try:
            return data.encode("latin1")
        except UnicodeEncodeError:
            pass
    elif isinstance(data, (bytes, bytearray)):
        return data
    raise _Refused(f"an array whose data is {_brief(data)}, not its bytes; {_HOSTILE}")


def _shape(shape, ndim: range = range(33)) -> tuple[int, ...]:
    """A numpy shape: at most 32 sizes, each in [0, 2**63)."""
    if not (isinstance(shape, tuple) and len(shape) in ndim and all(type(n) is int and 0 <= n < 2**63 for n in shape)):
        raise _Refused(f"an array or matrix whose shape is not a tuple of sizes; {_HOSTILE}")
    return shape


class _Converter:
    """Turns the unpickled stand-ins into numpy, once per object (shared references stay
    shared, so a graph of shared lists does not expand), no deeper than :data:`_MAX_DEPTH`,
    with at most ``budget`` array elements in all."""

    def __init__(self, budget: int):
        self.budget = budget
        self.elements = 0
        self.done: dict[int, object] = {}
        self.active: set[int] = set()

    def convert(self, obj, depth: int = 0):
        if type(obj) in _SCALAR_KEYS:
            return obj
        key = id(obj)  # the unpickled graph keeps every object alive until conversion ends
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise _Refused(f"the pickle holds an object that contains itself; {_HOSTILE}")
        if depth >= _MAX_DEPTH:
            raise _Refused(f"the pickle nests objects more than {_MAX_DEPTH} deep (a FLAME file nests 4); {_HOSTILE}")
        self.active.add(key)
        try:
            result = self._convert(obj, depth + 1)
        finally:
            self.active.discard(key)
        if isinstance(result, (np.ndarray, np.generic)):
            _check_plain(result.dtype)  # what leaves the loader, whatever path built it
        self.done[key] = result
        return result

    def _convert(self, obj, depth: int):
        if isinstance(obj, dict):
            return {key: self.convert(value, depth) for key, value in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.convert(value, depth) for value in obj)
        if isinstance(obj, _StandIn) and not obj.built and not isinstance(obj, _DtypeState):
            raise _Refused(f"a {obj.kind} without its data; {_DAMAGED}")
        if isinstance(obj, _ArrayState):
            return self._array(obj.state)
        if isinstance(obj, _DtypeState):
            return _plain_dtype(obj)
        if isinstance(obj, _ScalarState):
            dtype, data = _plain_dtype(obj.state[0]), _raw_bytes(obj.state[1])
            if len(data) != dtype.itemsize:
                raise _Refused(f"a numpy scalar of {len(data)} bytes for dtype {dtype}; {_DAMAGED}")
            self._count(1)
            return np.frombuffer(data, dtype, 1)[0]
        if isinstance(obj, _ChumpyState):
            x = self.convert(obj.state.get("x") if isinstance(obj.state, dict) else None, depth)
            if isinstance(x, np.ndarray):
                return x
            if type(x) in (int, float):
                return np.asarray(x, dtype=np.float64)
            raise _Refused(f"a chumpy array whose value 'x' is {_brief(x)}, not an array; {_DAMAGED}")
        if isinstance(obj, _SparseState):
            return self._sparse(obj, depth)
        return obj  # sets of names, and inert admitted globals

    def _count(self, elements: int) -> None:
        if elements > _MAX_ARRAY_ELEMENTS:
            raise _Refused(f"an array of {elements:,} elements, more than the {_MAX_ARRAY_ELEMENTS:,} allowed "
                           f"(FLAME's largest has 6 million); {_HOSTILE}")
        self.elements += elements
        if self.elements > self.budget:
            raise _Refused(f"arrays of {self.elements:,} elements in all, more than a file of this size "
                           f"can hold ({self.budget:,}); {_HOSTILE}")

    def _array(self, state) -> np.ndarray:
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _Refused(f"a numpy array with a malformed state; {_HOSTILE}")
        shape, dtype, fortran, data = state
        shape, dtype, data = _shape(shape), _plain_dtype(dtype), _raw_bytes(data)
        if type(fortran) not in (bool, int):
            raise _Refused(f"a numpy array with a malformed memory order; {_HOSTILE}")
        count = math.prod(shape)
        self._count(count)
        if len(data) != count * dtype.itemsize:
            raise _Refused(f"a numpy array of shape {shape} and dtype {dtype} stored in {len(data):,} bytes "
                           f"instead of {count * dtype.itemsize:,}; {_DAMAGED}")
        flat = np.frombuffer(data, dtype, count)
        return flat.reshape(shape, order="F" if fortran else "C").astype(dtype.newbyteorder("="), order="K")

    def _sparse(self, obj: _SparseState, depth: int) -> np.ndarray:
        """Dense array from a pickled scipy.sparse state (old scipy wrote 'shape', newer '_shape')."""
        state = self.convert(obj.state, depth) if isinstance(obj.state, dict) else {}
        shape = _shape(state.get("_shape", state.get("shape")), range(2, 3))
        if obj.fmt == "coo":
            coords = state["coords"] if "coords" in state else (state.get("row"), state.get("col"))
            parts = [state.get("data"), *coords] if isinstance(coords, tuple) else []
        else:
            parts = [state.get("data"), state.get("indices"), state.get("indptr")]
        if len(parts) != 3 or not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts) or any(
                p.dtype.kind not in "iu" for p in parts[1:]):
            raise _Refused(f"a {obj.fmt} sparse matrix without 1-D data and integer index arrays; {_DAMAGED}")
        self._count(shape[0] * shape[1])
        try:
            if obj.fmt == "coo":
                matrix = scipy.sparse.coo_matrix((parts[0], (parts[1], parts[2])), shape=shape)  # checks indices
            else:
                build = scipy.sparse.csc_matrix if obj.fmt == "csc" else scipy.sparse.csr_matrix
                matrix = build(tuple(parts), shape=shape)
                matrix.check_format(full_check=True)  # out-of-range indices would write out of bounds
        except (ValueError, TypeError, IndexError, OverflowError) as exc:
            raise _Refused(f"malformed sparse matrix ({str(exc)[:120]}); {_DAMAGED}") from None
        return matrix.toarray()


def load_pickle(path: Path | str):
    """Load a pickle through :class:`RestrictedUnpickler`; stand-ins become numpy arrays.

    Args:
        path: a ``.pkl`` file (FLAME model, landmark embedding), at most 1 GiB.

    Returns:
        The unpickled object with every numpy array, chumpy ``Ch`` and scipy.sparse matrix
        replaced by a checked, writable, native-byte-order ``np.ndarray`` (bool, integer or
        float); dicts, lists and tuples rebuilt around them, shared references still shared.

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: the pickle asks for a global outside the allow-list, breaks a bound
            (size, instructions, nesting, elements), holds a non-plain dtype or a malformed
            array, or is not a readable pickle. Never anything else, whatever the bytes.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; give the path to a FLAME model file (generic_model.pkl, "
            f"flame2023.pkl, flame2023_Open.pkl) downloaded from {_FLAME_SITE}"
        )
    size = path.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: {size / 2**20:,.0f} MiB, larger than any FLAME model file (at most "
                             f"{_MAX_FILE_BYTES >> 20} MiB); {_HOSTILE}")
    try:
        # Read whole, then unpickle from memory: a length the file claims can never allocate more.
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror}); check that it is a file you may read") from exc
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), path).load()
        return _Converter(budget=len(data) + _EXTRA_ELEMENTS).convert(obj)
    except ModelFileError:
        raise
    except _Refused as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except Exception as exc:  # a corrupt pickle raises anything from EOFError to MemoryError
        detail = " ".join(str(exc).split())[:160]
        raise ModelFileError(
            f"{path}: not a readable pickle ({type(exc).__name__}{': ' + detail if detail else ''}); {_DAMAGED}"
        ) from exc


# --- FLAME's arrays, checked before anything is built -------------------------------------------


def _array(arrays: Mapping, key: str, source: str, kinds: str) -> np.ndarray:
    value = arrays[key]
    if not isinstance(value, np.ndarray):
        raise ModelFileError(f"{source}: '{key}' is a {type(value).__name__}, not an array; {_DAMAGED}")
    if value.dtype.kind not in kinds or value.dtype.fields is not None or value.dtype.subdtype is not None:
        wanted = "integers" if kinds == "iu" else "numbers"
        raise ModelFileError(f"{source}: '{key}' has dtype {value.dtype}, FLAME stores {wanted} there; {_DAMAGED}")
    return value


def _shape_error(name: str, array: np.ndarray, expected: str, source: str, meaning: str) -> ModelFileError:
    return ModelFileError(f"{source}: '{name}' has shape {array.shape}, FLAME needs {expected} ({meaning}); "
                          f"{_DAMAGED}")


def _expect_shape(name: str, array: np.ndarray, expected: tuple[int, ...], source: str, meaning: str) -> None:
    if array.shape != expected:
        raise _shape_error(name, array, str(expected), source, meaning)


def check_flame_arrays(arrays: Mapping, source: str = "FLAME arrays") -> None:
    """Check a FLAME model's arrays before anything is built from them.

    Checks: each of :data:`FLAME_KEYS` is an ``np.ndarray`` of numbers (``f`` and
    ``kintree_table`` of integers); ``v_template`` (V, 3); ``shapedirs`` (V, 3, S) with
    S > 300 (shape, then expression components); ``posedirs`` (V, 3, 36); ``J_regressor``
    (5, V); ``weights`` (V, 5) non-negative, each row summing to 1 (within 1e-3);
    ``kintree_table`` (2, 5) whose first row names each joint's parent before it (a tree
    rooted at joint 0, no cycles); ``f`` (F, 3) with F >= 1 and every index in [0, V); every
    float finite and at most 1e4 in magnitude.

    Args:
        arrays: the model file's arrays by name (extra names are ignored).
        source: what to name in messages (the file's path).

    Raises:
        ModelFileError: the first failed check, naming the array, what was found, what FLAME
            needs and the fix.
    """
    missing = [key for key in FLAME_KEYS if key not in arrays]
    if missing:
        raise ModelFileError(
            f"{source}: not a FLAME model file, missing {', '.join(missing)}; give generic_model.pkl, "
            f"flame2023.pkl or flame2023_Open.pkl from {_FLAME_SITE}"
        )
    v_template = _array(arrays, "v_template", source, "iuf")
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 3:
        raise _shape_error("v_template", v_template, "(V, 3), V >= 3", source, "template vertices, metres")
    num_vertices, joints = v_template.shape[0], FLAME_NUM_JOINTS
    _check_kintree(_array(arrays, "kintree_table", source, "iu"), source)
    shapedirs = _array(arrays, "shapedirs", source, "iuf")
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_vertices, 3):
        raise _shape_error("shapedirs", shapedirs, f"({num_vertices}, 3, S)", source, "shape then expression bases")
    if shapedirs.shape[2] <= SHAPE_SPACE_DIM:
        raise ModelFileError(
            f"{source}: 'shapedirs' has {shapedirs.shape[2]} components, FLAME has {SHAPE_SPACE_DIM} shape "
            f"then expression components; give a FLAME 2020 or 2023 model file from {_FLAME_SITE}"
        )
    for name, expected, meaning in (
        ("posedirs", (num_vertices, 3, (joints - 1) * 9), "pose correctives"),
        ("J_regressor", (joints, num_vertices), "joints from vertices"),
        ("weights", (num_vertices, joints), "LBS weights"),
    ):
        _expect_shape(name, _array(arrays, name, source, "iuf"), expected, source, meaning)
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        _check_finite(name, arrays[name], source)
    weights = arrays["weights"]
    sums = weights.sum(axis=1, dtype=np.float64)
    if weights.min() < -1e-6 or np.abs(sums - 1.0).max() > 1e-3:
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise ModelFileError(f"{source}: 'weights' are not LBS weights (vertex {row}'s sum to {sums[row]:.4g}, "
                             f"min {weights.min():.4g}; each row must be >= 0 and sum to 1); {_DAMAGED}")
    faces = _array(arrays, "f", source, "iu")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] < 1:
        raise _shape_error("f", faces, "(F, 3), F >= 1", source, "triangles as vertex indices")
    low, high = int(faces.min()), int(faces.max())
    if low < 0 or high >= num_vertices:
        raise ModelFileError(f"{source}: 'f' refers to vertex {high if high >= num_vertices else low}, but the "
                             f"model has vertices 0 to {num_vertices - 1}; {_DAMAGED}")


def _check_kintree(kintree: np.ndarray, source: str) -> None:
    """(2, 5): row 0 the parents, the root's ignored (FLAME stores 2**32 - 1), each other before its joint."""
    _expect_shape("kintree_table", kintree, (2, FLAME_NUM_JOINTS), source, "parent and joint of FLAME's 5 joints")
    parents = [int(p) for p in kintree[0]]
    for joint in range(1, FLAME_NUM_JOINTS):
        if not 0 <= parents[joint] < joint:  # also rules out cycles: parents strictly precede children
            raise ModelFileError(
                f"{source}: 'kintree_table' gives joint {joint} the parent {parents[joint]}; each joint's parent "
                f"must come before it (FLAME's tree is root, neck, jaw, eyes); {_DAMAGED}")


def _check_finite(name: str, array: np.ndarray, source: str) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        raise ModelFileError(f"{source}: '{name}' holds {int(finite.size - finite.sum()):,} NaN or infinite "
                             f"values; {_DAMAGED}")
    peak = max(abs(float(array.min())), abs(float(array.max()))) if array.size else 0.0
    if peak > _MAX_VALUE:
        raise ModelFileError(f"{source}: '{name}' holds values up to {peak:.3g}, far outside any FLAME model "
                             f"(metres; bases and weights below 1); {_DAMAGED}")


def load_flame_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Read a FLAME model file into numpy arrays, safely, and check them.

    Args:
        path: FLAME 2020 ``generic_model.pkl``, FLAME 2023 ``flame2023.pkl`` or
            ``flame2023_Open.pkl``.

    Returns:
        Every array in the file (other values, such as ``bs_style``, are dropped), including
        :data:`FLAME_KEYS` as :func:`check_flame_arrays` admits them: ``v_template`` (V, 3)
        metres, ``shapedirs`` (V, 3, S) shape then expression components, ``posedirs``
        (V, 3, 36), ``J_regressor`` (5, V) dense, ``weights`` (V, 5), ``kintree_table`` (2, 5),
        ``f`` (F, 3).

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: unsafe or unreadable pickle, not a dict, keys missing (named), or an
            array that fails :func:`check_flame_arrays`.
    """
    path = Path(path).expanduser()
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise ModelFileError(
            f"{path}: holds a {type(data).__name__}, not a FLAME model dict; give generic_model.pkl, "
            f"flame2023.pkl or flame2023_Open.pkl"
        )
    check_flame_arrays(data, str(path))
    return {key: value for key, value in data.items() if isinstance(value, np.ndarray)}


def load_landmark_embedding(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a FLAME barycentric landmark embedding (``flame_static_embedding_68.pkl``), safely.

    Returns:
        ``(lmk_face_idx (L,) int64, lmk_b_coords (L, 3) float64)``, indices >= 0 and
        coordinates finite (:class:`.model.FLAME` checks the indices against its faces).

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: unsafe pickle, keys ``lmk_face_idx``/``lmk_b_coords`` missing, or
            arrays of the wrong kind, shape or range.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give a 68-point FLAME landmark embedding "
                                f"(flame_static_embedding_68.pkl), or none to use the default avatar's")
    data = load_pickle(path)
    fix = "give flame_static_embedding_68.pkl"
    if not isinstance(data, dict) or not {"lmk_face_idx", "lmk_b_coords"} <= data.keys():
        raise ModelFileError(f"{path}: not a landmark embedding (needs lmk_face_idx and lmk_b_coords); {fix}")
    faces, bary = data["lmk_face_idx"], data["lmk_b_coords"]
    if not (isinstance(faces, np.ndarray) and faces.dtype.kind in "iu" and faces.ndim == 1 and faces.size
            and isinstance(bary, np.ndarray) and bary.dtype.kind in "iuf" and bary.shape == (faces.size, 3)):
        raise ModelFileError(f"{path}: lmk_face_idx must be (L,) integers and lmk_b_coords (L, 3) numbers; {fix}")
    if faces.min() < 0 or not np.isfinite(bary).all():
        raise ModelFileError(f"{path}: negative face indices or non-finite coordinates; {fix}")
    return faces.astype(np.int64), bary.astype(np.float64)


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes (the rig-map cache key of a model file)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
