// Package assets embeds the loading page sleeper shows a browser while its
// app wakes: the HTML template and the stylesheet and script it links.
//
// Policy: the static files are served under content-hashed names
// ("loading.1a2b3c4d.css"), so a change of content is a change of URL and
// the files can be cached forever. Nothing is fetched from elsewhere: no CDN,
// no web fonts, no framework. The package only reads its embedded files; it
// does no I/O and keeps no mutable state.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// files is the embedded content; embed.FS is read-only.
//
//go:embed loading.html loading.css loading.js
var files embed.FS

// PageTemplate is the embedded name of the loading page's html/template source.
const PageTemplate = "loading.html"

// static lists the embedded files served as-is, under their hashed names.
var static = []string{"loading.css", "loading.js"}

// hashLen is how many hex digits of the SHA-256 go into a name: 32 bits
// tell apart the few versions of a file a browser will ever see.
const hashLen = 8

// FS returns the embedded files under their plain names.
func FS() fs.FS { return files }

// File is one static asset ready to serve.
type File struct {
	Name        string // hashed name, "loading.1a2b3c4d.css"
	ContentType string
	Body        []byte
}

// Set indexes the static assets by hashed name. It is built once and only
// read afterwards, so it is safe for concurrent use.
type Set struct {
	byName map[string]File   // hashed name → file
	hashed map[string]string // plain name → hashed name
}

// Load reads and hashes the static files.
func Load() (*Set, error) {
	s := &Set{byName: map[string]File{}, hashed: map[string]string{}}
	for _, plain := range static {
		body, err := files.ReadFile(plain)
		if err != nil {
			return nil, fmt.Errorf("read asset %s: %w", plain, err)
		}
		ct, err := contentType(plain)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(plain)
		name := strings.TrimSuffix(plain, ext) + "." + hex.EncodeToString(sum[:])[:hashLen] + ext
		s.byName[name] = File{Name: name, ContentType: ct, Body: body}
		s.hashed[plain] = name
	}
	return s, nil
}

// Lookup returns the file with the given hashed name. Only exact names
// match, which is what keeps "../x" and friends out.
func (s *Set) Lookup(name string) (File, bool) {
	f, ok := s.byName[name]
	return f, ok
}

// Name returns the hashed name of a plain one ("loading.css"), or "" for a
// file that is not a static asset.
func (s *Set) Name(plain string) string { return s.hashed[plain] }

// Template returns the loading page's template source.
func Template() (string, error) {
	b, err := files.ReadFile(PageTemplate)
	if err != nil {
		return "", fmt.Errorf("read asset %s: %w", PageTemplate, err)
	}
	return string(b), nil
}

func contentType(name string) (string, error) {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8", nil
	case ".js":
		return "text/javascript; charset=utf-8", nil
	}
	return "", fmt.Errorf("asset %s: no content type for its extension", name)
}
