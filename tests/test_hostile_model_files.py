"""Hostile and malformed FLAME model files: each gets a one-line ModelFileError that names the
file, the problem and the fix, and nothing else happens (no code runs, no crash, no memory bomb).

Every hostile pickle is built here, from crafted objects or opcode by opcode. Cases that could
crash or exhaust the interpreter if a regression let them through (forged dtypes, hash
recursion, allocation bombs) run in a fresh interpreter with a timeout and an address-space
limit, which also reports its time and peak RSS; the rest run in-process.
"""

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse

from emoflame.core.errors import ModelFileError
from emoflame.core.flame.loading import load_flame_arrays, load_pickle
from emoflame.core.flame.model import load_flame_model
from flame_fixtures import tiny_flame_arrays, write_landmark_embedding, write_numpy_pickle

SITE = "https://flame.is.tue.mpg.de"
HOSTILE = f"it is not a FLAME model file and may be malicious; use the original file from {SITE}"
DAMAGED = f"the file is damaged or not a FLAME model; download it again from {SITE}"
ADDRESS_SPACE = 2 << 30  # numpy + scipy + the loader need 0.2 GiB of address space; a bomb asks for more


class _Call:
    """Pickles as ``function(*args)``, then BUILD with ``state`` if given: any REDUCE a file can hold."""

    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


@pytest.fixture
def embedding(tmp_path):
    """A 4-point landmark embedding on the tiny model's 4 faces."""
    return write_landmark_embedding(tmp_path / "embedding.pkl", np.arange(4, dtype=np.uint32), np.full((4, 3), 1 / 3))


