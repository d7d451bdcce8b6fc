# Reference fits of R's mclust, for tests/test_selection.py and benchmarks/bench_select.py.
# Run: Rscript tools/mclust_reference.R faithful > tests/data/mclust_faithful_loglik.csv
#      (also diabetes, iris; or a CSV file with a header row)
#      Rscript tools/mclust_reference.R --data iris > tests/data/iris.csv   (the data set)
# (Debian/Ubuntu: apt install r-cran-mclust.) Each cell is mclust's own fit:
# hierarchical-agglomeration initialisation, then EM, default tolerances.
# With --time, prints only the seconds mclustBIC(X, G = 1:9) took.
# With --hclass, prints the partitions mclustBIC starts from (hcVVV on the "SVD"-transformed
# data, cut at 1-9 clusters), one column per number of clusters:
#      Rscript tools/mclust_reference.R --hclass faithful > tests/data/mclust_faithful_hclass.csv
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
name <- args[length(args)]
X <- switch(name, faithful = faithful, diabetes = diabetes[, -1], iris = iris[, 1:4],
            read.csv(name))
if ("--data" %in% args) {
  write.csv(X, stdout(), row.names = FALSE)
  quit(save = "no")
}
if ("--hclass" %in% args) {
  classes <- hclass(hc(X, modelName = mclust.options("hcModelName"),
                       use = mclust.options("hcUse")), 1:9)
  write.csv(classes, stdout(), row.names = FALSE)
  quit(save = "no")
}
seconds <- system.time(bic <- mclustBIC(X, G = 1:9, verbose = FALSE))[["elapsed"]]
if ("--time" %in% args) {
  cat(seconds, "\n")
  quit(save = "no")
}
models <- colnames(bic)
n <- nrow(X); d <- ncol(X)
cat("n_components,model,loglik,bic,n_parameters\n")
for (g in 1:9) for (m in models) {
  b <- bic[g, m]
  if (is.na(b)) next
  p <- nMclustParams(m, d, g)
  cat(sprintf("%d,%s,%.6f,%.6f,%d\n", g, m, (b + p * log(n)) / 2, b, p))
}
