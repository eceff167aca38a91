"""User-provided fields: tiny real Zarr stores and Well-style HDF5 files opened, sliced, refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from latentsci.errors import InputDataError
from latentsci.fields.data.sources import FieldDataError, FieldSource, check_finite, open_fields

# trajectory, time, channel, x, y; x != y so a swapped spatial axis cannot pass unnoticed.
SHAPE = (4, 5, 2, 6, 3)


def ramp(shape: tuple[int, ...]) -> np.ndarray:
    """Distinct float32 values, so every element tells where it came from."""
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


@pytest.fixture
def zarr_group(tmp_path: Path) -> Path:
    """A group in our layout: fields, time, valid, one parameter, named channels."""
    path = tmp_path / "run.zarr"
    group = zarr.create_group(str(path))
    group.attrs.update({"channels": ["u", "v"], "parameters": ["viscosity"]})
    fields = group.create_array("fields", shape=SHAPE, chunks=(1, 5, 2, 6, 3), dtype="float32")
    fields[:] = ramp(SHAPE)
    group.create_array("time", shape=(5,), dtype="float64")[:] = np.linspace(0.0, 2.0, 5)
    group.create_array("valid", shape=(4,), dtype="bool")[:] = [True, False, True, True]
    group.create_array("viscosity", shape=(4,), dtype="float64")[:] = [1e-3, 2e-3, 3e-3, 4e-3]
    return path


def bare_array(path: Path, shape: tuple[int, ...], dtype: str = "float32") -> Path:
    """A Zarr array at the store root, with no group around it."""
    array = zarr.create_array(str(path), shape=shape, dtype=dtype)
    array[:] = ramp(shape).astype(dtype)
    return path


def write_well(
    path: Path, density: np.ndarray, velocity: np.ndarray, n_spatial_dims: int = 2
) -> Path:
    """An HDF5 file in The Well's layout: one scalar field, one vector field, time, parameters."""
    with h5py.File(path, "w") as handle:
        handle.attrs.update(
            {
                "simulation_parameters": ["viscosity", "Re"],
                "Re": 100.0,
                "n_spatial_dims": n_spatial_dims,
                "n_trajectories": density.shape[0],
            }
        )
        dims = handle.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims.create_dataset("time", data=np.arange(density.shape[1], dtype=np.float32) * 0.5)
        dims["time"].attrs["sample_varying"] = False
        for name, size in zip("xy", density.shape[2:4]):
            dims.create_dataset(name, data=np.linspace(0, 1, size, dtype=np.float32))
        scalars = handle.create_group("scalars")
        scalars.attrs["field_names"] = ["viscosity"]
        viscosity = scalars.create_dataset("viscosity", data=np.arange(1, density.shape[0] + 1.0))
        viscosity.attrs.update({"sample_varying": True, "time_varying": False})
        handle.create_group("boundary_conditions")
        fields = (("t0_fields", "density", density), ("t1_fields", "velocity", velocity))
        for group_name, name, data in fields:
            group = handle.create_group(group_name)
            group.attrs["field_names"] = [name]
            dataset = group.create_dataset(name, data=data)
            dataset.attrs.update({"sample_varying": True, "time_varying": True})
    return path


@pytest.fixture
def well_file(tmp_path: Path) -> Path:
    """A 2-D Well file with 3 trajectories, 4 steps, a 6 x 3 grid."""
    density = ramp((3, 4, 6, 3))
    velocity = -ramp((3, 4, 6, 3, 2))
    velocity[2, 1, 4, 0, 1] = 1234.5  # trajectory 2, time 1, x 4, y 0, component y
    return write_well(tmp_path / "flow.h5", density, velocity)


def test_zarr_group_exposes_layout_and_metadata(zarr_group: Path) -> None:
    """Shape, channel names, clock, validity and per-trajectory parameters come from the group."""
    source = open_fields(zarr_group)
    assert isinstance(source, FieldSource)
    assert source.path == str(zarr_group)
    assert source.shape == SHAPE
    assert source.channels == ["u", "v"]
    np.testing.assert_allclose(source.times, [0.0, 0.5, 1.0, 1.5, 2.0])
    assert source.valid.tolist() == [True, False, True, True]
    np.testing.assert_allclose(source.parameters["viscosity"], [1e-3, 2e-3, 3e-3, 4e-3])
    assert source.channel_arrays == [f"{zarr_group}/fields"] * 2


