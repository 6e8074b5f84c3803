package assets

import (
	"html/template"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestLoadHashesStaticFiles(t *testing.T) {
	t.Parallel()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range static {
		name := s.Name(plain)
		ext := plain[strings.LastIndexByte(plain, '.'):]
		if !regexp.MustCompile(`^loading\.[0-9a-f]{8}\` + ext + `$`).MatchString(name) {
			t.Errorf("%s is served as %q, want loading.<8 hex>%s", plain, name, ext)
		}
		f, ok := s.Lookup(name)
		if !ok || len(f.Body) == 0 || f.ContentType == "" {
			t.Errorf("Lookup(%q) = %+v, %v", name, f, ok)
		}
		if _, ok := s.Lookup(plain); ok {
			t.Errorf("%s is served under its plain name too", plain)
		}
	}
	if s.Name("loading.html") != "" {
		t.Error("the template is not a static asset")
	}
}

func TestTemplateParses(t *testing.T) {
	t.Parallel()
	src, err := Template()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := template.New(PageTemplate).Parse(src); err != nil {
		t.Fatal(err)
	}
}

// TestNoOutsideResources keeps the page self-contained: no CDN, no web
// fonts, no inline script or style that the CSP would block.
func TestNoOutsideResources(t *testing.T) {
	t.Parallel()
	err := fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS(), p)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "@import", "@font-face", "url(", " style=", "onclick", "onload="} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if strings.HasSuffix(p, ".html") && strings.Count(string(b), "<script") != strings.Count(string(b), "<script src=") {
			t.Errorf("%s has an inline script", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