_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    path, limit = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np
    from emoflame.core.errors import ModelFileError
    from emoflame.core.flame.loading import load_flame_arrays
    start = time.perf_counter()
    try:
        arrays = load_flame_arrays(path)
        for value in arrays.values():
            value.astype(np.int64)  # where a forged object dtype would dereference its pointers
        outcome = "loaded"
    except ModelFileError as error:
        outcome = str(error)
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest, with torch) across exec
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_rss_mib": peak_kib / 1024}))
""")


def _load_isolated(path) -> dict:
    """load_flame_arrays(path) in a fresh interpreter: its outcome, seconds and peak RSS (MiB)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(ADDRESS_SPACE)], capture_output=True,
                              text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path.name} did not finish in 60 s")
    assert done.returncode == 0, f"the loader died (exit {done.returncode}): {done.stderr[-800:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """What loading the tiny valid model costs in a fresh interpreter (imports included)."""
    result = _load_isolated(write_numpy_pickle(tiny_flame_arrays(), tmp_path_factory.mktemp("ok") / "ok.pkl"))
    assert result["outcome"] == "loaded"
    return result


# --- Loading never runs code ------------------------------------------------------------------


def _marker_command(marker) -> str:
    return f"open({str(marker)!r}, 'w').close()"


@pytest.mark.parametrize("case", ["reduce_os_system", "eval", "numpy_load", "numpy_testing_runstring",
                                  "protocol0_inst", "protocol4_stack_global", "build_on_admitted_global",
                                  "newobj_of_set", "name_with_a_newline"])
def test_loading_never_runs_code(tmp_path, case):
    marker = tmp_path / "pwned"
    payloads = {  # (pickle bytes, what the refusal names)
        "reduce_os_system": (pickle.dumps({"v_template": _Call(os.system, (f"touch {marker}",))}, protocol=2),
                             f"refused to load global '{os.system.__module__}.system'"),
        "eval": (pickle.dumps(_Call(eval, (_marker_command(marker),)), protocol=2),
                 "refused to load global 'builtins.eval'"),
        "numpy_load": (pickle.dumps(_Call(np.load, (str(tmp_path / "x.npy"), None, True)), protocol=2),
                       "refused to load global 'numpy.load'"),
        "numpy_testing_runstring": (b"\x80\x02" + _glob("numpy.testing", "runstring") + _text(_marker_command(marker))
                                    + b"}\x86R.", "refused to load global 'numpy.testing.runstring'"),
        "protocol0_inst": (b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n.",
                           "refused to load global 'os.system'"),
        "protocol4_stack_global": (pickle.dumps(_Call(exec, (_marker_command(marker),)), protocol=4),
                                   "refused to load global 'builtins.exec'"),
        # BUILD on a plain function would set its attributes (__defaults__, for every later load)
        "build_on_admitted_global": (b"\x80\x02" + _glob("numpy", "dtype") + b"N}" + _text("__defaults__")
                                     + b")s\x86b.", f"the pickle sets the state of numpy.dtype; {HOSTILE}"),
        "newobj_of_set": (b"\x80\x02" + _glob("__builtin__", "set") + b")\x81.",
                          f"the pickle instantiates set; {HOSTILE}"),
        "name_with_a_newline": (b"\x80\x04\x8c\x04os\nx\x8c\x06system\x93.",  # STACK_GLOBAL: any str
                                "refused to load global 'os?x.system'"),
    }
    data, refusal = payloads[case]
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as error:
        load_flame_arrays(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and refusal in message and "\n" not in message
    assert not marker.exists()


# --- Forged dtypes: memory corruption -----------------------------------------------------------


def _rebuilt_dtype_pickle() -> bytes:
    """An int64 kintree_table whose dtype the pickle re-BUILDs afterwards with an object field."""
    def dtype(spec: str, byteorder: str, flags: int) -> bytes:
        return _glob("numpy", "dtype") + _text(spec) + b"\x89\x88\x87R(K\x03" + _text(byteorder) \
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"

    array = _glob("numpy.core.multiarray", "_reconstruct") + _glob("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R" \
        + b"(K\x01K\x02K\x05\x86" + dtype("i8", "<", 0) + b"q\x01\x89C\x50" + b"\x41" * 80 + b"tb"
    object_field = b"}" + _text("a") + dtype("O8", "|", 63) + b"K\x00\x86s"
    rebuild = b"h\x01(K\x03" + _text("|") + b"N" + _text("a") + b"\x85" + object_field + b"K\x08K\x01K\x00tb0"
    return b"\x80\x02}" + _text("kintree_table") + array + b"s" + rebuild + b"."


def test_forged_object_dtypes_are_refused_without_crashing(tmp_path):
    """The issue's payload (an object field at offset 0, object flags cleared, filled from raw bytes
    by _frombuffer: kintree_table.astype(int64) then dereferences 0x4141414141414141) and its
    variants, each in a subprocess so that a regression fails here instead of killing pytest."""
    object_field = {"a": (np.dtype("O"), 0)}
    raw = b"\x41" * 80
    forged = {
        "void_spec": (_Call(np.dtype, ("V8", False, True), (3, "|", None, ("a",), object_field, 8, 1, 0)),
                      "an array of numpy type 'V8': a model file holds only bool, integer and float arrays"),
        "fields_in_state": (_Call(np.dtype, ("i8", False, True), (3, "|", None, ("a",), object_field, 8, 1, 0)),
                            "a numpy dtype with fields, a subarray, flags or metadata (how a pickle forges "
                            "object pointers)"),
        "object_spec": (_Call(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0)),
                        "an array of numpy type 'O8': a model file holds only bool, integer and float arrays"),
    }
    cases = {name: (pickle.dumps({**tiny_flame_arrays(), "kintree_table": _Call(
        np.core.numeric._frombuffer, (raw, dtype, (2, 5), "C"))}, protocol=2), f"{refusal}; {HOSTILE}")
        for name, (dtype, refusal) in forged.items()}
    cases["rebuilt_after_use"] = (_rebuilt_dtype_pickle(),
                                  f"the pickle rebuilds a numpy dtype a second time; {HOSTILE}")
    for name, (data, expected) in cases.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        assert _load_isolated(path)["outcome"] == f"{path}: {expected}", name


def test_a_sparse_matrix_with_indices_out_of_range_is_refused_before_densifying(tmp_path):
    """scipy's toarray does not check indices: one past the matrix would write out of bounds."""
    regressor = scipy.sparse.csc_matrix(tiny_flame_arrays()["J_regressor"])
    regressor.indices[0] = 1_000_000
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({**tiny_flame_arrays(), "J_regressor": regressor}, protocol=2))
    assert _load_isolated(path)["outcome"] == f"{path}: malformed sparse matrix (indices must be < 5); {DAMAGED}"


def test_a_deeply_nested_tuple_as_a_dict_key_is_refused_before_hashing(tmp_path):
    """Hashing a tuple nested 300,000 deep overflows the C stack (SIGSEGV in plain pickle)."""
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02})" + b"\x85" * 300_000 + b"Ns.")
    assert _load_isolated(path)["outcome"] == f"{path}: a dict key other than a name or a number; {HOSTILE}"


# --- Memory bombs: bounded time and memory -------------------------------------------------------


def _shared_lists(levels: int) -> list:
    node = []
    for _ in range(levels):
        node = [node, node]  # pickled once each (memo), 2**levels leaves if copied out
    return node