def test_zarr_reads_only_the_requested_region(zarr_group: Path) -> None:
    """Slices, index arrays in any order and time slices give exactly those elements, as float32."""
    source = open_fields(zarr_group)
    full = ramp(SHAPE)
    block = source.read(slice(1, 3), slice(2, 4))
    assert block.dtype == np.float32 and block.shape == (2, 2, 2, 6, 3)
    np.testing.assert_array_equal(block, full[1:3, 2:4])
    np.testing.assert_array_equal(source.read(np.array([3, 0, 3])), full[[3, 0, 3]])
    strided = source.read(np.array([0, 2]), slice(None, None, 2))
    np.testing.assert_array_equal(strided, full[[0, 2], ::2])
    np.testing.assert_array_equal(source.read(slice(None, None, -1)), full[::-1])
    mask = np.array([False, True, False, True])
    np.testing.assert_array_equal(source.read(mask, slice(4, 5)), full[mask, 4:5])
    assert source.read(np.array([], dtype=int)).shape == (0, 5, 2, 6, 3)


def test_read_touches_only_the_chunks_it_needs(zarr_group: Path) -> None:
    """A corrupt chunk of trajectory 0 does not matter until trajectory 0 is read."""
    chunk = zarr_group / "fields" / "c" / "0" / "0" / "0" / "0" / "0"
    assert chunk.is_file()
    chunk.write_bytes(b"not a chunk")
    source = open_fields(zarr_group)
    np.testing.assert_array_equal(source.read(slice(1, 4)), ramp(SHAPE)[1:4])
    # the codec's own error, raised only once the corrupt chunk is decoded
    with pytest.raises(RuntimeError, match=r"^Zstd decompression error: invalid input data$"):
        source.read(slice(0, 1))


def test_read_opens_the_store_per_call(zarr_group: Path) -> None:
    """The source pickles to workers and reads lazily: it sees a write made after opening."""
    source = pickle.loads(pickle.dumps(open_fields(zarr_group)))
    zarr.open_array(str(zarr_group / "fields"), mode="r+")[2, 3, 1, 5, 2] = -7.0
    assert source.read(np.array([2]), slice(3, 4))[0, 0, 1, 5, 2] == -7.0


def test_bare_array_gets_default_names_and_metadata(tmp_path: Path) -> None:
    """A bare 5-D array: numbered channels, step-number clock, all trajectories valid."""
    path = bare_array(tmp_path / "bare.zarr", SHAPE)
    source = open_fields(str(path))
    assert source.shape == SHAPE
    assert source.channels == ["channel_0", "channel_1"]
    assert source.times.tolist() == [0, 1, 2, 3, 4]
    assert source.valid.all() and source.valid.shape == (4,)
    assert source.parameters == {}
    np.testing.assert_array_equal(source.read(slice(2, 3)), ramp(SHAPE)[2:3])


