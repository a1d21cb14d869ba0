// Package ml is the root of Flywheel's pure machine-learning module, shared by the trainer,
// serving and the monitor: datasets, training algorithms, metrics, reference profiles and
// the model artifact format. Nothing under ml/ talks to Kafka, Redis, NATS or ClickHouse;
// adapters in the services call into it.
//
//	dataset   column-major frames with missing values and categorical codes; CSV reading
//	linear    logistic and ridge regression with the standardisation kept in the model
//	gbdt      histogram-based gradient-boosted trees (binary and regression)
//	metrics   AUC-ROC, PR-AUC, log loss, Brier, threshold metrics; RMSE, MAE, R²
//	profile   the reference profile the monitor compares production with
//	artifact  the versioned model artifact: signature, model, metrics, profile
package ml
