package admin

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// filledStats returns a Stats whose every counter holds a distinct value.
func filledStats(t *testing.T) trace.Stats {
	t.Helper()
	var st trace.Stats
	v := reflect.ValueOf(&st).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Uint64:
			f.SetUint(uint64(100 + i))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[trace.Cause]uint64{trace.CauseGoAway: 7, trace.CauseEOF: 8}))
		default:
			t.Fatalf("Stats.%s is a %s: teach this test (and the conversions) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	return st
}

// Stats is the one home of a manager's counters: the proto, the handler's
// JSON and page, and the CLI all render it. A counter added to Stats and
// not to the proto, or lost by a conversion, fails here.
func TestStatsToProtoCarriesEveryField(t *testing.T) {
	st := filledStats(t)
	ps := statsToProto(st)
	if back := StatsFromProto(ps); !reflect.DeepEqual(back, st) {
		t.Fatalf("Stats -> proto -> Stats:\n got %+v\nwant %+v", back, st)
	}
	// Every Stats field has a proto field of the same (snake_case) name.
	fields := ps.ProtoReflect().Descriptor().Fields()
	typ := reflect.TypeOf(st)
	for i := range typ.NumField() {
		name := snakeCase(typ.Field(i).Name)
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil {
			t.Errorf("Stats.%s has no ManagerStats.%s", typ.Field(i).Name, name)
			continue
		}
		if fd.Kind() == protoreflect.Uint64Kind && ps.ProtoReflect().Get(fd).Uint() != reflect.ValueOf(st).Field(i).Uint() {
			t.Errorf("ManagerStats.%s = %d, want Stats.%s", name, ps.ProtoReflect().Get(fd).Uint(), typ.Field(i).Name)
		}
	}
	if fields.Len() != typ.NumField() {
		t.Errorf("ManagerStats has %d fields, Stats %d", fields.Len(), typ.NumField())
	}
	// The handler's JSON names are the proto's.
	b, err := json.Marshal(managerView{Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for i := range fields.Len() {
		if _, ok := m[string(fields.Get(i).Name())]; !ok {
			t.Errorf("the handler's manager JSON lacks %s: %s", fields.Get(i).Name(), b)
		}
	}
}
