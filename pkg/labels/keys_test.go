package labels

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"maps"
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
	if len(consts) != 22 {
		t.Errorf("keys.go declares %d Key* constants, README's label table has 22", len(consts))
	}
	table := slices.Clone(knownKeys[:])
	if len(table) != len(consts) {
		t.Errorf("knownKeys has %d entries, keys.go declares %d Key* constants", len(table), len(consts))
	}
	slices.Sort(consts)
	slices.Sort(table)
	if !slices.Equal(consts, table) {
		t.Errorf("knownKeys %q\n!= Key* constants %q", table, consts)
	}
	if c := slices.Compact(slices.Clone(table)); len(c) != len(table) {
		t.Errorf("knownKeys has duplicates: %q", table)
	}
	if s := slices.Sorted(maps.Keys(setters)); !slices.Equal(s, table) {
		t.Errorf("setters %q\n!= knownKeys %q", s, table)
	}
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
