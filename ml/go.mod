module github.com/flywheel-ml/flywheel/ml

go 1.26.0
