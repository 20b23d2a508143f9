# resumeproxy — see README.md.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 20s

.PHONY: run build test fuzz bench vet fmt clean

## run: serve on 127.0.0.1:3128 with the cache under the user's cache dir
run:
	$(GO) run .

## build: the resumeproxy binary in ./bin
build:
	$(GO) build -o bin/resumeproxy .

## test: everything CI runs: format, vet, unit and end-to-end tests under -race
test: vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@command -v curl >/dev/null && command -v wget >/dev/null || ./scripts/install-test-deps.sh
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

## fuzz: run every fuzz target of the parsers for FUZZTIME each
fuzz:
	@for t in FuzzParseRange FuzzParseContentRange FuzzSetOps FuzzSetUnmarshal; do \
		$(GO) test ./rangeutil -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: issue 4's table: each case through the proxy as a ratio to direct (BENCH_SIZE=1G ...)
bench:
	./scripts/bench.sh

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
