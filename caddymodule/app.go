package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/flowgate/flowgate/caddymodule/cookiecodec"
	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/cache"
	fgredis "github.com/flowgate/flowgate/flowengine/store/redis"
	"github.com/flowgate/flowgate/policies"
	"github.com/flowgate/flowgate/templates"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the flowgate app: the store, the flow engine and the keys shared by every
// site's handler. Configured in the Caddyfile's global options block.
type App struct {
	// Storage selects where users, sessions and flows live (default: bolt, one file
	// in Caddy's data directory).
	Storage *StorageConfig `json:"storage,omitempty"`
	// Blueprints are files or directories of blueprints applied at every config
	// load. Without any, built-in default authentication and invalidation flows
	// are installed for designations that have no flow; with any, built-in flows
	// are removed.
	Blueprints []string `json:"blueprints,omitempty"`
	// Cookie configures the session cookie.
	Cookie CookieConfig `json:"cookie,omitempty"`
	// SecretKeys are pairs of 64-hex-character keys: hash key, block key. The first
	// pair encodes cookies, every pair decodes, so keys can be rotated. If empty,
	// a pair is generated once and kept in Caddy's storage.
	SecretKeys []string `json:"secret_keys,omitempty"`
	// TrustedRedirectHosts may appear in ?next= besides the site's own host and
	// port: exact names or "*.example.com" for any subdomain, on any port, or
	// with ":port" on that port only (default: none).
	TrustedRedirectHosts []string `json:"trusted_redirect_hosts,omitempty"`
	// Branding changes the look of flow pages.
	Branding *Branding `json:"branding,omitempty"`
	// TemplatesDir holds *.html templates that replace the built-in ones by name.
	TemplatesDir string `json:"templates_dir,omitempty"`
	// ExecutionTimeout bounds an unfinished flow (default 30m).
	ExecutionTimeout caddy.Duration `json:"execution_timeout,omitempty"`
	// SMTP sends mail for email stages.
	SMTP *SMTPConfig `json:"smtp,omitempty"`
	// PasswordHashing bounds how many passwords are checked at once, so that a
	// flood of login attempts cannot take the gateway's memory and cores
	// (default: as many at once as Go uses cores, 4 times that waiting, 2s wait).
	PasswordHashing *PasswordHashingConfig `json:"password_hashing,omitempty"`
	// BlueprintsDigest is set by the Caddyfile adapter: the SHA-256 (hex) of the
	// blueprint files' names and contents. flowgate does not read it; it is
	// there so that an edited blueprint makes a different config, which
	// `caddy reload` then applies without --force.
	BlueprintsDigest string `json:"blueprints_digest,omitempty"`

	engine    *flowengine.Engine
	raw       flowengine.Store // the backend itself, without the cache
	regulator *flowengine.CounterRegulator
	// hashes bounds password hashing; its Queued and InFlight feed the gauges.
	hashes    *flowengine.HashLimiter
	observer  *observer // metrics and the flowgate.audit log
	store     *cache.Store
	ready     *atomic.Bool // false while a Redis store could not be reached at start
	stop      context.CancelFunc
	storeKey  string
	cookies   *cookiecodec.Codec
	secrets   *keySecrets
	pages     *templates.Pages
	logger    *zap.Logger
	trusted   []string
	customCSS []byte
	ctx       caddy.Context
}

// StorageConfig selects the store backend.
type StorageConfig struct {
	// Backend is bolt (default), memory or redis.
	Backend string `json:"backend,omitempty"`
	// Path of the bolt file (default: flowgate.db in Caddy's data directory).
	Path string `json:"path,omitempty"`
	// URL of Redis: redis://[user:password@]host:port[/db], or rediss:// for TLS.
	URL string `json:"url,omitempty"`
	// Addresses of more Redis nodes: with them the client is a Cluster client, or
	// a Sentinel client when MasterName is set (the URL's host is one of them).
	Addresses []string `json:"addresses,omitempty"`
	// MasterName is the Sentinel master's name.
	MasterName string `json:"master_name,omitempty"`
	// Password overrides the URL's.
	Password string `json:"password,omitempty"`
	// TLS turns TLS on even for a redis:// URL.
	TLS bool `json:"tls,omitempty"`
	// Prefix of every Redis key (default "{flowgate}:"); keep one {hash tag}.
	Prefix string `json:"prefix,omitempty"`
	// PoolSize is the connection pool size per node (default: go-redis's, 10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`
	// DialTimeout (default 2s) and ReadTimeout (default 1s, also for writes)
	// bound how long a request waits for Redis before it is answered 503.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
}

