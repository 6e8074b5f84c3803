package healthcmd

import (
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	env := []string{"HEALTHCHECK_URL=http://localhost:8096/health", "PORT=3000", "EMPTY=", "SPACED=a b"}
	tests := []struct {
		name   string
		test   []string
		url    string // "" means not a URL test
		rule   Rule
		method string
		follow bool
		host   string
	}{
		{"curl -f exec form", []string{"CMD", "curl", "-f", "http://localhost:8096/health"}, "http://localhost:8096/health", Below400, "GET", false, "localhost:8096"},
		{"curl without -f", []string{"CMD", "curl", "http://localhost/"}, "http://localhost/", AnyAnswer, "GET", false, "localhost"},
		{"curl --fail path", []string{"CMD", "/usr/bin/curl", "--fail", "http://127.0.0.1:80/x?y=1"}, "http://127.0.0.1:80/x?y=1", Below400, "GET", false, "127.0.0.1:80"},
		{"curl cluster -fsSL", []string{"CMD-SHELL", "curl -fsSL http://localhost:8080/ || exit 1"}, "http://localhost:8080/", Below400, "GET", true, "localhost:8080"},
		{"curl -so arg in cluster", []string{"CMD-SHELL", "curl -fso /dev/null -m5 http://localhost/"}, "http://localhost/", Below400, "GET", false, "localhost"},
		{"curl -I is HEAD", []string{"CMD", "curl", "-I", "-f", "http://localhost/"}, "http://localhost/", Below400, "HEAD", false, "localhost"},
		{"curl Host header", []string{"CMD", "curl", "-f", "-H", "Host: app.example.com", "http://localhost/"}, "http://localhost/", Below400, "GET", false, "app.example.com"},
		{"curl bare host:port", []string{"CMD", "curl", "-f", "localhost:8080/health"}, "http://localhost:8080/health", Below400, "GET", false, "localhost:8080"},
		{"jellyfin", []string{"CMD-SHELL", `curl -Lk "${HEALTHCHECK_URL}" || exit 1`}, "http://localhost:8096/health", AnyAnswer, "GET", true, "localhost:8096"},
		{"$VAR in a word", []string{"CMD-SHELL", "curl -f http://localhost:$PORT/health"}, "http://localhost:3000/health", Below400, "GET", false, "localhost:3000"},
		{"${VAR:-default}", []string{"CMD-SHELL", "curl -f http://localhost:${NOPE:-81}/"}, "http://localhost:81/", Below400, "GET", false, "localhost:81"},
		{"${VAR:-default} empty", []string{"CMD-SHELL", "curl -f http://localhost:${EMPTY:-82}/"}, "http://localhost:82/", Below400, "GET", false, "localhost:82"},
		{"redirections", []string{"CMD-SHELL", "curl -f http://localhost/ >/dev/null 2>&1 || exit 1"}, "http://localhost/", Below400, "GET", false, "localhost"},
		{"&> redirection", []string{"CMD-SHELL", "curl -f http://localhost/ &>/dev/null"}, "http://localhost/", Below400, "GET", false, "localhost"},
		{"trailing ;", []string{"CMD-SHELL", "curl -f http://localhost/;"}, "http://localhost/", Below400, "GET", false, "localhost"},
		{"|| false", []string{"CMD-SHELL", "curl -f http://localhost/ || false"}, "http://localhost/", Below400, "GET", false, "localhost"},
		{"wget spider", []string{"CMD-SHELL", "wget --no-verbose --tries=1 --spider http://localhost:3001 || exit 1"}, "http://localhost:3001", Success2xx3xx, "HEAD", true, "localhost:3001"},
		{"wget -qO-", []string{"CMD", "wget", "-qO-", "http://127.0.0.1/"}, "http://127.0.0.1/", Success2xx3xx, "GET", true, "127.0.0.1"},
		{"wget -q -O -", []string{"CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/"}, "http://127.0.0.1/", Success2xx3xx, "GET", true, "127.0.0.1"},
		{"wget max-redirect 0", []string{"CMD", "wget", "--max-redirect=0", "http://127.0.0.1/"}, "http://127.0.0.1/", Success2xx3xx, "GET", false, "127.0.0.1"},
		{"busybox wget", []string{"CMD", "busybox", "wget", "-q", "--spider", "http://localhost/"}, "http://localhost/", Success2xx3xx, "HEAD", true, "localhost"},
		{"other program", []string{"CMD", "/app", "-healthcheck", "http://localhost:8080/health"}, "http://localhost:8080/health", Success2xx3xx, "GET", false, "localhost:8080"},
		{"https", []string{"CMD", "curl", "-kf", "https://localhost:8443/"}, "https://localhost:8443/", Below400, "GET", false, "localhost:8443"},
		{"single quotes keep $", []string{"CMD-SHELL", `curl -f 'http://localhost/$x'`}, "http://localhost/$x", Below400, "GET", false, "localhost"},

		// Not URL tests: fall back to exec or the engine's event.
		{"no URL", []string{"CMD", "/app", "-healthcheck"}, "", 0, "", false, ""},
		{"script", []string{"CMD", "/healthcheck.sh"}, "", 0, "", false, ""},
		{"pg_isready", []string{"CMD-SHELL", "pg_isready -U postgres"}, "", 0, "", false, ""},
		{"NONE", []string{"NONE"}, "", 0, "", false, ""},
		{"empty", nil, "", 0, "", false, ""},
		{"exec form has no expansion", []string{"CMD", "curl", "-f", "$HEALTHCHECK_URL"}, "", 0, "", false, ""},
		{"pipe", []string{"CMD-SHELL", "curl -s http://localhost/ | grep ok"}, "", 0, "", false, ""},
		{"and", []string{"CMD-SHELL", "curl -f http://localhost/ && test -f /ok"}, "", 0, "", false, ""},
		{"sequence", []string{"CMD-SHELL", "test -f /ok; curl -f http://localhost/"}, "", 0, "", false, ""},
		{"|| exit 0 always passes", []string{"CMD-SHELL", "curl -f http://localhost/ || exit 0"}, "", 0, "", false, ""},
		{"|| true", []string{"CMD-SHELL", "curl -f http://localhost/ || true"}, "", 0, "", false, ""},
		{"command substitution", []string{"CMD-SHELL", "curl -f http://$(hostname)/"}, "", 0, "", false, ""},
		{"backticks", []string{"CMD-SHELL", "curl -f http://`hostname`/"}, "", 0, "", false, ""},
		{"POST", []string{"CMD", "curl", "-f", "-d", "x", "http://localhost/"}, "", 0, "", false, ""},
		{"-X POST", []string{"CMD", "curl", "-X", "POST", "http://localhost/"}, "", 0, "", false, ""},
		{"proxy", []string{"CMD", "curl", "-x", "http://proxy:3128", "http://localhost/"}, "", 0, "", false, ""},
		{"unknown flag", []string{"CMD", "curl", "--unix-socket", "/run/x.sock", "http://localhost/"}, "", 0, "", false, ""},
		{"curl --opt=value", []string{"CMD", "curl", "--max-time=5", "http://localhost/"}, "", 0, "", false, ""},
		{"two URLs", []string{"CMD", "curl", "http://localhost/a", "http://localhost/b"}, "", 0, "", false, ""},
		{"ftp", []string{"CMD", "curl", "ftp://localhost/"}, "", 0, "", false, ""},
		{"unset var gives no URL", []string{"CMD-SHELL", "curl -f $NOPE"}, "", 0, "", false, ""},
		{"unquoted value with spaces", []string{"CMD-SHELL", "curl -f $SPACED"}, "", 0, "", false, ""},
		{"special parameter", []string{"CMD-SHELL", "curl -f http://localhost:$1/"}, "", 0, "", false, ""},
		{"${X:?}", []string{"CMD-SHELL", "curl -f http://localhost:${PORT:?}/"}, "", 0, "", false, ""},
		{"unterminated quote", []string{"CMD-SHELL", `curl -f "http://localhost/`}, "", 0, "", false, ""},
		{"here-doc", []string{"CMD-SHELL", "curl -f http://localhost/ <<EOF"}, "", 0, "", false, ""},
		{"subshell", []string{"CMD-SHELL", "(curl -f http://localhost/)"}, "", 0, "", false, ""},
		{"CMD-SHELL two words", []string{"CMD-SHELL", "a", "b"}, "", 0, "", false, ""},
		{"wget stdin", []string{"CMD", "wget", "-"}, "", 0, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, ok := Parse(tt.test, env)
			if tt.url == "" {
				if ok {
					t.Fatalf("Parse(%q) = %+v, want not a URL test", tt.test, c)
				}
				return
			}
			if !ok {
				t.Fatalf("Parse(%q) not understood, want %s", tt.test, tt.url)
			}
			if c.URL.String() != tt.url || c.Rule != tt.rule || c.Method != tt.method || c.Follow != tt.follow || c.Host != tt.host {
				t.Fatalf("Parse(%q) = url %s rule %v method %s follow %v host %s; want %s %v %s %v %s",
					tt.test, c.URL, c.Rule, c.Method, c.Follow, c.Host, tt.url, tt.rule, tt.method, tt.follow, tt.host)
			}
		})
	}
}

