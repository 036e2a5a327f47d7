"""core.flame.geometry: the similarity and rotation fits, Rodrigues both ways, linearised LBS."""

import numpy as np
import pytest

from emoflame.core.flame import geometry


def _rotation(axis_angle):
    return geometry.axis_angle_to_matrix(np.asarray(axis_angle, float)[None])[0]


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(40, 3))
    rot = _rotation([0.0, 0.7, 0.0])
    dst = 0.0095 * src @ rot.T + np.array([0.01, -0.02, 0.03])
    sim = geometry.fit_similarity(src, dst)
    assert sim.scale == pytest.approx(0.0095) and np.allclose(sim.rotation, rot)
    assert np.allclose(sim.points(src), dst) and np.allclose(sim.vectors(src[1] - src[0]), dst[1] - dst[0])


def test_fit_rotation_turns_about_the_origin_and_never_reflects():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    rot = _rotation([0.3, -0.2, 0.5])
    assert np.allclose(geometry.fit_rotation(src, src @ rot.T), rot)
    mirrored = geometry.fit_rotation(src, src * [-1.0, 1.0, 1.0])  # the best proper rotation, not the mirror
    assert np.linalg.det(mirrored) == pytest.approx(1.0)


@pytest.mark.parametrize("axis_angle", [[0.0, 0.0, 0.0], [0.2, -0.1, 0.05], [0.0, 3.0, 0.0], [np.pi, 0.0, 0.0],
                                        [0.0, -np.pi / np.sqrt(2), np.pi / np.sqrt(2)]])
def test_axis_angle_round_trips_through_the_matrix(axis_angle):
    back = geometry.matrix_to_axis_angle(_rotation(axis_angle)[None])[0]
    assert np.allclose(_rotation(back), _rotation(axis_angle), atol=1e-9)
    assert np.linalg.norm(back) == pytest.approx(np.linalg.norm(axis_angle), abs=1e-9)


def test_rotation_about_x_basis_is_the_first_order_motion_of_a_jaw_rotation():
    rng = np.random.default_rng(3)
    points = rng.normal(scale=0.05, size=(20, 3))
    joint = np.array([0.0, -0.02, -0.01])
    weights = rng.random(20)
    angle = 1e-4
    exact = weights[:, None] * ((points - joint) @ _rotation([angle, 0, 0]).T + joint - points)
    linear = angle * geometry.rotation_about_x_basis(weights, points, joint)
    assert np.abs(exact - linear).max() < 1e-9 and np.abs(linear).max() > 1e-7


def test_change_of_basis_expresses_a_rotation_in_a_bone_frame():
    bone = _rotation([0.0, 0.0, np.pi / 2])  # the bone's x axis along the parent's y
    turn_about_parent_y = _rotation([0.0, 0.4, 0.0])[None]
    local = geometry.change_of_basis(bone, turn_about_parent_y)[0]
    assert np.allclose(local, _rotation([0.4, 0.0, 0.0]))  # about the bone's own x
