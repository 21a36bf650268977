package main

import (
	"fmt"
	"io"
)

func soakMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "leakproof soak: not available in this build yet")
	return 2
}
