// Package jsontime holds Duration, a time.Duration that reads and writes JSON
// as a string such as "1.5s", for the module's JSON reports and configs.
package jsontime

import "time"

// Duration is a time.Duration that marshals to JSON as a string ("1.5s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
