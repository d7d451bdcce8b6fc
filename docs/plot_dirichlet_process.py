"""Draw docs/faithful_dirichlet_process.png, the README's variational example.

A Dirichlet-process mixture with 8 components on Old Faithful keeps two and
switches the others off; a Dirichlet-distribution prior with a large
concentration keeps all eight. Run: python docs/plot_dirichlet_process.py
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from gaussmix import BayesianGaussianMixture, load_faithful  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faithful_dirichlet_process.png")


def draw(ax, model, X, title):
    ax.scatter(X[:, 0], X[:, 1], s=6, color="0.6")
    for weight, mean, cov in zip(model.weights_, model.means_, model.covariances_):
        if weight < 0.01:
            continue
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for scale in (1, 2):
            ax.add_patch(Ellipse(mean, *(2 * scale * np.sqrt(values[::-1])), angle=angle,
                                 fill=False, lw=1.5, alpha=0.9 / scale, color="C0"))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("eruption duration [min]")


def main():
    X = load_faithful()
    settings = [("dirichlet_process", 0.01), ("dirichlet_distribution", 100.0)]
    models = [BayesianGaussianMixture(n_components=8, weight_concentration_prior_type=kind,
                                      weight_concentration_prior=gamma, max_iter=500,
                                      random_state=0).fit(X) for kind, gamma in settings]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5),
                             gridspec_kw={"height_ratios": [3, 1.2]})
    for column, ((kind, gamma), model) in enumerate(zip(settings, models)):
        active = int((model.weights_ >= 0.01).sum())
        draw(axes[0, column], model, X, f"{kind}, concentration {gamma:g}\n"
                                        f"{active} of 8 components kept")
        axes[1, column].bar(np.arange(8), model.weights_, color="C0")
        axes[1, column].set_ylim(0, 1)
        axes[1, column].set_xlabel("component")
    axes[0, 0].set_ylabel("waiting time [min]")
    axes[1, 0].set_ylabel("weight")
    fig.tight_layout()
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
