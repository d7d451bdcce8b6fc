"""The command-line interface, driven as ``python -m gaussmix`` in a subprocess."""
import json
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gaussmix
from gaussmix import _cli

FEATURES = ("eruptions", "waiting")


def run(cwd, *args, **kwargs):
    """Run ``python -m gaussmix *args`` in ``cwd``, capturing text output."""
    return subprocess.run([sys.executable, "-m", "gaussmix", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, **kwargs)


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gaussmix: error: ") and len(lines[0]) > len("gaussmix: error: ")


def fitted(X, **params):
    params.setdefault("random_state", 0)
    return gaussmix.GaussianMixture(**params).fit(X)


@pytest.fixture(scope="module")
def X():
    return gaussmix.load_faithful()


@pytest.fixture
def data_dir(tmp_path, X):
    """tmp_path holding the Old Faithful data as header.csv, plain.csv and data.npy."""
    np.savetxt(tmp_path / "header.csv", X, delimiter=",", header=",".join(FEATURES),
               comments="")
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",", fmt="%.17g")
    np.save(tmp_path / "data.npy", X)
    return tmp_path


# --------------------------------------------------------------------------- fit
@pytest.mark.parametrize("data, covariance_type", [
    ("header.csv", "full"), ("plain.csv", "diag"), ("data.npy", "tied"),
])
def test_fit_json_matches_in_process_fit(data_dir, X, data, covariance_type):
    result = run(data_dir, "fit", data, "--n-components", "3", "--covariance-type",
                 covariance_type, "--seed", "5", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # a pipe is not a terminal: no progress
    report = json.loads(result.stdout)
    expected = fitted(X, n_components=3, covariance_type=covariance_type, random_state=5)
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(report[name], getattr(expected, name), rtol=1e-10)
    assert report["bic"] == pytest.approx(expected.bic(X), rel=1e-10)
    assert report["aic"] == pytest.approx(expected.aic(X), rel=1e-10)
    assert report["lower_bound_"] == pytest.approx(expected.lower_bound_, rel=1e-10)
    assert report["n_iter_"] == expected.n_iter_
    assert report["counts"] == np.bincount(expected.predict(X), minlength=3).tolist()
    assert (report["n_samples"], report["n_features"]) == X.shape
    names = list(FEATURES) if data == "header.csv" else ["x0", "x1"]
    assert report["feature_names"] == names


def test_fit_and_predict_with_missing_values(tmp_path, X):
    """--nan-policy marginalize: empty fields and NA are NaN; the saved model
    predicts rows with holes; without the flag, the error names it."""
    holes = X.copy()
    rng = np.random.default_rng(0)
    holes[rng.random(X.shape) < 0.15] = np.nan
    text = "\n".join([",".join(FEATURES)] + [
        ",".join(("NA" if i % 7 == 0 else "") if np.isnan(v) else repr(float(v)) for v in row)
        for i, row in enumerate(holes)])
    (tmp_path / "holes.csv").write_text(text + "\n")
    result = run(tmp_path, "fit", "holes.csv", "--n-components", "2", "--seed", "1",
                 "--nan-policy", "marginalize", "--json", "--output", "m.npz")
    assert result.returncode == 0, result.stderr
    expected = fitted(holes, n_components=2, random_state=1, nan_policy="marginalize")
    assert_allclose(json.loads(result.stdout)["means_"], expected.means_, rtol=1e-10)
    predicted = run(tmp_path, "predict", "m.npz", "holes.csv")
    assert predicted.returncode == 0, predicted.stderr
    assert [int(v) for v in predicted.stdout.split()] == expected.predict(holes).tolist()
    refused = run(tmp_path, "fit", "holes.csv", "--n-components", "2")
    assert_one_line_error(refused)
    assert "--nan-policy marginalize" in refused.stderr
    assert_one_line_error(run(tmp_path, "fit", "holes.csv", "--select", "1..2",
                              "--nan-policy", "marginalize"))


def test_header_and_plain_csv_give_the_same_fit(data_dir):
    reports = [json.loads(run(data_dir, "fit", data, "--n-components", "2", "--json").stdout)
               for data in ("header.csv", "plain.csv")]
    for name in ("weights_", "means_", "covariances_", "bic"):
        assert_allclose(reports[0][name], reports[1][name], rtol=1e-12)


def test_fit_text_report(data_dir, X):
    result = run(data_dir, "fit", "header.csv", "--n-components", "2")
    assert result.returncode == 0 and result.stderr == ""
    expected = fitted(X, n_components=2)
    out = result.stdout
    assert out.startswith("header.csv: 272 samples x 2 features\n  - eruptions\n  - waiting\n")
    assert f"BIC              : {expected.bic(X):.3f}" in out
    assert f"n_iter_          : {expected.n_iter_}" in out
    for j, (weight, mean) in enumerate(zip(expected.weights_, expected.means_)):
        assert f"Component {j}: weight = {weight:.4f}" in out
        assert f"    {'waiting':<11}{mean[1]:>10.4f}\n" in out


def test_select_matches_select_model(data_dir, X):
    result = run(data_dir, "fit", "data.npy", "--select", "1..4", "--covariance-type",
                 "diag", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = gaussmix.select_model(X, n_components=range(1, 5), covariance_types=["diag"],
                                     random_state=0, tol=1e-3, max_iter=100)
    best = expected.best_params_["n_components"]
    assert 1 < best < 4  # the data make this a real choice, not an end of the range
    assert report["n_components"] == best
    table = report["selection"]["table"]
    assert report["selection"]["larger_is_better"] is True
    assert [row["n_components"] for row in table] == [1, 2, 3, 4]
    assert_allclose([row["bic"] for row in table], expected.table_[:, 0], rtol=1e-10)
    assert_allclose(report["means_"], expected.best_estimator_.means_, rtol=1e-10)

    text = run(data_dir, "fit", "data.npy", "--select", "1..4", "--covariance-type", "diag")
    assert f"best: diag with {best} components" in text.stdout


@pytest.mark.slow
def test_select_all_models(data_dir, X):
    result = run(data_dir, "fit", "data.npy", "--select", "2..3", "--covariance-type", "all",
                 "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["selection"]["table"]) == 2 * 14
    assert (report["n_components"], report["covariance_type"]) == (3, "EEE")


# ----------------------------------------------------------------------- predict
def test_fit_output_then_predict(data_dir, X):
    fit = run(data_dir, "fit", "header.csv", "--n-components", "3", "--output", "m.npz")
    assert fit.returncode == 0, fit.stderr
    assert "Model written to m.npz" in fit.stdout
    expected = fitted(X, n_components=3)

    labels = run(data_dir, "predict", "m.npz", "plain.csv")
    assert labels.returncode == 0 and labels.stderr == ""
    assert_array_equal(np.array(labels.stdout.split(), dtype=int), expected.predict(X))

    proba = run(data_dir, "predict", "m.npz", "data.npy", "--proba")
    assert proba.returncode == 0 and proba.stderr == ""
    P = np.array([line.split(",") for line in proba.stdout.splitlines()], dtype=float)
    assert P.shape == (272, 3)
    assert_allclose(P.sum(axis=1), 1, atol=1e-5)
    assert_allclose(P, expected.predict_proba(X), atol=1e-6)


def test_predict_json(data_dir, X):
    gm = fitted(X, n_components=2)
    gm.save(data_dir / "m.npz")
    labels = json.loads(run(data_dir, "predict", "m.npz", "data.npy", "--json").stdout)
    assert labels == {"labels": gm.predict(X).tolist()}
    proba = json.loads(run(data_dir, "predict", "m.npz", "data.npy", "--json",
                           "--proba").stdout)
    assert_allclose(proba["proba"], gm.predict_proba(X), rtol=1e-12)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows reports EINVAL, not EPIPE")
def test_predict_into_a_closed_pipe_stops_quietly(tmp_path):
    X = np.random.default_rng(0).normal(size=(200_000, 1))
    np.save(tmp_path / "big.npy", X)
    fitted(X, n_components=2).save(tmp_path / "m.npz")
    proc = subprocess.Popen([sys.executable, "-m", "gaussmix", "predict", "m.npz", "big.npy"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=60) == 1
    assert proc.stderr.read() == b""
    proc.stderr.close()


# ----------------------------------------------------------------- column names
@pytest.fixture
def cli(data_dir, monkeypatch, capsys):
    """Run the command line in this process, in data_dir (faster than ``run``)."""
    monkeypatch.chdir(data_dir)

    def call(*args):
        status = _cli.main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)
    return call


def write_csv(path, X, names, delimiter=","):
    np.savetxt(path, X, delimiter=delimiter, header=delimiter.join(names), comments="",
               fmt="%.17g")


def read_numbers(result):
    assert result.returncode == 0, result.stderr
    return np.array(result.stdout.split(), dtype=float)


def test_fit_keeps_the_csv_header_as_feature_names(cli, data_dir):
    for data, model in (("header.csv", "named.npz"), ("plain.csv", "plain.npz")):
        result = cli("fit", data, "--n-components", "2", "--output", model)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    assert list(gaussmix.load(data_dir / "named.npz").feature_names_in_) == list(FEATURES)
    assert not hasattr(gaussmix.load(data_dir / "plain.npz"), "feature_names_in_")


def test_predict_and_score_match_columns_by_name(cli, data_dir, X):
    cli("fit", "header.csv", "--n-components", "3", "--output", "m.npz")
    write_csv(data_dir / "reordered.csv", X[:, ::-1], FEATURES[::-1])
    expected = fitted(X, n_components=3)
    for data in ("header.csv", "reordered.csv"):
        labels = cli("predict", "m.npz", data)
        assert labels.stderr == ""
        assert_array_equal(read_numbers(labels), expected.predict(X))
        assert_array_equal(read_numbers(cli("score", "m.npz", data)),
                           expected.score_samples(X))


@pytest.mark.parametrize("names, columns, message", [
    (("eruptions", "wait"), [0, 1], "missing 'waiting'; unexpected 'wait'"),
    (("eruptions", "waiting", "id"), [0, 1, 2],
     "unexpected 'id' (choose the columns with --columns)"),
    (("eruptions",), [0], "missing 'waiting'"),
])
def test_predict_refuses_columns_that_do_not_match_by_name(cli, data_dir, X, names,
                                                           columns, message):
    cli("fit", "header.csv", "--n-components", "2", "--output", "m.npz")
    write_csv(data_dir / "other.csv", np.column_stack([X, np.arange(len(X))])[:, columns],
              names)
    result = cli("predict", "m.npz", "other.csv")
    assert result.returncode == 1 and result.stdout == ""
    assert_one_line_error(result)
    assert message in result.stderr


def test_pandas_index_column_is_dropped(cli, data_dir, X):
    pd = pytest.importorskip("pandas")
    pd.DataFrame(X, columns=list(FEATURES)).to_csv(data_dir / "indexed.csv")
    fit = cli("fit", "indexed.csv", "--n-components", "2", "--json",
              "--output", "m.npz")
    assert fit.returncode == 0
    assert fit.stderr.startswith("gaussmix: warning: indexed.csv: dropped the first column, "
                                 "an unnamed row index 0..271")
    assert fit.stderr.count("\n") == 1
    report = json.loads(fit.stdout)
    assert report["feature_names"] == list(FEATURES)
    assert_allclose(report["means_"], fitted(X, n_components=2).means_, rtol=1e-10)
    labels = cli("predict", "m.npz", "indexed.csv")
    assert_array_equal(read_numbers(labels), fitted(X, n_components=2).predict(X))
    assert cli("fit", "indexed.csv", "--n-components", "2", "--quiet").stderr == ""


def test_unnamed_column_that_is_not_an_index_is_refused(cli, data_dir, X):
    write_csv(data_dir / "unnamed.csv", np.column_stack([X[:, 0] + 0.5, X]),
              ("",) + FEATURES)
    result = cli("fit", "unnamed.csv", "--n-components", "2")
    assert_one_line_error(result)
    assert "column 0 has no name" in result.stderr and "--columns" in result.stderr
    chosen = cli("fit", "unnamed.csv", "--n-components", "2", "--columns",
                 "1,2", "--json")
    assert json.loads(chosen.stdout)["feature_names"] == list(FEATURES)


# ------------------------------------------------------------------ data options
@pytest.mark.parametrize("data, columns", [
    ("header.csv", "waiting,eruptions"), ("header.csv", "1,0"), ("plain.csv", "1,0"),
    ("data.npy", "1,0"), ("header.csv", "waiting,0"),
])
def test_columns_select_and_order_the_features(cli, data_dir, X, data, columns):
    result = cli("fit", data, "--n-components", "2", "--json", "--columns", columns)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert_allclose(report["means_"], fitted(X[:, ::-1], n_components=2).means_, rtol=1e-10)
    names = ["waiting", "eruptions"] if data == "header.csv" else ["x0", "x1"]
    assert report["feature_names"] == names


def test_usecols_is_columns_and_applies_to_predict(cli, data_dir, X):
    write_csv(data_dir / "three.csv", np.column_stack([X, X[:, 0]]), FEATURES + ("copy",))
    cli("fit", "three.csv", "--n-components", "2", "--usecols", "eruptions,waiting",
        "--output", "m.npz")
    assert list(gaussmix.load(data_dir / "m.npz").feature_names_in_) == list(FEATURES)
    labels = cli("predict", "m.npz", "three.csv", "--columns", "waiting,eruptions")
    assert_array_equal(read_numbers(labels), fitted(X, n_components=2).predict(X))


@pytest.mark.parametrize("delimiter, spelling", [(";", ";"), ("\t", "\\t"), ("\t", "tab")])
def test_delimiter(cli, data_dir, X, delimiter, spelling):
    write_csv(data_dir / "other.csv", X, FEATURES, delimiter)
    result = cli("fit", "other.csv", "--n-components", "2", "--json",
                 "--delimiter", spelling)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["feature_names"] == list(FEATURES)
    assert_allclose(report["means_"], fitted(X, n_components=2).means_, rtol=1e-10)


def test_n_threads_reaches_every_estimator(data_dir, X, monkeypatch, capsys):
    for args in (["--n-components", "2"], ["--select", "1..2", "--covariance-type", "diag"]):
        assert _cli.main(["fit", str(data_dir / "data.npy"), *args, "--n-threads", "1",
                          "--output", str(data_dir / "m.npz"), "--json"]) == 0
        assert gaussmix.load(data_dir / "m.npz").n_threads == 1
    gaussmix.GaussianMixture(2, random_state=0, n_threads=2).fit(X).save(data_dir / "m.npz")
    used = []
    monkeypatch.setattr(_cli, "load", lambda path: used.append(gaussmix.load(path)) or used[-1])
    for command in ("predict", "score"):
        assert _cli.main([command, str(data_dir / "m.npz"), str(data_dir / "data.npy"),
                          "--n-threads", "1"]) == 0
    assert [gm.n_threads for gm in used] == [1, 1]
    capsys.readouterr()


def test_score_prints_score_samples(cli, data_dir, X):
    gm = fitted(X, n_components=2, covariance_type="diag")
    gm.save(data_dir / "m.npz")
    assert_array_equal(read_numbers(cli("score", "m.npz", "plain.csv")),
                       gm.score_samples(X))
    result = cli("score", "m.npz", "data.npy", "--json")
    assert json.loads(result.stdout) == {"log_density": gm.score_samples(X).tolist()}


# ---------------------------------------------------------------------- bayesian
def bayesian(X, **params):
    params.setdefault("random_state", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gaussmix.ConvergenceWarning)  # as the CLI's fit may
        return gaussmix.BayesianGaussianMixture(**params).fit(X)


def expected_effective(model):
    """The components with an expected count of at least one sample."""
    return [j for j in range(model.n_components)
            if model.mean_precision_[j] - model.mean_precision_prior_ >= 1]


@pytest.mark.parametrize("prior_type, covariance_type", [
    ("dirichlet_process", "full"), ("dirichlet_distribution", "diag"),
])
def test_bayesian_fit_json_matches_in_process_fit(cli, data_dir, X, prior_type,
                                                  covariance_type):
    result = cli("fit", "header.csv", "--bayesian", "--n-components", "6",
                 "--covariance-type", covariance_type, "--weight-concentration-prior-type",
                 prior_type, "--weight-concentration-prior", "0.01", "--seed", "3",
                 "--json", "--output", "b.npz")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = bayesian(X, n_components=6, covariance_type=covariance_type,
                        weight_concentration_prior_type=prior_type,
                        weight_concentration_prior=0.01, random_state=3)
    assert report["estimator"] == "BayesianGaussianMixture"
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(report[name], getattr(expected, name), rtol=1e-10)
    assert report["lower_bound_"] == pytest.approx(expected.lower_bound_, rel=1e-10)
    assert report["n_iter_"] == expected.n_iter_
    assert report["weight_concentration_prior_type"] == prior_type
    assert report["weight_concentration_prior_"] == 0.01
    assert report["effective_components"] == expected_effective(expected)
    assert len(report["effective_components"]) < 6  # the prior switched some off
    assert "bic" not in report and "aic" not in report
    saved = gaussmix.load(data_dir / "b.npz")
    assert type(saved) is gaussmix.BayesianGaussianMixture
    assert saved.get_params() == expected.get_params()
    assert list(saved.feature_names_in_) == list(FEATURES)
    del saved.feature_names_in_  # X has no names
    assert_array_equal(saved.predict_proba(X), expected.predict_proba(X))


def test_bayesian_fit_defaults_to_scikit_learn_s_priors(cli, X):
    report = json.loads(cli("fit", "data.npy", "--bayesian", "--n-components", "3",
                            "--json").stdout)
    expected = bayesian(X, n_components=3)
    assert report["weight_concentration_prior_type"] == "dirichlet_process"
    assert report["weight_concentration_prior_"] == pytest.approx(1 / 3)
    assert_allclose(report["means_"], expected.means_, rtol=1e-10)


def test_bayesian_text_report_lists_the_effective_components(cli, X):
    result = cli("fit", "header.csv", "--bayesian", "--n-components", "6",
                 "--weight-concentration-prior", "0.01")
    assert result.returncode == 0 and result.stderr == ""
    expected = bayesian(X, n_components=6, weight_concentration_prior=0.01)
    effective = expected_effective(expected)
    out = result.stdout
    assert "BayesianGaussianMixture(n_components=6, covariance_type='full', " in out
    assert f"lower_bound_     : {expected.lower_bound_:.6f}  (evidence lower bound" in out
    assert "components used  : 2 of 6  (expected count >= 1 sample)" in out
    assert "BIC" not in out and "AIC" not in out
    counts = np.bincount(expected.predict(X), minlength=6)
    for j in range(6):
        line = f"Component {j}: weight = {expected.weights_[j]:.4f}  ({counts[j]} points"
        assert (line in out) == (j in effective)
    assert "(4 components with an expected count below one sample not shown)" in out


def test_predict_and_score_with_a_saved_bayesian_model(cli, data_dir, X):
    model = bayesian(X, n_components=4, covariance_type="tied")
    model.save(data_dir / "b.npz")
    labels = cli("predict", "b.npz", "header.csv")
    assert_array_equal(read_numbers(labels), model.predict(X))
    proba = json.loads(cli("predict", "b.npz", "data.npy", "--proba", "--json").stdout)
    assert proba == {"proba": model.predict_proba(X).tolist()}
    assert_array_equal(read_numbers(cli("score", "b.npz", "plain.csv")),
                       model.score_samples(X))


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
def test_info_reports_a_saved_model(cli, data_dir, X, estimator):
    if estimator == "GaussianMixture":
        model = fitted(X, n_components=3, covariance_type="diag")
    else:
        model = bayesian(X, n_components=5, weight_concentration_prior=0.01)
    model.feature_names_in_ = np.array(FEATURES, dtype=object)
    model.save(data_dir / "m.npz")
    result = cli("info", "m.npz")
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert out.startswith("m.npz: a model of 2 features\n  - eruptions\n  - waiting\n")
    assert f"{estimator}(n_components={model.n_components}, " in out
    assert f"n_iter_          : {model.n_iter_}" in out
    assert "BIC" not in out and "points assigned" not in out  # no data, no counts
    shown = (expected_effective(model) if estimator == "BayesianGaussianMixture"
             else range(3))
    for j in range(model.n_components):
        assert (f"Component {j}: weight = {model.weights_[j]:.4f}\n" in out) == (j in shown)

    report = json.loads(cli("info", "m.npz", "--json").stdout)
    assert report["model"] == "m.npz" and report["estimator"] == estimator
    assert report["feature_names"] == list(FEATURES)
    assert report["lower_bound_"] == model.lower_bound_
    assert report["means_"] == model.means_.tolist()
    assert "n_samples" not in report and "counts" not in report and "bic" not in report
    if estimator == "BayesianGaussianMixture":
        assert report["effective_components"] == expected_effective(model)


# ------------------------------------------------------------------------ errors
ERROR_CASES = [
    ["fit", "missing.csv", "--n-components", "2"],
    ["fit", "garbage.csv", "--n-components", "2"],
    ["fit", "nan.csv", "--n-components", "1"],
    ["fit", "ragged.csv", "--n-components", "1"],
    ["fit", "empty.csv", "--n-components", "1"],
    ["fit", "data.txt", "--n-components", "1"],
    ["fit", "flat.npy", "--n-components", "1"],
    ["fit", "inf.npy", "--n-components", "1"],
    ["fit", "objects.npy", "--n-components", "1"],
    ["fit", "header.csv", "--n-components", "0"],
    ["fit", "header.csv", "--n-components", "2", "--select", "1..3"],
    ["fit", "header.csv"],
    ["fit", "header.csv", "--select", "4..2"],
    ["fit", "header.csv", "--n-components", "2", "--covariance-type", "all"],
    ["fit", "header.csv", "--n-components", "1000"],  # more components than samples
    ["fit", "header.csv", "--n-components", "2", "--output", "no/such/dir/m.npz"],
    ["predict", "m.npz", "three.csv"],
    ["predict", "header.csv", "header.csv"],
    ["predict", "missing.npz", "header.csv"],
    ["info", "header.csv"],
]
# Errors of the data options, each with the words that must name the problem.
OPTION_ERRORS = [
    (["score", "m.npz", "three.csv"], "three.csv has 3 features but the model in m.npz"),
    (["fit", "header.csv", "--n-components", "2", "--columns", "eruptions,nope"],
     "header.csv has no column 'nope' (it has 2 columns: 'eruptions', 'waiting')"),
    (["fit", "header.csv", "--n-components", "2", "--columns", "0,2"],
     "header.csv has no column '2'"),
    (["fit", "header.csv", "--n-components", "2", "--columns", "0,0"], "named twice"),
    (["fit", "header.csv", "--n-components", "2", "--columns", "eruptions,0"],
     "--columns names a column of header.csv twice"),
    (["fit", "data.npy", "--n-components", "2", "--columns", "eruptions"],
     "data.npy has no header, so --columns takes 0-based indices"),
    (["fit", "header.csv", "--n-components", "2", "--delimiter", "ab"],
     "argument --delimiter: expected one character"),
    (["fit", "semicolon.csv", "--n-components", "2"], "use --delimiter ';'"),
    (["fit", "duplicate.csv", "--n-components", "1"], "names column 'a' more than once"),
    # csv refuses fields over 128 KiB: a one-line error, not csv's traceback
    (["fit", "huge_header.csv", "--n-components", "1"],
     "huge_header.csv: the first line is not valid CSV (field larger than field limit"),
    (["fit", "huge_row.csv", "--n-components", "1"],
     "huge_row.csv: the first data row is not valid CSV (field larger than field limit"),
    (["fit", "header.csv", "--n-components", "2", "--progress", "--quiet"],
     "argument --quiet: not allowed with argument --progress"),
    (["fit", "header.csv", "--select", "1..3", "--bayesian"],
     "--bayesian takes --n-components (an upper bound"),
    (["fit", "header.csv", "--n-components", "2", "--bayesian", "--covariance-type", "VEV"],
     "--bayesian fits covariance types full, tied, diag, spherical, not 'VEV'"),
    (["fit", "header.csv", "--n-components", "2", "--weight-concentration-prior", "0.1"],
     "--weight-concentration-prior needs --bayesian"),
    (["fit", "header.csv", "--n-components", "2",
      "--weight-concentration-prior-type", "dirichlet_distribution"],
     "--weight-concentration-prior-type needs --bayesian"),
    (["fit", "header.csv", "--n-components", "2", "--bayesian",
      "--weight-concentration-prior", "0"],
     "argument --weight-concentration-prior: must be a positive number, got '0'"),
    (["fit", "header.csv", "--n-components", "2", "--bayesian",
      "--weight-concentration-prior-type", "stick"],
     "argument --weight-concentration-prior-type: invalid choice: 'stick'"),
]
ERROR_CASES += [args for args, _ in OPTION_ERRORS]


@pytest.fixture(scope="module")
def error_results(tmp_path_factory, X):
    """The result of every ERROR_CASES command, run concurrently to save time."""
    directory = tmp_path_factory.mktemp("errors")
    np.savetxt(directory / "header.csv", X, delimiter=",", header=",".join(FEATURES),
               comments="")
    (directory / "garbage.csv").write_text("hello, world\nthis is, not data\n")
    (directory / "nan.csv").write_text("1.0,2.0\n3.0,nan\n5.0,6.0\n")
    (directory / "ragged.csv").write_text("1,2\n3,4,5\n")
    (directory / "empty.csv").write_text("")
    (directory / "data.txt").write_text("1,2\n3,4\n")
    (directory / "three.csv").write_text("1,2,3\n4,5,6\n7,8,9\n")
    (directory / "semicolon.csv").write_text("a;b\n1.5;2\n3;4.5\n")
    (directory / "duplicate.csv").write_text("a,a\n1,2\n3,4\n5,7\n")
    (directory / "huge_header.csv").write_text("a" * 200_000 + ",b\n1,2\n3,4\n")
    (directory / "huge_row.csv").write_text("a,b\n" + "1" * 200_000 + ",2\n3,4\n")
    np.save(directory / "data.npy", X)
    np.save(directory / "flat.npy", X[:, 0])
    np.save(directory / "inf.npy", np.array([[1.0, 2.0], [np.inf, 3.0]]))
    np.save(directory / "objects.npy", np.array([1.0, "a"], dtype=object), allow_pickle=True)
    fitted(X, n_components=2).save(directory / "m.npz")
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        results = list(pool.map(lambda args: run(directory, *args), ERROR_CASES))
    return {" ".join(args): result for args, result in zip(ERROR_CASES, results)}


@pytest.mark.parametrize("command", [" ".join(args) for args in ERROR_CASES])
def test_expected_errors_are_one_line(error_results, command):
    result = error_results[command]
    assert_one_line_error(result)
    assert result.stdout == ""


@pytest.mark.parametrize("args, words", OPTION_ERRORS,
                         ids=[" ".join(args) for args, _ in OPTION_ERRORS])
def test_data_option_errors_name_the_problem(error_results, args, words):
    assert words in error_results[" ".join(args)].stderr


def test_plot_without_matplotlib_fails_before_fitting(data_dir):
    blocker = data_dir / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    result = run(data_dir, "fit", "header.csv", "--n-components", "2", "--plot", "p.png",
                 "--output", "m.npz", env=env)
    assert_one_line_error(result)
    assert "matplotlib" in result.stderr
    assert not (data_dir / "m.npz").exists() and not (data_dir / "p.png").exists()


@pytest.mark.parametrize("columns", [[0], [0, 1, 0]], ids=["1-feature", "3-features"])
def test_plot(tmp_path, X, columns):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "data.npy", X[:, columns] + np.arange(len(columns)))
    result = run(tmp_path, "fit", "data.npy", "--n-components", "2", "--plot", "p.png")
    assert result.returncode == 0, result.stderr
    assert "Plot written to p.png" in result.stdout
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "cmd_demo", interrupted)
    assert _cli.main(["demo", "--no-plot"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "gaussmix: interrupted\n"


# ------------------------------------------------------------- progress, warnings
def run_on_terminal(cwd, *args):
    """Run the CLI with a pseudo-terminal as stderr; return (stdout, stderr text)."""
    pty = pytest.importorskip("pty")  # POSIX only
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gaussmix", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    return stdout, b"".join(chunks).decode()


def test_progress_on_a_terminal(data_dir, X):
    stdout, stderr = run_on_terminal(data_dir, "fit", "header.csv", "--n-components", "2",
                                     "--json")
    n_iter = fitted(X, n_components=2).n_iter_
    assert [line.split()[:2] for line in stderr.splitlines() if "Iteration" in line] == [
        ["Iteration", str(i)] for i in range(1, n_iter + 1)]
    assert json.loads(stdout)["n_iter_"] == n_iter  # progress kept off stdout


def test_progress_forced_on_without_a_terminal(data_dir, X):
    result = run(data_dir, "fit", "header.csv", "--n-components", "2", "--json", "--progress")
    assert result.returncode == 0
    n_iter = fitted(X, n_components=2).n_iter_
    assert [line.split()[:4] for line in result.stderr.splitlines() if "Iteration" in line] == [
        ["Iteration", str(i), "of", "100"] for i in range(1, n_iter + 1)]
    assert json.loads(result.stdout)["n_iter_"] == n_iter


def test_select_progress_counts_cells(data_dir):
    result = run(data_dir, "fit", "data.npy", "--select", "1..2", "--covariance-type", "diag",
                 "--json", "--progress")
    assert result.returncode == 0
    cells = [line for line in result.stderr.splitlines() if "cells" in line]
    assert cells and "2/2 cells" in cells[-1] and "left" in cells[-1]
    assert json.loads(result.stdout)["n_components"] in (1, 2)  # progress kept off stdout


def test_quiet_silences_progress_on_a_terminal(data_dir):
    stdout, stderr = run_on_terminal(data_dir, "fit", "header.csv", "--n-components", "2",
                                     "--json", "--quiet")
    assert stderr == ""
    assert json.loads(stdout)["n_components"] == 2


def test_convergence_warning_is_one_line(data_dir):
    args = ["fit", "header.csv", "--n-components", "3", "--max-iter", "1", "--json"]
    result = run(data_dir, *args)
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("gaussmix: warning: ") and "converge" in result.stderr
    assert json.loads(result.stdout)["converged_"] is False
    assert run(data_dir, *args, "--quiet").stderr == ""


# --------------------------------------------------------------- data, demo, misc
def test_npy_is_memory_mapped(data_dir, X):
    table = _cli.load_data(str(data_dir / "data.npy"))
    assert isinstance(table.X, np.memmap)
    assert_array_equal(table.X, X)
    assert table.names == ["x0", "x1"] and table.header is None


def test_fit_help_describes_the_data_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "comma-separated .csv" not in text
    assert "separated by commas or by --delimiter" in text
    assert "unless --columns copies the chosen columns" in text


def test_demo_and_version(tmp_path):
    demo = run(tmp_path, "demo", "--no-plot")
    assert demo.returncode == 0 and demo.stderr == ""
    assert demo.stdout.startswith("Old Faithful geyser data: 272 eruptions x 2 features\n"
                                  "  - eruptions [min]\n")
    assert "covariance [min^2]:" in demo.stdout
    three = run(tmp_path, "demo", "--no-plot", "--n-components", "3")
    assert three.returncode == 0 and "Component 2:" in three.stdout
    old_spelling = run(tmp_path, "demo", "--no-plot", "--components", "3")
    assert old_spelling.stdout == three.stdout
    assert old_spelling.stderr == ("gaussmix: warning: --components is deprecated; "
                                   "use --n-components\n")
    version = run(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("gaussmix ")
