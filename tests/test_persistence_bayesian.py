"""save / load of BayesianGaussianMixture: the same model back, partial_fit
resumed exactly, and crafted files refused with ModelFileError."""
import dataclasses
import io
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gaussmix
from gaussmix import BayesianGaussianMixture, GaussianMixture, ModelFileError

from conftest import COVARIANCE_TYPES
from test_persistence import header_of, rewrite, set_header

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def round_trip(model):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    return gaussmix.load(buffer)


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of short fits
        return model.fit(X)


def assert_same_value(loaded, saved, name):
    """Equal values of the same types (and dtypes), tuples element by element."""
    assert type(loaded) is type(saved), name
    if isinstance(saved, tuple):
        for a, b in zip(loaded, saved, strict=True):
            assert_same_value(a, b, name)
    elif isinstance(saved, np.ndarray):
        assert loaded.dtype == saved.dtype, name
        assert_array_equal(loaded, saved, err_msg=name)
    else:
        assert loaded == saved, name


def public_attributes(model):
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and not name.startswith("_")}


@pytest.fixture(scope="module")
def X():
    return gaussmix.load_faithful()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_gives_the_same_model(X, covariance_type, prior_type, dtype):
    X = X.astype(dtype)
    model = fit_quietly(BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type, random_state=1, max_iter=30), X)
    loaded = round_trip(model)
    assert type(loaded) is BayesianGaussianMixture
    assert loaded.get_params() == model.get_params()
    saved = public_attributes(model)
    assert set(public_attributes(loaded)) == set(saved)
    for name, value in saved.items():
        assert_same_value(getattr(loaded, name), value, name)
    # the priors partial_fit continues with
    for field in dataclasses.fields(model._fit_priors):
        assert_same_value(getattr(loaded._fit_priors, field.name),
                          getattr(model._fit_priors, field.name), field.name)
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    for a, b in zip(loaded.sample(50), model.sample(50)):
        assert_array_equal(a, b)


@pytest.mark.parametrize("covariance_type, covariance_prior", [
    ("full", np.array([[2.0, 0.5], [0.5, 30.0]])),
    ("diag", np.array([2.0, 30.0])),
    ("spherical", 4.0),
    ("spherical", None),
])
def test_round_trip_keeps_prior_parameters(X, covariance_type, covariance_prior):
    model = fit_quietly(BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type, mean_prior=[3.0, 70.0],
        covariance_prior=covariance_prior, weight_concentration_prior=0.05,
        degrees_of_freedom_prior=3.5, mean_precision_prior=0.5, random_state=0), X)
    loaded = round_trip(model)
    assert_array_equal(loaded.mean_prior, [3.0, 70.0])
    if isinstance(covariance_prior, np.ndarray):
        assert_same_value(loaded.covariance_prior, covariance_prior, "covariance_prior")
    else:
        assert loaded.covariance_prior == covariance_prior
        assert type(loaded.covariance_prior) is type(covariance_prior)
    assert (loaded.weight_concentration_prior, loaded.degrees_of_freedom_prior,
            loaded.mean_precision_prior) == (0.05, 3.5, 0.5)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("total_samples", [None, 272])
def test_partial_fit_resumes_exactly_after_load(X, total_samples):
    batches = np.array_split(X[np.random.default_rng(0).permutation(len(X))], 6)
    uninterrupted = BayesianGaussianMixture(n_components=3, random_state=0,
                                            total_samples=total_samples)
    resumed = BayesianGaussianMixture(n_components=3, random_state=0,
                                      total_samples=total_samples)
    for batch in batches[:3]:
        uninterrupted.partial_fit(batch)
        resumed.partial_fit(batch)
    resumed = round_trip(resumed)
    assert resumed.n_samples_seen_ == uninterrupted.n_samples_seen_
    for batch in batches[3:]:
        uninterrupted.partial_fit(batch)
        resumed.partial_fit(batch)
    for name, value in public_attributes(uninterrupted).items():
        assert_same_value(getattr(resumed, name), value, name)
    assert resumed.n_steps_ == 6


