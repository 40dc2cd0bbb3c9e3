package litellmimport

import (
	"encoding/json"
	"slices"
	"time"
)

// differ collects the names of fields whose Keygate value differs from
// the imported one. Values are compared as the store keeps them: times at
// microsecond precision in UTC, nil and empty lists and maps alike.
type differ struct{ fields []string }

func (d *differ) add(name string, differs bool) {
	if differs {
		d.fields = append(d.fields, name)
	}
}

func (d *differ) str(name, cur, want string) { d.add(name, cur != want) }

func (d *differ) f64(name string, cur, want float64) { d.add(name, cur != want) }

func (d *differ) boolean(name string, cur, want bool) { d.add(name, cur != want) }

func (d *differ) f64p(name string, cur, want *float64) {
	d.add(name, (cur == nil) != (want == nil) || (cur != nil && *cur != *want))
}

func (d *differ) i64p(name string, cur, want *int64) {
	d.add(name, (cur == nil) != (want == nil) || (cur != nil && *cur != *want))
}

func (d *differ) strs(name string, cur, want []string) {
	d.add(name, !(len(cur) == 0 && len(want) == 0) && !slices.Equal(cur, want))
}

func (d *differ) time(name string, cur, want *time.Time) {
	if cur == nil || want == nil {
		d.add(name, (cur == nil) != (want == nil))
		return
	}
	d.add(name, !cur.UTC().Truncate(time.Microsecond).Equal(want.UTC().Truncate(time.Microsecond)))
}

// meta compares JSON objects by their canonical encoding (json.Marshal
// sorts map keys), which is also how the store keeps them.
func (d *differ) meta(name string, cur, want map[string]any) {
	if len(cur) == 0 && len(want) == 0 {
		return
	}
	a, errA := json.Marshal(cur)
	b, errB := json.Marshal(want)
	d.add(name, errA != nil || errB != nil || string(a) != string(b))
}
