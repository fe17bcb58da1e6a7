package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/flowgate/flowgate/caddymodule/cookiecodec"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("flowgate", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("flowgate", parseHandler)
	// Authentication runs before anything that serves or proxies content, like
	// Caddy's own basic_auth; operators need no order line.
	httpcaddyfile.RegisterDirectiveOrder("flowgate", httpcaddyfile.Before, "basic_auth")
}

// parseGlobal reads the global options block:
//
//	flowgate {
//	    storage bolt [<path>] | memory | redis <url> {
//	        addresses <host:port>...
//	        master_name <name>
//	        password <password>
//	        tls
//	        prefix <key-prefix>
//	        pool_size <n>
//	        dial_timeout <duration>
//	        read_timeout <duration>
//	    }
//	    blueprints <file or dir>...
//	    cookie {
//	        name     <name>
//	        domain   <domain>
//	        lifetime <duration>
//	    }
//	    secret_keys <hash-key> <block-key> [<hash-key> <block-key>...]
//	    trusted_redirect_hosts <host>...
//	    execution_timeout <duration>
//	    branding {
//	        name     <text>
//	        logo_url <url>
//	        css_file <path>
//	    }
//	    templates <dir>
//	    smtp {
//	        host <host>
//	        port <port>
//	        username <user>
//	        password <password>
//	        tls none|starttls|tls
//	        from <address>
//	        timeout <duration>
//	    }
//	    password_hashing {
//	        concurrency <n>
//	        queue <n>
//	        max_wait <duration>
//	    }
//	}
func parseGlobal(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	for d.Next() {
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		for d.NextBlock(0) {
			switch d.Val() {
			case "storage":
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				app.Storage = &StorageConfig{Backend: d.Val()}
				switch d.Val() {
				case "bolt":
					if d.NextArg() {
						app.Storage.Path = d.Val()
					}
				case "memory":
				case "redis":
					if !d.NextArg() {
						return nil, d.Errf("storage redis wants a URL: redis://host:port[/db]")
					}
					app.Storage.URL = d.Val()
					if err := parseRedisBlock(d, app.Storage); err != nil {
						return nil, err
					}
				default:
					return nil, d.Errf("unknown storage %q (want bolt, memory or redis)", d.Val())
				}
				if d.NextArg() {
					return nil, d.ArgErr()
				}
			case "blueprints":
				args := d.RemainingArgs()
				if len(args) == 0 {
					return nil, d.ArgErr()
				}
				app.Blueprints = append(app.Blueprints, args...)
				// Over every blueprints line so far: the last one covers them all.
				digest, err := blueprintsDigest(app.Blueprints)
				if err != nil {
					return nil, d.Errf("blueprints: %v", err)
				}
				app.BlueprintsDigest = digest
			case "cookie":
				if d.NextArg() {
					return nil, d.ArgErr()
				}
				err := eachOption(d, func(key, v string) error {
					switch key {
					case "name":
						if err := checkCookieName(v); err != nil {
							return d.Errf("%v", err)
						}
						app.Cookie.Name = v
					case "domain":
						app.Cookie.Domain = v
					case "lifetime":
						dur, err := positiveDuration(d, "cookie lifetime", v)
						app.Cookie.Lifetime = dur
						return err
					default:
						return d.Errf("unknown cookie option %q", key)
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
			case "secret_keys":
				args := d.RemainingArgs()
				if len(args) == 0 || len(args)%2 != 0 {
					return nil, d.Errf("secret_keys wants pairs of <hash-key> <block-key>")
				}
				for _, k := range args {
					if _, err := cookiecodec.DecodeKey(k); err != nil {
						return nil, d.Errf("secret_keys: %v", err)
					}
				}
				app.SecretKeys = append(app.SecretKeys, args...)
			case "trusted_redirect_hosts":
				args := d.RemainingArgs()
				if len(args) == 0 {
					return nil, d.ArgErr()
				}
				app.TrustedRedirectHosts = append(app.TrustedRedirectHosts, args...)
			case "execution_timeout":
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				dur, err := positiveDuration(d, "execution_timeout", d.Val())
				if err != nil {
					return nil, err
				}
				app.ExecutionTimeout = dur
			case "branding":
				app.Branding = &Branding{}
				err := eachOption(d, func(key, v string) error {
					switch key {
					case "name":
						app.Branding.Name = v
					case "logo_url":
						app.Branding.LogoURL = v
					case "css_file":
						app.Branding.CSSFile = v
					default:
						return d.Errf("unknown branding option %q", key)
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
			case "templates":
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				app.TemplatesDir = d.Val()
			case "smtp":
				s, err := parseSMTP(d)
				if err != nil {
					return nil, err
				}
				app.SMTP = s
			case "password_hashing":
				c, err := parsePasswordHashing(d)
				if err != nil {
					return nil, err
				}
				app.PasswordHashing = c
			default:
				return nil, d.Errf("unknown flowgate option %q", d.Val())
			}
		}
	}
	return httpcaddyfile.App{Name: "flowgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// blueprintsDigest is the SHA-256 (hex) of the blueprint files named by paths,
// directories expanded as blueprint.ReadPaths does (*.yaml, *.yml, *.json,
// sorted): each file's name, size and content. The adapted config carries it,
// so that editing a blueprint changes the JSON and `caddy reload` applies it
// (Caddy skips a reload whose JSON is unchanged). A path that does not exist
// here is recorded as missing rather than refused, so a Caddyfile can be
// adapted away from the machine it runs on (loading it there reports the
// missing file); one that exists but cannot be read is an error.
func blueprintsDigest(paths []string) (string, error) {
	h := sha256.New()
	add := func(file string) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "file\x00%s\x00%d\x00", file, st.Size())
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		return nil
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "missing\x00%s\x00", p)
			continue
		}
		if err != nil {
			return "", err
		}
		if !st.IsDir() {
			if err := add(p); err != nil {
				return "", err
			}
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "dir\x00%s\x00", p)
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				if err := add(filepath.Join(p, e.Name())); err != nil {
					return "", err
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func parseRedisBlock(d *caddyfile.Dispenser, s *StorageConfig) error {
	for d.NextBlock(1) {
		key := d.Val()
		switch key {
		case "tls":
			s.TLS = true
			continue
		case "addresses":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			s.Addresses = append(s.Addresses, args...)
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		switch key {
		case "master_name":
			s.MasterName = d.Val()
		case "password":
			s.Password = d.Val()
		case "prefix":
			s.Prefix = d.Val()
		case "pool_size":
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("pool_size: %q is not a positive number", d.Val())
			}
			s.PoolSize = n
		case "dial_timeout", "read_timeout":
			dur, err := positiveDuration(d, key, d.Val())
			if err != nil {
				return err
			}
			if key == "dial_timeout" {
				s.DialTimeout = dur
			} else {
				s.ReadTimeout = dur
			}
		default:
			return d.Errf("unknown redis option %q", key)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

func parseSMTP(d *caddyfile.Dispenser) (*SMTPConfig, error) {
	s := &SMTPConfig{}
	err := eachOption(d, func(key, v string) error {
		switch key {
		case "host":
			s.Host = v
		case "port":
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return d.Errf("smtp port: %q is not a port number", v)
			}
			s.Port = p
		case "username":
			s.Username = v
		case "password":
			s.Password = v
		case "tls":
			if v != "none" && v != "starttls" && v != "tls" {
				return d.Errf("smtp tls: want none, starttls or tls")
			}
			s.TLS = v
		case "from":
			s.From = v
		case "timeout":
			t, err := caddy.ParseDuration(v)
			if err != nil || t <= 0 {
				return d.Errf("smtp timeout: %q is not a positive duration", v)
			}
			s.Timeout = caddy.Duration(t)
		case "base_url":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return d.Errf("smtp base_url: %q is not an origin like https://auth.example.com", v)
			}
			s.BaseURL = strings.TrimRight(v, "/")
		default:
			return d.Errf("unknown smtp option %q", key)
		}
		return nil
	})
	return s, err
}

func parsePasswordHashing(d *caddyfile.Dispenser) (*PasswordHashingConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &PasswordHashingConfig{}
	err := eachOption(d, func(key, v string) error {
		switch key {
		case "concurrency", "queue":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("password_hashing %s: %q is not a positive number", key, v)
			}
			if key == "concurrency" {
				c.Concurrency = n
			} else {
				c.Queue = n
			}
		case "max_wait":
			dur, err := positiveDuration(d, "password_hashing max_wait", v)
			c.MaxWait = dur
			return err
		default:
			return d.Errf("unknown password_hashing option %q", key)
		}
		return nil
	})
	return c, err
}

func positiveDuration(d *caddyfile.Dispenser, what, v string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", what, v)
	}
	return caddy.Duration(dur), nil
}

// eachOption reads a sub-block of "key value" lines, one value each.
func eachOption(d *caddyfile.Dispenser, set func(key, value string) error) error {
	for d.NextBlock(1) {
		key := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		if err := set(key, d.Val()); err != nil {
			return err
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// parseHandler reads the site directive:
//
//	flowgate {
//	    prefix <path>
//	    policy <policy-name>
//	    header_user   <header>
//	    header_email  <header>
//	    header_name   <header>
//	    header_groups <header>       # "-" for none
//	    flow <designation> <slug>
//	    accept_flows <slug>...       # sessions of these flows are accepted too
//	    step_up <slug>               # flow that adds a missing second factor
//	}
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(Handler)
	for h.Next() {
		if h.NextArg() {
			return nil, h.ArgErr()
		}
		for h.NextBlock(0) {
			key := h.Val()
			switch key {
			case "step_up":
				if !h.NextArg() {
					return nil, h.ArgErr()
				}
				hd.StepUp = h.Val()
			case "prefix", "policy", "header_user", "header_email", "header_name", "header_groups":
				if !h.NextArg() {
					return nil, h.ArgErr()
				}
				v := h.Val()
				if hd.Headers == nil && key != "prefix" && key != "policy" {
					hd.Headers = &HeaderNames{}
				}
				if strings.HasPrefix(key, "header_") {
					if err := checkHeaderName(v); err != nil {
						return nil, h.Errf("%s: %v", key, err)
					}
				}
				switch key {
				case "prefix":
					if v == "" || v[0] != '/' || v == "/" {
						return nil, h.Errf("prefix must be a path like /.flowgate")
					}
					hd.Prefix = v
				case "policy":
					hd.Policy = v
				case "header_user":
					hd.Headers.User = v
				case "header_email":
					hd.Headers.Email = v
				case "header_name":
					hd.Headers.Name = v
				case "header_groups":
					hd.Headers.Groups = v
				}
			case "flow":
				args := h.RemainingArgs()
				if len(args) != 2 {
					return nil, h.Errf("flow wants <designation> <slug>")
				}
				if !validDesignation(args[0]) {
					return nil, h.Errf("flow: unknown designation %q", args[0])
				}
				if hd.Flows == nil {
					hd.Flows = map[string]string{}
				}
				hd.Flows[args[0]] = args[1]
				continue
			case "accept_flows":
				args := h.RemainingArgs()
				if len(args) == 0 {
					return nil, h.ArgErr()
				}
				hd.AcceptFlows = append(hd.AcceptFlows, args...)
				continue
			default:
				return nil, h.Errf("unknown flowgate option %q", key)
			}
			if h.NextArg() {
				return nil, h.ArgErr()
			}
		}
	}
	return hd, nil
}
