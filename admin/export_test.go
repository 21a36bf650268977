package admin

// SetTestHookBeforeReplay makes every WatchEvents stream call f between its
// subscription and its reading of the rings, until reset with nil.
func SetTestHookBeforeReplay(f func()) {
	if f == nil {
		testHookBeforeReplay.Store(nil)
		return
	}
	testHookBeforeReplay.Store(&f)
}
