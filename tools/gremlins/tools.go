//go:build tools

// Package gremlins pins go-gremlins, the mutation tester that
// scripts/mutation.sh builds into .cache/bin. It is a module of its own, apart
// from ../go.mod, so that gremlins builds with the dependency versions it was
// released and tested with, and buf's pins do not move when it does.
package gremlins

import (
	_ "github.com/go-gremlins/gremlins/cmd/gremlins"
)
