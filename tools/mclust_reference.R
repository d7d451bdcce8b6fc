# Reference log-likelihoods of R's mclust on Old Faithful, for tests/test_selection.py.
# Run: Rscript tools/mclust_reference.R > tests/data/mclust_faithful_loglik.csv
# (Debian/Ubuntu: apt install r-cran-mclust.) Each cell is mclust's own fit:
# hierarchical-agglomeration initialisation, then EM, default tolerances.
suppressMessages(library(mclust))
bic <- mclustBIC(faithful, G = 1:9, verbose = FALSE)
models <- colnames(bic)
n <- nrow(faithful); d <- ncol(faithful)
cat("n_components,model,loglik,bic,n_parameters\n")
for (g in 1:9) for (m in models) {
  b <- bic[g, m]
  if (is.na(b)) next
  p <- nMclustParams(m, d, g)
  cat(sprintf("%d,%s,%.6f,%.6f,%d\n", g, m, (b + p * log(n)) / 2, b, p))
}
