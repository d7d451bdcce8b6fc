"""Progress lines of ``verbose`` fits, held to scikit-learn's: an iteration line
gives the time since the previous line (not since the start), the closing line
of an initialisation its total time. Both libraries run on one fake clock."""
import re

import numpy as np
import pytest

import gaussmix._base
from gaussmix import GaussianMixture

from conftest import fit_progress, without_numbers_of_the_fit

sklearn_base = pytest.importorskip("sklearn.mixture._base")
sklearn_mixture = pytest.importorskip("sklearn.mixture")

X = np.random.default_rng(0).normal(size=(200, 2))


def gaussmix_progress(monkeypatch, capsys, **params):
    return fit_progress(GaussianMixture, gaussmix._base, "perf_counter", X, monkeypatch,
                        capsys, **params)


def sklearn_progress(monkeypatch, capsys, **params):
    return fit_progress(sklearn_mixture.GaussianMixture, sklearn_base, "time", X,
                        monkeypatch, capsys, **params)


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
