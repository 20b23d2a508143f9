# resumeproxy — see README.md.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 20s
# bench-go: where the raw results go (bin/ is not tracked), how long each
# benchmark runs (6 times; the whole run takes ~3 minutes on 2 cores), and
# an earlier results file to compare with (none by default).
BENCH_GO_OUT  ?= bin/bench-go.txt
BENCH_GO_TIME ?= 300ms
BENCH_GO_BASE ?=
# benchstat has no tagged release; this is its latest commit (2026-09-08).
BENCHSTAT ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# install: where things go (DESTDIR for packaging). The unit goes where
# systemd looks for local units; its ExecStart is pointed at BINDIR.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=

.PHONY: run build install test fuzz soak bench bench-go vet fmt clean

## run: serve on 127.0.0.1:3128 with the cache under the user's cache dir
run:
	$(GO) run .

## build: the resumeproxy binary in ./bin
build:
	$(GO) build -o bin/resumeproxy .

## install: bin/resumeproxy (make build first), the systemd unit, and config.example.yaml in SYSCONFDIR/resumeproxy
install:
	@test -x bin/resumeproxy || { echo "make install: no bin/resumeproxy: run make build first (as yourself: sudo may have no go)"; exit 1; }
	install -D -m 0755 bin/resumeproxy $(DESTDIR)$(BINDIR)/resumeproxy
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/resumeproxy
	sed 's#/usr/local/bin/resumeproxy#$(BINDIR)/resumeproxy#' contrib/resumeproxy.service > $(DESTDIR)$(UNITDIR)/resumeproxy.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/resumeproxy.service
	install -m 0644 config.example.yaml $(DESTDIR)$(SYSCONFDIR)/resumeproxy/config.example.yaml

## test: everything CI runs: format, vet, unit and end-to-end tests under -race
test: vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@./scripts/install-test-deps.sh
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

# FUZZ: every fuzz target, as package:target.
FUZZ := rangeutil:FuzzParseRange rangeutil:FuzzParseContentRange rangeutil:FuzzSetOps \
	rangeutil:FuzzSetUnmarshal internal/hostglob:FuzzMatch internal/ca:FuzzLeafName \
	internal/access:FuzzParseBasic proxy:FuzzSignatureExpiry internal/keyrule:FuzzKey

## fuzz: run every fuzz target of the parsers and key functions for FUZZTIME each
fuzz:
	@for pt in $(FUZZ); do \
		$(GO) test ./$${pt%%:*} -run '^$$' -fuzz "^$${pt#*:}$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## soak: the chaos tests' random fault schedules, N of each (make test runs 100, and 40 over segmented fills), under -race
N    ?= 1000
SEED ?= 20261201
soak:
	RESUMEPROXY_CHAOS_N=$(N) RESUMEPROXY_CHAOS_SEED=$(SEED) $(GO) test -race -count=1 -timeout 0 -run '^TestChaos(Segmented)?$$' .

## bench: issue 12's table: each case through the proxy against direct (throttled and unthrottled origins) or the best of Squid, nginx, tinyproxy (BENCH_SIZE=1G ...)
bench:
	./scripts/bench.sh

## bench-go: the Go benchmarks of the hot paths, 6 runs each, summarised by benchstat (vs BENCH_GO_BASE if set)
bench-go:
	@mkdir -p $(dir $(BENCH_GO_OUT))
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_GO_TIME) -count 6 ./rangeutil ./cache ./proxy > $(BENCH_GO_OUT) \
		|| { tail -30 $(BENCH_GO_OUT); exit 1; }
	$(BENCHSTAT) $(BENCH_GO_BASE) $(BENCH_GO_OUT)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
