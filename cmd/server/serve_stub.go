package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// serve is not built yet; it prints the usage.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fmt.Fprint(stderr, usage)
	return errors.New("serving is not built yet: use server train or server eval")
}
