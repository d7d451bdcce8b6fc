"""Text as X, held to scikit-learn's behaviour: what it parses (numeric strings
and bytes given to a fit) gaussmix parses to the same numbers, what it refuses
(string arrays given to a prediction, text that is not a number) gaussmix
refuses with its ValueError, and neither warns."""
import functools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gaussmix import GaussianMixture, select_model

from conftest import assert_clear_error

sklearn_mixture = pytest.importorskip("sklearn.mixture")

NUMBERS = np.random.default_rng(0).normal(size=(40, 2))

# Each builds X from a float array's text (numpy's shortest round-trip repr,
# so parsing gives back the very same doubles).
TEXT_KINDS = {
    "str array": lambda A: A.astype(str),
    "bytes array": lambda A: A.astype(bytes),
    "list of lists of str": lambda A: A.astype(str).tolist(),
    "object array of str": lambda A: A.astype(str).astype(object),
    "object array of bytes": lambda A: A.astype(bytes).astype(object),
}

NOT_NUMBERS = {
    "one row of words": np.array([["a", "b"]]),
    "str array of words": np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
    "bytes array of words": np.array([[b"a", b"b"], [b"c", b"d"], [b"e", b"f"]]),
    "list of lists of words": [["a", "b"], ["c", "d"], ["e", "f"]],
    "object array of words": np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object),
    "a word among numbers": np.array([[1.0, "2"], [3, 4], [5, "six"]], dtype=object),
    "a word among numeric strings": np.array([["1", "2"], ["3", "4"], ["5", "six"]]),
    "an empty string": np.array([["1", "2"], ["3", ""], ["5", "6"]]),
}

METHODS = ["fit", "fit_predict", "predict", "predict_proba", "score_samples", "score",
           "bic", "aic"]


@functools.lru_cache
def fitted_on_numbers(estimator_class):
    return estimator_class(n_components=2, random_state=0).fit(NUMBERS)


def outcome(estimator_class, method, X):
    """What ``method`` gives on X, as (value, None) or (None, exception), and the
    warnings it raised; predicting methods are called on a model fitted on NUMBERS."""
    if method in ("fit", "fit_predict"):
        estimator = estimator_class(n_components=2, random_state=0)
    else:
        estimator = fitted_on_numbers(estimator_class)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = getattr(estimator, method)(X)
        except Exception as exc:  # noqa: BLE001 (compared with scikit-learn's)
            return (None, exc), sorted({w.category.__name__ for w in caught})
    if method == "fit":
        value = value.means_
    return (value, None), sorted({w.category.__name__ for w in caught})


@pytest.mark.parametrize("method", METHODS)
def test_numeric_text_is_taken_where_scikit_learn_takes_it(method):
    (from_numbers, _), _ = outcome(GaussianMixture, method, NUMBERS)
    for kind, make in TEXT_KINDS.items():
        X = make(NUMBERS)
        (_, expected_error), expected_warnings = outcome(
            sklearn_mixture.GaussianMixture, method, X)
        (value, error), warned = outcome(GaussianMixture, method, X)
        assert warned == expected_warnings, kind
        if expected_error is not None:
            assert isinstance(error, type(expected_error)), (kind, error, expected_error)
            assert_clear_error(error)
        else:
            assert error is None, (kind, error)
            assert_array_equal(value, from_numbers, err_msg=kind)


@pytest.mark.parametrize("method", METHODS)
def test_text_that_is_not_numbers_is_a_value_error_as_in_scikit_learn(method):
    for case, X in NOT_NUMBERS.items():
        (_, expected_error), expected_warnings = outcome(
            sklearn_mixture.GaussianMixture, method, X)
        (_, error), warned = outcome(GaussianMixture, method, X)
        assert type(expected_error) is ValueError, case
        assert type(error) is ValueError, (case, error)
        assert_clear_error(error)
        assert warned == expected_warnings, case


def test_prediction_on_a_string_array_says_to_convert_it():
    gm = GaussianMixture(2, random_state=0).fit(NUMBERS)
    with pytest.raises(ValueError, match=r"strings \(dtype <U\d+\).*convert"):
        gm.predict(NUMBERS.astype(str))


def test_fit_on_words_names_the_word():
    with pytest.raises(ValueError, match=r"numbers.*'six'"):
        GaussianMixture(1).fit(NOT_NUMBERS["a word among numbers"])


def test_partial_fit_parses_numeric_text_as_fit_does():
    from_numbers = GaussianMixture(2, random_state=0).partial_fit(NUMBERS).partial_fit(NUMBERS)
    for kind, make in TEXT_KINDS.items():
        X = make(NUMBERS)
        from_text = GaussianMixture(2, random_state=0).partial_fit(X).partial_fit(X)
        assert_array_equal(from_text.means_, from_numbers.means_, err_msg=kind)
    with pytest.raises(ValueError, match="numbers"):
        from_text.partial_fit(NOT_NUMBERS["str array of words"])


def test_select_model_parses_numeric_text_as_fit_does():
    kwargs = dict(n_components=[1, 2], covariance_types=["full"], random_state=0)
    from_text = select_model(NUMBERS.astype(str), **kwargs)
    from_numbers = select_model(NUMBERS, **kwargs)
    assert_array_equal(from_text.best_estimator_.means_, from_numbers.best_estimator_.means_)
    with pytest.raises(ValueError, match="numbers"):
        select_model(NOT_NUMBERS["str array of words"], **kwargs)
