package main

import (
	"context"
	"testing"
	"time"
)

// pastDeadline is a context whose deadline has passed but whose timer has
// not yet marked it done: the moment grpc already reports a stream as
// DeadlineExceeded. A fake, since the window cannot be provoked on demand.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestEndedCountsAPassedDeadlineBeforeItsTimer(t *testing.T) {
	if ended(context.Background()) {
		t.Error("a live context without a deadline counts as ended")
	}
	future, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if ended(future) {
		t.Error("a context an hour from its deadline counts as ended")
	}
	if !ended(pastDeadline{context.Background()}) {
		t.Error("a context past its deadline, its timer not yet fired, does not count as ended: the watch would report a deadline the caller set as an error")
	}
	cancel()
	if !ended(future) {
		t.Error("a cancelled context does not count as ended")
	}
}
