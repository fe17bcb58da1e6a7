//go:build tools

package tools

import (
	_ "github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/gorilla/securecookie"
	_ "github.com/open-policy-agent/opa/v1/rego"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/redis/go-redis/v9"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/bcrypt"
)
