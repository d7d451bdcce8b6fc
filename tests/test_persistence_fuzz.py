"""Damaged model files: every single-bit flip, every truncation and appended
bytes give ModelFileError or the saved model itself, in ``load`` and the CLI."""
import io
import pickle
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
