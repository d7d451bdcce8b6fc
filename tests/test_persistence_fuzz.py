"""Damaged model files: every single-bit flip, every truncation and appended
bytes give ModelFileError or the saved model itself, in ``load`` and the CLI."""
import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gaussmix
from gaussmix import BayesianGaussianMixture, GaussianMixture, ModelFileError

from conftest import assert_fitted_params_identical
from test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def X():
    X = np.random.default_rng(0).normal(size=(40, 2))
    X[20:] += 5.0
    return X


ESTIMATORS = {
    "mixture": lambda: GaussianMixture(2, covariance_type="diag", random_state=0, n_threads=1),
    "bayesian": lambda: BayesianGaussianMixture(n_components=2, covariance_type="diag",
                                                random_state=0, n_threads=1),
}


@pytest.fixture(scope="module", params=list(ESTIMATORS))
def saved(X, request):
    """The bytes of a small saved model of each format (2 components, 2
    features, about 2.3 kB for GaussianMixture, 5.3 kB for the Bayesian one)
    and the pickle of its load, after checking that load against the model."""
    gm = ESTIMATORS[request.param]().fit(X)
    buffer = io.BytesIO()
    gm.save(buffer)
    loaded = gaussmix.load(io.BytesIO(buffer.getvalue()))
    loaded_state = pickle.dumps(loaded)  # before predict_proba adds any cache
    assert type(loaded) is type(gm)
    assert_fitted_params_identical(loaded, gm)
    assert loaded.get_params() == gm.get_params()
    assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
    return buffer.getvalue(), loaded_state


def load_outcome(data, loaded_state):
    """"refused" on ModelFileError, "same" when ``data`` loads as a model whose
    whole state (its pickle) is ``loaded_state``; anything else (another
    exception, a different model) fails the test."""
    try:
        loaded = gaussmix.load(io.BytesIO(data))
    except ModelFileError:
        return "refused"
    assert pickle.dumps(loaded) == loaded_state
    return "same"


@pytest.mark.slow
def test_every_single_bit_flip_is_refused_or_harmless(saved):
    # ~19,000 loads for GaussianMixture, ~42,000 for BayesianGaussianMixture
    # (all 8 bits of every byte); the harmless flips hit bytes
    # zipfile does not check (timestamps, the local headers' copies of sizes).
    data, loaded_state = saved
    outcomes = {"refused": 0, "same": 0}
    for position in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            outcomes[load_outcome(bytes(damaged), loaded_state)] += 1
    assert outcomes["refused"] > outcomes["same"] > 0


def test_every_truncation_is_refused(saved):
    data, _ = saved
    for size in range(len(data)):
        with pytest.raises(ModelFileError):
            gaussmix.load(io.BytesIO(data[:size]))


def _junk(data):
    rng = np.random.default_rng(0)
    return {
        "one zero byte": b"\0",
        "text": b"trailing text\n",
        "random kB": rng.bytes(1000),
        "a zip end record": b"PK\x05\x06" + rng.bytes(40),
        "the file again": data,
        "beyond zipfile's 64 KiB search": bytes(70_000),
    }


def test_appended_bytes_are_ignored_or_refused(saved):
    # Trailing bytes cannot change the model (the digest covers it): the file
    # loads as saved while zipfile finds the archive's end record, else it is
    # refused (README "Saving models").
    data, loaded_state = saved
    for name, junk in _junk(data).items():
        assert load_outcome(data + junk, loaded_state) in ("refused", "same"), name


def _central_directory_field(data, offset):
    """Position of a field ``offset`` bytes into the first central directory entry."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.start_dir + offset


# The damages that used to escape as RuntimeError ("File ... is encrypted") and
# NotImplementedError ("That compression method is not supported").
ESCAPED_DAMAGES = {"encrypted flag": (8, 0x01), "compression method": (10, 0x40)}


@pytest.mark.parametrize("damage", ESCAPED_DAMAGES)
def test_zip_damage_is_a_model_file_error_with_its_cause(saved, damage):
    data, _ = saved
    offset, mask = ESCAPED_DAMAGES[damage]
    damaged = bytearray(data)
    damaged[_central_directory_field(data, offset)] ^= mask
    with pytest.raises(ModelFileError, match="unreadable") as info:
        gaussmix.load(io.BytesIO(bytes(damaged)))
    assert isinstance(info.value.__cause__, (RuntimeError, NotImplementedError))


@pytest.mark.parametrize("damage", ESCAPED_DAMAGES)
def test_cli_predict_with_a_damaged_model_is_a_one_line_error(tmp_path, saved, X, damage):
    data, _ = saved
    offset, mask = ESCAPED_DAMAGES[damage]
    damaged = bytearray(data)
    damaged[_central_directory_field(data, offset)] ^= mask
    (tmp_path / "m.npz").write_bytes(bytes(damaged))
    np.save(tmp_path / "X.npy", X)
    result = run(tmp_path, "predict", "m.npz", "X.npy")
    assert_one_line_error(result)
    assert "m.npz" in result.stderr
    assert result.stdout == ""


# Values a forger might put in the header's params and attributes.
ODD_VALUES = ["x", None, True, 0, -1, 2.5, 1e400, 10 ** 30, [1], {"a": 1},
              [[1.0, 0.0], [0.0, 1.0]], "<array>"]


def _odd_arrays(array):
    """Arrays of other signs, scales, shapes and dtypes than ``array``."""
    return [-array, 0 * array, 1e300 * array, array[..., :1] if array.ndim else array[None],
            array.astype(np.float32), np.float64(3.0), array.reshape(-1),
            np.stack([array, array])]


def _rehashed_file(arrays, header):
    """An archive of ``arrays`` under ``header``, with the digest recomputed."""
    from gaussmix._persistence import _digest

    arrays = {name: a for name, a in arrays.items() if name != "header"}
    header["arrays"] = {name: {"dtype": str(a.dtype), "shape": list(a.shape)}
                        for name, a in arrays.items()}
    header["sha256"] = _digest(header, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    buffer.seek(0)
    return buffer


def _forgeries(data):
    """Rehashed variants of the model file ``data``: every header value and every
    array replaced by odd ones, and every array left out."""
    with np.load(io.BytesIO(data)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    for section in ("params", "attributes"):
        for key in header[section]:
            for value in ODD_VALUES:
                forged = json.loads(json.dumps(header))
                forged[section][key] = value
                yield _rehashed_file(arrays, forged)
    for name in set(arrays) - {"header"}:
        for value in _odd_arrays(arrays[name]):
            yield _rehashed_file({**arrays, name: np.asarray(value)},
                                 json.loads(json.dumps(header)))
        yield _rehashed_file({k: v for k, v in arrays.items() if k != name},
                             json.loads(json.dumps(header)))


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_forged_files_are_refused_or_usable(X, estimator):
    # A forger who recomputes the digest gets ModelFileError from load (no
    # other exception, no warning), or a model whose methods fail with
    # ValueError at worst.
    model = ESTIMATORS[estimator]()
    model.partial_fit(X[:20])
    model.partial_fit(X[20:])  # running statistics and step counts in the file
    buffer = io.BytesIO()
    model.save(buffer)
    outcomes = {"refused": 0, "loaded": 0}
    for forged in _forgeries(buffer.getvalue()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                loaded = gaussmix.load(forged)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for use in (lambda: loaded.predict(X), lambda: loaded.score_samples(X),
                        lambda: loaded.sample(3), lambda: loaded.partial_fit(X[:10])):
                try:
                    use()
                except ValueError:
                    pass
    assert outcomes["refused"] > outcomes["loaded"] > 0
