"""Progress lines of ``verbose`` fits, held to scikit-learn's: an iteration line
gives the time since the previous line (not since the start), the closing line
of an initialisation its total time. Both libraries run on one fake clock."""
import re
import warnings

import numpy as np
import pytest

import gaussmix._base
from gaussmix import GaussianMixture

sklearn_base = pytest.importorskip("sklearn.mixture._base")
sklearn_mixture = pytest.importorskip("sklearn.mixture")

X = np.random.default_rng(0).normal(size=(200, 2))


class GrowingStepClock:
    """The n-th reading is 1 + 2 + ... + n seconds: consecutive readings are n
    seconds apart, so a lapse and a running total print differently."""

    def __init__(self):
        self.readings = 0
        self.now = 0.0

    def __call__(self):
        self.readings += 1
        self.now += self.readings
        return self.now


def progress(estimator_class, clock_module, clock_name, monkeypatch, capsys, **params):
    """The lines a fit with ``params`` prints while ``clock_module.clock_name``
    is a fresh GrowingStepClock."""
    monkeypatch.setattr(clock_module, clock_name, GrowingStepClock())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every iteration
        estimator_class(n_components=2, random_state=0, tol=0, **params).fit(X)
    monkeypatch.undo()
    return capsys.readouterr().out.splitlines()


def gaussmix_progress(monkeypatch, capsys, **params):
    return progress(GaussianMixture, gaussmix._base, "perf_counter", monkeypatch, capsys,
                    **params)


def sklearn_progress(monkeypatch, capsys, **params):
    return progress(sklearn_mixture.GaussianMixture, sklearn_base, "time", monkeypatch,
                    capsys, **params)


def without_numbers_of_the_fit(lines):
    """The lines with the ll changes and lower bounds (which differ in their last
    digits between the libraries) blanked out."""
    return [re.sub(r"(ll change|lower bound) -?\d+\.\d+", r"\1 #", line)
            for line in lines]


def test_iteration_lines_give_the_time_since_the_previous_line(monkeypatch, capsys):
    lines = gaussmix_progress(monkeypatch, capsys, verbose=2, verbose_interval=1, max_iter=4)
    # readings: start 1, iterations 3, 6, 10, 15, end 21
    lapses = [float(lapse) for line in lines
              for lapse in re.findall(r"Iteration \d+\t time lapse ([\d.]+)s", line)]
    assert lapses == [2.0, 3.0, 4.0, 5.0]
    assert re.fullmatch(r"Initialization did not converge\. time lapse 20\.00000s\t "
                        r"lower bound -?[\d.]+\.", lines[-1])


@pytest.mark.parametrize("verbose", [1, 2])
@pytest.mark.parametrize("verbose_interval, max_iter, n_init", [(1, 3, 1), (2, 7, 2), (10, 5, 1)])
def test_progress_lines_are_scikit_learns(monkeypatch, capsys, verbose, verbose_interval,
                                          max_iter, n_init):
    params = dict(verbose=verbose, verbose_interval=verbose_interval, max_iter=max_iter,
                  n_init=n_init)
    ours = gaussmix_progress(monkeypatch, capsys, **params)
    theirs = sklearn_progress(monkeypatch, capsys, **params)
    assert without_numbers_of_the_fit(ours) == without_numbers_of_the_fit(theirs)
