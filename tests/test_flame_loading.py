"""Safe loading of FLAME model files: chumpy and numpy pickles, refusal of pickles that run code."""

import os
import pickle

import numpy as np
import pytest
import scipy.sparse
import torch

from emoflame.core.errors import ModelFileError
from emoflame.core.flame.loading import load_flame_arrays, load_landmark_embedding, load_pickle
from emoflame.core.flame.model import load_flame_model
from flame_fixtures import synthetic_flame_arrays, write_chumpy_pickle, write_numpy_pickle


@pytest.fixture(scope="module")
def arrays(shared_data):
    return synthetic_flame_arrays(shared_data)


@pytest.fixture(scope="module")
def embedding(shared_data):
    return shared_data / "flame" / "flame_static_embedding_68.pkl"


def test_chumpy_and_numpy_pickles_give_the_same_model(arrays, embedding, tmp_path):
    chumpy_model = load_flame_model(write_chumpy_pickle(arrays, tmp_path / "generic_model.pkl"), embedding)
    numpy_model = load_flame_model(write_numpy_pickle(arrays, tmp_path / "flame2023.pkl"), embedding)
    torch.manual_seed(0)
    params = dict(betas=torch.randn(2, 300), expression=torch.randn(2, 100),
                  jaw_pose=0.2 * torch.rand(2, 3), neck_pose=0.1 * torch.randn(2, 3))
    a, b = chumpy_model(**params), numpy_model(**params)
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.landmarks, b.landmarks)
    assert chumpy_model.file_sha256 != numpy_model.file_sha256
    # The sparse J_regressor came back dense and exact.
    np.testing.assert_allclose(chumpy_model.J_regressor.numpy(), arrays["J_regressor"], atol=1e-7)
    assert chumpy_model.parents.tolist() == [-1, 0, 1, 1, 1]


def test_protocol0_chumpy_and_sparse_become_numpy(tmp_path):
    """Python 2-era pickles (protocol 0, copy_reg._reconstructor) read without chumpy objects."""
    import chumpy

    dense = np.arange(12.0).reshape(3, 4)
    data = {"ch": chumpy.array(dense), "csc": scipy.sparse.csc_matrix(dense),
            "coo": scipy.sparse.coo_matrix(dense), "csr": scipy.sparse.csr_matrix(dense)}
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(data, protocol=0))
    loaded = load_pickle(path)
    for key in data:
        assert type(loaded[key]) is np.ndarray, key
        np.testing.assert_array_equal(loaded[key], dense)


