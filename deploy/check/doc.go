// Package check holds the tests of perceptron's Kubernetes manifests (deploy/): each environment is rendered with
// kustomize, every object is decoded strictly into the official k8s.io/api types, and the objects are checked
// against each other and against the server (its configuration names, its routes, its train flags, its Dockerfile).
//
// It is a module of its own so that Kubernetes' libraries stay out of the server's go.mod. Run:
//
//	cd deploy/check && go test ./...
package check
