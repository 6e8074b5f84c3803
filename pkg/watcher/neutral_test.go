package watcher

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// providerWords are the providers the core must not name. Comments may
// speak of "the engine" or give an example; code may not.
var providerWords = []string{"docker", "proxmox", "moby"}

// TestCoreNamesNoProvider keeps pkg/watcher provider-neutral: no non-test
// file of the package (this directory only; a test kit below it may name
// what it fakes) imports a provider package or the Docker client, and no
// identifier or string literal contains a provider's name, in any case.
// Providers implement the interfaces the watcher declares and cmd/sleeper
// wires them in; a provider's name reaches the API through
// RegistryConfig.Provider and Target.Provider.
func TestCoreNamesNoProvider(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range providerViolations(t, path, src) {
			t.Error(v)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d files, want the whole package", checked)
	}
}

// TestProviderViolations proves the rule catches each way of naming a
// provider and lets comments through.
func TestProviderViolations(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"import":     `import _ "sleeper/pkg/proxmox"`,
		"moby":       `import _ "github.com/moby/moby/client"`,
		"identifier": `var isProxmoxStub = 1`,
		"selector":   `var x = spec.Proxmox`,
		"string":     `var msg = "waiting for the Docker engine"`,
		"raw string": "var msg = `com.docker.compose.service`",
	}
	for name, decl := range bad {
		src := "package watcher\n" + decl + "\n"
		if len(providerViolations(t, name+".go", []byte(src))) == 0 {
			t.Errorf("%s: %q not caught", name, decl)
		}
	}
	ok := "package watcher\n// The docker engine and a Proxmox guest may be named here.\nvar engine = \"the engine\"\n"
	if v := providerViolations(t, "ok.go", []byte(ok)); len(v) != 0 {
		t.Errorf("comment flagged: %v", v)
	}
}

// providerViolations lists where a Go source names a provider: an import
// path, an identifier (selectors included) or a string literal.
func providerViolations(t *testing.T, path string, src []byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []string
	report := func(pos token.Pos, what, text string) {
		lower := strings.ToLower(text)
		for _, w := range providerWords {
			if strings.Contains(lower, w) {
				out = append(out, fmt.Sprintf("%s: %s %q names a provider", fset.Position(pos), what, text))
				return
			}
		}
	}
	// An import path is a string literal: sleeper/pkg/docker, sleeper/pkg/proxmox
	// and github.com/moby/... are caught below.
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			report(n.Pos(), "identifier", n.Name)
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				s, err := strconv.Unquote(n.Value)
				if err != nil {
					s = n.Value
				}
				report(n.Pos(), "string", s)
			}
		}
		return true
	})
	return out
}
