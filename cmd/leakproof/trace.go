package main

import (
	"fmt"
	"io"
)

func traceMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "leakproof trace: not available in this build yet")
	return 2
}