// CookieConfig configures the session cookie.
type CookieConfig struct {
	// Name of the session cookie (default flowgate_session).
	Name string `json:"name,omitempty"`
	// Domain lets the cookie cover subdomains for single sign-on (default: the
	// site's host only).
	Domain string `json:"domain,omitempty"`
	// Lifetime caps how long a cookie is kept by the browser (default: the
	// session's own duration).
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
}

// Branding is what an operator may change about the pages.
type Branding struct {
	// Name shown on every page (default flowgate).
	Name string `json:"name,omitempty"`
	// LogoURL replaces the name with an image.
	LogoURL string `json:"logo_url,omitempty"`
	// CSSFile is a stylesheet served after the built-in one.
	CSSFile string `json:"css_file,omitempty"`
}

// PasswordHashingConfig bounds password hashing. Checking a password hashed at
// the default cost (argon2id, as `caddy hash-password --algorithm argon2id`
// writes it) takes 46 MiB and one core for tens of milliseconds; unknown names
// cost the same. An attempt that finds the queue full, or waits longer than
// MaxWait, is answered 429 with Retry-After at once and counts as nothing: no
// failure, no regulation count.
type PasswordHashingConfig struct {
	// Concurrency is how many passwords are hashed at once (default: one less
	// than the cores Go uses, at least 1, so a flood leaves a core for proxying).
	Concurrency int `json:"concurrency,omitempty"`
	// Queue is how many attempts may wait for a free slot (default 4 × concurrency).
	Queue int `json:"queue,omitempty"`
	// MaxWait is the longest an attempt waits in the queue (default 2s).
	MaxWait caddy.Duration `json:"max_wait,omitempty"`
}

