package soak

import "github.com/leakproof/leakproof/testbackend"

// StallFrozenBackendForever makes the soaks that follow start the frozen
// backend as it used to be: holding every connection, unread, until
// shutdown (testbackend.StallForever). It returns the function that
// restores the real one.
func StallFrozenBackendForever() (restore func()) {
	saved := frozenOptions
	frozenOptions = []testbackend.Option{testbackend.Frozen(), testbackend.StallForever()}
	return func() { frozenOptions = saved }
}
