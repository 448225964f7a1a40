// Command server is perceptron: it serves predictions from a multilayer perceptron over HTTP, trains new models
// (`server train`) and evaluates them (`server eval`). See README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
