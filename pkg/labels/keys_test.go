package labels

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestKeysTableComplete checks that the Key* constants in keys.go, the
// knownKeys table and the setters map name exactly the same keys, each once:
// a constant missing from the table would be rejected as unknown, a key
// without a setter silently ignored.
func TestKeysTableComplete(t *testing.T) {
	t.Parallel()
	f, err := goparser.ParseFile(token.NewFileSet(), "keys.go", nil, goparser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Key") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				if vs.Doc == nil {
					t.Errorf("%s has no doc comment", name.Name)
				}
				consts = append(consts, v)
			}
		}
	}
	// Every label is documented in README's label table, by its full name.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := labelTable(string(readme))
	for _, k := range consts {
		if !strings.Contains(table, "`sleeper."+k+"`") {
			t.Errorf("label sleeper.%s is missing from README's label table", k)
		}
	}
	known := slices.Clone(knownKeys[:])
	if len(known) != len(consts) {
		t.Errorf("knownKeys has %d entries, keys.go declares %d Key* constants", len(known), len(consts))
	}
	slices.Sort(consts)
	slices.Sort(known)
	if !slices.Equal(consts, known) {
		t.Errorf("knownKeys %q\n!= Key* constants %q", known, consts)
	}
	if c := slices.Compact(slices.Clone(known)); len(c) != len(known) {
		t.Errorf("knownKeys has duplicates: %q", known)
	}
	if s := slices.Sorted(maps.Keys(setters)); !slices.Equal(s, known) {
		t.Errorf("setters %q\n!= knownKeys %q", s, known)
	}
}

// labelTable returns README's "## Labels" section.
func labelTable(readme string) string {
	_, after, _ := strings.Cut(readme, "\n## Labels")
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

func TestDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"port", "port", 0},
		{"prot", "port", 2},
		{"idle-timeout", "idle_timeout", 1},
		{"idle_timout", "idle_timeout", 1},
		{"", "port", 4},
		{"ports", "port", 1},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
