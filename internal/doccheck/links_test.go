package doccheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeRE    = regexp.MustCompile("`[^`]*`")
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*)$`)
	schemeRE  = regexp.MustCompile(`^[a-z]+:`)
)

// TestDocLinks checks every relative link of the README and the docs pages.
func TestDocLinks(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	checked := 0
	for _, page := range pages {
		for _, l := range links(t, page) {
			checked++
			file, frag, _ := strings.Cut(l.target, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s:%d: link %q: no file %s", page, l.line, l.target, target)
				continue
			}
			if frag != "" && !anchors(t, target)[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", page, l.line, l.target, target, frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d links found: the scan is broken", checked)
	}
}

type link struct {
	target string
	line   int
}

// links returns the relative links of a Markdown file, outside code.
func links(t *testing.T, path string) []link {
	t.Helper()
	var out []link
	eachLine(t, path, func(n int, s string) {
		for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(s, ""), -1) {
			if !schemeRE.MatchString(m[1]) {
				out = append(out, link{target: m[1], line: n})
			}
		}
	})
	return out
}

// anchors returns the anchors GitHub gives the headings of a Markdown file.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	seen := map[string]int{}
	eachLine(t, path, func(_ int, s string) {
		m := headingRE.FindStringSubmatch(s)
		if m == nil {
			return
		}
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	})
	return out
}

// eachLine calls fn for each line of a file that is not inside a fenced
// code block.
func eachLine(t *testing.T, path string, fn func(n int, s string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // the guarantees table has long rows
	fence := false
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		if strings.HasPrefix(s, "```") {
			fence = !fence
			continue
		}
		if !fence {
			fn(n, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// slug is GitHub's heading anchor: lower case, letters, digits, '-' and '_'
// kept, spaces turned into '-', everything else dropped.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Sleep policies: schedules, groups, busy guard": "sleep-policies-schedules-groups-busy-guard",
		"Keep-warm schedules: `sleeper.awake_during`":   "keep-warm-schedules-sleeperawake_during",
		"Behind Traefik, Caddy or nginx":                "behind-traefik-caddy-or-nginx",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
