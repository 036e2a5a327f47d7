"""The FLAME forward: template at zero, rigid and jaw rotations, landmarks, batching, dtype, device."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from emoflame.core.flame.lbs import batch_rodrigues, vertices2landmarks
from emoflame.core.flame.loading import load_landmark_embedding
from emoflame.core.flame.model import FLAME
from flame_fixtures import synthetic_flame_arrays

CHIN, BROWS = 8, list(range(17, 27))  # 68-point Multi-PIE landmark indices


@pytest.fixture(scope="module")
def arrays(shared_data):
    return synthetic_flame_arrays(shared_data)


@pytest.fixture(scope="module")
def embedding(shared_data):
    return load_landmark_embedding(shared_data / "flame" / "flame_static_embedding_68.pkl")


@pytest.fixture(scope="module")
def model(arrays, embedding):
    return FLAME(arrays, *embedding)


def test_zero_parameters_give_the_template(model, arrays, embedding):
    out = model()
    assert out.vertices.shape == (1, 5023, 3) and out.joints.shape == (1, 5, 3)
    assert out.landmarks.shape == (1, 68, 3)
    template = torch.as_tensor(arrays["v_template"], dtype=torch.float32)
    assert (out.vertices[0] - template).abs().max() < 1e-7  # float32 rounding of the skinning weights
    faces, bary = embedding
    corners = arrays["v_template"][arrays["f"][faces].astype(np.int64)]  # (68, 3, 3)
    np.testing.assert_allclose(out.landmarks[0].numpy(), (bary[:, :, None] * corners).sum(1), atol=1e-6)
    np.testing.assert_allclose(out.joints[0].numpy(), arrays["J_regressor"] @ arrays["v_template"], atol=1e-6)


def test_jaw_rotation_moves_the_chin_and_not_the_forehead(model):
    rest = model()
    opened = model(jaw_pose=torch.tensor([[0.2, 0.0, 0.0]]))  # +x opens the mouth, as in FLAME
    chin_motion = opened.landmarks[0, CHIN] - rest.landmarks[0, CHIN]
    assert chin_motion[1] < -0.01  # the chin drops more than a centimetre
    assert (opened.landmarks[0, BROWS] - rest.landmarks[0, BROWS]).abs().max() == 0.0
    top = rest.vertices[0, :3931, 1].argmax()
    assert torch.equal(opened.vertices[0, top], rest.vertices[0, top])
    assert torch.equal(opened.joints[0, 2], rest.joints[0, 2])  # the jaw turns about its joint


def test_global_orient_and_transl_move_the_head_rigidly(model, arrays):
    rotvec = np.array([0.1, -0.4, 0.25])
    out = model(global_orient=torch.tensor([rotvec], dtype=torch.float32),
                transl=torch.tensor([[0.01, -0.02, 0.5]]))
    root = arrays["J_regressor"][0] @ arrays["v_template"]
    expected = Rotation.from_rotvec(rotvec).apply(arrays["v_template"] - root) + root + [0.01, -0.02, 0.5]
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=2e-6)


def test_expression_is_linear_in_the_expression_basis(model, arrays):
    expression = torch.zeros(1, 100)
    expression[0, [3, 40]] = torch.tensor([1.5, -2.0])
    out = model(expression=expression)
    expected = arrays["v_template"] + 1.5 * arrays["shapedirs"][:, :, 303] - 2.0 * arrays["shapedirs"][:, :, 340]
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-6)


def test_a_batch_equals_its_frames_and_short_betas_are_padded(model):
    torch.manual_seed(1)
    betas, expression, jaw = torch.randn(3, 10), torch.randn(3, 50), 0.3 * torch.rand(3, 3)
    batched = model(betas=betas, expression=expression, jaw_pose=jaw)
    for i in range(3):
        single = model(betas=betas[i:i + 1], expression=expression[i:i + 1], jaw_pose=jaw[i:i + 1])
        torch.testing.assert_close(batched.vertices[i], single.vertices[0], atol=1e-6, rtol=0)
    padded = model(betas=torch.nn.functional.pad(betas, [0, 290]), expression=expression, jaw_pose=jaw)
    torch.testing.assert_close(padded.vertices, batched.vertices, atol=1e-7, rtol=0)


def test_bad_parameter_shapes_are_refused(model):
    with pytest.raises(ValueError, match="expression has shape"):
        model(expression=torch.zeros(1, 101))
    with pytest.raises(ValueError, match="batch size"):
        model(betas=torch.zeros(2, 10), jaw_pose=torch.zeros(3, 3))


def test_batch_rodrigues_matches_scipy():
    rotvecs = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.9], [np.pi / 2, 0, 0], [0, 0, -3.0]])
    ours = batch_rodrigues(torch.tensor(rotvecs, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-7)


def test_vertices2landmarks_accepts_per_batch_embeddings():
    vertices = torch.arange(2 * 4 * 3, dtype=torch.float64).reshape(2, 4, 3)
    faces = torch.tensor([[0, 1, 2], [1, 2, 3]])
    idx = torch.tensor([[0], [1]])
    bary = torch.tensor([[[1.0, 0, 0]], [[0, 0.5, 0.5]]], dtype=torch.float64)
    out = vertices2landmarks(vertices, faces, idx, bary)
    torch.testing.assert_close(out[0, 0], vertices[0, 0])
    torch.testing.assert_close(out[1, 0], (vertices[1, 2] + vertices[1, 3]) / 2)


def test_float64_model_keeps_its_dtype(model):
    double = model.to(torch.float64)
    try:
        out = double(jaw_pose=torch.tensor([[0.1, 0.0, 0.0]]))  # float32 input follows the model
        assert out.vertices.dtype == torch.float64 and out.landmarks.dtype == torch.float64
    finally:
        model.to(torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(model):
    params = dict(expression=torch.randn(4, 100), jaw_pose=0.2 * torch.rand(4, 3))
    cpu = model(**params)
    gpu_model = model.to("cuda")
    try:
        gpu = gpu_model(**{k: v.cuda() for k, v in params.items()})
        assert gpu.vertices.device.type == "cuda"
        torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=0)
        torch.testing.assert_close(gpu.landmarks.cpu(), cpu.landmarks, atol=1e-5, rtol=0)
    finally:
        model.to("cpu")
