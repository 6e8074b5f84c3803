package healthcmd

import (
	"strings"
)

// token is a word or an operator of a shell command line.
type token struct {
	word string
	op   string // "" for a word; "||", "&&", "|", ";", "&" or "redir"
}

// shellCommand reads a CMD-SHELL test the way /bin/sh would, as far as a
// URL check needs: one simple command, redirections dropped, optionally
// followed by "|| exit N" (N not 0), "|| exit" or "|| false", which keep the
// command's failure a failure. It returns the command's words.
func shellCommand(s string, env map[string]string) ([]string, bool) {
	toks, ok := lex(s, env)
	if !ok {
		return nil, false
	}
	for len(toks) > 0 && toks[len(toks)-1].op == ";" {
		toks = toks[:len(toks)-1] // "cmd;" or a trailing newline
	}
	main, rest, ok := words(toks)
	if !ok || len(main) == 0 {
		return nil, false
	}
	if len(rest) == 0 {
		return main, true
	}
	if rest[0].op != "||" {
		return nil, false
	}
	alt, more, ok := words(rest[1:])
	if !ok || len(more) > 0 || !failsAlways(alt) {
		return nil, false
	}
	return main, true
}

// words collects the words of one simple command up to the next operator,
// dropping redirections and their targets.
func words(toks []token) (ws []string, rest []token, ok bool) {
	for i := 0; i < len(toks); i++ {
		switch t := toks[i]; t.op {
		case "":
			ws = append(ws, t.word)
		case "redir":
			if i+1 >= len(toks) || toks[i+1].op != "" {
				return nil, nil, false
			}
			i++
		default:
			return ws, toks[i:], true
		}
	}
	return ws, nil, true
}

// failsAlways reports whether a fallback command exits non-zero whatever
// happened: "exit 1", "exit" (the failed command's status) or "false".
func failsAlways(ws []string) bool {
	switch {
	case len(ws) == 1 && (ws[0] == "false" || ws[0] == "exit"):
		return true
	case len(ws) == 2 && ws[0] == "exit":
		n := ws[1]
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return false
		}
		return strings.Trim(n, "0") != "" // exit 0 would pass every time
	default:
		return false
	}
}

// lexer holds one lex call's state.
type lexer struct {
	s      string
	env    map[string]string
	toks   []token
	cur    strings.Builder
	inWord bool // a word has started (even as empty quotes)
	plain  bool // the word so far is unquoted literal text (for "2>")
}

// lex splits a command line into words and operators, expanding $VAR and
// ${VAR} from env. What it cannot judge (command substitution, subshells,
// here-documents, special parameters, word splitting of an unquoted
// expansion) fails the parse.
func lex(s string, env map[string]string) ([]token, bool) {
	l := &lexer{s: s, env: env}
	for i := 0; i < len(s); {
		next, ok := l.step(i)
		if !ok {
			return nil, false
		}
		i = next
	}
	l.flush()
	return l.toks, true
}

func (l *lexer) flush() {
	if l.inWord {
		l.toks = append(l.toks, token{word: l.cur.String()})
	}
	l.cur.Reset()
	l.inWord, l.plain = false, false
}

func (l *lexer) op(o string) { l.flush(); l.toks = append(l.toks, token{op: o}) }

// step consumes what starts at s[i] and returns where the next thing starts.
func (l *lexer) step(i int) (int, bool) {
	s := l.s
	switch ch := s[i]; ch {
	case ' ', '\t', '\r':
		l.flush()
		return i + 1, true
	case '\n', ';':
		l.op(";")
		return i + 1, true
	case '#':
		if l.inWord {
			break
		}
		end := strings.IndexByte(s[i:], '\n')
		if end < 0 {
			return len(s), true
		}
		return i + end, true
	case '\'':
		end := strings.IndexByte(s[i+1:], '\'')
		if end < 0 {
			return 0, false
		}
		l.word(s[i+1:i+1+end], false)
		return i + end + 2, true
	case '"':
		return l.doubleQuoted(i + 1)
	case '\\':
		if i+1 >= len(s) {
			return 0, false
		}
		if s[i+1] != '\n' {
			l.word(s[i+1:i+2], false)
		}
		return i + 2, true
	case '$':
		val, next, ok := expand(s, i, l.env)
		if !ok || strings.ContainsAny(val, " \t\n") {
			return 0, false // an unquoted value would be split into words
		}
		if val != "" {
			l.word(val, false)
		}
		return next, true
	case '`', '(', ')':
		return 0, false
	case '|', '&':
		return l.control(i)
	case '<', '>':
		return l.redirect(i)
	}
	l.word(s[i:i+1], true)
	return i + 1, true
}

