package flowengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Invitation lets whoever holds its ID start one flow (an enrollment) that an
// invitation stage guards, with data the operator fixed in advance.
//
// Invitations live in the ExecutionStore rather than a store of their own, so
// every backend (bolt, Redis, memory) keeps them without a new interface: the
// record is JSON under "invite:<id>" with the invitation's expiry as its TTL,
// so an expired invitation is simply gone. The key cannot be mistaken for a
// flow execution: an execution handle's ID must equal the record's "id" and
// carry the secret whose hash the record binds. Listing needs enumeration the
// store cannot do, so a JSON list of IDs under "invite-index" is kept beside
// them, rewritten under a counter lock ("invite-index-lock") and pruned of IDs
// whose record has expired or been deleted.
type Invitation struct {
	// ID is the token in the link (?itoken=<id>); random, like a session ID.
	ID string `json:"id"`
	// Flow is the slug of the only flow the invitation opens.
	Flow      string    `json:"flow"`
	ExpiresAt time.Time `json:"expires_at"`
	// SingleUse lets one flow execution start from the invitation; it is
	// deleted when its invitation stage accepts it.
	SingleUse bool   `json:"single_use"`
	Email     string `json:"email,omitempty"`
	// FixedData is merged into prompt_data when the invitation is accepted.
	FixedData map[string]any `json:"fixed_data,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	// Uses counts accepted uses (best effort for a multi-use invitation: two
	// acceptances at the same instant may count once).
	Uses int `json:"uses"`
}

const (
	invitePrefix    = "invite:"
	inviteIndexKey  = "invite-index"
	inviteIndexLock = "invite-index-lock"
	inviteUsedKey   = "invite-used:"
	// maxInviteID bounds the token read from a request before any store call.
	maxInviteID = 128
)

// CreateInvitation stores inv (its ID, CreatedAt and ExpiresAt set by the
// caller) and adds it to the index.
func CreateInvitation(ctx context.Context, st Store, inv *Invitation, now time.Time) error {
	ttl := inv.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return errors.New("the invitation would expire at once")
	}
	if err := putInvitation(ctx, st, inv, ttl); err != nil {
		return err
	}
	return updateInviteIndex(ctx, st, now, func(ids []string) []string { return append(ids, inv.ID) })
}

func putInvitation(ctx context.Context, st Store, inv *Invitation, ttl time.Duration) error {
	raw, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	if err := st.PutExecution(ctx, invitePrefix+inv.ID, raw, ttl); err != nil {
		return fmt.Errorf("storing invitation: %w", err)
	}
	return nil
}

// GetInvitation loads a live invitation; ErrNotFound if it never existed, has
// expired or was revoked.
func GetInvitation(ctx context.Context, st Store, id string, now time.Time) (*Invitation, error) {
	if id == "" || len(id) > maxInviteID {
		return nil, ErrNotFound
	}
	raw, err := st.GetExecution(ctx, invitePrefix+id)
	if err != nil {
		return nil, err
	}
	inv := &Invitation{}
	if err := json.Unmarshal(raw, inv); err != nil || inv.ID != id {
		return nil, ErrNotFound
	}
	if !now.Before(inv.ExpiresAt) {
		return nil, ErrNotFound
	}
	return inv, nil
}

// ListInvitations returns the live invitations, oldest first.
func ListInvitations(ctx context.Context, st Store, now time.Time) ([]*Invitation, error) {
	ids, err := readInviteIndex(ctx, st)
	if err != nil {
		return nil, err
	}
	out := []*Invitation{}
	for _, id := range ids {
		inv, err := GetInvitation(ctx, st, id, now)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// DeleteInvitation revokes an invitation; ErrNotFound if there is none live.
func DeleteInvitation(ctx context.Context, st Store, id string, now time.Time) error {
	if _, err := GetInvitation(ctx, st, id, now); err != nil {
		return err
	}
	if err := st.DeleteExecution(ctx, invitePrefix+id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("deleting invitation: %w", err)
	}
	return updateInviteIndex(ctx, st, now, nil)
}

// UseInvitation accepts an invitation for one flow execution. A single-use
// invitation is claimed through an atomic counter, so two requests racing
// with the same link cannot both get in, and then deleted; a multi-use one
// has its Uses counted.
func UseInvitation(ctx context.Context, st Store, inv *Invitation, now time.Time) error {
	ttl := inv.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return ErrNotFound
	}
	if !inv.SingleUse {
		inv.Uses++
		return putInvitation(ctx, st, inv, ttl)
	}
	n, err := st.IncrCounter(ctx, inviteUsedKey+inv.ID, ttl)
	if err != nil {
		return fmt.Errorf("claiming invitation: %w", err)
	}
	if n > 1 {
		return ErrNotFound
	}
	inv.Uses++
	if err := st.DeleteExecution(ctx, invitePrefix+inv.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("deleting used invitation: %w", err)
	}
	// The index drops the ID the next time it is rewritten; a failure to
	// rewrite it now loses nothing.
	_ = updateInviteIndex(ctx, st, now, nil)
	return nil
}

func readInviteIndex(ctx context.Context, st Store) ([]string, error) {
	raw, err := st.GetExecution(ctx, inviteIndexKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading invitation index: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("decoding invitation index: %w", err)
	}
	return ids, nil
}

// inviteLockTTL bounds how long a crashed writer can hold the index.
const inviteLockTTL = 10 * time.Second

// updateInviteIndex rewrites the index under the counter lock: change may add
// IDs; then IDs whose record has expired or been deleted are dropped, and the
// index lives as long as the longest-lived invitation in it.
func updateInviteIndex(ctx context.Context, st Store, now time.Time, change func([]string) []string) error {
	for attempt := 0; ; attempt++ {
		n, err := st.IncrCounter(ctx, inviteIndexLock, inviteLockTTL)
		if err != nil {
			return fmt.Errorf("locking invitation index: %w", err)
		}
		if n == 1 {
			break
		}
		if attempt >= 100 {
			return fmt.Errorf("invitation index: %w", ErrBusy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer func() { _ = st.DeleteCounter(context.WithoutCancel(ctx), inviteIndexLock) }()
	ids, err := readInviteIndex(ctx, st)
	if err != nil {
		return err
	}
	var live []string
	last := now
	if change != nil {
		ids = change(ids)
	}
	for _, id := range ids {
		inv, err := GetInvitation(ctx, st, id, now)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading invitation: %w", err)
		}
		live = append(live, id)
		if inv.ExpiresAt.After(last) {
			last = inv.ExpiresAt
		}
	}
	if len(live) == 0 {
		if err := st.DeleteExecution(ctx, inviteIndexKey); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("clearing invitation index: %w", err)
		}
		return nil
	}
	raw, _ := json.Marshal(live)
	if err := st.PutExecution(ctx, inviteIndexKey, raw, last.Sub(now)+time.Minute); err != nil {
		return fmt.Errorf("writing invitation index: %w", err)
	}
	return nil
}
