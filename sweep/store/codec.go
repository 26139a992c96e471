package store

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// timeLayout is RFC 3339 in UTC with a fixed-width fraction, so stored
// timestamps sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// metricValue is a float64 whose JSON form survives NaN and ±Inf (a diverged
// run is still a result worth keeping): those are written as the strings
// "NaN", "+Inf", "-Inf".
type metricValue float64

func (v metricValue) MarshalJSON() ([]byte, error) {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(f)
}

func (v *metricValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("metric value %s: want a number, \"NaN\", \"+Inf\" or \"-Inf\"", b)
		}
		*v = metricValue(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("metric value %s: %w", b, err)
	}
	*v = metricValue(f)
	return nil
}

func toMetricValues(m map[string]float64) map[string]metricValue {
	if m == nil {
		return nil
	}
	out := make(map[string]metricValue, len(m))
	for k, v := range m {
		out[k] = metricValue(v)
	}
	return out
}

func fromMetricValues(m map[string]metricValue) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// encodeMap stores a map as JSON text; an empty map is stored as "".
func encodeMap[V any](field string, m map[string]V) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", field, err)
	}
	return string(b), nil
}

func decodeMap[V any](field, s string) (map[string]V, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]V
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", field, err)
	}
	return m, nil
}

func encodeMetrics(m map[string]float64) (string, error) {
	return encodeMap("metrics", toMetricValues(m))
}

func decodeMetrics(s string) (map[string]float64, error) {
	m, err := decodeMap[metricValue]("metrics", s)
	return fromMetricValues(m), err
}

func encodeEnv(env map[string]string) (string, error) { return encodeMap("env", env) }

func decodeEnv(s string) (map[string]string, error) { return decodeMap[string]("env", s) }

// encodeRaw stores a JSON document as text, rejecting invalid JSON early
// rather than when the report reads it.
func encodeRaw(field string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	if !json.Valid(raw) {
		return "", fmt.Errorf("%s is not valid JSON", field)
	}
	return string(raw), nil
}

func decodeRaw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
