module github.com/perceptron-dev/perceptron

go 1.26.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	go.uber.org/zap v1.28.0
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
	gonum.org/v1/gonum v0.17.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/tools v0.30.0 // indirect
)
