"""save / load round trips, and files that must be refused without running code."""
import io
import json
import os
import pickle
import threading
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gaussmix
from gaussmix import GaussianMixture, InconsistentVersionWarning, ModelFileError, NotFittedError

from conftest import COVARIANCE_TYPES, FITTED_ARRAYS, assert_fitted_params_identical


@pytest.fixture
def fitted(faithful_X):
    return GaussianMixture(3, covariance_type="full", random_state=0).fit(faithful_X)


def rewrite(path, edit):
    """Rewrite the archive at ``path`` after ``edit(arrays)`` changed its entries."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    edit(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def header_of(arrays):
    return json.loads(arrays["header"].tobytes())


def set_header(arrays, header):
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_gives_the_same_model(faithful_X, tmp_path, covariance_type, dtype):
    X = faithful_X.astype(dtype)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=1, tol=1e-4,
                         n_threads=1).fit(X)
    gm.save(tmp_path / "model.gm")
    loaded = gaussmix.load(tmp_path / "model.gm")
    assert_fitted_params_identical(loaded, gm)
    assert loaded.get_params() == gm.get_params()
    assert loaded.n_features_in_ == 2
    for name in FITTED_ARRAYS:
        assert getattr(loaded, name).dtype == dtype
    assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
    assert_array_equal(loaded.score_samples(X), gm.score_samples(X))


def test_round_trip_keeps_array_params_and_feature_names(faithful_X, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(faithful_X, columns=["eruptions", "waiting"])
    means = faithful_X[[0, 100]]
    gm = GaussianMixture(2, means_init=means, random_state=np.random.RandomState(0)).fit(frame)
    gm.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    assert_array_equal(loaded.means_init, means)
    assert loaded.random_state is None  # a RandomState instance is not saved
    assert list(loaded.feature_names_in_) == ["eruptions", "waiting"]
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"waiting": "wait"}))


def test_streaming_state_survives_save_and_load(faithful_X, tmp_path):
    batches = np.array_split(faithful_X[np.random.default_rng(0).permutation(272)], 6)
    uninterrupted = GaussianMixture(2, random_state=0)
    resumed = GaussianMixture(2, random_state=0)
    for batch in batches[:3]:
        uninterrupted.partial_fit(batch)
        resumed.partial_fit(batch)
    resumed.save(tmp_path / "stream.npz")
    resumed = gaussmix.load(tmp_path / "stream.npz")
    assert resumed.n_samples_seen_ == uninterrupted.n_samples_seen_ == 137  # 3 of 6 batches
    for batch in batches[3:]:
        uninterrupted.partial_fit(batch)
        resumed.partial_fit(batch)
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name))
    assert resumed.n_steps_ == 6


def test_round_trip_through_file_objects(fitted, faithful_X, tmp_path):
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    from_buffer = gaussmix.load(buffer)
    assert not buffer.closed
    with open(tmp_path / "m.npz", "wb") as file:
        fitted.save(file)
    with open(tmp_path / "m.npz", "rb") as file:
        from_file = gaussmix.load(file)
    from_str_path = gaussmix.load(str(tmp_path / "m.npz"))
    for loaded in (from_buffer, from_file, from_str_path):
        assert_fitted_params_identical(loaded, fitted)
        assert_array_equal(loaded.predict_proba(faithful_X), fitted.predict_proba(faithful_X))


def test_load_reads_a_stream_that_cannot_seek(fitted, faithful_X):
    buffer = io.BytesIO()
    fitted.save(buffer)
    read_end, write_end = os.pipe()

    def write_model():
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(buffer.getvalue())

    writer = threading.Thread(target=write_model)
    writer.start()
    with os.fdopen(read_end, "rb") as pipe:
        assert not pipe.seekable()
        loaded = gaussmix.load(pipe)
    writer.join()
    assert_fitted_params_identical(loaded, fitted)
    assert_array_equal(loaded.predict_proba(faithful_X), fitted.predict_proba(faithful_X))


def test_load_refuses_bytes_and_says_to_wrap_them(fitted):
    buffer = io.BytesIO()
    fitted.save(buffer)
    with pytest.raises(TypeError, match=r"path or a binary file object.*io\.BytesIO"):
        gaussmix.load(buffer.getvalue())


def test_damaged_file_object_names_the_file(fitted, tmp_path):
    (tmp_path / "m.npz").write_bytes(b"PK\x03\x04garbage")
    with open(tmp_path / "m.npz", "rb") as file, pytest.raises(ModelFileError, match="m.npz"):
        gaussmix.load(file)
    with pytest.raises(ModelFileError, match="file object"):
        gaussmix.load(io.BytesIO(b"PK\x03\x04garbage"))


def test_pickle_round_trip(fitted, faithful_X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(pickle.dumps(fitted))
    assert_fitted_params_identical(loaded, fitted)
    assert_array_equal(loaded.predict(faithful_X), fitted.predict(faithful_X))
    assert "_gaussmix_version" not in vars(loaded)


def test_pickle_records_the_version(fitted):
    assert fitted.__getstate__()["_gaussmix_version"] == gaussmix.__version__
    assert "_gaussmix_version" not in vars(fitted)


def assert_version_warning(record, original_version):
    assert len(record) == 1
    warning = record[0].message
    assert (warning.estimator_name, warning.original_version, warning.current_version) == (
        "GaussianMixture", original_version, gaussmix.__version__)
    assert gaussmix.__version__ in str(warning)


def test_unpickling_another_version_warns(fitted, faithful_X, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(gaussmix, "__version__", "0.0.1")
        pickled = pickle.dumps(fitted)
    with pytest.warns(InconsistentVersionWarning, match="pickled by gaussmix 0.0.1") as record:
        loaded = pickle.loads(pickled)
    assert_version_warning(record, "0.0.1")
    assert_array_equal(loaded.predict(faithful_X), fitted.predict(faithful_X))


def test_unpickling_a_pickle_without_a_version_warns(fitted, faithful_X):
    old_state = {k: v for k, v in fitted.__getstate__().items() if k != "_gaussmix_version"}
    restored = GaussianMixture.__new__(GaussianMixture)
    with pytest.warns(InconsistentVersionWarning, match="an unknown gaussmix version") as record:
        restored.__setstate__(old_state)
    assert_version_warning(record, None)
    assert_array_equal(restored.predict(faithful_X), fitted.predict(faithful_X))


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        GaussianMixture().save(tmp_path / "m.npz")


def test_truncated_file_is_refused(fitted, tmp_path):
    path = tmp_path / "m.npz"
    fitted.save(path)
    data = path.read_bytes()
    for size in (10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:size])
        with pytest.raises(ModelFileError):
            gaussmix.load(path)


@pytest.mark.parametrize("content", [b"", b"not a model\n", b"PK\x03\x04garbage",
                                     b"\x93NUMPY\x01\x00"])
def test_foreign_bytes_are_refused(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        gaussmix.load(path)


def test_other_npz_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights_=np.ones(2))
    with pytest.raises(ModelFileError, match="no header"):
        gaussmix.load(tmp_path / "other.npz")
    np.save(tmp_path / "array.npy", np.ones(3))
    with pytest.raises(ModelFileError, match="not an .npz"):
        gaussmix.load(tmp_path / "array.npy")


def _shift_means(arrays):
    arrays["means_"] = arrays["means_"] + 1.0


def _change_tol(arrays):
    header = header_of(arrays)
    header["params"]["tol"] = 0.5
    set_header(arrays, header)


def _negate_covariances_and_rehash(arrays):
    from gaussmix._persistence import _digest

    arrays["covariances_"] = -arrays["covariances_"]
    header = header_of(arrays)
    header["sha256"] = _digest(header, {k: v for k, v in arrays.items() if k != "header"})
    set_header(arrays, header)


def _rehash(arrays, header):
    from gaussmix._persistence import _digest

    header["sha256"] = _digest(header, {k: v for k, v in arrays.items() if k != "header"})
    set_header(arrays, header)


@pytest.mark.parametrize("lower_bounds", [
    "abc", 5, None, {"a": 1.0}, [1.0, "x"], [1.0, None], [True], [float("nan")], [10 ** 400],
])
def test_rehashed_file_with_malformed_lower_bounds_is_refused(fitted, tmp_path, lower_bounds):
    def edit(arrays):
        header = header_of(arrays)
        header["attributes"]["lower_bounds_"] = lower_bounds
        _rehash(arrays, header)

    path = tmp_path / "m.npz"
    fitted.save(path)
    rewrite(path, edit)
    with pytest.raises(ModelFileError, match="lower_bounds_ is not a list of numbers"):
        gaussmix.load(path)


@pytest.mark.parametrize("name, value", [
    ("lower_bound_", 10 ** 400), ("lower_bound_", float("nan")), ("lower_bound_", "x"),
    ("n_iter_", 2.5), ("n_iter_", True), ("converged_", 1), ("n_features_in_", None),
])
def test_rehashed_file_with_malformed_scalar_attribute_is_refused(fitted, tmp_path, name, value):
    def edit(arrays):
        header = header_of(arrays)
        header["attributes"][name] = value
        _rehash(arrays, header)

    path = tmp_path / "m.npz"
    fitted.save(path)
    rewrite(path, edit)
    with pytest.raises(ModelFileError, match=f"attribute {name} has the wrong type or value"):
        gaussmix.load(path)


@pytest.mark.parametrize("name, value, message", [
    ("means_init", np.zeros((2, 3)), "means_init"),   # 3 features, for a model of 2
    ("weights_init", np.array([0.5, 0.7]), "weights_init"),
    ("precisions_init", -np.ones((2, 2, 2)), "positive-definite"),
])
def test_rehashed_file_with_an_initial_parameter_a_fit_refuses_is_refused(
        faithful_X, tmp_path, name, value, message):
    def edit(arrays):
        header = header_of(arrays)
        header["params"][name] = "<array>"
        arrays[f"param.{name}"] = value
        header["arrays"][f"param.{name}"] = {"dtype": "float64", "shape": list(value.shape)}
        _rehash(arrays, header)

    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(faithful_X).save(path)
    rewrite(path, edit)
    with pytest.raises(ModelFileError, match=f"invalid parameters.*{message}"):
        gaussmix.load(path)


def _bump_version(arrays):
    header = header_of(arrays)
    header["format_version"] = 99
    set_header(arrays, header)


@pytest.mark.parametrize("edit, message", [
    (_shift_means, "checksum"),
    (_change_tol, "checksum"),
    # a forger who recomputes the digest still meets the shape/type/SPD checks
    (_negate_covariances_and_rehash, "positive definite"),
    (_bump_version, "version 99"),
])
def test_altered_file_is_refused(fitted, tmp_path, edit, message):
    path = tmp_path / "m.npz"
    fitted.save(path)
    rewrite(path, edit)
    with pytest.raises(ModelFileError, match=message):
        gaussmix.load(path)


def test_pickled_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    declared = {"format": "gaussmix.GaussianMixture", "arrays": {"weights_": {}}}
    header = np.frombuffer(json.dumps(declared).encode(), np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, np.array([Exploit()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", _npy_bytes(header))
        archive.writestr("weights_.npy", buffer.getvalue())
    with pytest.raises(ModelFileError, match="pickled"):
        gaussmix.load(path)
    assert not marker.exists()


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