_RECONSTRUCT = np.core.multiarray._reconstruct
_BOMBS = {  # name: (crafted object or bytes, the refusal after "{path}: ")
    "shared_references": (lambda: {**tiny_flame_arrays(), "v_template": _shared_lists(28)},
                          f"'v_template' is a list, not an array; {DAMAGED}"),
    "ndarray_2_5_GB": (lambda: {**tiny_flame_arrays(), "shapedirs": _Call(
        _RECONSTRUCT, (np.ndarray, (2_500_000_000,), b"b"), (1, (312_500_000,), np.dtype("f8"), False, b""))},
        "an array of 312,500,000 elements, more than the 67,108,864 allowed (FLAME's largest has 6 million); "
        + HOSTILE),
    "ndarray_called": (lambda: {**tiny_flame_arrays(), "shapedirs": _Call(np.ndarray, ((312_500_000,), "f8"))},
                       f"the pickle calls numpy.ndarray directly, which no numpy pickle does; {HOSTILE}"),
    "array_beyond_file_size": (lambda: {"shapedirs": _Call(
        _RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (1 << 25,), np.dtype("f8"), False, b""))},
        "arrays of 33,554,432 elements in all, more than a file of this size can hold"),
    "sparse_densified": (lambda: {**tiny_flame_arrays(), "J_regressor": scipy.sparse.csc_matrix((40_000, 40_000))},
                         "an array of 1,600,000,000 elements, more than the 67,108,864 allowed"),
    "memo_index_2_30": (b"\x80\x02}r\x00\x00\x00\x40.",  # plain pickle's memo grows to 16 GiB here
                        "not a FLAME model file, missing v_template, shapedirs"),
    "instruction_flood": (b"\x80\x02(" + b"N" * 1_100_000 + b"l.",
                          f"the pickle runs more than 1,000,000 instructions, far more than any FLAME model file; "
                          f"{HOSTILE}"),
    "claimed_length_2_40": (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b".",
                            "not a readable pickle (EOFError"),
}


@pytest.mark.parametrize("name", list(_BOMBS))
def test_memory_bombs_are_refused_in_bounded_time_and_memory(tmp_path, baseline, name):
    content, refusal = _BOMBS[name]
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content(), protocol=2))
    result = _load_isolated(path)
    assert result["outcome"].startswith(f"{path}: {refusal}"), result["outcome"]
    assert result["seconds"] < 3.0
    assert result["peak_rss_mib"] < baseline["peak_rss_mib"] + 64, (result, baseline)


def test_200000_nested_lists_are_refused_at_depth_32(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".")
    with pytest.raises(ModelFileError) as error:
        load_pickle(path)
    assert str(error.value) == f"{path}: the pickle nests objects more than 32 deep (a FLAME file nests 4); {HOSTILE}"


def test_an_object_that_contains_itself_is_refused(tmp_path):
    cycle = []
    cycle.append(cycle)
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({**tiny_flame_arrays(), "weights": cycle}, protocol=2))
    with pytest.raises(ModelFileError) as error:
        load_pickle(path)
    assert str(error.value) == f"{path}: the pickle holds an object that contains itself; {HOSTILE}"


def test_a_file_larger_than_any_flame_model_is_not_read(tmp_path):
    path = tmp_path / "generic_model.pkl"
    with path.open("wb") as file:
        file.truncate((1 << 30) + (1 << 20))  # sparse: nothing is written
    with pytest.raises(ModelFileError) as error:
        load_pickle(path)
    assert str(error.value) == f"{path}: 1,025 MiB, larger than any FLAME model file (at most 1024 MiB); {HOSTILE}"


# --- Validation: every array checked before anything is built ------------------------------------


def _six_joints(arrays):
    """A consistent 6-joint model: more joints than FLAME has (an IndexError in the bone builder)."""
    arrays["kintree_table"] = np.array([[2**32 - 1, 0, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5]])
    arrays["J_regressor"] = np.full((6, 4), 0.25)
    arrays["weights"] = np.eye(4, 6)
    arrays["posedirs"] = np.zeros((4, 3, 45))


def _set(key, value):
    return lambda arrays: arrays.__setitem__(key, value)


def _edit(key, function):
    return lambda arrays: arrays.__setitem__(key, function(arrays[key]))


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


