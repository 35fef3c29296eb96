package api

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestScaledValue(t *testing.T) {
	tests := []struct {
		v       *corralpb.IntOrString
		total   int
		roundUp bool
		want    int
		wantErr bool
	}{
		{&corralpb.IntOrString{IntVal: 1}, 10, true, 1, false},
		{&corralpb.IntOrString{IntVal: 0}, 10, true, 0, false},
		{&corralpb.IntOrString{IntVal: 5}, 3, false, 5, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "10%"}, 10, true, 1, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "10%"}, 5, true, 1, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "10%"}, 5, false, 0, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "25%"}, 7, true, 2, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "25%"}, 7, false, 1, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "100%"}, 3, true, 3, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "0%"}, 100, true, 0, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "33%"}, 0, true, 0, false},
		{&corralpb.IntOrString{IsString: true, StrVal: "10"}, 10, true, 0, true},
		{&corralpb.IntOrString{IsString: true, StrVal: "x%"}, 10, true, 0, true},
		{nil, 10, true, 0, true},
	}
	for _, tt := range tests {
		got, err := ScaledValue(tt.v, tt.total, tt.roundUp)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ScaledValue(%v, %d, %v) = %d, %v; want %d", tt.v, tt.total, tt.roundUp, got, err, tt.want)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		milli   int64
		wantErr bool
	}{
		{"100m", 100, false},
		{"1", 1000, false},
		{"1.5", 1500, false},
		{"200Mi", 200 * 1024 * 1024 * 1000, false},
		{"1k", 1000 * 1000, false},
		{"", 0, true},
		{"lots", 0, true},
		{"1 Mi", 0, true},
	}
	for _, tt := range tests {
		q, err := ParseQuantity(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && q.MilliValue() != tt.milli) {
			t.Errorf("ParseQuantity(%q) = %v (%d), %v", tt.in, q.String(), q.MilliValue(), err)
		}
	}
}
