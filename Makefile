# flowgate: make test (what CI runs), make bench, make run.
GO      ?= go
TMP     := $(CURDIR)/.tmp
export XDG_CONFIG_HOME := $(TMP)/config
export XDG_DATA_HOME   := $(TMP)/data

.PHONY: test vet deps bench run fuzz clean

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Debian's Chromium for the browser test, redis-server for the Redis tests.
deps:
	@scripts/install-deps.sh chromium redis-server redis-sentinel oathtool

# Go benchmarks, then a wrk load comparison of plain reverse_proxy against a
# flowgate-protected route with a valid session, then a login flood (400
# sign-ins at once, default-cost argon2id) timing a signed-in user meanwhile.
bench:
	@scripts/install-deps.sh wrk redis-server
	$(GO) test -run '^$$' -bench . -benchmem ./flowengine/... ./policies/
	scripts/bench.sh
	scripts/flood.sh

# Short native fuzzing of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./flowengine/blueprint/
	$(GO) test -run '^$$' -fuzz FuzzAnswer -fuzztime 30s ./flowengine/
	$(GO) test -run '^$$' -fuzz FuzzNext -fuzztime 30s ./flowengine/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./caddymodule/cookiecodec/
	$(GO) test -run '^$$' -fuzz FuzzCaddyfile -fuzztime 30s ./caddymodule/integration/
	$(GO) test -run '^$$' -fuzz FuzzImport -fuzztime 30s ./flowengine/blueprint/authentik/
	$(GO) test -run '^$$' -fuzz FuzzValidateAnswer -fuzztime 30s ./flowengine/stages/
	$(GO) test -run '^$$' -fuzz FuzzWebAuthnRegisterAnswer -fuzztime 30s ./flowengine/stages/

run:
	$(GO) run ./cmd/caddy run --config examples/Caddyfile

clean:
	rm -rf $(TMP)
