package jsontime

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// subchannel is a JSON document with a Duration field.
type subchannel struct {
	Age Duration `json:"age"`
}

func TestDurationMarshalsAsAString(t *testing.T) {
	b, err := json.Marshal(subchannel{Age: Duration(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"age":"1.5s"`) {
		t.Fatalf("marshalled %s", b)
	}
	var back subchannel
	if err := json.Unmarshal(b, &back); err != nil || back.Age != Duration(1500*time.Millisecond) {
		t.Fatalf("round trip: %v, %v", back.Age, err)
	}
	if err := json.Unmarshal([]byte(`{"age":"soon"}`), &back); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration: err = %v", err)
	}
}
