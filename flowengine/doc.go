// Package flowengine plans and runs authentication flows: stages gated by policies,
// executed one challenge at a time, with all state kept in a Store.
//
// It knows nothing of HTTP servers or Caddy. A caller describes the request
// (Request), starts a flow by slug or designation, and answers challenges; every
// step returns one of the JSON objects of the HTTP contract (Response) plus the side
// effects a gateway must apply (a new session to put in a cookie, a session to end).
//
// The package declares the interfaces it consumes — Stage, Store, PolicyEvaluator —
// and leaves their implementations to sibling packages: flowengine/stages,
// flowengine/store/{bolt,memory}, and policies.
package flowengine
