package jsontime_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// A Duration field reads and writes JSON as Go's duration string.
func ExampleDuration() {
	var cfg struct {
		Timeout jsontime.Duration `json:"timeout"`
	}
	if err := json.Unmarshal([]byte(`{"timeout":"1m30s"}`), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(time.Duration(cfg.Timeout).Seconds())
	out, _ := json.Marshal(cfg)
	fmt.Println(string(out))
	// Output:
	// 90
	// {"timeout":"1m30s"}
}