def test_partial_fit_after_fit_continues_as_before_saving(X):
    model = fit_quietly(BayesianGaussianMixture(n_components=3, random_state=0), X)
    loaded = round_trip(model)
    batch = X[::3]
    model.partial_fit(batch)
    loaded.partial_fit(batch)
    for name, value in public_attributes(model).items():
        assert_same_value(getattr(loaded, name), value, name)


def test_warm_start_fit_continues_as_before_saving(X):
    model = fit_quietly(BayesianGaussianMixture(n_components=3, random_state=0,
                                                max_iter=5), X)
    loaded = round_trip(model)
    for m in (model, loaded):
        m.set_params(warm_start=True)
        fit_quietly(m, X)
    for name, value in public_attributes(model).items():
        assert_same_value(getattr(loaded, name), value, name)


# ------------------------------------------------------------ crafted files
@pytest.fixture(scope="module")
def saved_models(X):
    """File bytes of a Dirichlet-process full model and a Dirichlet-distribution
    tied one (where degrees_of_freedom_ is a float)."""
    files = {}
    for covariance_type, prior_type in (("full", "dirichlet_process"),
                                        ("tied", "dirichlet_distribution")):
        buffer = io.BytesIO()
        fit_quietly(BayesianGaussianMixture(
            n_components=3, covariance_type=covariance_type,
            weight_concentration_prior_type=prior_type, random_state=0), X).save(buffer)
        files[covariance_type] = buffer.getvalue()
    return files


def rehashed(arrays, header):
    from gaussmix._persistence import _digest

    header["arrays"] = {name: {"dtype": str(a.dtype), "shape": list(a.shape)}
                        for name, a in arrays.items() if name != "header"}
    header["sha256"] = _digest(header, {k: v for k, v in arrays.items() if k != "header"})
    set_header(arrays, header)


def forge(tmp_path, data, edit):
    """``data`` rewritten by ``edit(arrays, header)``, digest recomputed: the
    file a forger who knows the format would write."""
    path = tmp_path / "forged.npz"
    path.write_bytes(data)

    def apply(arrays):
        header = header_of(arrays)
        edit(arrays, header)
        rehashed(arrays, header)

    rewrite(path, apply)
    return path


def set_array(name, value):
    def edit(arrays, header):
        arrays[name] = np.asarray(value)
    return edit


def scale_array(name, factor):
    def edit(arrays, header):
        arrays[name] = arrays[name] * factor
    return edit


def drop_array(name):
    def edit(arrays, header):
        del arrays[name]
    return edit


def set_param(name, value):
    def edit(arrays, header):
        header["params"][name] = value
    return edit


def set_attribute(name, value):
    def edit(arrays, header):
        header["attributes"][name] = value
    return edit


def as_float32(name):
    def edit(arrays, header):
        arrays[name] = arrays[name].astype(np.float32)
    return edit


