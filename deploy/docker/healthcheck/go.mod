module github.com/flywheel-ml/flywheel/deploy/docker/healthcheck

go 1.26.0