func (l *lexer) word(text string, plain bool) {
	if !l.inWord {
		l.plain = true
	}
	l.plain = l.plain && plain
	l.inWord = true
	l.cur.WriteString(text)
}

// control reads "|", "||", "&", "&&" and "&>" (a redirection).
func (l *lexer) control(i int) (int, bool) {
	s := l.s
	two := ""
	if i+1 < len(s) {
		two = s[i : i+2]
	}
	switch two {
	case "||", "&&":
		l.op(two)
		return i + 2, true
	case "&>":
		return l.redirect(i + 1)
	}
	l.op(s[i : i+1])
	return i + 1, true
}

// redirect reads ">", ">>", ">&", ">|", "<", "<&" after an optional file
// descriptor number, which is dropped with the operator.
func (l *lexer) redirect(i int) (int, bool) {
	s := l.s
	if l.inWord && l.plain && strings.Trim(l.cur.String(), "0123456789") == "" {
		l.cur.Reset()
		l.inWord = false // "2>": the 2 is the descriptor, not a word
	}
	l.op("redir")
	j := i + 1
	if j < len(s) {
		switch {
		case s[i] == '<' && s[j] == '<':
			return 0, false // a here-document
		case s[j] == '>' || s[j] == '&' || s[j] == '|':
			j++
		}
	}
	return j, true
}

// doubleQuoted reads a "…" string starting after the quote.
func (l *lexer) doubleQuoted(i int) (int, bool) {
	s := l.s
	l.word("", false)
	for i < len(s) {
		switch ch := s[i]; ch {
		case '"':
			return i + 1, true
		case '`':
			return 0, false
		case '\\':
			if i+1 >= len(s) {
				return 0, false
			}
			switch s[i+1] {
			case '$', '`', '"', '\\':
				l.cur.WriteByte(s[i+1])
			case '\n':
			default:
				l.cur.WriteString(s[i : i+2])
			}
			i += 2
		case '$':
			val, next, ok := expand(s, i, l.env)
			if !ok {
				return 0, false
			}
			l.cur.WriteString(val)
			i = next
		default:
			l.cur.WriteByte(ch)
			i++
		}
	}
	return 0, false // unterminated
}

// expand reads the expansion at s[i] == '$' and returns its value and the
// index after it. $NAME, ${NAME}, ${NAME:-word} and ${NAME-word} (and the
// := and = forms, which read the same here) are understood; a lone '$' is
// literal; anything else fails.
func expand(s string, i int, env map[string]string) (string, int, bool) {
	j := i + 1
	if j >= len(s) {
		return "$", j, true
	}
	switch c := s[j]; {
	case c == '{':
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return "", 0, false
		}
		val, ok := braced(s[j+1:j+end], env)
		return val, j + end + 1, ok
	case isNameStart(c):
		k := j
		for k < len(s) && isNameChar(s[k]) {
			k++
		}
		return env[s[j:k]], k, true
	case c == '(' || (c >= '0' && c <= '9') || strings.IndexByte("?@*#$!-", c) >= 0:
		return "", 0, false // substitution, arithmetic or a special parameter
	default:
		return "$", j, true
	}
}

// braced evaluates the inside of ${…}.
func braced(in string, env map[string]string) (string, bool) {
	k := 0
	for k < len(in) && isNameChar(in[k]) {
		k++
	}
	name, op := in[:k], in[k:]
	if name == "" || !isNameStart(name[0]) {
		return "", false
	}
	val, set := env[name]
	var word string
	colon := strings.HasPrefix(op, ":")
	switch rest := strings.TrimPrefix(op, ":"); {
	case op == "":
		return val, true
	case strings.HasPrefix(rest, "-"), strings.HasPrefix(rest, "="):
		word = rest[1:]
	default:
		return "", false // ${X:?…}, ${X#…}, ${X%…}, ${X:+…}: not a plain value
	}
	if strings.ContainsAny(word, "$`\\'\"") {
		return "", false
	}
	if !set || (colon && val == "") {
		return word, true
	}
	return val, true
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }
