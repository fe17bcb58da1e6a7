package stages

import "github.com/flowgate/flowgate/flowengine"

var types = map[string]flowengine.StageFactory{}

// register is called from each stage file's init.
func register(name string, f flowengine.StageFactory) { types[name] = f }

// Types returns a fresh map of every stage type name to its factory.
func Types() map[string]flowengine.StageFactory {
	out := make(map[string]flowengine.StageFactory, len(types))
	for k, v := range types {
		out[k] = v
	}
	return out
}
