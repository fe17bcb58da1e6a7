package flowengine_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

// An engine on the memory store with the built-in flows, driven through a login.
func Example() {
	ctx := context.Background()
	store := memory.New(nil)
	engine, _ := flowengine.New(flowengine.Options{Store: store, Stages: stages.Types(), Policies: compileRego})
	_ = blueprint.Defaults().Apply(ctx, engine)
	_ = store.CreateUser(ctx, &flowengine.User{ID: "u1", Username: "alice", IsActive: true,
		PasswordHash: flowengine.TestHash("s3cret")})

	req := &flowengine.Request{Method: "GET", Path: "/", Query: url.Values{"next": {"/reports"}}}
	flow, _ := engine.FindFlow(ctx, flowengine.DesignationAuthentication, req)
	res, _ := engine.Start(ctx, flow.Slug, req)
	fmt.Println(res.Response.Type, res.Response.Stage.Type, res.Response.Fields[0].Key)

	res, _ = engine.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": "alice"})
	fmt.Println(res.Response.Type, res.Response.Stage.Type, res.Response.Fields[0].Key)

	res, _ = engine.Answer(ctx, res.ExecutionID, req, map[string]any{"password": "s3cret"})
	fmt.Println(res.Response.Type, res.Response.To, res.NewSession.UserID)
	// Output:
	// challenge identification uid_field
	// challenge password password
	// redirect /reports u1
}

// The JSON objects of the HTTP contract.
func ExampleResponse_MarshalJSON() {
	out, _ := flowengine.Response{Type: flowengine.TypeDenied, Message: "staff only"}.MarshalJSON()
	fmt.Println(string(out))
	out, _ = flowengine.Response{Type: flowengine.TypeRedirect, To: "/app"}.MarshalJSON()
	fmt.Println(string(out))
	// Output:
	// {"type":"denied","message":"staff only"}
	// {"type":"redirect","to":"/app"}
}
