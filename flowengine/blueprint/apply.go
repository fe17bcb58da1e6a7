package blueprint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowgate/flowgate/flowengine"
)

// Set is several parsed blueprints applied together.
type Set []*Blueprint

// ReadPaths parses every blueprint file named, descending into directories for
// *.yaml, *.yml and *.json files (sorted by name).
func ReadPaths(paths ...string) (Set, error) {
	var set Set
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readLimited(f)
			if err != nil {
				return nil, err
			}
			bp, err := Parse(f, data)
			if err != nil {
				return nil, err
			}
			set = append(set, bp)
		}
	}
	return set, nil
}

func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading blueprint: %w", err)
	}
	if st.Size() > MaxSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is %d bytes, over the %d byte limit", st.Size(), MaxSize)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading blueprint: %w", err)
	}
	return data, nil
}

func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading blueprints: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("reading blueprints: %w", err)
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// merged combines the set's entries; a later file overrides an earlier one.
func (s Set) merged() (*flowengine.Config, []*flowengine.User) {
	cfg := &flowengine.Config{}
	byName := map[string]*flowengine.User{}
	var order []string
	for _, bp := range s {
		cfg = flowengine.Merge(cfg, bp.Config)
		for _, u := range bp.Users {
			k := flowengine.NormalizeKey(u.Username)
			if _, ok := byName[k]; !ok {
				order = append(order, k)
			}
			byName[k] = u
		}
	}
	users := make([]*flowengine.User, 0, len(order))
	for _, k := range order {
		users = append(users, byName[k])
	}
	return cfg, users
}

// Apply imports the set into the engine as one all-or-nothing upsert.
func (s Set) Apply(ctx context.Context, e *flowengine.Engine) error {
	cfg, users := s.merged()
	return s.locate(e.Apply(ctx, cfg, users))
}

// Apply imports one blueprint.
func (bp *Blueprint) Apply(ctx context.Context, e *flowengine.Engine) error {
	return Set{bp}.Apply(ctx, e)
}

// locate rewrites engine errors so each names the file and line of its entry.
func (s Set) locate(err error) error {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, s.locateOne(e))
	}
	return errors.Join(out...)
}

// regoError is what the policies package's compile errors look like, seen without
// importing it.
type regoError interface {
	PolicyName() string
	RegoLine() int
	Message() string
}

func (s Set) locateOne(err error) error {
	var ve *flowengine.ValidationError
	var re regoError
	switch {
	case errors.As(err, &re):
		for i := len(s) - 1; i >= 0; i-- {
			bp := s[i]
			if pos, ok := bp.rego[re.PolicyName()]; ok {
				line := pos.line
				if pos.block && re.RegoLine() > 0 {
					line += re.RegoLine()
				}
				return &Error{File: bp.File, Line: line, Entry: "policy " + re.PolicyName(),
					Msg: fmt.Sprintf("rego line %d: %s", re.RegoLine(), re.Message())}
			}
		}
	case errors.As(err, &ve):
		key := ve.Kind + " " + ve.Name
		for i := len(s) - 1; i >= 0; i-- {
			if line, ok := s[i].lines[key]; ok {
				msg := ve.Err.Error()
				if ve.Field != "" {
					msg = ve.Field + ": " + msg
				}
				return &Error{File: s[i].File, Line: line, Entry: key, Msg: msg}
			}
		}
	}
	return err
}
