package main

import (
	"reflect"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	three := 3
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{
			name: "defaults",
			env:  map[string]string{"APP_NAME": "a"},
			want: config{Name: "a", HTTPAddr: ":8080", TCPEchoAddr: ":9000", UDPEchoAddr: ":9001"},
		},
		{
			name: "everything set",
			env: map[string]string{
				"APP_NAME": "b", "HTTP_ADDR": ":1", "TCP_ECHO_ADDR": ":2", "UDP_ECHO_ADDR": ":3",
				"START_DELAY": "1.5s", "EXIT_AT_START": "3", "EXIT_AFTER": "2s", "UNHEALTHY_FILE": "/x",
				"HEALTHY_AFTER": "1s", "ALLOWED_HOSTS": "App.example.com, localhost",
			},
			want: config{
				Name: "b", HTTPAddr: ":1", TCPEchoAddr: ":2", UDPEchoAddr: ":3",
				StartDelay: 1500 * time.Millisecond, ExitAtStart: &three, ExitAfter: 2 * time.Second,
				UnhealthyFile: "/x", HealthyAfter: time.Second, AllowedHosts: []string{"app.example.com", "localhost"},
			},
		},
		{name: "bad delay", env: map[string]string{"START_DELAY": "soon"}, wantErr: true},
		{name: "negative delay", env: map[string]string{"START_DELAY": "-1s"}, wantErr: true},
		{name: "bad exit after", env: map[string]string{"EXIT_AFTER": "5"}, wantErr: true},
		{name: "bad healthy after", env: map[string]string{"HEALTHY_AFTER": "later"}, wantErr: true},
		{name: "bad exit code", env: map[string]string{"EXIT_AT_START": "x"}, wantErr: true},
		{name: "exit code out of range", env: map[string]string{"EXIT_AT_START": "256"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := configFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				if err == nil {
					t.Fatalf("configFromEnv: want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("configFromEnv: %v", err)
			}
			if (got.ExitAtStart == nil) != (tt.want.ExitAtStart == nil) ||
				(got.ExitAtStart != nil && *got.ExitAtStart != *tt.want.ExitAtStart) {
				t.Errorf("ExitAtStart = %v, want %v", got.ExitAtStart, tt.want.ExitAtStart)
			}
			got.ExitAtStart, tt.want.ExitAtStart = nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("configFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConfigFromEnvDefaultsNameToHostname(t *testing.T) {
	t.Parallel()
	got, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatalf("configFromEnv: %v", err)
	}
	if got.Name == "" {
		t.Error("Name is empty; want the hostname")
	}
}
