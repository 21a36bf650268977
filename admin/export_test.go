package admin

// SetTestHookBeforeReplay makes every WatchEvents stream call f between its
// subscription and its reading of the rings, until reset with nil. Set it
// only while no stream is open.
func SetTestHookBeforeReplay(f func()) { testHookBeforeReplay = f }
