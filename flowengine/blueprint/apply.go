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

// merged combines the set's entries into one change; a later file overrides an
// earlier one, so an absent entry removes what an earlier file defined and a
// present one brings back what an earlier file removed. removedBy tells which
// file removes each entry ("stage x" → file).
func (s Set) merged() (ch flowengine.Change, removedBy map[string]*Blueprint) {
	cfg := &flowengine.Config{}
	removedBy = map[string]*Blueprint{}
	users := map[string]flowengine.SeedUser{}
	var order []string
	for _, bp := range s {
		cfg = flowengine.Merge(cfg, bp.Config)
		for _, f := range bp.Config.Flows {
			delete(removedBy, "flow "+f.Slug)
		}
		for _, st := range bp.Config.Stages {
			delete(removedBy, "stage "+st.Name)
		}
		for _, p := range bp.Config.Policies {
			delete(removedBy, "policy "+p.Name)
		}
		cfg = flowengine.Remove(cfg, bp.Remove)
		for _, slug := range bp.Remove.Flows {
			removedBy["flow "+slug] = bp
		}
		for _, name := range bp.Remove.Stages {
			removedBy["stage "+name] = bp
		}
		for _, name := range bp.Remove.Policies {
			removedBy["policy "+name] = bp
		}
		for _, u := range bp.Users {
			k := flowengine.NormalizeKey(u.User.Username)
			if _, ok := users[k]; !ok {
				order = append(order, k)
			}
			users[k] = u
		}
	}
	ch.Config = cfg
	for _, key := range sortedKeys(removedBy) {
		kind, name, _ := strings.Cut(key, " ")
		switch kind {
		case "flow":
			ch.Remove.Flows = append(ch.Remove.Flows, name)
		case "stage":
			ch.Remove.Stages = append(ch.Remove.Stages, name)
		case "policy":
			ch.Remove.Policies = append(ch.Remove.Policies, name)
		}
	}
	for _, k := range order {
		ch.Users = append(ch.Users, users[k])
	}
	return ch, removedBy
}

// Apply imports the set into the engine as one all-or-nothing change.
func (s Set) Apply(ctx context.Context, e *flowengine.Engine) error {
	ch, removedBy := s.merged()
	if err := stillUsed(e.Config(), ch, removedBy); err != nil {
		return err
	}
	return s.locate(e.Apply(ctx, ch))
}

// Apply imports one blueprint.
func (bp *Blueprint) Apply(ctx context.Context, e *flowengine.Engine) error {
	return Set{bp}.Apply(ctx, e)
}

// stillUsed refuses to remove a stage or policy that a flow or stage remaining
// after the change still uses, naming the absent entry (the engine refuses it
// too, but names the flow or stage, which may be in no file at all).
func stillUsed(live *flowengine.Config, ch flowengine.Change, removedBy map[string]*Blueprint) error {
	if len(ch.Remove.Stages)+len(ch.Remove.Policies) == 0 {
		return nil
	}
	after := flowengine.Remove(flowengine.Merge(live, ch.Config), ch.Remove)
	var errs []error
	used := func(key, user string) {
		if bp, ok := removedBy[key]; ok {
			kind, name, _ := strings.Cut(key, " ")
			errs = append(errs, bp.errorAt(kind, name, fmt.Sprintf("state: absent, but %s still uses it", user)))
			delete(removedBy, key) // once per entry
		}
	}
	for _, f := range after.Flows {
		for _, b := range f.Policies {
			used("policy "+b.Policy, "flow "+f.Slug)
		}
		for _, sb := range f.Stages {
			used("stage "+sb.Stage, "flow "+f.Slug)
			for _, b := range sb.Policies {
				used("policy "+b.Policy, "flow "+f.Slug)
			}
		}
	}
	// Every stage counts, bound to a flow or not: the engine checks them all.
	for _, s := range after.Stages {
		for _, p := range stagePolicies(s) {
			used("policy "+p, "stage "+s.Name+" (validation_policies)")
		}
	}
	return errors.Join(errs...)
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
