package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

const inviteFlow = `version: 1
stages:
  - {name: inv-check, type: invitation}
  - name: inv-prompt
    type: prompt
    config:
      fields:
        - {field_key: username, type: username, required: true}
        - {field_key: password, type: password, required: true}
        - {field_key: password_repeat, type: password, required: true}
  - {name: inv-write, type: user_write}
  - {name: inv-login, type: user_login}
flows:
  - slug: invite-only
    name: Join by invitation
    designation: enrollment
    stages:
      - {stage: inv-check, order: 10}
      - {stage: inv-prompt, order: 20}
      - {stage: inv-write, order: 30}
      - {stage: inv-login, order: 40}
`

// An operator invites by CLI; the link enrolls one person with the fixed
// email and group data, a second use of the single-use link is denied, no
// link is denied, and a revoked multi-use invitation opens nothing.
func TestInvitationEnrollment(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("invite.yaml", inviteFlow)
	g.load("", "")
	addr := []string{"--address", "localhost:2999"}

	out, err := runCLI(t, "", append([]string{"invite", "create", "--flow", "invite-only", "--single-use",
		"--email", "erin@example.com", "--fixed", "attributes.team=red", "--expires", "1h"}, addr...)...)
	if err != nil {
		t.Fatalf("invite create: %v %s", err, out)
	}
	var inv struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil || inv.ID == "" ||
		inv.URL != "/.flowgate/flows/invite-only/?itoken="+inv.ID {
		t.Fatalf("invite create answered %v %s", err, out)
	}
	if out, err := runCLI(t, "", append([]string{"invite", "list"}, addr...)...); err != nil || !strings.Contains(out, inv.ID) ||
		!strings.Contains(out, "erin@example.com") {
		t.Fatalf("invite list: %v %s", err, out)
	}

	api := "/.flowgate/api/v1/flows/invite-only/"
	if _, ch := g.getJSON(api); ch["type"] != "denied" || ch["message"] != "An invitation is required." {
		t.Fatalf("without an invitation: %v", ch)
	}
	g.freshJar()
	if _, ch := g.getJSON(api + "?itoken=" + inv.ID); stage(ch) != "prompt" {
		t.Fatalf("with the invitation: %v", ch)
	}
	_, res := g.postJSON(api, map[string]string{"username": "erin", "password": strongPassword, "password_repeat": strongPassword})
	if res["type"] != "redirect" {
		t.Fatalf("enrolling: %v", res)
	}
	out, err = runCLI(t, "", append([]string{"user", "list", "--json"}, addr...)...)
	if err != nil || !strings.Contains(out, `"username":"erin"`) || !strings.Contains(out, `"email":"erin@example.com"`) {
		t.Fatalf("erin after enrollment: %v %s", err, out)
	}

	// Single use: the same link in another browser is denied.
	g.freshJar()
	if _, ch := g.getJSON(api + "?itoken=" + inv.ID); ch["type"] != "denied" {
		t.Fatalf("reusing a single-use invitation: %v", ch)
	}

	// A multi-use invitation, revoked.
	out, err = runCLI(t, "", append([]string{"invite", "create", "--flow", "invite-only"}, addr...)...)
	if err != nil {
		t.Fatal(err)
	}
	var multi struct{ ID string }
	json.Unmarshal([]byte(out), &multi)
	if out, err := runCLI(t, "", append([]string{"invite", "revoke", multi.ID}, addr...)...); err != nil {
		t.Fatalf("invite revoke: %v %s", err, out)
	}
	g.freshJar()
	if _, ch := g.getJSON(api + "?itoken=" + multi.ID); ch["type"] != "denied" {
		t.Fatalf("revoked invitation: %v", ch)
	}
	if _, err := runCLI(t, "", append([]string{"invite", "revoke", multi.ID}, addr...)...); err == nil {
		t.Fatal("revoking twice succeeded")
	}
	if out, err := runCLI(t, "", append([]string{"invite", "create", "--flow", "nope"}, addr...)...); err == nil {
		t.Fatalf("invitation to an unknown flow: %s", out)
	}
}
