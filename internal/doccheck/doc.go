// Package doccheck holds only a test: every relative link in README.md and
// docs/*.md names a file that exists and, with a #fragment, a heading of
// that file. The long README was split into pages; a section moved again,
// or a link written against the old single page, must fail here rather
// than on a reader's click.
package doccheck
