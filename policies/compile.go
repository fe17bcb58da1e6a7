package policies

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// MaxModuleSize bounds one policy's Rego source in bytes, checked before it is
// parsed: parsing and compiling cost grows with the source, and a policy is a
// few lines of access rules, so 64 KiB is far beyond any legitimate one.
const MaxModuleSize = 64 << 10

// capabilities is computed once: OPA otherwise clones and sorts every built-in
// for each parser and compiler, a large share of compiling a small module. It
// adds flowgate's own built-ins, so modules calling them type-check.
var capabilities = sync.OnceValue(func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = append(c.Builtins, passwordStrengthBuiltin)
	return c
})

// module is one parsed policy.
type module struct {
	name string
	file string // name + ".rego", the file OPA's locations name
	ast  *ast.Module
	path ast.Ref // package path, data.x.y
}

// Compile parses and prepares every module (name → Rego source). All errors are
// reported, each a *CompileError, in policy name order.
//
// Each policy is its own module and behaves as if compiled alone, yet a
// compiler (whose built-in type environment dominates the cost of a small
// module) is shared by as many policies as possible: policies share one when no
// package equals or contains another's and none reads data outside its own
// package. The rest, and any policy a shared compile finds an error in, are
// compiled alone, so errors are exactly those of a compile on its own.
func Compile(modules map[string]string) (*Set, error) {
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	c := &compilation{set: &Set{prepared: make(map[string]*policy, len(modules))}, errs: map[string][]error{}}
	parsed := make([]*module, 0, len(names))
	for _, name := range names {
		m, errs := parse(name, modules[name])
		if errs != nil {
			c.errs[name] = errs
			continue
		}
		parsed = append(parsed, m)
	}
	for _, g := range pack(parsed) {
		c.compileGroup(g)
	}
	if len(c.errs) > 0 {
		var all []error
		for _, name := range names {
			all = append(all, c.errs[name]...)
		}
		return nil, errors.Join(all...)
	}
	return c.set, nil
}

func parse(name, src string) (*module, []error) {
	if len(src) > MaxModuleSize {
		return nil, []error{&CompileError{Policy: name,
			Msg: fmt.Sprintf("rego is %d bytes, over the %d byte limit", len(src), MaxModuleSize)}}
	}
	if strings.TrimSpace(src) == "" {
		return nil, []error{&CompileError{Policy: name, Msg: "rego is empty"}}
	}
	file := name + ".rego"
	mod, err := ast.ParseModuleWithOpts(file, src, ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: capabilities()})
	if err != nil {
		return nil, regoErrors(name, err)
	}
	return &module{name: name, file: file, ast: mod, path: mod.Package.Path}, nil
}

// group is policies that may share a compiler: no package path equals or is a
// prefix of another's, so no policy's document contains another's rules.
type group struct {
	mods     []*module
	packages map[string]bool // each package path
	prefixes map[string]bool // each prefix of each package path, the path included
}

func (g *group) fits(path ast.Ref) bool {
	if g.prefixes[path.String()] {
		return false
	}
	for i := 2; i <= len(path); i++ { // path[0] is data, never a package
		if g.packages[path[:i].String()] {
			return false
		}
	}
	return true
}

func (g *group) add(m *module) {
	g.mods = append(g.mods, m)
	g.packages[m.path.String()] = true
	for i := 2; i <= len(m.path); i++ {
		g.prefixes[m.path[:i].String()] = true
	}
}

// pack puts each module in the first group it fits, so there are as many
// groups as the most policies sharing one package.
func pack(mods []*module) [][]*module {
	var groups []*group
	next := map[string]int{} // package → first group that may still take it
	for _, m := range mods {
		key := m.path.String()
		i := next[key]
		for i < len(groups) && !groups[i].fits(m.path) {
			i++
		}
		if i == len(groups) {
			groups = append(groups, &group{packages: map[string]bool{}, prefixes: map[string]bool{}})
		}
		groups[i].add(m)
		next[key] = i + 1
	}
	out := make([][]*module, len(groups))
	for i, g := range groups {
		out[i] = g.mods
	}
	return out
}

type compilation struct {
	set  *Set
	errs map[string][]error // policy → its errors
}

// compileGroup compiles mods with one compiler. Policies it reports errors for
// are compiled alone (for the errors they have alone) and the rest again
// together, until a compile succeeds.
func (c *compilation) compileGroup(mods []*module) {
	for len(mods) > 1 {
		byName := make(map[string]*ast.Module, len(mods))
		for _, m := range mods {
			byName[m.name] = m.ast
		}
		comp := ast.NewCompiler().WithCapabilities(capabilities()).SetErrorLimit(0)
		comp.Compile(byName)
		if comp.Failed() {
			blamed := map[string]bool{}
			for _, e := range comp.Errors {
				if e.Location != nil {
					blamed[e.Location.File] = true
				}
			}
			var rest []*module
			for _, m := range mods {
				if blamed[m.file] {
					c.compileAlone(m)
				} else {
					rest = append(rest, m)
				}
			}
			if len(rest) == len(mods) { // no error names a policy: stop sharing
				for _, m := range mods {
					c.compileAlone(m)
				}
				return
			}
			mods = rest
			continue
		}
		for _, m := range mods {
			// A policy that reads other packages' data would see its
			// neighbours here and nothing alone.
			if readsOutside(comp.Modules[m.name], m.path) {
				c.compileAlone(m)
				continue
			}
			c.prepare(m, comp)
		}
		return
	}
	if len(mods) == 1 {
		c.compileAlone(mods[0])
	}
}

// readsOutside reports whether a compiled module (its references resolved to
// full data paths) refers to data outside its package.
func readsOutside(mod *ast.Module, pkg ast.Ref) bool {
	outside := false
	ast.WalkRefs(mod, func(r ast.Ref) bool {
		if r.HasPrefix(ast.DefaultRootRef) && !r.HasPrefix(pkg) {
			outside = true
		}
		return outside
	})
	return outside
}

func (c *compilation) compileAlone(m *module) {
	comp := ast.NewCompiler().WithCapabilities(capabilities())
	comp.Compile(map[string]*ast.Module{m.name: m.ast})
	if comp.Failed() {
		c.errs[m.name] = regoErrors(m.name, comp.Errors)
		return
	}
	c.prepare(m, comp)
}

// prepare makes the query for m's whole package document with a compiler that
// holds m.
func (c *compilation) prepare(m *module, comp *ast.Compiler) {
	query := ast.NewBody(ast.NewExpr(ast.NewTerm(m.path.Copy())))
	q, err := rego.New(rego.ParsedQuery(query), rego.Compiler(comp), rego.StrictBuiltinErrors(true),
		rego.Function1(passwordStrengthDecl, passwordStrength)).
		PrepareForEval(context.Background())
	if err != nil {
		c.errs[m.name] = regoErrors(m.name, err)
		return
	}
	c.set.prepared[m.name] = &policy{query: q}
}

func regoErrors(name string, err error) []error {
	var list ast.Errors
	if errors.As(err, &list) && len(list) > 0 {
		out := make([]error, 0, len(list))
		for _, e := range list {
			ce := &CompileError{Policy: name, Msg: e.Message}
			if e.Location != nil {
				ce.Line = e.Location.Row
			}
			out = append(out, ce)
		}
		return out
	}
	return []error{&CompileError{Policy: name, Msg: err.Error()}}
}