FORGERIES = [
    # (model, edit, what the message says)
    ("full", scale_array("mean_precision_", -1.0), "mean_precision_ has values not above 0"),
    ("full", scale_array("mean_precision_", 0.0), "mean_precision_ has values not above 0"),
    ("full", set_array("mean_precision_", np.ones(4)), r"mean_precision_ has shape \(4,\)"),
    ("full", set_array("degrees_of_freedom_", np.full(3, 0.5)),
     "degrees_of_freedom_ has values not above 1"),
    ("tied", set_array("degrees_of_freedom_", np.ones(3) * 50), "degrees_of_freedom_ has shape"),
    ("full", scale_array("weight_concentration_", -1.0), "weight_concentration_ has values"),
    ("tied", scale_array("weight_concentration_", 0.0), "weight_concentration_ has values"),
    # a Dirichlet-process file claiming the other prior: its concentration is a pair
    ("full", set_param("weight_concentration_prior_type", "dirichlet_distribution"),
     r"weight_concentration_ has shape \(2, 3\), expected \(3,\)"),
    ("tied", set_param("weight_concentration_prior_type", "dirichlet_process"),
     r"weight_concentration_ has shape \(3,\), expected \(2, 3\)"),
    ("full", set_param("covariance_type", "diag"), "covariances_ has shape"),
    ("full", set_array("covariance_prior_", [[1.0, 2.0], [2.0, 1.0]]),
     "covariance_prior_ is not symmetric positive definite"),
    ("full", set_array("covariance_prior_", [[1.0, 0.5], [0.0, 1.0]]),
     "covariance_prior_ is not symmetric positive definite"),
    ("full", set_array("covariance_prior_", [1.0, 1.0]), "covariance_prior_ has shape"),
    ("full", set_array("mean_prior_", [1.0, 2.0, 3.0]), "mean_prior_ has shape"),
    ("full", set_array("weight_concentration_prior_", -1.0), "weight_concentration_prior_"),
    ("full", set_array("mean_precision_prior_", 0.0), "mean_precision_prior_"),
    ("full", set_array("degrees_of_freedom_prior_", 1.0), "degrees_of_freedom_prior_"),
    ("full", set_array("weight_concentration_prior_", [1.0]),
     "weight_concentration_prior_ has shape"),
    ("full", drop_array("mean_precision_"), "mean_precision_ is missing"),
    ("tied", drop_array("covariance_prior_"), "covariance_prior_ is missing"),
    ("full", as_float32("degrees_of_freedom_"), "degrees_of_freedom_ is not float64"),
    ("full", set_param("mean_prior", [1.0, 2.0, 3.0]), "invalid parameters.*mean_prior"),
    ("full", set_param("covariance_prior", -1.0), "invalid parameters.*covariance_prior"),
    ("full", set_param("degrees_of_freedom_prior", 0.5),
     "invalid parameters.*degrees_of_freedom_prior"),
    ("full", set_param("random_state", "seed"), "invalid parameters.*random_state"),
    ("full", set_param("mean_prior", {"a": 1}), "invalid parameters.*mean_prior"),
    ("full", set_param("covariance_prior", [[1.0, 2.0], [2.0, 1.0]]),
     "invalid parameters.*covariance_prior"),
    ("full", set_attribute("n_steps_", 0), "n_steps_"),
    ("full", set_attribute("n_steps_", -1), "n_steps_"),
    ("full", set_attribute("n_samples_seen_", 0), "n_samples_seen_"),
    ("full", set_attribute("n_samples_seen_", 1e400), "n_samples_seen_"),
]


@pytest.mark.parametrize("model, edit, message", FORGERIES,
                         ids=[f"{m}-{msg[:40]}" for m, _, msg in FORGERIES])
def test_forged_file_is_refused(tmp_path, saved_models, model, edit, message):
    path = forge(tmp_path, saved_models[model], edit)
    with pytest.raises(ModelFileError, match=message):
        gaussmix.load(path)


def test_the_forger_s_unedited_file_loads(tmp_path, saved_models):
    # the forging machinery alone leaves a loadable file: the refusals above
    # come from the edits
    for data in saved_models.values():
        assert isinstance(gaussmix.load(forge(tmp_path, data, lambda a, h: None)),
                          BayesianGaussianMixture)


def test_a_mixture_file_relabelled_bayesian_is_refused(tmp_path, X):
    buffer = io.BytesIO()
    GaussianMixture(3, random_state=0).fit(X).save(buffer)
    path = forge(tmp_path, buffer.getvalue(),
                 lambda arrays, header: header.update(format="gaussmix.BayesianGaussianMixture",
                                                      params={"n_components": 3}))
    with pytest.raises(ModelFileError, match="weight_concentration_ is missing"):
        gaussmix.load(path)


@pytest.mark.parametrize("name", ["gaussmix.Unknown", ["gaussmix.GaussianMixture"], None])
def test_unknown_format_is_refused(tmp_path, saved_models, name):
    path = forge(tmp_path, saved_models["full"],
                 lambda arrays, header: header.update(format=name))
    with pytest.raises(ModelFileError, match="not a gaussmix model file"):
        gaussmix.load(path)