def test_well_channels_shape_and_parameters(well_file: Path) -> None:
    """Scalars give one channel, vectors one per axis; parameters hold one value per trajectory."""
    source = open_fields(well_file)
    assert source.channels == ["density", "velocity_x", "velocity_y"]
    assert source.shape == (3, 4, 3, 6, 3)
    assert source.channel_arrays == ["t0_fields/density"] + ["t1_fields/velocity"] * 2
    np.testing.assert_allclose(source.times, [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(source.parameters["viscosity"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(source.parameters["Re"], [100.0] * 3)
    assert source.valid.tolist() == [True] * 3


def test_well_transposes_components_into_channels(well_file: Path) -> None:
    """[traj, time, x, y, d] of a vector field lands at [traj, time, 1 + d, x, y]."""
    source = open_fields(well_file)
    everything = source.read(slice(None))
    assert everything[2, 1, 2, 4, 0] == 1234.5
    np.testing.assert_array_equal(everything[:, :, 0], ramp((3, 4, 6, 3)))
    velocity = -ramp((3, 4, 6, 3, 2))
    velocity[2, 1, 4, 0, 1] = 1234.5
    np.testing.assert_array_equal(everything[:, :, 1:], np.moveaxis(velocity, -1, 2))
    picked = source.read(np.array([2, 0]), slice(1, 3))
    np.testing.assert_array_equal(picked, everything[[2, 0], 1:3])


def test_well_broadcasts_fields_constant_over_samples_or_time(tmp_path: Path) -> None:
    """A field stored without trajectory and time axes (*_varying False) is repeated over them."""
    path = tmp_path / "constant.hdf5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("t0_fields")
        group.attrs["field_names"] = ["pressure", "mask"]
        moving = group.create_dataset("pressure", data=ramp((2, 3, 4, 5)))
        moving.attrs.update({"sample_varying": True, "time_varying": True})
        fixed = group.create_dataset("mask", data=ramp((4, 5)))
        fixed.attrs.update({"sample_varying": False, "time_varying": False})
    block = open_fields(path).read(slice(None), slice(1, 3))
    assert block.shape == (2, 2, 2, 4, 5)
    np.testing.assert_array_equal(block[:, :, 0], ramp((2, 3, 4, 5))[:, 1:3])
    np.testing.assert_array_equal(block[:, :, 1], np.broadcast_to(ramp((4, 5)), (2, 2, 4, 5)))


def test_missing_path_is_refused(tmp_path: Path) -> None:
    """A path that does not exist gets one line naming it."""
    with pytest.raises(FieldDataError, match=r"nothere\.zarr: no such file or directory"):
        open_fields(tmp_path / "nothere.zarr")


def test_neither_zarr_nor_hdf5_is_refused(tmp_path: Path) -> None:
    """A text file is neither format; the error says what was expected."""
    path = tmp_path / "fields.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(FieldDataError, match=r"neither a Zarr store nor an HDF5 file"):
        open_fields(path)


def test_rank_four_array_is_refused(tmp_path: Path) -> None:
    """A 4-D array is named with its shape and the layout it should have."""
    path = bare_array(tmp_path / "four.zarr", (2, 3, 4, 5))
    with pytest.raises(FieldDataError) as caught:
        open_fields(path)
    assert str(caught.value) == (f"{path}: array has 4 dimensions (2, 3, 4, 5); expected 5: "
                                 "(trajectory, time, channel, x, y)")


def test_integer_dtype_is_refused(tmp_path: Path) -> None:
    """Integer fields are refused naming the array and its dtype."""
    path = tmp_path / "ints.zarr"
    group = zarr.create_group(str(path))
    group.create_array("fields", shape=SHAPE, dtype="int32")
    with pytest.raises(FieldDataError, match=r"ints\.zarr/fields: dtype int32; expected floating"):
        open_fields(path)


def test_group_without_fields_is_refused(tmp_path: Path) -> None:
    """A Zarr group must hold its data in an array called "fields"."""
    zarr.create_group(str(tmp_path / "empty.zarr"))
    with pytest.raises(FieldDataError, match=r"no array 'fields'"):
        open_fields(tmp_path / "empty.zarr")


def test_nan_is_found_with_its_index(zarr_group: Path) -> None:
    """check_finite names the array, trajectory and time step of the first NaN."""
    source = open_fields(zarr_group)
    check_finite(source)
    zarr.open_array(str(zarr_group / "fields"), mode="r+")[2, 3, 1, 0, 0] = np.nan
    expected = r"fields holds NaN at trajectory 2, time 3 \(channel 'v'\)"
    with pytest.raises(FieldDataError, match=expected):
        check_finite(source)
    check_finite(source, max_trajectories=2)  # trajectory 2 is beyond the ones asked for


def test_scan_skips_invalid_trajectories_and_finds_inf(zarr_group: Path) -> None:
    """A trajectory the producer marked invalid may diverge; an Inf in a valid one is reported."""
    fields = zarr.open_array(str(zarr_group / "fields"), mode="r+")
    fields[1, 0, 0, 0, 0] = np.nan  # trajectory 1 is marked invalid
    check_finite(open_fields(zarr_group))
    fields[3, 4, 0, 2, 1] = -np.inf
    with pytest.raises(FieldDataError, match=r"Inf at trajectory 3, time 4"):
        check_finite(open_fields(zarr_group))


def test_nan_in_well_names_the_dataset(well_file: Path) -> None:
    """In a Well file the error names the HDF5 dataset behind the channel."""
    with h5py.File(well_file, "r+") as handle:
        handle["t1_fields/velocity"][1, 2, 0, 0, 0] = np.nan
    expected = r"t1_fields/velocity holds NaN at trajectory 1, time 2"
    with pytest.raises(FieldDataError, match=expected):
        check_finite(open_fields(well_file))


@pytest.mark.parametrize("declared", [2, 3])
def test_three_dimensional_well_data_is_refused(tmp_path: Path, declared: int) -> None:
    """3-D Well data is refused in one line, whether or not the root attrs say so."""
    density, velocity = ramp((2, 3, 4, 4, 4)), ramp((2, 3, 4, 4, 4, 3))
    cube = write_well(tmp_path / "cube.h5", density, velocity, declared)
    expected = r"3-D .*only 2-D spatial fields \(x, y\) are supported"
    with pytest.raises(FieldDataError, match=expected):
        open_fields(cube)


def test_mismatched_well_fields_are_refused(tmp_path: Path) -> None:
    """Two fields on different grids are named together."""
    path = write_well(tmp_path / "odd.h5", ramp((2, 3, 6, 3)), ramp((2, 3, 5, 3, 2)))
    with pytest.raises(FieldDataError, match=r"mismatched shapes: t1_fields/velocity has x=5"):
        open_fields(path)


def test_integer_well_field_is_refused(tmp_path: Path) -> None:
    """A Well dataset of integers is named by file and dataset."""
    density = ramp((2, 3, 6, 3)).astype(np.int64)
    path = write_well(tmp_path / "int.h5", density, ramp((2, 3, 6, 3, 2)))
    with pytest.raises(FieldDataError, match=r"int\.h5:t0_fields/density: dtype int64"):
        open_fields(path)


def test_field_data_error_is_an_input_error() -> None:
    """The CLI prints InputDataError as one line; FieldDataError must be caught the same way."""
    assert issubclass(FieldDataError, InputDataError)
