package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/proxy"
	"sleeper/pkg/webhook"
)

// config is every flag sleeper reads (README, "Flags"). Each flag can
// also be set by the environment variable SLEEPER_<NAME> (upper case, '-' → '_');
// a flag on the command line wins over the environment.
type config struct {
	Addr      string
	AdminAddr string
	// Engines are the Docker engines, named, from --docker-host (else
	// DOCKER_HOST, else the local socket) and --docker-host-address.
	Engines []engineHost
	// Swarm says which engines' Swarm services are managed (--swarm).
	Swarm              swarmSetting
	LabelPrefix        string
	Domain             string
	DefaultIdleTimeout time.Duration
	MaxHeld            int
	LogLevel           string
	LogFormat          string
	// AdminToken is the bearer token of the mutating admin API; empty turns
	// that API off. It comes from --admin-token or, read by loadSecrets,
	// from the file --admin-token-file names (Docker secrets).
	AdminToken     string
	AdminTokenFile string
	// Proxmox: without a URL, stub containers are a label error.
	ProxmoxURL         string
	ProxmoxTokenID     string
	ProxmoxSecret      string
	ProxmoxSecretFile  string
	ProxmoxCAFile      string
	ProxmoxFingerprint string
	ProxmoxInsecureTLS bool
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept.
	TrustedProxies []netip.Prefix
	// HostsFrom are the foreign labels read for hosts when a container has
	// no hosts label (labels.SourceTraefik, labels.SourceCaddy).
	HostsFrom []string
	// IgnoreAgents are the lower-case User-Agent substrings whose requests
	// neither wake nor count as activity (--ignore-agents).
	IgnoreAgents []string
	// WebhookURLs receive a JSON POST on woke, slept, wake_failed and
	// config_error; WebhookSecret signs them (HMAC-SHA256).
	WebhookURLs   []string
	WebhookSecret string
	// Timezone is where keep-warm windows (sleeper.awake_during) are read:
	// --timezone, else the process's TZ (time.Local).
	Timezone *time.Location
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "SLEEPER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags over environment over defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sleeper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var hosts engineList
	addrs := addressList{}
	c.engineFlags(fs, &hosts, addrs)
	c.proxyFlags(fs)
	urls := c.webhookFlags(fs)
	c.adminFlags(fs)
	c.proxmoxFlags(fs)

	if err := applyEnv(fs, getenv); err != nil {
		return c, err
	}
	if len(hosts.hosts) == 0 && getenv("DOCKER_HOST") != "" {
		hosts.hosts = []engineHost{{Host: getenv("DOCKER_HOST")}}
	}
	hosts.fromEnv = true
	urls.parsingFlags = true
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	engines, err := resolveEngines(hosts.hosts, addrs)
	if err != nil {
		return c, err
	}
	c.Engines = engines
	if err := c.Swarm.check(engines); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

// applyEnv sets every flag from its environment variable, when set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// engineFlags are where the engines are and what sleeper reads from them.
func (c *config) engineFlags(fs *flag.FlagSet, hosts *engineList, addrs addressList) {
	fs.Var(hosts, "docker-host", "Docker engine address, repeatable as name=URL for several engines (env: comma list; default: DOCKER_HOST, else the local socket)")
	fs.Var(addrs, "docker-host-address", "name=IP: where an engine's published ports are dialled (default: the host of a tcp:// URL; repeatable)")
	fs.Var(&c.Swarm, "swarm", "manage Swarm services (deploy.labels): auto (each engine that is a swarm manager), true, false, or a comma list of engine names")
	fs.StringVar(&c.LabelPrefix, "label-prefix", "sleeper", "prefix of the labels sleeper reads")
	fs.StringVar(&c.Domain, "domain", "", "with it, a container without a hosts label answers <name>.<domain>")
	fs.DurationVar(&c.DefaultIdleTimeout, "default-idle-timeout", 15*time.Minute, "idle timeout of containers without the idle_timeout label")
	c.HostsFrom = []string{labels.SourceTraefik, labels.SourceCaddy}
	fs.Func("hosts-from", "without a hosts label, take a container's hosts from these labels: traefik (router rules), caddy (caddy-docker-proxy); empty turns it off (default traefik,caddy)", func(v string) error {
		from, err := labels.ParseHostsFrom(v)
		c.HostsFrom = from
		return err
	})
	c.Timezone = time.Local
	fs.Func("timezone", "IANA time zone of keep-warm windows, e.g. Europe/Paris (default: the process's TZ, else UTC)", func(v string) error {
		loc, err := time.LoadLocation(v)
		if err != nil {
			return fmt.Errorf("not an IANA time zone name (like Europe/Paris): %w", err)
		}
		c.Timezone = loc
		return nil
	})
}

// proxyFlags shape the front doors.
func (c *config) proxyFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", ":8080", "main HTTP listener, routes by Host")
	fs.IntVar(&c.MaxHeld, "max-held", 1000, "held requests per container before 503")
	fs.Func("trusted-proxies", "comma-separated CIDRs or IPs of front proxies whose X-Forwarded-For is appended to and X-Forwarded-Proto/Host kept (default none: replaced)", func(v string) error {
		p, err := proxy.ParseTrustedProxies(v)
		c.TrustedProxies = p // the last setting wins: a flag over the environment
		return err
	})
	c.IgnoreAgents, _ = labels.ParseAgents(proxy.DefaultIgnoreAgents())
	fs.Func("ignore-agents", "comma-separated User-Agent substrings (any case) whose requests neither wake a container nor count as activity; empty or none turns it off (default: common uptime monitors: "+proxy.DefaultIgnoreAgents()+")", func(v string) error {
		if strings.EqualFold(strings.TrimSpace(v), "none") {
			// An empty environment variable counts as unset: none is how
			// a compose file turns the list off.
			c.IgnoreAgents = nil
			return nil
		}
		agents, err := labels.ParseAgents(v)
		c.IgnoreAgents = agents
		return err
	})
}

