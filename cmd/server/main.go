// Command server is perceptron: it serves predictions from a multilayer perceptron over HTTP, trains new models
// (`server train`) and evaluates them (`server eval`). See README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

// version is stamped at build time (go build -ldflags "-X main.version=..."); the Dockerfile does.
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