_MALFORMED = {  # name: (change to the tiny model, the message after "{path}: ")
    "nan_template": (_edit("v_template", lambda v: _with(v, (1, 2), np.nan)),
                     f"'v_template' holds 1 NaN or infinite values; {DAMAGED}"),
    "inf_posedirs": (_edit("posedirs", lambda p: _with(p, (0, 0, 0), np.inf)),
                     f"'posedirs' holds 1 NaN or infinite values; {DAMAGED}"),
    "huge_shapedirs": (_edit("shapedirs", lambda s: _with(s, (0, 0, 0), 1e30)),
                       "'shapedirs' holds values up to 1e+30, far outside any FLAME model"),
    "face_index_out_of_range": (_edit("f", lambda f: _with(f, (3, 2), 4)),
                                f"'f' refers to vertex 4, but the model has vertices 0 to 3; {DAMAGED}"),
    "negative_face_index": (_edit("f", lambda f: _with(f.astype(np.int64), (0, 0), -1)),
                            f"'f' refers to vertex -1, but the model has vertices 0 to 3; {DAMAGED}"),
    "faces_wrong_width": (_edit("f", lambda f: np.concatenate([f, f[:, :1]], axis=1)),
                          f"'f' has shape (4, 4), FLAME needs (F, 3), F >= 1 (triangles as vertex indices); "
                          f"{DAMAGED}"),
    "faces_as_floats": (_edit("f", lambda f: f.astype(np.float64)),
                        f"'f' has dtype float64, FLAME stores integers there; {DAMAGED}"),
    "parent_after_child": (_edit("kintree_table", lambda k: _with(k, (0, 2), 3)),
                           "'kintree_table' gives joint 2 the parent 3; each joint's parent must come before it"),
    "parent_cycle": (_edit("kintree_table", lambda k: _with(k, (0, 1), 2)),
                     "'kintree_table' gives joint 1 the parent 2"),
    "kintree_wrong_shape": (_edit("kintree_table", lambda k: k.T.copy()),
                            "'kintree_table' has shape (5, 2), FLAME needs (2, 5)"),
    "more_joints_than_flame": (_six_joints, "'kintree_table' has shape (2, 6), FLAME needs (2, 5) (parent and "
                                            "joint of FLAME's 5 joints)"),
    "string_template": (_set("v_template", "a string"), f"'v_template' is a str, not an array; {DAMAGED}"),
    "list_weights": (_edit("weights", lambda w: w.tolist()), f"'weights' is a list, not an array; {DAMAGED}"),
    "bool_template": (_edit("v_template", lambda v: v > 0), "'v_template' has dtype bool, FLAME stores numbers"),
    "weights_not_summing_to_1": (_edit("weights", lambda w: 0.5 * w),
                                 "'weights' are not LBS weights (vertex 0's sum to 0.5, min 0; each row must be >= 0 "
                                 "and sum to 1)"),
    "negative_weights": (_edit("weights", lambda w: _with(w, (0, slice(0, 2)), [1.5, -0.5])),
                         "'weights' are not LBS weights (vertex 0's sum to 1, min -0.5"),
    "weights_wrong_shape": (_edit("weights", lambda w: w[:, :4].copy()),
                            "'weights' has shape (4, 4), FLAME needs (4, 5) (LBS weights)"),
    "J_regressor_wrong_shape": (_edit("J_regressor", lambda j: np.full((5, 5), 0.2)),
                                "'J_regressor' has shape (5, 5), FLAME needs (5, 4) (joints from vertices)"),
    "too_few_components": (_edit("shapedirs", lambda s: s[:, :, :300].copy()),
                           "'shapedirs' has 300 components, FLAME has 300 shape then expression components"),
    "shapedirs_other_vertices": (_edit("shapedirs", lambda s: np.zeros((5, 3, 310))),
                                 "'shapedirs' has shape (5, 3, 310), FLAME needs (4, 3, S)"),
    "posedirs_inconsistent": (_edit("posedirs", lambda p: p[:, :, :35].copy()),
                              "'posedirs' has shape (4, 3, 35), FLAME needs (4, 3, 36) (pose correctives)"),
    "missing_arrays": (lambda arrays: [arrays.pop("posedirs"), arrays.pop("weights")],
                       "not a FLAME model file, missing posedirs, weights; give generic_model.pkl"),
}


@pytest.mark.parametrize("name", list(_MALFORMED))
def test_malformed_arrays_are_named_before_anything_is_built(tmp_path, embedding, name):
    change, expected = _MALFORMED[name]
    arrays = tiny_flame_arrays()
    change(arrays)
    path = write_numpy_pickle(arrays, tmp_path / "generic_model.pkl")
    with pytest.raises(ModelFileError) as error:
        load_flame_model(path, embedding)
    message = str(error.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message and (SITE in message)


def test_the_tiny_model_itself_loads(tmp_path, embedding):
    """The control for the cases above: the unchanged tiny model is valid."""
    model = load_flame_model(write_numpy_pickle(tiny_flame_arrays(), tmp_path / "tiny.pkl"), embedding)
    assert model.parents.tolist() == [-1, 0, 1, 1, 1] and model.num_expression == 10
    np.testing.assert_allclose(model().vertices[0].numpy(), tiny_flame_arrays()["v_template"], atol=1e-7)


def test_a_landmark_embedding_for_other_faces_is_refused(tmp_path):
    """The default (68 points on FLAME's 9976 faces) cannot sit on a 4-face model."""
    path = write_numpy_pickle(tiny_flame_arrays(), tmp_path / "tiny.pkl")
    with pytest.raises(ModelFileError, match=r"tiny.pkl: the landmark embedding refers to face \d+, but the "
                                             r"model has faces 0 to 3; give the landmark embedding made for this "
                                             r"model"):
        load_flame_model(path)