// SMTPConfig is the mail server for email stages.
type SMTPConfig struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TLS is none, starttls (default) or tls.
	TLS  string `json:"tls,omitempty"`
	From string `json:"from,omitempty"`
	// Timeout bounds connecting to the server and sending one mail (default 10s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// BaseURL is the public origin mailed links point at, e.g.
	// https://auth.example.com (default: the scheme and Host of the request that
	// sent the mail — set it on sites that answer any Host, or a forged Host
	// header could send a victim's link to the attacker's server).
	BaseURL string `json:"base_url,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "flowgate",
		New: func() caddy.Module { return new(App) },
	}
}

// current is the running app, for the admin API.
var current atomic.Pointer[App]

const defaultCookieName = "flowgate_session"

// Provision opens the store, compiles the flows and loads the keys.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.ready = new(atomic.Bool)
	if a.Cookie.Name == "" {
		a.Cookie.Name = defaultCookieName
	}
	if a.Branding == nil {
		a.Branding = &Branding{}
	}
	if a.Branding.Name == "" {
		a.Branding.Name = "flowgate"
	}
	for _, h := range a.TrustedRedirectHosts {
		a.trusted = append(a.trusted, strings.ToLower(h))
	}
	if a.Branding.CSSFile != "" {
		css, err := os.ReadFile(a.Branding.CSSFile)
		if err != nil {
			return fmt.Errorf("branding css_file: %w", err)
		}
		a.customCSS = css
	}
	pages, err := templates.New(a.TemplatesDir)
	if err != nil {
		return err
	}
	a.pages = pages
	if err := a.openStore(); err != nil {
		return err
	}
	a.observer = &observer{audit: a.logger.Named("audit")}
	if err := a.registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	a.regulator = flowengine.NewRegulator(a.store)
	a.secrets = &keySecrets{}
	a.hashes = a.hashLimiter()
	a.regulator.Observer = a.observer
	engine, err := flowengine.New(flowengine.Options{
		Store:        a.store,
		Stages:       stages.Types(),
		Policies:     compilePolicies,
		ValidateNext: flowengine.TrustedNext(a.trusted),
		ExecutionTTL: time.Duration(a.ExecutionTimeout),
		Services: flowengine.Services{Regulator: a.regulator, Hashes: a.hashes, Mailer: a.mailer(), BaseURL: a.mailBaseURL(),
			Secrets:      a.secrets,
			MailRenderer: mailTemplates{pages: pages, brand: templates.Brand{Name: a.Branding.Name, LogoURL: a.Branding.LogoURL}}},
		Observer: a.observer,
	})
	if err != nil {
		return err
	}
	a.engine = engine
	bg, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	err = a.bringUp(bg)
	if err == nil {
		a.ready.Store(true)
	} else if errors.Is(err, flowengine.ErrUnavailable) {
		// A gateway that starts while Redis is down serves 503s and keeps trying,
		// rather than failing the whole Caddy config.
		a.logger.Warn("store unreachable at start; serving 503 and retrying", zap.Error(err))
		go a.retryBringUp(bg)
	} else {
		cancel()
		return err
	}
	if rs, ok := a.raw.(*fgredis.Store); ok {
		a.followReplicas(bg, rs)
	}
	return nil
}

// hashLimiter builds the password hashing bound from PasswordHashing, with its
// defaults for what is not set.
func (a *App) hashLimiter() *flowengine.HashLimiter {
	c := a.PasswordHashing
	if c == nil {
		c = &PasswordHashingConfig{}
	}
	return flowengine.NewHashLimiter(max(c.Concurrency, 0), max(c.Queue, 0), time.Duration(c.MaxWait))
}

// followReplicas keeps this replica in step with the others: a logout, revoke or
// user change elsewhere drops the cached entry here at once (the cache TTL is
// only the fallback), and an imported blueprint is reloaded and recompiled.
func (a *App) followReplicas(ctx context.Context, rs *fgredis.Store) {
	a.store.OnInvalidate = func(kind, id string) {
		if err := rs.Notify(context.Background(), kind+":"+id); err != nil {
			a.logger.Warn("publishing invalidation", zap.Error(err))
		}
	}
	rs.Subscribe(ctx, func(msg string) {
		kind, id, _ := strings.Cut(msg, ":")
		switch kind {
		case "session":
			a.store.ForgetSession(id)
		case "user":
			a.store.ForgetUser(id)
		case "config":
			if !a.ready.Load() {
				return
			}
			if err := a.engine.Reload(ctx); err != nil {
				a.logger.Error("reloading flows after a change notice", zap.Error(err))
			}
		}
	})
}

// bringUp loads the flows, applies the blueprints and loads the keys.
func (a *App) bringUp(ctx context.Context) error {
	if err := a.engine.Reload(ctx); err != nil {
		return err
	}
	if err := a.applyBlueprints(ctx); err != nil {
		return err
	}
	return a.loadKeys(ctx)
}

// retryBringUp retries bringUp with backoff (1s doubling to 30s) until it works
// or the config is unloaded.
func (a *App) retryBringUp(ctx context.Context) {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := a.bringUp(ctx)
		if err == nil {
			a.ready.Store(true)
			a.logger.Info("store reachable again; flowgate is serving")
			return
		}
		a.logger.Warn("store still unreachable", zap.Error(err), zap.Duration("retry_in", wait))
		if wait *= 2; wait > 30*time.Second {
			wait = 30 * time.Second
		}
	}
}

func compilePolicies(m map[string]string) (flowengine.PolicyEvaluator, error) {
	s, err := policies.Compile(m)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// applyBlueprints applies the configured blueprints, all or nothing, and then
// removes the built-in flows a blueprint-less start installed earlier (unless a
// blueprint defines that slug itself). Without blueprints it installs the
// built-in flows of each designation the store has no flow of. Built-ins never
// outrank an operator's flow either way.
func (a *App) applyBlueprints(ctx context.Context) error {
	if len(a.Blueprints) == 0 {
		if err := a.installBuiltIns(ctx); err != nil {
			return fmt.Errorf("installing built-in flows: %w", err)
		}
		return nil
	}
	set, err := blueprint.ReadPaths(a.Blueprints...)
	if err != nil {
		return err
	}
	logWarnings(a.logger, set.Warnings())
	defined := map[string]bool{}
	for _, bp := range set {
		for _, f := range bp.Config.Flows {
			defined[f.Slug] = true
		}
	}
	var builtIns []string
	for _, f := range a.engine.Config().Flows {
		if isBuiltIn(f) && !defined[f.Slug] {
			builtIns = append(builtIns, f.Slug)
		}
	}
	if err := set.Apply(ctx, a.engine); err != nil {
		return fmt.Errorf("applying blueprints: %w", err)
	}
	a.audit(auditConfigImported, zap.String("via", "config_load"), zap.Strings("blueprints", a.Blueprints))
	if len(builtIns) > 0 {
		if err := a.engine.Apply(ctx, flowengine.Change{Remove: flowengine.Removal{Flows: builtIns}}); err != nil {
			return fmt.Errorf("removing built-in flows now that blueprints are configured: %w", err)
		}
		a.logger.Info("removed built-in flows: blueprints are configured", zap.Strings("flows", builtIns))
	}
	return nil
}

// isBuiltIn tells a built-in flow: marked so, or, from a store written before
// flows were marked, identical to the embedded default of its slug.
func isBuiltIn(f flowengine.Flow) bool {
	if f.BuiltIn {
		return true
	}
	for _, d := range blueprint.Defaults().Config.Flows {
		if d.Slug == f.Slug {
			d.BuiltIn = f.BuiltIn
			return reflect.DeepEqual(d, f)
		}
	}
	return false
}

// installBuiltIns adds the embedded default flows for designations without any
// flow, marked built-in, with the stages and policies they need that the store
// does not have yet (an operator's entry of the same name is kept).
func (a *App) installBuiltIns(ctx context.Context) error {
	live := a.engine.Config()
	has := map[flowengine.Designation]bool{}
	for _, f := range live.Flows {
		has[f.Designation] = true
	}
	stageNames, policyNames := map[string]bool{}, map[string]bool{}
	for _, st := range live.Stages {
		stageNames[st.Name] = true
	}
	for _, p := range live.Policies {
		policyNames[p.Name] = true
	}
	def := blueprint.Defaults().Config
	add := &flowengine.Config{}
	for _, f := range live.Flows {
		if !f.BuiltIn && isBuiltIn(f) {
			// Installed before flows were marked: mark it, so that an operator's
			// flow imported later comes first.
			f.BuiltIn = true
			add.Flows = append(add.Flows, f)
		}
	}
	for _, f := range def.Flows {
		if !has[f.Designation] {
			f.BuiltIn = true
			add.Flows = append(add.Flows, f)
		}
	}
	if len(add.Flows) == 0 {
		return nil
	}
	for _, st := range def.Stages {
		if !stageNames[st.Name] {
			add.Stages = append(add.Stages, st)
		}
	}
	for _, p := range def.Policies {
		if !policyNames[p.Name] {
			add.Policies = append(add.Policies, p)
		}
	}
	return a.engine.Apply(ctx, flowengine.Change{Config: add})
}

// Validate checks settings that Provision does not already refuse, and what
// would otherwise fail only at run time: the cookie name, and template
// overrides (every page rendered with sample data).
func (a *App) Validate() error {
	if err := checkCookieName(a.Cookie.Name); err != nil {
		return err
	}
	if a.SMTP != nil {
		switch a.SMTP.TLS {
		case "", "none", "starttls", "tls":
		default:
			return fmt.Errorf("smtp tls: %q is not none, starttls or tls", a.SMTP.TLS)
		}
		if a.SMTP.Host == "" || a.SMTP.From == "" {
			return fmt.Errorf("smtp: host and from are required")
		}
		if _, err := mail.ParseAddress(a.SMTP.From); err != nil {
			return fmt.Errorf("smtp from: %q is not an email address", a.SMTP.From)
		}
		if a.SMTP.Timeout < 0 {
			return fmt.Errorf("smtp timeout: must not be negative")
		}
	}
	if c := a.PasswordHashing; c != nil && (c.Concurrency < 0 || c.Queue < 0 || c.MaxWait < 0) {
		return fmt.Errorf("password_hashing: concurrency, queue and max_wait must not be negative")
	}
	for _, h := range a.trusted {
		if strings.Contains(h, "/") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
			return fmt.Errorf("trusted_redirect_hosts: %q must be a host name or *.domain", h)
		}
	}
	return a.checkTemplates()
}

// Start makes the app reachable from the admin API.
func (a *App) Start() error {
	current.Store(a)
	return nil
}

// Stop detaches the app from the admin API.
func (a *App) Stop() error {
	current.CompareAndSwap(a, nil)
	return nil
}

// Cleanup releases the store (closed when no config uses it any more).
func (a *App) Cleanup() error {
	if a.stop != nil {
		a.stop()
	}
	if a.storeKey != "" {
		_, err := storePool.Delete(a.storeKey)
		return err
	}
	return nil
}

// Engine returns the flow engine.
func (a *App) Engine() *flowengine.Engine { return a.engine }

// keysStorageKey is where generated secret keys live in Caddy's storage.
const keysStorageKey = "flowgate/secret_keys.json"

// loadKeys builds the cookie codecs from configured keys, or from keys generated
// once and persisted (in Caddy's storage, or in Redis for replicas) so restarts
// keep sessions.
func (a *App) loadKeys(ctx context.Context) error {
	pairs := a.SecretKeys
	if len(pairs) == 0 {
		var err error
		if rs, ok := a.raw.(*fgredis.Store); ok {
			// Replicas must share keys, or a cookie from one fails on another.
			pairs, err = rs.SharedKeys(ctx, func() []string { h, b := NewKeyPair(); return []string{h, b} })
		} else {
			pairs, err = a.storedKeys()
		}
		if err != nil {
			return err
		}
	}
	codec, err := cookiecodec.New(pairs)
	if err != nil {
		return err
	}
	a.cookies = codec
	a.secrets.box.Store(codec.Secrets)
	return nil
}

// keySecrets seals device secrets with the keys loadKeys finds; the engine is
// built before the keys are loaded, so it holds this and not the box itself.
type keySecrets struct {
	box atomic.Pointer[flowengine.SecretBox]
}

func (k *keySecrets) Seal(plaintext, aad []byte) (string, error) {
	b := k.box.Load()
	if b == nil {
		return "", errors.New("secret keys are not loaded yet")
	}
	return b.Seal(plaintext, aad)
}

func (k *keySecrets) Open(sealed string, aad []byte) ([]byte, error) {
	b := k.box.Load()
	if b == nil {
		return nil, errors.New("secret keys are not loaded yet")
	}
	return b.Open(sealed, aad)
}

// NewKeyPair returns a fresh hash key and block key in hex.
func NewKeyPair() (string, string) { return cookiecodec.NewKeyPair() }

func (a *App) storedKeys() ([]string, error) {
	storage := a.ctx.Storage()
	ctx := context.Background()
	raw, err := storage.Load(ctx, keysStorageKey)
	if err == nil {
		var pairs []string
		if err := json.Unmarshal(raw, &pairs); err != nil || len(pairs) < 2 {
			return nil, fmt.Errorf("stored secret keys %s are unreadable; remove the file to generate new ones", keysStorageKey)
		}
		return pairs, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading secret keys: %w", err)
	}
	h, b := NewKeyPair()
	pairs := []string{h, b}
	raw, _ = json.Marshal(pairs)
	if err := storage.Store(ctx, keysStorageKey, raw); err != nil {
		return nil, fmt.Errorf("storing generated secret keys: %w", err)
	}
	a.logger.Info("generated cookie secret keys", zap.String("storage_key", keysStorageKey))
	return pairs, nil
}

func defaultBoltPath() string { return filepath.Join(caddy.AppDataDir(), "flowgate.db") }

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// mailBaseURL is the configured origin of mailed links ("" = the request's).
func (a *App) mailBaseURL() string {
	if a.SMTP == nil {
		return ""
	}
	return strings.TrimRight(a.SMTP.BaseURL, "/")
}
