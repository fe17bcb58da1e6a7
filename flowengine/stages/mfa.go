package stages

import (
	"context"
	"errors"

	"github.com/flowgate/flowgate/flowengine"
)

// Shared by the authenticator setup stages and authenticator_validate.
//
// Contract (the setup stages' file owners implement these; authenticator_validate
// calls them):
//
//   - checkTOTP verifies code against every TOTP device of the user, allowing one
//     time step of skew either way, and spends it: the accepting device's
//     LastStep moves to the code's step through flowengine.ModifyUser, so a
//     replay, an older code or a concurrent second use of the same code is
//     refused. It returns the device that accepted the code, or nil (and a nil
//     error) when none did. Errors are store or sealing failures only.
//   - checkStatic does the same for recovery codes: an accepted code is removed
//     from its device atomically (ModifyUser); nil when no device holds it.
//
// Neither counts attempts: authenticator_validate regulates (Services.Regulator)
// around them, like the password stage.

// errNoSecrets: TOTP needs Services.Secrets to seal secrets at rest.
var errNoSecrets = errors.New("no secret keys to seal TOTP secrets with")

// checkTOTP: see above. (Stub until the TOTP stage lands.)
func checkTOTP(ctx context.Context, sc *flowengine.StageContext, userID, code string) (*flowengine.Device, error) {
	return nil, errNoSecrets
}

// checkStatic: see above. (Stub until the static stage lands.)
func checkStatic(ctx context.Context, sc *flowengine.StageContext, userID, code string) (*flowengine.Device, error) {
	return nil, errors.New("recovery codes are not implemented yet")
}
