package procfs

import "testing"

// TestSocketInodeIsStrict: only a whole "socket:[N]" is a socket; a target
// cut short, or with anything around the number, is not one.
func TestSocketInodeIsStrict(t *testing.T) {
	for target, want := range map[string]uint64{
		"socket:[0]":                    0,
		"socket:[40001]":                40001,
		"socket:[18446744073709551615]": ^uint64(0),
	} {
		if got, ok := SocketInode(target); !ok || got != want {
			t.Errorf("SocketInode(%q) = %d, %v; want %d, true", target, got, ok, want)
		}
	}
	for _, target := range []string{
		"socket:[40001",                 // cut short
		"socket:40001]",                 // no opening bracket
		"socket:[]",                     // no number
		"socket:[-1]",                   // not a uint64
		"socket:[18446744073709551616]", // past uint64
		"socket:[4 0]",
		"socket:[40001]x",
		"pipe:[40001]",
		"/tmp/socket:[40001]",
		"anon_inode:[eventpoll]",
		"",
	} {
		if got, ok := SocketInode(target); ok {
			t.Errorf("SocketInode(%q) = %d, true; want not a socket", target, got)
		}
	}
}

func TestSocketInodes(t *testing.T) {
	got := SocketInodes(map[int]string{3: "socket:[7]", 4: "pipe:[8]", 5: "socket:[9]", 6: "socket:[7]", 7: "/dev/null"})
	if len(got) != 2 {
		t.Fatalf("SocketInodes = %v, want inodes 7 and 9", got)
	}
	for _, ino := range []uint64{7, 9} {
		if _, ok := got[ino]; !ok {
			t.Errorf("SocketInodes = %v, want inodes 7 and 9", got)
		}
	}
}
