package flowengine

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what users are stored with.
const (
	MaxUsernameLen = 150 // characters, after trimming
	MaxEmailLen    = 254 // bytes (RFC 5321 path limit)
)

// CheckUsername reports why s (as stored: trimmed of surrounding space) cannot be
// a username, or nil. Usernames travel in admin API paths, log lines and HTML,
// so they must be one readable path segment: valid UTF-8 without control or
// invisible format characters (which could disguise one name as another or
// forge log lines), "/" or "\" (split a path), whitespace other than inner
// single-width spaces, or the dot segments "." and "..". "@" is allowed:
// email addresses are common usernames.
func CheckUsername(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("username is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return errors.New("username is empty")
	case n > MaxUsernameLen:
		return fmt.Errorf("username is longer than %d characters", MaxUsernameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("username %q is a path dot segment", s)
	}
	for _, r := range s {
		switch {
		case r == '/' || r == '\\':
			return fmt.Errorf("username must not contain %q", r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return fmt.Errorf("username must not contain control or format character %U", r)
		case r != ' ' && unicode.IsSpace(r):
			return fmt.Errorf("username must not contain whitespace %U", r)
		}
	}
	return nil
}

// CheckEmail reports why s cannot be a user's email address, or nil. Empty is
// allowed (no address); otherwise s must be a bare address (no display name,
// no surrounding space, no comments) of at most MaxEmailLen bytes.
func CheckEmail(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxEmailLen {
		return fmt.Errorf("email is longer than %d bytes", MaxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("email %q: %v", s, err)
	}
	if a.Address != s || a.Name != "" {
		return fmt.Errorf("email %q is not a bare address (use %q)", s, a.Address)
	}
	return nil
}
