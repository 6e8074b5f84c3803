package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestSwarmFlag: --swarm's values, from the flag and SLEEPER_SWARM, and the
// mode each engine gets.
func TestSwarmFlag(t *testing.T) {
	t.Parallel()
	hosts := []string{"--docker-host", "local=unix:///a.sock", "--docker-host", "nas=tcp://192.0.2.7:2375"}
	for _, tt := range []struct {
		name      string
		args      []string
		env       map[string]string
		local     swarmMode
		nas       swarmMode
		wantError string
	}{
		{name: "default auto", local: swarmAuto, nas: swarmAuto},
		{name: "bare flag", args: []string{"--swarm"}, local: swarmOn, nas: swarmOn},
		{name: "false", args: []string{"--swarm=false"}, local: swarmOff, nas: swarmOff},
		{name: "env off", env: map[string]string{"SLEEPER_SWARM": "off"}, local: swarmOff, nas: swarmOff},
		{name: "flag over env", args: []string{"--swarm=auto"}, env: map[string]string{"SLEEPER_SWARM": "false"}, local: swarmAuto, nas: swarmAuto},
		{name: "list", args: []string{"--swarm=nas"}, local: swarmOff, nas: swarmOn},
		{name: "unknown engine", args: []string{"--swarm=nope"}, wantError: "--swarm nope: no engine of that name"},
		{name: "bad value", args: []string{"--swarm=Yes Please"}, wantError: "want auto, true, false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(append(append([]string{}, hosts...), tt.args...), env(tt.env), io.Discard)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Swarm.modeFor("local"); got != tt.local {
				t.Errorf("local: mode %d, want %d", got, tt.local)
			}
			if got := c.Swarm.modeFor("nas"); got != tt.nas {
				t.Errorf("nas: mode %d, want %d", got, tt.nas)
			}
		})
	}
}

// TestSwarmEngineNames: services are "swarm/NAME" beside one Docker engine,
// "ENGINE-swarm/NAME" beside several, never the containers' engine name; an
// engine named like another's services is refused.
func TestSwarmEngineNames(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	one, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := newSwarmEngines(one, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	if len(ss) != 1 || ss[0].key != "swarm" || ss[0].engine != "local" || !ss[0].self {
		t.Fatalf("one engine: %+v, want the services engine \"swarm\" of local", ss)
	}
	m := ss.addTo(nil)
	if e, ok := m["swarm"]; !ok || e.Provider != "swarm" || len(m) != 1 {
		t.Fatalf("registry engines = %+v", m)
	}

	two, err := parseConfig([]string{"--docker-host", "local=unix:///a.sock,nas=tcp://192.0.2.7:2375", "--swarm=nas"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ss, err = newSwarmEngines(two, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	if len(ss) != 1 || ss[0].key != "nas-swarm" || ss[0].self {
		t.Fatalf("two engines, --swarm=nas: %+v, want only nas-swarm", ss)
	}

	clash, err := parseConfig([]string{"--docker-host", "local=unix:///a.sock,local-swarm=unix:///b.sock"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSwarmEngines(clash, log); err == nil || !strings.Contains(err.Error(), "local-swarm") {
		t.Fatalf("engine named local-swarm: err = %v, want a refusal naming it", err)
	}
	clash.Swarm = swarmSetting{mode: swarmOff}
	if ss, err := newSwarmEngines(clash, log); err != nil || len(ss) != 0 {
		t.Fatalf("--swarm=false: %v, %d services engines; want none and no error", err, len(ss))
	}
}

func TestClusterClaims(t *testing.T) {
	t.Parallel()
	c := &clusterClaims{by: map[string]string{}}
	if !c.claim("c1", "a-swarm") || !c.claim("c1", "a-swarm") || c.claim("c1", "b-swarm") || !c.claim("c2", "b-swarm") {
		t.Fatal("a cluster goes to its first claimant only")
	}
	if c.owner("c1") != "a-swarm" {
		t.Fatalf("owner = %q", c.owner("c1"))
	}
}