func TestCheckOK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule Rule
		ok   []int
		bad  []int
	}{
		{AnyAnswer, []int{200, 302, 404, 500, 503}, []int{0}},
		{Below400, []int{200, 204, 301, 399}, []int{400, 404, 500, 503}},
		{Success2xx3xx, []int{200, 299, 302, 399}, []int{101, 400, 500}},
	}
	for _, tt := range tests {
		c := Check{Rule: tt.rule}
		for _, s := range tt.ok {
			if !c.OK(s) {
				t.Errorf("%v: %d should pass", tt.rule, s)
			}
		}
		for _, s := range tt.bad {
			if c.OK(s) {
				t.Errorf("%v: %d should fail", tt.rule, s)
			}
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	c, ok := Parse([]string{"CMD", "curl", "-f", "-H", "Authorization: Bearer x", "-A", "probe/1", "http://localhost/"}, nil)
	if !ok {
		t.Fatal("not understood")
	}
	if c.Header.Get("Authorization") != "Bearer x" || c.Header.Get("User-Agent") != "probe/1" {
		t.Fatalf("headers %v", c.Header)
	}
	if _, ok := Parse([]string{"CMD", "curl", "-H", "no colon", "http://localhost/"}, nil); ok {
		t.Fatal("a malformed header was accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("CMD-SHELL\x00curl -fsSL \"${U:-http://localhost/}\" >/dev/null 2>&1 || exit 1", "U=http://localhost:1/x")
	f.Add("CMD\x00wget\x00-qO-\x00--header=Host: a\x00http://127.0.0.1/", "")
	f.Add("CMD\x00/app\x00-healthcheck\x00http://localhost:8080/health", "")
	f.Add("CMD-SHELL\x00curl $A'$B'\"$C\"\\$ # c\n", "A=http://x\x00C=y")
	f.Fuzz(func(t *testing.T, test, env string) {
		c, ok := Parse(strings.Split(test, "\x00"), strings.Split(env, "\x00"))
		if !ok {
			return
		}
		if c.URL == nil || (c.URL.Scheme != "http" && c.URL.Scheme != "https") || c.URL.Host == "" || c.Host == "" {
			t.Fatalf("accepted %q with %+v", test, c)
		}
		if c.Method != http.MethodGet && c.Method != http.MethodHead {
			t.Fatalf("method %q", c.Method)
		}
		if c.Rule < AnyAnswer || c.Rule > Success2xx3xx {
			t.Fatalf("rule %v", c.Rule)
		}
	})
}