// webhookURLs tells the repeatable --webhook-url whether the command line
// is being read: URLs given there replace the environment's, as for every
// flag, while several on either side add up.
type webhookURLs struct{ parsingFlags, fromFlags bool }

func (c *config) webhookFlags(fs *flag.FlagSet) *webhookURLs {
	u := &webhookURLs{}
	fs.Func("webhook-url", "POST a JSON event (woke, slept, wake_failed, config_error) to this URL; repeatable", func(v string) error {
		if u.parsingFlags && !u.fromFlags {
			c.WebhookURLs, u.fromFlags = nil, true
		}
		for item := range strings.SplitSeq(v, ",") {
			parsed, err := webhook.ParseURL(strings.TrimSpace(item))
			if err != nil {
				return err
			}
			c.WebhookURLs = append(c.WebhookURLs, parsed)
		}
		return nil
	})
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "sign webhook bodies with HMAC-SHA256 in X-Sleeper-Signature (prefer the env var: flags show in ps)")
	return u
}

// adminFlags shape the admin listener and the logs.
func (c *config) adminFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.AdminAddr, "admin-addr", ":9090", "admin listener: /healthz, metrics, API")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token of the admin API's wake and sleep; without it they are off (prefer the env var or --admin-token-file: flags show in ps)")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "", "read --admin-token from this file, trimmed (for Docker secrets)")
}

// proxmoxFlags reach a Proxmox VE cluster.
func (c *config) proxmoxFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ProxmoxURL, "proxmox-url", "", "Proxmox VE API, https://host:8006; enables LXC and VM stub containers")
	fs.StringVar(&c.ProxmoxTokenID, "proxmox-token-id", "", "PVE API token id, user@realm!tokenid")
	fs.StringVar(&c.ProxmoxSecret, "proxmox-secret", "", "PVE API token secret (prefer the env var or --proxmox-secret-file)")
	fs.StringVar(&c.ProxmoxSecretFile, "proxmox-secret-file", "", "read --proxmox-secret from this file, trimmed")
	fs.StringVar(&c.ProxmoxCAFile, "proxmox-ca-file", "", "PEM CA to verify PVE's certificate (default: system roots)")
	fs.StringVar(&c.ProxmoxFingerprint, "proxmox-fingerprint", "", "pin the SHA-256 fingerprint of PVE's certificate")
	fs.BoolVar(&c.ProxmoxInsecureTLS, "proxmox-insecure-tls", false, "do not verify PVE's certificate (logged as a warning)")
}

func (c config) validate() error {
	var errs []error
	if c.DefaultIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--default-idle-timeout=%s: must not be negative", c.DefaultIdleTimeout))
	}
	if c.MaxHeld < 1 {
		errs = append(errs, fmt.Errorf("--max-held=%d: must be at least 1", c.MaxHeld))
	}
	if c.LabelPrefix == "" || strings.ContainsAny(c.LabelPrefix, " =,") {
		errs = append(errs, fmt.Errorf("--label-prefix=%q: must be a non-empty label key", c.LabelPrefix))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format=%q: must be text or json", c.LogFormat))
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		// Two sources for one secret: refuse rather than guess which wins.
		errs = append(errs, errors.New("--admin-token and --admin-token-file: set only one"))
	}
	if c.ProxmoxSecret != "" && c.ProxmoxSecretFile != "" {
		errs = append(errs, errors.New("--proxmox-secret and --proxmox-secret-file: set only one"))
	}
	if c.ProxmoxURL == "" && (c.ProxmoxTokenID != "" || c.ProxmoxSecret != "" || c.ProxmoxSecretFile != "") {
		errs = append(errs, errors.New("--proxmox-token-id/--proxmox-secret without --proxmox-url"))
	}
	if c.ProxmoxURL != "" && c.ProxmoxTokenID == "" {
		errs = append(errs, fmt.Errorf("--proxmox-url=%s: needs --proxmox-token-id", c.ProxmoxURL))
	}
	if c.ProxmoxURL != "" && c.ProxmoxSecret == "" && c.ProxmoxSecretFile == "" {
		errs = append(errs, fmt.Errorf("--proxmox-url=%s: needs --proxmox-secret or --proxmox-secret-file", c.ProxmoxURL))
	}
	return errors.Join(errs...)
}

// loadSecrets reads the secrets that come from files. It is separate from
// parseConfig so that `sleeper healthcheck`, which shares the flags, never
// needs to read them.
func (c *config) loadSecrets() error {
	if err := readSecret("--admin-token-file", c.AdminTokenFile, &c.AdminToken); err != nil {
		return err
	}
	return readSecret("--proxmox-secret-file", c.ProxmoxSecretFile, &c.ProxmoxSecret)
}

// readSecret sets *dst from the trimmed contents of file, when file is set.
func readSecret(flagName, file string, dst *string) error {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	*dst = strings.TrimSpace(string(b))
	if *dst == "" {
		return fmt.Errorf("%s=%s: the file is empty", flagName, file)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level=%q: must be debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// version is set at build time with -ldflags "-X main.version=…"; it is the
// only package variable, and only the linker writes it.
var version = ""

// versionString is the version to report: the linker's, else the module's.
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "unknown"
}