class _RunsCode:
    """Pickles as a call to ``function(argument)``: what a malicious model file does."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, eval, exec], ids=["os.system", "eval", "exec"])
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(arrays, tmp_path, function):
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w').close()"
    payload = {"v_template": _RunsCode(function, command), "f": arrays["f"]}
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ModelFileError) as error:
        load_flame_arrays(path)
    message = str(error.value)
    assert str(path) in message and f"{function.__name__}'" in message and "refused" in message
    assert "\n" not in message
    assert not marker.exists()


def test_missing_file_says_where_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="flame.is.tue.mpg.de"):
        load_flame_model(tmp_path / "generic_model.pkl")


def test_missing_keys_are_named(arrays, tmp_path):
    partial = {k: v for k, v in arrays.items() if k not in ("posedirs", "weights")}
    path = write_numpy_pickle(partial, tmp_path / "partial.pkl")
    with pytest.raises(ModelFileError, match="missing posedirs, weights"):
        load_flame_arrays(path)


def test_garbage_is_a_model_file_error(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a pickle")
    with pytest.raises(ModelFileError, match="not a readable pickle"):
        load_flame_arrays(path)


def test_real_landmark_embedding_loads_through_the_restricted_unpickler(embedding):
    faces, bary = load_landmark_embedding(embedding)
    assert faces.shape == (68,) and bary.shape == (68, 3)
    assert faces.max() < 9976
    np.testing.assert_allclose(bary.sum(1), 1.0, atol=1e-6)


def test_default_landmark_embedding_is_the_shipped_68_points(arrays, embedding, tmp_path):
    path = write_numpy_pickle(arrays, tmp_path / "flame2023.pkl")
    shipped, given = load_flame_model(path), load_flame_model(path, embedding)
    params = dict(expression=torch.randn(1, 100), jaw_pose=torch.tensor([[0.2, 0.0, 0.0]]))
    torch.testing.assert_close(shipped(**params).landmarks, given(**params).landmarks, atol=1e-6, rtol=0)


def test_allowed_helpers_refuse_misuse(tmp_path):
    """_codecs.encode is admitted for latin-1 bytes only; copyreg._reconstructor for array stand-ins only."""
    codec = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    reconstructor = b"\x80\x02ccopy_reg\n_reconstructor\ncnumpy\ndtype\nc__builtin__\nobject\nN\x87R."
    for name, payload, refusal in (("codec", codec, "_codecs.encode with encoding 'rot13'"),
                                   ("reconstructor", reconstructor, "copyreg._reconstructor called on numpy.dtype")):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(payload)
        with pytest.raises(ModelFileError) as error:
            load_pickle(path)
        assert str(error.value) == f"{path}: {refusal}; it is not a FLAME model file and may be malicious; " \
                                   f"use the original file from https://flame.is.tue.mpg.de"


def _py2_str(raw: bytes) -> bytes:
    """SHORT_BINSTRING: how Python 2 pickles a str (FLAME 2020's array data and keys)."""
    return b"U" + bytes([len(raw)]) + raw


def test_a_python2_pickle_with_str_data_and_a_chumpy_array_loads(tmp_path):
    """Hand-written opcodes as Python 2's cPickle writes them (Python 3 cannot write str data)."""
    values = np.array([1.5, -2.0])
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
             b"(K\x01K\x02\x85cnumpy\ndtype\n" + _py2_str(b"f8") + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"<")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + _py2_str(values.tobytes()) + b"tb")
    chumpy_array = (b"cchumpy.ch\nCh\n)\x81}(" + _py2_str(b"x") + array + _py2_str(b"_dirty_vars")
                    + b"c__builtin__\nset\n]\x85Rub")
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02}(" + _py2_str(b"plain") + array + _py2_str(b"ch") + chumpy_array + b"u.")
    assert type(pickle.loads(path.read_bytes(), encoding="latin1")["ch"]).__name__ == "Ch"  # real chumpy
    loaded = load_pickle(path)
    assert type(loaded["ch"]) is np.ndarray
    np.testing.assert_array_equal(loaded["ch"], values)
    np.testing.assert_array_equal(loaded["plain"], values)


@pytest.mark.parametrize("protocol", range(6))
def test_plain_arrays_round_trip_in_every_protocol(tmp_path, protocol):
    """Every admitted dtype, both byte orders, C and Fortran order, a numpy scalar, an empty array:
    rebuilt by the checked stand-ins equal, writable and in native byte order."""
    rng = np.random.default_rng(protocol)
    data = {kind: rng.normal(size=(3, 4)).astype(kind) for kind in ("f2", "f4", "f8", "i1", "i2", "i4", "i8",
                                                                    "u1", "u2", "u4", "u8", "b1")}
    data["big_endian"] = np.arange(6.0).reshape(2, 3).astype(">f8")
    data["fortran"] = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    data["empty"] = np.zeros((0, 3))
    data["scalar"] = np.float64(2.5)
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_pickle(path)
    for key, value in data.items():
        assert loaded[key].dtype == value.dtype.newbyteorder("="), key
        np.testing.assert_array_equal(loaded[key], value)
        if isinstance(value, np.ndarray):
            assert loaded[key].flags.writeable and loaded[key].dtype.isnative, key
    assert loaded["fortran"].flags.f_contiguous


def test_chumpy_protocol0_model_loads(arrays, embedding, tmp_path):
    """FLAME 2020 as Python 2's pickle.dump wrote it by default (protocol 0): the same model."""
    old = load_flame_model(write_chumpy_pickle(arrays, tmp_path / "generic_model.pkl", protocol=0), embedding)
    new = load_flame_model(write_numpy_pickle(arrays, tmp_path / "flame2023.pkl"), embedding)
    expression = torch.randn(1, 100)
    assert torch.equal(old(expression=expression).vertices, new(expression=expression).vertices)
