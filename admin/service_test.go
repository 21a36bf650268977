package admin

import "testing"

func TestResumeFrom(t *testing.T) {
	for _, tc := range []struct {
		sent []uint64
		from uint64
		want uint64
	}{
		{nil, 0, 0}, // live only: nothing lost, and seq 1 would replay every ring
		{nil, 40, 40},
		{[]uint64{7, 9, 8}, 0, 7},
	} {
		if got := resumeFrom(tc.sent, tc.from); got != tc.want {
			t.Errorf("resumeFrom(%v, %d) = %d, want %d", tc.sent, tc.from, got, tc.want)
		}
	}
}
